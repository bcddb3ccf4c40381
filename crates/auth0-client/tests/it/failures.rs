//! Bad input and broken neighbours: unknown client types, missing, replayed and expired states,
//! Redis going away and coming back, the idp stopped, oversized headers and bodies.

use crate::support::*;
use serde_json::json;
use std::sync::Arc;
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinSet;

#[tokio::test(flavor = "multi_thread")]
async fn client_type_and_state_rules() {
    let (idp, svc) = stack(Store::Memory).await;
    let http = browser();
    // Unknown client type: 401 before anything else, in Mia's error shape.
    for path in ["/authorize?state=x", "/oauth/token?code=c&state=s", "/userinfo", "/logout"] {
        let res = http.get(svc.url(path)).header("client-type", "nope").send().await.unwrap();
        let (status, body) = json(res).await;
        assert_eq!(status, 401, "{path}");
        assert_eq!(
            body,
            json!({"statusCode": 401, "error": "Unauthorized", "message": "unknown client type \"nope\""})
        );
    }
    // A client type in raw UTF-8 is a name like any other (unknown here), not a missing header
    // that would fall back to defaultClient.
    let accented = reqwest::header::HeaderValue::from_bytes("cmś".as_bytes()).unwrap();
    let (status, body) =
        json(http.get(svc.url("/authorize?state=x")).header("client-type", accented).send().await.unwrap()).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("unknown client type \"cmś\"")), "{body}");
    // cms requires the caller's state: 400 without it.
    let res = http.get(svc.url("/authorize")).header("client-type", "cms").send().await.unwrap();
    let (status, body) = json(res).await;
    assert_eq!((status, body["message"].as_str()), (400, Some("state is required")));
    // No header: defaultClient (cms) applies, so the same 400.
    assert_eq!(http.get(svc.url("/authorize")).send().await.unwrap().status(), 400);
    // Unknown state, and no state at all, at /oauth/token: 401.
    for path in ["/oauth/token?code=c&state=never-issued", "/oauth/token?code=c"] {
        assert_eq!(http.post(svc.url(path)).send().await.unwrap().status(), 401, "{path}");
    }
    assert_eq!(http.post(svc.url("/oauth/token?grant_type=magic")).send().await.unwrap().status(), 400);
    // No session: 401.
    assert_eq!(get_with_sid(&svc, "/userinfo", "nope").await.status(), 401);

    // An expired state (600 s): 401, even though the code is good.
    let state = unique("st");
    let res = http.get(svc.url(&format!("/authorize?state={state}"))).send().await.unwrap();
    let callback = login_at_idp(&idp, &http, &location(&res), &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
    svc.clock.advance(601_000);
    let code = query_param(&callback, "code").unwrap();
    let res = http.post(svc.url(&format!("/oauth/token?code={code}&state={state}"))).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn expired_state_in_redis() {
    let (idp, svc) = stack(Store::Redis).await;
    let http = browser();
    let state = unique("st");
    let res = http.get(svc.url(&format!("/authorize?state={state}"))).send().await.unwrap();
    assert_eq!(res.status(), 302);
    // The key lives 600 s in Redis, under this test's scope.
    let client = redis::Client::open(format!("redis://{REDIS}/")).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let key = format!("auth0-client:{}:state:{state}", svc.scope);
    let ttl: i64 = redis::cmd("PTTL").arg(&key).query_async(&mut conn).await.unwrap();
    assert!(ttl > 590_000 && ttl <= 600_000, "state TTL {ttl}");
    let callback = login_at_idp(&idp, &http, &location(&res), &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
    let _: () = redis::cmd("PEXPIRE").arg(&key).arg(1).query_async(&mut conn).await.unwrap();
    let code = query_param(&callback, "code").unwrap();
    eventually("Redis expires the state", 50, Duration::from_millis(20), || {
        let mut conn = conn.clone();
        let key = key.clone();
        async move { redis::cmd("EXISTS").arg(&key).query_async::<i64>(&mut conn).await.unwrap() == 0 }
    })
    .await;
    let res = http.post(svc.url(&format!("/oauth/token?code={code}&state={state}"))).send().await.unwrap();
    assert_eq!(res.status(), 401);
}

/// A TCP proxy to the machine's Redis that the test can cut and restore (the machine's Redis
/// itself is never stopped).
struct Proxy {
    addr: String,
    tasks: JoinSet<()>,
}

impl Proxy {
    async fn start(addr: Option<String>) -> Proxy {
        let listener = TcpListener::bind(addr.as_deref().unwrap_or("127.0.0.1:0")).await.unwrap();
        let addr = listener.local_addr().unwrap().to_string();
        let mut tasks = JoinSet::new();
        let conns = Arc::new(tokio::sync::Mutex::new(JoinSet::new()));
        let c = conns.clone();
        tasks.spawn(async move {
            let _keep = c.clone();
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { return };
                c.lock().await.spawn(async move {
                    if let Ok(mut outbound) = TcpStream::connect(REDIS).await {
                        let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
                    }
                });
            }
        });
        Proxy { addr, tasks }
    }

    /// Closes the listener and every proxied connection.
    async fn stop(mut self) -> String {
        self.tasks.abort_all();
        while self.tasks.join_next().await.is_some() {}
        self.addr
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_down_then_back() {
    let proxy = Proxy::start(None).await;
    let (idp, svc) = {
        let idp = tokio::task::spawn_blocking(Idp::start).await.unwrap();
        let id = idp.connection_id("dev-users").await;
        let svc = start_service(Store::RedisAt(proxy.addr.clone()), config_json(&idp, &id), &[]).await;
        (idp, svc)
    };
    let sid = website_login(&idp, &svc, &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
    assert_eq!(reqwest::get(svc.url("/-/ready")).await.unwrap().status(), 200);

    let addr = proxy.stop().await;
    // Everything needing the store answers 503 with a clear body; nothing hangs or crashes.
    let (status, body) = json(get_with_sid(&svc, "/userinfo", &sid).await).await;
    assert_eq!(status, 503, "{body}");
    assert!(body["message"].as_str().unwrap().contains("session store"), "{body}");
    let res = browser().get(svc.url("/authorize?state=s")).send().await.unwrap();
    assert_eq!(res.status(), 503);
    assert_eq!(reqwest::get(svc.url("/-/ready")).await.unwrap().status(), 503);
    assert_eq!(reqwest::get(svc.url("/-/check-up")).await.unwrap().status(), 503);
    assert_eq!(reqwest::get(svc.url("/-/healthz")).await.unwrap().status(), 200, "alive all the same");
    // Logging out never fails for the user (spec 2.4): the cookie is expired and the browser
    // goes on to the idp's /v2/logout even with the store down.
    let res = browser()
        .get(svc.url("/logout?redirect=/web-login"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert!(location(&res).starts_with(&idp.url("v2/logout")), "{}", location(&res));
    let expired = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(expired.starts_with("sid=;") && expired.contains("Expires=Thu, 01 Jan 1970"), "{expired}");

    // Redis is back (same address): service resumes by itself, and the session survived.
    let _proxy = Proxy::start(Some(addr)).await;
    eventually("ready again", 100, Duration::from_millis(50), || async {
        reqwest::get(svc.url("/-/ready")).await.unwrap().status() == 200
    })
    .await;
    assert_eq!(get_with_sid(&svc, "/userinfo", &sid).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn redis_never_there() {
    // A port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let config = json!({
        "clients": {"cms": {"auth0Url": "http://127.0.0.1:9", "clientId": "a", "clientSecret": "b",
            "redirectUrl": "/web-login/callback", "scopes": ["website"]}},
        "defaultClient": "cms",
        "managementClient": {"auth0Url": "http://127.0.0.1:9", "clientId": "m", "clientSecret": "s"}
    });
    let svc = start_service(Store::RedisAt(format!("127.0.0.1:{port}")), config, &[]).await;
    assert_eq!(reqwest::get(svc.url("/-/ready")).await.unwrap().status(), 503);
    let (status, body) = json(get_with_sid(&svc, "/userinfo", "x").await).await;
    assert_eq!(status, 503, "{body}");
    let (status, _) = json(reqwest::get(svc.url("/users/active")).await.unwrap()).await;
    assert_eq!(status, 503);
}

#[tokio::test(flavor = "multi_thread")]
async fn idp_stopped_gives_502() {
    let (mut idp, svc) = stack(Store::Memory).await;
    let sid = website_login(&idp, &svc, &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
    idp.kill();
    let res = reqwest::Client::new()
        .post(svc.url("/oauth/token"))
        .header("client-type", "api")
        .form(&[("grant_type", "password"), ("username", "a@b.c"), ("password", "x")])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 502, "{body}");
    assert!(body["message"].as_str().unwrap().contains("unreachable"), "{body}");
    let (status, body) = json(reqwest::get(svc.url("/users")).await.unwrap()).await;
    assert_eq!(status, 502, "{body}");
    // A session's profile is still served (it needs no idp while its token is valid)…
    assert_eq!(get_with_sid(&svc, "/userinfo", &sid).await.status(), 200);
    // …but an expired one cannot be refreshed: 502, and the session is kept for later.
    let key = auth0_client::session::SessionKey::of(&sid);
    let mut session = svc.app.sessions.get(&key).await.unwrap().unwrap();
    session.expire_at = 0;
    svc.app.sessions.update(&key, &session).await.unwrap();
    assert_eq!(get_with_sid(&svc, "/userinfo", &sid).await.status(), 502);
    assert!(svc.app.sessions.get(&key).await.unwrap().is_some());
}

#[tokio::test(flavor = "multi_thread")]
async fn oversized_headers_and_bodies() {
    let config = json!({
        "clients": {"cms": {"auth0Url": "http://127.0.0.1:9", "clientId": "a", "clientSecret": "b",
            "redirectUrl": "/web-login/callback", "scopes": ["website"]}},
        "defaultClient": "cms",
        "managementClient": {"auth0Url": "http://127.0.0.1:9", "clientId": "m", "clientSecret": "s"}
    });
    let svc = start_service(Store::Memory, config, &[]).await;
    let http = reqwest::Client::new();
    let res = http.get(svc.url("/userinfo")).header("cookie", format!("sid={}", "a".repeat(40 * 1024))).send().await;
    match res {
        Ok(r) => assert_eq!(r.status(), 431),
        Err(e) => panic!("expected a 431 answer, got {e}"),
    }
    let res = http
        .post(svc.url("/oauth/token"))
        .header("content-type", "application/x-www-form-urlencoded")
        .body(vec![b'a'; 100 * 1024])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["statusCode"], 413);
    // A parameter too long for any real code or state.
    let res = http.post(svc.url(&format!("/oauth/token?code=c&state={}", "s".repeat(9000)))).send().await.unwrap();
    assert_eq!(res.status(), 400);
    // Unknown routes and methods in Mia's shape.
    let (status, _) = json(http.get(svc.url("/nope")).send().await.unwrap()).await;
    assert_eq!(status, 404);
    let (status, _) = json(http.delete(svc.url("/userinfo")).send().await.unwrap()).await;
    assert_eq!(status, 405);
}

#[tokio::test(flavor = "multi_thread")]
async fn service_prefix_and_documentation() {
    let config = json!({
        "clients": {"cms": {"auth0Url": "http://127.0.0.1:9", "clientId": "a", "clientSecret": "b",
            "redirectUrl": "/web-login/callback", "scopes": ["website"]}},
        "managementClient": {"auth0Url": "http://127.0.0.1:9", "clientId": "m", "clientSecret": "s"}
    });
    let svc = start_service(Store::Memory, config, &[("SERVICE_PREFIX", "/auth/"), ("SERVICE_VERSION", "9.9.9")]).await;
    let (status, health) = json(reqwest::get(svc.url("/auth/-/healthz")).await.unwrap()).await;
    assert_eq!((status, health), (200, json!({"status": "OK", "name": "auth0-client", "version": "9.9.9"})));
    assert_eq!(reqwest::get(svc.url("/-/healthz")).await.unwrap().status(), 404);
    // No defaultClient and no header: 401.
    assert_eq!(reqwest::get(svc.url("/auth/userinfo")).await.unwrap().status(), 401);
    let (status, doc) = json(reqwest::get(svc.url("/auth/documentation/json")).await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with('3'));
    assert_eq!(doc["info"]["version"], "9.9.9");
    for path in [
        "/auth/authorize",
        "/auth/oauth/token",
        "/auth/refreshtoken",
        "/auth/logout",
        "/auth/userinfo",
        "/auth/users/me",
        "/auth/users",
        "/auth/users/active",
        "/auth/users/{userID}",
        "/auth/users/import",
        "/auth/users/import/status/{jobID}",
        "/auth/users/import/status/{jobID}/errors",
        "/auth/change-password",
        "/auth/-/ready",
    ] {
        assert!(doc["paths"].get(path).is_some(), "{path} missing from the OpenAPI document");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_redirect_off_this_site_never_becomes_the_location() {
    let (idp, svc) = stack(Store::Memory).await;
    let login = |redirect_at_authorize: &'static str, redirect_at_token: Option<&'static str>| {
        let (idp, svc) = (&idp, &svc);
        async move {
            // A fresh browser each time, so the idp shows its login form (no SSO yet).
            let b = browser();
            let state = unique("st");
            let enc = |s: &str| url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>();
            let res = b
                .get(svc.url(&format!("/authorize?redirect={}&state={state}", enc(redirect_at_authorize))))
                .header("client-type", "cms")
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 302);
            let callback =
                login_at_idp(idp, &b, &location(&res), &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
            let code = query_param(&callback, "code").unwrap();
            let mut path = format!("/oauth/token?code={code}&state={state}");
            if let Some(r) = redirect_at_token {
                path.push_str(&format!("&redirect={}", enc(r)));
            }
            let res = reqwest::Client::new().post(svc.url(&path)).header("client-type", "cms").send().await.unwrap();
            // The login itself succeeded: the session is there, only the target is withheld.
            assert_eq!(res.status(), 200, "{redirect_at_authorize:?} {redirect_at_token:?}");
            assert!(sid_cookie(&res).is_some());
            res.headers().get("location").map(|v| v.to_str().unwrap().to_string())
        }
    };
    for evil in [
        "https://evil.example/",
        "//evil.example/x",
        "/\\evil.example",
        "/\t/evil.example",
        "javascript:alert(1)",
        "backoffice",
    ] {
        assert_eq!(login(evil, None).await, None, "stored redirect {evil:?}");
    }
    // The override the token request may carry obeys the same rule.
    assert_eq!(login("/backoffice", Some("https://evil.example/")).await, None);
    // A path on this site still comes back as it was given.
    assert_eq!(
        login("/", Some("/web-login?redirect=/backoffice")).await.as_deref(),
        Some("/web-login?redirect=/backoffice")
    );
}

/// Reads until the server closes the connection (end of stream or reset); what it sent.
/// Panics when it is still open after ten seconds, far above the bounds under test.
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    use tokio::io::AsyncReadExt;
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(Duration::from_secs(10), read).await.expect("the server should have closed the connection");
    got
}

/// One `GET /-/healthz` on a kept-alive connection; its status line.
async fn healthz(stream: &mut TcpStream) -> String {
    use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt};
    stream.write_all(b"GET /-/healthz HTTP/1.1\r\nHost: svc\r\n\r\n").await.unwrap();
    let answer = async {
        let mut reader = tokio::io::BufReader::new(&mut *stream);
        let mut status = String::new();
        reader.read_line(&mut status).await.unwrap();
        let mut length = 0;
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).await.unwrap();
            if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = v.trim().parse().unwrap();
            }
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        reader.read_exact(&mut vec![0; length]).await.unwrap();
        status.trim_end().to_string()
    };
    tokio::time::timeout(Duration::from_secs(10), answer).await.expect("an answer to /-/healthz")
}

async fn connect_from(local: &str, to: &str) -> TcpStream {
    let socket = tokio::net::TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(to.parse().unwrap()).await.unwrap()
}

/// Slowloris: clients that never finish a request head are closed within
/// `HEADER_TIMEOUT_SECONDS`, and one address holds at most `MAX_CONNECTIONS_PER_IP`
/// connections while others are still served.
#[tokio::test(flavor = "multi_thread")]
async fn slow_clients_are_closed_and_one_address_gets_its_share() {
    use tokio::io::AsyncWriteExt;
    let config = json!({
        "clients": {"cms": {"auth0Url": "http://127.0.0.1:9", "clientId": "a", "clientSecret": "b",
            "redirectUrl": "/web-login/callback", "scopes": ["website"]}},
        "defaultClient": "cms",
        "managementClient": {"auth0Url": "http://127.0.0.1:9", "clientId": "m", "clientSecret": "s"}
    });
    let slow_svc = start_service(Store::Memory, config.clone(), &[("HEADER_TIMEOUT_SECONDS", "1")]).await;
    // Its own service, so that the short header timeout never closes its kept-alive connections.
    let svc = start_service(Store::Memory, config, &[("MAX_CONNECTIONS_PER_IP", "2")]).await;
    let addr = svc.base.trim_start_matches("http://").to_string();
    let cases: [(&str, &[u8]); 3] = [
        ("half a request head", b"GET /-/healthz HTTP/1.1\r\nHost: svc\r\n"),
        ("nothing at all", b""),
        // Still deciding between HTTP/1.1 and HTTP/2: no timer of hyper's runs yet.
        ("the start of HTTP/2's preface", b"PRI * HTTP/2.0\r\n"),
    ];
    let mut slow = JoinSet::new();
    for (what, sent) in cases {
        let addr = slow_svc.base.trim_start_matches("http://").to_string();
        slow.spawn(async move {
            let mut stream = connect_from("127.0.0.1", &addr).await;
            let started = std::time::Instant::now();
            stream.write_all(sent).await.unwrap();
            let got = read_until_closed(&mut stream).await;
            assert!(started.elapsed() >= Duration::from_millis(950), "{what}: closed before the timeout");
            assert!(got.is_empty(), "{what}: nothing answered, got {:?}", String::from_utf8_lossy(&got));
        });
    }
    // Two connections from 127.0.0.1, each answered once, so the server has counted both…
    let mut first = connect_from("127.0.0.1", &addr).await;
    let mut second = connect_from("127.0.0.1", &addr).await;
    assert_eq!(healthz(&mut first).await, "HTTP/1.1 200 OK");
    assert_eq!(healthz(&mut second).await, "HTTP/1.1 200 OK");
    // …so a third from there is closed without an answer…
    let mut third = connect_from("127.0.0.1", &addr).await;
    let _ = third.write_all(b"GET /-/healthz HTTP/1.1\r\nHost: svc\r\n\r\n").await;
    assert!(read_until_closed(&mut third).await.is_empty(), "the third connection is refused");
    // …while another address is served, and so are the two already open.
    let mut other = connect_from("127.0.0.2", &addr).await;
    assert_eq!(healthz(&mut other).await, "HTTP/1.1 200 OK");
    assert_eq!(healthz(&mut first).await, "HTTP/1.1 200 OK");
    while let Some(done) = slow.join_next().await {
        done.unwrap();
    }
}
