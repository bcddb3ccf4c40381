//! `/api/v2/actions/…`: actions, their versions, triggers and bindings, in Auth0's shapes
//! (spec B.6). The stored model and the deploy rules are `crate::actions`'; this file parses
//! and renders. Secret values are write-only: responses list `{name, updated_at}` only.

use super::{ApiError, ApiResult, Caller, Query, body_object, created, no_content, ok, take_typed};
use crate::AppState;
use crate::actions::{self as flow, Action, BindingRef, DraftChange, SecretInput, TRIGGERS, TriggerRef, Version};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde::Deserialize;
use serde_json::{Map, Value, json};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/actions/actions", get(list).post(create))
        .route("/actions/actions/{id}", get(read).patch(update).delete(remove))
        .route("/actions/actions/{id}/deploy", post(deploy))
        .route("/actions/actions/{id}/versions", get(versions))
        .route("/actions/actions/{id}/versions/{version}", get(read_version))
        .route("/actions/actions/{id}/versions/{version}/deploy", post(deploy_version))
        .route("/actions/triggers", get(triggers))
        .route("/actions/triggers/{trigger}/bindings", get(bindings).patch(set_bindings))
        .route("/actions/modules", get(modules))
}

fn no_action() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "That action does not exist.", None)
}

fn no_version() -> ApiError {
    ApiError::new(StatusCode::NOT_FOUND, "That action version does not exist.", None)
}

async fn load(idp: &AppState, id: &str) -> ApiResult<Action> {
    flow::action(idp, id).await?.ok_or_else(no_action)
}

/// An action as the Management API shows it.
async fn action_json(idp: &AppState, a: &Action) -> ApiResult<Value> {
    let deployed = match &a.deployed_version {
        Some(v) => flow::version(idp, v).await?,
        None => None,
    };
    let mut out = json!({
        "id": a.id,
        "name": a.name,
        "supported_triggers": a.supported_triggers,
        "created_at": a.created_at,
        "updated_at": a.updated_at,
        "code": a.code,
        "dependencies": a.dependencies,
        "runtime": a.runtime,
        "status": a.status,
        "secrets": a.secrets,
        "all_changes_deployed": flow::all_changes_deployed(a, deployed.as_ref()),
        "modules": [],
    });
    let m = out.as_object_mut().expect("object literal");
    if let Some(b) = &a.built_at {
        m.insert("built_at".into(), json!(b));
    }
    if let Some(e) = &a.build_error {
        m.insert("errors".into(), json!([{ "id": "build_failed", "msg": e }]));
    }
    if let Some(v) = &deployed {
        m.insert("deployed_version".into(), version_json(a, v, true, deployed.as_ref()));
    }
    Ok(out)
}

fn version_json(a: &Action, v: &Version, deployed: bool, in_force: Option<&Version>) -> Value {
    json!({
        "id": v.id,
        "action_id": v.action_id,
        "number": v.number,
        "code": v.code,
        "dependencies": v.dependencies,
        "runtime": v.runtime,
        "secrets": v.secrets,
        "status": "built",
        "deployed": deployed,
        "supported_triggers": v.supported_triggers,
        "created_at": v.created_at,
        "updated_at": v.updated_at,
        "built_at": v.built_at.clone().unwrap_or_else(|| v.created_at.clone()),
        "modules": [],
        "action": {
            "id": a.id,
            "name": a.name,
            "supported_triggers": a.supported_triggers,
            "created_at": a.created_at,
            "updated_at": a.updated_at,
            "all_changes_deployed": flow::all_changes_deployed(a, in_force),
        },
    })
}

/// Offset paging in the Actions API's own shape: `{<collection>, total, page, per_page}`.
fn page_of(q: &Query, items: Vec<Value>, collection: &str) -> ApiResult<Value> {
    let per_page = q.number("per_page", 100)?.unwrap_or(50) as usize;
    let page = q.number("page", 100_000)?.unwrap_or(0) as usize;
    let total = items.len();
    let slice: Vec<Value> = items.into_iter().skip(page * per_page).take(per_page).collect();
    let mut body = Map::new();
    body.insert(collection.into(), json!(slice));
    body.insert("total".into(), json!(total));
    body.insert("page".into(), json!(page));
    body.insert("per_page".into(), json!(per_page));
    Ok(Value::Object(body))
}

#[derive(Deserialize)]
struct RawSecret {
    name: String,
    #[serde(default)]
    value: Option<String>,
}

/// The draft fields of a POST or PATCH body; unknown keys (deploy-cli sends whole exported
/// objects) are ignored.
fn draft_change(body: &mut Map<String, Value>) -> ApiResult<DraftChange> {
    let secrets: Option<Vec<RawSecret>> = take_typed(body, "secrets")?;
    Ok(DraftChange {
        name: take_typed(body, "name")?,
        supported_triggers: take_typed::<Vec<TriggerRef>>(body, "supported_triggers")?,
        code: take_typed(body, "code")?,
        dependencies: take_typed(body, "dependencies")?,
        runtime: take_typed(body, "runtime")?,
        secrets: secrets.map(|s| s.into_iter().map(|r| SecretInput { name: r.name, value: r.value }).collect()),
    })
}

async fn list(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:actions"])?;
    let deployed = q.flag("deployed")?;
    let mut out = Vec::new();
    for a in flow::all_actions(&idp).await? {
        if q.get("triggerId").filter(|t| !t.is_empty()).is_some_and(|t| !a.supported_triggers.iter().any(|s| s.id == t))
            || q.get("actionName").filter(|n| !n.is_empty()).is_some_and(|n| a.name != n)
            || deployed.is_some_and(|d| d != a.deployed_version.is_some())
            // Marketplace integrations are never installed here.
            || q.flag("installed")? == Some(true)
        {
            continue;
        }
        out.push(action_json(&idp, &a).await?);
    }
    Ok(ok(&page_of(&q, out, "actions")?))
}

async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:actions"])?;
    let mut body = body_object(&body)?;
    let deploy_now: Option<bool> = take_typed(&mut body, "deploy")?;
    let change = draft_change(&mut body)?;
    let mut a = flow::create(&idp, change).await?;
    if deploy_now == Some(true) && a.status == "built" {
        a = flow::deploy(&idp, a).await?.0;
    }
    Ok(created(&action_json(&idp, &a).await?))
}

async fn read(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:actions"])?;
    let a = load(&idp, &id).await?;
    Ok(ok(&action_json(&idp, &a).await?))
}

async fn update(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:actions"])?;
    let a = load(&idp, &id).await?;
    let mut body = body_object(&body)?;
    let change = draft_change(&mut body)?;
    let a = flow::update(&idp, a, change).await?;
    Ok(ok(&action_json(&idp, &a).await?))
}

async fn remove(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:actions"])?;
    let a = load(&idp, &id).await?;
    flow::delete(&idp, &a, q.flag("force")?.unwrap_or(false)).await?;
    Ok(no_content())
}

async fn deploy(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["create:actions"])?;
    let a = load(&idp, &id).await?;
    let (a, v) = flow::deploy(&idp, a).await?;
    Ok(ok(&version_json(&a, &v, true, Some(&v))))
}

async fn versions(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:actions"])?;
    let a = load(&idp, &id).await?;
    let all = flow::versions(&idp, &a.id).await?;
    let in_force = all.iter().find(|v| Some(&v.id) == a.deployed_version.as_ref());
    let items = all.iter().map(|v| version_json(&a, v, Some(&v.id) == a.deployed_version.as_ref(), in_force)).collect();
    Ok(ok(&page_of(&q, items, "versions")?))
}

async fn version_of(idp: &AppState, a: &Action, version: &str) -> ApiResult<Version> {
    flow::version(idp, version).await?.filter(|v| v.action_id == a.id).ok_or_else(no_version)
}

async fn read_version(
    State(idp): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
) -> ApiResult {
    caller.require(&["read:actions"])?;
    let a = load(&idp, &id).await?;
    let v = version_of(&idp, &a, &version).await?;
    let in_force = match &a.deployed_version {
        Some(d) => flow::version(&idp, d).await?,
        None => None,
    };
    Ok(ok(&version_json(&a, &v, Some(&v.id) == a.deployed_version.as_ref(), in_force.as_ref())))
}

async fn deploy_version(
    State(idp): State<AppState>,
    caller: Caller,
    Path((id, version)): Path<(String, String)>,
    body: Bytes,
) -> ApiResult {
    caller.require(&["create:actions"])?;
    let a = load(&idp, &id).await?;
    let v = version_of(&idp, &a, &version).await?;
    let update_draft = if body.iter().all(u8::is_ascii_whitespace) {
        false
    } else {
        take_typed::<bool>(&mut body_object(&body)?, "update_draft")?.unwrap_or(false)
    };
    let (a, v) = flow::deploy_version(&idp, a, v, update_draft).await?;
    Ok(ok(&version_json(&a, &v, true, Some(&v))))
}

async fn triggers(State(_idp): State<AppState>, caller: Caller) -> ApiResult {
    caller.require(&["read:actions"])?;
    let list: Vec<Value> = TRIGGERS
        .iter()
        .map(|(id, version)| {
            json!({
                "id": id,
                "version": version,
                "status": "CURRENT",
                "runtimes": ["node18", "node22"],
                "default_runtime": "node22",
                "compatible_triggers": [],
                "binding_policy": "trigger-bound",
            })
        })
        .collect();
    Ok(ok(&json!({ "triggers": list })))
}

fn trigger_id(trigger: &str) -> ApiResult<()> {
    let ok = !trigger.is_empty()
        && trigger.len() <= 64
        && trigger.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(()) } else { Err(ApiError::bad_request(format!("Invalid trigger id: {trigger}"))) }
}

async fn bindings_json(idp: &AppState, trigger: &str, list: &flow::Bindings) -> ApiResult<Vec<Value>> {
    let mut out = Vec::new();
    for b in &list.bindings {
        let Some(a) = flow::action(idp, &b.action_id).await? else { continue };
        out.push(json!({
            "id": b.id,
            "trigger_id": trigger,
            "display_name": b.display_name,
            "action": action_json(idp, &a).await?,
            "created_at": b.created_at,
            "updated_at": b.updated_at,
        }));
    }
    Ok(out)
}

async fn bindings(State(idp): State<AppState>, caller: Caller, q: Query, Path(trigger): Path<String>) -> ApiResult {
    caller.require(&["read:actions"])?;
    trigger_id(&trigger)?;
    let list = flow::bindings(&idp, &trigger).await?;
    let items = bindings_json(&idp, &trigger, &list).await?;
    Ok(ok(&page_of(&q, items, "bindings")?))
}

#[derive(Deserialize)]
struct RawRef {
    #[serde(rename = "type")]
    kind: String,
    value: String,
}

#[derive(Deserialize)]
struct RawBinding {
    #[serde(rename = "ref")]
    reference: RawRef,
    #[serde(default)]
    display_name: Option<String>,
}

async fn set_bindings(
    State(idp): State<AppState>,
    caller: Caller,
    Path(trigger): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require(&["update:actions"])?;
    trigger_id(&trigger)?;
    let mut body = body_object(&body)?;
    let raw: Vec<RawBinding> = take_typed(&mut body, "bindings")?
        .ok_or_else(|| ApiError::bad_request("Payload validation error: Missing required property: bindings"))?;
    let mut refs = Vec::with_capacity(raw.len());
    for (i, b) in raw.into_iter().enumerate() {
        let r = match b.reference.kind.as_str() {
            "action_name" => BindingRef::ActionName(b.reference.value),
            "action_id" => BindingRef::ActionId(b.reference.value),
            "binding_id" => BindingRef::BindingId(b.reference.value),
            other => {
                return Err(ApiError::bad_request(format!(
                    "Payload validation error: bindings[{i}].ref.type must be action_name, action_id or binding_id, not {other}"
                )));
            }
        };
        refs.push((r, b.display_name));
    }
    let list = flow::set_bindings(&idp, &trigger, refs).await?;
    Ok(ok(&json!({ "bindings": bindings_json(&idp, &trigger, &list).await? })))
}

async fn modules(caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:actions"])?;
    Ok(ok(&page_of(&q, vec![], "modules")?))
}
