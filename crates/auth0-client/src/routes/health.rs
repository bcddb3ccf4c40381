//! `/-/healthz` (alive), `/-/ready` (the session store answers PING; not ready while shutting
//! down) and `/-/check-up` (the session store, and MongoDB when the user sync is on).

use crate::AppState;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::sync::atomic::Ordering;
use std::time::Duration;

#[derive(serde::Serialize, utoipa::ToSchema)]
pub struct Health {
    /// `OK` or `KO`.
    pub status: &'static str,
    pub name: &'static str,
    pub version: String,
}

fn answer(app: &crate::App, ok: bool) -> Response {
    let body = Health {
        status: if ok { "OK" } else { "KO" },
        name: "auth0-client",
        version: app.config.env.service_version.clone(),
    };
    let status = if ok { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE };
    (status, [(header::CONTENT_TYPE, "application/json")], serde_json::to_vec(&body).unwrap_or_default())
        .into_response()
}

async fn store_answers(app: &crate::App) -> bool {
    match tokio::time::timeout(Duration::from_secs(3), app.sessions.store().ping()).await {
        Ok(Ok(())) => true,
        Ok(Err(e)) => {
            tracing::warn!(error = %e, "session store check failed");
            false
        }
        Err(_) => false,
    }
}

/// Liveness: the process answers.
#[utoipa::path(get, path = "/-/healthz", tag = "status", responses((status = 200, body = Health)))]
pub async fn healthz(State(app): State<AppState>) -> Response {
    answer(&app, true)
}

/// Readiness: the session store answers and the service is not shutting down.
#[utoipa::path(get, path = "/-/ready", tag = "status", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn ready(State(app): State<AppState>) -> Response {
    let ok = !app.shutting_down.load(Ordering::Relaxed) && store_answers(&app).await;
    answer(&app, ok)
}

/// Dependencies: the session store answers, and MongoDB too when the user sync is on (spec
/// 2.9). Readiness leaves MongoDB out: the sync is best-effort, so a down MongoDB must not take
/// the service out of its load balancer.
#[utoipa::path(get, path = "/-/check-up", tag = "status", responses((status = 200, body = Health), (status = 503, body = Health)))]
pub async fn check_up(State(app): State<AppState>) -> Response {
    let (store, mongo) = tokio::join!(store_answers(&app), app.user_sync.ping());
    if let Err(e) = &mongo {
        tracing::warn!(error = %e, "MongoDB check failed");
    }
    answer(&app, store && mongo.is_ok())
}
