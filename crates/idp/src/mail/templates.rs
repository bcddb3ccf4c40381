//! Email templates: Auth0's names, the built-in text each has until a tenant saves its own
//! (`/api/v2/email-templates`), the check a saved template must pass (it parses as Liquid),
//! and rendering with Auth0's variables: `user.*`, `application.name`, `url`,
//! `friendly_name`, `tenant`, `connection.name`.
//!
//! Escaping follows Auth0: what comes from the user or the tenant's settings (`user.*`,
//! `application.name`, `friendly_name`) is HTML-escaped before it reaches the body, so a name
//! like `<script>` arrives as text; the subject is a header, not HTML, and gets the values as
//! they are (a header cannot hold CR/LF, which the sender refuses).

use serde_json::{Value, json};
use store::mail::EmailTemplate;

/// Every template name Auth0 accepts (`change_password` and `password_reset` are its legacy
/// names for `reset_email`).
pub const NAMES: &[&str] = &[
    "verify_email",
    "verify_email_by_code",
    "reset_email",
    "reset_email_by_code",
    "welcome_email",
    "blocked_account",
    "stolen_credentials",
    "enrollment_email",
    "mfa_oob_code",
    "user_invitation",
    "async_approval",
    "change_password",
    "password_reset",
];

/// The longest body a template may have (Auth0's dashboard editor stops well before).
pub const MAX_BODY: usize = 100_000;

/// Why a template cannot be saved or rendered.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct TemplateError(pub String);

/// What a mail says, ready to queue.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Rendered {
    pub subject: String,
    pub html: String,
    pub from: Option<String>,
}

/// What a template is rendered with.
#[derive(Debug, Clone, Default)]
pub struct Context<'a> {
    pub user: Option<&'a store::User>,
    pub application_name: Option<&'a str>,
    pub client_id: Option<&'a str>,
    pub url: Option<&'a str>,
    pub friendly_name: Option<&'a str>,
    /// The tenant's name (its domain here).
    pub tenant: &'a str,
    pub connection: Option<&'a str>,
}

/// Checks a template's Liquid (body and subject) as Auth0 does when it is saved.
pub fn check(template: &EmailTemplate) -> Result<(), TemplateError> {
    if let Some(syntax) = &template.syntax
        && syntax != "liquid"
    {
        return Err(TemplateError(format!("syntax must be liquid, not {syntax:?}")));
    }
    if template.body.as_ref().is_some_and(|b| b.len() > MAX_BODY) {
        return Err(TemplateError(format!("body must be at most {MAX_BODY} characters")));
    }
    for (field, text) in [("body", &template.body), ("subject", &template.subject)] {
        if let Some(text) = text {
            parser().parse(text).map_err(|e| TemplateError(format!("Invalid {field} template: {}", first_line(&e))))?;
        }
    }
    if template.subject.as_ref().is_some_and(|s| s.contains(['\r', '\n'])) {
        return Err(TemplateError("subject must be one line".into()));
    }
    Ok(())
}

fn first_line(e: &liquid::Error) -> String {
    let text = e.to_string();
    text.lines().filter(|l| !l.trim().is_empty()).take(3).collect::<Vec<_>>().join(" ").chars().take(300).collect()
}

fn parser() -> liquid::Parser {
    liquid::ParserBuilder::with_stdlib().build().expect("the standard library builds")
}

/// Renders `name` with the tenant's own template when given (and enabled), else the built-in
/// one.
pub fn render(name: &str, saved: Option<&EmailTemplate>, ctx: &Context<'_>) -> Result<Rendered, TemplateError> {
    let custom = saved.filter(|t| t.enabled != Some(false) && t.body.is_some());
    let (body, subject, from) = match custom {
        Some(t) => (
            t.body.clone().unwrap_or_default(),
            t.subject.clone().unwrap_or_else(|| default_subject(name).to_owned()),
            t.from.clone().filter(|f| !f.is_empty()),
        ),
        None => (default_body(name).to_owned(), default_subject(name).to_owned(), None),
    };
    let html = render_text(&body, &variables(ctx, true))?;
    let subject = render_text(&subject, &variables(ctx, false))?;
    let from = from.map(|f| render_text(&f, &variables(ctx, false))).transpose()?;
    Ok(Rendered { subject: subject.trim().to_owned(), html, from })
}

fn render_text(text: &str, vars: &Value) -> Result<String, TemplateError> {
    let template = parser().parse(text).map_err(|e| TemplateError(first_line(&e)))?;
    let globals = liquid::to_object(vars).map_err(|e| TemplateError(first_line(&e)))?;
    template.render(&globals).map_err(|e| TemplateError(first_line(&e)))
}

/// Auth0's variables; strings escaped for HTML when `escape`.
fn variables(ctx: &Context<'_>, escape: bool) -> Value {
    let s = |v: Option<&str>| -> Value {
        match v {
            Some(v) if escape => json!(crate::util::html_escape(v)),
            Some(v) => json!(v),
            None => Value::Null,
        }
    };
    let user = ctx.user.map_or(Value::Null, |u| {
        let mut user = json!({
            "user_id": u.user_id,
            "email": u.email,
            "email_verified": u.email_verified,
            "name": u.name,
            "nickname": u.nickname,
            "given_name": u.given_name,
            "family_name": u.family_name,
            "picture": u.picture,
            "username": u.username,
            "user_metadata": u.user_metadata,
            "app_metadata": u.app_metadata,
        });
        if escape {
            escape_strings(&mut user);
        }
        user
    });
    json!({
        "user": user,
        "application": { "name": s(ctx.application_name), "clientID": s(ctx.client_id) },
        "url": ctx.url,
        "friendly_name": s(ctx.friendly_name.or(Some(ctx.tenant))),
        "tenant": s(Some(ctx.tenant)),
        "connection": { "name": s(ctx.connection) },
    })
}

fn escape_strings(v: &mut Value) {
    match v {
        Value::String(s) => *s = crate::util::html_escape(s),
        Value::Array(items) => items.iter_mut().for_each(escape_strings),
        Value::Object(map) => map.values_mut().for_each(escape_strings),
        _ => {}
    }
}

fn default_subject(name: &str) -> &'static str {
    match name {
        "verify_email" | "verify_email_by_code" => "Verify your email",
        "reset_email" | "reset_email_by_code" | "change_password" | "password_reset" => "Reset your password",
        "welcome_email" => "Welcome to {{ friendly_name }}",
        "blocked_account" => "Your account has been blocked",
        "user_invitation" => "You have been invited to {{ friendly_name }}",
        _ => "A message from {{ friendly_name }}",
    }
}

fn default_body(name: &str) -> &'static str {
    match name {
        "verify_email" | "verify_email_by_code" => {
            "<p>Hello {{ user.name | default: user.email }},</p>\n\
             <p>Please verify your email address for {{ application.name | default: friendly_name }} by opening this link:</p>\n\
             <p><a href=\"{{ url }}\">Verify your email</a></p>\n\
             <p>If you did not create an account, ignore this message.</p>\n"
        }
        "reset_email" | "reset_email_by_code" | "change_password" | "password_reset" => {
            "<p>Hello {{ user.name | default: user.email }},</p>\n\
             <p>Someone asked to reset the password of your {{ friendly_name }} account.</p>\n\
             <p>To choose a new password, open:</p>\n\
             <p><a href=\"{{ url }}\">{{ url }}</a></p>\n\
             <p>If it was not you, ignore this message.</p>\n"
        }
        "welcome_email" => {
            "<p>Welcome to {{ friendly_name }}, {{ user.name | default: user.email }}!</p>\n\
             <p>Your account is ready.</p>\n"
        }
        "blocked_account" => {
            "<p>Hello {{ user.name | default: user.email }},</p>\n\
             <p>Your {{ friendly_name }} account was blocked after too many failed sign-in attempts.</p>\n\
             {% if url %}<p>To unblock it, open:</p>\n<p><a href=\"{{ url }}\">{{ url }}</a></p>\n{% endif %}"
        }
        _ => "<p>{{ friendly_name }}</p>{% if url %}<p><a href=\"{{ url }}\">{{ url }}</a></p>{% endif %}\n",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user() -> store::User {
        serde_json::from_value(json!({
            "user_id": "auth0|1",
            "connection": "db",
            "email": "ann@example.test",
            "name": "Ann <b>&</b>",
            "created_at": 0,
            "updated_at": 0,
        }))
        .unwrap()
    }

    #[test]
    fn defaults_render_with_the_link_and_escaped_names() {
        let u = user();
        let ctx = Context {
            user: Some(&u),
            url: Some("https://id.test/lo/reset?ticket=abc"),
            tenant: "id.test",
            ..Default::default()
        };
        let r = render("reset_email", None, &ctx).unwrap();
        assert_eq!(r.subject, "Reset your password");
        assert!(r.html.contains("href=\"https://id.test/lo/reset?ticket=abc\""), "{}", r.html);
        assert!(r.html.contains("Ann &lt;b&gt;&amp;&lt;/b&gt;"), "{}", r.html);
        assert!(!r.html.contains("<b>"));
    }

    #[test]
    fn saved_templates_take_over_unless_disabled() {
        let u = user();
        let ctx = Context {
            user: Some(&u),
            url: Some("https://x.test/v"),
            application_name: Some("CMS"),
            tenant: "t",
            ..Default::default()
        };
        let mut t = EmailTemplate {
            template: "verify_email".into(),
            body: Some("<p>{{ application.name }}: {{ user.email }} {{ url }}</p>".into()),
            subject: Some("Hi {{ user.name }}".into()),
            from: Some("CMS <no-reply@x.test>".into()),
            enabled: Some(true),
            ..Default::default()
        };
        let r = render("verify_email", Some(&t), &ctx).unwrap();
        assert_eq!(r.html, "<p>CMS: ann@example.test https://x.test/v</p>");
        assert_eq!(r.subject, "Hi Ann <b>&</b>", "the subject is not HTML");
        assert_eq!(r.from.as_deref(), Some("CMS <no-reply@x.test>"));
        t.enabled = Some(false);
        assert_eq!(render("verify_email", Some(&t), &ctx).unwrap().subject, "Verify your email");
    }

    #[test]
    fn syntax_errors_are_found_at_save_time() {
        let mut t =
            EmailTemplate { template: "verify_email".into(), body: Some("{% if %}".into()), ..Default::default() };
        assert!(check(&t).is_err());
        t.body = Some("{{ user.email ".into());
        assert!(check(&t).is_err());
        t.body = Some("<p>{{ user.email | upcase }}</p>".into());
        assert!(check(&t).is_ok());
        t.syntax = Some("handlebars".into());
        assert!(check(&t).is_err());
        t.syntax = Some("liquid".into());
        t.subject = Some("{% for %}".into());
        assert!(check(&t).is_err());
    }
}
