//! Role-based access control where tokens are minted: which requested scopes a user's access
//! token for an API keeps when the API enforces RBAC (Auth0's "Enable RBAC",
//! `enforce_policies`), the `permissions` claim of the `*_authz` token dialects, and which
//! dialect shapes a token. A user's permissions for an API are one indexed query
//! ([`store::Store::permissions_for`]), asked only for an API that needs them.

use crate::Result;
use store::{ResourceServer, Store};

/// An API's `token_dialect`: how its access tokens are shaped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    /// Auth0's own claims (`azp`, `gty`): `access_token`, the default.
    AccessToken,
    /// The same with the `permissions` claim: `access_token_authz`.
    AccessTokenAuthz,
    /// RFC 9068 (`typ: at+jwt`, `client_id`, always a `jti`): `rfc9068_profile`.
    Rfc9068,
    /// RFC 9068 with the `permissions` claim: `rfc9068_profile_authz`.
    Rfc9068Authz,
}

impl Dialect {
    /// Every value the Management API accepts for `token_dialect`.
    pub const NAMES: [&'static str; 4] =
        ["access_token", "access_token_authz", "rfc9068_profile", "rfc9068_profile_authz"];

    pub fn parse(name: &str) -> Option<Dialect> {
        match name {
            "access_token" => Some(Dialect::AccessToken),
            "access_token_authz" => Some(Dialect::AccessTokenAuthz),
            "rfc9068_profile" => Some(Dialect::Rfc9068),
            "rfc9068_profile_authz" => Some(Dialect::Rfc9068Authz),
            _ => None,
        }
    }

    /// The dialect of tokens for `api` (the default for none, or for a value the Management
    /// API would have refused).
    pub fn of(api: Option<&ResourceServer>) -> Dialect {
        api.and_then(|a| a.extra.get("token_dialect")?.as_str().and_then(Dialect::parse))
            .unwrap_or(Dialect::AccessToken)
    }

    pub fn with_permissions(self) -> bool {
        matches!(self, Dialect::AccessTokenAuthz | Dialect::Rfc9068Authz)
    }

    pub fn rfc9068(self) -> bool {
        matches!(self, Dialect::Rfc9068 | Dialect::Rfc9068Authz)
    }
}

/// Whether the API grants users only the scopes they hold (`enforce_policies`).
pub fn enforces(api: &ResourceServer) -> bool {
    api.extra.get("enforce_policies").and_then(serde_json::Value::as_bool).unwrap_or(false)
}

/// A user's access token for `api` as RBAC shapes it: the scope it carries (`scope` as granted,
/// less the API's scopes the user does not hold when the API enforces RBAC) and its
/// `permissions` claim (every permission the user holds on the API, in an `*_authz` dialect).
/// The Management API, a system API, has neither: its scopes follow its own rules.
pub async fn user_access(
    store: &dyn Store,
    user_id: &str,
    api: Option<&ResourceServer>,
    scope: &[String],
) -> Result<(Vec<String>, Option<Vec<String>>)> {
    let Some(api) = api.filter(|a| !a.is_system) else {
        return Ok((scope.to_vec(), None));
    };
    let (enforce, authz) = (enforces(api), Dialect::of(Some(api)).with_permissions());
    if !enforce && !authz {
        return Ok((scope.to_vec(), None));
    }
    let held = store.permissions_for(user_id, &api.identifier).await?;
    let scope = if enforce { restrict(scope, api, &held) } else { scope.to_vec() };
    Ok((scope, authz.then_some(held)))
}

/// Keeps the scopes that are not the API's (`openid`, `profile`, `offline_access`, …) and
/// those of the API's that are in `held` (sorted, as the store returns them).
pub fn restrict(scope: &[String], api: &ResourceServer, held: &[String]) -> Vec<String> {
    scope
        .iter()
        .filter(|s| !api.scopes.iter().any(|x| x.value == **s) || held.binary_search(s).is_ok())
        .cloned()
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn api(extra: serde_json::Value) -> ResourceServer {
        let mut doc = json!({
            "id": "1", "name": "API", "identifier": "https://api/",
            "scopes": [{"value": "read:a"}, {"value": "write:a"}, {"value": "admin:a"}],
        });
        doc.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        serde_json::from_value(doc).unwrap()
    }

    fn strings(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn only_held_api_scopes_survive_and_the_others_stay() {
        let api = api(json!({"enforce_policies": true}));
        let asked = strings(&["openid", "offline_access", "read:a", "write:a", "custom"]);
        let held = strings(&["admin:a", "read:a"]);
        assert_eq!(restrict(&asked, &api, &held), strings(&["openid", "offline_access", "read:a", "custom"]));
        assert!(restrict(&strings(&["write:a"]), &api, &[]).is_empty());
    }

    #[test]
    fn the_dialect_and_the_policy_come_from_the_api() {
        assert_eq!(Dialect::of(None), Dialect::AccessToken);
        assert_eq!(Dialect::of(Some(&api(json!({})))), Dialect::AccessToken);
        let authz = api(json!({"token_dialect": "rfc9068_profile_authz", "enforce_policies": true}));
        assert_eq!(Dialect::of(Some(&authz)), Dialect::Rfc9068Authz);
        assert!(Dialect::Rfc9068Authz.with_permissions() && Dialect::Rfc9068Authz.rfc9068());
        assert!(!Dialect::AccessTokenAuthz.rfc9068() && !Dialect::Rfc9068.with_permissions());
        assert!(enforces(&authz) && !enforces(&api(json!({"enforce_policies": "yes"}))));
        for name in Dialect::NAMES {
            assert!(Dialect::parse(name).is_some());
        }
        assert_eq!(Dialect::parse("jwt"), None);
    }
}
