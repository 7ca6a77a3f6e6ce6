//! Unit tests of the compiler; the shipped policies and the broken-policy corpus are
//! tested in `tests/policies.rs`.

use super::*;

const MINIMAL: &str =
    "name: p\ntarget: { channel: rapid }\nrings:\n  - name: dev\n    selector: { tags: { ring: dev } }\n";

#[test]
fn minimal_policy_gets_safe_defaults() {
    let p = compile("p.yaml", MINIMAL).unwrap();
    assert_eq!(p.target.channel, Channel::Rapid);
    assert_eq!(p.target.node_image, NodeImageMode::Latest);
    let ring = &p.rings[0];
    assert_eq!(
        ring.waves,
        vec![Wave {
            name: "all".into(),
            members: WaveMembers::MaxParallel(1)
        }]
    );
    assert_eq!(ring.failure_budget.on_failure, OnFailure::Halt);
    assert!(ring.approval.is_none());
    assert!(p.steps.node_image);
    assert_eq!(p.gates.pod_readiness.min_ready_ratio, 1.0);
    assert!(p.schedule.respect_aks_maintenance);
    assert_eq!(p.schedule.time_zone, chrono_tz::UTC);
}

#[test]
fn errors_carry_positions_and_come_all_at_once() {
    let text = "\
name: p
target: { channel: pinned, version: \"1.x\" }
rings:
  - name: dev
    selector: { tags: { ring: dev } }
    soak: 10 minutes
  - name: dev
    selector: { tags: { ring: prod } }
schedule:
  time_zone: Europe/Berlinn
";
    let e = compile("p.yaml", text).unwrap_err();
    let lines: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    assert!(lines[0].starts_with("p.yaml:2:"), "{lines:#?}");
    assert!(lines[0].contains("not a Kubernetes version"));
    assert!(lines[1].starts_with("p.yaml:6:11: "), "{lines:#?}");
    assert!(
        lines[2].contains("duplicate ring name: `dev` (first on line 4)"),
        "{lines:#?}"
    );
    assert!(lines[3].contains("unknown time zone"), "{lines:#?}");
}

#[test]
fn unknown_fields_are_rejected() {
    let e = compile("p.yaml", &format!("{MINIMAL}colour: blue\n")).unwrap_err();
    assert!(e.to_string().contains("colour"), "{e}");
}

#[test]
fn on_gate_failure_defaults_to_hold_and_a_ring_overrides_the_fleet_default() {
    assert_eq!(
        compile("p.yaml", MINIMAL).unwrap().rings[0].on_gate_failure,
        OnGateFailure::Hold
    );
    let text = "\
name: p
target: { channel: rapid }
on_gate_failure: rollback
rings:
  - name: dev
    selector: { tags: { ring: dev } }
  - name: prod
    selector: { tags: { ring: prod } }
    on_gate_failure: hold
";
    let p = compile("p.yaml", text).unwrap();
    let modes: Vec<OnGateFailure> = p.rings.iter().map(|r| r.on_gate_failure).collect();
    assert_eq!(modes, [OnGateFailure::Rollback, OnGateFailure::Hold]);
    let bad = text.replace("on_gate_failure: hold", "on_gate_failure: revert");
    let e = compile("p.yaml", &bad).unwrap_err().to_string();
    assert!(e.contains("p.yaml:9:22") && e.contains("on_gate_failure"), "{e}");
}

#[test]
fn pools_default_to_every_pool_and_every_given_criterion_must_hold() {
    use crate::domain::fleet::{OsType, PoolMode, PoolState};
    assert!(compile("p.yaml", MINIMAL).unwrap().pools.is_all());
    let text = format!(
        "{MINIMAL}pools:\n  os_type: windows\n  os_sku: [windows2022]\n  mode: User\n  names: [\"WIN*\", \"x?\"]\n"
    );
    let f = compile("p.yaml", &text).unwrap_or_else(|e| panic!("{e}")).pools;
    // Values are case-insensitive and kept as AKS spells them.
    assert_eq!(f.os_type, Some(OsType::Windows));
    assert_eq!(f.os_sku, ["Windows2022"]);
    assert_eq!(f.mode, Some(PoolMode::User));
    let pool = |name: &str, os_type, os_sku: &str, mode| PoolState {
        name: name.into(),
        mode,
        os_type,
        os_sku: os_sku.into(),
        version: "1.33.3".parse().unwrap(),
        node_image: String::new(),
        provisioning_state: "Succeeded".into(),
    };
    let (win, lin) = (OsType::Windows, OsType::Linux);
    assert!(f.matches(&pool("win1", win, "Windows2022", PoolMode::User)));
    assert!(f.matches(&pool("xy", win, "WINDOWS2022", PoolMode::User)));
    // Each criterion alone turns the match off.
    assert!(!f.matches(&pool("user1", win, "Windows2022", PoolMode::User)), "names");
    assert!(!f.matches(&pool("win1", lin, "Windows2022", PoolMode::User)), "os_type");
    assert!(!f.matches(&pool("win1", win, "Windows2019", PoolMode::User)), "os_sku");
    assert!(!f.matches(&pool("win1", win, "Windows2022", PoolMode::System)), "mode");
}

#[test]
fn pool_filter_errors_name_line_field_and_the_values_allowed() {
    let text = format!(
        "{MINIMAL}pools:\n  os_type: Linux\n  os_sku: [Ubuntu, Windows2022, Debian]\n  mode: Worker\n  names: [\"user-1\"]\n"
    );
    let e = compile("p.yaml", &text).unwrap_err();
    let lines: Vec<String> = e.0.iter().map(|e| e.to_string()).collect();
    assert_eq!(lines.len(), 4, "{lines:#?}");
    let has = |prefix: &str, needle: &str| lines.iter().any(|l| l.starts_with(prefix) && l.contains(needle));
    assert!(
        has("p.yaml:9:9: ", "pools.mode `Worker` is not one of: System, User"),
        "{lines:#?}"
    );
    assert!(
        has(
            "p.yaml:8:20: ",
            "pools.os_sku `Windows2022` is a Windows SKU, but pools.os_type is Linux"
        ),
        "{lines:#?}"
    );
    assert!(
        has(
            "p.yaml:8:33: ",
            "pools.os_sku `Debian` is not one of: Ubuntu, Ubuntu2204"
        ),
        "{lines:#?}"
    );
    assert!(
        has("p.yaml:10:11: ", "pools.names `user-1` is not a pool name or glob"),
        "{lines:#?}"
    );
    let e = compile("p.yaml", &format!("{MINIMAL}pools: {{ os_type: Solaris }}\n")).unwrap_err();
    assert!(
        e.to_string()
            .contains("p.yaml:6:19: pools.os_type `Solaris` is not one of: Linux, Windows"),
        "{e}"
    );
    let e = compile("p.yaml", &format!("{MINIMAL}pools: {{}}\n")).unwrap_err();
    assert!(e.to_string().contains("p.yaml:6:8: `pools` is empty"), "{e}");
    let e = compile("p.yaml", &format!("{MINIMAL}pools: {{ os: Linux }}\n")).unwrap_err();
    assert!(
        e.to_string().contains("p.yaml:6:") && e.to_string().contains("`os`"),
        "{e}"
    );
}
