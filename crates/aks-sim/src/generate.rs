//! `generate:` in a fleet file: many clusters from one template, for scale tests and
//! benchmarks (`examples/fleets/large.yaml` holds 5,000 clusters in a dozen lines).

use super::fleet::{ClusterDef, Compiler, RawGenerate, compile_pool, compile_workload};
use std::collections::BTreeMap;
use yaml_spans::Spanned;

/// Expands the template into clusters named `{prefix}-{ring}-{index:05}`, spread over
/// subscriptions and locations round-robin and over rings by their shares, in order.
pub(super) fn expand(c: &mut Compiler, g: &Spanned<RawGenerate>, subscriptions: &[String]) -> Vec<ClusterDef> {
    let r = &g.value;
    let count = r.count.value as usize;
    if count == 0 || count > 20_000 {
        c.d.at(&r.count, format!("generate.count {count} is outside 1..20000"));
        return Vec::new();
    }
    let node_os_upgrade_channel = c.one_of(
        &r.node_os_upgrade_channel,
        &["None", "Unmanaged", "NodeImage", "SecurityPatch"],
        "NodeImage",
        "node_os_upgrade_channel",
    );
    if r.locations.is_empty() || subscriptions.is_empty() {
        c.d.at(g, "generate needs at least one location and one subscription");
        return Vec::new();
    }
    let total: f64 = r.rings.iter().map(|s| s.share).sum();
    if r.rings.is_empty() || total <= 0.0 || r.rings.iter().any(|s| s.share < 0.0) {
        c.d.at(g, "generate.rings needs shares >= 0 that add up to more than 0");
        return Vec::new();
    }
    let Some(version) = c.version(&r.kubernetes_version) else {
        return Vec::new();
    };
    for p in &r.pools {
        if let Some(s) = &p.value.subnet {
            c.d.at(s, "generated clusters cannot name a subnet (they would all share it)");
        }
    }
    let pools: Vec<_> = r.pools.iter().filter_map(|p| compile_pool(c, p, version)).collect();
    let workloads: Vec<_> = r.workloads.iter().filter_map(|w| compile_workload(c, w)).collect();
    // Ring of cluster i: cumulative shares, so the split is exact and in ring order.
    let mut bounds = Vec::new();
    let mut acc = 0.0;
    for s in &r.rings {
        acc += s.share / total;
        bounds.push(((acc * count as f64).round() as usize, s.ring.clone()));
    }
    (0..count)
        .map(|i| {
            let ring = bounds
                .iter()
                .find(|(b, _)| i < *b)
                .map_or_else(|| bounds[bounds.len() - 1].1.clone(), |(_, r)| r.clone());
            let mut tags = BTreeMap::new();
            tags.insert("ring".to_string(), ring.clone());
            ClusterDef {
                subscription: subscriptions[i % subscriptions.len()].clone(),
                resource_group: format!("rg-{ring}"),
                name: format!("{}-{ring}-{i:05}", r.name_prefix),
                location: r.locations[i % r.locations.len()].clone(),
                tags,
                kubernetes_version: version,
                auto_upgrade_channel: "none".into(),
                node_os_upgrade_channel: node_os_upgrade_channel.clone(),
                entra_id: false,
                disable_local_accounts: false,
                support_plan: "KubernetesOfficial".into(),
                maintenance: BTreeMap::new(),
                pools: pools.clone(),
                workloads: workloads.clone(),
                conditions: Default::default(),
            }
        })
        .collect()
}
