//! The admin console under `/console`: server-rendered pages in the Auth0 Dashboard's words,
//! for following the guide in a browser.
//!
//! The console is a client of this idp like any other. Administrators sign in through the
//! idp's own `/authorize` (code flow with PKCE, the reserved application and connection of
//! [`crate::admins`]), and every read and write the pages do is a Management API request with
//! the administrator's access token, run through the same router, scope checks and audit
//! middleware as a request from outside ([`Admin::api`]): the console can do nothing the API
//! cannot, and each change is a `sapi` event naming the administrator.
//!
//! Security: the session is a sealed cookie (AES-GCM under the secrets key: a forged or
//! altered one does not open) that is `HttpOnly; SameSite=Strict` (and `Secure` over TLS) and
//! ends with the token; every form post carries the session's anti-CSRF token and must come
//! from this origin; every page is sent with a CSP without inline scripts and may not be
//! framed. Assets are compiled into the binary.

// A page's early answer (a refusal, a redirect) is an axum `Response`, as extractors'
// rejections are; boxing it on these once-per-request paths would buy nothing.
#![allow(clippy::result_large_err)]

mod actions;
mod apis;
mod applications;
mod auth;
mod connections;
mod html;
mod logs;
mod settings;
mod users;

use crate::AppState;
use crate::admins::Role;
use crate::util::{ct_eq, random_token};
use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{ConnectInfo, FromRequestParts, Request};
use axum::http::request::Parts;
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::{Deserialize, Serialize};
use serde_json::Value;
use std::net::SocketAddr;
use tower::ServiceExt;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/", get(|| async { redirect("/console/applications") }))
        .route("/assets/console.css", get(|| async { asset("text/css; charset=utf-8", CSS) }))
        .route("/assets/console.js", get(|| async { asset("text/javascript; charset=utf-8", JS) }))
        .merge(auth::routes())
        .merge(applications::routes())
        .merge(connections::routes())
        .merge(apis::routes())
        .merge(users::routes())
        .merge(logs::routes())
        .merge(actions::routes())
        .merge(settings::routes())
        .fallback(not_found)
        .layer(middleware::from_fn(headers))
}

const CSS: &str = include_str!("assets/console.css");
const JS: &str = include_str!("assets/console.js");

fn asset(content_type: &'static str, body: &'static str) -> Response {
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=300"));
    res
}

/// What every console answer carries: no inline script or style, no framing, no caching of
/// pages that show tenant data, no referrer sent to another site (`no-referrer` would make browsers send `Origin: null` on the console's own posts).
async fn headers(req: Request, next: Next) -> Response {
    let mut res = next.run(req).await;
    let h = res.headers_mut();
    h.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'self'; frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
    );
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
    if !h.contains_key(header::CACHE_CONTROL) {
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    }
    res
}

/// A 303 to `to` (after a post, the browser GETs the next page).
pub(crate) fn redirect(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(header::LOCATION, v);
    }
    res
}

const SESSION_COOKIE: &str = "gatehouse_console";
const SEAL_CONTEXT: &str = "console-session";
/// A session lasts as long as its access token, and never longer than this.
const MAX_SESSION_MS: i64 = 8 * 3600 * 1000;

/// The sealed content of the session cookie.
#[derive(Serialize, Deserialize)]
struct Session {
    /// The administrator's Management API access token.
    t: String,
    /// The anti-CSRF token every form of this session carries.
    c: String,
    /// Expiry, ms since the epoch.
    e: i64,
    /// The administrator's email, for the header.
    n: String,
}

/// A signed-in administrator, for one request.
pub(crate) struct Admin {
    token: String,
    pub csrf: String,
    pub email: String,
    pub role: Role,
    peer: Option<SocketAddr>,
}

impl FromRequestParts<AppState> for Admin {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, idp: &AppState) -> Result<Self, Self::Rejection> {
        let to_login = || redirect("/console/login");
        let sealed = crate::http::cookies::get(&parts.headers, SESSION_COOKIE).ok_or_else(to_login)?;
        let session: Session = idp
            .secrets
            .open(SEAL_CONTEXT, sealed)
            .ok()
            .and_then(|json| serde_json::from_str(&json).ok())
            .ok_or_else(to_login)?;
        if session.e <= idp.now() {
            return Err(auth::expired());
        }
        // The token decides, on every request: verified as the Management API verifies it, and
        // still an administrator's (one removed from the table is out at once).
        let claims = crate::tokens::verify::verify_access_token(idp, &session.t).await.map_err(|_| auth::expired())?;
        let role = crate::admins::role_of_token(idp, &claims).await.ok().flatten().ok_or_else(auth::expired)?;
        let peer = parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
        if parts.method != Method::GET && parts.method != Method::HEAD && !same_origin(idp, parts) {
            return Err(forbidden("This form was sent from another site."));
        }
        Ok(Admin { token: session.t, csrf: session.c, email: session.n, role, peer })
    }
}

/// A post must come from this origin: browsers send `Origin` on every cross-site post, and
/// `SameSite=Strict` already keeps the cookie off them; this is the second lock.
fn same_origin(idp: &AppState, parts: &Parts) -> bool {
    match parts.headers.get(header::ORIGIN).and_then(|v| v.to_str().ok()) {
        None => true,
        Some(origin) => {
            let mut expected = idp.config.issuer();
            expected.pop();
            origin == expected
        }
    }
}

/// The `Set-Cookie` of a new session for `token`, valid for `expires_in` seconds.
fn session_cookie(idp: &AppState, token: &str, email: &str, expires_in: i64) -> crate::Result<String> {
    let lifetime_ms = (expires_in * 1000).clamp(0, MAX_SESSION_MS);
    let session = Session { t: token.into(), c: random_token(), e: idp.now() + lifetime_ms, n: email.into() };
    let sealed = idp.secrets.seal(SEAL_CONTEXT, &serde_json::to_string(&session).map_err(crate::Error::internal)?)?;
    Ok(strict_cookie(SESSION_COOKIE, &sealed, lifetime_ms / 1000, idp.config.secure_cookies()))
}

fn strict_cookie(name: &str, value: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/console; Max-Age={max_age}; HttpOnly; SameSite=Strict{secure}")
}

/// A form post's fields, once its anti-CSRF token is checked.
pub(crate) struct Form(Vec<(String, String)>);

impl Form {
    /// Parses `body` and checks its `csrf` field against the session's.
    pub fn checked(admin: &Admin, body: &Bytes) -> Result<Form, Response> {
        let fields: Vec<(String, String)> = url::form_urlencoded::parse(body).into_owned().collect();
        let sent = fields.iter().find(|(k, _)| k == "csrf").map(|(_, v)| v.as_str()).unwrap_or_default();
        if !ct_eq(sent.as_bytes(), admin.csrf.as_bytes()) {
            return Err(forbidden(
                "This form has expired or was not sent from the console. Reload the page and try again.",
            ));
        }
        Ok(Form(fields))
    }
    pub fn get(&self, k: &str) -> &str {
        self.0.iter().find(|(key, _)| key == k).map_or("", |(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0.iter().filter(|(key, _)| key == k).map(|(_, v)| v.as_str()).collect()
    }
    pub fn has(&self, k: &str) -> bool {
        self.0.iter().any(|(key, _)| key == k)
    }
}

async fn not_found() -> Response {
    let body = html::bare(
        "Not found",
        "<p class=\"error\" role=\"alert\" id=\"error-message\">There is no such console page.</p><p><a href=\"/console\">Back to the console</a></p>",
    );
    (StatusCode::NOT_FOUND, axum::response::Html(body)).into_response()
}

fn forbidden(message: &str) -> Response {
    let body = html::bare(
        "Forbidden",
        &format!("<p class=\"error\" role=\"alert\" id=\"error-message\">{}</p>", html::esc(message)),
    );
    (StatusCode::FORBIDDEN, axum::response::Html(body)).into_response()
}

/// A Management API answer.
pub(crate) struct ApiReply {
    pub status: StatusCode,
    pub body: Value,
}

impl ApiReply {
    pub fn ok(&self) -> bool {
        self.status.is_success()
    }
    /// The API's error message, for the page.
    pub fn message(&self) -> String {
        self.body.get("message").and_then(Value::as_str).map_or_else(|| self.status.to_string(), str::to_owned)
    }
}

impl Admin {
    /// One Management API request with this administrator's token, through the API's own
    /// router (scopes, rate limit, audit log and all).
    pub async fn api(&self, idp: &AppState, method: Method, path: &str, body: Option<&Value>) -> ApiReply {
        let mut req = Request::builder()
            .method(method)
            .uri(path)
            .header(header::AUTHORIZATION, format!("Bearer {}", self.token))
            .header(header::CONTENT_TYPE, "application/json");
        if let Some(peer) = self.peer {
            req = req.extension(ConnectInfo(peer));
        }
        let body = body.map_or_else(Body::empty, |b| Body::from(b.to_string()));
        let Ok(req) = req.body(body) else {
            return ApiReply { status: StatusCode::BAD_REQUEST, body: serde_json::json!({"message": "Bad request"}) };
        };
        let router = crate::management::routes(idp.clone()).with_state(idp.clone());
        let res = match router.oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let status = res.status();
        let bytes = axum::body::to_bytes(res.into_body(), 8 * 1024 * 1024).await.unwrap_or_default();
        let body = serde_json::from_slice(&bytes).unwrap_or(Value::Null);
        ApiReply { status, body }
    }

    pub async fn get(&self, idp: &AppState, path: &str) -> ApiReply {
        self.api(idp, Method::GET, path, None).await
    }

    pub fn can_write(&self) -> bool {
        self.role == Role::Full
    }
}

/// Percent-encodes one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect::<String>().replace('+', "%20")
}

/// A page's answer after a write: back to `to` with a message, or the page of the error.
pub(crate) fn after_write(admin: &Admin, reply: &ApiReply, to: &str, message: &str) -> Response {
    if reply.ok() {
        let sep = if to.contains('?') { '&' } else { '?' };
        redirect(&format!("{to}{sep}m={message}"))
    } else {
        html::error(admin, &reply.message(), to)
    }
}
