//! Writing a [`TenantFile`] as auth0-deploy-cli writes an export (`a0deploy export --format
//! yaml`): `tenant.yaml`, each action's code in `actions/<name>/code.js` and each database
//! script in `databases/<name>/<script>.js`, referenced by relative paths.
//!
//! Entries are sorted by name and keys ordered as deploy-cli orders them (`name` and the
//! other identifying keys first, then the rest alphabetically), so two exports of the same
//! tenant are byte-identical and diff well. The YAML is emitted here rather than through
//! serde_yaml_ng so that a string holding a `##KEY##` marker is always double-quoted, whatever
//! the value that replaces the marker later. Double-quoted scalars escape every character
//! outside YAML's printable set, and the line breaks YAML 1.1 would fold (U+0085, U+2028,
//! U+2029); a key too long for YAML's implicit-key form (1024 characters) uses the explicit
//! `? key` form.
//!
//! Two entries whose names give the same file name (`a/b` and `a:b`, or `Foo` and `foo` on a
//! case-insensitive file system) get distinct ones: the second gets `-2`, the next `-3`, …
//! and the YAML points at each entry's own file.
//!
//! What is never written unless asked for ([`WriteOptions::client_secrets`]): client secrets,
//! and a connection's secrets — `options.client_secret` (the upstream provider's) and each
//! `options.configuration` value — which become `##<CONNECTION>_CLIENT_SECRET##` and
//! `##<CONNECTION>_CONFIGURATION_<KEY>##` keywords (connection and key names in upper snake
//! case), so the file imports once a keywords file gives their values. An empty
//! `client_secret` hides nothing and is written as it is. Action secret values, which Auth0
//! never shows, are always written as `##NAME##` keywords so the import asks for each by name
//! (deploy-cli writes the name alone, which it then cannot import).

use std::path::{Path, PathBuf};

use serde_json::{Map, Value};

use crate::TenantFile;
use crate::error::{Error, Result};
use crate::keywords::{Keywords, is_keyword_name};

/// What an export writes beyond deploy-cli's defaults.
#[derive(Debug, Clone, Copy, Default)]
pub struct WriteOptions<'a> {
    /// Write each client's `client_id` (deploy-cli's `AUTH0_EXPORT_IDENTIFIERS`). Gatehouse's
    /// idp keeps a client id given on import, so ids survive a move between idps.
    pub identifiers: bool,
    /// Write secrets in clear: client secrets the API showed (Auth0 shows them to
    /// `read:client_keys`) and connections' `options.client_secret` / `options.configuration`.
    /// Otherwise connection secrets are written as keywords (see the module docs).
    pub client_secrets: bool,
    /// Turn keyword values back into `##KEY##` markers ([`Keywords::restore`]).
    pub keywords: Option<&'a Keywords>,
}

/// An export ready to be written: the YAML and the files it references, by relative path.
#[derive(Debug, Clone, PartialEq)]
pub struct Rendered {
    pub yaml: String,
    pub files: Vec<(PathBuf, String)>,
    /// The keywords written in place of secrets (connection secrets, action secret values),
    /// sorted: an import of this file needs a value for each.
    pub secret_keywords: Vec<String>,
}

/// Keys deploy-cli puts first (its `formatResults`), in this order.
const LEADING_KEYS: &[&str] =
    &["name", "client_id", "audience", "template", "identifier", "strategy", "script", "stage", "id"];

/// Which of deploy-cli's formats a tenant is written in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// tenant.yaml and the files it references.
    Yaml,
    /// One JSON file per object (`directory`).
    Directory,
}

/// A tenant ready to be laid out as YAML or as directory files: the sections as deploy-cli
/// writes them, and the code files they reference.
pub(crate) struct Parts {
    pub top: Map<String, Value>,
    pub files: Vec<(PathBuf, String)>,
    pub secret_keywords: Vec<String>,
    /// For [`Format::Directory`]: each database's folder, in `databases` order.
    pub database_dirs: Vec<PathBuf>,
}

/// tenant.yaml and the files it references.
pub fn render(file: &TenantFile, opts: &WriteOptions<'_>) -> Rendered {
    let parts = render_parts(file, opts, Format::Yaml);
    let mut yaml = String::from("# auth0-deploy-cli YAML, written by `gatehouse tenant export`.\n");
    emit_map(&parts.top, 0, &mut yaml);
    Rendered { yaml, files: parts.files, secret_keywords: parts.secret_keywords }
}

pub(crate) fn render_parts(file: &TenantFile, opts: &WriteOptions<'_>, format: Format) -> Parts {
    let restore = |mut v: Value| {
        if let Some(k) = opts.keywords {
            restore_json(&mut v, k);
            restore_strings(&mut v, k);
        }
        v
    };
    let mut database_dirs = Vec::new();
    let mut files: Vec<(PathBuf, String)> = Vec::new();
    let mut paths = UniquePaths::default();
    let mut secret_keywords: Vec<String> = Vec::new();
    let mut top = Map::new();

    // Default settings (no `tenant` section) are not written.
    if file.tenant != store::TenantSettings::default() {
        let tenant = serde_json::to_value(&file.tenant).unwrap_or_default();
        top.insert("tenant".into(), ordered(restore(tenant)));
    }

    let clients: Vec<Value> = file
        .clients
        .iter()
        .map(|c| {
            let mut m = c.body.clone();
            m.insert("name".into(), c.name.clone().into());
            if opts.identifiers
                && let Some(id) = &c.client_id
            {
                m.insert("client_id".into(), id.clone().into());
            }
            if opts.client_secrets
                && let Some(s) = &c.client_secret
            {
                m.insert("client_secret".into(), s.clone().into());
            }
            ordered(restore(Value::Object(m)))
        })
        .collect();
    section(&mut top, "clients", clients);

    let mut connection = |c: &crate::ConnectionSpec| {
        let mut m = c.body.clone();
        m.insert("name".into(), c.name.clone().into());
        m.insert("strategy".into(), c.strategy.clone().into());
        if let Some(enabled) = &c.enabled_clients {
            m.insert("enabled_clients".into(), enabled.clone().into());
        }
        let mut v = restore(Value::Object(m));
        // Secrets become keywords after keyword restoring, so no keyword value rewrites them.
        if !opts.client_secrets
            && let Some(Value::Object(options)) = v.get_mut("options")
        {
            secret_keywords.extend(mark_connection_secrets(&c.name, options));
        }
        // Scripts go to files after keyword restoring: code is written as it is.
        let folder = if format == Format::Directory { "database-connections" } else { "databases" };
        let dir = c.is_database().then(|| paths.claim(Path::new(folder), &sanitize(&c.name), ""));
        if let Some(dir) = &dir
            && let Some(Value::Object(scripts)) = v.pointer_mut("/options/customScripts")
        {
            for (script, code) in scripts.iter_mut() {
                if let Some(text) =
                    c.body.get("options").and_then(|o| o.get("customScripts")).and_then(|s| s.get(script))
                {
                    let rel = paths.claim(dir, &sanitize(script), ".js");
                    // The directory format resolves scripts against the database's folder.
                    let shown = if format == Format::Directory {
                        Path::new(rel.file_name().unwrap_or_default())
                    } else {
                        rel.as_path()
                    };
                    *code = Value::String(format!("./{}", slash(shown)));
                    files.push((rel, text.as_str().unwrap_or_default().to_string()));
                }
            }
        }
        if let Some(dir) = dir {
            database_dirs.push(dir);
        }
        ordered(v)
    };
    let databases: Vec<Value> = file.databases.iter().map(&mut connection).collect();
    section(&mut top, "databases", databases);
    let connections: Vec<Value> = file.connections.iter().map(&mut connection).collect();
    section(&mut top, "connections", connections);

    let apis: Vec<Value> = file
        .resource_servers
        .iter()
        .map(|r| {
            let mut m = r.body.clone();
            m.insert("name".into(), r.name.clone().into());
            m.insert("identifier".into(), r.identifier.clone().into());
            ordered(restore(Value::Object(m)))
        })
        .collect();
    section(&mut top, "resourceServers", apis);

    let grants: Vec<Value> = file
        .client_grants
        .iter()
        .map(|g| {
            let mut m = g.body.clone();
            m.insert("client_id".into(), g.client_name.clone().into());
            m.insert("audience".into(), g.audience.clone().into());
            m.insert("scope".into(), g.scope.clone().into());
            ordered(restore(Value::Object(m)))
        })
        .collect();
    section(&mut top, "clientGrants", grants);

    let actions: Vec<Value> = file
        .actions
        .iter()
        .map(|a| {
            let rel = paths.claim(Path::new("actions"), &sanitize(&a.name), "").join("code.js");
            files.push((rel.clone(), a.code.clone()));
            let mut m = a.extra.clone();
            m.insert("name".into(), a.name.clone().into());
            m.insert("code".into(), format!("./{}", slash(&rel)).into());
            m.insert("runtime".into(), a.runtime.clone().into());
            m.insert("dependencies".into(), serde_json::to_value(&a.dependencies).unwrap_or_default());
            m.insert("deployed".into(), a.deployed.into());
            m.insert("supported_triggers".into(), serde_json::to_value(&a.supported_triggers).unwrap_or_default());
            let mut v = restore(Value::Object(m));
            // Values are write-only in Auth0: a keyword per secret, named after it.
            let secrets: Vec<Value> = a
                .secrets
                .iter()
                .map(|(name, _)| {
                    let mut s = Map::new();
                    s.insert("name".into(), name.clone().into());
                    if is_keyword_name(name) {
                        s.insert("value".into(), format!("##{name}##").into());
                        secret_keywords.push(name.clone());
                    }
                    Value::Object(s)
                })
                .collect();
            v["secrets"] = Value::Array(secrets);
            ordered(v)
        })
        .collect();
    section(&mut top, "actions", actions);

    let mut triggers = Map::new();
    for (t, bindings) in &file.triggers {
        let list: Vec<Value> = bindings
            .iter()
            .map(|b| {
                let mut m = b.extra.clone();
                m.insert("action_name".into(), b.action_name.clone().into());
                m.insert("display_name".into(), b.display_name.clone().into());
                ordered(restore(Value::Object(m)))
            })
            .collect();
        if !list.is_empty() {
            triggers.insert(t.clone(), Value::Array(list));
        }
    }
    if !triggers.is_empty() {
        top.insert("triggers".into(), Value::Object(triggers));
    }

    let roles: Vec<Value> = file
        .roles
        .iter()
        .map(|r| {
            let mut m = r.body.clone();
            m.insert("name".into(), r.name.clone().into());
            if let Some(d) = &r.description {
                m.insert("description".into(), d.clone().into());
            }
            m.insert("permissions".into(), serde_json::to_value(&r.permissions).unwrap_or_default());
            ordered(restore(Value::Object(m)))
        })
        .collect();
    section(&mut top, "roles", roles);

    secret_keywords.sort();
    secret_keywords.dedup();
    Parts { top, files, secret_keywords, database_dirs }
}

/// Replaces a connection's secret options by keywords (see the module docs); returns their
/// names. A value already written as a single keyword (by [`Keywords::restore`]) stays as it is.
fn mark_connection_secrets(connection: &str, options: &mut Map<String, Value>) -> Vec<String> {
    let mut names = Vec::new();
    let prefix = upper_snake(connection);
    let mut mark = |value: &mut Value, name: String| {
        if value.as_str().is_some_and(is_single_marker) {
            return;
        }
        *value = Value::String(format!("##{name}##"));
        names.push(name);
    };
    if let Some(secret) = options.get_mut("client_secret")
        && !matches!(secret, Value::Null)
        && secret.as_str() != Some("")
    {
        mark(secret, format!("{prefix}_CLIENT_SECRET"));
    }
    if let Some(Value::Object(configuration)) = options.get_mut("configuration") {
        for (key, value) in configuration.iter_mut() {
            mark(value, format!("{prefix}_CONFIGURATION_{}", upper_snake(key)));
        }
    }
    names
}

/// `google-oauth2` → `GOOGLE_OAUTH2`: a keyword name from any name.
pub fn upper_snake(name: &str) -> String {
    let s: String =
        name.chars().map(|c| if c.is_ascii_alphanumeric() { c.to_ascii_uppercase() } else { '_' }).collect();
    if s.is_empty() { "_".into() } else { s }
}

fn is_single_marker(s: &str) -> bool {
    s.len() > 4 && s.starts_with("##") && s.ends_with("##") && is_keyword_name(&s[2..s.len() - 2])
}

/// Relative paths handed out so far, compared case-insensitively (macOS and Windows file
/// systems are), so no two entries share a file.
#[derive(Default)]
pub(crate) struct UniquePaths {
    used: std::collections::HashSet<String>,
}

impl UniquePaths {
    /// Marks `path` as taken.
    pub fn reserve(&mut self, path: &Path) {
        self.used.insert(slash(path).to_lowercase());
    }

    /// `parent/stem{ext}`, or `parent/stem-2{ext}`, `-3`, … when that is taken; the chosen
    /// path is taken from then on.
    pub fn claim(&mut self, parent: &Path, stem: &str, ext: &str) -> PathBuf {
        let mut n = 1;
        loop {
            let name = if n == 1 { format!("{stem}{ext}") } else { format!("{stem}-{n}{ext}") };
            let path = parent.join(&name);
            if self.used.insert(slash(&path).to_lowercase()) {
                return path;
            }
            n += 1;
        }
    }
}

/// Writes `tenant.yaml` (unless the rendering has none: the directory format) and the
/// other files under `dir` (created if missing).
pub fn write_dir(dir: &Path, rendered: &Rendered) -> Result<()> {
    let write = |path: PathBuf, text: &str| -> Result<()> {
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).map_err(|source| Error::Write { path: parent.to_path_buf(), source })?;
        }
        std::fs::write(&path, text).map_err(|source| Error::Write { path, source })
    };
    if !rendered.yaml.is_empty() {
        write(dir.join("tenant.yaml"), &rendered.yaml)?;
    }
    for (rel, text) in &rendered.files {
        write(dir.join(rel), text)?;
    }
    Ok(())
}

fn section(top: &mut Map<String, Value>, name: &str, items: Vec<Value>) {
    if !items.is_empty() {
        top.insert(name.into(), Value::Array(items));
    }
}

/// A file or folder name from an entry name (deploy-cli's `sanitize`): characters that are
/// not allowed in file names become `-`.
pub fn sanitize(name: &str) -> String {
    let s: String = name.chars().map(|c| if c.is_control() || "/\\?<>:*|\"".contains(c) { '-' } else { c }).collect();
    match s.trim() {
        "" | "." | ".." => "-".into(),
        t => t.to_string(),
    }
}

fn slash(p: &Path) -> String {
    p.components().map(|c| c.as_os_str().to_string_lossy().into_owned()).collect::<Vec<_>>().join("/")
}

/// A list or map equal to a JSON mapping's value becomes its `@@KEY@@` marker (written as a
/// quoted string, which the import replaces together with its quotes).
fn restore_json(v: &mut Value, keywords: &Keywords) {
    let values = keywords.json_values();
    fn walk(v: &mut Value, values: &[(String, Value)]) {
        if let Some((k, _)) = values.iter().find(|(_, value)| value == v) {
            *v = Value::String(format!("@@{k}@@"));
            return;
        }
        match v {
            Value::Array(items) => items.iter_mut().for_each(|i| walk(i, values)),
            Value::Object(m) => m.values_mut().for_each(|i| walk(i, values)),
            _ => {}
        }
    }
    if !values.is_empty() {
        walk(v, &values);
    }
}

fn restore_strings(v: &mut Value, keywords: &Keywords) {
    match v {
        Value::String(s) => {
            let restored = keywords.restore(s);
            if restored != *s {
                *s = restored;
            }
        }
        Value::Array(items) => items.iter_mut().for_each(|i| restore_strings(i, keywords)),
        Value::Object(m) => m.values_mut().for_each(|i| restore_strings(i, keywords)),
        _ => {}
    }
}

/// deploy-cli's key order, applied at every level: leading keys first, then alphabetical.
fn ordered(v: Value) -> Value {
    match v {
        Value::Object(m) => {
            let mut entries: Vec<(String, Value)> = m.into_iter().map(|(k, v)| (k, ordered(v))).collect();
            let rank = |k: &str| LEADING_KEYS.iter().position(|l| *l == k).unwrap_or(LEADING_KEYS.len());
            entries.sort_by(|a, b| rank(&a.0).cmp(&rank(&b.0)).then_with(|| a.0.cmp(&b.0)));
            Value::Object(entries.into_iter().collect())
        }
        Value::Array(items) => Value::Array(items.into_iter().map(ordered).collect()),
        other => other,
    }
}

// ---- a small block-style YAML emitter ---------------------------------------------------

fn emit_map(m: &Map<String, Value>, indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for (k, v) in m {
        let key = scalar_str(k);
        out.push_str(&pad);
        if key.chars().count() > IMPLICIT_KEY_MAX {
            out.push_str("? ");
            out.push_str(&key);
            out.push('\n');
            out.push_str(&pad);
        } else {
            out.push_str(&key);
        }
        out.push(':');
        match v {
            Value::Object(child) if !child.is_empty() => {
                out.push('\n');
                emit_map(child, indent + 2, out);
            }
            Value::Array(items) if !items.is_empty() => {
                out.push('\n');
                emit_seq(items, indent + 2, out);
            }
            other => {
                out.push(' ');
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn emit_seq(items: &[Value], indent: usize, out: &mut String) {
    let pad = " ".repeat(indent);
    for item in items {
        match item {
            Value::Object(child) if !child.is_empty() => {
                // The map's lines at indent + 2, the first one's indentation replaced by "- ".
                let mut inner = String::new();
                emit_map(child, indent + 2, &mut inner);
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&inner[indent + 2..]);
            }
            Value::Array(child) if !child.is_empty() => {
                out.push_str(&pad);
                out.push_str("-\n");
                emit_seq(child, indent + 2, out);
            }
            other => {
                out.push_str(&pad);
                out.push_str("- ");
                out.push_str(&scalar(other));
                out.push('\n');
            }
        }
    }
}

fn scalar(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::String(s) => scalar_str(s),
        Value::Array(_) => "[]".into(),
        Value::Object(_) => "{}".into(),
    }
}

/// A string plain when YAML reads it back as the same string, else double-quoted
/// ([`double_quoted`]). Markers (`#`) are always quoted.
fn scalar_str(s: &str) -> String {
    let first_ok = s.chars().next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == '/');
    let chars_ok = s.chars().all(|c| c.is_ascii_alphanumeric() || "_./:+-@".contains(c));
    let reserved = matches!(
        s.to_ascii_lowercase().as_str(),
        "true" | "false" | "yes" | "no" | "on" | "off" | "null" | "y" | "n" | "~"
    );
    if first_ok && chars_ok && !reserved && !s.ends_with(':') { s.to_string() } else { double_quoted(s) }
}

/// A YAML double-quoted scalar that reads back as `s`. Escaped: `"`, `\`, every character
/// outside YAML's printable set (C0 controls but tab, U+007F, the C1 controls U+0080–U+009F,
/// U+FEFF, U+FFFE, U+FFFF) and the line breaks a YAML 1.1 reader folds into spaces (U+0085,
/// U+2028, U+2029). Everything else is written as it is.
fn double_quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\t' => out.push_str("\\t"),
            '\r' => out.push_str("\\r"),
            '\u{0}'..='\u{1f}' | '\u{7f}'..='\u{9f}' => out.push_str(&format!("\\x{:02X}", c as u32)),
            '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{fffe}' | '\u{ffff}' => {
                out.push_str(&format!("\\u{:04X}", c as u32))
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The longest key written in YAML's implicit form (`key: value`), in characters as written:
/// YAML caps implicit keys at 1024 characters (serde_yaml_ng's reader refuses longer ones),
/// so longer keys use the explicit form (`? key` / `: value`).
const IMPLICIT_KEY_MAX: usize = 1000;

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keywords, parse_tenant};

    fn example_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cms-tenant")
    }

    fn keywords() -> Keywords {
        let mut k = Keywords::from_env_file(example_dir().join("dev.env")).unwrap();
        k.insert("AUTH0_DOMAIN", "localhost:8443");
        k
    }

    fn example() -> TenantFile {
        crate::load_tenant(example_dir().join("tenant.yaml"), &keywords()).unwrap()
    }

    #[test]
    fn scalars_are_quoted_only_when_needed() {
        assert_eq!(scalar_str("read:users"), "read:users");
        assert_eq!(scalar_str("https://x.test/api/v2/"), "https://x.test/api/v2/");
        for quoted in ["", "42", "true", "No", "##A##/x", "a b", "-x", "@x", "a: b", "é", "x:"] {
            assert!(scalar_str(quoted).starts_with('"'), "{quoted}");
        }
        assert_eq!(scalar_str("say \"hi\"\n"), r#""say \"hi\"\n""#);
    }

    #[test]
    fn the_example_round_trips_through_the_writer() {
        let original = example();
        let rendered = render(&original, &WriteOptions { identifiers: true, client_secrets: true, keywords: None });
        let dir = std::env::temp_dir().join(format!("gatehouse-yaml-out-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        write_dir(&dir, &rendered).unwrap();
        // Action secret values are written as keywords, which dev.env fills back in.
        let back = crate::load_tenant(dir.join("tenant.yaml"), &keywords()).unwrap();
        assert_eq!(
            std::fs::read_to_string(dir.join("actions/inject-id-token/code.js")).unwrap(),
            original.actions[0].code
        );
        let _ = std::fs::remove_dir_all(&dir);
        let strip = |mut t: TenantFile| {
            t.base_dir = PathBuf::new();
            t.actions.iter_mut().for_each(|a| a.code_path = None);
            t
        };
        assert_eq!(strip(back), strip(original));
    }

    #[test]
    fn keywords_and_secrets_in_the_output() {
        let k = keywords();
        let plain = render(&example(), &WriteOptions::default());
        assert!(!plain.yaml.contains("client_id: S0XG") && !plain.yaml.contains("Dzp37xVmYX8J1pCi"), "{}", plain.yaml);
        assert!(!plain.yaml.contains("\n    client_secret"), "{}", plain.yaml);
        assert!(plain.yaml.contains("- http://localhost:8080/web-login/callback"), "{}", plain.yaml);
        assert!(plain.yaml.contains("        value: \"##MIA_NAMESPACE##\"\n"), "{}", plain.yaml);

        let marked = render(&example(), &WriteOptions { identifiers: true, client_secrets: false, keywords: Some(&k) });
        for line in [
            "    client_id: \"##CMS_CLIENT_ID##\"\n",
            "      - \"##CMS_BASE_URL##/web-login/callback\"\n",
            "    audience: \"https://##AUTH0_DOMAIN##/api/v2/\"\n",
            "  - name: dev-users\n    strategy: auth0\n",
        ] {
            assert!(marked.yaml.contains(line), "missing {line:?} in\n{}", marked.yaml);
        }
        // The written text parses back to the same tenant with the same keywords.
        let back = parse_tenant(&marked.yaml.replace("./actions/inject-id-token/code.js", "x"), ".", &k).unwrap();
        assert_eq!(back.clients[0].client_id, example().clients[0].client_id);
        assert_eq!(back.client_grants, example().client_grants);
    }

    #[test]
    fn names_become_safe_paths() {
        assert_eq!(sanitize("a/b:c"), "a-b-c");
        assert_eq!(sanitize(".."), "-");
        assert_eq!(sanitize("inject-id-token"), "inject-id-token");
    }

    fn temp_dir(tag: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("gatehouse-yaml-out-{tag}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    /// Every character YAML does not take as it is, alone and amid text.
    fn awkward_strings() -> Vec<String> {
        let mut chars: Vec<char> = (0u32..0x20).chain(0x7f..0xa0).filter_map(char::from_u32).collect();
        chars.extend(['\u{2028}', '\u{2029}', '\u{feff}', '\u{fffe}', '\u{ffff}', '"', '\\', '#', '\'']);
        let mut out: Vec<String> = chars.iter().map(|c| c.to_string()).collect();
        out.extend(chars.iter().map(|c| format!("a{c}b")));
        out.push(chars.iter().collect());
        out.extend(["a\u{85}b\u{85}".to_string(), " lead".into(), "trail ".into(), "é✓🦀".into(), "- x".into()]);
        out
    }

    #[test]
    fn strings_round_trip_through_the_yaml_reader() {
        for s in awkward_strings() {
            let mut m = Map::new();
            m.insert(s.clone(), Value::Array(vec![s.clone().into()]));
            m.insert("value".into(), s.clone().into());
            let mut yaml = String::new();
            emit_map(&m, 0, &mut yaml);
            let back: Value = serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("{s:?} as {yaml:?}: {e}"));
            assert_eq!(back, Value::Object(m), "{s:?} as {yaml:?}");
        }
        // And through the tenant reader, as an export is imported.
        let mut file = parse_tenant("clients:\n  - name: App\n", ".", &Keywords::new()).unwrap();
        let all: String = awkward_strings().concat().replace("##", "#");
        file.clients[0].body.insert("description".into(), all.clone().into());
        let rendered = render(&file, &WriteOptions::default());
        let back = parse_tenant(&rendered.yaml, ".", &Keywords::new()).unwrap();
        assert_eq!(back.clients[0].body["description"], Value::String(all));
    }

    #[test]
    fn long_keys_use_the_explicit_form() {
        for len in [1, 998, 1000, 1021, 1022, 1023, 1024, 1025, 1100, 5000] {
            let key = "k".repeat(len);
            let quoted = format!("{}\u{85}", "q".repeat(len));
            let mut inner = Map::new();
            inner.insert(key.clone(), 1.into());
            inner.insert("z".into(), 2.into());
            let mut m = Map::new();
            m.insert(key.clone(), "v".into());
            m.insert(quoted.clone(), Value::Object(inner.clone()));
            m.insert(format!("{key}-list"), Value::Array(vec![Value::Object(inner.clone()), 3.into()]));
            let mut yaml = String::new();
            emit_map(&m, 0, &mut yaml);
            let back: Value =
                serde_yaml_ng::from_str(&yaml).unwrap_or_else(|e| panic!("a key of {len} characters: {e}"));
            assert_eq!(back, Value::Object(m), "a key of {len} characters");
            // The longest key written is the quoted one: `"`, len × `q`, `\x85`, `"`.
            assert_eq!(yaml.contains("? "), len + 6 > IMPLICIT_KEY_MAX, "{len}");
        }
    }

    #[test]
    fn entries_with_the_same_file_name_get_their_own_files() {
        let yaml = "
databases:
  - name: x/y
    options:
      customScripts:
        login: 'function login() { return 1; }'
        get_user: 'function getUser() { return 1; }'
  - name: x:y
    options:
      customScripts:
        login: 'function login() { return 2; }'
actions:
  - name: a/b
    code: 'exports.one = 1;'
    supported_triggers: [{id: post-login, version: v3}]
  - name: a:b
    code: 'exports.two = 2;'
    supported_triggers: [{id: post-login, version: v3}]
  - name: A-B
    code: 'exports.three = 3;'
    supported_triggers: [{id: post-login, version: v3}]
  - name: a-b-2
    code: 'exports.four = 4;'
    supported_triggers: [{id: post-login, version: v3}]
";
        let original = parse_tenant(yaml, ".", &Keywords::new()).unwrap();
        let rendered = render(&original, &WriteOptions::default());
        let mut paths: Vec<String> = rendered.files.iter().map(|(p, _)| slash(p).to_lowercase()).collect();
        paths.sort();
        let n = paths.len();
        paths.dedup();
        assert_eq!(paths.len(), n, "two entries share a file: {:?}", rendered.files);
        for line in [
            "code: \"./actions/a-b/code.js\"\n",
            "code: \"./actions/a-b-2/code.js\"\n",
            "code: \"./actions/A-B-3/code.js\"\n",
            "code: \"./actions/a-b-2-2/code.js\"\n",
            "login: \"./databases/x-y/login.js\"\n",
            "login: \"./databases/x-y-2/login.js\"\n",
        ] {
            assert!(rendered.yaml.contains(line), "missing {line:?} in\n{}", rendered.yaml);
        }
        let dir = temp_dir("collisions");
        write_dir(&dir, &rendered).unwrap();
        let back = crate::load_tenant(dir.join("tenant.yaml"), &Keywords::new()).unwrap();
        let _ = std::fs::remove_dir_all(&dir);
        for (a, b) in original.actions.iter().zip(&back.actions) {
            assert_eq!((&a.name, &a.code), (&b.name, &b.code));
        }
        assert_eq!(back.actions.len(), original.actions.len());
        assert_eq!(back.databases, original.databases);
    }

    #[test]
    fn connection_secrets_are_written_as_keywords() {
        let yaml = "
connections:
  - name: corp-google
    strategy: google-oauth2
    options:
      client_id: corp-client-id
      client_secret: upstream-secret-value
      configuration:
        api_key: configuration-secret
  - name: google-oauth2
    strategy: google-oauth2
    options:
      client_id: ''
      client_secret: ''
";
        let original = parse_tenant(yaml, ".", &Keywords::new()).unwrap();
        let plain = render(&original, &WriteOptions::default());
        for secret in ["upstream-secret-value", "configuration-secret"] {
            assert!(!plain.yaml.contains(secret), "{secret} in\n{}", plain.yaml);
        }
        for line in [
            "      client_secret: \"##CORP_GOOGLE_CLIENT_SECRET##\"\n",
            "        api_key: \"##CORP_GOOGLE_CONFIGURATION_API_KEY##\"\n",
            "      client_secret: \"\"\n",
            "      client_id: corp-client-id\n",
        ] {
            assert!(plain.yaml.contains(line), "missing {line:?} in\n{}", plain.yaml);
        }
        assert_eq!(plain.secret_keywords, ["CORP_GOOGLE_CLIENT_SECRET", "CORP_GOOGLE_CONFIGURATION_API_KEY"]);
        // With the values in a keywords file the export imports as the tenant was.
        let k = Keywords::from_env_text(
            "CORP_GOOGLE_CLIENT_SECRET=upstream-secret-value\nCORP_GOOGLE_CONFIGURATION_API_KEY=configuration-secret\n",
            "test.env",
        )
        .unwrap();
        assert_eq!(parse_tenant(&plain.yaml, ".", &k).unwrap(), original);
        let unresolved = parse_tenant(&plain.yaml, ".", &Keywords::new()).unwrap().unresolved_keywords;
        assert!(!unresolved.is_empty(), "the secrets' keywords need values");

        // A secret a keyword value restores stays that keyword.
        let mine = Keywords::from_env_text("MY_GOOGLE_SECRET=upstream-secret-value\n", "mine.env").unwrap();
        let restored = render(&original, &WriteOptions { keywords: Some(&mine), ..WriteOptions::default() });
        assert!(restored.yaml.contains("client_secret: \"##MY_GOOGLE_SECRET##\"\n"), "{}", restored.yaml);

        let clear = render(&original, &WriteOptions { client_secrets: true, ..WriteOptions::default() });
        assert!(clear.yaml.contains("client_secret: upstream-secret-value\n"), "{}", clear.yaml);
        assert!(clear.secret_keywords.is_empty());
        assert_eq!(upper_snake("google-oauth2"), "GOOGLE_OAUTH2");
    }
}
