//! The one accept loop of Gatehouse's HTTP services (the idp, auth0-client, `gatehouse up`):
//! HTTP/1.1 and HTTP/2 (h2c, or ALPN over TLS) for an axum [`Router`], with every connection
//! bounded, so that a client cannot hold one open without using it (slowloris):
//!
//! - from accept to its first request's head (TLS handshake and protocol detection included),
//!   a connection gets [`Limits::header_timeout`]; so does every later HTTP/1.1 request head
//!   (hyper's own timer, which also bounds the wait for the next request on a kept-alive
//!   connection);
//! - a connection with no request in flight for [`Limits::idle_timeout`] is closed gracefully
//!   (HTTP/2: GOAWAY);
//! - one client address (IPv6: one /64, what a single host usually gets) holds at most
//!   [`Limits::max_per_address`] connections; more are closed as soon as they are accepted;
//! - request heads over [`Limits::max_header_bytes`] get 431.
//!
//! Handlers see the peer as `ConnectInfo<SocketAddr>`. Shutdown is two calls: [`serve`]
//! returns once its `until` future resolves, having closed the listener; the connections keep
//! being served until [`Open::drain`], which asks each to finish (HTTP/1.1 after its response
//! in flight, HTTP/2 after its open streams) and drops what is left after the grace period.
//!
//! It knows nothing of the services it serves, so auth0-client uses it without linking the idp.

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper::{Request, Response};
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::net::{IpAddr, Ipv6Addr, SocketAddr};
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tower::ServiceExt;

/// Request line plus headers, at most, by default (larger heads get 431).
pub const MAX_HEADER_BYTES: usize = 32 * 1024;

/// What one connection may cost the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// From accept to the first request's head, and for every HTTP/1.1 request head.
    pub header_timeout: Duration,
    /// How long a connection may stay open with no request in flight.
    pub idle_timeout: Duration,
    /// Open connections per client address (IPv6: per /64); 0 for no limit.
    pub max_per_address: usize,
    /// Request line and headers (HTTP/2: the header list), in bytes.
    pub max_header_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            header_timeout: Duration::from_secs(20),
            idle_timeout: Duration::from_secs(60),
            max_per_address: 256,
            max_header_bytes: MAX_HEADER_BYTES,
        }
    }
}

/// A rustls server configuration from a PEM certificate chain and private key, offering HTTP/2
/// and HTTP/1.1 by ALPN, on the workspace's one crypto provider (aws-lc-rs).
pub fn tls_config(cert_pem: &[u8], key_pem: &[u8]) -> std::io::Result<Arc<rustls::ServerConfig>> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let invalid = |what: &str, e: &dyn std::fmt::Display| {
        std::io::Error::new(std::io::ErrorKind::InvalidData, format!("TLS {what}: {e}"))
    };
    let certs = CertificateDer::pem_slice_iter(cert_pem)
        .collect::<Result<Vec<_>, _>>()
        .map_err(|e| invalid("certificate", &e))?;
    if certs.is_empty() {
        return Err(invalid("certificate", &"no certificate in the PEM file"));
    }
    let key = PrivateKeyDer::from_pem_slice(key_pem).map_err(|e| invalid("private key", &e))?;
    let mut config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::aws_lc_rs::default_provider()))
            .with_safe_default_protocol_versions()
            .map_err(|e| invalid("configuration", &e))?
            .with_no_client_auth()
            .with_single_cert(certs, key)
            .map_err(|e| invalid("certificate and key", &e))?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(config))
}

/// The connections still open once [`serve`] has stopped accepting.
pub struct Open {
    tasks: JoinSet<()>,
    stop: watch::Sender<bool>,
}

impl Open {
    /// Asks every connection to finish what is in flight and close, and waits up to `grace`;
    /// connections still open then are dropped. Returns whether they all finished in time.
    pub async fn drain(mut self, grace: Duration) -> bool {
        self.stop.send_replace(true);
        let all = async { while self.tasks.join_next().await.is_some() {} };
        let finished = tokio::time::timeout(grace, all).await.is_ok();
        self.tasks.abort_all();
        finished
    }
}

/// Serves `router` on `listener` (over TLS when `tls` is given) until `until` resolves, then
/// closes the listener and returns the connections still open, for [`Open::drain`].
pub async fn serve(
    listener: TcpListener,
    router: Router,
    limits: Limits,
    tls: Option<Arc<rustls::ServerConfig>>,
    until: impl Future<Output = ()>,
) -> Open {
    let shared = Arc::new(Shared::new(router, limits, tls));
    let stop = watch::Sender::new(false);
    let mut tasks = JoinSet::new();
    tokio::pin!(until);
    loop {
        tokio::select! {
            biased;
            () = &mut until => break,
            // Finished connections are reaped as they go, so the set holds only open ones.
            Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
            accepted = listener.accept() => {
                let (stream, peer) = match accepted {
                    Ok(a) => a,
                    Err(e) => {
                        // Out of file descriptors and the like: pause instead of spinning.
                        tracing::warn!(error = %e, "accept failed");
                        tokio::time::sleep(Duration::from_millis(50)).await;
                        continue;
                    }
                };
                let Some(slot) = shared.addresses.admit(peer.ip()) else {
                    tracing::debug!(peer = %peer, "too many connections from this address: closed");
                    continue; // dropping the stream closes it
                };
                let _ = stream.set_nodelay(true);
                tasks.spawn(connection(shared.clone(), stream, peer, slot, stop.subscribe()));
            }
        }
    }
    drop(listener);
    Open { tasks, stop }
}

struct Shared {
    router: Router,
    limits: Limits,
    tls: Option<tokio_rustls::TlsAcceptor>,
    builder: hyper_util::server::conn::auto::Builder<TokioExecutor>,
    addresses: Arc<Addresses>,
}

impl Shared {
    fn new(router: Router, limits: Limits, tls: Option<Arc<rustls::ServerConfig>>) -> Self {
        let mut builder = hyper_util::server::conn::auto::Builder::new(TokioExecutor::new());
        builder
            .http1()
            .max_buf_size(limits.max_header_bytes.max(8192)) // hyper's minimum
            .max_headers(100)
            .timer(TokioTimer::new())
            .header_read_timeout(limits.header_timeout);
        builder.http2().max_header_list_size(limits.max_header_bytes as u32).timer(TokioTimer::new());
        Shared {
            router,
            limits,
            tls: tls.map(tokio_rustls::TlsAcceptor::from),
            builder,
            addresses: Arc::new(Addresses { max: limits.max_per_address, open: Mutex::default() }),
        }
    }
}

async fn connection(
    shared: Arc<Shared>,
    stream: TcpStream,
    peer: SocketAddr,
    _slot: Slot,
    mut stop: watch::Receiver<bool>,
) {
    // hyper's header timer starts only once it reads HTTP/1.1; the handshake and the sniffing
    // of the protocol before it have no timer of their own, so this deadline covers them.
    let first = Instant::now() + shared.limits.header_timeout;
    let Some(acceptor) = &shared.tls else {
        return drive(&shared, TokioIo::new(stream), peer, first, stop).await;
    };
    let handshake = tokio::select! {
        handshake = tokio::time::timeout_at(first, acceptor.accept(stream)) => handshake,
        _ = stop.wait_for(|stop| *stop) => return, // no request yet: nothing to let finish
    };
    match handshake {
        Ok(Ok(tls)) => drive(&shared, TokioIo::new(tls), peer, first, stop).await,
        Ok(Err(e)) => tracing::debug!(peer = %peer, error = %e, "TLS handshake failed"),
        Err(_) => tracing::debug!(peer = %peer, "TLS handshake timed out"),
    }
}

/// Serves one connection until it ends, the server stops, or the watchdog finds it unused.
async fn drive<I>(shared: &Shared, io: I, peer: SocketAddr, first: Instant, mut stop: watch::Receiver<bool>)
where
    I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
{
    let load = Arc::new(Load::default());
    let service = Tracked { router: shared.router.clone(), peer, load: load.clone() };
    let conn = shared.builder.serve_connection_with_upgrades(io, service);
    tokio::pin!(conn);
    let watchdog = watchdog(load.clone(), first, shared.limits.idle_timeout);
    tokio::pin!(watchdog);
    let mut stopping = false;
    // Set when the connection was asked to close for being idle: how long it gets to do so.
    let mut closing: Option<Instant> = None;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            _ = stop.wait_for(|stop| *stop), if !stopping => {
                if !load.served() {
                    return; // never had a request (half a head, or nothing): nothing to finish
                }
                stopping = true;
                conn.as_mut().graceful_shutdown();
            }
            expired = &mut watchdog, if !stopping && closing.is_none() => match expired {
                Expired::BeforeFirstRequest => {
                    tracing::debug!(peer = %peer, "no complete request head in time: closed");
                    return; // nothing in flight to finish
                }
                Expired::Idle => {
                    closing = Some(Instant::now() + shared.limits.header_timeout);
                    conn.as_mut().graceful_shutdown();
                }
            },
            () = sleep_until_some(closing) => return,
        }
    }
}

async fn sleep_until_some(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}

/// Requests of one connection: how many are in flight, whether one ever arrived, and when the
/// last one ended. Plain atomics that a request touches twice and nobody is woken by: the
/// watchdog reads them when its own timer fires (a channel that woke it on every request cost
/// the fast endpoints about 10% of their rate).
#[derive(Debug, Default)]
struct Load {
    in_flight: AtomicUsize,
    served: AtomicBool,
    /// Milliseconds since [`epoch`] at which the connection last went idle.
    idle_since_ms: AtomicU64,
}

impl Load {
    fn served(&self) -> bool {
        self.served.load(Ordering::Acquire)
    }
}

/// The process-wide origin of `Load::idle_since_ms`.
fn epoch() -> Instant {
    static EPOCH: std::sync::OnceLock<Instant> = std::sync::OnceLock::new();
    *EPOCH.get_or_init(Instant::now)
}

fn now_ms() -> u64 {
    Instant::now().saturating_duration_since(epoch()).as_millis() as u64
}

enum Expired {
    BeforeFirstRequest,
    Idle,
}

/// Resolves when the connection has had no request in flight for too long: until `first` for
/// its first request, for `idle` after that. It sleeps until the earliest moment that could be
/// true and then looks; a request in flight or a later idle start puts the next look further on.
async fn watchdog(load: Arc<Load>, first: Instant, idle: Duration) -> Expired {
    loop {
        let now = Instant::now();
        let deadline = if load.in_flight.load(Ordering::Acquire) > 0 {
            now + idle
        } else if !load.served() {
            if first <= now {
                return Expired::BeforeFirstRequest;
            }
            // A first request may come and go before `first`: look again within `idle`.
            first.min(now + idle)
        } else {
            let idle_since = epoch() + Duration::from_millis(load.idle_since_ms.load(Ordering::Acquire));
            // Read after the idle start: a request that began since is not idle time (and
            // the graceful close lets one that begins after this finish).
            if idle_since + idle <= now && load.in_flight.load(Ordering::Acquire) == 0 {
                return Expired::Idle;
            }
            (idle_since + idle).max(now + Duration::from_millis(1))
        };
        tokio::time::sleep_until(deadline).await;
    }
}

/// The router for one connection: hands it the peer address and counts requests in flight.
#[derive(Clone)]
struct Tracked {
    router: Router,
    peer: SocketAddr,
    load: Arc<Load>,
}

impl hyper::service::Service<Request<Incoming>> for Tracked {
    type Response = Response<Body>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Response<Body>, Infallible>> + Send>>;

    fn call(&self, mut req: Request<Incoming>) -> Self::Future {
        req.extensions_mut().insert(ConnectInfo(self.peer));
        let busy = Busy::begin(self.load.clone());
        let response = self.router.clone().oneshot(req);
        Box::pin(async move {
            let response = response.await;
            drop(busy);
            response
        })
    }
}

/// One request in flight; dropped when it is answered or abandoned.
struct Busy(Arc<Load>);

impl Busy {
    fn begin(load: Arc<Load>) -> Self {
        load.in_flight.fetch_add(1, Ordering::AcqRel);
        load.served.store(true, Ordering::Release);
        Busy(load)
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        // The idle start first, so a watchdog that sees no request in flight sees it too.
        self.0.idle_since_ms.store(now_ms(), Ordering::Release);
        self.0.in_flight.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Open connections per client address.
struct Addresses {
    max: usize,
    open: Mutex<HashMap<IpAddr, usize>>,
}

impl Addresses {
    /// A slot for one more connection from `ip`, or `None` when it already has `max`.
    fn admit(self: &Arc<Self>, ip: IpAddr) -> Option<Slot> {
        if self.max == 0 {
            return Some(Slot(None));
        }
        let key = address_key(ip);
        let mut open = self.open.lock().unwrap_or_else(|e| e.into_inner());
        let count = open.entry(key).or_insert(0);
        if *count >= self.max {
            return None;
        }
        *count += 1;
        Some(Slot(Some((self.clone(), key))))
    }
}

/// A counted connection; dropping it frees its address's slot.
struct Slot(Option<(Arc<Addresses>, IpAddr)>);

impl Drop for Slot {
    fn drop(&mut self) {
        let Some((addresses, key)) = self.0.take() else { return };
        let mut open = addresses.open.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(count) = open.get_mut(&key) {
            *count -= 1;
            if *count == 0 {
                open.remove(&key); // the map holds only addresses with connections
            }
        }
    }
}

/// What connections are counted under: the IPv4 address, or the IPv6 /64 (a host is usually
/// given a whole /64, so counting single IPv6 addresses would bound nothing).
fn address_key(ip: IpAddr) -> IpAddr {
    match ip.to_canonical() {
        IpAddr::V6(v6) => {
            let s = v6.segments();
            IpAddr::V6(Ipv6Addr::new(s[0], s[1], s[2], s[3], 0, 0, 0, 0))
        }
        v4 => v4,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_gets_at_most_its_slots_and_gets_them_back() {
        let addresses = Arc::new(Addresses { max: 2, open: Mutex::default() });
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        let a = addresses.admit(ip).expect("first");
        let _b = addresses.admit(ip).expect("second");
        assert!(addresses.admit(ip).is_none(), "a third is refused");
        assert!(addresses.admit("192.0.2.2".parse().unwrap()).is_some(), "another address is not affected");
        drop(a);
        assert!(addresses.admit(ip).is_some(), "a closed connection frees its slot");
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let key = |s: &str| address_key(s.parse().unwrap());
        assert_eq!(key("2001:db8:1:2:aaaa::1"), key("2001:db8:1:2:bbbb::2"));
        assert_ne!(key("2001:db8:1:2::1"), key("2001:db8:1:3::1"));
        assert_eq!(key("::ffff:192.0.2.7"), key("192.0.2.7"));
    }

    #[test]
    fn no_limit_counts_nothing() {
        let addresses = Arc::new(Addresses { max: 0, open: Mutex::default() });
        let slots: Vec<_> = (0..1000).map(|_| addresses.admit("192.0.2.1".parse().unwrap())).collect();
        assert!(slots.iter().all(Option::is_some));
        assert!(addresses.open.lock().unwrap().is_empty());
    }
}
