//! Compatibility with the official npm `auth0` SDK, unmodified: `tests/js/sdk-auth0.mjs` drives
//! the ManagementClient (users with a Lucene search and a metadata merge, clients, connections,
//! resource servers, client grants, a users-import job to completion with its errors) and the
//! AuthenticationClient (client credentials; the password-realm grant of an imported user)
//! against the real `gatehouse idp --tls`, its CA trusted through `NODE_EXTRA_CA_CERTS`. Two
//! generations: v7 (current; Fern-generated management client with `include_totals` and
//! checkpoint paging) and v4 (hand-written; still what most applications run).

use crate::sdk_support::{
    ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, Gatehouse, IMPORTED_BCRYPT, IMPORTED_PASSWORD, Tenant, run_json,
};
use crate::support::{dev_env, require_file, workspace};
use serde_json::{Value, json};

async fn run_sdk(sdk: &str, package: &str) -> Value {
    let js = workspace().join("tests/js");
    require_file(&js.join(format!("node_modules/{package}/package.json")), &format!("the npm package {package}"));
    let idp = Gatehouse::start(Tenant::ExampleWithAdmin);
    let mut node = tokio::process::Command::new("node");
    node.arg(js.join("sdk-auth0.mjs"))
        .args(["--sdk", sdk, "--domain", &idp.domain])
        .args(["--client-id", ADMIN_CLIENT_ID, "--client-secret", ADMIN_CLIENT_SECRET])
        .args(["--cms-client-id", &dev_env("CMS_CLIENT_ID")])
        .args(["--cms-client-secret", &dev_env("CMS_CLIENT_SECRET")])
        .args(["--bcrypt", IMPORTED_BCRYPT, "--password", IMPORTED_PASSWORD])
        .env("NODE_EXTRA_CA_CERTS", idp.ca_pem());
    let summary = run_json(&format!("sdk-auth0.mjs --sdk {sdk}"), node).await;
    drop(idp);
    summary
}

fn assert_summary(s: &Value) {
    // Users.
    let created = &s["user_created"];
    assert!(created["user_id"].as_str().unwrap().starts_with("auth0|"), "{s}");
    assert_eq!(created["identities"][0]["connection"], "dev-users", "{s}");
    let admins: Vec<&str> = s["admins_found"].as_array().unwrap().iter().map(|v| v.as_str().unwrap()).collect();
    assert!(admins.contains(&dev_env("ADMIN_EMAIL").as_str()), "{s}");
    assert!(admins.iter().any(|e| e.starts_with("sdk-")), "the new admin is found: {s}");
    assert_eq!(s["user_updated"]["app_metadata"], json!({"groups": ["admin"], "level": 2}), "merged: {s}");
    assert_eq!(s["user_updated"]["user_metadata"], json!({"lang": "it"}), "{s}");
    assert_eq!(s["user_updated"]["name"], "Renamed by SDK");
    assert_eq!(s["users_by_email"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["deleted_user_status"], 404, "{s}");
    // Clients, connections, APIs, grants.
    assert_eq!(s["client"]["callbacks"], json!(["https://sdk.example.test/cb2"]), "{s}");
    assert_eq!(s["client"]["client_metadata"], json!({"team": "sdk", "owner": "tests"}), "{s}");
    assert_eq!(s["client"]["listed"], true, "{s}");
    assert_eq!(s["connection"]["id_pattern"], true, "{s}");
    assert_eq!(s["connection"]["options"], json!({"passwordPolicy": "fair"}), "options replaced: {s}");
    assert_eq!(s["connection"]["enabled_clients"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["connection"]["listed"], true, "{s}");
    assert_eq!(s["resource_server"]["token_lifetime"], 7200, "{s}");
    assert_eq!(s["resource_server"]["scopes"], json!(["read:things", "write:things"]), "{s}");
    assert_eq!(s["resource_server"]["listed"], true, "{s}");
    assert_eq!(s["client_grant"]["id_pattern"], true, "{s}");
    assert_eq!(s["client_grant"]["scope"], json!(["read:things", "write:things"]), "{s}");
    assert_eq!(s["client_grant"]["listed"].as_array().unwrap().len(), 1, "{s}");
    assert_eq!(s["client_credentials"]["scope"], "read:things write:things", "{s}");
    // The import job.
    assert_eq!(s["job_created"]["status"], "pending", "{s}");
    assert_eq!(s["job_created"]["type"], "users_import", "{s}");
    assert_eq!(s["job_created"]["external_id_echoed"], true, "{s}");
    assert_eq!(s["job"]["status"], "completed", "{s}");
    assert_eq!(s["job"]["summary"], json!({"failed": 1, "updated": 0, "inserted": 2, "total": 3}), "{s}");
    assert_eq!(s["job_errors"], json!([{"email": "not-an-email", "codes": ["INVALID_FORMAT"]}]), "{s}");
    // The imported user's bcrypt hash works with the password-realm grant.
    assert_eq!(s["password_realm"]["token_type"], "Bearer", "{s}");
    assert!(s["password_realm"]["id_token_email"].as_str().unwrap().starts_with("imported-"), "{s}");
    assert_eq!(s["wrong_password"]["status"], 403, "{s}");
    assert_eq!(s["wrong_password"]["error"], "invalid_grant", "{s}");
    // The tenant log through logs.getAll/list, logs.get and users.getLogs/logs.list.
    assert_eq!(s["logs"]["fp_type"], "fp", "{s}");
    assert_eq!(s["logs"]["fp_description"], "Wrong email or password.", "{s}");
    assert_eq!(s["logs"]["fp_connection"], "dev-users", "{s}");
    assert_eq!(s["logs"]["same_id"], true, "{s}");
    assert_eq!(s["logs"]["user_log_types"], json!(["fp", "sepft"]), "the user's login and failure: {s}");
}

#[tokio::test]
async fn auth0_node_sdk_v7() {
    let s = run_sdk("v7", "auth0").await;
    assert!(s["version"].as_str().unwrap().starts_with("7."), "{s}");
    assert_summary(&s);
}

#[tokio::test]
async fn auth0_node_sdk_v4() {
    let s = run_sdk("v4", "auth0-v4").await;
    assert!(s["version"].as_str().unwrap().starts_with("4."), "{s}");
    assert_summary(&s);
}
