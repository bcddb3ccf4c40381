//! `/api/v2/connections`: database and social connections. Auth0 replaces `options` wholesale
//! on PATCH; `name` and `strategy` never change; delete answers 202 and takes the connection's
//! users with it.

use super::{ApiError, ApiResult, Caller, Query, body_object, json_response, no_content, ok, paged, select};
use crate::AppState;
use crate::util::{iso8601, now_ms, random_alnum};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Map, Value, json};
use store::Connection;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/connections", get(list).post(create))
        .route("/connections/{id}", get(read).patch(update).delete(remove))
        .route("/connections/{id}/clients", get(clients).patch(set_clients))
}

fn not_found() -> ApiError {
    ApiError::not_found("The connection does not exist", "inexistent_connection")
}

fn valid_name(name: &str) -> bool {
    // ^[a-zA-Z0-9](-[a-zA-Z0-9]|[a-zA-Z0-9])*$ : alphanumerics, single dashes between them.
    !name.is_empty()
        && name.len() <= 128
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-')
        && !name.starts_with('-')
        && !name.ends_with('-')
        && !name.contains("--")
}

fn parse(doc: Map<String, Value>) -> ApiResult<Connection> {
    serde_json::from_value(Value::Object(doc))
        .map_err(|e| ApiError::bad_request(format!("Payload validation error: {e}")))
}

/// Google and OpenID Connect connections must say how to reach their provider; a bad option
/// is refused here rather than at someone's login.
fn check_federated(idp: &AppState, c: &Connection) -> ApiResult<()> {
    if crate::flow::federated::Strategy::of(c).is_none() {
        return Ok(());
    }
    crate::flow::federated::validate_options(c, &idp.config.google_discovery_url)
        .map_err(|e| ApiError::bad_request(format!("Payload validation error: {e}")))
}

async fn list(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:connections"])?;
    let strategies = q.all("strategy");
    let name = q.get("name");
    let items = idp
        .store
        .connections()
        .await?
        .into_iter()
        .filter(|c| !crate::admins::is_reserved(&c.id))
        .filter(|c| strategies.is_empty() || strategies.contains(&c.strategy.as_str()))
        .filter(|c| name.is_none_or(|n| n == c.name))
        .map(|c| shown(&caller, &c))
        .collect();
    paged(&q, items, "connections")
}

async fn read(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:connections"])?;
    let c = idp.store.connection(&id).await?.ok_or_else(not_found)?;
    Ok(ok(&select(shown(&caller, &c), &q.fields()?)))
}

/// A connection as a reader sees it: `options` (a social connection's client secret among
/// them) only with `read:connections_options`, as on Auth0.
fn shown(caller: &Caller, c: &Connection) -> Value {
    let mut v = json!(c);
    if !caller.has("read:connections_options")
        && let Some(o) = v.as_object_mut()
    {
        o.remove("options");
    }
    v
}

async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:connections"])?;
    let mut doc = body_object(&body)?;
    let name = doc.get("name").and_then(Value::as_str).unwrap_or("").to_owned();
    if !valid_name(&name) {
        return Err(ApiError::bad_request(
            "Payload validation error: 'name' must match ^[a-zA-Z0-9](-[a-zA-Z0-9]|[a-zA-Z0-9])*$ and have at most 128 characters.",
        ));
    }
    let strategy = doc.get("strategy").and_then(Value::as_str).unwrap_or("").to_owned();
    if strategy.is_empty() {
        return Err(ApiError::bad_request("Payload validation error: Missing required property: strategy"));
    }
    if idp.store.connection_by_name(&name).await?.is_some() {
        return Err(ApiError::conflict("A connection with the same name already exists", "connection_conflict"));
    }
    doc.remove("id");
    doc.insert("id".into(), json!(format!("con_{}", random_alnum(16))));
    doc.entry("realms").or_insert_with(|| json!([name]));
    let mut connection = parse(doc)?;
    // The same defaults as a connection provisioned from a tenant file.
    crate::provision::connection_defaults(&mut connection);
    check_federated(&idp, &connection)?;
    check_clients_exist(&idp, &connection.enabled_clients).await?;
    idp.store.put_connection(&connection).await?;
    Ok(json_response(StatusCode::CREATED, &json!(connection)))
}

async fn check_clients_exist(idp: &AppState, ids: &[String]) -> ApiResult<()> {
    for id in ids {
        if idp.store.client(id).await?.is_none() {
            return Err(ApiError::bad_request(format!(
                "Payload validation error: unknown client in enabled_clients: {id}"
            )));
        }
    }
    Ok(())
}

async fn update(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:connections"])?;
    let patch = body_object(&body)?;
    if patch.contains_key("options") {
        caller.require(&["update:connections_options"])?;
    }
    let current = idp.store.connection(&id).await?.ok_or_else(not_found)?;
    let Value::Object(mut doc) = json!(current) else { return Err(not_found()) };
    for (k, v) in patch {
        // Immutable keys are ignored rather than refused: deploy-cli re-sends whole objects.
        if matches!(k.as_str(), "id" | "name" | "strategy") {
            continue;
        }
        if v.is_null() {
            doc.remove(&k);
        } else {
            doc.insert(k, v);
        }
    }
    let connection = parse(doc)?;
    check_federated(&idp, &connection)?;
    check_clients_exist(&idp, &connection.enabled_clients).await?;
    idp.store.put_connection(&connection).await?;
    Ok(ok(&shown(&caller, &connection)))
}

/// Deletes the connection and, as Auth0 does, its users, in one transaction (see
/// `Store::delete_connection`).
async fn remove(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:connections"])?;
    let removed = idp.store.delete_connection(&id).await?.ok_or_else(not_found)?;
    tracing::info!(connection = %id, users = removed, "connection deleted with its users");
    Ok(json_response(StatusCode::ACCEPTED, &json!({ "deleted_at": iso8601(now_ms()) })))
}

async fn clients(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:connections"])?;
    let c = idp.store.connection(&id).await?.ok_or_else(not_found)?;
    let take = q.number("take", 1000)?.unwrap_or(50) as usize;
    let from = q.get("from").and_then(|f| f.parse::<usize>().ok()).unwrap_or(0);
    let page: Vec<Value> =
        c.enabled_clients.iter().skip(from).take(take).map(|id| json!({ "client_id": id })).collect();
    let mut body = json!({ "clients": page });
    let next = from.saturating_add(take);
    if next < c.enabled_clients.len() {
        body["next"] = json!(next.to_string());
    }
    Ok(ok(&body))
}

#[derive(serde::Deserialize)]
#[serde(deny_unknown_fields)]
struct ClientStatus {
    client_id: String,
    status: bool,
}

async fn set_clients(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:connections"])?;
    let changes: Vec<ClientStatus> = super::body_json(&body)?;
    if changes.is_empty() || changes.len() > 50 {
        return Err(ApiError::bad_request("Payload validation error: between 1 and 50 items are required."));
    }
    let mut c = idp.store.connection(&id).await?.ok_or_else(not_found)?;
    let ids: Vec<String> = changes.iter().map(|s| s.client_id.clone()).collect();
    check_clients_exist(&idp, &ids).await?;
    for change in changes {
        c.enabled_clients.retain(|x| *x != change.client_id);
        if change.status {
            c.enabled_clients.push(change.client_id);
        }
    }
    idp.store.put_connection(&c).await?;
    Ok(no_content())
}
