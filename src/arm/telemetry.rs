//! ARM call latency: `ringmaster_arm_request_duration_seconds{operation, status_class}`,
//! one observation per HTTP request sent (a retried call is several), in wall-clock time
//! whatever the daemon's clock (a rehearsal's scaled clock would inflate it).
//!
//! Both labels come from fixed sets: the operation from the method and the shape of the
//! path (never its subscription, group, cluster or pool names), the status by class,
//! with 429 apart (throttling is what an operator watches).

use crate::metrics::Metrics;
use reqwest::Method;

pub const REQUEST_DURATION: &str = "ringmaster_arm_request_duration_seconds";

/// ARM answers in tens of milliseconds; a slow one takes seconds.
const BUCKETS: &[f64] = &[0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0];

pub fn describe(m: &Metrics) {
    m.describe_histogram(
        REQUEST_DURATION,
        "Latency of ARM requests (each attempt), by operation and status class (2xx, 4xx, 429, 5xx, other, error).",
        BUCKETS,
    );
}

/// What a request does, from its method and its path (no host, no query).
pub fn operation(method: &Method, path: &str) -> &'static str {
    let segs: Vec<String> = path
        .split('/')
        .filter(|s| !s.is_empty())
        .map(str::to_ascii_lowercase)
        .collect();
    let last = segs.last().map_or("", String::as_str);
    let parent = segs.len().checked_sub(2).map_or("", |i| segs[i].as_str());
    if matches!(parent, "operations" | "operationresults" | "operationstatuses") {
        return "poll_operation";
    }
    match (method.as_str(), parent, last) {
        ("GET", "", "subscriptions") => "list_subscriptions",
        ("GET", _, "managedclusters") => "list_clusters",
        ("GET", "managedclusters", _) => "get_cluster",
        ("PUT", "managedclusters", _) => "put_cluster",
        ("GET", _, "agentpools") => "list_pools",
        ("GET", "agentpools", _) => "get_pool",
        ("PUT", "agentpools", _) => "put_agent_pool",
        ("GET", "upgradeprofiles", _) => "upgrade_profile",
        ("GET", _, "kubernetesversions") => "kubernetes_versions",
        ("GET", _, "maintenanceconfigurations") => "maintenance_configurations",
        ("GET", _, "usages") => "usages",
        ("POST", _, "upgradenodeimageversion") => "upgrade_node_image",
        ("POST", _, "abort") => "abort",
        ("POST", _, "listclusterusercredential") => "get_credentials",
        _ => "other",
    }
}

/// The class of an answer's status; `None`: no answer (connection or timeout error).
pub fn status_class(status: Option<u16>) -> &'static str {
    match status {
        None => "error",
        Some(429) => "429",
        Some(200..=299) => "2xx",
        Some(400..=499) => "4xx",
        Some(500..=599) => "5xx",
        Some(_) => "other",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn operations_by_path_shape() {
        let c = "/subscriptions/s1/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/web-1";
        let cases = [
            (Method::GET, "/subscriptions".to_string(), "list_subscriptions"),
            (
                Method::GET,
                "/subscriptions/s1/providers/Microsoft.ContainerService/managedClusters".into(),
                "list_clusters",
            ),
            (Method::GET, c.into(), "get_cluster"),
            (Method::PUT, c.into(), "put_cluster"),
            (Method::GET, format!("{c}/agentPools"), "list_pools"),
            (Method::GET, format!("{c}/agentPools/user1"), "get_pool"),
            (Method::PUT, format!("{c}/agentPools/user1"), "put_agent_pool"),
            (Method::GET, format!("{c}/upgradeProfiles/default"), "upgrade_profile"),
            (
                Method::GET,
                format!("{c}/agentPools/user1/upgradeProfiles/default"),
                "upgrade_profile",
            ),
            (
                Method::POST,
                format!("{c}/agentPools/user1/upgradeNodeImageVersion"),
                "upgrade_node_image",
            ),
            (Method::POST, format!("{c}/abort"), "abort"),
            (
                Method::POST,
                format!("{c}/listClusterUserCredential"),
                "get_credentials",
            ),
            (
                Method::GET,
                "/subscriptions/s1/providers/Microsoft.ContainerService/locations/westeurope/operations/0b9c".into(),
                "poll_operation",
            ),
            (
                Method::GET,
                "/subscriptions/s1/providers/Microsoft.ContainerService/locations/westeurope/operationresults/0b9c"
                    .into(),
                "poll_operation",
            ),
            (Method::DELETE, c.into(), "other"),
            (Method::GET, "/_sim/clock".into(), "other"),
        ];
        for (m, path, want) in cases {
            assert_eq!(operation(&m, &path), want, "{m} {path}");
        }
    }

    #[test]
    fn status_classes() {
        let got: Vec<_> = [Some(200), Some(202), Some(404), Some(429), Some(503), Some(302), None]
            .into_iter()
            .map(status_class)
            .collect();
        assert_eq!(got, ["2xx", "2xx", "4xx", "429", "5xx", "other", "error"]);
    }
}
