//! A cluster's conditions in the fleet file: power and provisioning state, network
//! plugin, the deprecated APIs its clients call, and the subnets its pools use. Compiled
//! here (out of `fleet.rs`) because they are what AKS's upgrade protections look at.

use super::fleet::{Compiler, RawCluster};
use super::network::VnetDef;
use super::version::{KubeVersion, MinorVersion};
use yaml_spans::Spanned;

/// What a cluster is like beyond versions and pools: the state it starts in, its
/// network, its clients' deprecated API calls. All of it conditions what AKS accepts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClusterConditions {
    pub stopped: bool,
    /// The cluster starts with `provisioningState: Failed` (a PUT reconciles it).
    pub failed: bool,
    /// azure | kubenet | none.
    pub network_plugin: String,
    /// `Some("overlay")`, or `None` (classic Azure CNI, or another plugin).
    pub network_plugin_mode: Option<String>,
    pub deprecated_api_calls: Vec<super::metrics::DeprecatedCall>,
}

impl Default for ClusterConditions {
    /// What the simulator always modelled: running, Azure CNI Overlay.
    fn default() -> Self {
        Self {
            stopped: false,
            failed: false,
            network_plugin: "azure".into(),
            network_plugin_mode: Some("overlay".into()),
            deprecated_api_calls: Vec::new(),
        }
    }
}

impl ClusterConditions {
    /// Azure CNI without overlay: pods take addresses of the node's subnet.
    pub fn classic_azure_cni(&self) -> bool {
        self.network_plugin == "azure" && self.network_plugin_mode.is_none()
    }

    /// AKS's default `maxPods` for this network. `quotas-skus-regions.md`, "Maximum pods
    /// per node": kubenet "Azure Resource Manager template default: 110", Azure CNI
    /// "Default: 30". UNVERIFIED: 250 for Azure CNI Overlay (`azure-cni-overlay.md`
    /// from memory) and for `none` (bring your own CNI).
    pub fn default_max_pods(&self) -> u32 {
        match self.network_plugin.as_str() {
            "kubenet" => 110,
            "azure" if self.classic_azure_cni() => 30,
            _ => 250,
        }
    }
}

/// The cluster fields of `ClusterConditions`, checked.
pub(super) fn compile(c: &mut Compiler, r: &RawCluster) -> ClusterConditions {
    let d = ClusterConditions::default();
    let stopped = c.one_of(&r.power_state, &["Running", "Stopped"], "Running", "power_state") == "Stopped";
    let failed = c.one_of(
        &r.provisioning_state,
        &["Succeeded", "Failed"],
        "Succeeded",
        "provisioning_state",
    ) == "Failed";
    let network_plugin = c.one_of(
        &r.network_plugin,
        &["azure", "kubenet", "none"],
        &d.network_plugin,
        "network_plugin",
    );
    let mode = c.one_of(
        &r.network_plugin_mode,
        &["overlay", "none"],
        "overlay",
        "network_plugin_mode",
    );
    let network_plugin_mode = match (network_plugin.as_str(), &r.network_plugin_mode) {
        ("azure", _) => (mode == "overlay").then(|| mode.clone()),
        (_, Some(m)) if mode == "overlay" => {
            c.d.at(m, "network_plugin_mode overlay needs network_plugin azure");
            None
        }
        _ => None,
    };
    ClusterConditions {
        stopped,
        failed,
        network_plugin,
        network_plugin_mode,
        deprecated_api_calls: super::metrics::compile(c, &r.deprecated_api_calls),
    }
}

/// A pool's `subnet: vnet/subnet`: a subnet of `virtual_networks` in the cluster's
/// subscription and region.
pub(super) fn resolve_subnet(
    c: &mut Compiler,
    s: &Spanned<String>,
    nets: &[VnetDef],
    subscription: &str,
    location: &str,
) -> Option<(usize, usize)> {
    let Some((vi, si)) = super::network::find(nets, subscription, &s.value) else {
        let known: Vec<String> = nets
            .iter()
            .filter(|v| v.subscription == subscription)
            .flat_map(|v| v.subnets.iter().map(move |x| format!("{}/{}", v.name, x.name)))
            .collect();
        c.d.at(
            s,
            format!(
                "subnet `{}` is not in `virtual_networks` (known: {})",
                s.value,
                if known.is_empty() {
                    "none".to_string()
                } else {
                    known.join(", ")
                }
            ),
        );
        return None;
    };
    if !nets[vi].location.eq_ignore_ascii_case(location) {
        c.d.at(
            s,
            format!(
                "subnet `{}` is in {}, the cluster in {location}",
                s.value, nets[vi].location
            ),
        );
    }
    Some((vi, si))
}

/// Deprecated API calls must name an API the cluster's version still serves: one
/// removed in a later minor.
pub(super) fn check_removed_releases(c: &mut Compiler, r: &RawCluster, cv: KubeVersion) {
    // The API server only serves (and counts calls to) APIs it has not removed yet.
    for d in &r.deprecated_api_calls {
        if let Ok(removed) = d.value.removed_release.value.parse::<MinorVersion>()
            && removed <= cv.minor_version()
        {
            c.d.at(
                &d.value.removed_release,
                format!("removed_release {removed} is not later than the cluster's version {cv}"),
            );
        }
    }
}
