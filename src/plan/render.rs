//! Plans for humans (a table that fits 100 columns) and for programs (JSON), as printed by
//! `ringmaster plan --output table|json`.

use super::{Plan, Step, StepKind};
use crate::domain::NodeImageVersion;
use chrono::{DateTime, Utc};

/// The width every line of [`table`] fits in.
pub const WIDTH: usize = 100;
const TIME_COLUMN: usize = WIDTH - 16;

/// Pretty JSON of the whole plan.
pub fn json(plan: &Plan) -> String {
    serde_json::to_string_pretty(plan).expect("a plan serializes")
}

fn time(t: DateTime<Utc>) -> String {
    t.format("%Y-%m-%d %H:%M").to_string()
}

/// Words of `text` in lines of at most [`WIDTH`] columns, each starting with `indent`.
/// The text is escaped first (`crate::text`): it quotes names from the policy and ARM.
fn wrap(out: &mut String, indent: &str, text: &str) {
    let text = crate::text::escape(text);
    let mut line = String::from(indent);
    for word in text.split_whitespace() {
        let len = line.chars().count();
        if len > indent.len() && len + 1 + word.chars().count() > WIDTH {
            out.push_str(line.trim_end());
            out.push('\n');
            line = String::from(indent);
        }
        if line.len() > indent.len() {
            line.push(' ');
        }
        line.push_str(word);
    }
    if line.len() > indent.len() {
        out.push_str(&line);
        out.push('\n');
    }
}

/// `202611.12.0 -> 202611.26.0 (AKSUbuntu-2204gen2containerd)` when both share a family.
fn images(from: &str, to: &str) -> String {
    match (NodeImageVersion::parse(from), NodeImageVersion::parse(to)) {
        (Some(a), Some(b)) if a.family == b.family => format!("{} -> {}", a.version, b.version),
        _ => format!("{from} -> {to}"),
    }
}

fn describe(s: &Step) -> String {
    match &s.kind {
        StepKind::ControlPlane { from, to } => format!("control plane  {from} -> {to}"),
        StepKind::PoolVersion { pool, from, to } => format!("pool {pool}  {from} -> {to}"),
        StepKind::NodeImage { pool, from, to } => format!("node image {pool}  {}", images(from, to)),
        StepKind::PoolRollback { pool, from, to, .. } => format!("rollback {pool}  {from} -> {to}"),
    }
}

/// The plan as indented text: rings, waves, clusters, numbered steps with their earliest
/// start (UTC) and reason; then clusters with nothing to do and skipped clusters.
pub fn table(plan: &Plan) -> String {
    let mut out = String::new();
    let t = &plan.target;
    wrap(
        &mut out,
        "",
        &format!(
            "Plan for policy `{}` as of {} UTC",
            plan.policy,
            time(plan.generated_at)
        ),
    );
    let version = match (&t.version, t.patch_versions.is_empty()) {
        (Some(v), _) => v.to_string(),
        (None, false) => {
            let per: Vec<String> = t.patch_versions.values().map(|v| v.to_string()).collect();
            format!("latest patch of each minor ({})", per.join(", "))
        }
        (None, true) if t.channel == "node-image" => "no version change".into(),
        (None, true) => "none".into(),
    };
    wrap(
        &mut out,
        "",
        &format!(
            "Target: {version} (channel {}; regions {}); node images: {}",
            t.channel,
            if t.regions.is_empty() {
                "none".into()
            } else {
                t.regions.join(", ")
            },
            t.node_image
        ),
    );
    for (sku, image) in &t.consistent_images {
        wrap(&mut out, "  ", &format!("{sku}: {image}"));
    }
    if let Some(p) = &t.problem {
        wrap(&mut out, "", &format!("Problem: {p}"));
    }
    match plan.rollout_start {
        Some(s) => wrap(&mut out, "", &format!("Rollout may start: {} UTC", time(s))),
        None => wrap(&mut out, "", "Rollout may start: never (schedule.start does not fire)"),
    }
    let total: usize = plan.steps().count();
    wrap(
        &mut out,
        "",
        &format!("{total} steps; {} clusters skipped", plan.skipped.len()),
    );

    for ring in &plan.rings {
        out.push('\n');
        let approval = if ring.approvers.is_empty() {
            "no approval".to_string()
        } else {
            format!("approval by {}", ring.approvers.join(" or "))
        };
        let nb = ring
            .not_before
            .map_or(String::new(), |t| format!("; not before {} UTC", time(t)));
        wrap(&mut out, "", &format!("Ring {} ({approval}{nb})", ring.name));
        if ring.waves.is_empty() {
            wrap(&mut out, "  ", "nothing to do");
        }
        for wave in &ring.waves {
            wrap(&mut out, "  ", &format!("Wave {}", wave.name));
            for c in &wave.clusters {
                wrap(
                    &mut out,
                    "    ",
                    &format!("{} ({}, {})", c.id.name, c.id.resource_group, c.location),
                );
                for note in &c.notes {
                    wrap(&mut out, "      ", &format!("note: {note}"));
                }
                for (i, s) in c.steps.iter().enumerate() {
                    let head = format!("      {:>2}. {}", i + 1, describe(s));
                    let len = head.chars().count();
                    if len < TIME_COLUMN {
                        let _ = crate::safe_writeln!(
                            out,
                            "{head}{}{}",
                            " ".repeat(TIME_COLUMN - len),
                            time(s.earliest_start)
                        );
                    } else {
                        wrap(&mut out, "", &head);
                        wrap(&mut out, "          ", &format!("from {}", time(s.earliest_start)));
                    }
                    let until = s
                        .window_end
                        .map_or(String::new(), |e| format!(" (window open until {} UTC)", time(e)));
                    wrap(&mut out, "          ", &format!("{}{until}", s.reason));
                }
            }
        }
        if !ring.up_to_date.is_empty() {
            let names: Vec<&str> = ring.up_to_date.iter().map(|c| c.name.as_str()).collect();
            wrap(&mut out, "  ", &format!("Up to date: {}", names.join(", ")));
        }
    }
    if !plan.skipped.is_empty() {
        out.push('\n');
        wrap(&mut out, "", &format!("Skipped ({})", plan.skipped.len()));
        for s in &plan.skipped {
            let ring = s.ring.as_ref().map_or(String::new(), |r| format!(" [ring {r}]"));
            wrap(
                &mut out,
                "  ",
                &format!("{} ({}){ring}:", s.id.name, s.id.resource_group),
            );
            wrap(&mut out, "      ", &s.reason);
        }
    }
    out
}
