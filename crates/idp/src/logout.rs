//! `GET /v2/logout` and `GET|POST /oidc/logout`: end the SSO session, then return to a URL
//! only when it is on the right allow-list (the application's when a client is named, else
//! the tenant's). A URL on no list is an error page, never a redirect.

use crate::authorize::{SESSION_COOKIE, found, session_key, single_params};
use crate::jwt;
use crate::pages;
use crate::urls::match_logout;
use crate::util::{cookie, set_cookie};
use crate::{AppState, Error, Result};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;

pub async fn v2_logout(State(idp): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let run = async {
        let q = single_params(raw.as_deref().unwrap_or(""))
            .map_err(|e| Error::page(StatusCode::BAD_REQUEST, "Bad request", e))?;
        let target =
            return_url(&idp, q.get("client_id").map(String::as_str), q.get("returnTo").map(String::as_str), None)
                .await?;
        end_session(&idp, &headers, target).await
    };
    run.await.unwrap_or_else(|e| e.into_page().into_response())
}

pub async fn oidc_logout_get(State(idp): State<AppState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    oidc_logout(idp, headers, raw.unwrap_or_default()).await
}

pub async fn oidc_logout_post(State(idp): State<AppState>, headers: HeaderMap, body: String) -> Response {
    oidc_logout(idp, headers, body).await
}

async fn oidc_logout(idp: AppState, headers: HeaderMap, raw: String) -> Response {
    let run = async {
        let q: HashMap<String, String> =
            single_params(&raw).map_err(|e| Error::page(StatusCode::BAD_REQUEST, "Bad request", e))?;
        let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
        let mut client_id = get("client_id").map(str::to_owned);
        if let Some(hint) = get("id_token_hint") {
            // An expired hint still names its audience; only the signature matters here.
            let claims = jwt::verify(&idp.keys.current(), hint).map_err(|_| {
                Error::page(StatusCode::BAD_REQUEST, "Invalid request", "id_token_hint is not a valid ID token")
            })?;
            let aud = claims.get("aud").and_then(Value::as_str).map(str::to_owned);
            if client_id.is_some() && client_id != aud {
                return Err(Error::page(
                    StatusCode::BAD_REQUEST,
                    "Invalid request",
                    "client_id does not match the id_token_hint audience",
                ));
            }
            client_id = aud;
        }
        let target = return_url(&idp, client_id.as_deref(), get("post_logout_redirect_uri"), get("state")).await?;
        end_session(&idp, &headers, target).await
    };
    run.await.unwrap_or_else(|e| e.into_page().into_response())
}

/// Where to send the browser after logout, checked against the right allow-list.
async fn return_url(
    idp: &AppState,
    client_id: Option<&str>,
    return_to: Option<&str>,
    state: Option<&str>,
) -> Result<Option<String>> {
    let return_to = return_to.filter(|r| !r.is_empty());
    let (allowed, whose) = match client_id.filter(|c| !c.is_empty()) {
        Some(id) => {
            let client = idp
                .store
                .client(id)
                .await?
                .ok_or_else(|| {
                    Error::page(StatusCode::BAD_REQUEST, "Invalid request", format!("Unknown client: {id}"))
                })?
                .client;
            if return_to.is_none() {
                return Ok(client.allowed_logout_urls.first().filter(|u| !u.contains('*')).cloned());
            }
            (client.allowed_logout_urls, "the application's")
        }
        None => (idp.store.tenant_settings().await?.allowed_logout_urls, "the tenant's"),
    };
    let Some(target) = return_to else {
        return Ok(None);
    };
    let Some(matched) = match_logout(&allowed, target) else {
        return Err(Error::page(
            StatusCode::BAD_REQUEST,
            "Invalid request",
            format!(
                "The \"returnTo\" querystring parameter \"{target}\" is not defined as a valid URL in {whose} \"Allowed Logout URLs\"."
            ),
        ));
    };
    // The browser goes to the URL that was checked (normalised), with only `state` added.
    let Some(s) = state else {
        return Ok(Some(matched));
    };
    let mut url = url::Url::parse(&matched).map_err(Error::internal)?;
    url.query_pairs_mut().append_pair("state", s);
    Ok(Some(url.to_string()))
}

async fn end_session(idp: &AppState, headers: &HeaderMap, target: Option<String>) -> Result<Response> {
    if let Some(raw) = cookie(headers, SESSION_COOKIE) {
        idp.store.delete_session(&session_key(raw)).await?;
    }
    let mut res = match target {
        Some(t) => found(&t),
        None => Html(pages::message_page("Logged out", "You have been logged out.")).into_response(),
    };
    let clear = set_cookie(SESSION_COOKIE, "", "/", 0, idp.config.secure_cookies());
    res.headers_mut().append(header::SET_COOKIE, HeaderValue::from_str(&clear).map_err(Error::internal)?);
    Ok(res)
}
