//! vCPU quotas: the fleet file's `quotas:`, the simulator's own table of VM sizes, and
//! `GET .../providers/Microsoft.Compute/locations/{location}/usages` (what `az vm
//! list-usage` reads).
//!
//! Azure counts vCPUs per subscription and region at two levels, "Total Regional vCPUs"
//! (`cores`) and one per VM family (`standardDSv5Family`, ...); a VM (a surge node) is
//! refused when either would go over its limit (`rules::check_quota`). Usage here is
//! `used` (VMs outside AKS, from the fleet file) plus the vCPUs of every node that exists
//! now in a running cluster of that subscription and region, surge nodes included: so
//! two clusters upgrading at once share one budget, as they do in Azure.

use super::fleet::Compiler;
use super::world::World;
use serde::Deserialize;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use yaml_spans::Spanned;

/// One VM size: its vCPUs and the quota family they count against.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct VmSize {
    pub name: &'static str,
    pub vcpus: u32,
    pub family: &'static str,
}

const fn vm(name: &'static str, vcpus: u32, family: &'static str) -> VmSize {
    VmSize { name, vcpus, family }
}

/// The VM sizes the simulator knows. vCPUs from the sizes' pages of
/// learn.microsoft.com/azure/virtual-machines/sizes (Dsv5, Ddsv5, Dasv5, Dsv3, Esv5,
/// Fsv2, Bs series); family names as `az vm list-usage` / the usages API name them
/// (`standardDSv5Family`, "Standard DSv5 Family vCPUs"). UNVERIFIED: the family names
/// of Ddsv5 and Dasv5 (`standardDDSv5Family`, `standardDASv5Family`) follow the same
/// pattern but were not checked against a live answer.
pub const VM_SIZES: &[VmSize] = &[
    vm("Standard_B2s", 2, "standardBSFamily"),
    vm("Standard_D2s_v3", 2, "standardDSv3Family"),
    vm("Standard_D4s_v3", 4, "standardDSv3Family"),
    vm("Standard_D8s_v3", 8, "standardDSv3Family"),
    vm("Standard_D2s_v5", 2, "standardDSv5Family"),
    vm("Standard_D4s_v5", 4, "standardDSv5Family"),
    vm("Standard_D8s_v5", 8, "standardDSv5Family"),
    vm("Standard_D16s_v5", 16, "standardDSv5Family"),
    vm("Standard_D2ds_v5", 2, "standardDDSv5Family"),
    vm("Standard_D4ds_v5", 4, "standardDDSv5Family"),
    vm("Standard_D4as_v5", 4, "standardDASv5Family"),
    vm("Standard_E4s_v5", 4, "standardESv5Family"),
    vm("Standard_F4s_v2", 4, "standardFSv2Family"),
];

/// The regional total's name in the usages API ("Total Regional vCPUs").
pub const REGIONAL: &str = "cores";

/// The limit of a family (or of `cores`) that the fleet file gives none: high enough
/// that no fleet the simulator runs reaches it, so fleets without `quotas:` behave as
/// before. (Azure's real defaults vary by subscription offer; see
/// `azure-subscription-service-limits.md`, "Virtual machines limits".)
pub const DEFAULT_LIMIT: u64 = 100_000;

pub fn vm_size(name: &str) -> Option<&'static VmSize> {
    VM_SIZES.iter().find(|v| v.name.eq_ignore_ascii_case(name))
}

pub fn known_sizes() -> String {
    VM_SIZES.iter().map(|v| v.name).collect::<Vec<_>>().join(", ")
}

fn known_families() -> Vec<&'static str> {
    let mut f: Vec<&'static str> = VM_SIZES.iter().map(|v| v.family).collect();
    f.sort_unstable();
    f.dedup();
    f
}

/// `standardDSv5Family` -> "Standard DSv5 Family vCPUs"; `cores` -> "Total Regional vCPUs".
pub fn localized_name(family: &str) -> String {
    if family == REGIONAL {
        return "Total Regional vCPUs".into();
    }
    let series = family
        .strip_prefix("standard")
        .and_then(|s| s.strip_suffix("Family"))
        .unwrap_or(family);
    format!("Standard {series} Family vCPUs")
}

// ---------------------------------------------------------------- fleet file

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawQuota {
    /// Default: the fleet's only subscription.
    pub subscription: Option<Spanned<String>>,
    pub location: Spanned<String>,
    /// A VM family (`standardDSv5Family`) or `cores` (Total Regional vCPUs).
    pub family: Spanned<String>,
    pub limit: Spanned<u64>,
    /// vCPUs used by VMs outside the simulated clusters. Default 0.
    pub used: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct QuotaDef {
    pub subscription: String,
    pub location: String,
    pub family: String,
    pub limit: u64,
    pub used: u64,
}

/// The subscription an entry names, or the fleet's only one; `None` (reported, at `at`
/// when none is named) when it is not one of the fleet's.
pub(super) fn subscription(
    c: &mut Compiler,
    given: Option<&Spanned<String>>,
    at: &Spanned<String>,
    subs: &[String],
) -> Option<String> {
    match given {
        Some(s) if subs.contains(&s.value) => Some(s.value.clone()),
        Some(s) => {
            c.d.at(s, format!("subscription `{}` is not in `subscriptions`", s.value));
            None
        }
        None if subs.len() == 1 => Some(subs[0].clone()),
        None => {
            c.d.at(
                at,
                "`subscription` is required when the fleet has several subscriptions",
            );
            None
        }
    }
}

pub(super) fn compile(c: &mut Compiler, raw: &[Spanned<RawQuota>], subs: &[String]) -> Vec<QuotaDef> {
    let families = known_families();
    let mut out: Vec<QuotaDef> = Vec::new();
    for q in raw {
        let r = &q.value;
        let Some(subscription) = subscription(c, r.subscription.as_ref(), &r.family, subs) else {
            continue;
        };
        let family = r.family.value.as_str();
        if family != REGIONAL && !families.contains(&family) {
            c.d.at(
                &r.family,
                format!(
                    "unknown quota family `{family}` (known: {REGIONAL}, {})",
                    families.join(", ")
                ),
            );
            continue;
        }
        let used = r.used.as_ref().map_or(0, |u| u.value);
        if used > r.limit.value {
            c.d.at(
                &r.limit,
                format!("quota `{family}`: used {used} is more than limit {}", r.limit.value),
            );
        }
        let location = r.location.value.to_ascii_lowercase();
        if out
            .iter()
            .any(|o| o.subscription == subscription && o.location == location && o.family == family)
        {
            c.d.at(&r.family, format!("quota `{family}` in {location} is listed twice"));
            continue;
        }
        out.push(QuotaDef {
            subscription,
            location,
            family: family.to_string(),
            limit: r.limit.value,
            used,
        });
    }
    out
}

// ---------------------------------------------------------------- usage

/// What one quota stands at: (limit, current usage).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    pub limit: u64,
    pub current: u64,
}

fn same(a: &str, b: &str) -> bool {
    a.eq_ignore_ascii_case(b)
}

/// Whether the fleet file sets any quota in this subscription and region: without one
/// every limit is [`DEFAULT_LIMIT`] and checking surge nodes against it is skipped (it
/// would walk every node of the region for each surge, for nothing).
pub fn any_configured(w: &World, sub: &str, location: &str) -> bool {
    w.fleet
        .quotas
        .iter()
        .any(|q| same(&q.subscription, sub) && same(&q.location, location))
}

/// vCPUs of the nodes that exist now in running clusters of `sub` and `location`, by
/// family, with [`REGIONAL`] for the total. A stopped cluster's VMs are deallocated and
/// count for nothing (UNVERIFIED that Azure excludes deallocated AKS nodes at once).
pub fn node_vcpus(w: &World, sub: &str, location: &str) -> BTreeMap<&'static str, u64> {
    let mut by_family: BTreeMap<&'static str, u64> = BTreeMap::new();
    for c in w
        .clusters
        .iter()
        .filter(|c| same(&c.subscription, sub) && same(&c.location, location) && !c.stopped())
    {
        for n in c.kube.nodes.values() {
            if let Some(v) = vm_size(&n.vm_size) {
                *by_family.entry(v.family).or_default() += u64::from(v.vcpus);
                *by_family.entry(REGIONAL).or_default() += u64::from(v.vcpus);
            }
        }
    }
    by_family
}

/// Limit and usage of `family` (or [`REGIONAL`]) in a subscription and region.
pub fn usage(w: &World, nodes: &BTreeMap<&'static str, u64>, sub: &str, location: &str, family: &str) -> Usage {
    let q = w
        .fleet
        .quotas
        .iter()
        .find(|q| same(&q.subscription, sub) && same(&q.location, location) && q.family == family);
    Usage {
        limit: q.map_or(DEFAULT_LIMIT, |q| q.limit),
        current: q.map_or(0, |q| q.used) + nodes.get(family).copied().unwrap_or(0),
    }
}

/// Checks that `count` more VMs of `vm_size` fit the quotas of cluster `c`'s
/// subscription and region (family first, then the regional total, as the message of
/// the first one exceeded is what Azure answers).
pub fn check_new_vms(w: &World, c: usize, vm_size_name: &str, count: u32) -> Result<(), super::rules::Refusal> {
    let cl = &w.clusters[c];
    let Some(size) = vm_size(vm_size_name) else {
        return Ok(());
    };
    if count == 0 || !any_configured(w, &cl.subscription, &cl.location) {
        return Ok(());
    }
    let nodes = node_vcpus(w, &cl.subscription, &cl.location);
    let required = u64::from(size.vcpus) * u64::from(count);
    for family in [size.family, REGIONAL] {
        let u = usage(w, &nodes, &cl.subscription, &cl.location, family);
        super::rules::check_quota(family, &cl.location, u, required)?;
    }
    Ok(())
}

/// The usages list of a subscription and region: `cores` first, then every family of
/// the VM table (the only ones the fleet file may configure), by name.
pub fn usages(w: &World, sub: &str, location: &str) -> Vec<Value> {
    let nodes = node_vcpus(w, sub, location);
    let mut families: Vec<&str> = known_families();
    families.insert(0, REGIONAL);
    families
        .iter()
        .map(|f| {
            let u = usage(w, &nodes, sub, location, f);
            json!({
                "currentValue": u.current,
                "limit": u.limit,
                "name": { "value": f, "localizedValue": localized_name(f) },
                "unit": "Count",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_and_names() {
        assert_eq!(vm_size("standard_d4s_v5").map(|v| v.vcpus), Some(4));
        assert_eq!(vm_size("Standard_D4s_v5").map(|v| v.family), Some("standardDSv5Family"));
        assert!(vm_size("Standard_X1").is_none());
        assert_eq!(localized_name("standardDSv5Family"), "Standard DSv5 Family vCPUs");
        assert_eq!(localized_name("standardBSFamily"), "Standard BS Family vCPUs");
        assert_eq!(localized_name("cores"), "Total Regional vCPUs");
        assert!(known_sizes().contains("Standard_F4s_v2"));
    }
}
