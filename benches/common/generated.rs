//! The generated fleets and their policy, shared by the benchmarks that rehearse them.

use std::path::Path;

const MANIFEST: &str = env!("CARGO_MANIFEST_DIR");

/// The demo fleet's durations, for the generated fleets (the template's defaults are
/// twice as long; only the time scale would change).
const DURATIONS: &str = "
durations:
  control_plane_upgrade: 4m
  node_provision: 90s
  node_reimage: 2m
  node_delete: 30s
  pod_schedule: 2s
  pod_start: 5s
";

/// The policy for the generated fleets: dev, staging, prod in waves of `max_parallel`
/// (dev, staging, prod), short soaks and settle, an approval before prod.
pub fn generated_policy(name: &str, dev: u32, staging: u32, prod: u32) -> String {
    format!(
        "name: {name}
description: generated fleet to 1.33, dev -> staging -> prod, approval before prod.
target:
  channel: pinned
  version: \"1.33\"
  node_image: latest
rings:
  - name: dev
    selector: {{ tags: {{ ring: dev }} }}
    waves:
      - name: batch
        max_parallel: {dev}
    soak: 5m
    failure_budget: {{ on_failure: halt }}
  - name: staging
    selector: {{ tags: {{ ring: staging }} }}
    waves:
      - name: batch
        max_parallel: {staging}
    soak: 5m
    failure_budget: {{ on_failure: halt }}
  - name: prod
    selector: {{ tags: {{ ring: prod }} }}
    approval:
      approvers: [platform-admins]
      expires_after: 8h
    waves:
      - name: batch
        max_parallel: {prod}
    failure_budget: {{ on_failure: halt }}
steps:
  pool_soak: 30s
  node_image: true
  drain_timeout: 10m
gates:
  pod_readiness:
    min_ready_ratio: 1.0
    exclude_namespaces: [kube-system]
    settle: 20s
    timeout: 10m
  nodes_ready: true
  no_regression: true
schedule:
  time_zone: UTC
  respect_aks_maintenance: true
"
    )
}

/// `large.yaml` with `count: n` and the demo's durations, as text.
pub fn generated_fleet_text(n: usize) -> String {
    let path = Path::new(MANIFEST).join("examples/fleets/large.yaml");
    let text = std::fs::read_to_string(&path).expect("large.yaml");
    assert!(
        text.contains("generate:\n  count: 5000\n"),
        "large.yaml no longer starts its `generate:` with `count: 5000`"
    );
    let replaced = text.replacen("generate:\n  count: 5000\n", &format!("generate:\n  count: {n}\n"), 1);
    format!("{replaced}{DURATIONS}")
}
