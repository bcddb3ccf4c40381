//! `GET|POST /oauth/token` (spec 2.2): the code exchange (code and state from the query, the
//! form or a JSON body) and the password grant; either ends in a session, answered as the `sid`
//! cookie (website clients) or the four-field token JSON.

use super::{params, resolve_connection, select_client};
use crate::AppState;
use crate::auth0::authentication::{self, Grant, TokenSet};
use crate::config::ClientType;
use crate::error::{Error, Result};
use crate::jwks::Expect;
use crate::session::{Mode, Session, SessionKey};
use crate::util::{random_token, same_site_path};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

/// Used when Auth0 leaves `expires_in` out.
const DEFAULT_EXPIRES_IN: i64 = 86400;

/// The token-mode answer.
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct TokenResponse {
    pub refresh_token: String,
    pub access_token: String,
    pub id_token: String,
    /// The access token's expiry, RFC 3339 UTC.
    pub expire_at: String,
}

/// Exchanges a code (with its state) or a username and password for a session.
#[utoipa::path(
    post,
    path = "/oauth/token",
    tag = "authentication",
    params(
        ("client-type" = Option<String>, Header, description = "Client type; defaults to defaultClient"),
        ("code" = Option<String>, Query, description = "Authorization code (also accepted in a form or JSON body)"),
        ("state" = Option<String>, Query, description = "The state of /authorize"),
    ),
    request_body(content = String, content_type = "application/x-www-form-urlencoded",
        description = "grant_type=password&username=…&password=…[&connection=…], or code and state"),
    responses(
        (status = 200, description = "Website clients: empty body and the sid cookie; others: the tokens", body = TokenResponse),
        (status = 400, description = "Missing parameters or an unsupported grant", body = crate::error::MiaError),
        (status = 401, description = "Unknown client type, or a missing, used or expired state", body = crate::error::MiaError),
        (status = 403, description = "Auth0 refused the code or the credentials", body = crate::error::MiaError),
        (status = 502, description = "Auth0 unreachable", body = crate::error::MiaError),
        (status = 503, description = "Session store unavailable", body = crate::error::MiaError),
    )
)]
pub async fn token(
    State(app): State<AppState>,
    headers: HeaderMap,
    RawQuery(query): RawQuery,
    body: Bytes,
) -> Result<Response> {
    let requested_client = select_client(&app, &headers)?;
    let p = params(query.as_deref(), &headers, &body)?;
    let get = |k: &str| p.get(k).map(String::as_str).filter(|v| !v.is_empty());
    match get("grant_type") {
        None | Some("authorization_code") => {
            let state = get("state").ok_or_else(|| Error::Unauthorized("state is missing".into()))?;
            let code = get("code").ok_or_else(|| Error::BadRequest("code is required".into()))?;
            let now = app.clock.now_ms();
            let login = app
                .sessions
                .take_state(state, now)
                .await?
                .ok_or_else(|| Error::Unauthorized("state is unknown, expired or already used".into()))?;
            // The state's client wins over the request's (spec 2.2 a.3).
            let client = app
                .config
                .service
                .client(&login.client_type)
                .ok_or_else(|| Error::Unauthorized("the state's client type is no longer configured".into()))?;
            let redirect = get("redirect").or_else(|| get("redirectUri")).map(str::to_owned).or(login.redirect);
            let grant = Grant::AuthorizationCode { code, redirect_uri: &login.redirect_uri };
            let tokens = authentication::token(&app.http, client, grant)
                .await?
                .map_err(|r| Error::Forbidden(format!("Auth0 refused the code: {}", r.message())))?;
            let claims = verify_id_token(&app, client, &tokens, Some(&login.nonce)).await?;
            establish(&app, client, tokens, claims, redirect).await
        }
        Some("password") => {
            let client = requested_client;
            let username = get("username").ok_or_else(|| Error::BadRequest("username is required".into()))?;
            let password = get("password").ok_or_else(|| Error::BadRequest("password is required".into()))?;
            let realm = resolve_connection(client, get("connection"))?;
            let grant = Grant::Password { username, password, realm: realm.as_deref() };
            let tokens = authentication::token(&app.http, client, grant)
                .await?
                .map_err(|r| Error::Forbidden(format!("Auth0 refused the credentials: {}", r.message())))?;
            let claims = verify_id_token(&app, client, &tokens, None).await?;
            establish(&app, client, tokens, claims, None).await
        }
        Some(other) => {
            Err(Error::BadRequest(format!("unsupported grant_type {other:?} (authorization_code, password)")))
        }
    }
}

/// Verifies the ID token of a token answer; an answer without one is unusable (the `openid`
/// scope is always asked for).
pub async fn verify_id_token(
    app: &crate::App,
    client: &ClientType,
    tokens: &TokenSet,
    nonce: Option<&str>,
) -> Result<Map<String, Value>> {
    let id_token =
        tokens.id_token.as_deref().ok_or_else(|| Error::Upstream("Auth0 answered without an ID token".into()))?;
    let issuer = format!("{}/", client.auth0_url);
    let expect = Expect {
        issuer: &issuer,
        audience: &client.client_id,
        algs: &client.supported_signing_algs,
        client_secret: &client.client_secret,
        nonce,
        now_ms: app.clock.now_ms(),
    };
    app.jwks.verify(&client.auth0_url, id_token, &expect).await
}

/// The session a login creates, and the answer announcing it.
async fn establish(
    app: &crate::App,
    client: &ClientType,
    tokens: TokenSet,
    claims: Map<String, Value>,
    redirect: Option<String>,
) -> Result<Response> {
    let now = app.clock.now_ms();
    let user_id = claims.get("sub").and_then(Value::as_str).unwrap_or_default().to_string();
    let profile = crate::profile::build(claims, &app.config.service.custom_claims_namespaces);
    let mode = if client.website() { Mode::Cookie } else { Mode::Token };
    let session = Session {
        client_type: client.name.clone(),
        user_id,
        access_token: tokens.access_token,
        refresh_token: tokens.refresh_token.unwrap_or_default(),
        id_token: tokens.id_token.unwrap_or_default(),
        expire_at: now + tokens.expires_in.unwrap_or(DEFAULT_EXPIRES_IN) * 1000,
        created_at: now,
        mode,
        profile: serde_json::value::to_raw_value(&profile).map_err(|e| Error::Internal(e.to_string()))?,
    };
    let credential = match mode {
        Mode::Cookie => random_token(32),
        Mode::Token => session.access_token.clone(),
    };
    app.sessions.create(&SessionKey::of(&credential), &session, now).await?;
    // After the session exists, beside the answer: the sync never delays or fails the login.
    app.user_sync.spawn(&profile);
    let mut res = session_answer(app, client, &session, &credential);
    // The login site sends the browser wherever `Location` says, and `redirect` came from the
    // query of a link anyone can craft: only a path on this same site is handed back. Anything
    // else is left out rather than failing a login that did succeed (the site then lands on
    // its default page).
    if let Some(r) = redirect {
        match same_site_path(&r).and_then(|p| HeaderValue::from_str(p).ok()) {
            Some(v) => {
                res.headers_mut().insert(header::LOCATION, v);
            }
            None => tracing::warn!(redirect = %r.escape_debug(), "redirect is not a path on this site; no Location"),
        }
    }
    Ok(res)
}

/// 200 with the `sid` cookie (cookie mode) or the token JSON (token mode).
pub fn session_answer(app: &crate::App, client: &ClientType, session: &Session, credential: &str) -> Response {
    match session.mode {
        Mode::Cookie => {
            let mut cookie = format!(
                "sid={credential}; Path=/; Max-Age={}; HttpOnly; Secure",
                app.config.env.session_duration_seconds
            );
            if let Some(s) = client.same_site {
                cookie.push_str("; SameSite=");
                cookie.push_str(s.as_str());
            }
            ([(header::SET_COOKIE, cookie)], ()).into_response()
        }
        Mode::Token => super::json_ok(&TokenResponse {
            refresh_token: session.refresh_token.clone(),
            access_token: session.access_token.clone(),
            id_token: session.id_token.clone(),
            expire_at: crate::clock::rfc3339(session.expire_at),
        }),
    }
}
