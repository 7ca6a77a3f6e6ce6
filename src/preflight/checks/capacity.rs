//! Surge capacity, per wave: the vCPU quota of each subscription, region and VM family
//! (and the region's total), and the free addresses of each pool subnet.
//!
//! A cluster upgrades one pool at a time, so its need for a resource is its largest
//! pool's surge. Clusters of one wave run at once, so their needs add up when they share
//! a subscription and region (quota) or a subnet. AKS refuses a surge beyond the quota
//! (`QuotaExceeded`) or the subnet (`SubnetIsFull`); preflight reports both the cluster
//! that does not fit alone and the clusters that fit alone but not together.

use super::{CheckSettings, surge_nodes, upgraded_pools};
use crate::domain::fleet::normalize_location;
use crate::plan::ClusterPlan;
use crate::preflight::facts::{ClusterFacts, FleetFacts};
use crate::preflight::vm_sizes::{REGIONAL_CORES, lookup};
use crate::preflight::{Check, Finding, Severity};
use std::collections::BTreeMap;

/// A shared resource the surge consumes.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    /// (subscription, location, family): vCPUs.
    Quota(String, String, String),
    /// Subnet id (lower case): addresses.
    Subnet(String),
}

/// Addresses one node takes from its subnet: its own, plus one per pod with Azure CNI
/// (not Overlay), where pods get subnet addresses. `maxPods` defaults as AKS documents:
/// 30 with Azure CNI, 250 with Overlay, 110 with kubenet.
pub fn addresses_per_node(facts: &ClusterFacts, max_pods: Option<u32>) -> i64 {
    let overlay = facts
        .network_plugin_mode
        .as_deref()
        .is_some_and(|m| m.eq_ignore_ascii_case("overlay"));
    if facts.network_plugin.eq_ignore_ascii_case("azure") && !overlay {
        1 + i64::from(max_pods.unwrap_or(30))
    } else {
        1
    }
}

struct Need {
    /// The amount and the pool that needs the most.
    amount: i64,
    pool: String,
    what: String,
}

/// One cluster's needs, and findings for what cannot be checked.
fn needs(
    facts: &ClusterFacts,
    plan: &ClusterPlan,
    settings: &CheckSettings,
    out: &mut Vec<Finding>,
) -> BTreeMap<Key, Need> {
    let id = &facts.state.id;
    let loc = normalize_location(&facts.state.location);
    let mut map: BTreeMap<Key, Need> = BTreeMap::new();
    let mut put = |key: Key, amount: i64, pool: &str, what: String| {
        if amount <= 0 {
            return;
        }
        let e = map.entry(key).or_insert(Need {
            amount: 0,
            pool: pool.to_string(),
            what: what.clone(),
        });
        if amount > e.amount {
            *e = Need {
                amount,
                pool: pool.to_string(),
                what,
            };
        }
    };
    for pool in upgraded_pools(plan) {
        let Some(p) = facts.pools.get(pool) else { continue };
        let surge = i64::from(surge_nodes(p, settings));
        let size = p.vm_size.as_deref().unwrap_or("");
        match lookup(size) {
            Some((vcpus, family)) => {
                let what = format!("{} × {vcpus} vCPUs ({size})", surge_text(surge));
                let amount = surge * i64::from(vcpus);
                put(
                    Key::Quota(id.subscription.clone(), loc.clone(), family.to_string()),
                    amount,
                    pool,
                    what.clone(),
                );
                put(
                    Key::Quota(id.subscription.clone(), loc.clone(), REGIONAL_CORES.into()),
                    amount,
                    pool,
                    what,
                );
            }
            None => out.push(Finding {
                cluster: id.clone(),
                pool: Some(pool.to_string()),
                check: Check::Quota,
                severity: Severity::Warns,
                aks_code: None,
                seen: format!("VM size `{size}` is not in ringmaster's size table"),
                why: "the vCPUs its surge needs are unknown, so the quota could not be checked".into(),
                fix: "check the quota by hand (az vm list-usage), or add the size to src/preflight/vm_sizes.rs".into(),
            }),
        }
        if let Some(subnet) = &p.subnet_id {
            let per = addresses_per_node(facts, p.max_pods);
            put(
                Key::Subnet(subnet.to_ascii_lowercase()),
                surge * per,
                pool,
                format!("{} × {per} addresses", surge_text(surge)),
            );
        }
    }
    map
}

fn surge_text(n: i64) -> String {
    format!("{n} surge node{}", if n == 1 { "" } else { "s" })
}

/// Free amount of a resource, or why it is unknown.
fn free(key: &Key, fleet: &FleetFacts) -> Result<(i64, i64), String> {
    match key {
        Key::Quota(sub, loc, family) => match fleet.quotas.get(&(sub.clone(), loc.clone())) {
            None => Err(format!("the vCPU quota of {loc} was not read")),
            Some(Err(e)) => Err(format!("the vCPU quota of {loc} could not be read: {e}")),
            Some(Ok(usages)) => usages
                .iter()
                .find(|u| u.name.value.eq_ignore_ascii_case(family))
                .map(|u| (u.limit - u.current_value, u.limit))
                .ok_or_else(|| format!("{loc} lists no quota for {family}")),
        },
        Key::Subnet(id) => match fleet.subnets.get(id) {
            Some(u) => Ok((u.limit - u.used, u.limit)),
            None => {
                let vnet = id.split("/subnets/").next().unwrap_or(id);
                Err(match fleet.vnet_errors.get(vnet) {
                    Some(e) => format!("the usage of its virtual network could not be read: {e}"),
                    None => "its virtual network lists no such subnet".into(),
                })
            }
        },
    }
}

fn describe(key: &Key) -> String {
    match key {
        Key::Quota(sub, loc, family) => format!("{family} vCPU quota of subscription {sub} in {loc}"),
        Key::Subnet(id) => {
            let mut parts = id.rsplit('/');
            let subnet = parts.next().unwrap_or(id);
            let vnet = parts.nth(1).unwrap_or("");
            format!("subnet {vnet}/{subnet}")
        }
    }
}

/// The capacity findings of one wave. `members` are the wave's clusters in order.
pub fn wave(
    members: &[(&ClusterFacts, &ClusterPlan)],
    fleet: &FleetFacts,
    settings: &CheckSettings,
    wave: &str,
) -> Vec<Finding> {
    let mut out = Vec::new();
    let per: Vec<BTreeMap<Key, Need>> = members.iter().map(|(f, p)| needs(f, p, settings, &mut out)).collect();
    let mut keys: Vec<&Key> = per.iter().flat_map(|m| m.keys()).collect();
    keys.sort();
    keys.dedup();
    for key in keys {
        let (check, code, fix) = match key {
            Key::Quota(..) => (
                Check::Quota,
                "QuotaExceeded",
                "request more quota (az quota create / the portal), lower maxSurge, or put these clusters in different waves",
            ),
            Key::Subnet(_) => (
                Check::Subnet,
                "SubnetIsFull",
                "free addresses or enlarge the subnet, lower maxSurge (or maxPods), or upgrade with maxUnavailable instead of surge",
            ),
        };
        let users: Vec<(usize, &Need)> = per
            .iter()
            .enumerate()
            .filter_map(|(i, m)| m.get(key).map(|n| (i, n)))
            .collect();
        let cluster = |i: usize| members[i].0.state.id.clone();
        let (free, limit) = match free(key, fleet) {
            Ok(x) => x,
            Err(reason) => {
                // One warning per cluster and reason (a region's unreadable usages
                // would otherwise show once per family).
                for (i, n) in &users {
                    let f = Finding {
                        cluster: cluster(*i),
                        pool: Some(n.pool.clone()),
                        check,
                        severity: Severity::Warns,
                        aks_code: None,
                        seen: reason.clone(),
                        why: "the surge could not be checked against the capacity it draws on".into(),
                        fix: "grant ringmaster's identity read access to the usages (see docs/preflight.md)".into(),
                    };
                    if !out.contains(&f) {
                        out.push(f);
                    }
                }
                continue;
            }
        };
        let total: i64 = users.iter().map(|(_, n)| n.amount).sum();
        for (i, n) in &users {
            let (seen, why) = if n.amount > free {
                (
                    format!(
                        "{}: {} needed ({}), {free} free of {limit}",
                        describe(key),
                        n.amount,
                        n.what
                    ),
                    "AKS cannot add the surge nodes, so the pool upgrade fails",
                )
            } else if total > free && users.len() > 1 {
                let others: Vec<String> = users
                    .iter()
                    .filter(|(j, _)| j != i)
                    .map(|(j, _)| members[*j].0.state.id.name.clone())
                    .collect();
                (
                    format!(
                        "{}: {} needed ({}), {total} with {} in wave {wave}, {free} free of {limit}",
                        describe(key),
                        n.amount,
                        n.what,
                        others.join(", ")
                    ),
                    "it fits alone, but the wave's clusters upgrade at once and share this capacity: the ones that surge last fail",
                )
            } else {
                continue;
            };
            out.push(Finding {
                cluster: cluster(*i),
                pool: Some(n.pool.clone()),
                check,
                severity: Severity::Blocks,
                aks_code: Some(code.into()),
                seen,
                why: why.into(),
                fix: fix.into(),
            });
        }
    }
    out
}
