//! The dashboard of a daemon that runs two policies (`serve --policies`): in a real
//! browser, both running rollouts are listed in the picker, and choosing the other one
//! shows it (its id, its policy's rings); the choice survives the live updates of the
//! first one's events.

mod common;

use common::procs::{spawn_serve_dir, start_sim_on, write_tokens};
use common::webdriver::Browser;
use serde_json::json;
use std::time::{Duration, Instant};

const VIEWER: &str = "viewer-cadences-0123456789abcdef0123456789";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn both_running_rollouts_are_listed_and_either_can_be_chosen() {
    let dir = tempfile::tempdir().unwrap();
    write_tokens(dir.path(), &[("viewer", "readers", VIEWER)]);
    let fleet = concat!(env!("CARGO_MANIFEST_DIR"), "/examples/fleets/cadences.yaml");
    let policies = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/fixtures/cadences/policies");
    // Slow enough that both rollouts run for a while.
    let sim = start_sim_on(dir.path(), fleet, "20");
    let serve = spawn_serve_dir(&sim, dir.path(), policies, &["--start-now"]);
    let b = Browser::start().await;
    b.goto(&format!("{}/", serve.url)).await;
    let input = b.wait_for("#token", Duration::from_secs(20)).await;
    b.type_into(&input, VIEWER).await;
    let button = b.wait_for("#sign-in", Duration::from_secs(5)).await;
    b.click(&button).await;
    b.wait_for("#me", Duration::from_secs(20)).await;

    // The picker shows once two rollouts run, with one option each.
    let options = r#"
        const label = document.getElementById('rollout-pick-label');
        const pick = document.getElementById('rollout-pick');
        return [!label.hidden, Array.from(pick.options).map((o) => o.value)];
    "#;
    let t = Instant::now();
    let ids = loop {
        let v = b.run(options, json!([])).await;
        if v[0] == true && v[1].as_array().map_or(0, Vec::len) == 2 {
            break v[1]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_str().unwrap().to_string())
                .collect::<Vec<_>>();
        }
        assert!(
            t.elapsed() < Duration::from_secs(60),
            "the picker never listed two rollouts: {v}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert!(
        ids.iter().any(|i| i.starts_with("versions-")) && ids.iter().any(|i| i.starts_with("images-")),
        "{ids:?}"
    );
    let shown = b.text_of("#rollout-id").await;
    let other = ids.iter().find(|i| **i != shown).unwrap().clone();
    // Choose the other one, as a user does (the select's change event).
    b.run(
        "const p = document.getElementById('rollout-pick'); p.value = arguments[0]; p.dispatchEvent(new Event('change')); return true;",
        json!([other]),
    )
    .await;
    let t = Instant::now();
    while b.text_of("#rollout-id").await != other {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "choosing {other} did not show it"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Live updates of either rollout keep the choice.
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(b.text_of("#rollout-id").await, other);
    let errors: Vec<String> = b
        .console()
        .await
        .into_iter()
        .filter(|(l, _)| l == "SEVERE")
        .map(|(_, m)| m)
        .collect();
    assert!(errors.is_empty(), "console errors: {errors:?}");
}
