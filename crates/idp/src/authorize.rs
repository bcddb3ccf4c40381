//! `GET /authorize` (and `POST` with a form body, OIDC Core 3.1.2.1): validates the request,
//! then either finishes at once from the SSO session or sends the browser to the login page
//! with a stored login transaction.
//!
//! Until client and redirect URI are known good, every error is an HTML page (never a
//! redirect to an unverified URL); after that, errors go back to the client as
//! `error`/`error_description`/`state`, as Auth0 does.

use crate::grant::{AuthRequest, Grant, ResponseMode, grantable_scopes};
use crate::pages;
use crate::post_login::{self, RequestInfo, Verdict};
use crate::urls::match_callback;
use crate::util::{b64url, cookie, media_type, now_ms, random_token, set_cookie, sha256};
use crate::{AppState, Error, Result};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use store::{AuthCode, LoginTransaction, SsoSession, StoredClient};

pub const SESSION_COOKIE: &str = "gatehouse_session";
pub const LOGIN_COOKIE: &str = "gatehouse_login";
const MAX_QUERY: usize = 16 * 1024;
const MAX_PARAM: usize = 4096;

/// Parses a query or form body into single-valued parameters. Repeated parameters are refused:
/// which copy wins is exactly the ambiguity redirect attacks use.
pub fn single_params(raw: &str) -> std::result::Result<HashMap<String, String>, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.as_bytes()) {
        if v.len() > MAX_PARAM {
            return Err(format!("Parameter {k} is too long"));
        }
        if out.insert(k.to_string(), v.to_string()).is_some() {
            return Err(format!("Parameter {k} was sent more than once"));
        }
    }
    Ok(out)
}

pub async fn authorize(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if raw.as_ref().is_some_and(|r| r.len() > MAX_QUERY) {
        return Error::page(StatusCode::URI_TOO_LONG, "Bad request", "The request is too large.").into_response();
    }
    run(&idp, &headers, peer, "GET", &raw.unwrap_or_default()).await
}

/// The same request as a form body. Only the body counts (the query is not merged in), so
/// no parameter can come from two places.
pub async fn authorize_post(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if media_type(&headers) != "application/x-www-form-urlencoded" {
        return Error::page(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Bad request",
            "An authorization request sent with POST must be a form (application/x-www-form-urlencoded).",
        )
        .into_response();
    }
    if body.len() > MAX_QUERY {
        return Error::page(StatusCode::PAYLOAD_TOO_LARGE, "Bad request", "The request is too large.").into_response();
    }
    let Ok(form) = std::str::from_utf8(&body) else {
        return Error::page(StatusCode::BAD_REQUEST, "Bad request", "The form is not valid UTF-8.").into_response();
    };
    run(&idp, &headers, peer, "POST", form).await
}

async fn run(idp: &AppState, headers: &HeaderMap, peer: SocketAddr, method: &'static str, raw: &str) -> Response {
    let params = match single_params(raw) {
        Ok(p) => p,
        Err(e) => return Error::page(StatusCode::BAD_REQUEST, "Bad request", e).into_response(),
    };
    let request = RequestInfo::new(idp, headers, Some(peer), method);
    match begin(idp, headers, &params, &request).await {
        Ok(r) => r,
        Err(e) => e.into_page().into_response(),
    }
}

async fn begin(
    idp: &AppState,
    headers: &HeaderMap,
    q: &HashMap<String, String>,
    request: &RequestInfo,
) -> Result<Response> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = get("client_id")
        .ok_or_else(|| Error::page(StatusCode::BAD_REQUEST, "Bad request", "Missing required parameter: client_id"))?;
    let Some(StoredClient { client, .. }) = idp.store.client(client_id).await? else {
        return Err(Error::page(StatusCode::BAD_REQUEST, "Unknown client", format!("Unknown client: {client_id}")));
    };
    let redirect_uri = match get("redirect_uri") {
        // The normalised URL that matched, not the raw input, is where the answer goes.
        Some(r) => match_callback(&client.callbacks, r),
        None => client.callbacks.first().filter(|c| !c.contains('*')).cloned(),
    };
    let Some(redirect_uri) = redirect_uri else {
        return Err(Error::page(
            StatusCode::BAD_REQUEST,
            "Callback URL mismatch",
            format!(
                "The provided redirect_uri is not in the list of allowed callback URLs of the application {}.",
                client.name
            ),
        ));
    };
    let response_mode = match get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => {
            return Err(Error::page(
                StatusCode::BAD_REQUEST,
                "Bad request",
                format!("Unsupported response_mode: {other}"),
            ));
        }
    };
    let mut req = AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        redirect_uri_sent: get("redirect_uri").is_some(),
        response_mode,
        state: q.get("state").cloned(),
        nonce: get("nonce").map(str::to_owned),
        scope: get("scope").unwrap_or("openid").split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        audience: None,
        connection: get("connection").map(str::to_owned),
        code_challenge: get("code_challenge").map(str::to_owned),
        code_challenge_method: None,
        max_age: None,
        login_hint: get("login_hint").map(str::to_owned),
    };
    // From here on the redirect URI is trusted: errors go back to the client.
    macro_rules! fail {
        ($error:expr, $description:expr) => {
            return Ok(error_redirect(&req, $error, AsRef::<str>::as_ref(&$description)))
        };
    }

    // Request objects are not supported: the state and nonce inside one would be lost, so the
    // client is told at once, as OIDC Core 6.1 and 6.2 say (discovery says so too).
    if get("request").is_some() {
        fail!("request_not_supported", "The request parameter is not supported");
    }
    if get("request_uri").is_some() {
        fail!("request_uri_not_supported", "The request_uri parameter is not supported");
    }
    match get("response_type") {
        Some("code") => {}
        None => fail!("invalid_request", "Missing required parameter: response_type"),
        Some(other) => fail!("unsupported_response_type", format!("Unsupported response type: {other}")),
    }
    if !client.allows_grant("authorization_code") {
        fail!("unauthorized_client", "Grant type 'authorization_code' not allowed for the client.");
    }
    if let Some(challenge) = &req.code_challenge {
        let method = get("code_challenge_method").unwrap_or("plain");
        if !matches!(method, "S256" | "plain") {
            fail!("invalid_request", format!("Unsupported code_challenge_method: {method}"));
        }
        if !(43..=128).contains(&challenge.len()) || !challenge.bytes().all(pkce_char) {
            fail!("invalid_request", "Invalid code_challenge");
        }
        req.code_challenge_method = Some(method.to_owned());
    } else if client.token_endpoint_auth_method == "none" {
        fail!("invalid_request", "Parameter 'code_challenge' is required for public clients");
    }
    if let Some(m) = get("max_age") {
        match m.parse::<i64>() {
            Ok(v) if v >= 0 => req.max_age = Some(v),
            _ => fail!("invalid_request", "max_age must be a non-negative integer"),
        }
    }
    let settings = idp.store.tenant_settings().await?;
    req.audience = get("audience").map(str::to_owned).or(settings.default_audience.clone().filter(|a| !a.is_empty()));
    let api = match &req.audience {
        Some(aud) => match idp.store.resource_server_by_identifier(aud).await? {
            Some(rs) => Some(rs),
            None => fail!("access_denied", format!("Service not enabled within domain: {aud}")),
        },
        None => None,
    };
    // A federated connection skips the login page and goes straight to its provider.
    let mut federated = None;
    if let Some(name) = &req.connection {
        match idp.store.connection_by_name(name).await? {
            Some(c) if c.enabled_for(&client.client_id) && c.is_database() => {}
            Some(c) if c.enabled_for(&client.client_id) && crate::social::Strategy::of(&c).is_some() => {
                federated = Some(c);
            }
            Some(c) if c.enabled_for(&client.client_id) => {
                fail!(
                    "invalid_request",
                    format!("The connection {name} (strategy {}) is not supported yet", c.strategy)
                );
            }
            Some(_) => fail!("invalid_request", format!("the connection {name} is not enabled for this application")),
            None => fail!("invalid_request", format!("the connection {name} was not found")),
        }
    }
    req.scope = grantable_scopes(&req.scope, &client, api.as_ref());

    let prompt = get("prompt").unwrap_or("");
    let now = now_ms();
    if prompt != "login"
        && let Some(session) = current_session(idp, headers, now).await?
    {
        // max_age=0 always asks for the password again, as prompt=login does.
        let fresh_enough = req.max_age.is_none_or(|max| max > 0 && (now - session.auth_time) / 1000 <= max);
        if fresh_enough && session_fits(idp, &session, &req).await? {
            return complete(idp, &req, &session, request, now).await;
        }
    }
    if prompt == "none" {
        fail!("login_required", "Login required");
    }

    let csrf = random_token();
    let tx = LoginTransaction {
        id: random_token(),
        request: serde_json::to_value(&req).map_err(Error::internal)?,
        csrf: csrf.clone(),
        expires_at: now + idp.config.login_ttl_secs * 1000,
    };
    idp.store.put_login_transaction(&tx).await?;
    if let Some(c) = &federated {
        return crate::social::begin_or_fail(idp, &tx.id, &req, c).await;
    }
    let mut res = found(&format!("/u/login?state={}", tx.id));
    let cookie =
        set_cookie(&login_cookie_name(&tx.id), &csrf, "/u/", idp.config.login_ttl_secs, idp.config.secure_cookies());
    res.headers_mut().append(header::SET_COOKIE, HeaderValue::from_str(&cookie).map_err(Error::internal)?);
    Ok(res)
}

fn pkce_char(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

/// Each login transaction has its own anti-CSRF cookie, so tabs do not trample each other.
pub fn login_cookie_name(tx_id: &str) -> String {
    format!("{LOGIN_COOKIE}_{}", &tx_id[..tx_id.len().min(12)])
}

pub async fn current_session(idp: &AppState, headers: &HeaderMap, now: i64) -> Result<Option<SsoSession>> {
    let Some(raw) = cookie(headers, SESSION_COOKIE) else {
        return Ok(None);
    };
    Ok(idp.store.session(&session_key(raw), now).await?)
}

/// Sessions are stored under a digest of the cookie, so a leaked database holds no live cookie.
pub fn session_key(cookie_value: &str) -> String {
    b64url(&sha256(cookie_value.as_bytes()))
}

/// The SSO session's user may sign into this client: still present, not blocked, in a
/// connection enabled for it (and the one asked for, if any).
async fn session_fits(idp: &AppState, session: &SsoSession, req: &AuthRequest) -> Result<bool> {
    let Some(stored) = idp.store.user(&session.user_id).await? else {
        return Ok(false);
    };
    let user = stored.user;
    if user.blocked || req.connection.as_ref().is_some_and(|c| *c != user.connection) {
        return Ok(false);
    }
    Ok(idp.store.connection_by_name(&user.connection).await?.is_some_and(|c| c.enabled_for(&req.client_id)))
}

/// Runs the post-login actions, then issues the code for a signed-in user and sends the
/// browser back to the client (or, when an action denies, the error).
pub async fn complete(
    idp: &AppState,
    req: &AuthRequest,
    session: &SsoSession,
    request: &RequestInfo,
    now: i64,
) -> Result<Response> {
    let mut grant = Grant {
        client_id: req.client_id.clone(),
        user_id: session.user_id.clone(),
        scope: req.scope.clone(),
        audience: req.audience.clone(),
        redirect_uri: req.redirect_uri_sent.then(|| req.redirect_uri.clone()),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge_method.clone(),
        sid: Some(session.id.clone()),
        auth_time: session.auth_time / 1000,
        include_auth_time: req.max_age.is_some(),
        family: random_token(),
        actions: Default::default(),
    };
    let client = idp.store.client(&req.client_id).await?.map(|c| c.client);
    let user = idp.store.user(&session.user_id).await?.map(|u| u.user);
    let (Some(client), Some(user)) = (client, user) else {
        return Ok(error_redirect(req, "access_denied", "The user or the application no longer exists."));
    };
    let mut request = request.clone();
    request.query = post_login::authorize_query(req);
    let login = post_login::Login {
        client: &client,
        user: &user,
        protocol: "oidc-basic-profile",
        scope: &req.scope,
        audience: req.audience.as_deref(),
        request: &request,
        authorize: Some(req),
        session: Some((&session.id, session.auth_time)),
        auth_time: session.auth_time,
    };
    match post_login::run(idp, login).await? {
        Verdict::Allow(claims) => grant.actions = claims,
        Verdict::Deny(reason) => return Ok(error_redirect(req, "access_denied", &reason)),
    }
    let code = random_token();
    idp.store
        .put_code(&AuthCode {
            code_sha256: sha256(code.as_bytes()),
            grant: serde_json::to_value(&grant).map_err(Error::internal)?,
            expires_at: now + idp.config.code_ttl_secs * 1000,
        })
        .await?;
    if !session.clients.contains(&req.client_id) {
        let mut s = session.clone();
        s.clients.push(req.client_id.clone());
        s.last_seen = now;
        idp.store.put_session(&s).await?;
    }
    let mut params = vec![("code", code.as_str())];
    if let Some(state) = &req.state {
        params.push(("state", state));
    }
    Ok(respond(req, &params))
}

pub fn error_redirect(req: &AuthRequest, error: &str, description: &str) -> Response {
    let mut params = vec![("error", error), ("error_description", description)];
    if let Some(state) = &req.state {
        params.push(("state", state));
    }
    respond(req, &params)
}

/// Delivers parameters to the redirect URI in the requested response mode.
fn respond(req: &AuthRequest, params: &[(&str, &str)]) -> Response {
    match req.response_mode {
        ResponseMode::FormPost => Html(pages::form_post(&req.redirect_uri, params)).into_response(),
        mode => {
            let Ok(mut url) = url::Url::parse(&req.redirect_uri) else {
                return Error::page(StatusCode::BAD_REQUEST, "Bad request", "Invalid redirect_uri").into_response();
            };
            if mode == ResponseMode::Fragment {
                let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
                url.set_fragment(Some(&encoded));
            } else {
                url.query_pairs_mut().extend_pairs(params);
            }
            found(url.as_str())
        }
    }
}

/// A 302 Found, as Auth0 redirects (axum's `Redirect::to` answers 303).
pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => Error::page(StatusCode::BAD_REQUEST, "Bad request", "Invalid redirect location").into_response(),
    }
}
