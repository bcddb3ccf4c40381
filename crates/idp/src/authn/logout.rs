//! `GET /v2/logout` and `GET|POST /oidc/logout` ([`flow::logout`]). A return URL on no
//! allow-list is an error page, never a redirect.

use crate::actions::post_login::RequestInfo;
use crate::flow::logout;
use crate::http::client::request_info;
use crate::http::params::single_params;
use crate::http::{cookies, errors, reply};
use crate::{AppState, Error, Result, pages};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::{Html, IntoResponse, Response};
use std::net::SocketAddr;

pub async fn v2_logout(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let origin = request_info(&idp.config, &headers, Some(peer), "GET");
    let run = async {
        let q = single_params(raw.as_deref().unwrap_or("")).map_err(Error::bad_page)?;
        let client_id = q.get("client_id").map(String::as_str);
        let target = logout::return_url(&idp, &origin, client_id, q.get("returnTo").map(String::as_str), None).await?;
        end_session(&idp, &origin, &headers, client_id, target).await
    };
    run.await.unwrap_or_else(errors::page)
}

pub async fn oidc_logout_get(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let origin = request_info(&idp.config, &headers, Some(peer), "GET");
    oidc_logout(idp, origin, headers, raw.unwrap_or_default()).await
}

pub async fn oidc_logout_post(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let origin = request_info(&idp.config, &headers, Some(peer), "POST");
    oidc_logout(idp, origin, headers, body).await
}

async fn oidc_logout(idp: AppState, origin: RequestInfo, headers: HeaderMap, raw: String) -> Response {
    let run = async {
        let q = single_params(&raw).map_err(Error::bad_page)?;
        let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let mut client_id = get("client_id").map(str::to_owned);
        if let Some(hint) = get("id_token_hint") {
            client_id = logout::hinted_client(&idp, hint, client_id)?;
        }
        let target =
            logout::return_url(&idp, &origin, client_id.as_deref(), get("post_logout_redirect_uri"), get("state"))
                .await?;
        end_session(&idp, &origin, &headers, client_id.as_deref(), target).await
    };
    run.await.unwrap_or_else(errors::page)
}

async fn end_session(
    idp: &AppState,
    origin: &RequestInfo,
    headers: &HeaderMap,
    client_id: Option<&str>,
    target: Option<String>,
) -> Result<Response> {
    logout::end_session(idp, origin, cookies::get(headers, cookies::SESSION), client_id).await?;
    let mut res = match target {
        Some(t) => reply::found(&t),
        None => Html(pages::message_page("Logged out", "You have been logged out.")).into_response(),
    };
    cookies::append(&mut res, &cookies::set(cookies::SESSION, "", "/", 0, idp.config.secure_cookies()));
    Ok(res)
}
