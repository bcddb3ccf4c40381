//! `/api/v2/email-templates` (POST) and `/api/v2/email-templates/{name}` (GET, PATCH, PUT):
//! the tenant's own text for Auth0's named mails. A template whose Liquid does not parse is
//! refused at save time with Auth0's 400, never found out when a mail is due.

use super::{ApiError, ApiResult, Caller, body_object, created, ok};
use crate::AppState;
use crate::mail::templates::{self, NAMES};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use store::mail::EmailTemplate;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/email-templates", post(create))
        .route("/email-templates/{name}", get(read).patch(update).put(replace))
}

const KEYS: &[&str] = &[
    "template",
    "body",
    "from",
    "subject",
    "syntax",
    "resultUrl",
    "urlLifetimeInSeconds",
    "includeEmailInRedirect",
    "enabled",
];

fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Payload validation error: {message}"))
}

fn not_found(name: &str) -> ApiError {
    ApiError::not_found(format!("The template does not exist: {name}"), "inexistent_email_template")
}

fn known(name: &str) -> ApiResult<()> {
    if NAMES.contains(&name) {
        return Ok(());
    }
    Err(ApiError::bad_query(format!("Path validation error: 'templateName' must be one of {}", NAMES.join(", "))))
}

async fn read(State(idp): State<AppState>, caller: Caller, Path(name): Path<String>) -> ApiResult {
    caller.require(&["read:email_templates"])?;
    known(&name)?;
    let template = idp.store.mail().email_template(&name).await?.ok_or_else(|| not_found(&name))?;
    Ok(ok(&json!(template)))
}

async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:email_templates"])?;
    let body = body_object(&body)?;
    let name = match body.get("template") {
        Some(Value::String(n)) if NAMES.contains(&n.as_str()) => n.clone(),
        Some(_) => return Err(invalid(format_args!("'template' must be one of {}.", NAMES.join(", ")))),
        None => return Err(invalid("Missing required property: template")),
    };
    let template = whole(&name, body)?;
    idp.store.mail().create_email_template(&template).await.map_err(|e| match e {
        store::Error::Conflict(_) => {
            ApiError::conflict(format!("Template {name} already exists."), "template_conflict")
        }
        other => other.into(),
    })?;
    Ok(created(&json!(template)))
}

/// PUT: the template as given, every unnamed field unset.
async fn replace(State(idp): State<AppState>, caller: Caller, Path(name): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:email_templates"])?;
    known(&name)?;
    let body = body_object(&body)?;
    let template = whole(&name, body)?;
    idp.store.mail().put_email_template(&template).await?;
    Ok(ok(&json!(template)))
}

/// PATCH: the named fields change, the others stay.
async fn update(State(idp): State<AppState>, caller: Caller, Path(name): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:email_templates"])?;
    known(&name)?;
    let patch = body_object(&body)?;
    let current = idp.store.mail().email_template(&name).await?.ok_or_else(|| not_found(&name))?;
    let Value::Object(mut doc) = json!(current) else { return Err(invalid("corrupt template")) };
    check_keys(&patch)?;
    for (k, v) in patch {
        if v.is_null() {
            doc.remove(&k);
        } else {
            doc.insert(k, v);
        }
    }
    let template = whole(&name, doc)?;
    idp.store.mail().put_email_template(&template).await?;
    Ok(ok(&json!(template)))
}

fn check_keys(body: &Map<String, Value>) -> ApiResult<()> {
    match body.keys().find(|k| !KEYS.contains(&k.as_str())) {
        Some(k) => Err(invalid(format_args!("'Additional properties not allowed: {k}'."))),
        None => Ok(()),
    }
}

/// A whole template from `body`, its types and Liquid checked; `template` must name `name`.
fn whole(name: &str, mut body: Map<String, Value>) -> ApiResult<EmailTemplate> {
    check_keys(&body)?;
    match body.get("template") {
        Some(Value::String(n)) if n == name => {}
        Some(_) => return Err(invalid(format_args!("'template' must be {name}."))),
        None => {
            body.insert("template".into(), json!(name));
        }
    }
    for k in ["body", "from", "subject", "syntax", "resultUrl"] {
        if body.get(k).is_some_and(|v| !v.is_string() && !v.is_null()) {
            return Err(invalid(format_args!("'{k}' must be a string.")));
        }
    }
    for k in ["includeEmailInRedirect", "enabled"] {
        if body.get(k).is_some_and(|v| !v.is_boolean() && !v.is_null()) {
            return Err(invalid(format_args!("'{k}' must be a boolean.")));
        }
    }
    if let Some(v) = body.get("urlLifetimeInSeconds").filter(|v| !v.is_null())
        && v.as_i64().is_none_or(|n| n < 0)
    {
        return Err(invalid("'urlLifetimeInSeconds' must be a non-negative integer."));
    }
    if let Some(url) = body.get("resultUrl").and_then(Value::as_str)
        && !url.is_empty()
        && url::Url::parse(url).map_or(true, |u| !matches!(u.scheme(), "http" | "https"))
    {
        return Err(invalid("'resultUrl' must be an http or https URL."));
    }
    if let Some(from) = body.get("from").and_then(Value::as_str)
        && !from.is_empty()
        && !from.contains("{{")
        && !crate::mail::smtp::valid_sender(from)
    {
        return Err(invalid("'from' must be an email address."));
    }
    let template: EmailTemplate = serde_json::from_value(Value::Object(body)).map_err(invalid)?;
    templates::check(&template).map_err(|e| ApiError::bad_request(e.0))?;
    Ok(template)
}
