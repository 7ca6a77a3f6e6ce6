//! Virtual networks and subnets: the fleet file's `virtual_networks:`, how many
//! addresses each AKS node takes, and `GET .../Microsoft.Network/virtualNetworks/{vnet}/usages`
//! (`az network vnet list-usage`).
//!
//! Addresses (`concepts-network-ip-address-planning.md`, and the InsufficientSubnetSize
//! troubleshooting article, "Operation 2: Upgrading an AKS cluster or an AKS node
//! pool"): "Kubenet: The number of buffer nodes ...; Azure CNI: The number of buffer nodes
//! ... times the node pool value in the --max-pod parameter; Azure CNI Overlay: The
//! number of buffer nodes". So with Azure CNI in its classic (non-overlay) mode a node
//! takes 1 + maxPods addresses (its own and one per pod it may run), otherwise 1.
//! Azure reserves 5 addresses in every subnet (the SubnetIsFull troubleshooting
//! article: "Azure reserves five (5) IP addresses in each subnet"); the usages API
//! reports `limit` = size - 5 (`Get-AzVirtualNetworkUsageList` example: a /24 shows
//! "Limit : 251", a /16 "Limit : 65531").

use super::fleet::Compiler;
use super::world::World;
use serde::Deserialize;
use serde_json::{Value, json};
use yaml_spans::Spanned;

/// Addresses Azure keeps in every subnet.
pub const RESERVED: u64 = 5;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawVnet {
    pub name: Spanned<String>,
    pub resource_group: Spanned<String>,
    /// Default: the fleet's only subscription.
    pub subscription: Option<Spanned<String>>,
    pub location: Spanned<String>,
    pub subnets: Vec<Spanned<RawSubnet>>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawSubnet {
    pub name: Spanned<String>,
    /// IPv4 CIDR, e.g. `10.1.0.0/24`: its size is 2^(32 - length).
    pub prefix: Spanned<String>,
    /// Addresses taken by things other than the simulated clusters. Default 0.
    pub used: Option<Spanned<u64>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VnetDef {
    pub subscription: String,
    pub resource_group: String,
    pub name: String,
    pub location: String,
    pub subnets: Vec<SubnetDef>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SubnetDef {
    pub name: String,
    pub prefix: String,
    /// Every address of the prefix (2^(32 - length)).
    pub size: u64,
    pub used: u64,
}

impl VnetDef {
    pub fn id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}/providers/Microsoft.Network/virtualNetworks/{}",
            self.subscription, self.resource_group, self.name
        )
    }

    pub fn subnet_id(&self, subnet: &str) -> String {
        format!("{}/subnets/{subnet}", self.id())
    }
}

/// The size of an IPv4 CIDR, or why it is not one.
pub fn prefix_size(cidr: &str) -> Result<u64, String> {
    let bad = || format!("`{cidr}` is not an IPv4 prefix (e.g. 10.1.0.0/24)");
    let (addr, len) = cidr.split_once('/').ok_or_else(bad)?;
    let octets: Vec<&str> = addr.split('.').collect();
    if octets.len() != 4 || !octets.iter().all(|o| o.parse::<u8>().is_ok()) {
        return Err(bad());
    }
    let len: u32 = len.parse().map_err(|_| bad())?;
    // Azure's smallest subnet is a /29 (largest /2): "The smallest supported IPv4 subnet
    // is /29, and the largest is /2" (virtual-networks-faq.md).
    if !(2..=29).contains(&len) {
        return Err(format!("`{cidr}`: Azure subnets are /2 to /29"));
    }
    Ok(1u64 << (32 - len))
}

pub(super) fn compile(c: &mut Compiler, raw: &[Spanned<RawVnet>], subs: &[String]) -> Vec<VnetDef> {
    let mut out: Vec<VnetDef> = Vec::new();
    for v in raw {
        let r = &v.value;
        let Some(subscription) = super::quota::subscription(c, r.subscription.as_ref(), &r.name, subs) else {
            continue;
        };
        if out.iter().any(|o| {
            o.subscription == subscription
                && o.resource_group.eq_ignore_ascii_case(&r.resource_group.value)
                && o.name.eq_ignore_ascii_case(&r.name.value)
        }) {
            c.d.at(&r.name, format!("virtual network `{}` is defined twice", r.name.value));
            continue;
        }
        let mut subnets: Vec<SubnetDef> = Vec::new();
        for s in &r.subnets {
            let size = match prefix_size(&s.value.prefix.value) {
                Ok(n) => n,
                Err(e) => {
                    c.d.at(&s.value.prefix, e);
                    continue;
                }
            };
            let used = s.value.used.as_ref().map_or(0, |u| u.value);
            if let Some(u) = &s.value.used
                && u.value > size - RESERVED
            {
                c.d.at(
                    u,
                    format!(
                        "subnet `{}`: used {} is more than the {} addresses a {} offers ({size} less {RESERVED} reserved)",
                        s.value.name.value,
                        u.value,
                        size - RESERVED,
                        s.value.prefix.value
                    ),
                );
            }
            if subnets.iter().any(|o| o.name.eq_ignore_ascii_case(&s.value.name.value)) {
                c.d.at(
                    &s.value.name,
                    format!("subnet `{}` is defined twice", s.value.name.value),
                );
                continue;
            }
            subnets.push(SubnetDef {
                name: s.value.name.value.clone(),
                prefix: s.value.prefix.value.clone(),
                size,
                used,
            });
        }
        if r.subnets.is_empty() {
            c.d.at(&r.name, format!("virtual network `{}` has no subnets", r.name.value));
        }
        out.push(VnetDef {
            subscription,
            resource_group: r.resource_group.value.clone(),
            name: r.name.value.clone(),
            location: r.location.value.clone(),
            subnets,
        });
    }
    out
}

/// Finds `vnet/subnet` of a subscription: (vnet index, subnet index).
pub fn find(nets: &[VnetDef], sub: &str, path: &str) -> Option<(usize, usize)> {
    let (vnet, subnet) = path.split_once('/')?;
    nets.iter().enumerate().find_map(|(vi, v)| {
        if !v.subscription.eq_ignore_ascii_case(sub) || !v.name.eq_ignore_ascii_case(vnet) {
            return None;
        }
        v.subnets
            .iter()
            .position(|s| s.name.eq_ignore_ascii_case(subnet))
            .map(|si| (vi, si))
    })
}

/// Addresses one node of a pool takes: 1, plus `max_pods` with Azure CNI in its classic
/// mode (pods get addresses of the node's subnet).
pub fn addresses_per_node(classic_azure_cni: bool, max_pods: u32) -> u64 {
    1 + if classic_azure_cni { u64::from(max_pods) } else { 0 }
}

/// Addresses of subnet (`vi`, `si`) in use now: its `used` plus every node that exists
/// in a pool placed on it, in a running cluster.
pub fn subnet_usage(w: &World, vi: usize, si: usize) -> u64 {
    let mut n = w.fleet.virtual_networks[vi].subnets[si].used;
    // A stopped cluster's VMs are deallocated (UNVERIFIED that AKS's stop frees the
    // node addresses at once).
    for c in w.clusters.iter().filter(|c| !c.stopped()) {
        for p in c.pools.iter().filter(|p| p.subnet == Some((vi, si))) {
            let nodes = c.kube.nodes.values().filter(|n| n.pool == p.name).count() as u64;
            n += nodes * addresses_per_node(c.classic_azure_cni(), p.max_pods);
        }
    }
    n
}

/// Checks that `count` more nodes of pool `pool` of cluster `c` fit its subnet.
pub fn check_new_nodes(w: &World, c: usize, pool: &str, count: u32) -> Result<(), super::rules::Refusal> {
    let cl = &w.clusters[c];
    let Some(p) = cl.pool(pool) else { return Ok(()) };
    let Some((vi, si)) = p.subnet else { return Ok(()) };
    let subnet = &w.fleet.virtual_networks[vi].subnets[si];
    let needed = u64::from(count) * addresses_per_node(cl.classic_azure_cni(), p.max_pods);
    super::rules::check_subnet(
        &cl.name,
        &p.name,
        &subnet.name,
        &subnet.prefix,
        subnet.size - RESERVED,
        subnet_usage(w, vi, si),
        needed,
    )
}

/// The usages of one virtual network: one entry per subnet, in the fleet file's order.
pub fn usages(w: &World, vi: usize) -> Value {
    let v = &w.fleet.virtual_networks[vi];
    let value: Vec<Value> = v
        .subnets
        .iter()
        .enumerate()
        .map(|(si, s)| {
            json!({
                "currentValue": subnet_usage(w, vi, si),
                "id": v.subnet_id(&s.name),
                "limit": s.size - RESERVED,
                "name": { "value": "Subnet size and usage", "localizedValue": "Subnet size and usage" },
                "unit": "Count",
            })
        })
        .collect();
    json!({ "value": value })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prefixes() {
        assert_eq!(prefix_size("10.1.0.0/24"), Ok(256));
        assert_eq!(prefix_size("10.1.0.0/29"), Ok(8));
        assert!(prefix_size("10.1.0.0/30").is_err());
        assert!(prefix_size("10.1.0/24").is_err());
        assert!(prefix_size("10.1.0.0").is_err());
        assert_eq!(addresses_per_node(true, 30), 31);
        assert_eq!(addresses_per_node(false, 250), 1);
    }
}
