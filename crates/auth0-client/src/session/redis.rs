//! The Redis store: `REDIS_MODE=normal` with one host (a connection manager), normal with
//! several hosts (a Redis Cluster client), or `sentinel` (the master is asked of the sentinels
//! and asked again after a connection failure, so a fail-over is followed). TLS
//! (`REDIS_TLS`, `REDIS_TLS_CACERT`) applies to every connection; `REDIS_USERNAME` and
//! `REDIS_PASSWORD` to normal mode only, as in the original.
//!
//! Connections are made on first use, so the service starts while Redis is down and reports
//! not-ready until it answers. Every operation is bounded in time; a failed one answers at once
//! with a [`StoreError`] (a 503 at the edge) and drops the connection, and the next operation
//! reconnects, so service resumes by itself when Redis is back.

use super::{SessionStore, StoreError, StoreResult};
use crate::config::{RedisMode, RedisSettings};
use async_trait::async_trait;
use redis::aio::{ConnectionLike, ConnectionManager, ConnectionManagerConfig};
use redis::cluster::ClusterClientBuilder;
use redis::cluster_async::ClusterConnection;
use redis::sentinel::{SentinelClient, SentinelClientBuilder, SentinelServerType};
use redis::{
    Client, Cmd, ConnectionAddr, FromRedisValue, RedisError, RedisFuture, Script, TlsCertificates, TlsMode, Value,
};
use std::sync::{Mutex, RwLock};
use std::time::{Duration, Instant};

/// Longest wait for one operation (connecting included).
const OP_TIMEOUT: Duration = Duration::from_secs(2);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
/// After a failed connection attempt, operations fail at once for this long instead of each
/// waiting for its own attempt.
const RETRY_AFTER: Duration = Duration::from_millis(250);

enum Target {
    Single(Client),
    Cluster(redis::cluster::ClusterClient),
    Sentinel(tokio::sync::Mutex<SentinelClient>),
}

#[derive(Clone)]
enum Conn {
    Manager(ConnectionManager),
    Cluster(ClusterConnection),
}

impl ConnectionLike for Conn {
    fn req_packed_command<'a>(&'a mut self, cmd: &'a Cmd) -> RedisFuture<'a, Value> {
        match self {
            Conn::Manager(c) => c.req_packed_command(cmd),
            Conn::Cluster(c) => c.req_packed_command(cmd),
        }
    }

    fn req_packed_commands<'a>(
        &'a mut self,
        pipeline: &'a redis::Pipeline,
        offset: usize,
        count: usize,
    ) -> RedisFuture<'a, Vec<Value>> {
        match self {
            Conn::Manager(c) => c.req_packed_commands(pipeline, offset, count),
            Conn::Cluster(c) => c.req_packed_commands(pipeline, offset, count),
        }
    }

    fn get_db(&self) -> i64 {
        match self {
            Conn::Manager(c) => c.get_db(),
            Conn::Cluster(c) => c.get_db(),
        }
    }
}

pub struct RedisStore {
    prefix: String,
    target: Target,
    conn: RwLock<Option<Conn>>,
    connecting: tokio::sync::Mutex<()>,
    last_failure: Mutex<Option<(Instant, String)>>,
    take: Script,
    unlock: Script,
}

fn store_error(e: impl std::fmt::Display) -> StoreError {
    StoreError(e.to_string())
}

impl RedisStore {
    /// Prepares the clients; nothing is connected yet. `scope` is `SESSION_SCOPE`.
    pub fn new(settings: &RedisSettings, scope: &str) -> Result<RedisStore, StoreError> {
        let certs = match (&settings.tls, &settings.tls_cacert) {
            (true, Some(path)) => {
                let pem =
                    std::fs::read(path).map_err(|e| StoreError(format!("REDIS_TLS_CACERT {}: {e}", path.display())))?;
                Some(TlsCertificates { client_tls: None, root_cert: Some(pem) })
            }
            _ => None,
        };
        let url = |host: &str, port: u16, auth: bool| -> String {
            let scheme = if settings.tls { "rediss" } else { "redis" };
            let host = if host.contains(':') { format!("[{host}]") } else { host.to_string() };
            let mut userinfo = String::new();
            if auth && (settings.username.is_some() || settings.password.is_some()) {
                let enc =
                    |s: &str| percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string();
                userinfo = format!(
                    "{}:{}@",
                    settings.username.as_deref().map(enc).unwrap_or_default(),
                    settings.password.as_deref().map(enc).unwrap_or_default()
                );
            }
            format!("{scheme}://{userinfo}{host}:{port}/")
        };
        let target = match settings.mode {
            RedisMode::Normal if settings.hosts.len() == 1 => {
                let (host, port) = &settings.hosts[0];
                let u = url(host, *port, true);
                let client = match &certs {
                    Some(c) => Client::build_with_tls(u.as_str(), c.clone()),
                    None => Client::open(u.as_str()),
                }
                .map_err(store_error)?;
                Target::Single(client)
            }
            RedisMode::Normal => {
                let nodes: Vec<String> = settings.hosts.iter().map(|(h, p)| url(h, *p, true)).collect();
                let mut b = ClusterClientBuilder::new(nodes)
                    .connection_timeout(CONNECT_TIMEOUT)
                    .response_timeout(OP_TIMEOUT)
                    .retries(1);
                if settings.tls {
                    b = b.tls(TlsMode::Secure);
                }
                if let Some(c) = &certs {
                    b = b.certs(c.clone());
                }
                Target::Cluster(b.build().map_err(store_error)?)
            }
            RedisMode::Sentinel => {
                let addrs = settings.hosts.iter().map(|(h, p)| {
                    if settings.tls {
                        ConnectionAddr::TcpTls { host: h.clone(), port: *p, insecure: false, tls_params: None }
                    } else {
                        ConnectionAddr::Tcp(h.clone(), *p)
                    }
                });
                let master = settings.master_name.clone().unwrap_or_default();
                let mut b =
                    SentinelClientBuilder::new(addrs, master, SentinelServerType::Master).map_err(store_error)?;
                if settings.tls {
                    b = b
                        .set_client_to_redis_tls_mode(TlsMode::Secure)
                        .set_client_to_sentinel_tls_mode(TlsMode::Secure);
                    if let Some(c) = &certs {
                        b = b
                            .set_client_to_redis_certificates(c.clone())
                            .set_client_to_sentinel_certificates(c.clone());
                    }
                }
                Target::Sentinel(tokio::sync::Mutex::new(b.build().map_err(store_error)?))
            }
        };
        let prefix = if scope.is_empty() { "auth0-client:".to_string() } else { format!("auth0-client:{scope}:") };
        Ok(RedisStore {
            prefix,
            target,
            conn: RwLock::new(None),
            connecting: tokio::sync::Mutex::new(()),
            last_failure: Mutex::new(None),
            take: Script::new("local v = redis.call('GET', KEYS[1]) if v then redis.call('DEL', KEYS[1]) end return v"),
            unlock: Script::new(
                "if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) else return 0 end",
            ),
        })
    }

    fn key(&self, k: &str) -> String {
        let mut s = String::with_capacity(self.prefix.len() + k.len());
        s.push_str(&self.prefix);
        s.push_str(k);
        s
    }

    fn current(&self) -> Option<Conn> {
        self.conn.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn recent_failure(&self) -> Option<String> {
        let f = self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        f.as_ref().filter(|(at, _)| at.elapsed() < RETRY_AFTER).map(|(_, why)| why.clone())
    }

    async fn connection(&self) -> StoreResult<Conn> {
        if let Some(c) = self.current() {
            return Ok(c);
        }
        if let Some(why) = self.recent_failure() {
            return Err(StoreError(why));
        }
        let _one_at_a_time = self.connecting.lock().await;
        if let Some(c) = self.current() {
            return Ok(c);
        }
        if let Some(why) = self.recent_failure() {
            return Err(StoreError(why));
        }
        match tokio::time::timeout(OP_TIMEOUT, self.connect())
            .await
            .unwrap_or_else(|_| Err(store_error("connecting timed out")))
        {
            Ok(c) => {
                *self.conn.write().unwrap_or_else(|e| e.into_inner()) = Some(c.clone());
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = None;
                tracing::info!(store = "redis", "connected to Redis");
                Ok(c)
            }
            Err(e) => {
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) = Some((Instant::now(), e.0.clone()));
                Err(e)
            }
        }
    }

    async fn connect(&self) -> StoreResult<Conn> {
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(CONNECT_TIMEOUT))
            .set_response_timeout(Some(OP_TIMEOUT))
            .set_number_of_retries(1);
        match &self.target {
            Target::Single(client) => Ok(Conn::Manager(
                ConnectionManager::new_with_config(client.clone(), config).await.map_err(store_error)?,
            )),
            Target::Cluster(client) => Ok(Conn::Cluster(client.get_async_connection().await.map_err(store_error)?)),
            Target::Sentinel(sentinel) => {
                let master = sentinel.lock().await.async_get_client().await.map_err(store_error)?;
                Ok(Conn::Manager(ConnectionManager::new_with_config(master, config).await.map_err(store_error)?))
            }
        }
    }

    /// Maps a result, dropping the connection after a transport failure or a write refused by a
    /// replica, so the next operation reconnects (and, with sentinels, finds the current master).
    fn check<T>(&self, r: Result<Result<T, RedisError>, tokio::time::error::Elapsed>) -> StoreResult<T> {
        let e = match r {
            Ok(Ok(v)) => return Ok(v),
            Ok(Err(e)) => e,
            Err(_) => {
                self.drop_connection();
                return Err(StoreError("Redis did not answer in time".into()));
            }
        };
        if e.is_io_error()
            || e.is_connection_dropped()
            || e.is_connection_refusal()
            || e.is_timeout()
            || e.is_unrecoverable_error()
            // A master the sentinels demoted to a replica: the current one is elsewhere.
            || e.code() == Some("READONLY")
        {
            self.drop_connection();
        }
        Err(store_error(e))
    }

    fn drop_connection(&self) {
        *self.conn.write().unwrap_or_else(|e| e.into_inner()) = None;
    }

    async fn run<T: FromRedisValue>(&self, cmd: Cmd) -> StoreResult<T> {
        let mut conn = self.connection().await?;
        let r = tokio::time::timeout(OP_TIMEOUT, cmd.query_async::<T>(&mut conn)).await;
        self.check(r)
    }
}

#[async_trait]
impl SessionStore for RedisStore {
    fn kind(&self) -> &'static str {
        "redis"
    }

    async fn ping(&self) -> StoreResult<()> {
        let pong: String = self.run(redis::cmd("PING")).await?;
        if pong != "PONG" {
            return Err(StoreError(format!("unexpected PING answer {pong:?}")));
        }
        Ok(())
    }

    async fn set(&self, key: &str, value: &[u8], ttl: Duration) -> StoreResult<()> {
        let mut c = redis::cmd("SET");
        c.arg(self.key(key)).arg(value).arg("PX").arg(ttl.as_millis() as u64);
        self.run::<()>(c).await
    }

    async fn get(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut c = redis::cmd("GET");
        c.arg(self.key(key));
        self.run(c).await
    }

    async fn take(&self, key: &str) -> StoreResult<Option<Vec<u8>>> {
        let mut conn = self.connection().await?;
        let inv = self.take.key(self.key(key));
        let r = tokio::time::timeout(OP_TIMEOUT, inv.invoke_async(&mut conn)).await;
        self.check(r)
    }

    async fn replace(&self, key: &str, value: &[u8]) -> StoreResult<bool> {
        let mut c = redis::cmd("SET");
        c.arg(self.key(key)).arg(value).arg("XX").arg("KEEPTTL");
        let r: Option<String> = self.run(c).await?;
        Ok(r.is_some())
    }

    async fn delete(&self, key: &str) -> StoreResult<()> {
        let mut c = redis::cmd("DEL");
        c.arg(self.key(key));
        self.run::<()>(c).await
    }

    async fn index_add(&self, member: &str, expires_ms: i64, ttl: Duration) -> StoreResult<()> {
        let key = self.key("active");
        let mut c = redis::cmd("ZADD");
        c.arg(&key).arg(expires_ms).arg(member);
        self.run::<()>(c).await?;
        // Every session lasts as long, so the newest one sets the index's lifetime.
        let mut c = redis::cmd("PEXPIRE");
        c.arg(&key).arg(ttl.as_millis() as u64);
        self.run::<()>(c).await
    }

    async fn index_remove(&self, member: &str) -> StoreResult<()> {
        let mut c = redis::cmd("ZREM");
        c.arg(self.key("active")).arg(member);
        self.run::<()>(c).await
    }

    async fn index_live(&self, now_ms: i64) -> StoreResult<Vec<String>> {
        let key = self.key("active");
        let mut c = redis::cmd("ZREMRANGEBYSCORE");
        c.arg(&key).arg("-inf").arg(now_ms);
        self.run::<()>(c).await?;
        let mut c = redis::cmd("ZRANGEBYSCORE");
        c.arg(&key).arg(format!("({now_ms}")).arg("+inf");
        self.run(c).await
    }

    async fn try_lock(&self, key: &str, ttl: Duration) -> StoreResult<Option<String>> {
        let token = crate::util::random_token(12);
        let mut c = redis::cmd("SET");
        c.arg(self.key(key)).arg(&token).arg("NX").arg("PX").arg(ttl.as_millis() as u64);
        let r: Option<String> = self.run(c).await?;
        Ok(r.map(|_| token))
    }

    async fn unlock(&self, key: &str, token: &str) -> StoreResult<()> {
        let mut conn = self.connection().await?;
        let mut inv = self.unlock.key(self.key(key));
        inv.arg(token);
        let r = tokio::time::timeout(OP_TIMEOUT, inv.invoke_async::<i64>(&mut conn)).await;
        self.check(r).map(|_| ())
    }
}
