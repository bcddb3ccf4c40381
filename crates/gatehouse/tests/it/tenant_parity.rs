//! `gatehouse tenant` at auth0-deploy-cli parity, against real `gatehouse idp --tls` processes
//! and the real npm `auth0-deploy-cli`:
//! - what `a0deploy export` writes (YAML and directory format) of the guide's tenant,
//!   `gatehouse tenant import --config config.json` puts into an empty idp as the same tenant
//!   (the Management API's view, ids aside), and a second import changes nothing;
//! - what `gatehouse tenant export` writes (both formats), `a0deploy import` puts into an empty
//!   idp as the same tenant, and its second import (of the other format) changes nothing;
//! - deploy-cli's config.json and `AUTH0_*` variables (the environment wins), deletes with
//!   `AUTH0_ALLOW_DELETE` (listed first, never the importing application), and bad input
//!   refused with a message naming the file, line or key before anything is written.

use std::path::Path;

use serde_json::{Map, Value, json};

use crate::deploy_cli::{INCLUDED, a0deploy, snapshot};
use crate::sdk_support::{ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, Gatehouse, Tenant};
use crate::support::{TempDir, dev_env, require_file, workspace};
use crate::tenant_remote::{Run, gatehouse};

/// The keyword values of the guide's tenant, as deploy-cli's mappings.
fn mappings(domain: &str) -> Value {
    let mut m = Map::new();
    for key in
        ["CMS_BASE_URL", "CMS_CLIENT_ID", "CMS_CLIENT_SECRET", "MGMT_CLIENT_ID", "MGMT_CLIENT_SECRET", "MIA_NAMESPACE"]
    {
        m.insert(key.into(), json!(dev_env(key)));
    }
    m.insert("AUTH0_DOMAIN".into(), json!(domain));
    Value::Object(m)
}

/// A deploy-cli config.json for `idp`, with `extra` settings laid over.
fn config(idp: &Gatehouse, dir: &Path, name: &str, extra: Value) -> String {
    let mut c = json!({
        "AUTH0_DOMAIN": idp.domain,
        "AUTH0_CLIENT_ID": ADMIN_CLIENT_ID,
        "AUTH0_CLIENT_SECRET": ADMIN_CLIENT_SECRET,
        "AUTH0_KEYWORD_REPLACE_MAPPINGS": mappings(&idp.domain),
        "AUTH0_INCLUDED_ONLY": INCLUDED,
        "AUTH0_ALLOW_DELETE": false,
        "AUTH0_API_MAX_RETRIES": 1,
    });
    if let (Value::Object(c), Value::Object(extra)) = (&mut c, extra) {
        c.extend(extra);
    }
    let path = dir.join(name);
    std::fs::write(&path, serde_json::to_vec_pretty(&c).unwrap()).unwrap();
    path.display().to_string()
}

/// `gatehouse tenant <verb> ARGS --config CONFIG --ca-file …`, nothing else: every setting
/// comes from the config, as with deploy-cli.
fn tenant(verb: &str, idp: &Gatehouse, config: &str, args: &[&str], envs: &[(&str, &str)]) -> Run {
    let ca = idp.ca_pem().display().to_string();
    let mut all = vec!["tenant", verb];
    all.extend(args);
    all.extend(["--config", config, "--ca-file", &ca]);
    gatehouse(&all, envs)
}

/// A Management API snapshot as it moves between tenants: client ids (which an export without
/// identifiers does not carry) replaced by names, the tenant's own domain by `DOMAIN`, object
/// ids, timestamps, secrets and the action version numbers (deploy-cli deploys every action
/// again on each import) left out, and so is the one default deploy-cli's schema adds to a
/// database it creates (`disable_self_service_change_password: false`).
fn portable(snapshot: &Value, domain: &str) -> Value {
    let names: Vec<(String, String)> = snapshot["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["client_id"].as_str().unwrap().to_string(), c["name"].as_str().unwrap().to_string()))
        .collect();
    fn walk(v: &Value, names: &[(String, String)], domain: &str) -> Value {
        match v {
            Value::Object(m) => Value::Object(
                m.iter()
                    .filter(|(k, v)| {
                        let ids = ["id", "action_id", "created_at", "updated_at", "built_at", "number"];
                        let secrets = ["client_secret", "signing_keys"];
                        let schema_default = *k == "disable_self_service_change_password" && **v == json!(false);
                        !ids.contains(&k.as_str()) && !secrets.contains(&k.as_str()) && !schema_default
                    })
                    .map(|(k, v)| (k.clone(), walk(v, names, domain)))
                    .collect(),
            ),
            Value::Array(items) => {
                let mut out: Vec<Value> = items.iter().map(|i| walk(i, names, domain)).collect();
                if out.iter().all(Value::is_string) {
                    out.sort_by(|a, b| a.as_str().cmp(&b.as_str()));
                }
                Value::Array(out)
            }
            Value::String(s) => match names.iter().find(|(id, _)| id == s) {
                Some((_, name)) => Value::String(format!("client:{name}")),
                None => Value::String(s.replace(domain, "DOMAIN")),
            },
            other => other.clone(),
        }
    }
    let mut out = walk(snapshot, &names, domain);
    if let Some(Value::Array(grants)) = out.get_mut("client_grants") {
        grants.sort_by_key(|g| g.to_string());
    }
    out
}

/// The JSON pointers where `a` and `b` differ, for a readable failure.
fn differences(a: &Value, b: &Value, path: String, out: &mut Vec<String>) {
    match (a, b) {
        (Value::Object(x), Value::Object(y)) => {
            for k in x.keys().chain(y.keys().filter(|k| !x.contains_key(*k))) {
                differences(
                    x.get(k).unwrap_or(&Value::Null),
                    y.get(k).unwrap_or(&Value::Null),
                    format!("{path}/{k}"),
                    out,
                );
            }
        }
        (Value::Array(x), Value::Array(y)) if x.len() == y.len() => {
            for (i, (p, q)) in x.iter().zip(y).enumerate() {
                differences(p, q, format!("{path}/{i}"), out);
            }
        }
        _ if a != b => out.push(format!("{path}: {a} != {b}")),
        _ => {}
    }
}

fn assert_same_tenant(want: (&Value, &Gatehouse), got: (&Value, &Gatehouse), what: &str) {
    let mut diff = Vec::new();
    differences(&portable(want.0, &want.1.domain), &portable(got.0, &got.1.domain), String::new(), &mut diff);
    assert!(diff.is_empty(), "{what}: the tenants differ at\n{}", diff.join("\n"));
}

/// `from` → `to` in every file under `dir`.
fn rewrite_files(dir: &Path, from: &str, to: &str) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rewrite_files(&path, from, to);
        } else if let Ok(text) = std::fs::read_to_string(&path) {
            std::fs::write(&path, text.replace(from, to)).unwrap();
        }
    }
}

/// The config at `path` with more keyword mappings.
fn with_mappings(path: &str, more: Value) -> String {
    let mut c: Value = serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    if let (Some(Value::Object(m)), Value::Object(more)) = (c.get_mut("AUTH0_KEYWORD_REPLACE_MAPPINGS"), more) {
        m.extend(more);
    }
    std::fs::write(path, c.to_string()).unwrap();
    path.to_string()
}

fn summary_line(run: &Run) -> String {
    run.stdout.lines().rev().find(|l| l.contains(" created, ")).unwrap_or_default().to_string()
}

fn require_deploy_cli() {
    let js = workspace().join("tests/js");
    require_file(&js.join("node_modules/auth0-deploy-cli/package.json"), "the npm package auth0-deploy-cli");
    require_file(&js.join("node_modules/auth0/package.json"), "the npm package auth0");
}

#[tokio::test]
async fn deploy_cli_exports_import_into_gatehouse_as_the_same_tenant() {
    require_deploy_cli();
    let work = TempDir::new("parity-in");
    let source = Gatehouse::start(Tenant::ExampleWithAdmin);
    let source_config = config(&source, work.path(), "source.json", json!({}));
    let (yaml, dir) = (work.path().join("yaml"), work.path().join("dir"));
    let (y, d) = (yaml.display().to_string(), dir.display().to_string());
    let yaml_args = ["export", "--config_file", &source_config, "--format", "yaml", "--output_folder", &y];
    let dir_args = ["export", "--config_file", &source_config, "--format", "directory", "--output_folder", &d];
    tokio::join!(a0deploy(&source, &yaml_args), a0deploy(&source, &dir_args));
    assert!(
        dir.join("clients/CMS.json").is_file() && dir.join("database-connections/dev-users/database.json").is_file()
    );
    // What a team does to move an export between tenants, as deploy-cli's docs describe: the
    // source's Management API audience becomes a keyword (deploy-cli writes it literally).
    let audience = format!("https://{}/api/v2/", source.domain);
    rewrite_files(&yaml, &audience, "https://##AUTH0_DOMAIN##/api/v2/");
    rewrite_files(&dir, &audience, "https://##AUTH0_DOMAIN##/api/v2/");
    let want = snapshot(&source).await;

    for (what, input) in [("YAML", yaml.join("tenant.yaml")), ("directory", dir.clone())] {
        let target = Gatehouse::start(Tenant::AdminOnly);
        // deploy-cli exports the Google connection's (empty) secret as a keyword to fill in.
        let secret = json!({"CONNECTIONS_GOOGLE_OAUTH2_SECRET": ""});
        let target_config = config(&target, work.path(), &format!("target-{what}.json"), json!({}));
        let target_config = with_mappings(&target_config, secret);
        let input = input.display().to_string();
        let first = tenant("import", &target, &target_config, &[&input], &[]);
        assert!(first.ok, "{what}: {}", first.text());
        let got = snapshot(&target).await;
        assert_same_tenant((&want, &source), (&got, &target), &format!("a0deploy {what} export → gatehouse import"));
        let second = tenant("import", &target, &target_config, &[&input], &[]);
        assert!(second.ok, "{what}: {}", second.text());
        assert!(summary_line(&second).starts_with("0 created, 0 updated, "), "{what}: {}", second.text());
    }
}

#[tokio::test]
async fn gatehouse_exports_import_into_deploy_cli_as_the_same_tenant() {
    require_deploy_cli();
    let work = TempDir::new("parity-out");
    let source = Gatehouse::start(Tenant::ExampleWithAdmin);
    let source_config = config(&source, work.path(), "source.json", json!({"AUTH0_PRESERVE_KEYWORDS": true}));
    let (yaml, dir) = (work.path().join("yaml"), work.path().join("dir"));
    let (y, d) = (yaml.display().to_string(), dir.display().to_string());
    for args in [["-o", y.as_str(), "--format", "yaml"], ["-o", d.as_str(), "--format", "directory"]] {
        let run = tenant("export", &source, &source_config, &args, &[]);
        assert!(run.ok, "{}", run.text());
    }
    // Keywords preserved from the mappings, in deploy-cli's folders.
    let cms = std::fs::read_to_string(dir.join("clients/CMS.json")).unwrap();
    assert!(cms.contains("\"##CMS_BASE_URL##/web-login/callback\""), "{cms}");
    assert!(dir.join("grants").is_dir() && dir.join("triggers/triggers.json").is_file());
    let want = snapshot(&source).await;

    let target = Gatehouse::start(Tenant::AdminOnly);
    let target_config = config(&target, work.path(), "target.json", json!({}));
    a0deploy(&target, &["import", "--config_file", &target_config, "--input_file", &format!("{y}/tenant.yaml")]).await;
    let first = snapshot(&target).await;
    assert_same_tenant((&want, &source), (&first, &target), "gatehouse YAML export → a0deploy import");
    // The directory export is the same tenant: deploy-cli's import of it changes nothing.
    a0deploy(&target, &["import", "--config_file", &target_config, "--input_file", &d]).await;
    let again = snapshot(&target).await;
    assert_same_tenant((&first, &target), (&again, &target), "gatehouse directory export → a0deploy import, again");
}

#[test]
fn config_json_drives_deletes_and_the_environment_wins() {
    let work = TempDir::new("parity-delete");
    let idp = Gatehouse::start(Tenant::ExampleWithAdmin);
    let cfg = config(&idp, work.path(), "config.json", json!({"AUTH0_ALLOW_DELETE": true}));
    let dir = work.path().join("dir");
    let d = dir.display().to_string();
    let run = tenant("export", &idp, &cfg, &["-o", &d, "--format", "directory"], &[]);
    assert!(run.ok, "{}", run.text());
    // The file no longer lists google-oauth2 nor the M2M application (nor its grant).
    std::fs::remove_file(dir.join("connections/google-oauth2.json")).unwrap();
    std::fs::remove_file(dir.join("clients/User Management CMS.json")).unwrap();
    for grant in std::fs::read_dir(dir.join("grants")).unwrap() {
        let grant = grant.unwrap().path();
        if grant.file_name().unwrap().to_string_lossy().starts_with("User Management CMS") {
            std::fs::remove_file(grant).unwrap();
        }
    }

    // The environment wins over config.json: no deletes, only notes.
    let off = tenant("import", &idp, &cfg, &[&d], &[("AUTH0_ALLOW_DELETE", "false")]);
    assert!(off.ok, "{}", off.text());
    assert!(off.stdout.contains("note: not deleted: connection \"google-oauth2\""), "{}", off.text());
    assert!(!off.stdout.contains("\n  delete"), "{}", off.text());

    let plan = tenant("import", &idp, &cfg, &[&d, "--dry-run"], &[]);
    assert!(plan.ok, "{}", plan.text());
    let lines: Vec<&str> = plan.stdout.lines().filter(|l| l.starts_with("  ")).collect();
    let deletes = lines.iter().take_while(|l| l.trim_start().starts_with("delete")).count();
    assert_eq!(deletes, 3, "every delete first:\n{}", plan.text());
    assert!(
        lines.iter().all(|l| !l.contains("Gatehouse SDK tests")),
        "never the importing application:\n{}",
        plan.text()
    );

    let run = tenant("import", &idp, &cfg, &[&d], &[]);
    assert!(run.ok, "{}", run.text());
    assert!(summary_line(&run).ends_with(", 3 deleted"), "{}", run.text());
    // A roles folder (deploy-cli's `roles/<name>.json`, `type` as newer exports write it),
    // managed once the environment's AUTH0_INCLUDED_ONLY (which wins) names it: the role is
    // created, and a role of the tenant the folder does not list is deleted.
    let extra = json!({"name": "Stale"});
    let stale = crate::tenant_remote::management(&idp, reqwest::Method::POST, "/roles", Some(extra));
    assert_eq!(stale["name"], "Stale");
    std::fs::create_dir_all(dir.join("roles")).unwrap();
    let admin = json!({"name": "Admin", "description": "All", "type": "tenant", "permissions": []});
    std::fs::write(dir.join("roles/Admin.json"), admin.to_string()).unwrap();
    let mut types: Vec<&str> = INCLUDED.to_vec();
    types.push("roles");
    let types = json!(types).to_string();
    let again = tenant("import", &idp, &cfg, &[&d], &[("AUTH0_INCLUDED_ONLY", &types)]);
    assert!(again.ok, "{}", again.text());
    assert!(again.stdout.contains("create    role \"Admin\"\n"), "{}", again.text());
    assert!(again.stdout.contains("delete    role \"Stale\"\n"), "{}", again.text());
    assert!(summary_line(&again).starts_with("1 created, 0 updated, "), "{}", again.text());
    assert!(summary_line(&again).ends_with(", 1 deleted"), "{}", again.text());
    let same = tenant("import", &idp, &cfg, &[&d], &[("AUTH0_INCLUDED_ONLY", &types)]);
    assert!(summary_line(&same).starts_with("0 created, 0 updated, ") && !same.stdout.contains("\n  delete"));
    // The directory export writes the role as deploy-cli does: roles/Admin.json.
    let out = work.path().join("again");
    let o = out.display().to_string();
    let run = tenant("export", &idp, &cfg, &["-o", &o, "--format", "directory"], &[("AUTH0_INCLUDED_ONLY", &types)]);
    assert!(run.ok, "{}", run.text());
    let written: Value = serde_json::from_str(&std::fs::read_to_string(out.join("roles/Admin.json")).unwrap()).unwrap();
    assert_eq!(written, json!({"name": "Admin", "description": "All", "permissions": []}));
    // The importing application still works: it just ran.
    let lint = gatehouse(&["tenant", "lint", &d, "--config", &cfg], &[]);
    assert!(lint.stdout.contains("no Machine-to-Machine application"), "{}", lint.text());
}

#[test]
fn bad_input_is_named_before_anything_is_written() {
    let work = TempDir::new("parity-bad");
    let idp = Gatehouse::start(Tenant::AdminOnly);
    let good = config(&idp, work.path(), "config.json", json!({}));
    let example = workspace().join("examples/cms-tenant/tenant.yaml").display().to_string();
    let before = tenant("export", &idp, &good, &["-o", &work.path().join("before").display().to_string()], &[]);
    assert!(before.ok, "{}", before.text());

    let not_json = work.path().join("broken.json");
    std::fs::write(&not_json, "{\"AUTH0_DOMAIN\": \"x\",\n").unwrap();
    let run = tenant("import", &idp, &not_json.display().to_string(), &[&example], &[]);
    assert!(
        !run.ok && run.stderr.contains("broken.json: not JSON: ") && run.stderr.contains("line 2"),
        "{}",
        run.text()
    );

    let wrong = config(&idp, work.path(), "wrong.json", json!({"AUTH0_EXCLUDED": {"clients": true}}));
    let run = tenant("import", &idp, &wrong, &[&example], &[]);
    assert!(!run.ok && run.stderr.contains("wrong.json: AUTH0_EXCLUDED: expected a list of strings"), "{}", run.text());

    let unfit = config(
        &idp,
        work.path(),
        "unfit.json",
        json!({"AUTH0_KEYWORD_REPLACE_MAPPINGS": {"CMS_BASE_URL": "https://cms.test", "CMS_CLIENT_ID": {"a": 1}}}),
    );
    let run = tenant("import", &idp, &unfit, &[&example], &[]);
    assert!(
        !run.ok && run.stderr.contains("tenant.yaml line 27: ##CMS_CLIENT_ID##: its value is a map"),
        "{}",
        run.text()
    );

    let dir = work.path().join("dir");
    std::fs::create_dir_all(dir.join("clients")).unwrap();
    std::fs::write(dir.join("clients/A.json"), "{\"name\": \"A\",\n  \"app_type\": }\n").unwrap();
    let run = tenant("import", &idp, &good, &[&dir.display().to_string()], &[]);
    assert!(
        !run.ok && run.stderr.contains("clients/A.json: not valid JSON") && run.stderr.contains("line 2"),
        "{}",
        run.text()
    );
    std::fs::write(dir.join("clients/A.json"), "{\"name\": \"A\"}").unwrap();
    std::fs::write(dir.join("clients/B.json"), "{\"name\": \"A\"}").unwrap();
    let run = tenant("import", &idp, &good, &[&dir.display().to_string()], &[]);
    assert!(!run.ok && run.stderr.contains("both describe clients \"A\""), "{}", run.text());

    let after = tenant("export", &idp, &good, &["-o", &work.path().join("after").display().to_string()], &[]);
    assert!(after.ok, "{}", after.text());
    let read = |d: &str| std::fs::read_to_string(work.path().join(d).join("tenant.yaml")).unwrap();
    assert_eq!(read("before"), read("after"), "nothing was written");
}

#[test]
fn lint_warns_about_keywords_without_value_except_in_comments() {
    let work = TempDir::new("parity-lint");
    let yaml = work.path().join("tenant.yaml");
    let example = std::fs::read_to_string(workspace().join("examples/cms-tenant/tenant.yaml")).unwrap();
    let with_comment = format!("# Keywords such as ##KEYWORDS## come from config.json\n{example}")
        .replace("friendly_name: CMS", "friendly_name: \"##TENANT_NAME##\"");
    std::fs::write(&yaml, with_comment).unwrap();
    std::fs::create_dir_all(work.path().join("actions/inject-id-token")).unwrap();
    std::fs::copy(
        workspace().join("examples/cms-tenant/actions/inject-id-token/code.js"),
        work.path().join("actions/inject-id-token/code.js"),
    )
    .unwrap();
    let config = work.path().join("config.json");
    std::fs::write(&config, json!({"AUTH0_KEYWORD_REPLACE_MAPPINGS": mappings("tenant.test")}).to_string()).unwrap();
    let run =
        gatehouse(&["tenant", "lint", &yaml.display().to_string(), "--config", &config.display().to_string()], &[]);
    assert!(run.ok, "{}", run.text());
    let line = 1 + std::fs::read_to_string(&yaml).unwrap().lines().position(|l| l.contains("##TENANT_NAME##")).unwrap();
    let want = format!("line {line}: ##TENANT_NAME## has no value and is left as text");
    assert!(run.stdout.contains(&want), "{want}\n{}", run.text());
    assert!(!run.stdout.contains("KEYWORDS"), "a comment is not content:\n{}", run.text());
}
