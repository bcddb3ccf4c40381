//! RS256 JSON Web Tokens: signing with the current key, verification against the key ring.
//! Hand-written over aws-lc-rs because only RS256 compact JWS is needed and the header must
//! carry our `kid`.

use super::keys::KeySet;
pub use super::memo::Claims;
use super::memo::Digest;
use crate::util::{b64url, b64url_decode};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use serde_json::{Map, Value};
use std::sync::Arc;

#[derive(Debug, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    UnknownKey(String),
    BadSignature,
}

pub fn sign(keys: &KeySet, claims: &Map<String, Value>) -> Result<String, crate::Error> {
    sign_with_header(keys, &keys.signer.encoded_header, claims)
}

/// [`sign`] with another `typ` in the header (`at+jwt`, RFC 9068's access tokens).
pub fn sign_typed(keys: &KeySet, claims: &Map<String, Value>, typ: &str) -> Result<String, crate::Error> {
    let header = serde_json::json!({ "alg": "RS256", "typ": typ, "kid": keys.signer.kid });
    sign_with_header(keys, &b64url(header.to_string().as_bytes()), claims)
}

fn sign_with_header(keys: &KeySet, encoded_header: &str, claims: &Map<String, Value>) -> Result<String, crate::Error> {
    let signer = &keys.signer;
    let payload = serde_json::to_vec(claims).map_err(crate::Error::internal)?;
    let mut token = String::with_capacity(encoded_header.len() + payload.len() * 4 / 3 + 350);
    token.push_str(encoded_header);
    token.push('.');
    token.push_str(&b64url(&payload));
    let mut sig = vec![0u8; signer.pair.public_modulus_len()];
    signer
        .pair
        .sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), token.as_bytes(), &mut sig)
        .map_err(|_| crate::Error::internal("RSA signing failed"))?;
    token.push('.');
    token.push_str(&b64url(&sig));
    Ok(token)
}

/// Checks the signature with the key named by `kid` and returns the claims. Time, issuer
/// and audience are the caller's to check, since each use checks them differently.
///
/// A bearer token is presented again and again for its whole life, so the key set remembers
/// the tokens it verified (see [`Verified`]): a repeat costs a SHA-256, not an RSA verification
/// and two JSON parses.
pub fn verify(keys: &KeySet, token: &str) -> Result<Claims, JwtError> {
    let digest = Digest::of(token);
    if let Some(claims) = keys.verified.get(&digest) {
        return Ok(claims);
    }
    let claims = Arc::new(verify_signature(keys, token)?);
    keys.verified.insert(digest, claims.clone());
    Ok(claims)
}

/// [`verify`] without the memo: the signature checked, the claims parsed, every time.
pub fn verify_signature(keys: &KeySet, token: &str) -> Result<Map<String, Value>, JwtError> {
    let mut parts = token.splitn(3, '.');
    let (Some(h), Some(p), Some(s)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(JwtError::Malformed);
    };
    let header: Value = b64url_decode(h).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(JwtError::Malformed)?;
    if header.get("alg").and_then(Value::as_str) != Some("RS256") {
        return Err(JwtError::Malformed);
    }
    let kid = header.get("kid").and_then(Value::as_str).ok_or(JwtError::Malformed)?;
    let key = keys.verifier(kid).ok_or_else(|| JwtError::UnknownKey(kid.to_string()))?;
    let sig = b64url_decode(s).ok_or(JwtError::Malformed)?;
    let signed_len = h.len() + 1 + p.len();
    key.verify_sig(&token.as_bytes()[..signed_len], &sig).map_err(|_| JwtError::BadSignature)?;
    let payload = b64url_decode(p).ok_or(JwtError::Malformed)?;
    serde_json::from_slice(&payload).map_err(|_| JwtError::Malformed)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::tokens::keys::{KeySet, generate_key};
    use crate::util::now_ms;
    use serde_json::json;

    async fn key_set() -> KeySet {
        let secrets = crate::secrets::SecretBox::from_key(&[7; 32]);
        KeySet::build(&[generate_key(&secrets).await.expect("key")], now_ms(), &secrets).expect("key set")
    }

    fn claims(sub: &str) -> Map<String, Value> {
        json!({ "sub": sub, "exp": 4_000_000_000_i64 }).as_object().cloned().expect("object")
    }

    #[tokio::test]
    async fn a_repeated_token_is_verified_once_and_shares_its_claims() {
        let keys = key_set().await;
        let token = sign(&keys, &claims("auth0|a")).expect("sign");
        let first = verify(&keys, &token).expect("valid");
        let again = verify(&keys, &token).expect("valid");
        assert!(Arc::ptr_eq(&first, &again), "the second verification comes from the memo");
        assert_eq!(first["sub"], "auth0|a");
        assert_eq!(keys.verified.len(), 1);
    }

    #[tokio::test]
    async fn a_remembered_token_vouches_for_no_other_bytes() {
        let keys = key_set().await;
        let token = sign(&keys, &claims("auth0|a")).expect("sign");
        verify(&keys, &token).expect("valid");
        // Same header and payload, last signature byte changed.
        let (signed, sig) = token.rsplit_once('.').expect("three parts");
        let mut sig = b64url_decode(sig).expect("b64");
        *sig.last_mut().expect("non-empty") ^= 1;
        let forged = format!("{signed}.{}", b64url(&sig));
        assert_eq!(verify(&keys, &forged), Err(JwtError::BadSignature));
        assert_eq!(verify(&keys, &format!("{token} ")), Err(JwtError::Malformed));
        assert_eq!(keys.verified.len(), 1, "refused tokens are not remembered");
    }

    #[tokio::test]
    async fn another_key_set_remembers_nothing() {
        let (keys, rotated) = (key_set().await, key_set().await);
        let token = sign(&keys, &claims("auth0|a")).expect("sign");
        verify(&keys, &token).expect("valid");
        assert!(matches!(verify(&rotated, &token), Err(JwtError::UnknownKey(_))));
    }
}
