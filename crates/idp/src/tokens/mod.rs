//! Tokens: the claims of the tokens Auth0 issues (here), their signing and verification
//! (`jwt`, with the verified-token memo in `memo`), the signing keys (`keys`), and the check
//! of an access token presented to this idp (`verify`).

pub mod jwt;
pub mod keys;
mod memo;
pub mod verify;

use crate::Result;
use crate::config::Config;
use crate::util::{iso8601, random_alnum};
use keys::KeySet;
use serde_json::{Map, Value, json};
use store::{Client, ResourceServer, User};

/// Who an access token speaks for.
pub enum Subject<'a> {
    User(&'a str),
    /// A client acting for itself (`<client_id>@clients`).
    Client,
}

/// Access token lifetime when no API was asked for (a token good for `/userinfo` only).
const USERINFO_TOKEN_LIFETIME: i64 = 86400;
/// The longest an access token lives (seconds), whatever its API says (Auth0's maximum).
pub const MAX_ACCESS_TOKEN_LIFETIME: i64 = 2_592_000;

/// The `jti` of an access token of a user grant: `<grant>.<random>`, unique per token as RFC 7519
/// wants; what a replayed authorization code revokes is the part before the dot ([`grant_of_jti`]).
pub fn user_jti(grant_tag: &str, random: &str) -> String {
    format!("{grant_tag}.{random}")
}

/// The grant an access token descends from. Only tokens of user grants have one.
pub fn grant_of_jti(claims: &Map<String, Value>) -> Option<&str> {
    claims.get("jti")?.as_str()?.split_once('.').map(|(grant, _)| grant)
}

/// Whether `scope` holds `s`.
pub fn has(scope: &[impl AsRef<str>], s: &str) -> bool {
    scope.iter().any(|x| x.as_ref() == s)
}

#[allow(clippy::too_many_arguments)]
pub fn access_token(
    config: &Config,
    keys: &KeySet,
    subject: Subject<'_>,
    client_id: &str,
    api: Option<&ResourceServer>,
    scope: &[String],
    gty: Option<&str>,
    jti: Option<&str>,
    custom: &Map<String, Value>,
    permissions: Option<&[String]>,
    now_ms: i64,
) -> Result<(String, i64)> {
    let iat = now_ms / 1000;
    let lifetime = api.map(|a| a.token_lifetime.clamp(1, MAX_ACCESS_TOKEN_LIFETIME)).unwrap_or(USERINFO_TOKEN_LIFETIME);
    let userinfo = config.userinfo_audience();
    let aud = match (api, has(scope, "openid")) {
        (Some(a), true) => json!([a.identifier, userinfo]),
        (Some(a), false) => json!(a.identifier),
        (None, _) => json!(userinfo),
    };
    let sub = match subject {
        Subject::User(id) => id.to_string(),
        Subject::Client => format!("{client_id}@clients"),
    };
    let mut claims = Map::new();
    // Auth0 APIs (the Management API) take namespaced custom claims only.
    let auth0_api = api.is_some_and(|a| a.is_system);
    for (k, v) in custom {
        if actions::claim_allowed(k) && (!auth0_api || actions::claim_namespaced(k)) {
            claims.insert(k.clone(), v.clone());
        }
    }
    claims.insert("iss".into(), json!(config.issuer()));
    claims.insert("sub".into(), json!(sub));
    claims.insert("aud".into(), aud);
    claims.insert("iat".into(), json!(iat));
    claims.insert("exp".into(), json!(iat + lifetime));
    claims.insert("scope".into(), json!(scope.join(" ")));
    if let Some(permissions) = permissions {
        claims.insert("permissions".into(), json!(permissions));
    }
    if crate::rbac::Dialect::of(api).rfc9068() {
        // RFC 9068 as Auth0 issues it: `client_id` for `azp`, a `jti` on every token, no
        // `gty`, and the header's `typ` says what the token is.
        claims.insert("client_id".into(), json!(client_id));
        let jti = jti.map(str::to_owned).unwrap_or_else(|| random_alnum(22));
        claims.insert("jti".into(), json!(jti));
        return Ok((jwt::sign_typed(keys, &claims, "at+jwt")?, lifetime));
    }
    if let Some(gty) = gty {
        claims.insert("gty".into(), json!(gty));
    }
    claims.insert("azp".into(), json!(client_id));
    if let Some(jti) = jti {
        claims.insert("jti".into(), json!(jti));
    }
    Ok((jwt::sign(keys, &claims)?, lifetime))
}

#[allow(clippy::too_many_arguments)]
pub fn id_token(
    config: &Config,
    keys: &KeySet,
    client: &Client,
    user: &User,
    scope: &[String],
    nonce: Option<&str>,
    sid: Option<&str>,
    auth_time: Option<i64>,
    custom: &Map<String, Value>,
    now_ms: i64,
) -> Result<String> {
    let iat = now_ms / 1000;
    let mut claims = profile_claims(user, scope);
    claims.extend(custom_claims(custom, scope));
    claims.insert("iss".into(), json!(config.issuer()));
    claims.insert("sub".into(), json!(user.user_id));
    claims.insert("aud".into(), json!(client.client_id));
    claims.insert("iat".into(), json!(iat));
    claims.insert("exp".into(), json!(iat + client.jwt_configuration.lifetime_in_seconds.max(1)));
    if let Some(sid) = sid {
        claims.insert("sid".into(), json!(sid));
    }
    if let Some(t) = auth_time {
        claims.insert("auth_time".into(), json!(t));
    }
    if let Some(n) = nonce {
        claims.insert("nonce".into(), json!(n));
    }
    jwt::sign(keys, &claims)
}

/// The custom claims an action set that `scope` lets through: a standard profile claim (even
/// one set by an action) needs its scope, as in Auth0; restricted names never pass.
pub fn custom_claims(custom: &Map<String, Value>, scope: &[impl AsRef<str>]) -> Map<String, Value> {
    custom
        .iter()
        .filter(|(k, _)| actions::claim_allowed(k) && standard_claim_scope(k).is_none_or(|s| has(scope, s)))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect()
}

/// The scope that releases a standard OIDC claim (`None` for any other name).
fn standard_claim_scope(claim: &str) -> Option<&'static str> {
    match claim {
        "name" | "family_name" | "given_name" | "middle_name" | "nickname" | "preferred_username" | "profile"
        | "picture" | "website" | "gender" | "birthdate" | "zoneinfo" | "locale" | "updated_at" => Some("profile"),
        "email" | "email_verified" => Some("email"),
        "address" => Some("address"),
        "phone_number" | "phone_number_verified" => Some("phone"),
        _ => None,
    }
}

/// The profile claims `scope` releases: `profile` ⇒ names, picture, `updated_at` (an ISO
/// string, as Auth0 sends it); `email` ⇒ email and its verification.
pub fn profile_claims(user: &User, scope: &[impl AsRef<str>]) -> Map<String, Value> {
    let mut c = Map::new();
    if has(scope, "profile") {
        let fields = [
            ("nickname", &user.nickname),
            ("name", &user.name),
            ("picture", &user.picture),
            ("given_name", &user.given_name),
            ("family_name", &user.family_name),
        ];
        for (k, v) in fields {
            if let Some(v) = v {
                c.insert(k.into(), json!(v));
            }
        }
        c.insert("updated_at".into(), json!(iso8601(user.updated_at)));
    }
    if has(scope, "email")
        && let Some(e) = &user.email
    {
        c.insert("email".into(), json!(e));
        c.insert("email_verified".into(), json!(user.email_verified));
    }
    c
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::secrets::SecretBox;

    const NOW: i64 = 1_700_000_000_000;

    async fn keys() -> KeySet {
        let secrets = SecretBox::from_key(&[3; 32]);
        let key = keys::generate_key(&secrets).await.expect("key");
        KeySet::build(&[key], NOW, &secrets).expect("key set")
    }

    fn config() -> Config {
        Config::new("https://login.example.test".parse().unwrap(), std::env::temp_dir())
    }

    fn claims_of(keys: &KeySet, token: &str) -> Map<String, Value> {
        jwt::verify_signature(keys, token).expect("signed with the key set")
    }

    fn api(identifier: &str, lifetime: i64, system: bool) -> ResourceServer {
        serde_json::from_value(json!({
            "id": "rs", "name": "api", "identifier": identifier, "token_lifetime": lifetime, "is_system": system
        }))
        .unwrap()
    }

    fn scope(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[tokio::test]
    async fn an_access_token_names_its_api_and_userinfo_and_lives_as_the_api_says() {
        let (keys, config) = (keys().await, config());
        let orders = api("https://orders", 600, false);
        let scope = scope("openid read:orders");
        let (token, expires_in) = access_token(
            &config,
            &keys,
            Subject::User("auth0|1"),
            "app",
            Some(&orders),
            &scope,
            None,
            Some("grant.random"),
            &Map::new(),
            None,
            NOW,
        )
        .unwrap();
        let c = claims_of(&keys, &token);
        assert_eq!(expires_in, 600);
        assert_eq!(c["aud"], json!(["https://orders", "https://login.example.test/userinfo"]));
        assert_eq!(c["iss"], "https://login.example.test/");
        assert_eq!((c["iat"].as_i64(), c["exp"].as_i64()), (Some(NOW / 1000), Some(NOW / 1000 + 600)));
        assert_eq!(c["sub"], "auth0|1");
        assert_eq!(c["azp"], "app");
        assert_eq!(c["scope"], "openid read:orders");
        assert_eq!(grant_of_jti(&c), Some("grant"));
    }

    #[tokio::test]
    async fn a_client_token_speaks_for_the_client_and_lifetimes_are_bounded() {
        let (keys, config) = (keys().await, config());
        let forever = api("https://orders", 10 * MAX_ACCESS_TOKEN_LIFETIME, false);
        let (token, expires_in) = access_token(
            &config,
            &keys,
            Subject::Client,
            "m2m",
            Some(&forever),
            &[],
            Some("client-credentials"),
            None,
            &Map::new(),
            None,
            NOW,
        )
        .unwrap();
        let c = claims_of(&keys, &token);
        assert_eq!(expires_in, MAX_ACCESS_TOKEN_LIFETIME);
        assert_eq!(c["sub"], "m2m@clients");
        assert_eq!(c["aud"], "https://orders", "no openid, no userinfo audience");
        assert_eq!(c["gty"], "client-credentials");
        assert!(!c.contains_key("jti"));
    }

    #[tokio::test]
    async fn custom_claims_never_override_registered_ones_and_need_a_namespace_for_auth0_apis() {
        let (keys, config) = (keys().await, config());
        let custom: Map<String, Value> = json!({
            "https://example.com/roles": ["admin"],
            "plan": "gold",
            "sub": "someone-else",
            "iss": "https://evil.example/",
        })
        .as_object()
        .cloned()
        .unwrap();
        let mint = |api: &ResourceServer| {
            let (token, _) = access_token(
                &config,
                &keys,
                Subject::User("auth0|1"),
                "app",
                Some(api),
                &[],
                None,
                None,
                &custom,
                None,
                NOW,
            )
            .unwrap();
            claims_of(&keys, &token)
        };
        let own = mint(&api("https://orders", 600, false));
        assert_eq!(own["https://example.com/roles"], json!(["admin"]));
        assert_eq!(own["plan"], "gold");
        assert_eq!(own["sub"], "auth0|1");
        assert_eq!(own["iss"], "https://login.example.test/");
        let management = mint(&api("https://login.example.test/api/v2/", 600, true));
        assert_eq!(management["https://example.com/roles"], json!(["admin"]));
        assert!(!management.contains_key("plan"), "Auth0 APIs take namespaced custom claims only");
    }

    #[test]
    fn profile_claims_follow_their_scopes() {
        let custom: Map<String, Value> =
            json!({ "name": "From an Action", "https://x/y": 1 }).as_object().cloned().unwrap();
        assert!(custom_claims(&custom, &scope("openid")).get("name").is_none());
        assert_eq!(custom_claims(&custom, &scope("openid profile"))["name"], "From an Action");
        assert_eq!(custom_claims(&custom, &scope("openid"))["https://x/y"], 1);
        assert_eq!(standard_claim_scope("email_verified"), Some("email"));
        assert_eq!(standard_claim_scope("https://x/y"), None);
    }
}
