//! From verified upstream claims to an Auth0-shaped user: the id (`google-oauth2|<sub>`,
//! `oidc|<connection>|<sub>`), the `identities` entry, and the profile fields, refreshed from
//! the provider at every login as Auth0 does.

use super::provider::Strategy;
use serde_json::{Map, Value};
use store::{Connection, Identity, Millis, User};

/// The user id and identity of upstream subject `sub` in `connection`.
pub fn identity(strategy: Strategy, connection: &Connection, sub: &str) -> (String, Identity) {
    let (user_id, provider, identity_id) = match strategy {
        Strategy::Google => (format!("google-oauth2|{sub}"), "google-oauth2", sub.to_string()),
        // Enterprise ids carry the connection: two OpenID providers may issue the same `sub`.
        Strategy::Oidc => (format!("oidc|{}|{sub}", connection.name), "oidc", format!("{}|{sub}", connection.name)),
    };
    let identity = Identity {
        connection: connection.name.clone(),
        provider: provider.into(),
        user_id: identity_id,
        is_social: strategy.is_social(),
        profile_data: None,
    };
    (user_id, identity)
}

fn text(claims: &Map<String, Value>, key: &str) -> Option<String> {
    claims.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// A new user for a first login.
pub fn new_user(strategy: Strategy, connection: &Connection, claims: &Map<String, Value>, now: Millis) -> User {
    let sub = text(claims, "sub").unwrap_or_default();
    let (user_id, identity) = identity(strategy, connection, &sub);
    let mut user = User::new(user_id, connection.name.clone(), identity, now);
    apply(&mut user, claims, now);
    user
}

/// Copies the provider's profile onto the user; the user's metadata is left alone.
pub fn apply(user: &mut User, claims: &Map<String, Value>, now: Millis) {
    let email = text(claims, "email").map(|e| e.to_lowercase());
    // Some providers send the flag as a string.
    let verified = match claims.get("email_verified") {
        Some(Value::Bool(b)) => *b,
        Some(Value::String(s)) => s == "true",
        _ => false,
    };
    let sub = text(claims, "sub").unwrap_or_default();
    let local = email.as_deref().and_then(|e| e.split('@').next()).map(str::to_owned);
    user.email_verified = email.is_some() && verified;
    user.name = text(claims, "name").or_else(|| email.clone()).or_else(|| Some(sub.clone()));
    user.nickname = text(claims, "nickname").or(local).or(Some(sub));
    user.given_name = text(claims, "given_name");
    user.family_name = text(claims, "family_name");
    user.picture = text(claims, "picture");
    user.email = email;
    user.updated_at = now;
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn(name: &str, strategy: &str) -> Connection {
        serde_json::from_value(json!({"id": "con_x", "name": name, "strategy": strategy})).unwrap()
    }

    #[test]
    fn ids_and_identities_follow_auth0s_shapes() {
        let (id, ident) = identity(Strategy::Google, &conn("google-oauth2", "google-oauth2"), "1045");
        assert_eq!(id, "google-oauth2|1045");
        assert_eq!(
            serde_json::to_value(&ident).unwrap(),
            json!({"connection": "google-oauth2", "provider": "google-oauth2", "user_id": "1045", "isSocial": true})
        );
        let (id, ident) = identity(Strategy::Oidc, &conn("corp", "oidc"), "abc");
        assert_eq!(id, "oidc|corp|abc");
        assert_eq!(
            serde_json::to_value(&ident).unwrap(),
            json!({"connection": "corp", "provider": "oidc", "user_id": "corp|abc", "isSocial": false})
        );
    }

    #[test]
    fn the_profile_is_mapped_and_refreshed() {
        let claims = json!({"sub": "7", "email": "Ada@Example.test", "email_verified": "true", "given_name": "Ada"});
        let mut u = new_user(Strategy::Google, &conn("google-oauth2", "google-oauth2"), claims.as_object().unwrap(), 5);
        assert_eq!(u.email.as_deref(), Some("ada@example.test"));
        assert!(u.email_verified);
        assert_eq!(u.nickname.as_deref(), Some("ada"));
        assert_eq!(u.name.as_deref(), Some("ada@example.test"));
        u.app_metadata.insert("keep".into(), json!(1));
        apply(&mut u, json!({"sub": "7", "name": "Ada L."}).as_object().unwrap(), 9);
        assert_eq!((u.name.as_deref(), u.email.as_deref(), u.email_verified), (Some("Ada L."), None, false));
        assert_eq!((u.updated_at, u.created_at, u.app_metadata["keep"].clone()), (9, 5, json!(1)));
    }
}
