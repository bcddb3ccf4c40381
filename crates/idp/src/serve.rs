//! Serving the router over plain HTTP or HTTPS (rustls) through the workspace's one accept loop
//! (crate `server`: bounded header reads, idle connections and connections per address), with
//! graceful shutdown: stop accepting, let requests in flight finish (up to a grace period),
//! then return.

use axum::Router;
use std::future::Future;
use std::time::Duration;

pub use server::Limits;

/// How long requests in flight may take to finish once shutdown has begun.
pub const GRACE: Duration = Duration::from_secs(10);

pub enum Listener {
    Plain,
    /// PEM certificate chain and private key.
    Tls {
        cert_pem: Vec<u8>,
        key_pem: Vec<u8>,
    },
}

/// Serves until `shutdown` resolves, to how long requests in flight still get (usually
/// [`GRACE`]; less when the caller spent part of it on a shutdown step of its own). What is
/// still in flight when that time is over is dropped.
pub async fn serve(
    router: Router,
    listener: std::net::TcpListener,
    mode: Listener,
    limits: Limits,
    shutdown: impl Future<Output = Duration>,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let listener = tokio::net::TcpListener::from_std(listener)?;
    let (router, tls) = match mode {
        Listener::Plain => (router, None),
        Listener::Tls { cert_pem, key_pem } => (router, Some(server::tls_config(&cert_pem, &key_pem)?)),
    };
    let mut grace = GRACE;
    let open = server::serve(listener, router, limits, tls, async { grace = shutdown.await }).await;
    if !open.drain(grace).await {
        tracing::warn!("requests in flight outlived the grace period: stopping without them");
    }
    Ok(())
}
