//! `/api/v2/user-blocks`: the brute-force blocks of users, by login identifier (email or
//! username) or by user id, and lifting them. `blocked: true` on a user is another matter (an
//! administrator's block, changed with a PATCH of the user); these endpoints never touch it.

use super::{ApiError, ApiResult, Caller, Query, no_content, ok};
use crate::AppState;
use crate::accounts::blocks;
use crate::logs::Event;
use axum::Router;
use axum::extract::{ConnectInfo, Path, State};
use axum::http::HeaderMap;
use axum::routing::get;
use serde_json::{Value, json};
use std::net::SocketAddr;
use store::User;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/user-blocks", get(by_identifier).delete(lift_by_identifier))
        .route("/user-blocks/{id}", get(of_user).delete(lift_of_user))
}

fn identifier(q: &Query) -> ApiResult<&str> {
    q.get("identifier")
        .filter(|i| !i.trim().is_empty())
        .ok_or_else(|| ApiError::bad_query("Query validation error: Missing required property: identifier"))
}

/// One `blocked_for` entry per address the user is blocked from.
async fn blocked_for(idp: &AppState, user: &User, identifier: &str) -> ApiResult<Vec<Value>> {
    let addresses = blocks::blocked_addresses(idp, &user.user_id).await?;
    Ok(addresses
        .iter()
        .map(|ip| json!({ "identifier": identifier, "ip": ip, "connection": user.connection }))
        .collect())
}

async fn user(idp: &AppState, id: &str) -> ApiResult<User> {
    let stored = idp.store.user(id).await?;
    stored.map(|s| s.user).ok_or_else(|| ApiError::not_found("The user does not exist.", "inexistent_user"))
}

fn origin(idp: &AppState, headers: &HeaderMap, peer: SocketAddr) -> Event {
    Event::from_request(&crate::http::client::request_info(&idp.config, headers, Some(peer), "DELETE"))
}

async fn by_identifier(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:users"])?;
    let identifier = identifier(&q)?;
    let mut out = Vec::new();
    for user in blocks::users_named(&idp, identifier).await? {
        out.extend(blocked_for(&idp, &user, identifier).await?);
    }
    Ok(ok(&json!({ "blocked_for": out })))
}

async fn of_user(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:users"])?;
    let user = user(&idp, &id).await?;
    let name = user.email.clone().or_else(|| user.username.clone()).unwrap_or_else(|| user.user_id.clone());
    Ok(ok(&json!({ "blocked_for": blocked_for(&idp, &user, &name).await? })))
}

async fn lift_by_identifier(
    State(idp): State<AppState>,
    caller: Caller,
    q: Query,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> ApiResult {
    caller.require(&["update:users"])?;
    let identifier = identifier(&q)?;
    for user in blocks::users_named(&idp, identifier).await? {
        blocks::lift(&idp, &user, origin(&idp, &headers, peer)).await?;
    }
    Ok(no_content())
}

async fn lift_of_user(
    State(idp): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    headers: HeaderMap,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
) -> ApiResult {
    caller.require(&["update:users"])?;
    let user = user(&idp, &id).await?;
    blocks::lift(&idp, &user, origin(&idp, &headers, peer)).await?;
    Ok(no_content())
}
