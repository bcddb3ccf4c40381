//! Account linking: one person's accounts (a database user and a Google login, say) become one
//! user. The secondary user's identity moves into the primary's `identities`, with its profile
//! as `profileData`; the secondary user goes, and the identity's later logins sign in as the
//! primary (`flow::federated`), with the primary's metadata and roles. Unlinking gives the
//! identity back as a user of its own, without metadata, as Auth0 does.
//!
//! A database identity keeps signing in with its own email (or username) and password, as the
//! primary: the link keeps its login names and password hash, and gives the hash back when the
//! identity is unlinked.

use crate::{AppState, Error, Result};
use serde_json::{Map, Value, json};
use store::{Identity, StoredUser, User};

/// The full user id of an identity (`google-oauth2|123`, `auth0|abc`, `oidc|corp|x`).
pub fn user_id_of(provider: &str, identity_user_id: &str) -> String {
    format!("{provider}|{identity_user_id}")
}

/// The profile a secondary user brings along, Auth0's `profileData`.
fn profile_data(u: &User) -> Map<String, Value> {
    let mut m = Map::new();
    for (k, v) in [
        ("email", &u.email),
        ("name", &u.name),
        ("nickname", &u.nickname),
        ("given_name", &u.given_name),
        ("family_name", &u.family_name),
        ("picture", &u.picture),
        ("username", &u.username),
        ("phone_number", &u.phone_number),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if u.email.is_some() {
        m.insert("email_verified".into(), json!(u.email_verified));
    }
    m
}

/// Links user `secondary_id` into `primary` and returns the primary's identities. Refused:
/// linking a user to itself, a secondary that has linked identities of its own, and an
/// identity already linked into a user (`Conflict`).
pub async fn link(idp: &AppState, mut primary: StoredUser, secondary_id: &str) -> Result<Vec<Identity>> {
    if secondary_id == primary.user.user_id {
        return Err(Error::invalid_request("Main identity and the new one are the same."));
    }
    let secondary = match idp.store.user(secondary_id).await? {
        Some(s) => s.user,
        None => {
            let (provider, id) = secondary_id.split_once('|').unwrap_or((secondary_id, ""));
            return Err(match idp.store.linked_identity_owner(provider, id).await? {
                Some(_) => Error::Conflict("The identity is already linked to another user.".into()),
                None => Error::invalid_request(format!("The user {secondary_id} does not exist.")),
            });
        }
    };
    if secondary.identities.len() != 1 {
        return Err(Error::invalid_request(
            "The secondary account has linked identities of its own; unlink them first.",
        ));
    }
    let mut identity = secondary.identities[0].clone();
    identity.profile_data = Some(profile_data(&secondary));
    let (provider, identity_id) = (identity.provider.clone(), identity.user_id.clone());
    primary.user.identities.push(identity);
    primary.user.updated_at = idp.now();
    match idp.store.link_identity(&primary, secondary_id, &provider, &identity_id).await {
        Ok(()) => Ok(primary.user.identities),
        Err(store::Error::Conflict(_)) => {
            Err(Error::Conflict("The identity is already linked to another user.".into()))
        }
        Err(e) => Err(e.into()),
    }
}

/// Unlinks identity (`provider`, `identity_id`) from `primary`, makes it a user of its own
/// again (its profile, no metadata), and returns the identities the primary keeps. `None`
/// when the primary has no such linked identity.
pub async fn unlink(
    idp: &AppState,
    mut primary: StoredUser,
    provider: &str,
    identity_id: &str,
) -> Result<Option<Vec<Identity>>> {
    let found = primary.user.identities.iter().position(|i| i.provider == provider && i.user_id == identity_id);
    let Some(index) = found else { return Ok(None) };
    if index == 0 {
        return Err(Error::invalid_request("The main identity of a user cannot be unlinked."));
    }
    let mut identity = primary.user.identities.remove(index);
    let profile = identity.profile_data.take().unwrap_or_default();
    let now = idp.now();
    let mut user = User::new(user_id_of(provider, identity_id), identity.connection.clone(), identity, now);
    let text = |k: &str| profile.get(k).and_then(Value::as_str).map(str::to_owned);
    user.email = text("email");
    user.email_verified = profile.get("email_verified").and_then(Value::as_bool).unwrap_or(false);
    user.name = text("name");
    user.nickname = text("nickname");
    user.given_name = text("given_name");
    user.family_name = text("family_name");
    user.picture = text("picture");
    user.username = text("username");
    user.phone_number = text("phone_number");
    primary.user.updated_at = now;
    let restored = StoredUser { user, password_hash: None };
    match idp.store.unlink_identity(&primary, provider, identity_id, &restored).await {
        Ok(()) => Ok(Some(primary.user.identities)),
        Err(store::Error::NotFound(_)) => Ok(None),
        Err(store::Error::Conflict(_)) => Err(Error::Conflict(format!(
            "A user {} exists already; the identity cannot become it again.",
            restored.user.user_id
        ))),
        Err(e) => Err(e.into()),
    }
}
