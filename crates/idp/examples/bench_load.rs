//! Helpers of `bench/load.sh` that need the idp's own code.
//!
//! ```sh
//! cargo run --release -p idp --example bench_load -- mint DATA DATABASE_URL TOKEN COUNT
//! cargo run --release -p idp --example bench_load -- bcrypt SECONDS
//! ```
//!
//! `mint`: COUNT variants of TOKEN (an access token the idp issued), one per line, each with an
//! earlier `iat` and `exp` and signed with the current signing key of the idp whose data dir
//! and database are given. The keys are sealed at rest with `<DATA>/secrets.key`, so a script
//! cannot read them with `sqlite3`: this opens them as a node does (`Idp::new`, then
//! `idp.keys.current()`) and signs with the idp's own `jwt::sign`. The "every token new"
//! /userinfo row needs thousands of distinct tokens, which the idp cannot issue quickly (one
//! user's tokens differ only by the second of issue). Point it only at a scratch data dir: a
//! node started on it seals any clear key it finds.
//!
//! `bcrypt`: bcrypt verifications per second at the idp's default cost (one login's password
//! check), on the calling thread, over SECONDS after a short warm-up; `bench/load.sh` runs it
//! pinned to the server's core, as the ceiling of its login rows.

use idp::util::b64url_decode;
use idp::{Config, Idp, jwt};
use serde_json::{Map, Value};
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::SqlStore;

fn usage() -> ! {
    eprintln!("usage: bench_load mint DATA DATABASE_URL TOKEN COUNT | bench_load bcrypt SECONDS");
    std::process::exit(2);
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.iter().map(String::as_str).collect::<Vec<_>>().as_slice() {
        ["mint", data, database, token, count] => {
            let count = count.parse().unwrap_or_else(|_| usage());
            mint(PathBuf::from(data), database, token, count).await;
        }
        ["bcrypt", secs] => bcrypt_rate(Duration::from_secs_f64(secs.parse().unwrap_or_else(|_| usage()))),
        _ => usage(),
    }
}

async fn mint(data: PathBuf, database: &str, token: &str, count: i64) {
    let claims: Map<String, Value> = token
        .split('.')
        .nth(1)
        .and_then(b64url_decode)
        .and_then(|bytes| serde_json::from_slice(&bytes).ok())
        .unwrap_or_else(|| fail("TOKEN is not a JWT"));
    let (Some(iat), Some(exp)) = (claims["iat"].as_i64(), claims["exp"].as_i64()) else {
        fail("TOKEN has no numeric iat and exp");
    };
    let store = Arc::new(SqlStore::connect(database).await.unwrap_or_else(|e| fail(&e.to_string())));
    // The public URL only shapes issued tokens; these copy the claims of one the idp issued.
    let config = Config::new(url::Url::parse("http://127.0.0.1/").expect("URL"), data.clone());
    let idp = Idp::new(config, store, Arc::new(idp::mail::Outbox::new(data.join("outbox"))))
        .await
        .unwrap_or_else(|e| fail(&e.to_string()));
    let keys = idp.keys.current();
    let mut out = std::io::BufWriter::new(std::io::stdout().lock());
    for i in 1..=count {
        let mut c = claims.clone();
        c.insert("iat".into(), (iat - i).into());
        c.insert("exp".into(), (exp - i).into());
        let signed = jwt::sign(&keys, &c).unwrap_or_else(|e| fail(&e.to_string()));
        writeln!(out, "{signed}").unwrap_or_else(|e| fail(&e.to_string()));
    }
    out.flush().unwrap_or_else(|e| fail(&e.to_string()));
}

fn bcrypt_rate(budget: Duration) {
    let cost = Config::new(url::Url::parse("http://127.0.0.1/").expect("URL"), PathBuf::new()).bcrypt_cost;
    let hash = bcrypt::hash("User-Passw0rd!", cost).unwrap_or_else(|e| fail(&e.to_string()));
    let warm = Instant::now();
    while warm.elapsed() < budget / 5 {
        assert!(bcrypt::verify("User-Passw0rd!", &hash).unwrap_or(false));
    }
    let start = Instant::now();
    let mut n = 0u32;
    while start.elapsed() < budget {
        assert!(bcrypt::verify("User-Passw0rd!", &hash).unwrap_or(false));
        n += 1;
    }
    println!("{:.1}", f64::from(n) / start.elapsed().as_secs_f64());
}

fn fail(message: &str) -> ! {
    eprintln!("bench_load: {message}");
    std::process::exit(1);
}
