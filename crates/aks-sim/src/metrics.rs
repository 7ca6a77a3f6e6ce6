//! Deprecated API usage: the fleet file's per-cluster `deprecated_api_calls:`, and the
//! cluster API server's `GET /metrics` (Prometheus text format) where it shows, as the
//! kube-apiserver does, in `apiserver_requested_deprecated_apis`.
//!
//! The metric (kubernetes `staging/src/k8s.io/apiserver/pkg/endpoints/deprecation`,
//! documented in "Kubernetes Metrics Reference" and the deprecation guide's "Locate use
//! of deprecated APIs"): a gauge, 1 for each deprecated API requested since the server
//! started, labelled `group`, `version`, `resource`, `subresource`, `removed_release`.
//! The text format writes labels sorted by name, which is the order below.

use super::fleet::Compiler;
use super::version::{KubeVersion, MinorVersion};
use serde::Deserialize;
use yaml_spans::Spanned;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDeprecatedCall {
    /// API group, `""` for the core group.
    pub group: Spanned<String>,
    pub version: Spanned<String>,
    pub resource: Spanned<String>,
    /// Default `""`.
    #[serde(default)]
    pub subresource: String,
    /// The minor that removes it, e.g. "1.25".
    pub removed_release: Spanned<String>,
}

/// One deprecated API a cluster's clients still call.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeprecatedCall {
    pub group: String,
    pub version: String,
    pub resource: String,
    pub subresource: String,
    pub removed_release: MinorVersion,
}

impl DeprecatedCall {
    /// `flowcontrol.apiserver.k8s.io.prioritylevelconfigurations.v1beta1`: how AKS's
    /// refusal names the API (`stop-cluster-upgrade-api-breaking-changes.md`).
    pub fn api_name(&self) -> String {
        let mut parts: Vec<&str> = Vec::new();
        if !self.group.is_empty() {
            parts.push(&self.group);
        }
        parts.push(&self.resource);
        if !self.subresource.is_empty() {
            parts.push(&self.subresource);
        }
        parts.push(&self.version);
        parts.join(".")
    }
}

pub(super) fn compile(c: &mut Compiler, raw: &[Spanned<RawDeprecatedCall>]) -> Vec<DeprecatedCall> {
    let mut out = Vec::new();
    for d in raw {
        let r = &d.value;
        let label_ok = |s: &str| s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'.' || b == b'-');
        for (field, v) in [("group", &r.group), ("version", &r.version), ("resource", &r.resource)] {
            if !label_ok(&v.value) || (field != "group" && v.value.is_empty()) {
                c.d.at(
                    v,
                    format!("deprecated_api_calls.{field} `{}` is not an API {field}", v.value),
                );
            }
        }
        let Ok(removed_release) = r.removed_release.value.parse::<MinorVersion>() else {
            c.d.at(
                &r.removed_release,
                format!(
                    "removed_release `{}` is not a minor version (e.g. 1.25)",
                    r.removed_release.value
                ),
            );
            continue;
        };
        out.push(DeprecatedCall {
            group: r.group.value.clone(),
            version: r.version.value.clone(),
            resource: r.resource.value.clone(),
            subresource: r.subresource.clone(),
            removed_release,
        });
    }
    out
}

fn escape(v: &str) -> String {
    v.replace('\\', "\\\\").replace('"', "\\\"").replace('\n', "\\n")
}

/// The API server's `/metrics` answer (`text/plain; version=0.0.4`): a few ordinary
/// metrics so that a parser meets more than one family, then the deprecated APIs.
/// `requests` is the count of requests this API server has served.
pub fn render(calls: &[DeprecatedCall], requests: u64, v: KubeVersion) -> String {
    let mut out = String::new();
    out.push_str("# HELP apiserver_requested_deprecated_apis [STABLE] Gauge of deprecated APIs that have been requested, broken out by API group, version, resource, subresource, and removed_release.\n");
    out.push_str("# TYPE apiserver_requested_deprecated_apis gauge\n");
    for d in calls {
        out.push_str(&format!(
            "apiserver_requested_deprecated_apis{{group=\"{}\",removed_release=\"{}\",resource=\"{}\",subresource=\"{}\",version=\"{}\"}} 1\n",
            escape(&d.group),
            d.removed_release,
            escape(&d.resource),
            escape(&d.subresource),
            escape(&d.version),
        ));
    }
    out.push_str("# HELP apiserver_storage_objects [STABLE] Number of stored objects at the time of last check split by kind. In case of a fetching error, the value will be -1.\n");
    out.push_str("# TYPE apiserver_storage_objects gauge\n");
    out.push_str("apiserver_storage_objects{resource=\"pods\"} 0\n");
    out.push_str("# HELP kubernetes_build_info [ALPHA] A metric with a constant '1' value labeled by major, minor, git version, git commit, git tree state, build date, Go version, and compiler from which Kubernetes was built, and platform on which it is running.\n");
    out.push_str("# TYPE kubernetes_build_info gauge\n");
    out.push_str(&format!(
        "kubernetes_build_info{{build_date=\"2025-01-01T00:00:00Z\",compiler=\"gc\",git_commit=\"0000000000000000000000000000000000000000\",git_tree_state=\"clean\",git_version=\"v{v}\",go_version=\"go1.24.4\",major=\"{}\",minor=\"{}\",platform=\"linux/amd64\"}} 1\n",
        v.major, v.minor
    ));
    out.push_str("# HELP process_start_time_seconds [ALPHA] Start time of the process since unix epoch in seconds.\n");
    out.push_str("# TYPE process_start_time_seconds gauge\n");
    out.push_str("process_start_time_seconds 1.7356896e+09\n");
    out.push_str("# HELP apiserver_request_total [STABLE] Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code.\n");
    out.push_str("# TYPE apiserver_request_total counter\n");
    out.push_str(&format!(
        "apiserver_request_total{{code=\"200\",component=\"apiserver\",dry_run=\"\",group=\"\",resource=\"pods\",scope=\"cluster\",subresource=\"\",verb=\"LIST\",version=\"v1\"}} {requests}\n"
    ));
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_metric_has_the_api_servers_labels_in_order() {
        let calls = [DeprecatedCall {
            group: "policy".into(),
            version: "v1beta1".into(),
            resource: "podsecuritypolicies".into(),
            subresource: String::new(),
            removed_release: MinorVersion::new(1, 25),
        }];
        let text = render(&calls, 3, KubeVersion::new(1, 32, 7));
        assert!(text.contains("apiserver_requested_deprecated_apis{group=\"policy\",removed_release=\"1.25\",resource=\"podsecuritypolicies\",subresource=\"\",version=\"v1beta1\"} 1\n"), "{text}");
        assert!(text.contains("# TYPE apiserver_requested_deprecated_apis gauge\n"));
        assert_eq!(calls[0].api_name(), "policy.podsecuritypolicies.v1beta1");
    }
}
