//! Action secrets and signing keys at rest: AES-256-GCM (aws-lc-rs) under a 32-byte key that
//! lives outside the database, in a key file (`<data>/secrets.key` unless configured), created
//! with mode 0600 on first start. Each value gets a random 96-bit nonce; the additional data
//! binds a ciphertext to what it is (an action and secret name, a key's kid), so a stored value
//! cannot be moved to another.
//!
//! This module owns the key and the sealed format (`v1.<base64url(nonce ‖ ciphertext ‖ tag)>`).
//! It must not log or return plaintext anywhere but to its caller; nodes sharing a database must
//! share the key file.

use crate::util::{b64url, b64url_decode, random_bytes};
use crate::{Error, Result};
use aws_lc_rs::aead::{AES_256_GCM, Aad, LessSafeKey, NONCE_LEN, Nonce, UnboundKey};
use std::io::Write;
use std::path::Path;

const KEY_LEN: usize = 32;
const PREFIX: &str = "v1.";

pub struct SecretBox {
    key: LessSafeKey,
}

impl std::fmt::Debug for SecretBox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SecretBox(..)")
    }
}

impl SecretBox {
    pub fn from_key(key: &[u8; KEY_LEN]) -> Self {
        // A 32-byte key is always valid for AES-256-GCM.
        let unbound = UnboundKey::new(&AES_256_GCM, key).expect("AES-256-GCM accepts 32-byte keys");
        SecretBox { key: LessSafeKey::new(unbound) }
    }

    /// Reads the key file, or creates it (0600, never overwritten) when it does not exist.
    pub fn load_or_create(path: &Path) -> Result<Self> {
        let read = |path: &Path| -> Result<Self> {
            let bytes = std::fs::read(path)
                .map_err(|e| Error::internal(format!("reading the secrets key {}: {e}", path.display())))?;
            let key: [u8; KEY_LEN] = bytes.as_slice().try_into().map_err(|_| {
                Error::internal(format!("the secrets key {} must be exactly {KEY_LEN} bytes", path.display()))
            })?;
            Ok(Self::from_key(&key))
        };
        if path.exists() {
            return read(path);
        }
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            crate::datadir::create_private_dir(dir)
                .map_err(|e| Error::internal(format!("creating {}: {e}", dir.display())))?;
        }
        let key = random_bytes::<KEY_LEN>();
        match crate::datadir::private_file_options().create_new(true).open(path) {
            Ok(mut file) => {
                file.write_all(&key)
                    .and_then(|()| file.sync_all())
                    .map_err(|e| Error::internal(format!("writing the secrets key {}: {e}", path.display())))?;
                tracing::info!(path = %path.display(), "created the key that encrypts action secrets");
                Ok(Self::from_key(&key))
            }
            // Another node on the same data dir won the race: use its key.
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => read(path),
            Err(e) => Err(Error::internal(format!("creating the secrets key {}: {e}", path.display()))),
        }
    }

    /// Encrypts `plaintext`, bound to `context` (e.g. the action id and secret name).
    pub fn seal(&self, context: &str, plaintext: &str) -> Result<String> {
        self.seal_bytes(context, plaintext.as_bytes())
    }

    /// [`seal`](Self::seal) for binary values (signing keys' PKCS#8).
    pub fn seal_bytes(&self, context: &str, plaintext: &[u8]) -> Result<String> {
        let nonce = random_bytes::<NONCE_LEN>();
        let mut data = plaintext.to_vec();
        self.key
            .seal_in_place_append_tag(Nonce::assume_unique_for_key(nonce), Aad::from(context.as_bytes()), &mut data)
            .map_err(|_| Error::internal("encrypting a secret failed"))?;
        let mut out = nonce.to_vec();
        out.extend_from_slice(&data);
        Ok(format!("{PREFIX}{}", b64url(&out)))
    }

    /// Decrypts a value `seal` produced for the same `context`. Fails on a wrong key, a value
    /// moved to another context, or tampering.
    pub fn open(&self, context: &str, sealed: &str) -> Result<String> {
        String::from_utf8(self.open_bytes(context, sealed)?).map_err(|_| undecryptable())
    }

    /// [`open`](Self::open) for values sealed with [`seal_bytes`](Self::seal_bytes).
    pub fn open_bytes(&self, context: &str, sealed: &str) -> Result<Vec<u8>> {
        let raw = sealed.strip_prefix(PREFIX).and_then(b64url_decode).ok_or_else(undecryptable)?;
        if raw.len() < NONCE_LEN {
            return Err(undecryptable());
        }
        let (nonce, rest) = raw.split_at(NONCE_LEN);
        let nonce = Nonce::try_assume_unique_for_key(nonce).map_err(|_| undecryptable())?;
        let mut data = rest.to_vec();
        let plain =
            self.key.open_in_place(nonce, Aad::from(context.as_bytes()), &mut data).map_err(|_| undecryptable())?;
        Ok(plain.to_vec())
    }
}

/// Whether a stored value is in the sealed format (the others predate sealing).
pub fn is_sealed(stored: &[u8]) -> bool {
    stored.starts_with(PREFIX.as_bytes())
}

fn undecryptable() -> Error {
    Error::internal(
        "a stored secret cannot be decrypted with this node's secrets key (do all nodes share the key file?)",
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seal_and_open() {
        let b = SecretBox::from_key(&[7; 32]);
        let sealed = b.seal("action:a:NS", "https://cms.example.test/").unwrap();
        assert!(sealed.starts_with("v1.") && !sealed.contains("cms.example"));
        assert_ne!(sealed, b.seal("action:a:NS", "https://cms.example.test/").unwrap(), "random nonce");
        assert_eq!(b.open("action:a:NS", &sealed).unwrap(), "https://cms.example.test/");
        assert!(b.open("action:b:NS", &sealed).is_err(), "bound to its context");
        assert!(SecretBox::from_key(&[8; 32]).open("action:a:NS", &sealed).is_err(), "other key");
        assert!(b.open("action:a:NS", "plain text").is_err());
    }

    #[test]
    fn key_file_is_created_once_and_private() {
        let dir = std::env::temp_dir().join(format!("gatehouse-secrets-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        let path = dir.join("nested/secrets.key");
        let a = SecretBox::load_or_create(&path).unwrap();
        let sealed = a.seal("c", "v").unwrap();
        let b = SecretBox::load_or_create(&path).unwrap();
        assert_eq!(b.open("c", &sealed).unwrap(), "v", "the same key is read back");
        assert_eq!(std::fs::read(&path).unwrap().len(), 32);
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            assert_eq!(std::fs::metadata(&path).unwrap().permissions().mode() & 0o777, 0o600);
        }
        std::fs::write(&path, b"short").unwrap();
        assert!(SecretBox::load_or_create(&path).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
