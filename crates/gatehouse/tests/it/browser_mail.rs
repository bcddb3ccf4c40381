//! A mailed link followed in a real browser: the `gatehouse idp` binary sends its password-reset
//! mail through a real SMTP server (aiosmtpd with STARTTLS and AUTH, the script the idp's own
//! mail tests use), the test reads the delivered message, opens its link in headless chromium,
//! types the new password into the page and submits it; the new password then works.

use crate::browser::{Browser, output_dir};
use crate::support::{IdpProcess, TempDir, dev_env, free_port, workspace};
use serde_json::{Value, json};
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const SMTP_USER: &str = "relay-user";
const SMTP_PASS: &str = "relay-Passw0rd-browser";

/// aiosmtpd on a free port with STARTTLS and AUTH, killed when dropped.
struct Smtp {
    child: Child,
    port: u16,
    delivered: PathBuf,
}

impl Smtp {
    fn start(dir: &Path) -> (Smtp, PathBuf) {
        let made = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
        let (cert, key) = (dir.join("smtp-cert.pem"), dir.join("smtp-key.pem"));
        std::fs::write(&cert, made.cert.pem()).unwrap();
        std::fs::write(&key, made.signing_key.serialize_pem()).unwrap();
        let delivered = dir.join("delivered");
        std::fs::create_dir_all(&delivered).unwrap();
        let port = free_port();
        let script = workspace().join("crates/idp/tests/it/smtp_server.py");
        // Debian's python, where python3-aiosmtpd is (scripts/install-test-deps); missing, the
        // test fails.
        let python = if Path::new("/usr/bin/python3").exists() { "/usr/bin/python3" } else { "python3" };
        let mut child = Command::new(python)
            .arg(&script)
            .arg(&delivered)
            .arg(port.to_string())
            .arg(&cert)
            .arg(&key)
            .args([SMTP_USER, SMTP_PASS, "starttls"])
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
        (Smtp { child, port, delivered }, cert)
    }

    /// Waits (bounded) for the first delivered message.
    async fn first_message(&self) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let mut files: Vec<PathBuf> = std::fs::read_dir(&self.delivered)
                .unwrap()
                .map(|e| e.unwrap().path())
                // The server writes `.NAME.json` and renames it: a dot file is still being written.
                .filter(|p| {
                    p.extension().is_some_and(|e| e == "json")
                        && !p.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
                })
                .collect();
            files.sort();
            if let Some(first) = files.first() {
                return serde_json::from_slice(&std::fs::read(first).unwrap()).unwrap();
            }
            assert!(Instant::now() < deadline, "no mail delivered");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

impl Drop for Smtp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

async fn post_json(http: &reqwest::Client, url: String, token: Option<&str>, body: Value) -> (u16, Value) {
    let mut req = http.post(url).json(&body);
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    let res = req.send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, serde_json::from_str(&text).unwrap_or(Value::String(text)))
}

#[tokio::test]
async fn browser_follows_the_mailed_reset_link_and_sets_the_password() {
    // The browser first: a machine without chromium fails before anything else starts.
    let browser = Browser::launch().await;
    let dir = TempDir::new("browser-mail");
    let (smtp, cert) = Smtp::start(dir.path());
    // The example tenant, its Management API grant allowed to configure the email provider.
    let example = std::fs::read_to_string(workspace().join("examples/cms-tenant/tenant.yaml")).unwrap();
    let grant = "      - create:users_app_metadata\n";
    assert!(example.contains(grant), "the example's grant changed");
    let tenant = dir.path().join("tenant.yaml");
    // Its Action's code is named relative to the file.
    std::os::unix::fs::symlink(workspace().join("examples/cms-tenant/actions"), dir.path().join("actions")).unwrap();
    std::fs::write(&tenant, example.replacen(grant, &format!("{grant}      - create:email_provider\n"), 1)).unwrap();
    let idp = IdpProcess::start_with_tenant(&tenant, &["--smtp-ca-file", cert.to_str().unwrap()]);
    let http = reqwest::Client::builder().no_proxy().build().unwrap();
    // The Management API's audience is always `https://{domain}/api/v2/`, as on Auth0.
    let audience = format!("https://{}/api/v2/", idp.issuer.trim_start_matches("http://").trim_end_matches('/'));

    let (status, tokens) = post_json(
        &http,
        idp.url("oauth/token"),
        None,
        json!({"grant_type": "client_credentials", "client_id": dev_env("MGMT_CLIENT_ID"),
            "client_secret": dev_env("MGMT_CLIENT_SECRET"), "audience": audience}),
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let admin = tokens["access_token"].as_str().unwrap();
    let provider = json!({"name": "smtp", "enabled": true, "default_from_address": "Gatehouse <no-reply@example.test>",
        "credentials": {"smtp_host": "localhost", "smtp_port": smtp.port, "smtp_user": SMTP_USER, "smtp_pass": SMTP_PASS}});
    let (status, body) = post_json(&http, idp.url("api/v2/emails/provider"), Some(admin), provider).await;
    assert_eq!(status, 201, "{body}");

    let email = dev_env("USER_EMAIL");
    let ask = json!({"client_id": dev_env("CMS_CLIENT_ID"), "email": email, "connection": "dev-users"});
    assert_eq!(post_json(&http, idp.url("dbconnections/change_password"), None, ask).await.0, 200);
    let message = smtp.first_message().await;
    assert_eq!(message["rcpt_tos"], json!([email]));
    assert_eq!(message["authenticated"], true, "AUTH over STARTTLS");
    let text = message["text"].as_str().unwrap_or_else(|| panic!("no text part: {message}"));
    let link =
        text.lines().map(str::trim).find(|l| l.contains("/lo/reset?ticket=")).unwrap_or_else(|| panic!("{text}"));

    browser.goto(link).await;
    assert_eq!(browser.title().await, "Change your password");
    let new_password = "Browser-Mailed-Passw0rd!";
    browser.type_into("#password", new_password).await;
    browser.click("button[type=submit]").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    // The click returns before the form's navigation ends: poll the page's title.
    while browser.title().await != "Password changed" {
        assert!(Instant::now() < deadline, "no confirmation; at {}", browser.current_url().await);
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    browser.screenshot(&output_dir().join("reset-done.png")).await;
    assert!(browser.text("main p").await.contains("You can now log in with it"));

    let grant = |password: &str| {
        json!({"grant_type": "http://auth0.com/oauth/grant-type/password-realm", "client_id": dev_env("CMS_CLIENT_ID"),
            "client_secret": dev_env("CMS_CLIENT_SECRET"), "username": email, "password": password,
            "realm": "dev-users", "scope": "openid"})
    };
    let (status, body) = post_json(&http, idp.url("oauth/token"), None, grant(new_password)).await;
    assert_eq!(status, 200, "the password set in the browser works: {body}");
    let (status, _) = post_json(&http, idp.url("oauth/token"), None, grant(&dev_env("USER_PASSWORD"))).await;
    assert_eq!(status, 403, "the old one no longer does");
}
