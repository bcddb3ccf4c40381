//! `GET /authorize`, and `POST` with a form body (OIDC Core 3.1.2.1): the parameters read,
//! then [`flow::authorize`] decides where the browser goes.

use crate::http::client::request_info;
use crate::http::params::{media_type, single_params};
use crate::http::{cookies, errors, reply};
use crate::{AppState, flow};
use axum::body::Bytes;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use std::net::SocketAddr;

const MAX_QUERY: usize = 16 * 1024;

pub async fn get(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    if raw.as_ref().is_some_and(|r| r.len() > MAX_QUERY) {
        return errors::page_with(StatusCode::URI_TOO_LONG, "Bad request", "The request is too large.");
    }
    run(&idp, &headers, peer, "GET", &raw.unwrap_or_default()).await
}

/// The same request as a form body. Only the body counts (the query is not merged in), so
/// no parameter can come from two places.
pub async fn post(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if media_type(&headers) != "application/x-www-form-urlencoded" {
        return errors::page_with(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "Bad request",
            "An authorization request sent with POST must be a form (application/x-www-form-urlencoded).",
        );
    }
    if body.len() > MAX_QUERY {
        return errors::page_with(StatusCode::PAYLOAD_TOO_LARGE, "Bad request", "The request is too large.");
    }
    let Ok(form) = std::str::from_utf8(&body) else {
        return errors::page_with(StatusCode::BAD_REQUEST, "Bad request", "The form is not valid UTF-8.");
    };
    run(&idp, &headers, peer, "POST", form).await
}

async fn run(idp: &AppState, headers: &HeaderMap, peer: SocketAddr, method: &'static str, raw: &str) -> Response {
    let params = match single_params(raw) {
        Ok(p) => p,
        Err(e) => return errors::page_with(StatusCode::BAD_REQUEST, "Bad request", &e),
    };
    let request = request_info(&idp.config, headers, Some(peer), method);
    match flow::authorize(idp, &params, cookies::get(headers, cookies::SESSION), &request).await {
        Ok(step) => reply::next(&idp.config, step),
        Err(e) => errors::page(e),
    }
}
