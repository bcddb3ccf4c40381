//! A live tenant as its Management API shows it, ids included: what an export turns into a
//! tenant file (`export`) and what an import compares a file with
//! (`import`). Below both, so neither depends on the other.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::remote::ManagementClient;

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
    /// Roles with their permissions (`permissions`: `[{permission_name,
    /// resource_server_identifier}]`); `None` when the tenant serves no `/roles` (404).
    pub roles: Option<Vec<Map<String, Value>>>,
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
        let roles = read_roles(api, &mut notes).await?;
        Ok(Self { settings, clients, connections, resource_servers, grants, actions, bindings, roles, notes })
    }

    pub fn client_by_id(&self, id: &str) -> Option<&Map<String, Value>> {
        self.clients.iter().find(|c| str_of(c, "client_id") == id)
    }

    pub fn client_by_name(&self, name: &str) -> Option<&Map<String, Value>> {
        self.clients.iter().find(|c| str_of(c, "name") == name)
    }
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

pub fn str_of<'a>(m: &'a Map<String, Value>, key: &str) -> &'a str {
    m.get(key).and_then(Value::as_str).unwrap_or_default()
}

/// The tenant's roles and their permissions, or `None` (with a note) when it has no `/roles`.
async fn read_roles(api: &ManagementClient, notes: &mut Vec<String>) -> Result<Option<Vec<Map<String, Value>>>> {
    let list = match api.list("/roles", "roles").await {
        Ok(list) => list,
        Err(Error::Remote { message, .. }) if message.starts_with("404") => {
            notes.push("roles: the tenant serves no /roles (404), so roles are neither read nor written".into());
            return Ok(None);
        }
        Err(e) => return Err(e),
    };
    let mut roles = Vec::new();
    for mut role in objects(list) {
        let id = str_of(&role, "id").to_string();
        let permissions = api.list(&format!("/roles/{id}/permissions"), "permissions").await?;
        let permissions: Vec<Value> = permissions
            .iter()
            .map(|p| {
                serde_json::json!({
                    "permission_name": p.get("permission_name").cloned().unwrap_or_default(),
                    "resource_server_identifier": p.get("resource_server_identifier").cloned().unwrap_or_default(),
                })
            })
            .collect();
        role.insert("permissions".into(), Value::Array(permissions));
        roles.push(role);
    }
    Ok(Some(roles))
}
