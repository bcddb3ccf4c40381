//! The router, and what operators need around it: health and readiness, Prometheus metrics,
//! one log line per request (with a request id; never the query string or body, which carry
//! codes, tokens and passwords), body-size and time limits.

use crate::{AppState, authorize, dbconnections, discovery, login, logout, social, token, userinfo};
use axum::Router;
use axum::body::{Body, Bytes, HttpBody};
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::pin::Pin;
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

/// Requests to these endpoints are small; anything larger is refused before parsing.
const BODY_LIMIT: usize = 64 * 1024;

pub fn routes(idp: AppState) -> Router {
    Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/u/login", get(login::show).post(login::submit))
        .route("/u/signup", get(login::signup_show).post(login::signup_submit))
        .route("/login/callback", get(social::callback))
        .route("/oauth/token", post(token::token))
        .route("/oauth/revoke", post(token::revoke::revoke))
        .route("/userinfo", get(userinfo::userinfo).post(userinfo::userinfo))
        .route("/v2/logout", get(logout::v2_logout))
        .route("/oidc/logout", get(logout::oidc_logout_get).post(logout::oidc_logout_post))
        .route("/dbconnections/signup", post(dbconnections::signup))
        .route("/dbconnections/change_password", post(dbconnections::change_password))
        .route("/lo/reset", get(dbconnections::reset_page).post(dbconnections::reset_submit))
        .route("/.well-known/openid-configuration", get(discovery::openid_configuration))
        .route("/.well-known/jwks.json", get(discovery::jwks))
        .nest("/api/v2", crate::management::routes(idp.clone()))
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics_text))
        .fallback(not_found)
        .layer(DefaultBodyLimit::max(BODY_LIMIT))
        .layer(middleware::from_fn(limit_body))
        .layer(middleware::from_fn(observe))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            Duration::from_secs(30),
        ))
        .with_state(idp)
}

async fn not_found() -> Response {
    (StatusCode::NOT_FOUND, axum::Json(json!({ "error": "not_found", "error_description": "Not Found" })))
        .into_response()
}

async fn readyz(State(idp): State<AppState>) -> Response {
    match idp.store.ping().await {
        Ok(()) => "ready".into_response(),
        Err(e) => {
            tracing::warn!(error = %e, "store unreachable");
            (StatusCode::SERVICE_UNAVAILABLE, "store unreachable").into_response()
        }
    }
}

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

async fn metrics_text() -> Response {
    match prometheus() {
        Some(h) => h.render().into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable").into_response(),
    }
}

/// Refuses a body over the limit before any handler reads it: a declared one at once, one
/// without a length (chunked, or HTTP/2 without `content-length`) once more than the limit
/// has arrived, so every over-limit body gets the same JSON 413 rather than an extractor's
/// plain-text one. The Management API answers in its own shape; its users-import upload has a
/// larger limit.
async fn limit_body(req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let (limit, too_large): (usize, fn() -> Response) = if path == "/api/v2/jobs/users-imports" {
        (crate::management::jobs::UPLOAD_LIMIT, || crate::management::jobs::too_large().into_response())
    } else if path == "/api/v2" || path.starts_with("/api/v2/") {
        (BODY_LIMIT, || {
            crate::management::ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                format!("Payload content length greater than maximum allowed: {BODY_LIMIT}."),
                None,
            )
            .into_response()
        })
    } else {
        (BODY_LIMIT, || {
            crate::Error::oauth(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", "Request body too large")
                .into_response()
        })
    };
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return too_large();
    }
    let body = req.body();
    if body.is_end_stream() || body.size_hint().exact().is_some_and(|n| n <= limit as u64) {
        return next.run(req).await;
    }
    // No length given: read at most `limit` bytes here, then hand the handler the bytes read.
    let (parts, body) = req.into_parts();
    match read_capped(body, limit).await {
        Ok(Some(bytes)) => next.run(Request::from_parts(parts, Body::from(bytes))).await,
        Ok(None) => too_large(),
        Err(e) => {
            tracing::debug!(error = %e, "request body unreadable");
            (StatusCode::BAD_REQUEST, "Failed to read the request body").into_response()
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

async fn observe(req: Request, next: Next) -> Response {
    let _ = prometheus();
    let start = Instant::now();
    let route =
        req.extensions().get::<MatchedPath>().map(|m| m.as_str().to_owned()).unwrap_or_else(|| "unmatched".into());
    let method = req.method().clone();
    let request_id = req
        .headers()
        .get("x-request-id")
        .and_then(|v| v.to_str().ok())
        .filter(|v| v.len() <= 64 && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
        .map(str::to_owned)
        .unwrap_or_else(next_request_id);
    let mut res = next.run(req).await;
    let status = res.status().as_u16();
    let elapsed = start.elapsed();
    metrics::counter!("gatehouse_http_requests_total", "route" => route.clone(), "status" => status.to_string())
        .increment(1);
    metrics::histogram!("gatehouse_http_request_duration_seconds", "route" => route.clone())
        .record(elapsed.as_secs_f64());
    tracing::info!(target: "gatehouse::http", request_id = %request_id, method = %method, route = %route, status, latency_ms = elapsed.as_secs_f64() * 1000.0, "request");
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert("x-request-id", v);
    }
    res
}
