//! `gatehouse up` walked over plain HTTP, as a browser without JavaScript would: the gateway's
//! redirect to the login site, the whole code flow through auth0-client and the idp, the CMS's
//! pages for an admin and for a plain user, group editing through the CMS, logout, bad input at
//! the callback, a restart on another port that keeps the data, a taken port, and the
//! PostgreSQL and Redis flags, and `--tls`.

use crate::support::{TempDir, dev_env, free_port, query_param};
use crate::up_support::{Form, STOP_TIMEOUT, UpProcess, browser_client, open, sign_in, submit_login, unescape};
use serde_json::{Value, json};
use std::io::{Read, Write};
use std::time::{Duration, Instant};

#[tokio::test]
async fn up_serves_the_newcomer_path() {
    let data = TempDir::new("up-flow");
    let up = UpProcess::start(data.path(), free_port());
    let admin = browser_client();

    // No session: the gateway's 401 becomes the login redirect, with where to come back to.
    let res = admin.get(up.cms("/admin/users?x=1")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let location = res.headers()["location"].to_str().unwrap();
    assert_eq!(location, "/web-login?redirect=%2Fadmin%2Fusers%3Fx%3D1");
    // API clients get the 401 itself, and the users API is closed without a session.
    let api = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    assert_eq!(api.get(up.cms("/")).send().await.unwrap().status(), 401);
    let res = api.get(up.cms("/users")).send().await.unwrap();
    assert_eq!(res.status(), 401, "auth0-client's /users must not be open through the gateway");

    // The login site: /web-login → auth0-client /authorize → the idp's login page.
    let login = open(&admin, &up.cms("/")).await;
    assert_eq!(login.status, 200, "{}", login.body);
    assert!(login.passed_through(&up.cms("/web-login?redirect=%2F")), "{:#?}", login.hops);
    assert!(login.passed_through(&up.cms("/authorize?state=")), "{:#?}", login.hops);
    assert!(login.passed_through(&up.idp("/authorize?")), "{:#?}", login.hops);
    let idp_authorize = login.hops.iter().find(|h| h.starts_with(&up.idp("/authorize?"))).unwrap();
    assert_eq!(
        query_param(idp_authorize, "redirect_uri").as_deref(),
        Some(up.cms("/web-login/callback").as_str()),
        "the callback follows --port"
    );
    assert!(login.url.starts_with(&up.idp("/u/login")), "{}", login.url);

    // Signing in comes back through /web-login/callback with the sid cookie, to the CMS home.
    let home = submit_login(&admin, &login, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    assert!(home.passed_through(&up.cms("/web-login/callback?")), "{:#?}", home.hops);
    // auth0-client's website-mode cookie, passed on by the callback; the login state is spent.
    let from_callback: Vec<&str> = home
        .cookies
        .iter()
        .filter(|(url, _)| url.starts_with(&up.cms("/web-login/callback?")))
        .map(|(_, c)| c.as_str())
        .collect();
    let sid = from_callback.iter().find(|c| c.starts_with("sid=")).expect("the sid cookie");
    for attribute in ["Path=/", "HttpOnly", "Secure", "SameSite=Lax"] {
        assert!(sid.contains(attribute), "{attribute} missing: {sid}");
    }
    assert!(
        from_callback.iter().any(|c| c.starts_with("web_login_state_") && c.contains("Max-Age=0")),
        "{from_callback:?}"
    );
    assert_eq!(home.url, up.cms("/"));
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(home.body.contains(&format!("<strong id=\"email\">{}</strong>", dev_env("ADMIN_EMAIL"))), "{}", home.body);
    assert!(home.body.contains("<li>admin</li>"), "the groups from app_metadata: {}", home.body);

    // The users page lists both example users, through auth0-client and the Management API.
    let users = open(&admin, &up.cms("/admin/users")).await;
    assert_eq!(users.status, 200, "{}", users.body);
    for email in [dev_env("ADMIN_EMAIL"), dev_env("USER_EMAIL")] {
        assert!(users.body.contains(&format!("<tr data-email=\"{email}\">")), "{email} missing: {}", users.body);
    }
    // A form from another session (or none) is refused.
    let row = Form::after(&users.body, &format!("<tr data-email=\"{}\">", dev_env("USER_EMAIL")));
    let forged = [("csrf", "0".repeat(64)), ("user_id", row.field("user_id")), ("groups", "admin".into())];
    let res = admin.post(up.cms("/admin/users/groups")).form(&forged).send().await.unwrap();
    assert_eq!(res.status(), 403);

    // A plain user: signed in, but "no access", and the users API refuses them too.
    let plain = browser_client();
    let page = sign_in(&plain, &up, &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
    assert_eq!(page.url, up.cms("/"));
    assert_eq!(page.status, 403, "{}", page.body);
    assert!(page.body.contains("id=\"no-access\""), "{}", page.body);
    assert!(page.body.contains(&dev_env("USER_EMAIL")), "{}", page.body);
    assert_eq!(plain.get(up.cms("/users")).send().await.unwrap().status(), 403);
    assert_eq!(plain.get(up.cms("/admin/users")).send().await.unwrap().status(), 403);
    // auth0-client's own /userinfo answers through the gateway with the sid cookie.
    let me: serde_json::Value = plain.get(up.cms("/userinfo")).send().await.unwrap().json().await.unwrap();
    assert_eq!(me["email"], dev_env("USER_EMAIL").as_str(), "{me}");
    assert_eq!(me["groups"], serde_json::json!([]), "{me}");

    // Logout: auth0-client, the idp's /v2/logout, back to the CMS and on to the login page.
    let out = open(&admin, &up.cms("/logout?redirect=%2F")).await;
    assert!(out.passed_through(&up.idp("/v2/logout?")), "{:#?}", out.hops);
    assert!(out.passed_through(&up.cms("/web-login?")), "{:#?}", out.hops);
    assert!(out.url.starts_with(&up.idp("/u/login")), "a fresh login page after logout: {}", out.url);
    let res = admin.get(up.cms("/")).send().await.unwrap();
    assert_eq!(res.status(), 302, "the session is gone");
}

#[tokio::test]
async fn up_login_site_refuses_bad_input_with_a_page() {
    let data = TempDir::new("up-bad");
    let up = UpProcess::start(data.path(), free_port());
    let http = browser_client();

    // A state this browser never started (a forged or replayed callback).
    let res = http.get(up.cms("/web-login/callback?code=abc&state=made-up")).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let body = res.text().await.unwrap();
    assert!(body.contains("was not started in this browser"), "{body}");
    assert!(body.contains("href=\"/web-login\""), "offers a fresh sign-in: {body}");
    for bad in ["/web-login/callback", "/web-login/callback?state=a%3Db&code=x", "/web-login/callback?code=x"] {
        let res = http.get(up.cms(bad)).send().await.unwrap();
        assert_eq!(res.status(), 400, "{bad}");
    }
    // The idp's error (e.g. a denied login) is told with a fixed text per error code: anyone can
    // craft this URL, so its free text (or an unknown code) is not shown without a login this
    // browser started.
    let spoof = "Your+account+is+locked%3A+call+%2B1-555-0100+%3Cscript%3Ex%3C%2Fscript%3E";
    let res = http
        .get(up.cms(&format!("/web-login/callback?error=access_denied&error_description={spoof}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body = res.text().await.unwrap();
    assert!(body.contains("The identity provider denied this sign-in."), "{body}");
    assert!(!body.contains("555-0100") && !body.contains("script"), "the crafted text is not shown: {body}");
    let res = http
        .get(up.cms(&format!("/web-login/callback?error=call_555_0100&error_description={spoof}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    let body = res.text().await.unwrap();
    assert!(!body.contains("555") && !body.contains("script"), "neither the code nor the text: {body}");
    // For a login this browser started (its state cookie), the idp's description is shown, escaped.
    let res = http.get(up.cms("/web-login")).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let state = query_param(&up.cms(&to), "state").expect("a state");
    let res = http
        .get(up.cms(&format!("/web-login/callback?state={state}&error=access_denied&error_description={spoof}")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);
    let body = res.text().await.unwrap();
    assert!(body.contains("The identity provider denied this sign-in."), "{body}");
    assert!(body.contains("call +1-555-0100 &lt;script&gt;x&lt;/script&gt;") && !body.contains("<script>"), "{body}");

    // A started login whose code is not the idp's: auth0-client refuses, the site says so.
    let res = http.get(up.cms("/web-login")).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let state = query_param(&up.cms(&to), "state").expect("a state");
    let res = http.get(up.cms(&format!("/web-login/callback?code=not-a-code&state={state}"))).send().await.unwrap();
    assert_eq!(res.status(), 400, "auth0-client has no such state yet");
    // The browser went through /authorize this time, so auth0-client knows the state.
    let res = http.get(up.cms("/web-login")).send().await.unwrap();
    let to = res.headers()["location"].to_str().unwrap().to_string();
    let state = query_param(&up.cms(&to), "state").unwrap();
    assert_eq!(http.get(up.cms(&to)).send().await.unwrap().status(), 302);
    let res = http.get(up.cms(&format!("/web-login/callback?code=not-a-code&state={state}"))).send().await.unwrap();
    assert_eq!(res.status(), 403, "the idp refuses the code");
    let body = res.text().await.unwrap();
    assert!(body.contains("refused the sign-in"), "{body}");

    // Open redirects: only local paths survive /web-login.
    for evil in ["%2F%2Fevil.example%2F", "https%3A%2F%2Fevil.example%2F", "%2F%5Cevil.example"] {
        let res = http.get(up.cms(&format!("/web-login?redirect={evil}"))).send().await.unwrap();
        let to = res.headers()["location"].to_str().unwrap();
        assert_eq!(query_param(&up.cms(to), "redirect").as_deref(), Some("/"), "{evil}");
    }
    // The idp's origin sends a lost newcomer to the CMS; unknown host names go to the CMS origin.
    let res = http.get(up.idp("/")).send().await.unwrap();
    assert_eq!(res.headers()["location"], up.cms("/").as_str());
    let res =
        http.get(up.cms("/admin/users")).header("host", format!("cms.example.test:{}", up.port)).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(res.headers()["location"], up.cms("/admin/users").as_str());
}

#[tokio::test]
async fn up_keeps_group_changes_across_restarts_and_ports() {
    let data = TempDir::new("up-restart");
    let mut up = UpProcess::start(data.path(), free_port());
    let admin = browser_client();
    let home = sign_in(&admin, &up, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    assert_eq!(home.status, 200, "{}", home.body);

    // The guide's "assign users to groups using CMS": the users page's form.
    let users = open(&admin, &up.cms("/admin/users")).await;
    let marker = format!("<tr data-email=\"{}\">", dev_env("USER_EMAIL"));
    let row = Form::after(&users.body, &marker);
    assert_eq!(row.action, "/admin/users/groups");
    let form = [("csrf", row.field("csrf")), ("user_id", row.field("user_id")), ("groups", "admin, editors".into())];
    let res = admin.post(up.cms(&row.action)).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let location = res.headers()["location"].to_str().unwrap().to_string();
    let saved = open(&admin, &up.cms(&location)).await;
    assert!(saved.body.contains("id=\"saved\""), "{}", saved.body);
    let row = &saved.body[saved.body.find(&marker).unwrap()..];
    assert!(unescape(row).contains("value=\"admin, editors\""), "{row}");

    let status = up.terminate();
    assert!(status.success(), "SIGTERM must stop everything cleanly: {status}\n{}", up.output());

    // Same data, another port: the tenant's URLs follow, the users and their groups stay.
    drop(up);
    let up = UpProcess::start(data.path(), free_port());
    let plain = browser_client();
    let home = sign_in(&plain, &up, &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
    assert_eq!(home.url, up.cms("/"));
    assert_eq!(home.status, 200, "the plain user is an admin now: {}", home.body);
    assert!(home.body.contains("<li>admin</li><li>editors</li>"), "{}", home.body);
}

/// `up --tls`: HTTPS on the one port with certificates from `<data>/ca.pem`, which the banner
/// says how to trust. A client trusting that CA alone signs in through the whole flow (CMS,
/// auth0-client, idp: every hop https); one trusting only the system roots is refused.
#[tokio::test]
async fn up_tls_serves_https_with_its_local_ca() {
    let data = TempDir::new("up-tls");
    let port = free_port();
    let (up, ready) = UpProcess::spawn(data.path(), port, &["--tls"]);
    let line =
        ready.recv_timeout(Duration::from_secs(90)).unwrap_or_else(|e| panic!("no start ({e}):\n{}", up.output()));
    let cms = format!("https://localhost:{port}/");
    assert_eq!(line, format!("Gatehouse is up: open {cms}"));
    let ca_path = data.path().join("ca.pem");
    up.wait_for_output(
        &format!("SSL_CERT_FILE / NODE_EXTRA_CA_CERTS / REQUESTS_CA_BUNDLE={}", ca_path.display()),
        Duration::from_secs(5),
    );

    let ca = reqwest::Certificate::from_pem(&std::fs::read(&ca_path).unwrap()).unwrap();
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT, "text/html".parse().unwrap());
    let browser = reqwest::Client::builder()
        .no_proxy()
        .tls_certs_only([ca])
        .cookie_store(true)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .build()
        .unwrap();
    let login = open(&browser, &cms).await;
    assert!(login.url.starts_with(&format!("https://127.0.0.1:{port}/u/login")), "{:#?}", login.hops);
    assert!(login.hops.iter().all(|h| h.starts_with("https://")), "{:#?}", login.hops);
    let home = submit_login(&browser, &login, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    assert_eq!((home.url.as_str(), home.status), (cms.as_str(), 200), "{}", home.body);
    assert!(home.body.contains("<li>admin</li>"), "{}", home.body);
    // The issuer is the https origin (what the SDKs are configured with).
    let discovery: Value = browser
        .get(format!("https://127.0.0.1:{port}/.well-known/openid-configuration"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(discovery["issuer"], format!("https://127.0.0.1:{port}/"));

    // Without the CA the certificate is not trusted; plain HTTP is not served on that port.
    let untrusting = reqwest::Client::builder().no_proxy().build().unwrap();
    let err = untrusting.get(&cms).send().await.unwrap_err();
    assert!(err.is_connect(), "{err:?}");
    let plain = untrusting.get(format!("http://localhost:{port}/")).send().await;
    assert!(plain.is_err() || plain.unwrap().status() == 400, "HTTP on the TLS port");
}

#[cfg(unix)]
#[test]
fn up_creates_its_data_dir_and_files_private() {
    use std::os::unix::fs::PermissionsExt;
    let root = TempDir::new("up-private");
    let data = root.path().join("data");
    let up = UpProcess::start(&data, free_port());
    let mode = |rel: &str| {
        let path = data.join(rel);
        std::fs::metadata(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).permissions().mode() & 0o777
    };
    for dir in ["", "auth0-client", "cms-tenant", "cms-tenant/actions"] {
        assert_eq!(mode(dir), 0o700, "directory {dir:?}");
    }
    // config.json holds both clients' secrets; dev.env the tenant's.
    for file in
        ["auth0-client/config.json", "cms-tenant/dev.env", "cms-tenant/tenant.yaml", "gatehouse.db", "secrets.key"]
    {
        assert_eq!(mode(file), 0o600, "{file}");
    }
    assert!(!up.output().contains("other users of this machine can read it"), "{}", up.output());
}

#[tokio::test]
async fn up_on_a_taken_port_fails_with_a_clear_message() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let data = TempDir::new("up-taken");
    let (mut up, _ready) = UpProcess::spawn(data.path(), port, &[]);
    let status = up.wait_exit(Duration::from_secs(30));
    assert!(!status.success(), "{}", up.output());
    assert!(up.output().contains(&format!("cannot listen on 127.0.0.1:{port}")), "{}", up.output());
    assert!(up.output().contains("--port"), "says how to fix it: {}", up.output());
}

/// A `redis-server` of the test's own on a free port, stopped when dropped.
struct Redis(std::process::Child);

impl Redis {
    fn start() -> (Redis, u16) {
        let port = free_port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .expect("redis-server is installed (Debian package redis-server)");
        let redis = Redis(child);
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(std::time::Instant::now() < deadline, "redis-server never listened on {port}");
            std::thread::sleep(Duration::from_millis(20));
        }
        (redis, port)
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A PostgreSQL database of the test's own on the test server (`GATEHOUSE_TEST_POSTGRES`'s
/// server, default `postgres://postgres@127.0.0.1:5432`), dropped when the guard is.
struct Database {
    server: String,
    admin_url: String,
    name: String,
}

impl Database {
    fn create() -> Database {
        let server = std::env::var("GATEHOUSE_TEST_POSTGRES_SERVER")
            .unwrap_or_else(|_| "postgres://postgres@127.0.0.1:5432".into());
        let db = Database {
            admin_url: format!("{server}/postgres"),
            server,
            name: format!("gatehouse_up_{}_{}", std::process::id(), free_port()),
        };
        db.psql(&format!("CREATE DATABASE {}", db.name));
        db
    }

    fn url(&self) -> String {
        format!("{}/{}", self.server, self.name)
    }

    fn psql(&self, sql: &str) -> String {
        self.psql_on(&self.admin_url, sql)
    }

    fn psql_on(&self, url: &str, sql: &str) -> String {
        let out = std::process::Command::new("psql")
            .args([url, "-tAc", sql])
            .output()
            .expect("psql is installed (Debian package postgresql-client)");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }
}

impl Drop for Database {
    fn drop(&mut self) {
        let _ = std::process::Command::new("psql")
            .args([&self.admin_url, "-tAc", &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", self.name)])
            .output();
    }
}

#[tokio::test]
async fn up_runs_on_postgres_and_redis() {
    let (_redis, redis_port) = Redis::start();
    let db = Database::create();
    let data = TempDir::new("up-pg");
    let port = free_port();
    let redis = format!("127.0.0.1:{redis_port}");
    let flags = ["--database", &db.url(), "--redis", &redis];
    let (mut up, ready) = UpProcess::spawn(data.path(), port, &flags);
    ready.recv_timeout(Duration::from_secs(90)).unwrap_or_else(|e| panic!("not up ({e}):\n{}", up.output()));
    assert!(!data.path().join("gatehouse.db").exists(), "no SQLite file with --database");
    let tables = db.psql_on(&db.url(), "SELECT count(*) FROM information_schema.tables WHERE table_schema = 'public'");
    assert_ne!(tables, "0", "the idp's tables are in the PostgreSQL database");

    let admin = browser_client();
    let home = sign_in(&admin, &up, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    assert_eq!(home.status, 200, "{}", home.body);
    assert!(up.terminate().success(), "{}", up.output());
    drop(up);

    // The session lives in Redis: after a restart the browser is still signed in.
    let (up, ready) = UpProcess::spawn(data.path(), port, &flags);
    ready.recv_timeout(Duration::from_secs(90)).unwrap_or_else(|e| panic!("not up again ({e}):\n{}", up.output()));
    let page = open(&admin, &up.cms("/")).await;
    assert_eq!(page.hops.len(), 1, "no login needed: {:#?}", page.hops);
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(page.body.contains(&dev_env("ADMIN_EMAIL")), "{}", page.body);
}

/// A client that is not a browser: no cookies kept, no `Sec-Fetch-*`, no `Origin`.
fn api_client() -> reqwest::Client {
    reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

/// Asserts a refusal in Mia's error shape (auth0-client's), without a session cookie.
async fn assert_refused(res: reqwest::Response, what: &str) {
    assert_eq!(res.status(), 403, "{what}");
    assert!(res.headers().get("set-cookie").is_none(), "{what}: no cookie on a refusal");
    assert!(res.headers()["content-type"].to_str().unwrap().starts_with("application/json"), "{what}");
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["statusCode"], 403, "{what}: {body}");
    assert_eq!(body["error"], "Forbidden", "{what}: {body}");
    assert!(body["message"].as_str().is_some_and(|m| !m.is_empty()), "{what}: {body}");
}

/// The `sid` cookie a response sets, if any.
fn sid_of(res: &reqwest::Response) -> Option<String> {
    res.headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|c| c.starts_with("sid="))
        .map(str::to_owned)
}

/// Signs in as `email` up to the idp's redirect to the login site's callback, and returns that
/// callback's `code` and `state` without using them: what a login-CSRF attacker holds.
async fn unused_code(up: &UpProcess, email: &str, password: &str) -> (String, String) {
    let http = browser_client();
    let login = open(&http, &up.cms("/")).await;
    let form = Form::first(&login.body);
    let action = url::Url::parse(&login.url).unwrap().join(&form.action).unwrap();
    let mut fields = form.hidden;
    fields.push(("username".into(), email.into()));
    fields.push(("password".into(), password.into()));
    let mut res = http.post(action.clone()).form(&fields).send().await.unwrap();
    let mut current = action;
    for _ in 0..10 {
        assert!(res.status().is_redirection(), "{current}: {}", res.status());
        current = current.join(res.headers()["location"].to_str().unwrap()).unwrap();
        if current.as_str().starts_with(&up.cms("/web-login/callback?")) {
            let code = query_param(current.as_str(), "code").expect("a code");
            let state = query_param(current.as_str(), "state").expect("a state");
            return (code, state);
        }
        res = http.get(current.clone()).send().await.unwrap();
    }
    panic!("never reached the callback; last {current}");
}

#[tokio::test]
async fn up_refuses_cross_site_requests_to_the_token_endpoint() {
    let data = TempDir::new("up-login-csrf");
    let up = UpProcess::start(data.path(), free_port());
    let (email, password) = (dev_env("USER_EMAIL"), dev_env("USER_PASSWORD"));
    let other_port = format!("http://localhost:{}", free_port());

    // The attacker's own code and state, sent to the victim's browser as a link or a redirect:
    // the browser would keep the `sid` it answers with and be signed in as the attacker.
    let (code, state) = unused_code(&up, &email, &password).await;
    let url = up.cms(&format!("/oauth/token?code={code}&state={state}"));
    let victim = browser_client();
    for (site, what) in [
        ("cross-site", "a cross-site link"),
        ("same-site", "a link on another localhost port"),
        ("none", "a typed or bookmarked URL"),
        ("same-origin", "a same-origin navigation"),
    ] {
        let res = victim
            .get(&url)
            .header("sec-fetch-site", site)
            .header("sec-fetch-mode", "navigate")
            .header("sec-fetch-dest", "document")
            .send()
            .await
            .unwrap();
        assert_refused(res, what).await;
    }
    // A cross-site form post of the same (a browser without Sec-Fetch-* still sends Origin).
    let form = [("code", code.as_str()), ("state", state.as_str())];
    let res = victim.post(up.cms("/oauth/token")).header("origin", &other_port).form(&form).send().await.unwrap();
    assert_refused(res, "a form post from another origin").await;
    // The refusals did not spend the state: an API client (no Sec-Fetch-*, no Origin) still
    // exchanges it, as Mia's gateway lets it.
    let res = api_client().get(&url).send().await.unwrap();
    assert_eq!(res.status(), 200, "{}", res.text().await.unwrap());
    assert!(sid_of(&res).is_some(), "the session cookie for an API client");

    // The password grant as a cross-site form post (grant_type=password needs no state at all).
    let grant = [("grant_type", "password"), ("username", email.as_str()), ("password", password.as_str())];
    let res = victim
        .post(up.cms("/oauth/token"))
        .header("sec-fetch-site", "cross-site")
        .header("sec-fetch-mode", "navigate")
        .header("origin", "http://evil.example")
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_refused(res, "a cross-site password-grant form").await;
    let res = victim
        .post(up.cms("/oauth/token"))
        .header("sec-fetch-site", "same-site")
        .header("sec-fetch-mode", "no-cors")
        .header("origin", &other_port)
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_refused(res, "a no-cors fetch from another localhost port").await;
    let res = victim.post(up.cms("/oauth/token")).header("origin", "null").form(&grant).send().await.unwrap();
    assert_refused(res, "an opaque origin").await;
    let page = open(&victim, &up.cms("/")).await;
    assert!(page.url.starts_with(&up.idp("/u/login")), "the victim is still signed out: {}", page.url);

    // What stays open: a same-origin fetch, and API clients.
    let res = victim
        .post(up.cms("/oauth/token"))
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .header("origin", up.cms("/").trim_end_matches('/'))
        .form(&grant)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "same-origin fetch: {}", res.text().await.unwrap());
    let res = api_client().post(up.cms("/oauth/token")).form(&grant).send().await.unwrap();
    assert_eq!(res.status(), 200, "API client: {}", res.text().await.unwrap());
    assert!(sid_of(&res).is_some());
}

#[tokio::test]
async fn up_refuses_cross_origin_writes_to_the_users_api() {
    let data = TempDir::new("up-users-csrf");
    let up = UpProcess::start(data.path(), free_port());
    let admin = browser_client();
    let home = sign_in(&admin, &up, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    assert_eq!(home.status, 200, "{}", home.body);
    let cms_origin = up.cms("/").trim_end_matches('/').to_string();
    // Another app on localhost is same-site: the SameSite=Lax `sid` goes along, and a text/plain
    // body needs no CORS preflight.
    let evil = format!("http://localhost:{}", free_port());
    let mallory =
        json!({ "email": "mallory@example.test", "password": "Corr3ct-Horse-Battery!", "email_verified": true });

    let forged = || admin.post(up.cms("/users")).header("content-type", "text/plain").body(mallory.to_string());
    let res = forged()
        .header("sec-fetch-site", "same-site")
        .header("sec-fetch-mode", "no-cors")
        .header("origin", &evil)
        .send()
        .await
        .unwrap();
    assert_refused(res, "POST /users from another localhost port").await;
    let res = forged().header("origin", &evil).send().await.unwrap();
    assert_refused(res, "POST /users with a foreign Origin (no Sec-Fetch-*)").await;
    let res = forged().header("sec-fetch-site", "cross-site").header("origin", &cms_origin).send().await.unwrap();
    assert_refused(res, "Sec-Fetch-Site wins over Origin").await;
    let res = admin
        .post(up.cms("/change-password"))
        .header("content-type", "text/plain")
        .header("sec-fetch-site", "same-site")
        .body(json!({ "email": dev_env("USER_EMAIL") }).to_string())
        .send()
        .await
        .unwrap();
    assert_refused(res, "POST /change-password from another localhost port").await;
    let res = admin
        .delete(up.cms("/users/auth0%7Cnobody"))
        .header("sec-fetch-site", "cross-site")
        .header("origin", "http://evil.example")
        .send()
        .await
        .unwrap();
    assert_refused(res, "DELETE /users/… cross-site").await;

    let listed = || async {
        let res = admin
            .get(up.cms("/users?email=mallory%40example.test"))
            .header("sec-fetch-site", "same-origin")
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 200);
        res.text().await.unwrap()
    };
    assert!(!listed().await.contains("mallory@example.test"), "no user was created by the forged requests");

    // The same request from the CMS origin itself goes through, and so does an API client's.
    let res = admin
        .post(up.cms("/users"))
        .header("sec-fetch-site", "same-origin")
        .header("sec-fetch-mode", "cors")
        .header("origin", &cms_origin)
        .json(&mallory)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 201, "{}", res.text().await.unwrap());
    assert!(listed().await.contains("mallory@example.test"));
    let res =
        admin.post(up.cms("/change-password")).json(&json!({ "email": dev_env("USER_EMAIL") })).send().await.unwrap();
    assert!(
        res.status().is_success(),
        "an API client (no Sec-Fetch-*, no Origin): {} {}",
        res.status(),
        res.text().await.unwrap()
    );
}

/// The grace period `up` gives requests in flight after Ctrl-C or SIGTERM (idp's serve.rs).
const GRACE: Duration = Duration::from_secs(10);

#[tokio::test]
async fn up_lets_requests_in_flight_finish_when_stopped() {
    let data = TempDir::new("up-drain");
    let mut up = UpProcess::start(data.path(), free_port());
    // A password sign-in through auth0-client, which needs the idp over HTTP on the same port.
    let body = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "password")
        .append_pair("username", &dev_env("ADMIN_EMAIL"))
        .append_pair("password", &dev_env("ADMIN_PASSWORD"))
        .finish();
    let mut stream = up.request_in_flight(body.len());
    up.signal("TERM");
    up.wait_for_output("shutting down", STOP_TIMEOUT);

    // While auth0-client has a request in flight, the listener stays open: new requests to
    // auth0-client are turned away in its error shape, the idp still answers.
    let http = browser_client();
    let refused = http.get(up.cms("/userinfo")).send().await.unwrap();
    assert_eq!(refused.status(), 503);
    assert_eq!(refused.headers()["connection"], "close");
    let refused: Value = refused.json().await.unwrap();
    assert_eq!(refused["statusCode"], 503, "{refused}");
    let discovery = http.get(up.idp("/.well-known/openid-configuration")).send().await.unwrap();
    assert_eq!(discovery.status(), 200);

    // The request in flight gets its answer, tokens from the idp included.
    stream.write_all(body.as_bytes()).unwrap();
    let mut answer = String::new();
    stream.read_to_string(&mut answer).unwrap();
    assert!(answer.starts_with("HTTP/1.1 200 "), "{answer}\n{}", up.output());
    let status = up.wait_exit(STOP_TIMEOUT);
    assert!(status.success(), "{status}\n{}", up.output());
}

#[tokio::test]
async fn up_stops_within_the_grace_period_despite_a_stuck_request() {
    let data = TempDir::new("up-stuck");
    let mut up = UpProcess::start(data.path(), free_port());
    let _stuck = up.request_in_flight(100);
    let started = Instant::now();
    up.signal("TERM");
    let status = up.wait_exit(GRACE + Duration::from_secs(15));
    assert!(status.success(), "{status}\n{}", up.output());
    assert!(started.elapsed() >= GRACE, "the request in flight got its grace period: {:?}", started.elapsed());
}

#[tokio::test]
async fn up_stops_at_once_on_a_second_ctrl_c() {
    let data = TempDir::new("up-twice");
    let mut up = UpProcess::start(data.path(), free_port());
    let _stuck = up.request_in_flight(100);
    let started = Instant::now();
    up.signal("INT");
    // Printed once the first signal is counted: a second one from then on is not lost.
    up.wait_for_output("Ctrl-C again to stop at once", STOP_TIMEOUT);
    up.signal("INT");
    let status = up.wait_exit(GRACE / 2);
    assert_eq!(status.code(), Some(130), "{status}\n{}", up.output());
    assert!(started.elapsed() < GRACE, "{:?}", started.elapsed());
}

#[tokio::test]
async fn up_banner_gives_the_console_and_its_first_administrator_once() {
    let data = TempDir::new("up-console");
    let mut up = UpProcess::start(data.path(), free_port());
    let marker = "administrator admin@gatehouse.localhost / ";
    up.wait_for_output(marker, Duration::from_secs(10));
    let output = up.output();
    assert!(output.contains(&format!("admin console      {}", up.idp("/console"))), "{output}");
    let password = output
        .lines()
        .find_map(|l| l.split_once(marker).map(|(_, rest)| rest.trim_end_matches(" (shown once)").trim().to_string()))
        .unwrap();
    // The printed credentials open the console, through the idp's own login page.
    let http = browser_client();
    let login = open(&http, &up.idp("/console")).await;
    let console = submit_login(&http, &login, "admin@gatehouse.localhost", &password).await;
    assert_eq!(console.url, up.idp("/console/applications"), "{}", console.body);
    assert_eq!(console.status, 200);
    assert!(console.body.contains(">CMS<"), "the guide's tenant: {}", console.body);
    up.terminate();

    // The next start keeps the administrator and prints no password.
    let up = UpProcess::start(data.path(), free_port());
    up.wait_for_output("more administrators: gatehouse console add-admin", Duration::from_secs(10));
    assert!(!up.output().contains("(shown once)"), "{}", up.output());
}

/// Without an email provider, mail lands in the outbox and `/dev/mailbox` shows it, linked from
/// the CMS's pages: a person trying password reset can follow the mailed link.
#[tokio::test]
async fn up_shows_mail_in_its_dev_mailbox() {
    let data = TempDir::new("up-mailbox");
    let up = UpProcess::start(data.path(), free_port());
    let http = reqwest::Client::builder().no_proxy().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let empty = http.get(up.cms("/dev/mailbox")).send().await.unwrap();
    assert_eq!(empty.status(), 200);
    assert!(empty.text().await.unwrap().contains("id=\"empty\""));

    let body =
        json!({"client_id": dev_env("CMS_CLIENT_ID"), "email": dev_env("USER_EMAIL"), "connection": "dev-users"});
    let res = http.post(up.idp("/dbconnections/change_password")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let started = Instant::now();
    let page = loop {
        let page = http.get(up.cms("/dev/mailbox")).send().await.unwrap().text().await.unwrap();
        if page.contains("class=\"mail\"") {
            break page;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no mail in the dev mailbox: {page}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert!(page.contains(&dev_env("USER_EMAIL")), "{page}");
    assert!(page.contains("id=\"dev-mailbox\""), "linked from the footer");
    let start = page.find("<a href=\"").map(|i| i + 9).unwrap();
    let link = unescape(&page[start..start + page[start..].find('"').unwrap()]);
    assert!(link.contains("/lo/reset?ticket="), "{link}");
    let form = http.get(&link).send().await.unwrap();
    assert_eq!(form.status(), 200, "the mailed link opens the reset form");
}
