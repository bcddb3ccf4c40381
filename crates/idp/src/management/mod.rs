//! The Management API v2 (`/api/v2/…`), one file per Auth0 resource. Every call carries an
//! access token for `https://{domain}/api/v2/` whose scopes are checked per endpoint; every
//! error is Auth0's `{statusCode, error, message, errorCode}`.

mod actions;
mod audit;
mod client_grants;
mod clients;
mod connections;
mod email_templates;
mod emails;
mod grants;
pub(crate) mod jobs;
mod keys;
mod log_streams;
mod logs;
mod refresh_tokens;
mod resource_servers;
mod roles;
mod search;
mod sessions;
mod tenants;
mod tickets;
mod user_blocks;
mod user_identities;
mod user_roles;
mod users;

use crate::tokens::verify::verify_access_token;
use crate::{AppState, Error};
use axum::Router;
use axum::extract::{FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{HeaderValue, StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use std::sync::Mutex;

pub fn routes(idp: AppState) -> Router<AppState> {
    Router::new()
        .merge(users::routes())
        .merge(clients::routes())
        .merge(connections::routes())
        .merge(resource_servers::routes())
        .merge(client_grants::routes())
        .merge(tenants::routes())
        .merge(keys::routes())
        .merge(jobs::routes())
        .merge(actions::routes())
        .merge(roles::routes())
        .merge(user_roles::routes())
        .merge(logs::routes())
        .merge(user_blocks::routes())
        .merge(sessions::routes())
        .merge(refresh_tokens::routes())
        .merge(grants::routes())
        .merge(user_identities::routes())
        .merge(emails::routes())
        .merge(email_templates::routes())
        .merge(tickets::routes())
        .merge(log_streams::routes())
        .fallback(|| async { ApiError::new(StatusCode::NOT_FOUND, "Not Found", None) })
        .layer(middleware::map_response(in_api_shape))
        .layer(middleware::from_fn(hide_console))
        .layer(middleware::from_fn(refuse_nul))
        .layer(middleware::from_fn_with_state(idp.clone(), audit::record_writes))
        .layer(middleware::from_fn_with_state(idp, rate_limit))
}

/// Refuses a path or query that decodes to a NUL byte (`%00`, the only way one arrives), with
/// the API's 400: PostgreSQL text cannot hold one, so an id or filter carrying it failed in the
/// database, a 503, rather than being refused. (`%2500` is a literal `%00`, which passes.)
async fn refuse_nul(req: Request, next: Next) -> Response {
    let raw = req.uri().path_and_query().map_or("", |p| p.as_str());
    if raw.as_bytes().windows(3).any(|w| w[0] == b'%' && w[1] == b'0' && w[2] == b'0') {
        return ApiError::new(
            StatusCode::BAD_REQUEST,
            "The path or query contains a NUL character.",
            Some("invalid_uri"),
        )
        .into_response();
    }
    next.run(req).await
}

/// The console's own application, connection and administrators are not the tenant's: a path
/// naming one is answered as if it did not exist, whoever asks (the console itself never
/// needs to), so no token can read, change, rotate or delete them.
async fn hide_console(req: Request, next: Next) -> Response {
    let named = req.uri().path().split('/').any(|segment| crate::admins::is_reserved(&audit::percent_decode(segment)));
    if named {
        return ApiError::not_found("Not Found", "inexistent_resource").into_response();
    }
    next.run(req).await
}

/// Errors axum answers itself before a handler runs (a method the path does not have, a path
/// segment that is not valid percent-encoded UTF-8) come empty or as plain text; they are
/// given the API's shape, with the text, if any, as the message.
async fn in_api_shape(res: Response) -> Response {
    let json = res.headers().get(header::CONTENT_TYPE).is_some_and(|v| v.as_bytes().starts_with(b"application/json"));
    if json || !(res.status().is_client_error() || res.status().is_server_error()) {
        return res;
    }
    let status = res.status();
    let allow = res.headers().get(header::ALLOW).cloned();
    let text = axum::body::to_bytes(res.into_body(), 4096).await.unwrap_or_default();
    let message = String::from_utf8_lossy(&text).trim().to_string();
    let message = if message.is_empty() { status.canonical_reason().unwrap_or("Error").to_string() } else { message };
    let mut shaped = ApiError::new(status, message, None).into_response();
    if let Some(allow) = allow {
        shaped.headers_mut().insert(header::ALLOW, allow);
    }
    shaped
}

/// An error in the Management API's shape.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
    code: Option<&'static str>,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>, code: Option<&'static str>) -> Self {
        ApiError { status, message: message.into(), code }
    }
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, Some("invalid_body"))
    }
    pub fn bad_query(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message, Some("invalid_query_string"))
    }
    pub fn not_found(message: impl Into<String>, code: &'static str) -> Self {
        Self::new(StatusCode::NOT_FOUND, message, Some(code))
    }
    pub fn conflict(message: impl Into<String>, code: &'static str) -> Self {
        Self::new(StatusCode::CONFLICT, message, Some(code))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let mut body = json!({
            "statusCode": self.status.as_u16(),
            "error": self.status.canonical_reason().unwrap_or("Error"),
            "message": self.message,
        });
        if let Some(code) = self.code {
            body["errorCode"] = json!(code);
        }
        if self.status == StatusCode::UNAUTHORIZED && self.message == "Invalid token" {
            body["attributes"] = json!({ "error": "Invalid token" });
        }
        json_response(self.status, &body)
    }
}

/// The Management API's answer to a domain failure (actions, passwords, profile checks the
/// Authentication API shares): a refusal of the body is `invalid_body`, as Auth0 answers.
impl From<Error> for ApiError {
    fn from(e: Error) -> Self {
        match e {
            Error::Store(s) => s.into(),
            Error::Conflict(message) => ApiError::conflict(message, "conflict"),
            Error::InvalidRequest(message) | Error::WeakPassword(message) => ApiError::bad_request(message),
            Error::Refused { description, .. } => ApiError::bad_request(description),
            Error::Page { message, .. } => ApiError::bad_request(message),
            Error::Unauthorized(_) | Error::ClientAuthentication => {
                ApiError::new(StatusCode::UNAUTHORIZED, "Invalid token", None)
            }
            Error::AccessDenied(message) => ApiError::new(StatusCode::FORBIDDEN, message, Some("access_denied")),
            Error::Upstream(message) => ApiError::new(StatusCode::BAD_GATEWAY, message, None),
            Error::Internal(e) => {
                tracing::error!(error = %e, "management API failure");
                ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, "Internal error", None)
            }
            other => {
                let message = other.description();
                ApiError::new(StatusCode::BAD_REQUEST, message, Some(other.oauth_code()))
            }
        }
    }
}

impl From<store::Error> for ApiError {
    fn from(e: store::Error) -> Self {
        match e {
            store::Error::Conflict(what) => ApiError::conflict(format!("{what} already exists."), "conflict"),
            store::Error::NotFound(what) => {
                ApiError::not_found(format!("{what} does not exist."), "inexistent_resource")
            }
            other => {
                tracing::error!(error = %other, "store failure in management API");
                ApiError::new(
                    StatusCode::SERVICE_UNAVAILABLE,
                    "The service is temporarily unavailable.",
                    Some("temporarily_unavailable"),
                )
            }
        }
    }
}

pub type ApiResult<T = Response> = std::result::Result<T, ApiError>;

pub fn json_response(status: StatusCode, body: &Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    res
}

pub fn ok(body: &Value) -> Response {
    json_response(StatusCode::OK, body)
}

pub fn created(body: &Value) -> Response {
    json_response(StatusCode::CREATED, body)
}

pub fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

/// The caller, as its verified Management API token says. Every scope check of the API goes
/// through `require` or `require_on_user`, so the rule that a `*:current_user*` scope reaches
/// only the token's own user is decided here, once.
pub struct Caller {
    scopes: Vec<String>,
    /// The user a user's token (from a login or a refresh) speaks for: its `sub`. `None` for a
    /// client's token, whose `*:current_user*` scopes, if granted, reach nobody.
    own_user: Option<String>,
}

impl Caller {
    /// Passes when the token holds any of `scopes` that reaches every object of the endpoint. A
    /// `*:current_user*` scope never does (see `require_on_user`).
    pub fn require(&self, scopes: &[&str]) -> ApiResult<()> {
        if scopes.iter().any(|s| !crate::grants::scopes::is_current_user_scope(s) && self.has(s)) {
            return Ok(());
        }
        Err(insufficient_scope(scopes))
    }

    /// Passes when the token holds any of `scopes` for the user `user_id`: a scope such as
    /// `read:users` for anyone, a `*:current_user*` one only for the token's own user. Auth0
    /// answers a user's token aimed at someone else with this 403.
    pub fn require_on_user(&self, scopes: &[&str], user_id: &str) -> ApiResult<()> {
        let for_anyone = self.require(scopes);
        let own = scopes.iter().any(|s| crate::grants::scopes::is_current_user_scope(s) && self.has(s));
        match (for_anyone, own) {
            (Ok(()), _) => Ok(()),
            (Err(_), true) if self.own_user.as_deref() == Some(user_id) => Ok(()),
            (Err(_), true) => Err(ApiError::new(
                StatusCode::FORBIDDEN,
                "User to be acted on does not match subject in bearer token.",
                Some("insufficient_scope"),
            )),
            (Err(e), false) => Err(e),
        }
    }

    pub fn has(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

/// Auth0's 403 for a token without any of an endpoint's (or a field's) scopes.
fn insufficient_scope(scopes: &[&str]) -> ApiError {
    ApiError::new(
        StatusCode::FORBIDDEN,
        format!("Insufficient scope, expected any of: {}", scopes.join(",")),
        Some("insufficient_scope"),
    )
}

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, idp: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        let Some(token) = header.and_then(|h| h.strip_prefix("Bearer ").or_else(|| h.strip_prefix("bearer "))) else {
            return Err(ApiError::new(StatusCode::UNAUTHORIZED, "Missing authentication", None));
        };
        let invalid = || ApiError::new(StatusCode::UNAUTHORIZED, "Invalid token", None);
        let claims = verify_access_token(idp, token.trim()).await.map_err(|_| invalid())?;
        let audience = idp.config.management_audience();
        let aud = match claims.get("aud") {
            Some(Value::String(a)) => *a == audience,
            Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(&audience)),
            _ => false,
        };
        if !aud {
            return Err(invalid());
        }
        // A console administrator's token: its scopes are its role's, read from the
        // administrators' table on every request (a demoted or deleted admin loses them at once).
        let admin = crate::admins::scopes_of(idp, &claims).await.map_err(ApiError::from)?;
        if let Some(scopes) = admin {
            return Ok(Caller { scopes, own_user: None });
        }
        // Only a client grant confers Management API scopes; a user's token (from a login or a
        // refresh) holds at most `*:current_user*` ones, whatever was added to it, and those
        // reach only its own user.
        let for_a_client = claims.get("gty").and_then(Value::as_str) == Some("client-credentials");
        let scopes = claims
            .get("scope")
            .and_then(Value::as_str)
            .unwrap_or("")
            .split(' ')
            .filter(|s| for_a_client || crate::grants::scopes::is_current_user_scope(s))
            .map(str::to_owned)
            .collect();
        let own_user = match claims.get("sub").and_then(Value::as_str) {
            Some(sub) if !for_a_client => Some(sub.to_owned()),
            _ => None,
        };
        Ok(Caller { scopes, own_user })
    }
}

/// Query parameters; keys may repeat (`strategy=a&strategy=b`).
pub struct Query(Vec<(String, String)>);

impl<S: Send + Sync> FromRequestParts<S> for Query {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _: &S) -> Result<Self, Self::Rejection> {
        let raw = parts.uri.query().unwrap_or("");
        if raw.len() > 16 * 1024 {
            return Err(ApiError::bad_query("Query string too long"));
        }
        let pairs: Vec<(String, String)> = url::form_urlencoded::parse(raw.as_bytes()).into_owned().collect();
        // A repeated single-valued parameter (`q=…&q=…`) means one thing to whatever reads the
        // first copy and another to what reads the last, as a repeated body key does; only the
        // list-valued parameters may repeat.
        for (i, (key, _)) in pairs.iter().enumerate() {
            if !LIST_PARAMS.contains(&key.as_str()) && pairs[..i].iter().any(|(k, _)| k == key) {
                return Err(ApiError::bad_query(format!("Query validation error: '{key}' may be given only once")));
            }
        }
        Ok(Query(pairs))
    }
}

/// Query parameters that take a list, as repeats or comma-separated (see [`Query::all`]).
const LIST_PARAMS: &[&str] = &["fields", "strategy", "app_type", "identifiers"];

impl Query {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.iter().find(|(key, _)| key == k).map(|(_, v)| v.as_str())
    }
    pub fn all(&self, k: &str) -> Vec<&str> {
        self.0.iter().filter(|(key, _)| key == k).flat_map(|(_, v)| v.split(',')).filter(|v| !v.is_empty()).collect()
    }
    pub fn flag(&self, k: &str) -> ApiResult<Option<bool>> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some("true") => Ok(Some(true)),
            Some("false") => Ok(Some(false)),
            Some(_) => Err(ApiError::bad_query(format!("Query validation error: '{k}' must be true or false"))),
        }
    }
    pub fn number(&self, k: &str, max: u32) -> ApiResult<Option<u32>> {
        match self.get(k) {
            None | Some("") => Ok(None),
            Some(v) => match v.parse::<u32>() {
                Ok(n) if n <= max => Ok(Some(n)),
                _ => Err(ApiError::bad_query(format!(
                    "Query validation error: '{k}' must be an integer from 0 to {max}"
                ))),
            },
        }
    }

    /// `fields` + `include_fields`: which keys of each object to keep.
    pub fn fields(&self) -> ApiResult<Option<(Vec<String>, bool)>> {
        let fields: Vec<String> = self.all("fields").into_iter().map(str::to_owned).collect();
        if fields.is_empty() {
            return Ok(None);
        }
        Ok(Some((fields, self.flag("include_fields")?.unwrap_or(true))))
    }
}

/// Keeps (or drops) the selected keys of an object.
pub fn select(mut v: Value, fields: &Option<(Vec<String>, bool)>) -> Value {
    if let (Some((fields, include)), Value::Object(map)) = (fields, &mut v) {
        map.retain(|k, _| fields.iter().any(|f| f == k) == *include);
    }
    v
}

/// Offset or checkpoint paging over a small configuration collection (clients, connections,
/// APIs, grants), in Auth0's two response shapes.
pub fn paged(q: &Query, items: Vec<Value>, collection: &str) -> ApiResult<Response> {
    let fields = q.fields()?;
    let items: Vec<Value> = items.into_iter().map(|v| select(v, &fields)).collect();
    if q.get("take").is_some() || q.get("from").is_some() {
        let take = q.number("take", 100)?.unwrap_or(50) as usize;
        let from = match q.get("from") {
            Some(f) if !f.is_empty() => {
                f.parse::<usize>().map_err(|_| ApiError::bad_query("Invalid 'from' checkpoint"))?
            }
            _ => 0,
        };
        let page: Vec<Value> = items.iter().skip(from).take(take).cloned().collect();
        let mut body = Map::new();
        body.insert(collection.into(), json!(page));
        let next = from.saturating_add(take);
        if next < items.len() {
            body.insert("next".into(), json!(next.to_string()));
        }
        return Ok(ok(&Value::Object(body)));
    }
    let per_page = q.number("per_page", 100)?.unwrap_or(50) as usize;
    let page = q.number("page", 100_000)?.unwrap_or(0) as usize;
    let total = items.len();
    let slice: Vec<Value> = items.into_iter().skip(page * per_page).take(per_page).collect();
    if q.flag("include_totals")?.unwrap_or(false) {
        let mut body = Map::new();
        body.insert("total".into(), json!(total));
        body.insert("start".into(), json!(page * per_page));
        body.insert("limit".into(), json!(per_page));
        body.insert("length".into(), json!(slice.len()));
        body.insert(collection.into(), json!(slice));
        return Ok(ok(&Value::Object(body)));
    }
    Ok(ok(&json!(slice)))
}

/// A JSON object body; anything else is Auth0's 400.
pub fn body_object(body: &[u8]) -> ApiResult<Map<String, Value>> {
    match body_json::<Value>(body)? {
        Value::Object(m) => Ok(m),
        _ => Err(ApiError::bad_request("Payload validation error: 'Expected type object but found type other'.")),
    }
}

/// A body as a `T`, every key of every object given once: serde_json would keep the last
/// copy of a repeated key (`{"password":"a","password":"b"}`) where a proxy in front may read
/// the first, as the Authentication API's bodies refuse it ([`crate::http::json_body`]).
pub fn body_json<T: serde::de::DeserializeOwned>(body: &[u8]) -> ApiResult<T> {
    crate::http::json_body::parse(body).map_err(|e| match e {
        crate::http::json_body::JsonBodyError::DuplicateKey(k) => {
            ApiError::bad_request(format!("Payload validation error: the key '{k}' appears more than once."))
        }
        crate::http::json_body::JsonBodyError::Invalid(e) => {
            ApiError::bad_request(format!("Invalid request payload JSON format: {e}"))
        }
    })
}

/// Reads an optional typed key of a body, naming it in the error.
pub fn take_typed<T: serde::de::DeserializeOwned>(body: &mut Map<String, Value>, key: &str) -> ApiResult<Option<T>> {
    match body.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(v) => serde_json::from_value(v)
            .map(Some)
            .map_err(|e| ApiError::bad_request(format!("Payload validation error: invalid type for '{key}': {e}"))),
    }
}

/// Auth0-style request accounting per client, per node, per second: the `x-ratelimit-*`
/// headers the SDKs read, and 429 past the limit.
pub struct RateLimiter {
    limit: u32,
    windows: Mutex<HashMap<String, (i64, u32)>>,
}

impl RateLimiter {
    pub fn new(limit: u32) -> Self {
        RateLimiter { limit, windows: Mutex::new(HashMap::new()) }
    }

    /// (remaining, reset epoch seconds), or `None` when over the limit.
    fn take(&self, key: &str, now_secs: i64) -> (bool, u32, i64) {
        let mut w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        if w.len() > 10_000 {
            w.retain(|_, (sec, _)| *sec >= now_secs);
        }
        let entry = w.entry(key.to_owned()).or_insert((now_secs, 0));
        if entry.0 != now_secs {
            *entry = (now_secs, 0);
        }
        entry.1 += 1;
        (entry.1 <= self.limit, self.limit.saturating_sub(entry.1), now_secs + 1)
    }
}

impl RateLimiter {
    /// Whether the current window of `key` has exactly one request over the limit.
    fn first_refusal(&self, key: &str) -> bool {
        let w = self.windows.lock().unwrap_or_else(|e| e.into_inner());
        w.get(key).is_some_and(|(_, n)| *n == self.limit + 1)
    }
}

async fn rate_limit(State(idp): State<AppState>, req: Request, next: Next) -> Response {
    // Keyed by the presented token's bytes: cheap, and unauthenticated floods share one key.
    // The token as the Caller reads it (scheme in any case, spaces trimmed), so that spelling
    // one token differently does not give it another bucket.
    let key = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(|v| {
            let token = v.get(..7).filter(|s| s.eq_ignore_ascii_case("bearer ")).map_or(v, |_| &v[7..]);
            crate::util::b64url(&crate::util::sha256(token.trim().as_bytes())[..12])
        })
        .unwrap_or_default();
    let (allowed, remaining, reset) = idp.rate_limiter.take(&key, crate::util::now_ms() / 1000);
    let mut res = if allowed {
        next.run(req).await
    } else {
        // Once per token and second (the first refusal), so a flood is one event a second.
        if remaining == 0 && idp.rate_limiter.first_refusal(&key) {
            let peer = req.extensions().get::<axum::extract::ConnectInfo<std::net::SocketAddr>>().map(|c| c.0);
            let request = crate::http::client::request_info(&idp.config, req.headers(), peer, "GET");
            let path = format!("/api/v2{}", req.uri().path());
            let event = crate::logs::Event::from_request(&request).details(json!({ "path": path }));
            idp.log(event.kind(crate::logs::Type::ApiLimit));
        }
        let mut r =
            ApiError::new(StatusCode::TOO_MANY_REQUESTS, "Global limit has been reached", Some("too_many_requests"))
                .into_response();
        r.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from_static("1"));
        r
    };
    let h = res.headers_mut();
    h.insert("x-ratelimit-limit", HeaderValue::from(idp.rate_limiter.limit));
    h.insert("x-ratelimit-remaining", HeaderValue::from(remaining));
    h.insert("x-ratelimit-reset", HeaderValue::from(reset));
    res
}
