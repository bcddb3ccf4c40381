//! `gatehouse tenant export | import` against real `gatehouse idp --tls` processes, through the
//! binary as users run it: the guide's tenant (`examples/cms-tenant`) is imported into an empty
//! idp, exported, imported into a second empty idp and exported again — the two exports must
//! be the same files — and every second import must change nothing. Errors (wrong
//! credentials, an unreachable tenant, a broken file, an import failing half-way) must exit
//! non-zero with a message that says what happened, never a panic. A connection's upstream
//! secret never reaches an export unless asked for, and imports merge connection options as
//! deep as they compare them.

use crate::sdk_support::{ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, Gatehouse, Tenant};
use crate::support::{TempDir, dev_env, workspace};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::Command;

/// The finished `gatehouse` run: status, stdout, stderr.
pub struct Run {
    pub ok: bool,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn text(&self) -> String {
        format!("--- stdout\n{}--- stderr\n{}", self.stdout, self.stderr)
    }
}

/// `gatehouse ARGS` with a clean environment (no AUTH0_* / GATEHOUSE_* / SSL_CERT_FILE of the
/// developer's shell), to completion.
pub fn gatehouse(args: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    cmd.args(args);
    for (key, _) in std::env::vars_os() {
        let k = key.to_string_lossy();
        if k.starts_with("GATEHOUSE_") || k.starts_with("AUTH0_") || k == "SSL_CERT_FILE" || k == "MIA_NAMESPACE" {
            cmd.env_remove(key);
        }
    }
    cmd.envs(envs.iter().copied());
    let out = cmd.output().expect("running gatehouse");
    let run = Run {
        ok: out.status.success(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    };
    assert!(!run.stderr.contains("panicked"), "gatehouse panicked:\n{}", run.text());
    run
}

fn example() -> PathBuf {
    workspace().join("examples/cms-tenant")
}

fn dev_env_file() -> String {
    example().join("dev.env").display().to_string()
}

/// `--domain … --client-id … --client-secret … --ca-file …` for the administration
/// application of `idp`, as strings.
fn remote(idp: &Gatehouse) -> Vec<String> {
    vec![
        "--domain".into(),
        idp.domain.clone(),
        "--client-id".into(),
        ADMIN_CLIENT_ID.into(),
        "--client-secret".into(),
        ADMIN_CLIENT_SECRET.into(),
        "--ca-file".into(),
        idp.ca_pem().display().to_string(),
    ]
}

fn import(idp: &Gatehouse, file: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec!["tenant".into(), "import".into(), file.display().to_string()];
    args.extend(remote(idp));
    args.extend(["--keywords".into(), dev_env_file()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    gatehouse(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

fn export(idp: &Gatehouse, out: &Path) -> Run {
    export_with(idp, out, &[])
}

fn export_with(idp: &Gatehouse, out: &Path, extra: &[&str]) -> Run {
    let mut args: Vec<String> = vec!["tenant".into(), "export".into(), "-o".into(), out.display().to_string()];
    args.extend(remote(idp));
    args.extend(["--keywords".into(), dev_env_file()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    gatehouse(&args.iter().map(String::as_str).collect::<Vec<_>>(), &[])
}

/// `import`, with keyword values in the environment too.
fn import_with(idp: &Gatehouse, file: &Path, extra: &[&str], envs: &[(&str, &str)]) -> Run {
    let mut args: Vec<String> = vec!["tenant".into(), "import".into(), file.display().to_string()];
    args.extend(remote(idp));
    args.extend(["--keywords".into(), dev_env_file()]);
    args.extend(extra.iter().map(|s| s.to_string()));
    gatehouse(&args.iter().map(String::as_str).collect::<Vec<_>>(), envs)
}

/// One Management API call to `idp` as the administration application.
pub fn management(idp: &Gatehouse, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
    auth0_client::install_crypto_provider();
    let credentials = tenant::Credentials {
        domain: idp.domain.clone(),
        client_id: ADMIN_CLIENT_ID.into(),
        client_secret: ADMIN_CLIENT_SECRET.into(),
        ca_pem: Some(std::fs::read(idp.ca_pem()).unwrap()),
    };
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
    runtime.block_on(async {
        let api = tenant::ManagementClient::connect(&credentials).await.expect("a Management API token");
        api.call(method, path, body.as_ref()).await.unwrap_or_else(|e| panic!("{path}: {e}"))
    })
}

/// The connection named `name` as the idp's Management API shows it.
fn connection(idp: &Gatehouse, name: &str) -> Value {
    let answer = management(idp, reqwest::Method::GET, &format!("/connections?name={name}"), None);
    let list = answer.get("connections").unwrap_or(&answer).as_array().cloned().unwrap_or_default();
    assert_eq!(list.len(), 1, "connection {name}: {answer}");
    list[0].clone()
}

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The example tenant's ten objects: settings, 2 clients, 1 API, 3 connections, 1 grant,
/// 1 action, 1 trigger.
const EXAMPLE_OBJECTS: usize = 10;

/// An API with scopes and two roles granting them, imported next to the example.
const ROLES_YAML: &str = "\
resourceServers:
  - name: Orders API
    identifier: https://orders.example.test/
    scopes:
      - {value: read:orders, description: Read orders}
      - {value: write:orders, description: Write orders}
roles:
  - name: Order admin
    description: Reads and writes orders
    permissions:
      - {permission_name: read:orders, resource_server_identifier: https://orders.example.test/}
      - {permission_name: write:orders, resource_server_identifier: https://orders.example.test/}
  - name: Order reader
    permissions:
      - {permission_name: read:orders, resource_server_identifier: https://orders.example.test/}
";

/// The permissions of the role named `name`, as `permission_name@identifier`, sorted.
fn role_permissions(idp: &Gatehouse, name: &str) -> Vec<String> {
    let roles =
        management(idp, reqwest::Method::GET, &format!("/roles?name_filter={}", name.replace(' ', "%20")), None);
    let roles = roles.as_array().cloned().unwrap_or_default();
    let role = roles.iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("no role {name}: {roles:?}"));
    let id = role["id"].as_str().unwrap();
    let list = management(idp, reqwest::Method::GET, &format!("/roles/{id}/permissions"), None);
    let mut out: Vec<String> = list
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            format!("{}@{}", p["permission_name"].as_str().unwrap(), p["resource_server_identifier"].as_str().unwrap())
        })
        .collect();
    out.sort();
    out
}

#[test]
fn export_import_export_gives_the_same_files_and_imports_are_idempotent() {
    let work = TempDir::new("tenant-remote");
    let a = Gatehouse::start(Tenant::AdminOnly);

    let first = import(&a, &example().join("tenant.yaml"), &[]);
    assert!(first.ok, "{}", first.text());
    assert!(first.stdout.contains("create    client \"CMS\"\n"), "{}", first.text());
    assert!(first.stdout.contains("create    action \"inject-id-token\": deployed\n"), "{}", first.text());
    assert!(first.stdout.contains("8 created, 2 updated, 0 unchanged"), "{}", first.text());
    let again = import(&a, &example().join("tenant.yaml"), &[]);
    assert!(again.ok, "{}", again.text());
    assert!(again.stdout.contains(&format!("0 created, 0 updated, {EXAMPLE_OBJECTS} unchanged")), "{}", again.text());
    // Roles (and the API whose scopes they grant) from a second file.
    let roles_yaml = work.path().join("roles.yaml");
    std::fs::write(&roles_yaml, ROLES_YAML).unwrap();
    let roles = import(&a, &roles_yaml, &[]);
    assert!(roles.ok, "{}", roles.text());
    assert!(roles.stdout.contains("create    role \"Order admin\"\n"), "{}", roles.text());
    assert!(roles.stdout.contains("3 created, 0 updated, 0 unchanged"), "{}", roles.text());
    let roles = import(&a, &roles_yaml, &[]);
    assert!(roles.stdout.contains("0 created, 0 updated, 3 unchanged"), "{}", roles.text());

    let e1 = work.path().join("export1");
    let run = export(&a, &e1);
    assert!(run.ok, "{}", run.text());
    let yaml1 = read(&e1.join("tenant.yaml"));
    // Keyword values went back to their markers; no secret is written in clear.
    for line in [
        "      - \"##CMS_BASE_URL##/web-login/callback\"\n",
        "    audience: \"https://##AUTH0_DOMAIN##/api/v2/\"\n",
        "        value: \"##MIA_NAMESPACE##\"\n",
        "    code: \"./actions/inject-id-token/code.js\"\n",
    ] {
        assert!(yaml1.contains(line), "missing {line:?} in\n{yaml1}");
    }
    for secret in [dev_env("CMS_CLIENT_SECRET"), dev_env("MGMT_CLIENT_SECRET"), ADMIN_CLIENT_SECRET.into()] {
        assert!(!yaml1.contains(&secret), "a client secret in the export:\n{yaml1}");
    }
    assert!(!yaml1.contains("Gatehouse SDK tests"), "the exporting application is left out:\n{yaml1}");
    let code = read(&example().join("actions/inject-id-token/code.js"));
    assert_eq!(read(&e1.join("actions/inject-id-token/code.js")), code);
    // Roles as deploy-cli writes them: name, description (when set), permissions.
    let roles_section = yaml1.split("\nroles:\n").nth(1).unwrap_or_else(|| panic!("no roles in\n{yaml1}"));
    assert!(
        roles_section.starts_with(concat!(
            "  - name: \"Order admin\"\n",
            "    description: \"Reads and writes orders\"\n",
            "    permissions:\n",
            "      - permission_name: read:orders\n",
            "        resource_server_identifier: https://orders.example.test/\n",
        )),
        "{yaml1}"
    );

    let b = Gatehouse::start(Tenant::AdminOnly);
    let into_b = import(&b, &e1.join("tenant.yaml"), &[]);
    assert!(into_b.ok, "{}", into_b.text());
    assert!(into_b.stdout.contains("11 created, 2 updated, 0 unchanged"), "{}", into_b.text());
    assert_eq!(
        role_permissions(&b, "Order admin"),
        ["read:orders@https://orders.example.test/", "write:orders@https://orders.example.test/"]
    );
    assert_eq!(role_permissions(&b, "Order reader"), ["read:orders@https://orders.example.test/"]);
    let e2 = work.path().join("export2");
    let run = export(&b, &e2);
    assert!(run.ok, "{}", run.text());
    assert_eq!(yaml1, read(&e2.join("tenant.yaml")), "export → import → export changed the tenant file");
    assert_eq!(read(&e2.join("actions/inject-id-token/code.js")), code);

    let all = EXAMPLE_OBJECTS + 3;
    let twice = import(&b, &e1.join("tenant.yaml"), &[]);
    assert!(twice.ok, "{}", twice.text());
    assert!(twice.stdout.contains(&format!("0 created, 0 updated, {all} unchanged")), "{}", twice.text());

    // A role's permissions become exactly the file's: what the tenant added is removed, what
    // it removed is added back; a description changed in the tenant is set again.
    let reader = management(&b, reqwest::Method::GET, "/roles?name_filter=Order%20reader", None);
    let reader_id = reader[0]["id"].as_str().unwrap().to_string();
    let admin = management(&b, reqwest::Method::GET, "/roles?name_filter=Order%20admin", None);
    let admin_id = admin[0]["id"].as_str().unwrap().to_string();
    let perm = |name: &str| json!({"permissions": [{"permission_name": name, "resource_server_identifier": "https://orders.example.test/"}]});
    management(&b, reqwest::Method::POST, &format!("/roles/{reader_id}/permissions"), Some(perm("write:orders")));
    management(&b, reqwest::Method::DELETE, &format!("/roles/{admin_id}/permissions"), Some(perm("read:orders")));
    management(&b, reqwest::Method::PATCH, &format!("/roles/{admin_id}"), Some(json!({"description": "changed"})));
    let plan = import(&b, &e1.join("tenant.yaml"), &["--dry-run"]);
    assert!(plan.stdout.contains("update    role \"Order admin\": description, permissions\n"), "{}", plan.text());
    assert!(plan.stdout.contains("update    role \"Order reader\": permissions\n"), "{}", plan.text());
    assert_eq!(role_permissions(&b, "Order reader").len(), 2, "a dry run writes nothing");
    let fix = import(&b, &e1.join("tenant.yaml"), &[]);
    assert!(fix.stdout.contains(&format!("0 created, 2 updated, {} unchanged", all - 2)), "{}", fix.text());
    assert_eq!(role_permissions(&b, "Order reader"), ["read:orders@https://orders.example.test/"]);
    assert_eq!(role_permissions(&b, "Order admin").len(), 2);
    let e3 = work.path().join("export3");
    assert!(export(&b, &e3).ok);
    assert_eq!(yaml1, read(&e3.join("tenant.yaml")), "the roles are the file's again");

    // With deletes allowed, a role the file does not list is deleted; without, it is named.
    let fewer = work.path().join("fewer.yaml");
    // Only the `roles` section: the other sections' deletes are not this test's.
    let admin_only = ROLES_YAML.split("roles:\n").nth(1).unwrap().split("  - name: Order reader").next().unwrap();
    std::fs::write(&fewer, format!("roles:\n{admin_only}")).unwrap();
    let kept = import(&b, &fewer, &[]);
    assert!(
        kept.stdout
            .contains("note: not deleted: role \"Order reader\" is not in the file (AUTH0_ALLOW_DELETE deletes it)"),
        "{}",
        kept.text()
    );
    let gone = import_with(&b, &fewer, &[], &[("AUTH0_ALLOW_DELETE", "true")]);
    assert!(gone.ok, "{}", gone.text());
    assert!(gone.stdout.contains("delete    role \"Order reader\"\n"), "{}", gone.text());
    let left = management(&b, reqwest::Method::GET, "/roles", None);
    let names: Vec<&str> = left.as_array().unwrap().iter().filter_map(|r| r["name"].as_str()).collect();
    assert_eq!(names, ["Order admin"]);
}

#[test]
fn the_example_imported_into_the_idp_provisioned_with_it_changes_nothing() {
    let idp = Gatehouse::start(Tenant::ExampleWithAdmin);
    let dry = import(&idp, &example().join("tenant.yaml"), &["--dry-run"]);
    assert!(dry.ok, "{}", dry.text());
    assert!(
        dry.stdout.contains(&format!("dry run: 0 to create, 0 to update, {EXAMPLE_OBJECTS} unchanged")),
        "{}",
        dry.text()
    );
    let run = import(&idp, &example().join("tenant.yaml"), &[]);
    assert!(run.ok, "{}", run.text());
    assert!(run.stdout.contains(&format!("0 created, 0 updated, {EXAMPLE_OBJECTS} unchanged")), "{}", run.text());
    assert!(run.stdout.contains("note: action \"inject-id-token\": secret values are write-only"), "{}", run.text());
    // Bindings of a trigger the file names are replaced, as deploy-cli does: the plan names
    // each action that loses its binding.
    let work = TempDir::new("tenant-unbind");
    let unbind = work.path().join("tenant.yaml");
    std::fs::write(&unbind, "triggers:\n  post-login: []\n").unwrap();
    let plan = import(&idp, &unbind, &["--dry-run"]);
    assert!(plan.ok, "{}", plan.text());
    assert!(
        plan.stdout.contains("update    trigger \"post-login\": bindings, unbinds \"inject-id-token\"\n"),
        "{}",
        plan.text()
    );
    // Secrets are sent again only when asked, and only they change.
    let secrets = import(&idp, &example().join("tenant.yaml"), &["--update-secrets"]);
    assert!(secrets.ok, "{}", secrets.text());
    assert!(secrets.stdout.contains("update    client \"CMS\": client_secret\n"), "{}", secrets.text());
    assert!(secrets.stdout.contains("update    action \"inject-id-token\": secrets\n"), "{}", secrets.text());
    assert!(secrets.stdout.contains("0 created, 3 updated, 7 unchanged"), "{}", secrets.text());

    // The guide's M2M application holds the user scopes only: Auth0's 403 is shown as it is.
    let work = TempDir::new("tenant-403");
    let out = work.path().join("out").display().to_string();
    let ca = idp.ca_pem().display().to_string();
    let (id, secret) = (dev_env("MGMT_CLIENT_ID"), dev_env("MGMT_CLIENT_SECRET"));
    let run = gatehouse(
        &["tenant", "export", "-o", &out, "--domain", &idp.domain, "--client-id", &id, "--ca-file", &ca],
        &[("AUTH0_CLIENT_SECRET", &secret)],
    );
    assert!(!run.ok, "{}", run.text());
    assert!(
        run.stderr.contains("/api/v2/tenants/settings: 403 Forbidden: Insufficient scope")
            && run.stderr.contains("(grant the missing scope to the application)"),
        "{}",
        run.text()
    );
}

#[test]
fn bad_credentials_hosts_and_files_fail_clearly() {
    let idp = Gatehouse::start(Tenant::AdminOnly);
    let work = TempDir::new("tenant-bad");
    let ca = idp.ca_pem().display().to_string();
    let out = work.path().join("out").display().to_string();

    let wrong = gatehouse(
        &["tenant", "export", "-o", &out, "--domain", &idp.domain, "--client-id", ADMIN_CLIENT_ID, "--ca-file", &ca],
        &[("AUTH0_CLIENT_SECRET", "not-the-secret-at-all-0123456789")],
    );
    assert!(!wrong.ok, "{}", wrong.text());
    assert!(
        wrong.stderr.contains("POST https://") && wrong.stderr.contains("/oauth/token: 401 Unauthorized"),
        "{}",
        wrong.text()
    );
    assert!(wrong.stderr.contains("check --client-id and --client-secret"), "{}", wrong.text());
    assert!(!wrong.stderr.contains("not-the-secret-at-all"), "the secret is never echoed: {}", wrong.text());

    let closed = gatehouse(
        &["tenant", "export", "-o", &out, "--domain", "127.0.0.1:9", "--client-id", "x", "--client-secret", "y"],
        &[],
    );
    assert!(!closed.ok && closed.stderr.contains("cannot connect"), "{}", closed.text());

    let missing = gatehouse(&["tenant", "export", "-o", &out, "--domain", &idp.domain], &[]);
    assert!(
        !missing.ok
            && missing.stderr.contains("--client-id is required (or set AUTH0_CLIENT_ID, or give it in --config)"),
        "{}",
        missing.text()
    );

    let broken = work.path().join("broken.yaml");
    std::fs::write(&broken, "clients:\n  - name: [unclosed\n").unwrap();
    let run = import(&idp, &broken, &[]);
    assert!(!run.ok && run.stderr.contains("broken.yaml"), "{}", run.text());

    // A reference nothing resolves: refused before any write, every problem listed.
    let dangling = work.path().join("dangling.yaml");
    std::fs::write(
        &dangling,
        "clients:\n  - name: App\n    app_type: spa\nclientGrants:\n  - client_id: Nobody\n    audience: https://nowhere.test/\n",
    )
    .unwrap();
    let run = import(&idp, &dangling, &[]);
    assert!(!run.ok, "{}", run.text());
    assert!(
        run.stderr.contains("cannot import: client grant for \"Nobody\": the client is in neither"),
        "{}",
        run.text()
    );
    assert!(run.stderr.contains("no API has the identifier \"https://nowhere.test/\""), "{}", run.text());
    let after = import(&idp, &dangling.with_file_name("none.yaml"), &[]);
    assert!(!after.ok && after.stderr.contains("none.yaml"), "{}", after.text());
}

#[test]
fn an_import_failing_half_way_lists_what_it_applied() {
    let idp = Gatehouse::start(Tenant::AdminOnly);
    let work = TempDir::new("tenant-halfway");
    let file = work.path().join("tenant.yaml");
    // The grant asks for a scope the Management API does not have: the idp refuses it, after
    // the client was created.
    std::fs::write(
        &file,
        "clients:\n  - name: Reporter\n    app_type: non_interactive\n    grant_types: [\"client_credentials\"]\n\
         clientGrants:\n  - client_id: Reporter\n    audience: \"https://##AUTH0_DOMAIN##/api/v2/\"\n    scope: [\"read:nothing\"]\n",
    )
    .unwrap();
    let run = import(&idp, &file, &[]);
    assert!(!run.ok, "{}", run.text());
    assert!(run.stderr.contains("import stopped: POST https://"), "{}", run.text());
    assert!(run.stderr.contains("/api/v2/client-grants: 400 Bad Request"), "{}", run.text());
    assert!(run.stderr.contains("applied before it stopped (1):\n  create    client \"Reporter\""), "{}", run.text());
    // Fixing the file and running again finishes the job without creating the client twice.
    std::fs::write(&file, read(&file).replace("read:nothing", "read:users")).unwrap();
    let run = import(&idp, &file, &[]);
    assert!(run.ok, "{}", run.text());
    assert!(
        run.stdout.contains("unchanged client \"Reporter\"")
            && run.stdout.contains("1 created, 0 updated, 1 unchanged"),
        "{}",
        run.text()
    );
}

/// A Google connection's upstream client secret, created through the Management API.
const UPSTREAM_SECRET: &str = "corp-google-upstream-secret-0123456789";

#[test]
fn connection_secrets_stay_out_of_exports_and_import_like_other_secrets() {
    let work = TempDir::new("tenant-connection-secrets");
    let a = Gatehouse::start(Tenant::AdminOnly);
    management(
        &a,
        reqwest::Method::POST,
        "/connections",
        Some(json!({
            "name": "corp-google",
            "strategy": "google-oauth2",
            "display_name": "Corp",
            "options": {
                "client_id": "corp-client-id",
                "client_secret": UPSTREAM_SECRET,
                "upstream_params": {"a": {"value": "1"}, "b": {"value": "2"}},
            },
        })),
    );
    assert_eq!(connection(&a, "corp-google")["options"]["client_secret"], UPSTREAM_SECRET);

    // Without --include-secrets the secret is a keyword, and the export says so.
    let e1 = work.path().join("export1");
    let run = export(&a, &e1);
    assert!(run.ok, "{}", run.text());
    let yaml = read(&e1.join("tenant.yaml"));
    assert!(!yaml.contains(UPSTREAM_SECRET), "the upstream secret in the export:\n{yaml}");
    assert!(yaml.contains("      client_secret: \"##CORP_GOOGLE_CLIENT_SECRET##\"\n"), "no marker in\n{yaml}");
    assert!(yaml.contains("      client_id: corp-client-id\n"), "{yaml}");
    assert!(run.stdout.contains("importing this file needs their values (--keywords): CORP_GOOGLE_CLIENT_SECRET\n"));
    let clear = work.path().join("clear");
    let run = export_with(&a, &clear, &["--include-secrets"]);
    assert!(run.ok, "{}", run.text());
    assert!(read(&clear.join("tenant.yaml")).contains(&format!("      client_secret: {UPSTREAM_SECRET}\n")));

    // The export imports elsewhere once the keyword has a value; the secret is sent on creation.
    let b = Gatehouse::start(Tenant::AdminOnly);
    let file = e1.join("tenant.yaml");
    // Without it, the marker would be sent as text, as deploy-cli sends it: the plan warns.
    let without = import_with(&b, &file, &["--dry-run"], &[]);
    assert!(
        without.ok && without.stdout.contains("##CORP_GOOGLE_CLIENT_SECRET## has no value and is left as text"),
        "{}",
        without.text()
    );
    let into_b = import_with(&b, &file, &[], &[("CORP_GOOGLE_CLIENT_SECRET", UPSTREAM_SECRET)]);
    assert!(into_b.ok, "{}", into_b.text());
    assert!(into_b.stdout.contains("create    connection \"corp-google\"\n"), "{}", into_b.text());
    assert_eq!(connection(&b, "corp-google")["options"]["client_secret"], UPSTREAM_SECRET);
    // Then it is not compared, unless --update-secrets.
    let rotated = [("CORP_GOOGLE_CLIENT_SECRET", "corp-google-rotated-secret-9876543210")];
    let again = import_with(&b, &file, &[], &rotated);
    assert!(again.ok, "{}", again.text());
    assert!(again.stdout.contains("unchanged connection \"corp-google\"\n"), "{}", again.text());
    assert!(
        again.stdout.contains(
            "note: connection \"corp-google\": secret options.client_secret not compared (--update-secrets sends it)"
        ),
        "{}",
        again.text()
    );
    assert_eq!(connection(&b, "corp-google")["options"]["client_secret"], UPSTREAM_SECRET);
    let sent = import_with(&b, &file, &["--update-secrets"], &rotated);
    assert!(sent.ok, "{}", sent.text());
    assert!(sent.stdout.contains("update    connection \"corp-google\": options.client_secret\n"), "{}", sent.text());
    let now = connection(&b, "corp-google");
    assert_eq!(now["options"]["client_secret"], rotated[0].1);
    assert_eq!(now["options"]["upstream_params"], json!({"a": {"value": "1"}, "b": {"value": "2"}}));

    // Options merge as deep as they compare: keys the file leaves out keep the tenant's value
    // at every depth, and `null` clears a value.
    let partial = work.path().join("partial.yaml");
    std::fs::write(
        &partial,
        "connections:\n  - name: corp-google\n    strategy: google-oauth2\n    display_name: null\n    options:\n      \
         client_id: corp-client-id\n      upstream_params:\n        a:\n          value: \"9\"\n",
    )
    .unwrap();
    let run = import(&a, &partial, &[]);
    assert!(run.ok, "{}", run.text());
    assert!(run.stdout.contains("update    connection \"corp-google\": options, display_name\n"), "{}", run.text());
    let now = connection(&a, "corp-google");
    assert_eq!(now["options"]["upstream_params"], json!({"a": {"value": "9"}, "b": {"value": "2"}}), "{now}");
    assert_eq!(now["options"]["client_secret"], UPSTREAM_SECRET, "{now}");
    assert!(now.get("display_name").is_none_or(Value::is_null), "{now}");
    let run = import(&a, &partial, &[]);
    assert!(run.ok, "{}", run.text());
    assert!(run.stdout.contains("unchanged connection \"corp-google\"\n"), "{}", run.text());
}
