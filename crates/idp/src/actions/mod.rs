//! Actions as the idp stores and deploys them: drafts, immutable deployed versions, trigger
//! bindings and encrypted secrets, kept as the store's typed records, with the operations the
//! Management API and tenant-file provisioning share (so both produce the same records); and
//! the `Runner` that executes code on the blocking pool.
//!
//! Records (`store::StoredAction`, `StoredActionVersion`, `TriggerBinding`):
//! - the draft ([`Action`]); `deployed_version` points at the version in force.
//! - immutable deployed snapshots ([`Version`]); deploying writes the version and switches
//!   the draft to it in one store transaction.
//! - next to each draft and version, its secrets `{NAME: sealed}`, values encrypted by
//!   `secrets::SecretBox`, bound to the action id and name. Only this module reads them;
//!   nothing renders them.
//! - each trigger's bindings in execution order ([`Binding`]).
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
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use store::{SealedSecrets, StoredAction, StoredActionVersion};
use tokio::sync::Semaphore;

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

pub use store::{Action, ActionVersion as Version, SecretName, TriggerBinding as Binding, TriggerRef};

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

/// Binds a sealed secret to its action and name.
fn secret_context(action_id: &str, name: &str) -> String {
    format!("gatehouse:action:{action_id}:secret:{name}")
}

// ---- reading ---------------------------------------------------------------------------

pub async fn action(idp: &AppState, id: &str) -> Result<Option<Action>> {
    Ok(idp.store.action(id).await?.map(|s| s.action))
}

/// Every draft, oldest first.
pub async fn all_actions(idp: &AppState) -> Result<Vec<Action>> {
    Ok(idp.store.actions().await?.into_iter().map(|s| s.action).collect())
}

pub async fn version(idp: &AppState, id: &str) -> Result<Option<Version>> {
    Ok(idp.store.action_version(id).await?.map(|s| s.version))
}

/// The versions of an action, newest first.
pub async fn versions(idp: &AppState, action_id: &str) -> Result<Vec<Version>> {
    Ok(idp.store.action_versions(action_id).await?.into_iter().map(|s| s.version).collect())
}

pub async fn bindings(idp: &AppState, trigger: &str) -> Result<Bindings> {
    Ok(Bindings { bindings: idp.store.trigger_bindings(trigger).await? })
}

/// The sealed secrets stored with a draft (none for a draft not stored yet).
async fn sealed_secrets(idp: &AppState, action_id: &str) -> Result<SealedSecrets> {
    Ok(idp.store.action(action_id).await?.map(|s| s.secrets).unwrap_or_default())
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

/// Decrypted values of sealed secrets.
fn open_secrets(idp: &AppState, action_id: &str, sealed: &SealedSecrets) -> Result<Map<String, Value>> {
    let mut out = Map::new();
    for (name, sealed) in sealed {
        out.insert(name.clone(), Value::String(idp.secrets.open(&secret_context(action_id, name), sealed)?));
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
    let mut stored = sealed_secrets(idp, &a.id).await?;
    if let Some(inputs) = change.secrets {
        let mut sealed = SealedSecrets::new();
        let mut names = Vec::new();
        for s in inputs {
            let context = secret_context(&a.id, &s.name);
            let kept = a.secrets.iter().find(|n| n.name == s.name).map(|n| n.updated_at.clone());
            let (value, updated_at) = match (s.value, stored.get(&s.name)) {
                // deploy-cli re-sends exported secrets as names only: keep what is stored.
                (None, Some(old)) => (old.clone(), kept.unwrap_or_else(|| now.to_string())),
                (None, None) => (idp.secrets.seal(&context, "")?, now.to_string()),
                (Some(v), Some(old)) if idp.secrets.open(&context, old).ok() == Some(v.clone()) => {
                    (old.clone(), kept.unwrap_or_else(|| now.to_string()))
                }
                (Some(v), _) => (idp.secrets.seal(&context, &v)?, now.to_string()),
            };
            sealed.insert(s.name.clone(), value);
            names.push(SecretName { name: s.name, updated_at });
        }
        stored = sealed;
        a.secrets = names;
    }
    // The draft and its secrets are one record: one write.
    idp.store.put_action(&StoredAction { action: a.clone(), secrets: stored }).await?;
    Ok(())
}

/// Deploys the draft as a new version. A draft that is not built is refused with Auth0's
/// message (deploy-cli retries on it).
pub async fn deploy(idp: &AppState, mut a: Action) -> Result<(Action, Version)> {
    if a.status != "built" {
        return Err(invalid("A draft must be in the 'built' state before it can be deployed."));
    }
    let secrets = sealed_secrets(idp, &a.id).await?;
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
    put_version(idp, &mut a, &v, secrets.clone(), secrets).await?;
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
    let secrets = idp.store.action_version(&from.id).await?.map(|s| s.secrets).unwrap_or_default();
    let mut draft_secrets = sealed_secrets(idp, &a.id).await?;
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
        draft_secrets = secrets.clone();
    }
    put_version(idp, &mut a, &v, secrets, draft_secrets).await?;
    Ok((a, v))
}

/// Points the draft at a new version and stores both in one store transaction (which also
/// drops the oldest versions beyond [`MAX_VERSIONS`]).
async fn put_version(
    idp: &AppState,
    a: &mut Action,
    v: &Version,
    secrets: SealedSecrets,
    draft_secrets: SealedSecrets,
) -> Result<()> {
    a.versions = v.number;
    a.deployed_version = Some(v.id.clone());
    let draft = StoredAction { action: a.clone(), secrets: draft_secrets };
    let version = StoredActionVersion { version: v.clone(), secrets };
    idp.store.deploy_action(&draft, &version, MAX_VERSIONS).await?;
    tracing::info!(action = %a.name, version = v.number, "action deployed");
    Ok(())
}

/// The triggers an action is bound to.
pub async fn bound_triggers(idp: &AppState, action_id: &str) -> Result<Vec<String>> {
    Ok(idp.store.action_triggers(action_id).await?)
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
    // The bindings, the versions and the draft go in one store transaction.
    idp.store.delete_action(&a.id).await?;
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
    if current != out {
        idp.store.put_trigger_bindings(trigger, &out.bindings).await?;
    }
    Ok(out)
}

/// The decrypted secrets of the draft, to compare a tenant file against what is stored.
pub async fn draft_secrets(idp: &AppState, a: &Action) -> Result<Map<String, Value>> {
    open_secrets(idp, &a.id, &sealed_secrets(idp, &a.id).await?)
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
        use tracing::Instrument;
        let span = tracing::trace_span!(target: telemetry::TARGET, "action.run", trigger = "post-login", actions = chain.len());
        self.blocking(move |e| e.run_post_login(&chain, &event)).instrument(span).await
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
                let Some(v) = idp.store.action_version(version_id).await? else {
                    return Ok(Err(format!("the deployed version of action {} is missing", a.name)));
                };
                let secrets = match open_secrets(idp, &a.id, &v.secrets) {
                    Ok(s) => s,
                    Err(e) => {
                        tracing::error!(action = %a.name, error = %e, "action secrets do not decrypt");
                        return Ok(Err(format!("the secrets of action {} cannot be decrypted", a.name)));
                    }
                };
                let d = Arc::new(Deployed { code: v.version.code.into(), secrets: Arc::new(secrets) });
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
