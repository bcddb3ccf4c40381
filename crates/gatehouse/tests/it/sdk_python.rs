//! Compatibility with the official PyPI `auth0-python` SDK, unmodified, in its two generations.
//!
//! v4 (the `Auth0`/`GetToken` API most applications run): `tests/python/sdk_auth0.py` gets a Management API token with
//! `GetToken.client_credentials`, manages users (create, Lucene search, metadata merge, delete),
//! lists clients and connections, creates a resource server and a client grant, runs an import
//! job (multipart with string booleans) to completion and logs the imported user in with
//! `GetToken.login` (password-realm, a JSON body with nulls). The idp's CA is trusted through
//! `REQUESTS_CA_BUNDLE`, as the README tells Python users to.
//!
//! v6 (current; the Fern-generated `ManagementClient` over httpx, which fetches its own token
//! and always pages with `include_totals`): `tests/python/sdk_auth0_v6.py` does the same round,
//! trusting the CA through `SSL_CERT_FILE` as well.
//!
//! Each generation lives in its own virtualenv (`tests/python/.venv`, `.venv-v6`) that
//! `scripts/install-test-deps` makes.

use crate::sdk_support::{
    ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, Gatehouse, IMPORTED_BCRYPT, IMPORTED_PASSWORD, Tenant, run_json,
};
use crate::support::{dev_env, require_file, workspace};
use serde_json::{Value, json};

/// Runs `script` with the virtualenv `venv` of tests/python against a fresh idp.
async fn run_python(venv: &str, script: &str) -> Value {
    let dir = workspace().join("tests/python");
    let python = dir.join(venv).join("bin/python");
    require_file(&python, &format!("the Python virtualenv tests/python/{venv} with auth0-python"));
    let idp = Gatehouse::start(Tenant::ExampleWithAdmin);
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(dir.join(script))
        .args(["--domain", &idp.domain])
        .args(["--client-id", ADMIN_CLIENT_ID, "--client-secret", ADMIN_CLIENT_SECRET])
        .args(["--cms-client-id", &dev_env("CMS_CLIENT_ID")])
        .args(["--cms-client-secret", &dev_env("CMS_CLIENT_SECRET")])
        .args(["--bcrypt", IMPORTED_BCRYPT, "--password", IMPORTED_PASSWORD])
        .env("REQUESTS_CA_BUNDLE", idp.ca_pem())
        .env("SSL_CERT_FILE", idp.ca_pem())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let summary = run_json(script, cmd).await;
    drop(idp);
    summary
}

#[tokio::test]
async fn auth0_python_sdk_v4() {
    let s = run_python(".venv", "sdk_auth0.py").await;
    assert!(s["version"].as_str().unwrap().starts_with("4."), "{s}");
    assert_eq!(s["management_token"], json!({"token_type": "Bearer", "has_scope": true}), "{s}");
    assert!(s["user_created"]["user_id"].as_str().unwrap().starts_with("auth0|"), "{s}");
    // users.list always asks for include_totals=true and reads the paging object.
    assert_eq!(s["search"]["total"], 2, "{s}");
    assert_eq!(s["search"]["keys"], json!(["length", "limit", "start", "total"]), "{s}");
    assert!(s["search"]["emails"].as_array().unwrap().contains(&json!(dev_env("ADMIN_EMAIL"))), "{s}");
    assert_eq!(s["user_updated"], json!({"app_metadata": {"groups": ["admin"], "level": 2}, "blocked": true}));
    assert_eq!(s["deleted_user"]["status"], 404, "{s}");
    assert_eq!(s["deleted_user"]["error_code"], "inexistent_user", "{s}");
    assert_eq!(s["deleted_user"]["message"], "The user does not exist.", "{s}");
    let clients = s["clients"].as_array().unwrap();
    assert!(clients.contains(&json!("CMS")) && clients.contains(&json!("User Management CMS")), "{s}");
    assert_eq!(s["connections"], json!(["dev-users", "google-oauth2", "prod-users"]), "{s}");
    assert_eq!(s["resource_server"]["identifier_ok"], true, "{s}");
    assert_eq!(s["client_grant"], json!({"scope": ["read:things"], "id_prefix": "cgr_"}), "{s}");
    assert_eq!(s["job_created"], json!({"status": "pending", "external_id_echoed": true}), "{s}");
    assert_eq!(s["job"]["status"], "completed", "{s}");
    assert_eq!(s["job"]["summary"], json!({"failed": 1, "updated": 0, "inserted": 1, "total": 2}), "{s}");
    assert_eq!(s["job_errors"], json!([{"email": "broken", "codes": ["INVALID_FORMAT"]}]), "{s}");
    assert_eq!(s["password_realm"], json!({"token_type": "Bearer", "has_id_token": true}), "{s}");
    assert_eq!(s["wrong_password"]["status"], 403, "{s}");
    assert_eq!(s["wrong_password"]["error_code"], "invalid_grant", "{s}");
    assert_eq!(s["wrong_password"]["message"], "Wrong email or password.", "{s}");
}

#[tokio::test]
async fn auth0_python_sdk_v6() {
    let s = run_python(".venv-v6", "sdk_auth0_v6.py").await;
    assert!(s["version"].as_str().unwrap().starts_with("6."), "{s}");
    assert!(s["user_created"]["user_id"].as_str().unwrap().starts_with("auth0|"), "{s}");
    let emails = s["search_emails"].as_array().unwrap();
    assert_eq!(emails.len(), 2, "{s}");
    assert!(emails.contains(&json!(dev_env("ADMIN_EMAIL"))), "{s}");
    assert_eq!(
        s["user_updated"],
        json!({"app_metadata": {"groups": ["admin"], "level": 2}, "user_metadata": {"lang": "it"}})
    );
    assert_eq!(s["deleted_user"], json!({"type": "NotFoundError", "status": 404}), "{s}");
    assert_eq!(s["clients"], json!(["CMS", "Gatehouse SDK tests", "User Management CMS"]), "{s}");
    assert_eq!(s["connections"], json!(["dev-users", "google-oauth2", "prod-users"]), "{s}");
    assert_eq!(s["client_grant"], json!({"scope": ["read:things"], "id_prefix": "cgr_"}), "{s}");
    assert_eq!(s["job_created"], json!({"status": "pending", "external_id_echoed": true}), "{s}");
    assert_eq!(s["job"]["status"], "completed", "{s}");
    assert_eq!(s["job"]["summary"], json!({"failed": 1, "updated": 0, "inserted": 1, "total": 2}), "{s}");
    assert_eq!(s["job_errors"][0]["user"], json!({"email": "broken"}), "{s}");
    assert_eq!(s["job_errors"][0]["errors"][0]["code"], "INVALID_FORMAT", "{s}");
    assert_eq!(s["password_realm"], json!({"token_type": "Bearer", "has_id_token": true}), "{s}");
}
