//! Traces: an idp and an auth0-client started with the standard `OTEL_*` variables export
//! OTLP/HTTP (JSON here) to a receiver this test runs; one website login yields the request
//! spans of both services, the idp's code exchange in the same trace as auth0-client's
//! `/oauth/token` (the W3C `traceparent` carried on the upstream call), and the idp's spans for
//! store queries, the password hash and the Action run.

use crate::faults::load::{self, Account, Load, Target};
use crate::faults::parts::{client_config, client_node, idp_node_with, within};
use crate::support::{TempDir, dev_env};
use axum::routing::post;
use serde_json::Value;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// One span as the receiver saw it.
#[derive(Clone, Debug)]
struct Span {
    service: String,
    name: String,
    trace: String,
    id: String,
    parent: String,
}

/// An OTLP/HTTP receiver (`POST /v1/traces`, JSON encoding) keeping every span.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans = Arc::new(Mutex::new(Vec::new()));
    let sink = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let sink = sink.clone();
            async move {
                let doc: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                let mut got = sink.lock().unwrap();
                for rs in doc["resourceSpans"].as_array().into_iter().flatten() {
                    let service = rs["resource"]["attributes"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .find(|a| a["key"] == "service.name")
                        .and_then(|a| a["value"]["stringValue"].as_str())
                        .unwrap_or_default()
                        .to_owned();
                    for ss in rs["scopeSpans"].as_array().into_iter().flatten() {
                        for s in ss["spans"].as_array().into_iter().flatten() {
                            let text = |k: &str| s[k].as_str().unwrap_or_default().to_owned();
                            got.push(Span {
                                service: service.clone(),
                                name: text("name"),
                                trace: text("traceId"),
                                id: text("spanId"),
                                parent: text("parentSpanId"),
                            });
                        }
                    }
                }
                axum::Json(serde_json::json!({}))
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (url, spans)
}

#[tokio::test(flavor = "multi_thread")]
async fn one_login_is_one_trace_across_both_services() {
    let (endpoint, spans) = receiver().await;
    let otel = |service: &str| {
        vec![
            ("OTEL_EXPORTER_OTLP_ENDPOINT", endpoint.clone()),
            ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/json".to_owned()),
            ("OTEL_SERVICE_NAME", service.to_owned()),
            // Export every 100 ms rather than every 5 s.
            ("OTEL_BSP_SCHEDULE_DELAY", "100".to_owned()),
        ]
    };
    let dir = TempDir::new("traces");
    let port = crate::support::free_port();
    let public = format!("http://127.0.0.1:{port}/");
    let database = format!("sqlite://{}/idp.db", dir.path().display());
    // The idp on the port its public URL names (no balancer here).
    let idp = idp_node_with("idp", dir.path(), &database, &public, port, &otel("idp")).await;
    let base = idp.base();
    let http = reqwest::Client::new();
    let token = http
        .post(format!("{base}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &dev_env("MGMT_CLIENT_ID")),
            ("client_secret", &dev_env("MGMT_CLIENT_SECRET")),
            ("audience", &load::management_audience(&base)),
        ])
        .send()
        .await
        .unwrap()
        .json::<Value>()
        .await
        .unwrap()["access_token"]
        .as_str()
        .unwrap()
        .to_owned();
    let connections: Value = http
        .get(format!("{base}/api/v2/connections?name=dev-users"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let config = client_config(&base, connections[0]["id"].as_str().unwrap());
    let client = client_node("auth0-client", dir.path(), &config, &otel("auth0-client")).await;

    let account =
        Account { email: dev_env("ADMIN_EMAIL"), password: dev_env("ADMIN_PASSWORD"), user_id: String::new() };
    let target = Target {
        idp: base.clone(),
        client: client.base(),
        accounts: vec![account.clone()],
        management_token: token,
        sessions: Vec::new(),
        run: "traces".into(),
    };
    let login = Load::new(target, 1, None);
    let sid = load::browser_login(&login, &account).await;
    assert!(sid.is_some(), "the login failed: {:?}", login.tallies.lock().unwrap()[0]);

    // auth0-client's `/oauth/token` → its upstream call → the idp's `/oauth/token`, one trace.
    let seen = spans.clone();
    within("the code exchange's spans from both services", Duration::from_secs(20), || {
        let seen = seen.clone();
        async move {
            let spans = seen.lock().unwrap().clone();
            exchange_chain(&spans).is_some()
        }
    })
    .await;
    let spans = spans.lock().unwrap().clone();
    let (client_request, upstream, idp_request) = exchange_chain(&spans).unwrap();
    assert_eq!(upstream.trace, client_request.trace);
    assert_eq!(idp_request.trace, client_request.trace, "the idp's span is in auth0-client's trace");
    assert!(
        spans.iter().any(|s| s.service == "idp" && s.name.starts_with("store ") && s.parent == idp_request.id),
        "the exchange's store queries are children of its request: {spans:#?}"
    );
    for name in ["password.hash", "action.run"] {
        assert!(spans.iter().any(|s| s.service == "idp" && s.name == name), "no {name} span: {spans:#?}");
    }
    drop(client);
    drop(idp);
}

/// auth0-client's request span for `POST /oauth/token`, its upstream span, and the idp's
/// request span whose parent is that upstream span.
fn exchange_chain(spans: &[Span]) -> Option<(Span, Span, Span)> {
    for request in spans.iter().filter(|s| s.service == "auth0-client" && s.name == "POST /oauth/token") {
        for upstream in spans
            .iter()
            .filter(|s| s.service == "auth0-client" && s.name == "POST /oauth/token" && s.parent == request.id)
        {
            if let Some(idp) = spans.iter().find(|s| s.service == "idp" && s.parent == upstream.id) {
                return Some((request.clone(), upstream.clone(), idp.clone()));
            }
        }
    }
    None
}
