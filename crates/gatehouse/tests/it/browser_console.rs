//! The guide in a real browser, through the admin console: `gatehouse idp` starts with an empty
//! tenant, `gatehouse console add-admin` makes its administrator (generated password), and
//! headless chromium follows the guide's steps 1 to 6 and 8 by the words on the screen only
//! (links, buttons and labels as the Auth0 Dashboard names them; no test ids), then a user
//! of the new database signs in to the new CMS application and its ID token carries the
//! `groups` the console gave it, through the Action the console deployed; then the same user
//! signs in to the demo CMS (the crate `gatehouse up` serves, with auth0-client configured from
//! what the console showed, as guide step 7 says) and sees the `admin` group. Every page gets a
//! screenshot (`target/test-output/browser/console-*.png`), at 1,280 and 800 px, and an
//! axe-core check for serious or critical accessibility violations.

use crate::browser::{Browser, output_dir, wait_for_url};
use crate::support::{TempDir, free_port, gatehouse_command, query_param, require_file, spawn_collecting, workspace};
use base64::Engine;
use demo_cms::Origins;
use demo_cms::setup::Auth0ClientSetup;
use serde_json::{Value, json};
use std::path::Path;
use std::process::Child;
use std::time::Duration;

const ELEMENT_KEY: &str = "element-6066-11e4-a52e-4f735466cecf";
const NAMESPACE: &str = "https://cms.example.test/";
const USER: &str = "first.user@cms.example.test";
const USER_PASSWORD: &str = "First-Passw0rd!";

/// `gatehouse idp` with no tenant file: an empty tenant, as a new Auth0 tenant is.
struct EmptyIdp {
    child: Child,
    issuer: String,
    _data: TempDir,
}

impl Drop for EmptyIdp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl EmptyIdp {
    fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path.trim_start_matches('/'))
    }
}

/// Makes the administrator with the command line and returns (email, generated password).
fn add_admin(data: &Path) -> (String, String) {
    let email = "ops@console.example.test";
    let out = gatehouse_command()
        .args(["console", "add-admin", email, "--data"])
        .arg(data)
        .output()
        .expect("running gatehouse console add-admin");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "add-admin failed: {stdout}{}", String::from_utf8_lossy(&out.stderr));
    let password = stdout
        .lines()
        .find_map(|l| l.strip_prefix("password: "))
        .unwrap_or_else(|| panic!("no generated password printed: {stdout}"))
        .trim()
        .to_string();
    (email.to_string(), password)
}

/// The demo CMS and its login site in front of auth0-client, as `gatehouse up` wires them, but
/// configured from what the console showed and reaching the idp process over HTTP; it stops
/// when the returned guard is dropped, also when the test fails.
async fn serve_demo_cms(setup: &Auth0ClientSetup, port: u16) -> AbortOnDrop {
    let config = setup.config().expect("auth0-client accepts the configuration");
    auth0_client::install_crypto_provider();
    let app = auth0_client::App::trusting(config, auth0_client::clock::Clock::default(), None)
        .unwrap_or_else(|e| panic!("starting auth0-client: {e}"));
    // Requests for the idp's origin never reach this listener (the idp has its own port).
    let router = demo_cms::router(auth0_client::router(app), axum::Router::new(), setup.origins.clone());
    let listener = tokio::net::TcpListener::bind(("127.0.0.1", port)).await.expect("the CMS port");
    AbortOnDrop(tokio::spawn(async move {
        axum::serve(listener, router).await.expect("serving the demo CMS");
    }))
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn start_empty_idp(data: TempDir) -> EmptyIdp {
    let mut cmd = gatehouse_command();
    cmd.args(["idp", "--listen", "127.0.0.1:0", "--data"]).arg(data.path());
    let (child, output, rx) = spawn_collecting(&mut cmd, "idp listening on ");
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .unwrap_or_else(|e| panic!("gatehouse idp did not start ({e}):\n{}", output.lock().unwrap().join("\n")));
    let issuer = line.split_once(", issuer ").expect("the issuer").1.trim().to_string();
    EmptyIdp { child, issuer, _data: data }
}

/// The visible-words driver: every element is found by its text or its label's.
struct Guide<'a> {
    b: &'a Browser,
    shots: std::path::PathBuf,
    axe: String,
    violations: Vec<String>,
    n: u32,
}

fn xpath_literal(s: &str) -> String {
    assert!(!s.contains('\''), "no quotes in the words looked up: {s}");
    format!("'{s}'")
}

impl Guide<'_> {
    async fn find(&self, xpath: &str) -> String {
        let query = json!({"using": "xpath", "value": xpath});
        let value = self.b.session_command(reqwest::Method::POST, "element", Some(query)).await;
        value[ELEMENT_KEY].as_str().unwrap_or_else(|| panic!("nothing at {xpath}")).to_string()
    }

    async fn click_el(&self, el: &str) {
        self.b.session_command(reqwest::Method::POST, &format!("element/{el}/click"), Some(json!({}))).await;
    }

    /// Follows a link and waits until the browser is there.
    async fn follow(&self, el: &str) {
        let href = self.b.session_command(reqwest::Method::GET, &format!("element/{el}/property/href"), None).await;
        let href = href.as_str().expect("a link").to_string();
        self.script("window.__leaving = true; return true;", true).await;
        self.click_el(el).await;
        wait_for_url(self.b, &href, |u| u == href).await;
        self.new_document().await;
    }

    async fn link(&self, text: &str) {
        let el = self.find(&format!("//a[normalize-space()={}]", xpath_literal(text))).await;
        self.follow(&el).await;
    }

    /// The menu's link under a section heading (`Applications` is both a section and a page).
    async fn menu(&self, section: &str, item: &str) {
        let xpath = format!(
            "//nav[@aria-label='Console']//li[span[normalize-space()={}]]//a[normalize-space()={}]",
            xpath_literal(section),
            xpath_literal(item)
        );
        let el = self.find(&xpath).await;
        self.follow(&el).await;
    }

    /// A tab of the page (the menu may have a link of the same name).
    async fn tab(&self, text: &str) {
        let el = self.find(&format!("//nav[@class='tabs']//a[normalize-space()={}]", xpath_literal(text))).await;
        self.follow(&el).await;
    }

    /// Clicks a button that posts a form, and waits for the page the post leads to (the
    /// click returns before it loads; the old document carries a mark the new one lacks).
    async fn button(&self, text: &str) {
        let el = self.find(&format!("//button[normalize-space()={}]", xpath_literal(text))).await;
        self.submit(&el, false).await;
    }

    async fn submit(&self, el: &str, confirm: bool) {
        self.script("window.__leaving = true; return true;", true).await;
        self.click_el(el).await;
        if confirm {
            self.b.session_command(reqwest::Method::POST, "alert/accept", Some(json!({}))).await;
        }
        self.new_document().await;
    }

    async fn new_document(&self) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let ready = "return window.__leaving !== true && document.readyState === 'complete';";
            if self.script(ready, true).await == true {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "the post never led to a new page");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Clicks a button that stays on the page (Reveal, Select all, a refused JSON editor).
    async fn press(&self, el: &str) {
        self.click_el(el).await;
    }

    /// The control a `<label>` names, within `scope` (an XPath prefix, `` for the page).
    async fn field_in(&self, scope: &str, label: &str) -> String {
        let label_el = self.find(&format!("{scope}//label[normalize-space()={}]", xpath_literal(label))).await;
        let for_id =
            self.b.session_command(reqwest::Method::GET, &format!("element/{label_el}/attribute/for"), None).await;
        let id = for_id.as_str().unwrap_or_else(|| panic!("label {label} names no control")).to_string();
        self.find(&format!("//*[@id={}]", xpath_literal(&id))).await
    }

    async fn fill(&self, label: &str, text: &str) {
        let el = self.field_in("", label).await;
        self.b.session_command(reqwest::Method::POST, &format!("element/{el}/clear"), Some(json!({}))).await;
        self.b
            .session_command(reqwest::Method::POST, &format!("element/{el}/value"), Some(json!({"text": text})))
            .await;
    }

    async fn check(&self, scope: &str, label: &str, on: bool) {
        let el = self.field_in(scope, label).await;
        let selected = self.b.session_command(reqwest::Method::GET, &format!("element/{el}/selected"), None).await;
        if selected.as_bool() != Some(on) {
            self.click_el(&el).await;
        }
    }

    async fn value_of(&self, label: &str) -> String {
        let el = self.field_in("", label).await;
        let v = self.b.session_command(reqwest::Method::GET, &format!("element/{el}/property/value"), None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    async fn select(&self, label: &str, option: &str) {
        let el = self.field_in("", label).await;
        let id = self.b.session_command(reqwest::Method::GET, &format!("element/{el}/attribute/id"), None).await;
        let xpath = format!(
            "//select[@id={}]/option[normalize-space()={}]",
            xpath_literal(id.as_str().unwrap()),
            xpath_literal(option)
        );
        let opt = self.find(&xpath).await;
        self.click_el(&opt).await;
    }

    /// The text at `xpath` now, read in one step (a navigation cannot slip in between).
    async fn text_now(&self, xpath: &str) -> Option<String> {
        let script = format!(
            "const n = document.evaluate({}, document, null, XPathResult.FIRST_ORDERED_NODE_TYPE, null).singleNodeValue; return n ? n.innerText.trim() : null;",
            serde_json::to_string(xpath).unwrap()
        );
        self.script(&script, true).await.as_str().map(str::to_owned)
    }

    async fn text_at(&self, xpath: &str) -> String {
        let el = self.find(xpath).await;
        let v = self.b.session_command(reqwest::Method::GET, &format!("element/{el}/text"), None).await;
        v.as_str().unwrap_or_default().to_string()
    }

    /// The message after a save.
    /// (A click returns before the page it posts has loaded: polled, bounded.)
    async fn saved(&self, expected: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let text =
                self.text_now("//main/p[@role='status' or @role='alert'] | //main//p[@id='error-message']").await;
            if text.as_deref() == Some(expected) {
                return;
            }
            assert!(
                std::time::Instant::now() < deadline,
                "expected {expected:?}, the page says {text:?} at {}",
                self.b.current_url().await
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn heading(&self, expected: &str) {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let h1 = self.text_now("//h1").await;
            if h1.as_deref() == Some(expected) {
                return;
            }
            assert!(std::time::Instant::now() < deadline, "expected the page {expected:?}, still on {h1:?}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    async fn script(&self, script: &str, sync: bool) -> Value {
        let path = if sync { "execute/sync" } else { "execute/async" };
        self.b.session_command(reqwest::Method::POST, path, Some(json!({"script": script, "args": []}))).await
    }

    /// A screenshot named after the guide step, and the accessibility check of the page.
    async fn shot(&mut self, name: &str) {
        self.n += 1;
        self.b.screenshot(&self.shots.join(format!("console-{:02}-{name}.png", self.n))).await;
        let loaded = self.script(&format!("{}\n;return typeof axe;", self.axe), true).await;
        assert_eq!(loaded, "object", "axe-core did not load");
        let found = self
            .script(
                "const done = arguments[arguments.length - 1];\
                 axe.run(document, {resultTypes: ['violations']}).then(r => done(r.violations\
                   .filter(v => v.impact === 'serious' || v.impact === 'critical')\
                   .map(v => v.id + ' (' + v.impact + '): ' + v.nodes.map(n => n.target.join(' ')).join(', '))));",
                false,
            )
            .await;
        for v in found.as_array().into_iter().flatten() {
            self.violations.push(format!("{name}: {}", v.as_str().unwrap_or_default()));
        }
    }

    async fn window(&self, width: u32) {
        self.b
            .session_command(reqwest::Method::POST, "window/rect", Some(json!({"width": width, "height": 900})))
            .await;
    }

    /// The page fits the window: nothing scrolls sideways but the tables and the editor.
    async fn fits(&self, what: &str) {
        let widths = self.script("return [document.documentElement.scrollWidth, window.innerWidth];", true).await;
        let (scroll, inner) = (widths[0].as_i64().unwrap(), widths[1].as_i64().unwrap());
        assert!(scroll <= inner, "{what} is {scroll} px wide in a {inner} px window");
    }
}

#[tokio::test]
async fn browser_console_follows_the_guide() {
    let browser = Browser::launch().await;
    let axe_path = workspace().join("tests/js/node_modules/axe-core/axe.min.js");
    require_file(&axe_path, "axe-core (npm, tests/js)");
    let data = TempDir::new("console");
    let (admin, admin_password) = add_admin(data.path());
    let idp = start_empty_idp(data);
    // The demo CMS's origin: a port of its own, typed into the console like the guide's 8080.
    let cms_port = free_port();
    let cms = format!("http://localhost:{cms_port}");
    let callback = format!("{cms}/web-login/callback");
    let callback = callback.as_str();
    let mut g = Guide {
        b: &browser,
        shots: output_dir(),
        axe: std::fs::read_to_string(&axe_path).unwrap(),
        violations: Vec::new(),
        n: 0,
    };
    g.window(1280).await;

    // Signing in: the console sends the browser to the idp's own login page.
    browser.goto(&idp.url("console")).await;
    wait_for_url(&browser, "the login page", |u| u.contains("/u/login?state=")).await;
    g.fill("Email address", &admin).await;
    g.fill("Password", &admin_password).await;
    let sign_in = g.find("//button[normalize-space()='Continue']").await;
    g.click_el(&sign_in).await;
    g.heading("Applications").await;
    g.shot("applications-empty").await;

    // Step 1: the two applications.
    for (name, kind) in [("CMS", "Regular Web Application"), ("User Management CMS", "Machine to Machine")] {
        g.menu("Applications", "Applications").await;
        g.heading("Applications").await;
        g.link("Create Application").await;
        g.heading("Create Application").await;
        g.fill("Name", name).await;
        g.check("", kind, true).await;
        g.shot(&format!("create-{}", kind.to_lowercase().replace(' ', "-"))).await;
        g.button("Create").await;
        g.heading(name).await;
        g.saved("Created.").await;
    }
    // The secret is shown once, behind Reveal.
    let reveal = g.find("//button[normalize-space()='Reveal']").await;
    g.press(&reveal).await;
    let m2m_secret = g.value_of("Client Secret").await;
    assert!(!m2m_secret.is_empty());
    let m2m_client_id = g.value_of("Client ID").await;
    g.shot("m2m-secret-revealed").await;

    // Step 2: the CMS's callback, web origin and logout URLs, and the ID token's lifetime.
    g.menu("Applications", "Applications").await;
    g.link("CMS").await;
    g.heading("CMS").await;
    g.fill("Allowed Callback URLs", callback).await;
    g.fill("Allowed Web Origins", &cms).await;
    g.fill("Allowed Logout URLs", callback).await;
    g.fill("ID Token Expiration (seconds)", "86400").await;
    g.button("Save Changes").await;
    g.saved("Changes saved.").await;
    assert_eq!(g.value_of("Domain").await, idp.issuer.trim_start_matches("http://").trim_end_matches('/'));
    let cms_client_id = g.value_of("Client ID").await;
    g.shot("cms-settings").await;
    // The CMS's secret is not on the page any more: rotate it to get one, shown once.
    let rotate = g.find("//button[normalize-space()='Rotate secret']").await;
    g.submit(&rotate, true).await;
    g.saved("Changes saved.").await;
    let cms_secret = g.value_of("Client Secret").await;
    assert!(cms_secret.len() >= 32, "the rotated secret is on the page");

    // Steps 2 and 6: the tenant's Allowed Logout URLs (Settings → Advanced).
    g.menu("Settings", "Advanced").await;
    g.heading("Tenant Settings").await;
    g.fill("Allowed Logout URLs", callback).await;
    g.button("Save").await;
    g.saved("Changes saved.").await;
    g.shot("tenant-advanced").await;

    // Step 3: a database for the environment, sign-ups off, enabled for the CMS.
    g.menu("Authentication", "Database").await;
    g.heading("Database Connections").await;
    g.link("Create DB Connection").await;
    g.fill("Name", "cms-users").await;
    g.check("", "Disable Sign Ups", true).await;
    g.shot("create-db-connection").await;
    g.button("Create").await;
    g.heading("cms-users").await;
    // auth0-client names the connection by its id (`supportedConnectionsMap`): the page's address.
    let here = browser.current_url().await;
    let connection_id = here
        .split("/console/connections/database/")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap_or_else(|| panic!("no connection id in {here}"))
        .to_string();
    g.check("", "CMS", true).await;
    g.button("Save").await;
    g.saved("Changes saved.").await;
    g.shot("db-applications").await;

    // Step 4: Google stays off; the CMS's own Connections tab shows its database on.
    g.menu("Authentication", "Social").await;
    g.heading("Social Connections").await;
    let google = g.field_in("", "Google").await;
    let on = browser.session_command(reqwest::Method::GET, &format!("element/{google}/selected"), None).await;
    assert_eq!(on, false, "an empty tenant has Google off");
    g.shot("social").await;
    g.menu("Applications", "Applications").await;
    g.link("CMS").await;
    g.tab("Connections").await;
    let db = g.field_in("", "cms-users").await;
    let on = browser.session_command(reqwest::Method::GET, &format!("element/{db}/selected"), None).await;
    assert_eq!(on, true);
    g.shot("cms-connections").await;

    // Step 5: an API for the backoffice, its token lifetime equal to the ID token's; its
    // identifier is the audience auth0-client asks for (the CMS's origin, as in the example).
    g.menu("Applications", "APIs").await;
    g.heading("APIs").await;
    g.link("Create API").await;
    g.fill("Name", "CMS Backoffice").await;
    g.fill("Identifier", &format!("{cms}/")).await;
    g.button("Create").await;
    g.heading("CMS Backoffice").await;
    assert_eq!(g.value_of("Token Expiration (Seconds)").await, "86400");
    g.fill("Token Expiration (Seconds)", "86400").await;
    g.button("Save").await;
    g.saved("Changes saved.").await;
    g.shot("api-settings").await;

    // Step 5: the User Management application may use the Management API's user permissions.
    g.menu("Applications", "Applications").await;
    g.link("User Management CMS").await;
    g.tab("APIs").await;
    let section = "//section[h2[normalize-space()='Auth0 Management API']]";
    g.check(section, "Authorized: Auth0 Management API", true).await;
    let filter = g.field_in(section, "Filter Permissions").await;
    browser
        .session_command(reqwest::Method::POST, &format!("element/{filter}/value"), Some(json!({"text": "user"})))
        .await;
    let all = g.find(&format!("{section}//button[normalize-space()='Select all']")).await;
    g.press(&all).await;
    g.shot("m2m-apis-filtered").await;
    let update = g.find(&format!("{section}//button[normalize-space()='Update']")).await;
    g.submit(&update, false).await;
    g.saved("Changes saved.").await;
    let read_users = g.field_in(section, "read:users").await;
    let on = browser.session_command(reqwest::Method::GET, &format!("element/{read_users}/selected"), None).await;
    assert_eq!(on, true, "read:users granted");
    let read_clients = g.field_in(section, "read:clients").await;
    let on = browser.session_command(reqwest::Method::GET, &format!("element/{read_clients}/selected"), None).await;
    assert_eq!(on, false, "only the permissions matching the filter");

    // Step 5: the custom action, its secret, deployed and in the Login flow.
    g.menu("Actions", "Library").await;
    g.heading("Library").await;
    g.link("Build Custom").await;
    g.fill("Name", "inject-id-token").await;
    g.button("Create").await;
    g.heading("inject-id-token").await;
    g.fill(
        "Code",
        "exports.onExecutePostLogin = async (event, api) => {\n\
         const { user, secrets } = event;\n\
         const { MIA_NAMESPACE } = secrets;\n\
         const { app_metadata, user_metadata } = user;\n\
         api.idToken.setCustomClaim(`${MIA_NAMESPACE}app_metadata`, app_metadata);\n\
         api.idToken.setCustomClaim(`${MIA_NAMESPACE}user_metadata`, user_metadata);\n\
         };\n",
    )
    .await;
    g.fill("Key", "MIA_NAMESPACE").await;
    g.fill("Value", NAMESPACE).await;
    g.shot("action-editor").await;
    g.button("Deploy").await;
    g.saved("Deployed.").await;
    let secret_shown = g.text_at("//main").await;
    assert!(secret_shown.contains("MIA_NAMESPACE") && !secret_shown.contains(NAMESPACE), "the value is write-only");
    g.menu("Actions", "Flows").await;
    g.link("Login").await;
    g.heading("Login").await;
    g.select("Add Action", "inject-id-token").await;
    g.button("Apply").await;
    g.saved("Flow applied.").await;
    g.shot("login-flow").await;

    // Step 8: the first user, and the admin group in its app_metadata.
    g.menu("User Management", "Users").await;
    g.heading("Users").await;
    g.link("Create User").await;
    g.fill("Email", USER).await;
    g.fill("Password", USER_PASSWORD).await;
    g.select("Connection", "cms-users").await;
    g.button("Create").await;
    g.heading(USER).await;
    // Invalid JSON is refused before anything is sent, naming where.
    g.fill("app_metadata", "{\"groups\": [\"admin\"],}").await;
    let save = g.find("//button[normalize-space()='Save']").await;
    g.press(&save).await;
    let error = g.text_at("//p[@class='json-error']").await;
    assert!(error.starts_with("app_metadata: "), "{error}");
    g.shot("user-invalid-json").await;
    g.fill("app_metadata", "{\"groups\": [\"admin\"]}").await;
    g.button("Save").await;
    g.saved("Changes saved.").await;
    g.shot("user-saved").await;

    // Lists search and page; a role is deleted only after a confirmation.
    g.menu("User Management", "Users").await;
    g.fill("Search users by email or Lucene query", "first").await;
    g.button("Search").await;
    g.heading("Users").await;
    g.link(USER).await;
    g.heading(USER).await;
    g.menu("User Management", "Roles").await;
    g.fill("Name", "editor").await;
    g.button("Create Role").await;
    g.saved("Created.").await;
    let delete = g.find("//button[normalize-space()='Delete']").await;
    g.submit(&delete, true).await;
    g.saved("Deleted.").await;

    // Monitoring → Logs: the console's writes, as the Management API's, naming the admin.
    g.menu("Monitoring", "Logs").await;
    g.heading("Logs").await;
    let logs = g.text_at("//main").await;
    assert!(logs.contains("sapi") && logs.contains(&admin), "the log names the administrator's writes");
    g.shot("logs").await;

    // At 800 px the pages still fit.
    g.window(800).await;
    for (section, item) in [("Applications", "Applications"), ("User Management", "Users"), ("Monitoring", "Logs")] {
        g.menu(section, item).await;
        g.heading(item).await;
        g.fits(item).await;
        g.shot(&format!("narrow-{}", item.to_lowercase())).await;
    }

    // The result, as the CMS sees it: the first user signs in to the CMS application and the
    // ID token carries app_metadata under the namespace, through the deployed Action.
    let mut authorize = url::Url::parse(&idp.url("authorize")).unwrap();
    authorize
        .query_pairs_mut()
        .append_pair("client_id", &cms_client_id)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", callback)
        .append_pair("scope", "openid profile email")
        .append_pair("state", "console-guide");
    browser.goto(authorize.as_str()).await;
    wait_for_url(&browser, "the CMS login page", |u| u.contains("/u/login?state=")).await;
    g.fill("Email address", USER).await;
    g.fill("Password", USER_PASSWORD).await;
    let sign_in = g.find("//button[normalize-space()='Continue']").await;
    g.click_el(&sign_in).await;
    let landed = wait_for_url(&browser, "the CMS callback", |u| u.starts_with(&format!("{callback}?"))).await;
    let code = query_param(&landed, "code").expect("a code");
    let form = [
        ("grant_type", "authorization_code"),
        ("client_id", &cms_client_id),
        ("client_secret", &cms_secret),
        ("code", &code),
        ("redirect_uri", callback),
    ];
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    let tokens: Value = http.post(idp.url("oauth/token")).form(&form).send().await.unwrap().json().await.unwrap();
    let id_token = tokens["id_token"].as_str().unwrap_or_else(|| panic!("no ID token: {tokens}"));
    let payload = id_token.split('.').nth(1).unwrap();
    let claims: Value =
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap();
    assert_eq!(claims[format!("{NAMESPACE}app_metadata")], json!({"groups": ["admin"]}), "{claims}");
    let lifetime = claims["exp"].as_i64().unwrap() - claims["iat"].as_i64().unwrap();
    assert_eq!(lifetime, 86400, "the ID token lives as the console set it");

    // The guide's end: the first user signs in to the demo CMS and sees the admin group.
    let setup = Auth0ClientSetup {
        origins: Origins {
            cms: url::Url::parse(&format!("{cms}/")).unwrap(),
            idp: url::Url::parse(&idp.issuer).unwrap(),
        },
        cms_client_id,
        cms_client_secret: cms_secret,
        management_client_id: m2m_client_id,
        management_client_secret: m2m_secret,
        namespace: NAMESPACE.into(),
        connection: "cms-users".into(),
        connection_id,
        redis_hosts: None,
        config_dir: std::env::temp_dir(),
    };
    let _cms = serve_demo_cms(&setup, cms_port).await;
    // The user signed in at the idp a moment ago in this browser: its SSO session carries them
    // through the CMS's login (auth0-client's /authorize, the code exchange) without the form.
    browser.goto(&format!("{cms}/")).await;
    wait_for_url(&browser, "the CMS", |u| u == format!("{cms}/")).await;
    assert_eq!(browser.text("#email").await, USER);
    assert_eq!(browser.text("#groups").await, "admin");
    g.shot("cms-home").await;

    assert!(g.violations.is_empty(), "serious or critical accessibility violations:\n{}", g.violations.join("\n"));
}
