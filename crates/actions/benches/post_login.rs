//! Overhead of the guide's `inject-id-token` action per login, warm: median and tail over
//! 10,000 executions on one thread (`cargo bench -p actions`). Dependency-free on purpose.

use actions::{Engine, Limits, Loaded};
use serde_json::json;
use std::sync::Arc;
use std::time::{Duration, Instant};

const GUIDE_ACTION: &str = include_str!("../../../examples/cms-tenant/actions/inject-id-token/code.js");
const RUNS: usize = 10_000;

fn main() {
    let engine = Engine::new(Limits::default());
    let action = Loaded {
        name: "inject-id-token".into(),
        code: GUIDE_ACTION.into(),
        secrets: Arc::new(json!({"MIA_NAMESPACE": "https://cms.example.test/"}).as_object().unwrap().clone()),
    };
    // An event the size of a real one: user, client, connection, request, transaction.
    let event = json!({
        "user": {
            "user_id": "auth0|5f7c8ec7c33c6c004bbafe82", "email": "admin@cms.example.test", "email_verified": true,
            "name": "CMS Administrator", "nickname": "admin", "given_name": "CMS", "family_name": "Administrator",
            "picture": "https://s.gravatar.com/avatar/0?s=480&r=pg&d=mp", "created_at": "2024-01-01T00:00:00.000Z",
            "updated_at": "2024-01-01T00:00:00.000Z", "app_metadata": {"groups": ["admin"]}, "user_metadata": {},
            "identities": [{"connection": "dev-users", "provider": "auth0", "user_id": "5f7c8ec7c33c6c004bbafe82", "isSocial": false}],
            "multifactor": [], "enrolledFactors": []
        },
        "client": {"client_id": "S0XG6qYVrYehZCVRriixayu4xd0cT2T0", "name": "CMS", "metadata": {}},
        "connection": {"id": "con_0123456789abcdef", "name": "dev-users", "strategy": "auth0", "metadata": {}},
        "request": {"ip": "127.0.0.1", "hostname": "localhost:3000", "method": "POST", "user_agent": "bench", "query": {}, "body": {}, "geoip": {}},
        "transaction": {"id": "tx", "protocol": "oauth2-password", "requested_scopes": ["openid", "profile", "email"]},
        "tenant": {"id": "gatehouse"}, "stats": {"logins_count": 42}, "authorization": {"roles": []}
    });
    let actions = [action];
    for _ in 0..200 {
        assert!(engine.run_post_login(&actions, &event).result.is_ok());
    }
    let mut samples = Vec::with_capacity(RUNS);
    let started = Instant::now();
    for _ in 0..RUNS {
        let t = Instant::now();
        let run = engine.run_post_login(&actions, &event);
        samples.push(t.elapsed());
        assert!(run.result.is_ok());
    }
    let total = started.elapsed();
    samples.sort();
    let pct = |p: f64| samples[((RUNS as f64 * p) as usize).min(RUNS - 1)];
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "inject-id-token, warm, {RUNS} runs: median {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs; {:.0} executions/s on one thread",
        us(pct(0.5)),
        us(pct(0.9)),
        us(pct(0.99)),
        us(samples[RUNS - 1]),
        RUNS as f64 / total.as_secs_f64()
    );
    assert!(pct(0.5) < Duration::from_millis(1), "target: median under 1 ms");
}
