//! `POST /refreshtoken` (spec 2.3) and the refresh inside `/userinfo` (spec 4.3), both through
//! [`refresh_session`]: one refresh per session at a time — an in-process lock per session, plus
//! a short store lock across instances — so concurrent requests never spend a rotated refresh
//! token twice. Whoever waited finds the refreshed session and uses it.

use super::token::{session_answer, verify_id_token};
use super::{Credential, credential, select_client};
use crate::App;
use crate::AppState;
use crate::auth0::authentication::{self, Grant};
use crate::error::{Error, Result};
use crate::session::{Mode, Session, SessionKey};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::HeaderMap;
use axum::response::Response;
use serde_json::Value;
use std::time::Duration;

/// An access token this close to its expiry is refreshed already.
pub const EXPIRY_SKEW_MS: i64 = 10_000;
/// How long the cross-instance refresh lock lives at most.
const LOCK_TTL: Duration = Duration::from_secs(15);
/// Waiting for another instance's refresh: attempts × pause.
const LOCK_WAIT_ATTEMPTS: u32 = 100;
const LOCK_WAIT_PAUSE: Duration = Duration::from_millis(50);

pub fn expired(session: &Session, now_ms: i64) -> bool {
    session.expire_at - EXPIRY_SKEW_MS <= now_ms
}

/// What to do with the refreshed tokens.
pub enum Refresh {
    /// `/userinfo`: only when expired; same key, remaining TTL kept.
    IfExpired,
    /// `/refreshtoken`: always; `refresh_token` from the body when given. Bearer sessions move to
    /// the new access token's key, cookie sessions stay under their `sid`; both start a new TTL.
    Explicit { refresh_token: Option<String>, via: Credential },
}

/// Refreshes a session; returns it and the credential that now names it.
pub async fn refresh_session(app: &App, key: &SessionKey, how: Refresh) -> Result<(Session, Option<String>)> {
    let _local = app.refresh_locks.lock(key).await;
    let mut session = app.sessions.get(key).await?.ok_or_else(no_session)?;
    let force = matches!(how, Refresh::Explicit { .. });
    if !force && !expired(&session, app.clock.now_ms()) {
        return Ok((session, None)); // refreshed while this request waited
    }
    // Across instances: take the store lock, or wait for whoever holds it to finish.
    let mut token = app.sessions.try_lock(key, LOCK_TTL).await?;
    let mut attempts = 0;
    while token.is_none() {
        attempts += 1;
        if attempts > LOCK_WAIT_ATTEMPTS {
            return Err(Error::SessionStore("another instance is still refreshing this session".into()));
        }
        tokio::time::sleep(LOCK_WAIT_PAUSE).await;
        session = app.sessions.get(key).await?.ok_or_else(no_session)?;
        if !force && !expired(&session, app.clock.now_ms()) {
            return Ok((session, None));
        }
        token = app.sessions.try_lock(key, LOCK_TTL).await?;
    }
    let token = token.unwrap_or_default();
    let result = refresh_locked(app, key, session, how).await;
    if let Err(e) = app.sessions.unlock(key, &token).await {
        tracing::warn!(error = %e, "releasing a refresh lock failed (it expires by itself)");
    }
    result
}

fn no_session() -> Error {
    Error::Unauthorized("no session".into())
}

async fn refresh_locked(app: &App, key: &SessionKey, old: Session, how: Refresh) -> Result<(Session, Option<String>)> {
    let refresh_token = match &how {
        Refresh::Explicit { refresh_token: Some(rt), .. } if !rt.is_empty() => rt.clone(),
        _ => old.refresh_token.clone(),
    };
    if refresh_token.is_empty() {
        // Asked for explicitly, the session itself may still be good: refusing is enough. An
        // expired session that cannot be renewed is over.
        if matches!(how, Refresh::Explicit { .. }) {
            return Err(Error::Unauthorized("no refresh token was sent and the session holds none".into()));
        }
        app.sessions.delete(key, &old.user_id).await?;
        return Err(Error::Unauthorized("the session expired and holds no refresh token".into()));
    }
    let Some(client) = app.config.service.client(&old.client_type) else {
        app.sessions.delete(key, &old.user_id).await?;
        return Err(Error::Unauthorized("the session's client type is no longer configured".into()));
    };
    let tokens =
        match authentication::token(&app.http, client, Grant::RefreshToken { refresh_token: &refresh_token }).await? {
            Ok(t) => t,
            Err(refusal) => {
                app.sessions.delete(key, &old.user_id).await?;
                return Err(Error::Unauthorized(format!("Auth0 refused the refresh: {}", refusal.message())));
            }
        };
    let now = app.clock.now_ms();
    let mut session = old.clone();
    if tokens.id_token.is_some() {
        let claims = verify_id_token(app, client, &tokens, None).await?;
        if claims.get("sub").and_then(Value::as_str) != Some(old.user_id.as_str()) {
            app.sessions.delete(key, &old.user_id).await?;
            return Err(Error::Unauthorized("the refreshed ID token names another user".into()));
        }
        let profile = crate::profile::build(claims, &app.config.service.custom_claims_namespaces);
        session.profile = serde_json::value::to_raw_value(&profile).map_err(|e| Error::Internal(e.to_string()))?;
        session.id_token = tokens.id_token.clone().unwrap_or_default();
    }
    session.access_token = tokens.access_token.clone();
    if let Some(rt) = tokens.refresh_token.clone().filter(|rt| !rt.is_empty()) {
        session.refresh_token = rt;
    } else {
        session.refresh_token = refresh_token;
    }
    session.expire_at = now + tokens.expires_in.unwrap_or(86400) * 1000;
    let refreshed = store_refreshed(app, key, &old, session, how, now).await?;
    sync_user(app, &refreshed.0);
    Ok(refreshed)
}

/// Every token update syncs the user (spec 2.3 step 6, 4.3 step 3), from the profile the session
/// now holds (the refreshed ID token's, or the previous one when Auth0 sent no new ID token).
fn sync_user(app: &App, session: &Session) {
    if !app.user_sync.enabled() {
        return;
    }
    match serde_json::from_str::<serde_json::Map<String, Value>>(session.profile.get()) {
        Ok(profile) => app.user_sync.spawn(&profile),
        Err(e) => tracing::warn!(error = %e, "MongoDB user sync skipped: the session's profile is unreadable"),
    }
}

async fn store_refreshed(
    app: &App,
    key: &SessionKey,
    old: &Session,
    mut session: Session,
    how: Refresh,
    now: i64,
) -> Result<(Session, Option<String>)> {
    match how {
        Refresh::IfExpired => {
            if !app.sessions.update(key, &session).await? {
                return Err(no_session()); // logged out meanwhile
            }
            Ok((session, None))
        }
        Refresh::Explicit { via: Credential::Bearer(_), .. } => {
            session.mode = Mode::Token;
            session.created_at = now;
            let new_key = SessionKey::of(&session.access_token);
            app.sessions.create(&new_key, &session, now).await?;
            if new_key != *key {
                app.sessions.delete(key, &old.user_id).await?;
            }
            let credential = session.access_token.clone();
            Ok((session, Some(credential)))
        }
        Refresh::Explicit { via: Credential::Cookie(sid), .. } => {
            session.mode = Mode::Cookie;
            session.created_at = now;
            app.sessions.create(key, &session, now).await?;
            Ok((session, Some(sid)))
        }
    }
}

#[derive(serde::Deserialize, Default)]
struct RefreshBody {
    refresh_token: Option<String>,
    #[serde(rename = "refreshToken")]
    refresh_token_camel: Option<String>,
}

/// Refreshes the caller's session with Auth0.
#[utoipa::path(
    post,
    path = "/refreshtoken",
    tag = "authentication",
    params(
        ("client-type" = Option<String>, Header, description = "Client type; defaults to defaultClient"),
        ("Authorization" = Option<String>, Header, description = "Bearer <access token> (or the sid cookie)"),
    ),
    request_body(content = Object, content_type = "application/json",
        description = "{\"refresh_token\": \"…\"} (optional: the session's own is used otherwise)"),
    responses(
        (status = 200, description = "Bearer: the new tokens; cookie: empty body and the cookie again", body = crate::routes::token::TokenResponse),
        (status = 401, description = "No session, unknown client type, or Auth0 refused the refresh", body = crate::error::MiaError),
        (status = 502, description = "Auth0 unreachable", body = crate::error::MiaError),
        (status = 503, description = "Session store unavailable", body = crate::error::MiaError),
    )
)]
pub async fn refresh_token(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    select_client(&app, &headers)?;
    let via = credential(&headers).ok_or_else(no_session)?;
    let body: RefreshBody = if body.iter().all(u8::is_ascii_whitespace) {
        RefreshBody::default()
    } else {
        serde_json::from_slice(&body).map_err(|e| Error::BadRequest(format!("the body is not valid JSON: {e}")))?
    };
    let key = SessionKey::of(via.value());
    let how = Refresh::Explicit { refresh_token: body.refresh_token.or(body.refresh_token_camel), via };
    let (session, credential) = refresh_session(&app, &key, how).await?;
    let client = app.config.service.client(&session.client_type).ok_or_else(no_session)?;
    Ok(session_answer(&app, client, &session, &credential.unwrap_or_default()))
}
