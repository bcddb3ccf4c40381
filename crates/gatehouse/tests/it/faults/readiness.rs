//! Readiness tells the truth: the idp's `/readyz` fails while its PostgreSQL is stopped or
//! frozen and comes back by itself when the database does, with no restart; auth0-client's
//! `/-/ready` does the same with its Redis. Each test runs its own database or Redis.

use super::parts::{Postgres, Process, Redis, client_config, client_node, idp_node, status_of, within};
use crate::support::TempDir;
use std::time::Duration;

/// A probe's verdict must follow the part within this.
const FOLLOWS: Duration = Duration::from_secs(5);

/// Ready, then not ready within the bound, and ready again within the bound once the part is
/// back; a probe that hangs counts as not ready (`status_of` gives up after 3 s).
async fn goes_down(url: &str, what: &str) -> Duration {
    let url = url.to_owned();
    within(&format!("{what}: not ready"), FOLLOWS, || {
        let url = url.clone();
        async move { status_of(&url).await == 503 }
    })
    .await
}

async fn comes_back(url: &str, what: &str) -> Duration {
    let url = url.to_owned();
    within(&format!("{what}: ready again"), FOLLOWS, || {
        let url = url.clone();
        async move { status_of(&url).await == 200 }
    })
    .await
}

#[tokio::test(flavor = "multi_thread")]
async fn idp_readiness_follows_its_postgres() {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let dir = TempDir::new("ready-idp");
    let node = idp_node("idp", dir.path(), &pg.url(), "http://127.0.0.1:9/").await;
    let ready = format!("{}/readyz", node.base());
    assert_eq!(status_of(&ready).await, 200);

    // Stopped: connections refused.
    pg.stop();
    goes_down(&ready, "postgres stopped").await;
    assert_eq!(status_of(&format!("{}/healthz", node.base())).await, 200, "liveness does not follow the database");
    pg.start_again();
    comes_back(&ready, "postgres started again").await;
    // Pooled connections the restart broke were replaced: real requests work too.
    let res = reqwest::get(format!("{}/.well-known/jwks.json", node.base())).await.unwrap();
    assert_eq!(res.status(), 200);

    // Frozen: connections open but nothing answers. The probe still answers, in time.
    pg.freeze();
    let started = std::time::Instant::now();
    let status = status_of(&ready).await;
    assert_eq!(status, 503, "a frozen database is not ready");
    assert!(started.elapsed() < Duration::from_secs(2), "the probe waited {:?}", started.elapsed());
    pg.thaw();
    comes_back(&ready, "postgres thawed").await;
    drop(node);
}

#[tokio::test(flavor = "multi_thread")]
async fn auth0_client_readiness_follows_its_redis() {
    let mut redis = Redis::start("", false).await;
    let dir = TempDir::new("ready-client");
    // The idp is not needed for readiness: auth0-client starts without reaching it.
    let config = client_config("http://127.0.0.1:9", "con_unused");
    let node: Process = client_node("auth0-client", dir.path(), &config, &[("REDIS_HOSTS", redis.addr())]).await;
    let ready = format!("{}/-/ready", node.base());
    comes_back(&ready, "redis up").await;

    redis.kill();
    goes_down(&ready, "redis killed").await;
    redis.start_again().await;
    comes_back(&ready, "redis started again").await;
}
