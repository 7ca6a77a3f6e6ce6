//! `GET /api/v1/fleet`: every cluster by ring, as `ringmaster upgrades` shows it (control
//! plane and pool versions, node images against the latest, support status and days
//! left, upgrades AKS offers), with the ring and wave the policy puts it in and, for the
//! running rollout's clusters, their preflight result.
//!
//! One discovery poll reads the whole fleet (a few ARM calls per cluster), so the
//! answer is kept for [`FRESH`] and shared by every page that asks meanwhile.

use super::ApiState;
use super::error::ApiError;
use crate::arm::AksClient;
use crate::domain::fleet::ClusterId;
use crate::upgrades::SupportCalendar;
use axum::Json;
use axum::extract::State;
use serde_json::{Value, json};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// How long one discovery answers for.
pub const FRESH: Duration = Duration::from_secs(60);

/// Where the policy comes from: `serve`'s file (re-read, as the next rollout would) or
/// the demo's text.
pub enum PolicyOrigin {
    File(PathBuf),
    Text { file: String, text: String },
}

/// What the fleet view needs to discover and plan.
pub struct FleetSource {
    pub client: Arc<AksClient>,
    pub policy: PolicyOrigin,
    /// When the policy names none (empty: every visible subscription).
    pub subscriptions: Vec<String>,
    pub calendar: SupportCalendar,
    cache: tokio::sync::Mutex<Option<(Instant, Arc<Value>)>>,
}

impl FleetSource {
    pub fn new(
        client: Arc<AksClient>,
        policy: PolicyOrigin,
        subscriptions: Vec<String>,
        calendar: SupportCalendar,
    ) -> Self {
        FleetSource {
            client,
            policy,
            subscriptions,
            calendar,
            cache: Default::default(),
        }
    }

    fn policy_text(&self) -> Result<(String, String), ApiError> {
        match &self.policy {
            PolicyOrigin::File(p) => std::fs::read_to_string(p)
                .map(|t| (p.display().to_string(), t))
                .map_err(|e| ApiError::unavailable("policy_unreadable", format!("reading {}: {e}", p.display()))),
            PolicyOrigin::Text { file, text } => Ok((file.clone(), text.clone())),
        }
    }

    /// Discovers and plans (the part that costs ARM calls).
    async fn build(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Value, ApiError> {
        let (file, text) = self.policy_text()?;
        let bad_policy = |e: crate::yaml::SourceErrors| ApiError::unavailable("policy_invalid", e.to_string());
        let policy = crate::policy::compile(&file, &text).map_err(bad_policy)?;
        let subs = if !policy.fleet.subscriptions.is_empty() {
            policy.fleet.subscriptions.clone()
        } else if !self.subscriptions.is_empty() {
            self.subscriptions.clone()
        } else {
            crate::discovery::list_subscriptions(&self.client)
                .await
                .map_err(|e| ApiError::unavailable("azure_unavailable", format!("listing subscriptions: {e}")))?
        };
        let d = crate::discovery::discover(&self.client, &subs, now)
            .await
            .map_err(|e| ApiError::unavailable("azure_unavailable", format!("discovering the fleet: {e:#}")))?;
        let report = crate::upgrades::build(&d, &self.calendar, now);
        let policy = crate::policy::compile_with_snapshot(&file, &text, Some(&d.snapshot)).map_err(bad_policy)?;
        let plan = crate::plan::plan(&d.snapshot, &policy, now);
        // Where the plan puts each cluster: (ring, wave or why not).
        let mut place: std::collections::HashMap<&crate::domain::fleet::ClusterId, (String, String)> =
            Default::default();
        for ring in &plan.rings {
            for w in &ring.waves {
                for c in &w.clusters {
                    place.insert(&c.id, (ring.name.clone(), format!("wave {}", w.name)));
                }
            }
            for id in &ring.up_to_date {
                place.insert(id, (ring.name.clone(), "up to date".into()));
            }
        }
        for s in &plan.skipped {
            place.insert(
                &s.id,
                (s.ring.clone().unwrap_or_default(), format!("skipped: {}", s.reason)),
            );
        }
        let mut rings: Vec<(String, Vec<Value>)> = plan.rings.iter().map(|r| (r.name.clone(), Vec::new())).collect();
        let mut outside = Vec::new();
        for c in &report.clusters {
            let (ring, placement) = place.get(&c.id).cloned().unwrap_or_default();
            let mut v = serde_json::to_value(c).unwrap_or(Value::Null);
            v["placement"] = placement.into();
            match rings.iter_mut().find(|(n, _)| *n == ring) {
                Some((_, list)) => list.push(v),
                None => outside.push(v),
            }
        }
        Ok(json!({
            "takenAt": report.taken_at,
            "policy": policy.name,
            "target": plan.target,
            "rings": rings.into_iter().map(|(name, clusters)| json!({ "name": name, "clusters": clusters })).collect::<Vec<_>>(),
            "outsideRings": outside,
            "problems": report.problems,
        }))
    }

    /// The cached view, or a new one when it is older than [`FRESH`].
    async fn view(&self, now: chrono::DateTime<chrono::Utc>) -> Result<Arc<Value>, ApiError> {
        let mut cache = self.cache.lock().await;
        if let Some((at, v)) = cache.as_ref()
            && at.elapsed() < FRESH
        {
            return Ok(v.clone());
        }
        let v = Arc::new(self.build(now).await?);
        *cache = Some((Instant::now(), v.clone()));
        Ok(v)
    }
}

pub(super) async fn fleet(State(state): State<ApiState>) -> Result<Json<Value>, ApiError> {
    let Some(source) = state.fleet.clone() else {
        return Err(ApiError::unavailable(
            "no_fleet_source",
            "this server was started without a connection to Azure",
        ));
    };
    let mut v = (*source.view(state.clock.now()).await?).clone();
    // The running rollout's preflight results, by cluster id (names repeat across
    // resource groups and subscriptions).
    for id in state.control.active() {
        let Some(r) = state.control.get(&id).ok().flatten() else {
            continue;
        };
        attach_preflight(
            &mut v,
            r.clusters()
                .filter_map(|(_, c)| c.preflight.as_ref().map(|p| (&c.id, p))),
        );
    }
    Ok(Json(v))
}

/// Puts each preflight result on the view's cluster with the same full id (subscription,
/// resource group, name): names repeat across resource groups and subscriptions, so a
/// cluster whose name matches another's result must not show it.
fn attach_preflight<'a>(
    view: &mut Value,
    results: impl Iterator<Item = (&'a ClusterId, &'a crate::engine::PreflightRecord)>,
) {
    let found: std::collections::HashMap<&ClusterId, &crate::engine::PreflightRecord> = results.collect();
    if let Some(rings) = view["rings"].as_array_mut() {
        for c in rings
            .iter_mut()
            .flat_map(|r| r["clusters"].as_array_mut().into_iter().flatten())
        {
            let id = serde_json::from_value::<ClusterId>(c["id"].clone()).ok();
            if let Some(p) = id.and_then(|id| found.get(&id).copied()) {
                c["preflight"] = json!({ "passed": p.passed, "at": p.at, "findings": p.findings });
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::PreflightRecord;

    /// Two clusters named alike in two resource groups (and a third in another
    /// subscription): only the one whose full id the rollout holds gets its result.
    #[test]
    fn a_preflight_result_goes_to_the_cluster_with_the_same_full_id_not_the_same_name() {
        let id = |sub: &str, rg: &str| ClusterId::new(sub, rg, "aks-web");
        let mine = id("sub-a", "rg-two");
        let mut view = json!({ "rings": [
            { "name": "prod", "clusters": [
                { "id": id("sub-a", "rg-one") },
                { "id": mine },
                { "id": id("sub-b", "rg-two") },
            ]},
        ]});
        let record = PreflightRecord {
            at: chrono::DateTime::UNIX_EPOCH,
            passed: false,
            findings: vec![],
        };
        attach_preflight(&mut view, [(&mine, &record)].into_iter());
        let has: Vec<bool> = view["rings"][0]["clusters"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| c.get("preflight").is_some())
            .collect();
        assert_eq!(has, [false, true, false], "{view:#}");
        assert_eq!(view["rings"][0]["clusters"][1]["preflight"]["passed"], false);
    }
}
