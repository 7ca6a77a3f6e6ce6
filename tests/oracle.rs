//! The simulator as an independent oracle: ringmaster's own ARM client sends what a
//! planner that broke one of AKS's version rules would send, and the simulator, whose
//! rules are written from AKS's documentation and share no code with ringmaster's
//! planner, refuses each with AKS's status and error code and leaves the resource as it
//! was. And what is written through the API (a maintenance window) is what ringmaster's
//! discovery and plan then honour.

mod common;

use common::*;
use ringmaster::arm::{self, AksClient, ArmError, ClusterId, Submitted};
use ringmaster::clock::Clock;
use ringmaster::identity::AzureConfig;
use ringmaster::sim::Simulator;
use ringmaster::sim::fleet;
use ringmaster::sim::shared::ManualSimClock;
use serde_json::json;
use std::sync::Arc;

const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";

fn dev() -> ClusterId {
    ClusterId::new(SUB, "rg-dev-weu", "aks-dev-weu-01")
}

fn connect(sim: &Simulator) -> AksClient {
    ringmaster::identity::install_crypto_provider();
    let clock: Arc<dyn Clock> = Arc::new(ManualSimClock(sim.shared().clone()));
    arm::connect(&AzureConfig::for_simulator(&sim.info), clock).expect("client")
}

/// The demo fleet with the dev cluster's control plane on `cp` and its pool `user1` on
/// `user1` (the demo's catalogue has 1.31 to 1.35).
fn fleet_with_dev(cp: &str, user1: &str) -> fleet::Fleet {
    let text = std::fs::read_to_string(demo_fleet_path()).unwrap().replacen(
        "    kubernetes_version: 1.32.7\n",
        &format!("    kubernetes_version: {cp}\n"),
        1,
    );
    let mut fleet = fleet::parse("demo", &text).unwrap();
    assert_eq!(fleet.clusters[0].name, "aks-dev-weu-01");
    assert_eq!(fleet.clusters[0].pools[1].name, "user1");
    fleet.clusters[0].pools[1].version = user1.parse().unwrap();
    fleet
}

/// What a refused write must look like: AKS's 400 and code, nothing submitted.
fn assert_refused(r: Result<Submitted, ArmError>, code: &str) -> String {
    match r {
        Err(e) => {
            assert_eq!(e.status(), Some(400), "{e}");
            assert_eq!(e.code(), Some(code), "{e}");
            e.to_string()
        }
        Ok(s) => panic!("the simulator accepted what AKS refuses ({code}): {s:?}"),
    }
}

/// The cluster and its pools as ARM shows them, minus nothing: a refused write must
/// leave every byte of it (versions, eTags, provisioning states) as it was.
async fn resource(arm: &Arm, path: &str) -> serde_json::Value {
    let r = arm.get(path).await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "{:?}", r.body);
    r.body
}

#[tokio::test]
async fn a_control_plane_upgrade_that_skips_a_minor_is_refused() {
    let sim = start(fleet_with_dev("1.32.7", "1.32.7"), 1).await;
    let c = connect(&sim);
    let arm = Arm::new(&sim).await;
    let path = dev().arm_path();
    let before = resource(&arm, &path).await;
    let e = assert_refused(c.upgrade_control_plane(&dev(), "1.34.1").await, "OperationNotAllowed");
    assert!(e.contains("1.32.7 to 1.34.1 is not allowed"), "{e}");
    // AKS names what it would allow instead.
    assert!(e.contains("Available upgrades: [1.33.2 1.33.3]"), "{e}");
    assert_eq!(resource(&arm, &path).await, before);
    // A downgrade is refused the same way.
    assert_refused(c.upgrade_control_plane(&dev(), "1.32.6").await, "OperationNotAllowed");
    assert_eq!(resource(&arm, &path).await, before);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_pool_upgrade_ahead_of_the_control_plane_is_refused() {
    let sim = start(fleet_with_dev("1.33.2", "1.33.2"), 1).await;
    let c = connect(&sim);
    let arm = Arm::new(&sim).await;
    let cluster = dev().arm_path();
    let pool = format!("{cluster}/agentPools/user1");
    let (before_cluster, before_pool) = (resource(&arm, &cluster).await, resource(&arm, &pool).await);
    // A newer minor, and a newer patch of the same minor: both are ahead.
    for v in ["1.34.0", "1.33.3"] {
        let e = assert_refused(
            c.upgrade_pool(&dev(), "user1", v).await,
            "NodePoolMcVersionIncompatible",
        );
        assert!(e.contains("https://aka.ms/version-skew-policy"), "{e}");
    }
    assert_eq!(resource(&arm, &pool).await, before_pool);
    assert_eq!(resource(&arm, &cluster).await, before_cluster);
    // A pool downgrade has its own code.
    assert_refused(
        c.upgrade_pool(&dev(), "user1", "1.32.7").await,
        "AgentPoolUpgradeVersionNotAllowed",
    );
    assert_eq!(resource(&arm, &pool).await, before_pool);
    sim.shutdown().await;
}

#[tokio::test]
async fn a_control_plane_upgrade_that_leaves_a_pool_too_far_behind_is_refused() {
    // Three minors behind is the most AKS allows from 1.28 on; 1.35 would make it four.
    let sim = start(fleet_with_dev("1.34.1", "1.31.11"), 1).await;
    let c = connect(&sim);
    let arm = Arm::new(&sim).await;
    let cluster = dev().arm_path();
    let before = resource(&arm, &cluster).await;
    let e = assert_refused(
        c.upgrade_control_plane(&dev(), "1.35.0").await,
        "NodePoolMcVersionIncompatible",
    );
    assert!(e.contains("user1"), "{e}");
    assert_eq!(resource(&arm, &cluster).await, before);
    // The way out AKS allows: the pool straight to its control plane's version.
    let r = c.upgrade_pool(&dev(), "user1", "1.34.1").await;
    assert!(matches!(r, Ok(Submitted::Started(_))), "{r:?}");
    sim.shutdown().await;
}

/// A maintenance window written through ARM (PUT) is what ringmaster's discovery reads
/// and its plan waits for; deleting it (DELETE) lifts the wait.
#[tokio::test]
async fn a_maintenance_window_written_through_the_api_governs_the_plan() {
    let fleet = fleet_with_dev("1.32.7", "1.32.7");
    let now = fleet.start_time.expect("the demo fleet has a start time");
    let sim = start(fleet, 1).await;
    let arm = Arm::new(&sim).await;
    let path = format!(
        "{}/maintenanceConfigurations/aksManagedAutoUpgradeSchedule",
        dev().arm_path()
    );
    // A window that opens on the Sunday after the simulation's start, 22:00 UTC, for 6 h.
    let sunday = {
        use chrono::Datelike;
        let d = now.date_naive();
        d + chrono::Days::new(u64::from(7 - d.weekday().num_days_from_sunday()))
    };
    let window = json!({ "properties": { "maintenanceWindow": {
        "schedule": { "weekly": { "intervalWeeks": 1, "dayOfWeek": "Sunday" } },
        "durationHours": 6, "utcOffset": "+00:00", "startTime": "22:00" } } });
    let r = arm.put(&path, &window).await;
    assert_eq!(r.status, reqwest::StatusCode::CREATED, "{:?}", r.body);
    assert_eq!(r.body["name"], "aksManagedAutoUpgradeSchedule");
    let r = arm.put(&path, &window).await;
    assert_eq!(r.status, reqwest::StatusCode::OK, "a second PUT replaces it");
    // ARM's shape is checked: a string where an integer belongs is refused.
    let mut bad = window.clone();
    bad["properties"]["maintenanceWindow"]["durationHours"] = json!("six");
    assert_eq!(arm.put(&path, &bad).await.status, reqwest::StatusCode::BAD_REQUEST);

    let policy_text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/default.yaml")).unwrap();
    let policy = ringmaster::policy::compile("default.yaml", &policy_text).unwrap();
    let c = connect(&sim);
    let first_dev_step = |d: &ringmaster::discovery::Discovery| {
        let plan = ringmaster::plan::plan(&d.snapshot, &policy, now);
        plan.steps()
            .find(|(c, _)| c.id == dev())
            .map(|(_, s)| s.clone())
            .expect("the dev cluster has steps")
    };
    let mut d = ringmaster::discovery::discover(&c, &[SUB.to_string()], now)
        .await
        .unwrap();
    ringmaster::discovery::fetch_maintenance(&c, &mut d).await;
    assert!(d.problems.is_empty(), "{:?}", d.problems);
    let step = first_dev_step(&d);
    let opens = sunday.and_hms_opt(22, 0, 0).unwrap().and_utc();
    assert_eq!(step.earliest_start, opens, "{}", step.reason);
    assert_eq!(step.window_end, Some(opens + chrono::Duration::hours(6)));
    assert!(step.reason.contains("aksManagedAutoUpgradeSchedule"), "{}", step.reason);

    let r = arm.call(reqwest::Method::DELETE, &path, None, &[]).await;
    assert_eq!(r.status, reqwest::StatusCode::OK);
    let r = arm.call(reqwest::Method::DELETE, &path, None, &[]).await;
    assert_eq!(r.status, reqwest::StatusCode::NO_CONTENT, "already gone");
    let mut d = ringmaster::discovery::discover(&c, &[SUB.to_string()], now)
        .await
        .unwrap();
    ringmaster::discovery::fetch_maintenance(&c, &mut d).await;
    let step = first_dev_step(&d);
    assert!(step.earliest_start < opens, "{} {}", step.earliest_start, step.reason);
    sim.shutdown().await;
}

/// ringmaster's rules (`domain::rules`, what the planner and `ringmaster upgrades` use)
/// and the oracle's (`sim::rules`, written separately from AKS's docs) give the same
/// answer, AKS error code included, for every upgrade on a grid of versions around the
/// 1.28 change of skew, and offer the same upgrades. Before issue 11 they shared one
/// table; written apart, they disagreed on two points that the docs settled in the
/// oracle's favour: the skew is three minors from 1.28 (it said two), and a pool upgrade
/// may cross several minors (it said one at a time, from no source).
#[test]
fn the_planners_rules_agree_with_the_oracles() {
    use ringmaster::domain::rules as planner;
    use ringmaster::sim::rules as oracle;
    let texts: Vec<String> = (25..=36)
        .flat_map(|m| [0, 4].map(|p| format!("1.{m}.{p}")))
        .chain(["2.0.0".to_string()])
        .collect();
    let ours = |s: &str| s.parse::<ringmaster::domain::KubeVersion>().unwrap();
    let its = |s: &str| s.parse::<ringmaster::sim::version::KubeVersion>().unwrap();
    let mut checked = 0;
    for cp in &texts {
        for from in &texts {
            for to in &texts {
                let p = planner::check_pool_upgrade(ours(from), ours(to), ours(cp)).err();
                let o = oracle::check_pool_upgrade(its(from), its(to), its(cp)).err();
                assert_eq!(
                    p.as_ref().map(|e| e.aks_code()),
                    o.as_ref().map(|r| r.code),
                    "pool {from} -> {to} under {cp}: planner {p:?}, oracle {o:?}"
                );
                // Control plane `from -> to` with one pool on `cp`.
                let p = planner::check_control_plane_upgrade(ours(from), ours(to), [("p", ours(cp))]).err();
                let o = oracle::check_control_plane_upgrade(its(from), its(to), [("p", its(cp))]).err();
                assert_eq!(
                    p.as_ref().map(|e| e.aks_code()),
                    o.as_ref().map(|r| r.code),
                    "control plane {from} -> {to} with a pool on {cp}: planner {p:?}, oracle {o:?}"
                );
                checked += 2;
            }
        }
    }
    assert!(checked > 20_000, "{checked}");
    // What the upgrade profiles offer.
    let patches_ours: Vec<_> = texts.iter().map(|t| (ours(t), t.ends_with(".4"))).collect();
    let patches_its: Vec<_> = texts.iter().map(|t| (its(t), t.ends_with(".4"))).collect();
    let text = |v: &[(String, bool)]| format!("{v:?}");
    for cp in &texts {
        let p: Vec<(String, bool)> = planner::control_plane_offers(ours(cp), &patches_ours)
            .iter()
            .map(|(v, pre)| (v.to_string(), *pre))
            .collect();
        let o: Vec<(String, bool)> = oracle::control_plane_offers(its(cp), &patches_its)
            .iter()
            .map(|(v, pre)| (v.to_string(), *pre))
            .collect();
        assert_eq!(text(&p), text(&o), "control plane offers from {cp}");
        for pool in &texts {
            let p: Vec<String> = planner::pool_offers(ours(pool), ours(cp), &patches_ours)
                .iter()
                .map(|(v, _)| v.to_string())
                .collect();
            let o: Vec<String> = oracle::pool_offers(its(pool), its(cp), &patches_its)
                .iter()
                .map(|(v, _)| v.to_string())
                .collect();
            assert_eq!(p, o, "pool offers for {pool} under {cp}");
        }
    }
}
