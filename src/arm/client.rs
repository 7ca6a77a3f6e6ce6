//! The AKS operations ringmaster needs, typed, on top of [`ArmHttp`].
//!
//! Writes follow AKS's own recipes (aks-facts.md): a control-plane upgrade is a GET of
//! the cluster, `properties.kubernetesVersion` set, every pool's `orchestratorVersion`
//! kept as returned, and a PUT with `If-Match`; a pool upgrade is the same on the pool.
//! After an ambiguous failure (5xx, or a connection lost after the request went out),
//! the resource is read back before anything is sent again: if the write took, the
//! operation is followed from the resource's provisioningState instead of starting a
//! second one.

use super::error::ArmError;
use super::http::{ArmHttp, RawResponse};
use super::lro::OperationRef;
use super::models::*;

/// api-version of `Microsoft.Compute` usage reads.
pub const COMPUTE_API_VERSION: &str = "2024-07-01";
/// api-version of `Microsoft.Network` usage reads.
pub const NETWORK_API_VERSION: &str = "2024-05-01";
use crate::domain::fleet::ClusterId;
use crate::identity::Redacted;
use base64::Engine;
use reqwest::Method;
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// ARM paths of a cluster (the id type lives in the domain; its ARM spelling here).
impl ClusterId {
    /// `/subscriptions/{sub}/resourceGroups/{rg}/providers/Microsoft.ContainerService/managedClusters/{name}`.
    pub fn arm_path(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.ContainerService/managedClusters/{}",
            self.subscription, self.resource_group, self.name
        )
    }

    /// Parses an ARM resource id of a managed cluster.
    pub fn from_arm_id(id: &str) -> Option<Self> {
        let parts: Vec<&str> = id.split('/').collect();
        let find = |k: &str| {
            parts
                .iter()
                .position(|p| p.eq_ignore_ascii_case(k))
                .and_then(|i| parts.get(i + 1))
                .map(|s| s.to_string())
        };
        Some(Self::new(
            find("subscriptions")?,
            find("resourceGroups")?,
            find("managedClusters")?,
        ))
    }
}

/// What a write led to.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Submitted {
    /// A long-running operation started; follow it here.
    Started(OperationRef),
    /// The write took, but its operation URL was lost (ambiguous failure): follow the
    /// resource's provisioningState.
    InFlight,
    /// Nothing to do (already there).
    NothingToDo,
}

/// A policy's overrides of a pool's upgrade settings for its upgrade.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PoolOverrides {
    pub max_surge: Option<String>,
    pub drain_timeout_minutes: Option<u32>,
}

/// How many times an ambiguous write may be re-sent after reading back that it did not take.
const MAX_WRITE_ATTEMPTS: u32 = 3;

#[derive(Debug)]
pub struct AksClient {
    http: ArmHttp,
}

/// What reading the resource back after an ambiguous write showed.
enum Verdict {
    Took,
    DidNotTake,
}

impl AksClient {
    pub fn new(http: ArmHttp) -> Self {
        Self { http }
    }

    pub fn http(&self) -> &ArmHttp {
        &self.http
    }

    async fn paged<T: serde::de::DeserializeOwned>(&self, first: String) -> Result<Vec<T>, ArmError> {
        let mut out = Vec::new();
        let mut url = Some(first);
        while let Some(u) = url {
            let page: Page<T> = self.http.get_json(&u).await?;
            out.extend(page.value);
            url = page.next_link.filter(|l| !l.is_empty());
        }
        Ok(out)
    }

    pub async fn list_clusters(&self, subscription: &str) -> Result<Vec<ManagedCluster>, ArmError> {
        let path = format!("/subscriptions/{subscription}/providers/Microsoft.ContainerService/managedClusters");
        self.paged(self.http.url(&path)).await
    }

    pub async fn get_cluster(&self, c: &ClusterId) -> Result<ManagedCluster, ArmError> {
        self.http.get_json(&self.http.url(&c.arm_path())).await
    }

    pub async fn list_pools(&self, c: &ClusterId) -> Result<Vec<AgentPool>, ArmError> {
        self.paged(self.http.url(&format!("{}/agentPools", c.arm_path()))).await
    }

    pub async fn get_pool(&self, c: &ClusterId, pool: &str) -> Result<AgentPool, ArmError> {
        self.http
            .get_json(&self.http.url(&format!("{}/agentPools/{pool}", c.arm_path())))
            .await
    }

    pub async fn cluster_upgrade_profile(&self, c: &ClusterId) -> Result<ClusterUpgradeProfile, ArmError> {
        self.http
            .get_json(&self.http.url(&format!("{}/upgradeProfiles/default", c.arm_path())))
            .await
    }

    pub async fn pool_upgrade_profile(&self, c: &ClusterId, pool: &str) -> Result<PoolUpgradeProfile, ArmError> {
        self.http
            .get_json(
                &self
                    .http
                    .url(&format!("{}/agentPools/{pool}/upgradeProfiles/default", c.arm_path())),
            )
            .await
    }

    pub async fn kubernetes_versions(
        &self,
        subscription: &str,
        location: &str,
    ) -> Result<KubernetesVersionList, ArmError> {
        let path = format!(
            "/subscriptions/{subscription}/providers/Microsoft.ContainerService/locations/{location}/kubernetesVersions"
        );
        self.http.get_json(&self.http.url(&path)).await
    }

    pub async fn maintenance_configurations(&self, c: &ClusterId) -> Result<Vec<MaintenanceConfiguration>, ArmError> {
        self.paged(self.http.url(&format!("{}/maintenanceConfigurations", c.arm_path())))
            .await
    }

    /// vCPU usage and quota per VM family (and `cores`, the regional total) of a
    /// subscription in a region (`Microsoft.Compute`, api-version [`COMPUTE_API_VERSION`]).
    pub async fn compute_usages(&self, subscription: &str, location: &str) -> Result<Vec<Usage>, ArmError> {
        let path = format!(
            "/subscriptions/{subscription}/providers/Microsoft.Compute/locations/{location}/usages?api-version={COMPUTE_API_VERSION}"
        );
        self.paged(self.http.url_as_is(&path)).await
    }

    /// Address usage of every subnet of a virtual network (`vnet_id` is its ARM id;
    /// `Microsoft.Network`, api-version [`NETWORK_API_VERSION`]).
    pub async fn vnet_usages(&self, vnet_id: &str) -> Result<Vec<Usage>, ArmError> {
        let path = format!("{vnet_id}/usages?api-version={NETWORK_API_VERSION}");
        self.paged(self.http.url_as_is(&path)).await
    }

    /// The user kubeconfig (decoded). A secret: keep it in [`Redacted`].
    pub async fn user_kubeconfig(&self, c: &ClusterId) -> Result<Redacted, ArmError> {
        let url = self.http.url(&format!("{}/listClusterUserCredential", c.arm_path()));
        let raw = self.http.send(Method::POST, &url, None, &[]).await?;
        if raw.status != 200 {
            return Err(ArmHttp::error_for(&Method::POST, &url, &raw));
        }
        let creds: CredentialResults = super::http::decode(&Method::POST, &url, &raw)?;
        let first = creds.kubeconfigs.into_iter().next().ok_or_else(|| ArmError::Decode {
            method: "POST".into(),
            path: format!("{}/listClusterUserCredential", c.arm_path()),
            message: "no kubeconfig in the answer".into(),
        })?;
        let bytes = base64::engine::general_purpose::STANDARD
            .decode(first.value.as_bytes())
            .map_err(|e| ArmError::Decode {
                method: "POST".into(),
                path: format!("{}/listClusterUserCredential", c.arm_path()),
                message: format!("kubeconfig is not base64: {e}"),
            })?;
        Ok(Redacted(String::from_utf8_lossy(&bytes).into_owned()))
    }

    /// Follows a started operation; see [`ArmHttp::wait`].
    pub async fn operation_status(&self, op: &OperationRef) -> Result<super::lro::Progress, ArmError> {
        self.http.poll_once(op).await
    }

    /// Sends a write once; on an ambiguous failure reads back with `verify` and re-sends
    /// only when the write did not take.
    async fn write<F, Fut>(
        &self,
        method: Method,
        url: &str,
        body: Option<&Value>,
        headers: &[(&str, &str)],
        verify: F,
    ) -> Result<Submitted, ArmError>
    where
        F: Fn() -> Fut,
        Fut: std::future::Future<Output = Result<Verdict, ArmError>>,
    {
        let mut attempt = 0;
        loop {
            attempt += 1;
            let outcome = self.http.send(method.clone(), url, body, headers).await;
            let ambiguous = match outcome {
                Ok(raw) if (200..300).contains(&raw.status) => return Ok(submitted(&raw)),
                Ok(raw) if raw.status >= 500 => ArmHttp::error_for(&method, url, &raw),
                Ok(raw) => return Err(ArmHttp::error_for(&method, url, &raw)),
                Err(e @ ArmError::Transport { maybe_sent: true, .. }) => e,
                Err(e) => return Err(e),
            };
            tracing::warn!(%method, error = %ambiguous, "write may or may not have reached AKS; reading the resource before anything else");
            match verify().await? {
                Verdict::Took => return Ok(Submitted::InFlight),
                Verdict::DidNotTake if attempt < MAX_WRITE_ATTEMPTS => continue,
                Verdict::DidNotTake => return Err(ambiguous),
            }
        }
    }

    /// Upgrades the control plane only: pools keep their `orchestratorVersion`.
    pub async fn upgrade_control_plane(&self, c: &ClusterId, version: &str) -> Result<Submitted, ArmError> {
        let mc = self.get_cluster(c).await?;
        self.upgrade_control_plane_from(c, mc, version).await
    }

    /// As [`AksClient::upgrade_control_plane`], from the cluster as just read (its eTag
    /// guards the PUT): saves a read when the caller had to read it anyway.
    pub async fn upgrade_control_plane_from(
        &self,
        c: &ClusterId,
        mut mc: ManagedCluster,
        version: &str,
    ) -> Result<Submitted, ArmError> {
        if mc.properties.current_kubernetes_version.as_deref() == Some(version) {
            return Ok(Submitted::NothingToDo);
        }
        let etag = mc.e_tag.clone();
        mc.properties.kubernetes_version = Some(version.to_string());
        let body = serde_json::to_value(&mc).map_err(|e| ArmError::Decode {
            method: "PUT".into(),
            path: c.arm_path(),
            message: e.to_string(),
        })?;
        let url = self.http.url(&c.arm_path());
        let headers: Vec<(&str, &str)> = etag.as_deref().map(|e| vec![("If-Match", e)]).unwrap_or_default();
        self.write(Method::PUT, &url, Some(&body), &headers, || async {
            let now = self.get_cluster(c).await?;
            let took = now.properties.kubernetes_version.as_deref() == Some(version) && now.e_tag != etag;
            Ok(if took { Verdict::Took } else { Verdict::DidNotTake })
        })
        .await
    }

    /// Upgrades one pool's Kubernetes version (full body, unknown fields kept).
    pub async fn upgrade_pool(&self, c: &ClusterId, pool: &str, version: &str) -> Result<Submitted, ArmError> {
        self.upgrade_pool_with(c, pool, version, &PoolOverrides::default())
            .await
    }

    /// As [`AksClient::upgrade_pool`], with the policy's maxSurge / drainTimeout overrides.
    pub async fn upgrade_pool_with(
        &self,
        c: &ClusterId,
        pool: &str,
        version: &str,
        o: &PoolOverrides,
    ) -> Result<Submitted, ArmError> {
        let ap = self.get_pool(c, pool).await?;
        self.upgrade_pool_from(c, pool, ap, version, o).await
    }

    /// As [`AksClient::upgrade_pool_with`], from the pool as just read (its eTag guards
    /// the PUT).
    pub async fn upgrade_pool_from(
        &self,
        c: &ClusterId,
        pool: &str,
        mut ap: AgentPool,
        version: &str,
        o: &PoolOverrides,
    ) -> Result<Submitted, ArmError> {
        if ap.properties.current_orchestrator_version.as_deref() == Some(version) {
            return Ok(Submitted::NothingToDo);
        }
        let etag = ap.properties.e_tag.clone();
        ap.properties.orchestrator_version = Some(version.to_string());
        if o.max_surge.is_some() || o.drain_timeout_minutes.is_some() {
            let u = ap.properties.upgrade_settings.get_or_insert_with(Default::default);
            if let Some(s) = &o.max_surge {
                u.max_surge = Some(s.clone());
            }
            if let Some(d) = o.drain_timeout_minutes {
                u.drain_timeout_in_minutes = Some(d);
            }
        }
        self.put_pool(c, pool, &ap, etag, version).await
    }

    /// Rolls a pool back to an entry of its `recentlyUsedVersions` (AKS: setting
    /// `nodeImageVersion` to one of them "triggers an agentPool rollback"), from the pool
    /// as just read (its eTag guards the PUT). Both the version and the image are sent,
    /// as the entry gives them.
    pub async fn rollback_pool_from(
        &self,
        c: &ClusterId,
        pool: &str,
        mut ap: AgentPool,
        version: &str,
        image: &str,
    ) -> Result<Submitted, ArmError> {
        let p = &ap.properties;
        if p.current_orchestrator_version.as_deref() == Some(version) && p.node_image_version.as_deref() == Some(image)
        {
            return Ok(Submitted::NothingToDo);
        }
        let etag = ap.properties.e_tag.clone();
        ap.properties.orchestrator_version = Some(version.to_string());
        ap.properties.node_image_version = Some(image.to_string());
        self.put_pool(c, pool, &ap, etag, version).await
    }

    /// PUTs a pool's whole document, guarded by the eTag it was read with; after an
    /// unknown outcome, the PUT took when the pool's `orchestratorVersion` is `version`
    /// under a new eTag.
    async fn put_pool(
        &self,
        c: &ClusterId,
        pool: &str,
        ap: &AgentPool,
        etag: Option<String>,
        version: &str,
    ) -> Result<Submitted, ArmError> {
        let body = serde_json::to_value(ap).map_err(|e| ArmError::Decode {
            method: "PUT".into(),
            path: c.arm_path(),
            message: e.to_string(),
        })?;
        let url = self.http.url(&format!("{}/agentPools/{pool}", c.arm_path()));
        let headers: Vec<(&str, &str)> = etag.as_deref().map(|e| vec![("If-Match", e)]).unwrap_or_default();
        self.write(Method::PUT, &url, Some(&body), &headers, || async {
            let now = self.get_pool(c, pool).await?;
            let took = now.properties.orchestrator_version.as_deref() == Some(version) && now.properties.e_tag != etag;
            Ok(if took { Verdict::Took } else { Verdict::DidNotTake })
        })
        .await
    }

    /// Upgrades a pool's nodes to the latest node image of its region.
    pub async fn upgrade_node_image(&self, c: &ClusterId, pool: &str) -> Result<Submitted, ArmError> {
        let url = self
            .http
            .url(&format!("{}/agentPools/{pool}/upgradeNodeImageVersion", c.arm_path()));
        let out = self
            .write(Method::POST, &url, None, &[], || async {
                let now = self.get_pool(c, pool).await?;
                let took = now.properties.provisioning_state.as_deref() == Some("UpgradingNodeImageVersion");
                Ok(if took { Verdict::Took } else { Verdict::DidNotTake })
            })
            .await?;
        Ok(out)
    }

    /// Aborts the operation running on a cluster (or one pool).
    pub async fn abort(&self, c: &ClusterId, pool: Option<&str>) -> Result<Submitted, ArmError> {
        let path = match pool {
            Some(p) => format!("{}/agentPools/{p}/abort", c.arm_path()),
            None => format!("{}/abort", c.arm_path()),
        };
        let url = self.http.url(&path);
        let raw = self.http.send(Method::POST, &url, None, &[]).await?;
        match raw.status {
            204 => Ok(Submitted::NothingToDo),
            200..=299 => Ok(submitted(&raw)),
            _ => Err(ArmHttp::error_for(&Method::POST, &url, &raw)),
        }
    }
}

fn submitted(raw: &RawResponse) -> Submitted {
    match OperationRef::from_headers(raw) {
        Some(op) => Submitted::Started(op),
        None if raw.status == 200 && raw.body.is_empty() => Submitted::NothingToDo,
        None => Submitted::InFlight,
    }
}
