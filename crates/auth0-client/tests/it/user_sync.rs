//! The MongoDB user sync (spec 4.6) end to end: a real idp, auth0-client with the four
//! variables set, and a MongoDB-wire server this test starts on its own port — SecantusDB
//! (single-node MongoDB over WiredTiger, from PyPI, installed by scripts/install-test-deps), or
//! the real MongoDB named by `MONGO_TEST_URL` (each test uses its own database there, and drops
//! it). A MongoDB that is down or never answers must cost a login nothing.

use crate::support::*;
use mongodb::bson::{Document, doc};
use serde_json::{Map, Value, json};
use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

const SERVER_START_TIMEOUT: Duration = Duration::from_secs(30);

/// A MongoDB to test against: a SecantusDB child (killed when dropped) or `MONGO_TEST_URL`.
pub struct Mongo {
    child: Option<Child>,
    /// `mongodb://host:port/`, without a database.
    pub url: String,
    _dir: Option<TempDir>,
}

impl Drop for Mongo {
    fn drop(&mut self) {
        if let Some(child) = &mut self.child {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Mongo {
    pub fn start() -> Mongo {
        if let Some(url) = std::env::var("MONGO_TEST_URL").ok().filter(|u| !u.is_empty()) {
            return Mongo { child: None, url, _dir: None };
        }
        let bin = workspace().join("tests/python/.venv-mongo/bin/secantusd-py");
        assert!(bin.exists(), "{} is missing: run scripts/install-test-deps", bin.display());
        let dir = TempDir::new("mongo");
        let mut child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", "0", "--log-level", "INFO", "--storage-path"])
            .arg(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("starting secantusd-py");
        // It says `secantus listening on 127.0.0.1:PORT` once it accepts connections.
        let (tx, rx) = mpsc::channel();
        let stderr = child.stderr.take().unwrap();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some((_, addr)) = line.split_once("listening on ") {
                    let _ = tx.send(addr.trim().to_string());
                }
            }
        });
        let mut mongo = Mongo { child: Some(child), url: String::new(), _dir: Some(dir) };
        let addr = rx.recv_timeout(SERVER_START_TIMEOUT).expect("secantusd-py did not start listening");
        mongo.url = format!("mongodb://{addr}/");
        mongo
    }

    pub async fn client(&self) -> mongodb::Client {
        mongodb::Client::with_uri_str(&self.url).await.expect("a MongoDB client")
    }
}

/// The four variables for `db.users`, syncing `properties`.
fn sync_env(url: &str, db: &str, properties: &str) -> Vec<(String, String)> {
    vec![
        ("MONGO_DB_URL".into(), url.into()),
        ("USERS_DATABASE_NAME".into(), db.into()),
        ("USERS_COLLECTION_NAME".into(), "users".into()),
        ("USERS_PROPERTIES_TO_SAVE".into(), properties.into()),
    ]
}

async fn service_with(idp: &Idp, store: Store, env: &[(String, String)]) -> Service {
    let id = idp.connection_id("dev-users").await;
    let env: Vec<(&str, &str)> = env.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    start_service(store, config_json(idp, &id), &env).await
}

/// Waits until the sync counters reach (written, failed, skipped).
async fn synced(svc: &Service, want: (u64, u64, u64)) {
    let stats = svc.app.user_sync.stats.clone();
    eventually(&format!("sync counters {want:?} (now {:?})", stats.snapshot()), 200, Duration::from_millis(50), || {
        let stats = stats.clone();
        async move { stats.snapshot() == want }
    })
    .await;
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

#[tokio::test(flavor = "multi_thread")]
async fn every_token_writes_the_users_document() {
    let mongo = tokio::task::spawn_blocking(Mongo::start).await.unwrap();
    let idp = tokio::task::spawn_blocking(Idp::start).await.unwrap();
    let db = unique("sync").replace('-', "_");
    let svc = service_with(&idp, Store::Redis, &sync_env(&mongo.url, &db, "email, name,groups,notInAnyProfile")).await;
    let client = mongo.client().await;
    let users = client.database(&db).collection::<Document>("users");

    // A login writes one document keyed by the user id, with the listed properties it has.
    let sid = website_login(&idp, &svc, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    synced(&svc, (1, 0, 0)).await;
    let (_, info) = json(get_with_sid(&svc, "/userinfo", &sid).await).await;
    let sub = info["sub"].as_str().unwrap().to_string();
    let mut found = users.find_one(doc! {"userId": &sub}).await.unwrap().expect("the admin's document");
    found.remove("_id");
    assert_eq!(
        found,
        doc! {"userId": &sub, "email": dev_env("ADMIN_EMAIL"), "name": "CMS Administrator", "groups": ["admin"]},
        "listed properties only; one the profile lacks is left out"
    );

    // /refreshtoken updates the same document (a renamed user keeps one document).
    let (status, _) = idp
        .management_send(reqwest::Method::PATCH, &format!("users/{}", urlencode(&sub)), Some(json!({"name": "Ada"})))
        .await;
    assert_eq!(status, 200);
    let res = reqwest::Client::new()
        .post(svc.url("/refreshtoken"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    synced(&svc, (2, 0, 0)).await;
    let found = users.find_one(doc! {"userId": &sub}).await.unwrap().unwrap();
    assert_eq!(found.get_str("name").unwrap(), "Ada");

    // The refresh inside /userinfo (an expired access token) writes it again.
    let key = auth0_client::session::SessionKey::of(&sid);
    let mut session = svc.app.sessions.get(&key).await.unwrap().unwrap();
    session.expire_at = svc.clock.now_ms() - 1;
    assert!(svc.app.sessions.update(&key, &session).await.unwrap());
    assert_eq!(get_with_sid(&svc, "/userinfo", &sid).await.status(), 200);
    synced(&svc, (3, 0, 0)).await;

    // Another user: another document.
    website_login(&idp, &svc, &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
    synced(&svc, (4, 0, 0)).await;
    assert_eq!(users.count_documents(doc! {}).await.unwrap(), 2);

    // A profile over MongoDB's 16 MiB document limit is skipped (and logged), not sent; the
    // sync goes on working after it.
    let mut huge = Map::new();
    huge.insert("sub".into(), Value::String(sub.clone()));
    huge.insert("email".into(), Value::String("x".repeat(17 * 1024 * 1024)));
    svc.app.user_sync.spawn(&huge);
    synced(&svc, (4, 0, 1)).await;
    let res = reqwest::Client::new()
        .post(svc.url("/refreshtoken"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    synced(&svc, (5, 0, 1)).await;
    assert_eq!(
        users.find_one(doc! {"userId": &sub}).await.unwrap().unwrap().get_str("email").unwrap(),
        dev_env("ADMIN_EMAIL")
    );

    // /-/check-up pings MongoDB when the sync is on.
    assert_eq!(reqwest::get(svc.url("/-/check-up")).await.unwrap().status(), 200);
    client.database(&db).drop().await.unwrap();
}

/// Accepts connections and never answers: a MongoDB that hangs.
async fn silent_server() -> (String, tokio::task::JoinHandle<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let task = tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((stream, _)) = listener.accept().await {
            held.push(stream);
        }
    });
    (format!("mongodb://{addr}/?serverSelectionTimeoutMS=3000&connectTimeoutMS=3000"), task)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_down_or_hanging_mongodb_never_fails_or_slows_a_login() {
    let idp = tokio::task::spawn_blocking(Idp::start).await.unwrap();
    // Both URLs set the driver's timeouts, which the sync honours over its own defaults.
    let closed = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap()
    };
    let (hanging, server) = silent_server().await;
    let down_url = format!("mongodb://{closed}/?serverSelectionTimeoutMS=3000&connectTimeoutMS=3000");
    for url in [down_url, hanging] {
        let svc = service_with(&idp, Store::Memory, &sync_env(&url, "gatehouse_it", "email")).await;
        let sid = website_login(&idp, &svc, &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
        let started = Instant::now();
        let res = reqwest::Client::new()
            .post(svc.url("/refreshtoken"))
            .header("cookie", format!("sid={sid}"))
            .send()
            .await
            .unwrap();
        let took = started.elapsed();
        assert_eq!(res.status(), 200, "{url}");
        // An inline sync would wait the driver's 3 s of server selection at least.
        assert!(took < Duration::from_secs(2), "{url}: the refresh took {took:?}");
        assert_eq!(get_with_sid(&svc, "/userinfo", &sid).await.status(), 200);
        // Both syncs (login, refresh) failed beside the requests, and were logged.
        synced(&svc, (0, 2, 0)).await;
        // Readiness ignores MongoDB (best-effort); check-up reports it.
        assert_eq!(reqwest::get(svc.url("/-/ready")).await.unwrap().status(), 200);
        assert_eq!(reqwest::get(svc.url("/-/check-up")).await.unwrap().status(), 503, "{url}");
    }
    server.abort();
}
