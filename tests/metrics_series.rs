//! The Grafana dashboard and the Prometheus alert rules in `examples/deploy` ask for
//! series that exist: a real daemon, API and simulator in-process, the demo rollout
//! driven to the approval before prod (steps done, a gate failed and rolled back in
//! staging, ARM called), approved through the API, then `/metrics` read over HTTP.
//! Every `ringmaster_*` name in a dashboard query or an alert rule must be a series in
//! that output, with the label names it selects on; every histogram has `_bucket`s.
//!
//! The whole run is on tokio's paused clock (the simulator and the daemon follow its
//! virtual time, which jumps to the next timer when nothing is left to do): hours of
//! rollout without waiting, and no wall-clock timing.

mod common;

use common::daemon::serve_demo;
use ringmaster::api::auth::{Auth, parse_tokens, token_digest_hex};
use ringmaster::demo::Rehearsal;
use ringmaster::engine::{NotifyEvent, RingStatus, Rollout};
use ringmaster::metrics::Metrics;
use ringmaster::service::Control;
use ringmaster::service::daemon::Daemon;
use ringmaster::store::Store;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

const ADMIN: &str = "rmt_metrics-test-platform-admin";

fn deploy(rel: &str) -> String {
    let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/deploy").join(rel);
    std::fs::read_to_string(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()))
}

/// Every PromQL expression of the dashboard: `expr` of each panel's targets (rows
/// nest panels) and of the templating queries.
fn dashboard_exprs(v: &Value, out: &mut Vec<String>) {
    match v {
        Value::Object(m) => {
            for (k, x) in m {
                match (k.as_str(), x) {
                    ("expr", Value::String(e)) => out.push(e.clone()),
                    ("query", Value::String(e)) if e.contains("ringmaster_") => out.push(e.clone()),
                    _ => dashboard_exprs(x, out),
                }
            }
        }
        Value::Array(a) => a.iter().for_each(|x| dashboard_exprs(x, out)),
        _ => {}
    }
}

/// Every alert rule's `expr`, by alert name.
fn alert_exprs(yaml: &str) -> BTreeMap<String, String> {
    #[derive(serde::Deserialize)]
    struct File {
        groups: Vec<Group>,
    }
    #[derive(serde::Deserialize)]
    struct Group {
        rules: Vec<Rule>,
    }
    #[derive(serde::Deserialize)]
    struct Rule {
        alert: String,
        expr: String,
    }
    let f: File = serde_saphyr::from_str(yaml).expect("the alert rules parse");
    f.groups
        .into_iter()
        .flat_map(|g| g.rules)
        .map(|r| (r.alert, r.expr))
        .collect()
}

/// A selector in an expression: a series name, the label names it matches on, the
/// values its equality matchers ask for (`state="halted"`), and the labels an
/// aggregation around it groups by (`sum by (result) (...)`).
#[derive(Debug)]
struct Selector {
    name: String,
    labels: Vec<String>,
    values: Vec<(String, String)>,
    by: Vec<String>,
}

/// The spans of an expression an aggregation's `by (...)` applies to: the parenthesized
/// argument that follows the label list, with those labels.
fn groupings(expr: &str) -> Vec<(usize, usize, Vec<String>)> {
    let b = expr.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = expr[i..].find("by") {
        let start = i + at;
        i = start + 2;
        let word = |c: u8| c.is_ascii_alphanumeric() || c == b'_';
        if (start > 0 && word(b[start - 1])) || b.get(start + 2).is_some_and(|c| word(*c)) {
            continue;
        }
        let rest = expr[start + 2..].trim_start();
        let Some(list) = rest.strip_prefix('(') else { continue };
        let Some(close) = list.find(')') else { continue };
        let labels: Vec<String> = list[..close]
            .split(',')
            .map(|l| l.trim().to_string())
            .filter(|l| !l.is_empty())
            .collect();
        // The argument: the next `(` after the label list, to its matching `)`.
        let after = expr.len() - list.len() + close + 1;
        let Some(open) = expr[after..].find('(').map(|j| after + j) else {
            continue;
        };
        let mut depth = 0;
        let mut end = expr.len();
        for (j, c) in expr[open..].char_indices() {
            match c {
                '(' => depth += 1,
                ')' => {
                    depth -= 1;
                    if depth == 0 {
                        end = open + j;
                        break;
                    }
                }
                _ => {}
            }
        }
        out.push((open, end, labels));
    }
    out
}

/// The `ringmaster_*` selectors of a PromQL expression, crudely: a name, then label
/// matchers if a `{` follows at once, and the `by` labels of the aggregations around
/// it. Names in `by (...)` are labels, not series: only `ringmaster_` identifiers count.
/// Values with a Grafana variable (`$...`) and regex or negative matchers are left out.
fn selectors(expr: &str) -> Vec<Selector> {
    let groups = groupings(expr);
    let mut out = Vec::new();
    let b = expr.as_bytes();
    let mut i = 0;
    while let Some(at) = expr[i..].find("ringmaster_") {
        let start = i + at;
        let ident = |c: u8| c.is_ascii_lowercase() || c.is_ascii_digit() || c == b'_';
        if start > 0 && (ident(b[start - 1]) || b[start - 1].is_ascii_uppercase()) {
            i = start + 1;
            continue;
        }
        let mut end = start;
        while end < b.len() && ident(b[end]) {
            end += 1;
        }
        let mut labels = Vec::new();
        let mut values = Vec::new();
        if b.get(end) == Some(&b'{') {
            let close = expr[end..].find('}').map(|j| end + j).expect("an unclosed selector");
            for m in expr[end + 1..close].split(',') {
                let m = m.trim();
                let key: String = m
                    .chars()
                    .take_while(|c| c.is_ascii_alphanumeric() || *c == '_')
                    .collect();
                if key.is_empty() {
                    continue;
                }
                let op = m[key.len()..].trim_start();
                if let Some(v) = op.strip_prefix('=')
                    && !v.starts_with('~')
                {
                    let v = v.trim().trim_matches('"');
                    if !v.contains('$') {
                        values.push((key.clone(), v.to_string()));
                    }
                }
                labels.push(key);
            }
            end = close;
        }
        let by: Vec<String> = groups
            .iter()
            .filter(|(from, to, _)| *from < start && start < *to)
            .flat_map(|(_, _, l)| l.clone())
            .collect();
        out.push(Selector {
            name: expr[start..end.min(b.len())].split('{').next().unwrap().to_string(),
            labels,
            values,
            by,
        });
        i = end;
    }
    out
}

/// What a scrape exposes: each sample name with the label names its samples carry and
/// the (label, value) pairs they hold, and each family's type.
#[derive(Debug, Default)]
struct Exposition {
    samples: BTreeMap<String, BTreeSet<String>>,
    values: BTreeMap<String, BTreeSet<(String, String)>>,
    types: BTreeMap<String, String>,
}

fn parse(text: &str) -> Exposition {
    let mut e = Exposition::default();
    for line in text.lines() {
        if let Some(t) = line.strip_prefix("# TYPE ") {
            let (name, kind) = t.split_once(' ').expect("a TYPE line names a type");
            e.types.insert(name.into(), kind.into());
            continue;
        }
        if line.starts_with('#') || line.is_empty() {
            continue;
        }
        let name_end = line.find(['{', ' ']).expect("a sample has a value");
        let name = line[..name_end].to_string();
        let labels = e.samples.entry(name.clone()).or_default();
        let values = e.values.entry(name).or_default();
        if line.as_bytes()[name_end] == b'{' {
            let close = line.rfind('}').expect("labels close");
            // Values may hold commas: keys are what precedes `="`.
            for part in line[name_end + 1..close].split("\",") {
                if let Some((k, v)) = part.split_once("=\"") {
                    let k = k.trim_start_matches(',').to_string();
                    values.insert((k.clone(), v.trim_end_matches('"').to_string()));
                    labels.insert(k);
                }
            }
        }
    }
    e
}

/// Whether `expo` has the series `s` names, with the labels it selects on: `None`
/// when it does, else what is wrong.
fn missing(expo: &Exposition, s: &Selector) -> Option<String> {
    let Some(labels) = expo.samples.get(&s.name) else {
        return Some(format!("no series {}", s.name));
    };
    let absent: Vec<&String> = s.labels.iter().filter(|l| !labels.contains(*l)).collect();
    if !absent.is_empty() {
        return Some(format!("{} has no label {absent:?} (it has {labels:?})", s.name));
    }
    // Grouping by a label the series lacks sums everything into one unlabelled series.
    let ungrouped: Vec<&String> = s.by.iter().filter(|l| !labels.contains(*l)).collect();
    if !ungrouped.is_empty() {
        return Some(format!(
            "{} is grouped by {ungrouped:?}, labels it does not have (it has {labels:?})",
            s.name
        ));
    }
    // A value no sample carries: the selector matches nothing, and an alert on it never fires.
    let values = &expo.values[&s.name];
    let unseen: Vec<&(String, String)> = s.values.iter().filter(|kv| !values.contains(*kv)).collect();
    if !unseen.is_empty() {
        return Some(format!("{} has no sample with {unseen:?}", s.name));
    }
    if let Some(base) = s.name.strip_suffix("_bucket")
        && expo.types.get(base).map(String::as_str) != Some("histogram")
    {
        return Some(format!(
            "{} is read as a histogram's buckets, but {base} is not a histogram",
            s.name
        ));
    }
    None
}

/// The references of every expression that don't resolve in `expo`, with their source.
fn unresolved(expo: &Exposition, exprs: &[(String, String)]) -> Vec<String> {
    let mut bad = Vec::new();
    for (source, expr) in exprs {
        for s in selectors(expr) {
            if let Some(why) = missing(expo, &s) {
                bad.push(format!("{source}: {why} (in `{expr}`)"));
            }
        }
    }
    bad
}

/// Every expression of the dashboard and the alert rules, with where it comes from.
fn all_exprs() -> Vec<(String, String)> {
    let dashboard: Value =
        serde_json::from_str(&deploy("grafana/ringmaster-dashboard.json")).expect("the dashboard parses");
    let mut d = Vec::new();
    dashboard_exprs(&dashboard, &mut d);
    assert!(d.len() >= 10, "the dashboard has {} queries", d.len());
    let alerts = alert_exprs(&deploy("prometheus/ringmaster-alerts.yaml"));
    for a in [
        "RingmasterRolloutHalted",
        "RingmasterApprovalWaitingLong",
        "RingmasterNotReady",
        "RingmasterArmThrottling",
    ] {
        assert!(alerts.contains_key(a), "no alert {a} in {alerts:?}");
    }
    d.into_iter()
        .map(|e| ("dashboard".to_string(), e))
        .chain(alerts.into_iter().map(|(a, e)| (format!("alert {a}"), e)))
        .collect()
}

#[test]
fn selectors_are_found_crudely_but_surely() {
    let s = selectors(
        "histogram_quantile(0.95, sum by (le, kind) (rate(ringmaster_step_duration_seconds_bucket{kind=~\"node.*\", job=\"x\"}[1h]))) / ringmaster_ready",
    );
    let got: Vec<(&str, Vec<&str>)> = s
        .iter()
        .map(|s| (s.name.as_str(), s.labels.iter().map(String::as_str).collect()))
        .collect();
    assert_eq!(
        got,
        [
            ("ringmaster_step_duration_seconds_bucket", vec!["kind", "job"]),
            ("ringmaster_ready", vec![]),
        ]
    );
    assert_eq!(s[0].by, ["le", "kind"]);
    assert_eq!(
        s[0].values,
        [("job".to_string(), "x".to_string())],
        "regex matchers are left out"
    );
    assert!(s[1].by.is_empty(), "outside the aggregation");
    // The check can fail: a misspelt name, a label the series lacks, buckets of a gauge.
    let expo = parse(
        "# TYPE ringmaster_ready gauge\nringmaster_ready 1\n# TYPE ringmaster_x histogram\nringmaster_x_bucket{le=\"+Inf\",kind=\"a,b\"} 1\n",
    );
    let exprs = |e: &str| vec![("t".to_string(), e.to_string())];
    assert!(unresolved(&expo, &exprs("ringmaster_ready + ringmaster_x_bucket{kind=~\"a.*\"}")).is_empty());
    assert_eq!(unresolved(&expo, &exprs("ringmaster_redy")).len(), 1);
    assert_eq!(unresolved(&expo, &exprs("ringmaster_ready{ring=\"prod\"}")).len(), 1);
    // A grouping label the series lacks; a label value no sample has.
    assert_eq!(
        unresolved(&expo, &exprs("sum by (result) (rate(ringmaster_ready[5m]))")).len(),
        1
    );
    assert!(unresolved(&expo, &exprs("sum by (kind) (rate(ringmaster_x_bucket[5m]))")).is_empty());
    assert_eq!(unresolved(&expo, &exprs("ringmaster_x_bucket{kind=\"c\"}")).len(), 1);
    assert_eq!(
        unresolved(
            &parse("# TYPE ringmaster_y gauge\nringmaster_y_bucket 1\n"),
            &exprs("ringmaster_y_bucket")
        )
        .len(),
        1
    );
}

/// A notification the daemon sent: (event, ring, cluster name).
type Note = (NotifyEvent, Option<String>, Option<String>);

/// Every notification the daemon sent.
#[derive(Default)]
struct Notes(std::sync::Mutex<Vec<Note>>);

impl ringmaster::runtime::Notifier for Notes {
    fn notify(&self, e: NotifyEvent, ring: Option<&str>, c: Option<&ringmaster::domain::fleet::ClusterId>, _: &str) {
        self.0
            .lock()
            .unwrap()
            .push((e, ring.map(str::to_string), c.map(|c| c.name.clone())));
    }
}

/// Waits (in virtual time) until `f` holds for the daemon's rollout, at most `within`.
async fn until(daemon: &Daemon, id: &str, what: &str, within: Duration, f: impl Fn(&Rollout) -> bool) -> Rollout {
    let deadline = tokio::time::Instant::now() + within;
    loop {
        if let Some(r) = daemon.get(id).unwrap()
            && f(&r)
        {
            return r;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "not reached in {within:?} simulated: {what}"
        );
        tokio::time::sleep(Duration::from_secs(5)).await;
    }
}

/// Waits (in virtual time) until the gauge `name` is `v`.
async fn until_gauge(metrics: &Metrics, name: &str, v: f64, within: Duration) {
    let deadline = tokio::time::Instant::now() + within;
    while metrics.get(name, &[]) != v {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{name} is not {v} after {within:?} simulated"
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

fn ring<'a>(r: &'a Rollout, name: &str) -> &'a RingStatus {
    &r.rings.iter().find(|x| x.name == name).expect("the ring").status
}

async fn scrape(http: &reqwest::Client, base: &str) -> String {
    let resp = http
        .get(format!("{base}/metrics"))
        .bearer_auth(ADMIN)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"],
        "text/plain; version=0.0.4; charset=utf-8"
    );
    resp.text().await.unwrap()
}

#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn every_series_the_dashboard_and_the_alerts_use_is_exposed() {
    let exprs = all_exprs();
    // The demo fleet, with a minute of ARM throttling once the rollout runs: the
    // throttling alert selects `status_class="429"`, which must be a series.
    let text = std::fs::read_to_string(common::demo_fleet_path()).unwrap()
        + "  - { kind: throttle_storm, from: 600s, to: 660s }\n";
    let fleet = ringmaster::sim::fleet::parse("demo.yaml", &text).expect("the demo fleet with a storm");
    let rehearsal = Rehearsal::start(fleet, 1.0, None).await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Store::open(dir.path().join("state.db")).unwrap());
    let metrics = Arc::new(Metrics::default());
    let notes = Arc::new(Notes::default());
    let yaml = format!(
        "tokens:\n  - name: admin\n    groups: [platform-admins]\n    sha256: {}\n",
        token_digest_hex(ADMIN)
    );
    let auth = Auth::new(parse_tokens("tokens.yaml", &yaml).unwrap(), None, vec![]);
    let served = serve_demo(
        rehearsal,
        store.clone(),
        metrics.clone(),
        notes.clone(),
        auth,
        |state| {
            // Virtual time jumps while a request is on the loopback: the server's timeouts
            // must not be the next timer it jumps to.
            state.limits.header_timeout = Duration::from_secs(30 * 24 * 3600);
            state.limits.body_timeout = Duration::from_secs(30 * 24 * 3600);
        },
    )
    .await;
    let (daemon, base) = (served.daemon.clone(), served.base.clone());
    let http = reqwest::Client::new();

    let id = loop {
        if let Some(id) = daemon.active().into_iter().next() {
            break id;
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let day = Duration::from_secs(24 * 3600);
    until(&daemon, &id, "a step started", day, |r| {
        r.clusters()
            .any(|(_, c)| c.steps.iter().any(|s| s.started_at.is_some()))
    })
    .await;
    // The disk is full for a while (the file may not grow by a page): saves fail, the
    // daemon is not ready and counts the failures, then goes on when there is room.
    let pages = store.stats().unwrap().page_count;
    store.set_max_pages(pages).unwrap();
    until_gauge(&metrics, "ringmaster_store_write_failing", 1.0, day).await;
    let text = scrape(&http, &base).await;
    assert!(text.contains("\nringmaster_ready 0"), "{text}");
    store.set_max_pages(1 << 30).unwrap();
    until_gauge(&metrics, "ringmaster_store_write_failing", 0.0, day).await;
    until(&daemon, &id, "prod awaiting approval", day, |r| {
        matches!(ring(r, "prod"), RingStatus::AwaitingApproval { .. })
    })
    .await;
    // An hour's wait for the approval.
    tokio::time::sleep(Duration::from_secs(3600)).await;
    let text = scrape(&http, &base).await;
    let line = text
        .lines()
        .find(|l| l.starts_with("ringmaster_approval_waiting_seconds{") && l.contains("ring=\"prod\""))
        .expect("prod's wait");
    let secs: f64 = line.rsplit(' ').next().unwrap().parse().unwrap();
    assert!(secs >= 3600.0, "{line}");

    let resp = http
        .post(format!("{base}/api/v1/rollouts/{id}/rings/prod/approve"))
        .bearer_auth(ADMIN)
        .json(&serde_json::json!({ "comment": "metrics test" }))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    until(&daemon, &id, "prod started", day, |r| {
        matches!(ring(r, "prod"), RingStatus::Running)
    })
    .await;
    // A call without a token: refusals are counted too.
    let refused = http.get(format!("{base}/api/v1/rollouts")).send().await.unwrap();
    assert_eq!(refused.status(), 401);
    let text = scrape(&http, &base).await;
    let expo = parse(&text);

    let bad = unresolved(&expo, &exprs);
    assert!(bad.is_empty(), "{}\n--- /metrics\n{text}", bad.join("\n"));
    // Histograms have buckets, and the ones this run went through have observations.
    let histograms: Vec<&String> = expo
        .types
        .iter()
        .filter(|(_, t)| t.as_str() == "histogram")
        .map(|(n, _)| n)
        .collect();
    for h in [
        "ringmaster_step_duration_seconds",
        "ringmaster_gate_wait_seconds",
        "ringmaster_arm_request_duration_seconds",
        "ringmaster_approval_wait_seconds",
        "ringmaster_operation_seconds",
        "ringmaster_loop_seconds",
    ] {
        assert!(histograms.contains(&&h.to_string()), "{h} is no histogram:\n{text}");
    }
    for h in histograms {
        assert!(
            expo.samples.contains_key(&format!("{h}_bucket")),
            "{h} has no buckets:\n{text}"
        );
    }
    for (series, l) in [
        ("ringmaster_step_duration_seconds_count", "kind=\"controlPlane\""),
        ("ringmaster_step_duration_seconds_count", "kind=\"poolVersion\""),
        ("ringmaster_step_duration_seconds_count", "kind=\"poolRollback\""),
        ("ringmaster_gate_wait_seconds_count", "result=\"passed\""),
        ("ringmaster_gate_wait_seconds_count", "result=\"failed\""),
        ("ringmaster_approval_wait_seconds_count", "ring=\"prod\""),
        (
            "ringmaster_arm_request_duration_seconds_count",
            "operation=\"put_agent_pool\"",
        ),
        (
            "ringmaster_arm_request_duration_seconds_count",
            "operation=\"poll_operation\"",
        ),
        ("ringmaster_clusters", "state=\"rolledBack\""),
        // The demo's aks-dev-weu-02 is blocked by its PDB (docs/preflight.md).
        ("ringmaster_preflight_findings_total", "check=\"pdb\""),
        ("ringmaster_preflight_findings_total", "severity=\"blocks\""),
    ] {
        let n: f64 = text
            .lines()
            .filter(|x| x.starts_with(series) && x.contains(l))
            .filter_map(|x| x.rsplit(' ').next()?.parse::<f64>().ok())
            .sum();
        assert!(n >= 1.0, "{series}{{{l}}}: {n}\n{text}");
    }
    let approval: f64 = text
        .lines()
        .find_map(|x| x.strip_prefix("ringmaster_approval_wait_seconds_sum{ring=\"prod\"} "))
        .expect("the approval's wait")
        .parse()
        .unwrap();
    assert!(approval >= 3600.0, "{approval}");
    // The rollback of staging's faulty cluster was announced, start and end, with its
    // ring and cluster (docs/rollback.md: `rollbackStarted`, `rollbackFinished`).
    let sent = notes.0.lock().unwrap().clone();
    for e in [NotifyEvent::RollbackStarted, NotifyEvent::RollbackFinished] {
        assert!(
            sent.iter().any(|(x, ring, c)| *x == e
                && ring.as_deref() == Some("staging")
                && c.as_deref() == Some("aks-stg-weu-01")),
            "no {e:?} for aks-stg-weu-01: {sent:?}"
        );
    }
    // No id in a label: cluster names and subscriptions stay out of /metrics.
    for c in ["aks-stg-weu-01", "aks-prd-weu-02"] {
        assert!(!text.contains(c), "{c} in a label:\n{text}");
    }
    for s in &served.sim.info.subscription_ids {
        assert!(!text.contains(s.as_str()), "a subscription id in a label");
    }
    drop(served);
}
