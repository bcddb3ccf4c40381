//! Roles and permissions (RBAC) through the official SDKs, unmodified: `tests/js/sdk-auth0-rbac.mjs`
//! (npm `auth0` v7 and v4) and `tests/python/sdk_auth0_rbac.py` (`auth0-python` v4) create an
//! API that enforces RBAC, roles (get, update, a name filter, a duplicate name refused),
//! role permissions (added, removed, one the API does not define refused), assign the example
//! tenant's user to roles both ways (twice: idempotent), list a role's users with checkpoint
//! paging, a user's roles and permissions with their sources, and delete roles, against the
//! real `gatehouse idp --tls`.

use crate::sdk_support::{ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, Gatehouse, Tenant, run_json};
use crate::support::{dev_env, require_file, workspace};
use serde_json::{Value, json};

async fn run_node(sdk: &str, package: &str) -> Value {
    let js = workspace().join("tests/js");
    require_file(&js.join(format!("node_modules/{package}/package.json")), &format!("the npm package {package}"));
    let idp = Gatehouse::start(Tenant::ExampleWithAdmin);
    let mut node = tokio::process::Command::new("node");
    node.arg(js.join("sdk-auth0-rbac.mjs"))
        .args(["--sdk", sdk, "--domain", &idp.domain])
        .args(["--client-id", ADMIN_CLIENT_ID, "--client-secret", ADMIN_CLIENT_SECRET])
        .args(["--user-email", &dev_env("USER_EMAIL")])
        .env("NODE_EXTRA_CA_CERTS", idp.ca_pem());
    let summary = run_json(&format!("sdk-auth0-rbac.mjs --sdk {sdk}"), node).await;
    drop(idp);
    summary
}

fn assert_node(s: &Value) {
    assert_eq!(s["role_created"], json!({"id_pattern": true, "name_ok": true}), "{s}");
    assert_eq!(s["role_fetched"], "Edit things", "{s}");
    assert_eq!(s["role_updated"], "Only look", "{s}");
    assert_eq!(s["roles_filtered"], json!([true]), "{s}");
    assert_eq!(s["duplicate_name"], 409, "{s}");
    assert_eq!(s["unknown_role"], 404, "{s}");
    assert_eq!(
        s["role_permissions"],
        json!([{"name": "read:things", "api": true, "description": "Read things"}]),
        "{s}"
    );
    assert_eq!(s["undefined_permission"], 400, "{s}");
    assert_eq!(s["role_users"], json!([true]), "{s}");
    assert_eq!(s["user_roles"], json!(["Editors", "Viewers"]), "{s}");
    assert_eq!(
        s["user_permissions"],
        json!([{"name": "read:things", "sources": ["ROLE"]}, {"name": "write:things", "sources": ["DIRECT"]}]),
        "{s}"
    );
    assert_eq!(s["user_roles_after"], 1, "{s}");
    assert_eq!(s["user_roles_after_delete"], 0, "{s}");
    assert_eq!(s["deleted_role"], 404, "{s}");
}

#[tokio::test]
async fn auth0_node_sdk_v7_roles_and_permissions() {
    assert_node(&run_node("v7", "auth0").await);
}

#[tokio::test]
async fn auth0_node_sdk_v4_roles_and_permissions() {
    assert_node(&run_node("v4", "auth0-v4").await);
}

#[tokio::test]
async fn auth0_python_sdk_roles_and_permissions() {
    let dir = workspace().join("tests/python");
    let python = dir.join(".venv/bin/python");
    require_file(&python, "the Python virtualenv tests/python/.venv with auth0-python");
    let idp = Gatehouse::start(Tenant::ExampleWithAdmin);
    let mut cmd = tokio::process::Command::new(&python);
    cmd.arg(dir.join("sdk_auth0_rbac.py"))
        .args(["--domain", &idp.domain])
        .args(["--client-id", ADMIN_CLIENT_ID, "--client-secret", ADMIN_CLIENT_SECRET])
        .args(["--user-email", &dev_env("USER_EMAIL")])
        .env("REQUESTS_CA_BUNDLE", idp.ca_pem())
        .env("PYTHONDONTWRITEBYTECODE", "1");
    let s = run_json("sdk_auth0_rbac.py", cmd).await;
    drop(idp);
    assert!(s["version"].as_str().unwrap().starts_with("4."), "{s}");
    assert_eq!(s["role_created"], json!({"id_prefix": "rol_", "name_ok": true}), "{s}");
    assert_eq!(s["role_fetched"], "Edit things", "{s}");
    assert_eq!(s["role_updated"], "Only look", "{s}");
    assert_eq!(s["roles_filtered"], json!({"total": 1, "ids": [true]}), "{s}");
    assert_eq!(s["duplicate_name"], 409, "{s}");
    assert_eq!(s["unknown_role"], 404, "{s}");
    assert_eq!(
        s["role_permissions"],
        json!({"total": 1, "names": ["read:things"], "description": "Read things"}),
        "{s}"
    );
    assert_eq!(s["undefined_permission"], 400, "{s}");
    assert_eq!(s["role_users"], json!({"ids": [true], "next": false}), "{s}");
    assert_eq!(s["user_roles"], json!({"total": 2, "names": ["Editors", "Viewers"]}), "{s}");
    assert_eq!(
        s["user_permissions"],
        json!([{"name": "read:things", "sources": ["ROLE"]}, {"name": "write:things", "sources": ["DIRECT"]}]),
        "{s}"
    );
    assert_eq!(s["user_roles_after"], 1, "{s}");
    assert_eq!(s["user_roles_after_delete"], 0, "{s}");
    assert_eq!(s["deleted_role"], 404, "{s}");
}
