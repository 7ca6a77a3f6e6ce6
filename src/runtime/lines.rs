//! The terminal line of an audit entry (`ringmaster run`, the demo): which entries a
//! person sees, and how. Apart because it is the runtime's only text for people.

use crate::store::AuditEntry;

/// One terminal line for an audit entry worth showing a person (None for the rest).
pub fn audit_line(a: &AuditEntry) -> Option<String> {
    const SHOWN: &[&str] = &[
        "ring.started",
        "ring.done",
        "ring.passed",
        "ring.awaiting_approval",
        "ring.approved",
        "ring.rejected",
        "step.started",
        "gate.passed",
        "gate.failed",
        "cluster.done",
        "cluster.failed",
        "cluster.skipped",
        "cluster.preflight_blocked",
        "cluster.rolling_back",
        "cluster.rolled_back",
        "cluster.rollback_failed",
        "rollout.succeeded",
        "rollout.halted",
        "rollout.aborted",
        "rollout.resumed",
        "step.retry",
        "step.failed",
        "paused",
        "resumed",
    ];
    if !SHOWN.contains(&a.action.as_str()) {
        return None;
    }
    let who = if a.actor == "ringmaster" {
        String::new()
    } else {
        format!(" (by {})", a.actor)
    };
    let reason: String = if a.reason.is_empty() {
        String::new()
    } else if a.reason.chars().count() > 90 {
        format!(" — {}…", a.reason.chars().take(89).collect::<String>())
    } else {
        format!(" — {}", a.reason)
    };
    Some(format!(
        "[{}] {:<22} {}{who}{reason}",
        a.at.format("%H:%M"),
        a.action,
        a.subject
    ))
}
