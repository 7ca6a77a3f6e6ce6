//! What preflight read, as plain data: the checks are pure functions of these, so unit
//! tests build them by hand and [`super::read`] fills them from ARM and the clusters.

use crate::arm::models::{ManagedCluster, Usage};
use crate::domain::MinorVersion;
use crate::domain::fleet::{ClusterId, ClusterState};
use crate::upgrades::SupportCalendar;
use std::collections::BTreeMap;

/// Everything read for one preflight run.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct FleetFacts {
    pub clusters: BTreeMap<ClusterId, ClusterFacts>,
    /// (subscription, location) → Compute usages, or why they could not be read.
    pub quotas: BTreeMap<(String, String), Result<Vec<Usage>, String>>,
    /// Subnet id (lower case) → (addresses used, addresses usable).
    pub subnets: BTreeMap<String, SubnetUse>,
    /// Virtual network id (lower case) → why its usages could not be read.
    pub vnet_errors: BTreeMap<String, String>,
    /// When each minor leaves AKS support (ARM does not publish it).
    pub support: SupportCalendar,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SubnetUse {
    pub used: i64,
    pub limit: i64,
}

/// One cluster: its discovery state, the ARM details preflight needs, and what its API
/// server showed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterFacts {
    pub state: ClusterState,
    /// `powerState.code`: Running | Stopped.
    pub power_state: String,
    /// `networkProfile.networkPlugin`: azure | kubenet | none (kubenet when absent).
    pub network_plugin: String,
    /// `networkProfile.networkPluginMode` (`overlay`).
    pub network_plugin_mode: Option<String>,
    pub pools: BTreeMap<String, PoolFacts>,
    /// The cluster's Kubernetes API, or why it could not be read.
    pub kube: Result<KubeFacts, String>,
}

/// What preflight needs of a pool beyond its version.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PoolFacts {
    pub count: u32,
    pub vm_size: Option<String>,
    pub max_surge: Option<String>,
    pub max_unavailable: Option<String>,
    pub max_pods: Option<u32>,
    /// `vnetSubnetID`: `None` for a subnet AKS manages itself (no usage to read).
    pub subnet_id: Option<String>,
}

/// `minAvailable` / `maxUnavailable`: a count or a percentage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum IntOrPercent {
    Int(i64),
    Percent(i64),
}

impl IntOrPercent {
    /// Kubernetes' reading of the value against `total` pods; percentages round up
    /// (the disruption controller uses `GetScaledValueFromIntOrPercent(.., roundUp=true)`).
    pub fn scaled(self, total: i64) -> i64 {
        match self {
            IntOrPercent::Int(n) => n,
            IntOrPercent::Percent(p) => (p * total + 99) / 100,
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        let s = s.trim();
        match s.strip_suffix('%') {
            Some(p) => p.trim().parse().ok().map(IntOrPercent::Percent),
            None => s.parse().ok().map(IntOrPercent::Int),
        }
    }
}

impl std::fmt::Display for IntOrPercent {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            IntOrPercent::Int(n) => write!(f, "{n}"),
            IntOrPercent::Percent(p) => write!(f, "{p}%"),
        }
    }
}

/// What the cluster's API server showed.
#[derive(Debug, Clone, PartialEq)]
pub struct KubeFacts {
    pub pdbs: Vec<PdbFacts>,
    pub pods: Vec<PodFacts>,
    pub nodes: Vec<NodeFacts>,
    /// The `apiserver_requested_deprecated_apis` series, or why `/metrics` could not be read.
    pub deprecated: Result<Vec<DeprecatedApi>, String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PdbFacts {
    pub namespace: String,
    pub name: String,
    /// `None`: a null selector, which selects no pod (policy/v1).
    pub selector: Option<LabelSelector>,
    pub min_available: Option<IntOrPercent>,
    pub max_unavailable: Option<IntOrPercent>,
    pub disruptions_allowed: i64,
    pub current_healthy: i64,
    pub desired_healthy: i64,
    pub expected_pods: i64,
}

/// A Kubernetes label selector (`matchLabels` and `matchExpressions`, all must hold).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LabelSelector {
    pub match_labels: BTreeMap<String, String>,
    pub match_expressions: Vec<(String, String, Vec<String>)>,
}

impl LabelSelector {
    pub fn matches(&self, labels: &BTreeMap<String, String>) -> bool {
        self.match_labels.iter().all(|(k, v)| labels.get(k) == Some(v))
            && self.match_expressions.iter().all(|(k, op, values)| {
                let got = labels.get(k);
                match op.as_str() {
                    "In" => got.is_some_and(|g| values.contains(g)),
                    "NotIn" => got.is_none_or(|g| !values.contains(g)),
                    "Exists" => got.is_some(),
                    "DoesNotExist" => got.is_none(),
                    _ => false,
                }
            })
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PodFacts {
    pub namespace: String,
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub node: Option<String>,
    pub ready: bool,
    /// Succeeded/Failed pods are not workloads a drain moves.
    pub finished: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeFacts {
    pub name: String,
    /// The `kubernetes.azure.com/agentpool` (or `agentpool`) label.
    pub pool: Option<String>,
    pub ready: bool,
}

/// One series of `apiserver_requested_deprecated_apis`.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct DeprecatedApi {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub removed_release: MinorVersion,
}

impl DeprecatedApi {
    /// `group/version resource[/subresource]`, `v1beta1 podsecuritypolicies` style for the core group.
    pub fn describe(&self) -> String {
        let gv = if self.group.is_empty() {
            self.version.clone()
        } else {
            format!("{}/{}", self.group, self.version)
        };
        if self.subresource.is_empty() {
            format!("{gv} {}", self.resource)
        } else {
            format!("{gv} {}/{}", self.resource, self.subresource)
        }
    }
}

/// The ARM details of a listed cluster that discovery's [`ClusterState`] leaves out.
pub fn cluster_facts(state: ClusterState, mc: &ManagedCluster, kube: Result<KubeFacts, String>) -> ClusterFacts {
    let p = &mc.properties;
    let net = p.network_profile.as_ref();
    ClusterFacts {
        state,
        power_state: p
            .power_state
            .as_ref()
            .and_then(|s| s.code.clone())
            .unwrap_or_else(|| "Running".into()),
        network_plugin: net
            .and_then(|n| n.network_plugin.clone())
            .unwrap_or_else(|| "kubenet".into()),
        network_plugin_mode: net.and_then(|n| n.network_plugin_mode.clone()),
        pools: p
            .agent_pool_profiles
            .iter()
            .map(|a| {
                let q = &a.properties;
                let us = q.upgrade_settings.as_ref();
                (
                    a.name.clone(),
                    PoolFacts {
                        count: q.count.unwrap_or(0),
                        vm_size: q.vm_size.clone(),
                        max_surge: us.and_then(|u| u.max_surge.clone()),
                        max_unavailable: us.and_then(|u| u.max_unavailable.clone()),
                        max_pods: q.max_pods,
                        subnet_id: q.vnet_subnet_id.clone(),
                    },
                )
            })
            .collect(),
        kube,
    }
}

/// Parses the Prometheus text exposition of `/metrics` for
/// `apiserver_requested_deprecated_apis` series (value 1: requested since the API server
/// started). Other metrics and malformed lines are ignored; a series whose
/// `removed_release` is not a minor version is too (nothing to compare it with).
pub fn parse_deprecated_metric(text: &str) -> Vec<DeprecatedApi> {
    let mut out = Vec::new();
    for line in text.lines() {
        let Some(rest) = line.strip_prefix("apiserver_requested_deprecated_apis{") else {
            continue;
        };
        let Some((labels, value)) = rest.rsplit_once('}') else {
            continue;
        };
        if value.trim().parse::<f64>().map_or(true, |v| v == 0.0) {
            continue;
        }
        let labels = parse_labels(labels);
        let get = |k: &str| labels.get(k).cloned().unwrap_or_default();
        let Ok(removed_release) = get("removed_release").parse::<MinorVersion>() else {
            continue;
        };
        out.push(DeprecatedApi {
            group: get("group"),
            version: get("version"),
            resource: get("resource"),
            subresource: get("subresource"),
            removed_release,
        });
    }
    out.sort();
    out.dedup();
    out
}

/// `a="x",b="y\"z"` → map (Prometheus escapes: `\\`, `\"`, `\n`).
fn parse_labels(s: &str) -> BTreeMap<String, String> {
    let mut out = BTreeMap::new();
    let mut chars = s.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ',' || c.is_whitespace()) {
            chars.next();
        }
        let key: String = std::iter::from_fn(|| chars.next_if(|c| *c != '=')).collect();
        if key.is_empty() || chars.next() != Some('=') || chars.next() != Some('"') {
            return out;
        }
        let mut value = String::new();
        loop {
            match chars.next() {
                None => return out,
                Some('"') => break,
                Some('\\') => match chars.next() {
                    Some('n') => value.push('\n'),
                    Some(c) => value.push(c),
                    None => return out,
                },
                Some(c) => value.push(c),
            }
        }
        out.insert(key.trim().to_string(), value);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn deprecated_metric_series_are_read_and_others_ignored() {
        let text = r#"# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.
# TYPE apiserver_requested_deprecated_apis gauge
apiserver_requested_deprecated_apis{group="policy",removed_release="1.25",resource="podsecuritypolicies",subresource="",version="v1beta1"} 1
apiserver_requested_deprecated_apis{group="flowcontrol.apiserver.k8s.io",removed_release="1.32",resource="flowschemas",subresource="status",version="v1beta3"} 1
apiserver_requested_deprecated_apis{group="x",removed_release="",resource="y",subresource="",version="v1"} 1
apiserver_requested_deprecated_apis{group="z",removed_release="1.40",resource="w",subresource="",version="v1"} 0
apiserver_request_total{code="200",verb="GET"} 12
"#;
        let got = parse_deprecated_metric(text);
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!(got[0].group, "flowcontrol.apiserver.k8s.io");
        assert_eq!(got[0].removed_release, "1.32".parse().unwrap());
        assert_eq!(
            got[0].describe(),
            "flowcontrol.apiserver.k8s.io/v1beta3 flowschemas/status"
        );
        assert_eq!(got[1].describe(), "policy/v1beta1 podsecuritypolicies");
    }

    #[test]
    fn label_values_keep_escaped_quotes_and_commas() {
        let m = parse_labels(r#"a="x,y",b="q\"r", c="""#);
        assert_eq!(m["a"], "x,y");
        assert_eq!(m["b"], "q\"r");
        assert_eq!(m["c"], "");
    }

    #[test]
    fn percentages_round_up_like_the_disruption_controller() {
        assert_eq!(IntOrPercent::parse("50%").unwrap().scaled(3), 2);
        assert_eq!(IntOrPercent::parse("0%").unwrap().scaled(3), 0);
        assert_eq!(IntOrPercent::parse("2").unwrap().scaled(3), 2);
        assert_eq!(IntOrPercent::parse("x"), None);
    }

    #[test]
    fn selectors_follow_kubernetes_semantics() {
        let labels: BTreeMap<String, String> = [("app".to_string(), "web".to_string())].into();
        let mut s = LabelSelector::default();
        assert!(s.matches(&labels), "an empty selector selects everything");
        s.match_expressions.push(("tier".into(), "DoesNotExist".into(), vec![]));
        s.match_labels.insert("app".into(), "web".into());
        assert!(s.matches(&labels));
        s.match_expressions
            .push(("app".into(), "NotIn".into(), vec!["web".into()]));
        assert!(!s.matches(&labels));
    }
}
