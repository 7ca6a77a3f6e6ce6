//! The state file as a file (issue 12): a damaged one is refused with a way to recover
//! (findings 2), it and the simulator's env file are private (finding 6), backups and
//! restores go through SQLite's online backup, and the audit log has a retention path
//! that only the retention job can take.

mod common;
#[path = "support/mod.rs"]
mod support;

use chrono::{TimeDelta, Utc};
use ringmaster::store::{AuditEntry, RetentionPolicy, RolloutRecord, Store, StoreError};
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;

fn entry(at: chrono::DateTime<Utc>, i: usize) -> AuditEntry {
    AuditEntry {
        at,
        actor: "ringmaster".into(),
        action: format!("test.{i}"),
        rollout_id: Some("r1".into()),
        subject: "s".into(),
        reason: "x".repeat(200),
        detail: serde_json::json!({ "i": i }),
    }
}

fn running(id: &str) -> RolloutRecord {
    RolloutRecord {
        id: id.into(),
        policy_name: "demo".into(),
        status: "running".into(),
        state_json: format!("{{\"id\":\"{id}\",\"pad\":\"{}\"}}", "p".repeat(20_000)),
        updated_at: Utc::now(),
        parts: vec![],
        replace_parts: false,
    }
}

/// A state file with a running rollout and some audit, closed (WAL checkpointed).
fn populated(path: &Path) {
    let s = Store::open(path).unwrap();
    let now = Utc::now();
    let entries: Vec<AuditEntry> = (0..300).map(|i| entry(now, i)).collect();
    s.save_rollout_with_audit(&running("r1"), &entries).unwrap();
    s.checkpoint().unwrap();
}

fn overwrite_page(path: &Path, page: u64) {
    use std::io::{Seek, SeekFrom, Write};
    let mut f = std::fs::OpenOptions::new().write(true).open(path).unwrap();
    f.seek(SeekFrom::Start(page * 4096)).unwrap();
    f.write_all(&[0xA5; 4096]).unwrap();
    f.sync_all().unwrap();
}

fn mode(p: &Path) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

/// Runs `serve` on `state` with the demo policy and no Azure settings, expecting it to
/// refuse to start; a serve that starts anyway runs until killed, so it gets 30 s.
fn serve_refusal(state: &Path) -> std::process::Output {
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml");
    let mut child = Command::new(common::procs::bin())
        .args(["serve", "--policy", policy, "--listen", "127.0.0.1:0", "--state"])
        .arg(state)
        .env_clear()
        .env("RINGMASTER_LOG", "warn")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            panic!("serve started instead of refusing {}", state.display());
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.wait_with_output().unwrap()
}

#[test]
fn a_damaged_state_file_is_refused_with_how_to_recover() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    populated(&path);
    overwrite_page(&path, 2);
    overwrite_page(&path, 5);
    let err = Store::open(&path).unwrap_err();
    assert!(matches!(err, StoreError::Damaged { .. }), "{err}");
    let text = err.to_string();
    assert!(text.contains(&path.display().to_string()), "names the file: {text}");
    assert!(text.contains("ringmaster state restore"), "says how to recover: {text}");
}

#[test]
fn serve_refuses_a_damaged_state_file_and_state_check_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    populated(&path);
    overwrite_page(&path, 3);
    let out = serve_refusal(&path);
    assert!(!out.status.success(), "serve started on a damaged file");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("damaged") && stderr.contains("state.db"), "{stderr}");
    assert!(
        out.stdout.is_empty(),
        "it never listened: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let out = Command::new(common::procs::bin())
        .args(["state", "check", "--state"])
        .arg(&path)
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(1), "{}", String::from_utf8_lossy(&out.stderr));
}

/// A whole file whose rollout state this binary cannot decode: `serve` used to list
/// nothing and resume nothing, silently.
#[test]
fn serve_refuses_a_state_it_cannot_read_instead_of_listing_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    populated(&path);
    let out = serve_refusal(&path);
    assert!(!out.status.success(), "serve started on a state it cannot read");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("rollout `r1` cannot be read"), "{stderr}");
    assert!(out.stdout.is_empty());
}

/// A rollout stored with a policy this binary refuses (here a soak longer than the bound
/// added since): resuming it used to be logged as a warning while the daemon went on to
/// start new rollouts beside it. `serve` now refuses to start, naming the rollout.
#[test]
fn serve_refuses_an_unfinished_rollout_whose_policy_it_no_longer_accepts() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let policy_path = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml");
    let text = std::fs::read_to_string(policy_path).unwrap();
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let snapshot = support::demo_snapshot::snapshot(&fleet);
    let now = fleet.start_time.unwrap();
    let plan = ringmaster::plan::plan(
        &snapshot,
        &ringmaster::policy::compile("demo.yaml", &text).unwrap(),
        now,
    );
    let stale = text.replacen("soak: 2m", "soak: 99999999d", 1);
    assert_ne!(stale, text);
    assert!(ringmaster::policy::compile("demo.yaml", &stale).is_err());
    let rollout = ringmaster::engine::Rollout::new("r-old".into(), "demo.yaml".into(), stale, plan, now);
    Store::open(&path)
        .unwrap()
        .save_rollout(&ringmaster::engine::stored::record(&rollout, None, Utc::now()).unwrap())
        .unwrap();
    let out = serve_refusal(&path);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success(),
        "serve started beside a rollout it cannot resume: {stderr}"
    );
    assert!(
        stderr.contains("`r-old`") && stderr.contains("cannot be resumed"),
        "{stderr}"
    );
    assert!(stderr.contains("99999999d"), "the reason is shown: {stderr}");
    assert!(out.stdout.is_empty(), "it never listened");
}

#[test]
fn backup_and_restore_bring_back_the_running_rollout() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let backup = dir.path().join("backup.db");
    populated(&path);
    let run = |args: &[&str]| {
        let out = Command::new(common::procs::bin()).args(args).output().unwrap();
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).to_string()
    };
    let (p, b) = (path.display().to_string(), backup.display().to_string());
    let shown = run(&["state", "backup", "--state", &p, "--to", &b]);
    assert!(shown.contains("1 unfinished: r1"), "{shown}");
    assert_eq!(mode(&backup), 0o600);
    overwrite_page(&path, 2);
    assert!(Store::open(&path).is_err());
    run(&["state", "restore", "--from", &b, "--state", &p]);
    let s = Store::open(&path).unwrap();
    assert_eq!(s.load_rollouts().unwrap()[0].status, "running");
    assert_eq!(s.check().unwrap().audit_entries, 300);
}

#[test]
fn the_state_file_and_its_wal_and_shm_are_private() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = Store::open(&path).unwrap();
    s.save_rollout(&running("r1")).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let p = dir.path().join(format!("state.db{suffix}"));
        assert_eq!(mode(&p), 0o600, "{}", p.display());
    }
    drop(s);
    // A file made readable by others is tightened at open.
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).unwrap();
    let _s = Store::open(&path).unwrap();
    assert_eq!(mode(&path), 0o600);
}

#[test]
fn the_simulators_env_file_is_private() {
    let dir = tempfile::tempdir().unwrap();
    let sim = common::procs::start_sim(dir.path(), "60");
    let env = dir.path().join("sim.env");
    assert!(std::fs::read_to_string(&env).unwrap().contains("AZURE_CLIENT_SECRET"));
    assert_eq!(mode(&env), 0o600);
    drop(sim);
}

#[test]
fn retention_archives_old_entries_and_only_it_can_delete() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = Store::open(&path).unwrap();
    let now = Utc::now();
    let old: Vec<AuditEntry> = (0..50).map(|i| entry(now - TimeDelta::days(100), i)).collect();
    let new: Vec<AuditEntry> = (50..60).map(|i| entry(now, i)).collect();
    s.save_rollout_with_audit(&running("r1"), &old).unwrap();
    s.save_rollout_with_audit(&running("r1"), &new).unwrap();
    // Nothing else may delete an entry.
    let conn = rusqlite::Connection::open(&path).unwrap();
    let refused = conn.execute("DELETE FROM audit WHERE id = 1", []).unwrap_err();
    assert!(refused.to_string().contains("append-only"), "{refused}");
    let moved = conn
        .execute("UPDATE audit_archived SET up_to = 0 WHERE id = 1", [])
        .map(|_| ());
    assert!(moved.is_ok(), "setting the mark to where it is is allowed");
    drop(conn);
    let policy = RetentionPolicy {
        max_age: TimeDelta::days(90),
        max_entries: 1_000_000,
        archive_dir: dir.path().join("audit-archive"),
    };
    let done = s.apply_retention(&policy, now).unwrap();
    assert_eq!(done.entries, 50);
    assert_eq!(done.files.len(), 1);
    let lines: Vec<serde_json::Value> = std::fs::read_to_string(&done.files[0])
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 50);
    assert_eq!(lines[0]["action"], "test.0");
    assert_eq!(lines[0]["detail"]["i"], 0);
    assert_eq!(mode(&done.files[0]), 0o600);
    assert_eq!(s.check().unwrap().audit_entries, 10);
    assert_eq!(
        s.apply_retention(&policy, now).unwrap().entries,
        0,
        "nothing more is due"
    );
    // The count limit archives the oldest beyond it.
    let by_count = RetentionPolicy {
        max_entries: 4,
        ..policy
    };
    assert_eq!(s.apply_retention(&by_count, now).unwrap().entries, 6);
    assert_eq!(s.check().unwrap().audit_entries, 4);
    // The mark never moves back.
    let conn = rusqlite::Connection::open(&path).unwrap();
    assert!(
        conn.execute("UPDATE audit_archived SET up_to = 1 WHERE id = 1", [])
            .is_err()
    );
}

#[test]
fn a_v1_state_file_is_migrated_to_the_retention_schema() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    {
        // A v1 file as released: its schema and one audit entry.
        let conn = rusqlite::Connection::open(&path).unwrap();
        conn.execute_batch(include_str!("support/schema_v1.sql")).unwrap();
    }
    let s = Store::open(&path).unwrap();
    assert_eq!(s.check().unwrap().schema_version, ringmaster::store::SCHEMA_VERSION);
    assert_eq!(s.check().unwrap().audit_entries, 1);
    assert_eq!(s.audit_archived_up_to().unwrap(), 0);
}

/// Waits for `child` to exit on its own (a refusal); one that runs on gets 30 s, then it
/// is killed and the test fails: it started where it must not.
fn refused(mut child: std::process::Child, what: &str) -> std::process::Output {
    let t = std::time::Instant::now();
    while child.try_wait().unwrap().is_none() {
        if t.elapsed() > std::time::Duration::from_secs(30) {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!(
                "{what} started instead of refusing: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success(), "{what} exited 0");
    out
}

/// Polls serve's `/readyz` (public) until it names an active rollout; bounded, not a
/// timing assertion.
async fn active_rollout(url: &str) -> String {
    let t = std::time::Instant::now();
    loop {
        if let Ok(r) = reqwest::get(format!("{url}/readyz")).await
            && let Ok(v) = r.json::<serde_json::Value>().await
            && let Some(id) = v["active"][0].as_str()
        {
            return id.to_string();
        }
        assert!(
            t.elapsed() < std::time::Duration::from_secs(60),
            "no active rollout at {url}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

fn cli(args: &[&str]) -> std::process::Output {
    Command::new(common::procs::bin())
        .args(args)
        .env("RINGMASTER_LOG", "warn")
        .output()
        .unwrap()
}

/// Issue 29: one daemon per state file. A second `serve`, and a `run --approve-as`
/// beside it, are refused naming the first's pid, and write nothing to Azure: they point
/// at a second simulator whose request log stays empty (before the lock the second
/// resumed the first's rollout there). `state restore` is refused while serve runs,
/// `state backup` works beside it. A SIGKILLed serve's lock goes with it: its successor
/// starts and resumes the rollout, and a restore after it is allowed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_daemon_is_refused_and_a_killed_ones_successor_resumes() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("tokens.yaml"),
        format!(
            "tokens:\n  - name: alice\n    groups: [platform-admins]\n    sha256: {}\n",
            ringmaster::api::auth::token_digest_hex("alice-token-0123456789abcdef0123456789")
        ),
    )
    .unwrap();
    let (d1, d2) = (dir.path().join("sim1"), dir.path().join("sim2"));
    std::fs::create_dir_all(&d1).unwrap();
    std::fs::create_dir_all(&d2).unwrap();
    let sim = common::procs::start_sim(&d1, "600");
    let other = common::procs::start_sim(&d2, "600");
    let other_arm = common::procs::SimArm::new(&other).await;
    let mut first = tokio::task::block_in_place(|| common::procs::spawn_serve(&sim, dir.path(), &["--start-now"]));
    let pid = format!("pid {}", first.child.id());
    let id = active_rollout(&first.url).await;

    let state = dir.path().join("state.db");
    let (st, tokens) = (
        state.display().to_string(),
        dir.path().join("tokens.yaml").display().to_string(),
    );
    let policy = concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml");
    let spawn = |args: &[&str]| {
        common::procs::ringmaster(&other, args)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let serve_args = [
        "serve",
        "--policy",
        policy,
        "--state",
        &st,
        "--listen",
        "127.0.0.1:0",
        "--sim-clock",
        "--tokens-file",
        &tokens,
        "--operator-group",
        "platform-admins",
        "--start-now",
    ];
    let out = tokio::task::block_in_place(|| refused(spawn(&serve_args), "a second serve"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains(&pid) && stderr.contains("in use"),
        "names the first serve: {stderr}"
    );
    assert!(out.stdout.is_empty(), "it never listened");
    let run_args = [
        "run",
        "--policy",
        policy,
        "--sim-clock",
        "--approve-as",
        "mallory",
        "--state",
        &st,
    ];
    let out = tokio::task::block_in_place(|| refused(spawn(&run_args), "run beside serve"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&pid), "names the serve: {stderr}");
    assert_eq!(
        other_arm.requests().await,
        Vec::<serde_json::Value>::new(),
        "no write from them"
    );

    let out = cli(&["state", "check", "--state", &st]);
    assert!(
        out.status.success(),
        "check beside serve: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let backup = dir.path().join("backup.db").display().to_string();
    let out = cli(&["state", "backup", "--state", &st, "--to", &backup]);
    assert!(
        out.status.success(),
        "backup beside serve: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let inode = || std::os::unix::fs::MetadataExt::ino(&std::fs::metadata(&state).unwrap());
    let before = inode();
    let out = cli(&["state", "restore", "--from", &backup, "--state", &st]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        !out.status.success() && stderr.contains(&pid),
        "restore refused: {stderr}"
    );
    assert_eq!(inode(), before, "the file serve uses is the same file");

    first.child.kill().unwrap(); // SIGKILL
    first.child.wait().unwrap();
    let next = tokio::task::block_in_place(|| common::procs::spawn_serve(&sim, dir.path(), &[]));
    assert_eq!(active_rollout(&next.url).await, id, "the successor resumes the rollout");
    drop(next);
    let out = cli(&["state", "restore", "--from", &backup, "--state", &st]);
    assert!(
        out.status.success(),
        "restore once serve is gone: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `state check` is read-only: a 0-byte file stays 0 bytes (it used to get a schema and
/// `ok: schema v3, 0 rollouts`), with no `-wal`/`-shm` beside it, and the check fails
/// saying what is wrong.
#[test]
fn state_check_on_an_empty_file_fails_and_leaves_it_empty() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    std::fs::write(&path, b"").unwrap();
    let out = cli(&["state", "check", "--state", &path.display().to_string()]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("not a ringmaster state file") && stderr.contains("empty"),
        "{stderr}"
    );
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 0);
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state.db"], "nothing created beside it");
    // A whole file in WAL mode, closed cleanly: checked `ok`, and still nothing beside it.
    std::fs::remove_file(&path).unwrap();
    Store::open(&path).unwrap().save_rollout(&demo_rollout("r1")).unwrap();
    let out = cli(&["state", "check", "--state", &path.display().to_string()]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, ["state.db"], "no -wal or -shm created by the check");
}

/// A new rollout of the demo policy on the demo fleet, as the engine stores it.
fn demo_rollout(id: &str) -> RolloutRecord {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/policies/demo.yaml")).unwrap();
    let fleet = support::demo_snapshot::load_fleet("demo.yaml");
    let now = fleet.start_time.unwrap();
    let snapshot = support::demo_snapshot::snapshot(&fleet);
    let plan = ringmaster::plan::plan(
        &snapshot,
        &ringmaster::policy::compile("demo.yaml", &text).unwrap(),
        now,
    );
    let rollout = ringmaster::engine::Rollout::new(id.into(), "demo.yaml".into(), text, plan, now);
    ringmaster::engine::stored::record(&rollout, None, Utc::now()).unwrap()
}

/// A rollout whose JSON is valid but does not decode (`"rxnning"`): `state check` said
/// `ok` where `serve` refused. Now both decode with the same function and say the same.
#[test]
fn state_check_decodes_rollouts_as_serve_does() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let mut rec = demo_rollout("r-typo");
    let before = rec.state_json.clone();
    rec.state_json = rec
        .state_json
        .replacen(r#"{"state":"running"}"#, r#"{"state":"rxnning"}"#, 1);
    assert_ne!(rec.state_json, before, "the head holds the rollout's status");
    {
        let s = Store::open(&path).unwrap();
        s.save_rollout(&rec).unwrap();
        s.checkpoint().unwrap();
    }
    let out = cli(&["state", "check", "--state", &path.display().to_string()]);
    let check = String::from_utf8_lossy(&out.stderr).trim().to_string();
    assert_eq!(out.status.code(), Some(1), "{check}");
    let said = check.strip_prefix("error: ").unwrap_or(&check).to_string();
    assert!(
        said.contains("rollout `r-typo` cannot be read") && said.contains("rxnning"),
        "{said}"
    );
    let serve = serve_refusal(&path);
    let serve = String::from_utf8_lossy(&serve.stderr);
    assert!(serve.contains(&said), "serve says the same: {serve}\ncheck: {said}");
}

/// After a crash with commits still in `state.db-wal`, a copy (or a file) without the
/// WAL read as an older state (here r0 without r1) and `state check` said `ok`; now it
/// says the WAL looks lost (the `-shm` counts frames the main file lacks) and fails.
/// With its WAL, the same file checks `ok` with both rollouts; `serve` refuses the copy.
#[test]
fn state_check_reports_a_lost_wal() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = Store::open(&path).unwrap();
    s.save_rollout(&demo_rollout("r0")).unwrap();
    s.checkpoint().unwrap();
    s.save_rollout(&demo_rollout("r1")).unwrap();
    // A crash: the connection is never closed, so nothing is checkpointed.
    std::mem::forget(s);
    let copy = |to: &Path, files: &[&str]| {
        std::fs::create_dir_all(to).unwrap();
        for f in files {
            std::fs::copy(dir.path().join(f), to.join(f)).unwrap();
        }
        to.join("state.db").display().to_string()
    };
    let whole = copy(&dir.path().join("whole"), &["state.db", "state.db-wal", "state.db-shm"]);
    let lost = copy(&dir.path().join("lost"), &["state.db", "state.db-shm"]);
    let out = cli(&["state", "check", "--state", &whole]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("2 rollouts"),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = cli(&["state", "check", "--state", &lost]);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(1),
        "{stderr}{}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(
        stderr.contains("lost its WAL") && stderr.contains("no -wal file"),
        "{stderr}"
    );
    let out = serve_refusal(Path::new(&lost));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("lost its WAL"), "serve refuses it too: {stderr}");
}

/// A daemon's store checkpoints after each commit: the main file alone (a SIGKILL, then
/// a copy without its `-wal`) holds the last commit, not an empty store.
#[test]
fn a_daemons_main_file_alone_holds_its_last_commit() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let s = Store::open_daemon(&path, "test").unwrap();
    s.save_rollout(&running("r1")).unwrap();
    std::mem::forget(s);
    let alone = dir.path().join("alone.db");
    std::fs::copy(&path, &alone).unwrap();
    let got = Store::open_read_only(&alone).unwrap().load_rollouts().unwrap();
    assert_eq!(got.iter().map(|r| r.id.as_str()).collect::<Vec<_>>(), ["r1"]);
}

/// The demo with `--state` writes rollout state too: refused while another process
/// holds the file (here this test, through the same lock), naming it; nothing written.
#[test]
fn the_demo_on_a_held_state_file_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("state.db");
    let _held = ringmaster::store::StateLock::acquire(&path, "test").unwrap();
    let child = Command::new(common::procs::bin())
        .args(["demo", "--no-faults", "--state"])
        .arg(&path)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let out = refused(child, "the demo");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains(&format!("pid {}", std::process::id())), "{stderr}");
    assert!(!path.exists(), "the demo wrote nothing to the state file");
}

/// The daemon applies the retention policy on its own: `retention::run` (what `serve`
/// spawns) archives at once, then again each hour, and not before; on tokio's paused
/// clock, so the hour takes no time. (`apply_retention` itself is the test above.)
#[tokio::test(flavor = "current_thread", start_paused = true)]
async fn the_daemon_archives_at_start_and_then_every_hour_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let s = std::sync::Arc::new(Store::open(dir.path().join("state.db")).unwrap());
    let now = Utc::now();
    let first: Vec<AuditEntry> = (0..20).map(|i| entry(now, i)).collect();
    s.save_rollout_with_audit(&running("r1"), &first).unwrap();
    let policy = RetentionPolicy {
        max_age: TimeDelta::days(90),
        max_entries: 5,
        archive_dir: dir.path().join("audit-archive"),
    };
    let metrics = std::sync::Arc::new(ringmaster::metrics::Metrics::default());
    let clock: std::sync::Arc<dyn ringmaster::clock::Clock> = std::sync::Arc::new(ringmaster::clock::SystemClock);
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let task = tokio::spawn(ringmaster::store::retention::run(
        s.clone(),
        policy,
        clock,
        metrics.clone(),
        stop_rx,
    ));
    // The pass runs on a blocking thread, which holds paused time still while it works.
    let settle = || tokio::time::sleep(std::time::Duration::from_secs(1));
    settle().await;
    assert_eq!(s.audit_archived_up_to().unwrap(), 15, "the first pass, at start");
    assert_eq!(metrics.get("ringmaster_audit_archived_total", &[]), 15.0);
    let more: Vec<AuditEntry> = (20..30).map(|i| entry(now, i)).collect();
    s.save_rollout_with_audit(&running("r1"), &more).unwrap();
    tokio::time::sleep(std::time::Duration::from_secs(3600 - 10)).await;
    assert_eq!(s.audit_archived_up_to().unwrap(), 15, "no pass before the hour");
    tokio::time::sleep(std::time::Duration::from_secs(10)).await;
    settle().await;
    assert_eq!(s.audit_archived_up_to().unwrap(), 25, "the next pass, an hour on");
    assert_eq!(metrics.get("ringmaster_audit_archived_total", &[]), 25.0);
    assert_eq!(s.check().unwrap().audit_entries, 5);
    stop.send(true).unwrap();
    task.await.unwrap();
}

/// `ringmaster serve` runs the retention task itself: started on a state file holding
/// more audit entries than `--audit-max-entries`, it archives the oldest at once into
/// `audit-archive` next to the state file (a real process; the hourly schedule is the
/// test above).
#[test]
fn serve_archives_old_audit_entries_on_its_own() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state.db");
    {
        let s = Store::open(&state).unwrap();
        for i in 0..5 {
            s.append_audit(&entry(Utc::now(), i)).unwrap();
        }
    }
    let tokens = format!(
        "tokens:\n  - name: admin\n    groups: [platform-admins]\n    sha256: {}\n",
        ringmaster::api::auth::token_digest_hex("state-file-test-token-0123456789abcdef")
    );
    std::fs::write(dir.path().join("tokens.yaml"), tokens).unwrap();
    let sim = common::procs::start_sim(dir.path(), "60");
    let serve = common::procs::spawn_serve(&sim, dir.path(), &["--audit-max-entries", "2"]);
    let archive = dir.path().join("audit-archive");
    let t = std::time::Instant::now();
    let lines = loop {
        let files: Vec<_> = std::fs::read_dir(&archive)
            .map(|d| d.filter_map(Result::ok).map(|e| e.path()).collect())
            .unwrap_or_default();
        let n: usize = files
            .iter()
            .filter(|p| p.extension().is_some_and(|x| x == "jsonl"))
            .map(|p| std::fs::read_to_string(p).unwrap_or_default().lines().count())
            .sum();
        if n > 0 || t.elapsed() > std::time::Duration::from_secs(20) {
            break n;
        }
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    assert!(lines >= 3, "serve archived {lines} entries of 5 with at most 2 kept");
    drop(serve);
}
