//! Server-rendered HTML: the Universal Login page and the plain pages around it. Every page
//! works without JavaScript; all interpolated text is escaped.

use crate::util::html_escape as esc;

const STYLE: &str = "body{font-family:system-ui,sans-serif;background:#f4f5f7;margin:0}\
main{max-width:380px;margin:8vh auto;background:#fff;padding:32px 36px;border-radius:8px;box-shadow:0 2px 12px #0002}\
h1{font-size:1.35rem;margin:0 0 4px}p.sub{color:#555;margin:0 0 20px}label{display:block;margin:12px 0 4px;font-size:.9rem}\
input[type=email],input[type=text],input[type=password],select{width:100%;box-sizing:border-box;padding:10px;border:1px solid #bbb;border-radius:4px;font-size:1rem}\
button.federated{background:#fff;color:#222;border:1px solid #bbb;margin-top:8px}\
button{margin-top:20px;width:100%;padding:11px;border:0;border-radius:4px;background:#3853d8;color:#fff;font-size:1rem;cursor:pointer}\
.error{background:#fde8e8;color:#8a1f1f;padding:10px;border-radius:4px;margin-bottom:12px}\
.alt{margin-top:16px;text-align:center;font-size:.9rem}";

pub fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width,initial-scale=1\">\
         <title>{}</title><style>{STYLE}</style></head><body><main>{body}</main></body></html>",
        esc(title)
    )
}

pub fn error_page(title: &str, message: &str) -> String {
    page(title, &format!("<h1>{}</h1><p id=\"error-message\">{}</p>", esc(title), esc(message)))
}

pub fn message_page(title: &str, message: &str) -> String {
    page(title, &format!("<h1>{}</h1><p>{}</p>", esc(title), esc(message)))
}

/// One database connection the login form can submit to.
pub struct DbChoice<'a> {
    pub name: &'a str,
    pub signup: bool,
}

/// A Google or OpenID Connect connection offered as a button.
pub struct FederatedChoice<'a> {
    pub name: &'a str,
    pub label: String,
}

pub struct LoginPage<'a> {
    pub app_name: &'a str,
    pub state: &'a str,
    pub csrf: &'a str,
    pub databases: Vec<DbChoice<'a>>,
    pub federated: Vec<FederatedChoice<'a>>,
    pub selected: Option<&'a str>,
    pub username: &'a str,
    pub error: Option<&'a str>,
}

pub fn login_page(p: &LoginPage<'_>) -> String {
    let mut body = format!("<h1>Log in</h1><p class=\"sub\">to continue to {}</p>", esc(p.app_name));
    if let Some(e) = p.error {
        body.push_str(&format!("<div class=\"error\" role=\"alert\" id=\"error-message\">{}</div>", esc(e)));
    }
    if p.databases.is_empty() && p.federated.is_empty() {
        body.push_str("<p>No login method is enabled for this application.</p>");
        return page("Log in", &body);
    }
    // One small form per provider, carrying the same anti-CSRF token as the password form.
    for f in &p.federated {
        body.push_str(&format!(
            "<form method=\"post\" action=\"/u/login?state={state}\"><input type=\"hidden\" name=\"state\" value=\"{state}\">\
             <input type=\"hidden\" name=\"csrf\" value=\"{csrf}\"><input type=\"hidden\" name=\"connection\" value=\"{name}\">\
             <button type=\"submit\" class=\"federated\" id=\"connection-{name}\" name=\"action\" value=\"federated\">Continue with {label}</button></form>",
            state = esc(p.state),
            csrf = esc(p.csrf),
            name = esc(f.name),
            label = esc(&f.label),
        ));
    }
    if p.databases.is_empty() {
        return page("Log in", &body);
    }
    if !p.federated.is_empty() {
        body.push_str("<p class=\"alt\">or</p>");
    }
    body.push_str(&format!(
        "<form method=\"post\" action=\"/u/login?state={state}\"><input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\">",
        esc(p.csrf),
        state = esc(p.state)
    ));
    if p.databases.len() > 1 {
        body.push_str("<label for=\"connection\">Directory</label><select id=\"connection\" name=\"connection\">");
        for db in &p.databases {
            let sel = if Some(db.name) == p.selected { " selected" } else { "" };
            body.push_str(&format!("<option value=\"{n}\"{sel}>{n}</option>", n = esc(db.name)));
        }
        body.push_str("</select>");
    } else {
        body.push_str(&format!("<input type=\"hidden\" name=\"connection\" value=\"{}\">", esc(p.databases[0].name)));
    }
    body.push_str(&format!(
        "<label for=\"username\">Email address</label><input id=\"username\" name=\"username\" type=\"text\" autocomplete=\"username\" required value=\"{}\">\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"current-password\" required>\
         <button type=\"submit\" name=\"action\" value=\"default\">Continue</button></form>",
        esc(p.username)
    ));
    if p.databases.iter().any(|d| d.signup) {
        body.push_str(&format!(
            "<p class=\"alt\">Don't have an account? <a id=\"signup-link\" href=\"/u/signup?state={}\">Sign up</a></p>",
            esc(p.state)
        ));
    }
    page("Log in", &body)
}

/// `response_mode=form_post`: a form that posts itself to the client's callback.
pub fn form_post(action: &str, fields: &[(&str, &str)]) -> String {
    let inputs: String = fields
        .iter()
        .map(|(k, v)| format!("<input type=\"hidden\" name=\"{}\" value=\"{}\">", esc(k), esc(v)))
        .collect();
    format!(
        "<!DOCTYPE html><html><head><meta charset=\"utf-8\"><title>Submit This Form</title></head>\
         <body onload=\"javascript:document.forms[0].submit()\"><form method=\"post\" action=\"{}\">{inputs}\
         <noscript><button type=\"submit\">Continue</button></noscript></form></body></html>",
        esc(action)
    )
}

pub struct SignupPage<'a> {
    pub app_name: &'a str,
    pub state: &'a str,
    pub csrf: &'a str,
    /// Databases of the application that allow sign-up.
    pub databases: &'a [&'a str],
    pub email: &'a str,
    pub error: Option<&'a str>,
}

pub fn signup_page(p: &SignupPage<'_>) -> String {
    let mut body = format!("<h1>Sign up</h1><p class=\"sub\">to continue to {}</p>", esc(p.app_name));
    if let Some(e) = p.error {
        body.push_str(&format!("<div class=\"error\" role=\"alert\" id=\"error-message\">{}</div>", esc(e)));
    }
    let Some(first) = p.databases.first() else {
        body.push_str("<p>Sign-up is disabled for this application.</p>");
        return page("Sign up", &body);
    };
    body.push_str(&format!(
        "<form method=\"post\" action=\"/u/signup?state={state}\"><input type=\"hidden\" name=\"state\" value=\"{state}\">\
         <input type=\"hidden\" name=\"csrf\" value=\"{}\"><input type=\"hidden\" name=\"connection\" value=\"{}\">\
         <label for=\"email\">Email address</label><input id=\"email\" name=\"email\" type=\"email\" autocomplete=\"email\" required value=\"{}\">\
         <label for=\"password\">Password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">Continue</button></form>\
         <p class=\"alt\">Already have an account? <a href=\"/u/login?state={state}\">Log in</a></p>",
        esc(p.csrf),
        esc(first),
        esc(p.email),
        state = esc(p.state)
    ));
    page("Sign up", &body)
}
