//! Gatehouse's `auth0-client`: a drop-in replacement for Mia-Platform's service of that name
//! (spec `auth0-client.md`). It owns the service's configuration (`config.json` and the
//! environment), its session stores (Redis in its three modes, or memory), its HTTP routes and
//! a typed client for the Auth0 Authentication and Management APIs. It talks to the identity
//! provider over HTTP only and never links the `idp` crate, so it works in front of real Auth0
//! exactly as in front of Gatehouse's idp.
//!
//! Code map: [`config`] (types, schema, start-up rules, environment), [`session`] (the store
//! port, [`session::redis`], [`session::memory`]), [`auth0`] (Authentication and Management
//! APIs), [`routes`] (one file per route group), [`query`] (user search translation), [`jwks`]
//! (ID-token verification), [`profile`] (the `/userinfo` body), [`user_sync`] (the optional MongoDB
//! copy of each user's profile), [`logging`], [`error`].

pub mod auth0;
pub mod clock;
pub mod config;
pub mod error;
pub mod jwks;
pub mod logging;
pub mod profile;
pub mod query;
pub mod routes;
pub mod session;
pub mod user_sync;
pub mod util;

use crate::clock::Clock;
use crate::config::Config;
use crate::session::{KeyedLocks, SessionStore, Sessions};
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

pub use routes::router;

/// Request line plus headers, at most (larger requests get 431).
pub const MAX_HEADER_BYTES: usize = server::MAX_HEADER_BYTES;
/// How long in-flight requests get to finish at shutdown.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Why the service could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    #[error(transparent)]
    Config(#[from] config::ConfigError),
    #[error("{0}")]
    Setup(String),
    #[error("cannot listen on port {port}: {source}")]
    Listen { port: u16, source: std::io::Error },
}

/// Everything a request needs.
pub struct App {
    pub config: Config,
    pub sessions: Sessions,
    pub http: reqwest::Client,
    pub management: auth0::management::Management,
    pub jwks: jwks::Jwks,
    pub clock: Clock,
    pub refresh_locks: KeyedLocks,
    pub shutting_down: AtomicBool,
    /// The MongoDB user sync (spec 4.6); off unless its four variables are set.
    pub user_sync: user_sync::UserSync,
    /// `/documentation/json`, generated once.
    pub openapi: String,
}

pub type AppState = Arc<App>;

impl App {
    /// Builds the service on a given session store (tests pass their own).
    pub fn with_store(config: Config, store: Arc<dyn SessionStore>, clock: Clock) -> Result<AppState, StartError> {
        let http = auth0::http_client().map_err(StartError::Setup)?;
        Ok(Self::assemble(config, store, clock, http))
    }

    fn assemble(config: Config, store: Arc<dyn SessionStore>, clock: Clock, http: reqwest::Client) -> AppState {
        let management = auth0::management::Management::new(http.clone(), clock.clone(), &config.service);
        let openapi = routes::docs::openapi_json(&config.env.service_prefix, &config.env.service_version);
        Arc::new(App {
            sessions: Sessions::new(store, config.env.session_duration_seconds),
            jwks: jwks::Jwks::new(http.clone()),
            http,
            management,
            clock,
            refresh_locks: KeyedLocks::default(),
            shutting_down: AtomicBool::new(false),
            user_sync: user_sync::UserSync::new(config.env.user_sync.clone()),
            openapi,
            config,
        })
    }

    /// Builds the service with the store the environment asks for: Redis when `REDIS_HOSTS`
    /// is set, memory otherwise.
    pub fn new(config: Config, clock: Clock) -> Result<AppState, StartError> {
        Self::trusting(config, clock, None)
    }

    /// [`App::new`], with outgoing HTTPS also trusting the PEM CA certificates of `extra_ca`.
    pub fn trusting(config: Config, clock: Clock, extra_ca: Option<&[u8]>) -> Result<AppState, StartError> {
        let http = auth0::http_client_trusting(extra_ca).map_err(StartError::Setup)?;
        let store: Arc<dyn SessionStore> = match &config.env.redis {
            Some(r) => Arc::new(
                session::redis::RedisStore::new(r, &config.env.session_scope)
                    .map_err(|e| StartError::Setup(format!("Redis: {e}")))?,
            ),
            None => Arc::new(session::memory::MemoryStore::new(clock.clone())),
        };
        Ok(Self::assemble(config, store, clock, http))
    }
}

/// The crypto provider of every TLS connection (Auth0, Redis): aws-lc-rs, set once.
pub fn install_crypto_provider() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
}

/// Logs what the operator should know at start.
fn announce(config: &Config) {
    for w in &config.warnings {
        tracing::warn!("{w}");
    }
    match &config.env.redis {
        None => tracing::warn!(
            "REDIS_HOSTS is not set: sessions are kept in memory, in this process only, and lost on restart"
        ),
        Some(r) => tracing::info!(
            mode = ?r.mode,
            hosts = r.hosts.len(),
            tls = r.tls,
            "sessions in Redis"
        ),
    }
    if let Some(sync) = &config.env.user_sync {
        tracing::info!(
            database = %sync.database,
            collection = %sync.collection,
            properties = %sync.properties.join(","),
            "MongoDB user sync on (best-effort: a MongoDB that is down or slow never fails a login)"
        );
    }
}

/// Runs the service until SIGTERM or SIGINT: listens on `HTTP_PORT` (all interfaces).
pub async fn run(config: Config) -> Result<(), StartError> {
    install_crypto_provider();
    announce(&config);
    let port = config.env.http_port;
    let listener = tokio::net::TcpListener::bind(SocketAddr::from(([0, 0, 0, 0], port)))
        .await
        .map_err(|source| StartError::Listen { port, source })?;
    let app = App::new(config, Clock::default())?;
    let addr = listener.local_addr().map_err(|source| StartError::Listen { port, source })?;
    let shutdown = shutdown_signal();
    tracing::info!(address = %addr, "auth0-client listening");
    let delay = Duration::from_secs(app.config.env.delay_shutdown_seconds);
    serve(app, listener, shutdown, delay).await;
    Ok(())
}

/// SIGTERM or SIGINT. The handlers are installed now (before the service says it listens), so a
/// signal sent right after start is never lost to the default action.
fn shutdown_signal() -> impl Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate());
        let int = signal(SignalKind::interrupt());
        async move {
            match (term, int) {
                (Ok(mut term), Ok(mut int)) => {
                    tokio::select! {
                        _ = term.recv() => {}
                        _ = int.recv() => {}
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    {
        async {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

/// Serves until `shutdown` resolves, then: stops accepting, reports not ready, lets open
/// connections go on for `delay` (`DELAY_SHUTDOWN_SECONDS`), drains in-flight requests and
/// returns. HTTP/1.1 and HTTP/2 (h2c) through the workspace's one accept loop (crate `server`),
/// bounded by the environment's connection limits; requests with more than
/// [`MAX_HEADER_BYTES`] of headers get 431.
pub async fn serve(
    app: AppState,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()>,
    delay: Duration,
) {
    let router = routes::router(app.clone());
    let open = server::serve(listener, router, app.config.env.connection_limits, None, shutdown).await;
    app.shutting_down.store(true, Ordering::Relaxed);
    tracing::info!(delay_seconds = delay.as_secs(), "shutting down: no new connections; draining after the delay");
    tokio::time::sleep(delay).await;
    if open.drain(DRAIN_TIMEOUT).await {
        tracing::info!("all connections closed");
    } else {
        tracing::warn!("connections still open after the drain timeout");
    }
}

/// The binary's whole life: configuration from the environment (errors name the key and exit
/// non-zero), logging, then [`run`] on a runtime sized to the available cores.
pub fn main_from_env() -> std::process::ExitCode {
    let config = match Config::from_env() {
        Ok(c) => c,
        Err(e) => {
            logging::init(config::LogLevel::Info);
            logging::write(config::LogLevel::Fatal, &e.to_string(), serde_json::Map::new());
            eprintln!("auth0-client: {e}");
            return std::process::ExitCode::from(2);
        }
    };
    logging::init(config.env.log_level);
    let runtime = match tokio::runtime::Builder::new_multi_thread().enable_all().build() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("auth0-client: cannot start the runtime: {e}");
            return std::process::ExitCode::FAILURE;
        }
    };
    let result = runtime.block_on(run(config));
    telemetry::shutdown();
    logging::flush();
    match result {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) => {
            logging::write(config::LogLevel::Fatal, &e.to_string(), serde_json::Map::new());
            eprintln!("auth0-client: {e}");
            std::process::ExitCode::FAILURE
        }
    }
}
