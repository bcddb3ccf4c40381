//! The verified-token memo: a bearer token is presented again and again for its whole life, so
//! each key set remembers the tokens it verified, and a repeat costs a SHA-256 instead of an RSA
//! verification and two JSON parses.

use aws_lc_rs::digest;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, Mutex};

/// A verified token's claims, shared between the memo and its callers.
pub type Claims = Arc<Map<String, Value>>;

/// SHA-256 of a whole token: the memo's key. Only digests are compared, so how long a lookup
/// takes says nothing about any token's bytes.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Digest([u8; 32]);

/// Digests are uniformly random already: their first eight bytes are the hash.
impl Hash for Digest {
    fn hash<H: Hasher>(&self, state: &mut H) {
        let [a, b, c, d, e, f, g, h, ..] = self.0;
        state.write_u64(u64::from_le_bytes([a, b, c, d, e, f, g, h]));
    }
}

impl Digest {
    pub fn of(token: &str) -> Self {
        let d = digest::digest(&digest::SHA256, token.as_bytes());
        let mut out = [0; 32];
        out.copy_from_slice(d.as_ref());
        Digest(out)
    }
}

/// The tokens one key set verified, at most [`Verified::CAPACITY`] of them: entries go into a
/// young generation and, when it is full, the young one becomes the old one and the old one is
/// dropped, so tokens still in use survive one turn (they are promoted on a hit). Only tokens
/// whose signature checked out get in. The memo lives and dies with its key set: a rotation or
/// revocation builds a new set, so no token outlives the key that signed it.
#[derive(Default)]
pub struct Verified {
    generations: Mutex<Generations>,
}

#[derive(Default)]
struct Generations {
    young: DigestMap,
    old: DigestMap,
}

type DigestMap = HashMap<Digest, Claims, BuildHasherDefault<DigestHasher>>;

/// Passes a [`Digest`]'s word through (SipHash would only hash a random number again).
#[derive(Default)]
pub struct DigestHasher(u64);

impl Hasher for DigestHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write_u64(&mut self, word: u64) {
        self.0 = word;
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = self.0.rotate_left(8) ^ u64::from(b);
        }
    }
}

impl Verified {
    const CAPACITY: usize = 2048;

    pub fn get(&self, digest: &Digest) -> Option<Claims> {
        let mut g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = g.young.get(digest) {
            return Some(c.clone());
        }
        let claims = g.old.remove(digest)?;
        let dropped = g.insert(*digest, claims.clone());
        drop(g);
        drop(dropped);
        Some(claims)
    }

    pub fn insert(&self, digest: Digest, claims: Claims) {
        let dropped = self.generations.lock().unwrap_or_else(|e| e.into_inner()).insert(digest, claims);
        drop(dropped);
    }

    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        let g = self.generations.lock().unwrap_or_else(|e| e.into_inner());
        g.young.len() + g.old.len()
    }
}

impl Generations {
    /// Returns the generation this insert pushed out (usually none), for the caller to free
    /// once the lock is released: a thousand claim maps take a while to free.
    #[must_use]
    fn insert(&mut self, digest: Digest, claims: Claims) -> DigestMap {
        let mut dropped = DigestMap::default();
        if self.young.len() >= Verified::CAPACITY / 2 {
            dropped = std::mem::replace(&mut self.old, std::mem::take(&mut self.young));
        }
        self.young.insert(digest, claims);
        dropped
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn claims(sub: &str) -> Map<String, Value> {
        json!({ "sub": sub, "exp": 4_000_000_000_i64 }).as_object().cloned().expect("object")
    }

    #[test]
    fn the_memo_is_bounded_and_keeps_what_is_used() {
        let memo = Verified::default();
        let digest = |i: usize| Digest::of(&format!("token {i}"));
        let hot = digest(0);
        memo.insert(hot, Arc::new(claims("hot")));
        for i in 1..10 * Verified::CAPACITY {
            memo.insert(digest(i), Arc::new(claims("cold")));
            assert!(memo.len() <= Verified::CAPACITY);
            if i % (Verified::CAPACITY / 4) == 0 {
                assert!(memo.get(&hot).is_some(), "a token in use stays (after {i} others)");
            }
        }
        assert!(memo.get(&digest(1)).is_none(), "an unused one is dropped");
    }
}
