//! The refresh-token grant. Rotating clients get a successor with every exchange; presenting a
//! retired token beyond the client's leeway revokes its whole family. Within the leeway (a
//! retry of a response that was lost, two tabs refreshing at once) the retired token gets a
//! successor of its own, so the client is never left holding only a retired token.

use super::Params;
use crate::grant::{Grant, Issuance, Refresh, TokenResponse, issue};
use crate::post_login::{self, RequestInfo};
use crate::util::{now_ms, sha256};
use crate::{AppState, Error, Result};
use store::Client;

fn invalid() -> Error {
    Error::invalid_grant("Unknown or invalid refresh token.")
}

pub async fn exchange(idp: &AppState, client: &Client, p: &Params, request: &RequestInfo) -> Result<TokenResponse> {
    let presented = p.require("refresh_token")?;
    let now = now_ms();
    let token = idp.store.refresh_token(&sha256(presented.as_bytes())).await?.ok_or_else(invalid)?;
    if token.client_id != client.client_id || token.revoked || token.expires_at.is_some_and(|e| e <= now) {
        return Err(invalid());
    }
    // Inactivity: a rotating token is used at most once, so its birth is the family's last use.
    // (A non-rotating token's last use is not recorded; only its absolute lifetime applies.)
    let policy = &client.refresh_token;
    if policy.rotating()
        && policy.expiration_type == "expiring"
        && !policy.infinite_idle_token_lifetime
        && now - token.created_at > policy.idle_token_lifetime * 1000
    {
        return Err(invalid());
    }
    if let Some(rotated_at) = token.rotated_at {
        // Auth0 tolerates a retired token only within the client's leeway (a retry of a lost
        // response); anything else is theft until proven otherwise.
        if !policy.within_leeway(rotated_at, now) {
            let revoked = idp.store.revoke_refresh_family(&token.family).await?;
            tracing::warn!(client_id = %client.client_id, revoked, "refresh token reused; family revoked");
            return Err(invalid());
        }
    }
    let mut grant: Grant = serde_json::from_value(token.grant.clone()).map_err(|_| invalid())?;
    if let Some(asked) = p.scope() {
        if let Some(extra) = asked.iter().find(|s| !grant.scope.contains(s)) {
            return Err(Error::oauth(
                axum::http::StatusCode::FORBIDDEN,
                "invalid_scope",
                format!("The requested scope {extra} was not granted to the refresh token"),
            ));
        }
        // offline_access stays: the family lives on whatever the narrower request asks for.
        let keep_offline = grant.scope.iter().any(|s| s == "offline_access");
        grant.scope = asked;
        if keep_offline && !grant.scope.iter().any(|s| s == "offline_access") {
            grant.scope.push("offline_access".into());
        }
    }
    let user = idp.store.user(&grant.user_id).await?.ok_or_else(invalid)?.user;
    if user.blocked {
        return Err(crate::login::LoginError::UserBlocked.into());
    }
    // The actions run again on every exchange and replace what the earlier run added.
    let login = post_login::Login {
        client,
        user: &user,
        protocol: "oauth2-refresh-token",
        scope: &grant.scope,
        audience: grant.audience.as_deref(),
        request,
        authorize: None,
        session: None,
        auth_time: grant.auth_time * 1000,
    };
    grant.actions = post_login::run_for_token(idp, login).await?;
    let refresh = match (policy.rotating(), token.rotated_at) {
        (false, _) => Refresh::Keep,
        (true, None) => Refresh::Rotate { old: &token },
        // Within the leeway (checked above).
        (true, Some(_)) => Refresh::Sibling { old: &token },
    };
    issue(idp, client, &user, &grant, Issuance::Refresh, refresh).await
}
