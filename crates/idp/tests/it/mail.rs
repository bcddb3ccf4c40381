//! Mail through a real SMTP server: each test starts aiosmtpd (Debian's python3-aiosmtpd) on a
//! free port with STARTTLS (or implicit TLS) and AUTH required and a certificate made here,
//! configures it with `/api/v2/emails/provider`, and reads what the server received. Also:
//! the queue across an SMTP outage and across two nodes, the provider and template APIs, and
//! the failures (refused, stalled, untrusted certificate) answered clearly and in bounded time.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::Store;

const SMTP_USER: &str = "relay-user";
const SMTP_PASS: &str = "relay-Passw0rd-canary";

/// The test's certificate for `localhost`, as files.
struct Tls {
    cert: PathBuf,
    key: PathBuf,
}

fn tls_files(dir: &Path) -> Tls {
    let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    let (cert, key) = (dir.join("smtp-cert.pem"), dir.join("smtp-key.pem"));
    std::fs::write(&cert, made.cert.pem()).unwrap();
    std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
    Tls { cert, key }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// A running aiosmtpd, killed when dropped.
struct Smtp {
    child: Option<Child>,
    port: u16,
    out: PathBuf,
    tls: Arc<Tls>,
    implicit: bool,
}

impl Smtp {
    fn start(dir: &Path, tls: Arc<Tls>, implicit: bool) -> Smtp {
        let out = dir.join("delivered");
        std::fs::create_dir_all(&out).unwrap();
        let mut smtp = Smtp { child: None, port: free_port(), out, tls, implicit };
        smtp.restart();
        smtp
    }

    /// Starts the server (again) on its port; returns once it accepts connections.
    fn restart(&mut self) {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/smtp_server.py");
        // Debian's python, where python3-aiosmtpd is installed (a pyenv shim may come first
        // on PATH); scripts/install-test-deps installs it. Missing, the test fails.
        let python = if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
        let mut child = Command::new(python)
            .arg(&script)
            .arg(&self.out)
            .arg(self.port.to_string())
            .arg(&self.tls.cert)
            .arg(&self.tls.key)
            .args([SMTP_USER, SMTP_PASS, if self.implicit { "implicit" } else { "starttls" }])
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 with aiosmtpd (scripts/install-test-deps)");
        let stdout = child.stdout.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                let _ = tx.send(line);
            }
        });
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(line) if line == "ready" => {}
            other => {
                let _ = child.kill();
                panic!("aiosmtpd did not start: {other:?}");
            }
        }
        self.child = Some(child);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// What the server received, oldest first.
    fn messages(&self) -> Vec<Value> {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&self.out)
            .unwrap()
            .map(|e| e.unwrap().path())
            // The server writes `.NAME.json` and renames it: a dot file is one still being written.
            .filter(|p| {
                p.extension().is_some_and(|e| e == "json")
                    && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
            })
            .collect();
        files.sort();
        files.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
    }

    /// Waits (bounded) until the server holds `n` messages; returns them.
    async fn wait_for(&self, n: usize, within: Duration) -> Vec<Value> {
        let started = Instant::now();
        loop {
            let got = self.messages();
            if got.len() >= n || started.elapsed() > within {
                return got;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits (bounded) until every queued message is marked sent or given up.
async fn drained(t: &TestIdp, far: i64) {
    let started = Instant::now();
    while t.idp.store.mail().pending_mail(far).await.unwrap() > 0 {
        assert!(started.elapsed() < Duration::from_secs(20), "mail still unsent");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// An idp trusting `tls`'s certificate for SMTP, retrying fast, with room for many reset mails.
fn mail_config(tls: Option<&Tls>, implicit_port: Option<u16>) -> impl FnOnce(&mut idp::Config) {
    let cert = tls.map(|t| t.cert.clone());
    move |c: &mut idp::Config| {
        c.mail.smtp_ca_file = cert;
        c.mail.first_backoff = Duration::from_millis(500);
        c.mail.max_backoff = Duration::from_secs(1);
        c.mail.poll = Duration::from_millis(200);
        c.mail.smtp_timeout = Duration::from_secs(2);
        c.mail.implicit_tls_ports = implicit_port.into_iter().collect();
        c.reset_mails = idp::ResetMails { per_user: 1000, per_ip: 1000, window_secs: 3600 };
    }
}

fn provider(port: u16) -> Value {
    json!({
        "name": "smtp",
        "enabled": true,
        "default_from_address": "Gatehouse <no-reply@example.test>",
        "credentials": {"smtp_host": "localhost", "smtp_port": port, "smtp_user": SMTP_USER, "smtp_pass": SMTP_PASS},
    })
}

async fn configure(t: &TestIdp, port: u16) -> String {
    let tok = management_token(t, None).await;
    let (status, body) = call(t, &tok, Method::POST, "emails/provider", Some(provider(port))).await;
    assert_eq!(status, 201, "{body}");
    tok
}

async fn ask_reset(t: &TestIdp, email: &str) {
    let body = json!({"client_id": kw("CMS_CLIENT_ID"), "email": email, "connection": "dev-users"});
    let res = reqwest::Client::new().post(t.url("dbconnections/change_password")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

/// The reset link of a delivered message (its plain-text part).
fn reset_link(message: &Value) -> String {
    let text = message["text"].as_str().unwrap_or_else(|| panic!("no text part: {message}"));
    text.lines()
        .map(str::trim)
        .find(|l| l.contains("/lo/reset?ticket="))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string()
}

#[tokio::test]
async fn a_reset_mail_goes_out_over_starttls_with_auth_and_its_link_sets_the_password() {
    let dir = temp_dir("smtp");
    let tls = Arc::new(tls_files(&dir));
    let smtp = Smtp::start(&dir, tls.clone(), false);
    let t = start_on(sqlite_store().await, true, mail_config(Some(&tls), None)).await;
    let tok = configure(&t, smtp.port).await;

    // The password is write-only: never answered, never stored in the clear.
    let (status, read) = call(&t, &tok, Method::GET, "emails/provider", None).await;
    assert_eq!(status, 200);
    assert_eq!(read["credentials"], json!({"smtp_host": "localhost", "smtp_port": smtp.port, "smtp_user": SMTP_USER}));
    let stored = t.idp.store.mail().email_provider().await.unwrap().unwrap();
    assert!(!serde_json::to_string(&stored).unwrap().contains(SMTP_PASS), "sealed at rest");

    ask_reset(&t, &kw("USER_EMAIL")).await;
    t.flush_mail().await;
    let got = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "{got:?}");
    let m = &got[0];
    assert_eq!(m["rcpt_tos"], json!([kw("USER_EMAIL")]));
    assert_eq!(m["subject"], "Reset your password");
    assert_eq!(m["authenticated"], true);
    assert!(m["from"].as_str().unwrap().contains("no-reply@example.test"), "{m}");
    assert!(m["html"].as_str().unwrap().contains("<a href="), "an HTML part too");

    // Follow the link as a browser would, and set the password.
    let link = reset_link(m);
    let page = reqwest::get(&link).await.unwrap();
    assert_eq!(page.status(), 200);
    let ticket = query_param(&link, "ticket").unwrap();
    let res = reqwest::Client::new()
        .post(t.url("lo/reset"))
        .form(&[("ticket", ticket.as_str()), ("password", "Mailed-Passw0rd!")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let form = json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm", "client_id": kw("CMS_CLIENT_ID"),
        "client_secret": kw("CMS_CLIENT_SECRET"), "username": kw("USER_EMAIL"), "password": "Mailed-Passw0rd!",
        "realm": "dev-users", "scope": "openid"});
    let (status, body) =
        json(reqwest::Client::new().post(t.url("oauth/token")).json(&form).send().await.unwrap()).await;
    assert_eq!(status, 200, "the mailed link set the password: {body}");
    // Used once: the link is dead now.
    assert_eq!(reqwest::get(&link).await.unwrap().status(), 400);
}

#[tokio::test]
async fn implicit_tls_delivers_too() {
    let dir = temp_dir("smtps");
    let tls = Arc::new(tls_files(&dir));
    let smtp = Smtp::start(&dir, tls.clone(), true);
    let t = start_on(sqlite_store().await, true, mail_config(Some(&tls), Some(smtp.port))).await;
    let tok = configure(&t, smtp.port).await;
    let (status, body) =
        call(&t, &tok, Method::POST, "emails/provider/test", Some(json!({"to": "ops@example.test"}))).await;
    assert_eq!((status, &body), (200, &json!({"sent": true})));
    let got = smtp.wait_for(1, Duration::from_secs(10)).await;
    assert_eq!((got.len(), &got[0]["rcpt_tos"]), (1, &json!(["ops@example.test"])));
}

/// The server goes down with mail in the queue and comes back: every message arrives, once.
#[tokio::test]
async fn an_smtp_outage_loses_no_mail_and_sends_none_twice() {
    let dir = temp_dir("smtp-outage");
    let tls = Arc::new(tls_files(&dir));
    let mut smtp = Smtp::start(&dir, tls.clone(), false);
    let t = start_on(sqlite_store().await, true, mail_config(Some(&tls), None)).await;
    configure(&t, smtp.port).await;
    for _ in 0..2 {
        ask_reset(&t, &kw("USER_EMAIL")).await;
    }
    assert_eq!(smtp.wait_for(2, Duration::from_secs(20)).await.len(), 2);

    smtp.stop();
    let queued_at = Instant::now();
    for _ in 0..4 {
        ask_reset(&t, &kw("ADMIN_EMAIL")).await;
    }
    assert!(queued_at.elapsed() < Duration::from_secs(5), "a request only queues its mail");
    // Every one of the four has failed once and waits for its retry.
    let far = t.idp.now() + 86_400_000;
    let started = Instant::now();
    loop {
        let mail = t.idp.store.mail();
        let (due, waiting) = (mail.pending_mail(t.idp.now()).await.unwrap(), mail.pending_mail(far).await.unwrap());
        if due == 0 && waiting == 4 {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "due {due}, waiting {waiting}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }

    smtp.restart();
    assert_eq!(smtp.wait_for(6, Duration::from_secs(30)).await.len(), 6);
    // Every message marked sent: nothing more can arrive.
    drained(&t, far).await;
    let got = smtp.messages();
    assert_eq!(got.len(), 6, "{got:?}");
    let mut tickets: Vec<String> = got.iter().map(|m| query_param(&reset_link(m), "ticket").unwrap()).collect();
    tickets.sort();
    tickets.dedup();
    assert_eq!(tickets.len(), 6, "each message once");
    let to_admin = got.iter().filter(|m| m["rcpt_tos"] == json!([kw("ADMIN_EMAIL")])).count();
    assert_eq!(to_admin, 4);
}

/// Two nodes on one PostgreSQL database: mail queued on one while the server is down is sent
/// by whichever node claims it, each message once.
#[tokio::test]
async fn two_nodes_share_the_queue_without_double_sends() {
    let dir = temp_dir("smtp-nodes");
    let tls = Arc::new(tls_files(&dir));
    let mut smtp = Smtp::start(&dir, tls.clone(), false);
    smtp.stop();
    let store: Arc<dyn Store> = pg_store("mail").await;
    let key = dir.join("secrets.key");
    let tweak = |k: PathBuf| {
        let base = mail_config(Some(&tls), None);
        move |c: &mut idp::Config| {
            base(c);
            c.secrets_key = Some(k);
        }
    };
    let a = start_on(store.clone(), true, tweak(key.clone())).await;
    let b = start_on(store.clone(), false, tweak(key.clone())).await;
    configure(&a, smtp.port).await;
    for n in 0..12 {
        ask_reset(if n % 2 == 0 { &a } else { &b }, &kw("USER_EMAIL")).await;
    }
    smtp.restart();
    assert_eq!(smtp.wait_for(12, Duration::from_secs(40)).await.len(), 12);
    drained(&a, a.idp.now() + 86_400_000).await;
    let got = smtp.messages();
    assert_eq!(got.len(), 12);
    let mut tickets: Vec<String> = got.iter().map(|m| query_param(&reset_link(m), "ticket").unwrap()).collect();
    tickets.sort();
    tickets.dedup();
    assert_eq!(tickets.len(), 12, "each message once");
}

/// A server that refuses connections, one that accepts and says nothing, and one whose
/// certificate is not trusted: each a clear 502 from the test send, in bounded time, while a
/// reset request still answers at once.
#[tokio::test]
async fn smtp_failures_are_named_and_never_hang_a_request() {
    let dir = temp_dir("smtp-bad");
    let tls = Arc::new(tls_files(&dir));
    let smtp = Smtp::start(&dir, tls.clone(), false);
    // This node trusts no test certificate.
    let t = start_on(sqlite_store().await, true, mail_config(None, None)).await;
    let tok = management_token(&t, None).await;
    let test_send = |tok: String| {
        let url = t.url("api/v2/emails/provider/test");
        async move {
            let started = Instant::now();
            let res = reqwest::Client::new()
                .post(url)
                .bearer_auth(tok)
                .json(&json!({"to": "ops@example.test"}))
                .send()
                .await
                .unwrap();
            let elapsed = started.elapsed();
            let (status, body) = json(res).await;
            (status, body["message"].as_str().unwrap_or_default().to_string(), elapsed)
        }
    };

    // Untrusted certificate.
    let (status, _) = call(&t, &tok, Method::POST, "emails/provider", Some(provider(smtp.port))).await;
    assert_eq!(status, 201);
    let (status, message, elapsed) = test_send(tok.clone()).await;
    assert_eq!(status, 502, "{message}");
    assert!(message.contains("TLS"), "{message}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    // Refused.
    let closed = free_port();
    let patch = json!({"credentials": {"smtp_port": closed}});
    assert_eq!(call(&t, &tok, Method::PATCH, "emails/provider", Some(patch)).await.0, 200);
    let (status, message, elapsed) = test_send(tok.clone()).await;
    assert_eq!(status, 502, "{message}");
    assert!(message.contains(&format!("localhost:{closed}")), "{message}");
    assert!(elapsed < Duration::from_secs(10), "{elapsed:?}");

    // Stalled: accepts, never greets.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_port = silent.local_addr().unwrap().port();
    let held = tokio::spawn(async move {
        let mut open = Vec::new();
        while let Ok((conn, _)) = silent.accept().await {
            open.push(conn);
        }
    });
    let patch = json!({"credentials": {"smtp_port": silent_port}});
    assert_eq!(call(&t, &tok, Method::PATCH, "emails/provider", Some(patch)).await.0, 200);
    let (status, message, elapsed) = test_send(tok.clone()).await;
    assert_eq!(status, 502, "{message}");
    assert!(message.contains("timed out") || message.contains("did not finish"), "{message}");
    assert!(elapsed < Duration::from_secs(12), "bounded by the SMTP timeouts: {elapsed:?}");
    let started = Instant::now();
    ask_reset(&t, &kw("USER_EMAIL")).await;
    assert!(started.elapsed() < Duration::from_secs(2), "a reset request never waits for SMTP");
    held.abort();

    // The queue says what went wrong in the tenant log (`fn`), without the password.
    let started = Instant::now();
    loop {
        let (_, logs) = call(&t, &tok, Method::GET, "logs?q=type:fn", None).await;
        if let Some(e) = logs.as_array().and_then(|l| l.first()) {
            let d = e["description"].as_str().unwrap();
            assert!(d.contains("reset_email"), "{d}");
            assert!(!logs.to_string().contains(SMTP_PASS));
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no fn event");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn the_provider_api_checks_its_input_and_scopes() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let (status, body) = call(&t, &tok, Method::GET, "emails/provider", None).await;
    assert_eq!((status, body["errorCode"].as_str()), (404, Some("inexistent_email_provider")), "{body}");
    for bad in [
        json!({"name": "smtp", "credentials": {"smtp_host": "h", "smtp_port": 70000}}),
        json!({"name": "smtp", "credentials": {"smtp_host": "h\r\nx", "smtp_port": 25}}),
        json!({"name": "smtp", "credentials": {"smtp_host": "h", "smtp_port": 25}, "default_from_address": "a@b.test\r\nBcc: c@d.test"}),
        json!({"name": "smtp", "credentials": {"smtp_host": "h", "smtp_port": 25}, "extra": 1}),
        json!({"name": "sendgrid", "credentials": {"api_key": "k"}}),
        json!({"credentials": {"smtp_host": "h", "smtp_port": 25}}),
        json!({"name": "smtp"}),
        json!([1]),
    ] {
        let (status, body) = call(&t, &tok, Method::POST, "emails/provider", Some(bad.clone())).await;
        assert_eq!((status, body["statusCode"].as_i64()), (400, Some(400)), "{bad}: {body}");
    }
    assert!(t.idp.store.mail().email_provider().await.unwrap().is_none(), "nothing written");
    let reader = management_token(&t, Some(&["read:email_provider"])).await;
    let (status, body) = call(&t, &reader, Method::POST, "emails/provider", Some(provider(2525))).await;
    assert_eq!((status, body["errorCode"].as_str()), (403, Some("insufficient_scope")));

    let (status, _) = call(&t, &tok, Method::POST, "emails/provider", Some(provider(2525))).await;
    assert_eq!(status, 201);
    let (status, _) = call(&t, &tok, Method::POST, "emails/provider", Some(provider(2525))).await;
    assert_eq!(status, 409);
    let before = t.idp.store.mail().email_provider().await.unwrap().unwrap().smtp_pass_sealed;
    let patch = json!({"enabled": false, "credentials": {"smtp_pass": "another"}});
    let (status, body) = call(&t, &tok, Method::PATCH, "emails/provider", Some(patch)).await;
    assert_eq!((status, &body["enabled"]), (200, &json!(false)), "{body}");
    assert_eq!(body["credentials"]["smtp_host"], "localhost", "the other credentials stay");
    assert!(body["credentials"].get("smtp_pass").is_none());
    assert_ne!(t.idp.store.mail().email_provider().await.unwrap().unwrap().smtp_pass_sealed, before);
    let (status, body) = call(&t, &reader, Method::GET, "emails/provider?fields=name,enabled", None).await;
    assert_eq!((status, body), (200, json!({"name": "smtp", "enabled": false})));
    assert_eq!(call(&t, &tok, Method::DELETE, "emails/provider", None).await.0, 204);
    assert_eq!(call(&t, &tok, Method::DELETE, "emails/provider", None).await.0, 404);
}

#[tokio::test]
async fn templates_are_checked_at_save_time_and_shape_the_mail() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let (status, body) = call(&t, &tok, Method::GET, "email-templates/reset_email", None).await;
    assert_eq!((status, body["errorCode"].as_str()), (404, Some("inexistent_email_template")), "{body}");
    let (status, _) = call(&t, &tok, Method::GET, "email-templates/no_such_template", None).await;
    assert_eq!(status, 400);
    for bad in [
        json!({"template": "reset_email", "body": "{% if %}", "syntax": "liquid"}),
        json!({"template": "reset_email", "body": "<p>{{ url </p>"}),
        json!({"template": "reset_email", "subject": "Hi\r\nBcc: x@evil.test", "body": "b"}),
        json!({"template": "reset_email", "body": "b", "syntax": "handlebars"}),
        json!({"template": "reset_email", "body": "b", "resultUrl": "javascript:alert(1)"}),
        json!({"template": "reset_email", "body": "b", "urlLifetimeInSeconds": "x"}),
        json!({"template": "nope", "body": "b"}),
        json!({"template": "reset_email", "bogus": true}),
    ] {
        let (status, body) = call(&t, &tok, Method::POST, "email-templates", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let template = json!({
        "template": "reset_email",
        "body": "<p>Dear {{ user.name }} of {{ application.name }}, go to {{ url }}</p>",
        "subject": "Reset for {{ user.email }}",
        "from": "CMS <cms@example.test>",
        "syntax": "liquid",
        "enabled": true,
        "urlLifetimeInSeconds": 600,
    });
    let (status, created) = call(&t, &tok, Method::POST, "email-templates", Some(template.clone())).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created, template);
    assert_eq!(call(&t, &tok, Method::POST, "email-templates", Some(template.clone())).await.0, 409);
    let reader = management_token(&t, Some(&["read:email_templates"])).await;
    assert_eq!(call(&t, &reader, Method::GET, "email-templates/reset_email", None).await, (200, template.clone()));
    let patch = json!({"subject": "Bad {% for %}"});
    assert_eq!(call(&t, &reader, Method::PATCH, "email-templates/reset_email", Some(patch.clone())).await.0, 403);
    assert_eq!(call(&t, &tok, Method::PATCH, "email-templates/reset_email", Some(patch)).await.0, 400);
    let (status, body) = call(
        &t,
        &tok,
        Method::PUT,
        "email-templates/welcome_email",
        Some(json!({"template": "welcome_email", "body": "<p>Hi</p>", "enabled": false})),
    )
    .await;
    assert_eq!((status, &body["enabled"]), (200, &json!(false)), "{body}");

    // A user whose name is markup gets it escaped in the body, as Auth0 does.
    let admin = t.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap();
    let mut user = admin.clone();
    user.user.name = Some("<b>Eve</b>".into());
    t.idp.store.update_user(&user).await.unwrap();
    let sent_at = t.idp.now();
    ask_reset(&t, &kw("USER_EMAIL")).await;
    t.flush_mail().await;
    let mails: Vec<Value> = std::fs::read_dir(t.data.join("outbox"))
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(mails.len(), 1);
    let m = &mails[0];
    assert_eq!(m["subject"], format!("Reset for {}", kw("USER_EMAIL")));
    assert_eq!(m["from"], "CMS <cms@example.test>");
    let html = m["html"].as_str().unwrap();
    assert!(html.contains("Dear &lt;b&gt;Eve&lt;/b&gt; of "), "{html}");
    assert!(!html.contains("<b>"), "{html}");
    // urlLifetimeInSeconds is the link's life.
    let ticket = query_param(
        m["body"].as_str().unwrap().split_whitespace().find(|w| w.contains("/lo/reset?ticket=")).unwrap(),
        "ticket",
    )
    .unwrap();
    let stored = t.idp.store.password_ticket(&idp::util::sha256(ticket.as_bytes()), sent_at).await.unwrap().unwrap();
    assert!(stored.expires_at <= t.idp.now() + 600_000 && stored.expires_at >= sent_at + 590_000);
}

/// The messages in the outbox (no provider configured), oldest first.
fn outbox(t: &TestIdp) -> Vec<Value> {
    let Ok(dir) = std::fs::read_dir(t.data.join("outbox")) else { return vec![] };
    let mut files: Vec<PathBuf> =
        dir.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    files.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
}

/// The verification link in a message's text.
fn verification_link(m: &Value) -> String {
    let text = m["body"].as_str().unwrap();
    text.lines()
        .map(str::trim)
        .find(|l| l.contains("/u/email-verification?ticket="))
        .unwrap_or_else(|| panic!("{text}"))
        .to_string()
}

/// Waits (bounded) for a tenant log event of `kind`; returns it.
async fn log_event(t: &TestIdp, tok: &str, kind: &str) -> Value {
    let started = Instant::now();
    loop {
        let (_, logs) = call(t, tok, Method::GET, &format!("logs?q=type:{kind}"), None).await;
        if let Some(e) = logs.as_array().and_then(|l| l.first()) {
            return e.clone();
        }
        assert!(started.elapsed() < Duration::from_secs(20), "no {kind} event");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn sign_up_mails_a_verification_link_that_works_once() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let mut conn = t.idp.store.connection_by_name("dev-users").await.unwrap().unwrap();
    conn.options.insert("disable_signup".into(), json!(false));
    t.idp.store.put_connection(&conn).await.unwrap();
    let signup = json!({"client_id": kw("CMS_CLIENT_ID"), "email": "new.user@example.test", "password": "Signup-Passw0rd!", "connection": "dev-users"});
    let res = reqwest::Client::new().post(t.url("dbconnections/signup")).json(&signup).send().await.unwrap();
    assert_eq!(res.status(), 200);
    t.flush_mail().await;
    let mails = outbox(&t);
    assert_eq!(mails.len(), 1, "{mails:?}");
    assert_eq!(
        (mails[0]["to"].as_str(), mails[0]["subject"].as_str()),
        (Some("new.user@example.test"), Some("Verify your email"))
    );
    let link = verification_link(&mails[0]);
    let stored =
        || async { t.idp.store.user_by_login("dev-users", "new.user@example.test").await.unwrap().unwrap().user };
    assert!(!stored().await.email_verified);

    let b = browser();
    let res = b.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 200, "no result URL: a page");
    assert!(stored().await.email_verified, "the link verified the address");
    assert_eq!(log_event(&t, &tok, "sv").await["user_id"], stored().await.user_id.as_str());

    // Used, forged, expired: an error page, never a redirect.
    let used = b.get(&link).send().await.unwrap();
    assert_eq!((used.status().as_u16(), location(&used)), (400, String::new()));
    let forged = b.get(t.url("u/email-verification?ticket=forged")).send().await.unwrap();
    assert_eq!(forged.status(), 400);
    let expired_token = "expired-ticket-token";
    t.idp
        .store
        .mail()
        .put_email_ticket(&store::mail::EmailTicket {
            ticket_sha256: idp::util::sha256(expired_token.as_bytes()),
            kind: "verify_email".into(),
            user_id: stored().await.user_id,
            expires_at: t.idp.now() - 1,
            options: store::mail::TicketOptions {
                result_url: Some("https://app.example.test/".into()),
                ..Default::default()
            },
        })
        .await
        .unwrap();
    let expired = b.get(t.url(&format!("u/email-verification?ticket={expired_token}"))).send().await.unwrap();
    assert_eq!((expired.status().as_u16(), location(&expired)), (400, String::new()));
    log_event(&t, &tok, "fv").await;

    // A disabled verify_email template: no mail on sign-up; an enabled welcome_email: a welcome.
    let off = json!({"template": "verify_email", "body": "<p>{{ url }}</p>", "enabled": false});
    assert_eq!(call(&t, &tok, Method::POST, "email-templates", Some(off)).await.0, 201);
    let welcome = json!({"template": "welcome_email", "body": "<p>Welcome {{ user.email }}</p>", "subject": "Welcome!", "enabled": true});
    assert_eq!(call(&t, &tok, Method::POST, "email-templates", Some(welcome)).await.0, 201);
    let signup = json!({"client_id": kw("CMS_CLIENT_ID"), "email": "quiet@example.test", "password": "Signup-Passw0rd!", "connection": "dev-users"});
    let res = reqwest::Client::new().post(t.url("dbconnections/signup")).json(&signup).send().await.unwrap();
    assert_eq!(res.status(), 200);
    t.flush_mail().await;
    let mails = outbox(&t);
    assert_eq!(mails.len(), 2, "no second verification mail, one welcome: {mails:?}");
    assert_eq!((mails[1]["subject"].as_str(), mails[1]["to"].as_str()), (Some("Welcome!"), Some("quiet@example.test")));
}

#[tokio::test]
async fn tickets_verify_and_change_passwords_then_redirect() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let user = t.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user;
    let mut unverified = t.idp.store.user(&user.user_id).await.unwrap().unwrap();
    unverified.user.email_verified = false;
    t.idp.store.update_user(&unverified).await.unwrap();

    // Email verification ticket, with a result URL and the address in the redirect.
    let body = json!({"user_id": user.user_id, "result_url": "https://app.example.test/verified", "ttl_sec": 3600});
    let (status, answer) = call(&t, &tok, Method::POST, "tickets/email-verification", Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    let ticket = answer["ticket"].as_str().unwrap();
    assert!(ticket.starts_with(&t.url("u/email-verification?ticket=")), "{ticket}");
    let b = browser();
    let res = b.get(ticket).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.starts_with("https://app.example.test/verified?"), "{to}");
    assert_eq!(query_param(&to, "success").as_deref(), Some("true"));
    assert_eq!(query_param(&to, "email"), Some(kw("USER_EMAIL")));
    assert!(t.idp.store.user(&user.user_id).await.unwrap().unwrap().user.email_verified);
    assert_eq!(b.get(ticket).send().await.unwrap().status(), 400, "one-time");

    // Password-change ticket by email and connection, verifying the address too.
    unverified.user.email_verified = false;
    t.idp.store.update_user(&unverified).await.unwrap();
    let connection = t.idp.store.connection_by_name("dev-users").await.unwrap().unwrap();
    let body = json!({"email": kw("USER_EMAIL"), "connection_id": connection.id, "result_url": "https://app.example.test/changed",
        "mark_email_as_verified": true});
    let (status, answer) = call(&t, &tok, Method::POST, "tickets/password-change", Some(body)).await;
    assert_eq!(status, 201, "{answer}");
    let link = answer["ticket"].as_str().unwrap();
    assert!(link.starts_with(&t.url("lo/reset?ticket=")), "{link}");
    assert_eq!(b.get(link).send().await.unwrap().status(), 200);
    let raw = query_param(link, "ticket").unwrap();
    let res = b
        .post(t.url("lo/reset"))
        .form(&[("ticket", raw.as_str()), ("password", "Ticket-Passw0rd!")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.starts_with("https://app.example.test/changed?success=true"), "{to}");
    assert_eq!(query_param(&to, "email"), None, "includeEmailInRedirect defaults to false here");
    assert!(t.idp.store.user(&user.user_id).await.unwrap().unwrap().user.email_verified);
    let again = b
        .post(t.url("lo/reset"))
        .form(&[("ticket", raw.as_str()), ("password", "Again-Passw0rd!")])
        .send()
        .await
        .unwrap();
    assert_eq!((again.status().as_u16(), location(&again)), (400, String::new()), "used");

    // Bad input and scopes.
    for bad in [
        json!({}),
        json!({"user_id": user.user_id, "email": kw("USER_EMAIL"), "connection_id": connection.id}),
        json!({"user_id": user.user_id, "ttl_sec": 99_999_999}),
        json!({"user_id": user.user_id, "result_url": "javascript:alert(1)"}),
        json!({"user_id": user.user_id, "mark_email_as_verified": "yes"}),
        json!({"user_id": user.user_id, "other": 1}),
    ] {
        let (status, body) = call(&t, &tok, Method::POST, "tickets/password-change", Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let (status, _) =
        call(&t, &tok, Method::POST, "tickets/email-verification", Some(json!({"user_id": "auth0|nobody"}))).await;
    assert_eq!(status, 404);
    let reader = management_token(&t, Some(&["read:users"])).await;
    let (status, _) =
        call(&t, &reader, Method::POST, "tickets/password-change", Some(json!({"user_id": user.user_id}))).await;
    assert_eq!(status, 403);

    // The verification-email job mails the link at once.
    let (status, job) = call(
        &t,
        &tok,
        Method::POST,
        "jobs/verification-email",
        Some(json!({"user_id": user.user_id, "client_id": kw("CMS_CLIENT_ID")})),
    )
    .await;
    assert_eq!((status, job["type"].as_str()), (201, Some("verification_email")), "{job}");
    t.flush_mail().await;
    let mails = outbox(&t);
    let last = mails.last().unwrap();
    assert_eq!(last["to"], kw("USER_EMAIL").as_str());
    assert!(verification_link(last).contains("/u/email-verification?ticket="));
}

/// The password-realm grant for the CMS application on `dev-users`.
async fn realm_grant(t: &TestIdp, email: &str, password: &str) -> (u16, Value) {
    let form = json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm", "client_id": kw("CMS_CLIENT_ID"),
        "client_secret": kw("CMS_CLIENT_SECRET"), "username": email, "password": password,
        "realm": "dev-users", "scope": "openid"});
    json(reqwest::Client::new().post(t.url("oauth/token")).json(&form).send().await.unwrap()).await
}

/// The first line of a delivered message's text part that holds `needle`.
fn link_in(message: &Value, needle: &str) -> String {
    let text = message["text"].as_str().unwrap_or_else(|| panic!("no text part: {message}"));
    text.lines().map(str::trim).find(|l| l.contains(needle)).unwrap_or_else(|| panic!("{text}")).to_string()
}

#[tokio::test]
async fn a_brute_force_block_mails_a_link_that_lifts_it_once() {
    let dir = temp_dir("smtp-blocked");
    let tls = Arc::new(tls_files(&dir));
    let smtp = Smtp::start(&dir, tls.clone(), false);
    let t = start_on(sqlite_store().await, true, |c| {
        mail_config(Some(&tls), None)(c);
        c.brute_force.max_attempts = 3;
    })
    .await;
    let tok = configure(&t, smtp.port).await;
    let (email, password) = (kw("USER_EMAIL"), kw("USER_PASSWORD"));

    // Two wrong passwords: no mail yet. The third blocks, and the mail goes out.
    for _ in 0..2 {
        assert_eq!(realm_grant(&t, &email, "Wrong-Passw0rd!").await.0, 403);
    }
    t.flush_mail().await;
    assert!(smtp.messages().is_empty(), "no block, no mail");
    assert_eq!(realm_grant(&t, &email, "Wrong-Passw0rd!").await.0, 429);
    assert_eq!(realm_grant(&t, &email, &password).await.0, 429, "blocked, right password or not");
    t.flush_mail().await;
    let got = smtp.wait_for(1, Duration::from_secs(20)).await;
    assert_eq!(got.len(), 1, "one mail for one block: {got:?}");
    assert_eq!(got[0]["rcpt_tos"], json!([email]));
    assert_eq!(got[0]["subject"], "Your account has been blocked");
    let link = link_in(&got[0], "/u/unblock?ticket=");

    // Forged: an error page, the block stays.
    let b = browser();
    let forged = b.get(t.url("u/unblock?ticket=forged")).send().await.unwrap();
    assert_eq!((forged.status().as_u16(), location(&forged)), (400, String::new()));
    assert_eq!(realm_grant(&t, &email, &password).await.0, 429);

    // The mailed link lifts the block (`ublkdu`); the right password works at once.
    let res = b.get(&link).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("unblocked"));
    let event = log_event(&t, &tok, "ublkdu").await;
    assert_eq!(
        event["user_id"],
        json!(t.idp.store.user_by_login("dev-users", &email).await.unwrap().unwrap().user.user_id)
    );
    assert_eq!(realm_grant(&t, &email, &password).await.0, 200, "the link lifted the block");

    // Used once; an expired link is refused too.
    let used = b.get(&link).send().await.unwrap();
    assert_eq!((used.status().as_u16(), location(&used)), (400, String::new()));
    let user_id = t.idp.store.user_by_login("dev-users", &email).await.unwrap().unwrap().user.user_id;
    t.idp
        .store
        .mail()
        .put_email_ticket(&store::mail::EmailTicket {
            ticket_sha256: idp::util::sha256(b"expired-unblock"),
            kind: "unblock".into(),
            user_id: user_id.clone(),
            expires_at: t.idp.now() - 1,
            options: Default::default(),
        })
        .await
        .unwrap();
    assert_eq!(b.get(t.url("u/unblock?ticket=expired-unblock")).send().await.unwrap().status(), 400);

    // Disabled template: a new block sends no mail.
    let off = json!({"template": "blocked_account", "body": "<p>{{ url }}</p>", "enabled": false});
    assert_eq!(call(&t, &tok, Method::POST, "email-templates", Some(off)).await.0, 201);
    for _ in 0..3 {
        realm_grant(&t, &email, "Wrong-Passw0rd!").await;
    }
    assert_eq!(realm_grant(&t, &email, &password).await.0, 429);
    t.flush_mail().await;
    assert_eq!(smtp.messages().len(), 1, "no mail with the template disabled");
}

#[tokio::test]
async fn creating_a_user_mails_the_verification_link_as_auth0_decides() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let create = |email: &str, extra: Value| {
        let mut body = json!({"connection": "dev-users", "email": email, "password": "Created-Passw0rd!"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    let mailed = |t: &TestIdp| outbox(t).iter().map(|m| m["to"].as_str().unwrap().to_owned()).collect::<Vec<_>>();
    for (email, extra) in [
        ("asked@example.test", json!({"verify_email": true})),
        ("declined@example.test", json!({"verify_email": false})),
        ("unverified@example.test", json!({})),
        ("verified@example.test", json!({"email_verified": true})),
        ("verified-but-asked@example.test", json!({"email_verified": true, "verify_email": true})),
    ] {
        let (status, body) = call(&t, &tok, Method::POST, "users", Some(create(email, extra))).await;
        assert_eq!(status, 201, "{body}");
    }
    t.flush_mail().await;
    let mut to = mailed(&t);
    to.sort();
    // Auth0: `verify_email` decides when given; otherwise an unverified address gets the mail.
    assert_eq!(to, ["asked@example.test", "unverified@example.test", "verified-but-asked@example.test"]);
    let asked = outbox(&t).into_iter().find(|m| m["to"] == "asked@example.test").unwrap();
    assert_eq!(asked["subject"], "Verify your email");
    let link = verification_link(&asked);
    assert_eq!(browser().get(&link).send().await.unwrap().status(), 200);
    let user = t.idp.store.user_by_login("dev-users", "asked@example.test").await.unwrap().unwrap().user;
    assert!(user.email_verified, "the mailed link verifies the created user");

    // Not a boolean: Auth0's 400, and no user.
    let (status, body) =
        call(&t, &tok, Method::POST, "users", Some(create("bad@example.test", json!({"verify_email": "yes"})))).await;
    assert_eq!((status, body["statusCode"].as_u64()), (400, Some(400)), "{body}");
    assert!(t.idp.store.user_by_login("dev-users", "bad@example.test").await.unwrap().is_none());
}
