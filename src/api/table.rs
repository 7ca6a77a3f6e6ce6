//! Tables for the CLI client, from the API's JSON: one screen of 100 columns at most,
//! so they read well in a terminal and in a CI log. The last column gives way (cut with
//! `…`) when a row would be wider.

use serde_json::Value;

/// Widest line a table prints.
pub const WIDTH: usize = 100;

pub struct Table {
    headers: Vec<&'static str>,
    rows: Vec<Vec<String>>,
    /// Columns never cut (short fixed-form values: times, actions).
    keep: Vec<usize>,
}

impl Table {
    pub fn new(headers: &[&'static str]) -> Self {
        Table {
            headers: headers.to_vec(),
            rows: Vec::new(),
            keep: Vec::new(),
        }
    }

    /// Never cuts these columns.
    pub fn keep(mut self, cols: &[usize]) -> Self {
        self.keep = cols.to_vec();
        self
    }

    /// Cells are escaped (`crate::text`): they come from API answers.
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(
            cells
                .into_iter()
                .map(|c| crate::text::escape(&c).into_owned())
                .collect(),
        );
    }

    pub fn is_empty(&self) -> bool {
        self.rows.is_empty()
    }

    /// Columns are as wide as their widest cell; while the line is wider than
    /// [`WIDTH`], the widest column gives up a character (never below its header or 6),
    /// so the cut falls on long text, not on short names.
    pub fn render(&self) -> String {
        let n = self.headers.len();
        let mut widths: Vec<usize> = self.headers.iter().map(|h| h.chars().count()).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(n) {
                widths[i] = widths[i].max(c.chars().count());
            }
        }
        let floor: Vec<usize> = self.headers.iter().map(|h| h.chars().count().max(6)).collect();
        while widths.iter().sum::<usize>() + 2 * (n - 1) > WIDTH {
            let shrinkable = |i: &usize| widths[*i] > floor[*i] && !self.keep.contains(i);
            let Some(i) = (0..n).filter(shrinkable).max_by_key(|&i| (widths[i], i)) else {
                break;
            };
            widths[i] -= 1;
        }
        let line = |cells: Vec<&str>| -> String {
            let mut out = String::new();
            for (i, c) in cells.iter().enumerate() {
                let cell = cut(c, widths[i]);
                if i + 1 == n {
                    out.push_str(&cell);
                } else {
                    out.push_str(&format!("{cell:<w$}  ", w = widths[i]));
                }
            }
            out.trim_end().to_string() + "\n"
        };
        let mut out = line(self.headers.clone());
        for r in &self.rows {
            out.push_str(&line(r.iter().map(String::as_str).collect()));
        }
        out
    }
}

/// `s` in at most `w` characters.
pub fn cut(s: &str, w: usize) -> String {
    if s.chars().count() <= w {
        return s.to_string();
    }
    let mut out: String = s.chars().take(w.saturating_sub(1)).collect();
    out.push('…');
    out
}

fn s<'a>(v: &'a Value, key: &str) -> &'a str {
    v.get(key).and_then(Value::as_str).unwrap_or("")
}

/// `2026-05-04T10:11:12.345Z` -> `2026-05-04 10:11:12Z`.
pub fn time(v: &Value) -> String {
    let t = v.as_str().unwrap_or("");
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%Y-%m-%d %H:%M:%SZ").to_string(),
        Err(_) => t.to_string(),
    }
}

/// `v` with every string in it (keys too) [`crate::text::escape`]d: what the client's
/// tables render, so that no text from an API answer reaches the terminal as it is,
/// whichever renderer quotes it.
pub fn escaped(v: &Value) -> Value {
    let text = |s: &str| crate::text::escape(s).into_owned();
    match v {
        Value::String(s) => Value::String(text(s)),
        Value::Array(a) => Value::Array(a.iter().map(escaped).collect()),
        Value::Object(o) => Value::Object(o.iter().map(|(k, v)| (text(k), escaped(v))).collect()),
        other => other.clone(),
    }
}

/// `2026-05-04T10:11:12Z` -> `05-04 10:11Z`, for details in a cell.
fn short_time(v: &Value) -> String {
    let t = v.as_str().unwrap_or("");
    match chrono::DateTime::parse_from_rfc3339(t) {
        Ok(t) => t.with_timezone(&chrono::Utc).format("%m-%d %H:%MZ").to_string(),
        Err(_) => t.to_string(),
    }
}

/// Moved to `crate::text` (the forecast's report wraps too); re-exported for the tables.
pub use crate::text::wrap;

/// A state object (`{"state": "...", ...}`) in words, with its detail.
fn state(v: &Value) -> (String, String) {
    let st = s(v, "state");
    let detail = match st {
        "awaitingApproval" => format!("since {}", short_time(&v["since"])),
        "soaking" | "backoff" => format!("until {}", short_time(&v["until"])),
        "failed" | "halted" | "rolledBack" => s(v, "reason").to_string(),
        "paused" | "aborted" | "skipped" => format!("by {}: {}", s(v, "by"), s(v, "reason")),
        "gating" => v["last"]
            .as_str()
            .map_or("waiting for the gate".into(), |l| l.to_string()),
        _ => String::new(),
    };
    let words = match st {
        "awaitingApproval" => "awaiting approval".to_string(),
        "inFlight" => "in flight".to_string(),
        "rolledBack" => "rolled back".to_string(),
        other => other.to_string(),
    };
    (words, detail)
}

/// The forecast at the start, the ETA now and late clusters (docs/forecast.md); empty
/// when there is neither.
fn eta(r: &Value) -> String {
    let mut out = String::new();
    let at = |v: &Value| {
        if v.is_null() {
            "beyond the horizon".to_string()
        } else {
            short_time(v)
        }
    };
    if r["forecast"].is_object() {
        out.push_str(&format!(
            "Forecast at start  rollout ends {}\n",
            at(&r["forecast"]["finish"])
        ));
    }
    let e = &r["eta"];
    if e.is_object() {
        let rings: Vec<String> = e["rings"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| format!("{} {}", s(x, "name"), at(&x["finish"])))
            .collect();
        out.push_str(&format!(
            "ETA now            rollout ends {}; rings: {}\n",
            at(&e["finish"]),
            rings.join(", ")
        ));
        let late: Vec<String> = e["late"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|x| {
                format!(
                    "{} (forecast {}, now {})",
                    s(&x["cluster"], "name"),
                    short_time(&x["forecast"]),
                    at(&x["now"])
                )
            })
            .collect();
        out.push_str("Late");
        let late = if late.is_empty() {
            "none".into()
        } else {
            late.join(", ")
        };
        out.push_str(&wrap(&late, WIDTH, 15, 19));
    }
    if !out.is_empty() {
        out.push('\n');
    }
    out
}

fn step_words(kind: &Value) -> String {
    match s(kind, "kind") {
        "controlPlane" => format!("control plane {} -> {}", s(kind, "from"), s(kind, "to")),
        "poolVersion" => format!("pool {} {} -> {}", s(kind, "pool"), s(kind, "from"), s(kind, "to")),
        "nodeImage" => format!("pool {} image -> {}", s(kind, "pool"), s(kind, "to")),
        "poolRollback" => format!(
            "pool {} rollback {} -> {}",
            s(kind, "pool"),
            s(kind, "from"),
            s(kind, "to")
        ),
        other => other.to_string(),
    }
}

/// The rollout list.
pub fn rollouts(list: &Value) -> String {
    let mut t = Table::new(&["ROLLOUT", "POLICY", "STATUS", "UPDATED"]);
    for r in list["rollouts"].as_array().into_iter().flatten() {
        t.row(vec![
            s(r, "id").into(),
            s(r, "policy").into(),
            s(r, "status").into(),
            time(&r["updatedAt"]),
        ]);
    }
    if t.is_empty() {
        return "No rollouts yet.\n".into();
    }
    t.render()
}

/// The policies in force, then the claims and waits (`ringmaster claims`).
pub fn claims(v: &Value) -> String {
    let mut out = String::new();
    let mut t = Table::new(&["CLUSTER", "HELD BY", "SINCE", "DOING"]).keep(&[2]);
    for c in v["claims"].as_array().into_iter().flatten() {
        t.row(vec![
            s(c, "cluster").into(),
            s(c, "rolloutId").into(),
            time(&c["since"]),
            s(c, "doing").into(),
        ]);
    }
    if t.is_empty() {
        out.push_str("No cluster is held.\n");
    } else {
        out.push_str(&t.render());
    }
    let mut w = Table::new(&["CLUSTER", "WAITING", "PRIORITY", "SINCE"]).keep(&[3]);
    for c in v["waits"].as_array().into_iter().flatten() {
        w.row(vec![
            s(c, "cluster").into(),
            s(c, "rolloutId").into(),
            c["priority"].to_string(),
            time(&c["since"]),
        ]);
    }
    if !w.is_empty() {
        out.push('\n');
        out.push_str(&w.render());
    }
    out
}

/// The policies a daemon runs (`ringmaster status` with several rollouts).
pub fn policies(v: &Value) -> String {
    let mut t = Table::new(&["POLICY", "PRIORITY", "ON BUSY", "START", "FILE"]);
    for p in v.as_array().into_iter().flatten() {
        let file = match p["error"].as_str() {
            Some(e) => format!(
                "{} (does not compile: {})",
                s(p, "file"),
                e.lines().next().unwrap_or("")
            ),
            None => s(p, "file").into(),
        };
        t.row(vec![
            s(p, "name").into(),
            p["priority"].to_string(),
            s(p, "onBusy").into(),
            p["start"].as_str().unwrap_or("-").into(),
            file,
        ]);
    }
    if t.is_empty() { String::new() } else { t.render() }
}

/// A rollout: header, rings, clusters, then what waits for approval.
pub fn status(r: &Value, approvals: &Value) -> String {
    let (st, detail) = state(&r["status"]);
    let mut out = format!(
        "Rollout {}  policy {}  target {}\nStatus  {st}{}  (updated {})\n\n",
        s(r, "id"),
        s(r, "policy"),
        s(r, "approvalTarget"),
        if detail.is_empty() {
            String::new()
        } else {
            format!(": {detail}")
        },
        time(&r["updatedAt"])
    );
    out.push_str(&eta(r));
    let mut rings = Table::new(&["RING", "STATE", "CLUSTERS", "DETAIL"]);
    let mut clusters = Table::new(&["RING", "WAVE", "CLUSTER", "STATE", "STEP"]);
    // Gate reasons and failures are the point of looking: printed whole, not cut.
    let mut details: Vec<String> = Vec::new();
    for ring in r["rings"].as_array().into_iter().flatten() {
        let name = s(ring, "name");
        let (mut rs, mut rd) = state(&ring["status"]);
        if ring["paused"].as_bool() == Some(true) {
            rs.push_str(" (paused)");
        }
        let approvers: Vec<&str> = ring["approvers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        if rs.starts_with("awaiting") && !approvers.is_empty() {
            rd = format!("{rd}; approvers: {}", approvers.join(", "));
        }
        let (mut total, mut done, mut failed) = (0, 0, 0);
        for wave in ring["waves"].as_array().into_iter().flatten() {
            for c in wave["clusters"].as_array().into_iter().flatten() {
                total += 1;
                let (cs, mut cd) = state(&c["status"]);
                match cs.as_str() {
                    "done" => done += 1,
                    "failed" | "skipped" | "rolled back" => failed += 1,
                    _ => {}
                }
                let steps: Vec<&Value> = c["steps"].as_array().into_iter().flatten().collect();
                // A rollback, when there is one, is what the cluster does (or did) last.
                let current = steps
                    .iter()
                    .position(|st| s(&st["kind"], "kind") == "poolRollback")
                    .or_else(|| steps.iter().position(|st| s(&st["status"], "state") != "done"))
                    .unwrap_or(steps.len());
                let step = match steps.get(current) {
                    Some(st) if cs != "pending" && !cs.is_empty() => {
                        let (ss, sd) = state(&st["status"]);
                        if cd.is_empty() {
                            cd = sd;
                        }
                        format!("{}/{} {ss}: {}", current + 1, steps.len(), step_words(&st["kind"]))
                    }
                    _ => format!("{}/{}", current.min(steps.len()), steps.len()),
                };
                let cs = if c["paused"].as_bool() == Some(true) {
                    format!("{cs} (paused)")
                } else {
                    cs
                };
                let cluster = s(&c["id"], "name");
                if !cd.is_empty() {
                    details.push(wrap(&format!("{cluster}: {cd}"), WIDTH, 2, 4));
                }
                clusters.row(vec![name.into(), s(wave, "name").into(), cluster.into(), cs, step]);
            }
        }
        let counts = if failed > 0 {
            format!("{done}/{total} done, {failed} failed")
        } else {
            format!("{done}/{total} done")
        };
        rings.row(vec![name.into(), rs, counts, rd]);
    }
    out.push_str(&rings.render());
    if !clusters.is_empty() {
        out.push('\n');
        out.push_str(&clusters.render());
    }
    if !details.is_empty() {
        out.push_str("\nGate reasons and failures:\n");
        out.extend(details);
    }
    for p in approvals["pending"].as_array().into_iter().flatten() {
        let who: Vec<&str> = p["approvers"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .collect();
        out.push_str(&format!(
            "\nRing {} waits for approval by {}{}: `ringmaster approve {}`\n",
            s(p, "ring"),
            who.join(", "),
            if p["mayApprove"].as_bool() == Some(true) {
                " (you may approve)"
            } else {
                ""
            },
            s(p, "ring"),
        ));
    }
    out
}

/// The audit log.
pub fn history(audit: &Value) -> String {
    let mut t = Table::new(&["AT", "ACTOR", "ACTION", "WHAT"]).keep(&[0, 2]);
    for e in audit["entries"].as_array().into_iter().flatten() {
        let what = match (s(e, "subject"), s(e, "reason")) {
            (subject, "") => subject.to_string(),
            (subject, reason) => format!("{subject}: {reason}"),
        };
        t.row(vec![time(&e["at"]), s(e, "actor").into(), s(e, "action").into(), what]);
    }
    if t.is_empty() {
        return "The audit log is empty.\n".into();
    }
    t.render()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tables_fit_100_columns_and_cut_the_last_column() {
        let mut t = Table::new(&["A", "B"]);
        t.row(vec!["x".repeat(60), "y".repeat(200)]);
        let out = t.render();
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        assert!(out.contains('…'));
    }

    #[test]
    fn kept_columns_are_not_cut_and_wrapped_text_fits() {
        let mut t = Table::new(&["AT", "ACTION", "WHAT"]).keep(&[1]);
        t.row(vec![
            "2026-11-30 08:46:29Z".into(),
            "ring.awaiting_approval".into(),
            "w ".repeat(80),
        ]);
        let out = t.render();
        assert!(out.contains("ring.awaiting_approval"), "{out}");
        assert!(out.lines().all(|l| l.chars().count() <= WIDTH), "{out}");
        let text = wrap(&"reason ".repeat(60), WIDTH, 2, 4);
        assert!(text.lines().count() > 3);
        assert!(
            text.lines().all(|l| l.chars().count() <= WIDTH && l.starts_with("  ")),
            "{text}"
        );
    }

    #[test]
    fn a_rolled_back_cluster_shows_its_rollback_as_its_step_and_its_reason() {
        let r = serde_json::json!({
            "id": "r1", "policy": "p", "status": { "state": "running" }, "updatedAt": "2026-12-02T08:00:00Z",
            "rings": [{ "name": "staging", "status": { "state": "running" }, "waves": [{ "name": "all", "clusters": [{
                "id": { "name": "aks-stg-weu-01" },
                "status": { "state": "rolledBack", "reason": "gate failed: shop/web not Ready; pool user1 rolled back to 1.32.7" },
                "steps": [
                    { "kind": { "kind": "controlPlane", "from": "1.32.7", "to": "1.33.3" }, "status": { "state": "done" } },
                    { "kind": { "kind": "poolVersion", "pool": "user1", "from": "1.32.7", "to": "1.33.3" },
                      "status": { "state": "failed", "reason": "gate failed" } },
                    { "kind": { "kind": "poolVersion", "pool": "user2", "from": "1.32.7", "to": "1.33.3" }, "status": { "state": "pending" } },
                    { "kind": { "kind": "poolRollback", "pool": "user1", "from": "1.33.3", "to": "1.32.7" }, "status": { "state": "done" } }
                ] }] }] }]
        });
        let mut r = r;
        r["forecast"] = serde_json::json!({ "finish": "2026-12-02T09:00:00Z" });
        r["eta"] = serde_json::json!({ "finish": "2026-12-02T09:40:00Z",
            "rings": [{ "name": "staging", "finish": "2026-12-02T08:30:00Z" }],
            "late": [{ "cluster": { "name": "aks-stg-weu-01" }, "forecast": "2026-12-02T08:00:00Z", "now": "2026-12-02T08:25:00Z" }] });
        let out = status(&r, &serde_json::json!({}));
        assert!(out.contains("Forecast at start  rollout ends 12-02 09:00Z"), "{out}");
        assert!(
            out.contains("ETA now            rollout ends 12-02 09:40Z; rings: staging 12-02 08:30Z"),
            "{out}"
        );
        assert!(
            out.contains("Late               aks-stg-weu-01 (forecast 12-02 08:00Z, now 12-02 08:25Z)"),
            "{out}"
        );
        assert!(out.contains("rolled back"), "{out}");
        assert!(out.contains("pool user1 rolled back to 1.32.7"), "{out}");
        assert!(
            !out.contains("user2"),
            "the step after the failed one is not what it does: {out}"
        );
    }
}
