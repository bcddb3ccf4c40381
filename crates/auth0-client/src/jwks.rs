//! ID-token verification against the tenant's JWKS (`<auth0Url>/.well-known/jwks.json`),
//! over aws-lc-rs like the idp's own `jwt.rs`. Key sets are cached per tenant URL and fetched
//! again when a token names an unknown `kid` (one fetch at a time, however many tokens wait).
//! Only the client's `supportedSigningAlgs` are accepted; `iss`, `aud`, `exp` and the login's
//! `nonce` are checked.

use crate::config::SigningAlg;
use crate::error::{Error, Result};
use crate::util::b64url_decode;
use aws_lc_rs::hmac;
use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};

/// Clock skew tolerated on `exp` and `iat`.
const LEEWAY_SECS: i64 = 60;

#[derive(Debug, Clone)]
enum KeyMaterial {
    Rsa {
        n: Vec<u8>,
        e: Vec<u8>,
    },
    /// Uncompressed point `04 || x || y`.
    Ec {
        curve: &'static str,
        point: Vec<u8>,
    },
}

#[derive(Debug, Clone)]
struct Jwk {
    kid: Option<String>,
    material: KeyMaterial,
}

/// What a verified token must also satisfy.
pub struct Expect<'a> {
    /// `<auth0Url>/`.
    pub issuer: &'a str,
    pub audience: &'a str,
    pub algs: &'a [SigningAlg],
    /// The application's secret: the key of HS256 ID tokens.
    pub client_secret: &'a str,
    pub nonce: Option<&'a str>,
    pub now_ms: i64,
}

pub struct Jwks {
    http: reqwest::Client,
    sets: RwLock<HashMap<String, Arc<Vec<Jwk>>>>,
    fetching: tokio::sync::Mutex<()>,
}

fn rejected(why: impl std::fmt::Display) -> Error {
    Error::Upstream(format!("the ID token from Auth0 failed verification: {why}"))
}

impl Jwks {
    pub fn new(http: reqwest::Client) -> Self {
        Jwks { http, sets: RwLock::new(HashMap::new()), fetching: tokio::sync::Mutex::new(()) }
    }

    /// Verifies `token` (issued by the tenant at `base_url`) and returns its claims.
    pub async fn verify(&self, base_url: &str, token: &str, expect: &Expect<'_>) -> Result<Map<String, Value>> {
        let mut parts = token.split('.');
        let (Some(h), Some(p), Some(s), None) = (parts.next(), parts.next(), parts.next(), parts.next()) else {
            return Err(rejected("not a compact JWS"));
        };
        let header: Value = b64url_decode(h)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| rejected("unreadable header"))?;
        let alg_name = header.get("alg").and_then(Value::as_str).unwrap_or("");
        let alg = SigningAlg::parse(alg_name)
            .filter(|a| expect.algs.contains(a))
            .ok_or_else(|| rejected(format!("algorithm {alg_name:?} is not in supportedSigningAlgs")))?;
        let kid = header.get("kid").and_then(Value::as_str);
        let sig = b64url_decode(s).ok_or_else(|| rejected("unreadable signature"))?;
        let signed = &token.as_bytes()[..h.len() + 1 + p.len()];

        if alg == SigningAlg::HS256 {
            // Only where the configuration lists HS256 (checked above): the secret is shared
            // with Auth0, and a JWKS never holds it.
            let key = hmac::Key::new(hmac::HMAC_SHA256, expect.client_secret.as_bytes());
            hmac::verify(&key, signed, &sig).map_err(|_| rejected("bad signature"))?;
        } else {
            let key = match self.find(base_url, kid, alg) {
                Some(k) => k,
                None => {
                    self.refresh(base_url, kid, alg).await?;
                    self.find(base_url, kid, alg)
                        .ok_or_else(|| rejected(format!("no key {kid:?} in the tenant's JWKS")))?
                }
            };
            verify_signature(&key.material, alg, signed, &sig).map_err(|_| rejected("bad signature"))?;
        }

        let claims: Map<String, Value> = b64url_decode(p)
            .and_then(|b| serde_json::from_slice(&b).ok())
            .ok_or_else(|| rejected("unreadable claims"))?;
        check_claims(&claims, expect).map_err(rejected)?;
        Ok(claims)
    }

    fn find(&self, base_url: &str, kid: Option<&str>, alg: SigningAlg) -> Option<Jwk> {
        let sets = self.sets.read().unwrap_or_else(|e| e.into_inner());
        let keys = sets.get(base_url)?;
        let fits = |k: &&Jwk| fits(&k.material, alg);
        match kid {
            Some(kid) => keys.iter().filter(fits).find(|k| k.kid.as_deref() == Some(kid)).cloned(),
            // Without a kid, only an unambiguous key set will do.
            None => {
                let mut candidates = keys.iter().filter(fits);
                let first = candidates.next()?;
                candidates.next().is_none().then(|| first.clone())
            }
        }
    }

    async fn refresh(&self, base_url: &str, kid: Option<&str>, alg: SigningAlg) -> Result<()> {
        let _one_fetch = self.fetching.lock().await;
        // Another request may have fetched while this one waited.
        if self.find(base_url, kid, alg).is_some() {
            return Ok(());
        }
        let url = format!("{base_url}/.well-known/jwks.json");
        let res =
            self.http.get(&url).send().await.map_err(|e| {
                Error::Upstream(format!("cannot fetch the JWKS at {url}: {}", crate::auth0::describe(&e)))
            })?;
        if !res.status().is_success() {
            return Err(Error::Upstream(format!("the JWKS at {url} answered {}", res.status())));
        }
        let body: Value =
            res.json().await.map_err(|e| Error::Upstream(format!("the JWKS at {url} is not JSON: {e}")))?;
        let keys = parse_jwks(&body);
        self.sets.write().unwrap_or_else(|e| e.into_inner()).insert(base_url.to_string(), Arc::new(keys));
        Ok(())
    }
}

fn parse_jwks(body: &Value) -> Vec<Jwk> {
    let mut out = Vec::new();
    for k in body.get("keys").and_then(Value::as_array).into_iter().flatten() {
        let s = |name: &str| k.get(name).and_then(Value::as_str);
        if s("use").is_some_and(|u| u != "sig") {
            continue;
        }
        let material = match s("kty") {
            Some("RSA") => match (s("n").and_then(b64url_decode), s("e").and_then(b64url_decode)) {
                (Some(n), Some(e)) => KeyMaterial::Rsa { n, e },
                _ => continue,
            },
            Some("EC") => {
                let curve = match s("crv") {
                    Some("P-256") => "P-256",
                    Some("P-384") => "P-384",
                    _ => continue,
                };
                match (s("x").and_then(b64url_decode), s("y").and_then(b64url_decode)) {
                    (Some(x), Some(y)) => {
                        let mut point = vec![4u8];
                        point.extend(x);
                        point.extend(y);
                        KeyMaterial::Ec { curve, point }
                    }
                    _ => continue,
                }
            }
            _ => continue,
        };
        out.push(Jwk { kid: s("kid").map(str::to_owned), material });
    }
    out
}

fn fits(m: &KeyMaterial, alg: SigningAlg) -> bool {
    use SigningAlg::*;
    matches!(
        (m, alg),
        (KeyMaterial::Rsa { .. }, RS256 | RS384 | RS512 | PS256 | PS384 | PS512)
            | (KeyMaterial::Ec { curve: "P-256", .. }, ES256)
            | (KeyMaterial::Ec { curve: "P-384", .. }, ES384)
    )
}

fn verify_signature(m: &KeyMaterial, alg: SigningAlg, msg: &[u8], sig: &[u8]) -> std::result::Result<(), ()> {
    use SigningAlg::*;
    match m {
        KeyMaterial::Rsa { n, e } => {
            let params: &signature::RsaParameters = match alg {
                RS256 => &signature::RSA_PKCS1_2048_8192_SHA256,
                RS384 => &signature::RSA_PKCS1_2048_8192_SHA384,
                RS512 => &signature::RSA_PKCS1_2048_8192_SHA512,
                PS256 => &signature::RSA_PSS_2048_8192_SHA256,
                PS384 => &signature::RSA_PSS_2048_8192_SHA384,
                PS512 => &signature::RSA_PSS_2048_8192_SHA512,
                _ => return Err(()),
            };
            RsaPublicKeyComponents { n: n.as_slice(), e: e.as_slice() }.verify(params, msg, sig).map_err(|_| ())
        }
        KeyMaterial::Ec { point, .. } => {
            let params: &'static dyn signature::VerificationAlgorithm = match alg {
                ES256 => &signature::ECDSA_P256_SHA256_FIXED,
                ES384 => &signature::ECDSA_P384_SHA384_FIXED,
                _ => return Err(()),
            };
            UnparsedPublicKey::new(params, point).verify(msg, sig).map_err(|_| ())
        }
    }
}

fn check_claims(claims: &Map<String, Value>, expect: &Expect<'_>) -> std::result::Result<(), String> {
    let iss = claims.get("iss").and_then(Value::as_str).unwrap_or("");
    if iss.trim_end_matches('/') != expect.issuer.trim_end_matches('/') {
        return Err(format!("issuer {iss:?} is not {:?}", expect.issuer));
    }
    let aud_ok = match claims.get("aud") {
        Some(Value::String(a)) => a == expect.audience,
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str() == Some(expect.audience)),
        _ => false,
    };
    if !aud_ok {
        return Err(format!("audience is not {:?}", expect.audience));
    }
    let now = expect.now_ms / 1000;
    let exp = claims.get("exp").and_then(Value::as_i64).ok_or("no exp")?;
    if exp + LEEWAY_SECS <= now {
        return Err("expired".into());
    }
    if let Some(iat) = claims.get("iat").and_then(Value::as_i64)
        && iat > now + LEEWAY_SECS
    {
        return Err("issued in the future".into());
    }
    if let Some(nonce) = expect.nonce
        && claims.get("nonce").and_then(Value::as_str) != Some(nonce)
    {
        return Err("nonce does not match the login".into());
    }
    if claims.get("sub").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err("no sub".into());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn expect(nonce: Option<&str>) -> Expect<'_> {
        Expect {
            issuer: "https://t.test/",
            audience: "cid",
            algs: &[SigningAlg::RS256],
            client_secret: "secret",
            nonce,
            now_ms: 1_000_000_000,
        }
    }

    #[test]
    fn claims_rules() {
        let good = json!({"iss": "https://t.test/", "aud": "cid", "exp": 1_000_100, "iat": 1_000_000, "sub": "u", "nonce": "n"});
        let m = |v: Value| v.as_object().unwrap().clone();
        assert!(check_claims(&m(good.clone()), &expect(Some("n"))).is_ok());
        let mut v = good.clone();
        v["aud"] = json!(["x", "cid"]);
        assert!(check_claims(&m(v), &expect(None)).is_ok());
        for (k, bad) in
            [("iss", json!("https://evil/")), ("aud", json!("x")), ("exp", json!(999_000)), ("nonce", json!("m"))]
        {
            let mut v = good.clone();
            v[k] = bad;
            assert!(check_claims(&m(v), &expect(Some("n"))).is_err(), "{k}");
        }
    }

    #[tokio::test]
    async fn hs256_id_tokens_verify_with_the_client_secret_only_where_configured() {
        use base64::Engine;
        let enc = |b: &[u8]| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b);
        let token = |secret: &str| {
            let claims =
                json!({"iss": "https://t.test/", "aud": "cid", "exp": 1_000_100, "iat": 1_000_000, "sub": "u"});
            let signed = format!("{}.{}", enc(br#"{"alg":"HS256","typ":"JWT"}"#), enc(claims.to_string().as_bytes()));
            let tag = hmac::sign(&hmac::Key::new(hmac::HMAC_SHA256, secret.as_bytes()), signed.as_bytes());
            format!("{signed}.{}", enc(tag.as_ref()))
        };
        // Nothing listens there: HS256 never needs the JWKS.
        let jwks = Jwks::new(reqwest::Client::new());
        let base = "http://127.0.0.1:9";
        let with_hs256 = Expect { algs: &[SigningAlg::RS256, SigningAlg::HS256], ..expect(None) };
        assert_eq!(jwks.verify(base, &token("secret"), &with_hs256).await.unwrap()["sub"], "u");
        assert!(jwks.verify(base, &token("not-the-secret"), &with_hs256).await.is_err());
        assert!(jwks.verify(base, &token("secret"), &expect(None)).await.is_err(), "HS256 not configured");
    }

    #[test]
    fn jwks_parsing_keeps_signing_keys() {
        let keys = parse_jwks(&json!({"keys": [
            {"kty": "RSA", "kid": "a", "n": "AQAB", "e": "AQAB", "use": "sig"},
            {"kty": "RSA", "kid": "enc", "n": "AQAB", "e": "AQAB", "use": "enc"},
            {"kty": "oct", "kid": "h", "k": "AQAB"}
        ]}));
        assert_eq!(keys.len(), 1);
        assert_eq!(keys[0].kid.as_deref(), Some("a"));
    }
}
