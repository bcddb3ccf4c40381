//! A typed client for the two Auth0 APIs the service calls: the Authentication API
//! ([`authentication`]: token grants, change-password) and the Management API v2
//! ([`management`]: users, import jobs). It speaks HTTP only, so it works against Auth0 and
//! against Gatehouse's idp alike.

pub mod authentication;
pub mod management;

use crate::error::Error;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use std::time::Duration;

/// Sends a request to Auth0 (or the idp) inside an `upstream` span of the traces, carrying
/// that span's W3C `traceparent` (crate `telemetry`; nothing is added with traces off).
pub(crate) async fn send(req: reqwest::RequestBuilder, what: &'static str) -> reqwest::Result<reqwest::Response> {
    use tracing::Instrument;
    let span = tracing::trace_span!(target: telemetry::TARGET, "upstream", otel.name = what, otel.kind = "client");
    async move { req.headers(telemetry::headers()).send().await }.instrument(span).await
}

/// The outgoing HTTP client: rustls over aws-lc-rs, trusting the system roots plus the PEM
/// bundle in `SSL_CERT_FILE` when it is set (so `gatehouse idp --tls`'s `ca.pem` works).
pub fn http_client() -> Result<reqwest::Client, String> {
    http_client_trusting(None)
}

/// [`http_client`], also trusting the PEM certificates of `extra_ca` (`gatehouse up --tls`
/// hands its local CA over this way rather than through the process environment).
pub fn http_client_trusting(extra_ca: Option<&[u8]>) -> Result<reqwest::Client, String> {
    let mut b = reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(5))
        .timeout(Duration::from_secs(30))
        .redirect(reqwest::redirect::Policy::none())
        // Below the idle bound of Gatehouse's own servers (20 s for a kept-alive connection's
        // next request head), so a pooled connection is dropped here before the idp closes it
        // under a request.
        .pool_idle_timeout(Duration::from_secs(15))
        .user_agent(concat!("gatehouse-auth0-client/", env!("CARGO_PKG_VERSION")));
    if let Some(path) = std::env::var_os("SSL_CERT_FILE").filter(|p| !p.is_empty()) {
        let pem = std::fs::read(&path).map_err(|e| format!("SSL_CERT_FILE {}: {e}", path.to_string_lossy()))?;
        let certs = reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| format!("SSL_CERT_FILE {}: {e}", path.to_string_lossy()))?;
        b = b.tls_certs_merge(certs);
    }
    if let Some(pem) = extra_ca {
        let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| format!("the extra CA: {e}"))?;
        b = b.tls_certs_merge(certs);
    }
    b.build().map_err(|e| format!("building the HTTP client: {e}"))
}

/// A transport error in a few words (no URL with secrets, no nested chain noise).
pub fn describe(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "connection failed"
    } else if e.is_body() || e.is_decode() {
        "unreadable answer"
    } else {
        "request failed"
    };
    let mut source = std::error::Error::source(e);
    let mut root = String::new();
    while let Some(s) = source {
        root = s.to_string();
        source = s.source();
    }
    if root.is_empty() { kind.to_string() } else { format!("{kind}: {root}") }
}

pub fn unreachable(what: &str, url: &str, e: &reqwest::Error) -> Error {
    let origin = url::Url::parse(url).map(|u| u.origin().ascii_serialization()).unwrap_or_default();
    Error::Upstream(format!("{what} at {origin} is unreachable ({})", describe(e)))
}

/// An Auth0 answer kept as it came, for relaying.
#[derive(Debug, Clone)]
pub struct Upstream {
    pub status: StatusCode,
    pub content_type: Option<HeaderValue>,
    pub body: Bytes,
}

impl Upstream {
    pub async fn read(res: reqwest::Response, what: &str) -> Result<Upstream, Error> {
        let status = StatusCode::from_u16(res.status().as_u16()).unwrap_or(StatusCode::BAD_GATEWAY);
        let content_type =
            res.headers().get(reqwest::header::CONTENT_TYPE).and_then(|v| HeaderValue::from_bytes(v.as_bytes()).ok());
        let body = res.bytes().await.map_err(|e| Error::Upstream(format!("{what}: {}", describe(&e))))?;
        Ok(Upstream { status, content_type, body })
    }

    pub fn is_success(&self) -> bool {
        self.status.is_success()
    }

    /// Passes the answer through unchanged.
    pub fn relay(self) -> Error {
        Error::Relay { status: self.status, content_type: self.content_type, body: self.body }
    }
}
