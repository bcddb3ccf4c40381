//! Starting an idp for a test, and the HTTP steps a browser or client takes against it.

use idp::{AppState, Config, Idp, Limits, Listener};
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use store::{SqlStore, Store};
use tenant::Keywords;
use tokio::sync::oneshot;

pub const PG_URL: &str = "postgres://postgres@127.0.0.1:5432/test";

pub fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cms-tenant")
}

pub fn keywords() -> Keywords {
    Keywords::from_env_file(example_dir().join("dev.env")).expect("dev.env")
}

pub fn kw(name: &str) -> String {
    keywords().get(name).unwrap_or_else(|| panic!("{name} missing from dev.env"))
}

pub fn temp_dir(tag: &str) -> PathBuf {
    static N: AtomicU32 = AtomicU32::new(0);
    let dir = std::env::temp_dir().join(format!(
        "gatehouse-it-{tag}-{}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    ));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// A fresh PostgreSQL schema for one test; a missing server fails the test.
pub async fn pg_store(tag: &str) -> Arc<SqlStore> {
    pg_store_in(&pg_schema(tag)).await
}

pub fn pg_schema(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("it_{tag}_{}_{}_{nanos}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

pub async fn pg_store_in(schema: &str) -> Arc<SqlStore> {
    Arc::new(
        SqlStore::connect_in_schema(PG_URL, schema)
            .await
            .expect("PostgreSQL at 127.0.0.1:5432 (database test) is required"),
    )
}

pub async fn sqlite_store() -> Arc<SqlStore> {
    Arc::new(SqlStore::connect("sqlite::memory:").await.unwrap())
}

pub struct TestIdp {
    pub base: String,
    pub idp: AppState,
    pub data: PathBuf,
    stop: Option<oneshot::Sender<()>>,
}

impl Drop for TestIdp {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl TestIdp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.base, path.trim_start_matches('/'))
    }

    /// Waits (bounded) until the mail queue has sent everything due: a request only queues
    /// its mail, the worker writes it to the outbox (or SMTP) a moment later.
    pub async fn flush_mail(&self) {
        assert!(self.idp.flush_mail(std::time::Duration::from_secs(20)).await, "queued mail still unsent after 20 s");
    }
}

/// An idp on the given store, provisioned with the example tenant and users. `tweak` adjusts
/// the configuration (short code lifetimes and the like).
pub async fn start_on(store: Arc<dyn Store>, provision: bool, tweak: impl FnOnce(&mut Config)) -> TestIdp {
    start_serving(store, provision, tweak, Listener::Plain, Limits::default()).await
}

/// [`start_on`], served as `mode` says (the base URL is `https://localhost:PORT/` over TLS)
/// with the given connection limits.
pub async fn start_serving(
    store: Arc<dyn Store>,
    provision: bool,
    tweak: impl FnOnce(&mut Config),
    mode: Listener,
    limits: Limits,
) -> TestIdp {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let base = match mode {
        Listener::Plain => format!("http://127.0.0.1:{port}/"),
        Listener::Tls { .. } => format!("https://localhost:{port}/"),
    };
    let data = temp_dir("idp");
    let mut config = Config::new(url::Url::parse(&base).unwrap(), data.clone());
    config.bcrypt_cost = 4; // tests measure behaviour, not hashing cost
    tweak(&mut config);
    let idp = Idp::new(config, store, Arc::new(idp::mail::Outbox::new(data.join("outbox")))).await.unwrap();
    if provision {
        let mut kw = keywords();
        kw.insert("AUTH0_DOMAIN", idp.config.domain());
        let file = tenant::load_tenant(example_dir().join("tenant.yaml"), &kw).unwrap();
        idp::provision::apply_tenant(&idp, &file).await.unwrap();
        let users = tenant::load_users(example_dir().join("users.json"), &kw).unwrap();
        let report = idp::provision::import_users(&idp, "dev-users", &users).await.unwrap();
        assert!(report.errors.is_empty(), "{:?}", report.errors);
    }
    let (tx, rx) = oneshot::channel::<()>();
    let router = idp.router();
    tokio::spawn(idp::serve(router, listener, mode, limits, async move {
        let _ = rx.await;
        idp::GRACE
    }));
    TestIdp { base, idp, data, stop: Some(tx) }
}

pub async fn start() -> TestIdp {
    start_on(sqlite_store().await, true, |_| {}).await
}

/// A browser: keeps cookies, never follows redirects (tests look at each one).
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(url).ok()?;
    u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// The value of a hidden input in a page.
pub fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&amp;", "&"))
}

pub const CALLBACK: &str = "http://localhost:8080/web-login/callback";
pub const VERIFIER: &str = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
pub const CHALLENGE: &str = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"; // S256 of VERIFIER (RFC 7636)

pub fn authorize_url(t: &TestIdp, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&t.url("authorize")).unwrap();
    u.query_pairs_mut()
        .append_pair("client_id", &kw("CMS_CLIENT_ID"))
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "openid profile email offline_access")
        .append_pair("state", "st-123")
        .append_pair("nonce", "n-456")
        .append_pair("code_challenge", CHALLENGE)
        .append_pair("code_challenge_method", "S256");
    for (k, v) in extra {
        u.query_pairs_mut().append_pair(k, v);
    }
    u.to_string()
}

/// Runs /authorize → login page → form post; returns the final response (the redirect to the
/// callback on success, the re-rendered page on failure).
pub async fn login(
    t: &TestIdp,
    b: &reqwest::Client,
    authorize: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let res = b.get(authorize).send().await.unwrap();
    sign_in(t, b, res, email, password).await
}

/// Given /authorize's answer (the redirect to the login page), fills in and posts the form.
pub async fn sign_in(
    t: &TestIdp,
    b: &reqwest::Client,
    res: reqwest::Response,
    email: &str,
    password: &str,
) -> reqwest::Response {
    assert_eq!(res.status(), 302, "authorize should redirect to the login page");
    let page_url = t.url(&location(&res));
    assert!(page_url.contains("/u/login?state="), "{page_url}");
    let page = b.get(&page_url).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let html = page.text().await.unwrap();
    let form = [
        ("state", hidden(&html, "state").expect("state field")),
        ("csrf", hidden(&html, "csrf").expect("csrf field")),
        ("connection", "dev-users".to_string()),
        ("username", email.to_string()),
        ("password", password.to_string()),
    ];
    b.post(&page_url).form(&form).send().await.unwrap()
}

pub async fn exchange_code(t: &TestIdp, code: &str, verifier: &str) -> reqwest::Response {
    reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("code", code),
            ("redirect_uri", CALLBACK),
            ("code_verifier", verifier),
        ])
        .send()
        .await
        .unwrap()
}

/// Decodes a JWT's claims without verifying (the tests verify through the idp's JWKS elsewhere).
pub fn claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).unwrap();
    let bytes = idp::util::b64url_decode(payload).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

pub async fn json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

/// A Management API token for the guide's M2M application, granted `scopes` (all of the
/// Management API's when `None`).
pub async fn management_token(t: &TestIdp, scopes: Option<&[&str]>) -> String {
    let audience = t.idp.config.management_audience();
    let mut grant = t.idp.store.client_grant_for(&kw("MGMT_CLIENT_ID"), &audience).await.unwrap().unwrap();
    grant.scope = match scopes {
        Some(s) => s.iter().map(|x| x.to_string()).collect(),
        None => idp::provision::MANAGEMENT_SCOPES.iter().map(|x| x.to_string()).collect(),
    };
    t.idp.store.put_client_grant(&grant).await.unwrap();
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .json(&serde_json::json!({"grant_type": "client_credentials", "client_id": kw("MGMT_CLIENT_ID"), "client_secret": kw("MGMT_CLIENT_SECRET"), "audience": audience}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    body["access_token"].as_str().unwrap().to_string()
}

/// A Management API call on `t`; returns the status and the JSON body (`null` when empty).
pub async fn call(t: &TestIdp, token: &str, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
    let mut req = reqwest::Client::new().request(method, t.url(&format!("api/v2/{path}"))).bearer_auth(token);
    if let Some(b) = body {
        req = req.json(&b);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (
        status,
        if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or_else(|_| panic!("{status}: {text}"))
        },
    )
}

/// POSTs `body` with `Transfer-Encoding: chunked` and no `Content-Length` (in 8 KB chunks) over
/// a raw HTTP/1.1 connection, as reqwest without its `stream` feature cannot; returns the
/// status and the body of the answer.
pub async fn post_chunked(t: &TestIdp, path: &str, headers: &[(&str, &str)], body: &[u8]) -> (u16, String) {
    let url = url::Url::parse(&t.url(path)).unwrap();
    let host = format!("{}:{}", url.host_str().unwrap(), url.port().unwrap());
    let mut request =
        format!("POST {} HTTP/1.1\r\nHost: {host}\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n", url.path());
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str("\r\n");
    let mut wire = request.into_bytes();
    for chunk in body.chunks(8 * 1024) {
        wire.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        wire.extend_from_slice(chunk);
        wire.extend_from_slice(b"\r\n");
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    send_raw(t, &wire).await
}

/// Writes `wire` to the idp over a new connection, as it is, and reads until the idp closes it;
/// returns the status and the (de-chunked) body of the answer.
pub async fn send_raw(t: &TestIdp, wire: &[u8]) -> (u16, String) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let url = url::Url::parse(&t.base).unwrap();
    let mut stream = tokio::net::TcpStream::connect((url.host_str().unwrap(), url.port().unwrap())).await.unwrap();
    // The server may answer and close before reading everything: a failed write is fine.
    let _ = stream.write_all(wire).await;
    let mut answer = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => answer.extend_from_slice(&buf[..n]),
        }
    }
    let answer = String::from_utf8(answer).unwrap();
    let (head, rest) = answer.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP answer: {answer:?}"));
    let status = head.split(' ').nth(1).and_then(|s| s.parse().ok()).unwrap_or_else(|| panic!("{head}"));
    let chunked = head.lines().any(|l| l.eq_ignore_ascii_case("transfer-encoding: chunked"));
    (status, if chunked { dechunk(rest) } else { rest.to_string() })
}

fn dechunk(mut rest: &str) -> String {
    let mut out = String::new();
    while let Some((size, tail)) = rest.split_once("\r\n") {
        let size = usize::from_str_radix(size.trim(), 16).unwrap();
        if size == 0 {
            break;
        }
        out.push_str(&tail[..size]);
        rest = &tail[size + 2..];
    }
    out
}
