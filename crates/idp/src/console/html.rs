//! The console's page frame and form pieces. Every interpolated value is escaped here or by
//! the caller through [`esc`]; every control gets a `<label for>`; no inline script or style
//! (the CSP forbids them), behaviour comes from `console.js` through `data-*` attributes.

use super::Admin;
use axum::http::StatusCode;
use axum::response::{Html, IntoResponse, Response};

pub use crate::util::html_escape as esc;

/// The menu: (section, [(label, href)]).
const MENU: &[(&str, &[(&str, &str)])] = &[
    ("Applications", &[("Applications", "/console/applications"), ("APIs", "/console/apis")]),
    ("Authentication", &[("Database", "/console/connections/database"), ("Social", "/console/connections/social")]),
    ("User Management", &[("Users", "/console/users"), ("Roles", "/console/roles")]),
    ("Actions", &[("Library", "/console/actions/library"), ("Flows", "/console/actions/flows")]),
    ("Monitoring", &[("Logs", "/console/logs")]),
    ("Settings", &[("Advanced", "/console/settings/advanced")]),
];

/// The text for a message code of `?m=` (fixed texts only: a link cannot make the console say
/// anything else).
pub fn flash_text(code: &str) -> Option<&'static str> {
    Some(match code {
        "saved" => "Changes saved.",
        "created" => "Created.",
        "deleted" => "Deleted.",
        "deployed" => "Deployed.",
        "applied" => "Flow applied.",
        "blocked" => "User blocked.",
        "unblocked" => "User unblocked.",
        "verification" => "Verification email sent.",
        _ => return None,
    })
}

/// A whole page: header with the administrator and sign-out, the menu with `current`
/// marked, the message of `flash` if any, then `body`.
pub fn page(admin: &Admin, title: &str, current: &str, flash: Option<&str>, body: &str) -> Response {
    let mut nav = String::new();
    for (section, items) in MENU {
        nav.push_str(&format!("<li><span class=\"section\">{section}</span><ul>"));
        for (label, href) in *items {
            let here = if *href == current { " aria-current=\"page\"" } else { "" };
            nav.push_str(&format!("<li><a href=\"{href}\"{here}>{label}</a></li>"));
        }
        nav.push_str("</ul></li>");
    }
    let message = flash
        .and_then(flash_text)
        .map(|m| format!("<p class=\"flash\" role=\"status\" id=\"flash\">{m}</p>"))
        .unwrap_or_default();
    let role = if admin.can_write() { "" } else { " <span class=\"badge\">read-only</span>" };
    let html = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Gatehouse Console</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\">\
         <script src=\"/console/assets/console.js\" defer></script></head><body>\
         <header><a class=\"brand\" href=\"/console\">Gatehouse Console</a>\
         <div class=\"who\"><span id=\"admin-email\">{email}</span>{role}\
         <form method=\"post\" action=\"/console/logout\">{csrf}<button type=\"submit\" class=\"link\">Sign out</button></form></div></header>\
         <div class=\"frame\"><nav aria-label=\"Console\"><ul>{nav}</ul></nav>\
         <main id=\"main\"><h1>{title}</h1>{message}{body}</main></div></body></html>",
        title = esc(title),
        email = esc(&admin.email),
        csrf = csrf(admin),
    );
    Html(html).into_response()
}

/// A page outside a session (a refused sign-in or post): the console's look, no menu.
pub fn bare(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
         <meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{title} · Gatehouse Console</title><link rel=\"stylesheet\" href=\"/console/assets/console.css\"></head>\
         <body><header><a class=\"brand\" href=\"/console\">Gatehouse Console</a></header><main id=\"main\"><h1>{title}</h1>{body}</main></body></html>",
        title = esc(title)
    )
}

/// The page of a refused write: the API's message, and the way back.
pub fn error(admin: &Admin, message: &str, back: &str) -> Response {
    let body = format!(
        "<p class=\"error\" role=\"alert\" id=\"error-message\">{}</p><p><a href=\"{}\">Back</a></p>",
        esc(message),
        esc(back)
    );
    let mut res = page(admin, "Not saved", "", None, &body);
    *res.status_mut() = StatusCode::BAD_REQUEST;
    res
}

/// The page of a failed read (a missing object, a scope the role lacks).
pub fn not_found(admin: &Admin, message: &str) -> Response {
    let body = format!("<p class=\"error\" role=\"alert\" id=\"error-message\">{}</p>", esc(message));
    let mut res = page(admin, "Not available", "", None, &body);
    *res.status_mut() = StatusCode::NOT_FOUND;
    res
}

pub fn csrf(admin: &Admin) -> String {
    format!("<input type=\"hidden\" name=\"csrf\" value=\"{}\">", esc(&admin.csrf))
}

/// A form posting to `action`, with the anti-CSRF token.
pub fn form(admin: &Admin, action: &str, inner: &str) -> String {
    format!("<form method=\"post\" action=\"{}\">{}{inner}</form>", esc(action), csrf(admin))
}

/// A delete button that asks first.
pub fn delete_form(admin: &Admin, action: &str, what: &str) -> String {
    if !admin.can_write() {
        return String::new();
    }
    format!(
        "<form method=\"post\" action=\"{}\" data-confirm=\"{}\" class=\"danger-zone\">{}<button type=\"submit\" class=\"danger\">Delete</button></form>",
        esc(action),
        esc(&format!("Delete {what}? This cannot be undone.")),
        csrf(admin)
    )
}

pub fn text(id: &str, label: &str, name: &str, value: &str, extra: &str) -> String {
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label><input type=\"text\" id=\"{id}\" name=\"{name}\" value=\"{}\"{extra}></div>",
        esc(value)
    )
}

pub fn readonly(id: &str, label: &str, value: &str) -> String {
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label><input type=\"text\" id=\"{id}\" value=\"{}\" readonly></div>",
        esc(value)
    )
}

pub fn number(id: &str, label: &str, name: &str, value: i64, max: i64) -> String {
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label><input type=\"number\" id=\"{id}\" name=\"{name}\" value=\"{value}\" min=\"1\" max=\"{max}\" required></div>"
    )
}

pub fn textarea(id: &str, label: &str, name: &str, value: &str, hint: &str, extra: &str) -> String {
    let hint = if hint.is_empty() { String::new() } else { format!("<p class=\"hint\" id=\"{id}-hint\">{hint}</p>") };
    let described = if hint.is_empty() { String::new() } else { format!(" aria-describedby=\"{id}-hint\"") };
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label><textarea id=\"{id}\" name=\"{name}\" rows=\"3\"{described}{extra}>{}</textarea>{hint}</div>",
        esc(value)
    )
}

/// A switch: a checkbox with the switch role, its label after it.
pub fn switch(id: &str, label: &str, name: &str, value: &str, on: bool) -> String {
    let checked = if on { " checked" } else { "" };
    format!(
        "<div class=\"switch\"><input type=\"checkbox\" role=\"switch\" id=\"{id}\" name=\"{name}\" value=\"{}\"{checked}><label for=\"{id}\">{label}</label></div>",
        esc(value)
    )
}

pub fn submit(admin: &Admin, label: &str) -> String {
    if admin.can_write() { format!("<button type=\"submit\">{}</button>", esc(label)) } else { String::new() }
}

/// Tabs as links, the current one marked.
pub fn tabs(base: &str, current: &str, tabs: &[(&str, &str)]) -> String {
    let mut out = String::from("<nav class=\"tabs\" aria-label=\"Tabs\"><ul>");
    for (slug, label) in tabs {
        let here = if *slug == current { " aria-current=\"page\"" } else { "" };
        out.push_str(&format!("<li><a href=\"{}/{slug}\"{here}>{label}</a></li>", esc(base)));
    }
    out.push_str("</ul></nav>");
    out
}

/// A table; cells are HTML (escape values before).
pub fn table(caption: &str, headers: &[&str], rows: &[Vec<String>]) -> String {
    if rows.is_empty() {
        return format!("<p class=\"empty\">No {} yet.</p>", esc(&caption.to_lowercase()));
    }
    let mut out = format!("<div class=\"table-wrap\"><table><caption>{}</caption><thead><tr>", esc(caption));
    for h in headers {
        out.push_str(&format!("<th scope=\"col\">{h}</th>"));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            out.push_str(&format!("<td>{cell}</td>"));
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table></div>");
    out
}

/// Previous/next links for a page of `per_page` out of `total` (`base` already has its query,
/// ending in `?` or `&`).
pub fn pager(base: &str, page: u32, per_page: u32, total: u64) -> String {
    let last = if total == 0 { 0 } else { ((total - 1) / u64::from(per_page)) as u32 };
    let mut out = String::from("<nav class=\"pager\" aria-label=\"Pages\">");
    if page > 0 {
        out.push_str(&format!("<a href=\"{}page={}\" rel=\"prev\">Previous</a>", esc(base), page - 1));
    }
    out.push_str(&format!("<span>Page {} of {}</span>", page + 1, last + 1));
    if page < last {
        out.push_str(&format!("<a href=\"{}page={}\" rel=\"next\">Next</a>", esc(base), page + 1));
    }
    out.push_str("</nav>");
    out
}

/// A list from a textarea: comma- or line-separated, trimmed, empties dropped.
pub fn list(text: &str) -> Vec<String> {
    text.split([',', '\n']).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned).collect()
}

/// A JSON array of strings as the textarea shows it: one a line.
pub fn lines(v: Option<&serde_json::Value>) -> String {
    v.and_then(serde_json::Value::as_array)
        .map(|a| a.iter().filter_map(serde_json::Value::as_str).collect::<Vec<_>>().join("\n"))
        .unwrap_or_default()
}

/// A page number from `?page=`, within Auth0's first 1,000 results.
pub fn page_number(q: &std::collections::HashMap<String, String>) -> u32 {
    q.get("page").and_then(|p| p.parse().ok()).unwrap_or(0).min(999)
}
