//! What the end-to-end tests share: a real `gatehouse idp` child process (auth0-client never
//! links the idp, not even in tests), an auth0-client on an ephemeral port in this process
//! (memory or real Redis, each test its own `SESSION_SCOPE`), a browser-like HTTP client and the
//! login-site steps.

#![allow(dead_code)]

use auth0_client::clock::Clock;
use auth0_client::config::{Config, Env, ServiceConfig};
use auth0_client::{App, AppState};
use serde_json::{Value, json};
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

pub const CALLBACK: &str = "http://localhost:8080/web-login/callback";
pub const API_AUDIENCE: &str = "http://localhost:8080/";
pub const NAMESPACE: &str = "https://cms.example.test/";
pub const REDIS: &str = "127.0.0.1:6379";
const IDP_START_TIMEOUT: Duration = Duration::from_secs(90);

pub fn workspace() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).canonicalize().expect("workspace root")
}

fn example_dir() -> PathBuf {
    workspace().join("examples/cms-tenant")
}

/// A value of `examples/cms-tenant/dev.env`.
pub fn dev_env(name: &str) -> String {
    let text = std::fs::read_to_string(example_dir().join("dev.env")).expect("dev.env");
    for line in text.lines() {
        let line = line.trim();
        if let Some((k, v)) = line.split_once('=')
            && k.trim() == name
        {
            let v = v.trim();
            let v = v.strip_prefix('\'').and_then(|v| v.strip_suffix('\'')).unwrap_or(v);
            let v = v.strip_prefix('"').and_then(|v| v.strip_suffix('"')).unwrap_or(v);
            return v.to_string();
        }
    }
    panic!("{name} missing from dev.env")
}

/// `target/debug/gatehouse` (or under `CARGO_TARGET_DIR`), built on first use when missing.
pub fn gatehouse_bin() -> PathBuf {
    static BUILT: Mutex<bool> = Mutex::new(false);
    let target = std::env::var_os("CARGO_TARGET_DIR").map(PathBuf::from).unwrap_or_else(|| workspace().join("target"));
    let bin = target.join("debug").join("gatehouse");
    let mut built = BUILT.lock().unwrap_or_else(|e| e.into_inner());
    if !bin.exists() && !*built {
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let status = Command::new(cargo)
            .args(["build", "-p", "gatehouse", "--bin", "gatehouse"])
            .current_dir(workspace())
            .status()
            .expect("running cargo build -p gatehouse");
        assert!(status.success(), "cargo build -p gatehouse failed");
        *built = true;
    }
    assert!(bin.exists(), "{} is missing: run `cargo build -p gatehouse`", bin.display());
    bin
}

pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let dir = std::env::temp_dir().join(format!(
            "auth0-client-it-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A unique name for this test's keys.
pub fn unique(tag: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("it-{tag}-{}-{}-{nanos}", std::process::id(), N.fetch_add(1, Ordering::SeqCst))
}

pub fn collect_lines(
    stream: impl Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
    notify: Option<(&'static str, mpsc::Sender<String>)>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some((needle, tx)) = &notify
                && line.contains(needle)
            {
                let _ = tx.send(line.clone());
            }
            sink.lock().unwrap().push(line);
        }
    });
}

/// The example tenant, with `read:connections` added to the Management API grant so tests can
/// learn connection ids (auth0-client's `supportedConnectionsMap` needs them).
fn tenant_file(dir: &Path) -> PathBuf {
    let ex = example_dir();
    let text = std::fs::read_to_string(ex.join("tenant.yaml")).expect("tenant.yaml");
    let scope = "      - create:users_app_metadata\n";
    assert!(text.contains(scope), "the example tenant's grant changed");
    let text = text
        .replace(scope, &format!("{scope}      - read:connections\n"))
        .replace("./actions/", &format!("{}/actions/", ex.display()));
    let path = dir.join("tenant.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A running `gatehouse idp` with the example tenant, killed when dropped.
pub struct Idp {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    /// The issuer without its trailing slash: auth0-client's `auth0Url`.
    pub base: String,
    pub data: TempDir,
}

impl Idp {
    pub fn start() -> Idp {
        let data = TempDir::new("idp");
        let ex = example_dir();
        let mut cmd = Command::new(gatehouse_bin());
        cmd.arg("idp")
            .arg("--tenant")
            .arg(tenant_file(data.path()))
            .arg("--keywords")
            .arg(ex.join("dev.env"))
            .arg("--users")
            .arg(ex.join("users.json"))
            .args(["--users-connection", "dev-users", "--listen", "127.0.0.1:0"])
            .arg("--data")
            .arg(data.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        for (key, _) in std::env::vars_os() {
            if key.to_string_lossy().starts_with("GATEHOUSE_") {
                cmd.env_remove(key);
            }
        }
        let mut child = cmd.spawn().expect("spawning gatehouse idp");
        let output = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = mpsc::channel();
        collect_lines(child.stdout.take().unwrap(), output.clone(), Some(("idp listening on ", tx)));
        collect_lines(child.stderr.take().unwrap(), output.clone(), None);
        let line = rx.recv_timeout(IDP_START_TIMEOUT);
        let mut idp = Idp { child, output, base: String::new(), data };
        match line {
            Ok(line) => {
                let (_, issuer) = line.split_once(", issuer ").expect("issuer in the listening line");
                idp.base = issuer.trim().trim_end_matches('/').to_string();
            }
            Err(e) => panic!("gatehouse idp did not start ({e}):\n{}", idp.output()),
        }
        idp
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}/{}", self.base, path.trim_start_matches('/'))
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Stops the idp (the "idp unreachable" case).
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A Management API token of the M2M application, straight from the idp.
    pub async fn management_token(&self) -> String {
        let host = url::Url::parse(&self.base).unwrap();
        let audience = format!("https://{}:{}/api/v2/", host.host_str().unwrap(), host.port().unwrap());
        let res = reqwest::Client::new()
            .post(self.url("oauth/token"))
            .form(&[
                ("grant_type", "client_credentials"),
                ("client_id", &dev_env("MGMT_CLIENT_ID")),
                ("client_secret", &dev_env("MGMT_CLIENT_SECRET")),
                ("audience", &audience),
            ])
            .send()
            .await
            .unwrap();
        let (status, body) = json(res).await;
        assert_eq!(status, 200, "{body}");
        body["access_token"].as_str().unwrap().to_string()
    }

    /// `GET /api/v2/<path>` on the idp directly.
    pub async fn management_get(&self, path_and_query: &str) -> Value {
        let res = reqwest::Client::new()
            .get(self.url(&format!("api/v2/{path_and_query}")))
            .bearer_auth(self.management_token().await)
            .send()
            .await
            .unwrap();
        let (status, body) = json(res).await;
        assert_eq!(status, 200, "{body}");
        body
    }

    /// Any Management API call on the idp directly, with the M2M application's token.
    pub async fn management_send(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> (u16, Value) {
        let mut req = reqwest::Client::new()
            .request(method, self.url(&format!("api/v2/{path}")))
            .bearer_auth(self.management_token().await);
        if let Some(body) = body {
            req = req.json(&body);
        }
        json(req.send().await.unwrap()).await
    }

    pub async fn connection_id(&self, name: &str) -> String {
        let list = self.management_get(&format!("connections?name={name}")).await;
        list[0]["id"].as_str().unwrap_or_else(|| panic!("connection {name}: {list}")).to_string()
    }
}

impl Drop for Idp {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            eprintln!("--- gatehouse idp output ---\n{}\n---", self.output());
        }
    }
}

/// The config.json of the example tenant: `cms` (website, the login site's client), `api`
/// (token mode, same application), the management client in its current shape.
pub fn config_json(idp: &Idp, dev_users_id: &str) -> Value {
    let client = |scopes: Value, state_required: bool| {
        json!({
            "auth0Url": idp.base,
            "clientId": dev_env("CMS_CLIENT_ID"),
            "clientSecret": dev_env("CMS_CLIENT_SECRET"),
            "redirectUrl": CALLBACK,
            "scopes": scopes,
            "audience": API_AUDIENCE,
            "supportedConnections": ["dev-users", "prod-users"],
            "defaultConnection": "dev-users",
            "sameSite": "Lax",
            "authorizeStateRequired": state_required,
        })
    };
    json!({
        "clients": {
            "cms": client(json!(["offline_access", "profile", "email", "website"]), true),
            "api": client(json!(["offline_access", "profile", "email"]), false),
        },
        "defaultClient": "cms",
        "managementClient": {
            "auth0Url": idp.base,
            "clientId": dev_env("MGMT_CLIENT_ID"),
            "clientSecret": dev_env("MGMT_CLIENT_SECRET"),
            "supportedConnectionsMap": {"dev-users": {"connectionId": dev_users_id}},
            "defaultManagementConnectionName": "dev-users",
        },
        "customClaimsNamespaces": [format!("{NAMESPACE}app_metadata"), format!("{NAMESPACE}user_metadata")],
    })
}

#[derive(Clone)]
pub enum Store {
    Memory,
    /// Real Redis at 127.0.0.1:6379 under a unique `SESSION_SCOPE`.
    Redis,
    /// Redis at this address (a proxy, a closed port).
    RedisAt(String),
}

/// auth0-client on an ephemeral port of this process.
pub struct Service {
    pub base: String,
    pub app: AppState,
    pub clock: Clock,
    pub scope: String,
    stop: Option<tokio::sync::oneshot::Sender<()>>,
}

impl Drop for Service {
    fn drop(&mut self) {
        if let Some(s) = self.stop.take() {
            let _ = s.send(());
        }
    }
}

impl Service {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }
}

pub async fn start_service(store: Store, config: Value, extra_env: &[(&str, &str)]) -> Service {
    auth0_client::install_crypto_provider();
    // The service logs to stdout, past the test harness's capture: errors only.
    auth0_client::logging::init(auth0_client::config::LogLevel::Error);
    let scope = unique("scope");
    let mut vars: HashMap<String, String> = HashMap::new();
    vars.insert("SERVICE_CONFIG_PATH".into(), "/unused".into());
    vars.insert("SERVICE_CONFIG_FILE_NAME".into(), "config".into());
    vars.insert("SESSION_SCOPE".into(), scope.clone());
    vars.insert("ORIGINAL_PROTOCOL_HEADER".into(), "x-forwarded-proto".into());
    match &store {
        Store::Memory => {}
        Store::Redis => {
            vars.insert("REDIS_HOSTS".into(), REDIS.into());
        }
        Store::RedisAt(addr) => {
            vars.insert("REDIS_HOSTS".into(), addr.clone());
        }
    }
    for (k, v) in extra_env {
        vars.insert(k.to_string(), v.to_string());
    }
    let env = Env::parse(&|k: &str| vars.get(k).cloned()).expect("test environment");
    let (service, warnings) = ServiceConfig::parse(&config.to_string()).expect("test config");
    let clock = Clock::default();
    let app = App::new(Config { env, service, warnings }, clock.clone()).expect("building the app");
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    tokio::spawn(auth0_client::serve(
        app.clone(),
        listener,
        async move {
            let _ = rx.await;
        },
        Duration::ZERO,
    ));
    Service { base, app, clock, scope, stop: Some(tx) }
}

/// An idp and an auth0-client in front of it, configured by [`config_json`].
pub async fn stack(store: Store) -> (Idp, Service) {
    let idp = tokio::task::spawn_blocking(Idp::start).await.unwrap();
    let id = idp.connection_id("dev-users").await;
    let svc = start_service(store, config_json(&idp, &id), &[]).await;
    (idp, svc)
}

/// A browser: keeps cookies, never follows redirects.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder().cookie_store(true).redirect(reqwest::redirect::Policy::none()).build().unwrap()
}

pub fn location(res: &reqwest::Response) -> String {
    res.headers().get("location").map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

pub fn query_param(u: &str, name: &str) -> Option<String> {
    let u = url::Url::parse(u).ok()?;
    u.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&amp;", "&"))
}

pub async fn json(res: reqwest::Response) -> (u16, Value) {
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON ({status}): {text}")))
}

/// The sid cookie a response sets.
pub fn sid_cookie(res: &reqwest::Response) -> Option<String> {
    res.headers().get_all("set-cookie").iter().find_map(|v| {
        let v = v.to_str().ok()?;
        let rest = v.strip_prefix("sid=")?;
        let value = rest.split(';').next()?;
        (!value.is_empty()).then(|| value.to_string())
    })
}

/// From the login site's `/authorize` call to the idp's redirect to the callback: follows the
/// idp's redirects, fills its login form. Returns the callback URL (with code and state).
pub async fn login_at_idp(
    idp: &Idp,
    b: &reqwest::Client,
    auth0_authorize: &str,
    email: &str,
    password: &str,
) -> String {
    let res = b.get(auth0_authorize).send().await.unwrap();
    assert_eq!(res.status(), 302, "idp /authorize: {}", res.text().await.unwrap_or_default());
    let mut page_url = location(&res);
    if page_url.starts_with('/') {
        page_url = idp.url(&page_url);
    }
    assert!(page_url.contains("/u/login"), "{page_url}");
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("state", hidden(&html, "state").expect("state field")),
        ("csrf", hidden(&html, "csrf").expect("csrf field")),
        ("connection", "dev-users".to_string()),
        ("username", email.to_string()),
        ("password", password.to_string()),
    ];
    let res = b.post(&page_url).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 302, "login form: {}", res.text().await.unwrap_or_default());
    let callback = location(&res);
    assert!(callback.starts_with(CALLBACK), "{callback}");
    callback
}

/// The whole login-site flow for the `cms` client: returns the `sid` cookie value.
pub async fn website_login(idp: &Idp, svc: &Service, email: &str, password: &str) -> String {
    let b = browser();
    let state = unique("st");
    let res = b
        .get(svc.url(&format!("/authorize?redirect=/backoffice&state={state}")))
        .header("client-type", "cms")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let callback = login_at_idp(idp, &b, &location(&res), email, password).await;
    assert_eq!(query_param(&callback, "state").as_deref(), Some(state.as_str()));
    let code = query_param(&callback, "code").unwrap();
    let res = reqwest::Client::new()
        .post(svc.url(&format!("/oauth/token?code={code}&state={state}")))
        .header("client-type", "cms")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "{:?}", res.headers());
    sid_cookie(&res).expect("sid cookie")
}

pub async fn get_with_sid(svc: &Service, path: &str, sid: &str) -> reqwest::Response {
    reqwest::Client::new().get(svc.url(path)).header("cookie", format!("sid={sid}")).send().await.unwrap()
}

/// Polls `check` up to `attempts` times, `pause` apart; the test fails with `what` otherwise.
pub async fn eventually<F, Fut>(what: &str, attempts: u32, pause: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    for _ in 0..attempts {
        if check().await {
            return;
        }
        tokio::time::sleep(pause).await;
    }
    panic!("{what}: not after {attempts} attempts");
}
