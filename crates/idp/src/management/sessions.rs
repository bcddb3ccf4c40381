//! `/api/v2/users/{id}/sessions` and `/api/v2/sessions/{id}`: a user's SSO sessions, listed
//! and ended. Sessions live only in the store (no node caches them), so ending one here ends
//! single sign-on on every node at once. A session's id is the digest the store keys it by,
//! never the cookie.

use super::{ApiError, ApiResult, Caller, Query, ok};
use crate::AppState;
use crate::util::iso8601;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use store::SsoSession;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{id}/sessions", get(of_user).delete(end_of_user))
        .route("/sessions/{id}", get(read).delete(end))
}

/// A session in Auth0's shape.
fn to_json(s: &SsoSession) -> Value {
    json!({
        "id": s.id,
        "user_id": s.user_id,
        "created_at": iso8601(s.auth_time),
        "updated_at": iso8601(s.last_seen),
        "authenticated_at": iso8601(s.auth_time),
        "last_interacted_at": iso8601(s.last_seen),
        "expires_at": iso8601(s.expires_at),
        "clients": s.clients.iter().map(|c| json!({ "client_id": c })).collect::<Vec<_>>(),
    })
}

/// Checkpoint paging (`from`, `take`) always in the object shape these endpoints answer with:
/// `{<collection>: [...], next}`, `next` only when there is more.
pub(super) fn checkpoint(q: &Query, items: Vec<Value>, collection: &str) -> ApiResult<Response> {
    let take = q.number("take", 100)?.unwrap_or(50) as usize;
    let from = match q.get("from") {
        Some(f) if !f.is_empty() => {
            f.parse::<usize>().map_err(|_| ApiError::bad_query("Query validation error: invalid 'from' checkpoint"))?
        }
        _ => 0,
    };
    let total = items.len();
    let page: Vec<Value> = items.into_iter().skip(from).take(take).collect();
    let mut body = Map::new();
    body.insert(collection.into(), Value::Array(page));
    if from.saturating_add(take) < total {
        body.insert("next".into(), json!(from.saturating_add(take).to_string()));
    }
    Ok(ok(&Value::Object(body)))
}

/// Auth0 answers a deletion it has taken on with 202 and no body.
pub(super) fn accepted() -> Response {
    StatusCode::ACCEPTED.into_response()
}

async fn user_exists(idp: &AppState, id: &str) -> ApiResult<()> {
    match idp.store.user(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("The user does not exist.", "inexistent_user")),
    }
}

fn no_session() -> ApiError {
    ApiError::not_found("The session does not exist.", "inexistent_session")
}

async fn of_user(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:sessions"])?;
    user_exists(&idp, &id).await?;
    let sessions = idp.store.user_sessions(&id, idp.now()).await?;
    checkpoint(&q, sessions.iter().map(to_json).collect(), "sessions")
}

async fn end_of_user(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:sessions"])?;
    user_exists(&idp, &id).await?;
    idp.store.delete_user_sessions(&id).await?;
    Ok(accepted())
}

async fn read(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:sessions"])?;
    let session = idp.store.session(&id, idp.now()).await?.ok_or_else(no_session)?;
    Ok(ok(&to_json(&session)))
}

async fn end(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:sessions"])?;
    idp.store.session(&id, idp.now()).await?.ok_or_else(no_session)?;
    idp.store.delete_session(&id).await?;
    Ok(accepted())
}
