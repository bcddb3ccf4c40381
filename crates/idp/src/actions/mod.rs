//! Actions as the idp stores and deploys them: drafts, immutable deployed versions, trigger
//! bindings and encrypted secrets, kept as store documents, with the operations the Management
//! API and tenant-file provisioning share (so both produce the same documents); and the
//! `Runner` that executes code on the blocking pool.
//!
//! Documents (kind / id):
//! - `action` / action id: the draft ([`Action`]); `deployed_version` points at the version in force.
//! - `action_version` / version id: an immutable deployed snapshot ([`Version`]).
//! - `action_secrets` / action id and `action_version_secrets` / version id: `{NAME: sealed}`,
//!   values encrypted by `secrets::SecretBox`, bound to the action id and name. Only this
//!   module and `post_login` read them; nothing renders them.
//! - `trigger_bindings` / trigger id: `{bindings: [...]}` in execution order ([`Binding`]).
//!
//! Building is synchronous: a draft is `built` or `failed` as soon as it is written. Deploying
//! a failed draft is refused, so the version in force stays in force.
//! This module must not know HTTP wire shapes (that is `management::actions`). The post-login
//! trigger, as a login runs it, is `post_login`.

pub mod post_login;

use crate::util::{iso8601, now_ms, random_hex};
use crate::{AppState, Error, Result};
use ::actions::{ActionError, Engine, Execution, Limits, Loaded};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use tokio::sync::Semaphore;

pub const ACTION: &str = "action";
pub const VERSION: &str = "action_version";
pub const SECRETS: &str = "action_secrets";
pub const VERSION_SECRETS: &str = "action_version_secrets";
pub const BINDINGS: &str = "trigger_bindings";
pub const POST_LOGIN: &str = "post-login";

/// Auth0's limits on secrets (per action; name length; value length).
const MAX_SECRETS: usize = 30;
const MAX_SECRET_NAME: usize = 128;
const MAX_SECRET_VALUE: usize = 4096;
/// Versions kept per action; the oldest one not in force goes first.
const MAX_VERSIONS: usize = 50;

/// Trigger ids Auth0 tenants have (deploy-cli PATCHes bindings for each key of a tenant file),
/// with their current version. Only `post-login` runs here; the others can be bound and stored.
pub const TRIGGERS: &[(&str, &str)] = &[
    ("post-login", "v3"),
    ("credentials-exchange", "v2"),
    ("pre-user-registration", "v2"),
    ("post-user-registration", "v2"),
    ("post-change-password", "v2"),
    ("send-phone-message", "v2"),
    ("password-reset-post-challenge", "v1"),
    ("custom-email-provider", "v1"),
    ("custom-phone-provider", "v1"),
    ("custom-token-exchange", "v1"),
    ("event-stream", "v1"),
    ("login-post-identifier", "v1"),
    ("signup-post-identifier", "v1"),
];

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRef {
    pub id: String,
    #[serde(default)]
    pub version: String,
}

/// A secret's name and when its value last changed; the value itself is in the secrets document.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretName {
    pub name: String,
    #[serde(default)]
    pub updated_at: String,
}

/// An action's draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    pub name: String,
    pub supported_triggers: Vec<TriggerRef>,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub dependencies: Vec<Value>,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub secrets: Vec<SecretName>,
    /// `built` or `failed` (empty in documents an older build wrote).
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_error: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_at: Option<String>,
    /// The id of the version in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_version: Option<String>,
    /// Number of the latest version.
    #[serde(default)]
    pub versions: u64,
}

/// An immutable deployed snapshot of a draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Version {
    pub id: String,
    pub action_id: String,
    pub number: u64,
    pub code: String,
    #[serde(default)]
    pub dependencies: Vec<Value>,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub supported_triggers: Vec<TriggerRef>,
    #[serde(default)]
    pub secrets: Vec<SecretName>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_at: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Binding {
    pub id: String,
    pub action_id: String,
    pub display_name: String,
    pub created_at: String,
    pub updated_at: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Bindings {
    #[serde(default)]
    pub bindings: Vec<Binding>,
}

/// A change to a draft: the fields given replace the stored ones.
#[derive(Debug, Default, Clone)]
pub struct DraftChange {
    pub name: Option<String>,
    pub supported_triggers: Option<Vec<TriggerRef>>,
    pub code: Option<String>,
    pub dependencies: Option<Vec<Value>>,
    pub runtime: Option<String>,
    /// Replaces the list of secrets; an entry without a value keeps the stored value.
    pub secrets: Option<Vec<SecretInput>>,
}

#[derive(Clone)]
pub struct SecretInput {
    pub name: String,
    pub value: Option<String>,
}

impl std::fmt::Debug for SecretInput {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SecretInput").field("name", &self.name).field("has_value", &self.value.is_some()).finish()
    }
}

/// How a binding names its action (`PATCH …/bindings`).
#[derive(Debug, Clone)]
pub enum BindingRef {
    ActionName(String),
    ActionId(String),
    BindingId(String),
}

pub fn uuid() -> String {
    let h = random_hex(32);
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
}

fn invalid(message: impl Into<String>) -> Error {
    Error::invalid_request(message)
}

fn parse<T: serde::de::DeserializeOwned>(kind: &str, v: Value) -> Result<T> {
    serde_json::from_value(v).map_err(|e| Error::internal(format!("stored {kind} document does not parse: {e}")))
}

fn to_doc<T: Serialize>(v: &T) -> Result<Value> {
    serde_json::to_value(v).map_err(Error::internal)
}

/// Binds a sealed secret to its action and name.
fn secret_context(action_id: &str, name: &str) -> String {
    format!("gatehouse:action:{action_id}:secret:{name}")
}

// ---- reading ---------------------------------------------------------------------------

pub async fn action(idp: &AppState, id: &str) -> Result<Option<Action>> {
    idp.store.document(ACTION, id).await?.map(|v| parse(ACTION, v)).transpose()
}

pub async fn all_actions(idp: &AppState) -> Result<Vec<Action>> {
    let mut all: Vec<Action> =
        idp.store.documents(ACTION).await?.into_iter().map(|v| parse(ACTION, v)).collect::<Result<_>>()?;
    all.sort_by(|a, b| (&a.created_at, &a.id).cmp(&(&b.created_at, &b.id)));
    Ok(all)
}

pub async fn version(idp: &AppState, id: &str) -> Result<Option<Version>> {
    idp.store.document(VERSION, id).await?.map(|v| parse(VERSION, v)).transpose()
}

/// The versions of an action, newest first.
pub async fn versions(idp: &AppState, action_id: &str) -> Result<Vec<Version>> {
    let mut all: Vec<Version> = idp
        .store
        .documents(VERSION)
        .await?
        .into_iter()
        .map(|v| parse::<Version>(VERSION, v))
        .filter(|v| v.as_ref().map_or(true, |v| v.action_id == action_id))
        .collect::<Result<_>>()?;
    all.sort_by_key(|v| std::cmp::Reverse(v.number));
    Ok(all)
}

pub async fn bindings(idp: &AppState, trigger: &str) -> Result<Bindings> {
    match idp.store.document(BINDINGS, trigger).await? {
        // A list of {action_name, display_name} is what earlier builds stored from tenant files;
        // provisioning rewrites it, and until then it binds nothing.
        Some(v @ Value::Object(_)) => parse(BINDINGS, v),
        _ => Ok(Bindings::default()),
    }
}

/// Whether the version in force has everything the draft has.
pub fn all_changes_deployed(a: &Action, deployed: Option<&Version>) -> bool {
    deployed.is_some_and(|v| {
        v.code == a.code
            && v.runtime == a.runtime
            && v.dependencies == a.dependencies
            && v.supported_triggers == a.supported_triggers
            && v.secrets == a.secrets
    })
}

/// Decrypted secret values of a secrets document.
fn open_secrets(idp: &AppState, action_id: &str, doc: Option<Value>) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    if let Some(Value::Object(m)) = doc {
        for (name, sealed) in m {
            let sealed = sealed.as_str().unwrap_or_default();
            out.insert(name.clone(), Value::String(idp.secrets.open(&secret_context(action_id, &name), sealed)?));
        }
    }
    Ok(out)
}

// ---- writing ---------------------------------------------------------------------------

fn validate_secrets(secrets: &[SecretInput]) -> Result<()> {
    if secrets.len() > MAX_SECRETS {
        return Err(invalid(format!("An action can have at most {MAX_SECRETS} secrets.")));
    }
    for (i, s) in secrets.iter().enumerate() {
        if s.name.is_empty() || s.name.len() > MAX_SECRET_NAME {
            return Err(invalid(format!("secrets[{i}].name must be 1 to {MAX_SECRET_NAME} characters.")));
        }
        if s.value.as_ref().is_some_and(|v| v.len() > MAX_SECRET_VALUE) {
            return Err(invalid(format!("secrets[{i}].value must be at most {MAX_SECRET_VALUE} characters.")));
        }
        if secrets[..i].iter().any(|o| o.name == s.name) {
            return Err(invalid(format!("secret {} is listed twice.", s.name)));
        }
    }
    Ok(())
}

/// Builds the draft: compiles its code, and refuses npm dependencies, which this runtime
/// cannot install (better a failed build at deploy time than a failure at every login).
async fn build(idp: &AppState, a: &mut Action, now: &str) -> Result<()> {
    let outcome = if let Some(dep) = a.dependencies.first() {
        let name = dep.get("name").and_then(Value::as_str).unwrap_or("?");
        Err(format!("npm dependencies are not supported by Gatehouse (the action depends on {name})"))
    } else {
        idp.actions.check(&a.code).await?.map_err(|e| e.to_string())
    };
    match outcome {
        Ok(()) => {
            a.status = "built".into();
            a.build_error = None;
            a.built_at = Some(now.to_string());
        }
        Err(message) => {
            tracing::warn!(action = %a.name, error = %message, "action build failed");
            a.status = "failed".into();
            a.build_error = Some(message);
        }
    }
    Ok(())
}

async fn name_taken(idp: &AppState, name: &str, except: Option<&str>) -> Result<bool> {
    Ok(all_actions(idp).await?.iter().any(|a| a.name == name && Some(a.id.as_str()) != except))
}

/// Creates and builds a draft.
pub async fn create(idp: &AppState, change: DraftChange) -> Result<Action> {
    let name = change.name.clone().filter(|n| !n.trim().is_empty()).ok_or_else(|| invalid("name is required."))?;
    let triggers = change.supported_triggers.clone().unwrap_or_default();
    if triggers.is_empty() {
        return Err(invalid("supported_triggers must name at least one trigger."));
    }
    if name_taken(idp, &name, None).await? {
        return Err(Error::Conflict(format!("An action named {name} already exists.")));
    }
    let now = iso8601(now_ms());
    let mut a = Action {
        id: uuid(),
        name,
        supported_triggers: triggers,
        code: String::new(),
        dependencies: vec![],
        runtime: "node22".into(),
        secrets: vec![],
        status: "pending".into(),
        build_error: None,
        created_at: now.clone(),
        updated_at: now.clone(),
        built_at: None,
        deployed_version: None,
        versions: 0,
    };
    apply_change(idp, &mut a, change, &now).await?;
    Ok(a)
}

/// Changes and rebuilds a draft. Nothing runs differently until it is deployed.
pub async fn update(idp: &AppState, mut a: Action, change: DraftChange) -> Result<Action> {
    if let Some(name) = &change.name {
        if name.trim().is_empty() {
            return Err(invalid("name must not be empty."));
        }
        if *name != a.name && name_taken(idp, name, Some(&a.id)).await? {
            return Err(Error::Conflict(format!("An action named {name} already exists.")));
        }
    }
    if change.supported_triggers.as_ref().is_some_and(Vec::is_empty) {
        return Err(invalid("supported_triggers must name at least one trigger."));
    }
    let now = iso8601(now_ms());
    a.updated_at = now.clone();
    apply_change(idp, &mut a, change, &now).await?;
    Ok(a)
}

async fn apply_change(idp: &AppState, a: &mut Action, change: DraftChange, now: &str) -> Result<()> {
    if let Some(s) = &change.secrets {
        validate_secrets(s)?;
    }
    if let Some(code) = change.code {
        a.code = code;
    }
    if let Some(name) = change.name {
        a.name = name;
    }
    if let Some(t) = change.supported_triggers {
        a.supported_triggers = t;
    }
    if let Some(d) = change.dependencies {
        a.dependencies = d;
    }
    if let Some(r) = change.runtime.filter(|r| !r.is_empty()) {
        a.runtime = r;
    }
    build(idp, a, now).await?;
    if let Some(inputs) = change.secrets {
        let stored = match idp.store.document(SECRETS, &a.id).await? {
            Some(Value::Object(m)) => m,
            _ => Map::new(),
        };
        let mut sealed = Map::new();
        let mut names = Vec::new();
        for s in inputs {
            let context = secret_context(&a.id, &s.name);
            let kept = a.secrets.iter().find(|n| n.name == s.name).map(|n| n.updated_at.clone());
            let (value, updated_at) = match (s.value, stored.get(&s.name)) {
                // deploy-cli re-sends exported secrets as names only: keep what is stored.
                (None, Some(old)) => (old.clone(), kept.unwrap_or_else(|| now.to_string())),
                (None, None) => (Value::String(idp.secrets.seal(&context, "")?), now.to_string()),
                (Some(v), Some(old))
                    if idp.secrets.open(&context, old.as_str().unwrap_or("")).ok() == Some(v.clone()) =>
                {
                    (old.clone(), kept.unwrap_or_else(|| now.to_string()))
                }
                (Some(v), _) => (Value::String(idp.secrets.seal(&context, &v)?), now.to_string()),
            };
            sealed.insert(s.name.clone(), value);
            names.push(SecretName { name: s.name, updated_at });
        }
        if stored != sealed {
            idp.store.put_document(SECRETS, &a.id, &Value::Object(sealed)).await?;
        }
        a.secrets = names;
    }
    idp.store.put_document(ACTION, &a.id, &to_doc(a)?).await?;
    Ok(())
}

/// Deploys the draft as a new version. A draft that is not built is refused with Auth0's
/// message (deploy-cli retries on it).
pub async fn deploy(idp: &AppState, mut a: Action) -> Result<(Action, Version)> {
    if a.status != "built" {
        return Err(invalid("A draft must be in the 'built' state before it can be deployed."));
    }
    let secrets = idp.store.document(SECRETS, &a.id).await?;
    let now = iso8601(now_ms());
    let v = Version {
        id: uuid(),
        action_id: a.id.clone(),
        number: a.versions + 1,
        code: a.code.clone(),
        dependencies: a.dependencies.clone(),
        runtime: a.runtime.clone(),
        supported_triggers: a.supported_triggers.clone(),
        secrets: a.secrets.clone(),
        created_at: now.clone(),
        updated_at: now.clone(),
        built_at: a.built_at.clone(),
    };
    put_version(idp, &mut a, &v, secrets.unwrap_or_else(|| json!({}))).await?;
    Ok((a, v))
}

/// Rolls back (or forward) to an existing version: a new version identical to it goes into
/// force; with `update_draft` the draft becomes a copy of it too.
pub async fn deploy_version(
    idp: &AppState,
    mut a: Action,
    from: Version,
    update_draft: bool,
) -> Result<(Action, Version)> {
    let secrets = idp.store.document(VERSION_SECRETS, &from.id).await?.unwrap_or_else(|| json!({}));
    let now = iso8601(now_ms());
    let v = Version { id: uuid(), number: a.versions + 1, created_at: now.clone(), updated_at: now.clone(), ..from };
    if update_draft {
        a.code = v.code.clone();
        a.dependencies = v.dependencies.clone();
        a.runtime = v.runtime.clone();
        a.supported_triggers = v.supported_triggers.clone();
        a.secrets = v.secrets.clone();
        a.updated_at = now.clone();
        a.status = "built".into();
        a.build_error = None;
        idp.store.put_document(SECRETS, &a.id, &secrets).await?;
    }
    put_version(idp, &mut a, &v, secrets).await?;
    Ok((a, v))
}

/// Writes a version, then points the action at it: the switch is the last, single write.
async fn put_version(idp: &AppState, a: &mut Action, v: &Version, secrets: Value) -> Result<()> {
    idp.store.put_document(VERSION_SECRETS, &v.id, &secrets).await?;
    idp.store.put_document(VERSION, &v.id, &to_doc(v)?).await?;
    a.versions = v.number;
    a.deployed_version = Some(v.id.clone());
    idp.store.put_document(ACTION, &a.id, &to_doc(a)?).await?;
    tracing::info!(action = %a.name, version = v.number, "action deployed");
    let old = versions(idp, &a.id).await?;
    for stale in old.iter().skip(MAX_VERSIONS).filter(|o| Some(&o.id) != a.deployed_version.as_ref()) {
        idp.store.delete_document(VERSION, &stale.id).await?;
        idp.store.delete_document(VERSION_SECRETS, &stale.id).await?;
    }
    Ok(())
}

/// The triggers an action is bound to.
pub async fn bound_triggers(idp: &AppState, action_id: &str) -> Result<Vec<String>> {
    let mut out = Vec::new();
    for (trigger, _) in TRIGGERS {
        if bindings(idp, trigger).await?.bindings.iter().any(|b| b.action_id == action_id) {
            out.push(trigger.to_string());
        }
    }
    Ok(out)
}

/// Deletes an action with its versions and secrets. A bound action is only deleted with
/// `force`, which unbinds it first.
pub async fn delete(idp: &AppState, a: &Action, force: bool) -> Result<()> {
    let bound = bound_triggers(idp, &a.id).await?;
    if !bound.is_empty() && !force {
        return Err(invalid(format!(
            "The action is bound to {}; delete it with force=true to unbind it.",
            bound.join(", ")
        )));
    }
    for trigger in bound {
        let mut b = bindings(idp, &trigger).await?;
        b.bindings.retain(|x| x.action_id != a.id);
        idp.store.put_document(BINDINGS, &trigger, &to_doc(&b)?).await?;
    }
    for v in versions(idp, &a.id).await? {
        idp.store.delete_document(VERSION, &v.id).await?;
        idp.store.delete_document(VERSION_SECRETS, &v.id).await?;
    }
    idp.store.delete_document(SECRETS, &a.id).await?;
    idp.store.delete_document(ACTION, &a.id).await?;
    Ok(())
}

/// Replaces a trigger's bindings (order = execution order). Each action must be deployed and
/// support the trigger. Bindings that stay keep their ids; an unchanged list is not rewritten.
pub async fn set_bindings(idp: &AppState, trigger: &str, refs: Vec<(BindingRef, Option<String>)>) -> Result<Bindings> {
    let current = bindings(idp, trigger).await?;
    let actions = all_actions(idp).await?;
    let now = iso8601(now_ms());
    let mut out = Bindings::default();
    for (i, (r, display_name)) in refs.into_iter().enumerate() {
        let found = match &r {
            BindingRef::ActionName(n) => actions.iter().find(|a| a.name == *n),
            BindingRef::ActionId(id) => actions.iter().find(|a| a.id == *id),
            BindingRef::BindingId(id) => {
                current.bindings.iter().find(|b| b.id == *id).and_then(|b| actions.iter().find(|a| a.id == b.action_id))
            }
        };
        let Some(a) = found else {
            return Err(invalid(format!("bindings[{i}]: {r:?} does not name an existing action.")));
        };
        if a.deployed_version.is_none() {
            return Err(invalid(format!(
                "bindings[{i}]: the action {} must be deployed before it can be bound.",
                a.name
            )));
        }
        if !a.supported_triggers.iter().any(|t| t.id == trigger) {
            return Err(invalid(format!(
                "bindings[{i}]: the action {} does not support the trigger {trigger}.",
                a.name
            )));
        }
        let display_name = display_name.filter(|d| !d.is_empty()).unwrap_or_else(|| a.name.clone());
        let kept = current
            .bindings
            .iter()
            .find(|b| b.action_id == a.id && !out.bindings.iter().any(|o: &Binding| o.id == b.id));
        out.bindings.push(match kept {
            Some(b) if b.display_name == display_name => b.clone(),
            Some(b) => Binding { display_name, updated_at: now.clone(), ..b.clone() },
            None => Binding {
                id: uuid(),
                action_id: a.id.clone(),
                display_name,
                created_at: now.clone(),
                updated_at: now.clone(),
            },
        });
    }
    let stored_raw = idp.store.document(BINDINGS, trigger).await?;
    if stored_raw.as_ref() != Some(&to_doc(&out)?) {
        idp.store.put_document(BINDINGS, trigger, &to_doc(&out)?).await?;
    }
    Ok(out)
}

/// The decrypted secrets of the draft, to compare a tenant file against what is stored.
pub async fn draft_secrets(idp: &AppState, a: &Action) -> Result<Map<String, Value>> {
    let doc = idp.store.document(SECRETS, &a.id).await?;
    open_secrets(idp, &a.id, doc)
}

// ---- running ---------------------------------------------------------------------------

/// The deployed code of one bound action, as cached per version (versions are immutable).
struct Deployed {
    code: Arc<str>,
    secrets: Arc<Map<String, Value>>,
}

/// Executes action code on the blocking pool, behind a semaphore sized to the cores: a burst
/// of logins queues instead of starving the async workers, and a runaway script holds one
/// permit for at most the time limit.
pub struct Runner {
    engine: Engine,
    permits: Arc<Semaphore>,
    deployed: Mutex<HashMap<String, Arc<Deployed>>>,
}

const DEPLOYED_CACHE: usize = 256;

impl Runner {
    pub fn new(limits: Limits) -> Self {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        Runner { engine: Engine::new(limits), permits: Arc::new(Semaphore::new(workers)), deployed: Mutex::default() }
    }

    async fn blocking<T: Send + 'static>(&self, f: impl FnOnce(Engine) -> T + Send + 'static) -> Result<T> {
        // The permit goes with the work, not with this future: a request dropped meanwhile (a
        // timeout, a client gone) must not free a slot while its script still runs.
        let permit = self.permits.clone().acquire_owned().await.map_err(Error::internal)?;
        let engine = self.engine;
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            f(engine)
        })
        .await
        .map_err(Error::internal)
    }

    /// Compiles code without running it (the deploy-time build).
    pub async fn check(&self, code: &str) -> Result<std::result::Result<(), ActionError>> {
        let code = code.to_owned();
        self.blocking(move |e| e.check(&code)).await
    }

    pub async fn run(&self, chain: Vec<Loaded>, event: Value) -> Result<Execution> {
        self.blocking(move |e| e.run_post_login(&chain, &event)).await
    }
}

/// The deployed actions bound to `trigger`, in order, ready to run. The inner error says why
/// the chain cannot run (a secret that does not decrypt); the login then fails with it.
pub async fn deployed_chain(idp: &AppState, trigger: &str) -> Result<std::result::Result<Vec<Loaded>, String>> {
    let bound = bindings(idp, trigger).await?;
    let mut chain = Vec::with_capacity(bound.bindings.len());
    for b in &bound.bindings {
        let Some(a) = action(idp, &b.action_id).await? else {
            tracing::warn!(binding = %b.id, "a binding names an action that no longer exists; skipped");
            continue;
        };
        let Some(version_id) = &a.deployed_version else { continue };
        let cached = idp.actions.deployed.lock().unwrap_or_else(|e| e.into_inner()).get(version_id).cloned();
        let deployed = match cached {
            Some(d) => d,
            None => {
                let Some(v) = version(idp, version_id).await? else {
                    return Ok(Err(format!("the deployed version of action {} is missing", a.name)));
                };
                let doc = idp.store.document(VERSION_SECRETS, version_id).await?;
                let secrets = match open_secrets(idp, &a.id, doc) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(action = %a.name, error = %e, "action secrets do not decrypt");
                        return Ok(Err(format!("the secrets of action {} cannot be decrypted", a.name)));
                    }
                };
                let d = Arc::new(Deployed { code: v.code.into(), secrets: Arc::new(secrets) });
                let mut cache = idp.actions.deployed.lock().unwrap_or_else(|e| e.into_inner());
                if cache.len() >= DEPLOYED_CACHE {
                    cache.clear();
                }
                cache.insert(version_id.clone(), d.clone());
                d
            }
        };
        chain.push(Loaded { name: a.name.clone(), code: deployed.code.clone(), secrets: deployed.secrets.clone() });
    }
    Ok(Ok(chain))
}
