//! Provisioning from the example tenant: every guide step lands in the store, and importing
//! the same files again changes nothing.

use crate::harness::*;
use serde_json::{Value, json};
use std::sync::Arc;
use store::Store;

async fn snapshot(store: &dyn Store) -> Value {
    let mut clients: Vec<Value> =
        store.clients().await.unwrap().into_iter().map(|c| json!([c.client, c.secret_sha256])).collect();
    clients.sort_by_key(|c| c.to_string());
    let mut connections: Vec<Value> = store.connections().await.unwrap().into_iter().map(|c| json!(c)).collect();
    connections.sort_by_key(|c| c.to_string());
    let mut apis: Vec<Value> = store.resource_servers().await.unwrap().into_iter().map(|c| json!(c)).collect();
    apis.sort_by_key(|c| c.to_string());
    let mut grants: Vec<Value> = store.client_grants().await.unwrap().into_iter().map(|c| json!(c)).collect();
    grants.sort_by_key(|c| c.to_string());
    let actions = store.actions().await.unwrap();
    let mut versions = Vec::new();
    let mut triggers = Vec::new();
    for a in &actions {
        versions.extend(store.action_versions(&a.action.id).await.unwrap().into_iter().map(|v| json!(v.version)));
        triggers.push(store.action_triggers(&a.action.id).await.unwrap());
    }
    json!({
        "settings": store.tenant_settings().await.unwrap(),
        "clients": clients, "connections": connections, "apis": apis, "grants": grants,
        "actions": actions.iter().map(|a| json!(a.action)).collect::<Vec<_>>(),
        "bindings": store.trigger_bindings("post-login").await.unwrap(), "triggers": triggers,
        "versions": versions,
    })
}

async fn import_twice(store: Arc<dyn Store>) {
    let t = start_on(store.clone(), true, |_| {}).await;
    let first = snapshot(store.as_ref()).await;
    let mut words = keywords();
    words.insert("AUTH0_DOMAIN", t.idp.config.domain());
    let file = tenant::load_tenant(example_dir().join("tenant.yaml"), &words).unwrap();
    let report = idp::provision::apply_tenant(&t.idp, &file).await.unwrap();
    assert!(report.generated_credentials.is_empty(), "pinned credentials are never regenerated");
    let users = tenant::load_users(example_dir().join("users.json"), &words).unwrap();
    let again = idp::provision::import_users(&t.idp, "dev-users", &users).await.unwrap();
    assert_eq!((again.created, again.existing), (0, 2));
    assert_eq!(snapshot(store.as_ref()).await, first);

    // The guide's steps, as stored.
    let settings = store.tenant_settings().await.unwrap();
    assert_eq!(settings.default_directory.as_deref(), Some("dev-users"));
    assert!(settings.allowed_logout_urls.contains(&"http://localhost:8080".to_string()));
    let cms = store.client(&kw("CMS_CLIENT_ID")).await.unwrap().unwrap().client;
    assert_eq!(cms.callbacks, vec![CALLBACK.to_string()]);
    assert_eq!(cms.jwt_configuration.lifetime_in_seconds, 36000);
    let api = store.resource_server_by_identifier("http://localhost:8080/").await.unwrap().unwrap();
    assert_eq!(api.token_lifetime, cms.jwt_configuration.lifetime_in_seconds, "guide: lifetimes match");
    for db in ["dev-users", "prod-users"] {
        let c = store.connection_by_name(db).await.unwrap().unwrap();
        assert!(c.signup_disabled() && c.enabled_for(&cms.client_id), "{db}");
    }
    assert!(!store.connection_by_name("google-oauth2").await.unwrap().unwrap().enabled_for(&cms.client_id));
    let grant =
        store.client_grant_for(&kw("MGMT_CLIENT_ID"), &t.idp.config.management_audience()).await.unwrap().unwrap();
    assert!(grant.scope.contains(&"update:users_app_metadata".to_string()));
    let admin = store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap();
    assert_eq!(admin.user.app_metadata["groups"], json!(["admin"]));
    assert!(admin.password_hash.unwrap().starts_with("$2b$"));
    let stored = store.actions().await.unwrap();
    let actions: Vec<Value> = stored.iter().map(|a| json!(a.action)).collect();
    assert_eq!(actions[0]["name"], "inject-id-token");
    assert!(actions[0]["code"].as_str().unwrap().contains("MIA_NAMESPACE"));
    assert_eq!(actions[0]["secrets"][0]["name"], "MIA_NAMESPACE");
    assert!(actions[0]["secrets"][0].get("value").is_none(), "secret values stay out of the action document");
    let sealed = json!(stored[0].secrets);
    assert!(!sealed.to_string().contains(&kw("MIA_NAMESPACE")), "secrets are encrypted at rest: {sealed}");
    assert!(actions[0]["deployed_version"].is_string() && actions[0]["status"] == "built");
    let bindings = store.trigger_bindings("post-login").await.unwrap();
    assert_eq!(json!(bindings[0].action_id), actions[0]["id"]);
}

#[tokio::test]
async fn importing_twice_changes_nothing_sqlite() {
    import_twice(sqlite_store().await).await;
}

#[tokio::test]
async fn importing_twice_changes_nothing_postgres() {
    import_twice(pg_store("import").await).await;
}

#[tokio::test]
async fn provisioned_connections_match_api_created_ones() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let http = reqwest::Client::new();
    let get = |name: &str| http.get(t.url("api/v2/connections")).query(&[("name", name)]).bearer_auth(&tok).send();
    let (status, list) = json(get("dev-users").await.unwrap()).await;
    assert_eq!(status, 200, "{list}");
    let provisioned = list[0].clone();

    // The same entry of the tenant file, created through the Management API instead.
    let mut words = keywords();
    words.insert("AUTH0_DOMAIN", t.idp.config.domain());
    let file = tenant::load_tenant(example_dir().join("tenant.yaml"), &words).unwrap();
    let spec = file.databases.iter().find(|d| d.name == "dev-users").unwrap();
    let mut body = spec.body.clone();
    body.insert("name".into(), json!("api-users"));
    body.insert("strategy".into(), json!(spec.strategy));
    body.insert("enabled_clients".into(), provisioned["enabled_clients"].clone());
    let res = http.post(t.url("api/v2/connections")).bearer_auth(&tok).json(&body).send().await.unwrap();
    let (status, created) = json(res).await;
    assert_eq!(status, 201, "{created}");
    let (_, list) = json(get("api-users").await.unwrap()).await;
    let through_api = list[0].clone();
    assert_eq!(through_api, created, "stored as created");

    // Auth0's defaults for a new database connection, whichever path created it.
    for c in [&provisioned, &through_api] {
        assert_eq!(c["options"]["strategy_version"], 2, "{c}");
        assert_eq!(c["options"]["mfa"], json!({"active": true, "return_enroll_settings": true}), "{c}");
    }
    let keys = |c: &Value| c["options"].as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&provisioned), keys(&through_api));
    assert_eq!(provisioned["options"], through_api["options"]);
    // Everything but the identity is the same record.
    let strip = |c: &Value| {
        let mut c = c.clone();
        for k in ["id", "name", "realms"] {
            c.as_object_mut().unwrap().remove(k);
        }
        c
    };
    assert_eq!(strip(&provisioned), strip(&through_api));
    assert_eq!(through_api["realms"], json!(["api-users"]));
}

#[tokio::test]
async fn imported_auth0_bcrypt_hashes_log_in() {
    let t = start().await;
    let real = bcrypt_hash("Imported-Passw0rd!");
    assert!(real.starts_with("$2a$10$"));
    let import = format!(
        r#"[{{"email": "old@cms.example.test", "email_verified": true, "custom_password_hash": {{"algorithm": "bcrypt", "hash": {{"value": "{real}"}}}}}}]"#
    );
    let users = tenant::parse_users(&import, &tenant::Keywords::new()).unwrap();
    let report = idp::provision::import_users(&t.idp, "dev-users", &users).await.unwrap();
    assert_eq!(report.created, 1, "{:?}", report.errors);
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("username", "old@cms.example.test"),
            ("password", "Imported-Passw0rd!"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let stored = t.idp.store.user_by_login("dev-users", "old@cms.example.test").await.unwrap().unwrap();
    assert!(stored.password_hash.unwrap().starts_with("$2b$04$"), "rehashed to the configured cost at login");
}

/// A `$2a$10$` hash, the form Auth0 exports.
fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash_with_result(password, 10).unwrap().format_for_version(bcrypt::Version::TwoA)
}
