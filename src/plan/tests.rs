//! Planner unit tests on hand-built fleets. Property tests over random fleets are in
//! `tests/plan_props.rs`; the demo fleet and policies in `tests/policies.rs`.

use super::*;
use crate::domain::fleet::*;
use crate::policy::compile;

pub(crate) fn v(s: &str) -> KubeVersion {
    s.parse().unwrap()
}

fn t(s: &str) -> DateTime<Utc> {
    s.parse().unwrap()
}

const NOW: &str = "2026-11-30T07:00:00Z";
const SUB: &str = "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61";
const UBUNTU_OLD: &str = "AKSUbuntu-2204gen2containerd-202611.12.0";
const UBUNTU_NEW: &str = "AKSUbuntu-2204gen2containerd-202611.26.0";

fn region(minors: &[(&str, &[&str], bool)], image: &str) -> RegionCatalogue {
    RegionCatalogue {
        minors: minors
            .iter()
            .map(|(m, patches, preview)| MinorRelease {
                minor: m.parse().unwrap(),
                patches: patches.iter().map(|p| v(p)).collect(),
                is_preview: *preview,
                is_default: false,
                support_plans: vec![],
                end_of_support: None,
            })
            .collect(),
        node_images: [("Ubuntu".to_string(), image.to_string())].into(),
    }
}

fn standard_region() -> RegionCatalogue {
    region(
        &[
            ("1.30", &["1.30.9"], false),
            ("1.31", &["1.31.10", "1.31.11"], false),
            ("1.32", &["1.32.6", "1.32.7"], false),
            ("1.33", &["1.33.2", "1.33.3"], false),
            ("1.34", &["1.34.0", "1.34.1"], false),
            ("1.35", &["1.35.0"], true),
        ],
        UBUNTU_NEW,
    )
}

fn pool(name: &str, mode: PoolMode, version: &str) -> PoolState {
    PoolState {
        name: name.into(),
        mode,
        os_type: OsType::Linux,
        os_sku: "Ubuntu".into(),
        version: v(version),
        node_image: UBUNTU_OLD.into(),
        provisioning_state: "Succeeded".into(),
    }
}

fn cluster(name: &str, ring: &str, cp: &str, pools: Vec<PoolState>) -> ClusterState {
    ClusterState {
        id: ClusterId::new(SUB, format!("rg-{ring}"), name),
        location: "westeurope".into(),
        tags: [("ring".to_string(), ring.to_string())].into(),
        control_plane: v(cp),
        provisioning_state: "Succeeded".into(),
        auto_upgrade_channel: "none".into(),
        node_os_upgrade_channel: "Unmanaged".into(),
        pools,
        maintenance: vec![],
    }
}

fn snapshot(clusters: Vec<ClusterState>) -> FleetSnapshot {
    FleetSnapshot {
        taken_at: t(NOW),
        clusters,
        catalogue: Catalogue {
            regions: [("westeurope".to_string(), standard_region())].into(),
        },
    }
}

fn policy(target: &str, extra: &str) -> crate::policy::Policy {
    let text = format!(
        "name: t\ntarget: {target}\nrings:\n  - name: dev\n    selector: {{ tags: {{ ring: dev }} }}\n    waves: [{{ name: all, max_parallel: 10 }}]\n  - name: prod\n    selector: {{ tags: {{ ring: prod }} }}\n    waves: [{{ name: canary, clusters: [p2] }}, {{ name: rest, max_parallel: 1 }}]\n{extra}"
    );
    compile("t.yaml", &text).unwrap_or_else(|e| panic!("{e}"))
}

fn kinds(plan: &Plan, cluster: &str) -> Vec<String> {
    plan.steps()
        .filter(|(c, _)| c.id.name == cluster)
        .map(|(_, s)| match &s.kind {
            StepKind::ControlPlane { from, to } => format!("cp {from}->{to}"),
            StepKind::PoolVersion { pool, from, to } => format!("{pool} {from}->{to}"),
            StepKind::NodeImage { pool, to, .. } => format!("{pool} image {}", to.rsplit('-').next().unwrap()),
            StepKind::PoolRollback { .. } => unreachable!("the planner never plans a rollback"),
        })
        .collect()
}

#[test]
fn two_minors_control_plane_first_then_each_pool_in_one_upgrade() {
    let s = snapshot(vec![cluster(
        "d1",
        "dev",
        "1.31.11",
        vec![
            pool("user1", PoolMode::User, "1.31.10"),
            pool("system", PoolMode::System, "1.31.11"),
        ],
    )]);
    let p = plan(&s, &policy("{ channel: pinned, version: \"1.33\" }", ""), t(NOW));
    assert_eq!(p.target.version, Some(v("1.33.3")));
    // AKS lets a pool cross several minors in one upgrade: one drain per pool.
    assert_eq!(
        kinds(&p, "d1"),
        [
            "cp 1.31.11->1.32.7",
            "cp 1.32.7->1.33.3",
            "system 1.31.11->1.33.3",
            "user1 1.31.10->1.33.3",
        ]
    );
    let after = apply(&s, &p).unwrap();
    assert!(after.clusters[0].pools.iter().all(|p| p.node_image == UBUNTU_NEW));
    assert_eq!(
        plan(&after, &policy("{ channel: pinned, version: \"1.33\" }", ""), t(NOW))
            .steps()
            .count(),
        0
    );
}

#[test]
fn a_pool_moves_before_the_control_plane_only_when_forced() {
    let pinned = policy("{ channel: pinned, version: \"1.33.2\" }", "");
    // Three minors behind 1.33 is within AKS's window (from 1.28): the pool waits.
    let s = snapshot(vec![cluster(
        "d1",
        "dev",
        "1.32.7",
        vec![pool("system", PoolMode::System, "1.30.9")],
    )]);
    assert_eq!(
        kinds(&plan(&s, &pinned, t(NOW)), "d1"),
        ["cp 1.32.7->1.33.2", "system 1.30.9->1.33.2"]
    );
    // Four would not be: first the pool, straight to the control plane's version.
    let s = snapshot(vec![cluster(
        "d1",
        "dev",
        "1.32.7",
        vec![pool("system", PoolMode::System, "1.29.9")],
    )]);
    let p = plan(&s, &pinned, t(NOW));
    assert_eq!(
        kinds(&p, "d1"),
        ["system 1.29.9->1.32.7", "cp 1.32.7->1.33.2", "system 1.32.7->1.33.2"]
    );
    assert!(p.steps().next().unwrap().1.reason.contains("at most 3 minors behind"));
}

#[test]
fn channels_pick_from_the_catalogue() {
    let s = snapshot(vec![cluster(
        "d1",
        "dev",
        "1.32.6",
        vec![pool("system", PoolMode::System, "1.32.6")],
    )]);
    let target = |tg: &str| plan(&s, &policy(tg, ""), t(NOW)).target;
    assert_eq!(target("{ channel: rapid }").version, Some(v("1.34.1")));
    assert_eq!(target("{ channel: stable }").version, Some(v("1.33.3")));
    assert_eq!(
        target("{ channel: rapid, allow_preview: true }").version,
        Some(v("1.35.0"))
    );
    assert_eq!(
        target("{ channel: stable, deny: [\"1.33.3\"] }").version,
        Some(v("1.33.2"))
    );
    // `allow` caps: rapid, but nothing past 1.33.
    assert_eq!(
        target("{ channel: rapid, allow: [\"1.33\"] }").version,
        Some(v("1.33.3"))
    );
    let patch = target("{ channel: patch }");
    assert_eq!(patch.patch_versions.get(&"1.32".parse().unwrap()), Some(&v("1.32.7")));
    let p = plan(&s, &policy("{ channel: patch }", ""), t(NOW));
    assert_eq!(kinds(&p, "d1"), ["cp 1.32.6->1.32.7", "system 1.32.6->1.32.7"]);
    let missing = target("{ channel: pinned, version: \"1.29\" }");
    assert!(missing.problem.unwrap().contains("no supported GA patch of 1.29"));
}

#[test]
fn the_target_is_offered_in_every_region() {
    let mut s = snapshot(vec![
        cluster("d1", "dev", "1.32.7", vec![pool("system", PoolMode::System, "1.32.7")]),
        cluster("d2", "dev", "1.32.7", vec![pool("system", PoolMode::System, "1.32.7")]),
    ]);
    s.clusters[1].location = "northeurope".into();
    // northeurope has no 1.33.3 yet.
    let ne = region(
        &[
            ("1.32", &["1.32.7"], false),
            ("1.33", &["1.33.2"], false),
            ("1.34", &["1.34.0"], false),
        ],
        UBUNTU_OLD,
    );
    s.catalogue.regions.insert("northeurope".into(), ne);
    let p = plan(&s, &policy("{ channel: stable }", ""), t(NOW));
    assert_eq!(p.target.version, Some(v("1.33.2")));
    assert_eq!(p.target.regions, ["northeurope", "westeurope"]);
}

#[test]
fn clusters_are_skipped_with_reasons() {
    let base = || cluster("d1", "dev", "1.32.7", vec![pool("system", PoolMode::System, "1.32.7")]);
    let mut auto = base();
    auto.id.name = "auto".into();
    auto.auto_upgrade_channel = "stable".into();
    let mut busy = base();
    busy.id.name = "busy".into();
    busy.provisioning_state = "Upgrading".into();
    let mut newer = cluster(
        "newer",
        "dev",
        "1.34.1",
        vec![pool("system", PoolMode::System, "1.34.1")],
    );
    newer.id.name = "newer".into();
    let mut nowhere = base();
    nowhere.id.name = "nowhere".into();
    nowhere.tags.insert("ring".into(), "qa".into());
    let s = snapshot(vec![auto, busy, newer, nowhere]);
    let p = plan(&s, &policy("{ channel: pinned, version: \"1.33\" }", ""), t(NOW));
    let reason = |n: &str| p.skipped.iter().find(|s| s.id.name == n).unwrap().reason.clone();
    assert!(reason("auto").contains("auto-upgrade channel `stable` is on"));
    assert!(reason("busy").contains("Upgrading, not Succeeded"));
    assert!(reason("newer").contains("never downgrades"));
    assert!(reason("nowhere").contains("matches no ring"));
    assert_eq!(p.steps().count(), 0);
}

#[test]
fn node_images_after_versions_and_not_after_a_pool_upgrade() {
    let mut c = cluster(
        "d1",
        "dev",
        "1.33.3",
        vec![
            pool("system", PoolMode::System, "1.33.3"),
            pool("user1", PoolMode::User, "1.33.2"),
        ],
    );
    let s = snapshot(vec![c.clone()]);
    let p = plan(&s, &policy("{ channel: pinned, version: \"1.33\" }", ""), t(NOW));
    assert_eq!(kinds(&p, "d1"), ["user1 1.33.2->1.33.3", "system image 202611.26.0"]);
    // AKS manages node images itself: a note, no node image step.
    c.node_os_upgrade_channel = "NodeImage".into();
    let p = plan(
        &snapshot(vec![c]),
        &policy("{ channel: pinned, version: \"1.33\" }", ""),
        t(NOW),
    );
    assert_eq!(kinds(&p, "d1"), ["user1 1.33.2->1.33.3"]);
    assert!(p.rings[0].waves[0].clusters[0].notes[0].contains("AKS updates them itself"));
}

#[test]
fn consistent_images_carry_the_first_rings_image() {
    let mut s = snapshot(vec![
        cluster("d1", "dev", "1.33.3", vec![pool("system", PoolMode::System, "1.33.3")]),
        cluster("p1", "prod", "1.33.3", vec![pool("system", PoolMode::System, "1.33.3")]),
    ]);
    // prod lives in a region with a newer image than dev's region.
    s.clusters[0].location = "northeurope".into();
    s.catalogue.regions.insert(
        "northeurope".into(),
        region(&[("1.33", &["1.33.3"], false)], UBUNTU_OLD),
    );
    s.clusters[0].pools[0].node_image = "AKSUbuntu-2204gen2containerd-202610.15.0".into();
    s.clusters[1].pools[0].node_image = "AKSUbuntu-2204gen2containerd-202610.15.0".into();
    let p = plan(
        &s,
        &policy("{ channel: node-image, node_image: consistent }", ""),
        t(NOW),
    );
    assert_eq!(p.target.consistent_images["Ubuntu"], UBUNTU_OLD);
    assert_eq!(kinds(&p, "d1"), ["system image 202611.12.0"]);
    assert_eq!(kinds(&p, "p1"), ["system image 202611.12.0"]);
    let p = plan(&s, &policy("{ channel: node-image, node_image: latest }", ""), t(NOW));
    assert_eq!(kinds(&p, "p1"), ["system image 202611.26.0"]);
}

#[test]
fn waves_canary_first_then_chunks_and_up_to_date() {
    let c = |n: &str, cp: &str| cluster(n, "prod", cp, vec![pool("system", PoolMode::System, cp)]);
    let s = snapshot(vec![
        c("p1", "1.32.7"),
        c("p2", "1.32.7"),
        c("p3", "1.32.7"),
        c("p4", "1.33.3"),
    ]);
    let mut s2 = s.clone();
    for cl in &mut s2.clusters {
        for p in &mut cl.pools {
            p.node_image = UBUNTU_NEW.into();
        }
    }
    let p = plan(&s2, &policy("{ channel: pinned, version: \"1.33\" }", ""), t(NOW));
    let prod = &p.rings[1];
    let waves: Vec<(String, Vec<String>)> = prod
        .waves
        .iter()
        .map(|w| (w.name.clone(), w.clusters.iter().map(|c| c.id.name.clone()).collect()))
        .collect();
    assert_eq!(
        waves,
        [
            ("canary".to_string(), vec!["p2".to_string()]),
            ("rest-1".to_string(), vec!["p1".to_string()]),
            ("rest-2".to_string(), vec!["p3".to_string()]),
        ]
    );
    assert_eq!(
        prod.up_to_date.iter().map(|c| c.name.as_str()).collect::<Vec<_>>(),
        ["p4"]
    );
}

#[test]
fn earliest_starts_follow_windows_soaks_and_blackouts() {
    let mut c = cluster("p2", "prod", "1.32.7", vec![pool("system", PoolMode::System, "1.32.7")]);
    c.maintenance.push(
        serde_json::from_value(
            serde_json::json!({"name": "aksManagedAutoUpgradeSchedule", "properties": {
            "maintenanceWindow": {"schedule": {"weekly": {"intervalWeeks": 1, "dayOfWeek": "Sunday"}},
                "durationHours": 8, "utcOffset": "+00:00", "startTime": "00:00"}}}),
        )
        .unwrap(),
    );
    let s = snapshot(vec![c]);
    let extra = "schedule:\n  start: \"0 8 * * MON-FRI\"\n  blackouts: [{ name: freeze, from: \"2026-12-06\", to: \"2026-12-06\", rings: [prod] }]\n";
    let mut pol = policy("{ channel: pinned, version: \"1.33\" }", extra);
    pol.rings[0].soak = std::time::Duration::from_secs(3600);
    let p = plan(&s, &pol, t(NOW));
    assert_eq!(p.rollout_start, Some(t("2026-11-30T08:00:00Z")));
    assert_eq!(p.rings[1].not_before, Some(t("2026-11-30T09:00:00Z")));
    let steps: Vec<&Step> = p.steps().map(|(_, s)| s).collect();
    // Sunday 2026-12-06 is blacked out: the next Sunday window.
    assert_eq!(steps[0].earliest_start, t("2026-12-13T00:00:00Z"));
    assert_eq!(steps[0].window_end, Some(t("2026-12-13T08:00:00Z")));
    assert!(
        steps[0]
            .reason
            .contains("waits for AKS maintenance window aksManagedAutoUpgradeSchedule"),
        "{}",
        steps[0].reason
    );
    assert!(steps.windows(2).all(|w| w[0].earliest_start <= w[1].earliest_start));
}

#[test]
fn render_fits_100_columns_and_json_tags_steps() {
    let s = snapshot(vec![
        cluster(
            "d1",
            "dev",
            "1.31.11",
            vec![pool("system", PoolMode::System, "1.31.11")],
        ),
        cluster("p2", "prod", "1.34.1", vec![pool("system", PoolMode::System, "1.34.1")]),
    ]);
    let p = plan(&s, &policy("{ channel: pinned, version: \"1.33\" }", ""), t(NOW));
    let table = render::table(&p);
    assert!(table.lines().all(|l| l.chars().count() <= render::WIDTH), "{table}");
    assert!(table.contains("control plane  1.31.11 -> 1.32.7"), "{table}");
    assert!(table.contains("never downgrades"), "{table}");
    let json: serde_json::Value = serde_json::from_str(&render::json(&p)).unwrap();
    let step = &json["rings"][0]["waves"][0]["clusters"][0]["steps"][0];
    assert_eq!(step["kind"], "controlPlane");
    assert_eq!(step["to"], "1.32.7");
    assert_eq!(json["skipped"][0]["id"]["name"], "p2");
}

const WIN_OLD: &str = "AKSWindows-2022-containerd-20348.4294.261014";
const WIN_NEW: &str = "AKSWindows-2022-containerd-20348.4405.261111";

fn win_pool(name: &str, version: &str) -> PoolState {
    PoolState {
        os_type: OsType::Windows,
        os_sku: "Windows2022".into(),
        node_image: WIN_OLD.into(),
        ..pool(name, PoolMode::User, version)
    }
}

/// A dev cluster with a Linux system pool, a Linux user pool and a Windows pool (on
/// `win`), every image behind, in a region that has both OSes' latest images.
fn mixed(cp: &str, win: &str) -> FleetSnapshot {
    let mut s = snapshot(vec![cluster(
        "d1",
        "dev",
        cp,
        vec![
            pool("system", PoolMode::System, cp),
            pool("user1", PoolMode::User, cp),
            win_pool("win1", win),
        ],
    )]);
    for r in s.catalogue.regions.values_mut() {
        r.node_images.insert("Windows2022".into(), WIN_NEW.into());
    }
    s
}

#[test]
fn the_pool_filter_limits_pool_steps_and_leaves_the_control_plane_alone() {
    let s = mixed("1.32.7", "1.32.7");
    let linux = policy("{ channel: pinned, version: \"1.33\" }", "pools: { os_type: Linux }\n");
    let p = plan(&s, &linux, t(NOW));
    assert_eq!(
        kinds(&p, "d1"),
        ["cp 1.32.7->1.33.3", "system 1.32.7->1.33.3", "user1 1.32.7->1.33.3"]
    );
    let notes = &p.rings[0].waves[0].clusters[0].notes;
    assert!(notes.iter().any(|n| n.contains("win1 (1.32.7) stay")), "{notes:?}");
    // Applied, the plan leaves the Linux policy nothing to do (win1 stays on 1.32).
    let after = apply(&s, &p).unwrap();
    assert_eq!(plan(&after, &linux, t(NOW)).steps().count(), 0);
    // Node images: each filter gets its own pools' steps only.
    let images = |pools: &str| kinds(&plan(&s, &policy("{ channel: node-image }", pools), t(NOW)), "d1");
    assert_eq!(
        images("pools: { os_type: Windows }\n"),
        ["win1 image 20348.4405.261111"]
    );
    assert_eq!(
        images("pools: { os_sku: [Ubuntu] }\n"),
        ["system image 202611.26.0", "user1 image 202611.26.0"]
    );
    assert_eq!(
        images("pools: { mode: User, names: [\"USER*\", \"w?n1\"] }\n"),
        ["user1 image 202611.26.0", "win1 image 20348.4405.261111"]
    );
    assert_eq!(images("").len(), 3, "no filter: every pool");
    // `consistent` carries the images of the first ring's pools the policy manages only.
    let carried = |pools: &str| {
        let pol = policy("{ channel: node-image, node_image: consistent }", pools);
        plan(&s, &pol, t(NOW))
            .target
            .consistent_images
            .into_keys()
            .collect::<Vec<_>>()
    };
    assert_eq!(carried("pools: { os_type: Windows }\n"), ["Windows2022"]);
    assert_eq!(carried(""), ["Ubuntu", "Windows2022"]);
}

#[test]
fn a_control_plane_move_that_would_strand_an_excluded_pool_skips_the_cluster() {
    // win1 on 1.30: the control plane may reach 1.33 (3 minors ahead), not 1.34.
    let s = mixed("1.32.7", "1.30.9");
    let linux = |to: &str| {
        policy(
            &format!("{{ channel: pinned, version: \"{to}\" }}"),
            "pools: { os_type: Linux }\n",
        )
    };
    let p = plan(&s, &linux("1.34"), t(NOW));
    assert_eq!(p.steps().count(), 0);
    let reason = &p.skipped.iter().find(|x| x.id.name == "d1").unwrap().reason;
    assert!(
        reason.contains("move to 1.34.1 would leave pool win1 on 1.30.9, more than 3 minors behind")
            && reason.contains("`pools` (os_type Linux) leaves that pool out"),
        "{reason}"
    );
    // Within the skew it is planned, and AKS's rules hold on the way (apply checks them
    // against every pool).
    let p = plan(&s, &linux("1.33"), t(NOW));
    assert_eq!(kinds(&p, "d1")[0], "cp 1.32.7->1.33.3");
    apply(&s, &p).unwrap();
    // Without the filter the planner moves win1 out of the way first.
    let all = plan(&s, &policy("{ channel: pinned, version: \"1.34\" }", ""), t(NOW));
    assert_eq!(kinds(&all, "d1")[..2], ["cp 1.32.7->1.33.3", "win1 1.30.9->1.33.3"]);
    apply(&s, &all).unwrap();
}

#[test]
fn a_cluster_without_a_matching_pool_has_nothing_to_do() {
    let mut s = mixed("1.33.3", "1.33.3");
    s.clusters[0].pools.retain(|p| p.os_type == OsType::Linux);
    let p = plan(
        &s,
        &policy("{ channel: node-image }", "pools: { os_type: Windows }\n"),
        t(NOW),
    );
    assert_eq!(p.steps().count(), 0);
    assert!(p.skipped.is_empty(), "{:?}", p.skipped);
    assert_eq!(p.rings[0].up_to_date[0].name, "d1");
}
