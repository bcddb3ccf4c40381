//! auth0-deploy-cli's directory format, read and written with deploy-cli's own folder names:
//!
//! ```text
//! tenant.json
//! clients/<name>.json
//! database-connections/<name>/database.json   (+ the scripts its options.customScripts name,
//!                                              relative to that folder)
//! connections/<name>.json
//! resource-servers/<name>.json
//! grants/<client>-<api>.json
//! actions/<name>.json                         (+ the code file its `code` names, relative to
//!                                              the root: ./actions/<name>/code.js)
//! triggers/triggers.json
//! roles/<name>.json
//! emails/<template>.json + .html              (read and kept; not imported)
//! ```
//!
//! A folder that is absent is a section the tenant does not have (deploy-cli leaves it alone);
//! a folder that is there but empty is an empty section. Every file is read and checked
//! before anything is sent: an unreadable or malformed file is an error naming the file (and
//! for JSON the line and column), and two files describing one object (two clients of one
//! name, …) an error naming both. Keywords are replaced in every file as in YAML.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::TenantFile;
use crate::error::{Error, Result};
use crate::file::{Document, Item, assemble};
use crate::keywords::{Keywords, Syntax, Unresolved};
use crate::yaml_out::{Format, Rendered, WriteOptions, render_parts, sanitize};

/// Folder of each list section, as deploy-cli names them.
pub const FOLDERS: [(&str, &str); 7] = [
    ("clients", "clients"),
    ("databases", "database-connections"),
    ("connections", "connections"),
    ("resourceServers", "resource-servers"),
    ("clientGrants", "grants"),
    ("actions", "actions"),
    ("roles", "roles"),
];

/// Reads a tenant in the directory format rooted at `root`.
pub fn load_dir(root: &Path, keywords: &Keywords) -> Result<TenantFile> {
    let mut unresolved = Vec::new();
    let mut read = |path: &Path, base_dir: &Path| -> Result<Option<Item>> {
        let (value, json_uses) = read_json(path, keywords, &mut unresolved)?;
        // deploy-cli skips files holding an empty object.
        if value.as_object().is_some_and(Map::is_empty) {
            return Ok(None);
        }
        Ok(Some(Item { value, file: path.display().to_string(), base_dir: base_dir.to_path_buf(), json_uses }))
    };
    let tenant_path = root.join("tenant.json");
    let tenant = if tenant_path.is_file() { read(&tenant_path, root)? } else { None };

    let mut lists = BTreeMap::new();
    for (section, folder) in FOLDERS {
        let dir = root.join(folder);
        if !folder_exists(&dir)? {
            continue;
        }
        let mut items = Vec::new();
        if section == "databases" {
            for sub in entries(&dir)?.into_iter().filter(|p| p.is_dir()) {
                let meta = sub.join("database.json");
                if !meta.is_file() {
                    return Err(Error::Syntax {
                        file: sub.display().to_string(),
                        message: "a database folder needs its database.json".into(),
                    });
                }
                if let Some(mut item) = read(&meta, &sub)? {
                    // deploy-cli also takes `customScripts` at the top of database.json.
                    if let Value::Object(obj) = &mut item.value
                        && let Some(scripts) = obj.remove("customScripts")
                    {
                        let options = obj.entry("options").or_insert_with(|| Value::Object(Map::new()));
                        if let Value::Object(options) = options {
                            options.entry("customScripts").or_insert(scripts);
                        }
                    }
                    items.push(item);
                }
            }
        } else {
            for path in json_files(&dir)? {
                // Action code paths are relative to the root, as deploy-cli writes them.
                if let Some(item) = read(&path, root)? {
                    items.push(item);
                }
            }
        }
        check_one_file_per_object(section, &items)?;
        lists.insert(section.to_string(), items);
    }

    let triggers_dir = root.join("triggers");
    let triggers = if folder_exists(&triggers_dir)? {
        match json_files(&triggers_dir)?.first() {
            Some(path) => read(path, root)?,
            None => None,
        }
    } else {
        None
    };

    let mut other = Map::new();
    let emails = root.join("emails");
    if folder_exists(&emails)? {
        let mut templates = Vec::new();
        for path in json_files(&emails)?.into_iter().filter(|p| !p.ends_with("provider.json")) {
            let (mut meta, _) = read_json(&path, keywords, &mut unresolved)?;
            let body = meta.get("body").and_then(Value::as_str).map(|b| emails.join(b));
            let default = path.with_extension("html");
            let html = body.filter(|b| b.is_file()).or_else(|| default.is_file().then_some(default));
            if let (Some(html), Value::Object(m)) = (html, &mut meta) {
                let text = std::fs::read_to_string(&html).map_err(|source| Error::Io { path: html.clone(), source })?;
                let replaced = keywords.replace_all(&text, &html.display().to_string(), Syntax::Plain)?;
                unresolved.extend(replaced.unresolved);
                m.insert("body".into(), Value::String(replaced.text));
            }
            templates.push(meta);
        }
        other.insert("emailTemplates".into(), Value::Array(templates));
    }

    let doc = Document {
        label: root.display().to_string(),
        base_dir: root.to_path_buf(),
        tenant,
        lists,
        triggers,
        other,
        unresolved,
    };
    assemble(doc, keywords)
}

/// A JSON file with keywords replaced; errors name the file, line and column.
fn read_json(
    path: &Path,
    keywords: &Keywords,
    unresolved: &mut Vec<Unresolved>,
) -> Result<(Value, Vec<crate::keywords::JsonUse>)> {
    let label = path.display().to_string();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let replaced = keywords.replace_all(&text, &label, Syntax::Plain)?;
    replaced.check_json_fits(&label)?;
    let value: Value = serde_json::from_str(&replaced.text)
        .map_err(|e| Error::Syntax { file: label.clone(), message: format!("not valid JSON: {e}") })?;
    if !value.is_object() {
        return Err(Error::Syntax {
            file: label,
            message: format!("expected a JSON object, found {}", crate::ctx::describe(&value)),
        });
    }
    unresolved.extend(replaced.unresolved);
    Ok((value, replaced.json_uses))
}

/// deploy-cli: a path that exists must be a folder.
fn folder_exists(dir: &Path) -> Result<bool> {
    if !dir.exists() {
        return Ok(false);
    }
    if !dir.is_dir() {
        return Err(Error::Syntax {
            file: dir.display().to_string(),
            message: "expected a folder, found a file".into(),
        });
    }
    Ok(true)
}

fn entries(dir: &Path) -> Result<Vec<PathBuf>> {
    let read = std::fs::read_dir(dir).map_err(|source| Error::Io { path: dir.to_path_buf(), source })?;
    let mut out = Vec::new();
    for entry in read {
        out.push(entry.map_err(|source| Error::Io { path: dir.to_path_buf(), source })?.path());
    }
    // Sorted so errors and entry order do not depend on the file system.
    out.sort();
    Ok(out)
}

fn json_files(dir: &Path) -> Result<Vec<PathBuf>> {
    Ok(entries(dir)?.into_iter().filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "json")).collect())
}

/// What identifies an entry of `section`, as the YAML checks do.
fn identity(section: &str, v: &Value) -> Option<String> {
    let s = |k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
    match section {
        "resourceServers" => s("identifier").map(|i| format!("the API {i:?}")),
        "clientGrants" => Some(format!("the grant of {:?} for {:?}", s("client_id")?, s("audience")?)),
        _ => s("name").map(|n| format!("{section} {n:?}")),
    }
}

fn check_one_file_per_object(section: &str, items: &[Item]) -> Result<()> {
    let mut seen: BTreeMap<String, &str> = BTreeMap::new();
    for item in items {
        let Some(id) = identity(section, &item.value) else { continue };
        if let Some(first) = seen.insert(id.clone(), &item.file) {
            return Err(Error::DuplicateFile { first: first.to_string(), second: item.file.clone(), what: id });
        }
    }
    Ok(())
}

/// A tenant as the directory format's files, by relative path (see the module docs).
pub fn render_dir(file: &TenantFile, opts: &WriteOptions<'_>) -> Rendered {
    let parts = render_parts(file, opts, Format::Directory);
    let mut files = parts.files;
    let mut paths = crate::yaml_out::UniquePaths::default();
    for (rel, _) in &files {
        paths.reserve(rel);
    }
    let json = |v: &Value| {
        let mut text = serde_json::to_string_pretty(v).unwrap_or_default();
        text.push('\n');
        text
    };
    let top = parts.top;
    if let Some(tenant) = top.get("tenant") {
        files.push((PathBuf::from("tenant.json"), json(tenant)));
    }
    let api_names: BTreeMap<&str, &str> =
        file.resource_servers.iter().map(|r| (r.identifier.as_str(), r.name.as_str())).collect();
    for (section, folder) in FOLDERS {
        let Some(Value::Array(items)) = top.get(section) else { continue };
        for (i, item) in items.iter().enumerate() {
            let s = |k: &str| item.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
            let rel = match section {
                "databases" => parts.database_dirs.get(i).cloned().unwrap_or_default().join("database.json"),
                "clientGrants" => {
                    let audience = s("audience");
                    let api = api_names.get(audience.as_str()).map_or(audience.clone(), |n| n.to_string());
                    paths.claim(Path::new(folder), &sanitize(&format!("{}-{api}", s("client_id"))), ".json")
                }
                "resourceServers" => paths.claim(Path::new(folder), &sanitize(&s("name")), ".json"),
                _ => paths.claim(Path::new(folder), &sanitize(&s("name")), ".json"),
            };
            files.push((rel, json(item)));
        }
    }
    if let Some(triggers) = top.get("triggers") {
        files.push((PathBuf::from("triggers/triggers.json"), json(triggers)));
    }
    Rendered { yaml: String::new(), files, secret_keywords: parts.secret_keywords }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gatehouse-dir-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    fn write(dir: &Path, rel: &str, text: &str) {
        let path = dir.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    #[test]
    fn a_directory_reads_like_its_yaml() {
        let dir = temp_dir("read");
        write(&dir, "tenant.json", r###"{"friendly_name": "##NAME##"}"###);
        write(&dir, "clients/CMS.json", r#"{"name": "CMS", "app_type": "regular_web", "callbacks": @@CALLBACKS@@}"#);
        write(
            &dir,
            "database-connections/dev-users/database.json",
            r#"{"name": "dev-users", "enabled_clients": ["CMS"], "options": {"customScripts": {"login": "./login.js"}}}"#,
        );
        write(&dir, "database-connections/dev-users/login.js", "function login() { return '##NAME##'; }");
        write(&dir, "grants/CMS-api.json", r#"{"client_id": "CMS", "audience": "https://api", "scope": ["read"]}"#);
        write(
            &dir,
            "actions/a.json",
            r#"{"name": "a", "code": "./actions/a/code.js", "deployed": true, "supported_triggers": [{"id": "post-login", "version": "v3"}], "secrets": [{"name": "S"}]}"#,
        );
        write(&dir, "actions/a/code.js", "exports.onExecutePostLogin = async () => {};");
        write(&dir, "triggers/triggers.json", r#"{"post-login": [{"action_name": "a", "display_name": "a"}]}"#);
        write(
            &dir,
            "roles/Admin.json",
            r#"{"name": "Admin", "permissions": [{"permission_name": "read", "resource_server_identifier": "https://api"}]}"#,
        );
        std::fs::create_dir_all(dir.join("connections")).unwrap();
        let mut k = Keywords::new();
        k.insert("NAME", "Gatehouse");
        let k =
            k.with_mappings([("CALLBACKS".to_string(), serde_json::json!(["https://cms/cb"]))].into(), "config.json");
        let t = crate::load_tenant(&dir, &k).unwrap();
        assert_eq!(t.tenant.friendly_name.as_deref(), Some("Gatehouse"));
        assert_eq!(t.clients[0].body["callbacks"], serde_json::json!(["https://cms/cb"]));
        let login = t.databases[0].body["options"]["customScripts"]["login"].as_str().unwrap();
        assert!(login.contains("'Gatehouse'"), "{login}");
        assert_eq!(t.actions[0].unset_secrets, ["S"]);
        assert_eq!(t.bindings("post-login")[0].action_name, "a");
        assert_eq!(t.roles[0].permissions[0].permission_name, "read");
        assert!(t.has_section("connections") && t.connections.is_empty(), "an empty folder is an empty section");
        assert!(!t.has_section("resourceServers"), "an absent folder is no section");
        assert!(t.unresolved_keywords.is_empty(), "{:?}", t.unresolved_keywords);
    }

    #[test]
    fn broken_files_are_named() {
        let dir = temp_dir("broken");
        write(&dir, "clients/A.json", "{\n  \"name\": \"A\",\n  \"app_type\" \"spa\"\n}");
        let err = crate::load_tenant(&dir, &Keywords::new()).unwrap_err().to_string();
        assert!(err.contains("clients/A.json: not valid JSON") && err.contains("line 3"), "{err}");

        write(&dir, "clients/A.json", r#"{"name": "A"}"#);
        write(&dir, "clients/B.json", r#"{"name": "A"}"#);
        let err = crate::load_tenant(&dir, &Keywords::new()).unwrap_err().to_string();
        assert!(
            err.contains("clients/A.json and") && err.contains("clients/B.json both describe clients \"A\""),
            "{err}"
        );

        std::fs::remove_file(dir.join("clients/B.json")).unwrap();
        write(&dir, "clients/B.json", r#"{"name": "B", "callbacks": "https://x/@@URLS@@"}"#);
        let k = Keywords::new().with_mappings([("URLS".to_string(), serde_json::json!(["a"]))].into(), "config.json");
        let err = crate::load_tenant(&dir, &k).unwrap_err().to_string();
        assert!(err.contains("clients/B.json line 1: @@URLS@@ stands next to other text"), "{err}");

        write(&dir, "clients/B.json", r#"{"name": "B", "callbacks": "@@URLS@@"}"#);
        let k = Keywords::new()
            .with_mappings([("URLS".to_string(), serde_json::json!("https://one"))].into(), "config.json");
        let err = crate::load_tenant(&dir, &k).unwrap_err().to_string();
        assert!(
            err.contains("clients/B.json") && err.contains("callbacks") && err.contains("@@URLS@@ = \"https://one\""),
            "{err}"
        );

        write(&dir, "database-connections/x/readme.txt", "");
        let err = crate::load_tenant(&dir, &Keywords::new()).unwrap_err().to_string();
        assert!(err.contains("needs its database.json"), "{err}");
    }
}
