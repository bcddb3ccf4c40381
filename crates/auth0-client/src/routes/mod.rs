//! The HTTP surface, one file per route group, plus what several groups share: client
//! selection (`client-type` header, else `defaultClient`), the session credential (Bearer, else
//! the `sid` cookie), the public URL behind proxies, connection resolution and request
//! parameters from the query or the body.

pub mod authorize;
pub mod docs;
pub mod health;
pub mod logout;
pub mod refresh;
pub mod token;
pub mod userinfo;
pub mod users;

use crate::AppState;
use crate::config::ClientType;
use crate::error::{Error, Result, mia_error};
use axum::Router;
use axum::extract::{DefaultBodyLimit, Request};
use axum::http::{HeaderMap, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, patch, post};
use std::collections::HashMap;
use std::sync::Arc;

/// Bodies of every route but the import (login forms, tokens, user records).
pub const BODY_LIMIT: usize = 64 * 1024;
/// Auth0 takes import files up to 500 KB; multipart framing and JSON arrays need a bit more.
pub const IMPORT_BODY_LIMIT: usize = 1024 * 1024;
/// One parameter (code, state, username, …) at most this long.
const MAX_PARAM: usize = 8 * 1024;

/// The service's routes under `SERVICE_PREFIX`, with request logging and Mia-shaped errors.
pub fn router(app: AppState) -> Router {
    let routes = Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/oauth/token", get(token::token).post(token::token))
        .route("/refreshtoken", post(refresh::refresh_token))
        .route("/logout", get(logout::logout))
        .route("/userinfo", get(userinfo::userinfo))
        // Static routes before the `{userID}` ones (matchit prefers them anyway).
        .route("/users/me", get(userinfo::users_me))
        .route("/users/active", get(users::active))
        .route("/users/count", get(users::count))
        .route("/users/import", post(users::import).layer(DefaultBodyLimit::max(IMPORT_BODY_LIMIT)))
        .route("/users/import/status/{job_id}", get(users::job_status))
        .route("/users/import/status/{job_id}/errors", get(users::job_errors))
        .route("/users/change-password", post(users::change_password))
        .route("/change-password", post(users::change_password))
        .route("/users", get(users::list).post(users::create))
        .route("/users/{user_id}", patch(users::update).delete(users::remove))
        .route("/-/healthz", get(health::healthz))
        .route("/-/ready", get(health::ready))
        .route("/-/check-up", get(health::check_up))
        .route("/documentation/json", get(docs::documentation))
        .fallback(|| async { mia_error(StatusCode::NOT_FOUND, "route not found") })
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .with_state(app.clone());
    let prefix = app.config.env.service_prefix.clone();
    let router = if prefix.is_empty() {
        routes
    } else {
        Router::new().nest(&prefix, routes).fallback(|| async { mia_error(StatusCode::NOT_FOUND, "route not found") })
    };
    router
        .layer(middleware::from_fn(shape_errors))
        .layer(middleware::from_fn_with_state(Arc::<str>::from(prefix.as_str()), crate::logging::request_log))
        .layer(tower_http::catch_panic::CatchPanicLayer::custom(|_| {
            mia_error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }))
}

/// Errors produced by the framework itself (405, 413, 415…) get Mia's JSON shape too.
async fn shape_errors(req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let status = res.status();
    let is_error = status.is_client_error() || status.is_server_error();
    let is_json =
        res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if !is_error || is_json {
        return res;
    }
    let message = match status {
        StatusCode::PAYLOAD_TOO_LARGE => "request body too large".to_string(),
        StatusCode::METHOD_NOT_ALLOWED => "method not allowed".to_string(),
        other => other.canonical_reason().unwrap_or("error").to_lowercase(),
    };
    let mut shaped = mia_error(status, &message);
    if let Some(allow) = res.headers().get(header::ALLOW) {
        shaped.headers_mut().insert(header::ALLOW, allow.clone());
    }
    shaped
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).map(str::trim).filter(|v| !v.is_empty())
}

/// A header that may carry any UTF-8 (HTTP lets raw bytes through), as sent; a 400 when it is
/// not UTF-8. Reading such a value as absent would be wrong for `client-type` (the default
/// client instead of a 401) and for `acl_rows` (no filter at all).
fn header_utf8<'a>(headers: &'a HeaderMap, name: &str) -> Result<Option<&'a str>> {
    let Some(value) = headers.get(name) else { return Ok(None) };
    let text = std::str::from_utf8(value.as_bytes())
        .map_err(|_| Error::BadRequest(format!("the {name} header is not UTF-8")))?;
    Ok(Some(text))
}

/// The `client-type` header, trimmed; `None` when absent or blank.
fn client_type_header(headers: &HeaderMap) -> Result<Option<&str>> {
    Ok(header_utf8(headers, "client-type")?.map(str::trim).filter(|v| !v.is_empty()))
}

/// The client of an auth route: the `client-type` header, else `defaultClient`; 401 otherwise.
pub fn select_client<'a>(app: &'a crate::App, headers: &HeaderMap) -> Result<&'a ClientType> {
    let service = &app.config.service;
    match client_type_header(headers)? {
        Some(name) => service.client(name).ok_or_else(|| Error::Unauthorized(format!("unknown client type {name:?}"))),
        None => service
            .default_client
            .as_deref()
            .and_then(|d| service.client(d))
            .ok_or_else(|| Error::Unauthorized("missing client-type header and no defaultClient configured".into())),
    }
}

/// `/users*`: the client type is optional, but a header naming an unknown client is refused
/// (spec B9). Returns the client when one is named or defaulted.
pub fn optional_client<'a>(app: &'a crate::App, headers: &HeaderMap) -> Result<Option<&'a ClientType>> {
    match client_type_header(headers)? {
        Some(_) => select_client(app, headers).map(Some),
        None => Ok(select_client(app, headers).ok()),
    }
}

/// How a request proves its session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Credential {
    Bearer(String),
    Cookie(String),
}

impl Credential {
    pub fn value(&self) -> &str {
        match self {
            Credential::Bearer(v) | Credential::Cookie(v) => v,
        }
    }
}

/// `Authorization: Bearer …` first, then the `sid` cookie; other schemes are ignored.
pub fn credential(headers: &HeaderMap) -> Option<Credential> {
    if let Some(auth) = header_str(headers, "authorization")
        && let Some((scheme, token)) = auth.split_once(' ')
        && scheme.eq_ignore_ascii_case("bearer")
        && !token.trim().is_empty()
    {
        return Some(Credential::Bearer(token.trim().to_string()));
    }
    for value in headers.get_all(header::COOKIE) {
        let Ok(value) = value.to_str() else { continue };
        for pair in value.split(';') {
            if let Some((name, v)) = pair.trim().split_once('=')
                && name.trim() == "sid"
            {
                let v = v.trim().trim_matches('"');
                if !v.is_empty() {
                    return Some(Credential::Cookie(v.to_string()));
                }
            }
        }
    }
    None
}

/// `<proto>://<host>` as the browser sees the service: the protocol from the header named by
/// `ORIGINAL_PROTOCOL_HEADER`, else `X-Forwarded-Proto`, else https; the host from
/// `X-Forwarded-Host` (its first element), else `Host`.
pub fn public_base(app: &crate::App, headers: &HeaderMap) -> String {
    let first = |v: &str| v.split(',').next().unwrap_or("").trim().to_string();
    let proto = app
        .config
        .env
        .original_protocol_header
        .as_deref()
        .and_then(|h| header_str(headers, h))
        .or_else(|| header_str(headers, "x-forwarded-proto"))
        .map(first)
        .map(|p| p.to_ascii_lowercase())
        .filter(|p| p == "http" || p == "https")
        .unwrap_or_else(|| "https".to_string());
    let host = header_str(headers, "x-forwarded-host")
        .or_else(|| header_str(headers, "host"))
        .map(first)
        .filter(|h| !h.is_empty() && !h.contains(['/', '\\', '@', ' ']))
        .unwrap_or_else(|| "localhost".to_string());
    format!("{proto}://{host}")
}

/// A relative `redirectUrl` (`/web-login/callback`) made absolute for this request (spec A10).
pub fn absolute_redirect_url(app: &crate::App, client: &ClientType, headers: &HeaderMap) -> String {
    if client.redirect_url.starts_with('/') {
        format!("{}{}", public_base(app, headers), client.redirect_url)
    } else {
        client.redirect_url.clone()
    }
}

/// Spec 2.1.1: the connection to send to Auth0.
pub fn resolve_connection(client: &ClientType, requested: Option<&str>) -> Result<Option<String>> {
    let requested = requested.map(str::trim).filter(|c| !c.is_empty());
    let supported = &client.supported_connections;
    if supported.is_empty() {
        return Ok(requested.map(str::to_owned));
    }
    match requested {
        Some(c) if supported.iter().any(|s| s == c) => Ok(Some(c.to_string())),
        Some(c) => client.default_connection.clone().map(Some).ok_or_else(|| {
            Error::BadRequest(format!("connection {c:?} is not supported by client type {:?}", client.name))
        }),
        None => Ok(client.default_connection.clone().or_else(|| supported.first().cloned())),
    }
}

/// Single-valued parameters (the first of repeated ones), from the query and then the body
/// (urlencoded form or JSON object); the query wins.
pub fn params(query: Option<&str>, headers: &HeaderMap, body: &[u8]) -> Result<HashMap<String, String>> {
    let mut out = HashMap::new();
    let mut add = |k: String, v: String| -> Result<()> {
        if v.len() > MAX_PARAM {
            return Err(Error::BadRequest(format!("parameter {k} is too long")));
        }
        out.entry(k).or_insert(v);
        Ok(())
    };
    for (k, v) in url::form_urlencoded::parse(query.unwrap_or("").as_bytes()) {
        add(k.into_owned(), v.into_owned())?;
    }
    if !body.is_empty() {
        let ct = header_str(headers, "content-type").unwrap_or("").to_ascii_lowercase();
        if ct.starts_with("application/json") {
            let v: serde_json::Value = serde_json::from_slice(body)
                .map_err(|e| Error::BadRequest(format!("the body is not valid JSON: {e}")))?;
            let serde_json::Value::Object(m) = v else {
                return Err(Error::BadRequest("the body must be a JSON object".into()));
            };
            for (k, v) in m {
                match v {
                    serde_json::Value::String(s) => add(k, s)?,
                    serde_json::Value::Number(n) => add(k, n.to_string())?,
                    serde_json::Value::Bool(b) => add(k, b.to_string())?,
                    _ => {}
                }
            }
        } else {
            for (k, v) in url::form_urlencoded::parse(body) {
                add(k.into_owned(), v.into_owned())?;
            }
        }
    }
    Ok(out)
}

/// An Auth0 answer relayed as it came (status, content type, body).
pub fn relay(up: crate::auth0::Upstream) -> Response {
    up.relay().into_response()
}

/// `200 application/json` from a serialisable value.
pub fn json_ok(v: &impl serde::Serialize) -> Response {
    match serde_json::to_vec(v) {
        Ok(body) => ([(header::CONTENT_TYPE, "application/json")], body).into_response(),
        Err(e) => Error::Internal(e.to_string()).into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn client(supported: &[&str], default: Option<&str>) -> ClientType {
        ClientType {
            name: "c".into(),
            auth0_url: "https://t".into(),
            client_id: "i".into(),
            client_secret: "s".into(),
            redirect_url: "/cb".into(),
            scopes: vec![],
            audience: None,
            supported_signing_algs: vec![],
            supported_connections: supported.iter().map(|s| s.to_string()).collect(),
            default_connection: default.map(str::to_owned),
            same_site: None,
            authorize_state_required: false,
        }
    }

    #[test]
    fn connection_resolution() {
        assert_eq!(resolve_connection(&client(&[], None), Some("x")).unwrap().as_deref(), Some("x"));
        assert_eq!(resolve_connection(&client(&[], None), None).unwrap(), None);
        let c = client(&["a", "b"], Some("b"));
        assert_eq!(resolve_connection(&c, Some("a")).unwrap().as_deref(), Some("a"));
        assert_eq!(resolve_connection(&c, Some("z")).unwrap().as_deref(), Some("b"));
        assert_eq!(resolve_connection(&c, None).unwrap().as_deref(), Some("b"));
        let c = client(&["a", "b"], None);
        assert_eq!(resolve_connection(&c, None).unwrap().as_deref(), Some("a"));
        assert!(matches!(resolve_connection(&c, Some("z")), Err(Error::BadRequest(_))));
    }

    #[test]
    fn credentials() {
        let mut h = HeaderMap::new();
        h.insert("cookie", HeaderValue::from_static("a=1; sid=abc; b=2"));
        assert_eq!(credential(&h), Some(Credential::Cookie("abc".into())));
        h.insert("authorization", HeaderValue::from_static("Basic eA=="));
        assert_eq!(credential(&h), Some(Credential::Cookie("abc".into())), "other schemes are ignored");
        h.insert("authorization", HeaderValue::from_static("bearer tok"));
        assert_eq!(credential(&h), Some(Credential::Bearer("tok".into())));
    }
}
