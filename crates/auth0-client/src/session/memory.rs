//! The in-memory store: the embedded default when `REDIS_HOSTS` is unset (one process only;
//! sessions are lost on restart). Expiry follows the injected [`Clock`].

use super::{SessionStore, StoreResult};
use crate::clock::Clock;
use async_trait::async_trait;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::Duration;

struct Entry {
    value: Vec<u8>,
    expires_ms: i64,
}

#[derive(Default)]
struct Maps {
    values: HashMap<String, Entry>,
    index: HashMap<String, i64>,
    writes: u64,
}

pub struct MemoryStore {
    clock: Clock,
    maps: Mutex<Maps>,
}

impl MemoryStore {
    pub fn new(clock: Clock) -> Self {
        MemoryStore { clock, maps: Mutex::new(Maps::default()) }
    }

    fn with<T>(&self, f: impl FnOnce(&mut Maps, i64) -> T) -> T {
        let now = self.clock.now_ms();
        let mut maps = self.maps.lock().unwrap_or_else(|e| e.into_inner());
        f(&mut maps, now)
    }
}

fn ms(d: Duration) -> i64 {
    d.as_millis() as i64
}

#[async_trait]
impl SessionStore for MemoryStore {
    fn kind(&self) -> &'static str {
        "memory"
    }

    async fn ping(&self) -> StoreResult<()> {
        Ok(())
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        self.with(|m, now| {
            m.writes += 1;
            // Sweep now and then so abandoned states and sessions do not pile up.
            if m.writes.is_multiple_of(1024) {
                m.values.retain(|_, e| e.expires_ms > now);
                m.index.retain(|_, exp| *exp > now);
            }
            m.values.insert(key.to_string(), Entry { value: value.to_vec(), expires_ms: now + ms(ttl) });
        });
        Ok(())
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.with(|m, now| m.values.get(key).filter(|e| e.expires_ms > now).map(|e| e.value.clone())))
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        Ok(self.with(|m, now| m.values.remove(key).filter(|e| e.expires_ms > now).map(|e| e.value)))
    }

    async fn replace(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        Ok(self.with(|m, now| match m.values.get_mut(key) {
            Some(e) if e.expires_ms > now => {
                e.value = value.to_vec();
                true
            }
            _ => false,
        }))
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        self.with(|m, _| m.values.remove(key));
        Ok(())
    }

    async fn index_add(&self, member: &str, expires_ms: i64, _ttl: Duration) -> StoreResult<()> {
        self.with(|m, _| m.index.insert(member.to_string(), expires_ms));
        Ok(())
    }

    async fn index_remove(&self, member: &str) -> StoreResult<()> {
        self.with(|m, _| m.index.remove(member));
        Ok(())
    }

    async fn index_live(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        Ok(self.with(|m, _| {
            m.index.retain(|_, exp| *exp > now_ms);
            m.index.keys().cloned().collect()
        }))
    }

    async fn try_lock(&self, key: &str, ttl: Duration) -> StoreResult<Option<String>> {
        Ok(self.with(|m, now| {
            if m.values.get(key).is_some_and(|e| e.expires_ms > now) {
                return None;
            }
            m.values.insert(key.to_string(), Entry { value: b"1".to_vec(), expires_ms: now + ms(ttl) });
            Some("1".to_string())
        }))
    }

    async fn unlock(&self, key: &str, _token: &str) -> StoreResult<()> {
        self.with(|m, _| m.values.remove(key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn expiry_follows_the_clock() {
        let clock = Clock::default();
        let s = MemoryStore::new(clock.clone());
        s.set("k", b"v", Duration::from_secs(10)).await.unwrap();
        assert_eq!(s.get("k").await.unwrap().as_deref(), Some(&b"v"[..]));
        assert!(s.replace("k", b"w").await.unwrap());
        clock.advance(10_001);
        assert_eq!(s.get("k").await.unwrap(), None);
        assert!(!s.replace("k", b"x").await.unwrap());
        s.set("t", b"1", Duration::from_secs(10)).await.unwrap();
        assert!(s.take("t").await.unwrap().is_some());
        assert!(s.take("t").await.unwrap().is_none(), "taken once");
        assert!(s.try_lock("l", Duration::from_secs(5)).await.unwrap().is_some());
        assert!(s.try_lock("l", Duration::from_secs(5)).await.unwrap().is_none());
    }
}
