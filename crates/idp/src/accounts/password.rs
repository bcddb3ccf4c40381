//! Password hashing and the connection password policies.
//!
//! New hashes are bcrypt (`$2b$`, cost 10): the format Auth0 itself stores and exports, so users
//! move between Gatehouse and Auth0 in either direction without a reset. Imported `$2a$`/`$2b$`
//! hashes verify as they are; a hash whose cost differs from the policy is rehashed at the
//! next successful login. Hashing is CPU-bound for ~50 ms, so it runs on the blocking pool
//! behind a semaphore sized to the cores: a burst of logins queues there instead of starving
//! the async workers or spawning hundreds of threads.

use crate::{AppState, Error, Result};
use serde_json::json;
use std::sync::Arc;
use store::{Connection, StoredUser};
use tokio::sync::Semaphore;

pub const DEFAULT_COST: u32 = 10;
/// bcrypt ignores every byte past the 72nd: longer passwords are refused wherever one is set.
pub const MAX_BYTES: usize = 72;

#[derive(Clone)]
pub struct Hasher {
    permits: Arc<Semaphore>,
    cost: u32,
    /// Verified when the user does not exist, so timing does not reveal which emails exist.
    dummy: Arc<str>,
}

impl Hasher {
    pub fn new(cost: u32) -> Self {
        let workers = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(2);
        let dummy = bcrypt::hash("gatehouse-dummy-password", cost).unwrap_or_default();
        Hasher { permits: Arc::new(Semaphore::new(workers)), cost, dummy: dummy.into() }
    }

    async fn run<T: Send + 'static>(&self, f: impl FnOnce() -> T + Send + 'static) -> Result<T> {
        use tracing::Instrument;
        let span = tracing::trace_span!(target: telemetry::TARGET, "password.hash", bcrypt.cost = self.cost);
        async {
            let _permit = self.permits.acquire().await.map_err(Error::internal)?;
            tokio::task::spawn_blocking(f).await.map_err(Error::internal)
        }
        .instrument(span)
        .await
    }

    /// Callers check the policy first, which refuses what bcrypt would truncate; this check
    /// makes a caller that forgot fail instead of storing a hash that accepts any suffix past
    /// byte 72. (bcrypt's `non_truncating_hash` counts a terminating NUL and so refuses a
    /// 72-byte password, which bcrypt uses whole.)
    pub async fn hash(&self, password: &str) -> Result<String> {
        if password.len() > MAX_BYTES {
            return Err(Error::internal(TOO_LONG));
        }
        let (password, cost) = (password.to_owned(), self.cost);
        self.run(move || bcrypt::hash(password, cost)).await?.map_err(Error::internal)
    }

    /// Checks `password` against a stored hash. Every call costs one full hash at the policy
    /// cost, whatever the account: with no user (unknown, or of another connection), no hash,
    /// an unreadable hash or a password bcrypt would truncate, the dummy hash is verified
    /// instead and the answer is `No`, so the time taken does not tell which accounts exist.
    pub async fn verify(&self, password: &str, hash: Option<&str>) -> Result<Verified> {
        // bcrypt reads 72 bytes: a longer password would match a stored 72-byte one with any
        // suffix, so it is simply a wrong password.
        let stored = hash.filter(|_| password.len() <= MAX_BYTES).map(str::to_owned);
        let (password, dummy, cost) = (password.to_owned(), Arc::clone(&self.dummy), self.cost);
        self.run(move || match stored.as_deref().and_then(|h| bcrypt::verify(&password, h).ok()) {
            None => {
                let _ = bcrypt::verify(&password, &dummy);
                Verified::No
            }
            Some(false) => Verified::No,
            Some(true) if stored.as_deref().and_then(bcrypt_cost) != Some(cost) => Verified::YesRehash,
            Some(true) => Verified::Yes,
        })
        .await
    }
}

/// Replaces a user's password: the one path for a completed reset (`/lo/reset`) and the
/// Management API's change, after each checked the connection's policy in its own wire
/// format. As with Auth0, the new password ends everything the old one opened: the user's
/// other reset tickets, refresh tokens and SSO sessions, and brute-force blocks, in the same
/// store transaction as the new hash ([`store::Store::change_password`]).
pub async fn replace(idp: &AppState, stored: &mut StoredUser, password: &str) -> Result<()> {
    stored.password_hash = Some(idp.hasher.hash(password).await?);
    let now = idp.now();
    stored.user.updated_at = now;
    stored.user.extra.insert("last_password_reset".into(), json!(now));
    idp.store.change_password(stored).await?;
    Ok(())
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, but stored under another cost: store a fresh hash.
    YesRehash,
}

fn bcrypt_cost(hash: &str) -> Option<u32> {
    hash.split('$').nth(2)?.parse().ok()
}

pub const TOO_LONG: &str = "Password is too long (at most 72 bytes)";

/// Auth0's named password policies (`options.passwordPolicy` of a database connection).
pub fn check_policy(policy: Option<&str>, password: &str) -> std::result::Result<(), &'static str> {
    let len = password.chars().count();
    if password.len() > MAX_BYTES {
        // Refused rather than silently truncated.
        return Err(TOO_LONG);
    }
    let classes = [
        password.chars().any(|c| c.is_lowercase()),
        password.chars().any(|c| c.is_uppercase()),
        password.chars().any(|c| c.is_ascii_digit()),
        password.chars().any(|c| !c.is_alphanumeric()),
    ];
    let kinds = classes.iter().filter(|b| **b).count();
    match policy.unwrap_or("good") {
        "none" => (len >= 1).then_some(()).ok_or("Password is too weak"),
        "low" => (len >= 6).then_some(()).ok_or("Password is too weak: at least 6 characters"),
        "fair" => (len >= 8 && classes[..3].iter().all(|b| *b))
            .then_some(())
            .ok_or("Password is too weak: at least 8 characters with lower case, upper case and digits"),
        "excellent" => (len >= 10 && kinds >= 3 && !has_triple(password)).then_some(()).ok_or(
            "Password is too weak: at least 10 characters, 3 kinds of characters, no character three times in a row",
        ),
        _ => (len >= 8 && kinds >= 3).then_some(()).ok_or(
            "Password is too weak: at least 8 characters with 3 of lower case, upper case, digits, special characters",
        ),
    }
}

/// [`check_policy`] with the policy a database connection names (`options.passwordPolicy`).
pub fn check_for(connection: &Connection, password: &str) -> std::result::Result<(), &'static str> {
    check_policy(connection.options.get("passwordPolicy").and_then(|p| p.as_str()), password)
}

fn has_triple(s: &str) -> bool {
    let c: Vec<char> = s.chars().collect();
    c.windows(3).any(|w| w[0] == w[1] && w[1] == w[2])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn hashes_verify_and_auth0_bcrypt_imports_work() {
        let h = Hasher::new(4);
        let hash = h.hash("Secret-123").await.unwrap();
        assert!(hash.starts_with("$2b$04$"));
        assert!(h.hash(&"a".repeat(MAX_BYTES + 1)).await.is_err(), "bcrypt would truncate it");
        assert_eq!(h.verify("Secret-123", Some(&hash)).await.unwrap(), Verified::Yes);
        assert_eq!(h.verify("secret-123", Some(&hash)).await.unwrap(), Verified::No);
        // A `$2a$` hash as Auth0 exports them, cost 10: verifies, and asks for a rehash at cost 4.
        let auth0 = bcrypt::hash_with_result("Passw0rd!", 10).unwrap().format_for_version(bcrypt::Version::TwoA);
        assert!(auth0.starts_with("$2a$10$"));
        assert_eq!(h.verify("Passw0rd!", Some(&auth0)).await.unwrap(), Verified::YesRehash);
        assert_eq!(h.verify("anything", None).await.unwrap(), Verified::No);
        assert_eq!(h.verify("x", Some("not a hash")).await.unwrap(), Verified::No);
        // A stored 72-byte password does not match itself with a suffix (bcrypt would say yes).
        let long = "A1-".repeat(24);
        let stored = h.hash(&long).await.unwrap();
        assert_eq!(h.verify(&long, Some(&stored)).await.unwrap(), Verified::Yes);
        assert_eq!(h.verify(&format!("{long}x"), Some(&stored)).await.unwrap(), Verified::No);
    }

    #[test]
    fn policies_follow_auth0() {
        assert!(check_policy(Some("none"), "a").is_ok());
        assert!(check_policy(Some("low"), "abcde").is_err());
        assert!(check_policy(Some("fair"), "abcdefgH1").is_ok());
        assert!(check_policy(Some("fair"), "abcdefgh1").is_err());
        assert!(check_policy(Some("good"), "abcdefg!1").is_ok());
        assert!(check_policy(Some("good"), "abcdefgh1").is_err());
        assert!(check_policy(Some("excellent"), "aaabcdefG1!").is_err());
        assert!(check_policy(Some("excellent"), "abcdefgG1!x").is_ok());
        assert!(check_policy(None, &"a".repeat(73)).is_err());
    }
}
