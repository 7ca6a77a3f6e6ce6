//! Node pool rollback (AKS api-version 2026-10-01): a pool goes back to an entry of its
//! upgrade profile's `recentlyUsedVersions` (AKS's article "Roll back node pool
//! versions": only those entries, kept 7 days after an upgrade and only while AKS still
//! supports the version; not while another operation runs; not with the Kubernetes
//! auto-upgrade channel on; never twice in a row).
//!
//! The engine rolls back a pool whose gate failed (a `PoolRollback` step, see
//! `engine::drive`); an operator asks with `ringmaster rollback CLUSTER [--pool]`
//! ([`start`]). Both pick AKS's entry with [`pick_entry`], and both refuse, with AKS's
//! reason, what AKS would refuse, before sending anything.

use crate::arm::models::{RecentlyUsedVersion, is_terminal_state};
use crate::arm::{AksClient, ArmError, Submitted};
use crate::domain::fleet::ClusterId;
use crate::engine::PoolVersions;
use serde::Serialize;

/// The entry of `listed` for `version` (and `image`, when known), newest first; without
/// a version, the newest entry (what `az aks nodepool rollback` picks: N-1).
pub fn pick_entry<'a>(
    listed: &'a [RecentlyUsedVersion],
    want: Option<(&str, Option<&str>)>,
) -> Option<&'a RecentlyUsedVersion> {
    listed
        .iter()
        .filter(|e| e.orchestrator_version.is_some() && e.node_image_version.is_some())
        .filter(|e| match want {
            None => true,
            Some((v, image)) => {
                e.orchestrator_version.as_deref() == Some(v)
                    && image.is_none_or(|i| e.node_image_version.as_deref() == Some(i))
            }
        })
        .max_by(|a, b| a.timestamp.cmp(&b.timestamp))
}

/// `recentlyUsedVersions` in words, for a refusal.
pub fn describe_listed(listed: &[RecentlyUsedVersion]) -> String {
    if listed.is_empty() {
        return "nothing".into();
    }
    listed
        .iter()
        .map(|e| {
            format!(
                "{} / {}",
                e.orchestrator_version.as_deref().unwrap_or("?"),
                e.node_image_version.as_deref().unwrap_or("?")
            )
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// Why a rollback was not sent.
#[derive(Debug, thiserror::Error)]
pub enum RollbackError {
    #[error("{0}")]
    NotFound(String),
    /// AKS would refuse it now (or there is nothing to go back to).
    #[error("{0}")]
    Refused(String),
    #[error(transparent)]
    Arm(#[from] ArmError),
}

/// A rollback AKS accepted.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Started {
    pub pool: String,
    pub from_version: String,
    pub from_image: String,
    pub to_version: String,
    pub to_image: String,
    /// Where AKS's operation can be followed (`None`: by the pool's provisioning state).
    #[serde(skip)]
    pub operation: Option<crate::arm::OperationRef>,
}

/// An operator's rollback of one pool of `id`: `pool`, or else the pool `recorded`
/// names first (the pools ringmaster upgraded last, newest first, with what each had),
/// or else the pool with the newest rollback entry. Goes back to what `recorded` says
/// the pool had when AKS still lists it, else to AKS's newest entry.
pub async fn start(
    arm: &AksClient,
    id: &ClusterId,
    pool: Option<&str>,
    recorded: &[(String, PoolVersions)],
) -> Result<Started, RollbackError> {
    let mc = arm.get_cluster(id).await?;
    let state = mc.properties.provisioning_state.as_deref().unwrap_or("Unknown");
    if !is_terminal_state(state) {
        return Err(RollbackError::Refused(format!(
            "an operation is running on {} (provisioningState {state}): AKS runs no rollback beside another operation",
            id.name
        )));
    }
    let channel = mc
        .properties
        .auto_upgrade_profile
        .as_ref()
        .and_then(|a| a.upgrade_channel.clone())
        .unwrap_or_default();
    if !(channel.is_empty() || channel.eq_ignore_ascii_case("none")) {
        return Err(RollbackError::Refused(format!(
            "{}'s Kubernetes auto-upgrade channel is `{channel}`: AKS requires it off before a rollback (az aks update --auto-upgrade-channel none)",
            id.name
        )));
    }
    let names: Vec<String> = mc
        .properties
        .agent_pool_profiles
        .iter()
        .map(|p| p.name.clone())
        .collect();
    let pool = match pool {
        Some(p) => names
            .iter()
            .find(|n| n.eq_ignore_ascii_case(p))
            .cloned()
            .ok_or_else(|| {
                RollbackError::NotFound(format!("{} has no pool `{p}` (pools: {})", id.name, names.join(", ")))
            })?,
        None => match recorded.iter().find(|(p, _)| names.contains(p)) {
            Some((p, _)) => p.clone(),
            None => newest_rollback_pool(arm, id, &names).await?,
        },
    };
    let ap = arm.get_pool(id, &pool).await?;
    let pool_state = ap.properties.provisioning_state.as_deref().unwrap_or("Unknown");
    if !is_terminal_state(pool_state) {
        return Err(RollbackError::Refused(format!(
            "an operation is running on pool {pool} of {} (provisioningState {pool_state}): AKS runs no rollback beside another operation",
            id.name
        )));
    }
    let profile = arm.pool_upgrade_profile(id, &pool).await?;
    let listed = &profile.properties.recently_used_versions;
    let had = recorded.iter().find(|(p, _)| *p == pool).map(|(_, v)| v);
    let want = had.map(|v| v.version.to_string());
    let entry = want
        .as_deref()
        .and_then(|v| pick_entry(listed, Some((v, had.and_then(|h| h.image.as_deref())))))
        .or_else(|| pick_entry(listed, None))
        .ok_or_else(|| {
            RollbackError::Refused(format!(
                "pool {pool} of {} has no rollback target: AKS's recentlyUsedVersions lists {} (it keeps a pool's previous version 7 days after an upgrade, only while AKS supports it, and not after a rollback)",
                id.name,
                describe_listed(listed)
            ))
        })?;
    let to_version = entry.orchestrator_version.clone().unwrap_or_default();
    let to_image = entry.node_image_version.clone().unwrap_or_default();
    let from_version = ap.properties.current_orchestrator_version.clone().unwrap_or_default();
    let from_image = ap.properties.node_image_version.clone().unwrap_or_default();
    let operation = match arm.rollback_pool_from(id, &pool, ap, &to_version, &to_image).await? {
        Submitted::Started(op) => Some(op),
        Submitted::InFlight => None,
        Submitted::NothingToDo => {
            return Err(RollbackError::Refused(format!(
                "pool {pool} already runs {to_version} / {to_image}"
            )));
        }
    };
    Ok(Started {
        pool,
        from_version,
        from_image,
        to_version,
        to_image,
        operation,
    })
}

/// The pool whose newest rollback entry is the newest of the cluster's.
async fn newest_rollback_pool(arm: &AksClient, id: &ClusterId, names: &[String]) -> Result<String, RollbackError> {
    let mut best: Option<(String, String)> = None;
    for p in names {
        let profile = arm.pool_upgrade_profile(id, p).await?;
        if let Some(e) = pick_entry(&profile.properties.recently_used_versions, None) {
            let at = e.timestamp.clone().unwrap_or_default();
            if best.as_ref().is_none_or(|(_, b)| at > *b) {
                best = Some((p.clone(), at));
            }
        }
    }
    best.map(|(p, _)| p).ok_or_else(|| {
        RollbackError::Refused(format!(
            "no pool of {} has a rollback target: AKS keeps a pool's previous version 7 days after an upgrade",
            id.name
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn e(v: &str, i: &str, at: &str) -> RecentlyUsedVersion {
        RecentlyUsedVersion {
            orchestrator_version: Some(v.into()),
            node_image_version: Some(i.into()),
            timestamp: Some(at.into()),
        }
    }

    #[test]
    fn the_entry_is_the_recorded_version_and_image_else_the_newest() {
        let listed = [
            e("1.32.7", "img-202610", "2026-11-30T08:00:00Z"),
            e("1.32.7", "img-202611", "2026-12-01T08:00:00Z"),
            e("1.31.9", "img-202611", "2026-12-02T08:00:00Z"),
        ];
        let pick = |w| pick_entry(&listed, w).map(|e| (e.orchestrator_version.clone(), e.node_image_version.clone()));
        let both = |v: &str, i: &str| Some((Some(v.to_string()), Some(i.to_string())));
        assert_eq!(pick(Some(("1.32.7", Some("img-202610")))), both("1.32.7", "img-202610"));
        assert_eq!(pick(Some(("1.32.7", None))), both("1.32.7", "img-202611"));
        assert_eq!(pick(None), both("1.31.9", "img-202611"));
        assert_eq!(pick(Some(("1.30.1", None))), None);
        assert_eq!(pick(Some(("1.32.7", Some("img-999")))), None);
    }
}
