//! The authorization-code grant: single-use codes, redirect URI and PKCE checks. A code
//! presented twice revokes what its first use issued (RFC 6749 4.1.2): the refresh tokens,
//! and the access tokens, which this idp then refuses at its own endpoints.

use super::Params;
use crate::grant::{Grant, Issuance, Refresh, TokenResponse, issue};
use crate::tokens::MAX_ACCESS_TOKEN_LIFETIME;
use crate::util::{b64url, ct_eq, now_ms, sha256};
use crate::{AppState, Error, Result};
use store::{Client, CodeRedemption};

pub async fn exchange(idp: &AppState, client: &Client, p: &Params) -> Result<TokenResponse> {
    let code = p.require("code")?;
    let grant = match idp.store.redeem_code(&sha256(code.as_bytes()), now_ms()).await? {
        CodeRedemption::Fresh(g) => g,
        CodeRedemption::Reused(g) => {
            if let Ok(grant) = serde_json::from_value::<Grant>(g) {
                let revoked = idp.store.revoke_refresh_family(&grant.family).await?;
                // Kept as long as any access token of the grant may live.
                let until = now_ms() + MAX_ACCESS_TOKEN_LIFETIME * 1000;
                idp.store.revoke_grant(&grant.tag(), until).await?;
                tracing::warn!(client_id = %grant.client_id, revoked, "authorization code reused; its tokens were revoked");
            }
            return Err(Error::invalid_grant("Invalid authorization code"));
        }
        CodeRedemption::Unknown => return Err(Error::invalid_grant("Invalid authorization code")),
    };
    let grant: Grant = serde_json::from_value(grant).map_err(|_| Error::invalid_grant("Invalid authorization code"))?;
    if grant.client_id != client.client_id {
        return Err(Error::invalid_grant("Invalid authorization code"));
    }
    if let Some(sent) = &grant.redirect_uri {
        match p.get("redirect_uri") {
            Some(r) if crate::urls::same_callback(sent, r) => {}
            _ => {
                return Err(Error::invalid_grant(
                    "The redirect_uri parameter does not match the one of the authorization request",
                ));
            }
        }
    }
    match (&grant.code_challenge, p.get("code_verifier")) {
        (Some(challenge), Some(verifier)) => {
            let valid_shape = (43..=128).contains(&verifier.len())
                && verifier.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'));
            let computed = match grant.code_challenge_method.as_deref() {
                Some("S256") => b64url(&sha256(verifier.as_bytes())),
                _ => verifier.to_owned(),
            };
            if !valid_shape || !ct_eq(computed.as_bytes(), challenge.as_bytes()) {
                return Err(Error::invalid_grant("Failed to verify code verifier"));
            }
        }
        (Some(_), None) => return Err(Error::invalid_grant("Failed to verify code verifier")),
        (None, Some(_)) => return Err(Error::invalid_grant("Failed to verify code verifier")),
        (None, None) => {}
    }
    let user =
        idp.store.user(&grant.user_id).await?.ok_or_else(|| Error::invalid_grant("Invalid authorization code"))?.user;
    if user.blocked {
        return Err(crate::login::LoginError::UserBlocked.into());
    }
    issue(idp, client, &user, &grant, Issuance::Login, Refresh::New).await
}
