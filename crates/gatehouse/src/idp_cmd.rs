//! `gatehouse idp`: flags (each also a `GATEHOUSE_*` variable), store, tenant import,
//! listener, signals. `gatehouse up` (up_cmd.rs) builds and serves the idp through the same
//! functions.

use crate::drain::Front;
use anyhow::{Context, bail};
use clap::Args;
use idp::{Config, Idp, Listener, LocalCa};
use std::future::Future;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use store::SqlStore;
use tenant::Keywords;

#[derive(Args, Debug, Clone)]
pub struct IdpArgs {
    /// Tenant file in auth0-deploy-cli's YAML format.
    #[arg(long, env = "GATEHOUSE_TENANT")]
    pub tenant: Option<PathBuf>,
    /// `.env`-style file with the values for `##KEY##` / `@@KEY@@` (the environment wins).
    #[arg(long, env = "GATEHOUSE_KEYWORDS")]
    pub keywords: Option<PathBuf>,
    /// Users in Auth0's bulk-import JSON format, created when missing.
    #[arg(long, env = "GATEHOUSE_USERS", requires = "users_connection")]
    pub users: Option<PathBuf>,
    /// The database connection the users file goes into.
    #[arg(long, env = "GATEHOUSE_USERS_CONNECTION")]
    pub users_connection: Option<String>,
    /// `sqlite://PATH`, `sqlite::memory:` or `postgres://…` (default: SQLite in the data dir).
    #[arg(long, env = "GATEHOUSE_DATABASE")]
    pub database: Option<String>,
    /// Data directory (SQLite file, generated CA, mail outbox).
    #[arg(long, env = "GATEHOUSE_DATA", default_value = ".gatehouse")]
    pub data: PathBuf,
    #[arg(long, env = "GATEHOUSE_LISTEN", default_value = "127.0.0.1:3000")]
    pub listen: SocketAddr,
    /// Serve HTTPS with a local CA generated into the data dir (`ca.pem`).
    #[arg(long, env = "GATEHOUSE_TLS")]
    pub tls: bool,
    /// PEM certificate chain for HTTPS (with --tls-key).
    #[arg(long, env = "GATEHOUSE_TLS_CERT", requires = "tls_key")]
    pub tls_cert: Option<PathBuf>,
    #[arg(long, env = "GATEHOUSE_TLS_KEY", requires = "tls_cert")]
    pub tls_key: Option<PathBuf>,
    /// The issuer's base URL (default: derived from the listener).
    #[arg(long, env = "GATEHOUSE_PUBLIC_URL")]
    pub public_url: Option<url::Url>,
    /// Trust `X-Forwarded-For` from a proxy in front.
    #[arg(long, env = "GATEHOUSE_TRUST_PROXY")]
    pub trust_proxy: bool,
    /// The 32-byte key that encrypts Action secrets (default `<data>/secrets.key`, created on
    /// first start). Nodes sharing a database must share it.
    #[arg(long, env = "GATEHOUSE_SECRETS_KEY")]
    pub secrets_key: Option<PathBuf>,
    /// Management API requests per second per token (default 100, like Auth0's limits).
    #[arg(long, env = "GATEHOUSE_MANAGEMENT_RATE_LIMIT")]
    pub management_rate_limit: Option<u32>,
    /// Google's OpenID discovery document, where `google-oauth2` connections find their
    /// endpoints (default Google's own; point it at another OpenID provider to test).
    #[arg(long, env = "GATEHOUSE_GOOGLE_DISCOVERY_URL")]
    pub google_discovery_url: Option<url::Url>,
    /// Seconds a request may take (a body that stops arriving, a stuck database) before it is
    /// answered 504 in its API's error shape (default 30).
    #[arg(long, env = "GATEHOUSE_REQUEST_TIMEOUT", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub request_timeout: Option<u64>,
    /// Seconds from accepting a connection to its first complete request head (TLS handshake
    /// included), and for each HTTP/1.1 request head, which is also the longest an HTTP/1.1
    /// connection waits for its next request (default 20).
    #[arg(long, env = "GATEHOUSE_HEADER_TIMEOUT", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub header_timeout: Option<u64>,
    /// Seconds a connection may stay open with no request in flight (default 60).
    #[arg(long, env = "GATEHOUSE_IDLE_TIMEOUT", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=3600))]
    pub idle_timeout: Option<u64>,
    /// Open connections per client address (IPv6: per /64), 0 for no limit (default 256; none
    /// with --trust-proxy, where every connection comes from the proxy).
    #[arg(long, env = "GATEHOUSE_MAX_CONNECTIONS_PER_IP", value_name = "N")]
    pub max_connections_per_ip: Option<usize>,
    /// Serve `/metrics` on this address only (plain HTTP); the main listener then answers 404.
    #[arg(long, env = "GATEHOUSE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<SocketAddr>,
    /// Require `Authorization: Bearer TOKEN` on `/metrics` (prefer the variable: a flag shows
    /// in the process list).
    #[arg(long, env = "GATEHOUSE_METRICS_TOKEN", value_name = "TOKEN", hide_env_values = true)]
    pub metrics_token: Option<String>,
    /// Days tenant log events (`/api/v2/logs`) are kept (default 30).
    #[arg(long, env = "GATEHOUSE_LOG_RETENTION_DAYS", value_name = "DAYS",
          value_parser = clap::value_parser!(u32).range(1..=3650))]
    pub log_retention_days: Option<u32>,
    /// Record no tenant log events (to measure what recording costs; `/api/v2/logs` stays empty).
    #[arg(long, env = "GATEHOUSE_NO_TENANT_LOGS")]
    pub no_tenant_logs: bool,
    /// PEM certificates trusted for the SMTP server (`/api/v2/emails/provider`) besides the
    /// system's, for a relay with a private CA.
    #[arg(long, env = "GATEHOUSE_SMTP_CA_FILE", value_name = "PEM")]
    pub smtp_ca_file: Option<PathBuf>,
    /// Seconds to connect to the SMTP server and for each command (default 30).
    #[arg(long, env = "GATEHOUSE_SMTP_TIMEOUT", value_name = "SECONDS",
          value_parser = clap::value_parser!(u64).range(1..=600))]
    pub smtp_timeout: Option<u64>,
}

/// How the listeners serve: the connection limits, and `/metrics`'s own listener, if any
/// (bound before any import, so a taken port fails at once).
pub struct Transport {
    pub limits: idp::Limits,
    pub metrics: Option<std::net::TcpListener>,
}

pub fn transport(args: &IdpArgs) -> anyhow::Result<Transport> {
    let defaults = idp::Limits::default();
    let secs = |s: Option<u64>, default| s.map_or(default, std::time::Duration::from_secs);
    let limits = idp::Limits {
        header_timeout: secs(args.header_timeout, defaults.header_timeout),
        idle_timeout: secs(args.idle_timeout, defaults.idle_timeout),
        max_per_address: args.max_connections_per_ip.unwrap_or(if args.trust_proxy {
            0
        } else {
            defaults.max_per_address
        }),
        ..defaults
    };
    let metrics = match args.metrics_listen {
        Some(addr) => {
            Some(std::net::TcpListener::bind(addr).with_context(|| format!("listening for /metrics on {addr}"))?)
        }
        None => None,
    };
    Ok(Transport { limits, metrics })
}

pub async fn run(args: IdpArgs) -> anyhow::Result<()> {
    let listener = std::net::TcpListener::bind(args.listen).with_context(|| format!("listening on {}", args.listen))?;
    let local = listener.local_addr()?;
    let transport = transport(&args)?;
    let keywords = keywords(&args)?;
    let (idp, mode) = build(&args, local, keywords).await?;
    println!("idp listening on {local}, issuer {}", idp.config.issuer());
    if idp::admins::any(&idp).await? {
        println!("admin console {}", idp.config.url("console"));
    } else {
        println!(
            "admin console {} (no administrator yet: gatehouse console add-admin EMAIL --data {})",
            idp.config.url("console"),
            args.data.display()
        );
    }
    tracing::info!(listen = %local, issuer = %idp.config.issuer(), "idp listening");
    let router = idp.router();
    let stop_now = second_signal()?;
    serve(&idp, router, listener, mode, transport, None, stop_now).await
}

/// The keyword values of `--keywords`, with the environment winning.
pub fn keywords(args: &IdpArgs) -> anyhow::Result<Keywords> {
    Ok(match &args.keywords {
        Some(path) => Keywords::from_env_file(path)?,
        None => Keywords::new(),
    }
    .with_process_env())
}

/// Everything before serving: data dir, store, the idp for `local` (the bound listener's
/// address), the tenant and users imports with `keywords` (`AUTH0_DOMAIN` added when missing),
/// and how the listener serves (plain or TLS).
pub async fn build(args: &IdpArgs, local: SocketAddr, mut keywords: Keywords) -> anyhow::Result<(Arc<Idp>, Listener)> {
    idp::datadir::prepare(&args.data).with_context(|| format!("creating data dir {}", args.data.display()))?;
    let tls = args.tls || args.tls_cert.is_some();
    let public_url = match &args.public_url {
        Some(u) => u.clone(),
        None => {
            let host = if local.ip().is_loopback() { "localhost".to_string() } else { local.ip().to_string() };
            let scheme = if tls { "https" } else { "http" };
            url::Url::parse(&format!("{scheme}://{host}:{}/", local.port()))?
        }
    };
    let database = match &args.database {
        Some(d) => d.clone(),
        None => format!("sqlite://{}", args.data.join("gatehouse.db").display()),
    };
    let store = Arc::new(
        SqlStore::connect(&database).await.with_context(|| format!("opening database {}", redact(&database)))?,
    );
    let mut config = Config::new(public_url.clone(), args.data.clone());
    config.trust_proxy = args.trust_proxy;
    config.secrets_key = args.secrets_key.clone();
    if let Some(limit) = args.management_rate_limit {
        config.management_rate_limit = limit;
    }
    if let Some(url) = &args.google_discovery_url {
        config.google_discovery_url = url.clone();
    }
    if let Some(secs) = args.request_timeout {
        config.request_timeout = std::time::Duration::from_secs(secs);
    }
    config.metrics_elsewhere = args.metrics_listen.is_some();
    if let Some(days) = args.log_retention_days {
        config.log_retention_days = days;
    }
    config.tenant_logs = !args.no_tenant_logs;
    config.mail.smtp_ca_file = args.smtp_ca_file.clone();
    if let Some(secs) = args.smtp_timeout {
        config.mail.smtp_timeout = std::time::Duration::from_secs(secs);
    }
    if let Some(token) = &args.metrics_token {
        config.require_metrics_token(token);
    }
    let mailer = Arc::new(idp::mail::Outbox::new(args.data.join("outbox")));
    let idp = Idp::new(config, store, mailer).await?;
    idp::provision::ensure_management_api(&idp).await?;
    idp::admins::ensure(&idp).await?;

    if keywords.get("AUTH0_DOMAIN").is_none() {
        keywords.insert("AUTH0_DOMAIN", idp.config.domain());
    }
    if let Some(path) = &args.tenant {
        let file = tenant::load_tenant(path, &keywords)?;
        // The idp provisions its own tenant: every keyword must have a value.
        file.require_keywords(&keywords)?;
        let report = idp::provision::apply_tenant(&idp, &file).await?;
        for (name, id, secret) in report.generated_credentials {
            // Printed once, to the terminal only: the store keeps a digest.
            println!("generated credentials for {name}: client_id={id} client_secret={secret}");
        }
        tracing::info!(tenant = %path.display(), "tenant imported");
    }
    if let Some(path) = &args.users {
        let Some(connection) = &args.users_connection else { bail!("--users needs --users-connection") };
        let import = tenant::load_users(path, &keywords)?;
        let report = idp::provision::import_users(&idp, connection, &import).await?;
        for (index, message) in &report.errors {
            tracing::warn!(row = index, message = %message, "user not imported");
        }
        tracing::info!(
            created = report.created,
            existing = report.existing,
            failed = report.errors.len(),
            "users imported"
        );
    }

    let mode = if let (Some(cert), Some(key)) = (&args.tls_cert, &args.tls_key) {
        Listener::Tls { cert_pem: std::fs::read(cert)?, key_pem: std::fs::read(key)? }
    } else if tls {
        let mut names = vec!["localhost".to_string(), "127.0.0.1".to_string()];
        if let Some(h) = public_url.host_str()
            && !names.iter().any(|n| n == h)
        {
            names.push(h.to_string());
        }
        let ca = LocalCa::ensure(&args.data, &names)?;
        println!("TLS: trust {} (NODE_EXTRA_CA_CERTS / REQUESTS_CA_BUNDLE / SSL_CERT_FILE)", ca.ca_pem_path.display());
        Listener::Tls { cert_pem: ca.cert_pem, key_pem: ca.key_pem }
    } else {
        Listener::Plain
    };
    Ok((idp, mode))
}

/// Serves `router` (the idp's, or one that mounts it) on `listener` with the idp's housekeeping
/// and import jobs alongside, until Ctrl-C or SIGTERM; then drains requests in flight (up to
/// 10 s in all: `front`'s first, if any, with the listener still open; see drain.rs) and stops
/// the workers. `stop_now` (from [`second_signal`]) ends the process at once.
pub async fn serve(
    idp: &Arc<Idp>,
    router: axum::Router,
    listener: std::net::TcpListener,
    mode: Listener,
    transport: Transport,
    front: Option<Front>,
    stop_now: impl Future<Output = ()>,
) -> anyhow::Result<()> {
    let housekeeping = idp.spawn_housekeeping();
    let jobs = idp.resume_jobs();
    let metrics = match transport.metrics {
        Some(listener) => {
            println!("metrics on http://{}/metrics", listener.local_addr()?);
            let router = idp.metrics_router();
            // Stopped with the rest below: a scrape needs no draining.
            Some(tokio::spawn(idp::serve(router, listener, Listener::Plain, transport.limits, std::future::pending())))
        }
        None => None,
    };
    let shutdown = async move {
        shutdown_signal().await;
        let Some(front) = front else { return idp::GRACE };
        let started = std::time::Instant::now();
        if !front.stop(idp::GRACE).await {
            tracing::warn!("auth0-client's requests in flight outlived the grace period");
        }
        idp::GRACE.saturating_sub(started.elapsed())
    };
    tokio::select! {
        served = idp::serve(router, listener, mode, transport.limits, shutdown) => served?,
        () = stop_now => {
            tracing::warn!("second signal: stopping now, without the requests in flight");
            crate::logging::flush();
            // At once: returning would drop the runtime, which waits for blocking tasks.
            std::process::exit(STOPPED_BY_SIGNAL)
        }
    }
    housekeeping.abort();
    jobs.abort();
    if let Some(metrics) = metrics {
        metrics.abort();
    }
    // Every request has been answered: what they recorded goes to the store before the exit.
    if !idp.flush_logs(LOG_FLUSH_TIMEOUT).await {
        tracing::warn!("tenant log events still queued after {LOG_FLUSH_TIMEOUT:?} were not written");
    }
    tracing::info!("stopped");
    Ok(())
}

/// How long the clean stop waits for queued tenant log events to be written.
const LOG_FLUSH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(5);

/// The exit status after a second Ctrl-C (128 + SIGINT, as shells report an interrupt).
pub(crate) const STOPPED_BY_SIGNAL: i32 = 130;

/// Resolves on the second Ctrl-C or SIGTERM. The first one is [`serve`]'s: it stops
/// accepting and lets requests in flight finish for up to 10 s (`idp::GRACE`).
/// Without this, a second Ctrl-C would be swallowed (the runtime's handler replaced the default
/// one that ends the process) and a developer would have to wait the grace period out.
///
/// The handlers are installed here, before the returned future is first polled, so a signal
/// that arrives in between is counted. Two signals arriving before the future runs count as
/// one; the grace period bounds that case.
pub(crate) fn second_signal() -> anyhow::Result<impl Future<Output = ()> + Send + 'static> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let mut interrupt = signal(SignalKind::interrupt()).context("handling Ctrl-C")?;
        let mut terminate = signal(SignalKind::terminate()).context("handling SIGTERM")?;
        Ok(async move {
            for counted in 1..=2 {
                tokio::select! { _ = interrupt.recv() => {}, _ = terminate.recv() => {} }
                if counted == 1 {
                    tracing::info!("stopping: requests in flight get up to 10 s; press Ctrl-C again to stop at once");
                }
            }
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("stopping: requests in flight get up to 10 s; press Ctrl-C again to stop at once");
            let _ = tokio::signal::ctrl_c().await;
        })
    }
}

fn redact(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_string(),
    }
}

/// Ctrl-C or SIGTERM.
async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let term = std::future::pending::<()>();
    tokio::select! { _ = ctrl_c => {}, _ = term => {} }
    tracing::info!("shutting down");
}
