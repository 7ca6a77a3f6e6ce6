//! The rollout's one target, resolved from the catalogue: the channel's pick among the
//! versions offered in *every* region the rollout touches (so that no ring ends up on a
//! different version because its region lags), GA only unless the policy allows preview,
//! still supported on `now`, on AKS's standard support plan, not denied; then capped by
//! the `allow` list (the newest allowed version at or below the channel's pick).

use super::ResolvedTarget;
use crate::domain::fleet::{ClusterState, FleetSnapshot, RegionCatalogue, normalize_location};
use crate::domain::{KubeVersion, MinorVersion, NodeImageVersion};
use crate::policy::{Channel, NodeImageMode, Policy};
use chrono::{DateTime, Utc};
use std::cmp::Ordering;
use std::collections::{BTreeMap, BTreeSet};

/// Versions of one region that may be a target.
fn target_candidates(region: &RegionCatalogue, policy: &Policy, now: DateTime<Utc>) -> BTreeSet<KubeVersion> {
    let today = now.date_naive();
    region
        .minors
        .iter()
        .filter(|m| policy.target.allow_preview || !m.is_preview)
        .filter(|m| m.end_of_support.is_none_or(|eos| eos > today))
        .filter(|m| m.support_plans.is_empty() || m.support_plans.iter().any(|p| p == "KubernetesOfficial"))
        .flat_map(|m| m.patches.iter().copied())
        .filter(|v| !policy.target.denies(*v))
        .collect()
}

/// The newest patch of `minor` in `set` that the policy allows as a target.
fn newest_allowed(set: &BTreeSet<KubeVersion>, policy: &Policy, at_most: KubeVersion) -> Option<KubeVersion> {
    set.iter()
        .rev()
        .copied()
        .find(|v| *v <= at_most && policy.target.allows(*v))
}

fn newest_of_minor(set: &BTreeSet<KubeVersion>, minor: MinorVersion) -> Option<KubeVersion> {
    set.iter().rev().copied().find(|v| v.minor_version() == minor)
}

pub(super) fn resolve(
    snapshot: &FleetSnapshot,
    policy: &Policy,
    by_ring: &[Vec<&ClusterState>],
    now: DateTime<Utc>,
) -> ResolvedTarget {
    let regions: BTreeSet<String> = by_ring
        .iter()
        .flatten()
        .map(|c| normalize_location(&c.location))
        .collect();
    let mut out = ResolvedTarget {
        channel: policy.target.channel.name(),
        version: None,
        patch_versions: BTreeMap::new(),
        node_image: match policy.target.node_image {
            NodeImageMode::Latest => "latest".into(),
            NodeImageMode::Consistent => "consistent".into(),
        },
        consistent_images: BTreeMap::new(),
        regions: regions.iter().cloned().collect(),
        problem: None,
    };
    if policy.target.node_image == NodeImageMode::Consistent {
        out.consistent_images =
            first_ring_images(snapshot, policy, by_ring.first().map(Vec::as_slice).unwrap_or_default());
    }
    if policy.target.channel == Channel::NodeImage {
        return out;
    }
    let mut common: Option<BTreeSet<KubeVersion>> = None;
    for r in &regions {
        let Some(cat) = snapshot.catalogue.region(r) else {
            out.problem = Some(format!("the catalogue has no versions for region {r}"));
            return out;
        };
        let set = target_candidates(cat, policy, now);
        common = Some(match common {
            None => set,
            Some(c) => c.intersection(&set).copied().collect(),
        });
    }
    let common = common.unwrap_or_default();
    let where_ = format!("in every region of the rollout ({})", out.regions.join(", "));
    let pick: Result<KubeVersion, String> = match policy.target.channel {
        Channel::NodeImage => unreachable!("handled above"),
        Channel::Patch => {
            let minors: BTreeSet<MinorVersion> = common.iter().map(|v| v.minor_version()).collect();
            for m in minors {
                let newest = newest_of_minor(&common, m).expect("minor comes from the set");
                if let Some(v) = newest_allowed(&common, policy, newest).filter(|v| v.minor_version() == m) {
                    out.patch_versions.insert(m, v);
                }
            }
            if out.patch_versions.is_empty() {
                out.problem = Some(format!("no GA version the policy allows is offered {where_}"));
            }
            return out;
        }
        Channel::Rapid => common
            .iter()
            .next_back()
            .copied()
            .ok_or_else(|| format!("no GA version is offered {where_}")),
        Channel::Stable => {
            match common.iter().next_back() {
                None => Err(format!("no GA version is offered {where_}")),
                Some(newest) => {
                    let n1 = MinorVersion::new(newest.major, newest.minor.saturating_sub(1));
                    newest_of_minor(&common, n1).ok_or_else(|| {
                    format!("channel stable wants {n1} (the minor before the newest, {}), which is not offered {where_}", newest.minor_version())
                })
                }
            }
        }
        Channel::Pinned(crate::domain::VersionSpec::Minor(m)) => {
            newest_of_minor(&common, m).ok_or_else(|| format!("no supported GA patch of {m} is offered {where_}"))
        }
        Channel::Pinned(crate::domain::VersionSpec::Exact(v)) => {
            if common.contains(&v) {
                Ok(v)
            } else {
                Err(format!("{v} is not offered as a supported GA version {where_}"))
            }
        }
    };
    match pick.and_then(|p| {
        newest_allowed(&common, policy, p)
            .ok_or_else(|| format!("the channel picks {p}, and `allow` lists no offered version at or below it"))
    }) {
        Ok(v) => out.version = Some(v),
        Err(e) => out.problem = Some(e),
    }
    out
}

/// Per OS SKU, the image the first ring runs: the oldest of its regions' latest images,
/// so that every cluster of the first ring can have exactly it. Only the pools the
/// policy's `pools` selects: the others are not the rollout's, so it proves nothing on them.
fn first_ring_images(snapshot: &FleetSnapshot, policy: &Policy, first: &[&ClusterState]) -> BTreeMap<String, String> {
    let mut out: BTreeMap<String, String> = BTreeMap::new();
    for c in first {
        let Some(cat) = snapshot.catalogue.region(&c.location) else {
            continue;
        };
        for p in c.pools.iter().filter(|p| policy.pools.matches(p)) {
            let Some(latest) = cat.node_images.get(&p.os_sku) else {
                continue;
            };
            let keep_old = out
                .get(&p.os_sku)
                .is_some_and(|old| compare_images(old, latest).is_some_and(|o| o != Ordering::Greater));
            if !keep_old {
                out.insert(p.os_sku.clone(), latest.clone());
            }
        }
    }
    out
}

/// Orders two full node image versions of one family; `None` across families or when
/// either does not parse.
pub(super) fn compare_images(a: &str, b: &str) -> Option<Ordering> {
    NodeImageVersion::parse(a)?.compare(&NodeImageVersion::parse(b)?)
}
