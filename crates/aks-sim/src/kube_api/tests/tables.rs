//! The `Table` form `kubectl get` asks for, in a list and in a watch (`kubectl get -w`).

use super::*;

#[tokio::test]
async fn tables_for_kubectl() {
    let s = sim();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json";
    s.shared.clock.advance(Duration::from_secs(300));
    let (_, t) = s
        .send(s.req("GET", "/api/v1/nodes").header(header::ACCEPT, accept), "")
        .await;
    assert_eq!(t["kind"], "Table");
    let row = &t["rows"][0]["cells"];
    assert_eq!(
        (&row[1], &row[3], &row[4]),
        (&json!("Ready"), &json!("5m"), &json!("v1.32.7"))
    );
    let (_, one) = s
        .send(
            s.req("GET", "/api/v1/namespaces/shop/pods?limit=1")
                .header(header::ACCEPT, accept),
            "",
        )
        .await;
    let name = one["rows"][0]["cells"][0].as_str().unwrap();
    let (_, t) = s
        .send(
            s.req("GET", &format!("/api/v1/namespaces/shop/pods/{name}"))
                .header(header::ACCEPT, accept),
            "",
        )
        .await;
    assert_eq!(t["rows"][0]["cells"][1], "1/1");
    assert_eq!(t["rows"][0]["object"]["metadata"]["namespace"], "shop");
}

#[tokio::test]
async fn table_watch_for_kubectl_get_w() {
    let s = sim();
    let accept = "application/json;as=Table;v=v1;g=meta.k8s.io,application/json";
    let req = s
        .req("GET", "/api/v1/namespaces/shop/pods?watch=true")
        .header(header::ACCEPT, accept);
    let resp = handle(s.shared.clone(), req.body(Body::empty()).unwrap()).await;
    let mut w = Watch {
        body: resp.into_body().into_data_stream(),
        buf: Vec::new(),
    };
    let e = w.next().await.unwrap();
    assert_eq!((&e["type"], &e["object"]["kind"]), (&json!("ADDED"), &json!("Table")));
    assert_eq!(e["object"]["rows"].as_array().unwrap().len(), 1);
}
