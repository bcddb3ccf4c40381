//! Serving the router over plain HTTP or HTTPS (rustls), with graceful shutdown: stop
//! accepting, let requests in flight finish (up to a grace period), then return.

use axum::Router;
use std::future::{Future, IntoFuture};
use std::net::SocketAddr;
use std::time::Duration;

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
/// [`GRACE`]; less when the caller spent part of it on a shutdown step of its own).
pub async fn serve(
    router: Router,
    listener: std::net::TcpListener,
    mode: Listener,
    shutdown: impl Future<Output = Duration> + Send + 'static,
) -> std::io::Result<()> {
    listener.set_nonblocking(true)?;
    let app = router.into_make_service_with_connect_info::<SocketAddr>();
    match mode {
        Listener::Plain => {
            // axum waits for every connection to finish, without limit: a request stuck in
            // flight (a client that never sends its body) would keep the process alive forever.
            // So the grace period starts when `shutdown` resolves, as in TLS mode; when it ends,
            // what is left is dropped with the runtime.
            let listener = tokio::net::TcpListener::from_std(listener)?;
            let (begun, begins) = tokio::sync::oneshot::channel::<Duration>();
            let shutdown = async move {
                let _ = begun.send(shutdown.await);
            };
            let grace_over = async move {
                match begins.await {
                    Ok(grace) => tokio::time::sleep(grace).await,
                    Err(_) => std::future::pending().await,
                }
            };
            tokio::select! {
                served = axum::serve(listener, app).with_graceful_shutdown(shutdown).into_future() => served,
                () = grace_over => {
                    tracing::warn!("requests in flight outlived the grace period: stopping without them");
                    Ok(())
                }
            }
        }
        Listener::Tls { cert_pem, key_pem } => {
            let config = axum_server::tls_rustls::RustlsConfig::from_pem(cert_pem, key_pem).await?;
            let handle = axum_server::Handle::<SocketAddr>::new();
            let signal = handle.clone();
            tokio::spawn(async move {
                signal.graceful_shutdown(Some(shutdown.await));
            });
            axum_server::from_tcp_rustls(listener, config)?.handle(handle).serve(app).await
        }
    }
}
