//! The token endpoint's grants, one file each, and what they share: the [`Grant`] a login
//! gives (carried from `/authorize` through the code into refresh tokens), client
//! authentication, the grantable scopes, and [`issue`], the one place a user's tokens are minted.

pub mod authorization_code;
pub mod client_auth;
pub mod client_credentials;
pub mod consent;
pub mod exchange;
pub mod password;
pub mod refresh_token;
pub mod scopes;

use crate::actions::post_login::ActionClaims;
use crate::tokens::{self, Subject, has};
use crate::util::{b64url, random_alnum, random_token, sha256};
use crate::{AppState, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::json;
use std::collections::HashMap;
use store::{Client, RefreshToken, User};

/// The rights one sign-in gave one client; codes and refresh tokens carry it.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Grant {
    pub client_id: String,
    pub user_id: String,
    pub scope: Vec<String>,
    pub audience: Option<String>,
    #[serde(default)]
    pub redirect_uri: Option<String>,
    #[serde(default)]
    pub nonce: Option<String>,
    #[serde(default)]
    pub code_challenge: Option<String>,
    #[serde(default)]
    pub code_challenge_method: Option<String>,
    #[serde(default)]
    pub sid: Option<String>,
    /// Seconds; put into ID tokens as `auth_time` when `include_auth_time`.
    pub auth_time: i64,
    #[serde(default)]
    pub include_auth_time: bool,
    /// Refresh tokens descending from this grant; revoked together on reuse.
    pub family: String,
    /// What the post-login actions of this login added to its tokens.
    #[serde(default, skip_serializing_if = "ActionClaims::is_empty")]
    pub actions: ActionClaims,
}

impl Grant {
    /// What the grant's access tokens name in their `jti` and a revocation records: a digest
    /// of the family, so no token carries a key of the store.
    pub fn tag(&self) -> String {
        b64url(&sha256(self.family.as_bytes())[..16])
    }
}

pub const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";

/// A token request's parameters, single string values only (decoded by the endpoint).
pub struct Params(pub HashMap<String, String>);

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
    pub fn require(&self, k: &str) -> Result<&str> {
        self.get(k).ok_or_else(|| Error::missing(k))
    }
    pub fn scope(&self) -> Option<Vec<String>> {
        self.get("scope").map(|s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect())
    }
}

/// The token endpoint's success body.
#[derive(Debug, Serialize)]
pub struct TokenResponse {
    pub access_token: String,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub id_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub refresh_token: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub scope: Option<String>,
    pub expires_in: i64,
    pub token_type: &'static str,
}

/// How the ID token of this issuance treats the nonce: refresh and password grants never
/// carry one (the Node SDK rejects an unexpected nonce).
pub enum Issuance {
    Login,
    Refresh,
    Password,
}

/// What happens to refresh tokens in one issuance.
pub enum Refresh<'a> {
    /// None issued (no `offline_access`, or a non-rotating refresh).
    Keep,
    /// A new family member, when `offline_access` was granted.
    New,
    /// Rotation: `old` is retired atomically with its successor's birth; the family keeps its
    /// absolute end. When `old` was retired meanwhile by a concurrent exchange, within the
    /// client's leeway this becomes a [`Sibling`](Refresh::Sibling); otherwise the family is
    /// revoked and the answer is `invalid_grant`.
    Rotate { old: &'a RefreshToken },
    /// Another successor of an already retired `old`, presented again within the leeway.
    Sibling { old: &'a RefreshToken },
}

/// Mints the tokens a user grant entitles to.
pub async fn issue(
    idp: &AppState,
    client: &Client,
    user: &User,
    grant: &Grant,
    kind: Issuance,
    refresh: Refresh<'_>,
) -> Result<TokenResponse> {
    let now = idp.now();
    let api = match &grant.audience {
        Some(aud) => idp.store.resource_server_by_identifier(aud).await?,
        None => None,
    };
    let keys = idp.keys.current();
    let (gty, nonce) = match kind {
        Issuance::Login => (None, grant.nonce.as_deref()),
        Issuance::Refresh => (Some("refresh_token"), None),
        Issuance::Password => (Some("password"), None),
    };
    // RBAC narrows what was granted to what the user holds; the actions' changes come after.
    let (granted, permissions) =
        crate::rbac::user_access(&*idp.store, &user.user_id, api.as_ref(), &grant.scope).await?;
    let access_scope = grant.actions.access_scope(&granted);
    let (access_token, expires_in) = tokens::access_token(
        &idp.config,
        &keys,
        Subject::User(&user.user_id),
        &client.client_id,
        api.as_ref(),
        &access_scope,
        gty,
        Some(&tokens::user_jti(&grant.tag(), &random_alnum(12))),
        &grant.actions.access_token,
        permissions.as_deref(),
        now,
    )?;
    let id_token = if has(&grant.scope, "openid") {
        let auth_time = grant.include_auth_time.then_some(grant.auth_time);
        Some(tokens::id_token(
            &idp.config,
            &keys,
            client,
            user,
            &grant.scope,
            nonce,
            grant.sid.as_deref(),
            auth_time,
            &grant.actions.id_token,
            now,
        )?)
    } else {
        None
    };
    let refresh_token = match refresh {
        Refresh::Keep => None,
        Refresh::New if has(&grant.scope, "offline_access") => {
            let policy = &client.refresh_token;
            let end = (policy.expiration_type == "expiring" && !policy.infinite_token_lifetime)
                .then(|| now + policy.token_lifetime * 1000);
            let (token, record) = refresh_record(client, grant, now, end);
            idp.store.put_refresh_token(&record).await?;
            Some(token)
        }
        Refresh::New => None,
        Refresh::Rotate { old } => {
            let (token, record) = refresh_record(client, grant, now, old.expires_at);
            if !idp.store.rotate_refresh_token(&old.token_sha256, now, &record).await? {
                let concurrent = match idp.store.refresh_token(&old.token_sha256).await? {
                    Some(t) => retired_but_tolerated(idp, client, &t, now).await?,
                    None => false,
                };
                if !concurrent {
                    idp.store.revoke_refresh_family(&old.family).await?;
                    return Err(Error::invalid_grant("Unknown or invalid refresh token."));
                }
                idp.store.put_refresh_token(&record).await?;
            }
            Some(token)
        }
        Refresh::Sibling { old } => {
            let (token, record) = refresh_record(client, grant, now, old.expires_at);
            idp.store.put_refresh_token(&record).await?;
            Some(token)
        }
    };
    Ok(TokenResponse {
        access_token,
        id_token,
        refresh_token,
        scope: Some(access_scope.join(" ")),
        expires_in,
        token_type: "Bearer",
    })
}

/// Whether a retired refresh token may still be exchanged (a retry of a lost answer, two tabs
/// refreshing at once) rather than taken as stolen: it is the token the family's latest
/// rotation retired, not an older one, and that was within the client's leeway.
pub async fn retired_but_tolerated(idp: &AppState, client: &Client, token: &RefreshToken, now: i64) -> Result<bool> {
    match token.rotated_at {
        Some(rotated_at) if retired_within_leeway(client, token, now) => {
            Ok(!idp.store.refresh_family_rotated_after(&token.family, rotated_at).await?)
        }
        _ => Ok(false),
    }
}

/// The part of [`retired_but_tolerated`] that needs no store: the token was retired by a
/// rotation (not revoked) no longer ago than the client's leeway.
fn retired_within_leeway(client: &Client, token: &RefreshToken, now: i64) -> bool {
    token.rotated_at.is_some_and(|at| !token.revoked && client.refresh_token.within_leeway(at, now))
}

fn refresh_record(client: &Client, grant: &Grant, now: i64, expires_at: Option<i64>) -> (String, RefreshToken) {
    let token = random_token();
    let record = RefreshToken {
        token_sha256: sha256(token.as_bytes()),
        family: grant.family.clone(),
        client_id: client.client_id.clone(),
        user_id: grant.user_id.clone(),
        grant: json!(grant),
        created_at: now,
        expires_at,
        rotated_at: None,
        revoked: false,
        last_used_at: None,
    };
    (token, record)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn client(leeway: i64) -> Client {
        serde_json::from_value(json!({
            "client_id": "app", "name": "App",
            "refresh_token": { "rotation_type": "rotating", "leeway": leeway }
        }))
        .unwrap()
    }

    fn token(rotated_at: Option<i64>, revoked: bool) -> RefreshToken {
        RefreshToken {
            token_sha256: vec![1],
            family: "f".into(),
            client_id: "app".into(),
            user_id: "u".into(),
            grant: json!({}),
            created_at: 0,
            expires_at: None,
            rotated_at,
            revoked,
            last_used_at: None,
        }
    }

    #[test]
    fn a_retired_token_is_tolerated_only_within_the_leeway() {
        let now = 100_000;
        assert!(retired_within_leeway(&client(30), &token(Some(now - 30_000), false), now));
        assert!(!retired_within_leeway(&client(30), &token(Some(now - 30_001), false), now));
        assert!(!retired_within_leeway(&client(0), &token(Some(now), false), now), "no leeway, no reuse");
        assert!(!retired_within_leeway(&client(30), &token(Some(now), true), now), "revoked is revoked");
        assert!(!retired_within_leeway(&client(30), &token(None, false), now), "not retired at all");
    }
}
