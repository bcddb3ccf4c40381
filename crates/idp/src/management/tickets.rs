//! `/api/v2/tickets/email-verification` and `/api/v2/tickets/password-change` (scope
//! `create:user_tickets`): one-time links answered as `{"ticket": URL}`; and
//! `POST /api/v2/jobs/verification-email` (scope `update:users`), which mails the
//! verification link at once.

use super::{ApiError, ApiResult, Caller, body_object, created, roles::user_not_found};
use crate::AppState;
use crate::accounts::verify::{self, DEFAULT_TTL_SECS, MAX_TTL_SECS};
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::post;
use serde_json::{Map, Value, json};
use store::User;
use store::mail::TicketOptions;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/tickets/email-verification", post(email_verification))
        .route("/tickets/password-change", post(password_change))
        .route("/jobs/verification-email", post(verification_email_job))
}

fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Payload validation error: {message}"))
}

fn check_keys(body: &Map<String, Value>, allowed: &[&str]) -> ApiResult<()> {
    match body.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(invalid(format_args!("'Additional properties not allowed: {k}'."))),
        None => Ok(()),
    }
}

fn string<'a>(body: &'a Map<String, Value>, key: &str) -> ApiResult<Option<&'a str>> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) if !s.is_empty() => Ok(Some(s)),
        Some(_) => Err(invalid(format_args!("'{key}' must be a non-empty string."))),
    }
}

fn flag(body: &Map<String, Value>, key: &str, default: bool) -> ApiResult<bool> {
    match body.get(key) {
        None | Some(Value::Null) => Ok(default),
        Some(Value::Bool(b)) => Ok(*b),
        Some(_) => Err(invalid(format_args!("'{key}' must be a boolean."))),
    }
}

/// `ttl_sec`: 0 or absent is Auth0's default (5 days), at most 30 days.
fn ttl(body: &Map<String, Value>) -> ApiResult<i64> {
    match body.get("ttl_sec") {
        None | Some(Value::Null) => Ok(DEFAULT_TTL_SECS),
        Some(v) => match v.as_i64() {
            Some(0) => Ok(DEFAULT_TTL_SECS),
            Some(n) if (1..=MAX_TTL_SECS).contains(&n) => Ok(n),
            _ => Err(invalid(format_args!("'ttl_sec' must be an integer from 0 to {MAX_TTL_SECS}."))),
        },
    }
}

fn result_url(body: &Map<String, Value>) -> ApiResult<Option<String>> {
    let Some(url) = string(body, "result_url")? else { return Ok(None) };
    match url::Url::parse(url) {
        Ok(u) if matches!(u.scheme(), "http" | "https") => Ok(Some(url.to_owned())),
        _ => Err(invalid("'result_url' must be an http or https URL.")),
    }
}

async fn client_id(idp: &AppState, body: &Map<String, Value>) -> ApiResult<Option<String>> {
    let Some(id) = string(body, "client_id")? else { return Ok(None) };
    if idp.store.client(id).await?.is_none() {
        return Err(ApiError::not_found("The client does not exist", "inexistent_client"));
    }
    Ok(Some(id.to_owned()))
}

async fn user(idp: &AppState, user_id: &str) -> ApiResult<User> {
    Ok(idp.store.user(user_id).await?.ok_or_else(user_not_found)?.user)
}

async fn email_verification(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:user_tickets"])?;
    let body = body_object(&body)?;
    check_keys(
        &body,
        &["user_id", "result_url", "ttl_sec", "includeEmailInRedirect", "client_id", "identity", "organization_id"],
    )?;
    let user_id = string(&body, "user_id")?.ok_or_else(|| invalid("Missing required property: user_id"))?;
    let options = TicketOptions {
        result_url: result_url(&body)?,
        include_email_in_redirect: flag(&body, "includeEmailInRedirect", true)?,
        mark_email_as_verified: true,
        client_id: client_id(&idp, &body).await?,
    };
    let ttl = ttl(&body)?;
    let user = user(&idp, user_id).await?;
    if user.email.is_none() {
        return Err(invalid("the user has no email address."));
    }
    let ticket = verify::verification_ticket(&idp, &user, options, ttl).await?;
    Ok(created(&json!({ "ticket": ticket })))
}

async fn password_change(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:user_tickets"])?;
    let body = body_object(&body)?;
    check_keys(
        &body,
        &[
            "user_id",
            "email",
            "connection_id",
            "result_url",
            "ttl_sec",
            "mark_email_as_verified",
            "includeEmailInRedirect",
            "client_id",
            "organization_id",
        ],
    )?;
    let user = match (string(&body, "user_id")?, string(&body, "email")?, string(&body, "connection_id")?) {
        (Some(id), None, None) => user(&idp, id).await?,
        (None, Some(email), Some(connection_id)) => {
            let connection = idp
                .store
                .connection(connection_id)
                .await?
                .ok_or_else(|| ApiError::not_found("The connection does not exist", "inexistent_connection"))?;
            idp.store.user_by_login(&connection.name, email).await?.ok_or_else(user_not_found)?.user
        }
        _ => return Err(invalid("give either user_id, or email and connection_id.")),
    };
    let options = TicketOptions {
        result_url: result_url(&body)?,
        include_email_in_redirect: flag(&body, "includeEmailInRedirect", false)?,
        mark_email_as_verified: flag(&body, "mark_email_as_verified", false)?,
        client_id: client_id(&idp, &body).await?,
    };
    let ticket = verify::password_change_ticket(&idp, &user, options, ttl(&body)?).await?;
    Ok(created(&json!({ "ticket": ticket })))
}

/// Auth0 answers with a job; this one is done when it answers (the mail is queued).
async fn verification_email_job(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["update:users"])?;
    let body = body_object(&body)?;
    check_keys(&body, &["user_id", "client_id", "identity", "organization_id"])?;
    let user_id = string(&body, "user_id")?.ok_or_else(|| invalid("Missing required property: user_id"))?;
    let client = client_id(&idp, &body).await?;
    let user = user(&idp, user_id).await?;
    if user.email.is_none() {
        return Err(invalid("the user has no email address."));
    }
    verify::send_verification(&idp, &user, client.as_deref(), false).await?;
    Ok(created(&json!({
        "type": "verification_email",
        "status": "completed",
        "created_at": crate::util::iso8601(idp.now()),
        "id": format!("job_{}", crate::util::random_alnum(16)),
    })))
}
