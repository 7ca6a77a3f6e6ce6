//! AKS's upgrade protections as the ARM handlers apply them: the cluster state the rules
//! of `rules.rs` look at (PDBs, deprecated API calls, `overrideSettings`), gathered from
//! the world.

use super::arm::ArmReply;
use super::fleet::Pdb;
use super::version::{KubeVersion, MinorVersion};
use super::world::World;
use chrono::{DateTime, Utc};
use http::StatusCode;
use serde_json::Value;

/// `namespace/name` of every PDB of cluster `ci` with `maxUnavailable: 0`.
pub fn unsatisfiable_pdbs(w: &World, ci: usize) -> Vec<String> {
    w.clusters[ci]
        .kube
        .workloads
        .iter()
        .filter(|wl| wl.pdb == Some(Pdb::MaxUnavailable(0)))
        .map(|wl| format!("{}/{}", wl.namespace, wl.name))
        .collect()
}

/// `upgradeSettings.overrideSettings` of a request or of the cluster: (forceUpgrade,
/// until). A malformed one is AKS's 400 `InvalidParameter`.
fn override_settings(settings: Option<&Value>) -> Result<(bool, Option<DateTime<Utc>>), ArmReply> {
    let Some(o) = settings.and_then(|u| u.get("overrideSettings")) else {
        return Ok((false, None));
    };
    let force = match o.get("forceUpgrade") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(other) => {
            return Err(ArmReply::rp_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!("Parameter 'upgradeSettings.overrideSettings.forceUpgrade' must be a boolean, got {other}."),
            ));
        }
    };
    let until = match o.get("until") {
        None | Some(Value::Null) => None,
        Some(Value::String(t)) => match DateTime::parse_from_rfc3339(t) {
            Ok(t) => Some(t.with_timezone(&Utc)),
            Err(_) => {
                return Err(ArmReply::rp_error(
                    StatusCode::BAD_REQUEST,
                    "InvalidParameter",
                    format!(
                        "The value '{t}' of parameter 'upgradeSettings.overrideSettings.until' is not a valid date-time."
                    ),
                ));
            }
        },
        Some(other) => {
            return Err(ArmReply::rp_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!("Parameter 'upgradeSettings.overrideSettings.until' must be a date-time string, got {other}."),
            ));
        }
    };
    Ok((force, until))
}

/// Refuses a control-plane upgrade of cluster `ci` to `target` while its clients call
/// APIs that `target` removes, unless `settings` (the request's `upgradeSettings`, or
/// the cluster's own when the request has none) hold an active override.
pub fn deprecated_apis(w: &World, ci: usize, target: KubeVersion, settings: Option<&Value>) -> Result<(), ArmReply> {
    let c = &w.clusters[ci];
    let (force, until) = override_settings(settings)?;
    let now = w.now.to_datetime();
    if super::rules::override_active(force, until, now) {
        return Ok(());
    }
    let calls: Vec<(String, MinorVersion)> = c
        .conditions
        .deprecated_api_calls
        .iter()
        .map(|d| (d.api_name(), d.removed_release))
        .collect();
    // Usage is recorded hourly: the last sighting is shown an hour back.
    let seen = (now - chrono::Duration::hours(1))
        .format("%Y-%m-%d %H:%M:%S +0000 UTC")
        .to_string();
    super::rules::check_deprecated_apis(c.current_version, target, &calls, &seen)
        .map_err(|e| ArmReply::refusal(StatusCode::BAD_REQUEST, &e))
}
