//! RS256 JSON Web Tokens: signing with the current key, verification against the key ring.
//! Hand-written over aws-lc-rs because only RS256 compact JWS is needed and the header must
//! carry our `kid`.

use crate::keys::KeySet;
use crate::util::{b64url, b64url_decode};
use aws_lc_rs::signature::RSA_PKCS1_SHA256;
use serde_json::{Map, Value};

#[derive(Debug, PartialEq, Eq)]
pub enum JwtError {
    Malformed,
    UnknownKey(String),
    BadSignature,
}

pub fn sign(keys: &KeySet, claims: &Map<String, Value>) -> Result<String, crate::Error> {
    let signer = &keys.signer;
    let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#, signer.kid);
    let payload = serde_json::to_vec(claims).map_err(crate::Error::internal)?;
    let mut token = String::with_capacity(64 + payload.len() * 4 / 3 + 350);
    token.push_str(&b64url(header.as_bytes()));
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
pub fn verify(keys: &KeySet, token: &str) -> Result<Map<String, Value>, JwtError> {
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
