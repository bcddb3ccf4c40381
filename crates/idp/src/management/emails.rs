//! `/api/v2/emails/provider`: the tenant's one email provider. Only `smtp` delivers here
//! (`credentials.smtp_host/smtp_port/smtp_user/smtp_pass`); the other names Auth0 knows are
//! refused rather than stored and silently unused. `smtp_pass` is write-only, sealed at rest
//! like Action secrets. `POST /emails/provider/test` (not Auth0's: its dashboard has the button)
//! sends one message at once and answers with the server's error, bounded by the SMTP timeout.

use super::{ApiError, ApiResult, Caller, Query, body_object, created, no_content, ok, select};
use crate::mail::Message;
use crate::mail::provider;
use crate::{AppState, mail};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use store::mail::EmailProvider;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/emails/provider", get(read).post(create).patch(update).delete(remove))
        .route("/emails/provider/test", post(test_send))
}

/// Provider names Auth0 accepts; only the last delivers here.
const AUTH0_PROVIDERS: &[&str] =
    &["mandrill", "sendgrid", "sparkpost", "mailgun", "ses", "azure_cs", "ms365", "custom", "smtp"];
const KEYS: &[&str] = &["name", "enabled", "default_from_address", "credentials", "settings"];
const CREDENTIAL_KEYS: &[&str] = &["smtp_host", "smtp_port", "smtp_user", "smtp_pass"];

fn not_configured() -> ApiError {
    ApiError::not_found("Email provider has not been configured.", "inexistent_email_provider")
}

fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Payload validation error: {message}"))
}

/// What GET answers: everything but the password.
fn to_json(p: &EmailProvider) -> Value {
    let mut v = json!({ "name": p.name, "enabled": p.enabled, "credentials": p.credentials });
    if let Some(from) = &p.default_from_address {
        v["default_from_address"] = json!(from);
    }
    if let Some(settings) = &p.settings {
        v["settings"] = settings.clone();
    }
    v
}

async fn read(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:email_provider"])?;
    let provider = idp.store.mail().email_provider().await?.ok_or_else(not_configured)?;
    Ok(ok(&select(to_json(&provider), &q.fields()?)))
}

async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:email_provider"])?;
    let body = body_object(&body)?;
    let mut provider = EmailProvider { enabled: true, ..Default::default() };
    apply(&idp, &mut provider, body, true)?;
    idp.store.mail().create_email_provider(&provider).await.map_err(|e| match e {
        store::Error::Conflict(_) => {
            ApiError::conflict("An email provider is already configured.", "email_provider_conflict")
        }
        other => other.into(),
    })?;
    Ok(created(&to_json(&provider)))
}

async fn update(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["update:email_provider"])?;
    let body = body_object(&body)?;
    let mut provider = idp.store.mail().email_provider().await?.ok_or_else(not_configured)?;
    apply(&idp, &mut provider, body, false)?;
    idp.store.mail().update_email_provider(&provider).await.map_err(|e| match e {
        store::Error::NotFound(_) => not_configured(),
        other => other.into(),
    })?;
    Ok(ok(&to_json(&provider)))
}

async fn remove(State(idp): State<AppState>, caller: Caller) -> ApiResult {
    caller.require(&["delete:email_provider"])?;
    if !idp.store.mail().delete_email_provider().await? {
        return Err(not_configured());
    }
    Ok(no_content())
}

/// Checks `body` (a whole provider when `creating`, else a patch) and writes it into
/// `provider`: credentials merge key by key, the password is sealed and never kept in them.
fn apply(idp: &AppState, provider: &mut EmailProvider, body: Map<String, Value>, creating: bool) -> ApiResult<()> {
    if let Some(k) = body.keys().find(|k| !KEYS.contains(&k.as_str())) {
        return Err(invalid(format_args!("'Additional properties not allowed: {k}'.")));
    }
    match body.get("name") {
        Some(Value::String(name)) if name == "smtp" => provider.name = name.clone(),
        Some(Value::String(name)) if AUTH0_PROVIDERS.contains(&name.as_str()) => {
            return Err(invalid(format_args!("the '{name}' provider is not supported by this server; use 'smtp'.")));
        }
        Some(_) => return Err(invalid(format_args!("'name' must be one of {}.", AUTH0_PROVIDERS.join(", ")))),
        None if creating => return Err(invalid("Missing required property: name")),
        None => {}
    }
    match body.get("enabled") {
        Some(Value::Bool(b)) => provider.enabled = *b,
        Some(_) => return Err(invalid("'enabled' must be a boolean.")),
        None => {}
    }
    match body.get("default_from_address") {
        Some(Value::String(from)) if mail::smtp::valid_sender(from) => {
            provider.default_from_address = Some(from.clone())
        }
        Some(Value::Null) => provider.default_from_address = None,
        Some(_) => return Err(invalid("'default_from_address' must be an email address.")),
        None => {}
    }
    match body.get("settings") {
        Some(v @ Value::Object(_)) => provider.settings = Some(v.clone()),
        Some(Value::Null) => provider.settings = None,
        Some(_) => return Err(invalid("'settings' must be an object.")),
        None => {}
    }
    match body.get("credentials") {
        Some(Value::Object(c)) => apply_credentials(idp, provider, c)?,
        Some(_) => return Err(invalid("'credentials' must be an object.")),
        None if creating => return Err(invalid("Missing required property: credentials")),
        None => {}
    }
    if !provider.credentials.contains_key("smtp_host") || !provider.credentials.contains_key("smtp_port") {
        return Err(invalid("the smtp provider requires credentials.smtp_host and credentials.smtp_port."));
    }
    Ok(())
}

fn apply_credentials(idp: &AppState, provider: &mut EmailProvider, c: &Map<String, Value>) -> ApiResult<()> {
    if let Some(k) = c.keys().find(|k| !CREDENTIAL_KEYS.contains(&k.as_str())) {
        return Err(invalid(format_args!("'Additional properties not allowed: credentials.{k}'.")));
    }
    if let Some(host) = c.get("smtp_host") {
        let valid = host.as_str().filter(|h| {
            !h.is_empty() && h.len() <= 253 && h.chars().all(|ch| ch.is_ascii_alphanumeric() || ".-:[]".contains(ch))
        });
        let host = valid.ok_or_else(|| invalid("'credentials.smtp_host' must be a host name."))?;
        provider.credentials.insert("smtp_host".into(), json!(host));
    }
    if let Some(port) = c.get("smtp_port") {
        let port = port
            .as_u64()
            .filter(|p| (1..=65535).contains(p))
            .ok_or_else(|| invalid("'credentials.smtp_port' must be an integer from 1 to 65535."))?;
        provider.credentials.insert("smtp_port".into(), json!(port));
    }
    match c.get("smtp_user") {
        Some(Value::String(user)) if !user.contains(['\r', '\n']) && user.len() <= 512 => {
            provider.credentials.insert("smtp_user".into(), json!(user));
        }
        Some(Value::Null) => {
            provider.credentials.remove("smtp_user");
        }
        Some(_) => return Err(invalid("'credentials.smtp_user' must be a string.")),
        None => {}
    }
    match c.get("smtp_pass") {
        Some(Value::String(pass)) if pass.len() <= 1024 => {
            provider.smtp_pass_sealed = Some(provider::seal_password(&idp.secrets, pass)?);
        }
        Some(Value::Null) => provider.smtp_pass_sealed = None,
        Some(_) => return Err(invalid("'credentials.smtp_pass' must be a string.")),
        None => {}
    }
    Ok(())
}

/// Sends `{"to": …}` a short message now through the configured provider (the outbox when none
/// is enabled) and answers 200 `{"sent": true}`, or 502 with what the server said.
async fn test_send(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["update:email_provider", "create:email_provider"])?;
    let body = body_object(&body)?;
    let to = match body.get("to") {
        Some(Value::String(to)) if mail::smtp::valid_sender(to) => to.clone(),
        _ => return Err(invalid("'to' must be an email address.")),
    };
    let message = Message {
        to,
        subject: "Test message".into(),
        body: "This message tests the email provider of your tenant.".into(),
        from: None,
        html: None,
    };
    // Answered before the request's own time limit, so the caller gets the reason rather than
    // a bare 504 when the server stalls.
    let limit = idp
        .config
        .request_timeout
        .saturating_sub(std::time::Duration::from_secs(2))
        .max(std::time::Duration::from_secs(1));
    match tokio::time::timeout(limit, crate::mail::queue::send_now(&idp, &message)).await {
        Ok(Ok(())) => Ok(ok(&json!({ "sent": true }))),
        Ok(Err(e)) => Err(ApiError::new(StatusCode::BAD_GATEWAY, e.message, Some("email_provider_error"))),
        Err(_) => Err(ApiError::new(
            StatusCode::BAD_GATEWAY,
            format!("the SMTP server did not finish within {} s", limit.as_secs()),
            Some("email_provider_error"),
        )),
    }
}
