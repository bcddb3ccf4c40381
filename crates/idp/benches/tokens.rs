//! `cargo bench -p idp --bench tokens`: what the idp's hot paths cost in-process, without a
//! benchmark framework (`std::time::Instant`, a warm-up, then a timed run; ns/op and ops/s).
//!
//! Two parts, both through the crate's public API only:
//! 1. primitives on the node's real key ring (`idp.keys.current()`): taking the current key set,
//!    signing an access-token-shaped JWT with the current key, the raw RSA-2048 signature alone,
//!    verifying a token the idp issued over HTTP (the first time, and again from the key set's
//!    memo), and the JWKS (cloning the bytes the node serves, and what serialising it per
//!    request would cost);
//! 2. the endpoints, through `idp.router()` + `idp::serve` on an ephemeral 127.0.0.1 port with
//!    the example tenant on in-memory SQLite, driven by a reqwest loop of bounded concurrency
//!    in the same process (client and server share the cores: compare these figures with each
//!    other and between commits, not with `bench/load.sh`).
//!
//! About 20 s in all. `BENCH_SECS` scales every timed run (default 1.0 s for primitives, 2 s
//! for endpoints). `cargo test --all-targets` runs this binary too, without `--bench`: it then
//! makes one quick pass (BENCH_SECS=0.01) that proves the benchmark still works.

use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use idp::jwt;
use idp::util::now_ms;
use idp::{AppState, Config, Idp, Listener};
use serde_json::{Map, Value, json};
use std::hint::black_box;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};
use store::SqlStore;
use tenant::Keywords;

const CONCURRENCY: usize = 16;

static SCALE: OnceLock<f64> = OnceLock::new();

fn scale() -> f64 {
    *SCALE.get().unwrap_or(&1.0)
}

fn report(name: &str, ops: u64, elapsed: Duration) {
    let ns = elapsed.as_nanos() as f64 / ops.max(1) as f64;
    let per_sec = ops as f64 / elapsed.as_secs_f64();
    println!("{name:<58} {ns:>12.0} ns/op {per_sec:>14.0} ops/s   ({ops} ops)");
}

/// Warm-up for a fifth of the budget, then batches until the budget is spent.
fn bench<T>(name: &str, mut f: impl FnMut() -> T) {
    let budget = Duration::from_secs_f64(scale());
    let warm = Instant::now();
    while warm.elapsed() < budget / 5 {
        black_box(f());
    }
    let mut ops = 0u64;
    let mut batch = 1u64;
    let start = Instant::now();
    loop {
        for _ in 0..batch {
            black_box(f());
        }
        ops += batch;
        let elapsed = start.elapsed();
        if elapsed >= budget {
            report(name, ops, elapsed);
            return;
        }
        batch = (batch * 2).min(1 << 16);
    }
}

/// `CONCURRENCY` tasks sending requests until the deadline; every answer must be 200.
async fn load<F>(name: &str, client: &reqwest::Client, make: F)
where
    F: Fn(&reqwest::Client) -> reqwest::RequestBuilder + Send + Sync + 'static,
{
    let make = Arc::new(make);
    let run = |secs: f64| {
        let ok = Arc::new(AtomicU64::new(0));
        let deadline = Instant::now() + Duration::from_secs_f64(secs);
        let tasks: Vec<_> = (0..CONCURRENCY)
            .map(|_| {
                let (client, make, ok) = (client.clone(), make.clone(), ok.clone());
                tokio::spawn(async move {
                    while Instant::now() < deadline {
                        let res = make(&client).send().await.expect("request failed");
                        assert_eq!(res.status(), 200, "unexpected status");
                        black_box(res.bytes().await.expect("body"));
                        ok.fetch_add(1, Ordering::Relaxed);
                    }
                })
            })
            .collect();
        async move {
            let start = Instant::now();
            for t in tasks {
                t.await.expect("load task panicked");
            }
            (ok.load(Ordering::Relaxed), start.elapsed())
        }
    };
    run(scale() / 4.0).await;
    let (ops, elapsed) = run(2.0 * scale()).await;
    report(name, ops, elapsed);
}

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cms-tenant")
}

async fn start_idp(data: &Path) -> (AppState, String, tokio::sync::oneshot::Sender<()>) {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let base = format!("http://127.0.0.1:{}/", listener.local_addr().expect("local addr").port());
    let mut config = Config::new(url::Url::parse(&base).expect("base URL"), data.to_path_buf());
    config.bcrypt_cost = 4; // the password grant below only fetches a /userinfo token
    let store = Arc::new(SqlStore::connect("sqlite::memory:").await.expect("in-memory SQLite"));
    let idp = Idp::new(config, store, Arc::new(idp::mail::Outbox::new(data.join("outbox")))).await.expect("idp");
    let mut kw = Keywords::from_env_file(example_dir().join("dev.env")).expect("dev.env");
    kw.insert("AUTH0_DOMAIN", idp.config.domain());
    let file = tenant::load_tenant(example_dir().join("tenant.yaml"), &kw).expect("tenant.yaml");
    idp::provision::apply_tenant(&idp, &file).await.expect("apply tenant");
    let users = tenant::load_users(example_dir().join("users.json"), &kw).expect("users.json");
    let report = idp::provision::import_users(&idp, "dev-users", &users).await.expect("import users");
    assert!(report.errors.is_empty(), "{:?}", report.errors);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(idp::serve(idp.router(), listener, Listener::Plain, idp::Limits::default(), async move {
        let _ = stopped.await;
        idp::GRACE
    }));
    (idp, base, stop)
}

/// The claims `tokens::access_token` puts in a client-credentials token for the Management API.
fn client_credentials_claims(idp: &AppState, client_id: &str) -> Map<String, Value> {
    let iat = now_ms() / 1000;
    let scope = "read:users update:users delete:users create:users read:users_app_metadata \
                 update:users_app_metadata delete:users_app_metadata create:users_app_metadata";
    let mut claims = Map::new();
    claims.insert("iss".into(), json!(idp.config.issuer()));
    claims.insert("sub".into(), json!(format!("{client_id}@clients")));
    claims.insert("aud".into(), json!(idp.config.management_audience()));
    claims.insert("iat".into(), json!(iat));
    claims.insert("exp".into(), json!(iat + 86400));
    claims.insert("scope".into(), json!(scope));
    claims.insert("gty".into(), json!("client-credentials"));
    claims.insert("azp".into(), json!(client_id));
    claims
}

fn sign(idp: &AppState, claims: &Map<String, Value>) -> String {
    jwt::sign(&idp.keys.current(), claims).expect("RS256 sign")
}

async fn run() {
    let data = std::env::temp_dir().join(format!("gatehouse-bench-tokens-{}", std::process::id()));
    std::fs::create_dir_all(&data).expect("temp dir");
    let (idp, base, stop) = start_idp(&data).await;
    let kw = Keywords::from_env_file(example_dir().join("dev.env")).expect("dev.env");
    let get = |k: &str| kw.get(k).unwrap_or_else(|| panic!("{k} missing from dev.env"));
    let (mgmt_id, mgmt_secret) = (get("MGMT_CLIENT_ID"), get("MGMT_CLIENT_SECRET"));
    let audience = idp.config.management_audience();
    let client = reqwest::Client::builder().pool_max_idle_per_host(CONCURRENCY).build().expect("HTTP client");

    // Tokens the idp itself issued: one to verify, one for /userinfo.
    let cc_form = [
        ("grant_type", "client_credentials".to_string()),
        ("client_id", mgmt_id.clone()),
        ("client_secret", mgmt_secret.clone()),
        ("audience", audience.clone()),
    ];
    let res: Value = client
        .post(format!("{base}oauth/token"))
        .form(&cc_form)
        .send()
        .await
        .expect("token request")
        .json()
        .await
        .expect("token JSON");
    let issued = res["access_token"].as_str().expect("client_credentials access_token").to_string();
    let res: Value = client
        .post(format!("{base}oauth/token"))
        .form(&[
            ("grant_type", "password".to_string()),
            ("client_id", get("CMS_CLIENT_ID")),
            ("client_secret", get("CMS_CLIENT_SECRET")),
            ("username", get("USER_EMAIL")),
            ("password", get("USER_PASSWORD")),
            ("scope", "openid profile email".to_string()),
        ])
        .send()
        .await
        .expect("password grant")
        .json()
        .await
        .expect("token JSON");
    let user_token = res["access_token"].as_str().expect("password-grant access_token").to_string();

    println!("-- primitives (one thread, the node's current RSA-2048 key) --");
    let claims = client_credentials_claims(&idp, &mgmt_id);
    assert_eq!(jwt::verify(&idp.keys.current(), &sign(&idp, &claims)).expect("valid")["azp"], json!(mgmt_id));
    bench("keys.current() (RwLock read + Arc clone)", || idp.keys.current());
    bench("access token: claims + serialise + RS256 sign", || sign(&idp, &client_credentials_claims(&idp, &mgmt_id)));
    let keys = idp.keys.current();
    let message = [b'x'; 400];
    let mut sig = vec![0u8; keys.signer.pair.public_modulus_len()];
    let rng = SystemRandom::new();
    bench("raw RSA-2048 PKCS#1 v1.5 SHA-256 sign (400 bytes)", || {
        keys.signer.pair.sign(&RSA_PKCS1_SHA256, &rng, &message, &mut sig).expect("RSA sign")
    });
    bench("access token verify, first sight (RS256 + JSON; issued by the idp over HTTP)", || {
        jwt::verify_signature(&keys, &issued).expect("valid")
    });
    bench("access token verify, seen before (SHA-256 + memo lookup)", || jwt::verify(&keys, &issued).expect("valid"));
    bench("JWKS bytes clone (what the endpoint serves)", || keys.jwks.clone());
    let jwks: Value = serde_json::from_slice(&keys.jwks).expect("JWKS JSON");
    bench("JWKS serialise from a serde_json::Value", || serde_json::to_vec(&jwks).expect("serialise"));

    println!("-- endpoints, in-process over 127.0.0.1, {CONCURRENCY} concurrent requests (client shares the cores) --");
    let url = format!("{base}oauth/token");
    load("POST /oauth/token client_credentials", &client, move |c| c.post(&url).form(&cc_form)).await;
    let url = format!("{base}.well-known/jwks.json");
    load("GET /.well-known/jwks.json", &client, move |c| c.get(&url)).await;
    let url = format!("{base}userinfo");
    load("GET /userinfo", &client, move |c| c.get(&url).bearer_auth(&user_token)).await;

    traces_off(&client, &format!("{base}.well-known/jwks.json")).await;

    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(&data);
}

/// What the trace instrumentation costs a request with traces off (crate `telemetry`: no
/// exporter, so no layer enables its TRACE spans): the request span as the router builds it,
/// `adopt` of the incoming headers, the status recorded, and two store-query spans, against
/// one JWKS GET (the cheapest endpoint) timed here too, so the ratio comes from one run.
async fn traces_off(client: &reqwest::Client, jwks_url: &str) {
    use tracing::Instrument;
    let headers = axum::http::HeaderMap::new();
    let per_request = || {
        let span = tracing::trace_span!(target: telemetry::TARGET, "request",
            otel.name = format!("GET {}", "/x"), otel.kind = "server",
            http.request.method = "GET", http.route = "/x",
            http.response.status_code = tracing::field::Empty);
        telemetry::adopt(&span, &headers);
        for what in ["client", "user"] {
            let query = tracing::trace_span!(target: "gatehouse::trace", "store.query", otel.name = format!("store {what}"), db.operation.name = what);
            drop(black_box(std::future::ready(()).instrument(query)));
        }
        span.record("http.response.status_code", 200u16);
        black_box(span)
    };
    let n = (200_000.0 * scale()).max(1000.0) as u32;
    // Under the subscriber a node runs with traces off (the log's `info` filter, no trace
    // layer); with none at all, `tracing` would take its `log` fallback path instead.
    let node = tracing_subscriber::layer::SubscriberExt::with(
        tracing_subscriber::registry(),
        tracing_subscriber::EnvFilter::new("info"),
    );
    let off = tracing::subscriber::with_default(node, || {
        let start = Instant::now();
        for _ in 0..n {
            black_box(per_request());
        }
        start.elapsed().as_nanos() as f64 / f64::from(n)
    });
    let gets = (2_000.0 * scale()).max(20.0) as u32;
    let start = Instant::now();
    for _ in 0..gets {
        let res = client.get(jwks_url).send().await.expect("JWKS");
        assert_eq!(res.status(), 200);
        black_box(res.bytes().await.expect("JWKS body"));
    }
    let jwks = start.elapsed().as_nanos() as f64 / f64::from(gets);
    println!(
        "trace instrumentation, traces off: {off:.1} ns per request = {:.4} % of one sequential JWKS GET ({jwks:.0} ns)",
        off / jwks * 100.0
    );
}

fn main() {
    let smoke = !std::env::args().any(|a| a == "--bench");
    let secs = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).filter(|s: &f64| *s > 0.0);
    let secs = secs.unwrap_or(if smoke { 0.01 } else { 1.0 });
    SCALE.set(secs).expect("set once");
    if smoke {
        println!("(test mode: one quick pass; `cargo bench -p idp --bench tokens` measures)");
    }
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(run());
}
