//! `/api/v2/users` and `/api/v2/users-by-email`: user records with Auth0's semantics — metadata
//! merged one level deep on PATCH (`null` deletes a key, `{}` clears), conflicting changes
//! refused, passwords checked against the connection's policy and hashed off the runtime.

use super::clients::merge_metadata;
use super::{ApiError, ApiResult, Caller, Query, body_object, created, no_content, ok, select};
use crate::AppState;
use crate::accounts::password::check_for;
use crate::accounts::signup::{MAX_PROFILE_CHARS, fits_profile, looks_like_email, new_user};
use crate::accounts::verify;
use crate::util::{iso8601, now_ms};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Map, Value, json};
use store::{Connection, StoredUser, User};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/{id}", get(read).patch(update).delete(remove))
        .route("/users-by-email", get(by_email))
}

fn not_found() -> ApiError {
    ApiError::not_found("The user does not exist.", "inexistent_user")
}

/// A user as the Management API shows it: timestamps as ISO strings, identities' ids without
/// the provider prefix.
pub fn to_json(u: &User) -> Value {
    let mut v = json!(u);
    if let Value::Object(m) = &mut v {
        m.remove("connection");
        for k in ["created_at", "updated_at", "last_login", "last_password_reset"] {
            if let Some(ms) = m.get(k).and_then(Value::as_i64) {
                m.insert(k.into(), json!(iso8601(ms)));
            }
        }
    }
    v
}

async fn database(idp: &AppState, name: &str) -> ApiResult<Connection> {
    let c = idp
        .store
        .connection_by_name(name)
        .await?
        .filter(|c| !crate::admins::is_reserved(&c.id))
        .ok_or_else(|| ApiError::bad_request(format!("The connection does not exist: {name}")))?;
    if !c.is_database() {
        return Err(ApiError::bad_request(format!("Users cannot be created in the {} connection {name}", c.strategy)));
    }
    Ok(c)
}

fn policy_check(c: &Connection, password: &str) -> ApiResult<()> {
    check_for(c, password).map_err(|why| {
        ApiError::new(StatusCode::BAD_REQUEST, format!("PasswordStrengthError: {why}"), Some("invalid_body"))
    })
}

fn string_field(doc: &mut Map<String, Value>, key: &str) -> ApiResult<Option<Option<String>>> {
    match doc.remove(key) {
        None => Ok(None),
        Some(Value::Null) => Ok(Some(None)),
        Some(Value::String(s)) if fits_profile(&s) => Ok(Some(Some(s))),
        Some(_) => Err(ApiError::bad_request(format!(
            "Payload validation error: '{key}' must be a string of at most {MAX_PROFILE_CHARS} characters."
        ))),
    }
}

fn bool_field(doc: &mut Map<String, Value>, key: &str) -> ApiResult<Option<bool>> {
    match doc.remove(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(b)),
        Some(_) => Err(ApiError::bad_request(format!("Payload validation error: '{key}' must be a boolean."))),
    }
}

fn metadata_field(doc: &mut Map<String, Value>, key: &str) -> ApiResult<Option<Value>> {
    match doc.remove(key) {
        None => Ok(None),
        Some(v @ (Value::Object(_) | Value::Null)) => {
            if v.to_string().len() > 16 * 1024 {
                return Err(ApiError::bad_request(format!("Payload validation error: '{key}' is larger than 16 KB.")));
            }
            Ok(Some(v))
        }
        Some(_) => Err(ApiError::bad_request(format!("Payload validation error: '{key}' must be an object."))),
    }
}

async fn read(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require_on_user(&["read:users", "read:user_idp_tokens", "read:current_user"], &id)?;
    let u = idp.store.user(&id).await?.ok_or_else(not_found)?;
    Ok(ok(&select(to_json(&u.user), &q.fields()?)))
}

async fn list(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:users", "read:user_idp_tokens"])?;
    let mut search = super::search::user_search(&q)?;
    search.query = Some(crate::admins::without_admins(search.query.take()));
    let fields = q.fields()?;
    let store::UserPage { users, total } = idp.store.search_users(&search).await?;
    let users = users.iter().map(|u| select(to_json(&u.user), &fields)).collect();
    Ok(ok(&super::search::page_body(&search, users, total)))
}

async fn by_email(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:users"])?;
    let email = q
        .get("email")
        .filter(|e| !e.is_empty())
        .ok_or_else(|| ApiError::bad_query("Query validation error: Missing required property: email"))?;
    let fields = q.fields()?;
    let mut out = Vec::new();
    // Every connection's users, social ones included, as on Auth0.
    for c in idp.store.connections().await?.into_iter().filter(|c| !crate::admins::is_reserved(&c.id)) {
        if let Some(u) = idp.store.user_by_login(&c.name, email).await?
            && u.user.email.as_deref() == Some(email)
        {
            out.push(select(to_json(&u.user), &fields));
        }
    }
    Ok(ok(&json!(out)))
}

async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:users"])?;
    let mut doc = body_object(&body)?;
    let connection = match doc.remove("connection") {
        Some(Value::String(c)) => database(&idp, &c).await?,
        _ => return Err(ApiError::bad_request("Payload validation error: Missing required property: connection")),
    };
    let email = string_field(&mut doc, "email")?.flatten().map(|e| e.to_lowercase());
    let Some(email) = email.filter(|e| looks_like_email(e)) else {
        return Err(ApiError::bad_request("Payload validation error: a valid 'email' is required for database users."));
    };
    let password = string_field(&mut doc, "password")?.flatten();
    let Some(password) = password else {
        return Err(ApiError::bad_request("Payload validation error: Missing required property: password"));
    };
    policy_check(&connection, &password)?;
    let custom_id = string_field(&mut doc, "user_id")?.flatten();
    let mut user = new_user(&connection.name, &email, |_| {});
    if let Some(id) = custom_id {
        let id = id.strip_prefix("auth0|").unwrap_or(&id).to_owned();
        user.user_id = format!("auth0|{id}");
        user.identities[0].user_id = id;
    }
    apply_profile(&mut user, &mut doc)?;
    for (k, target) in [("app_metadata", &mut user.app_metadata), ("user_metadata", &mut user.user_metadata)] {
        if let Some(Value::Object(m)) = metadata_field(&mut doc, k)? {
            *target = m;
        }
    }
    user.blocked = bool_field(&mut doc, "blocked")?.unwrap_or(false);
    user.email_verified = bool_field(&mut doc, "email_verified")?.unwrap_or(false);
    let verify_email = bool_field(&mut doc, "verify_email")?;
    for ignored in ["phone_verified", "connection"] {
        doc.remove(ignored);
    }
    refuse_additional(&doc)?;
    if let Some(username) = &user.username {
        username_free(&idp, &connection.name, username).await?;
    }
    username_free(&idp, &connection.name, &email).await?;
    metadata_fits(&idp, &user)?;
    let hash = idp.hash_password(&password).await?;
    match idp.store.create_user(&StoredUser { user: user.clone(), password_hash: Some(hash) }).await {
        Ok(()) => {
            verify::after_create(&idp, &user, verify_email).await;
            Ok(created(&to_json(&user)))
        }
        Err(store::Error::Conflict(_)) => Err(ApiError::conflict("The user already exists.", "auth0_idp_error")),
        Err(e) => Err(e.into()),
    }
}

/// The user as it would be stored keeps to Auth0's bound on metadata (a PATCH merges, so a
/// request of any size can be the one that crosses it).
fn metadata_fits(idp: &AppState, user: &User) -> ApiResult<()> {
    crate::metadata::check(user, idp.config.metadata_limit_bytes)
        .map_err(|e| ApiError::bad_request(format!("Payload validation error: {e}.")))
}

/// Keys left over once every known one was taken: Auth0 refuses them. (Stored, a key that
/// names one of the record's own fields would make it unreadable.)
fn refuse_additional(doc: &Map<String, Value>) -> ApiResult<()> {
    match doc.keys().next() {
        Some(k) => {
            Err(ApiError::bad_request(format!("Payload validation error: 'Additional properties not allowed: {k}'.")))
        }
        None => Ok(()),
    }
}

/// A username signs in like an email, so it must name no other user of the connection, nor an
/// identity linked into another user (which still signs in by its login names).
async fn username_free(idp: &AppState, connection: &str, username: &str) -> ApiResult<()> {
    let taken = idp.store.user_by_login(connection, username).await?.is_some()
        || idp.store.linked_login(connection, username).await?.is_some();
    if taken { Err(ApiError::conflict("The user already exists.", "auth0_idp_error")) } else { Ok(()) }
}

/// Profile strings: a value replaces, `null` unsets.
fn apply_profile(user: &mut User, doc: &mut Map<String, Value>) -> ApiResult<()> {
    let fields: [(&str, &mut Option<String>); 7] = [
        ("name", &mut user.name),
        ("nickname", &mut user.nickname),
        ("given_name", &mut user.given_name),
        ("family_name", &mut user.family_name),
        ("picture", &mut user.picture),
        ("username", &mut user.username),
        ("phone_number", &mut user.phone_number),
    ];
    for (key, slot) in fields {
        if let Some(v) = string_field(doc, key)? {
            *slot = v;
        }
    }
    Ok(())
}

const METADATA_ONLY: &[&str] = &["app_metadata", "user_metadata"];

/// The scopes that may change one field of a user, as on Auth0: `update:users` every field,
/// `update:users_app_metadata` the two metadata objects, and a user's own
/// `update:current_user_metadata` (or `create:current_user_metadata`) only their
/// `user_metadata` (never a password, an email or `app_metadata`).
fn field_scopes(field: &str) -> &'static [&'static str] {
    match field {
        "user_metadata" => &[
            "update:users",
            "update:users_app_metadata",
            "update:current_user_metadata",
            "create:current_user_metadata",
        ],
        "app_metadata" => &["update:users", "update:users_app_metadata"],
        _ => &["update:users"],
    }
}

async fn update(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require_on_user(
        &["update:users", "update:users_app_metadata", "update:current_user_metadata", "create:current_user_metadata"],
        &id,
    )?;
    let mut doc = body_object(&body)?;
    for field in doc.keys() {
        caller.require_on_user(field_scopes(field), &id)?;
    }
    let together = |a: &str, b: &str| doc.contains_key(a) && doc.contains_key(b);
    for (a, b) in [
        ("password", "email"),
        ("password", "email_verified"),
        ("username", "email"),
        ("username", "email_verified"),
        ("username", "password"),
    ] {
        if together(a, b) {
            return Err(ApiError::bad_request(format!("Cannot update {a} and {b} simultaneously")));
        }
    }
    let mut stored = idp.store.user(&id).await?.ok_or_else(not_found)?;
    let connection = idp.store.connection_by_name(&stored.user.connection).await?;
    let before = stored.user.username.clone();
    let user = &mut stored.user;
    if let Some(email) = string_field(&mut doc, "email")? {
        let Some(email) = email.map(|e| e.to_lowercase()).filter(|e| looks_like_email(e)) else {
            return Err(ApiError::bad_request("Payload validation error: 'email' must be a valid email."));
        };
        if user.email.as_deref() != Some(&email) {
            user.email = Some(email);
            user.email_verified = false;
        }
    }
    apply_profile(user, &mut doc)?;
    let username_changes = user.username != before;
    if let Some(v) = bool_field(&mut doc, "email_verified")? {
        user.email_verified = v;
    }
    if let Some(v) = bool_field(&mut doc, "blocked")? {
        user.blocked = v;
    }
    for key in METADATA_ONLY {
        if let Some(patch) = metadata_field(&mut doc, key)? {
            let mut holder = Map::new();
            let current = if *key == "app_metadata" { &mut user.app_metadata } else { &mut user.user_metadata };
            holder.insert((*key).into(), Value::Object(std::mem::take(current)));
            merge_metadata(&mut holder, key, patch)?;
            if let Some(Value::Object(m)) = holder.remove(*key) {
                *current = m;
            }
        }
    }
    let password = string_field(&mut doc, "password")?.flatten();
    if let Some(p) = &password {
        let c = connection
            .as_ref()
            .filter(|c| c.is_database())
            .ok_or_else(|| ApiError::bad_request("Only database users have a password."))?;
        policy_check(c, p)?;
    }
    for ignored in ["verify_email", "verify_phone_number", "phone_verified", "connection", "client_id", "user_id"] {
        doc.remove(ignored);
    }
    refuse_additional(&doc)?;
    if let Some(username) = stored.user.username.as_deref().filter(|_| username_changes) {
        username_free(&idp, &stored.user.connection, username).await?;
    }
    metadata_fits(&idp, &stored.user)?;
    stored.user.updated_at = now_ms();
    let written = match &password {
        // The one path for a new password: it also ends the user's sessions, refresh tokens
        // and reset tickets.
        Some(p) => crate::accounts::password::replace(&idp, &mut stored, p).await,
        None => idp.store.update_user(&stored).await.map_err(Into::into),
    };
    match written {
        Ok(()) => {}
        Err(crate::Error::Store(store::Error::Conflict(_))) => {
            return Err(ApiError::conflict("The specified new email already exists", "auth0_idp_error"));
        }
        Err(e) => return Err(e.into()),
    }
    Ok(ok(&to_json(&stored.user)))
}

async fn remove(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require_on_user(&["delete:users", "delete:current_user"], &id)?;
    idp.store.delete_user(&id).await?;
    Ok(no_content())
}
