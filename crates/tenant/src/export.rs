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
use crate::model::{ActionDependency, RolePermission, RoleSpec, SupportedTrigger};
use crate::remote::ManagementClient;
use crate::selection::Selection;
use crate::state::{RemoteState, str_of};
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

impl RemoteState {
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

        let mut roles = Vec::new();
        for r in self.roles.iter().flatten() {
            let mut permissions: Vec<RolePermission> =
                r.get("permissions").cloned().and_then(|p| serde_json::from_value(p).ok()).unwrap_or_default();
            permissions.sort();
            roles.push(RoleSpec {
                name: str_of(r, "name").to_string(),
                description: r.get("description").and_then(Value::as_str).map(str::to_owned),
                permissions,
                body: Map::new(),
            });
        }
        roles.sort_by(|a, b| a.name.cmp(&b.name));

        let mut sections: std::collections::BTreeSet<String> =
            crate::file::LIST_SECTIONS.iter().map(|s| s.to_string()).collect();
        sections.extend(["tenant".to_string(), "triggers".to_string()]);
        if self.roles.is_none() {
            sections.remove("roles");
        }
        Ok(TenantFile {
            tenant,
            clients,
            databases,
            connections,
            resource_servers,
            client_grants,
            actions,
            triggers,
            roles,
            other: Map::new(),
            base_dir: ".".into(),
            sections,
            unresolved_keywords: Vec::new(),
        })
    }
}

/// Reads a tenant into a tenant file: [`RemoteState::fetch`] then
/// [`RemoteState::to_tenant_file`]. Returns the notes worth showing the user.
pub async fn export(api: &ManagementClient) -> Result<(TenantFile, Vec<String>)> {
    export_with(api, &Selection::default()).await
}

/// [`export`], leaving out what `selection` does not manage.
pub async fn export_with(api: &ManagementClient, selection: &Selection) -> Result<(TenantFile, Vec<String>)> {
    let mut state = RemoteState::fetch(api, None).await?;
    selection.apply_to_state(&mut state);
    let mut notes = state.notes.clone();
    let mut file = state.to_tenant_file(api, &mut notes)?;
    // Left-out sections and names are not written; the export says nothing more about them.
    selection.apply_to_file(&mut file);
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
    let secrets: Vec<(String, String)> = a
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
        supported_triggers,
        deployed: all_deployed || has_deployed,
        unset_secrets: secrets.iter().map(|(k, _)| k.clone()).collect(),
        secrets,
        extra,
    })
}
