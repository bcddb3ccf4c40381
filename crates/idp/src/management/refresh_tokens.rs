//! `/api/v2/users/{id}/refresh-tokens` and `/api/v2/refresh-tokens/{id}`: a user's refresh
//! tokens, listed and revoked. One "refresh token" here is one family (a login's token and the
//! successors rotation gave it); its id is the family's. Tokens are read from the store on
//! every exchange (no node caches them), so a revocation ends refresh on every node at once.

use super::sessions::{accepted, checkpoint};
use super::{ApiError, ApiResult, Caller, Query, ok};
use crate::AppState;
use crate::grants::Grant;
use crate::util::iso8601;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::get;
use serde_json::{Value, json};
use store::RefreshToken;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{id}/refresh-tokens", get(of_user).delete(revoke_of_user))
        .route("/refresh-tokens/{id}", get(read).delete(revoke))
}

/// A token family in Auth0's shape.
async fn to_json(idp: &AppState, t: &RefreshToken) -> ApiResult<Value> {
    let grant: Option<Grant> = serde_json::from_value(t.grant.clone()).ok();
    let rotating = idp.cache.cached_client(&t.client_id).await?.is_some_and(|c| c.client.refresh_token.rotating());
    let audience = grant.as_ref().and_then(|g| g.audience.clone()).unwrap_or_else(|| idp.config.url("userinfo"));
    let scopes = grant.as_ref().map(|g| g.scope.join(" ")).unwrap_or_default();
    let mut v = json!({
        "id": t.family,
        "user_id": t.user_id,
        "created_at": iso8601(t.created_at),
        "expires_at": t.expires_at.map(iso8601),
        "client_id": t.client_id,
        "session_id": grant.as_ref().and_then(|g| g.sid.clone()),
        "rotating": rotating,
        "resource_servers": [{ "audience": audience, "scopes": scopes }],
    });
    if let Some(at) = t.last_used_at {
        v["last_exchanged_at"] = json!(iso8601(at));
    }
    Ok(v)
}

fn no_token() -> ApiError {
    ApiError::not_found("The refresh token does not exist.", "inexistent_refresh_token")
}

async fn user_exists(idp: &AppState, id: &str) -> ApiResult<()> {
    match idp.store.user(id).await? {
        Some(_) => Ok(()),
        None => Err(ApiError::not_found("The user does not exist.", "inexistent_user")),
    }
}

async fn of_user(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:refresh_tokens"])?;
    user_exists(&idp, &id).await?;
    let mut out = Vec::new();
    for t in idp.store.user_refresh_tokens(&id, idp.now()).await? {
        out.push(to_json(&idp, &t).await?);
    }
    checkpoint(&q, out, "tokens")
}

async fn revoke_of_user(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:refresh_tokens"])?;
    user_exists(&idp, &id).await?;
    idp.store.revoke_user_refresh_tokens(&id).await?;
    Ok(accepted())
}

async fn read(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:refresh_tokens"])?;
    let token = idp.store.live_refresh_family(&id, idp.now()).await?.ok_or_else(no_token)?;
    Ok(ok(&to_json(&idp, &token).await?))
}

async fn revoke(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:refresh_tokens"])?;
    idp.store.live_refresh_family(&id, idp.now()).await?.ok_or_else(no_token)?;
    idp.store.revoke_refresh_family(&id).await?;
    Ok(accepted())
}
