//! The timeline as a table (times in UTC) and as JSON.

use super::Timeline;
use chrono::{DateTime, Utc};

fn t(x: Option<DateTime<Utc>>) -> String {
    x.map_or("-".into(), |x| x.format("%a %m-%d %H:%M").to_string())
}

fn span(a: Option<DateTime<Utc>>, b: Option<DateTime<Utc>>) -> String {
    match (a, b) {
        (Some(a), Some(b)) => {
            let m = (b - a).num_minutes();
            format!("{}h{:02}m", m / 60, m % 60)
        }
        _ => "-".into(),
    }
}

/// Rings, then each cluster with its start, finish and steps' count; then the
/// assumptions. Fits 100 columns.
pub fn table(tl: &Timeline) -> String {
    let mut out = String::new();
    let _ = crate::safe_writeln!(
        out,
        "Forecast for policy `{}` from {} UTC: the rollout ends {} ({})",
        tl.policy,
        t(Some(tl.start)),
        tl.finish
            .map_or("beyond the horizon".into(), |f| format!("{} UTC", t(Some(f)))),
        span(Some(tl.start), tl.finish)
    );
    out.push('\n');
    let _ = crate::safe_writeln!(
        out,
        "{:<10} {:<16} {:<16} {:<16} {:>8}",
        "RING",
        "APPROVED",
        "START",
        "FINISH",
        "TAKES"
    );
    for r in &tl.rings {
        let _ = crate::safe_writeln!(
            out,
            "{:<10} {:<16} {:<16} {:<16} {:>8}",
            r.name,
            t(r.approved),
            t(r.start),
            t(r.finish),
            span(r.start, r.finish)
        );
    }
    out.push('\n');
    let _ = crate::safe_writeln!(
        out,
        "{:<10} {:<10} {:<22} {:<16} {:<16} {:>8} {:>5}",
        "RING",
        "WAVE",
        "CLUSTER",
        "START",
        "FINISH",
        "TAKES",
        "STEPS"
    );
    for r in &tl.rings {
        for c in &r.clusters {
            let _ = crate::safe_writeln!(
                out,
                "{:<10} {:<10} {:<22} {:<16} {:<16} {:>8} {:>5}",
                r.name,
                c.wave,
                c.id.name,
                t(c.start),
                t(c.finish),
                span(c.start, c.finish),
                c.steps.len()
            );
        }
    }
    out.push_str("\nAssumed:\n");
    for a in &tl.assumptions {
        out.push_str(&crate::text::wrap(&format!("- {a}"), 100, 0, 2));
    }
    out
}

/// The timeline as JSON (`docs/forecast.md` describes the fields).
pub fn json(tl: &Timeline) -> String {
    serde_json::to_string_pretty(tl).unwrap_or_default()
}
