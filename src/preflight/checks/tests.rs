//! The checks against hand-built facts: each rule fires where it must and stays quiet
//! where it must not (the other half of each test).

use super::*;
use crate::arm::models::{Usage, UsageName};
use crate::domain::fleet::{Catalogue, ClusterState, MinorRelease, OsType, PoolMode, PoolState, RegionCatalogue};
use crate::plan::Step;
use crate::preflight::facts::*;
use crate::preflight::{Check, Severity};
use chrono::TimeZone;

const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";

fn now() -> DateTime<Utc> {
    Utc.with_ymd_and_hms(2026, 12, 2, 8, 0, 0).unwrap()
}

fn v(s: &str) -> crate::domain::KubeVersion {
    s.parse().unwrap()
}

fn pool_state(name: &str, mode: PoolMode) -> PoolState {
    PoolState {
        name: name.into(),
        mode,
        os_type: OsType::Linux,
        os_sku: "Ubuntu".into(),
        version: v("1.32.7"),
        node_image: "AKSUbuntu-2204gen2containerd-202611.12.0".into(),
        provisioning_state: "Succeeded".into(),
    }
}

fn pool_facts(count: u32, size: &str) -> PoolFacts {
    PoolFacts {
        count,
        vm_size: Some(size.into()),
        max_surge: None,
        max_unavailable: None,
        max_pods: None,
        subnet_id: None,
    }
}

fn pod(name: &str, app: &str, node: &str, ready: bool) -> PodFacts {
    PodFacts {
        namespace: "shop".into(),
        name: name.into(),
        labels: [("app".to_string(), app.to_string())].into(),
        node: Some(node.into()),
        ready,
        finished: false,
    }
}

fn node(name: &str, pool: &str) -> NodeFacts {
    NodeFacts {
        name: name.into(),
        pool: Some(pool.into()),
        ready: true,
    }
}

/// A healthy two-pool cluster: `system` (node s0) and `user1` (nodes u0, u1), app `web`
/// with three pods on user1 and a harmless PDB.
fn cluster(name: &str, location: &str) -> ClusterFacts {
    let id = ClusterId::new(SUB, "rg", name);
    ClusterFacts {
        state: ClusterState {
            id,
            location: location.into(),
            tags: Default::default(),
            control_plane: v("1.32.7"),
            provisioning_state: "Succeeded".into(),
            auto_upgrade_channel: "none".into(),
            node_os_upgrade_channel: "None".into(),
            pools: vec![
                pool_state("system", PoolMode::System),
                pool_state("user1", PoolMode::User),
            ],
            maintenance: vec![],
        },
        power_state: "Running".into(),
        network_plugin: "kubenet".into(),
        network_plugin_mode: None,
        pools: [
            ("system".to_string(), pool_facts(2, "Standard_D2s_v5")),
            ("user1".to_string(), pool_facts(3, "Standard_D4s_v5")),
        ]
        .into(),
        kube: Ok(KubeFacts {
            pdbs: vec![pdb("web", None, Some(IntOrPercent::Int(1)), 1, 3, 2)],
            pods: vec![
                pod("web-1", "web", "u0", true),
                pod("web-2", "web", "u1", true),
                pod("web-3", "web", "u1", true),
            ],
            nodes: vec![node("s0", "system"), node("u0", "user1"), node("u1", "user1")],
            deprecated: Ok(vec![]),
        }),
    }
}

fn pdb(
    app: &str,
    min: Option<IntOrPercent>,
    max: Option<IntOrPercent>,
    allowed: i64,
    healthy: i64,
    desired: i64,
) -> PdbFacts {
    PdbFacts {
        namespace: "shop".into(),
        name: app.into(),
        selector: Some(LabelSelector {
            match_labels: [("app".to_string(), app.to_string())].into(),
            match_expressions: vec![],
        }),
        min_available: min,
        max_unavailable: max,
        disruptions_allowed: allowed,
        current_healthy: healthy,
        desired_healthy: desired,
        expected_pods: 3,
    }
}

fn step(kind: StepKind) -> Step {
    Step {
        kind,
        reason: String::new(),
        earliest_start: now(),
        window_end: None,
    }
}

/// Control plane 1.32.7 → 1.33.3, then both pools.
fn full_plan(c: &ClusterFacts) -> ClusterPlan {
    ClusterPlan {
        id: c.state.id.clone(),
        location: c.state.location.clone(),
        steps: vec![
            step(StepKind::ControlPlane {
                from: v("1.32.7"),
                to: v("1.33.3"),
            }),
            step(StepKind::PoolVersion {
                pool: "system".into(),
                from: v("1.32.7"),
                to: v("1.33.3"),
            }),
            step(StepKind::PoolVersion {
                pool: "user1".into(),
                from: v("1.32.7"),
                to: v("1.33.3"),
            }),
        ],
        notes: vec![],
    }
}

fn catalogue() -> Catalogue {
    let region = RegionCatalogue {
        minors: ["1.32", "1.33"]
            .iter()
            .map(|m| MinorRelease {
                minor: m.parse().unwrap(),
                patches: vec![v(&format!("{m}.7")), v(&format!("{m}.3"))],
                is_preview: false,
                is_default: false,
                support_plans: vec![],
                end_of_support: None,
            })
            .collect(),
        node_images: Default::default(),
    };
    Catalogue {
        regions: [("westeurope".to_string(), region)].into(),
    }
}

fn findings(c: &ClusterFacts, plan: &ClusterPlan, settings: &CheckSettings, fleet: &FleetFacts) -> Vec<Finding> {
    let cat = catalogue();
    let ctx = Ctx {
        facts: c,
        plan,
        catalogue: &cat,
        fleet,
        settings,
        now: now(),
        rolls_back: !settings.rollback_rings.is_empty(),
    };
    cluster_findings(&ctx)
}

fn of(f: &[Finding], check: Check) -> Vec<&Finding> {
    f.iter().filter(|x| x.check == check).collect()
}

#[test]
fn a_healthy_cluster_has_no_findings() {
    let c = cluster("ok", "westeurope");
    let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
    assert!(f.is_empty(), "{f:#?}");
}

#[test]
fn max_unavailable_zero_is_refused_up_front_but_only_on_an_upgraded_pool() {
    let mut c = cluster("pdb", "westeurope");
    c.kube.as_mut().unwrap().pdbs[0] = pdb("web", None, Some(IntOrPercent::Int(0)), 0, 3, 3);
    let plan = full_plan(&c);
    let f = findings(&c, &plan, &CheckSettings::default(), &FleetFacts::default());
    let p = of(&f, Check::Pdb);
    assert_eq!(p.len(), 1, "{f:#?}");
    assert_eq!(p[0].severity, Severity::Blocks);
    assert_eq!(p[0].aks_code.as_deref(), Some("UnsatisfiablePDB"));
    assert_eq!(p[0].pool.as_deref(), Some("user1"));
    assert!(p[0].seen.contains("PDB shop/web: maxUnavailable: 0"), "{}", p[0].seen);
    // A plan that upgrades only the system pool (and the control plane) drains no web pod.
    let mut only_system = plan.clone();
    only_system.steps.pop();
    let f = findings(&c, &only_system, &CheckSettings::default(), &FleetFacts::default());
    assert!(of(&f, Check::Pdb).is_empty(), "{f:#?}");
}

#[test]
fn min_available_at_or_above_the_matching_pods_fails_the_drain() {
    let mut c = cluster("pdb", "westeurope");
    // The status still allows a disruption (it lags the spec, or the pods it counted
    // are not the ones that match now): only the `minAvailable` rule, which judges the
    // spec against the matching pods, can find this one; the `disruptionsAllowed` rule
    // stays quiet.
    for ma in [IntOrPercent::Percent(100), IntOrPercent::Int(3)] {
        c.kube.as_mut().unwrap().pdbs[0] = pdb("web", Some(ma), None, 1, 3, 2);
        let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
        let p = of(&f, Check::Pdb);
        assert_eq!(p.len(), 1, "minAvailable {ma}: {f:#?}");
        assert_eq!(p[0].severity, Severity::Blocks);
        assert_eq!(p[0].aks_code.as_deref(), Some("UpgradeFailed"));
        assert!(
            p[0].seen.contains(&format!("minAvailable: {ma} with 3 matching pods")),
            "{}",
            p[0].seen
        );
    }
    // 50% of 3 rounds up to 2 < 3: one pod may go.
    c.kube.as_mut().unwrap().pdbs[0] = pdb("web", Some(IntOrPercent::Percent(50)), None, 1, 3, 2);
    let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
    assert!(of(&f, Check::Pdb).is_empty(), "{f:#?}");
}

#[test]
fn zero_disruptions_blocks_when_healthy_and_warns_when_pods_are_down() {
    let mut c = cluster("pdb", "westeurope");
    c.kube.as_mut().unwrap().pdbs[0] = pdb("web", Some(IntOrPercent::Int(2)), None, 0, 3, 2);
    let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
    assert_eq!(of(&f, Check::Pdb)[0].severity, Severity::Blocks);
    c.kube.as_mut().unwrap().pdbs[0] = pdb("web", Some(IntOrPercent::Int(2)), None, 0, 2, 2);
    c.kube.as_mut().unwrap().pdbs[0].current_healthy = 1;
    c.kube.as_mut().unwrap().pods[0].ready = false;
    let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
    assert_eq!(of(&f, Check::Pdb)[0].severity, Severity::Warns, "{f:#?}");
    assert_eq!(of(&f, Check::WorkloadsUnhealthy).len(), 1);
}

#[test]
fn a_deprecated_api_blocks_the_minor_that_removes_it_unless_the_override_is_allowed() {
    let mut c = cluster("dep", "westeurope");
    let api = |removed: &str| DeprecatedApi {
        group: "flowcontrol.apiserver.k8s.io".into(),
        version: "v1beta3".into(),
        resource: "flowschemas".into(),
        subresource: String::new(),
        removed_release: removed.parse().unwrap(),
    };
    c.kube.as_mut().unwrap().deprecated = Ok(vec![api("1.33")]);
    let plan = full_plan(&c);
    let f = findings(&c, &plan, &CheckSettings::default(), &FleetFacts::default());
    let d = of(&f, Check::DeprecatedApi);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].severity, Severity::Blocks);
    assert_eq!(d[0].aks_code.as_deref(), Some("UpgradeBlockedOnDeprecatedAPIUsage"));
    let allowed = CheckSettings {
        allow_force_upgrade: true,
        ..Default::default()
    };
    let f = findings(&c, &plan, &allowed, &FleetFacts::default());
    assert_eq!(of(&f, Check::DeprecatedApi)[0].severity, Severity::Warns);
    // Removed in a later minor than the plan reaches: nothing.
    c.kube.as_mut().unwrap().deprecated = Ok(vec![api("1.34")]);
    assert!(
        of(
            &findings(&c, &plan, &CheckSettings::default(), &FleetFacts::default()),
            Check::DeprecatedApi
        )
        .is_empty()
    );
    // A patch upgrade of the control plane is not blocked.
    c.kube.as_mut().unwrap().deprecated = Ok(vec![api("1.33")]);
    let mut patch = plan.clone();
    patch.steps[0].kind = StepKind::ControlPlane {
        from: v("1.32.3"),
        to: v("1.32.7"),
    };
    assert!(
        of(
            &findings(&c, &patch, &CheckSettings::default(), &FleetFacts::default()),
            Check::DeprecatedApi
        )
        .is_empty()
    );
}

fn quota(family: &str, used: i64, limit: i64) -> Usage {
    Usage {
        id: None,
        current_value: used,
        limit,
        name: UsageName {
            value: family.into(),
            localized_value: None,
        },
        unit: Some("Count".into()),
    }
}

fn fleet_with_quota(loc: &str, usages: Vec<Usage>) -> FleetFacts {
    FleetFacts {
        quotas: [((SUB.to_string(), loc.to_string()), Ok(usages))].into(),
        ..Default::default()
    }
}

#[test]
fn surge_is_max_surge_as_a_count_or_a_rounded_up_share() {
    let mut p = pool_facts(3, "Standard_D2s_v5");
    assert_eq!(
        surge_nodes(&p, &CheckSettings::default()),
        1,
        "default 10% of 3, rounded up"
    );
    p.max_surge = Some("33%".into());
    p.count = 10;
    assert_eq!(surge_nodes(&p, &CheckSettings::default()), 4);
    p.max_surge = Some("2".into());
    assert_eq!(surge_nodes(&p, &CheckSettings::default()), 2);
    let policy = CheckSettings {
        max_surge: Some("100%".into()),
        ..Default::default()
    };
    assert_eq!(surge_nodes(&p, &policy), 10, "the policy's max_surge wins");
}

#[test]
fn quota_is_checked_per_wave() {
    let a = cluster("pair-a", "westeurope");
    let b = cluster("pair-b", "westeurope");
    let (pa, pb) = (full_plan(&a), full_plan(&b));
    // Each needs 1 surge × 4 vCPUs (user1, D4s_v5); 6 free: alone yes, together no.
    let fleet = fleet_with_quota(
        "westeurope",
        vec![quota("standardDSv5Family", 94, 100), quota("cores", 0, 1000)],
    );
    let alone = capacity::wave(&[(&a, &pa)], &fleet, &CheckSettings::default(), "w");
    assert!(alone.is_empty(), "{alone:#?}");
    let together = capacity::wave(&[(&a, &pa), (&b, &pb)], &fleet, &CheckSettings::default(), "w");
    assert_eq!(together.len(), 2, "{together:#?}");
    for f in &together {
        assert_eq!(f.severity, Severity::Blocks);
        assert_eq!(f.aks_code.as_deref(), Some("QuotaExceeded"));
        assert!(f.seen.contains("8 with"), "{}", f.seen);
    }
    // 3 free: each fails alone.
    let tight = fleet_with_quota(
        "westeurope",
        vec![quota("standardDSv5Family", 97, 100), quota("cores", 0, 1000)],
    );
    let f = capacity::wave(&[(&a, &pa)], &tight, &CheckSettings::default(), "w");
    assert_eq!(f.len(), 1);
    assert!(f[0].seen.contains("4 needed"), "{}", f[0].seen);
    // The regional total counts too.
    let cores = fleet_with_quota(
        "westeurope",
        vec![quota("standardDSv5Family", 0, 100), quota("cores", 98, 100)],
    );
    assert_eq!(
        capacity::wave(&[(&a, &pa)], &cores, &CheckSettings::default(), "w").len(),
        1
    );
}

#[test]
fn clusters_in_other_regions_do_not_share_a_quota() {
    let a = cluster("a", "westeurope");
    let b = cluster("b", "northeurope");
    let (pa, pb) = (full_plan(&a), full_plan(&b));
    let mut fleet = fleet_with_quota(
        "westeurope",
        vec![quota("standardDSv5Family", 94, 100), quota("cores", 0, 1000)],
    );
    fleet.quotas.insert(
        (SUB.into(), "northeurope".into()),
        Ok(vec![quota("standardDSv5Family", 94, 100), quota("cores", 0, 1000)]),
    );
    assert!(capacity::wave(&[(&a, &pa), (&b, &pb)], &fleet, &CheckSettings::default(), "w").is_empty());
}

#[test]
fn subnet_addresses_count_pods_with_azure_cni_only() {
    let subnet = "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Network/virtualNetworks/vnet/subnets/nodes";
    let mut c = cluster("net", "westeurope");
    c.pools.get_mut("user1").unwrap().subnet_id = Some(subnet.into());
    c.network_plugin = "azure".into();
    let plan = full_plan(&c);
    let mut fleet = fleet_with_quota(
        "westeurope",
        vec![quota("standardDSv5Family", 0, 100), quota("cores", 0, 100)],
    );
    fleet
        .subnets
        .insert(subnet.to_ascii_lowercase(), SubnetUse { used: 231, limit: 251 });
    let f = capacity::wave(&[(&c, &plan)], &fleet, &CheckSettings::default(), "w");
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!(f[0].aks_code.as_deref(), Some("SubnetIsFull"));
    assert!(f[0].seen.contains("31 needed"), "{}", f[0].seen);
    c.network_plugin_mode = Some("overlay".into());
    assert!(capacity::wave(&[(&c, &plan)], &fleet, &CheckSettings::default(), "w").is_empty());
}

#[test]
fn stopped_and_failed_clusters_block_and_a_busy_one_warns() {
    let mut c = cluster("st", "westeurope");
    c.power_state = "Stopped".into();
    let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
    assert_eq!(of(&f, Check::ClusterState)[0].severity, Severity::Blocks);
    c.power_state = "Running".into();
    c.state.provisioning_state = "Failed".into();
    let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
    assert_eq!(of(&f, Check::ClusterState)[0].severity, Severity::Blocks);
    c.state.provisioning_state = "Upgrading".into();
    let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
    assert_eq!(of(&f, Check::ClusterState)[0].severity, Severity::Warns);
}

#[test]
fn an_unreadable_api_server_blocks() {
    let mut c = cluster("gone", "westeurope");
    c.kube = Err("connection refused".into());
    let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
    assert_eq!(f.len(), 1, "{f:#?}");
    assert_eq!((f[0].check, f[0].severity), (Check::Unreadable, Severity::Blocks));
}

#[test]
fn a_target_the_region_does_not_offer_blocks() {
    let c = cluster("far", "westeurope");
    let mut plan = full_plan(&c);
    plan.steps[0].kind = StepKind::ControlPlane {
        from: v("1.32.7"),
        to: v("1.33.9"),
    };
    let f = findings(&c, &plan, &CheckSettings::default(), &FleetFacts::default());
    let t = of(&f, Check::TargetNotOffered);
    assert_eq!(t.len(), 1, "{f:#?}");
    assert!(t[0].seen.contains("1.33.9 is not offered in westeurope"));
    // A region the catalogue does not know is not judged (the engine's case).
    let far = cluster("far", "eastus");
    let f = findings(
        &far,
        &full_plan(&far),
        &CheckSettings::default(),
        &FleetFacts::default(),
    );
    assert!(of(&f, Check::TargetNotOffered).is_empty(), "{f:#?}");
}

#[test]
fn end_of_support_before_the_first_slot_warns() {
    let c = cluster("eos", "westeurope");
    let mut plan = full_plan(&c);
    let mut fleet = FleetFacts::default();
    fleet.support.insert(
        "1.32".parse().unwrap(),
        chrono::NaiveDate::from_ymd_opt(2026, 12, 15).unwrap(),
    );
    assert!(
        of(
            &findings(&c, &plan, &CheckSettings::default(), &fleet),
            Check::EndOfSupport
        )
        .is_empty()
    );
    plan.steps[0].earliest_start = Utc.with_ymd_and_hms(2026, 12, 19, 0, 0, 0).unwrap();
    let f = findings(&c, &plan, &CheckSettings::default(), &fleet);
    assert_eq!(of(&f, Check::EndOfSupport).len(), 1, "{f:#?}");
}

#[test]
fn aks_upgraders_that_race_the_rollout_warn() {
    let mut c = cluster("ch", "westeurope");
    c.state.auto_upgrade_channel = "patch".into();
    let f = findings(&c, &full_plan(&c), &CheckSettings::default(), &FleetFacts::default());
    assert_eq!(of(&f, Check::UpgradeChannel).len(), 1);
    assert_eq!(of(&f, Check::UpgradeChannel)[0].severity, Severity::Warns);
}

#[test]
fn a_pool_on_a_version_aks_no_longer_supports_is_not_rollbackable_in_a_ring_that_rolls_back() {
    let mut c = cluster("rb", "westeurope");
    // user1 runs 1.32.1: the catalogue lists 1.32.7 and 1.32.3 only.
    c.state.pools[1].version = v("1.32.1");
    let mut plan = full_plan(&c);
    if let StepKind::PoolVersion { from, .. } = &mut plan.steps[2].kind {
        *from = v("1.32.1");
    }
    let rolls_back = CheckSettings {
        rollback_rings: vec!["staging".into()],
        ..CheckSettings::default()
    };
    let f = findings(&c, &plan, &rolls_back, &FleetFacts::default());
    let r = of(&f, Check::Rollback);
    assert_eq!(r.len(), 1, "{f:#?}");
    assert_eq!((r[0].pool.as_deref(), r[0].severity), (Some("user1"), Severity::Warns));
    assert!(
        r[0].seen.contains("1.32.1 is no longer supported in westeurope"),
        "{}",
        r[0].seen
    );
    // Held, not rolled back: the same cluster in a `hold` ring says nothing of it.
    let f = findings(&c, &plan, &CheckSettings::default(), &FleetFacts::default());
    assert!(of(&f, Check::Rollback).is_empty(), "{f:#?}");
    // A pool the plan does not drain is never a concern.
    plan.steps.pop();
    let f = findings(&c, &plan, &rolls_back, &FleetFacts::default());
    assert!(of(&f, Check::Rollback).is_empty(), "{f:#?}");
}

/// Preflight judges the plan the policy's `pools` filter made: a PDB that allows no
/// drain of a Windows pool and a VM size without vCPUs in the table say nothing about
/// that pool when a Linux-only policy leaves it alone; without the filter they count.
#[test]
fn pools_the_policy_leaves_out_raise_nothing() {
    let mut c = cluster("mix", "westeurope");
    let mut win = pool_state("win1", PoolMode::User);
    (win.os_type, win.os_sku) = (OsType::Windows, "Windows2022".into());
    c.state.pools.push(win);
    c.pools.insert("win1".into(), pool_facts(2, "Standard_Unknown"));
    let k = c.kube.as_mut().unwrap();
    k.nodes.push(node("w0", "win1"));
    k.pods.push(pod("iis-1", "iis", "w0", true));
    k.pdbs.push(pdb("iis", None, Some(IntOrPercent::Int(0)), 0, 1, 1));
    let snapshot = crate::domain::fleet::FleetSnapshot {
        taken_at: now(),
        clusters: vec![c.state.clone()],
        catalogue: catalogue(),
    };
    let fleet = FleetFacts {
        clusters: [(c.state.id.clone(), c)].into(),
        ..FleetFacts::default()
    };
    let about_win1 = |pools: &str| {
        let text = format!(
            "name: p\ntarget: {{ channel: pinned, version: \"1.33\" }}\nrings:\n  - name: dev\n    selector: {{ names: [mix] }}\n{pools}"
        );
        let plan = crate::plan::plan(&snapshot, &crate::policy::compile("p.yaml", &text).unwrap(), now());
        let reports = run(&plan, &fleet, &catalogue(), &CheckSettings::default(), now());
        assert_eq!(reports.len(), 1, "{reports:#?}");
        let f = &reports[0].findings;
        f.iter()
            .filter(|f| f.pool.as_deref() == Some("win1"))
            .map(|f| f.check)
            .collect::<Vec<Check>>()
    };
    assert_eq!(about_win1("pools: { os_type: Linux }\n"), []);
    let all = about_win1("");
    assert!(all.contains(&Check::Pdb) && all.contains(&Check::Quota), "{all:?}");
}
