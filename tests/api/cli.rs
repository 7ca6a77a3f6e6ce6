//! The CLI client against the test server: tables within 100 columns, JSON output,
//! the API's error messages, and exit codes (0 ok, 1 refused, 2 usage).

use crate::harness::{BOB, Harness, OPS};
use clap::Parser;
use ringmaster::api::cli::{ClientCommand, Outcome, execute};
use ringmaster::engine::RingStatus;
use ringmaster::identity::Redacted;

#[derive(Parser)]
struct Cli {
    #[command(subcommand)]
    cmd: ClientCommand,
}

async fn run(h: &Harness, token: Option<&str>, args: &[&str]) -> Outcome {
    let mut argv = vec!["ringmaster"];
    argv.extend_from_slice(args);
    argv.extend_from_slice(&["--server", &h.base]);
    let cli = Cli::try_parse_from(argv).unwrap_or_else(|e| panic!("{args:?}: {e}"));
    execute(&cli.cmd, token.map(|t| Redacted(t.into())).as_ref()).await
}

fn fits(out: &str) {
    for line in out.lines() {
        assert!(line.chars().count() <= 100, "wider than 100 columns: {line}");
    }
}

#[tokio::test]
async fn status_shows_rings_clusters_and_pending_approvals_in_100_columns() {
    let h = Harness::start().await;
    let reason = "gate failed after 300s: shop/ReplicaSet/web: 1/3 pods Ready (0.33 < 1.00); ".repeat(4);
    h.standin.with("r1", |r| {
        std::sync::Arc::make_mut(&mut r.rings[1].waves[0].clusters[0]).status =
            ringmaster::engine::ClusterStatus::Failed { reason: reason.clone() };
    });
    let out = run(&h, Some(OPS), &["promote-now", "staging", "--reason", "hotfix"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Ending the soak of ring staging"), "{out:?}");
    let out = run(&h, Some(BOB), &["status"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    fits(&out.stdout);
    for needle in [
        "Rollout r1",
        "target 1.33.3",
        "RING",
        "awaiting approval",
        "aks-prd-weu-01",
        "approvers: platform-admins",
    ] {
        assert!(out.stdout.contains(needle), "no `{needle}` in\n{}", out.stdout);
    }
    assert!(
        out.stdout
            .contains("waits for approval by platform-admins (you may approve)"),
        "{}",
        out.stdout
    );
    let details = out.stdout.split("Gate reasons and failures:\n").nth(1).unwrap();
    assert!(details.starts_with("  aks-stg-"), "{details}");
    assert!(
        details.contains("(0.33 < 1.00)"),
        "reasons are wrapped, not cut: {details}"
    );
    assert!(
        !out.stdout.contains(BOB) && !out.stderr.contains(BOB),
        "the token was printed"
    );

    let out = run(&h, Some(BOB), &["status", "--output", "json"]).await;
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    assert_eq!(v["rollout"]["id"], "r1");
    assert_eq!(v["approvals"]["pending"][0]["ring"], "prod");
}

#[tokio::test]
async fn approve_reports_the_approval_and_the_apis_refusals() {
    let h = Harness::start().await;
    run(&h, Some(OPS), &["promote-now", "staging", "--reason", "go"]).await;
    // An operator is not an approver: the API's message, exit code 1.
    let out = run(&h, Some(OPS), &["approve", "prod"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("may not approve ring `prod`"), "{}", out.stderr);
    assert!(out.stderr.contains("forbidden, HTTP 403"), "{}", out.stderr);

    let out = run(&h, Some(BOB), &["promote", "prod", "--comment", "lgtm"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(
        out.stdout
            .starts_with("Approved 1.33.3 into ring prod of rollout r1 as bob"),
        "{}",
        out.stdout
    );
    assert_eq!(h.standin.rollout("r1").rings[2].status, RingStatus::Running);
    let out = run(&h, Some(BOB), &["approve", "prod"]).await;
    assert_eq!(out.code, 1, "the ring runs: nothing to approve");
    assert!(out.stderr.contains("not_awaiting_approval"), "{}", out.stderr);
}

#[tokio::test]
async fn operator_commands_and_history() {
    let h = Harness::start().await;
    for args in [
        vec!["pause", "--reason", "freeze"],
        vec!["resume"],
        vec!["pause", "--ring", "prod"],
        vec!["resume", "--ring", "prod"],
        vec!["skip", "aks-prd-neu-01", "--reason", "decommissioned"],
    ] {
        let out = run(&h, Some(OPS), &args).await;
        assert_eq!(out.code, 0, "{args:?}: {out:?}");
    }
    let out = run(&h, Some(OPS), &["history"]).await;
    assert_eq!(out.code, 0);
    fits(&out.stdout);
    assert!(out.stdout.contains("api.skip"), "{}", out.stdout);
    assert!(out.stdout.lines().any(|l| l.contains("ops") && l.contains("api.pause")));
    let out = run(&h, Some(BOB), &["reject", "prod", "--comment", "not today"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    let out = run(&h, Some(OPS), &["abort", "--reason", "x"]).await;
    assert_eq!(out.code, 1, "halted: no active rollout");
    assert!(out.stderr.contains("no rollout is running"), "{}", out.stderr);
    let out = run(&h, Some(OPS), &["abort", "--reason", "x", "--rollout", "r1"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("rollout_finished, HTTP 409"), "{}", out.stderr);
    // Nothing runs: an operator starts one now (the command the dashboard names); an
    // approver who is no operator may not; a second start is refused while one runs.
    let out = run(&h, Some(BOB), &["start", "--reason", "x"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("forbidden"), "{}", out.stderr);
    let out = run(&h, Some(OPS), &["start", "--reason", "patch tuesday"]).await;
    assert_eq!(out.code, 0, "{out:?}");
    assert!(out.stdout.contains("Started rollout r2"), "{}", out.stdout);
    let started = h.audit_actions("api.start");
    assert_eq!(started.len(), 1);
    assert_eq!(
        (started[0].actor.as_str(), started[0].reason.as_str()),
        ("ops", "patch tuesday")
    );
    let out = run(&h, Some(OPS), &["start"]).await;
    assert_eq!(out.code, 1, "{out:?}");
    assert!(out.stderr.contains("already_running"), "{}", out.stderr);
    let page = include_str!("../../src/api/ui/index.html");
    assert!(page.contains("<code>ringmaster start</code>") && page.contains("<code>ringmaster token new</code>"));
}

#[tokio::test]
async fn usage_errors_exit_2_and_refusals_exit_1() {
    let h = Harness::start().await;
    let out = run(&h, None, &["status"]).await;
    assert_eq!(out.code, 2);
    assert!(out.stderr.contains("RINGMASTER_TOKEN"));
    let out = run(&h, Some("rmt_wrong"), &["status"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("the token is not valid"), "{}", out.stderr);
    assert!(!out.stderr.contains("rmt_wrong"));
    let out = run(&h, Some(OPS), &["status", "--rollout", "nope"]).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("no rollout `nope`"), "{}", out.stderr);

    let cli = Cli::try_parse_from(["ringmaster", "status", "--server", "ringmaster.local"]).unwrap();
    assert_eq!(execute(&cli.cmd, Some(&Redacted("t".into()))).await.code, 2);
    let cli = Cli::try_parse_from(["ringmaster", "status", "--server", "http://127.0.0.1:9"]).unwrap();
    let out = execute(&cli.cmd, Some(&Redacted("t".into()))).await;
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("cannot reach"), "{}", out.stderr);
    let e = Cli::try_parse_from(["ringmaster", "reject", "prod", "--server", "http://x"])
        .err()
        .unwrap();
    assert_eq!(e.exit_code(), 2, "reject needs --comment");
}

#[tokio::test]
async fn token_new_prints_a_token_and_its_file_entry() {
    let cli = Cli::try_parse_from(["ringmaster", "token", "new", "--name", "ci", "--group", "sre,readers"]).unwrap();
    let out = execute(&cli.cmd, None).await;
    assert_eq!(out.code, 0, "{out:?}");
    let token = out.stdout.lines().nth(1).unwrap().trim().to_string();
    assert!(token.starts_with("rmt_"));
    let entry = out.stdout.split("under `tokens:`:\n").nth(1).unwrap();
    let tokens = ringmaster::api::auth::parse_tokens("t.yaml", &format!("tokens:\n{entry}")).unwrap();
    assert_eq!(tokens[0].name, "ci");
    assert_eq!(tokens[0].groups, ["sre", "readers"]);
    let auth = ringmaster::api::Auth::new(tokens, None, vec![]);
    let header = format!("Bearer {token}").parse().unwrap();
    assert_eq!(auth.authenticate(Some(&header)).await.unwrap().name, "ci");
}
