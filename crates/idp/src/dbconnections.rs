//! Database-connection endpoints: `POST /dbconnections/signup`, `POST
//! /dbconnections/change_password`, and the password-reset page its mail links to
//! (`/lo/reset`). Errors use the `{name, code, description, statusCode}` shape of these
//! endpoints.

use crate::authorize::single_params;
use crate::mail::Message;
use crate::pages;
use crate::password::{check_for, check_policy};
use crate::util::{client_ip, html_escape, now_ms, random_hex, random_token, sha256};
use crate::{AppState, Error, Result};
use axum::Json;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Map, Value, json};
use std::net::SocketAddr;
use store::{Connection, Identity, PasswordTicket, StoredUser, User};

const TICKET_TTL_MS: i64 = 5 * 24 * 3600 * 1000;

fn bad(code: &'static str, description: impl Into<String>) -> Error {
    Error::db(StatusCode::BAD_REQUEST, "BadRequestError", code, description)
}

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    crate::json_body::parse(body).map_err(|e| bad("invalid_body", format!("Invalid request body: {e}")))
}

/// The connection named in a request, provided it is a database enabled for the client.
async fn database_for(idp: &AppState, client_id: &str, connection: &str) -> Result<Connection> {
    if idp.store.client(client_id).await?.is_none() {
        return Err(bad("invalid_client", format!("Unknown client: {client_id}")));
    }
    match idp.store.connection_by_name(connection).await? {
        Some(c) if c.is_database() && c.enabled_for(client_id) => Ok(c),
        Some(_) => Err(bad("connection_not_enabled", "Connection is not enabled for this client")),
        None => Err(bad("invalid_connection", format!("Connection does not exist: {connection}"))),
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Signup {
    client_id: String,
    email: String,
    password: String,
    connection: String,
    username: Option<String>,
    given_name: Option<String>,
    family_name: Option<String>,
    name: Option<String>,
    nickname: Option<String>,
    picture: Option<String>,
    phone_number: Option<String>,
    #[serde(default)]
    user_metadata: Map<String, Value>,
}

pub async fn signup(State(idp): State<AppState>, body: axum::body::Bytes) -> Response {
    match run_signup(&idp, &body).await {
        Ok(v) => Json(v).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run_signup(idp: &AppState, body: &[u8]) -> Result<Value> {
    let s: Signup = json_body(body)?;
    let connection = database_for(idp, &s.client_id, &s.connection).await?;
    if !looks_like_email(&s.email) {
        return Err(bad("invalid_email", "Invalid email address"));
    }
    if s.user_metadata.len() > 10
        || s.user_metadata
            .iter()
            .any(|(k, v)| k.chars().count() > 100 || v.as_str().is_none_or(|t| t.chars().count() > 500))
    {
        return Err(bad(
            "invalid_user_metadata",
            "user_metadata takes at most 10 string properties, names of at most 100 characters and values of at most 500",
        ));
    }
    // This endpoint is public: what it stores goes into every ID token of the account.
    for (key, value) in [
        ("username", &s.username),
        ("given_name", &s.given_name),
        ("family_name", &s.family_name),
        ("name", &s.name),
        ("nickname", &s.nickname),
        ("picture", &s.picture),
        ("phone_number", &s.phone_number),
    ] {
        if value.as_deref().is_some_and(|v| !fits_profile(v)) {
            return Err(bad("invalid_body", format!("{key} is longer than {MAX_PROFILE_CHARS} characters")));
        }
    }
    let user = register(idp, &connection, &s.email, &s.password, |u| {
        u.username = s.username.clone();
        u.given_name = s.given_name.clone();
        u.family_name = s.family_name.clone();
        u.phone_number = s.phone_number.clone();
        if let Some(n) = &s.name {
            u.name = Some(n.clone());
        }
        if let Some(n) = &s.nickname {
            u.nickname = Some(n.clone());
        }
        if let Some(p) = &s.picture {
            u.picture = Some(p.clone());
        }
        u.user_metadata = s.user_metadata.clone();
    })
    .await?;
    let mut out = json!({
        "_id": user.user_id.trim_start_matches("auth0|"),
        "email": user.email,
        "email_verified": false,
    });
    for (k, v) in [
        ("username", &user.username),
        ("given_name", &user.given_name),
        ("family_name", &user.family_name),
        ("name", &s.name),
        ("nickname", &s.nickname),
        ("picture", &s.picture),
    ] {
        if let Some(v) = v {
            out[k] = json!(v);
        }
    }
    if !user.user_metadata.is_empty() {
        out["user_metadata"] = json!(user.user_metadata);
    }
    Ok(out)
}

/// Public sign-up into a database connection (the endpoint and the sign-up page): the
/// connection must allow it, the password must meet its policy, the email must be free.
pub async fn register(
    idp: &AppState,
    connection: &Connection,
    email: &str,
    password: &str,
    customise: impl FnOnce(&mut User),
) -> Result<User> {
    if connection.signup_disabled() {
        return Err(bad("operation_not_allowed", "public signup is disabled"));
    }
    if !looks_like_email(email) {
        return Err(bad("invalid_email", "Invalid email address"));
    }
    if let Err(why) = check_for(connection, password) {
        return Err(Error::db(StatusCode::BAD_REQUEST, "PasswordStrengthError", "invalid_password", why));
    }
    let user = new_user(&connection.name, email, customise);
    crate::metadata::check(&user, idp.config.metadata_limit_bytes)
        .map_err(|e| bad("invalid_user_metadata", e.to_string()))?;
    // A username signs in like an email: it must name no other user of the connection.
    if let Some(username) = &user.username
        && idp.store.user_by_login(&connection.name, username).await?.is_some()
    {
        return Err(bad("invalid_signup", "Invalid sign up"));
    }
    let hash = idp.hash_password(password).await?;
    match idp.store.create_user(&StoredUser { user: user.clone(), password_hash: Some(hash) }).await {
        Ok(()) => Ok(user),
        Err(store::Error::Conflict(_)) => Err(bad("invalid_signup", "Invalid sign up")),
        Err(e) => Err(e.into()),
    }
}

/// The longest profile string (name, nickname, picture URL, …) a user record takes, wherever
/// it is set.
pub const MAX_PROFILE_CHARS: usize = 300;

pub fn fits_profile(s: &str) -> bool {
    s.chars().count() <= MAX_PROFILE_CHARS
}

pub fn looks_like_email(s: &str) -> bool {
    let Some((local, domain)) = s.split_once('@') else {
        return false;
    };
    !local.is_empty()
        && domain.contains('.')
        && !domain.starts_with('.')
        && !domain.ends_with('.')
        && !s.contains(char::is_whitespace)
        && s.len() <= 320
}

/// A database user with Auth0's defaults: `auth0|<24 hex>`, name = email, nickname = the
/// email's local part, a Gravatar picture.
pub fn new_user(connection: &str, email: &str, customise: impl FnOnce(&mut User)) -> User {
    let now = now_ms();
    let id = random_hex(24);
    let email = email.trim().to_string();
    let local = email.split('@').next().unwrap_or("").to_string();
    let digest: String = sha256(email.to_lowercase().as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let identity = Identity {
        connection: connection.to_string(),
        provider: "auth0".into(),
        user_id: id.clone(),
        is_social: false,
    };
    let mut user = User::new(format!("auth0|{id}"), connection.to_string(), identity, now);
    user.email = Some(email.clone());
    user.name = Some(email);
    user.nickname = Some(local);
    user.picture = Some(format!("https://s.gravatar.com/avatar/{digest}?s=480&r=pg&d=identicon"));
    customise(&mut user);
    user
}

#[derive(Deserialize)]
struct ChangePassword {
    client_id: String,
    email: String,
    connection: String,
    #[allow(dead_code)]
    organization: Option<String>,
}

pub async fn change_password(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ip = client_ip(idp.config.trust_proxy, &headers, Some(peer));
    match run_change_password(&idp, &body, &ip).await {
        Ok(()) => {
            let mut res = "We've just sent you an email to reset your password.".into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            res
        }
        Err(e) => e.into_response(),
    }
}

/// Sends a reset mail, unless the account does not exist or the limits of
/// [`ResetMails`](crate::ResetMails) are reached: every one of those cases gets the same
/// answer as a sent mail, so the endpoint can neither list accounts nor flood a mailbox.
async fn run_change_password(idp: &AppState, body: &[u8], ip: &str) -> Result<()> {
    let req: ChangePassword = json_body(body)?;
    let connection = database_for(idp, &req.client_id, &req.connection).await?;
    let limits = idp.config.reset_mails;
    let (now, window_ms) = (now_ms(), limits.window_secs * 1000);
    // Every request counts against its address, found or not: otherwise probing for accounts
    // would be free.
    if idp.store.count_hit(&format!("reset-mail:ip:{ip}"), now, window_ms).await? > limits.per_ip {
        tracing::warn!(ip, "reset mails from this address over the limit; none sent");
        return Ok(());
    }
    let Some(stored) = idp.store.user_by_login(&connection.name, &req.email).await? else {
        return Ok(());
    };
    // The link goes to the account's own address, never to what was typed: a username, or an
    // address that only matched once lower-cased, is not where the account receives mail.
    let Some(to) = stored.user.email.clone() else {
        return Ok(());
    };
    let user_id = &stored.user.user_id;
    if idp.store.count_hit(&format!("reset-mail:user:{user_id}"), now, window_ms).await? > limits.per_user {
        tracing::warn!(%user_id, "reset mails to this account over the limit; none sent");
        return Ok(());
    }
    let ticket = random_token();
    let record = PasswordTicket {
        ticket_sha256: sha256(ticket.as_bytes()),
        user_id: user_id.clone(),
        expires_at: now + TICKET_TTL_MS,
    };
    idp.store.put_password_ticket(&record).await?;
    let link = idp.config.url(&format!("lo/reset?ticket={ticket}"));
    let message = Message {
        to,
        subject: "Reset your password".into(),
        body: format!(
            "Someone asked to reset the password of your account.\n\nTo choose a new password, open:\n{link}\n\nIf it was not you, ignore this message."
        ),
    };
    idp.mailer.send(message).await.map_err(Error::internal)
}

/// The user a live reset ticket is for; any other ticket is an error page.
async fn ticket_user(idp: &AppState, ticket: &str) -> Result<StoredUser> {
    let invalid =
        || Error::page(StatusCode::BAD_REQUEST, "Invalid link", "This password reset link is invalid or has expired.");
    let found = idp.store.password_ticket(&sha256(ticket.as_bytes()), now_ms()).await?.ok_or_else(invalid)?;
    idp.store.user(&found.user_id).await?.ok_or_else(invalid)
}

fn reset_form(ticket: &str, error: Option<&str>) -> String {
    let err =
        error.map(|e| format!("<div class=\"error\" role=\"alert\">{}</div>", html_escape(e))).unwrap_or_default();
    let body = format!(
        "<h1>Change your password</h1>{err}<form method=\"post\" action=\"/lo/reset\"><input type=\"hidden\" name=\"ticket\" value=\"{}\">\
         <label for=\"password\">New password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">Reset password</button></form>",
        html_escape(ticket)
    );
    pages::page("Change your password", &body)
}

pub async fn reset_page(State(idp): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = single_params(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let ticket = q.get("ticket").cloned().unwrap_or_default();
    match ticket_user(&idp, &ticket).await {
        Ok(_) => Html(reset_form(&ticket, None)).into_response(),
        Err(e) => e.into_page().into_response(),
    }
}

pub async fn reset_submit(State(idp): State<AppState>, body: String) -> Response {
    let run = async {
        let form = single_params(&body).map_err(|e| Error::page(StatusCode::BAD_REQUEST, "Bad request", e))?;
        let ticket = form.get("ticket").cloned().unwrap_or_default();
        let password = form.get("password").cloned().unwrap_or_default();
        let mut stored = ticket_user(&idp, &ticket).await?;
        let connection = idp.store.connection_by_name(&stored.user.connection).await?;
        let checked = match &connection {
            Some(c) => check_for(c, &password),
            None => check_policy(None, &password),
        };
        if let Err(why) = checked {
            return Ok((StatusCode::BAD_REQUEST, Html(reset_form(&ticket, Some(why)))).into_response());
        }
        // Ends this ticket too, with every other one of the user's.
        crate::password::replace(&idp, &mut stored, &password).await?;
        Ok::<_, Error>(
            Html(pages::message_page(
                "Password changed",
                "Your password has been changed. You can now log in with it.",
            ))
            .into_response(),
        )
    };
    run.await.unwrap_or_else(|e| e.into_page().into_response())
}
