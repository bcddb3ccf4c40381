//! `GET /userinfo` and `GET /users/me` (spec 2.5–2.7): the profile of the session the request
//! names, refreshed with Auth0 first when its access token has expired. This is the hot path
//! (the gateway calls it on every request): one store read, and the profile stored ready-made.

use super::refresh::{Refresh, expired, refresh_session};
use super::{credential, select_client};
use crate::AppState;
use crate::error::{Error, Result};
use crate::session::SessionKey;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};

/// The signed-in user's profile: ID-token claims with the custom-claim namespaces hoisted.
#[utoipa::path(
    get,
    path = "/userinfo",
    tag = "authentication",
    params(
        ("client-type" = Option<String>, Header, description = "Client type; defaults to defaultClient"),
        ("Authorization" = Option<String>, Header, description = "Bearer <access token> (or the sid cookie)"),
    ),
    responses(
        (status = 200, description = "The profile; always with sub and groups", body = Object,
            example = json!({"sub": "auth0|abc", "email": "a@b.it", "groups": ["admin"]})),
        (status = 401, description = "No session, or it could not be refreshed", body = crate::error::MiaError),
        (status = 502, description = "Auth0 unreachable during a refresh", body = crate::error::MiaError),
        (status = 503, description = "Session store unavailable", body = crate::error::MiaError),
    )
)]
pub async fn userinfo(State(app): State<AppState>, headers: HeaderMap) -> Result<Response> {
    select_client(&app, &headers)?;
    let cred = credential(&headers).ok_or_else(|| Error::Unauthorized("no session".into()))?;
    let key = SessionKey::of(cred.value());
    let mut session = app.sessions.get(&key).await?.ok_or_else(|| Error::Unauthorized("no session".into()))?;
    if session.access_token.is_empty() {
        return Err(Error::Unauthorized("access token is empty".into()));
    }
    if expired(&session, app.clock.now_ms()) {
        session = refresh_session(&app, &key, Refresh::IfExpired).await?.0;
    }
    let body = axum::body::Bytes::from(session.profile.get().to_owned());
    Ok(([(header::CONTENT_TYPE, "application/json")], body).into_response())
}

/// Same as `/userinfo` (kept for backward compatibility; its use is discouraged).
#[utoipa::path(
    get,
    path = "/users/me",
    tag = "authentication",
    responses(
        (status = 200, description = "Same as /userinfo", body = Object),
        (status = 401, description = "No session", body = crate::error::MiaError),
    )
)]
pub async fn users_me(state: State<AppState>, headers: HeaderMap) -> Result<Response> {
    userinfo(state, headers).await
}
