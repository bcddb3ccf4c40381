//! A real browser logs in: Debian's headless chromium, driven over W3C WebDriver by
//! chromedriver, against the real `gatehouse idp` binary. HTTP-level tests cannot show that
//! the login page works in a browser (the form, its hidden fields, the CSRF cookie scoped to
//! `/u/`, SameSite rules on the redirect back to the app); this does, end to end, and leaves
//! screenshots of the login page and its error state for a human to look at.
//!
//! The WebDriver client is the handful of W3C commands the tests use, over reqwest.

use crate::support::{CALLBACK, IdpProcess, TempDir, collect_lines, dev_env, free_port, query_param, require_file};
use base64::Engine;
use base64::engine::general_purpose::{STANDARD, URL_SAFE_NO_PAD};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";
/// The W3C key under which an element reference is returned.
const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
/// chromedriver answers /status within a second or two of starting; bound the polling at 10 s.
const STATUS_ATTEMPTS: u32 = 200;
const STATUS_INTERVAL: Duration = Duration::from_millis(50);
/// Bounds every WebDriver command; a new session (starting chromium) is the slowest.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(60);

/// A headless chromium session behind its own chromedriver. Dropping it ends the session and
/// the driver, also when a test panics.
pub(crate) struct Browser {
    http: reqwest::Client,
    port: u16,
    session: String,
    driver: Child,
    driver_output: Arc<Mutex<Vec<String>>>,
    _profile: TempDir,
}

impl Browser {
    pub(crate) async fn launch() -> Self {
        require_file(Path::new(CHROMIUM), "chromium (Debian package chromium)");
        require_file(Path::new(CHROMEDRIVER), "chromedriver (Debian package chromium-driver)");
        let port = free_port();
        let mut driver = Command::new(CHROMEDRIVER)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawning chromedriver");
        let driver_output = Arc::new(Mutex::new(Vec::new()));
        collect_lines(driver.stdout.take().unwrap(), driver_output.clone(), None);
        collect_lines(driver.stderr.take().unwrap(), driver_output.clone(), None);
        let http = reqwest::Client::builder().no_proxy().timeout(COMMAND_TIMEOUT).build().unwrap();
        let profile = TempDir::new("chromium-profile");
        let mut browser = Browser { http, port, session: String::new(), driver, driver_output, _profile: profile };
        browser.wait_until_ready().await;
        browser.session = browser.new_session().await;
        browser
    }

    /// Polls `GET /status` a bounded number of times; a driver that exits fails at once.
    async fn wait_until_ready(&mut self) {
        for _ in 0..STATUS_ATTEMPTS {
            if let Some(status) = self.driver.try_wait().unwrap() {
                panic!("chromedriver exited ({status}):\n{}", self.driver_output.lock().unwrap().join("\n"));
            }
            if let Ok(res) = self.http.get(self.url("status")).send().await
                && let Ok(body) = res.json::<Value>().await
                && body["value"]["ready"] == true
            {
                return;
            }
            tokio::time::sleep(STATUS_INTERVAL).await;
        }
        panic!("chromedriver on port {} never reported ready", self.port);
    }

    async fn new_session(&self) -> String {
        let args = [
            "--headless=new",
            "--no-sandbox",
            "--disable-gpu",
            "--disable-dev-shm-usage",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--no-first-run",
            "--window-size=1024,768",
        ]
        .map(String::from)
        .into_iter()
        .chain([format!("--user-data-dir={}", self._profile.path().display())])
        .collect::<Vec<_>>();
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": CHROMIUM, "args": args},
            // Element lookups wait (bounded) for the page instead of the test sleeping.
            "timeouts": {"implicit": 5000, "pageLoad": 30000, "script": 10000},
        }}});
        let value = self.command(reqwest::Method::POST, "session", Some(capabilities)).await;
        value["sessionId"].as_str().expect("a session id").to_string()
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{path}", self.port)
    }

    /// One WebDriver command; returns its `value`, or fails the test with the driver's error.
    async fn command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method.clone(), self.url(path));
        if let Some(body) = body {
            req = req.json(&body);
        }
        let res = req.send().await.unwrap_or_else(|e| panic!("WebDriver {method} /{path}: {e}"));
        let status = res.status();
        let body: Value = res.json().await.unwrap_or_else(|e| panic!("WebDriver {method} /{path}: {e}"));
        assert!(status.is_success(), "WebDriver {method} /{path} failed ({status}): {}", body["value"]);
        body["value"].clone()
    }

    pub(crate) async fn session_command(&self, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        self.command(method, &format!("session/{}/{path}", self.session), body).await
    }

    pub(crate) async fn goto(&self, url: &str) {
        self.session_command(reqwest::Method::POST, "url", Some(json!({"url": url}))).await;
    }

    pub(crate) async fn current_url(&self) -> String {
        let value = self.session_command(reqwest::Method::GET, "url", None).await;
        value.as_str().expect("a URL").to_string()
    }

    pub(crate) async fn title(&self) -> String {
        self.session_command(reqwest::Method::GET, "title", None).await.as_str().unwrap_or_default().to_string()
    }

    pub(crate) async fn find(&self, css: &str) -> String {
        let query = json!({"using": "css selector", "value": css});
        let value = self.session_command(reqwest::Method::POST, "element", Some(query)).await;
        value[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("no element {css}")).to_string()
    }

    pub(crate) async fn text(&self, css: &str) -> String {
        let element = self.find(css).await;
        let value = self.session_command(reqwest::Method::GET, &format!("element/{element}/text"), None).await;
        value.as_str().unwrap_or_default().to_string()
    }

    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let element = self.find(css).await;
        let keys = json!({"text": text});
        self.session_command(reqwest::Method::POST, &format!("element/{element}/value"), Some(keys)).await;
    }

    pub(crate) async fn click(&self, css: &str) {
        let element = self.find(css).await;
        self.session_command(reqwest::Method::POST, &format!("element/{element}/click"), Some(json!({}))).await;
    }

    pub(crate) async fn screenshot(&self, path: &Path) {
        let value = self.session_command(reqwest::Method::GET, "screenshot", None).await;
        let png = STANDARD.decode(value.as_str().expect("base64 PNG")).expect("valid base64");
        std::fs::write(path, png).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        println!("screenshot: {}", path.display());
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        if !self.session.is_empty() {
            delete_session_blocking(self.port, &self.session);
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}

/// `DELETE /session/{id}` from `Drop`, which cannot await: on a thread with its own runtime and
/// client (the test's runtime is the one blocked here). Ending the session is what makes
/// chromedriver close chromium; killing chromedriver alone can orphan the browser.
fn delete_session_blocking(port: u16, session: &str) {
    let url = format!("http://127.0.0.1:{port}/session/{session}");
    let deleting = std::thread::spawn(move || {
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        runtime.block_on(async {
            let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build().unwrap();
            let _ = http.delete(url).send().await;
        });
    });
    let _ = deleting.join();
}

/// Where screenshots go: `$GATEHOUSE_TEST_OUTPUT`, else `target/test-output/browser/`.
pub(crate) fn output_dir() -> PathBuf {
    let dir = match std::env::var_os("GATEHOUSE_TEST_OUTPUT") {
        Some(dir) => PathBuf::from(dir),
        None => crate::support::workspace().join("target/test-output/browser"),
    };
    std::fs::create_dir_all(&dir).unwrap_or_else(|e| panic!("creating {}: {e}", dir.display()));
    dir
}

/// What the CMS sends the browser to when a user clicks "log in".
fn authorize_url(idp: &IdpProcess, state: &str) -> String {
    let mut url = url::Url::parse(&idp.url("authorize")).unwrap();
    url.query_pairs_mut()
        .append_pair("client_id", &dev_env("CMS_CLIENT_ID"))
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", CALLBACK)
        .append_pair("scope", "openid profile email")
        .append_pair("state", state);
    url.to_string()
}

/// The universal-login look: its title, heading, and the application being logged into.
async fn assert_login_page(browser: &Browser) {
    let here = browser.current_url().await;
    assert!(here.contains("/u/login?state="), "not the login page: {here}");
    assert_eq!(browser.title().await, "Log in");
    assert_eq!(browser.text("h1").await, "Log in");
    let subtitle = browser.text("main p").await;
    assert!(subtitle.contains("CMS"), "the page should name the application: {subtitle:?}");
}

/// Navigations after a click (a form post and its redirects) finish well within this.
const NAVIGATION_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// Polls the browser's URL until `accept` holds (a click returns before the navigation it
/// starts has finished); fails naming `what` and where the browser is.
pub(crate) async fn wait_for_url(browser: &Browser, what: &str, accept: impl Fn(&str) -> bool) -> String {
    let deadline = std::time::Instant::now() + NAVIGATION_TIMEOUT;
    loop {
        let here = browser.current_url().await;
        if accept(&here) {
            return here;
        }
        assert!(std::time::Instant::now() < deadline, "never reached {what}; still at {here}");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
}

pub(crate) async fn submit_login(browser: &Browser, email: &str, password: &str) {
    browser.type_into("#username", email).await;
    browser.type_into("#password", password).await;
    browser.click("button[type=submit]").await;
}

/// The code exchange the CMS backend would make (client_secret_post).
async fn exchange_code(idp: &IdpProcess, code: &str) -> Value {
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", &dev_env("CMS_CLIENT_ID")),
        ("client_secret", &dev_env("CMS_CLIENT_SECRET")),
        ("code", code),
        ("redirect_uri", CALLBACK),
    ];
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let res = http.post(idp.url("oauth/token")).form(&form).send().await.expect("token request");
    let status = res.status();
    let body: Value = res.json().await.expect("a JSON token response");
    assert_eq!(status, 200, "token exchange failed: {body}");
    body
}

/// The claims of a JWT, unverified: the SDK test verifies signatures; here we only check whom
/// the token is about.
fn jwt_claims(jwt: &str) -> Value {
    let payload = jwt.split('.').nth(1).expect("a JWT");
    serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).expect("base64url")).expect("JSON claims")
}

#[tokio::test]
async fn browser_login_lands_on_the_callback_with_a_code() {
    // The browser first: a machine without chromium fails before anything else starts.
    let browser = Browser::launch().await;
    let idp = IdpProcess::start(false);
    let state = "browser-state-7Qx";
    browser.goto(&authorize_url(&idp, state)).await;
    assert_login_page(&browser).await;
    browser.screenshot(&output_dir().join("login-page.png")).await;

    submit_login(&browser, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    // Nothing serves the callback, so chromium shows its connection-error page, but it keeps
    // the URL it was redirected to, which is all an application's callback would read.
    let landed = wait_for_url(&browser, "the callback", |u| u.starts_with(&format!("{CALLBACK}?"))).await;
    assert_eq!(query_param(&landed, "state").as_deref(), Some(state), "state must come back unchanged");
    let code = query_param(&landed, "code").expect("an authorization code in the callback URL");

    let tokens = exchange_code(&idp, &code).await;
    let id_token = tokens["id_token"].as_str().expect("an ID token for scope openid");
    let claims = jwt_claims(id_token);
    assert_eq!(claims["email"], dev_env("ADMIN_EMAIL").as_str(), "{claims}");
    assert_eq!(claims["iss"], idp.issuer.as_str(), "{claims}");
}

#[tokio::test]
async fn browser_wrong_password_shows_the_error() {
    let browser = Browser::launch().await;
    let idp = IdpProcess::start(false);
    browser.goto(&authorize_url(&idp, "browser-state-Wp1")).await;
    assert_login_page(&browser).await;

    submit_login(&browser, &dev_env("ADMIN_EMAIL"), "not-the-password").await;
    assert_eq!(browser.text("[role=alert]").await, "Wrong email or password.");
    let here = browser.current_url().await;
    assert!(here.contains("/u/login"), "a failed login stays on the login page: {here}");
    assert_eq!(query_param(&here, "code"), None);
    browser.screenshot(&output_dir().join("login-error.png")).await;
}
