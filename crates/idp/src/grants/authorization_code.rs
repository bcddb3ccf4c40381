//! The authorization-code grant: single-use codes, redirect URI and PKCE checks. A code
//! presented twice revokes what its first use issued (RFC 6749 4.1.2): the refresh tokens,
//! and the access tokens, which this idp then refuses at its own endpoints.

use super::{Grant, Issuance, Params, Refresh, TokenResponse, issue};
use crate::logs::Event;
use crate::tokens::MAX_ACCESS_TOKEN_LIFETIME;
use crate::util::{b64url, ct_eq, sha256};
use crate::{AppState, Error, Result};
use store::{Client, CodeRedemption};

/// Exchanges a code; `event` (the tenant log's) learns the user and audience.
pub async fn exchange(idp: &AppState, client: &Client, p: &Params, event: &mut Event) -> Result<TokenResponse> {
    let code = p.require("code")?;
    let grant = match idp.store.redeem_code(&sha256(code.as_bytes()), idp.now()).await? {
        CodeRedemption::Fresh(g) => g,
        CodeRedemption::Reused(g) => {
            if let Ok(grant) = serde_json::from_value::<Grant>(g) {
                let revoked = idp.store.revoke_refresh_family(&grant.family).await?;
                // Kept as long as any access token of the grant may live.
                let until = idp.now() + MAX_ACCESS_TOKEN_LIFETIME * 1000;
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
    if !pkce_holds(grant.code_challenge.as_deref(), grant.code_challenge_method.as_deref(), p.get("code_verifier")) {
        return Err(Error::invalid_grant("Failed to verify code verifier"));
    }
    let user =
        idp.store.user(&grant.user_id).await?.ok_or_else(|| Error::invalid_grant("Invalid authorization code"))?.user;
    *event = std::mem::take(event).user(&user).audience(grant.audience.as_deref());
    if user.blocked {
        return Err(Error::UserBlocked);
    }
    issue(idp, client, &user, &grant, Issuance::Login, Refresh::New).await
}

/// RFC 7636's character set and length, for challenges and verifiers alike.
pub fn pkce_shape(s: &str) -> bool {
    (43..=128).contains(&s.len())
        && s.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~'))
}

/// Whether the verifier answers the code's challenge: both or neither, the verifier well
/// formed, and (S256) its digest or (plain) itself equal to the challenge, compared in constant
/// time.
pub fn pkce_holds(challenge: Option<&str>, method: Option<&str>, verifier: Option<&str>) -> bool {
    match (challenge, verifier) {
        (Some(challenge), Some(verifier)) => {
            let computed = match method {
                Some("S256") => b64url(&sha256(verifier.as_bytes())),
                _ => verifier.to_owned(),
            };
            pkce_shape(verifier) && ct_eq(computed.as_bytes(), challenge.as_bytes())
        }
        (None, None) => true,
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pkce_s256_and_plain_verify_as_rfc_7636_says() {
        // RFC 7636 Appendix B.
        let verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk";
        let challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM";
        assert!(pkce_holds(Some(challenge), Some("S256"), Some(verifier)));
        assert!(!pkce_holds(Some(challenge), Some("S256"), Some(&verifier.replace('d', "e"))));
        assert!(!pkce_holds(Some(challenge), Some("plain"), Some(verifier)), "plain compares the verifier itself");
        assert!(pkce_holds(Some(verifier), Some("plain"), Some(verifier)));
        assert!(pkce_holds(Some(verifier), None, Some(verifier)), "no method means plain");
    }

    #[test]
    fn a_verifier_must_come_exactly_when_a_challenge_was_made() {
        let v = "a".repeat(43);
        assert!(pkce_holds(None, None, None));
        assert!(!pkce_holds(Some(&v), Some("plain"), None));
        assert!(!pkce_holds(None, None, Some(&v)));
    }

    #[test]
    fn a_malformed_verifier_fails_even_when_it_matches() {
        let short = "a".repeat(42);
        assert!(!pkce_holds(Some(&short), Some("plain"), Some(&short)));
        let bad = format!("{}/", "a".repeat(42));
        assert!(!pkce_holds(Some(&bad), Some("plain"), Some(&bad)));
        assert!(pkce_shape(&"a".repeat(128)) && !pkce_shape(&"a".repeat(129)));
    }
}
