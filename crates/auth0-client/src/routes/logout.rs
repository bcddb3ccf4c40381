//! `GET /logout` (spec 2.4): deletes the session, expires the cookie and sends the browser to
//! Auth0's `/v2/logout`, with `returnTo` built from the public URL and `redirect`.

use super::{credential, public_base, select_client};
use crate::AppState;
use crate::error::Result;
use crate::session::SessionKey;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

const EXPIRED_COOKIE: &str = "sid=; Path=/; Expires=Thu, 01 Jan 1970 00:00:00 GMT; HttpOnly; Secure";

/// Ends the session and logs out of Auth0.
#[utoipa::path(
    get,
    path = "/logout",
    tag = "authentication",
    params(
        ("client-type" = Option<String>, Header, description = "Client type; defaults to defaultClient"),
        ("redirect" = Option<String>, Query, description = "Path (or absolute URL) to land on afterwards; may carry its own query"),
    ),
    responses(
        (status = 302, description = "Redirect to Auth0's /v2/logout; the sid cookie is expired"),
        (status = 401, description = "Unknown client type", body = crate::error::MiaError),
    )
)]
pub async fn logout(State(app): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response> {
    let mut client = select_client(&app, &headers)?;
    if let Some(cred) = credential(&headers) {
        let key = SessionKey::of(cred.value());
        // Logging out never fails for the user (spec 2.4): with the session store down, the
        // cookie is still expired and Auth0's session ended; the stored session is left to
        // expire, unusable without the cookie.
        match app.sessions.get(&key).await {
            Ok(Some(session)) => {
                if let Err(e) = app.sessions.delete(&key, &session.user_id).await {
                    tracing::warn!(error = %e, "logout: the session could not be deleted");
                }
                // The session's client is the one the user logged in with (spec A12).
                if let Some(c) = app.config.service.client(&session.client_type) {
                    client = c;
                }
            }
            Ok(None) => {}
            Err(e) => tracing::warn!(error = %e, "logout: the session store is unavailable"),
        }
    }
    let redirect = url::form_urlencoded::parse(query.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "redirect")
        .map(|(_, v)| v.into_owned())
        .filter(|v| !v.is_empty());
    let mut url = url::Url::parse(&format!("{}/v2/logout", client.auth0_url))
        .map_err(|e| crate::error::Error::Internal(format!("auth0Url: {e}")))?;
    {
        let mut q = url.query_pairs_mut();
        if let Some(r) = redirect {
            let return_to = if r.starts_with("http://") || r.starts_with("https://") {
                r // Auth0's allow-list guards against open redirects
            } else if r.starts_with('/') {
                format!("{}{r}", public_base(&app, &headers))
            } else {
                format!("{}/{r}", public_base(&app, &headers))
            };
            q.append_pair("returnTo", &return_to);
        }
        if app.config.env.auth0_logout_client_id_enabled {
            q.append_pair("client_id", &client.client_id);
        }
    }
    if url.query() == Some("") {
        url.set_query(None);
    }
    let mut res = (StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response();
    res.headers_mut().insert(header::SET_COOKIE, header::HeaderValue::from_static(EXPIRED_COOKIE));
    Ok(res)
}
