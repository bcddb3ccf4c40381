//! The router, and what operators need around it: health and readiness, Prometheus metrics,
//! one log line per request (with a request id; never the query string or body, which carry
//! codes, tokens and passwords), body-size and time limits.

use crate::{AppState, authorize, dbconnections, discovery, login, logout, token, userinfo};
use axum::Router;
use axum::extract::{DefaultBodyLimit, MatchedPath, Request, State};
use axum::http::{HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};
use serde_json::json;
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// Requests to these endpoints are small; anything larger is refused before parsing.
const BODY_LIMIT: usize = 64 * 1024;

pub fn routes(idp: AppState) -> Router {
    Router::new()
        .route("/authorize", get(authorize::authorize))
        .route("/u/login", get(login::show).post(login::submit))
        .route("/u/signup", get(login::signup_show).post(login::signup_submit))
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

fn prometheus() -> Option<&'static PrometheusHandle> {
    static HANDLE: OnceLock<Option<PrometheusHandle>> = OnceLock::new();
    HANDLE.get_or_init(|| PrometheusBuilder::new().install_recorder().ok()).as_ref()
}

async fn metrics_text() -> Response {
    match prometheus() {
        Some(h) => h.render().into_response(),
        None => (StatusCode::SERVICE_UNAVAILABLE, "metrics recorder unavailable").into_response(),
    }
}

/// Refuses a declared body over the limit before any handler reads it, in the OAuth error
/// shape (bodies without a length still stop at the extractor's limit).
async fn limit_body(req: Request, next: Next) -> Response {
    let declared = req
        .headers()
        .get(axum::http::header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<usize>().ok());
    // The users-import upload is the one large body, answered in the Management API's shape.
    if req.uri().path() == "/api/v2/jobs/users-imports" {
        if declared.is_some_and(|n| n > crate::management::jobs::UPLOAD_LIMIT) {
            return crate::management::jobs::too_large().into_response();
        }
        return next.run(req).await;
    }
    if declared.is_some_and(|n| n > BODY_LIMIT) {
        return crate::Error::oauth(StatusCode::PAYLOAD_TOO_LARGE, "invalid_request", "Request body too large")
            .into_response();
    }
    next.run(req).await
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
        .unwrap_or_else(|| crate::util::random_hex(16));
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
