//! tenant.yaml as a whole: reading it (keywords first, on the raw text, as deploy-cli does),
//! splitting it into sections, and the checks that span sections.
//!
//! Sections understood: `tenant`, `clients`, `databases`, `connections`, `resourceServers`,
//! `clientGrants`, `actions`, `triggers`. A missing (or empty) section is empty. Every other
//! top-level key (`pages`, `emailTemplates`, …) is kept as written in [`TenantFile::other`].
//!
//! Files referenced by the YAML (action code, database scripts) are resolved relative to the
//! folder holding tenant.yaml. A value is read as a file when it names an existing file; a value
//! that looks like a path (`./…`, `../…`, `/…`, or ending in `.js`) but names no file is an
//! error; anything else is inline code.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use store::TenantSettings;

use crate::error::{Error, Result};
use crate::keywords::Keywords;
use crate::model::{
    ActionSpec, ClientGrantSpec, ClientSpec, ConnectionSpec, Ctx, ResourceServerSpec, TriggerBinding, describe,
    grant_label, quote,
};

const KNOWN_SECTIONS: [&str; 8] =
    ["tenant", "clients", "databases", "connections", "resourceServers", "clientGrants", "actions", "triggers"];

/// A parsed tenant.yaml. Entries keep file order.
#[derive(Debug, Clone, PartialEq)]
pub struct TenantFile {
    pub tenant: TenantSettings,
    pub clients: Vec<ClientSpec>,
    /// Database connections (strategy `auth0`).
    pub databases: Vec<ConnectionSpec>,
    /// Every other connection (`google-oauth2`, `oidc`, …).
    pub connections: Vec<ConnectionSpec>,
    pub resource_servers: Vec<ResourceServerSpec>,
    pub client_grants: Vec<ClientGrantSpec>,
    pub actions: Vec<ActionSpec>,
    /// Trigger id (`post-login`) → bound actions in execution order.
    pub triggers: BTreeMap<String, Vec<TriggerBinding>>,
    /// Sections Gatehouse does not interpret, as written.
    pub other: Map<String, Value>,
    /// The folder relative paths were resolved against.
    pub base_dir: PathBuf,
}

impl TenantFile {
    /// Databases first, then the other connections.
    pub fn all_connections(&self) -> impl Iterator<Item = &ConnectionSpec> {
        self.databases.iter().chain(self.connections.iter())
    }

    pub fn client(&self, name: &str) -> Option<&ClientSpec> {
        self.clients.iter().find(|c| c.name == name)
    }

    pub fn connection(&self, name: &str) -> Option<&ConnectionSpec> {
        self.all_connections().find(|c| c.name == name)
    }

    pub fn resource_server(&self, identifier: &str) -> Option<&ResourceServerSpec> {
        self.resource_servers.iter().find(|r| r.identifier == identifier)
    }

    pub fn action(&self, name: &str) -> Option<&ActionSpec> {
        self.actions.iter().find(|a| a.name == name)
    }

    /// The actions bound to `trigger`, in execution order (empty when none).
    pub fn bindings(&self, trigger: &str) -> &[TriggerBinding] {
        self.triggers.get(trigger).map(Vec::as_slice).unwrap_or_default()
    }

    /// Names the file uses but does not define: clients named by connections and grants,
    /// actions named by triggers. Not an error — they may already exist in the target tenant —
    /// but worth showing (e.g. by `tenant lint`).
    pub fn unresolved_references(&self) -> Vec<String> {
        let mut out = Vec::new();
        for c in self.all_connections() {
            for name in c.enabled_client_names() {
                if self.client(name).is_none() {
                    out.push(format!(
                        "connection {}: enabled client {} is not in clients",
                        quote(&c.name),
                        quote(name)
                    ));
                }
            }
        }
        for g in &self.client_grants {
            if self.client(&g.client_name).is_none() {
                out.push(format!("client grant for {}: client is not in clients", quote(&g.client_name)));
            }
        }
        for (trigger, bindings) in &self.triggers {
            for b in bindings {
                if self.action(&b.action_name).is_none() {
                    out.push(format!("trigger {trigger}: action {} is not in actions", quote(&b.action_name)));
                }
            }
        }
        out
    }
}

/// Read a tenant.yaml; relative paths in it resolve against its folder.
pub fn load_tenant(path: impl AsRef<Path>, keywords: &Keywords) -> Result<TenantFile> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    let base_dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    parse_named(&text, base_dir, keywords, &path.display().to_string())
}

/// Parse tenant.yaml text; relative paths resolve against `base_dir`.
pub fn parse_tenant(yaml: &str, base_dir: impl AsRef<Path>, keywords: &Keywords) -> Result<TenantFile> {
    parse_named(yaml, base_dir.as_ref(), keywords, "tenant.yaml")
}

/// Where referenced files are read from, and with which keywords.
pub(crate) struct Sources<'a> {
    file: &'a str,
    base_dir: &'a Path,
    keywords: &'a Keywords,
}

impl Sources<'_> {
    /// Resolve a code-or-path value: `(text, Some(path))` when read from a file.
    pub fn load(&self, value: &str, ctx: &Ctx<'_>, key: &str) -> Result<(String, Option<PathBuf>)> {
        if value.contains('\n') {
            return Ok((value.to_string(), None));
        }
        let candidate = value.trim();
        let path = self.base_dir.join(candidate.replace('\\', "/"));
        if path.is_file() {
            let text = std::fs::read_to_string(&path).map_err(|source| Error::Io { path: path.clone(), source })?;
            let text = self.keywords.replace_in(&text, &path.display().to_string())?;
            return Ok((text, Some(path)));
        }
        let looks_like_path =
            ["./", "../", "/", ".\\"].iter().any(|p| candidate.starts_with(p)) || candidate.ends_with(".js");
        if looks_like_path {
            return Err(ctx.field(
                key,
                format!("file {} not found (paths are relative to the folder of {})", path.display(), self.file),
            ));
        }
        Ok((value.to_string(), None))
    }
}

fn parse_named(yaml: &str, base_dir: &Path, keywords: &Keywords, file: &str) -> Result<TenantFile> {
    let text = keywords.replace_in(yaml, file)?;
    let mut doc: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| Error::Syntax { file: file.to_string(), message: e.to_string() })?;
    // `<<: *anchor` merge keys are part of how people share settings between entries.
    doc.apply_merge().map_err(|e| Error::Syntax { file: file.to_string(), message: e.to_string() })?;
    let doc: Value = serde_json::to_value(&doc).map_err(|e| Error::Syntax {
        file: file.to_string(),
        message: format!("cannot be read as JSON-compatible data: {e}"),
    })?;
    let mut top = match doc {
        Value::Null => Map::new(),
        Value::Object(m) => m,
        other => {
            return Err(Error::Syntax {
                file: file.to_string(),
                message: format!("expected a map of sections at the top level, found {}", describe(&other)),
            });
        }
    };
    let sources = Sources { file, base_dir, keywords };
    let section_err = |section: &str, message: String| Error::Section {
        file: file.to_string(),
        section: section.to_string(),
        message,
    };

    let tenant = match top.remove("tenant") {
        None | Some(Value::Null) => TenantSettings::default(),
        Some(v @ Value::Object(_)) => Ctx::new(file, "tenant", String::new()).deserialize(v)?,
        Some(other) => {
            return Err(section_err("tenant", format!("expected a map, found {}", describe(&other))));
        }
    };

    let clients = entries(&mut top, "clients", file, ClientSpec::from_entry)?;
    let databases =
        entries(&mut top, "databases", file, |obj, ctx| ConnectionSpec::from_entry(obj, true, ctx, &sources))?;
    let connections =
        entries(&mut top, "connections", file, |obj, ctx| ConnectionSpec::from_entry(obj, false, ctx, &sources))?;
    let resource_servers = entries(&mut top, "resourceServers", file, ResourceServerSpec::from_entry)?;
    let client_grants = entries(&mut top, "clientGrants", file, ClientGrantSpec::from_entry)?;
    let actions = entries(&mut top, "actions", file, |obj, ctx| ActionSpec::from_entry(obj, ctx, &sources))?;
    let triggers = parse_triggers(top.remove("triggers"), file)?;
    debug_assert!(KNOWN_SECTIONS.iter().all(|s| !top.contains_key(*s)));

    let tenant_file = TenantFile {
        tenant,
        clients,
        databases,
        connections,
        resource_servers,
        client_grants,
        actions,
        triggers,
        other: top,
        base_dir: base_dir.to_path_buf(),
    };
    check_unique(&tenant_file, file)?;
    check_bindings(&tenant_file, file)?;
    Ok(tenant_file)
}

/// Run `parse` on every entry of a list section, labelling errors with the entry's name.
fn entries<T>(
    top: &mut Map<String, Value>,
    section: &str,
    file: &str,
    mut parse: impl FnMut(Map<String, Value>, &Ctx<'_>) -> Result<T>,
) -> Result<Vec<T>> {
    let list = match top.remove(section) {
        None | Some(Value::Null) => return Ok(Vec::new()),
        Some(Value::Array(list)) => list,
        Some(other) => {
            return Err(Error::Section {
                file: file.to_string(),
                section: section.to_string(),
                message: format!("expected a list, found {}", describe(&other)),
            });
        }
    };
    let mut out = Vec::with_capacity(list.len());
    for (i, item) in list.into_iter().enumerate() {
        let ctx = Ctx::new(file, section, entry_label(&item, section, i));
        match item {
            Value::Object(obj) => out.push(parse(obj, &ctx)?),
            other => {
                return Err(ctx.entry_error(format!("expected a map, found {}", describe(&other))));
            }
        }
    }
    Ok(out)
}

/// `"CMS"` for named entries; grants are named by client and audience; else the position.
fn entry_label(item: &Value, section: &str, index: usize) -> String {
    let s = |k: &str| item.get(k).and_then(Value::as_str);
    if section == "clientGrants"
        && let (Some(client), Some(audience)) = (s("client_id"), s("audience"))
    {
        return grant_label(client, audience);
    }
    match s("name").or_else(|| s("identifier")) {
        Some(name) => quote(name),
        None => index.to_string(),
    }
}

fn parse_triggers(value: Option<Value>, file: &str) -> Result<BTreeMap<String, Vec<TriggerBinding>>> {
    let map = match value {
        None | Some(Value::Null) => return Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map,
        Some(other) => {
            return Err(Error::Section {
                file: file.to_string(),
                section: "triggers".into(),
                message: format!("expected a map of trigger id to bindings, found {}", describe(&other)),
            });
        }
    };
    let mut out = BTreeMap::new();
    for (trigger, bindings) in map {
        let ctx = Ctx::new(file, "triggers", quote(&trigger));
        let mut bindings: Vec<TriggerBinding> = match bindings {
            Value::Null => Vec::new(),
            v => ctx.deserialize(v)?,
        };
        for b in &mut bindings {
            if b.display_name.is_empty() {
                b.display_name = b.action_name.clone();
            }
        }
        out.insert(trigger, bindings);
    }
    Ok(out)
}

/// Names must be unique where Auth0 makes them unique (and where the file refers by name).
fn check_unique(t: &TenantFile, file: &str) -> Result<()> {
    fn dup<'a>(names: impl Iterator<Item = &'a str>) -> Option<&'a str> {
        let mut seen = std::collections::HashSet::new();
        names.into_iter().find(|n| !seen.insert(*n))
    }
    let err = |section: &str, entry: &str, what: &str| Error::Entry {
        file: file.to_string(),
        section: section.to_string(),
        entry: quote(entry),
        message: format!("{what} appears more than once"),
    };
    if let Some(n) = dup(t.clients.iter().map(|c| c.name.as_str())) {
        return Err(err("clients", n, "this name (references to clients are by name)"));
    }
    if let Some(id) = dup(t.clients.iter().filter_map(|c| c.client_id.as_deref())) {
        return Err(err("clients", id, "this pinned client_id"));
    }
    if let Some(n) = dup(t.all_connections().map(|c| c.name.as_str())) {
        let section = if t.databases.iter().any(|c| c.name == n) { "databases" } else { "connections" };
        return Err(err(section, n, "this connection name (across databases and connections)"));
    }
    if let Some(n) = dup(t.resource_servers.iter().map(|r| r.identifier.as_str())) {
        return Err(err("resourceServers", n, "this identifier"));
    }
    if let Some(n) = dup(t.actions.iter().map(|a| a.name.as_str())) {
        return Err(err("actions", n, "this name"));
    }
    let grants: Vec<String> = t.client_grants.iter().map(|g| grant_label(&g.client_name, &g.audience)).collect();
    if let Some(g) = dup(grants.iter().map(String::as_str)) {
        return Err(Error::Entry {
            file: file.to_string(),
            section: "clientGrants".into(),
            entry: g.to_string(),
            message: "a grant for this client and audience appears more than once".into(),
        });
    }
    Ok(())
}

/// A binding to an action defined in this file must be one Auth0 would accept: the action is
/// deployed and written for that trigger.
fn check_bindings(t: &TenantFile, file: &str) -> Result<()> {
    for (trigger, bindings) in &t.triggers {
        for (i, b) in bindings.iter().enumerate() {
            let Some(action) = t.action(&b.action_name) else {
                continue;
            };
            let ctx = Ctx::new(file, "triggers", quote(trigger));
            let key = format!("[{i}].action_name");
            if !action.supports(trigger) {
                return Err(ctx.field(
                    &key,
                    format!("action {} does not list {trigger} in its supported_triggers", quote(&action.name)),
                ));
            }
            if !action.deployed {
                return Err(ctx.field(
                    &key,
                    format!(
                        "action {} is not deployed; only deployed actions can be bound (set deployed: true)",
                        quote(&action.name)
                    ),
                ));
            }
        }
    }
    Ok(())
}
