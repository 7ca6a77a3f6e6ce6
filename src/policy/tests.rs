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
