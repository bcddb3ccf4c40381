//! Tests of tenant.yaml parsing: sections, conversions to store records, referenced files,
//! and the errors a wrong file gets.

use std::path::{Path, PathBuf};

use serde_json::json;

use crate::error::Error;
use crate::{Keywords, TenantFile, parse_tenant};

fn parse(yaml: &str) -> Result<TenantFile, Error> {
    parse_tenant(yaml, ".", &Keywords::new())
}

/// A fresh folder per test under the system temp dir (no temp-file crate needed).
fn temp_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("gatehouse-tenant-{}-{name}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create temp dir");
    dir
}

fn write(dir: &Path, rel: &str, text: &str) {
    let path = dir.join(rel);
    if let Some(parent) = path.parent() {
        std::fs::create_dir_all(parent).expect("create parent");
    }
    std::fs::write(path, text).expect("write file");
}

/// `(section, entry, key)` of a field error, or a panic showing what came instead.
fn field_of(err: Error) -> (String, String, String) {
    match err {
        Error::Field { section, entry, key, .. } => (section, entry, key),
        other => panic!("expected a field error, got {other}"),
    }
}

const ACTION: &str = "
actions:
  - name: a
    code: 'exports.onExecutePostLogin = async () => {};'
    deployed: DEPLOYED
    supported_triggers: [{id: post-login, version: v3}]
";

#[test]
fn empty_file_and_missing_sections_are_empty() {
    for text in ["", "# nothing\n", "tenant:\nclients:\n"] {
        let t = parse(text).expect("empty tenant");
        assert!(t.clients.is_empty() && t.all_connections().next().is_none() && t.triggers.is_empty());
        assert_eq!(t.tenant, store::TenantSettings::default());
    }
}

#[test]
fn wrong_types_name_section_entry_and_key() {
    let err = parse("clients:\n  - name: CMS\n    callbacks: 5\n").unwrap_err();
    assert_eq!(
        err.to_string(),
        "tenant.yaml: clients[\"CMS\"].callbacks: invalid type: integer `5`, expected a sequence"
    );
    let nested = parse("clients:\n  - name: CMS\n    jwt_configuration: {lifetime_in_seconds: long}\n");
    assert_eq!(
        field_of(nested.unwrap_err()),
        ("clients".into(), "\"CMS\"".into(), "jwt_configuration.lifetime_in_seconds".into())
    );
    let tenant = parse("tenant:\n  allowed_logout_urls: [1]\n").unwrap_err();
    assert_eq!(tenant.to_string().split(':').next(), Some("tenant.yaml"));
    assert_eq!(field_of(tenant), ("tenant".into(), "".into(), "allowed_logout_urls[0]".into()));
    let api = parse("resourceServers:\n  - identifier: https://api.test/\n    token_lifetime: soon\n");
    assert_eq!(
        field_of(api.unwrap_err()),
        ("resourceServers".into(), "\"https://api.test/\"".into(), "token_lifetime".into())
    );
    let grant = parse("clientGrants:\n  - client_id: M2M\n    audience: https://a.test/\n    scope: read:users\n");
    assert_eq!(field_of(grant.unwrap_err()).2, "scope");
    let conn = parse("connections:\n  - name: g\n    strategy: google-oauth2\n    options: [1]\n");
    assert_eq!(field_of(conn.unwrap_err()), ("connections".into(), "\"g\"".into(), "options".into()));
    let enabled = parse("databases:\n  - name: db\n    enabled_clients: CMS\n");
    assert_eq!(field_of(enabled.unwrap_err()).2, "enabled_clients");
    let pinned = parse("clients:\n  - name: CMS\n    client_id: 12345\n").unwrap_err();
    assert!(pinned.to_string().contains("quote it"), "{pinned}");
    let action = parse(&ACTION.replace("DEPLOYED", "maybe")).unwrap_err();
    assert_eq!(field_of(action), ("actions".into(), "\"a\"".into(), "deployed".into()));
}

#[test]
fn shape_errors() {
    assert!(matches!(parse("clients: {name: CMS}\n"), Err(Error::Section { .. })));
    assert!(matches!(parse("- a\n- b\n"), Err(Error::Syntax { .. })));
    let unnamed = parse("clients:\n  - app_type: spa\n").unwrap_err();
    assert_eq!(unnamed.to_string(), "tenant.yaml: clients[0]: missing `name`");
    let syntax = parse("clients: [\n").unwrap_err();
    assert!(matches!(syntax, Error::Syntax { ref file, .. } if file == "tenant.yaml"), "{syntax}");
}

#[test]
fn entries_convert_to_store_records_and_keep_unknown_keys() {
    let t = parse(
        "
clients:
  - name: App
    app_type: spa
    custom_login_page_on: true
    callbacks: [https://app.test/cb]
databases:
  - name: users
    enabled_clients: [App]
    options: {disable_signup: true}
connections:
  - name: corp
    strategy: oidc
    options: {issuer: https://idp.test}
resourceServers:
  - identifier: https://api.test/
    allow_offline_access: true
clientGrants:
  - client_id: App
    audience: https://api.test/
    scope: [read:x]
    subject_type: client
pages:
  - name: login
",
    )
    .expect("valid tenant");

    let client = t.clients[0].to_client("cid").expect("client");
    assert_eq!((client.client_id.as_str(), client.name.as_str()), ("cid", "App"));
    assert_eq!(client.callbacks, vec!["https://app.test/cb"]);
    assert_eq!(client.extra.get("custom_login_page_on"), Some(&json!(true)));
    assert_eq!(t.clients[0].client_id, None);

    let db = &t.databases[0];
    assert_eq!((db.strategy.as_str(), db.enabled_client_names()), ("auth0", &["App".to_string()][..]));
    let conn = db.to_connection("con_1", &["cid".into()]).expect("connection");
    assert!(conn.is_database() && conn.signup_disabled() && conn.enabled_for("cid"));
    assert_eq!(conn.realms, vec!["users"]);
    assert_eq!(t.connections[0].enabled_clients, None, "absent enabled_clients stays distinguishable");
    assert_eq!(t.connections[0].strategy, "oidc");

    let api = t.resource_servers[0].to_resource_server("rs1").expect("api");
    assert_eq!((api.name.as_str(), api.token_lifetime, api.allow_offline_access), ("https://api.test/", 86400, true));

    let g = &t.client_grants[0];
    assert_eq!((g.client_name.as_str(), g.scope.clone()), ("App", vec!["read:x".to_string()]));
    let grant = g.to_client_grant("cgr_1", "cid").expect("grant");
    assert_eq!((grant.client_id.as_str(), grant.extra.get("subject_type")), ("cid", Some(&json!("client"))));

    assert_eq!(t.other.get("pages"), Some(&json!([{"name": "login"}])));
    assert!(t.unresolved_references().is_empty());
}

#[test]
fn strategy_rules() {
    let db = parse("databases:\n  - name: d\n    strategy: google-oauth2\n").unwrap_err();
    assert_eq!(field_of(db).2, "strategy");
    let conn = parse("connections:\n  - name: d\n    strategy: auth0\n").unwrap_err();
    assert!(conn.to_string().contains("belong in `databases`"), "{conn}");
    let none = parse("connections:\n  - name: d\n").unwrap_err();
    assert_eq!(field_of(none).2, "strategy");
}

#[test]
fn duplicates_are_rejected() {
    let clients = parse("clients:\n  - name: A\n  - name: A\n").unwrap_err();
    assert!(matches!(clients, Error::Entry { ref section, .. } if section == "clients"), "{clients}");
    let conns = parse("databases:\n  - name: x\nconnections:\n  - name: x\n    strategy: oidc\n").unwrap_err();
    assert!(conns.to_string().contains("across databases and connections"), "{conns}");
    let ids = parse("clients:\n  - {name: A, client_id: same}\n  - {name: B, client_id: same}\n").unwrap_err();
    assert!(ids.to_string().contains("pinned client_id"), "{ids}");
}

#[test]
fn action_code_from_files_inline_or_error() {
    let dir = temp_dir("actions");
    write(&dir, "actions/a/code.js", "// ns: ##NS##\nexports.onExecutePostLogin = async () => {};\n");
    let mut k = Keywords::new();
    k.insert("NS", "https://ns.test/");
    let yaml = ACTION.replace("DEPLOYED", "true");
    let file_yaml = yaml.replace("'exports.onExecutePostLogin = async () => {};'", "./actions/a/code.js");

    let t = parse_tenant(&file_yaml, &dir, &k).expect("action from file");
    let a = &t.actions[0];
    assert!(a.code.starts_with("// ns: https://ns.test/\n"), "keywords replaced in code: {}", a.code);
    assert_eq!(a.code_path.as_deref(), Some(dir.join("./actions/a/code.js").as_path()));
    assert_eq!((a.runtime.as_str(), a.deployed), ("node18", true));

    let inline = parse_tenant(&yaml, &dir, &k).expect("inline action");
    assert_eq!(inline.actions[0].code, "exports.onExecutePostLogin = async () => {};");
    assert_eq!(inline.actions[0].code_path, None);

    let missing = parse_tenant(&file_yaml.replace("actions/a/", "actions/b/"), &dir, &k).unwrap_err();
    assert_eq!(field_of(missing).2, "code");
    let missing_js = parse_tenant(&yaml.replace("'exports.onExecutePostLogin = async () => {};'", "gone.js"), &dir, &k);
    assert!(missing_js.unwrap_err().to_string().contains("not found"));

    // A keyword missing in the code file stays as text, as deploy-cli leaves it, and is
    // listed against that file; the strict reading refuses it.
    let t = parse_tenant(&file_yaml, &dir, &Keywords::new()).expect("markers without value stay");
    assert!(t.actions[0].code.starts_with("// ns: ##NS##\n"), "{}", t.actions[0].code);
    let u = &t.unresolved_keywords;
    assert_eq!(u.len(), 1, "{u:?}");
    assert!(u[0].origin.ends_with("code.js") && u[0].name == "NS" && u[0].line == 1, "{u:?}");
    match t.require_keywords(&Keywords::new()).unwrap_err() {
        Error::MissingKeywords { origin, missing, .. } => {
            assert!(origin.ends_with("code.js"), "{origin}");
            assert_eq!(missing, vec![("NS".to_string(), 1)]);
        }
        other => panic!("{other}"),
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn action_secrets_and_triggers() {
    let t = parse(
        "
actions:
  - name: a
    code: 'x'
    deployed: true
    secrets: [{name: S, value: v}]
    supported_triggers: [{id: post-login, version: v3}]
    status: built
triggers:
  post-login:
    - action_name: a
  credentials-exchange: []
  send-phone-message:
",
    )
    .expect("valid");
    assert_eq!(t.actions[0].secrets, vec![("S".to_string(), "v".to_string())]);
    assert_eq!(t.actions[0].secret("S"), Some("v"));
    assert_eq!(t.actions[0].extra.get("status"), Some(&json!("built")));
    assert!(!format!("{:?}", t.actions[0]).contains("\"v\""), "secret values stay out of Debug");
    assert_eq!(t.bindings("post-login")[0].display_name, "a");
    assert!(t.bindings("credentials-exchange").is_empty() && t.bindings("send-phone-message").is_empty());

    let no_value =
        parse(&ACTION.replace("DEPLOYED", "true").replace("    supported", "    secrets: [{name: S}]\n    supported"));
    // deploy-cli exports secrets by name only and imports them so.
    assert_eq!(no_value.expect("a secret without value").actions[0].unset_secrets, ["S"]);

    let bound = |deployed: &str, trigger: &str| {
        parse(&format!("{}triggers:\n  {trigger}:\n    - action_name: a\n", ACTION.replace("DEPLOYED", deployed)))
    };
    assert!(bound("true", "post-login").is_ok());
    let undeployed = bound("false", "post-login").unwrap_err();
    assert!(undeployed.to_string().contains("not deployed"), "{undeployed}");
    assert_eq!(field_of(undeployed), ("triggers".into(), "\"post-login\"".into(), "[0].action_name".into()));
    let wrong = bound("true", "pre-user-registration").unwrap_err();
    assert!(wrong.to_string().contains("supported_triggers"), "{wrong}");

    let dangling = parse("triggers:\n  post-login:\n    - action_name: elsewhere\n").expect("allowed");
    assert_eq!(dangling.unresolved_references().len(), 1);
}

#[test]
fn at_keywords_inject_lists() {
    let mut k = Keywords::new();
    k.insert("URLS", r#"["https://a.test", "https://b.test"]"#).insert("NAME", "Tenant: \"x\"");
    let t = parse_tenant("tenant:\n  friendly_name: @@NAME@@\n  allowed_logout_urls: @@URLS@@\n", ".", &k)
        .expect("valid after replacement");
    assert_eq!(t.tenant.allowed_logout_urls, vec!["https://a.test", "https://b.test"]);
    assert_eq!(t.tenant.friendly_name.as_deref(), Some("Tenant: \"x\""));
}

#[test]
fn yaml_merge_keys_and_anchors() {
    let t = parse(
        "
databases:
  - name: a
    options: &opts {disable_signup: true, passwordPolicy: good}
  - name: b
    options:
      <<: *opts
      passwordPolicy: excellent
",
    )
    .expect("anchors");
    let b = t.databases[1].to_connection("c", &[]).expect("connection");
    assert!(b.signup_disabled());
    assert_eq!(b.options.get("passwordPolicy"), Some(&json!("excellent")));
}

#[test]
fn grants_are_labelled_by_client_and_audience() {
    let bad = parse("clientGrants:\n  - client_id: M\n    audience: https://a/\n    scope: 3\n");
    assert_eq!(
        bad.unwrap_err().to_string(),
        "tenant.yaml: clientGrants[\"M\" -> \"https://a/\"].scope: invalid type: integer `3`, expected a sequence"
    );
    let twice = "  - {client_id: M, audience: https://a/, scope: []}\n";
    let dup = parse(&format!("clientGrants:\n{twice}{twice}")).unwrap_err();
    assert!(dup.to_string().starts_with("tenant.yaml: clientGrants[\"M\" -> \"https://a/\"]: a grant"), "{dup}");
}

#[test]
fn database_custom_scripts_are_read_from_files() {
    let dir = temp_dir("scripts");
    write(&dir, "databases/users/login.js", "function login() { return '##X##'; }\n");
    let mut k = Keywords::new();
    k.insert("X", "x");
    let yaml = "databases:\n  - name: users\n    options:\n      customScripts:\n        login: ./databases/users/login.js\n        verify: 'function verify() {}'\n";
    let t = parse_tenant(yaml, &dir, &k).expect("scripts");
    let conn = t.databases[0].to_connection("c", &[]).expect("connection");
    let scripts = &conn.options["customScripts"];
    assert_eq!(scripts["login"], json!("function login() { return 'x'; }\n"));
    assert_eq!(scripts["verify"], json!("function verify() {}"));
    let missing = parse_tenant(&yaml.replace("users/login", "users/gone"), &dir, &k).unwrap_err();
    assert_eq!(field_of(missing).2, "options.customScripts.login");
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn unreadable_files_are_io_errors_naming_the_path() {
    let err = crate::load_tenant("/nonexistent/tenant.yaml", &Keywords::new()).unwrap_err();
    assert!(err.to_string().starts_with("cannot read /nonexistent/tenant.yaml"), "{err}");
    assert!(matches!(Keywords::from_env_file("/nonexistent/dev.env"), Err(Error::Io { .. })));
}

#[test]
fn keywords_in_yaml_comments_are_not_content() {
    // The situation of issue 20: deploy-cli imports this file; `##KEYWORDS##` is in a comment.
    let yaml = "# Values come from ##KEYWORDS## in config.json\nclients:\n  - name: App # see ##DOCS##\n    description: \"##MISSING##\"\n";
    let t = parse(yaml).expect("parses");
    let listed: Vec<(&str, usize)> = t.unresolved_keywords.iter().map(|u| (u.name.as_str(), u.line)).collect();
    assert_eq!(listed, [("MISSING", 4)]);
    assert_eq!(t.clients[0].body["description"], json!("##MISSING##"), "left as text, as deploy-cli sends it");
}

#[test]
fn json_keywords_must_fit_where_they_stand() {
    let mut mappings = std::collections::BTreeMap::new();
    mappings.insert("URLS".to_string(), json!(["https://a.test", "https://b.test"]));
    mappings.insert("ONE".to_string(), json!("https://one.test"));
    let k = Keywords::new().with_mappings(mappings, "config.json");
    let ok = parse_tenant("clients:\n  - name: App\n    callbacks: '@@URLS@@'\n", ".", &k).unwrap();
    assert_eq!(ok.clients[0].body["callbacks"], json!(["https://a.test", "https://b.test"]));
    let err = parse_tenant("clients:\n  - name: App\n    callbacks: \"https://x/@@URLS@@\"\n", ".", &k).unwrap_err();
    assert!(err.to_string().starts_with("tenant.yaml line 3: @@URLS@@ stands next to other text"), "{err}");
    let err = parse_tenant("clients:\n  - name: App\n    callbacks: @@ONE@@\n", ".", &k).unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("clients[\"App\"].callbacks") && msg.contains("@@ONE@@ = \"https://one.test\", line 3"),
        "{msg}"
    );
}

#[test]
fn sections_record_presence_and_roles_parse() {
    let t = parse("clients: []\nroles:\n  - name: Admin\n    description: all\n    permissions:\n      - {permission_name: read, resource_server_identifier: https://api}\n").unwrap();
    assert!(t.has_section("clients") && t.has_section("roles") && !t.has_section("connections"));
    assert_eq!(t.role("Admin").unwrap().permissions[0].resource_server_identifier, "https://api");
    let t = parse("roles:\n  - {name: A, type: tenant, id: rol_1}\n").unwrap();
    assert!(t.roles[0].body.is_empty(), "deploy-cli's `type` and `id` are not sent");
    let err = parse("roles:\n  - {name: A, type: organization}\n").unwrap_err();
    assert!(err.to_string().contains("only tenant roles"), "{err}");
    let err = parse("roles:\n  - name: A\n  - name: A\n").unwrap_err();
    assert!(err.to_string().contains("roles[\"A\"]"), "{err}");
    let err = parse("roles:\n  - name: A\n    permissions: [read]\n").unwrap_err();
    assert_eq!(field_of(err).2, "permissions[0]");
}
