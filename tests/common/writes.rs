//! The duplicate rule, judged on the simulator's request log (`/_sim/requests`, the
//! world's `writes`): every mutating ARM request that passed authentication, whatever
//! it was answered. A request belongs to a *step*: the cluster and what it changes (the
//! control plane to a version, a pool to a version, a pool's node image); among the
//! requests the simulator *processed* as a start or a conflict (2xx, or 409), each step
//! has at most one. Why that is the rule: `tests/crash_restart.rs`'s module docs.

use serde_json::Value;
use std::collections::BTreeMap;

/// The requests that change something: the log less ARM's `list*` actions (POSTs that
/// read: `listClusterUserCredential` for the watches).
pub fn mutating(log: Vec<Value>) -> Vec<Value> {
    log.into_iter()
        .filter(|w| {
            let path = w["path"].as_str().unwrap_or_default();
            !path.rsplit('/').next().unwrap_or_default().starts_with("list")
        })
        .collect()
}

/// The step a mutating request belongs to (see the module docs), or what else it is.
pub fn step_of(w: &Value) -> String {
    let path = w["path"].as_str().unwrap_or_default().to_ascii_lowercase();
    let segs: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    // subscriptions/S/resourcegroups/RG/providers/microsoft.containerservice/managedclusters/NAME/...
    let method = w["method"].as_str().unwrap_or_default();
    if segs.len() >= 8 && segs[6] == "managedclusters" {
        let cluster = format!("{}/{}/{}", segs[1], segs[3], segs[7]);
        let props = &w["body"]["properties"];
        match (method, &segs[8..]) {
            ("PUT", []) => return format!("{cluster} control plane -> {}", props["kubernetesVersion"]),
            ("PUT", ["agentpools", pool]) => {
                return format!("{cluster} pool {pool} -> {}", props["orchestratorVersion"]);
            }
            ("POST", ["agentpools", pool, "upgradenodeimageversion"]) => {
                return format!("{cluster} pool {pool} -> latest node image");
            }
            _ => {}
        }
    }
    format!("other: {method} {path}")
}

/// Steps with more than one processed start (2xx or 409), and other writes: the
/// duplicates the module docs define.
pub fn duplicates(writes: &[Value]) -> Vec<String> {
    let mut by_step: BTreeMap<String, Vec<&Value>> = BTreeMap::new();
    for w in writes {
        let status = w["status"].as_u64().unwrap_or(0);
        if (200..300).contains(&status) || status == 409 {
            by_step.entry(step_of(w)).or_default().push(w);
        }
    }
    by_step
        .into_iter()
        .filter(|(k, v)| v.len() > 1 || k.starts_with("other"))
        .map(|(k, v)| {
            let calls: Vec<String> = v.iter().map(|w| format!("{} at {}", w["status"], w["at"])).collect();
            format!("{k}: {}", calls.join(", "))
        })
        .collect()
}
