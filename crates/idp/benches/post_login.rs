//! `cargo bench -p idp --bench post_login`: password-grant logins per second over HTTP with the
//! guide's `inject-id-token` action bound to the Login flow, and with the flow emptied — at
//! bcrypt cost 4 (so the rest of the login path, the action included, shows) and at cost 10
//! (Auth0's, what a real login costs). The idp runs in-process on an ephemeral port with the
//! example tenant on a SQLite file; a reqwest loop of bounded concurrency drives it (client and
//! server share the cores: compare the figures with each other, not with `bench/load.sh`).
//! `BENCH_SECS` sets each timed run (default 4 s).

use idp::{Config, Idp, Listener};
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use store::SqlStore;
use tenant::Keywords;

const CONCURRENCY: usize = 8;
const SEQUENTIAL: usize = 200;

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cms-tenant")
}

fn main() {
    let secs = std::env::var("BENCH_SECS").ok().and_then(|s| s.parse().ok()).filter(|s: &f64| *s > 0.0).unwrap_or(4.0);
    let rt = tokio::runtime::Builder::new_multi_thread().enable_all().build().expect("tokio runtime");
    rt.block_on(async {
        for cost in [4, 10] {
            // Alternate the two configurations so drifting background load hits both alike.
            let (mut with, mut without) = (Vec::new(), Vec::new());
            for _ in 0..3 {
                with.push(run(cost, true, secs).await);
                without.push(run(cost, false, secs).await);
            }
            let med = |runs: &mut Vec<Run>| {
                runs.sort_by(|a, b| a.rate.total_cmp(&b.rate));
                let rate = runs[1].rate;
                runs.sort_by_key(|r| r.median);
                (rate, runs[1].median.as_secs_f64() * 1000.0)
            };
            let ((w_rate, w_ms), (o_rate, o_ms)) = (med(&mut with), med(&mut without));
            println!(
                "bcrypt cost {cost:>2}: with inject-id-token {w_rate:>6.1} logins/s, median {w_ms:.2} ms alone; \
                 without {o_rate:>6.1} logins/s, median {o_ms:.2} ms alone ({:+.1}% throughput, {:+.2} ms latency)",
                (w_rate / o_rate - 1.0) * 100.0,
                w_ms - o_ms
            );
        }
    });
}

/// Password grants against a fresh idp: sequential median latency, then logins per second.
async fn run(cost: u32, with_action: bool, secs: f64) -> Run {
    let data =
        std::env::temp_dir().join(format!("gatehouse-bench-post-login-{}-{cost}-{with_action}", std::process::id()));
    let _ = std::fs::remove_dir_all(&data);
    std::fs::create_dir_all(&data).expect("data dir");
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind 127.0.0.1");
    let base = format!("http://127.0.0.1:{}/", listener.local_addr().expect("local addr").port());
    let mut config = Config::new(url::Url::parse(&base).expect("base URL"), data.clone());
    config.bcrypt_cost = cost;
    let db = format!("sqlite://{}", data.join("gatehouse.db").display());
    let store = Arc::new(SqlStore::connect(&db).await.expect("SQLite"));
    let idp = Idp::new(config, store, Arc::new(idp::mail::Outbox::new(data.join("outbox")))).await.expect("idp");
    let mut kw = Keywords::from_env_file(example_dir().join("dev.env")).expect("dev.env");
    kw.insert("AUTH0_DOMAIN", idp.config.domain());
    let file = tenant::load_tenant(example_dir().join("tenant.yaml"), &kw).expect("tenant.yaml");
    idp::provision::apply_tenant(&idp, &file).await.expect("apply tenant");
    let users = tenant::load_users(example_dir().join("users.json"), &kw).expect("users.json");
    idp::provision::import_users(&idp, "dev-users", &users).await.expect("import users");
    if !with_action {
        idp.store.put_trigger_bindings("post-login", &[]).await.expect("unbind");
    }
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(idp::serve(idp.router(), listener, Listener::Plain, idp::Limits::default(), async move {
        let _ = stopped.await;
        idp::GRACE
    }));

    let client = reqwest::Client::new();
    let form = Arc::new(vec![
        ("grant_type", "password".to_string()),
        ("client_id", kw.get("CMS_CLIENT_ID").expect("CMS_CLIENT_ID")),
        ("client_secret", kw.get("CMS_CLIENT_SECRET").expect("CMS_CLIENT_SECRET")),
        ("username", kw.get("ADMIN_EMAIL").expect("ADMIN_EMAIL")),
        ("password", kw.get("ADMIN_PASSWORD").expect("ADMIN_PASSWORD")),
        ("scope", "openid profile email".to_string()),
    ]);
    let login = {
        let (client, form, url) = (client.clone(), form.clone(), format!("{base}oauth/token"));
        move || {
            let (client, form, url) = (client.clone(), form.clone(), url.clone());
            async move {
                let res = client.post(&url).form(form.as_slice()).send().await.expect("token request");
                assert_eq!(res.status(), 200, "{}", res.text().await.unwrap_or_default());
                let body: serde_json::Value = res.json().await.expect("JSON");
                let claims = body["id_token"].as_str().and_then(|t| t.split('.').nth(1)).map(str::to_owned);
                claims.is_some_and(|c| {
                    idp::util::b64url_decode(&c)
                        .is_some_and(|b| String::from_utf8_lossy(&b).contains("https://cms.example.test/app_metadata"))
                })
            }
        }
    };
    // Warm-up (and the check that the action runs exactly when it should), then one login at
    // a time: the median latency shows the per-login cost without contention.
    for _ in 0..20 {
        assert_eq!(login().await, with_action);
    }
    let mut latencies = Vec::with_capacity(SEQUENTIAL);
    for _ in 0..SEQUENTIAL {
        let t = Instant::now();
        login().await;
        latencies.push(t.elapsed());
    }
    latencies.sort();
    let median = latencies[SEQUENTIAL / 2];
    let done = Arc::new(AtomicU64::new(0));
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let started = Instant::now();
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (login, done) = (login.clone(), done.clone());
        tasks.push(tokio::spawn(async move {
            while Instant::now() < deadline {
                login().await;
                done.fetch_add(1, Ordering::Relaxed);
            }
        }));
    }
    for t in tasks {
        t.await.expect("login task");
    }
    let rate = done.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    let _ = stop.send(());
    let _ = std::fs::remove_dir_all(&data);
    Run { rate, median }
}

struct Run {
    rate: f64,
    median: Duration,
}
