//! The login site (Mia's `oauth-login-site` ≥ 8 with `authorizeStateRequired`), rendered on
//! the server instead of in the browser:
//!
//! - `GET /web-login?redirect=/path` makes a random `state`, remembers it in a cookie named
//!   after it (the site's tab-scoped storage, scoped to the callback path, 10 minutes, like
//!   auth0-client's state), and sends the browser to `/authorize?state=…&redirect=…`.
//! - `GET /web-login/callback?code=…&state=…` refuses a state this browser did not start (a
//!   login-CSRF guard: auth0-client only knows the state exists, not whose it is), then calls
//!   `/oauth/token?code=…&state=…` as the real site does. For the `website` client auth0-client
//!   answers 200 with the `sid` cookie (and `Location` = the stored `redirect`); the site passes
//!   that cookie on and sends the browser to the redirect.
//!
//! Every failure is a page saying what happened and offering a fresh sign-in, never a 500.
//! An error the idp sends back (`error`, `error_description`) is told with a fixed text per
//! known `error` code ([`error_text`]): anyone can craft a callback URL with any words in it,
//! and the page would show them under the CMS's name (text spoofing: "call this number").
//! The idp's own description (e.g. the reason a post-login action gave `api.access.deny`) is
//! added only when the answer carries the state of a login this browser started (its cookie),
//! which a third party cannot know.

use crate::html::{self, Page};
use crate::{SiteState, redirect, safe_local_path};
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use std::collections::HashMap;

/// How long a started login stays valid (auth0-client keeps its state as long).
const STATE_TTL_SECS: u32 = 600;
const STATE_COOKIE_PREFIX: &str = "web_login_state_";

fn query(raw: Option<&str>) -> HashMap<String, String> {
    let mut out = HashMap::new();
    for (k, v) in url::form_urlencoded::parse(raw.unwrap_or("").as_bytes()) {
        out.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    out
}

/// A state this site made: base64url, short.
fn well_formed_state(s: &str) -> bool {
    !s.is_empty() && s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

fn state_cookie(state: &str, value: &str, max_age: u32) -> String {
    format!("{STATE_COOKIE_PREFIX}{state}={value}; Path=/web-login/callback; Max-Age={max_age}; HttpOnly; SameSite=Lax")
}

fn has_cookie(headers: &HeaderMap, name: &str) -> bool {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .any(|pair| pair.trim().split_once('=').is_some_and(|(n, _)| n.trim() == name))
}

/// `GET /web-login`: starts a login.
pub(crate) async fn start(RawQuery(raw): RawQuery) -> Response {
    let q = query(raw.as_deref());
    let target = q.get("redirect").and_then(|r| safe_local_path(r)).unwrap_or("/");
    let state = auth0_client::util::random_token(16);
    let location = format!(
        "/authorize?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("state", &state)
            .append_pair("redirect", target)
            .finish()
    );
    let mut res = redirect(&location);
    if let Ok(v) = HeaderValue::from_str(&state_cookie(&state, "1", STATE_TTL_SECS)) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// `GET /web-login/callback`: finishes a login.
pub(crate) async fn callback(State(site): State<SiteState>, headers: HeaderMap, RawQuery(raw): RawQuery) -> Response {
    let q = query(raw.as_deref());
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    // The browser got here from the idp: whatever happens, this state is spent.
    let forget = get("state").filter(|s| well_formed_state(s)).map(|s| state_cookie(s, "", 0));

    let result = finish(&site, &headers, get("state"), get("code"), get("error"), get("error_description")).await;
    let mut res = match result {
        Ok(res) => res,
        Err(page) => page.into_response(),
    };
    if let Some(v) = forget.and_then(|c| HeaderValue::from_str(&c).ok()) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

async fn finish(
    site: &SiteState,
    headers: &HeaderMap,
    state: Option<&str>,
    code: Option<&str>,
    error: Option<&str>,
    error_description: Option<&str>,
) -> Result<Response, Page> {
    let state = state.filter(|s| well_formed_state(s));
    let started_here = state.is_some_and(|s| has_cookie(headers, &format!("{STATE_COOKIE_PREFIX}{s}")));
    if let Some(error) = error {
        // e.g. access_denied from a post-login action, or a cancelled login. The description is
        // the query string's free text: shown only for a login this browser started (see above).
        let (status, text) = error_text(error);
        let message = match error_description.filter(|_| started_here) {
            Some(said) => format!("{text} It said: \u{201c}{}\u{201d}", truncate(said, MAX_DESCRIPTION)),
            None => text.to_string(),
        };
        return Err(failure(status, &message));
    }
    let Some(state) = state else {
        return Err(failure(StatusCode::BAD_REQUEST, "The sign-in answer carries no valid state."));
    };
    if !started_here {
        return Err(failure(
            StatusCode::BAD_REQUEST,
            "This sign-in was not started in this browser, or it started more than 10 minutes ago.",
        ));
    }
    let Some(code) = code else {
        return Err(failure(StatusCode::BAD_REQUEST, "The sign-in answer carries no authorization code."));
    };
    let path = format!(
        "/oauth/token?{}",
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("code", code)
            .append_pair("state", state)
            .finish()
    );
    let answer = site.call(Method::POST, &path, None, None).await;
    match answer.status {
        StatusCode::OK => {
            let target = answer
                .headers
                .get(header::LOCATION)
                .and_then(|v| v.to_str().ok())
                .and_then(safe_local_path)
                .unwrap_or("/");
            let mut res = redirect(target);
            for cookie in answer.headers.get_all(header::SET_COOKIE) {
                res.headers_mut().append(header::SET_COOKIE, cookie.clone());
            }
            Ok(res)
        }
        StatusCode::UNAUTHORIZED => Err(failure(
            StatusCode::BAD_REQUEST,
            "This sign-in is unknown to auth0-client: it expired, was already used, or the service restarted.",
        )),
        StatusCode::FORBIDDEN => Err(failure(
            StatusCode::FORBIDDEN,
            &format!("The identity provider refused the sign-in: {}", answer.message()),
        )),
        status => {
            tracing::warn!(status = status.as_u16(), message = %answer.message(), "code exchange failed");
            Err(failure(
                StatusCode::BAD_GATEWAY,
                &format!("auth0-client could not finish the sign-in: {}", answer.message()),
            ))
        }
    }
}

/// The most of the idp's `error_description` a failure page shows.
const MAX_DESCRIPTION: usize = 300;

/// What the page says for an OAuth 2.0 / OpenID Connect `error` code, and its status: fixed
/// texts, so nothing of a crafted URL shows, not even an unknown code.
fn error_text(code: &str) -> (StatusCode, &'static str) {
    match code {
        "access_denied" => (StatusCode::FORBIDDEN, "The identity provider denied this sign-in."),
        "login_required" | "interaction_required" | "consent_required" | "account_selection_required" => {
            (StatusCode::BAD_REQUEST, "The identity provider needs you to sign in again.")
        }
        "server_error" | "temporarily_unavailable" => {
            (StatusCode::BAD_GATEWAY, "The identity provider could not finish the sign-in right now; try again.")
        }
        "invalid_request" | "unauthorized_client" | "unsupported_response_type" | "invalid_scope" => (
            StatusCode::BAD_REQUEST,
            "The identity provider refused the sign-in request: the CMS's application is not set up for it.",
        ),
        _ => (StatusCode::BAD_REQUEST, "The identity provider ended the sign-in with an error."),
    }
}

/// At most `max` characters of `s`, with an ellipsis when cut.
fn truncate(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((cut, _)) => format!("{}\u{2026}", &s[..cut]),
        None => s.to_string(),
    }
}

fn failure(status: StatusCode, message: &str) -> Page {
    Page::new(status, "Sign-in failed").body(format!(
        "<h1>Sign-in failed</h1><p role=\"alert\" id=\"error-message\">{}</p>\
         <p><a class=\"button\" href=\"/web-login\">Sign in again</a></p>",
        html::escape(message)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_and_cookies() {
        assert!(well_formed_state("abc-_09XY"));
        assert!(!well_formed_state(""));
        assert!(!well_formed_state("a=b"));
        assert!(!well_formed_state(&"a".repeat(65)));
        let mut h = HeaderMap::new();
        h.insert(header::COOKIE, HeaderValue::from_static("sid=x; web_login_state_abc=1"));
        assert!(has_cookie(&h, "web_login_state_abc"));
        assert!(!has_cookie(&h, "web_login_state_ab"));
    }

    /// The failure page for a callback URL, with or without the state cookie of `abc`.
    async fn failure_page(query: &str, started_here: bool) -> (StatusCode, String) {
        let cookie = [("cookie", "web_login_state_abc=1")];
        let headers: &[(&str, &str)] = if started_here { &cookie } else { &[] };
        let (status, _, body) =
            crate::gateway::tests::send(Method::GET, &format!("/web-login/callback?{query}"), headers).await;
        (status, body)
    }

    #[tokio::test]
    async fn crafted_error_text_is_not_shown() {
        let spoof = "error_description=Account+locked%3A+call+%2B1-555-0100";
        let (status, body) = failure_page(&format!("error=access_denied&{spoof}"), false).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("The identity provider denied this sign-in."), "{body}");
        assert!(!body.contains("555"), "{body}");
        // Nor with a state this browser did not start.
        let (_, body) = failure_page(&format!("state=xyz&error=access_denied&{spoof}"), true).await;
        assert!(!body.contains("555"), "{body}");
        // An unknown code is not echoed either.
        let (status, body) = failure_page(&format!("error=call_555_0100&{spoof}"), false).await;
        assert_eq!(status, StatusCode::BAD_REQUEST);
        assert!(body.contains("ended the sign-in with an error") && !body.contains("555"), "{body}");
    }

    #[tokio::test]
    async fn the_idps_description_is_shown_for_a_login_started_here() {
        let query = "state=abc&error=access_denied&error_description=Blocked+%3Cb%3Eby%3C%2Fb%3E+policy";
        let (status, body) = failure_page(query, true).await;
        assert_eq!(status, StatusCode::FORBIDDEN);
        assert!(body.contains("The identity provider denied this sign-in."), "{body}");
        assert!(body.contains("Blocked &lt;b&gt;by&lt;/b&gt; policy"), "escaped: {body}");
        let long = format!("state=abc&error=access_denied&error_description={}", "x".repeat(1000));
        let (_, body) = failure_page(&long, true).await;
        assert!(body.contains(&format!("{}\u{2026}", "x".repeat(MAX_DESCRIPTION))), "cut: {body}");
        assert!(!body.contains(&"x".repeat(MAX_DESCRIPTION + 1)), "cut: {body}");
    }
}
