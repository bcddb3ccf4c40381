//! Log streams through the real paths: `/api/v2/log-streams` CRUD with Auth0's errors, and the
//! delivery to a real HTTP receiver (the same hyper server the idp runs on) that is killed and
//! started again mid-stream, or stays down until the stream is suspended and then resumed:
//! every event arrives (duplicates allowed, loss not), in order, with its authorization.

use crate::harness::*;
use axum::extract::State;
use axum::http::HeaderMap;
use reqwest::Method;
use serde_json::{Value, json};
use std::collections::HashSet;
use std::net::TcpListener;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::oneshot;

const AUTHORIZATION: &str = "Bearer CANARY-stream-authorization-4e1f";

/// What a receiver was sent: each request's authorization header and log ids, in order.
type Received = Arc<Mutex<Vec<(Option<String>, Vec<String>)>>>;

/// A log stream endpoint on `127.0.0.1:port`, reading JSON lines; [`Receiver::kill`] drops it
/// and every connection at once.
struct Receiver {
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

impl Receiver {
    fn start(port: u16, got: Received) -> Receiver {
        let listener = TcpListener::bind(("127.0.0.1", port)).expect("the receiver's port is free again");
        async fn take(State(got): State<Received>, headers: HeaderMap, body: String) -> &'static str {
            let auth = headers.get("authorization").map(|v| v.to_str().unwrap().to_string());
            let ids = body
                .lines()
                .map(|l| serde_json::from_str::<Value>(l).unwrap()["log_id"].as_str().unwrap().to_string())
                .collect();
            got.lock().unwrap().push((auth, ids));
            "ok"
        }
        let router = axum::Router::new().route("/logs", axum::routing::post(take)).with_state(got);
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            idp::serve(router, listener, idp::Listener::Plain, idp::Limits::default(), async move {
                let _ = stopped.await;
                Duration::ZERO
            })
            .await
            .unwrap();
        });
        Receiver { stop: Some(stop), task }
    }

    async fn kill(mut self) {
        let _ = self.stop.take().unwrap().send(());
        self.task.await.unwrap();
    }
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// Client-credentials grants (`seccft`), written to the store.
async fn grants(t: &TestIdp, n: usize) {
    let body = json!({
        "grant_type": "client_credentials",
        "client_id": kw("MGMT_CLIENT_ID"),
        "client_secret": kw("MGMT_CLIENT_SECRET"),
        "audience": t.idp.config.management_audience(),
    });
    for _ in 0..n {
        let res = reqwest::Client::new().post(t.url("oauth/token")).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    assert!(t.idp.flush_logs(Duration::from_secs(5)).await);
}

/// The newest event's id, after a flush.
async fn newest(t: &TestIdp, token: &str) -> String {
    assert!(t.idp.flush_logs(Duration::from_secs(5)).await);
    let (status, page) = call(t, token, Method::GET, "logs?per_page=1", None).await;
    assert_eq!(status, 200, "{page}");
    page[0]["log_id"].as_str().unwrap().to_string()
}

/// Every event after `after` whose type is one of `types`, oldest first.
async fn events_after(t: &TestIdp, after: &str, types: &[&str]) -> Vec<String> {
    use store::logs::{LogPaging, LogQuery, LogSearch};
    let search =
        LogSearch { query: LogQuery::All, paging: LogPaging::From { from: Some(after.into()), take: 100_000 } };
    let page = t.idp.store.logs().search_logs(&search).await.unwrap();
    page.events.into_iter().filter(|e| types.contains(&e.event_type.as_str())).map(|e| e.log_id).collect()
}

/// Waits (at most 60 s) until the receiver has every id of `expected`; then checks the order
/// and the authorization of what it got.
async fn received_all(got: &Received, expected: &[String]) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let seen: HashSet<String> = got.lock().unwrap().iter().flat_map(|(_, ids)| ids.clone()).collect();
        let missing: Vec<&String> = expected.iter().filter(|id| !seen.contains(*id)).collect();
        if missing.is_empty() {
            break;
        }
        assert!(Instant::now() < deadline, "{} of {} events never arrived", missing.len(), expected.len());
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let batches = got.lock().unwrap().clone();
    let mut first_seen = Vec::new();
    for (auth, ids) in &batches {
        assert_eq!(auth.as_deref(), Some(AUTHORIZATION));
        assert!(ids.windows(2).all(|w| w[0] < w[1]), "a batch in order: {ids:?}");
        for id in ids {
            if !first_seen.contains(id) {
                first_seen.push(id.clone());
            }
        }
    }
    assert!(first_seen.windows(2).all(|w| w[0] < w[1]), "events first arrive in order");
    let expected: HashSet<&String> = expected.iter().collect();
    assert!(first_seen.iter().all(|id| expected.contains(id)), "only what the filters let through");
}

async fn create_stream(t: &TestIdp, token: &str, port: u16) -> String {
    let body = json!({
        "name": "SIEM",
        "type": "http",
        "sink": {
            "httpEndpoint": format!("http://127.0.0.1:{port}/logs"),
            "httpAuthorization": AUTHORIZATION,
            "httpContentFormat": "JSONLINES",
            "httpContentType": "application/json",
        },
        "filters": [
            {"type": "category", "name": "auth.token_exchange.success"},
            {"type": "category", "name": "auth.login.fail"},
        ],
    });
    let (status, stream) = call(t, token, Method::POST, "log-streams", Some(body)).await;
    assert_eq!(status, 200, "{stream}");
    assert_eq!((stream["status"].as_str(), stream["type"].as_str()), (Some("active"), Some("http")));
    assert!(stream["sink"].get("httpAuthorization").is_none(), "write-only: {stream}");
    stream["id"].as_str().unwrap().to_string()
}

fn fast_streams(c: &mut idp::Config) {
    c.log_streams.poll = Duration::from_millis(200);
}

#[tokio::test]
async fn a_stream_delivers_every_event_across_a_receiver_restart() {
    let t = start_on(sqlite_store().await, true, fast_streams).await;
    let token = management_token(&t, None).await;
    let got = Received::default();
    let port = free_port();
    let receiver = Receiver::start(port, got.clone());
    let before = newest(&t, &token).await;
    let id = create_stream(&t, &token, port).await;

    grants(&t, 15).await;
    for _ in 0..3 {
        let form = [
            ("grant_type", "password".to_string()),
            ("client_id", kw("CMS_CLIENT_ID")),
            ("client_secret", kw("CMS_CLIENT_SECRET")),
            ("username", kw("USER_EMAIL")),
            ("password", "wrong".into()),
        ];
        reqwest::Client::new().post(t.url("oauth/token")).form(&form).send().await.unwrap();
    }
    // Mid-stream: once something arrived, the receiver dies with its connections.
    let deadline = Instant::now() + Duration::from_secs(30);
    while got.lock().unwrap().is_empty() {
        assert!(Instant::now() < deadline, "nothing delivered");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver.kill().await;
    grants(&t, 15).await;
    // The delivery notices: the stream is failing (and keeps its cursor).
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let stream = t.idp.store.logs().log_stream(&id).await.unwrap().unwrap();
        if stream.failing_since.is_some() {
            assert_eq!(stream.status, "active", "not suspended yet");
            break;
        }
        assert!(Instant::now() < deadline, "the failure was never noticed");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let receiver = Receiver::start(port, got.clone());
    grants(&t, 10).await;

    let expected = events_after(&t, &before, &["seccft", "fp"]).await;
    assert_eq!(expected.len(), 43, "40 grants and 3 wrong passwords");
    received_all(&got, &expected).await;
    receiver.kill().await;

    // The authorization is sealed at rest and shown nowhere.
    let stored = t.idp.store.logs().log_stream(&id).await.unwrap().unwrap();
    let sealed = stored.authorization_sealed.unwrap();
    assert!(sealed.starts_with("v1.") && !sealed.contains("CANARY"), "{sealed}");
    let (status, listed) = call(&t, &token, Method::GET, "log-streams", None).await;
    assert_eq!(status, 200);
    assert!(!listed.to_string().contains("CANARY"), "{listed}");
    let logs = call(&t, &token, Method::GET, "logs?per_page=100", None).await.1;
    assert!(!logs.to_string().contains("CANARY"), "not in the tenant log either");
}

#[tokio::test]
async fn a_stream_down_too_long_is_suspended_and_a_resume_delivers_what_was_kept() {
    let t = start_on(sqlite_store().await, true, |c| {
        fast_streams(c);
        c.log_streams.suspend_after = Duration::from_secs(1);
    })
    .await;
    let token = management_token(&t, None).await;
    let port = free_port(); // nothing listens there yet
    let before = newest(&t, &token).await;
    let id = create_stream(&t, &token, port).await;
    grants(&t, 5).await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (status, stream) = call(&t, &token, Method::GET, &format!("log-streams/{id}"), None).await;
        assert_eq!(status, 200, "{stream}");
        if stream["status"] == "suspended" {
            break;
        }
        assert!(Instant::now() < deadline, "never suspended: {stream}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // A login is not held up by a stream that fails.
    let started = Instant::now();
    grants(&t, 5).await;
    assert!(started.elapsed() < Duration::from_secs(5));

    let got = Received::default();
    let receiver = Receiver::start(port, got.clone());
    let (status, stream) =
        call(&t, &token, Method::PATCH, &format!("log-streams/{id}"), Some(json!({"status": "active"}))).await;
    assert_eq!((status, stream["status"].as_str()), (200, Some("active")), "{stream}");
    let expected = events_after(&t, &before, &["seccft", "fp"]).await;
    assert_eq!(expected.len(), 10);
    received_all(&got, &expected).await;
    receiver.kill().await;
}

#[tokio::test]
async fn log_streams_are_managed_with_auth0s_shapes_scopes_and_errors() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let (status, body) = call(&t, &token, Method::GET, "log-streams", None).await;
    assert_eq!((status, body), (200, json!([])));
    let id = create_stream(&t, &token, free_port()).await;
    assert!(id.starts_with("lst_"), "{id}");
    let path = format!("log-streams/{id}");
    let (status, one) = call(&t, &token, Method::GET, &path, None).await;
    assert_eq!(status, 200);
    assert_eq!(one["sink"]["httpContentFormat"], "JSONLINES");
    assert_eq!(one["filters"][1], json!({"type": "category", "name": "auth.login.fail"}));

    let patch =
        json!({"name": "SIEM 2", "status": "paused", "filters": [], "sink": {"httpContentFormat": "JSONARRAY"}});
    let (status, updated) = call(&t, &token, Method::PATCH, &path, Some(patch)).await;
    assert_eq!(status, 200, "{updated}");
    assert_eq!(
        (updated["name"].as_str(), updated["status"].as_str(), updated["sink"]["httpContentFormat"].as_str()),
        (Some("SIEM 2"), Some("paused"), Some("JSONARRAY"))
    );
    assert!(updated.get("filters").is_none(), "{updated}");
    assert_eq!(updated["sink"]["httpEndpoint"], one["sink"]["httpEndpoint"], "the rest stays");
    let (status, listed) = call(&t, &token, Method::GET, "log-streams", None).await;
    assert_eq!((status, listed.as_array().map(Vec::len)), (200, Some(1)));

    // Bad input: Auth0's 400s, and nothing written.
    let sink = |endpoint: &str| json!({"httpEndpoint": endpoint});
    for (body, says) in [
        (json!({"type": "http", "sink": sink("http://logs.example.com/in")}), "https"),
        (json!({"type": "http", "sink": sink("https://")}), "httpEndpoint"),
        (
            json!({"type": "http", "sink": {"httpEndpoint": "https://logs.example.com/", "httpContentFormat": "XML"}}),
            "httpContentFormat",
        ),
        (
            json!({"type": "http", "sink": sink("https://logs.example.com/"), "filters": [{"type": "category", "name": "all"}]}),
            "filters",
        ),
        (json!({"type": "datadog", "sink": sink("https://logs.example.com/")}), "not supported"),
        (json!({"type": "http"}), "sink"),
        (json!({"sink": sink("https://logs.example.com/")}), "type"),
        (json!({"type": "http", "sink": sink("https://logs.example.com/"), "colour": "red"}), "Additional properties"),
        (
            json!({"type": "http", "sink": {"httpEndpoint": "https://logs.example.com/", "httpAuthorization": "a\nb"}}),
            "httpAuthorization",
        ),
        (json!(["not", "an", "object"]), "object"),
    ] {
        let (status, error) = call(&t, &token, Method::POST, "log-streams", Some(body.clone())).await;
        assert_eq!((status, error["statusCode"].as_u64()), (400, Some(400)), "{body}: {error}");
        assert!(error["message"].as_str().unwrap().contains(says), "{body}: {error}");
        assert_eq!(error["errorCode"], "invalid_body");
    }
    let (status, error) = call(&t, &token, Method::PATCH, &path, Some(json!({"status": "dead"}))).await;
    assert_eq!(status, 400, "{error}");
    let (_, listed) = call(&t, &token, Method::GET, "log-streams", None).await;
    assert_eq!(listed.as_array().map(Vec::len), Some(1), "nothing was written");

    // Scopes, and streams that do not exist.
    let weak = management_token(&t, Some(&["read:users"])).await;
    for (method, p) in [(Method::GET, "log-streams"), (Method::POST, "log-streams"), (Method::DELETE, path.as_str())] {
        let (status, error) = call(&t, &weak, method, p, Some(json!({}))).await;
        assert_eq!((status, error["errorCode"].as_str()), (403, Some("insufficient_scope")), "{p}: {error}");
    }
    let token = management_token(&t, None).await;
    assert_eq!(call(&t, &token, Method::DELETE, &path, None).await.0, 204);
    for method in [Method::GET, Method::DELETE, Method::PATCH] {
        let (status, error) = call(&t, &token, method.clone(), &path, Some(json!({"name": "x"}))).await;
        assert_eq!(
            (status, error["errorCode"].as_str(), error["message"].as_str()),
            (404, Some("inexistent_log_stream"), Some("The log stream does not exist.")),
            "{method}"
        );
    }
}

/// Two nodes on one PostgreSQL database: one delivers the stream at a time, so while both are
/// healthy no event arrives twice; when the one holding the lease stops, the other takes the
/// stream over once the lease runs out and delivers the rest from the stored cursor.
#[tokio::test]
async fn two_nodes_deliver_a_stream_once_and_one_takes_over_when_the_other_stops() {
    const LEASE: Duration = Duration::from_secs(3);
    let tweak = |c: &mut idp::Config| {
        fast_streams(c);
        c.log_streams.lease = LEASE;
    };
    let schema = pg_schema("streams_nodes");
    let a = start_on(pg_store_in(&schema).await, true, tweak).await;
    let public = url::Url::parse(&a.base).unwrap();
    let key = a.idp.config.secrets_key_path();
    let b = start_on(pg_store_in(&schema).await, false, move |c| {
        tweak(c);
        c.public_url = public;
        c.secrets_key = Some(key);
    })
    .await;
    let token = management_token(&a, None).await;
    let got = Received::default();
    let port = free_port();
    let receiver = Receiver::start(port, got.clone());
    let before = newest(&a, &token).await;
    let id = create_stream(&a, &token, port).await;

    // Both healthy: events from both nodes at once (their writes interleave and commit in any
    // order), each arriving exactly once.
    for _ in 0..3 {
        tokio::join!(grants(&a, 5), grants(&b, 5));
    }
    let expected = events_after(&a, &before, &["seccft", "fp"]).await;
    assert_eq!(expected.len(), 30);
    arrived(&got, &expected, Duration::from_secs(30)).await;
    let ids: Vec<String> = got.lock().unwrap().iter().flat_map(|(_, ids)| ids.clone()).collect();
    let unique: HashSet<&String> = ids.iter().collect();
    assert_eq!(unique.len(), ids.len(), "an event arrived twice while both nodes were healthy");

    // The holder stops; the other takes over within the lease (after the last renewal).
    let stream = a.idp.store.logs().log_stream(&id).await.unwrap().unwrap();
    let holder = stream.lease_owner.clone().expect("a node holds the stream");
    let (dead, alive) = if holder == a.idp.log_stream_node() { (a, b) } else { (b, a) };
    assert_eq!(holder, dead.idp.log_stream_node());
    let survivor = alive.idp.log_stream_node().to_string();
    drop(dead);
    let stopped = Instant::now();
    grants(&alive, 5).await;
    let mut last_until = stream.lease_until.unwrap();
    let taken_until = loop {
        let s = alive.idp.store.logs().log_stream(&id).await.unwrap().unwrap();
        if s.lease_owner.as_deref() == Some(survivor.as_str()) {
            break s.lease_until.unwrap();
        }
        last_until = s.lease_until.unwrap();
        // The dead node's delivery ends with its idp, at most the serve grace after the drop.
        assert!(stopped.elapsed() < idp::GRACE + LEASE * 3, "never taken over");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let claimed_at = taken_until - LEASE.as_millis() as i64;
    let late = claimed_at - last_until;
    assert!(late <= 1_500, "taken over {late} ms after the lease ended (poll 200 ms)");
    let expected = events_after(&alive, &before, &["seccft", "fp"]).await;
    assert_eq!(expected.len(), 35);
    arrived(&got, &expected, Duration::from_secs(30)).await;
    receiver.kill().await;
}

/// Waits (at most `bound`) until the receiver has every id of `expected`.
async fn arrived(got: &Received, expected: &[String], bound: Duration) {
    let deadline = Instant::now() + bound;
    loop {
        let seen: HashSet<String> = got.lock().unwrap().iter().flat_map(|(_, ids)| ids.clone()).collect();
        let missing = expected.iter().filter(|id| !seen.contains(*id)).count();
        if missing == 0 {
            return;
        }
        assert!(Instant::now() < deadline, "{missing} of {} events never arrived", expected.len());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}
