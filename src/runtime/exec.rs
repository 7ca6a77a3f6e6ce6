//! What each engine command does against AKS and the clusters. Every task reports back
//! with an [`Input`]; none of them decides anything the engine should decide.

use super::{Shared, send};
use crate::arm::models::{AgentPool, ManagedCluster};
use crate::arm::{ArmError, Submitted};
use crate::domain::fleet::ClusterId;
use crate::engine::{ClusterRef, Command, Input, StepRef};
use crate::gate::{self, Baseline, NodeExpectation};
use crate::kube::ClusterWatch;
use crate::plan::StepKind;
use std::sync::Arc;
use std::time::Duration;
use tracing::{debug, warn};

/// How often to look at a resource whose operation URL was lost.
const RESOURCE_POLL: Duration = Duration::from_secs(15);

pub(super) async fn run(sh: Arc<Shared>, cmd: Command) {
    match cmd {
        Command::StartWatch { cluster } => {
            let _ = ensure_watch(&sh, &cluster).await;
        }
        Command::Claim { cluster, id } => super::claims::claim(&sh, cluster, &id).await,
        Command::TakeBaseline { cluster, id } => baseline(&sh, cluster, &id).await,
        Command::RunPreflight {
            cluster,
            plan,
            wave,
            others,
        } => super::preflight::run(&sh, cluster, &plan, &wave, &others).await,
        Command::StartStep { step, cluster, kind } => start(&sh, step, &cluster, &kind, false).await,
        Command::Reconcile { step, cluster, kind } => start(&sh, step, &cluster, &kind, true).await,
        Command::FollowOperation {
            step,
            cluster,
            kind,
            op,
        } => follow(&sh, step, &cluster, &kind, op).await,
        Command::AbortOperation { cluster, kind, .. } => {
            let pool = kind.pool();
            if let Err(e) = sh.arm.abort(&cluster, pool).await {
                warn!(cluster = %cluster.name, error = %e, "abort failed");
            }
        }
        _ => {}
    }
}

/// The cluster's watches, started on first use.
pub(super) async fn ensure_watch(sh: &Shared, id: &ClusterId) -> Result<Arc<ClusterWatch>, String> {
    if let Some(w) = sh.watches.lock().unwrap_or_else(|e| e.into_inner()).get(id) {
        return Ok(w.clone());
    }
    let client = crate::kube::client_for(&sh.arm, sh.tokens.clone(), id)
        .await
        .map_err(|e| e.to_string())?;
    let mut map = sh.watches.lock().unwrap_or_else(|e| e.into_inner());
    Ok(map
        .entry(id.clone())
        .or_insert_with(|| Arc::new(ClusterWatch::start(client)))
        .clone())
}

/// Waits (bounded, wall clock: this is I/O) until the watches listed once.
async fn synced(w: &ClusterWatch) -> bool {
    let mut rx = w.subscribe();
    let wait = async {
        loop {
            if w.snapshot(chrono::Utc::now()).synced {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    };
    tokio::time::timeout(Duration::from_secs(30), wait).await.is_ok()
}

/// The node pools' versions and images, as ARM reports them now.
async fn pool_versions(
    sh: &Shared,
    id: &ClusterId,
) -> Result<std::collections::BTreeMap<String, crate::engine::PoolVersions>, String> {
    let pools = sh.arm.list_pools(id).await.map_err(|e| e.to_string())?;
    pools
        .into_iter()
        .map(|p| {
            let name = p.name.clone().unwrap_or_default();
            let v = p
                .properties
                .current_orchestrator_version
                .as_deref()
                .and_then(|v| v.parse().ok())
                .ok_or_else(|| format!("pool {name} reports no Kubernetes version"))?;
            let versions = crate::engine::PoolVersions {
                version: v,
                image: p.properties.node_image_version.clone(),
            };
            Ok((name, versions))
        })
        .collect()
}

async fn baseline(sh: &Shared, cluster: ClusterRef, id: &ClusterId) {
    let pools = match pool_versions(sh, id).await {
        Ok(p) => p,
        Err(reason) => {
            return send(
                sh,
                Input::BaselineFailed {
                    cluster,
                    reason: format!("cannot read the node pools' versions: {reason}"),
                },
            );
        }
    };
    let input = match ensure_watch(sh, id).await {
        Err(e) => Input::BaselineFailed { cluster, reason: e },
        Ok(w) => {
            synced(&w).await;
            let snap = w.snapshot(sh.clock.now());
            let b = Baseline::from_snapshot(&snap, &sh.policy.gates);
            match b.unreadable() {
                Some(reason) => Input::BaselineFailed {
                    cluster,
                    reason: reason.to_string(),
                },
                None => Input::BaselineTaken {
                    cluster,
                    baseline: b,
                    pools,
                },
            }
        }
    };
    send(sh, input);
}

/// How long AKS's deprecated-API override lasts: long enough for the PUT and its
/// retries, short enough not to outlive this step (AKS allows about 3 days).
const FORCE_UPGRADE_FOR: chrono::Duration = chrono::Duration::hours(1);

/// Sets AKS's deprecated-API override (`upgradeSettings.overrideSettings`) on a
/// control-plane upgrade: the policy's `preflight.allow_force_upgrade` says ringmaster
/// may. Preflight reported the APIs it bypasses (a `warns` finding).
fn force_upgrade(mc: &mut ManagedCluster, now: chrono::DateTime<chrono::Utc>) {
    let until = (now + FORCE_UPGRADE_FOR).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let settings = mc
        .properties
        .extra
        .entry("upgradeSettings")
        .or_insert_with(|| serde_json::json!({}));
    if let Some(obj) = settings.as_object_mut() {
        obj.insert(
            "overrideSettings".into(),
            serde_json::json!({ "forceUpgrade": true, "until": until }),
        );
    }
}

/// The resource a step changes, as just read.
enum Resource {
    /// Boxed, both: the documents are large beside the enum's other uses.
    Cluster(Box<ManagedCluster>),
    Pool(Box<AgentPool>),
}

async fn read(sh: &Shared, id: &ClusterId, kind: &StepKind) -> Result<Resource, ArmError> {
    Ok(match kind.pool() {
        None => Resource::Cluster(Box::new(sh.arm.get_cluster(id).await?)),
        Some(pool) => Resource::Pool(Box::new(sh.arm.get_pool(id, pool).await?)),
    })
}

impl Resource {
    /// Whether it already is where the step leads, and whether an operation runs.
    fn at_target(&self, kind: &StepKind) -> (bool, bool) {
        let (current, state) = match (self, kind) {
            (Resource::Cluster(mc), _) => (
                &mc.properties.current_kubernetes_version,
                &mc.properties.provisioning_state,
            ),
            (Resource::Pool(ap), StepKind::NodeImage { .. }) => {
                (&ap.properties.node_image_version, &ap.properties.provisioning_state)
            }
            (Resource::Pool(ap), _) => (
                &ap.properties.current_orchestrator_version,
                &ap.properties.provisioning_state,
            ),
        };
        let target = match kind {
            StepKind::ControlPlane { to, .. }
            | StepKind::PoolVersion { to, .. }
            | StepKind::PoolRollback { to, .. } => to.to_string(),
            StepKind::NodeImage { to, .. } => to.clone(),
        };
        let running = state
            .as_deref()
            .is_some_and(|s| !crate::arm::models::is_terminal_state(s));
        // A rollback is back when its node image is too (when the state recorded it).
        let image_back = match (self, kind) {
            (Resource::Pool(ap), StepKind::PoolRollback { image: Some(i), .. }) => {
                ap.properties.node_image_version.as_ref() == Some(i)
            }
            _ => true,
        };
        (current.as_deref() == Some(target.as_str()) && image_back, running)
    }

    /// Whether the last operation on it ended without success (`Failed`, `Canceled`).
    fn last_operation_failed(&self) -> bool {
        let state = match self {
            Resource::Cluster(mc) => &mc.properties.provisioning_state,
            Resource::Pool(ap) => &ap.properties.provisioning_state,
        };
        matches!(state.as_deref(), Some("Failed" | "Canceled"))
    }
}

async fn at_target(sh: &Shared, id: &ClusterId, kind: &StepKind) -> Result<(bool, bool), ArmError> {
    Ok(read(sh, id, kind).await?.at_target(kind))
}

fn refused(step: StepRef, e: &ArmError) -> Input {
    // 409 (another operation), 429 and 5xx pass; 400 (rules, validation) do not.
    let retryable = match e {
        ArmError::Service { status, .. } => *status == 409 || *status == 429 || *status >= 500,
        ArmError::Transport { .. } | ArmError::Exhausted { .. } | ArmError::Auth(_) => true,
        ArmError::Decode { .. } | ArmError::Operation { .. } => false,
    };
    Input::StepRefused {
        step,
        reason: e.to_string(),
        retryable,
    }
}

/// Sends a step's call (or, on `reconcile`, first reads whether an earlier attempt took).
async fn start(sh: &Shared, step: StepRef, id: &ClusterId, kind: &StepKind, reconcile: bool) {
    // A control-plane step also re-checks the plan against the cluster's upgrade
    // profile: both reads at once, so the call follows the gate's pass one round trip
    // sooner.
    let profile = async {
        match kind {
            StepKind::ControlPlane { .. } => Some(sh.arm.cluster_upgrade_profile(id).await),
            _ => None,
        }
    };
    let (resource, profile) = tokio::join!(read(sh, id, kind), profile);
    let resource = match resource {
        Ok(r) => r,
        Err(e) => return send(sh, refused(step, &e)),
    };
    let input = match resource.at_target(kind) {
        (true, false) => Input::StepAlreadyDone { step },
        // Something runs on the cluster. After a restart it is ours; otherwise wait.
        (_, true) if reconcile => Input::StepAccepted { step, op: None },
        // After a restart, a resource whose last operation failed may be this step's
        // call, sent before the kill and failed since: sending it again would repeat a
        // failed operation (the policy allows no retry of one). Fail closed: the step
        // fails as its operation did.
        (false, false) if reconcile && resource.last_operation_failed() => Input::OperationFinished {
            step,
            result: Err(
                "the resource's last operation failed (found on reconciling after a restart; not sent again)".into(),
            ),
        },
        (_, true) => Input::StepRefused {
            step,
            reason: "another operation is in progress on the cluster".into(),
            retryable: true,
        },
        (_, false) => {
            let submitted = match (kind, resource, profile) {
                (StepKind::ControlPlane { from, to }, Resource::Cluster(mut mc), Some(profile)) => match profile {
                    Ok(p)
                        if !p
                            .properties
                            .control_plane_profile
                            .upgrades
                            .iter()
                            .any(|u| u.kubernetes_version == to.to_string()) =>
                    {
                        send(
                            sh,
                            Input::StepRefused {
                                step,
                                reason: format!("AKS does not offer {to} to this cluster (upgrade profile)"),
                                retryable: false,
                            },
                        );
                        return;
                    }
                    Err(e) => {
                        send(sh, refused(step, &e));
                        return;
                    }
                    Ok(_) => {
                        if sh.policy.preflight.allow_force_upgrade && to.minor_version() > from.minor_version() {
                            force_upgrade(&mut mc, sh.clock.now());
                        }
                        sh.arm.upgrade_control_plane_from(id, *mc, &to.to_string()).await
                    }
                },
                (StepKind::PoolVersion { pool, to, .. }, Resource::Pool(ap), _) => {
                    let o = crate::arm::PoolOverrides {
                        max_surge: sh.policy.steps.max_surge.clone(),
                        drain_timeout_minutes: sh.policy.steps.drain_timeout_minutes,
                    };
                    sh.arm.upgrade_pool_from(id, pool, *ap, &to.to_string(), &o).await
                }
                (StepKind::NodeImage { pool, .. }, _, _) => sh.arm.upgrade_node_image(id, pool).await,
                (StepKind::PoolRollback { pool, to, image, .. }, Resource::Pool(ap), _) => {
                    match rollback_entry(sh, step, id, pool, &to.to_string(), image.as_deref()).await {
                        Ok(entry) => sh.arm.rollback_pool_from(id, pool, *ap, &to.to_string(), &entry).await,
                        Err(input) => return send(sh, input),
                    }
                }
                // `read` returns the resource the step's kind names: never reached.
                _ => {
                    return send(
                        sh,
                        Input::StepRefused {
                            step,
                            reason: "internal error: the step read the wrong resource".into(),
                            retryable: false,
                        },
                    );
                }
            };
            match submitted {
                Ok(Submitted::Started(op)) => {
                    record_operation(sh, id, step, &op).await;
                    Input::StepAccepted { step, op: Some(op) }
                }
                Ok(Submitted::InFlight) => Input::StepAccepted { step, op: None },
                Ok(Submitted::NothingToDo) => Input::StepAlreadyDone { step },
                Err(e) => refused(step, &e),
            }
        }
    };
    send(sh, input);
}

/// The node image of the pool's `recentlyUsedVersions` entry for `version` (and `image`,
/// when the state recorded it): AKS accepts only those. None there: AKS would refuse,
/// so nothing is sent and the step fails with what AKS lists.
async fn rollback_entry(
    sh: &Shared,
    step: StepRef,
    id: &ClusterId,
    pool: &str,
    version: &str,
    image: Option<&str>,
) -> Result<String, Input> {
    let profile = sh
        .arm
        .pool_upgrade_profile(id, pool)
        .await
        .map_err(|e| refused(step, &e))?;
    let listed = &profile.properties.recently_used_versions;
    let found = crate::rollback::pick_entry(listed, Some((version, image))).and_then(|e| e.node_image_version.clone());
    found.ok_or_else(|| {
        let wanted = image.map_or(version.to_string(), |i| format!("{version} (image {i})"));
        Input::StepRefused {
            step,
            reason: format!(
                "pool {pool} cannot be rolled back to {wanted}: AKS's recentlyUsedVersions lists {} (it keeps a pool's previous version 7 days, and only while AKS supports it)",
                crate::rollback::describe_listed(listed)
            ),
            retryable: false,
        }
    })
}

/// Records the operation URL beside the step's intent (on the store's thread: it commits).
async fn record_operation(sh: &Shared, id: &ClusterId, step: StepRef, op: &crate::arm::OperationRef) {
    let Some(store) = sh.store.clone() else { return };
    let intent = crate::store::Intent {
        rollout_id: sh.rollout_id.clone(),
        cluster: id.to_string(),
        step: step.step as u32 + 1000 * step.ring as u32,
        kind: "step".into(),
        recorded_at: sh.clock.now(),
    };
    let op = serde_json::to_string(op).unwrap_or_default();
    let saved = store
        .run(move |s| {
            let o = s.record_intent(&intent)?;
            s.record_operation(o.id(), &op)
        })
        .await;
    match saved {
        Ok(Ok(_)) => {}
        Ok(Err(e)) => warn!(error = %e, "recording the operation URL failed"),
        Err(e) => warn!(error = %e, "recording the operation URL did not finish"),
    }
}

async fn follow(sh: &Shared, step: StepRef, id: &ClusterId, kind: &StepKind, op: Option<crate::arm::OperationRef>) {
    let result = match op {
        Some(op) => sh
            .arm
            .http()
            .wait(&op, |_| {})
            .await
            .map(|_| ())
            .map_err(|e| e.to_string()),
        None => loop {
            // The operation URL was lost: follow the resource until its state is final.
            match at_target(sh, id, kind).await {
                Ok((true, false)) => break Ok(()),
                Ok((false, false)) => break Err("the operation ended without reaching the target".to_string()),
                Ok((_, true)) => sh.clock.sleep(RESOURCE_POLL).await,
                Err(e) => {
                    debug!(error = %e, "reading the resource failed; trying again");
                    sh.clock.sleep(RESOURCE_POLL).await;
                }
            }
        },
    };
    send(sh, Input::OperationFinished { step, result });
}

fn expectation(kind: &StepKind) -> NodeExpectation {
    match kind {
        StepKind::ControlPlane { .. } => NodeExpectation::default(),
        StepKind::PoolVersion { pool, to, .. } => NodeExpectation {
            pool: Some(pool.clone()),
            kubelet_version: Some(format!("v{to}")),
            node_image: None,
        },
        StepKind::NodeImage { pool, to, .. } => NodeExpectation {
            pool: Some(pool.clone()),
            kubelet_version: None,
            node_image: Some(to.clone()),
        },
        StepKind::PoolRollback { pool, to, image, .. } => NodeExpectation {
            pool: Some(pool.clone()),
            kubelet_version: Some(format!("v{to}")),
            node_image: image.clone(),
        },
    }
}

/// Evaluates the gate now and on every watch change, until the engine stops it.
pub(super) async fn gate(sh: Arc<Shared>, step: StepRef, id: ClusterId, kind: StepKind, baseline: Option<Baseline>) {
    let expect = expectation(&kind);
    let w = match ensure_watch(&sh, &id).await {
        Ok(w) => w,
        Err(e) => {
            send(
                &sh,
                Input::GateObserved {
                    step,
                    healthy: false,
                    reasons: vec![format!("cannot watch the cluster: {e}")],
                    at: sh.clock.now(),
                },
            );
            return;
        }
    };
    let mut changes = w.subscribe();
    let mut last: Option<(bool, Vec<String>)> = None;
    loop {
        let at = sh.clock.now();
        let snap = w.snapshot(at);
        let verdict = gate::evaluate(&snap, &sh.policy.gates, baseline.as_ref(), &expect);
        let now = match verdict {
            Ok(_) => (true, Vec::new()),
            Err(b) => (false, b.reasons.iter().map(|r| r.to_string()).collect()),
        };
        // Report changes of verdict; the engine times settle and timeout itself.
        if last.as_ref() != Some(&now) {
            send(
                &sh,
                Input::GateObserved {
                    step,
                    healthy: now.0,
                    reasons: now.1.clone(),
                    at,
                },
            );
            last = Some(now);
        }
        // Event-driven: wake on the next watch change (or now and then, for the probe).
        let _ = tokio::time::timeout(Duration::from_secs(5), changes.changed()).await;
    }
}
