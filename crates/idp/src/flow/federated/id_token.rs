//! Checking an upstream provider's ID token: the RS256 signature against the provider's JWKS,
//! then issuer, audience, nonce and lifetime (OpenID Connect Core §3.1.3.7). Plain functions:
//! fetching and caching the JWKS is the caller's job.

use crate::util::{b64url_decode, ct_eq};
use aws_lc_rs::signature::{ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaPublicKeyComponents};
use serde_json::{Map, Value};
use std::collections::HashMap;

/// Clock difference tolerated with the upstream, in seconds.
const LEEWAY_SECS: i64 = 60;

/// Why an ID token was refused; the text reaches the application's `error_description`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    #[error("the ID token is malformed")]
    Malformed,
    #[error("the ID token is signed with {0}; only RS256 is accepted")]
    Algorithm(String),
    #[error("the ID token is signed with a key the provider does not publish")]
    UnknownKey,
    #[error("the ID token's signature is invalid")]
    Signature,
    #[error("the ID token's issuer is not the provider's")]
    Issuer,
    #[error("the ID token is not meant for this connection's client (audience)")]
    Audience,
    #[error("the ID token's nonce does not match this login")]
    Nonce,
    #[error("the ID token has expired")]
    Expired,
    #[error("the ID token has no subject")]
    Subject,
}

/// An upstream's published signing keys (RSA only: what Google and OpenID providers sign
/// ID tokens with by default).
pub struct Jwks {
    keys: HashMap<String, ParsedPublicKey>,
    /// Keys published without a `kid`.
    anonymous: Vec<ParsedPublicKey>,
}

impl Jwks {
    /// Keys that are not RSA signature keys, or do not parse, are skipped.
    pub fn parse(doc: &Value) -> Self {
        let mut keys = HashMap::new();
        let mut anonymous = Vec::new();
        for k in doc.get("keys").and_then(Value::as_array).into_iter().flatten() {
            let field = |name: &str| k.get(name).and_then(Value::as_str);
            if field("kty") != Some("RSA") || field("use").is_some_and(|u| u != "sig") {
                continue;
            }
            if field("alg").is_some_and(|a| a != "RS256") {
                continue;
            }
            let (Some(n), Some(e)) = (field("n").and_then(b64url_decode), field("e").and_then(b64url_decode)) else {
                continue;
            };
            let Ok(parsed) =
                (RsaPublicKeyComponents { n: &n[..], e: &e[..] }).to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
            else {
                continue;
            };
            match field("kid") {
                Some(kid) => {
                    keys.insert(kid.to_string(), parsed);
                }
                None => anonymous.push(parsed),
            }
        }
        Jwks { keys, anonymous }
    }

    /// The key a token names; a token without `kid` may use the provider's only key.
    pub fn key(&self, kid: Option<&str>) -> Option<&ParsedPublicKey> {
        match kid {
            Some(kid) => self.keys.get(kid),
            None if self.keys.len() + self.anonymous.len() == 1 => self.keys.values().next().or(self.anonymous.first()),
            None => None,
        }
    }
}

/// A token split and its header read, before any key is chosen.
pub struct Parts<'a> {
    pub kid: Option<String>,
    signed: &'a str,
    payload: &'a str,
    signature: &'a str,
}

pub fn split(token: &str) -> Result<Parts<'_>, Refusal> {
    let mut it = token.split('.');
    let (Some(h), Some(p), Some(s), None) = (it.next(), it.next(), it.next(), it.next()) else {
        return Err(Refusal::Malformed);
    };
    let header: Value = b64url_decode(h).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(Refusal::Malformed)?;
    // The algorithm is fixed rather than taken from the header: "none" and HMAC confusion
    // attacks start by choosing it.
    match header.get("alg").and_then(Value::as_str) {
        Some("RS256") => {}
        Some(other) => return Err(Refusal::Algorithm(other.to_string())),
        None => return Err(Refusal::Malformed),
    }
    let kid = header.get("kid").and_then(Value::as_str).map(str::to_owned);
    Ok(Parts { kid, signed: &token[..h.len() + 1 + p.len()], payload: p, signature: s })
}

/// What this login expects of the token.
pub struct Expect<'a> {
    pub issuers: &'a [String],
    pub client_id: &'a str,
    pub nonce: &'a str,
    pub now_secs: i64,
}

/// Verifies the signature with `key`, then the claims; returns them.
pub fn verify(parts: &Parts<'_>, key: &ParsedPublicKey, expect: &Expect<'_>) -> Result<Map<String, Value>, Refusal> {
    let sig = b64url_decode(parts.signature).ok_or(Refusal::Malformed)?;
    key.verify_sig(parts.signed.as_bytes(), &sig).map_err(|_| Refusal::Signature)?;
    let claims: Map<String, Value> =
        b64url_decode(parts.payload).and_then(|b| serde_json::from_slice(&b).ok()).ok_or(Refusal::Malformed)?;
    let text = |k: &str| claims.get(k).and_then(Value::as_str);
    if !text("iss").is_some_and(|iss| expect.issuers.iter().any(|i| i == iss)) {
        return Err(Refusal::Issuer);
    }
    let audience_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expect.client_id,
        Some(Value::Array(list)) => list.iter().any(|a| a.as_str() == Some(expect.client_id)),
        _ => false,
    };
    // A token for several audiences must name us as its authorised party.
    if !audience_ok || text("azp").is_some_and(|azp| azp != expect.client_id) {
        return Err(Refusal::Audience);
    }
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or(Refusal::Expired)?;
    if exp + LEEWAY_SECS <= expect.now_secs {
        return Err(Refusal::Expired);
    }
    if !text("nonce").is_some_and(|n| ct_eq(n.as_bytes(), expect.nonce.as_bytes())) {
        return Err(Refusal::Nonce);
    }
    if text("sub").is_none_or(str::is_empty) {
        return Err(Refusal::Subject);
    }
    Ok(claims)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::b64url;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
    use serde_json::json;

    /// An RSA key standing in for the upstream's.
    fn pair() -> &'static RsaKeyPair {
        static KEY: std::sync::OnceLock<RsaKeyPair> = std::sync::OnceLock::new();
        KEY.get_or_init(|| RsaKeyPair::generate(KeySize::Rsa2048).unwrap())
    }

    fn jwks() -> Jwks {
        let public = pair().public_key();
        Jwks::parse(&json!({"keys": [{
            "kty": "RSA", "use": "sig", "alg": "RS256", "kid": "k1",
            "n": b64url(public.modulus().big_endian_without_leading_zero()),
            "e": b64url(public.exponent().big_endian_without_leading_zero()),
        }, {"kty": "EC", "kid": "ec"}]}))
    }

    fn token(claims: Value) -> String {
        let mut t =
            format!("{}.{}", b64url(br#"{"alg":"RS256","kid":"k1"}"#), b64url(&serde_json::to_vec(&claims).unwrap()));
        let mut sig = vec![0u8; pair().public_modulus_len()];
        pair().sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), t.as_bytes(), &mut sig).unwrap();
        t.push('.');
        t.push_str(&b64url(&sig));
        t
    }

    fn good() -> Value {
        json!({"iss": "https://up/", "aud": "cid", "sub": "123", "nonce": "n1", "exp": 2_000, "iat": 1_000})
    }

    fn check(claims: Value) -> Result<Map<String, Value>, Refusal> {
        let t = token(claims);
        let parts = split(&t)?;
        let jwks = jwks();
        let key = jwks.key(parts.kid.as_deref()).ok_or(Refusal::UnknownKey)?;
        let issuers = ["https://up/".to_string()];
        verify(&parts, key, &Expect { issuers: &issuers, client_id: "cid", nonce: "n1", now_secs: 1_500 })
    }

    fn with(k: &str, v: Value) -> Value {
        let mut c = good();
        c[k] = v;
        c
    }

    #[test]
    fn a_good_token_passes_and_each_claim_is_checked() {
        assert_eq!(check(good()).unwrap()["sub"], "123");
        assert_eq!(check(with("iss", json!("https://evil/"))), Err(Refusal::Issuer));
        assert_eq!(check(with("aud", json!("other"))), Err(Refusal::Audience));
        assert!(check(with("aud", json!(["other", "cid"]))).is_ok());
        assert_eq!(check(with("azp", json!("other"))), Err(Refusal::Audience));
        assert_eq!(check(with("nonce", json!("n2"))), Err(Refusal::Nonce));
        assert_eq!(check(with("exp", json!(1_000))), Err(Refusal::Expired));
        assert!(check(with("exp", json!(1_450))).is_ok(), "within the leeway");
        assert_eq!(check(with("sub", json!(""))), Err(Refusal::Subject));
        let mut no_nonce = good();
        no_nonce.as_object_mut().unwrap().remove("nonce");
        assert_eq!(check(no_nonce), Err(Refusal::Nonce));
    }

    #[test]
    fn tampering_unknown_keys_and_other_algorithms_are_refused() {
        let t = token(good());
        let mut pieces: Vec<String> = t.split('.').map(str::to_owned).collect();
        pieces[1] = b64url(&serde_json::to_vec(&with("sub", json!("999"))).unwrap());
        let forged = pieces.join(".");
        let parts = split(&forged).unwrap();
        let jwks = jwks();
        let key = jwks.key(parts.kid.as_deref()).unwrap();
        let issuers = ["https://up/".to_string()];
        let expect = Expect { issuers: &issuers, client_id: "cid", nonce: "n1", now_secs: 1_500 };
        assert_eq!(verify(&parts, key, &expect).unwrap_err(), Refusal::Signature);
        assert!(jwks.key(Some("nope")).is_none());
        assert!(jwks.key(Some("ec")).is_none(), "non-RSA keys are skipped");
        assert!(jwks.key(None).is_some(), "a kid-less token may use the only key");
        let none_alg = format!("{}.{}.", b64url(br#"{"alg":"none"}"#), pieces[1]);
        assert_eq!(split(&none_alg).err(), Some(Refusal::Algorithm("none".into())));
        let hs = format!("{}.{}.x", b64url(br#"{"alg":"HS256"}"#), pieces[1]);
        assert_eq!(split(&hs).err(), Some(Refusal::Algorithm("HS256".into())));
        assert_eq!(split("a.b").err(), Some(Refusal::Malformed));
        assert_eq!(split("a.b.c.d").err(), Some(Refusal::Malformed));
    }
}
