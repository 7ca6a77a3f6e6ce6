//! The ETA's "late" threshold (docs/forecast.md): an unfinished cluster is late when it
//! is now forecast to finish more than 5 minutes after the forecast made at the start
//! said; 5 minutes exactly is not late. On the pure `forecast::eta` over the demo
//! rollout, with the start's forecast set around what the ETA forecasts now.

use super::support::engine_driver::demo;
use ringmaster::engine::ForecastRecord;
use std::collections::BTreeMap;
use std::sync::Arc;

#[test]
fn a_cluster_is_late_only_beyond_five_minutes_after_the_start_forecast() {
    let (mut r, s) = demo();
    let now = r.created_at;
    let record = |clusters: BTreeMap<String, chrono::DateTime<chrono::Utc>>| {
        Some(Arc::new(ForecastRecord {
            made_at: now,
            finish: None,
            approval_after_secs: 3600,
            rings: Default::default(),
            clusters,
        }))
    };
    // A start forecast that said "now" for every cluster: each is late, and the ETA
    // says when it is forecast to finish now.
    let ids: Vec<String> = r.clusters().map(|(_, c)| c.id.to_string()).collect();
    r.forecast = record(ids.iter().map(|id| (id.clone(), now)).collect());
    let eta = ringmaster::forecast::eta(&r, &s, now).expect("a running rollout has an ETA");
    let again: BTreeMap<String, chrono::DateTime<chrono::Utc>> = eta
        .late
        .iter()
        .filter_map(|l| Some((l.cluster.to_string(), l.now?)))
        .collect();
    assert!(again.len() >= 3, "{eta:#?}");
    let five = chrono::Duration::minutes(5);
    let second = chrono::Duration::seconds(1);
    // Three clusters: forecast at the start 5 min + 1 s, exactly 5 min, and 4 min 59 s
    // before what is forecast now.
    let picked: Vec<(&String, chrono::Duration)> = again.keys().zip([five + second, five, five - second]).collect();
    r.forecast = record(
        picked
            .iter()
            .map(|(id, by)| ((*id).clone(), again[*id] - *by))
            .collect(),
    );
    let eta = ringmaster::forecast::eta(&r, &s, now).unwrap();
    let late: Vec<String> = eta.late.iter().map(|l| l.cluster.to_string()).collect();
    assert_eq!(late, [picked[0].0.clone()], "only the one 5 min 1 s behind: {eta:#?}");
}
