//! Property tests of the planner over random fleets, catalogues and policies:
//! - no plan breaks an AKS version rule when its steps are applied in order (each step is
//!   checked with `domain::rules` by `plan::apply`);
//! - planned clusters end on the target, each pool drained no more often than the rules force;
//! - planning is idempotent: after applying a plan, planning again yields no step;
//! - planning is deterministic: same input, same plan, whatever order discovery listed
//!   the clusters in.

use chrono::{DateTime, Utc};
use proptest::prelude::*;
use ringmaster::domain::fleet::*;
use ringmaster::domain::{KubeVersion, MinorVersion};
use ringmaster::plan::{Plan, StepKind, apply, plan};
use ringmaster::policy::{Policy, compile};
use std::collections::BTreeMap;

const REGIONS: [&str; 2] = ["westeurope", "northeurope"];
const IMAGES: [&str; 3] = ["202610.15.0", "202611.12.0", "202611.26.0"];

fn now() -> DateTime<Utc> {
    "2026-11-30T07:00:00Z".parse().unwrap()
}

fn image(v: &str) -> String {
    format!("AKSUbuntu-2204gen2containerd-{v}")
}

/// A catalogue: minors `1.base ..= 1.base+count-1`, each with 1-3 patches; the second
/// region may lag (lacking the newest minor) and have another latest image.
fn catalogue() -> impl Strategy<Value = (u16, u16, Catalogue)> {
    (
        25u16..30,
        3usize..=6,
        prop::collection::vec(prop::collection::btree_set(0u16..12, 1..=3), 6),
        any::<bool>(),
        any::<bool>(),
        (0usize..3, 0usize..3),
    )
        .prop_map(|(base, count, patches, lag, preview, (img0, img1))| {
            let mut regions = BTreeMap::new();
            for (ri, region) in REGIONS.iter().enumerate() {
                let n = if ri == 1 && lag { count - 1 } else { count };
                let minors = (0..n)
                    .map(|i| MinorRelease {
                        minor: MinorVersion::new(1, base + i as u16),
                        patches: patches[i]
                            .iter()
                            .map(|p| KubeVersion::new(1, base + i as u16, *p))
                            .collect(),
                        is_preview: preview && i == count - 1,
                        is_default: false,
                        support_plans: vec![],
                        end_of_support: None,
                    })
                    .collect();
                let img = if ri == 0 { img0 } else { img1 };
                regions.insert(
                    region.to_string(),
                    RegionCatalogue {
                        minors,
                        node_images: [("Ubuntu".to_string(), image(IMAGES[img]))].into(),
                    },
                );
            }
            (base, count as u16, Catalogue { regions })
        })
}

#[derive(Debug, Clone)]
struct RawCluster {
    ring: usize,
    region: usize,
    cp_minor: u16,
    cp_patch: u16,
    /// (minor lag 0..=3, patch, image, system?)
    pools: Vec<(u16, u16, usize, bool)>,
    busy: bool,
    auto: bool,
    os_channel: usize,
}

fn raw_cluster() -> impl Strategy<Value = RawCluster> {
    (
        prop_oneof![6 => 0usize..3, 1 => Just(3usize)],
        0usize..2,
        prop_oneof![3 => 0u16..2, 1 => 0u16..6],
        0u16..12,
        prop::collection::vec(
            (
                prop_oneof![19 => 0u16..=2, 1 => Just(3u16)],
                0u16..12,
                0usize..3,
                any::<bool>(),
            ),
            1..=3,
        ),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.05),
        0usize..3,
    )
        .prop_map(
            |(ring, region, cp_minor, cp_patch, pools, busy, auto, os_channel)| RawCluster {
                ring,
                region,
                cp_minor,
                cp_patch,
                pools,
                busy,
                auto,
                os_channel,
            },
        )
}

/// A real patch of `minor` from the first region's catalogue (index taken modulo their
/// number), or `index` itself below the catalogue.
fn patch_of(cat: &Catalogue, minor: u16, index: u16) -> u16 {
    let minors = &cat.regions[REGIONS[0]].minors;
    match minors.iter().find(|m| m.minor.minor == minor) {
        Some(m) => m.patches[index as usize % m.patches.len()].patch,
        None => index,
    }
}

fn build(base: u16, count: u16, cat: &Catalogue, raw: &[RawCluster]) -> Vec<ClusterState> {
    raw.iter()
        .enumerate()
        .map(|(i, r)| {
            let cp_minor = base + r.cp_minor.min(count - 1);
            let cp = KubeVersion::new(1, cp_minor, patch_of(cat, cp_minor, r.cp_patch));
            let pools = r
                .pools
                .iter()
                .enumerate()
                .map(|(j, (lag, patch, img, system))| {
                    let minor = cp.minor.saturating_sub(*lag);
                    let patch = patch_of(cat, minor, *patch);
                    let patch = if minor == cp.minor { patch.min(cp.patch) } else { patch };
                    PoolState {
                        name: format!("pool{j}"),
                        mode: if *system { PoolMode::System } else { PoolMode::User },
                        os_type: OsType::Linux,
                        os_sku: "Ubuntu".into(),
                        version: KubeVersion::new(1, minor, patch),
                        node_image: image(IMAGES[*img]),
                        provisioning_state: "Succeeded".into(),
                    }
                })
                .collect();
            ClusterState {
                id: ClusterId::new(
                    "3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61",
                    format!("rg-{}", i % 3),
                    format!("aks-{i:02}"),
                ),
                location: REGIONS[r.region].into(),
                tags: [("ring".to_string(), ["dev", "staging", "prod", "qa"][r.ring].to_string())].into(),
                control_plane: cp,
                provisioning_state: if r.busy { "Upgrading".into() } else { "Succeeded".into() },
                auto_upgrade_channel: if r.auto { "patch".into() } else { "none".into() },
                node_os_upgrade_channel: ["None", "Unmanaged", "NodeImage"][r.os_channel].into(),
                pools,
                maintenance: vec![],
            }
        })
        .collect()
}

fn policy_text(
    channel: usize,
    minor: u16,
    patch: u16,
    consistent: bool,
    preview: bool,
    deny: Option<(u16, u16)>,
) -> String {
    let target = match channel {
        0 => "channel: stable".to_string(),
        1 => "channel: rapid".to_string(),
        2 => "channel: patch".to_string(),
        3 => format!("channel: pinned\n  version: \"1.{minor}\""),
        4 => format!("channel: pinned\n  version: \"1.{minor}.{patch}\""),
        _ => "channel: node-image".to_string(),
    };
    let deny = match (deny, channel) {
        (Some((m, p)), 0..=2) => format!("\n  deny: [\"1.{m}.{p}\"]"),
        _ => String::new(),
    };
    format!(
        "name: prop\ntarget:\n  {target}\n  allow_preview: {preview}\n  node_image: {}{deny}\nrings:\n\
         - name: dev\n  selector: {{ tags: {{ ring: dev }} }}\n  waves: [{{ name: all, max_parallel: 2 }}]\n\
         - name: staging\n  selector: {{ tags: {{ ring: staging }} }}\n\
         - name: prod\n  selector: {{ tags: {{ ring: prod }} }}\n  waves: [{{ name: canary, clusters: [aks-03] }}, {{ name: rest, max_parallel: 3 }}]\n",
        if consistent { "consistent" } else { "latest" }
    )
    .replace("\n- name", "\n  - name")
    .replace("\n  selector", "\n    selector")
    .replace("\n  waves", "\n    waves")
}

#[derive(Debug, Clone)]
struct Case {
    snapshot: FleetSnapshot,
    policy: Policy,
    shuffled: Vec<ClusterState>,
}

fn case() -> impl Strategy<Value = Case> {
    (catalogue(), prop::collection::vec(raw_cluster(), 1..=7))
        .prop_flat_map(|((base, count, cat), raw)| {
            let clusters = build(base, count, &cat, &raw);
            let policy = (
                0usize..6,
                0u16..7,
                0u16..12,
                any::<bool>(),
                any::<bool>(),
                prop::option::of((0u16..7, 0u16..12)),
            );
            (
                Just(cat),
                Just(clusters.clone()),
                Just(clusters).prop_shuffle(),
                policy,
                Just(base),
            )
        })
        .prop_map(
            |(catalogue, clusters, shuffled, (ch, m, p, consistent, preview, deny), base)| {
                let (pm, dm) = (
                    base + m,
                    deny.map(|(dm, dp)| (base + dm, patch_of(&catalogue, base + dm, dp))),
                );
                let text = policy_text(ch, pm, patch_of(&catalogue, pm, p), consistent, preview, dm);
                let policy = compile("prop.yaml", &text).unwrap_or_else(|e| panic!("{e}\n{text}"));
                Case {
                    snapshot: FleetSnapshot {
                        taken_at: now(),
                        clusters,
                        catalogue,
                    },
                    policy,
                    shuffled,
                }
            },
        )
}

/// The fewest pool upgrades AKS's rules allow to bring a pool on `from` to `to` while
/// its control plane walks from `cp` to `to` one minor at a time: a pool may cross any
/// number of minors in one upgrade, but must move (at best to the control plane's
/// version) whenever the next control-plane minor would leave it too far behind.
fn min_drains(cp: KubeVersion, from: KubeVersion, to: KubeVersion) -> usize {
    let mut pool_minor = from.minor;
    let mut forced = 0;
    for m in cp.minor + 1..=to.minor {
        let lag = ringmaster::domain::rules::pool_max_minor_lag(KubeVersion::new(to.major, m, 0));
        if i64::from(m) - i64::from(pool_minor) > lag {
            pool_minor = m - 1;
            forced += 1;
        }
    }
    forced + usize::from(from < to)
}

fn check(case: &Case) -> Result<(), TestCaseError> {
    let p: Plan = plan(&case.snapshot, &case.policy, now());

    // Every step applies in order without breaking a rule.
    let after = apply(&case.snapshot, &p).map_err(|e| TestCaseError::fail(format!("{e}\n{p:#?}")))?;

    for (c, s) in p.steps() {
        prop_assert!(!s.reason.is_empty(), "step without a reason in {}", c.id);
        prop_assert!(s.earliest_start >= now());
    }
    for s in &p.skipped {
        prop_assert!(!s.reason.is_empty());
        // The planner checks its own steps against the rules and skips a cluster when one
        // fails: that safety net must never be what stops a cluster.
        prop_assert!(
            !s.reason.contains("no upgrade path within AKS's rules"),
            "{}: {}",
            s.id,
            s.reason
        );
    }

    // Planned clusters end on the target, pools drained as few times as the rules force.
    for cp in p.rings.iter().flat_map(|r| &r.waves).flat_map(|w| &w.clusters) {
        let before = case.snapshot.clusters.iter().find(|c| c.id == cp.id).unwrap();
        let end = after.clusters.iter().find(|c| c.id == cp.id).unwrap();
        let target = match (
            &p.target.version,
            p.target.patch_versions.get(&before.control_plane.minor_version()),
        ) {
            (Some(v), _) => Some(*v),
            (None, Some(v)) if p.target.channel == "patch" => Some(*v),
            _ => None,
        };
        if let Some(t) = target {
            prop_assert_eq!(end.control_plane, t, "{}", cp.id);
            for pool in &before.pools {
                let endp = end.pools.iter().find(|x| x.name == pool.name).unwrap();
                prop_assert_eq!(endp.version, t, "{} {}", cp.id, pool.name);
                let drains = cp
                    .steps
                    .iter()
                    .filter(|s| matches!(&s.kind, StepKind::PoolVersion { pool: n, .. } if *n == pool.name))
                    .count();
                prop_assert_eq!(
                    drains,
                    min_drains(before.control_plane, pool.version, t),
                    "{} {} drains",
                    cp.id,
                    pool.name
                );
            }
        }
        for s in &cp.steps {
            if let StepKind::NodeImage { pool, .. } = &s.kind {
                let upgraded = cp
                    .steps
                    .iter()
                    .any(|x| matches!(&x.kind, StepKind::PoolVersion { pool: n, .. } if n == pool));
                prop_assert!(!upgraded, "node image step after a version step of pool {pool}");
            }
        }
    }

    // Idempotent: the fleet after the plan needs nothing more.
    let again = plan(&after, &case.policy, now());
    let left: Vec<String> = again.steps().map(|(c, s)| format!("{} {:?}", c.id, s.kind)).collect();
    prop_assert!(left.is_empty(), "steps left after applying the plan: {left:#?}");

    // Deterministic, whatever order the clusters came in.
    prop_assert_eq!(&plan(&case.snapshot, &case.policy, now()), &p);
    let shuffled = FleetSnapshot {
        clusters: case.shuffled.clone(),
        ..case.snapshot.clone()
    };
    prop_assert_eq!(&plan(&shuffled, &case.policy, now()), &p);
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 1024, ..ProptestConfig::default() })]

    #[test]
    fn plans_keep_the_rules_are_idempotent_and_deterministic(case in case()) {
        check(&case)?;
    }
}
