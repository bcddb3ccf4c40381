//! Reading a live tenant through its Management API into a [`TenantFile`], the model
//! [`crate::yaml_out`] writes as auth0-deploy-cli YAML, [`crate::lint`] and [`crate::doctor`]
//! check, and [`crate::import`] compares against.
//!
//! As deploy-cli does: ids become names (a connection's `enabled_clients`, a grant's
//! `client_id`, a binding's action), read-only fields are dropped, the application the export
//! authenticates as (and its grants) is left out, and so is the system Management API.
//! Client ids and secrets stay in the model ([`ClientSpec::client_id`],
//! [`ClientSpec::client_secret`] when the API shows one), and so do a connection's
//! `options.client_secret` and `options.configuration` (a database's configuration, which
//! Auth0 shows encrypted, is dropped); the YAML writer decides whether they are written or
//! replaced by keywords ([`crate::yaml_out`]). Action secret values are write-only in Auth0:
//! the model holds their names with empty values.

use std::collections::BTreeMap;

use serde_json::{Map, Value};
use store::TenantSettings;

use crate::error::{Error, Result};
use crate::model::{ActionDependency, SupportedTrigger};
use crate::remote::ManagementClient;
use crate::{ActionSpec, ClientGrantSpec, ClientSpec, ConnectionSpec, ResourceServerSpec, TenantFile, TriggerBinding};

/// Client fields Auth0 computes or keeps to itself (deploy-cli's list, plus what the idp adds).
const CLIENT_READ_ONLY: &[&str] = &[
    "client_id",
    "client_secret",
    "name",
    "tenant",
    "global",
    "signing_keys",
    "callback_url_template",
    "owners",
    "config_route",
    "custom_login_page_preview",
];
const TENANT_READ_ONLY: &[&str] = &["sandbox_version", "sandbox_versions_available"];
const TENANT_READ_ONLY_FLAGS: &[&str] =
    &["allow_changing_enable_sso", "enable_sso", "disable_impersonation", "remove_stale_idp_attributes"];

/// The tenant as its Management API shows it, ids included: what an import compares with.
#[derive(Debug, Clone, Default)]
pub struct RemoteState {
    pub settings: Map<String, Value>,
    pub clients: Vec<Map<String, Value>>,
    /// Each connection with the ids of the clients it is enabled for.
    pub connections: Vec<(Map<String, Value>, Vec<String>)>,
    pub resource_servers: Vec<Map<String, Value>>,
    pub grants: Vec<Map<String, Value>>,
    pub actions: Vec<Map<String, Value>>,
    /// Trigger id → `(action name, display name)` in execution order, for the triggers read.
    pub bindings: BTreeMap<String, Vec<(String, String)>>,
    /// What could not be read but does not stop an export (bindings of a trigger the tenant
    /// lists but does not serve, e.g. a retired one).
    pub notes: Vec<String>,
}

impl RemoteState {
    /// Reads everything a tenant file describes. `triggers`: the trigger ids whose bindings
    /// are read; `None` reads every trigger the tenant lists.
    pub async fn fetch(api: &ManagementClient, triggers: Option<Vec<String>>) -> Result<Self> {
        let settings = objects(vec![api.get("/tenants/settings").await?]).pop().unwrap_or_default();
        let clients = objects(api.list("/clients", "clients").await?);
        let mut connections = Vec::new();
        for c in objects(api.list("/connections", "connections").await?) {
            let enabled = match c.get("enabled_clients") {
                Some(Value::Array(ids)) => ids.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
                // Newer Auth0 tenants list them only under /connections/{id}/clients.
                _ => enabled_clients(api, str_of(&c, "id")).await?,
            };
            connections.push((c, enabled));
        }
        let resource_servers = objects(api.list("/resource-servers", "resource_servers").await?);
        let grants = objects(api.list("/client-grants", "client_grants").await?);
        let actions = objects(api.list("/actions/actions", "actions").await?);
        let mut notes = Vec::new();
        // Every trigger the file names must be read; of the tenant's whole list, the ones
        // that fail are noted and skipped.
        let required = triggers.is_some();
        let trigger_ids = match triggers {
            Some(t) => t,
            None => {
                let answer = api.get("/actions/triggers").await?;
                let mut ids: Vec<String> = answer
                    .get("triggers")
                    .and_then(Value::as_array)
                    .map(|t| t.iter().filter_map(|t| t.get("id").and_then(Value::as_str).map(str::to_owned)).collect())
                    .unwrap_or_default();
                ids.sort();
                ids.dedup();
                ids
            }
        };
        let mut bindings = BTreeMap::new();
        for t in trigger_ids {
            let list = match api.list(&format!("/actions/triggers/{t}/bindings"), "bindings").await {
                Ok(list) => list,
                Err(e) if !required => {
                    notes.push(format!("bindings of trigger {t} not read: {e}"));
                    continue;
                }
                Err(e) => return Err(e),
            };
            let named = list
                .iter()
                .map(|b| {
                    let name = b.pointer("/action/name").and_then(Value::as_str).unwrap_or_default().to_string();
                    let display = b.get("display_name").and_then(Value::as_str).unwrap_or(&name).to_string();
                    (name, display)
                })
                .collect();
            bindings.insert(t, named);
        }
        Ok(Self { settings, clients, connections, resource_servers, grants, actions, bindings, notes })
    }

    pub fn client_by_id(&self, id: &str) -> Option<&Map<String, Value>> {
        self.clients.iter().find(|c| str_of(c, "client_id") == id)
    }

    pub fn client_by_name(&self, name: &str) -> Option<&Map<String, Value>> {
        self.clients.iter().find(|c| str_of(c, "name") == name)
    }

    /// The tenant as a tenant file, for `api`'s point of view (its own application left out).
    /// `notes` gets what the export could not carry over as it is.
    pub fn to_tenant_file(&self, api: &ManagementClient, notes: &mut Vec<String>) -> Result<TenantFile> {
        let me = api.self_client_id();
        let name_of = |id: &str| self.client_by_id(id).map(|c| str_of(c, "name").to_string());

        let mut settings = self.settings.clone();
        for k in TENANT_READ_ONLY {
            settings.remove(*k);
        }
        if let Some(Value::Object(flags)) = settings.get_mut("flags") {
            for k in TENANT_READ_ONLY_FLAGS {
                flags.remove(*k);
            }
        }
        let tenant: TenantSettings = serde_json::from_value(Value::Object(settings)).map_err(|e| Error::Remote {
            request: "GET /api/v2/tenants/settings".into(),
            message: format!("unexpected tenant settings: {e}"),
        })?;

        let mut clients = Vec::new();
        for c in &self.clients {
            let id = str_of(c, "client_id");
            if id == me || c.get("global") == Some(&Value::Bool(true)) {
                continue;
            }
            let mut body = c.clone();
            let secret = body.get("client_secret").and_then(Value::as_str).map(str::to_owned);
            for k in CLIENT_READ_ONLY {
                body.remove(*k);
            }
            clients.push(ClientSpec {
                name: str_of(c, "name").to_string(),
                client_id: Some(id.to_string()),
                client_secret: secret,
                body,
            });
        }

        let mut databases = Vec::new();
        let mut connections = Vec::new();
        for (c, enabled) in &self.connections {
            let name = str_of(c, "name").to_string();
            let strategy = str_of(c, "strategy").to_string();
            let enabled: Vec<String> =
                enabled.iter().filter(|id| *id != me).map(|id| name_of(id).unwrap_or_else(|| id.clone())).collect();
            let mut body = c.clone();
            for k in ["id", "name", "strategy", "enabled_clients", "realms", "provisioning_ticket_url"] {
                body.remove(k);
            }
            if strategy == "auth0"
                && let Some(Value::Object(options)) = body.get_mut("options")
            {
                options.remove("configuration");
            }
            let spec = ConnectionSpec { name, strategy, enabled_clients: Some(enabled), body };
            if spec.is_database() {
                databases.push(spec);
            } else {
                connections.push(spec);
            }
        }

        let management = api.management_audience();
        let mut resource_servers = Vec::new();
        for r in &self.resource_servers {
            let identifier = str_of(r, "identifier").to_string();
            if r.get("is_system") == Some(&Value::Bool(true)) || identifier == management {
                continue;
            }
            let mut body = r.clone();
            for k in ["id", "name", "identifier", "is_system"] {
                body.remove(k);
            }
            let name = r.get("name").and_then(Value::as_str).unwrap_or(&identifier).to_string();
            resource_servers.push(ResourceServerSpec { name, identifier, body });
        }

        let mut client_grants = Vec::new();
        for g in &self.grants {
            let client_id = str_of(g, "client_id");
            if client_id == me || g.get("is_system") == Some(&Value::Bool(true)) {
                continue;
            }
            let client_name = match name_of(client_id) {
                Some(n) => n,
                None => {
                    notes.push(format!("client grant {}: client {client_id} not found; kept by id", str_of(g, "id")));
                    client_id.to_string()
                }
            };
            let scope = g
                .get("scope")
                .and_then(Value::as_array)
                .map(|s| s.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                .unwrap_or_default();
            let mut body = g.clone();
            for k in ["id", "client_id", "audience", "scope", "is_system"] {
                body.remove(k);
            }
            client_grants.push(ClientGrantSpec {
                client_name,
                audience: str_of(g, "audience").to_string(),
                scope,
                body,
            });
        }

        let mut actions = Vec::new();
        for a in &self.actions {
            actions.push(action_spec(a, notes)?);
        }

        let mut triggers = BTreeMap::new();
        for (t, list) in &self.bindings {
            if list.is_empty() {
                continue;
            }
            let bindings = list
                .iter()
                .map(|(action, display)| TriggerBinding {
                    action_name: action.clone(),
                    display_name: display.clone(),
                    extra: Map::new(),
                })
                .collect();
            triggers.insert(t.clone(), bindings);
        }

        let by_name = |a: &String, b: &String| a.cmp(b);
        clients.sort_by(|a, b| by_name(&a.name, &b.name));
        databases.sort_by(|a, b| by_name(&a.name, &b.name));
        connections.sort_by(|a, b| by_name(&a.name, &b.name));
        resource_servers.sort_by(|a, b| by_name(&a.name, &b.name).then_with(|| a.identifier.cmp(&b.identifier)));
        client_grants.sort_by(|a, b| by_name(&a.client_name, &b.client_name).then_with(|| a.audience.cmp(&b.audience)));
        actions.sort_by(|a, b| by_name(&a.name, &b.name));

        Ok(TenantFile {
            tenant,
            clients,
            databases,
            connections,
            resource_servers,
            client_grants,
            actions,
            triggers,
            other: Map::new(),
            base_dir: ".".into(),
        })
    }
}

/// Reads a tenant into a tenant file: [`RemoteState::fetch`] then
/// [`RemoteState::to_tenant_file`]. Returns the notes worth showing the user.
pub async fn export(api: &ManagementClient) -> Result<(TenantFile, Vec<String>)> {
    let state = RemoteState::fetch(api, None).await?;
    let mut notes = state.notes.clone();
    let file = state.to_tenant_file(api, &mut notes)?;
    Ok((file, notes))
}

fn action_spec(a: &Map<String, Value>, notes: &mut Vec<String>) -> Result<ActionSpec> {
    let name = str_of(a, "name").to_string();
    let parse = |key: &str| a.get(key).cloned().unwrap_or(Value::Array(vec![]));
    let dependencies: Vec<ActionDependency> = serde_json::from_value(parse("dependencies")).unwrap_or_default();
    let supported_triggers: Vec<SupportedTrigger> =
        serde_json::from_value(parse("supported_triggers")).map_err(|e| Error::Remote {
            request: "GET /api/v2/actions/actions".into(),
            message: format!("action {name}: unexpected supported_triggers: {e}"),
        })?;
    let secrets = a
        .get("secrets")
        .and_then(Value::as_array)
        .map(|s| {
            s.iter()
                .filter_map(|s| s.get("name").and_then(Value::as_str))
                .map(|n| (n.to_string(), String::new()))
                .collect()
        })
        .unwrap_or_default();
    let all_deployed = a.get("all_changes_deployed").and_then(Value::as_bool).unwrap_or(false);
    let has_deployed = a.get("deployed_version").is_some_and(|v| !v.is_null());
    if has_deployed && !all_deployed {
        notes.push(format!("action {name} has draft changes that are not deployed; the draft was exported"));
    }
    let mut extra = Map::new();
    if let Some(status) = a.get("status").filter(|s| s.is_string()) {
        extra.insert("status".into(), status.clone());
    }
    Ok(ActionSpec {
        name,
        code: a.get("code").and_then(Value::as_str).unwrap_or_default().to_string(),
        code_path: None,
        runtime: a.get("runtime").and_then(Value::as_str).unwrap_or("node18").to_string(),
        dependencies,
        secrets,
        supported_triggers,
        deployed: all_deployed || has_deployed,
        extra,
    })
}

/// The ids of the clients a connection is enabled for, from `/connections/{id}/clients`.
async fn enabled_clients(api: &ManagementClient, connection_id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    let mut from: Option<String> = None;
    loop {
        let mut path = format!("/connections/{connection_id}/clients?take=100");
        if let Some(f) = &from {
            path.push_str(&format!("&from={f}"));
        }
        let answer = api.get(&path).await?;
        if let Some(list) = answer.get("clients").and_then(Value::as_array) {
            out.extend(list.iter().filter_map(|c| c.get("client_id").and_then(Value::as_str)).map(str::to_owned));
        }
        match answer.get("next").and_then(Value::as_str) {
            Some(next) if !next.is_empty() && Some(next) != from.as_deref() => from = Some(next.to_string()),
            _ => return Ok(out),
        }
    }
}

fn objects(items: Vec<Value>) -> Vec<Map<String, Value>> {
    items
        .into_iter()
        .filter_map(|v| match v {
            Value::Object(m) => Some(m),
            _ => None,
        })
        .collect()
}

pub(crate) fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}
