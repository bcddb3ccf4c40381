//! Applying a [`TenantFile`] to a live tenant through its Management API, the way
//! auth0-deploy-cli imports: names resolve to ids (clients by `client_id` when the file pins
//! one, else by name; connections by name; APIs by identifier; grants by client name and
//! audience; actions and roles by name; trigger bindings by action name). A trigger the file
//! names gets exactly the file's bindings, in the file's order, as deploy-cli's
//! `updateTriggerBindings` does, so an action bound in the tenant but not in the file is
//! unbound (the plan names each binding removed). Triggers the file does not name are left
//! alone.
//!
//! Nothing is deleted unless [`ImportOptions::allow_delete`] (deploy-cli's
//! `AUTH0_ALLOW_DELETE`): then, for each section the file has (an absent section is left
//! alone, an empty one is emptied, as in deploy-cli), every object of the tenant the file does
//! not list is deleted — never the application the import runs as, its grants, a global or
//! system object, or what [`ImportOptions::selection`] leaves out. The plan lists every delete
//! first; they run last (grants, clients, connections, APIs, actions, roles), after the writes
//! that could still need them. Without it, the notes name what deploy-cli would delete.
//!
//! Roles are written through `/roles`; a tenant that serves none (404) gets a note instead.
//!
//! Idempotent: each object is compared with what the tenant holds and written only when the
//! file says something the tenant does not — "says" meaning the keys the file writes, at
//! every depth (a key the file leaves out keeps the tenant's value; numbers compare by value;
//! a list is one value, compared item by item). A key written as `null` says "no value": it is
//! satisfied by a tenant without the key (or with `null`) and otherwise sent as `null`, as
//! deploy-cli sends it, which clears it. Writes send only the keys that differ; a connection's
//! `options` are sent whole (Auth0 replaces them): the tenant's options with the file's laid
//! over them key by key at every depth, so what is written is what was compared. A second
//! import reports everything as unchanged.
//!
//! Secrets are the exception, because the API never shows them or shows them encrypted: an
//! action's secret values, a client secret the API does not show, and a connection's
//! `options.client_secret` (unless empty) and `options.configuration` are sent when the object
//! is created, when the action's secret names change, or with
//! [`ImportOptions::update_secrets`]; otherwise they are not compared, the tenant's are kept,
//! and the report says so. The application the import authenticates as is never changed.
//!
//! Every reference is resolved before the first write ([`Error::Unresolved`] lists them all);
//! a write that fails stops the import with [`Error::ImportStopped`], listing what was applied.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::time::Duration;

use reqwest::Method;
use serde_json::{Map, Value, json};

use crate::ctx::quote;
use crate::error::{Error, Result};
use crate::remote::ManagementClient;
use crate::selection::Selection;
use crate::state::{RemoteState, str_of};
use crate::{ActionSpec, ConnectionSpec, TenantFile};

#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Compute and report the plan; write nothing.
    pub dry_run: bool,
    /// Send action secret values and client secrets even when nothing shows they changed.
    pub update_secrets: bool,
    /// Delete what the file does not list (deploy-cli's `AUTH0_ALLOW_DELETE`).
    pub allow_delete: bool,
    /// What the configuration leaves out of management (apply it to the file too, with
    /// [`Selection::apply_to_file`]).
    pub selection: Selection,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    Create,
    Update,
    Unchanged,
    /// Not touched, for the reason in the change's detail.
    Skip,
    Delete,
}

/// What the import did (or, in a dry run, would do) to one object.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub op: Op,
    /// `client`, `connection`, `resource server`, `client grant`, `action`, `trigger`, `tenant`.
    pub kind: &'static str,
    pub name: String,
    /// The keys written (updates), or why it was skipped.
    pub detail: Vec<String>,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let op = match self.op {
            Op::Create => "create",
            Op::Update => "update",
            Op::Unchanged => "unchanged",
            Op::Skip => "skip",
            Op::Delete => "delete",
        };
        write!(f, "{op:<9} {} {}", self.kind, self.name)?;
        if !self.detail.is_empty() {
            write!(f, ": {}", self.detail.join(", "))?;
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Default)]
pub struct ImportReport {
    pub dry_run: bool,
    pub changes: Vec<Change>,
    /// Things the user should know that are not changes (secrets not compared, …).
    pub notes: Vec<String>,
}

impl ImportReport {
    pub fn count(&self, op: Op) -> usize {
        self.changes.iter().filter(|c| c.op == op).count()
    }

    /// `2 created, 1 updated, 9 unchanged` (`would be` in a dry run).
    pub fn summary(&self) -> String {
        let (c, u, n, s) =
            (self.count(Op::Create), self.count(Op::Update), self.count(Op::Unchanged), self.count(Op::Skip));
        let d = self.count(Op::Delete);
        let mut out = if self.dry_run {
            format!("dry run: {c} to create, {u} to update, {n} unchanged")
        } else {
            format!("{c} created, {u} updated, {n} unchanged")
        };
        if d > 0 {
            out.push_str(&if self.dry_run { format!(", {d} to delete") } else { format!(", {d} deleted") });
        }
        if s > 0 {
            out.push_str(&format!(", {s} skipped"));
        }
        out
    }

    fn applied(&self, deleted: usize) -> Vec<String> {
        let deletes = self.changes.iter().filter(|c| c.op == Op::Delete).take(deleted);
        let writes = self.changes.iter().filter(|c| matches!(c.op, Op::Create | Op::Update));
        writes.chain(deletes).map(ToString::to_string).collect()
    }
}

/// Imports `file` into the tenant behind `api`. See the module docs for the rules.
pub async fn import(api: &ManagementClient, file: &TenantFile, opts: ImportOptions) -> Result<ImportReport> {
    let triggers: Vec<String> = file.triggers.keys().cloned().collect();
    let mut state = RemoteState::fetch(api, Some(triggers)).await?;
    opts.selection.apply_to_state(&mut state);
    check_references(api, file, &state)?;
    let dry_run = opts.dry_run;
    let mut run =
        Run { api, opts, ids: BTreeMap::new(), report: ImportReport { dry_run, ..Default::default() }, deleted: 0 };
    for c in &state.clients {
        run.ids.entry(str_of(c, "name").to_string()).or_insert_with(|| str_of(c, "client_id").to_string());
    }
    let deletes = plan_deletes(api, file, &state, &run.opts.selection);
    if run.opts.allow_delete {
        for d in &deletes {
            run.record(Op::Delete, d.kind, &d.name, vec![]);
        }
    } else {
        for d in &deletes {
            run.report.notes.push(format!(
                "not deleted: {} {} is not in the file (AUTH0_ALLOW_DELETE deletes it)",
                d.kind,
                quote(&d.name)
            ));
        }
    }
    for key in file.other.keys() {
        run.report.notes.push(format!("{key}: read but not imported (Gatehouse does not manage it)"));
    }
    let result = async {
        run.apply(file, &state).await?;
        if run.opts.allow_delete {
            run.delete(&deletes).await?;
        }
        Ok(())
    }
    .await;
    match result {
        Ok(()) => Ok(run.report),
        Err(cause) if dry_run => Err(cause),
        Err(cause) => Err(Error::ImportStopped { applied: run.report.applied(run.deleted), cause: Box::new(cause) }),
    }
}

/// An object of the tenant that the file does not list.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Delete {
    kind: &'static str,
    name: String,
    /// The Management API path to DELETE.
    path: String,
}

/// What an import with deletes allowed removes, in the order it removes it (see the module
/// docs).
fn plan_deletes(api: &ManagementClient, file: &TenantFile, state: &RemoteState, selection: &Selection) -> Vec<Delete> {
    let me = api.self_client_id();
    let mut out = Vec::new();
    let wants = |section: &str| file.has_section(section) && selection.manages(section);
    let name_of = |id: &str| state.client_by_id(id).map(|c| str_of(c, "name").to_string());
    let in_file_client = |c: &Map<String, Value>| {
        let (id, name) = (str_of(c, "client_id"), str_of(c, "name"));
        file.clients.iter().any(|s| s.client_id.as_deref() == Some(id) || (s.client_id.is_none() && s.name == name))
    };
    if wants("clientGrants") {
        for g in &state.grants {
            let client = str_of(g, "client_id");
            if client == me || g.get("is_system") == Some(&Value::Bool(true)) {
                continue;
            }
            let name = name_of(client).unwrap_or_else(|| client.to_string());
            let listed = file
                .client_grants
                .iter()
                .any(|s| (s.client_name == name || s.client_name == client) && s.audience == str_of(g, "audience"));
            if !listed {
                out.push(Delete {
                    kind: "client grant",
                    name: format!("{name} -> {}", str_of(g, "audience")),
                    path: format!("/client-grants/{}", str_of(g, "id")),
                });
            }
        }
    }
    if wants("clients") {
        for c in &state.clients {
            let (id, name) = (str_of(c, "client_id"), str_of(c, "name"));
            if id == me || c.get("global") == Some(&Value::Bool(true)) || !selection.keeps_name("clients", name) {
                continue;
            }
            if !in_file_client(c) {
                out.push(Delete { kind: "client", name: name.to_string(), path: format!("/clients/{id}") });
            }
        }
    }
    for (c, _) in &state.connections {
        let database = str_of(c, "strategy") == "auth0";
        let section = if database { "databases" } else { "connections" };
        let listed = if database { &file.databases } else { &file.connections };
        let name = str_of(c, "name");
        if wants(section) && !listed.iter().any(|s| s.name == name) {
            out.push(Delete {
                kind: "connection",
                name: name.to_string(),
                path: format!("/connections/{}", str_of(c, "id")),
            });
        }
    }
    if wants("resourceServers") {
        for r in &state.resource_servers {
            let identifier = str_of(r, "identifier");
            if r.get("is_system") == Some(&Value::Bool(true)) || identifier == api.management_audience() {
                continue;
            }
            if file.resource_server(identifier).is_none() {
                let name = r.get("name").and_then(Value::as_str).unwrap_or(identifier);
                out.push(Delete {
                    kind: "resource server",
                    name: name.to_string(),
                    path: format!("/resource-servers/{}", str_of(r, "id")),
                });
            }
        }
    }
    if wants("actions") {
        for a in &state.actions {
            let name = str_of(a, "name");
            if file.action(name).is_none() {
                // `force`: Auth0 refuses to delete a bound action otherwise.
                out.push(Delete {
                    kind: "action",
                    name: name.to_string(),
                    path: format!("/actions/actions/{}?force=true", str_of(a, "id")),
                });
            }
        }
    }
    if wants("roles") {
        for r in state.roles.iter().flatten() {
            let name = str_of(r, "name");
            if file.role(name).is_none() {
                out.push(Delete { kind: "role", name: name.to_string(), path: format!("/roles/{}", str_of(r, "id")) });
            }
        }
    }
    out
}

/// Every name the file uses must exist in the file or in the tenant.
fn check_references(api: &ManagementClient, file: &TenantFile, state: &RemoteState) -> Result<()> {
    let client_known =
        |n: &str| file.client(n).is_some() || state.client_by_name(n).is_some() || state.client_by_id(n).is_some();
    let mut problems = Vec::new();
    for c in file.all_connections() {
        for n in c.enabled_client_names() {
            if !client_known(n) {
                problems.push(format!(
                    "connection {}: enabled client {} is in neither the file nor the tenant",
                    quote(&c.name),
                    quote(n)
                ));
            }
        }
        if let Some((remote, _)) = state.connections.iter().find(|(r, _)| str_of(r, "name") == c.name)
            && str_of(remote, "strategy") != c.strategy
        {
            problems.push(format!(
                "connection {}: the tenant's has strategy {}, the file's {} (a strategy cannot change)",
                quote(&c.name),
                str_of(remote, "strategy"),
                c.strategy
            ));
        }
    }
    for g in &file.client_grants {
        if !client_known(&g.client_name) {
            problems.push(format!(
                "client grant for {}: the client is in neither the file nor the tenant",
                quote(&g.client_name)
            ));
        }
        let api_known = file.resource_server(&g.audience).is_some()
            || state.resource_servers.iter().any(|r| str_of(r, "identifier") == g.audience)
            || g.audience == api.management_audience();
        if !api_known {
            problems.push(format!(
                "client grant for {}: no API has the identifier {} (for the Management API use https://{}/api/v2/)",
                quote(&g.client_name),
                quote(&g.audience),
                api.domain()
            ));
        }
    }
    for (t, bindings) in &file.triggers {
        for b in bindings {
            if file.action(&b.action_name).is_none()
                && !state.actions.iter().any(|a| str_of(a, "name") == b.action_name)
            {
                problems.push(format!(
                    "trigger {t}: action {} is in neither the file nor the tenant",
                    quote(&b.action_name)
                ));
            }
        }
    }
    if problems.is_empty() { Ok(()) } else { Err(Error::Unresolved { problems }) }
}

/// The most permissions Auth0 takes in one `/roles/{id}/permissions` call.
const ROLE_PERMISSIONS_PER_CALL: usize = 1000;

struct Run<'a> {
    api: &'a ManagementClient,
    opts: ImportOptions,
    /// Client name → id, the tenant's plus those created.
    ids: BTreeMap<String, String>,
    report: ImportReport,
    /// Deletes done so far.
    deleted: usize,
}

impl Run<'_> {
    fn record(&mut self, op: Op, kind: &'static str, name: &str, detail: Vec<String>) {
        self.report.changes.push(Change { op, kind, name: quote(name), detail });
    }

    async fn write(&self, method: Method, path: &str, body: &Value) -> Result<Value> {
        if self.opts.dry_run {
            return Ok(Value::Null);
        }
        self.api.call(method, path, Some(body)).await
    }

    async fn apply(&mut self, file: &TenantFile, state: &RemoteState) -> Result<()> {
        self.tenant(file, state).await?;
        self.clients(file, state).await?;
        self.resource_servers(file, state).await?;
        for spec in file.all_connections() {
            self.connection(spec, state).await?;
        }
        self.grants(file, state).await?;
        for spec in &file.actions {
            self.action(spec, state).await?;
        }
        self.triggers(file, state).await?;
        self.roles(file, state).await
    }

    async fn delete(&mut self, deletes: &[Delete]) -> Result<()> {
        for d in deletes {
            if !self.opts.dry_run {
                self.api.call(Method::DELETE, &d.path, None).await?;
            }
            self.deleted += 1;
        }
        Ok(())
    }

    async fn roles(&mut self, file: &TenantFile, state: &RemoteState) -> Result<()> {
        if file.roles.is_empty() {
            return Ok(());
        }
        let Some(remote_roles) = &state.roles else {
            self.report.notes.push(format!(
                "roles: {} in the file, not imported: the tenant serves no /roles (404)",
                file.roles.len()
            ));
            return Ok(());
        };
        for spec in &file.roles {
            let remote = remote_roles.iter().find(|r| str_of(r, "name") == spec.name);
            let want: BTreeSet<(String, String)> = spec
                .permissions
                .iter()
                .map(|p| (p.permission_name.clone(), p.resource_server_identifier.clone()))
                .collect();
            let as_body = |set: &[&(String, String)]| json!({"permissions": set.iter().map(|(p, r)| json!({"permission_name": p, "resource_server_identifier": r})).collect::<Vec<_>>()});
            let (op, id, mut changed, have) = match remote {
                None => {
                    let mut body = spec.body.clone();
                    body.insert("name".into(), spec.name.clone().into());
                    if let Some(d) = &spec.description {
                        body.insert("description".into(), d.clone().into());
                    }
                    let created = self.write(Method::POST, "/roles", &Value::Object(body)).await?;
                    let id = created.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                    (Op::Create, id, vec![], BTreeSet::new())
                }
                Some(r) => {
                    let mut desired = spec.body.clone();
                    if let Some(d) = &spec.description {
                        desired.insert("description".into(), d.clone().into());
                    }
                    let changed = changed_keys(&desired, r);
                    let id = str_of(r, "id").to_string();
                    if !changed.is_empty() {
                        let patch: Map<String, Value> =
                            changed.iter().map(|k| (k.clone(), desired[k].clone())).collect();
                        self.write(Method::PATCH, &format!("/roles/{id}"), &Value::Object(patch)).await?;
                    }
                    let have: BTreeSet<(String, String)> = r
                        .get("permissions")
                        .and_then(Value::as_array)
                        .into_iter()
                        .flatten()
                        .map(|p| {
                            let s = |k: &str| p.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
                            (s("permission_name"), s("resource_server_identifier"))
                        })
                        .collect();
                    (Op::Update, id, changed, have)
                }
            };
            let added: BTreeSet<_> = want.difference(&have).cloned().collect();
            let removed: BTreeSet<_> = have.difference(&want).cloned().collect();
            // Auth0 takes at most 1,000 permissions a call.
            for chunk in added.iter().collect::<Vec<_>>().chunks(ROLE_PERMISSIONS_PER_CALL) {
                self.write(Method::POST, &format!("/roles/{id}/permissions"), &as_body(chunk)).await?;
            }
            for chunk in removed.iter().collect::<Vec<_>>().chunks(ROLE_PERMISSIONS_PER_CALL) {
                self.write(Method::DELETE, &format!("/roles/{id}/permissions"), &as_body(chunk)).await?;
            }
            if op != Op::Create && (!added.is_empty() || !removed.is_empty()) {
                changed.push("permissions".into());
            }
            let op = if op == Op::Update && changed.is_empty() { Op::Unchanged } else { op };
            self.record(op, "role", &spec.name, changed);
        }
        Ok(())
    }

    async fn tenant(&mut self, file: &TenantFile, state: &RemoteState) -> Result<()> {
        if file.tenant == store::TenantSettings::default() {
            return Ok(());
        }
        let Value::Object(mut desired) = serde_json::to_value(&file.tenant).unwrap_or_default() else {
            return Ok(());
        };
        // The model cannot tell an absent list from an empty one; absent is the common case.
        if desired.get("allowed_logout_urls") == Some(&json!([])) {
            desired.remove("allowed_logout_urls");
        }
        let changed = changed_keys(&desired, &state.settings);
        if changed.is_empty() {
            self.record(Op::Unchanged, "tenant", "settings", vec![]);
            return Ok(());
        }
        let patch: Map<String, Value> = changed.iter().map(|k| (k.clone(), desired[k].clone())).collect();
        self.write(Method::PATCH, "/tenants/settings", &Value::Object(patch)).await?;
        self.record(Op::Update, "tenant", "settings", changed);
        Ok(())
    }

    async fn clients(&mut self, file: &TenantFile, state: &RemoteState) -> Result<()> {
        let me = self.api.self_client_id().to_string();
        for spec in &file.clients {
            let remote = spec
                .client_id
                .as_deref()
                .and_then(|id| state.client_by_id(id))
                .or_else(|| state.client_by_name(&spec.name));
            let remote_id = remote.map(|r| str_of(r, "client_id").to_string());
            if remote_id.as_deref() == Some(me.as_str()) || spec.client_id.as_deref() == Some(me.as_str()) {
                self.record(
                    Op::Skip,
                    "client",
                    &spec.name,
                    vec!["the application this import authenticates as".into()],
                );
                continue;
            }
            let mut desired = spec.body.clone();
            desired.insert("name".into(), spec.name.clone().into());
            let Some(remote) = remote else {
                let mut body = desired;
                if let Some(id) = &spec.client_id {
                    body.insert("client_id".into(), id.clone().into());
                }
                if let Some(secret) = &spec.client_secret {
                    body.insert("client_secret".into(), secret.clone().into());
                }
                let created = self.write(Method::POST, "/clients", &Value::Object(body)).await?;
                let id = created
                    .get("client_id")
                    .and_then(Value::as_str)
                    .map(str::to_owned)
                    .or_else(|| spec.client_id.clone())
                    .unwrap_or_else(|| format!("<new {}>", spec.name));
                self.ids.insert(spec.name.clone(), id);
                self.record(Op::Create, "client", &spec.name, vec![]);
                continue;
            };
            let id = str_of(remote, "client_id").to_string();
            if let Some(pinned) = &spec.client_id
                && *pinned != id
            {
                self.report.notes.push(format!(
                    "client {}: the tenant's has client_id {id}, the file pins another; a client id cannot change",
                    quote(&spec.name)
                ));
            }
            self.ids.insert(spec.name.clone(), id.clone());
            let mut changed = changed_keys(&desired, remote);
            let mut patch: Map<String, Value> = changed.iter().map(|k| (k.clone(), desired[k].clone())).collect();
            if let Some(secret) = &spec.client_secret {
                let send = match remote.get("client_secret").and_then(Value::as_str) {
                    Some(shown) => shown != secret,
                    None => {
                        if !self.opts.update_secrets {
                            self.report.notes.push(format!(
                                "client {}: its secret cannot be read back, so it was not compared (--update-secrets sends it)",
                                quote(&spec.name)
                            ));
                        }
                        self.opts.update_secrets
                    }
                };
                if send {
                    changed.push("client_secret".into());
                    patch.insert("client_secret".into(), secret.clone().into());
                }
            }
            if changed.is_empty() {
                self.record(Op::Unchanged, "client", &spec.name, vec![]);
                continue;
            }
            self.write(Method::PATCH, &format!("/clients/{id}"), &Value::Object(patch)).await?;
            self.record(Op::Update, "client", &spec.name, changed);
        }
        Ok(())
    }

    async fn resource_servers(&mut self, file: &TenantFile, state: &RemoteState) -> Result<()> {
        for spec in &file.resource_servers {
            let remote = state.resource_servers.iter().find(|r| str_of(r, "identifier") == spec.identifier);
            let mut desired = spec.body.clone();
            desired.insert("name".into(), spec.name.clone().into());
            match remote {
                Some(r) if r.get("is_system") == Some(&Value::Bool(true)) => {
                    self.record(Op::Skip, "resource server", &spec.name, vec!["a system API cannot be changed".into()]);
                }
                None => {
                    let mut body = desired;
                    body.insert("identifier".into(), spec.identifier.clone().into());
                    self.write(Method::POST, "/resource-servers", &Value::Object(body)).await?;
                    self.record(Op::Create, "resource server", &spec.name, vec![]);
                }
                Some(r) => {
                    let changed = changed_keys(&desired, r);
                    if changed.is_empty() {
                        self.record(Op::Unchanged, "resource server", &spec.name, vec![]);
                        continue;
                    }
                    let patch: Map<String, Value> = changed.iter().map(|k| (k.clone(), desired[k].clone())).collect();
                    self.write(Method::PATCH, &format!("/resource-servers/{}", str_of(r, "id")), &Value::Object(patch))
                        .await?;
                    self.record(Op::Update, "resource server", &spec.name, changed);
                }
            }
        }
        Ok(())
    }

    /// A client name (or id) as the id the tenant knows it by.
    fn client_id_of(&self, name: &str) -> String {
        self.ids.get(name).cloned().unwrap_or_else(|| name.to_string())
    }

    async fn connection(&mut self, spec: &ConnectionSpec, state: &RemoteState) -> Result<()> {
        let remote = state.connections.iter().find(|(r, _)| str_of(r, "name") == spec.name);
        let (op, id, mut changed, have): (Op, String, Vec<String>, Vec<String>) = match remote {
            None => {
                let mut body = spec.body.clone();
                body.insert("name".into(), spec.name.clone().into());
                body.insert("strategy".into(), spec.strategy.clone().into());
                let created = self.write(Method::POST, "/connections", &Value::Object(body)).await?;
                let id = created.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                let have = created
                    .get("enabled_clients")
                    .and_then(Value::as_array)
                    .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    .unwrap_or_default();
                (Op::Create, id, vec![], have)
            }
            Some((r, enabled)) => {
                let (public, secrets) = split_connection_secrets(&spec.body);
                let mut changed = changed_keys(&public, r);
                let mut patch_keys = changed.clone();
                let send_secrets = !secrets.is_empty() && self.opts.update_secrets;
                if send_secrets {
                    changed.extend(secrets.iter().map(|k| format!("options.{k}")));
                    if !patch_keys.iter().any(|k| k == "options") {
                        patch_keys.push("options".into());
                    }
                } else if !secrets.is_empty() {
                    self.report.notes.push(format!(
                        "connection {}: secret {} not compared (--update-secrets sends it)",
                        quote(&spec.name),
                        secrets.iter().map(|k| format!("options.{k}")).collect::<Vec<_>>().join(" and "),
                    ));
                }
                let id = str_of(r, "id").to_string();
                if !patch_keys.is_empty() {
                    let mut patch = Map::new();
                    for k in &patch_keys {
                        let mut v = public.get(k).cloned().unwrap_or(Value::Null);
                        // Auth0 replaces `options` whole: the tenant's with the file's laid over.
                        if k == "options" {
                            let mine = if send_secrets { spec.body.get("options") } else { public.get("options") };
                            v = merged_options(r.get("options"), mine.unwrap_or(&Value::Null));
                        }
                        patch.insert(k.clone(), v);
                    }
                    self.write(Method::PATCH, &format!("/connections/{id}"), &Value::Object(patch)).await?;
                }
                (if changed.is_empty() { Op::Unchanged } else { Op::Update }, id, changed, enabled.clone())
            }
        };
        if let Some(names) = &spec.enabled_clients {
            let me = self.api.self_client_id().to_string();
            let mut want: BTreeSet<String> = names.iter().map(|n| self.client_id_of(n)).collect();
            if have.contains(&me) {
                want.insert(me);
            }
            let have: BTreeSet<String> = have.into_iter().collect();
            if want != have {
                let mut statuses: Vec<Value> =
                    want.difference(&have).map(|id| json!({"client_id": id, "status": true})).collect();
                statuses.extend(have.difference(&want).map(|id| json!({"client_id": id, "status": false})));
                for chunk in statuses.chunks(50) {
                    self.write(Method::PATCH, &format!("/connections/{id}/clients"), &Value::Array(chunk.to_vec()))
                        .await?;
                }
                if op != Op::Create {
                    changed.push("enabled_clients".into());
                }
            }
        }
        let op = if op == Op::Unchanged && !changed.is_empty() { Op::Update } else { op };
        self.record(op, "connection", &spec.name, changed);
        Ok(())
    }

    async fn grants(&mut self, file: &TenantFile, state: &RemoteState) -> Result<()> {
        let me = self.api.self_client_id().to_string();
        for spec in &file.client_grants {
            let label = format!("{} -> {}", spec.client_name, spec.audience);
            let client_id = self.client_id_of(&spec.client_name);
            if client_id == me {
                self.record(
                    Op::Skip,
                    "client grant",
                    &label,
                    vec!["the application this import authenticates as".into()],
                );
                continue;
            }
            let remote = state
                .grants
                .iter()
                .find(|g| str_of(g, "client_id") == client_id && str_of(g, "audience") == spec.audience);
            let Some(remote) = remote else {
                let mut body = spec.body.clone();
                body.insert("client_id".into(), client_id.into());
                body.insert("audience".into(), spec.audience.clone().into());
                body.insert("scope".into(), spec.scope.clone().into());
                self.write(Method::POST, "/client-grants", &Value::Object(body)).await?;
                self.record(Op::Create, "client grant", &label, vec![]);
                continue;
            };
            let mut changed = changed_keys(&spec.body, remote);
            let mut patch: Map<String, Value> = changed.iter().map(|k| (k.clone(), spec.body[k].clone())).collect();
            let have: BTreeSet<&str> =
                remote.get("scope").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_str).collect();
            let want: BTreeSet<&str> = spec.scope.iter().map(String::as_str).collect();
            if have != want {
                changed.push("scope".into());
                patch.insert("scope".into(), spec.scope.clone().into());
            }
            if changed.is_empty() {
                self.record(Op::Unchanged, "client grant", &label, vec![]);
                continue;
            }
            self.write(Method::PATCH, &format!("/client-grants/{}", str_of(remote, "id")), &Value::Object(patch))
                .await?;
            self.record(Op::Update, "client grant", &label, changed);
        }
        Ok(())
    }

    async fn action(&mut self, spec: &ActionSpec, state: &RemoteState) -> Result<()> {
        // A secret without a value in the file is sent by name: the tenant keeps its value.
        let secrets: Vec<Value> = spec
            .secrets
            .iter()
            .map(
                |(k, v)| {
                    if spec.unset_secrets.contains(k) { json!({"name": k}) } else { json!({"name": k, "value": v}) }
                },
            )
            .collect();
        let mut desired = Map::new();
        desired.insert("code".into(), spec.code.clone().into());
        desired.insert("runtime".into(), spec.runtime.clone().into());
        desired.insert("dependencies".into(), serde_json::to_value(&spec.dependencies).unwrap_or_default());
        desired.insert("supported_triggers".into(), serde_json::to_value(&spec.supported_triggers).unwrap_or_default());
        let remote = state.actions.iter().find(|a| str_of(a, "name") == spec.name);
        let (mut op, mut detail, action) = match remote {
            None => {
                let mut body = desired;
                body.insert("name".into(), spec.name.clone().into());
                body.insert("secrets".into(), Value::Array(secrets));
                let created = self.write(Method::POST, "/actions/actions", &Value::Object(body)).await?;
                (Op::Create, vec![], created)
            }
            Some(r) => {
                let mut changed = changed_keys(&desired, r);
                let have: BTreeSet<&str> = r
                    .get("secrets")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                    .filter_map(|s| s.get("name").and_then(Value::as_str))
                    .collect();
                let want: BTreeSet<&str> = spec.secrets.iter().map(|(k, _)| k.as_str()).collect();
                if have != want || self.opts.update_secrets {
                    changed.push("secrets".into());
                } else if !want.is_empty() {
                    self.report.notes.push(format!(
                        "action {}: secret values are write-only, so they were not compared (--update-secrets sends them)",
                        quote(&spec.name)
                    ));
                }
                if changed.is_empty() {
                    (Op::Unchanged, vec![], Value::Object(r.clone()))
                } else {
                    let mut patch: Map<String, Value> =
                        changed.iter().filter(|k| *k != "secrets").map(|k| (k.clone(), desired[k].clone())).collect();
                    if changed.iter().any(|k| k == "secrets") {
                        patch.insert("secrets".into(), Value::Array(secrets));
                    }
                    let path = format!("/actions/actions/{}", str_of(r, "id"));
                    let updated = self.write(Method::PATCH, &path, &Value::Object(patch)).await?;
                    (Op::Update, changed, if updated.is_null() { Value::Object(r.clone()) } else { updated })
                }
            }
        };
        if spec.deployed {
            let in_force = action.get("all_changes_deployed").and_then(Value::as_bool).unwrap_or(false);
            let needs_deploy = if self.opts.dry_run { op != Op::Unchanged || !in_force } else { !in_force };
            if needs_deploy {
                if !self.opts.dry_run {
                    let id = action.get("id").and_then(Value::as_str).unwrap_or_default().to_string();
                    self.wait_built(&spec.name, &id).await?;
                    self.api.call(Method::POST, &format!("/actions/actions/{id}/deploy"), None).await?;
                }
                detail.push("deployed".into());
                if op == Op::Unchanged {
                    op = Op::Update;
                }
            }
        }
        self.record(op, "action", &spec.name, detail);
        Ok(())
    }

    /// Auth0 builds a draft asynchronously; a deploy before it is built is refused.
    async fn wait_built(&self, name: &str, id: &str) -> Result<()> {
        for _ in 0..120 {
            let a = self.api.get(&format!("/actions/actions/{id}")).await?;
            match a.get("status").and_then(Value::as_str) {
                Some("built") => return Ok(()),
                Some("failed") => {
                    return Err(Error::Remote {
                        request: format!("GET /api/v2/actions/actions/{id}"),
                        message: format!(
                            "action {} failed to build: {}",
                            quote(name),
                            a.get("errors").cloned().unwrap_or_default()
                        ),
                    });
                }
                _ => tokio::time::sleep(Duration::from_millis(500)).await,
            }
        }
        Err(Error::Remote {
            request: format!("GET /api/v2/actions/actions/{id}"),
            message: format!("action {} was not built within a minute", quote(name)),
        })
    }

    async fn triggers(&mut self, file: &TenantFile, state: &RemoteState) -> Result<()> {
        for (trigger, bindings) in &file.triggers {
            let want: Vec<(String, String)> =
                bindings.iter().map(|b| (b.action_name.clone(), b.display_name.clone())).collect();
            if state.bindings.get(trigger) == Some(&want) {
                self.record(Op::Unchanged, "trigger", trigger, vec![]);
                continue;
            }
            let body = json!({
                "bindings": want.iter().map(|(action, display)| json!({
                    "ref": {"type": "action_name", "value": action},
                    "display_name": display,
                })).collect::<Vec<_>>(),
            });
            self.write(Method::PATCH, &format!("/actions/triggers/{trigger}/bindings"), &body).await?;
            let mut detail = vec!["bindings".to_string()];
            detail.extend(unbound(state.bindings.get(trigger).map(Vec::as_slice).unwrap_or_default(), &want));
            self.record(Op::Update, "trigger", trigger, detail);
        }
        Ok(())
    }
}

/// The keys of `desired` whose values `remote` does not already hold.
pub fn changed_keys(desired: &Map<String, Value>, remote: &Map<String, Value>) -> Vec<String> {
    desired.iter().filter(|(k, v)| !covers(v, remote.get(*k).unwrap_or(&Value::Null))).map(|(k, _)| k.clone()).collect()
}

/// Whether `have` already says everything `want` says: objects key by key (extra keys in
/// `have` are fine — servers add defaults), arrays item by item, numbers by value. `null`
/// asks for no value: an absent key (`have` is then `null`) or `null` covers it, nothing else.
pub fn covers(want: &Value, have: &Value) -> bool {
    match (want, have) {
        (Value::Object(w), Value::Object(h)) => w.iter().all(|(k, v)| covers(v, h.get(k).unwrap_or(&Value::Null))),
        (Value::Array(w), Value::Array(h)) => w.len() == h.len() && w.iter().zip(h).all(|(a, b)| covers(a, b)),
        (Value::Number(a), Value::Number(b)) => a.as_f64() == b.as_f64(),
        (a, b) => a == b,
    }
}

/// `mine` laid over `theirs` key by key at every depth, as [`covers`] compares: objects merge,
/// anything else (lists included) is replaced by `mine`'s, and a `null` in `mine` removes the
/// key. What a connection's `options` are sent as.
pub fn merged_options(theirs: Option<&Value>, mine: &Value) -> Value {
    match (theirs, mine) {
        (Some(Value::Object(t)), Value::Object(m)) => {
            let mut out = t.clone();
            for (k, v) in m {
                if v.is_null() {
                    out.remove(k);
                } else {
                    let merged = merged_options(t.get(k), v);
                    out.insert(k.clone(), merged);
                }
            }
            Value::Object(out)
        }
        (_, Value::Object(m)) => Value::Object(
            m.iter().filter(|(_, v)| !v.is_null()).map(|(k, v)| (k.clone(), merged_options(None, v))).collect(),
        ),
        (_, other) => other.clone(),
    }
}

/// A connection's options that hold secrets: `client_secret` unless empty, and
/// `configuration` (whose values Auth0 shows encrypted, when at all).
const SECRET_OPTIONS: [&str; 2] = ["client_secret", "configuration"];

/// A connection body without its secret options (see [`SECRET_OPTIONS`]), and the names of
/// those it had.
fn split_connection_secrets(body: &Map<String, Value>) -> (Map<String, Value>, Vec<&'static str>) {
    let mut public = body.clone();
    let mut secrets = Vec::new();
    if let Some(Value::Object(options)) = public.get_mut("options") {
        for k in SECRET_OPTIONS {
            let secret = match options.get(k) {
                None | Some(Value::Null) => false,
                Some(Value::String(s)) => !s.is_empty(),
                Some(Value::Object(m)) => !m.is_empty(),
                Some(_) => true,
            };
            if secret {
                options.remove(k);
                secrets.push(k);
            }
        }
    }
    (public, secrets)
}

/// `unbinds "name"` for each action bound in the tenant (`have`) that `want` does not bind.
fn unbound(have: &[(String, String)], want: &[(String, String)]) -> Vec<String> {
    let mut out: Vec<String> = have
        .iter()
        .filter(|(action, _)| !want.iter().any(|(w, _)| w == action))
        .map(|(action, _)| format!("unbinds {}", quote(action)))
        .collect();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn covering_ignores_server_defaults_and_number_forms() {
        let want = json!({"options": {"disable_signup": true}, "lifetime": 168, "list": ["a", "b"]});
        let have =
            json!({"options": {"disable_signup": true, "mfa": {}}, "lifetime": 168.0, "list": ["a", "b"], "x": 1});
        assert!(covers(&want, &have));
        let (Value::Object(w), Value::Object(mut h)) = (want, have) else { unreachable!() };
        assert!(changed_keys(&w, &h).is_empty());
        h.insert("list".into(), json!(["b", "a"]));
        h.insert("options".into(), json!({"disable_signup": false}));
        assert_eq!(changed_keys(&w, &h), vec!["options".to_string(), "list".to_string()]);
        h.remove("lifetime");
        assert_eq!(changed_keys(&w, &h).len(), 3);
    }

    #[test]
    fn null_asks_for_no_value() {
        assert!(covers(&json!(null), &json!(null)));
        assert!(covers(&json!({"a": null}), &json!({"b": 1})), "an absent key is no value");
        assert!(!covers(&json!({"a": null}), &json!({"a": 1})), "null in the file clears a value");
        assert!(!covers(&json!(null), &json!("x")));
        assert!(!covers(&json!([null]), &json!([1])));
        let (Value::Object(w), Value::Object(h)) =
            (json!({"display_name": null, "x": 1}), json!({"display_name": "Corp", "x": 1.0}))
        else {
            unreachable!()
        };
        assert_eq!(changed_keys(&w, &h), ["display_name"]);
    }

    #[test]
    fn options_are_merged_as_deep_as_they_are_compared() {
        let theirs = json!({
            "client_secret": "kept",
            "upstream_params": {"a": {"value": "1", "alias": "x"}, "b": {"value": "2"}},
            "scope": ["email", "profile"],
            "gone": true,
        });
        let mine =
            json!({"upstream_params": {"a": {"value": "9"}}, "scope": ["email"], "gone": null, "new": {"k": null}});
        let merged = merged_options(Some(&theirs), &mine);
        assert_eq!(
            merged,
            json!({
                "client_secret": "kept",
                "upstream_params": {"a": {"value": "9", "alias": "x"}, "b": {"value": "2"}},
                "scope": ["email"],
                "new": {},
            })
        );
        assert!(covers(&mine, &merged), "what is written is what the next import compares with");
        assert!(!covers(&mine, &theirs));
        assert_eq!(merged_options(None, &json!({"a": 1, "b": null})), json!({"a": 1}));
    }

    #[test]
    fn connection_secrets_are_split_out() {
        let Value::Object(body) = json!({
            "display_name": "Corp",
            "options": {"client_id": "id", "client_secret": "s", "configuration": {"k": "v"}, "scope": ["email"]},
        }) else {
            unreachable!()
        };
        let (public, secrets) = split_connection_secrets(&body);
        assert_eq!(secrets, ["client_secret", "configuration"]);
        assert_eq!(
            Value::Object(public),
            json!({"display_name": "Corp", "options": {"client_id": "id", "scope": ["email"]}})
        );
        let Value::Object(empty) = json!({"options": {"client_secret": "", "configuration": {}}}) else {
            unreachable!()
        };
        let (public, secrets) = split_connection_secrets(&empty);
        assert!(secrets.is_empty());
        assert_eq!(public, empty, "an empty secret is compared like any value");
    }

    #[test]
    fn replaced_bindings_name_the_actions_unbound() {
        let b = |names: &[&str]| names.iter().map(|n| (n.to_string(), n.to_string())).collect::<Vec<_>>();
        assert_eq!(unbound(&b(&["a", "b", "c"]), &b(&["c", "a"])), ["unbinds \"b\""]);
        assert!(unbound(&b(&["a"]), &b(&["a", "z"])).is_empty());
        assert_eq!(unbound(&b(&["a"]), &[]), ["unbinds \"a\""]);
    }

    #[test]
    fn changes_read_as_a_plan() {
        let c = Change { op: Op::Update, kind: "connection", name: quote("dev-users"), detail: vec!["options".into()] };
        assert_eq!(c.to_string(), "update    connection \"dev-users\": options");
        let mut r = ImportReport { dry_run: false, changes: vec![c.clone()], notes: vec![] };
        r.changes.push(Change { op: Op::Unchanged, ..c });
        assert_eq!(r.summary(), "0 created, 1 updated, 1 unchanged");
        r.dry_run = true;
        assert_eq!(r.summary(), "dry run: 0 to create, 1 to update, 1 unchanged");
    }
}
