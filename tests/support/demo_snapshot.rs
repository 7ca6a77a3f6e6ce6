//! A planner snapshot of a simulator fleet file, as discovery would see it at the fleet's
//! start time (tests only; discovery builds real snapshots from ARM).

use chrono::{DateTime, Utc};
use ringmaster::domain::fleet::*;
use ringmaster::domain::image::compare_versions;
use ringmaster::sim::fleet::{self, Fleet};
use std::collections::BTreeMap;
use std::path::Path;

pub fn load_fleet(name: &str) -> Fleet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets").join(name);
    fleet::load(&path).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// The latest image of `os_sku` in `region` on `at`, as `family-version`.
fn latest_image(f: &Fleet, region: &str, os_sku: &str, at: DateTime<Utc>) -> Option<String> {
    let line = f.images.iter().find(|l| l.os_sku == os_sku)?;
    let version = line
        .releases
        .iter()
        .filter(|r| r.day_in(region).is_some_and(|d| d <= at.date_naive()))
        .map(|r| r.version.as_str())
        .max_by(|a, b| compare_versions(a, b))?;
    Some(format!("{}-{version}", line.family))
}

/// A version as ringmaster reads it: the simulator has its own version type (it is an
/// independent oracle), so a snapshot goes through the text both write.
fn ours<T: std::str::FromStr>(v: impl std::fmt::Display) -> T
where
    T::Err: std::fmt::Debug,
{
    v.to_string().parse().unwrap()
}

pub fn snapshot(f: &Fleet) -> FleetSnapshot {
    let at = f.start_time.expect("fixed start time");
    let regions: Vec<String> = f.clusters.iter().map(|c| c.location.clone()).collect();
    let mut catalogue = Catalogue::default();
    for r in &regions {
        let minors = f
            .catalogue
            .iter()
            .filter(|m| m.offered_in(r))
            .map(|m| MinorRelease {
                minor: ours(m.minor),
                patches: m.patches.iter().map(ours).collect(),
                is_preview: m.preview,
                is_default: m.default,
                support_plans: m.support_plans.clone(),
                end_of_support: m.end_of_support,
            })
            .collect();
        let node_images: BTreeMap<String, String> = f
            .images
            .iter()
            .filter_map(|l| latest_image(f, r, &l.os_sku, at).map(|i| (l.os_sku.clone(), i)))
            .collect();
        catalogue
            .regions
            .insert(normalize_location(r), RegionCatalogue { minors, node_images });
    }
    let clusters = f
        .clusters
        .iter()
        .map(|c| ClusterState {
            id: ClusterId::new(&c.subscription, &c.resource_group, &c.name),
            location: c.location.clone(),
            tags: c.tags.clone(),
            control_plane: ours(c.kubernetes_version),
            provisioning_state: "Succeeded".into(),
            auto_upgrade_channel: c.auto_upgrade_channel.clone(),
            node_os_upgrade_channel: c.node_os_upgrade_channel.clone(),
            pools: c
                .pools
                .iter()
                .map(|p| {
                    let family = f
                        .images
                        .iter()
                        .find(|l| l.os_sku == p.os_sku)
                        .map(|l| l.family.clone())
                        .unwrap_or_default();
                    PoolState {
                        name: p.name.clone(),
                        mode: if p.mode.as_str() == "System" {
                            PoolMode::System
                        } else {
                            PoolMode::User
                        },
                        os_type: if p.os_type.as_str() == "Windows" {
                            OsType::Windows
                        } else {
                            OsType::Linux
                        },
                        os_sku: p.os_sku.clone(),
                        version: ours(p.version),
                        node_image: match &p.node_image {
                            Some(v) => format!("{family}-{v}"),
                            None => latest_image(f, &c.location, &p.os_sku, at).unwrap_or_default(),
                        },
                        provisioning_state: "Succeeded".into(),
                    }
                })
                .collect(),
            maintenance: c
                .maintenance
                .iter()
                .map(|(name, props)| {
                    serde_json::from_value(serde_json::json!({ "name": name, "properties": props }))
                        .unwrap_or_else(|e| panic!("{}: maintenance {name}: {e}", c.name))
                })
                .collect(),
        })
        .collect();
    FleetSnapshot {
        taken_at: at,
        clusters,
        catalogue,
    }
}
