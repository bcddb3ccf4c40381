//! Sessions and login states. [`SessionStore`] is the storage port (Redis in production, memory
//! when `REDIS_HOSTS` is unset); [`Sessions`] is the typed layer the routes use on top of it.
//!
//! Keys (spec 4.1, with our prefix `auth0-client:<SESSION_SCOPE>:`):
//! - `session:<sha256(credential)>`: a [`Session`] as JSON, TTL `SESSION_DURATION_SECONDS`. The
//!   credential is the `sid` cookie value (cookie mode) or the access token (token mode). Only its
//!   digest is stored, so nothing in Redis is a usable credential.
//! - `state:<state>`: a [`LoginState`], TTL 600 s, taken (read and deleted) once.
//! - `active`: a sorted set of `<session digest> <user id>`, scored by session expiry, for
//!   `/users/active` without `SCAN`/`KEYS` (works on a Redis Cluster too).
//! - `lock:<session digest>`: a short lock so one refresh per session runs across instances.

pub mod memory;
pub mod redis;

use crate::error::{Error, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// A storage failure (Redis down, timeout); becomes a 503 at the edge.
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
pub struct StoreError(pub String);

impl From<StoreError> for Error {
    fn from(e: StoreError) -> Self {
        Error::SessionStore(e.0)
    }
}

pub type StoreResult<T> = std::result::Result<T, StoreError>;

/// The storage port. Keys passed in are relative (`session:…`); the store adds its prefix.
#[async_trait]
pub trait SessionStore: Send + Sync {
    /// `"redis"` or `"memory"`.
    fn kind(&self) -> &'static str;
    async fn ping(&self) -> StoreResult<()>;
    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()>;
    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Reads and deletes atomically: of two concurrent takes, one gets the value.
    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>>;
    /// Overwrites an existing key keeping its TTL; false when the key is gone.
    async fn replace(&self, key: &str, value: &[u8]) -> StoreResult<bool>;
    async fn delete(&self, key: &str) -> StoreResult<()>;
    /// Adds a member to the active-sessions index, valid until `expires_ms`.
    async fn index_add(&self, member: &str, expires_ms: i64, ttl: Duration) -> StoreResult<()>;
    async fn index_remove(&self, member: &str) -> StoreResult<()>;
    /// Members whose expiry is after `now_ms` (expired ones are pruned).
    async fn index_live(&self, now_ms: i64) -> StoreResult<Vec<String>>;
    /// Takes a lock if free; returns its token.
    async fn try_lock(&self, key: &str, ttl: Duration) -> StoreResult<Option<String>>;
    async fn unlock(&self, key: &str, token: &str) -> StoreResult<()>;
}

/// Cookie (`sid`) or token (Bearer) session.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    Cookie,
    Token,
}

/// What a login leaves in the store.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Session {
    pub client_type: String,
    pub user_id: String,
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: String,
    #[serde(default)]
    pub id_token: String,
    /// Access-token expiry, epoch milliseconds.
    pub expire_at: i64,
    pub created_at: i64,
    pub mode: Mode,
    /// The `/userinfo` body, built once from the verified ID token (spec 2.6).
    pub profile: Box<RawValue>,
}

/// What `/authorize` remembers for `/oauth/token`.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LoginState {
    pub client_type: String,
    pub redirect: Option<String>,
    pub connection: Option<String>,
    /// The exact `redirect_uri` sent to Auth0, which the code exchange must repeat.
    pub redirect_uri: String,
    pub nonce: String,
    pub created_at: i64,
}

/// A session's storage key: the hex SHA-256 of the credential.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct SessionKey(String);

impl SessionKey {
    pub fn of(credential: &str) -> SessionKey {
        let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, credential.as_bytes());
        let mut hex = String::with_capacity(64);
        for b in d.as_ref() {
            use std::fmt::Write;
            let _ = write!(hex, "{b:02x}");
        }
        SessionKey(hex)
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    fn storage_key(&self) -> String {
        format!("session:{}", self.0)
    }
}

pub const STATE_TTL: Duration = Duration::from_secs(600);

/// The typed session API over a [`SessionStore`].
#[derive(Clone)]
pub struct Sessions {
    store: Arc<dyn SessionStore>,
    ttl: Duration,
}

impl Sessions {
    pub fn new(store: Arc<dyn SessionStore>, session_duration_seconds: u64) -> Self {
        Sessions { store, ttl: Duration::from_secs(session_duration_seconds) }
    }

    pub fn store(&self) -> &Arc<dyn SessionStore> {
        &self.store
    }

    pub fn ttl(&self) -> Duration {
        self.ttl
    }

    pub async fn put_state(&self, state: &str, data: &LoginState) -> Result<()> {
        let bytes = serde_json::to_vec(data).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(self.store.set(&format!("state:{state}"), &bytes, STATE_TTL).await?)
    }

    /// Takes a state once; `None` when unknown, used or expired.
    pub async fn take_state(&self, state: &str, now_ms: i64) -> Result<Option<LoginState>> {
        let Some(bytes) = self.store.take(&format!("state:{state}")).await? else { return Ok(None) };
        let data: LoginState = serde_json::from_slice(&bytes).map_err(|e| Error::Internal(e.to_string()))?;
        if data.created_at + STATE_TTL.as_millis() as i64 <= now_ms {
            return Ok(None);
        }
        Ok(Some(data))
    }

    pub async fn get(&self, key: &SessionKey) -> Result<Option<Session>> {
        let Some(bytes) = self.store.get(&key.storage_key()).await? else { return Ok(None) };
        match serde_json::from_slice(&bytes) {
            Ok(s) => Ok(Some(s)),
            Err(e) => {
                // Written by something else (an older layout): treat as no session.
                tracing::warn!(error = %e, "unreadable session record ignored");
                Ok(None)
            }
        }
    }

    /// Stores a new session for the full session duration.
    pub async fn create(&self, key: &SessionKey, session: &Session, now_ms: i64) -> Result<()> {
        let bytes = serde_json::to_vec(session).map_err(|e| Error::Internal(e.to_string()))?;
        self.store.set(&key.storage_key(), &bytes, self.ttl).await?;
        let expires = now_ms + self.ttl.as_millis() as i64;
        self.store.index_add(&index_member(key, &session.user_id), expires, self.ttl).await?;
        Ok(())
    }

    /// Updates a session keeping its remaining lifetime; false when it is gone.
    pub async fn update(&self, key: &SessionKey, session: &Session) -> Result<bool> {
        let bytes = serde_json::to_vec(session).map_err(|e| Error::Internal(e.to_string()))?;
        Ok(self.store.replace(&key.storage_key(), &bytes).await?)
    }

    pub async fn delete(&self, key: &SessionKey, user_id: &str) -> Result<()> {
        self.store.delete(&key.storage_key()).await?;
        self.store.index_remove(&index_member(key, user_id)).await?;
        Ok(())
    }

    /// Distinct user ids holding a live session.
    pub async fn active_users(&self, now_ms: i64) -> Result<Vec<String>> {
        let members = self.store.index_live(now_ms).await?;
        let mut seen = std::collections::BTreeSet::new();
        for m in members {
            if let Some((_, user)) = m.split_once(' ') {
                seen.insert(user.to_string());
            }
        }
        Ok(seen.into_iter().collect())
    }

    pub async fn try_lock(&self, key: &SessionKey, ttl: Duration) -> Result<Option<String>> {
        Ok(self.store.try_lock(&format!("lock:{}", key.as_str()), ttl).await?)
    }

    pub async fn unlock(&self, key: &SessionKey, token: &str) -> Result<()> {
        Ok(self.store.unlock(&format!("lock:{}", key.as_str()), token).await?)
    }
}

fn index_member(key: &SessionKey, user_id: &str) -> String {
    format!("{} {user_id}", key.as_str())
}

/// In-process single flight: one async mutex per session key, dropped when nobody holds it.
#[derive(Default)]
pub struct KeyedLocks {
    locks: Mutex<HashMap<SessionKey, Arc<tokio::sync::Mutex<()>>>>,
}

pub struct KeyedGuard<'a> {
    owner: &'a KeyedLocks,
    key: SessionKey,
    lock: Option<Arc<tokio::sync::Mutex<()>>>,
    guard: Option<tokio::sync::OwnedMutexGuard<()>>,
}

impl KeyedLocks {
    pub async fn lock(&self, key: &SessionKey) -> KeyedGuard<'_> {
        let lock = {
            let mut map = self.locks.lock().unwrap_or_else(|e| e.into_inner());
            map.entry(key.clone()).or_default().clone()
        };
        let guard = lock.clone().lock_owned().await;
        KeyedGuard { owner: self, key: key.clone(), lock: Some(lock), guard: Some(guard) }
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.locks.lock().unwrap().len()
    }
}

impl Drop for KeyedGuard<'_> {
    fn drop(&mut self) {
        self.guard.take();
        let lock = self.lock.take();
        let mut map = self.owner.locks.lock().unwrap_or_else(|e| e.into_inner());
        // The map's reference plus ours: nobody else waits, so the entry can go.
        if let Some(lock) = lock
            && Arc::strong_count(&lock) == 2
        {
            map.remove(&self.key);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn keyed_locks_serialise_and_clean_up() {
        let locks = Arc::new(KeyedLocks::default());
        let key = SessionKey::of("a");
        let counter = Arc::new(std::sync::atomic::AtomicU32::new(0));
        let mut tasks = Vec::new();
        for _ in 0..8 {
            let (locks, key, counter) = (locks.clone(), key.clone(), counter.clone());
            tasks.push(tokio::spawn(async move {
                let _g = locks.lock(&key).await;
                let before = counter.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                tokio::task::yield_now().await;
                assert_eq!(counter.fetch_sub(1, std::sync::atomic::Ordering::SeqCst), before + 1);
            }));
        }
        for t in tasks {
            t.await.unwrap();
        }
        assert_eq!(locks.len(), 0);
    }

    #[test]
    fn session_key_is_a_digest() {
        assert_eq!(SessionKey::of("abc").as_str(), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
