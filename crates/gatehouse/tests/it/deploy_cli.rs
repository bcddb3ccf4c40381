//! Compatibility with npm `auth0-deploy-cli` (v8, `a0deploy`), unmodified: the guide's tenant
//! (`examples/cms-tenant/tenant.yaml`, keywords from its `dev.env`) is imported into a fresh
//! `gatehouse idp --tls` that holds nothing but the application deploy-cli authenticates as
//! (deploy-cli never touches its own client or grants, as with Auth0), exported, and imported
//! again: the second import must change nothing, neither in the Management API's view of the
//! tenant nor in a second export.
//!
//! deploy-cli runs with `AUTH0_INCLUDED_ONLY` (spec D.5: tenant, clients, databases,
//! connections, resource servers, client grants, actions, triggers) so it skips the Auth0
//! features the guide does not use, and with its own retries cut short so an unsupported call
//! fails fast. Most of its run time is its own schema validation (ajv), not the idp.

use crate::sdk_support::{ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, Gatehouse, Tenant, run_json};
use crate::support::{TempDir, dev_env, require_file, workspace};
use serde_json::{Map, Value, json};
use std::path::Path;

/// The resource types of the guide's tenant that Gatehouse serves.
pub const INCLUDED: &[&str] =
    &["tenant", "clients", "databases", "connections", "resourceServers", "clientGrants", "actions", "triggers"];

/// An import spends 20–70 s compiling deploy-cli's JSON schema (ajv) on a busy two-core
/// machine; the idp answers each of its calls in milliseconds.
const A0DEPLOY_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(180);

fn config(idp: &Gatehouse, dir: &Path) -> std::path::PathBuf {
    let mut mappings = Map::new();
    for key in
        ["CMS_BASE_URL", "CMS_CLIENT_ID", "CMS_CLIENT_SECRET", "MGMT_CLIENT_ID", "MGMT_CLIENT_SECRET", "MIA_NAMESPACE"]
    {
        mappings.insert(key.into(), json!(dev_env(key)));
    }
    mappings.insert("AUTH0_DOMAIN".into(), json!(idp.domain));
    let config = json!({
        "AUTH0_DOMAIN": idp.domain,
        "AUTH0_CLIENT_ID": ADMIN_CLIENT_ID,
        "AUTH0_CLIENT_SECRET": ADMIN_CLIENT_SECRET,
        "AUTH0_KEYWORD_REPLACE_MAPPINGS": mappings,
        "AUTH0_INCLUDED_ONLY": INCLUDED,
        "AUTH0_ALLOW_DELETE": false,
        "AUTH0_API_MAX_RETRIES": 1,
    });
    let path = dir.join("config.json");
    std::fs::write(&path, serde_json::to_vec_pretty(&config).unwrap()).unwrap();
    path
}

/// Runs `a0deploy` with `args`; fails the test with its output when it fails.
pub async fn a0deploy(idp: &Gatehouse, args: &[&str]) -> String {
    let js = workspace().join("tests/js");
    let mut cmd = tokio::process::Command::new("node");
    cmd.arg(js.join("node_modules/auth0-deploy-cli/lib/index.js"))
        .args(args)
        .env("NODE_EXTRA_CA_CERTS", idp.ca_pem())
        .env("AUTH0_DEBUG", "false")
        .kill_on_drop(true)
        .stdin(std::process::Stdio::null());
    let started = std::time::Instant::now();
    let out =
        tokio::time::timeout(A0DEPLOY_TIMEOUT, cmd.output()).await.expect("a0deploy timed out").expect("running node");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "a0deploy {args:?} failed ({}):\n{text}", out.status);
    println!("a0deploy {} ({:.1}s)", args[0], started.elapsed().as_secs_f64());
    text
}

/// The tenant as the Management API shows it, ids and all, through the official SDK.
pub async fn snapshot(idp: &Gatehouse) -> Value {
    let js = workspace().join("tests/js");
    let mut node = tokio::process::Command::new("node");
    node.arg(js.join("snapshot-tenant.mjs"))
        .args(["--domain", &idp.domain, "--client-id", ADMIN_CLIENT_ID, "--client-secret", ADMIN_CLIENT_SECRET])
        .env("NODE_EXTRA_CA_CERTS", idp.ca_pem());
    run_json("snapshot-tenant.mjs", node).await
}

/// A snapshot without what redeploying an unchanged action renews: timestamps, and the
/// deployed version's id and number.
pub fn stable(mut v: Value) -> Value {
    match &mut v {
        Value::Object(m) => {
            for k in ["updated_at", "created_at", "built_at"] {
                m.remove(k);
            }
            if let Some(Value::Object(version)) = m.get_mut("deployed_version") {
                version.remove("id");
                version.remove("number");
            }
            for (_, child) in m.iter_mut() {
                *child = stable(child.take());
            }
        }
        Value::Array(items) => {
            for item in items.iter_mut() {
                *item = stable(item.take());
            }
        }
        _ => {}
    }
    v
}

#[tokio::test]
async fn deploy_cli_imports_the_guides_tenant_idempotently() {
    let js = workspace().join("tests/js");
    require_file(&js.join("node_modules/auth0-deploy-cli/package.json"), "the npm package auth0-deploy-cli");
    require_file(&js.join("node_modules/auth0/package.json"), "the npm package auth0");
    let idp = Gatehouse::start(Tenant::AdminOnly);
    let work = TempDir::new("deploy-cli");
    let config = config(&idp, work.path());
    let config = config.to_str().unwrap();
    let input = workspace().join("examples/cms-tenant/tenant.yaml");
    let input = input.to_str().unwrap();

    let empty = snapshot(&idp).await;
    assert_eq!(empty["clients"].as_array().unwrap().len(), 1, "only deploy-cli's own application: {empty}");

    a0deploy(&idp, &["import", "--config_file", config, "--input_file", input]).await;
    let first = snapshot(&idp).await;
    let out1 = work.path().join("export1");
    a0deploy(&idp, &["export", "--config_file", config, "--format", "yaml", "--output_folder", out1.to_str().unwrap()])
        .await;

    // What the guide's tenant says is there, with the pinned credentials working.
    let clients = first["clients"].as_array().unwrap();
    let cms = clients.iter().find(|c| c["name"] == "CMS").unwrap_or_else(|| panic!("CMS client: {first}"));
    assert_eq!(cms["app_type"], "regular_web", "{cms}");
    assert_eq!(cms["callbacks"], json!([format!("{}/web-login/callback", dev_env("CMS_BASE_URL"))]), "{cms}");
    assert!(clients.iter().any(|c| c["name"] == "User Management CMS"), "{first}");
    let names: Vec<&str> =
        first["connections"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["dev-users", "google-oauth2", "prod-users"], "{first}");
    let dev = first["connections"].as_array().unwrap().iter().find(|c| c["name"] == "dev-users").unwrap();
    assert_eq!(dev["options"]["disable_signup"], true, "{dev}");
    assert_eq!(dev["enabled_clients"], json!([cms["client_id"]]), "{dev}");
    assert!(first["resource_servers"].as_array().unwrap().iter().any(|r| r["name"] == "CMS API"), "{first}");
    let grants = first["client_grants"].as_array().unwrap();
    assert!(
        grants.iter().any(|g| g["audience"] == format!("https://{}/api/v2/", idp.domain)
            && g["scope"].as_array().unwrap().len() == 8
            && g["client_id"] != ADMIN_CLIENT_ID),
        "the M2M app gets the guide's eight user scopes: {first}"
    );
    assert_eq!(first["tenant"]["friendly_name"], "CMS", "{first}");
    assert_eq!(first["tenant"]["default_directory"], "dev-users", "{first}");
    let export1 = std::fs::read_to_string(out1.join("tenant.yaml")).expect("the export's tenant.yaml");
    assert!(export1.contains("name: CMS") && export1.contains("dev-users"), "{export1}");

    let actions = first["actions"].as_array().unwrap();
    assert_eq!(actions.len(), 1, "{first}");
    assert_eq!((actions[0]["name"].as_str(), actions[0]["status"].as_str()), (Some("inject-id-token"), Some("built")));
    assert_eq!(actions[0]["secrets"][0]["name"], "MIA_NAMESPACE", "{first}");
    assert!(actions[0]["secrets"][0].get("value").is_none(), "secret values are write-only");
    assert_eq!(actions[0]["deployed_version"]["number"], 1, "{first}");
    assert_eq!(first["post_login_bindings"][0]["display_name"], "inject-id-token", "{first}");

    // The second import changes nothing, except that deploy-cli deploys every action marked
    // `deployed` again (a new version, as with Auth0).
    a0deploy(&idp, &["import", "--config_file", config, "--input_file", input]).await;
    let second = snapshot(&idp).await;
    assert_eq!(second["actions"][0]["deployed_version"]["number"], 2, "{second}");
    assert_eq!(stable(first.clone()), stable(second), "the second import changed the tenant");
    let out2 = work.path().join("export2");
    a0deploy(&idp, &["export", "--config_file", config, "--format", "yaml", "--output_folder", out2.to_str().unwrap()])
        .await;
    let export2 = std::fs::read_to_string(out2.join("tenant.yaml")).unwrap();
    assert_eq!(export1, export2, "exports before and after the second import differ");
}
