//! The Universal Login page (`/u/login`) and the credential check every password login shares
//! (the page, the password and password-realm grants): brute-force limits per (user, IP),
//! timing that does not reveal which accounts exist, rehash on login.

use crate::authorize::{SESSION_COOKIE, complete, login_cookie_name, session_key, single_params};
use crate::grant::AuthRequest;
use crate::pages::{self, DbChoice, FederatedChoice, LoginPage};
use crate::password::Verified;
use crate::post_login::RequestInfo;
use crate::util::{b64url, client_ip, cookie, ct_eq, now_ms, random_token, set_cookie, sha256};
use crate::{AppState, Error, Result};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::net::SocketAddr;
use store::{Connection, LoginTransaction, SsoSession, StoredUser};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    WrongCredentials,
    UserBlocked,
    TooManyAttempts,
}

impl LoginError {
    pub fn message(self) -> &'static str {
        match self {
            LoginError::WrongCredentials => "Wrong email or password.",
            LoginError::UserBlocked => "user is blocked",
            LoginError::TooManyAttempts => {
                "Your account has been blocked after multiple consecutive login attempts. We've sent you an email with instructions on how to unblock it."
            }
        }
    }
}

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::WrongCredentials => Error::invalid_grant(e.message()),
            LoginError::UserBlocked => Error::oauth(StatusCode::UNAUTHORIZED, "unauthorized", e.message()),
            LoginError::TooManyAttempts => {
                Error::oauth(StatusCode::TOO_MANY_REQUESTS, "too_many_attempts", e.message())
            }
        }
    }
}

/// Checks a password against a database connection. The outer `Result` is for infrastructure
/// failures; the inner one is the login's outcome.
pub async fn check_password(
    idp: &AppState,
    connection: &Connection,
    login: &str,
    password: &str,
    ip: &str,
) -> Result<std::result::Result<StoredUser, LoginError>> {
    let now = now_ms();
    let policy = idp.config.brute_force;
    let block_ms = policy.block_secs * 1000;
    let stored = idp.store.user_by_login(&connection.name, login.trim()).await?;
    // The attempt is counted before the password is checked and taken back when it was right:
    // counting only afterwards would let a burst of concurrent guesses all pass the limit
    // while none of them was recorded yet.
    //
    // Logins that name no user are counted too, or the block itself would tell which accounts
    // exist: only a real one would answer `too_many_attempts` to the tenth wrong password. They
    // count as a rate window (purged when it ends) under a digest of the login, so what was
    // typed is not stored and a flood of made-up names does not pile up.
    let failures = match &stored {
        Some(s) => idp.store.record_failure(&s.user.user_id, ip, now, now - block_ms).await?.failures,
        None => {
            let login = b64url(&sha256(format!("{}\0{}", connection.name, login.trim().to_lowercase()).as_bytes()));
            idp.store.count_hit(&format!("login-failure:{login}:{ip}"), now, block_ms).await?
        }
    };
    if failures > policy.max_attempts {
        metrics::counter!("gatehouse_logins_total", "outcome" => "too_many_attempts").increment(1);
        return Ok(Err(LoginError::TooManyAttempts));
    }
    let verified = idp.hasher.verify(password, stored.as_ref().and_then(|s| s.password_hash.as_deref())).await?;
    let (Some(mut stored), true) = (stored.clone(), verified != Verified::No) else {
        if failures >= policy.max_attempts {
            let user_id = stored.as_ref().map_or("(none)", |s| s.user.user_id.as_str());
            tracing::warn!(user_id, ip, "login blocked after repeated failures");
            metrics::counter!("gatehouse_logins_total", "outcome" => "too_many_attempts").increment(1);
            return Ok(Err(LoginError::TooManyAttempts));
        }
        metrics::counter!("gatehouse_logins_total", "outcome" => "wrong_credentials").increment(1);
        return Ok(Err(LoginError::WrongCredentials));
    };
    idp.store.clear_failures(&stored.user.user_id, Some(ip)).await?;
    if stored.user.blocked {
        metrics::counter!("gatehouse_logins_total", "outcome" => "blocked").increment(1);
        return Ok(Err(LoginError::UserBlocked));
    }
    if verified == Verified::YesRehash {
        stored.password_hash = Some(idp.hasher.hash(password).await?);
        idp.store.update_user(&stored).await?;
    }
    idp.store.record_login(&stored.user.user_id, now, ip).await?;
    stored.user.logins_count += 1;
    stored.user.last_login = Some(now);
    metrics::counter!("gatehouse_logins_total", "outcome" => "success").increment(1);
    Ok(Ok(stored))
}

struct Pending {
    tx: LoginTransaction,
    req: AuthRequest,
    client_name: String,
    databases: Vec<Connection>,
    /// Google and OpenID Connect connections enabled for the application: one button each.
    federated: Vec<Connection>,
}

async fn pending(idp: &AppState, state: Option<&str>) -> Result<Pending> {
    let expired = || {
        Error::page(
            StatusCode::BAD_REQUEST,
            "Session expired",
            "This login page has expired. Go back to the application and try again.",
        )
    };
    let state = state.filter(|s| !s.is_empty()).ok_or_else(expired)?;
    let tx = idp.store.login_transaction(state, now_ms()).await?.ok_or_else(expired)?;
    let req: AuthRequest = serde_json::from_value(tx.request.clone()).map_err(|_| expired())?;
    let client = idp.store.client(&req.client_id).await?.ok_or_else(expired)?.client;
    let (databases, federated) = idp
        .store
        .connections()
        .await?
        .into_iter()
        .filter(|c| c.enabled_for(&client.client_id))
        .filter(|c| req.connection.as_ref().is_none_or(|only| *only == c.name))
        .filter(|c| c.is_database() || crate::social::offers_button(c))
        .partition(Connection::is_database);
    Ok(Pending { tx, req, client_name: client.name, databases, federated })
}

fn render(idp_default: Option<&str>, p: &Pending, username: &str, error: Option<&str>, status: StatusCode) -> Response {
    let selected = p
        .databases
        .iter()
        .find(|d| Some(d.name.as_str()) == idp_default)
        .or(p.databases.first())
        .map(|d| d.name.as_str());
    let page = LoginPage {
        app_name: &p.client_name,
        state: &p.tx.id,
        csrf: &p.tx.csrf,
        databases: p.databases.iter().map(|d| DbChoice { name: &d.name, signup: !d.signup_disabled() }).collect(),
        federated: p.federated.iter().map(|c| FederatedChoice { name: &c.name, label: button_label(c) }).collect(),
        selected,
        username,
        error,
    };
    form_page(status, pages::login_page(&page))
}

/// The text of a connection's button: its display name, else the provider's name.
fn button_label(c: &Connection) -> String {
    match (&c.display_name, c.strategy.as_str()) {
        (Some(d), _) if !d.is_empty() => d.clone(),
        (_, "google-oauth2") => "Google".into(),
        _ => c.name.clone(),
    }
}

/// A page with a credentials form: never cached, never framed (clickjacking).
fn form_page(status: StatusCode, html: String) -> Response {
    let mut res = (status, Html(html)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert("x-frame-options", HeaderValue::from_static("deny"));
    res
}

pub async fn show(State(idp): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = single_params(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let result = async {
        let p = pending(&idp, q.get("state").map(String::as_str)).await?;
        let default = idp.store.tenant_settings().await?.default_directory;
        let hint = p.req.login_hint.clone().unwrap_or_default();
        Ok::<_, Error>(render(default.as_deref(), &p, &hint, None, StatusCode::OK))
    };
    result.await.unwrap_or_else(|e| e.into_page().into_response())
}

type Form = std::collections::HashMap<String, String>;

/// A posted login or sign-up form: parsed, its transaction loaded, and its anti-CSRF token
/// checked against both the transaction and the cookie /authorize set in this browser.
async fn posted(idp: &AppState, headers: &HeaderMap, body: &str) -> Result<(Form, Pending)> {
    let form = single_params(body).map_err(|e| Error::page(StatusCode::BAD_REQUEST, "Bad request", e))?;
    let p = pending(idp, form.get("state").map(String::as_str)).await?;
    let sent = form.get("csrf").map(String::as_str).unwrap_or("");
    let cookie_csrf = cookie(headers, &login_cookie_name(&p.tx.id)).unwrap_or("");
    if !ct_eq(sent.as_bytes(), p.tx.csrf.as_bytes()) || !ct_eq(cookie_csrf.as_bytes(), p.tx.csrf.as_bytes()) {
        return Err(Error::page(
            StatusCode::FORBIDDEN,
            "Invalid request",
            "The login form could not be verified. Go back to the application and try again.",
        ));
    }
    Ok((form, p))
}

async fn sign_in(idp: &AppState, p: &Pending, user_id: &str, request: &RequestInfo) -> Result<Response> {
    start_session(idp, &p.tx.id, &p.req, user_id, request).await
}

/// Starts the SSO session for a user who just proved who they are (password, sign-up or an
/// upstream provider), ends login transaction `tx_id`, and sends the browser back to the
/// application with its code.
pub(crate) async fn start_session(
    idp: &AppState,
    tx_id: &str,
    req: &AuthRequest,
    user_id: &str,
    request: &RequestInfo,
) -> Result<Response> {
    let now = now_ms();
    let settings = idp.store.tenant_settings().await?;
    let lifetime_ms = (settings.session_lifetime.unwrap_or(168.0) * 3_600_000.0) as i64;
    let cookie_value = random_token();
    let session = SsoSession {
        id: session_key(&cookie_value),
        user_id: user_id.to_owned(),
        auth_time: now,
        last_seen: now,
        expires_at: now + lifetime_ms,
        clients: vec![],
    };
    idp.store.put_session(&session).await?;
    idp.store.delete_login_transaction(tx_id).await?;
    let mut res = complete(idp, req, &session, request, now).await?;
    let secure = idp.config.secure_cookies();
    let set = [
        set_cookie(SESSION_COOKIE, &cookie_value, "/", lifetime_ms / 1000, secure),
        set_cookie(&login_cookie_name(tx_id), "", "/u/", 0, secure),
    ];
    for c in set {
        res.headers_mut().append(header::SET_COOKIE, HeaderValue::from_str(&c).map_err(Error::internal)?);
    }
    Ok(res)
}

pub async fn submit(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let result = async {
        let (form, p) = posted(&idp, &headers, &body).await?;
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let default = idp.store.tenant_settings().await?.default_directory;
        let again =
            |message: &str, status| Ok(render(default.as_deref(), &p, field("username"), Some(message), status));
        // A provider button: leave for the upstream (the form proved this browser began the login).
        if field("action") == "federated" {
            let Some(c) = p.federated.iter().find(|c| c.name == field("connection")) else {
                return again("Choose a valid login method.", StatusCode::BAD_REQUEST);
            };
            return crate::social::begin_or_fail(&idp, &p.tx.id, &p.req, c).await;
        }
        let Some(connection) = p.databases.iter().find(|d| d.name == field("connection")) else {
            return again("Choose a valid directory.", StatusCode::BAD_REQUEST);
        };
        if field("username").is_empty() || field("password").is_empty() {
            return again("Enter your email and password.", StatusCode::BAD_REQUEST);
        }
        let ip = client_ip(idp.config.trust_proxy, &headers, Some(peer));
        match check_password(&idp, connection, field("username"), field("password"), &ip).await? {
            Ok(stored) => {
                let request = RequestInfo::new(&idp, &headers, Some(peer), "POST");
                sign_in(&idp, &p, &stored.user.user_id, &request).await
            }
            Err(e @ LoginError::TooManyAttempts) => again(e.message(), StatusCode::TOO_MANY_REQUESTS),
            Err(e) => again(e.message(), StatusCode::UNAUTHORIZED),
        }
    };
    result.await.unwrap_or_else(|e: Error| e.into_page().into_response())
}

fn signup_render(p: &Pending, email: &str, error: Option<&str>, status: StatusCode) -> Response {
    let open: Vec<&str> = p.databases.iter().filter(|d| !d.signup_disabled()).map(|d| d.name.as_str()).collect();
    let page = pages::SignupPage {
        app_name: &p.client_name,
        state: &p.tx.id,
        csrf: &p.tx.csrf,
        databases: &open,
        email,
        error,
    };
    form_page(status, pages::signup_page(&page))
}

pub async fn signup_show(State(idp): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = single_params(raw.as_deref().unwrap_or("")).unwrap_or_default();
    match pending(&idp, q.get("state").map(String::as_str)).await {
        Ok(p) => signup_render(&p, "", None, StatusCode::OK),
        Err(e) => e.into_page().into_response(),
    }
}

pub async fn signup_submit(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let result = async {
        let (form, p) = posted(&idp, &headers, &body).await?;
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let Some(connection) = p.databases.iter().find(|d| d.name == field("connection") && !d.signup_disabled())
        else {
            return Ok(signup_render(
                &p,
                field("email"),
                Some("Sign-up is not available here."),
                StatusCode::BAD_REQUEST,
            ));
        };
        match crate::dbconnections::register(&idp, connection, field("email"), field("password"), |_| {}).await {
            Ok(user) => sign_in(&idp, &p, &user.user_id, &RequestInfo::new(&idp, &headers, Some(peer), "POST")).await,
            Err(Error::DbConnections { status, description, .. }) => {
                Ok(signup_render(&p, field("email"), Some(&description), status))
            }
            Err(e) => Err(e),
        }
    };
    result.await.unwrap_or_else(|e: Error| e.into_page().into_response())
}
