//! The refresh-token grant. Rotating clients get a successor with every exchange; presenting a
//! retired token revokes its whole family, unless it is the token just rotated and within the
//! client's leeway (a retry of a response that was lost, two tabs refreshing at once): then it
//! gets a successor of its own, so the client is never left holding only a retired token.
//! Every token dies after the client's idle lifetime without use.

use super::{Grant, Issuance, Params, Refresh, TokenResponse, issue, retired_but_tolerated};
use crate::actions::post_login::{self, RequestInfo};
use crate::logs::Event;
use crate::util::sha256;
use crate::{AppState, Error, Result};
use store::{Client, RefreshToken, RefreshTokenPolicy};

fn invalid() -> Error {
    Error::invalid_grant("Unknown or invalid refresh token.")
}

/// Exchanges a refresh token; `event` (the tenant log's) learns the user and audience.
pub async fn exchange(
    idp: &AppState,
    client: &Client,
    p: &Params,
    request: &RequestInfo,
    event: &mut Event,
) -> Result<TokenResponse> {
    let presented = p.require("refresh_token")?;
    let now = idp.now();
    let token = idp.store.refresh_token(&sha256(presented.as_bytes())).await?.ok_or_else(invalid)?;
    if token.client_id != client.client_id || token.revoked || token.expires_at.is_some_and(|e| e <= now) {
        return Err(invalid());
    }
    let policy = &client.refresh_token;
    if idle_too_long(policy, &token, now) {
        return Err(invalid());
    }
    // Anything but a retry of the latest rotation is theft until proven otherwise.
    if token.rotated_at.is_some() && !retired_but_tolerated(idp, client, &token, now).await? {
        let revoked = idp.store.revoke_refresh_family(&token.family).await?;
        tracing::warn!(client_id = %client.client_id, revoked, "refresh token reused; family revoked");
        return Err(invalid());
    }
    if !policy.rotating() && needs_touch(policy, &token, now) {
        idp.store.touch_refresh_token(&token.token_sha256, now).await?;
    }
    let mut grant: Grant = serde_json::from_value(token.grant.clone()).map_err(|_| invalid())?;
    if let Some(asked) = p.scope() {
        if let Some(extra) = asked.iter().find(|s| !grant.scope.contains(s)) {
            return Err(Error::InvalidScope(format!(
                "The requested scope {extra} was not granted to the refresh token"
            )));
        }
        // offline_access stays: the family lives on whatever the narrower request asks for.
        let keep_offline = grant.scope.iter().any(|s| s == "offline_access");
        grant.scope = asked;
        if keep_offline && !grant.scope.iter().any(|s| s == "offline_access") {
            grant.scope.push("offline_access".into());
        }
    }
    let user = idp.store.user(&grant.user_id).await?.ok_or_else(invalid)?.user;
    *event = std::mem::take(event).user(&user).audience(grant.audience.as_deref());
    // Auth0 answers a blocked user's refresh with `invalid_grant` (403), where a password
    // login gets `unauthorized` (401).
    if user.blocked {
        return Err(Error::invalid_grant(Error::UserBlocked.description()));
    }
    // The actions run again on every exchange and replace what the earlier run added.
    let login = post_login::Login {
        client,
        user: &user,
        protocol: "oauth2-refresh-token",
        scope: &grant.scope,
        audience: grant.audience.as_deref(),
        request,
        authorization: None,
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

/// Revokes the family of a refresh token `client` holds. Anything else (unknown, another
/// client's) changes nothing and is not told apart (RFC 7009).
pub async fn revoke(idp: &AppState, client: &Client, presented: &str) -> Result<()> {
    if let Some(t) = idp.store.refresh_token(&sha256(presented.as_bytes())).await?
        && t.client_id == client.client_id
    {
        idp.store.revoke_refresh_family(&t.family).await?;
    }
    Ok(())
}

/// Whether the idle lifetime applies to the client's tokens.
fn idle_lifetime_applies(policy: &RefreshTokenPolicy) -> bool {
    policy.expiration_type == "expiring" && !policy.infinite_idle_token_lifetime
}

/// When the token was last used: a rotating token is used at most once, so its birth; a
/// non-rotating one, its recorded last exchange.
fn last_use(token: &RefreshToken) -> i64 {
    token.last_used_at.map_or(token.created_at, |at| at.max(token.created_at))
}

/// Whether the token went unused longer than the client's idle lifetime.
fn idle_too_long(policy: &RefreshTokenPolicy, token: &RefreshToken, now: i64) -> bool {
    idle_lifetime_applies(policy) && now - last_use(token) > policy.idle_token_lifetime * 1000
}

/// Whether this exchange of a non-rotating token must be recorded. Recording every one would
/// cost a write per exchange; once a minute (or a tenth of a shorter idle lifetime) bounds how
/// much earlier than its real last use a token can be taken as idle.
fn needs_touch(policy: &RefreshTokenPolicy, token: &RefreshToken, now: i64) -> bool {
    let every = (policy.idle_token_lifetime * 100).clamp(0, 60_000);
    idle_lifetime_applies(policy) && now - last_use(token) >= every
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const DAY: i64 = 86_400_000;

    fn policy(rotation: &str, idle_secs: i64) -> RefreshTokenPolicy {
        RefreshTokenPolicy {
            rotation_type: rotation.into(),
            expiration_type: "expiring".into(),
            idle_token_lifetime: idle_secs,
            infinite_idle_token_lifetime: false,
            ..Default::default()
        }
    }

    fn token(created_at: i64, last_used_at: Option<i64>) -> RefreshToken {
        RefreshToken {
            token_sha256: vec![1; 32],
            family: "f".into(),
            client_id: "c".into(),
            user_id: "u".into(),
            grant: json!({}),
            created_at,
            expires_at: None,
            rotated_at: None,
            revoked: false,
            last_used_at,
        }
    }

    #[test]
    fn the_idle_lifetime_counts_from_the_last_recorded_use() {
        let p = policy("non-rotating", 86_400);
        let now = 10 * DAY;
        assert!(idle_too_long(&p, &token(now - DAY - 1, None), now), "never used since its birth");
        assert!(!idle_too_long(&p, &token(now - DAY, None), now), "exactly the idle lifetime");
        assert!(!idle_too_long(&p, &token(now - 5 * DAY, Some(now - DAY + 1)), now), "used since");
        assert!(idle_too_long(&p, &token(now - 5 * DAY, Some(now - DAY - 1)), now));
        let infinite = RefreshTokenPolicy { infinite_idle_token_lifetime: true, ..p.clone() };
        assert!(!idle_too_long(&infinite, &token(0, None), now));
        let non_expiring = RefreshTokenPolicy { expiration_type: "non-expiring".into(), ..p };
        assert!(!idle_too_long(&non_expiring, &token(0, None), now));
    }

    #[test]
    fn a_use_is_recorded_at_most_once_a_minute_or_a_tenth_of_the_idle_lifetime() {
        let now = 10 * DAY;
        let p = policy("non-rotating", 86_400);
        assert!(!needs_touch(&p, &token(now - DAY, Some(now - 59_999)), now));
        assert!(needs_touch(&p, &token(now - DAY, Some(now - 60_000)), now));
        assert!(needs_touch(&p, &token(now - 60_000, None), now), "its birth counts as a use");
        let short = policy("non-rotating", 100);
        assert!(needs_touch(&short, &token(now - DAY, Some(now - 10_000)), now), "a tenth of 100 s");
        assert!(!needs_touch(&short, &token(now - DAY, Some(now - 9_999)), now));
        let infinite = RefreshTokenPolicy { infinite_idle_token_lifetime: true, ..p };
        assert!(!needs_touch(&infinite, &token(0, None), now), "nothing to record when idleness never ends it");
    }
}
