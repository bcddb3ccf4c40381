//! The demo CMS: a backoffice for members of the `admin` group, like Mia's Headless CMS.
//!
//! - `/`: who you are and your groups, from auth0-client's `/userinfo` (the `sid` cookie
//!   passed on, as the authorization service does). No session: for browsers (`Accept:
//!   text/html`) a redirect to `/web-login?redirect=<uri>`, as Mia's nginx `@error401` does;
//!   a 401 page otherwise. Signed in without `admin`: a 403 "no access" page.
//! - `/admin/users`: the users (auth0-client `GET /users`) with a form per user editing
//!   `app_metadata.groups` (`PATCH /users/:id`), the guide's "assign users to groups using CMS".
//!   The forms carry a token derived from the session (no cross-site form posts), and the
//!   `sid` cookie is `SameSite=Lax` besides.

use crate::html::{Page, escape};
use crate::{ADMIN_GROUP, Profile, SiteState, Viewer, redirect};
use axum::body::Bytes;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, Method, StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

/// The most groups one user may get from the form, and the longest group name.
const MAX_GROUPS: usize = 50;
const MAX_GROUP_LEN: usize = 64;
/// Users shown on the users page (auth0-client's largest page).
const PAGE_SIZE: usize = 100;

fn wants_html(headers: &HeaderMap) -> bool {
    headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()).is_some_and(|v| v.contains("text/html"))
}

/// No session: the gateway's 401, turned into the login redirect for browsers.
fn unauthenticated(headers: &HeaderMap, uri: &Uri) -> Response {
    let target = uri.path_and_query().map(|p| p.as_str()).unwrap_or("/");
    let location = format!(
        "/web-login?{}",
        url::form_urlencoded::Serializer::new(String::new()).append_pair("redirect", target).finish()
    );
    if wants_html(headers) {
        return redirect(&location);
    }
    Page::new(StatusCode::UNAUTHORIZED, "Sign in")
        .body(format!(
            "<h1>Sign in</h1><p>This page needs a session. <a href=\"{}\">Sign in</a>.</p>",
            escape(&location)
        ))
        .into_response()
}

fn unavailable(status: StatusCode, message: &str) -> Response {
    let status = if status.is_server_error() { status } else { StatusCode::BAD_GATEWAY };
    Page::new(status, "Service unavailable")
        .body(format!(
            "<h1>Service unavailable</h1><p role=\"alert\">auth0-client could not tell who you are: {}</p>\
             <p>Try again in a moment.</p>",
            escape(message)
        ))
        .into_response()
}

fn no_access(p: &Profile) -> Response {
    let groups = if p.groups.is_empty() {
        "none".to_string()
    } else {
        p.groups.iter().map(|g| escape(g)).collect::<Vec<_>>().join(", ")
    };
    Page::new(StatusCode::FORBIDDEN, "No access")
        .signed_in(&p.email, false)
        .body(format!(
            "<h1>No access</h1>\
             <p role=\"alert\" id=\"no-access\">You are signed in as <strong>{email}</strong>, but this CMS is only \
             for members of the <code>{ADMIN_GROUP}</code> group.</p>\
             <p>Your groups: <span id=\"groups\">{groups}</span>.</p>\
             <p>Ask an administrator to add you to the group on the CMS's Users page, then sign out and sign in \
             again.</p><p><a class=\"button\" href=\"/logout?redirect=%2F\">Sign out</a></p>",
            email = escape(&p.email),
        ))
        .into_response()
}

/// The admin's profile, or the answer for anyone else.
async fn require_admin(site: &SiteState, headers: &HeaderMap, uri: &Uri) -> Result<Profile, Response> {
    match site.viewer(headers).await {
        Viewer::Admin(p) => Ok(p),
        Viewer::Member(p) => Err(no_access(&p)),
        Viewer::Anonymous => Err(unauthenticated(headers, uri)),
        Viewer::Unknown(status, message) => Err(unavailable(status, &message)),
    }
}

fn groups_list(groups: &[String]) -> String {
    if groups.is_empty() {
        return "<p id=\"groups\" class=\"muted\">No groups.</p>".into();
    }
    let items: String = groups.iter().map(|g| format!("<li>{}</li>", escape(g))).collect();
    format!("<ul id=\"groups\" class=\"groups\" aria-label=\"Your groups\">{items}</ul>")
}

/// `GET /`.
pub(crate) async fn home(State(site): State<SiteState>, headers: HeaderMap, uri: Uri) -> Response {
    let p = match require_admin(&site, &headers, &uri).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let name = if p.name.is_empty() || p.name == p.email { String::new() } else { format!(" ({})", escape(&p.name)) };
    Page::new(StatusCode::OK, "Demo CMS")
        .signed_in(&p.email, true)
        .body(format!(
            "<h1>Welcome to the demo CMS</h1>\
             <p>Signed in as <strong id=\"email\">{email}</strong>{name}.</p>\
             <h2>Your groups</h2>{groups}\
             <p class=\"muted\">User id <code id=\"sub\">{sub}</code>. This page asked auth0-client's \
             <code>/userinfo</code> who you are (with your <code>sid</code> cookie); your groups come from \
             <code>app_metadata</code> through the tenant's <code>inject-id-token</code> action.</p>\
             <p><a class=\"button\" href=\"/admin/users\">Manage users and groups</a></p>",
            email = escape(&p.email),
            groups = groups_list(&p.groups),
            sub = escape(&p.sub),
        ))
        .into_response()
}

/// A per-session token for the forms: SHA-256 over the session cookie, which a cross-site page
/// cannot read.
fn csrf_token(headers: &HeaderMap) -> String {
    let sid = auth0_client::routes::credential(headers).map(|c| c.value().to_string()).unwrap_or_default();
    let mut ctx = aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256);
    ctx.update(b"gatehouse demo-cms form\0");
    ctx.update(sid.as_bytes());
    ctx.finish().as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

fn user_groups(user: &Value) -> Vec<String> {
    user.pointer("/app_metadata/groups")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
        .unwrap_or_default()
}

/// `GET /admin/users`.
pub(crate) async fn users(
    State(site): State<SiteState>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(raw): RawQuery,
) -> Response {
    let admin = match require_admin(&site, &headers, &uri).await {
        Ok(p) => p,
        Err(res) => return res,
    };
    let answer = site.call(Method::GET, &format!("/users?_l={PAGE_SIZE}"), None, None).await;
    let mut users = match (answer.status, answer.json()) {
        (StatusCode::OK, Some(Value::Array(users))) => users,
        _ => {
            return error_page(
                StatusCode::BAD_GATEWAY,
                "Users unavailable",
                &format!("auth0-client could not list the users: {}", answer.message()),
            );
        }
    };
    let email_of = |u: &Value| u.get("email").and_then(Value::as_str).unwrap_or_default().to_lowercase();
    users.sort_by_key(email_of);
    let saved = url::form_urlencoded::parse(raw.as_deref().unwrap_or("").as_bytes())
        .find(|(k, _)| k == "saved")
        .map(|(_, v)| v.into_owned());
    let csrf = csrf_token(&headers);
    let mut rows = String::new();
    for (i, u) in users.iter().enumerate() {
        let s = |k: &str| u.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let (id, email, name) = (s("user_id"), s("email"), s("name"));
        rows.push_str(&format!(
            "<tr data-email=\"{email}\"><td>{email}</td><td>{name}</td><td>\
             <form class=\"groups\" method=\"post\" action=\"/admin/users/groups\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"user_id\" value=\"{id}\">\
             <label class=\"visually-hidden\" for=\"groups-{i}\">Groups of {email}</label>\
             <input type=\"text\" id=\"groups-{i}\" name=\"groups\" value=\"{groups}\" autocomplete=\"off\" \
             placeholder=\"no groups\"><button type=\"submit\">Save</button></form></td></tr>",
            email = escape(&email),
            name = escape(&name),
            id = escape(&id),
            groups = escape(&user_groups(u).join(", ")),
        ));
    }
    let status = match saved {
        Some(who) => format!(
            "<p role=\"status\" id=\"saved\">Groups of {} saved. They take effect at that user's next sign-in.</p>",
            escape(&who)
        ),
        None => String::new(),
    };
    let more = if users.len() >= PAGE_SIZE { format!(" (the first {PAGE_SIZE})") } else { String::new() };
    Page::new(StatusCode::OK, "Users · Demo CMS")
        .signed_in(&admin.email, true)
        .body(format!(
            "<h1>Users</h1>{status}\
             <p class=\"muted\">Groups are kept in each user's <code>app_metadata.groups</code> and changed through \
             auth0-client's <code>PATCH /users/:id</code>, which calls the identity provider's Management API. \
             Separate groups with commas; <code>{ADMIN_GROUP}</code> opens this CMS.</p>\
             <table><caption>{count} users{more}</caption><thead><tr><th scope=\"col\">Email</th>\
             <th scope=\"col\">Name</th><th scope=\"col\">Groups</th></tr></thead><tbody>{rows}</tbody></table>",
            count = users.len(),
        ))
        .into_response()
}

/// The groups typed into the form: comma-separated, trimmed, each once, in order.
pub(crate) fn parse_groups(text: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for g in text.split(',').map(str::trim).filter(|g| !g.is_empty()) {
        if g.chars().count() > MAX_GROUP_LEN || g.chars().any(char::is_control) {
            return Err(format!("a group name has at most {MAX_GROUP_LEN} characters and no control characters"));
        }
        if !out.iter().any(|o| o == g) {
            out.push(g.to_string());
        }
    }
    if out.len() > MAX_GROUPS {
        return Err(format!("at most {MAX_GROUPS} groups per user"));
    }
    Ok(out)
}

/// `POST /admin/users/groups` (`csrf`, `user_id`, `groups`).
pub(crate) async fn save_groups(State(site): State<SiteState>, headers: HeaderMap, uri: Uri, body: Bytes) -> Response {
    if let Err(res) = require_admin(&site, &headers, &uri).await {
        return res;
    }
    let mut form = std::collections::HashMap::new();
    for (k, v) in url::form_urlencoded::parse(&body) {
        form.entry(k.into_owned()).or_insert_with(|| v.into_owned());
    }
    let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
    let expected = csrf_token(&headers);
    if !constant_time_eq(field("csrf").as_bytes(), expected.as_bytes()) {
        return error_page(
            StatusCode::FORBIDDEN,
            "Form expired",
            "This form is not from your current session. Reload the users page and try again.",
        );
    }
    let user_id = field("user_id");
    if user_id.is_empty() || user_id.len() > 256 {
        return error_page(StatusCode::BAD_REQUEST, "No user", "The form names no user.");
    }
    let groups = match parse_groups(field("groups")) {
        Ok(g) => g,
        Err(message) => return error_page(StatusCode::BAD_REQUEST, "Groups not saved", &message),
    };
    let path = format!("/users/{}", auth0_client::util::path_segment(user_id));
    let patch = json!({ "app_metadata": { "groups": groups } });
    let answer = site.call(Method::PATCH, &path, None, Some(&patch)).await;
    if answer.status != StatusCode::OK {
        let status = if answer.status.is_client_error() { answer.status } else { StatusCode::BAD_GATEWAY };
        return error_page(status, "Groups not saved", &format!("auth0-client answered: {}", answer.message()));
    }
    let who = answer
        .json()
        .and_then(|u| u.get("email").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| user_id.to_string());
    let location = format!(
        "/admin/users?{}",
        url::form_urlencoded::Serializer::new(String::new()).append_pair("saved", &who).finish()
    );
    // 303: the browser follows with a GET, and reloading does not post the form again.
    let mut res = redirect(&location);
    *res.status_mut() = StatusCode::SEE_OTHER;
    res
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

fn error_page(status: StatusCode, title: &str, message: &str) -> Response {
    Page::new(status, title)
        .body(format!(
            "<h1>{}</h1><p role=\"alert\" id=\"error-message\">{}</p><p><a href=\"/admin/users\">Back to the users</a></p>",
            escape(title),
            escape(message)
        ))
        .into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_from_the_form() {
        assert_eq!(parse_groups(" admin, editor ,admin,, ").unwrap(), vec!["admin", "editor"]);
        assert!(parse_groups("").unwrap().is_empty());
        assert!(parse_groups(&"x".repeat(65)).is_err());
        assert!(parse_groups("a\u{7}b").is_err());
        let many: Vec<String> = (0..51).map(|i| format!("g{i}")).collect();
        assert!(parse_groups(&many.join(",")).is_err());
    }

    #[test]
    fn csrf_depends_on_the_session() {
        let mut a = HeaderMap::new();
        a.insert(header::COOKIE, "sid=one".parse().unwrap());
        let mut b = HeaderMap::new();
        b.insert(header::COOKIE, "sid=two".parse().unwrap());
        assert_ne!(csrf_token(&a), csrf_token(&b));
        assert_eq!(csrf_token(&a).len(), 64);
        assert!(constant_time_eq(b"ab", b"ab") && !constant_time_eq(b"ab", b"ac") && !constant_time_eq(b"a", b"ab"));
    }
}
