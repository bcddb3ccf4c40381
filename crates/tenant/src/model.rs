//! The entries of a tenant.yaml, one type per section, each keeping the entry as written and
//! turning it into the `store` record the idp provisions.
//!
//! Cross references stay as deploy-cli writes them — by NAME: a connection's `enabled_clients`
//! and a client grant's `client_id` hold client names, a trigger binding holds an action name.
//! The idp resolves them when it provisions (deploy-cli falls back to treating an unknown name
//! as an id, and so may the idp). Keys the idp does not interpret stay in each entry's `body`
//! and end up in the record's `extra`, so nothing written in the file is lost.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use store::{Client, ClientGrant, Connection, ResourceServer};

use crate::ctx::{Ctx, describe, grant_label, quote};
use crate::error::Result;
use crate::sources::Sources;

/// An application (`clients` section).
#[derive(Debug, Clone, PartialEq)]
pub struct ClientSpec {
    pub name: String,
    /// Gatehouse extension: pin the client id instead of generating one.
    pub client_id: Option<String>,
    /// Gatehouse extension: pin the client secret instead of generating one. Never part of the
    /// `store::Client` document.
    pub client_secret: Option<String>,
    /// Every other key, as written (`app_type`, `callbacks`, `jwt_configuration`, …).
    pub body: Map<String, Value>,
}

impl ClientSpec {
    /// The client record, with the id the idp chose (or [`ClientSpec::client_id`]).
    pub fn to_client(&self, client_id: &str) -> Result<Client> {
        self.convert(client_id, &Ctx::detached("clients", quote(&self.name)))
    }

    fn convert(&self, client_id: &str, ctx: &Ctx<'_>) -> Result<Client> {
        let mut doc = self.body.clone();
        doc.insert("client_id".into(), client_id.into());
        doc.insert("name".into(), self.name.clone().into());
        ctx.deserialize(Value::Object(doc))
    }

    pub(crate) fn from_entry(mut obj: Map<String, Value>, ctx: &Ctx<'_>) -> Result<Self> {
        let name = take_name(&mut obj, ctx)?;
        let client_id = take_opt_string(&mut obj, "client_id", ctx)?;
        let client_secret = take_opt_string(&mut obj, "client_secret", ctx)?;
        let spec = Self { name, client_id, client_secret, body: obj };
        // Convert once now so type errors surface when the file is loaded, not mid-provisioning.
        spec.convert("validation", ctx)?;
        Ok(spec)
    }
}

/// A connection: an entry of `databases` (strategy `auth0`) or of `connections`.
#[derive(Debug, Clone, PartialEq)]
pub struct ConnectionSpec {
    pub name: String,
    /// `auth0` for every `databases` entry (where YAML may omit it), else as written.
    pub strategy: String,
    /// Client NAMES as written. `None` when the key is absent — deploy-cli then leaves the
    /// connection's clients alone; `Some(vec![])` disables the connection for every client.
    pub enabled_clients: Option<Vec<String>>,
    /// Every other key as written (`options`, `display_name`, …). For databases, file paths in
    /// `options.customScripts` are already replaced by the scripts' text.
    pub body: Map<String, Value>,
}

impl ConnectionSpec {
    pub fn is_database(&self) -> bool {
        self.strategy == "auth0"
    }

    /// The enabled client names (empty when the key is absent).
    pub fn enabled_client_names(&self) -> &[String] {
        self.enabled_clients.as_deref().unwrap_or_default()
    }

    /// The connection record. `enabled_client_ids` are the ids the idp resolved from
    /// [`ConnectionSpec::enabled_clients`]. `realms` defaults to `[name]`, as in Auth0.
    pub fn to_connection(&self, id: &str, enabled_client_ids: &[String]) -> Result<Connection> {
        let section = if self.is_database() { "databases" } else { "connections" };
        self.convert(id, enabled_client_ids, &Ctx::detached(section, quote(&self.name)))
    }

    fn convert(&self, id: &str, enabled: &[String], ctx: &Ctx<'_>) -> Result<Connection> {
        let mut doc = self.body.clone();
        doc.insert("id".into(), id.into());
        doc.insert("name".into(), self.name.clone().into());
        doc.insert("strategy".into(), self.strategy.clone().into());
        doc.insert("enabled_clients".into(), enabled.to_vec().into());
        doc.entry("realms").or_insert_with(|| vec![self.name.clone()].into());
        ctx.deserialize(Value::Object(doc))
    }

    pub(crate) fn from_entry(
        mut obj: Map<String, Value>,
        database: bool,
        ctx: &Ctx<'_>,
        sources: &Sources<'_>,
    ) -> Result<Self> {
        let name = take_name(&mut obj, ctx)?;
        let strategy = take_opt_string(&mut obj, "strategy", ctx)?;
        let strategy =
            match (database, strategy) {
                (true, None) => "auth0".to_string(),
                (true, Some(s)) if s == "auth0" => s,
                (true, Some(s)) => {
                    return Err(ctx.field("strategy", format!(
                    "`{s}` in `databases`; only strategy auth0 belongs there (other strategies go in `connections`)"
                )));
                }
                (false, Some(s)) if s == "auth0" => {
                    return Err(ctx.field("strategy", "database connections (strategy auth0) belong in `databases`"));
                }
                (false, Some(s)) => s,
                (false, None) => {
                    return Err(ctx.field("strategy", "missing; `connections` entries need a strategy"));
                }
            };
        let enabled_clients = match obj.remove("enabled_clients") {
            None | Some(Value::Null) => None,
            Some(v) => Some(ctx.deserialize_key::<Vec<String>>("enabled_clients", v)?),
        };
        if database {
            load_custom_scripts(&mut obj, ctx, sources)?;
        }
        let spec = Self { name, strategy, enabled_clients, body: obj };
        spec.convert("validation", &[], ctx)?;
        Ok(spec)
    }
}

/// deploy-cli writes custom database scripts to files and puts their paths in
/// `options.customScripts`; read them so the record carries the code, as Auth0 stores it.
fn load_custom_scripts(obj: &mut Map<String, Value>, ctx: &Ctx<'_>, sources: &Sources<'_>) -> Result<()> {
    let Some(Value::Object(options)) = obj.get_mut("options") else {
        return Ok(());
    };
    let Some(scripts) = options.get_mut("customScripts") else {
        return Ok(());
    };
    let Value::Object(scripts) = scripts else {
        return Err(ctx.field("options.customScripts", "expected a map of script name to file or code"));
    };
    for (script, value) in scripts.iter_mut() {
        let key = format!("options.customScripts.{script}");
        let Value::String(text) = value else {
            return Err(ctx.field(&key, "expected a file path or the script's code"));
        };
        *text = sources.load(text, ctx, &key)?.0;
    }
    Ok(())
}

/// An API (`resourceServers` section).
#[derive(Debug, Clone, PartialEq)]
pub struct ResourceServerSpec {
    /// Defaults to the identifier when the file has no `name`.
    pub name: String,
    /// The audience.
    pub identifier: String,
    /// Every other key as written (`signing_alg`, `token_lifetime`, `scopes`, …).
    pub body: Map<String, Value>,
}

impl ResourceServerSpec {
    pub fn to_resource_server(&self, id: &str) -> Result<ResourceServer> {
        self.convert(id, &Ctx::detached("resourceServers", quote(&self.name)))
    }

    fn convert(&self, id: &str, ctx: &Ctx<'_>) -> Result<ResourceServer> {
        let mut doc = self.body.clone();
        doc.insert("id".into(), id.into());
        doc.insert("name".into(), self.name.clone().into());
        doc.insert("identifier".into(), self.identifier.clone().into());
        ctx.deserialize(Value::Object(doc))
    }

    pub(crate) fn from_entry(mut obj: Map<String, Value>, ctx: &Ctx<'_>) -> Result<Self> {
        let identifier = take_opt_string(&mut obj, "identifier", ctx)?
            .ok_or_else(|| ctx.field("identifier", "missing; an API needs its identifier (the audience)"))?;
        let name = take_opt_string(&mut obj, "name", ctx)?.unwrap_or_else(|| identifier.clone());
        let spec = Self { name, identifier, body: obj };
        spec.convert("validation", ctx)?;
        Ok(spec)
    }
}

/// A client grant (`clientGrants` section): lets a client get tokens for an API.
#[derive(Debug, Clone, PartialEq)]
pub struct ClientGrantSpec {
    /// deploy-cli's `client_id` key, which holds the client's NAME (deploy-cli treats a value
    /// that matches no client name as an id).
    pub client_name: String,
    pub audience: String,
    pub scope: Vec<String>,
    /// Any other key as written.
    pub body: Map<String, Value>,
}

impl ClientGrantSpec {
    /// The grant record for the client the idp resolved from [`ClientGrantSpec::client_name`].
    pub fn to_client_grant(&self, id: &str, client_id: &str) -> Result<ClientGrant> {
        let label = grant_label(&self.client_name, &self.audience);
        self.convert(id, client_id, &Ctx::detached("clientGrants", label))
    }

    fn convert(&self, id: &str, client_id: &str, ctx: &Ctx<'_>) -> Result<ClientGrant> {
        let mut doc = self.body.clone();
        doc.insert("id".into(), id.into());
        doc.insert("client_id".into(), client_id.into());
        doc.insert("audience".into(), self.audience.clone().into());
        doc.insert("scope".into(), self.scope.clone().into());
        ctx.deserialize(Value::Object(doc))
    }

    pub(crate) fn from_entry(mut obj: Map<String, Value>, ctx: &Ctx<'_>) -> Result<Self> {
        let client_name = take_opt_string(&mut obj, "client_id", ctx)?
            .ok_or_else(|| ctx.field("client_id", "missing; name the client the grant is for"))?;
        let audience = take_opt_string(&mut obj, "audience", ctx)?
            .ok_or_else(|| ctx.field("audience", "missing; give the API identifier"))?;
        let scope = match obj.remove("scope") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => ctx.deserialize_key("scope", v)?,
        };
        let spec = Self { client_name, audience, scope, body: obj };
        spec.convert("validation", "validation", ctx)?;
        Ok(spec)
    }
}

/// An npm dependency of an action.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActionDependency {
    pub name: String,
    pub version: String,
}

/// A trigger an action is written for, e.g. `{id: post-login, version: v3}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SupportedTrigger {
    pub id: String,
    pub version: String,
}

/// An Action (`actions` section).
#[derive(Clone, PartialEq)]
pub struct ActionSpec {
    pub name: String,
    /// The JavaScript source: read from the file `code` points at (keywords replaced), or the
    /// inline code when `code` is not a path.
    pub code: String,
    /// The file the code came from, when it came from one.
    pub code_path: Option<PathBuf>,
    /// Defaults to `node18`.
    pub runtime: String,
    pub dependencies: Vec<ActionDependency>,
    /// `(name, value)` pairs, in file order; the values are secrets.
    pub secrets: Vec<(String, String)>,
    /// Secrets the file names without a value (an empty value in `secrets`): an import keeps
    /// the tenant's value, as deploy-cli does.
    pub unset_secrets: Vec<String>,
    pub supported_triggers: Vec<SupportedTrigger>,
    /// Only deployed actions can be bound to a trigger (deploy-cli deploys when true).
    pub deployed: bool,
    /// Other keys as written (`status`, …).
    pub extra: Map<String, Value>,
}

impl std::fmt::Debug for ActionSpec {
    // Hand-written so secret values never reach logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ActionSpec")
            .field("name", &self.name)
            .field("code_path", &self.code_path)
            .field("code_len", &self.code.len())
            .field("runtime", &self.runtime)
            .field("dependencies", &self.dependencies)
            .field("secrets", &self.secrets.iter().map(|(k, _)| k).collect::<Vec<_>>())
            .field("supported_triggers", &self.supported_triggers)
            .field("deployed", &self.deployed)
            .field("unset_secrets", &self.unset_secrets)
            .field("extra", &self.extra)
            .finish()
    }
}

impl ActionSpec {
    pub fn supports(&self, trigger: &str) -> bool {
        self.supported_triggers.iter().any(|t| t.id == trigger)
    }

    pub fn secret(&self, name: &str) -> Option<&str> {
        self.secrets.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    pub(crate) fn from_entry(obj: Map<String, Value>, ctx: &Ctx<'_>, sources: &Sources<'_>) -> Result<Self> {
        #[derive(Deserialize)]
        struct RawSecret {
            name: String,
            #[serde(default)]
            value: Option<String>,
        }
        #[derive(Deserialize)]
        struct RawAction {
            name: String,
            #[serde(default)]
            code: Option<String>,
            #[serde(default)]
            runtime: Option<String>,
            #[serde(default)]
            dependencies: Option<Vec<ActionDependency>>,
            #[serde(default)]
            secrets: Option<Vec<RawSecret>>,
            #[serde(default)]
            supported_triggers: Option<Vec<SupportedTrigger>>,
            #[serde(default)]
            deployed: Option<bool>,
            #[serde(flatten)]
            extra: Map<String, Value>,
        }
        let raw: RawAction = ctx.deserialize(Value::Object(obj))?;
        let code = raw.code.filter(|c| !c.trim().is_empty()).ok_or_else(|| {
            ctx.field("code", "missing; give a path such as ./actions/<name>/code.js or the code itself")
        })?;
        let (code, code_path) = sources.load(&code, ctx, "code")?;
        let mut secrets: Vec<(String, String)> = Vec::new();
        let mut unset_secrets = Vec::new();
        for (i, s) in raw.secrets.unwrap_or_default().into_iter().enumerate() {
            let key = format!("secrets[{i}]");
            if secrets.iter().any(|(k, _)| *k == s.name) {
                return Err(ctx.field(&key, format!("secret {} is listed twice", s.name)));
            }
            // deploy-cli's exports list secrets by name only (Auth0 never shows a value), and
            // it imports them so: the tenant keeps the value it has.
            if s.value.is_none() {
                unset_secrets.push(s.name.clone());
            }
            secrets.push((s.name, s.value.unwrap_or_default()));
        }
        let supported_triggers = raw.supported_triggers.unwrap_or_default();
        if supported_triggers.is_empty() {
            return Err(ctx.field(
                "supported_triggers",
                "missing; name the trigger the action is written for, e.g. [{id: post-login, version: v3}]",
            ));
        }
        Ok(Self {
            name: raw.name,
            code,
            code_path,
            runtime: raw.runtime.unwrap_or_else(|| "node18".into()),
            dependencies: raw.dependencies.unwrap_or_default(),
            secrets,
            supported_triggers,
            deployed: raw.deployed.unwrap_or(false),
            unset_secrets,
            extra: raw.extra,
        })
    }
}

/// A permission a role grants: a scope of an API.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub struct RolePermission {
    pub permission_name: String,
    pub resource_server_identifier: String,
}

/// A role (`roles` section): a name, a description and the API permissions it grants.
#[derive(Debug, Clone, PartialEq)]
pub struct RoleSpec {
    pub name: String,
    pub description: Option<String>,
    pub permissions: Vec<RolePermission>,
    /// Other keys as written.
    pub body: Map<String, Value>,
}

impl RoleSpec {
    pub(crate) fn from_entry(mut obj: Map<String, Value>, ctx: &Ctx<'_>) -> Result<Self> {
        let name = take_name(&mut obj, ctx)?;
        let description = match obj.remove("description") {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                return Err(ctx.field("description", format!("expected a string, found {}", describe(&other))));
            }
        };
        let permissions = match obj.remove("permissions") {
            None | Some(Value::Null) => Vec::new(),
            Some(v) => ctx.deserialize_key("permissions", v)?,
        };
        obj.remove("id");
        // Newer deploy-cli exports write `type: tenant`; like deploy-cli, only tenant roles are
        // managed and the key is never sent (Auth0's and the idp's role bodies refuse it).
        match obj.remove("type") {
            None | Some(Value::Null) => {}
            Some(Value::String(t)) if t == "tenant" => {}
            Some(other) => {
                return Err(ctx.field("type", format!("{other}: only tenant roles (`type: tenant`) are managed")));
            }
        }
        Ok(Self { name, description, permissions, body: obj })
    }
}

/// One action bound to a trigger (`triggers: {post-login: [...]}`); order is execution order.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TriggerBinding {
    pub action_name: String,
    /// Defaults to the action name.
    #[serde(default)]
    pub display_name: String,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn take_name(obj: &mut Map<String, Value>, ctx: &Ctx<'_>) -> Result<String> {
    take_opt_string(obj, "name", ctx)?.ok_or_else(|| ctx.entry_error("missing `name`"))
}

/// Remove `key` and return it as a string: absent or null is `None`, an empty string or a
/// non-string is an error (a YAML number where an id was meant must be quoted).
fn take_opt_string(obj: &mut Map<String, Value>, key: &str, ctx: &Ctx<'_>) -> Result<Option<String>> {
    match obj.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if s.trim().is_empty() => Err(ctx.field(key, "must not be empty")),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(other) => Err(ctx.field(key, format!("expected a string, found {} (quote it in YAML)", describe(&other)))),
    }
}
