//! An access token presented to this idp (`/userinfo`, the Management API).

use super::grant_of_jti;
use super::jwt::{self, Claims, JwtError};
use crate::{AppState, Error, Result};
use serde_json::Value;

/// Verifies a token this idp issued: signature (reloading keys on an unknown `kid`, in case
/// another node rotated), issuer, expiry, and that its grant was not revoked (a replayed
/// authorization code) on any node: a set lookup, the set read from the store once a second.
pub async fn verify_access_token(idp: &AppState, token: &str) -> Result<Claims> {
    let mut keys = idp.keys.current();
    let claims = match jwt::verify(&keys, token) {
        Err(JwtError::UnknownKey(_)) => {
            keys = idp.keys.reload_for_unknown_kid().await?;
            jwt::verify(&keys, token)
        }
        other => other,
    }
    .map_err(|_| Error::Unauthorized("bad signature"))?;
    if !claims.get("iss").and_then(Value::as_str).is_some_and(|iss| idp.config.is_issuer(iss)) {
        return Err(Error::Unauthorized("wrong issuer"));
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(Error::Unauthorized("no exp"))?;
    let now = idp.now();
    if exp * 1000 <= now {
        return Err(Error::Unauthorized("expired"));
    }
    if let Some(grant) = grant_of_jti(&claims)
        && idp.cache.cached_revoked_grants(now).await?.contains(grant)
    {
        return Err(Error::Unauthorized("revoked"));
    }
    Ok(claims)
}
