//! `GET /authorize` (spec 2.1): records a login state for 600 s and sends the browser to
//! Auth0's `/authorize`.

use super::{absolute_redirect_url, params, resolve_connection, select_client};
use crate::AppState;
use crate::error::{Error, Result};
use crate::session::LoginState;
use crate::util::random_token;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// The longest caller-supplied state kept.
const MAX_STATE: usize = 512;

/// Starts a browser login.
#[utoipa::path(
    get,
    path = "/authorize",
    tag = "authentication",
    params(
        ("client-type" = Option<String>, Header, description = "Client type; defaults to defaultClient"),
        ("redirect" = Option<String>, Query, description = "Where to go after the login (also `redirectUri`)"),
        ("state" = Option<String>, Query, description = "Required when the client sets authorizeStateRequired; ignored otherwise"),
        ("connection" = Option<String>, Query, description = "Auth0 connection"),
        ("prompt" = Option<String>, Query, description = "Passed to Auth0"),
        ("action" = Option<String>, Query, description = "Passed to Auth0"),
    ),
    responses(
        (status = 302, description = "Redirect to Auth0's /authorize"),
        (status = 400, description = "Missing state, or an unsupported connection", body = crate::error::MiaError),
        (status = 401, description = "Unknown client type", body = crate::error::MiaError),
        (status = 503, description = "Session store unavailable", body = crate::error::MiaError),
    )
)]
pub async fn authorize(State(app): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response> {
    let client = select_client(&app, &headers)?;
    let q = params(query.as_deref(), &headers, &[])?;
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let state = if client.authorize_state_required {
        let s = get("state").ok_or_else(|| Error::BadRequest("state is required".into()))?;
        if s.len() > MAX_STATE {
            return Err(Error::BadRequest("state is too long".into()));
        }
        s.to_string()
    } else {
        // A caller's state is ignored: the service makes its own (spec 1.3).
        random_token(16)
    };
    let connection = resolve_connection(client, get("connection"))?;
    let redirect_uri = absolute_redirect_url(&app, client, &headers);
    let nonce = random_token(16);
    let data = LoginState {
        client_type: client.name.clone(),
        redirect: get("redirect").or_else(|| get("redirectUri")).map(str::to_owned),
        connection: connection.clone(),
        redirect_uri: redirect_uri.clone(),
        nonce: nonce.clone(),
        created_at: app.clock.now_ms(),
    };
    app.sessions.put_state(&state, &data).await?;

    let mut url = url::Url::parse(&format!("{}/authorize", client.auth0_url))
        .map_err(|e| Error::Internal(format!("auth0Url: {e}")))?;
    {
        let mut qp = url.query_pairs_mut();
        qp.append_pair("response_type", "code")
            .append_pair("client_id", &client.client_id)
            .append_pair("redirect_uri", &redirect_uri)
            .append_pair("scope", &client.auth0_scope())
            .append_pair("state", &state)
            .append_pair("nonce", &nonce);
        if let Some(aud) = &client.audience {
            qp.append_pair("audience", aud);
        }
        if let Some(c) = &connection {
            qp.append_pair("connection", c);
        }
        for k in ["prompt", "action"] {
            if let Some(v) = get(k) {
                qp.append_pair(k, v);
            }
        }
    }
    Ok((StatusCode::FOUND, [(header::LOCATION, url.to_string())]).into_response())
}
