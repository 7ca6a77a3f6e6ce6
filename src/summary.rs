//! The end of a rollout's story, as `demo` and `run` print it: a line per cluster with
//! its outcome (upgraded, rolled back, failed and why, skipped by whom and why), the
//! time each ring took and the gates that failed. One function, so that what a person
//! reads at the end of a rehearsal is what they read at the end of the real rollout.

use crate::domain::fleet::FleetSnapshot;
use crate::engine::{ClusterStatus, Rollout};
use crate::store::AuditEntry;
use std::io::Write;
use std::time::Duration;

/// What the summary needs from the audit trail as it goes by: when each ring started
/// and each gate failure with its reason (the rollout's final state keeps neither).
#[derive(Debug, Default, Clone)]
pub struct Story {
    pub ring_times: Vec<(String, chrono::DateTime<chrono::Utc>)>,
    pub gate_failures: Vec<String>,
}

impl Story {
    pub fn observe(&mut self, a: &AuditEntry) {
        match a.action.as_str() {
            "gate.failed" => self.gate_failures.push(format!("{}: {}", a.subject, a.reason)),
            "ring.started" => self.ring_times.push((a.subject.clone(), a.at)),
            _ => {}
        }
    }
}

pub(crate) fn truncate(s: &str, n: usize) -> String {
    if s.chars().count() <= n {
        s.to_string()
    } else {
        format!("{}…", s.chars().take(n - 1).collect::<String>())
    }
}

/// Prints the summary. `before`/`after` are the fleet as planned and as discovered at
/// the end, for the versions columns; `None` (a resumed rollout, a discovery that
/// failed) prints `?` there rather than withholding the outcomes.
pub fn print(
    out: &mut impl Write,
    before: Option<&FleetSnapshot>,
    after: Option<&FleetSnapshot>,
    r: &Rollout,
    story: &Story,
    elapsed: Duration,
    now: chrono::DateTime<chrono::Utc>,
) {
    let _ = writeln!(
        out,
        "\nSummary ({:.0}s on this machine, {} on the rollout's clock)",
        elapsed.as_secs_f64(),
        fmt_dur(r.updated_at - r.created_at)
    );
    let _ = writeln!(
        out,
        "{:<8} {:<16} {:<22} {:<22} RESULT",
        "RING", "CLUSTER", "BEFORE (cp/pools)", "AFTER (cp/pools)"
    );
    for ring in &r.rings {
        for w in &ring.waves {
            for c in &w.clusters {
                let desc = |s: Option<&FleetSnapshot>| {
                    s.and_then(|s| s.clusters.iter().find(|x| x.id == c.id))
                        .map_or("?".into(), |x| {
                            let mut pools: Vec<String> = x
                                .pools
                                .iter()
                                .map(|p| {
                                    format!(
                                        "{}.{}",
                                        p.version.minor_version().major,
                                        p.version.minor_version().minor
                                    )
                                })
                                .collect();
                            pools.dedup();
                            format!("{}/{}", x.control_plane, pools.join(","))
                        })
                };
                let result = match &c.status {
                    ClusterStatus::Done => "upgraded".to_string(),
                    ClusterStatus::Failed { reason } => format!("FAILED: {}", truncate(reason, 60)),
                    ClusterStatus::RolledBack { .. } => "ROLLED BACK: workloads Ready again".to_string(),
                    ClusterStatus::Skipped { by, reason } => format!("skipped by {by}: {}", truncate(reason, 60)),
                    other => format!("{other:?}"),
                };
                let _ = writeln!(
                    out,
                    "{:<8} {:<16} {:<22} {:<22} {}",
                    ring.name,
                    c.id.name,
                    desc(before),
                    desc(after),
                    result
                );
            }
        }
    }
    for (name, start) in &story.ring_times {
        let end = r
            .rings
            .iter()
            .find(|x| &x.name == name)
            .and_then(|x| x.finished_at)
            .unwrap_or(now);
        let _ = writeln!(out, "ring {name}: {}", fmt_dur(end - *start));
    }
    if story.gate_failures.is_empty() {
        let _ = writeln!(out, "gate failures: none");
    } else {
        for g in &story.gate_failures {
            let _ = writeln!(out, "gate failure: {}", truncate(g, 140));
        }
    }
}

fn fmt_dur(d: chrono::Duration) -> String {
    let m = d.num_minutes();
    format!("{}h{:02}m", m / 60, m % 60)
}
