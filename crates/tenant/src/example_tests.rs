//! examples/cms-tenant must load completely with its dev.env and carry every step of the
//! "Configure Auth0" guide with the values the guide asks for.

use std::path::PathBuf;

use crate::{ImportPassword, Keywords, load_tenant, load_users};

fn example_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cms-tenant")
}

/// dev.env plus what the idp supplies itself.
fn keywords() -> Keywords {
    let mut k = Keywords::from_env_file(example_dir().join("dev.env")).expect("dev.env parses");
    k.insert("AUTH0_DOMAIN", "localhost:8443");
    k
}

const BASE: &str = "http://localhost:8080";

#[test]
fn dev_env_has_the_documented_values() {
    let k = keywords();
    let get = |key: &str| k.get(key).unwrap_or_else(|| panic!("{key} missing from dev.env"));
    assert_eq!(get("CMS_BASE_URL"), BASE);
    for id in ["CMS_CLIENT_ID", "MGMT_CLIENT_ID"] {
        let v = get(id);
        assert!(v.len() == 32 && v.chars().all(|c| c.is_ascii_alphanumeric()), "{id}");
    }
    for secret in ["CMS_CLIENT_SECRET", "MGMT_CLIENT_SECRET"] {
        let v = get(secret);
        assert!(v.len() == 64 && v.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_'), "{secret}");
    }
    assert_eq!(get("ADMIN_EMAIL"), "admin@cms.example.test");
    assert_eq!(get("USER_EMAIL"), "user@cms.example.test");
    assert_eq!(get("MIA_NAMESPACE"), "https://cms.example.test/");
    for pw in ["ADMIN_PASSWORD", "USER_PASSWORD"] {
        // Auth0's "good" policy: 8+ characters and 3 of lower, upper, digit, special.
        let v = get(pw);
        let kinds = [
            v.chars().any(|c| c.is_ascii_lowercase()),
            v.chars().any(|c| c.is_ascii_uppercase()),
            v.chars().any(|c| c.is_ascii_digit()),
            v.chars().any(|c| !c.is_ascii_alphanumeric()),
        ];
        assert!(v.len() >= 8 && kinds.iter().filter(|k| **k).count() >= 3, "{pw}");
    }
    let file_only = Keywords::from_env_file(example_dir().join("dev.env")).expect("dev.env parses");
    assert_eq!(file_only.get("AUTH0_DOMAIN"), None, "the idp supplies AUTH0_DOMAIN");
}

#[test]
fn example_tenant_has_every_guide_step() {
    let k = keywords();
    let t = load_tenant(example_dir().join("tenant.yaml"), &k).expect("example tenant loads");
    assert!(t.unresolved_references().is_empty(), "{:?}", t.unresolved_references());
    assert!(t.other.is_empty(), "only sections Gatehouse interprets: {:?}", t.other.keys());

    // Step 1.1 + 2: the Regular Web Application with its URLs and token settings.
    let cms = t.client("CMS").expect("CMS application");
    assert_eq!(cms.client_id, k.get("CMS_CLIENT_ID"));
    assert_eq!(cms.client_secret, k.get("CMS_CLIENT_SECRET"));
    let c = cms.to_client(cms.client_id.as_deref().unwrap_or_default()).expect("CMS client");
    assert_eq!(c.app_type.as_deref(), Some("regular_web"));
    assert_eq!(c.callbacks, vec![format!("{BASE}/web-login/callback")]);
    assert_eq!(c.web_origins, vec![BASE]);
    assert_eq!(c.allowed_logout_urls, vec![BASE.to_string(), format!("{BASE}/web-login/callback")]);
    for g in ["authorization_code", "refresh_token", "password", "http://auth0.com/oauth/grant-type/password-realm"] {
        assert!(c.allows_grant(g), "CMS grant type {g}");
    }
    assert_eq!((c.jwt_configuration.alg.as_str(), c.jwt_configuration.lifetime_in_seconds), ("RS256", 36000));
    assert_eq!(c.token_endpoint_auth_method, "client_secret_post");
    assert!(c.oidc_conformant && c.refresh_token.rotating());
    assert!(!c.refresh_token.infinite_token_lifetime && c.refresh_token.token_lifetime > 0);
    assert!(!c.extra.contains_key("client_secret"), "secrets never enter the document");

    // Step 1.2: the Machine-to-Machine application.
    let mgmt = t.client("User Management CMS").expect("M2M application");
    assert_eq!(mgmt.client_id, k.get("MGMT_CLIENT_ID"));
    assert_eq!(mgmt.client_secret, k.get("MGMT_CLIENT_SECRET"));
    let m = mgmt.to_client("m2m").expect("M2M client");
    assert_eq!(m.app_type.as_deref(), Some("non_interactive"));
    assert_eq!(m.grant_types, vec!["client_credentials"]);

    // Step 2 / 6: tenant-level logout URLs.
    assert_eq!(t.tenant.friendly_name.as_deref(), Some("CMS"));
    assert_eq!(t.tenant.allowed_logout_urls, vec![BASE.to_string(), format!("{BASE}/web-login/callback")]);
    assert_eq!(t.tenant.default_directory.as_deref(), Some("dev-users"));
    assert_eq!(t.tenant.default_audience, None);

    // Step 3: one database per environment, sign-up disabled, enabled for the CMS.
    let names: Vec<&str> = t.databases.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, vec!["dev-users", "prod-users"]);
    for db in &t.databases {
        assert_eq!(db.enabled_client_names(), &["CMS".to_string()]);
        let conn = db.to_connection("con_x", &["cms-id".into()]).expect("database");
        assert!(conn.is_database() && conn.signup_disabled() && conn.enabled_for("cms-id"), "{}", db.name);
        assert_eq!(conn.options.get("passwordPolicy"), Some(&"good".into()));
        assert_eq!(conn.options.get("brute_force_protection"), Some(&true.into()));
    }

    // Step 4: Google present but enabled for no application.
    let google = t.connection("google-oauth2").expect("google connection");
    assert_eq!(google.strategy, "google-oauth2");
    assert_eq!(google.enabled_clients, Some(vec![]));
    let g = google.to_connection("con_g", &[]).expect("google");
    assert_eq!(g.options.get("scope"), Some(&serde_json::json!(["email", "profile"])));

    // Step 5.1 + token lifetimes: the API, same lifetime as the CMS ID token.
    let api = t.resource_server(&format!("{BASE}/")).expect("CMS API");
    let rs = api.to_resource_server("rs").expect("API");
    assert_eq!((rs.signing_alg.as_str(), rs.token_lifetime), ("RS256", c.jwt_configuration.lifetime_in_seconds));
    assert!(rs.allow_offline_access);

    // Step 5.2: the Management API grant with every user permission.
    let grant = &t.client_grants[0];
    assert_eq!(grant.client_name, "User Management CMS");
    assert_eq!(grant.audience, "https://localhost:8443/api/v2/");
    let mut scopes = grant.scope.clone();
    scopes.sort();
    let mut want: Vec<String> = ["read", "update", "delete", "create"]
        .iter()
        .flat_map(|verb| [format!("{verb}:users"), format!("{verb}:users_app_metadata")])
        .collect();
    want.sort();
    assert_eq!(scopes, want);

    // Step 5.3 + 5.4: the post-login action, its secret and its binding.
    let action = t.action("inject-id-token").expect("action");
    assert_eq!(action.secret("MIA_NAMESPACE"), Some("https://cms.example.test/"));
    assert_eq!((action.runtime.as_str(), action.deployed), ("node18", true));
    assert!(action.supports("post-login"));
    assert_eq!(action.supported_triggers[0].version, "v3");
    for needle in [
        "exports.onExecutePostLogin",
        "const { MIA_NAMESPACE } = secrets;",
        "console.warn('WARNING: user.app_metadata is empty')",
        "setCustomClaim(`${MIA_NAMESPACE}app_metadata`, app_metadata)",
        "setCustomClaim(`${MIA_NAMESPACE}user_metadata`, user_metadata)",
    ] {
        assert!(action.code.contains(needle), "action code lacks {needle}");
    }
    let opens = action.code.matches('{').count();
    assert_eq!(opens, action.code.matches('}').count(), "braces balance (the guide's snippet does not)");
    let bindings = t.bindings("post-login");
    assert_eq!(bindings.len(), 1);
    assert_eq!(
        (bindings[0].action_name.as_str(), bindings[0].display_name.as_str()),
        ("inject-id-token", "inject-id-token")
    );
}

#[test]
fn example_tenant_needs_the_idp_domain() {
    let k = Keywords::from_env_file(example_dir().join("dev.env")).expect("dev.env parses");
    let file = load_tenant(example_dir().join("tenant.yaml"), &k).expect("markers without value stay");
    let err = file.require_keywords(&k).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("AUTH0_DOMAIN") && msg.contains("tenant.yaml") && msg.contains("dev.env"), "{msg}");
}

#[test]
fn example_users_import() {
    let k = keywords();
    let users = load_users(example_dir().join("users.json"), &k).expect("users.json loads");
    assert!(users.errors.is_empty(), "{:?}", users.errors);
    assert_eq!(users.rows.len(), 2);
    let admin = &users.rows[0];
    assert_eq!(admin.email, "admin@cms.example.test");
    assert!(admin.email_verified);
    assert_eq!(admin.password, Some(ImportPassword::Plain("Admin-Passw0rd!".into())));
    // Step 8: the first user reaches the CMS through the admin group.
    assert_eq!(admin.app_metadata.get("groups"), Some(&serde_json::json!(["admin"])));
    let user = &users.rows[1];
    assert_eq!(user.email, "user@cms.example.test");
    assert_eq!(user.password, Some(ImportPassword::Plain("User-Passw0rd!".into())));
    assert!(!user.app_metadata.contains_key("groups"));
}
