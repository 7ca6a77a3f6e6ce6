//! The fleet files shipped in `examples/fleets/` and the broken-fleet corpus in
//! `tests/broken-fleets/` (each `*.yaml` with its expected errors in `*.expected`).

use chrono::{DateTime, NaiveDate, Utc};
use ringmaster::domain::image::compare_versions;
use ringmaster::sim::fleet::{ClusterDef, FaultKind, Fleet, ImageLine, OsType, Pdb, PoolMode, load, parse};
use ringmaster::sim::version::{MinorVersion, VersionSpec};
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

fn yaml_files(dir: &str) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(env!("CARGO_MANIFEST_DIR")).join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yaml"))
        .collect();
    files.sort();
    files
}

fn example(name: &str) -> Fleet {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets").join(name);
    load(&path).unwrap_or_else(|e| panic!("{name} does not compile:\n{e}"))
}

fn ring(c: &ClusterDef) -> &str {
    c.tags.get("ring").map_or("", String::as_str)
}

fn minor(s: &str) -> MinorVersion {
    s.parse().unwrap()
}

/// The newest release of `line` that has reached `region` by `on`.
fn latest<'a>(line: &'a ImageLine, region: &str, on: NaiveDate) -> Option<&'a str> {
    line.releases
        .iter()
        .filter(|r| r.day_in(region).is_some_and(|d| d <= on))
        .map(|r| r.version.as_str())
        .max_by(|a, b| compare_versions(a, b))
}

#[test]
fn every_example_fleet_compiles() {
    let files = yaml_files("examples/fleets");
    let names: Vec<_> = files.iter().map(|p| p.file_name().unwrap().to_string_lossy()).collect();
    assert!(names.contains(&"demo.yaml".into()), "{names:?}");
    assert!(names.contains(&"large.yaml".into()), "{names:?}");
    for f in &files {
        let fleet = load(f).unwrap_or_else(|e| panic!("{} does not compile:\n{e}", f.display()));
        assert!(!fleet.clusters.is_empty(), "{}", f.display());
        assert!(
            fleet.start_time.is_some(),
            "{}: start_time should be fixed",
            f.display()
        );
    }
}

#[test]
fn demo_has_rings_regions_and_a_cluster_behind() {
    let fleet = example("demo.yaml");
    assert_eq!(
        fleet.start_time,
        Some("2026-11-30T07:00:00Z".parse::<DateTime<Utc>>().unwrap())
    );
    assert!((1..=2).contains(&fleet.subscriptions.len()));
    assert!(fleet.clusters.len() >= 6, "{} clusters", fleet.clusters.len());

    let mut per_ring: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &fleet.clusters {
        *per_ring.entry(ring(c)).or_default() += 1;
        assert!(fleet.subscriptions.contains(&c.subscription), "{}", c.name);
    }
    assert_eq!(per_ring.keys().copied().collect::<Vec<_>>(), ["dev", "prod", "staging"]);
    assert!(per_ring.values().all(|&n| n >= 2), "{per_ring:?}");

    let regions: BTreeSet<&str> = fleet.clusters.iter().map(|c| c.location.as_str()).collect();
    assert_eq!(regions, BTreeSet::from(["northeurope", "westeurope"]));

    // Exactly one cluster a minor behind the rest, on a minor that leaves support soon.
    let minors: Vec<MinorVersion> = fleet
        .clusters
        .iter()
        .map(|c| c.kubernetes_version.minor_version())
        .collect();
    let newest = *minors.iter().max().unwrap();
    let behind: Vec<_> = fleet
        .clusters
        .iter()
        .filter(|c| c.kubernetes_version.minor_version() < newest)
        .collect();
    assert_eq!(behind.len(), 1, "{minors:?}");
    let behind_minor = behind[0].kubernetes_version.minor_version();
    assert_eq!(newest.minors_after(behind_minor), 1);
    let start = fleet.start_time.unwrap().date_naive();
    let eos = fleet
        .catalogue
        .iter()
        .find(|m| m.minor == behind_minor)
        .and_then(|m| m.end_of_support)
        .expect("the minor behind has an end of support");
    assert!(eos > start && (eos - start).num_days() <= 31, "end of support {eos}");
}

#[test]
fn demo_pools_and_workloads() {
    let fleet = example("demo.yaml");
    let mut windows = Vec::new();
    for c in &fleet.clusters {
        assert!((2..=3).contains(&c.pools.len()), "{}: {} pools", c.name, c.pools.len());
        let system = c
            .pools
            .iter()
            .find(|p| p.name == "system")
            .expect("a pool named system");
        assert_eq!(
            (system.mode, system.os_type),
            (PoolMode::System, OsType::Linux),
            "{}",
            c.name
        );
        assert!(
            c.pools
                .iter()
                .any(|p| p.mode == PoolMode::User && p.os_type == OsType::Linux),
            "{}: no Linux user pool",
            c.name
        );
        for p in &c.pools {
            assert!(p.count <= 3, "{}/{}: keep the demo small", c.name, p.name);
            assert!(p.version <= c.kubernetes_version, "{}/{}", c.name, p.name);
            if p.os_type == OsType::Windows {
                windows.push((c, p));
            }
        }
        assert!(!c.workloads.is_empty(), "{}: no workloads", c.name);
        assert!(
            c.workloads.iter().all(|w| w.replicas <= 3),
            "{}: keep the demo small",
            c.name
        );
    }
    assert_eq!(windows.len(), 1, "exactly one Windows pool");
    let (wc, wp) = windows[0];
    assert_eq!(ring(wc), "prod");
    assert_eq!((wp.name.as_str(), wp.os_sku.as_str()), ("win1", "Windows2022"));
    assert!(wp.name.len() <= 6, "Windows pool names are at most 6 characters");
    assert!(
        wc.workloads.iter().any(|w| w.os == OsType::Windows && w.pdb.is_some()),
        "a Windows workload with a PDB on {}",
        wc.name
    );
    let other_windows = fleet
        .clusters
        .iter()
        .filter(|c| c.name != wc.name)
        .flat_map(|c| &c.workloads)
        .filter(|w| w.os == OsType::Windows)
        .count();
    assert_eq!(other_windows, 0);

    let workloads: Vec<_> = fleet.clusters.iter().flat_map(|c| &c.workloads).collect();
    assert!(
        workloads.iter().any(|w| w.name == "web"
            && w.namespace == "shop"
            && w.replicas == 3
            && w.pdb == Some(Pdb::MinAvailable(2)))
    );
    assert!(
        workloads
            .iter()
            .any(|w| w.name == "api" && w.pdb == Some(Pdb::MaxUnavailable(1)))
    );

    let maintained: Vec<_> = fleet
        .clusters
        .iter()
        .filter(|c| c.maintenance.contains_key("aksManagedAutoUpgradeSchedule"))
        .collect();
    assert!(!maintained.is_empty());
    for c in maintained {
        let w = &c.maintenance["aksManagedAutoUpgradeSchedule"]["maintenanceWindow"];
        assert!(w["schedule"].is_object(), "{}", c.name);
        assert!(w["durationHours"].as_u64().is_some(), "{}", c.name);
        assert!(w["utcOffset"].is_string() && w["startTime"].is_string(), "{}", c.name);
    }
}

#[test]
fn demo_catalogue_images_and_fault() {
    let fleet = example("demo.yaml");
    let minors: Vec<MinorVersion> = fleet.catalogue.iter().map(|m| m.minor).collect();
    let expected: Vec<MinorVersion> = ["1.31", "1.32", "1.33", "1.34", "1.35"].map(minor).to_vec();
    assert_eq!(minors, expected);
    let defaults: Vec<_> = fleet.catalogue.iter().filter(|m| m.default).map(|m| m.minor).collect();
    assert_eq!(defaults, [minor("1.33")]);
    let previews: Vec<_> = fleet.catalogue.iter().filter(|m| m.preview).map(|m| m.minor).collect();
    assert_eq!(previews, [minor("1.35")]);
    for m in &fleet.catalogue {
        assert!(!m.patches.is_empty(), "{}", m.minor);
        assert!(m.patches.iter().all(|p| p.minor_version() == m.minor));
    }

    let start = fleet.start_time.unwrap().date_naive();
    let line = |sku: &str| {
        fleet
            .images
            .iter()
            .find(|l| l.os_sku == sku)
            .unwrap_or_else(|| panic!("no node images for {sku}"))
    };
    assert_eq!(line("Ubuntu").family, "AKSUbuntu-2204gen2containerd");
    assert_eq!(line("Windows2022").family, "AKSWindows-2022-containerd");
    for l in &fleet.images {
        for r in &l.releases {
            assert!(
                ringmaster::domain::NodeImageVersion::parse(&format!("{}-{}", l.family, r.version)).is_some(),
                "{}-{}",
                l.family,
                r.version
            );
        }
    }
    // The newest Ubuntu image reaches northeurope after westeurope, and one is not out yet.
    let ubuntu = line("Ubuntu");
    let newest = ubuntu.releases.last().unwrap();
    assert!(newest.day_in("westeurope").unwrap() > start && newest.day_in("northeurope").unwrap() > start);
    let weu = latest(ubuntu, "westeurope", start).unwrap();
    let neu = latest(ubuntu, "northeurope", start).unwrap();
    assert_eq!(
        compare_versions(weu, neu),
        std::cmp::Ordering::Greater,
        "{weu} vs {neu}"
    );
    let rolling = ubuntu.releases.iter().find(|r| r.version == weu).unwrap();
    let lag = rolling.day_in("northeurope").unwrap() - rolling.day_in("westeurope").unwrap();
    assert!((1..=14).contains(&lag.num_days()), "{lag}");

    // Every pool's OS SKU has images; pinned images exist and some are behind the latest.
    let mut behind = 0;
    for c in &fleet.clusters {
        for p in &c.pools {
            let l = line(&p.os_sku);
            if let Some(img) = &p.node_image {
                let r = l.releases.iter().find(|r| &r.version == img);
                let r = r.unwrap_or_else(|| panic!("{}/{}: {img} is not a {} release", c.name, p.name, p.os_sku));
                assert!(
                    r.day_in(&c.location).is_some_and(|d| d <= start),
                    "{}/{}",
                    c.name,
                    p.name
                );
                if compare_versions(img, latest(l, &c.location, start).unwrap()).is_lt() {
                    behind += 1;
                }
            }
        }
    }
    assert!(behind >= 2, "{behind} pools on an older node image");

    assert_eq!(fleet.faults.len(), 1, "exactly the demo's default fault");
    let FaultKind::PodsNeverReady { cluster, version, .. } = &fleet.faults[0].what else {
        panic!("{:?}", fleet.faults[0].what)
    };
    assert_eq!(*version, VersionSpec::Minor(minor("1.33")));
    let target = fleet.clusters.iter().find(|c| &c.name == cluster).unwrap();
    assert_eq!(ring(target), "staging");
    assert!(fleet.faults[0].active_at(std::time::Duration::ZERO));
}

#[test]
fn large_expands_to_5000_clusters_by_ring_share() {
    let fleet = example("large.yaml");
    assert_eq!(fleet.clusters.len(), 5000);
    assert_eq!(fleet.subscriptions.len(), 5);
    let mut per_ring: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_sub: BTreeMap<&str, usize> = BTreeMap::new();
    let mut per_location: BTreeMap<&str, usize> = BTreeMap::new();
    for c in &fleet.clusters {
        *per_ring.entry(ring(c)).or_default() += 1;
        *per_sub.entry(c.subscription.as_str()).or_default() += 1;
        *per_location.entry(c.location.as_str()).or_default() += 1;
        assert_eq!(c.pools.len(), 2);
        assert!(c.pools.iter().all(|p| p.count == 2));
        assert!((1..=2).contains(&c.workloads.len()));
        assert!(c.workloads.iter().all(|w| w.replicas <= 3));
    }
    assert_eq!(
        per_ring,
        BTreeMap::from([("dev", 250), ("prod", 4000), ("staging", 750)])
    );
    assert!(per_sub.values().all(|&n| n == 1000), "{per_sub:?}");
    assert_eq!(
        per_location,
        BTreeMap::from([("northeurope", 2500), ("westeurope", 2500)])
    );
    let names: BTreeSet<&str> = fleet.clusters.iter().map(|c| c.name.as_str()).collect();
    assert_eq!(names.len(), 5000);
    // Rings come in order: dev first, prod last.
    assert_eq!(ring(&fleet.clusters[0]), "dev");
    assert_eq!(ring(&fleet.clusters[4999]), "prod");

    // Same catalogue and node images as the demo.
    let demo = example("demo.yaml");
    let cat = |f: &Fleet| {
        f.catalogue
            .iter()
            .map(|m| (m.minor, m.patches.clone(), m.default, m.preview, m.end_of_support))
            .collect::<Vec<_>>()
    };
    assert_eq!(cat(&fleet), cat(&demo));
    let images = |f: &Fleet| {
        f.images
            .iter()
            .map(|l| {
                let releases: Vec<_> = l
                    .releases
                    .iter()
                    .map(|r| (r.version.clone(), r.available, r.regions.clone()))
                    .collect();
                (l.os_sku.clone(), l.family.clone(), releases)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(images(&fleet), images(&demo));
    let version = fleet.clusters[0].kubernetes_version;
    assert!(fleet.catalogue.iter().any(|m| m.patches.contains(&version)));
}

/// One expected error: `line:col: message-substring`.
struct Expected {
    line: u64,
    column: u64,
    message: String,
}

fn read_expected(path: &Path) -> Vec<Expected> {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|l| {
            let mut parts = l.splitn(3, ':');
            let (Some(line), Some(col), Some(msg)) = (parts.next(), parts.next(), parts.next()) else {
                panic!("{}: `{l}` is not `line:col: message`", path.display())
            };
            Expected {
                line: line
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: bad line in `{l}`", path.display())),
                column: col
                    .parse()
                    .unwrap_or_else(|_| panic!("{}: bad column in `{l}`", path.display())),
                message: msg.trim().to_string(),
            }
        })
        .collect()
}

#[test]
fn broken_fleets_report_every_expected_error() {
    let files = yaml_files("tests/broken-fleets");
    assert!(files.len() >= 12, "{} broken fleets", files.len());
    let mut failures = Vec::new();
    for yaml in &files {
        let expected = read_expected(&yaml.with_extension("expected"));
        assert!(!expected.is_empty(), "{}: no expected errors", yaml.display());
        let errors = match load(yaml) {
            Ok(_) => {
                failures.push(format!("{}: compiled, expected errors", yaml.display()));
                continue;
            }
            Err(e) => e,
        };
        let shown = errors.to_string();
        for e in &errors.0 {
            assert_eq!(e.file, yaml.display().to_string());
        }
        if errors.0.len() != expected.len() {
            failures.push(format!(
                "{}: {} errors, expected {}:\n{shown}",
                yaml.display(),
                errors.0.len(),
                expected.len()
            ));
        }
        for x in &expected {
            let found = errors
                .0
                .iter()
                .any(|e| e.line == x.line && e.column == x.column && e.message.contains(&x.message));
            if !found {
                failures.push(format!(
                    "{}: missing {}:{}: {}\n  got:\n{shown}",
                    yaml.display(),
                    x.line,
                    x.column,
                    x.message
                ));
            }
        }
        let positions: Vec<_> = errors.0.iter().map(|e| (e.line, e.column)).collect();
        assert!(positions.is_sorted(), "{}: errors not in file order", yaml.display());
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn errors_show_as_file_line_col_message() {
    let text = "subscriptions: [3f2a8c1e-6b4d-4e7a-9c05-1d2e3f405a61]\nversions:\n  - minor: \"1.32\"\n    patches: [\"1.32.7\"]\nclusters: []\nfaults:\n  - kind: api_unreachable\n    cluster: nowhere\n";
    let err = parse("inline.yaml", text).unwrap_err();
    assert_eq!(
        err.to_string(),
        "inline.yaml:8:14: fault names cluster `nowhere`, which the fleet does not have"
    );
    // Errors with no position of their own (a missing section) are about the whole
    // document: they show at 1:1, so that every error names a line.
    let err = parse("empty.yaml", "clusters: []\n").unwrap_err();
    let lines: Vec<String> = err.0.iter().map(ToString::to_string).collect();
    assert_eq!(
        lines,
        [
            "empty.yaml:1:1: `subscriptions` must list at least one subscription id",
            "empty.yaml:1:1: `versions` must list at least one minor version",
        ]
    );
}

/// `examples/fleets/large.yaml` with `count` clusters and `nodes` nodes in each of its two
/// pools, written to `dir` (generated, not checked in: the point is its size).
fn generated_fleet(dir: &Path, count: u32, nodes: u32) -> PathBuf {
    let text =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets/large.yaml")).unwrap();
    assert!(text.contains("generate:\n  count: 5000\n") && text.matches("      count: 2\n").count() == 2);
    let text = text
        .replacen(
            "generate:\n  count: 5000\n",
            &format!("generate:\n  count: {count}\n"),
            1,
        )
        .replace("      count: 2\n", &format!("      count: {nodes}\n"));
    let path = dir.join(format!("generated-{count}x2x{nodes}.yaml"));
    std::fs::write(&path, text).unwrap();
    path
}

fn ringmaster_sim(args: &[&str], fleet: &Path) -> std::process::Command {
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_ringmaster"));
    c.arg("sim")
        .args(args)
        .arg("--fleet")
        .arg(fleet)
        .env("RINGMASTER_LOG", "warn");
    c
}

/// Issue 26, finding 6: 20,000 clusters x 2 pools x 1,000 nodes passed `sim --check`, and
/// `ringmaster sim` on it grew to GiBs without ever being ready. `--check` refuses it now,
/// fast, with the numbers; `sim` itself refuses it before building anything.
#[test]
fn sim_check_refuses_a_fleet_the_simulator_cannot_hold() {
    use std::time::{Duration, Instant};
    let dir = tempfile::tempdir().unwrap();
    let fleet = generated_fleet(dir.path(), 20_000, 1_000);
    let started = Instant::now();
    let out = ringmaster_sim(&["--check"], &fleet).output().unwrap();
    let took = started.elapsed();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(out.status.code(), Some(2), "stdout: {stdout}\nstderr: {stderr}");
    for want in [
        "too large for the simulator",
        "20,000 clusters, 40,000,000 nodes, 40,000 pods: about 26.5 GiB of simulator memory",
        "over the limit of 1 GiB (at most ",
        "lower `generate.count`, the pools' `count`",
    ] {
        assert!(stderr.contains(want), "{want:?} not in: {stderr}");
    }
    assert!(took < Duration::from_secs(20), "took {took:?}");

    // The simulator itself: the same refusal, no ready line, no memory taken. Killed
    // after a while should it start building the world after all.
    let mut child = ringmaster_sim(&["--manual-clock"], &fleet)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let started = Instant::now();
    let status = loop {
        if let Some(s) = child.try_wait().unwrap() {
            break Some(s);
        }
        if started.elapsed() > Duration::from_secs(20) {
            let _ = child.kill();
            let _ = child.wait();
            break None;
        }
        std::thread::sleep(Duration::from_millis(50));
    };
    let out = child.wait_with_output().unwrap();
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert_eq!(
        status.and_then(|s| s.code()),
        Some(2),
        "stdout: {stdout}\nstderr: {stderr}"
    );
    assert!(stdout.is_empty(), "{stdout}");
    assert!(stderr.contains("40,000,000 nodes"), "{stderr}");
}

#[test]
fn sim_check_accepts_the_demo_and_a_5000_cluster_fleet() {
    let dir = tempfile::tempdir().unwrap();
    let demo = Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/fleets/demo.yaml");
    for fleet in [demo, generated_fleet(dir.path(), 5_000, 2)] {
        let out = ringmaster_sim(&["--check"], &fleet).output().unwrap();
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(out.status.success(), "{}: {stdout}{stderr}", fleet.display());
        assert!(stdout.contains(": valid: "), "{stdout}");
    }
}
