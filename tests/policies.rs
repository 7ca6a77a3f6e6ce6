//! The policies shipped in `policies/` (all compile; the demo policy fits the demo fleet),
//! the cadences in `policies/cadences/` (each plans, and forecasts, its own pools of the
//! demo fleet; the Windows one starts after Patch Tuesday) and the broken-policy corpus in `tests/broken-policies/` (each `*.yaml` with its
//! expected errors in `*.expected`, one `line:col: message-substring` per line, all
//! reported at once).

mod support;

use chrono::{DateTime, Datelike, NaiveDate, TimeZone, Utc, Weekday};
use ringmaster::domain::fleet::OsType;
use ringmaster::plan::{StepKind, apply, plan, render};
use ringmaster::policy::{Channel, NodeImageMode, OnBusy, OnFailure, compile, compile_with_snapshot};
use ringmaster::validate::validate_files;
use std::path::{Path, PathBuf};

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn every_shipped_policy_compiles() {
    let policies = files("policies", "yaml");
    let names: Vec<String> = policies
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into())
        .collect();
    for want in ["default.yaml", "demo.yaml", "node-image-only.yaml", "strict-prod.yaml"] {
        assert!(names.iter().any(|n| n == want), "missing policies/{want}: {names:?}");
    }
    for p in &policies {
        let file = p.display().to_string();
        compile(&file, &read(p)).unwrap_or_else(|e| panic!("{file} does not compile:\n{e}"));
    }
    let (report, ok) = validate_files(&policies);
    assert!(ok, "{report}");
    assert_eq!(report.lines().count(), policies.len(), "{report}");
}

#[test]
fn shipped_policies_say_what_their_names_promise() {
    let load = |n: &str| {
        let p = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies").join(n);
        compile(n, &read(&p)).unwrap()
    };
    let default = load("default.yaml");
    assert_eq!(default.target.channel, Channel::Stable);
    let rings: Vec<&str> = default.rings.iter().map(|r| r.name.as_str()).collect();
    assert_eq!(rings, ["dev", "staging", "prod"]);
    assert!(default.rings[0].approval.is_none());
    assert!(default.rings[1].approval.is_some() && default.rings[2].approval.is_some());

    let strict = load("strict-prod.yaml");
    for r in &strict.rings {
        assert_eq!(r.waves[0].name, "canary", "ring {}", r.name);
        assert_eq!(r.failure_budget.on_failure, OnFailure::Halt);
        assert!(r.soak >= std::time::Duration::from_secs(24 * 3600), "ring {}", r.name);
    }
    assert_eq!(strict.target.node_image, NodeImageMode::Consistent);

    let images = load("node-image-only.yaml");
    assert_eq!(images.target.channel, Channel::NodeImage);
}

#[test]
fn demo_policy_fits_the_demo_fleet() {
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let snap = support::demo_snapshot::snapshot(&fleet);
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies/demo.yaml");
    let policy =
        compile_with_snapshot("policies/demo.yaml", &read(&path), Some(&snap)).unwrap_or_else(|e| panic!("{e}"));
    assert_eq!(
        policy.rings[2].approval.as_ref().unwrap().approvers,
        ["platform-admins"]
    );
    assert_eq!(policy.rings[1].failure_budget.on_failure, OnFailure::SkipAndContinue);

    let now = fleet.start_time.unwrap();
    let p = plan(&snap, &policy, now);
    let table = render::table(&p);
    println!("{table}");
    assert!(table.lines().all(|l| l.chars().count() <= render::WIDTH), "{table}");
    assert_eq!(p.target.version.map(|v| v.to_string()).as_deref(), Some("1.33.3"));
    assert!(p.skipped.is_empty(), "{:#?}", p.skipped);
    let per_ring: Vec<usize> = p
        .rings
        .iter()
        .map(|r| r.waves.iter().map(|w| w.clusters.len()).sum())
        .collect();
    assert_eq!(per_ring, [3, 2, 3]);
    assert_eq!(p.rings[2].waves[0].name, "canary");
    assert_eq!(p.rings[2].waves[0].clusters[0].id.name, "aks-prd-weu-02");
    // The 1.31 dev cluster: control plane twice (one minor at a time), then each pool
    // once, straight to the target (AKS lets a pool cross minors within the skew: one
    // drain per pool).
    let neu: Vec<&StepKind> = p
        .steps()
        .filter(|(c, _)| c.id.name == "aks-dev-neu-01")
        .map(|(_, s)| &s.kind)
        .collect();
    assert_eq!(neu.len(), 4, "{neu:?}");
    assert!(
        neu[2..]
            .iter()
            .all(|k| matches!(k, StepKind::PoolVersion { to, .. } if to.to_string() == "1.33.3")),
        "{neu:?}"
    );
    assert!(matches!(neu[0], StepKind::ControlPlane { .. }) && matches!(neu[1], StepKind::ControlPlane { .. }));
    // Applying the plan leaves nothing to do.
    let after = apply(&snap, &p).unwrap();
    assert_eq!(plan(&after, &policy, now).steps().count(), 0);
}

#[test]
fn other_policies_plan_the_demo_fleet() {
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let snap = support::demo_snapshot::snapshot(&fleet);
    for name in ["default.yaml", "node-image-only.yaml"] {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("policies").join(name);
        let policy = compile_with_snapshot(name, &read(&path), Some(&snap)).unwrap_or_else(|e| panic!("{e}"));
        let p = plan(&snap, &policy, fleet.start_time.unwrap());
        let after = apply(&snap, &p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            plan(&after, &policy, fleet.start_time.unwrap()).steps().count(),
            0,
            "{name}"
        );
        assert!(render::table(&p).lines().all(|l| l.chars().count() <= render::WIDTH));
    }
}

/// One expected error: `line:col: message-substring`.
#[derive(Debug)]
struct Expected {
    line: u64,
    column: u64,
    message: String,
}

fn read_expected(path: &Path) -> Vec<Expected> {
    read(path)
        .lines()
        .filter(|l| !l.trim().is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.splitn(3, ':');
            let (Some(line), Some(col), Some(msg)) = (parts.next(), parts.next(), parts.next()) else {
                panic!("{}: `{l}` is not `line:col: message`", path.display())
            };
            Expected {
                line: line
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: bad line in `{l}`", path.display())),
                column: col
                    .trim()
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: bad column in `{l}`", path.display())),
                message: msg.trim().to_string(),
            }
        })
        .collect()
}

#[test]
fn broken_policies_report_every_error_at_once() {
    let corpus = files("tests/broken-policies", "yaml");
    assert!(corpus.len() >= 8, "{} broken policies", corpus.len());
    for path in &corpus {
        let file = path.file_name().unwrap().to_string_lossy().to_string();
        let expected = read_expected(&path.with_extension("expected"));
        let errors = match compile(&file, &read(path)) {
            Ok(_) => panic!("{file} compiled, but should not"),
            Err(e) => e.0,
        };
        let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
        assert_eq!(
            errors.len(),
            expected.len(),
            "{file}: errors\n{}\nexpected {expected:#?}",
            shown.join("\n")
        );
        for want in &expected {
            assert!(
                errors
                    .iter()
                    .any(|e| e.line == want.line && e.column == want.column && e.message.contains(&want.message)),
                "{file}: no error {}:{}: {}\ngot:\n{}",
                want.line,
                want.column,
                want.message,
                shown.join("\n")
            );
        }
        assert!(shown.iter().all(|s| s.starts_with(&format!("{file}:"))));
    }
    let (report, ok) = validate_files(&corpus);
    assert!(!ok);
    assert!(report.lines().count() >= corpus.len(), "{report}");
}

#[test]
fn snapshot_checks_find_overlaps_and_wave_strays() {
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let snap = support::demo_snapshot::snapshot(&fleet);
    let text = "\
name: overlap
target: { channel: stable }
rings:
  - name: dev
    selector: { tags: { ring: dev } }
  - name: westeurope
    selector: { names: [\"*-weu-*\"] }
    waves:
      - name: canary
        clusters: [aks-prd-weu-02, aks-dev-neu-01]
";
    let errors = compile_with_snapshot("overlap.yaml", text, Some(&snap)).unwrap_err().0;
    let shown: Vec<String> = errors.iter().map(|e| e.to_string()).collect();
    let has = |needle: &str| shown.iter().any(|s| s.contains(needle));
    assert!(
        has("overlap.yaml:7:15: ring `westeurope` selects cluster"),
        "{shown:#?}"
    );
    assert!(has("aks-dev-weu-01`, which ring `dev` also selects"), "{shown:#?}");
    assert!(
        has("overlap.yaml:10:36: wave cluster `aks-dev-neu-01` is not in ring `westeurope`"),
        "{shown:#?}"
    );
    assert!(
        has("cluster `aks-stg-weu-01` is in ring `westeurope` but in none of its waves"),
        "{shown:#?}"
    );
    // Without a snapshot the same text compiles: globs and tags cannot be judged alone.
    assert!(compile("overlap.yaml", text).is_ok());
}

const CADENCES: [&str; 3] = [
    "linux-images-weekly.yaml",
    "versions.yaml",
    "windows-images-monthly.yaml",
];

fn cadence_text(name: &str) -> String {
    read(
        &Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("policies/cadences")
            .join(name),
    )
}

/// What `ringmaster validate policies/*.yaml policies/cadences/*.yaml` checks.
#[test]
fn every_policy_and_cadence_validates() {
    let cadences = files("policies/cadences", "yaml");
    let names: Vec<String> = cadences
        .iter()
        .map(|p| p.file_name().unwrap().to_string_lossy().into())
        .collect();
    assert_eq!(names, CADENCES);
    let mut all = files("policies", "yaml");
    all.extend(cadences);
    let (report, ok) = validate_files(&all);
    assert!(ok, "{report}");
    assert_eq!(report.lines().count(), all.len(), "{report}");
}

/// Each image cadence plans node image steps of its own OS's pools only, every one of
/// them that is behind (the union of the two is what the same policy without `pools`
/// plans); the version cadence moves every pool, Windows too, and ranks first.
#[test]
fn cadences_plan_their_own_pools_of_the_demo_fleet() {
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let mut snap = support::demo_snapshot::snapshot(&fleet);
    let now = fleet.start_time.unwrap();
    // The demo fleet keeps AKS's default node OS upgrade channel, NodeImage: AKS
    // refreshes those images itself and no policy plans image steps there. The image
    // cadences are for clusters that leave it to ringmaster (Unmanaged or None).
    let nothing = compile_with_snapshot("l", &cadence_text(CADENCES[0]), Some(&snap)).unwrap();
    assert_eq!(plan(&snap, &nothing, now).steps().count(), 0);
    for c in &mut snap.clusters {
        c.node_os_upgrade_channel = "Unmanaged".into();
    }
    let snap = snap;
    let load = |name: &str, text: &str| {
        compile_with_snapshot(name, text, Some(&snap)).unwrap_or_else(|e| panic!("{name}: {e}"))
    };
    let os_of = |c: &ringmaster::plan::ClusterPlan, pool: &str| {
        let cluster = snap.clusters.iter().find(|x| x.id == c.id).unwrap();
        cluster.pools.iter().find(|p| p.name == pool).unwrap().os_type
    };
    let image_steps = |name: &str, text: &str| -> Vec<(String, String)> {
        let p = plan(&snap, &load(name, text), now);
        assert!(p.skipped.is_empty(), "{name}: {:#?}", p.skipped);
        p.steps()
            .map(|(c, s)| match &s.kind {
                StepKind::NodeImage { pool, .. } => (c.id.name.clone(), pool.clone()),
                other => panic!("{name}: {other:?}"),
            })
            .collect()
    };
    let mut union = Vec::new();
    for (name, os) in [
        ("linux-images-weekly.yaml", OsType::Linux),
        ("windows-images-monthly.yaml", OsType::Windows),
    ] {
        let text = cadence_text(name);
        let policy = load(name, &text);
        assert!(policy.fleet.subscriptions.is_empty(), "{name}");
        assert_eq!(policy.target.channel, Channel::NodeImage, "{name}");
        let p = plan(&snap, &policy, now);
        for (c, s) in p.steps() {
            assert_eq!(
                os_of(c, s.kind.pool().unwrap()),
                os,
                "{name}: {} {:?}",
                c.id.name,
                s.kind
            );
        }
        let steps = image_steps(name, &text);
        assert!(!steps.is_empty(), "{name}");
        union.extend(steps);
        let after = apply(&snap, &p).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(plan(&after, &policy, now).steps().count(), 0, "{name}");
    }
    let windows = image_steps(
        "windows-images-monthly.yaml",
        &cadence_text("windows-images-monthly.yaml"),
    );
    assert_eq!(windows, [("aks-prd-weu-01".to_string(), "win1".to_string())]);
    // Without `pools`, the Linux cadence plans exactly both cadences' steps together.
    let unfiltered = cadence_text("linux-images-weekly.yaml").replace("pools:\n  os_type: Linux\n", "");
    let mut every = image_steps("unfiltered", &unfiltered);
    every.sort();
    union.sort();
    assert_eq!(union, every);

    let versions = load("versions.yaml", &cadence_text("versions.yaml"));
    let (linux, win) = (
        load("l", &cadence_text(CADENCES[0])),
        load("w", &cadence_text(CADENCES[2])),
    );
    assert!(versions.pools.is_all() && versions.fleet.subscriptions.is_empty());
    assert!(versions.priority > win.priority && win.priority > linux.priority);
    assert_eq!(
        (versions.on_busy, win.on_busy, linux.on_busy),
        (OnBusy::Wait, OnBusy::Wait, OnBusy::Skip)
    );
    let prod = versions.rings.iter().find(|r| r.name == "prod").unwrap();
    assert!(prod.approval.is_some() && versions.rings.iter().all(|r| r.name == "prod" || r.approval.is_none()));
    assert!(versions.rings[..2].iter().all(|r| r.soak > std::time::Duration::ZERO));
    let p = plan(&snap, &versions, now);
    assert!(p.skipped.is_empty(), "{:#?}", p.skipped);
    assert_eq!(p.target.version.map(|v| v.to_string()).as_deref(), Some("1.33.3"));
    assert!(p.steps().any(|(c, s)| c.id.name == "aks-prd-weu-01"
        && matches!(&s.kind, StepKind::PoolVersion { pool, .. } if pool == "win1")));
}

/// The second Tuesday (Patch Tuesday) of `day`'s month.
fn second_tuesday(day: NaiveDate) -> NaiveDate {
    (8..=14)
        .map(|d| NaiveDate::from_ymd_opt(day.year(), day.month(), d).unwrap())
        .find(|d| d.weekday() == Weekday::Tue)
        .unwrap()
}

/// The Windows cadence starts once a month, each time on a day after that month's
/// second Tuesday, for three years of firings from a date.
#[test]
fn windows_images_start_after_each_months_second_tuesday() {
    let policy = compile("w.yaml", &cadence_text("windows-images-monthly.yaml")).unwrap();
    let start = policy.schedule.start.as_ref().expect("a start cron");
    let from: DateTime<Utc> = "2026-11-30T07:00:00Z".parse().unwrap();
    let until = from + chrono::Duration::days(3 * 365);
    let mut months = Vec::new();
    for fire in start.fires(from, until) {
        let day = fire.with_timezone(&start.time_zone()).date_naive();
        assert!(day > second_tuesday(day), "{fire} is not after Patch Tuesday");
        months.push((day.year(), day.month()));
    }
    assert_eq!(months.len(), 36, "{months:?}");
    months.dedup();
    assert_eq!(months.len(), 36, "one start a month");
}

/// Why the cadence gives a day of the month alone: the `cron` crate (0.17) fires when
/// day-of-month *and* day-of-week match (`8-14` with `Tue`: only second Tuesdays), where
/// classic cron fires when either does (every Tuesday and the 8th to the 14th), so
/// ringmaster refuses such an expression rather than guess which one its author meant.
#[test]
fn the_cron_crate_ands_day_of_month_and_day_of_week_so_policies_may_not_mix_them() {
    use std::str::FromStr;
    let both = cron::Schedule::from_str("0 0 6 8-14 * Tue").unwrap();
    let from = Utc.with_ymd_and_hms(2026, 1, 1, 0, 0, 0).unwrap();
    let fires: Vec<NaiveDate> = both.after(&from).take(12).map(|f| f.date_naive()).collect();
    for d in &fires {
        assert_eq!(*d, second_tuesday(*d), "{fires:?}");
    }
    // January 6, 2026 is a Tuesday outside 8-14: classic cron's first firing, not the crate's.
    assert_eq!(fires[0], NaiveDate::from_ymd_opt(2026, 1, 13).unwrap());
    let refused = ringmaster::schedule::CronSchedule::parse("0 6 8-14 * TUE", chrono_tz::UTC).unwrap_err();
    assert!(refused.to_string().contains("restricts both day-of-month"), "{refused}");
}

/// `forecast::pools_of` times only the pools the policy's `pools` filter selects: the
/// Windows image cadence gets aks-prd-weu-01's Windows pool, a policy without a filter
/// every pool.
#[test]
fn pools_of_keeps_the_pools_the_policy_filters_in() {
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let snapshot = support::demo_snapshot::snapshot(&fleet);
    let id = snapshot
        .clusters
        .iter()
        .find(|c| c.id.name == "aks-prd-weu-01")
        .unwrap()
        .id
        .clone();
    let cluster: ringmaster::arm::models::ManagedCluster = serde_json::from_value(serde_json::json!({
        "location": "westeurope",
        "properties": { "agentPoolProfiles": [
            { "name": "system", "count": 3 }, { "name": "user1", "count": 3 }, { "name": "win1", "count": 2 },
        ]},
    }))
    .unwrap();
    let discovery = ringmaster::discovery::Discovery {
        snapshot,
        problems: vec![],
        raw: std::collections::BTreeMap::from([(id.clone(), cluster)]),
    };
    let pools = |file: &str| {
        let text = std::fs::read_to_string(format!("{}/{file}", env!("CARGO_MANIFEST_DIR"))).unwrap();
        let policy = ringmaster::policy::compile(file, &text).unwrap();
        let shapes = ringmaster::forecast::pools_of(&discovery, &policy);
        shapes[&id].keys().cloned().collect::<Vec<String>>()
    };
    assert_eq!(pools("policies/cadences/windows-images-monthly.yaml"), ["win1"]);
    assert_eq!(pools("policies/demo.yaml"), ["system", "user1", "win1"]);
}
