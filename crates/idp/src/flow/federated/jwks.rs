//! The upstream providers' signing keys, cached per JWKS URI. A key set is used for an hour at
//! most (less when the provider's `Cache-Control: max-age` says so), so a key the provider
//! withdrew stops being accepted. It is fetched again early when a token names a key the set
//! lacks or its signature does not verify (the provider rotated, possibly to a token without
//! `kid`): at once after a scheduled fetch, then at most once per [`REFETCH_INTERVAL`], so
//! made-up key ids cannot make the idp fetch at every login. One fetch per URI runs at a time,
//! and logins at other providers never wait for it.

use super::id_token::{self, Expect, Jwks, Parts, Refusal};
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

/// How long a key set is used when the provider does not say.
pub const DEFAULT_TTL: Duration = Duration::from_secs(3600);
/// The shortest time between two early fetches of one URI; also the shortest lifetime a
/// `max-age` can give a key set.
pub const REFETCH_INTERVAL: Duration = Duration::from_secs(30);

/// Where the cache reads the time (a test moves it by hand).
pub type Clock = Arc<dyn Fn() -> Instant + Send + Sync>;

/// A JWKS document as fetched, and the `max-age` its response allowed (`Some(0)` for
/// `no-cache`/`no-store`).
pub struct Fetched {
    pub doc: Value,
    pub max_age: Option<Duration>,
}

/// How long a key set fetched with this `max-age` is used.
pub fn ttl(max_age: Option<Duration>) -> Duration {
    max_age.map_or(DEFAULT_TTL, |a| a.clamp(REFETCH_INTERVAL, DEFAULT_TTL))
}

/// The `max-age` of a `Cache-Control` header value.
pub fn max_age(cache_control: &str) -> Option<Duration> {
    let mut age = None;
    for directive in cache_control.split(',').map(str::trim) {
        let lower = directive.to_ascii_lowercase();
        if lower == "no-store" || lower == "no-cache" {
            return Some(Duration::ZERO);
        }
        if let Some(secs) = lower.strip_prefix("max-age=") {
            age = secs.trim_matches('"').parse::<u64>().ok().map(Duration::from_secs);
        }
    }
    age
}

struct KeySet {
    jwks: Jwks,
    /// Counts fetches of this URI: tells a waiter whether someone fetched while it waited.
    generation: u64,
    fetched_at: Instant,
    ttl: Duration,
    /// Fetched early, because a token did not verify with the set before it.
    early: bool,
}

impl KeySet {
    fn fresh(&self, now: Instant) -> bool {
        now.saturating_duration_since(self.fetched_at) < self.ttl
    }

    fn may_refetch(&self, now: Instant) -> bool {
        !self.early || now.saturating_duration_since(self.fetched_at) >= REFETCH_INTERVAL
    }

    fn check(&self, parts: &Parts<'_>, expect: &Expect<'_>) -> Result<Map<String, Value>, Refusal> {
        let key = self.jwks.key(parts.kid.as_deref()).ok_or(Refusal::UnknownKey)?;
        id_token::verify(parts, key, expect)
    }
}

pub struct JwksCache {
    clock: Clock,
    sets: RwLock<HashMap<String, Arc<KeySet>>>,
    /// One lock per URI, held while that URI is fetched.
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
}

impl JwksCache {
    pub fn new(clock: Clock) -> Self {
        JwksCache { clock, sets: RwLock::default(), locks: Mutex::default() }
    }

    fn current(&self, uri: &str) -> Option<Arc<KeySet>> {
        self.sets.read().unwrap_or_else(|e| e.into_inner()).get(uri).cloned()
    }

    fn lock_for(&self, uri: &str) -> Arc<tokio::sync::Mutex<()>> {
        self.locks.lock().unwrap_or_else(|e| e.into_inner()).entry(uri.to_owned()).or_default().clone()
    }

    /// Checks a token with the keys published at `uri`, reading them with `fetch` when the
    /// cached set is missing or expired, or (rate-limited) when it cannot verify the token.
    /// The outer error is the fetch's; the inner one why the token was refused.
    pub async fn verify<F, Fut, E>(
        &self,
        uri: &str,
        parts: &Parts<'_>,
        expect: &Expect<'_>,
        fetch: F,
    ) -> Result<Result<Map<String, Value>, Refusal>, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched, E>>,
    {
        let now = (self.clock)();
        let (set, just_fetched) = match self.current(uri).filter(|s| s.fresh(now)) {
            Some(set) => (set, false),
            None => (self.refresh(uri, None, &fetch).await?, true),
        };
        match set.check(parts, expect) {
            Err(Refusal::UnknownKey | Refusal::Signature) if !just_fetched && set.may_refetch(now) => {
                let newer = self.refresh(uri, Some(set.generation), &fetch).await?;
                Ok(newer.check(parts, expect))
            }
            result => Ok(result),
        }
    }

    /// A set newer than generation `seen` (`None`: any fresh set), fetched unless another
    /// login fetched one while this one waited for the URI's lock.
    async fn refresh<F, Fut, E>(&self, uri: &str, seen: Option<u64>, fetch: &F) -> Result<Arc<KeySet>, E>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Fetched, E>>,
    {
        let lock = self.lock_for(uri);
        let _one = lock.lock().await;
        let previous = self.current(uri);
        if let Some(set) = &previous {
            let newer = match seen {
                None => set.fresh((self.clock)()),
                Some(generation) => set.generation > generation,
            };
            if newer {
                return Ok(set.clone());
            }
        }
        let fetched = fetch().await?;
        let set = Arc::new(KeySet {
            jwks: Jwks::parse(&fetched.doc),
            generation: previous.map_or(0, |p| p.generation + 1),
            fetched_at: (self.clock)(),
            ttl: ttl(fetched.max_age),
            early: seen.is_some(),
        });
        self.sets.write().unwrap_or_else(|e| e.into_inner()).insert(uri.to_owned(), set.clone());
        Ok(set)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::util::b64url;
    use aws_lc_rs::rsa::KeySize;
    use aws_lc_rs::signature::{KeyPair, RSA_PKCS1_SHA256, RsaKeyPair};
    use serde_json::json;
    use std::pin::pin;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::Poll;

    fn keys() -> &'static [RsaKeyPair; 2] {
        static KEYS: std::sync::OnceLock<[RsaKeyPair; 2]> = std::sync::OnceLock::new();
        KEYS.get_or_init(|| {
            [RsaKeyPair::generate(KeySize::Rsa2048).unwrap(), RsaKeyPair::generate(KeySize::Rsa2048).unwrap()]
        })
    }

    /// A JWKS publishing key `i` of [`keys`] for each `(kid, i)`; `kid: None` publishes it
    /// without one.
    fn jwks(published: &[(Option<&str>, usize)]) -> Value {
        let keys: Vec<Value> = published
            .iter()
            .map(|(kid, i)| {
                let public = keys()[*i].public_key();
                let mut k = json!({"kty": "RSA", "use": "sig", "alg": "RS256",
                    "n": b64url(public.modulus().big_endian_without_leading_zero()),
                    "e": b64url(public.exponent().big_endian_without_leading_zero())});
                if let Some(kid) = kid {
                    k["kid"] = json!(kid);
                }
                k
            })
            .collect();
        json!({ "keys": keys })
    }

    /// A token signed with key `i`, naming `kid` in its header when given.
    fn token(kid: Option<&str>, i: usize) -> String {
        let header = match kid {
            Some(kid) => json!({"alg": "RS256", "kid": kid}),
            None => json!({"alg": "RS256"}),
        };
        let claims = json!({"iss": "https://up/", "aud": "cid", "sub": "1", "nonce": "n", "exp": 2_000});
        let mut t = format!(
            "{}.{}",
            b64url(&serde_json::to_vec(&header).unwrap()),
            b64url(&serde_json::to_vec(&claims).unwrap())
        );
        let mut sig = vec![0u8; keys()[i].public_modulus_len()];
        keys()[i].sign(&RSA_PKCS1_SHA256, &aws_lc_rs::rand::SystemRandom::new(), t.as_bytes(), &mut sig).unwrap();
        t.push('.');
        t.push_str(&b64url(&sig));
        t
    }

    /// A cache on a clock the test moves, and a provider whose JWKS the test changes.
    struct Rig {
        cache: JwksCache,
        now: Arc<Mutex<Instant>>,
        published: Mutex<(Value, Option<Duration>)>,
        fetches: AtomicUsize,
    }

    impl Rig {
        fn new(doc: Value) -> Rig {
            let now = Arc::new(Mutex::new(Instant::now()));
            let clock = now.clone();
            Rig {
                cache: JwksCache::new(Arc::new(move || *clock.lock().unwrap())),
                now,
                published: Mutex::new((doc, None)),
                fetches: AtomicUsize::new(0),
            }
        }

        fn advance(&self, secs: u64) {
            *self.now.lock().unwrap() += Duration::from_secs(secs);
        }

        fn publish(&self, doc: Value, max_age: Option<Duration>) {
            *self.published.lock().unwrap() = (doc, max_age);
        }

        fn fetches(&self) -> usize {
            self.fetches.load(Ordering::SeqCst)
        }

        async fn check(&self, uri: &str, token: &str) -> Result<(), Refusal> {
            let parts = id_token::split(token).unwrap();
            let issuers = ["https://up/".to_string()];
            let expect = Expect { issuers: &issuers, client_id: "cid", nonce: "n", now_secs: 1_000 };
            let fetch = || async {
                self.fetches.fetch_add(1, Ordering::SeqCst);
                let (doc, max_age) = self.published.lock().unwrap().clone();
                Ok::<_, ()>(Fetched { doc, max_age })
            };
            self.cache.verify(uri, &parts, &expect, fetch).await.unwrap().map(drop)
        }
    }

    #[tokio::test]
    async fn keys_are_used_for_an_hour_then_a_withdrawn_key_is_refused() {
        let rig = Rig::new(jwks(&[(Some("k1"), 0), (Some("k2"), 1)]));
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Ok(()));
        rig.advance(3599);
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Ok(()));
        assert_eq!(rig.fetches(), 1, "served from the cache");
        // The provider withdraws k1; within the hour the cache still has it, after it not.
        rig.publish(jwks(&[(Some("k2"), 1)]), None);
        rig.advance(1);
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Err(Refusal::UnknownKey));
        assert_eq!(rig.fetches(), 2);
        assert_eq!(rig.check("u", &token(Some("k2"), 1)).await, Ok(()));
        assert_eq!(rig.fetches(), 2);
    }

    #[tokio::test]
    async fn max_age_sets_the_lifetime_within_bounds() {
        assert_eq!(max_age("public, max-age=120, must-revalidate"), Some(Duration::from_secs(120)));
        assert_eq!(max_age("no-store"), Some(Duration::ZERO));
        assert_eq!(max_age("public"), None);
        assert_eq!(ttl(None), DEFAULT_TTL);
        assert_eq!(ttl(Some(Duration::ZERO)), REFETCH_INTERVAL);
        assert_eq!(ttl(Some(Duration::from_secs(86_400))), DEFAULT_TTL);

        let rig = Rig::new(jwks(&[(Some("k1"), 0)]));
        rig.publish(jwks(&[(Some("k1"), 0)]), Some(Duration::from_secs(120)));
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Ok(()));
        rig.advance(119);
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Ok(()));
        assert_eq!(rig.fetches(), 1);
        rig.advance(1);
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Ok(()));
        assert_eq!(rig.fetches(), 2, "expired after max-age");
        rig.publish(jwks(&[(Some("k1"), 0)]), Some(Duration::ZERO));
        rig.advance(120);
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Ok(()));
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Ok(()));
        assert_eq!(rig.fetches(), 3, "no-store still keeps the set for the refetch interval");
    }

    #[tokio::test]
    async fn an_unknown_kid_refetches_at_most_once_per_interval() {
        let rig = Rig::new(jwks(&[(Some("k1"), 0)]));
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Ok(()));
        // A rotation is picked up at once, however recent the scheduled fetch.
        rig.publish(jwks(&[(Some("k1"), 0), (Some("k2"), 1)]), None);
        rig.advance(10);
        assert_eq!(rig.check("u", &token(Some("k2"), 1)).await, Ok(()));
        assert_eq!(rig.fetches(), 2);
        // After that early fetch, the next one waits for the interval.
        rig.publish(jwks(&[(Some("k1"), 0), (Some("k2"), 1), (Some("k3"), 0)]), None);
        assert_eq!(rig.check("u", &token(Some("k3"), 0)).await, Err(Refusal::UnknownKey));
        rig.advance(29);
        assert_eq!(rig.check("u", &token(Some("nope"), 1)).await, Err(Refusal::UnknownKey));
        assert_eq!(rig.fetches(), 2);
        rig.advance(1);
        assert_eq!(rig.check("u", &token(Some("k3"), 0)).await, Ok(()));
        assert_eq!(rig.fetches(), 3);
        // Made-up kids cost one fetch per interval, not one per login.
        for _ in 0..5 {
            assert_eq!(rig.check("u", &token(Some("nope"), 1)).await, Err(Refusal::UnknownKey));
        }
        assert_eq!(rig.fetches(), 3);
        rig.advance(30);
        assert_eq!(rig.check("u", &token(Some("nope"), 1)).await, Err(Refusal::UnknownKey));
        assert_eq!(rig.fetches(), 4);
    }

    #[tokio::test]
    async fn a_token_without_kid_after_a_rotation_gets_the_new_key() {
        let rig = Rig::new(jwks(&[(None, 0)]));
        assert_eq!(rig.check("u", &token(None, 0)).await, Ok(()));
        rig.publish(jwks(&[(None, 1)]), None);
        rig.advance(5);
        // The only cached key does not verify it: the set is fetched again, once.
        assert_eq!(rig.check("u", &token(None, 1)).await, Ok(()));
        assert_eq!(rig.fetches(), 2);
        assert_eq!(rig.check("u", &token(None, 0)).await, Err(Refusal::Signature), "the old key is gone");
        assert_eq!(rig.fetches(), 2, "rate-limited");
    }

    #[tokio::test]
    async fn an_expired_set_is_not_used_when_the_provider_is_unreachable() {
        let rig = Rig::new(jwks(&[(Some("k1"), 0)]));
        assert_eq!(rig.check("u", &token(Some("k1"), 0)).await, Ok(()));
        rig.advance(3600);
        let t = token(Some("k1"), 0);
        let parts = id_token::split(&t).unwrap();
        let issuers = ["https://up/".to_string()];
        let expect = Expect { issuers: &issuers, client_id: "cid", nonce: "n", now_secs: 1_000 };
        let down = || async { Err::<Fetched, _>("unreachable") };
        assert_eq!(rig.cache.verify("u", &parts, &expect, down).await.map(|r| r.is_ok()), Err("unreachable"));
    }

    #[tokio::test]
    async fn a_slow_provider_holds_up_only_its_own_uri() {
        let rig = Rig::new(jwks(&[(Some("k1"), 0)]));
        let t = token(Some("k1"), 0);
        let parts = id_token::split(&t).unwrap();
        let issuers = ["https://up/".to_string()];
        let expect = Expect { issuers: &issuers, client_id: "cid", nonce: "n", now_secs: 1_000 };
        let (release, released) = tokio::sync::oneshot::channel::<()>();
        let released = Mutex::new(Some(released));
        let slow_fetch = || {
            let wait = released.lock().unwrap().take();
            async move {
                if let Some(wait) = wait {
                    let _ = wait.await;
                }
                Ok::<_, ()>(Fetched { doc: jwks(&[(Some("k1"), 0)]), max_age: None })
            }
        };
        let mut slow = pin!(rig.cache.verify("https://slow/jwks", &parts, &expect, slow_fetch));
        // Poll once: the slow login now holds its URI's lock, waiting for the provider.
        let first = std::future::poll_fn(|cx| Poll::Ready(slow.as_mut().poll(cx))).await;
        assert!(first.is_pending());
        // Another provider's login does not wait for it (a shared lock would never finish).
        let fast = token(Some("k1"), 0);
        let other = tokio::time::timeout(Duration::from_secs(10), rig.check("https://fast/jwks", &fast));
        assert_eq!(other.await.expect("not blocked by the other URI's fetch"), Ok(()));
        release.send(()).unwrap();
        assert!(slow.await.unwrap().is_ok());
    }
}
