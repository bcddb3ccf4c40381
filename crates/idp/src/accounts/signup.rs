//! Public sign-up into a database connection (the `/dbconnections/signup` endpoint and the
//! sign-up page): the connection must allow it, the password must meet its policy, the email
//! must be free.

use super::password::check_for;
use crate::util::{random_hex, sha256};
use crate::{AppState, Error, Result};
use serde::Deserialize;
use serde_json::{Map, Value};
use store::{Connection, Identity, StoredUser, User};

fn bad(code: &'static str, description: impl Into<String>) -> Error {
    Error::refused(code, description)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Signup {
    pub client_id: String,
    pub email: String,
    pub password: String,
    pub connection: String,
    pub username: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    pub phone_number: Option<String>,
    #[serde(default)]
    pub user_metadata: Map<String, Value>,
}

/// `POST /dbconnections/signup`, recorded as `ss` or `fs` (`ip` is the caller's address).
pub async fn public(idp: &AppState, s: &Signup, ip: &str) -> Result<User> {
    let origin = crate::logs::Event::at_ip(ip)
        .client_named(&s.client_id, None)
        .connection_name(&s.connection)
        .user_name(&s.email);
    let result = public_signup(idp, s).await;
    match &result {
        Ok(user) => {
            idp.log(origin.outcome(crate::logs::Type::SuccessSignup, None).user(user));
            super::verify::after_signup(idp, user, &s.client_id).await;
        }
        Err(Error::Store(_) | Error::Internal(_)) => {}
        Err(e) => idp.log(origin.outcome(crate::logs::Type::FailedSignup, Some(e.description()))),
    }
    result
}

/// The public profile fields are bounded (this endpoint is open to anyone, and what it stores
/// goes into every ID token of the account), then the account is registered.
async fn public_signup(idp: &AppState, s: &Signup) -> Result<User> {
    let connection = super::database_for(idp, &s.client_id, &s.connection).await?;
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
    register(idp, &connection, &s.email, &s.password, |u| {
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
    .await
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
        return Err(Error::WeakPassword(why.into()));
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
    // Nor an identity linked into another user, which still signs in by its email and username.
    for login in [Some(email), user.username.as_deref()].into_iter().flatten() {
        if idp.store.linked_login(&connection.name, login).await?.is_some() {
            return Err(bad("invalid_signup", "Invalid sign up"));
        }
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
    let now = crate::util::now_ms();
    let id = random_hex(24);
    let email = email.trim().to_string();
    let local = email.split('@').next().unwrap_or("").to_string();
    let digest: String = sha256(email.to_lowercase().as_bytes()).iter().map(|b| format!("{b:02x}")).collect();
    let identity = Identity {
        connection: connection.to_string(),
        provider: "auth0".into(),
        user_id: id.clone(),
        is_social: false,
        profile_data: None,
    };
    let mut user = User::new(format!("auth0|{id}"), connection.to_string(), identity, now);
    user.email = Some(email.clone());
    user.name = Some(email);
    user.nickname = Some(local);
    user.picture = Some(format!("https://s.gravatar.com/avatar/{digest}?s=480&r=pg&d=identicon"));
    customise(&mut user);
    user
}
