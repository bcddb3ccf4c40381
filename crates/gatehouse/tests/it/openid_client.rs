//! Compatibility with an official-style OpenID Connect SDK, unmodified: the npm package
//! `openid-client` v6 (panva), run by `tests/js/openid-client-flow.mjs` against the real
//! `gatehouse idp --tls` binary. The SDK does discovery, builds the authorization request
//! (PKCE S256, state, nonce), exchanges the code with `client_secret_post` or
//! `client_secret_basic`, validates the ID token (issuer, audience, alg, nonce, expiry) and
//! calls UserInfo; any deviation from the specifications it enforces fails the script, which
//! also verifies the ID token's signature with `jose` against the published JWKS (the SDK
//! leaves that out by design). The idp's local CA is trusted the way the README tells users
//! to: `NODE_EXTRA_CA_CERTS`.

use crate::support::{IdpProcess, dev_env, require_file, workspace};
use serde_json::Value;
use std::path::PathBuf;
use std::time::Duration;

/// Node and the SDK start in well under a second; this only bounds a hung run.
const SCRIPT_TIMEOUT: Duration = Duration::from_secs(60);

fn script_dir() -> PathBuf {
    workspace().join("tests/js")
}

/// An idp over HTTPS, as the SDK requires, once the SDK is known to be installed (the test
/// fails, never installs: `scripts/install-test-deps` does).
fn start_idp() -> IdpProcess {
    require_file(&script_dir().join("node_modules/openid-client/package.json"), "the npm package openid-client");
    IdpProcess::start(true)
}

/// Runs the flow script with the CMS client's credentials; returns its JSON summary, or fails
/// the test with the script's own explanation.
async fn run_flow(idp: &IdpProcess, args: &[&str]) -> Value {
    let mut node = tokio::process::Command::new("node");
    node.arg(script_dir().join("openid-client-flow.mjs"))
        .args(["--issuer", &idp.issuer])
        .args(["--client-id", &dev_env("CMS_CLIENT_ID")])
        .args(["--client-secret", &dev_env("CMS_CLIENT_SECRET")])
        .args(["--username", &dev_env("ADMIN_EMAIL")])
        .args(args)
        .env("NODE_EXTRA_CA_CERTS", idp.ca_pem())
        .kill_on_drop(true);
    let run = tokio::time::timeout(SCRIPT_TIMEOUT, node.output()).await.expect("openid-client-flow.mjs timed out");
    let out = run.expect("running node (Node.js 20 or newer must be on PATH)");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "openid-client rejected the idp ({}):\n{stderr}{stdout}", out.status);
    println!("openid-client summary: {}", stdout.trim());
    serde_json::from_str(stdout.trim()).unwrap_or_else(|e| panic!("summary is not JSON ({e}): {stdout}"))
}

/// A successful login through the SDK with the given client authentication.
async fn login_with(auth: &str) -> (IdpProcess, Value) {
    let idp = start_idp();
    let summary = run_flow(&idp, &["--auth", auth, "--password", &dev_env("ADMIN_PASSWORD")]).await;
    (idp, summary)
}

/// What the SDK accepted must be the admin user of the example tenant, from this issuer.
fn assert_admin_logged_in(idp: &IdpProcess, summary: &Value) {
    assert_eq!(summary["issuer"], idp.issuer.as_str(), "{summary}");
    assert!(idp.issuer.starts_with("https://"), "the SDK only talks to HTTPS issuers: {}", idp.issuer);
    let sub = summary["id_token"]["sub"].as_str().unwrap_or_default();
    assert!(sub.starts_with("auth0|"), "database users are auth0|…: {summary}");
    assert_eq!(summary["id_token"]["email"], dev_env("ADMIN_EMAIL").as_str(), "{summary}");
    assert_eq!(summary["id_token"]["aud"], dev_env("CMS_CLIENT_ID").as_str(), "{summary}");
    assert_eq!(summary["id_token"]["signature_verified"], true, "{summary}");
    assert_eq!(summary["id_token"]["alg"], "RS256", "{summary}");
    assert_eq!(summary["userinfo"]["sub"], sub, "{summary}");
    assert_eq!(summary["userinfo"]["email"], summary["id_token"]["email"], "{summary}");
    // The idp answers Auth0's "Bearer"; the SDK normalises token types to lower case.
    assert_eq!(summary["token_type"], "bearer", "{summary}");
}

#[tokio::test]
async fn openid_client_logs_in_with_client_secret_post() {
    let (idp, summary) = login_with("post").await;
    assert_admin_logged_in(&idp, &summary);
    // The SDK's own token request, as recorded by the script: the secret travelled in the body.
    assert_eq!(summary["token_request"]["secret_in_body"], true, "{summary}");
    assert_eq!(summary["token_request"]["authorization_scheme"], Value::Null, "{summary}");
}

#[tokio::test]
async fn openid_client_logs_in_with_client_secret_basic() {
    let (idp, summary) = login_with("basic").await;
    assert_admin_logged_in(&idp, &summary);
    // Here the secret went only in the Authorization header.
    assert_eq!(summary["token_request"]["authorization_scheme"], "Basic", "{summary}");
    assert_eq!(summary["token_request"]["secret_in_body"], false, "{summary}");
}

/// The same SDK-built request with a wrong password: the login page answers with its error and
/// no redirect, so no authorization code exists for the SDK to exchange.
#[tokio::test]
async fn openid_client_wrong_password_gets_no_code() {
    let idp = start_idp();
    let summary = run_flow(&idp, &["--password", "not-the-password", "--expect-denied"]).await;
    assert_eq!(summary["denied"], true, "{summary}");
    assert_eq!(summary["error"], "Wrong email or password.", "{summary}");
    let status = summary["status"].as_u64().unwrap_or_default();
    assert!((400..500).contains(&status), "a refused login is a client error, got {status}");
}
