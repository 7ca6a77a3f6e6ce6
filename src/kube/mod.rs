//! Kubernetes access per cluster: a kube-rs client built from the cluster's
//! `listClusterUserCredential` kubeconfig (or, on Entra-ID clusters, an Entra token for
//! the AKS server application), and watches of pods, nodes and ReplicaSets that keep
//! only what the health gates read.
//!
//! Watches start when a cluster's turn comes and stop after ([`WatchSet`]), so a
//! 1,000-cluster fleet does not hold 1,000 watches.

mod auth;
pub(crate) mod snapshot;
mod watch;

pub use snapshot::{KubeSnapshot, NodeInfo, OwnerKey, OwnerPods, PodInfo};
pub use watch::{ClusterWatch, WatchSet};

use crate::arm::{AksClient, ArmError, ClusterId};
use crate::identity::{AKS_SCOPE, TokenSource};
use std::sync::Arc;

#[derive(Debug, thiserror::Error)]
pub enum KubeAccessError {
    #[error("getting the kubeconfig of {cluster}: {source}")]
    Credentials {
        cluster: ClusterId,
        #[source]
        source: ArmError,
    },
    #[error("the kubeconfig of {cluster} is not usable: {message}")]
    Kubeconfig { cluster: ClusterId, message: String },
    #[error("getting an Entra token for {cluster}: {message}")]
    Token { cluster: ClusterId, message: String },
}

/// Builds a kube-rs client for a cluster. Entra-ID clusters' kubeconfigs run
/// `kubelogin`; instead of a subprocess ringmaster sends its own Entra token for the
/// AKS server application (same identity, no extra binary), the current one on every
/// request, so that the client outlives the token ([`auth`]).
pub async fn client_for(
    arm: &AksClient,
    tokens: Arc<dyn TokenSource>,
    cluster: &ClusterId,
) -> Result<kube::Client, KubeAccessError> {
    let raw = arm
        .user_kubeconfig(cluster)
        .await
        .map_err(|source| KubeAccessError::Credentials {
            cluster: cluster.clone(),
            source,
        })?;
    let bad = |message: String| KubeAccessError::Kubeconfig {
        cluster: cluster.clone(),
        message,
    };
    let mut kc = kube::config::Kubeconfig::from_yaml(&raw.0).map_err(|e| bad(e.to_string()))?;
    let uses_exec = kc
        .auth_infos
        .iter()
        .any(|a| a.auth_info.as_ref().is_some_and(|i| i.exec.is_some()));
    if uses_exec {
        // Fail here, with a clear error, when no token can be had at all.
        tokens
            .token(AKS_SCOPE, false)
            .await
            .map_err(|e| KubeAccessError::Token {
                cluster: cluster.clone(),
                message: e.to_string(),
            })?;
        for a in &mut kc.auth_infos {
            if let Some(info) = a.auth_info.as_mut() {
                info.exec = None;
                info.token = None;
            }
        }
    }
    let mut config = kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
        .await
        .map_err(|e| bad(e.to_string()))?;
    // kube's default retries (429/503/504, for minutes) would hide an outage from the
    // gates; the watchers back off and re-list by themselves.
    config.default_retry = false;
    if uses_exec {
        auth::entra_client(config, tokens).map_err(|e| bad(e.to_string()))
    } else {
        kube::Client::try_from(config).map_err(|e| bad(e.to_string()))
    }
}
