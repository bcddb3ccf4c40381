//! The idp's cookies: the SSO session, each login transaction's anti-CSRF cookie, and the
//! cookie binding a trip to an upstream provider to the browser that started it.

use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;

pub const SESSION: &str = "gatehouse_session";
const LOGIN: &str = "gatehouse_login";
const UPSTREAM_BINDING: &str = "gatehouse_upstream";

/// Each login transaction has its own anti-CSRF cookie, so tabs do not trample each other.
pub fn login_name(tx_id: &str) -> String {
    format!("{LOGIN}_{}", &tx_id[..tx_id.len().min(12)])
}

/// One cookie per upstream `state`, for the same reason.
pub fn binding_name(state: &str) -> String {
    format!("{UPSTREAM_BINDING}_{}", &state[..state.len().min(12)])
}

/// The value of cookie `name` in the request, if sent.
pub fn get<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// A `Set-Cookie` value: HttpOnly, SameSite=Lax, `Secure` on HTTPS; `max_age` 0 deletes it.
pub fn set(name: &str, value: &str, path: &str, max_age: i64, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; SameSite=Lax{secure}")
}

/// Adds a `Set-Cookie` to a response. Cookie values here are base64url tokens and fixed names,
/// so the header is always valid; one that were not would be dropped rather than sent broken.
pub fn append(res: &mut Response, set_cookie: &str) {
    if let Ok(v) = HeaderValue::from_str(set_cookie) {
        res.headers_mut().append(header::SET_COOKIE, v);
    }
}
