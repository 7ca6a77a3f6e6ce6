//! `ringmaster preflight` output: a table for people (one block per cluster, each
//! finding with what was seen, why it matters and how to fix it), JSON for scripts.

use super::{Report, Severity};

/// The report for a terminal.
pub fn table(r: &Report) -> String {
    let mut s = String::new();
    if let Some(t) = &r.target {
        let _ = crate::safe_writeln!(s, "target: {t}");
    }
    for c in &r.clusters {
        let blocking = c.blocking();
        let warnings = c.findings.len() - blocking;
        let verdict = match (blocking, warnings) {
            (0, 0) => "ok".to_string(),
            (0, w) => format!("ok, {w} warning{}", plural(w)),
            (b, w) => format!("BLOCKED: {b} blocking, {w} warning{}", plural(w)),
        };
        let _ = crate::safe_writeln!(s, "{} ({}/{}): {verdict}", c.id.name, c.ring, c.wave);
        for f in &c.findings {
            let sev = match f.severity {
                Severity::Blocks => "BLOCKS",
                Severity::Warns => "warns ",
            };
            let pool = f.pool.as_deref().map(|p| format!(" pool {p}")).unwrap_or_default();
            let code = f.aks_code.as_deref().map(|c| format!(" [{c}]")).unwrap_or_default();
            let _ = crate::safe_writeln!(s, "  {sev} {}{pool}{code}: {}", f.check.label(), f.seen);
            let _ = crate::safe_writeln!(s, "         why: {}", f.why);
            let _ = crate::safe_writeln!(s, "         fix: {}", f.fix);
        }
    }
    let warnings: usize = r.clusters.iter().map(|c| c.findings.len() - c.blocking()).sum();
    let _ = crate::safe_writeln!(
        s,
        "{} clusters checked: {} blocked ({} blocking findings), {warnings} warning{}; {} ARM and {} Kubernetes reads",
        r.clusters.len(),
        r.blocked_clusters(),
        r.blocking(),
        plural(warnings),
        r.reads.arm,
        r.reads.kube,
    );
    s
}

fn plural(n: usize) -> &'static str {
    if n == 1 { "" } else { "s" }
}

/// The report as stable JSON (camelCase, like the plan's).
pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).expect("a report serializes")
}
