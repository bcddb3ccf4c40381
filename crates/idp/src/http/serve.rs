//! Serving the router over plain HTTP or HTTPS (rustls) through the workspace's one accept loop
//! (crate `server`: bounded header reads, idle connections and connections per address), with
//! graceful shutdown: stop accepting, let requests in flight finish (up to a grace period),
//! then return.

use axum::Router;
use axum::extract::Request;
use axum::http::{HeaderValue, header};
use axum::middleware::Next;
use axum::response::Response;
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
        Listener::Tls { cert_pem, key_pem } => {
            (router.layer(axum::middleware::from_fn(hsts)), Some(server::tls_config(&cert_pem, &key_pem)?))
        }
    };
    let mut grace = GRACE;
    let open = server::serve(listener, router, limits, tls, async { grace = shutdown.await }).await;
    if !open.drain(grace).await {
        tracing::warn!("requests in flight outlived the grace period: stopping without them");
    }
    Ok(())
}

/// HSTS on every answer given over TLS (this layer is added only then, so never over plain
/// HTTP), except to loopback host names: browsers keep the rule per host whatever the port,
/// so one `--tls` run on `localhost` would send every plain-HTTP development server there
/// (`gatehouse up` included) to HTTPS for a year.
async fn hsts(req: Request, next: Next) -> Response {
    let loopback = request_host(&req).is_some_and(is_loopback_host);
    let mut res = next.run(req).await;
    if !loopback {
        res.headers_mut().insert(header::STRICT_TRANSPORT_SECURITY, HeaderValue::from_static(HSTS));
    }
    res
}

const HSTS: &str = "max-age=31536000";

/// The host the client asked for: HTTP/2's `:authority`, else HTTP/1.1's `Host`, without port.
fn request_host(req: &Request) -> Option<&str> {
    let host = req.uri().host().or_else(|| req.headers().get(header::HOST)?.to_str().ok())?;
    Some(match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or(v6),
        None => host.rsplit_once(':').map_or(host, |(h, _)| h),
    })
}

fn is_loopback_host(host: &str) -> bool {
    let host = host.trim_end_matches('.').to_ascii_lowercase();
    host == "localhost"
        || host.ends_with(".localhost")
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_hosts_are_recognised_with_or_without_port() {
        let host = |h: &str| {
            let req = Request::builder().uri("/").header(header::HOST, h).body(axum::body::Body::empty()).unwrap();
            request_host(&req).map(str::to_owned)
        };
        assert_eq!(host("localhost:3000").as_deref(), Some("localhost"));
        assert_eq!(host("[::1]:3000").as_deref(), Some("::1"));
        assert_eq!(host("login.example.com").as_deref(), Some("login.example.com"));
        for h in ["localhost", "LOCALHOST.", "app.localhost", "127.0.0.1", "127.1.2.3", "::1"] {
            assert!(is_loopback_host(h), "{h}");
        }
        for h in ["login.example.com", "localhost.example.com", "10.0.0.1", "::2"] {
            assert!(!is_loopback_host(h), "{h}");
        }
    }
}
