//! Who is asking: the client's address and the request as post-login Actions see it
//! (`event.request`).

use crate::actions::post_login::RequestInfo;
use crate::config::Config;
use axum::http::{HeaderMap, header};
use std::net::SocketAddr;

/// The address a request came from: with `--trust-proxy`, the last `X-Forwarded-For` entry,
/// the one the proxy in front appended; the entries before it are whatever the client sent,
/// and taking one of those would let a client pick a fresh address for each guess.
pub fn ip(trust_proxy: bool, headers: &HeaderMap, peer: Option<SocketAddr>) -> String {
    if trust_proxy
        && let Some(last) = headers
            .get_all("x-forwarded-for")
            .iter()
            .next_back()
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.rsplit(',').next())
            .map(str::trim)
            .filter(|v| !v.is_empty())
    {
        return last.to_string();
    }
    peer.map(|p| p.ip().to_string()).unwrap_or_else(|| "unknown".into())
}

/// The request a login arrived with, as `event.request` shows it (no query or body yet).
pub fn request_info(
    config: &Config,
    headers: &HeaderMap,
    peer: Option<SocketAddr>,
    method: &'static str,
) -> RequestInfo {
    let text = |name: header::HeaderName| headers.get(name).and_then(|v| v.to_str().ok()).map(str::to_owned);
    RequestInfo {
        ip: ip(config.trust_proxy, headers, peer),
        hostname: config.domain(),
        method,
        user_agent: text(header::USER_AGENT),
        language: text(header::ACCEPT_LANGUAGE)
            .and_then(|l| l.split([',', ';']).next().map(|x| x.trim().to_string()))
            .filter(|l| !l.is_empty()),
        query: Default::default(),
        body: Default::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_the_proxys_own_forwarded_entry_counts() {
        let peer: SocketAddr = "10.0.0.1:5000".parse().unwrap();
        let mut headers = HeaderMap::new();
        headers.insert("x-forwarded-for", "6.6.6.6, 203.0.113.9".parse().unwrap());
        assert_eq!(ip(true, &headers, Some(peer)), "203.0.113.9");
        assert_eq!(ip(false, &headers, Some(peer)), "10.0.0.1");
        assert_eq!(ip(true, &HeaderMap::new(), None), "unknown");
    }
}
