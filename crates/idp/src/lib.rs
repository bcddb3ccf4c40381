//! The identity provider: Auth0's Authentication API (authorize, login page, token, userinfo,
//! logout, revoke, database-connection sign-up and password reset), the Management API,
//! discovery and JWKS, and the operational endpoints.
//!
//! Layers, each using only the ones below it (the README's architecture section has the map):
//! `http` (router, cookies, parameters, every wire shape) → `authn` and `management` (thin
//! endpoints named by their URLs) → `flow` (the interactive login, no HTTP types) → `grants`
//! (one file per grant, and what a grant issues) → `accounts` (passwords, sign-up, reset) and
//! `actions` (repository, runner, the post-login trigger) → `tokens` (claims, JWT, keys) →
//! `store`. Errors are [`Error`], in the domain's words; each API maps them at its edge.
//!
//! This crate owns protocol and domain rules. It must not know which database it runs on:
//! everything persistent goes through `store::Store`.

mod accounts;
mod actions;
pub mod admins;
mod authn;
mod clock;
mod config;
mod console;
pub mod datadir;
mod error;
mod flow;
mod grants;
mod http;
mod logs;
pub mod mail;
mod management;
mod metadata;
pub mod pages;
pub mod provision;
mod rbac;
mod secrets;
mod tls;
mod tokens;
mod urls;
pub mod util;

pub use clock::{Clock, ManualClock, SystemClock};
pub use config::{BruteForce, Config, MailDelivery, ResetMails, StreamSettings};
pub use error::{Error, Result};
pub use http::serve::{GRACE, Limits, Listener, serve};
pub use tls::{LocalCa, TlsFiles};
pub use tokens::jwt;

use std::sync::Arc;
use store::Store;

/// One idp node: its configuration, store, keys and workers. Cheap to share (`Arc`).
pub struct Idp {
    pub config: Config,
    /// Every write goes through `cache`, which drops what the write changed.
    pub store: Arc<dyn Store>,
    /// The same store, with the cached reads of the hot paths ([`store::CachedStore`]).
    cache: Arc<store::CachedStore>,
    pub keys: tokens::keys::KeyRing,
    hasher: accounts::password::Hasher,
    /// The mail queue's worker on this node (the mailer given to [`Idp::new`] takes the mail
    /// while no email provider is enabled).
    mail: mail::queue::Worker,
    rate_limiter: management::RateLimiter,
    /// Encrypts action secrets and signing keys at rest (key file from the configuration).
    secrets: Arc<secrets::SecretBox>,
    /// Runs action code on the blocking pool.
    actions: actions::Runner,
    /// HTTP client and caches for upstream identity providers (Google, OpenID Connect).
    upstreams: flow::federated::Upstreams,
    /// What time it is for every rule that asks (expiries, lifetimes, counters).
    clock: Arc<dyn Clock>,
    /// Tenant log events, written in batches off the request path.
    logs: logs::Recorder,
    /// Pushes the log to the log streams, off the request path.
    log_streams: logs::streams::Delivery,
}

pub type AppState = Arc<Idp>;

/// How long a node may serve a client, API, grant or user that another node has changed since
/// (its own changes apply at once).
const CACHE_TTL: std::time::Duration = std::time::Duration::from_secs(1);

impl Idp {
    pub async fn new(config: Config, store: Arc<dyn Store>, mailer: Arc<dyn mail::Mailer>) -> Result<AppState> {
        Self::with_clock(config, store, mailer, Arc::new(SystemClock)).await
    }

    /// [`new`](Self::new) with a clock of the caller's (tests move time on without waiting).
    pub async fn with_clock(
        config: Config,
        store: Arc<dyn Store>,
        mailer: Arc<dyn mail::Mailer>,
        clock: Arc<dyn Clock>,
    ) -> Result<AppState> {
        let cache = Arc::new(store::CachedStore::new(store, CACHE_TTL));
        let store: Arc<dyn Store> = cache.clone();
        let secrets = Arc::new(secrets::SecretBox::load_or_create(&config.secrets_key_path())?);
        let keys = tokens::keys::KeyRing::load(store.clone(), secrets.clone()).await?;
        let hasher = accounts::password::Hasher::new(config.bcrypt_cost);
        let rate_limiter = management::RateLimiter::new(config.management_rate_limit);
        let actions = actions::Runner::new(config.action_limits);
        let upstreams = flow::federated::Upstreams::new(config.upstream_timeout)?;
        let logs = logs::Recorder::start(store.clone(), config.tenant_logs);
        let extra_roots_pem = match &config.mail.smtp_ca_file {
            Some(path) => Some(
                std::fs::read(path)
                    .map_err(|e| Error::internal(format!("reading the SMTP CA file {}: {e}", path.display())))?,
            ),
            None => None,
        };
        let host = config.public_url.host_str().unwrap_or("localhost").to_owned();
        let log_streams = logs::streams::Delivery::start(store.clone(), secrets.clone(), config.log_streams);
        let mail = mail::queue::Worker::new(
            mailer,
            mail::provider::Local {
                fallback_from: format!("no-reply@{host}"),
                hello_name: host,
                timeout: config.mail.smtp_timeout,
                extra_roots_pem,
                implicit_tls_ports: config.mail.implicit_tls_ports.clone(),
            },
        );
        let idp = Arc::new(Idp {
            config,
            store,
            cache,
            keys,
            hasher,
            mail,
            rate_limiter,
            secrets,
            actions,
            upstreams,
            clock,
            logs,
            log_streams,
        });
        mail::queue::Worker::start(&idp);
        Ok(idp)
    }

    /// Queues `message` (of `kind`, a template name) for the mail worker; returns its id.
    pub(crate) async fn queue_mail(&self, kind: &str, message: &mail::Message) -> Result<String> {
        mail::queue::enqueue(self, kind, message).await
    }

    /// Sends what is due now and waits until nothing due is left unsent (failures wait for
    /// their retry time and do not count); `false` after `timeout`. For tests and a clean stop.
    pub async fn flush_mail(self: &AppState, timeout: std::time::Duration) -> bool {
        let started = std::time::Instant::now();
        loop {
            mail::queue::round(self).await;
            match self.store.mail().pending_mail(self.now()).await {
                Ok(0) => return true,
                Ok(_) => {}
                Err(e) => tracing::warn!(error = %e, "counting queued mail failed"),
            }
            if started.elapsed() >= timeout {
                return false;
            }
            // Another worker holds what is left: look again shortly.
            tokio::time::sleep(std::time::Duration::from_millis(20)).await;
        }
    }

    /// Now, in milliseconds since the epoch, by this node's clock.
    pub fn now(&self) -> store::Millis {
        self.clock.now_ms()
    }

    pub fn router(self: &AppState) -> axum::Router {
        http::router::routes(self.clone())
    }

    /// `/metrics` alone, for a listener of its own (with [`Config::metrics_elsewhere`]).
    pub fn metrics_router(self: &AppState) -> axum::Router {
        http::router::metrics_routes(self.clone())
    }

    /// Every minute: drop expired transactions, codes, sessions and refresh tokens, and pick up
    /// signing keys another node rotated in.
    pub fn spawn_housekeeping(self: &AppState) -> tokio::task::JoinHandle<()> {
        let idp = self.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(60));
            loop {
                tick.tick().await;
                match idp.store.purge_expired(idp.now()).await {
                    Ok(n) if n > 0 => tracing::debug!(removed = n, "purged expired records"),
                    Ok(_) => {}
                    Err(e) => tracing::warn!(error = %e, "purging expired records failed"),
                }
                if let Err(e) = idp.keys.reload().await {
                    tracing::warn!(error = %e, "reloading signing keys failed");
                }
                idp.purge_old_logs().await;
                let keep = i64::from(idp.config.mail.keep_days) * 86_400_000;
                if let Err(e) = idp.store.mail().purge_mail(idp.now() - keep).await {
                    tracing::warn!(error = %e, "purging sent mail failed");
                }
            }
        })
    }

    /// Records a tenant log event, dated now; never waits (see [`logs::Recorder`]).
    pub(crate) fn log(&self, event: logs::Event) {
        let mut event = event.0;
        event.date = self.now();
        self.logs.record(event);
    }

    /// Writes every tenant log event recorded so far; the clean stop calls it after the last
    /// request. `false` when that took longer than `timeout` (what was left is lost).
    pub async fn flush_logs(&self, timeout: std::time::Duration) -> bool {
        self.logs.flush(timeout).await
    }

    /// This node's name as a log stream's delivery lease holder (`lease_owner`).
    pub fn log_stream_node(&self) -> &str {
        self.log_streams.node()
    }

    /// Removes tenant log events older than the retention, a bounded batch at a time, so one
    /// minute's housekeeping never holds the database for long.
    pub async fn purge_old_logs(&self) -> u64 {
        const BATCH: u32 = 5_000;
        const BATCHES_PER_RUN: usize = 20;
        let before = self.now() - i64::from(self.config.log_retention_days) * 86_400_000;
        let mut removed = 0;
        for _ in 0..BATCHES_PER_RUN {
            match self.store.logs().purge_logs(before, BATCH).await {
                Ok(n) => {
                    removed += n;
                    if n < u64::from(BATCH) {
                        break;
                    }
                }
                Err(e) => {
                    tracing::warn!(error = %e, "purging old tenant log events failed");
                    break;
                }
            }
        }
        removed
    }

    /// Resumes the users-import jobs a stopped or crashed node left unfinished, now and every few
    /// seconds; started next to [`spawn_housekeeping`](Self::spawn_housekeeping).
    pub fn resume_jobs(self: &AppState) -> tokio::task::JoinHandle<()> {
        management::jobs::resume_jobs(self)
    }

    /// Makes a new signing key current (the previous one stays in the JWKS).
    pub async fn rotate_signing_key(&self) -> Result<()> {
        self.keys.rotate().await.map(|_| ())
    }

    pub(crate) async fn hash_password(&self, password: &str) -> Result<String> {
        self.hasher.hash(password).await
    }
}
