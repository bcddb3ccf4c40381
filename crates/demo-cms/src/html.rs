//! The pages' shell: escaping, one layout, one stylesheet, and the headers every page gets (no
//! caching of personal pages, a strict Content-Security-Policy: no scripts at all, forms only to
//! this origin, no framing).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

/// Text made safe for HTML element content and double-quoted attribute values.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; base-uri 'none'; \
                   frame-ancestors 'none'";

/// The signed-in user, shown in the header with the sign-out link.
struct Nav {
    email: String,
    admin: bool,
}

/// A page: status, `<title>`, body HTML (already escaped by the caller), header navigation.
pub struct Page {
    status: StatusCode,
    title: String,
    body: String,
    nav: Option<Nav>,
}

impl Page {
    pub fn new(status: StatusCode, title: &str) -> Page {
        Page { status, title: title.to_string(), body: String::new(), nav: None }
    }

    pub fn body(mut self, html: String) -> Page {
        self.body = html;
        self
    }

    /// Shows who is signed in, a link to the users page for admins, and "Sign out".
    pub fn signed_in(mut self, email: &str, admin: bool) -> Page {
        self.nav = Some(Nav { email: email.to_string(), admin });
        self
    }

    fn render(&self) -> String {
        let nav = match &self.nav {
            None => String::new(),
            Some(n) => format!(
                "<nav aria-label=\"Account\"><span id=\"viewer\">{}</span>{}\
                 <a id=\"sign-out\" href=\"/logout?redirect=%2F\">Sign out</a></nav>",
                escape(&n.email),
                if n.admin { "<a href=\"/\">Home</a><a id=\"users-link\" href=\"/admin/users\">Users</a>" } else { "" }
            ),
        };
        format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\">\
             <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\
             <title>{title}</title><link rel=\"stylesheet\" href=\"/assets/cms.css\"></head>\
             <body><header><a class=\"brand\" href=\"/\">Demo CMS</a>{nav}</header>\
             <main id=\"main\">{body}</main>\
             <footer>Served by <code>gatehouse up</code>: login site and CMS in front of auth0-client and the \
             Gatehouse identity provider. <a id=\"dev-mailbox\" href=\"/dev/mailbox\">Dev mailbox</a></footer></body></html>",
            title = escape(&self.title),
            body = self.body,
        )
    }
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut res = (self.status, self.render()).into_response();
        let h = res.headers_mut();
        h.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
        h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
        h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
        h.insert(header::REFERRER_POLICY, HeaderValue::from_static("same-origin"));
        res
    }
}

pub(crate) async fn not_found() -> Page {
    Page::new(StatusCode::NOT_FOUND, "Not found")
        .body("<h1>Not found</h1><p>There is no page here. <a href=\"/\">Go to the CMS</a>.</p>".into())
}

const STYLESHEET: &str = "\
:root{color-scheme:light;--ink:#1d2330;--muted:#5b6475;--line:#d9dee8;--accent:#1f5fd1;--bad:#a4262c}
*{box-sizing:border-box}
body{margin:0;font:16px/1.5 system-ui,-apple-system,'Segoe UI',Roboto,sans-serif;color:var(--ink);background:#f5f7fb}
header{display:flex;flex-wrap:wrap;gap:1rem;align-items:center;justify-content:space-between;padding:.75rem 1.5rem;background:#fff;border-bottom:1px solid var(--line)}
header nav{display:flex;gap:1rem;align-items:center}
.brand{font-weight:700;color:var(--ink);text-decoration:none}
main{max-width:60rem;margin:2rem auto;padding:1.5rem 2rem;background:#fff;border:1px solid var(--line);border-radius:8px}
footer{max-width:60rem;margin:0 auto 2rem;padding:0 2rem;color:var(--muted);font-size:.875rem}
a{color:var(--accent)}
a:focus,button:focus,input:focus{outline:3px solid #9cc0ff;outline-offset:2px}
h1{margin-top:0}
ul.groups{display:flex;flex-wrap:wrap;gap:.5rem;list-style:none;padding:0}
ul.groups li{padding:.125rem .625rem;border:1px solid var(--line);border-radius:999px;background:#eef3ff}
table{width:100%;border-collapse:collapse}
th,td{text-align:left;padding:.5rem;border-bottom:1px solid var(--line);vertical-align:middle}
caption{text-align:left;color:var(--muted);padding-bottom:.5rem}
form.groups{display:flex;gap:.5rem}
input[type=text]{flex:1;min-width:10rem;padding:.375rem .5rem;border:1px solid #8a93a5;border-radius:4px;font:inherit}
button,.button{display:inline-block;padding:.375rem .875rem;border:0;border-radius:4px;background:var(--accent);color:#fff;font:inherit;cursor:pointer;text-decoration:none}
[role=alert]{color:var(--bad);font-weight:600}
[role=status]{padding:.5rem .75rem;border-radius:4px;background:#e7f6ec}
.muted{color:var(--muted)}
.visually-hidden{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
";

pub(crate) async fn stylesheet() -> Response {
    ([(header::CONTENT_TYPE, "text/css; charset=utf-8"), (header::CACHE_CONTROL, "public, max-age=3600")], STYLESHEET)
        .into_response()
}

#[cfg(test)]
mod tests {
    #[test]
    fn escapes_markup_and_quotes() {
        assert_eq!(super::escape("<a href=\"x\">'&'</a>"), "&lt;a href=&quot;x&quot;&gt;&#39;&amp;&#39;&lt;/a&gt;");
    }
}
