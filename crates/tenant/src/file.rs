//! tenant.yaml as a whole: reading it (keywords first, on the raw text, as deploy-cli does),
//! splitting it into sections, and the checks that span sections.
//!
//! Sections understood: `tenant`, `clients`, `databases`, `connections`, `resourceServers`,
//! `clientGrants`, `actions`, `triggers`, `roles`. A missing (or `null`) section is empty and
//! absent from [`TenantFile::sections`]: deploy-cli leaves what a file does not mention alone,
//! even when it may delete (`AUTH0_ALLOW_DELETE`), and empties a section written as `[]`.
//! Every other top-level key (`pages`, `emailTemplates`, …) is kept as written in
//! [`TenantFile::other`].
//!
//! Files referenced by the YAML (action code, database scripts) are resolved relative to the
//! folder holding tenant.yaml (`sources`). `load_tenant` reads deploy-cli's
//! directory format too (`directory`), chosen by the path as deploy-cli chooses: a
//! folder is the directory format, a file is YAML. Both end in the same checks here.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use store::TenantSettings;

use crate::ctx::{Ctx, describe, grant_label, quote};
use crate::error::{Error, Result};
use crate::keywords::{JsonUse, Keywords, Syntax, Unresolved};
use crate::model::{
    ActionSpec, ClientGrantSpec, ClientSpec, ConnectionSpec, ResourceServerSpec, RoleSpec, TriggerBinding,
};
use crate::sources::Sources;

/// The sections that are lists of entries, as deploy-cli names them.
pub const LIST_SECTIONS: [&str; 7] =
    ["clients", "databases", "connections", "resourceServers", "clientGrants", "actions", "roles"];

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
    /// Roles (parsed and linted; imported where the target serves `/roles`).
    pub roles: Vec<RoleSpec>,
    /// Sections Gatehouse does not interpret, as written.
    pub other: Map<String, Value>,
    /// The folder relative paths were resolved against.
    pub base_dir: PathBuf,
    /// The sections the file has (`tenant`, `clients`, …, `triggers`, `roles`), empty ones
    /// included: what an import with deletes allowed may empty.
    pub sections: BTreeSet<String>,
    /// Markers left as text because their keyword has no value (those inside YAML comments
    /// excepted), as deploy-cli leaves them.
    pub unresolved_keywords: Vec<Unresolved>,
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

    pub fn role(&self, name: &str) -> Option<&RoleSpec> {
        self.roles.iter().find(|r| r.name == name)
    }

    /// Whether the file has `section` (even empty).
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.contains(section)
    }

    /// The strict reading, for a tenant Gatehouse provisions itself (`gatehouse idp --tenant`):
    /// an error listing every keyword left without a value.
    pub fn require_keywords(&self, keywords: &Keywords) -> Result<()> {
        match self.unresolved_keywords.first() {
            None => Ok(()),
            Some(first) => Err(keywords.missing_error(&first.origin, &self.unresolved_keywords)),
        }
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
pub fn load_yaml(path: &Path, keywords: &Keywords) -> Result<TenantFile> {
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

/// One entry (or single-object section) and the file it came from.
pub(crate) struct Item {
    pub value: Value,
    /// The file, for messages.
    pub file: String,
    /// The folder the entry's relative paths resolve against.
    pub base_dir: PathBuf,
    /// The `@@KEY@@` replacements of its file, to explain a wrong type they caused.
    pub json_uses: Vec<JsonUse>,
}

/// A tenant file split into sections, before the entries are checked: what the YAML and the
/// directory readers both produce.
pub(crate) struct Document {
    /// Labels errors that span sections.
    pub label: String,
    pub base_dir: PathBuf,
    pub tenant: Option<Item>,
    /// List sections by name; a section absent from the map is absent from the file.
    pub lists: BTreeMap<String, Vec<Item>>,
    pub triggers: Option<Item>,
    pub other: Map<String, Value>,
    pub unresolved: Vec<Unresolved>,
}

fn parse_named(yaml: &str, base_dir: &Path, keywords: &Keywords, file: &str) -> Result<TenantFile> {
    let replaced = keywords.replace_all(yaml, file, Syntax::Yaml)?;
    replaced.check_json_fits(file)?;
    let mut doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&replaced.text)
        .map_err(|e| Error::Syntax { file: file.to_string(), message: e.to_string() })?;
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
    let item = |value: Value| Item {
        value,
        file: file.to_string(),
        base_dir: base_dir.to_path_buf(),
        json_uses: replaced.json_uses.clone(),
    };
    let section_err = |section: &str, message: String| Error::Section {
        file: file.to_string(),
        section: section.to_string(),
        message,
    };
    let tenant = match top.remove("tenant") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(item(v)),
        Some(other) => return Err(section_err("tenant", format!("expected a map, found {}", describe(&other)))),
    };
    let mut lists = BTreeMap::new();
    for section in LIST_SECTIONS {
        match top.remove(section) {
            None | Some(Value::Null) => {}
            Some(Value::Array(list)) => {
                lists.insert(section.to_string(), list.into_iter().map(item).collect());
            }
            Some(other) => return Err(section_err(section, format!("expected a list, found {}", describe(&other)))),
        }
    }
    let triggers = match top.remove("triggers") {
        None | Some(Value::Null) => None,
        Some(v @ Value::Object(_)) => Some(item(v)),
        Some(other) => {
            return Err(section_err(
                "triggers",
                format!("expected a map of trigger id to bindings, found {}", describe(&other)),
            ));
        }
    };
    let doc = Document {
        label: file.to_string(),
        base_dir: base_dir.to_path_buf(),
        tenant,
        lists,
        triggers,
        other: top,
        unresolved: replaced.unresolved,
    };
    assemble(doc, keywords)
}

/// Check every entry of a [`Document`] and the rules that span sections.
pub(crate) fn assemble(mut doc: Document, keywords: &Keywords) -> Result<TenantFile> {
    let unresolved = RefCell::new(std::mem::take(&mut doc.unresolved));
    let mut sections: BTreeSet<String> = doc.lists.keys().cloned().collect();
    let tenant = match doc.tenant.take() {
        None => TenantSettings::default(),
        Some(item) => {
            sections.insert("tenant".into());
            let ctx = Ctx::new(&item.file, "tenant", String::new());
            ctx.deserialize(item.value).map_err(|e| explain_json(e, &item.json_uses))?
        }
    };
    let mut take = |section: &str| doc.lists.remove(section);
    let (clients_items, dbs, conns, apis, grants, actions_items, roles_items) = (
        take("clients"),
        take("databases"),
        take("connections"),
        take("resourceServers"),
        take("clientGrants"),
        take("actions"),
        take("roles"),
    );
    let clients = entries(clients_items, "clients", |obj, ctx, _| ClientSpec::from_entry(obj, ctx))?;
    let databases = entries(dbs, "databases", |obj, ctx, item| {
        let sources = sources_for(item, keywords, &unresolved);
        ConnectionSpec::from_entry(obj, true, ctx, &sources)
    })?;
    let connections = entries(conns, "connections", |obj, ctx, item| {
        let sources = sources_for(item, keywords, &unresolved);
        ConnectionSpec::from_entry(obj, false, ctx, &sources)
    })?;
    let resource_servers = entries(apis, "resourceServers", |obj, ctx, _| ResourceServerSpec::from_entry(obj, ctx))?;
    let client_grants = entries(grants, "clientGrants", |obj, ctx, _| ClientGrantSpec::from_entry(obj, ctx))?;
    let actions = entries(actions_items, "actions", |obj, ctx, item| {
        let sources = sources_for(item, keywords, &unresolved);
        ActionSpec::from_entry(obj, ctx, &sources)
    })?;
    let roles = entries(roles_items, "roles", |obj, ctx, _| RoleSpec::from_entry(obj, ctx))?;
    let triggers = match doc.triggers.take() {
        None => BTreeMap::new(),
        Some(item) => {
            sections.insert("triggers".into());
            parse_triggers(item)?
        }
    };

    let tenant_file = TenantFile {
        tenant,
        clients,
        databases,
        connections,
        resource_servers,
        client_grants,
        actions,
        triggers,
        roles,
        other: doc.other,
        base_dir: doc.base_dir,
        sections,
        unresolved_keywords: unresolved.into_inner(),
    };
    check_unique(&tenant_file, &doc.label)?;
    check_bindings(&tenant_file, &doc.label)?;
    Ok(tenant_file)
}

fn sources_for<'a>(item: &'a Item, keywords: &'a Keywords, unresolved: &'a RefCell<Vec<Unresolved>>) -> Sources<'a> {
    Sources { file: &item.file, base_dir: &item.base_dir, keywords, unresolved }
}

/// A wrong type caused by a `@@KEY@@` names the keyword and the JSON it put there.
fn explain_json(err: Error, uses: &[JsonUse]) -> Error {
    let Error::Field { file, section, entry, key, message } = err else {
        return err;
    };
    let last = key.rsplit('.').next().unwrap_or(&key);
    let last = last.split('[').next().unwrap_or(last);
    let message = match uses.iter().find(|u| u.key() == Some(last)) {
        Some(u) => format!("{message} (the value comes from @@{}@@ = {}, line {})", u.name, u.json, u.line),
        None => message,
    };
    Error::Field { file, section, entry, key, message }
}

/// Run `parse` on every entry of a list section, labelling errors with the entry's file and
/// name.
fn entries<T>(
    items: Option<Vec<Item>>,
    section: &str,
    mut parse: impl FnMut(Map<String, Value>, &Ctx<'_>, &Item) -> Result<T>,
) -> Result<Vec<T>> {
    let Some(items) = items else { return Ok(Vec::new()) };
    let mut out = Vec::with_capacity(items.len());
    for (i, mut item) in items.into_iter().enumerate() {
        let value = std::mem::take(&mut item.value);
        let ctx = Ctx::new(&item.file, section, entry_label(&value, section, i));
        match value {
            Value::Object(obj) => out.push(parse(obj, &ctx, &item).map_err(|e| explain_json(e, &item.json_uses))?),
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

fn parse_triggers(item: Item) -> Result<BTreeMap<String, Vec<TriggerBinding>>> {
    let Value::Object(map) = item.value else {
        return Err(Error::Section {
            file: item.file,
            section: "triggers".into(),
            message: "expected a map of trigger id to bindings".into(),
        });
    };
    let mut out = BTreeMap::new();
    for (trigger, bindings) in map {
        let ctx = Ctx::new(&item.file, "triggers", quote(&trigger));
        let mut bindings: Vec<TriggerBinding> = match bindings {
            Value::Null => Vec::new(),
            v => ctx.deserialize(v).map_err(|e| explain_json(e, &item.json_uses))?,
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
    if let Some(n) = dup(t.roles.iter().map(|r| r.name.as_str())) {
        return Err(err("roles", n, "this name"));
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
