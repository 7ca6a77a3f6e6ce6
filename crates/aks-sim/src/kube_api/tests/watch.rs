//! Watches through the Kubernetes API handler: from now, replays from a
//! resourceVersion and their expiry, initial events and bookmarks, selectors, timeouts,
//! the end of a watch when the API becomes unreachable, and the release of a dropped
//! watch's receiver.

use super::*;

#[tokio::test]
async fn watch_from_now_sees_an_eviction() {
    let s = sim();
    let rv = s.kube(|k| k.rv);
    let mut w = s
        .watch(&format!("/api/v1/namespaces/shop/pods?watch=true&resourceVersion={rv}"))
        .await;
    let pod = s.ready_web_pod();
    s.shared.world().evict(0, &("shop".into(), pod.clone())).unwrap();
    let events = w.types_until_quiet(2).await;
    assert_eq!(events[0], ("DELETED".to_string(), pod));
    assert_eq!(events[1].0, "ADDED");
    // The replacement is scheduled after `pod_schedule`: a MODIFIED once time passes.
    s.shared.clock.advance(Duration::from_secs(60));
    drop(s.shared.world());
    let e = w.next().await.unwrap();
    assert_eq!(
        (e["type"].as_str(), e["object"]["metadata"]["name"].as_str()),
        (Some("MODIFIED"), Some(&*events[1].1))
    );
}

#[tokio::test]
async fn watch_replays_and_expires() {
    let s = sim();
    let (_, list) = s.get("/api/v1/pods").await;
    let rv = list["metadata"]["resourceVersion"].as_str().unwrap().to_string();
    let pod = s.ready_web_pod();
    s.shared.world().evict(0, &("shop".into(), pod.clone())).unwrap();
    // Resumed after the eviction: the watch replays it from history.
    let mut w = s.watch(&format!("/api/v1/pods?watch=1&resourceVersion={rv}")).await;
    let events = w.types_until_quiet(2).await;
    assert_eq!((events[0].0.as_str(), events[1].0.as_str()), ("DELETED", "ADDED"));
    // Older than the history: one ERROR with a 410 Status, then the end.
    let mut old = s.watch("/api/v1/pods?watch=true&resourceVersion=1").await;
    let e = old.next().await.unwrap();
    assert_eq!(e["type"], "ERROR");
    assert_eq!(
        (&e["object"]["code"], &e["object"]["reason"]),
        (&json!(410), &json!("Expired"))
    );
    assert!(
        e["object"]["message"]
            .as_str()
            .unwrap()
            .starts_with("too old resource version: 1 (")
    );
    assert!(old.next().await.is_none());
}

#[tokio::test]
async fn watch_initial_events_bookmark_and_legacy_path() {
    let s = sim();
    let n = s.kube(|k| k.nodes.len());
    let mut w = s.watch("/api/v1/nodes?watch=true&sendInitialEvents=true&allowWatchBookmarks=true&resourceVersionMatch=NotOlderThan").await;
    let events = w.types_until_quiet(n + 1).await;
    assert!(events[..n].iter().all(|(t, _)| t == "ADDED"));
    assert_eq!(events[n].0, "BOOKMARK");
    let mut w = s
        .watch("/api/v1/nodes?watch=true&sendInitialEvents=true&allowWatchBookmarks=true")
        .await;
    for _ in 0..n {
        w.next().await;
    }
    let b = w.next().await.unwrap();
    assert_eq!(
        b["object"]["metadata"]["annotations"]["k8s.io/initial-events-end"],
        "true"
    );
    assert_eq!(b["object"]["kind"], "Node");
    // Legacy path with a name: only that object.
    let node = events[0].1.clone();
    let mut one = s.watch(&format!("/api/v1/watch/nodes/{node}")).await;
    assert_eq!(one.types_until_quiet(1).await, [("ADDED".to_string(), node)]);
}

#[tokio::test]
async fn watch_selector_transitions_and_timeout() {
    let s = sim();
    let node = s.kube(|k| k.nodes.keys().next().unwrap().clone());
    let rv = s.kube(|k| k.rv);
    let mut w = s
        .watch(&format!(
            "/api/v1/nodes?watch=true&resourceVersion={rv}&fieldSelector=spec.unschedulable%3Dfalse&timeoutSeconds=1"
        ))
        .await;
    s.shared.world().clusters[0]
        .kube
        .update_node(&node, |n| n.unschedulable = true);
    // The node stops matching: the client is told it is gone from its view.
    assert_eq!(w.types_until_quiet(1).await, [("DELETED".to_string(), node.clone())]);
    s.shared.world().clusters[0]
        .kube
        .update_node(&node, |n| n.unschedulable = false);
    assert_eq!(w.types_until_quiet(1).await, [("MODIFIED".to_string(), node)]);
    let t = std::time::Instant::now();
    assert!(w.next().await.is_none(), "timeoutSeconds ends the stream");
    assert!(t.elapsed() < Duration::from_secs(3));
}

#[tokio::test]
async fn watch_bookmarks_and_ends_when_the_api_becomes_unreachable() {
    let s = sim();
    let (rv, node) = s.kube(|k| (k.rv, k.nodes.keys().next().unwrap().clone()));
    let mut w = s
        .watch(&format!(
            "/api/v1/nodes?watch=true&resourceVersion={rv}&allowWatchBookmarks=true"
        ))
        .await;
    let b = w.next().await.unwrap();
    assert_eq!(
        (&b["type"], &b["object"]["metadata"]["resourceVersion"]),
        (&json!("BOOKMARK"), &json!(rv.to_string()))
    );
    assert!(b["object"]["metadata"].get("annotations").is_none());
    // A pod change is filtered out of a node watch, but the next bookmark covers it.
    let pod = s.ready_web_pod();
    s.shared.world().evict(0, &("shop".into(), pod)).unwrap();
    let rv = json!(s.kube(|k| k.rv).to_string());
    for i in 0.. {
        let b = w.next().await.unwrap();
        assert_eq!(b["type"], "BOOKMARK");
        if b["object"]["metadata"]["resourceVersion"] == rv {
            break;
        }
        assert!(i < 20, "no bookmark at {rv}");
    }
    s.shared.world().clusters[0]
        .kube
        .update_node(&node, |n| n.ready = false);
    loop {
        let e = w.next().await.unwrap();
        if e["type"] == "MODIFIED" {
            assert_eq!(e["object"]["metadata"]["name"], node.as_str());
            break;
        }
    }
    s.shared.clock.advance(Duration::from_secs(3600));
    while let Some(e) = w.next().await {
        assert_eq!(e["type"], "BOOKMARK", "only bookmarks until the fault is noticed");
    }
}

#[tokio::test]
async fn dropped_watch_releases_its_receiver() {
    let s = sim();
    let w = s.watch("/api/v1/pods?watch=true").await;
    let receivers = || s.kube(|k| k.watchers.as_ref().map_or(0, |tx| tx.receiver_count()));
    assert_eq!(receivers(), 1);
    drop(w);
    assert_eq!(receivers(), 0);
}
