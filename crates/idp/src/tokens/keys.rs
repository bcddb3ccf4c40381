//! Signing keys: RSA-2048 pairs kept in the store, one current, earlier ones still published
//! in the JWKS while tokens they signed may be valid. Each node holds a parsed [`KeySet`] and
//! the serialised JWKS in memory, reloaded from the store on rotation, every minute, and on an
//! unknown `kid` (at most once a second).
//!
//! Private keys are sealed with the node's [`SecretBox`] before they reach the store, so a
//! copy of the database signs nothing. Keys an earlier version stored in clear are sealed at
//! start (and when a reload finds one an older node added); a node whose secrets key opens
//! none of the sealed keys refuses to start rather than rotate them away.

use crate::secrets::{SecretBox, is_sealed};
use crate::util::{b64, b64url, now_ms, sha256};
use crate::{Error, Result};
use aws_lc_rs::digest;
use aws_lc_rs::encoding::AsDer;
use aws_lc_rs::rsa::KeySize;
use aws_lc_rs::signature::{KeyPair, ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RsaKeyPair};
use serde_json::json;
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use store::{KeySecretReplacement, SigningKey, Store};

/// Keys rotated out stay published this long: the longest access-token lifetime Auth0 allows.
const PUBLISH_AFTER_ROTATION_MS: i64 = 2_592_000 * 1000;

/// Reloads for tokens naming a `kid` this node does not know happen at most this often: anyone
/// can make up a `kid`, and each reload is a store read.
const UNKNOWN_KID_RELOAD_INTERVAL: Duration = Duration::from_secs(1);

fn is_published(key: &SigningKey, now: i64) -> bool {
    key.revoked_at.is_none() && (key.current || key.rotated_at.is_some_and(|at| at + PUBLISH_AFTER_ROTATION_MS > now))
}

pub struct Signer {
    pub kid: String,
    pub pair: RsaKeyPair,
    /// The JWS header every token this key signs starts with, base64url-encoded once.
    pub encoded_header: String,
}

pub struct KeySet {
    pub signer: Signer,
    verifiers: HashMap<String, ParsedPublicKey>,
    /// `/.well-known/jwks.json`, serialised once.
    pub jwks: axum::body::Bytes,
    /// Tokens verified with these keys; dropped with them.
    pub(crate) verified: super::memo::Verified,
}

impl KeySet {
    pub fn verifier(&self, kid: &str) -> Option<&ParsedPublicKey> {
        self.verifiers.get(kid)
    }

    pub(crate) fn build(keys: &[SigningKey], now: i64, secrets: &SecretBox) -> Result<Self> {
        let mut signer = None;
        let mut verifiers = HashMap::new();
        let mut jwks = Vec::new();
        for key in keys.iter().filter(|k| is_published(k, now)) {
            let pair = RsaKeyPair::from_pkcs8(&private_der(key, secrets)?)
                .map_err(|e| Error::internal(format!("signing key {}: {e}", key.kid)))?;
            let public = pair.public_key();
            let verifier = ParsedPublicKey::new(&RSA_PKCS1_2048_8192_SHA256, public.as_ref())
                .map_err(|e| Error::internal(format!("signing key {}: {e}", key.kid)))?;
            jwks.push(json!({
                "kty": "RSA",
                "use": "sig",
                "alg": "RS256",
                "n": b64url(public.modulus().big_endian_without_leading_zero()),
                "e": b64url(public.exponent().big_endian_without_leading_zero()),
                "kid": key.kid,
                "x5t": b64url(digest::digest(&digest::SHA1_FOR_LEGACY_USE_ONLY, &key.cert_der).as_ref()),
                "x5c": [b64(&key.cert_der)],
            }));
            verifiers.insert(key.kid.clone(), verifier);
            if key.current {
                let header = format!(r#"{{"alg":"RS256","typ":"JWT","kid":"{}"}}"#, key.kid);
                signer = Some(Signer { kid: key.kid.clone(), pair, encoded_header: b64url(header.as_bytes()) });
            }
        }
        let signer = signer.ok_or_else(|| Error::internal("no current signing key"))?;
        let jwks = serde_json::to_vec(&json!({ "keys": jwks })).map_err(Error::internal)?.into();
        Ok(KeySet { signer, verifiers, jwks, verified: Default::default() })
    }

    /// Whether `build(keys, now)` would publish the same keys with the same one current, so a
    /// reload that finds nothing new keeps this set, its parsed keys and its memo.
    fn publishes_the_same(&self, keys: &[SigningKey], now: i64) -> bool {
        let mut published = 0;
        for key in keys.iter().filter(|k| is_published(k, now)) {
            published += 1;
            if !self.verifiers.contains_key(&key.kid) || key.current != (key.kid == self.signer.kid) {
                return false;
            }
        }
        published == self.verifiers.len()
    }
}

pub struct KeyRing {
    store: Arc<dyn Store>,
    secrets: Arc<SecretBox>,
    set: RwLock<Arc<KeySet>>,
    /// Serialises reloads; holds when the last one for an unknown `kid` began.
    reload: tokio::sync::Mutex<Option<Instant>>,
}

impl KeyRing {
    /// Loads the keys, sealing those stored in clear, and creates the first one when the store
    /// has none. Fails, changing nothing, when `secrets` cannot open the sealed keys.
    pub async fn load(store: Arc<dyn Store>, secrets: Arc<SecretBox>) -> Result<Self> {
        // Checked before anything is written: sealing clear keys or adding a key under the
        // wrong secrets key would leave keys the other nodes cannot open.
        let keys = store.signing_keys().await?;
        check_sealed_keys_open(&keys, &secrets)?;
        let mut keys = seal_clear_keys(&*store, &secrets, keys).await?;
        if !keys.iter().any(|k| k.current && k.revoked_at.is_none()) {
            store.add_signing_key(&generate_key(&secrets).await?).await?;
            keys = store.signing_keys().await?;
        }
        let set = KeySet::build(&keys, now_ms(), &secrets)?;
        Ok(KeyRing { store, secrets, set: RwLock::new(Arc::new(set)), reload: tokio::sync::Mutex::new(None) })
    }

    pub fn current(&self) -> Arc<KeySet> {
        self.set.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// Re-reads the keys from the store (another node may have rotated).
    pub async fn reload(&self) -> Result<Arc<KeySet>> {
        let _guard = self.reload.lock().await;
        self.reload_locked().await
    }

    /// For a token whose `kid` is not in the current set: another node may have rotated, so
    /// re-read the keys, unless that was done for an unknown `kid` less than
    /// [`UNKNOWN_KID_RELOAD_INTERVAL`] ago. A flood of made-up `kid`s then costs one store read
    /// a second; a key another node rotated in is found by the first token that names it.
    pub async fn reload_for_unknown_kid(&self) -> Result<Arc<KeySet>> {
        let mut last = self.reload.lock().await;
        if last.is_some_and(|at| at.elapsed() < UNKNOWN_KID_RELOAD_INTERVAL) {
            return Ok(self.current());
        }
        *last = Some(Instant::now());
        self.reload_locked().await
    }

    async fn reload_locked(&self) -> Result<Arc<KeySet>> {
        let keys = self.store.signing_keys().await?;
        // A node of an earlier version may have rotated a key in, in clear.
        let keys = seal_clear_keys(&*self.store, &self.secrets, keys).await?;
        let now = now_ms();
        let current = self.current();
        if current.publishes_the_same(&keys, now) {
            return Ok(current);
        }
        let set = Arc::new(KeySet::build(&keys, now, &self.secrets)?);
        *self.set.write().unwrap_or_else(|e| e.into_inner()) = set.clone();
        Ok(set)
    }

    /// Makes a fresh key current; the previous one stays published.
    pub async fn rotate(&self) -> Result<Arc<KeySet>> {
        self.store.add_signing_key(&generate_key(&self.secrets).await?).await?;
        self.reload().await
    }
}

/// What a private key is sealed for: its own `kid`, so a sealed key copied onto another key's
/// row does not open (distinct from the contexts of Action secrets).
fn seal_context(kid: &str) -> String {
    format!("gatehouse:signing-key:{kid}")
}

/// The PKCS#8 DER of a stored key, opened when sealed.
fn private_der(key: &SigningKey, secrets: &SecretBox) -> Result<Vec<u8>> {
    if !is_sealed(&key.private_pkcs8) {
        return Ok(key.private_pkcs8.clone());
    }
    let sealed = std::str::from_utf8(&key.private_pkcs8).map_err(|_| Error::internal("a sealed key is not text"))?;
    secrets.open_bytes(&seal_context(&key.kid), sealed)
}

/// Fails, naming the first key concerned, when a sealed key does not open with `secrets`:
/// this node was given another secrets key than the one the keys were sealed with.
fn check_sealed_keys_open(keys: &[SigningKey], secrets: &SecretBox) -> Result<()> {
    for key in keys.iter().filter(|k| is_sealed(&k.private_pkcs8)) {
        private_der(key, secrets).map_err(|_| {
            Error::internal(format!(
                "the signing key {} in the database cannot be decrypted with this node's secrets key: \
                 start it with the secrets key the database was used with (--secrets-key, default \
                 <data>/secrets.key; every node sharing a database needs the same file)",
                key.kid
            ))
        })?;
    }
    Ok(())
}

/// Seals the keys stored in clear (databases from before sealing) and returns the keys as
/// stored afterwards. All are replaced in one compare-and-set, so nodes starting together on
/// one database seal them once; the others re-read what the first wrote, and check that they
/// can open it.
async fn seal_clear_keys(store: &dyn Store, secrets: &SecretBox, keys: Vec<SigningKey>) -> Result<Vec<SigningKey>> {
    let clear: Vec<&SigningKey> = keys.iter().filter(|k| !is_sealed(&k.private_pkcs8)).collect();
    if clear.is_empty() {
        return Ok(keys);
    }
    let replacements = clear
        .iter()
        .map(|k| {
            let sealed = secrets.seal_bytes(&seal_context(&k.kid), &k.private_pkcs8)?;
            Ok(KeySecretReplacement { kid: k.kid.clone(), old: k.private_pkcs8.clone(), new: sealed.into_bytes() })
        })
        .collect::<Result<Vec<_>>>()?;
    if store.replace_signing_key_secrets(&replacements).await? {
        let kids: Vec<&str> = clear.iter().map(|k| k.kid.as_str()).collect();
        tracing::info!(kids = ?kids, "sealed the signing keys stored in clear with the secrets key");
    }
    let keys = store.signing_keys().await?;
    check_sealed_keys_open(&keys, secrets)?;
    Ok(keys)
}

/// A fresh key, sealed. RSA key generation takes tens of milliseconds: keep it off the async
/// workers.
pub(crate) async fn generate_key(secrets: &SecretBox) -> Result<SigningKey> {
    let mut key = generate_clear_key().await?;
    key.private_pkcs8 = secrets.seal_bytes(&seal_context(&key.kid), &key.private_pkcs8)?.into_bytes();
    Ok(key)
}

async fn generate_clear_key() -> Result<SigningKey> {
    tokio::task::spawn_blocking(|| {
        let pair = RsaKeyPair::generate(KeySize::Rsa2048).map_err(|_| Error::internal("RSA key generation failed"))?;
        let pkcs8 = pair.as_der().map_err(|_| Error::internal("RSA key encoding failed"))?;
        let private_pkcs8 = pkcs8.as_ref().to_vec();
        let cert_der = self_signed_cert(&private_pkcs8)?;
        let kid = b64url(&sha256(&cert_der)[..16]);
        Ok(SigningKey {
            kid,
            private_pkcs8,
            cert_der,
            created_at: now_ms(),
            current: true,
            rotated_at: None,
            revoked_at: None,
        })
    })
    .await
    .map_err(Error::internal)?
}

fn self_signed_cert(pkcs8: &[u8]) -> Result<Vec<u8>> {
    let key = rcgen::KeyPair::try_from(pkcs8).map_err(Error::internal)?;
    let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).map_err(Error::internal)?;
    params.distinguished_name.push(rcgen::DnType::CommonName, "gatehouse signing key");
    Ok(params.self_signed(&key).map_err(Error::internal)?.der().to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::SqlStore;

    async fn ring() -> (KeyRing, Arc<dyn Store>) {
        let store: Arc<dyn Store> = Arc::new(SqlStore::connect("sqlite::memory:").await.expect("store"));
        let secrets = Arc::new(SecretBox::from_key(&[7; 32]));
        (KeyRing::load(store.clone(), secrets).await.expect("ring"), store)
    }

    #[tokio::test]
    async fn a_reload_that_finds_nothing_new_keeps_the_set_and_its_memo() {
        let (ring, store) = ring().await;
        let before = ring.current();
        assert!(Arc::ptr_eq(&before, &ring.reload().await.unwrap()));
        assert!(Arc::ptr_eq(&before, &ring.current()));

        store.add_signing_key(&generate_key(&ring.secrets).await.unwrap()).await.unwrap();
        let after = ring.reload().await.unwrap();
        assert!(!Arc::ptr_eq(&before, &after));
        assert_ne!(after.signer.kid, before.signer.kid);
        assert!(after.verifier(&before.signer.kid).is_some(), "the rotated-out key stays published");
    }

    #[tokio::test]
    async fn unknown_kid_reloads_happen_at_most_once_per_interval() {
        let (ring, store) = ring().await;
        let first = ring.reload_for_unknown_kid().await.unwrap();

        // Another node rotates; within the interval a second unknown kid does not read the store.
        store.add_signing_key(&generate_key(&ring.secrets).await.unwrap()).await.unwrap();
        let throttled = ring.reload_for_unknown_kid().await.unwrap();
        assert!(Arc::ptr_eq(&first, &throttled));

        // Once the interval has passed, the next unknown kid finds the new key.
        *ring.reload.lock().await = Instant::now().checked_sub(UNKNOWN_KID_RELOAD_INTERVAL);
        let reloaded = ring.reload_for_unknown_kid().await.unwrap();
        assert_ne!(reloaded.signer.kid, first.signer.kid);
        assert!(Arc::ptr_eq(&reloaded, &ring.current()));
    }

    #[tokio::test]
    async fn a_reload_seals_a_clear_key_a_node_of_an_earlier_version_rotated_in() {
        let (ring, store) = ring().await;
        let clear = generate_clear_key().await.unwrap();
        store.add_signing_key(&clear).await.unwrap();
        let reloaded = ring.reload().await.unwrap();
        assert_eq!(reloaded.signer.kid, clear.kid, "the new key signs");
        let stored = store.signing_keys().await.unwrap();
        assert!(stored.iter().all(|k| is_sealed(&k.private_pkcs8)), "no key stays in clear");
        let sealed = stored.iter().find(|k| k.kid == clear.kid).unwrap();
        assert_eq!(private_der(sealed, &ring.secrets).unwrap(), clear.private_pkcs8);
    }

    #[tokio::test]
    async fn a_forced_reload_is_never_throttled() {
        let (ring, store) = ring().await;
        let first = ring.reload_for_unknown_kid().await.unwrap();
        store.add_signing_key(&generate_key(&ring.secrets).await.unwrap()).await.unwrap();
        assert_ne!(ring.reload().await.unwrap().signer.kid, first.signer.kid);
    }
}
