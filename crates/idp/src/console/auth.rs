//! Signing in to the console: the OIDC code flow with PKCE against this idp's `/authorize`,
//! the code exchanged by the same grant `/oauth/token` runs, the access token kept in the sealed
//! session cookie. Only an administrator's token opens a session: a tenant user who signs in
//! through the console's application (were it enabled on their connection) is refused.

use super::{Admin, Form, SESSION_COOKIE, redirect, session_cookie, strict_cookie};
use crate::AppState;
use crate::grants::Params;
use crate::util::{b64url, ct_eq, random_token, sha256};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{ConnectInfo, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::net::SocketAddr;

pub fn routes() -> Router<AppState> {
    Router::new().route("/login", get(login)).route("/callback", get(callback)).route("/logout", post(logout))
}

const TX_COOKIE: &str = "gatehouse_console_tx";
const TX_CONTEXT: &str = "console-login";
const TX_TTL_MS: i64 = 10 * 60 * 1000;

/// A sign-in under way: what the callback must see again.
#[derive(Serialize, Deserialize)]
struct Pending {
    state: String,
    verifier: String,
    e: i64,
}

/// An expired or invalid session: the session cookie goes, and the browser to the sign-in.
pub fn expired() -> Response {
    let mut res = redirect("/console/login");
    crate::http::cookies::append(&mut res, &strict_cookie(SESSION_COOKIE, "", 0, false));
    res
}

async fn login(State(idp): State<AppState>) -> Response {
    let pending = Pending { state: random_token(), verifier: random_token(), e: idp.now() + TX_TTL_MS };
    let Ok(sealed) =
        serde_json::to_string(&pending).map_err(crate::Error::internal).and_then(|j| idp.secrets.seal(TX_CONTEXT, &j))
    else {
        return (StatusCode::INTERNAL_SERVER_ERROR, "The sign-in could not start").into_response();
    };
    let mut url = match url::Url::parse(&idp.config.url("authorize")) {
        Ok(u) => u,
        Err(_) => return (StatusCode::INTERNAL_SERVER_ERROR, "The sign-in could not start").into_response(),
    };
    url.query_pairs_mut()
        .append_pair("client_id", crate::admins::CONSOLE_CLIENT_ID)
        .append_pair("response_type", "code")
        .append_pair("redirect_uri", &crate::admins::callback_url(&idp))
        .append_pair("scope", "openid profile email")
        .append_pair("audience", &idp.config.management_audience())
        .append_pair("state", &pending.state)
        .append_pair("code_challenge", &b64url(&sha256(pending.verifier.as_bytes())))
        .append_pair("code_challenge_method", "S256");
    let mut res = redirect(url.as_str());
    // Lax: the way back is a redirect from the login page, which Strict would also allow, but
    // a sign-in started from a bookmark must not fail on a browser's stricter reading.
    let secure = if idp.config.secure_cookies() { "; Secure" } else { "" };
    let cookie = format!("{TX_COOKIE}={sealed}; Path=/console; Max-Age=600; HttpOnly; SameSite=Lax{secure}");
    crate::http::cookies::append(&mut res, &cookie);
    res
}

fn refused(message: &str) -> Response {
    let body = super::html::bare(
        "Sign-in refused",
        &format!(
            "<p class=\"error\" role=\"alert\" id=\"error-message\">{}</p><p><a href=\"/console/login\">Sign in again</a></p>",
            crate::util::html_escape(message)
        ),
    );
    let mut res = (StatusCode::FORBIDDEN, Html(body)).into_response();
    crate::http::cookies::append(&mut res, &strict_cookie(TX_COOKIE, "", 0, false));
    res
}

async fn callback(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let pending: Option<Pending> = crate::http::cookies::get(&headers, TX_COOKIE)
        .and_then(|sealed| idp.secrets.open(TX_CONTEXT, sealed).ok())
        .and_then(|json| serde_json::from_str(&json).ok())
        .filter(|p: &Pending| p.e > idp.now());
    let Some(pending) = pending else { return refused("The sign-in expired or was started elsewhere.") };
    if !q.get("state").is_some_and(|s| ct_eq(s.as_bytes(), pending.state.as_bytes())) {
        return refused("The sign-in expired or was started elsewhere.");
    }
    if let Some(error) = q.get("error") {
        let description = q.get("error_description").map_or(error.as_str(), String::as_str);
        return refused(description);
    }
    let Some(code) = q.get("code") else { return refused("The sign-in did not return a code.") };
    let params = Params(HashMap::from([
        ("grant_type".to_string(), "authorization_code".to_string()),
        ("client_id".to_string(), crate::admins::CONSOLE_CLIENT_ID.to_string()),
        ("code".to_string(), code.clone()),
        ("redirect_uri".to_string(), crate::admins::callback_url(&idp)),
        ("code_verifier".to_string(), pending.verifier),
    ]));
    let request = crate::http::client::request_info(&idp.config, &headers, Some(peer), "POST");
    let tokens = match crate::grants::exchange::exchange(&idp, None, &params, request).await {
        Ok(t) => t,
        Err(e) => return refused(&e.description()),
    };
    let claims = match crate::tokens::verify::verify_access_token(&idp, &tokens.access_token).await {
        Ok(c) => c,
        Err(_) => return refused("The sign-in returned an unusable token."),
    };
    if crate::admins::role_of_token(&idp, &claims).await.ok().flatten().is_none() {
        return refused("This account is not a console administrator.");
    }
    let sub = claims.get("sub").and_then(serde_json::Value::as_str).unwrap_or_default();
    let email = match idp.store.user(sub).await {
        Ok(Some(u)) => u.user.email.unwrap_or_default(),
        _ => String::new(),
    };
    let Ok(cookie) = session_cookie(&idp, &tokens.access_token, &email, tokens.expires_in) else {
        return refused("The session could not be created.");
    };
    let mut res = redirect("/console/applications");
    crate::http::cookies::append(&mut res, &cookie);
    crate::http::cookies::append(&mut res, &strict_cookie(TX_COOKIE, "", 0, false));
    res
}

/// Signs out of the console and, through the idp's logout, of the SSO session.
async fn logout(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    if let Err(refusal) = Form::checked(&admin, &body) {
        return refusal;
    }
    let mut to = url::Url::parse(&idp.config.url("v2/logout")).expect("the issuer is a URL");
    to.query_pairs_mut()
        .append_pair("client_id", crate::admins::CONSOLE_CLIENT_ID)
        .append_pair("returnTo", &idp.config.url("console"));
    let mut res = redirect(to.as_str());
    crate::http::cookies::append(&mut res, &strict_cookie(SESSION_COOKIE, "", 0, idp.config.secure_cookies()));
    res
}
