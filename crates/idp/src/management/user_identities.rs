//! `/api/v2/users/{id}/identities`: linking another user's identity into a user (by a
//! `link_with` ID token of the other account, or by `provider` and `user_id`) and unlinking it
//! again; both answer with the user's identities as Auth0 does.

use super::{ApiError, ApiResult, Caller, body_object, created, ok};
use crate::accounts::linking;
use crate::tokens::verify::verify_access_token;
use crate::{AppState, Error};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::{delete, post};
use serde_json::{Value, json};
use store::StoredUser;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{id}/identities", post(link))
        .route("/users/{id}/identities/{provider}/{user_id}", delete(unlink))
}

const SCOPES: &[&str] = &["update:users", "update:current_user_identities"];

async fn primary(idp: &AppState, id: &str) -> ApiResult<StoredUser> {
    idp.store.user(id).await?.ok_or_else(|| ApiError::not_found("The user does not exist.", "inexistent_user"))
}

/// A string field of the body; `link_with` (an ID token, custom claims included) may be long.
fn text(doc: &mut serde_json::Map<String, Value>, key: &str) -> ApiResult<Option<String>> {
    let max = if key == "link_with" { 32 * 1024 } else { 1024 };
    match doc.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() && s.len() <= max => Ok(Some(s)),
        Some(_) => Err(ApiError::bad_request(format!("Payload validation error: '{key}' must be a non-empty string."))),
    }
}

fn mapped(e: Error) -> ApiError {
    match e {
        Error::Conflict(message) => ApiError::conflict(message, "identity_conflict"),
        other => other.into(),
    }
}

/// The secondary user a `link_with` token names: an ID token this idp signed for one of its
/// applications, unexpired.
async fn subject_of(idp: &AppState, token: &str) -> ApiResult<String> {
    let invalid = || ApiError::bad_request("Payload validation error: 'link_with' is not a valid ID token.");
    let claims = verify_access_token(idp, token).await.map_err(|_| invalid())?;
    let aud = claims.get("aud").and_then(Value::as_str).ok_or_else(invalid)?;
    if idp.store.client(aud).await?.is_none() {
        return Err(invalid());
    }
    claims.get("sub").and_then(Value::as_str).map(str::to_owned).ok_or_else(invalid)
}

async fn link(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_on_user(SCOPES, &id)?;
    let mut doc = body_object(&body)?;
    let link_with = text(&mut doc, "link_with")?;
    let provider = text(&mut doc, "provider")?;
    let user_id = text(&mut doc, "user_id")?;
    let connection_id = text(&mut doc, "connection_id")?;
    if let Some(k) = doc.keys().next() {
        return Err(ApiError::bad_request(format!(
            "Payload validation error: 'Additional properties not allowed: {k}'."
        )));
    }
    // A user's own token must prove the other account too: naming it is not enough, or
    // anyone could link someone else's identity into their own account and sign in with it.
    if !caller.has("update:users") && link_with.is_none() {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "A user's own token links another account only with 'link_with', that account's ID token.",
            Some("insufficient_scope"),
        ));
    }
    let primary = primary(&idp, &id).await?;
    let secondary = match (link_with, provider, user_id) {
        (Some(token), None, None) if connection_id.is_none() => subject_of(&idp, &token).await?,
        (None, Some(provider), Some(user_id)) => {
            let prefix = format!("{provider}|");
            if user_id.starts_with(&prefix) { user_id } else { linking::user_id_of(&provider, &user_id) }
        }
        _ => {
            return Err(ApiError::bad_request(
                "Payload validation error: send either 'link_with', or 'provider' and 'user_id'.",
            ));
        }
    };
    // A console administrator is not the tenant's: linking one would hand its sign-in to a
    // tenant user (and end the administrator), so it is answered as if it did not exist.
    if crate::admins::is_reserved(&secondary) {
        return Err(ApiError::bad_request(format!("The user {secondary} does not exist.")));
    }
    if let Some(connection_id) = &connection_id
        && let Some(s) = idp.store.user(&secondary).await?
    {
        let c = idp.store.connection_by_name(&s.user.connection).await?;
        if c.is_none_or(|c| c.id != *connection_id) {
            return Err(ApiError::bad_request("The user to link is not in connection_id's connection."));
        }
    }
    let identities = linking::link(&idp, primary, &secondary).await.map_err(mapped)?;
    Ok(created(&json!(identities)))
}

async fn unlink(
    State(idp): State<AppState>,
    caller: Caller,
    Path((id, provider, user_id)): Path<(String, String, String)>,
) -> ApiResult {
    caller.require_on_user(SCOPES, &id)?;
    let primary = primary(&idp, &id).await?;
    match linking::unlink(&idp, primary, &provider, &user_id).await.map_err(mapped)? {
        Some(identities) => Ok(ok(&json!(identities))),
        None => Err(ApiError::new(
            StatusCode::NOT_FOUND,
            "The identity is not linked to this user.",
            Some("inexistent_identity"),
        )),
    }
}
