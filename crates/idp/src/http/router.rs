//! The router, and what operators need around it: health and readiness, Prometheus metrics,
//! one log line per request (with a request id; never the query string or body, which carry
//! codes, tokens and passwords), body-size and time limits.

use crate::AppState;
use crate::authn::{authorize, callback, dbconnections, discovery, login, logout, token, userinfo};
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{MatchedPath, Request, State};
use axum::http::{HeaderMap, HeaderName, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::collections::HashMap;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{OnceLock, RwLock};
use std::time::{Duration, Instant};
use tracing::Instrument;

/// Requests to these endpoints are small; anything larger is refused before parsing.
const BODY_LIMIT: usize = 64 * 1024;

pub fn routes(idp: AppState) -> Router {
    let router = Router::new();
    // With a listener of its own (`--metrics-listen`), `/metrics` is not on this one at all:
    // its login counters are not for the public.
    let router = if idp.config.metrics_elsewhere { router } else { router.route("/metrics", get(metrics_text)) };
    router
        .route("/authorize", get(authorize::get).post(authorize::post))
        .route("/u/login", get(login::show).post(login::submit))
        .route("/u/signup", get(login::signup_show).post(login::signup_submit))
        .route("/login/callback", get(callback::callback))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke))
        .route("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
        .route("/v2/logout", get(logout::v2_logout))
        .route("/oidc/logout", get(logout::oidc_logout_get).post(logout::oidc_logout_post))
        .route("/dbconnections/signup", post(dbconnections::signup))
        .route("/dbconnections/change_password", post(dbconnections::change_password))
        .route("/lo/reset", get(dbconnections::reset_page).post(dbconnections::reset_submit))
        .route("/u/email-verification", get(dbconnections::verify_email))
        .route("/u/unblock", get(dbconnections::unblock))
        .route("/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .nest("/api/v2", crate::management::routes(idp.clone()))
        .nest("/console", crate::console::routes())
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .fallback(not_found)
        // One layer, not one per concern: axum wraps every route in each layer, and each costs
        // a boxed service clone and a boxed future per request.
        .layer(middleware::from_fn_with_state(idp.clone(), edge))
        .with_state(idp)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "not_found", "error_description": "Not Found" })))
        .into_response()
}

/// Ready while the store answers a query within [`READY_TIMEOUT`]: a database that is down
/// fails at once (or when the pool gives up connecting), one that hangs (stopped, partitioned)
/// fails at the bound, so a load balancer's probe never waits on it. Nothing is remembered: the
/// next probe asks again, so readiness comes back by itself with the database.
async fn readyz(State(idp): State<AppState>) -> Response {
    let unready = |why: &str| {
        tracing::warn!(error = why, "store unreachable");
        (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
    };
    match tokio::time::timeout(READY_TIMEOUT, idp.store.ping()).await {
        Ok(Ok(())) => "ready".into_response(),
        Ok(Err(e)) => unready(&e.to_string()),
        Err(_) => unready("no answer in time"),
    }
}

/// Kubernetes' default probe timeout is 1 s; this answers within it.
const READY_TIMEOUT: Duration = Duration::from_millis(900);

/// The process's recorder. Histograms keep every sample until upkeep folds them into their
/// summaries, which only a scrape would otherwise do: without the upkeep thread an idp nobody
/// scrapes grew by some 16 bytes per request.
fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE
        .get_or_init(|| {
            let handle = PrometheusBuilder::new().install_recorder().ok()?;
            let upkeep = handle.clone();
            std::thread::Builder::new()
                .name("metrics-upkeep".into())
                .spawn(move || {
                    loop {
                        std::thread::sleep(METRICS_UPKEEP);
                        upkeep.run_upkeep();
                    }
                })
                .ok()?;
            Some(handle)
        })
        .as_ref()
}

const METRICS_UPKEEP: Duration = Duration::from_secs(5);

/// `/metrics` alone, for the listener of `--metrics-listen`.
pub fn metrics_routes(idp: AppState) -> Router {
    Router::new().route("/metrics", get(metrics_text)).fallback(not_found).with_state(idp)
}

async fn metrics_text(State(idp): State<AppState>, headers: HeaderMap) -> Response {
    if let Some(expected) = &idp.config.metrics_token_digest {
        let sent = headers
            .get(axum::http::header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .unwrap_or_default();
        if !crate::util::ct_eq(&crate::util::sha256(sent.as_bytes()), expected) {
            let mut res =
                super::errors::oauth(StatusCode::UNAUTHORIZED, "invalid_token", "A valid metrics token is required");
            res.headers_mut().insert(axum::http::header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return res;
        }
    }
    match prometheus() {
        Some(h) => h.render().into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable").into_response(),
    }
}

/// What every request goes through: a request id, the body limit, the time limit, then the
/// metrics and the log line for its answer.
async fn edge(State(idp): State<AppState>, req: Request, next: Next) -> Response {
    let _ = prometheus(); // before any handler counts something
    let start = Instant::now();
    let route = req.extensions().get::<MatchedPath>().cloned();
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get(&REQUEST_ID)
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(next_request_id);
    let surface = Surface::of(req.uri().path());
    let route = route.as_ref().map_or("unmatched", MatchedPath::as_str);
    // The request's span in traces (crate `telemetry`): never enabled with traces off, when
    // its fields are not even computed.
    let span = tracing::trace_span!(target: telemetry::TARGET, "request",
        otel.name = format!("{method} {route}"), otel.kind = "server",
        http.request.method = method.as_str(), http.route = route,
        http.response.status_code = tracing::field::Empty);
    telemetry::adopt(&span, req.headers());
    let handled = tokio::time::timeout(idp.config.request_timeout, limit_body(req, next, surface));
    let mut res = match handled.instrument(span.clone()).await {
        Ok(res) => res,
        Err(_) => surface.error(StatusCode::GATEWAY_TIMEOUT, "The request took too long"),
    };
    let status = res.status().as_u16();
    span.record("http.response.status_code", status);
    let elapsed = start.elapsed();
    record(route, status, elapsed);
    tracing::info!(target: "gatehouse::http", request_id = request_id.as_str(), method = method.as_str(), route, status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request");
    if let Ok(v) = HeaderValue::from_maybe_shared(Bytes::from(request_id)) {
        res.headers_mut().insert(REQUEST_ID.clone(), v); // a static name: cloned without copying
    }
    res
}

static REQUEST_ID: HeaderName = HeaderName::from_static("x-request-id");

/// Which API a path belongs to, for the body limit and the shape of errors found here.
#[derive(Clone, Copy)]
enum Surface {
    /// The Management API's users-import upload, with its larger limit.
    UsersImport,
    Management,
    Authentication,
}

impl Surface {
    fn of(path: &str) -> Self {
        if path == "/api/v2/jobs/users-imports" {
            Surface::UsersImport
        } else if path == "/api/v2" || path.starts_with("/api/v2/") {
            Surface::Management
        } else {
            Surface::Authentication
        }
    }

    fn body_limit(self) -> usize {
        match self {
            Surface::UsersImport => crate::management::jobs::UPLOAD_LIMIT,
            Surface::Management | Surface::Authentication => BODY_LIMIT,
        }
    }

    fn too_large(self) -> Response {
        match self {
            Surface::UsersImport => crate::management::jobs::too_large().into_response(),
            Surface::Management => self.error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("Payload content length greater than maximum allowed: {BODY_LIMIT}."),
            ),
            Surface::Authentication => self.error(StatusCode::PAYLOAD_TOO_LARGE, "Request body too large"),
        }
    }

    /// An error in this API's own shape.
    fn error(self, status: StatusCode, message: &str) -> Response {
        match self {
            Surface::UsersImport | Surface::Management => {
                crate::management::ApiError::new(status, message, None).into_response()
            }
            Surface::Authentication => {
                let code =
                    if status == StatusCode::GATEWAY_TIMEOUT { "temporarily_unavailable" } else { "invalid_request" };
                super::errors::oauth(status, code, message)
            }
        }
    }
}

/// Refuses a body over the limit before any handler reads it: a declared one at once, one
/// without a length (chunked, or HTTP/2 without `content-length`) once more than the limit
/// has arrived, so every over-limit body gets the same JSON 413 rather than an extractor's
/// plain-text one. Handlers and extractors never see more than the limit.
async fn limit_body(req: Request, next: Next, surface: Surface) -> Response {
    let limit = surface.body_limit();
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return surface.too_large();
    }
    let body = req.body();
    if body.is_end_stream() || body.size_hint().exact().is_some_and(|n| n <= limit as u64) {
        return next.run(req).await;
    }
    // No length given: read at most `limit` bytes here, then hand the handler the bytes read.
    let (parts, body) = req.into_parts();
    match read_capped(body, limit).await {
        Ok(Some(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(None) => surface.too_large(),
        Err(e) => {
            tracing::debug!(error = %e, "request body unreadable");
            surface.error(StatusCode::BAD_REQUEST, "Failed to read the request body")
        }
    }
}

/// The body's bytes, or `None` as soon as there are more than `limit` of them.
async fn read_capped(mut body: Body, limit: usize) -> Result<Option<Bytes>, axum::Error> {
    let mut buf = Vec::new();
    while let Some(frame) = std::future::poll_fn(|cx| Pin::new(&mut body).poll_frame(cx)).await {
        let Ok(data) = frame?.into_data() else { continue }; // trailers
        if buf.len() + data.len() > limit {
            return Ok(None);
        }
        buf.extend_from_slice(&data);
    }
    Ok(Some(buf.into()))
}

/// A request id: a random prefix per process and a counter, unique across nodes without asking
/// the system's random generator on every request (ids are labels, not secrets).
fn next_request_id() -> String {
    static PREFIX: OnceLock<String> = OnceLock::new();
    static COUNTER: AtomicU64 = AtomicU64::new(0);
    let prefix = PREFIX.get_or_init(|| crate::util::random_hex(8));
    format!("{prefix}-{:x}", COUNTER.fetch_add(1, Ordering::Relaxed))
}

/// Counts the request and its latency. The handles are registered once per route and status
/// and kept: building them from their labels hashed and copied the labels on every request.
fn record(route: &str, status: u16, elapsed: Duration) {
    static HANDLES: OnceLock<RwLock<HashMap<String, RouteMetrics>>> = OnceLock::new();
    let handles = HANDLES.get_or_init(RwLock::default);
    let read = handles.read().unwrap_or_else(|e| e.into_inner());
    if let Some(m) = read.get(route)
        && let Some((_, requests)) = m.requests.iter().find(|(s, _)| *s == status)
    {
        requests.increment(1);
        m.latency.record(elapsed.as_secs_f64());
        return;
    }
    drop(read);
    let mut write = handles.write().unwrap_or_else(|e| e.into_inner());
    let m = write.entry(route.to_owned()).or_insert_with(|| RouteMetrics {
        latency: metrics::histogram!("gatehouse_http_request_duration_seconds", "route" => route.to_owned()),
        requests: Vec::new(),
    });
    if !m.requests.iter().any(|(s, _)| *s == status) {
        let counter = metrics::counter!("gatehouse_http_requests_total", "route" => route.to_owned(), "status" => status.to_string());
        m.requests.push((status, counter));
    }
    drop(write);
    record(route, status, elapsed);
}

/// One route's metric handles (routes are the router's patterns, so there are few).
struct RouteMetrics {
    latency: metrics::Histogram,
    requests: Vec<(u16, metrics::Counter)>,
}
