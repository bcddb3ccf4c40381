//! What the listener bounds, over raw TCP to 127.0.0.1: a client that sends half a request
//! head, nothing, or nothing more is closed within the (here short) timeouts; one address gets
//! at most its share of connections while others are still served. Plus HSTS over TLS only,
//! and `/metrics` on a listener of its own, behind a token.

use crate::harness::*;
use idp::{Limits, Listener, LocalCa};
use std::net::SocketAddr;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

/// Far above the bounds under test: a connection still open after this was never closed.
const PATIENCE: Duration = Duration::from_secs(10);
const SHORT: Duration = Duration::from_millis(300);

fn addr(t: &TestIdp) -> SocketAddr {
    url::Url::parse(&t.base).unwrap().socket_addrs(|| None).unwrap()[0]
}

async fn start_with(limits: Limits) -> TestIdp {
    start_serving(sqlite_store().await, false, |_| {}, Listener::Plain, limits).await
}

/// Reads until the server closes the connection (end of stream or reset); what it sent.
/// Panics when the connection is still open after [`PATIENCE`].
async fn read_until_closed(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while let Ok(n @ 1..) = stream.read(&mut buf).await {
            got.extend_from_slice(&buf[..n]);
        }
    };
    tokio::time::timeout(PATIENCE, read).await.expect("the server should have closed the connection");
    got
}

/// One `GET /healthz` on a kept-alive connection; the whole answer.
async fn healthz(stream: &mut TcpStream) -> String {
    stream.write_all(b"GET /healthz HTTP/1.1\r\nHost: idp\r\n\r\n").await.unwrap();
    let mut got = Vec::new();
    let read = async {
        let mut buf = [0u8; 4096];
        while !got.ends_with(b"\r\n\r\nok") {
            match stream.read(&mut buf).await {
                Ok(n @ 1..) => got.extend_from_slice(&buf[..n]),
                _ => break,
            }
        }
    };
    tokio::time::timeout(PATIENCE, read).await.expect("an answer to /healthz");
    String::from_utf8_lossy(&got).into_owned()
}

async fn connect_from(local: &str, to: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket.bind(format!("{local}:0").parse().unwrap()).unwrap();
    socket.connect(to).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn clients_that_do_not_finish_their_request_head_are_closed_within_the_header_timeout() {
    let t = start_with(Limits { header_timeout: SHORT, idle_timeout: PATIENCE * 6, ..Limits::default() }).await;
    let cases: [(&str, &[u8]); 4] = [
        ("half a request head", b"GET /healthz HTTP/1.1\r\nHost: idp\r\n"),
        ("nothing at all", b""),
        // Still deciding between HTTP/1.1 and HTTP/2: no timer of hyper's runs yet.
        ("the start of HTTP/2's preface", b"PRI * HTTP/2.0\r\n"),
        // HTTP/2 with prior knowledge, but no request.
        ("HTTP/2's preface and no request", b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00"),
    ];
    for (what, sent) in cases {
        let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
        let started = Instant::now();
        stream.write_all(sent).await.unwrap();
        let got = read_until_closed(&mut stream).await;
        assert!(started.elapsed() >= SHORT - Duration::from_millis(50), "{what}: closed before the timeout");
        assert!(!String::from_utf8_lossy(&got).contains("200 OK"), "{what}: no request was answered");
    }
    // A client that does send its request in time is answered.
    let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
    assert!(healthz(&mut stream).await.starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kept_alive_connection_is_closed_once_idle_for_the_idle_timeout() {
    let t = start_with(Limits { header_timeout: PATIENCE * 6, idle_timeout: SHORT, ..Limits::default() }).await;
    let mut stream = TcpStream::connect(addr(&t)).await.unwrap();
    assert!(healthz(&mut stream).await.starts_with("HTTP/1.1 200 OK"));
    assert!(healthz(&mut stream).await.starts_with("HTTP/1.1 200 OK"), "kept alive between requests");
    let idle_from = Instant::now();
    assert!(read_until_closed(&mut stream).await.is_empty());
    assert!(idle_from.elapsed() >= SHORT - Duration::from_millis(50), "closed before the idle timeout");
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_beyond_the_per_address_limit_are_refused_while_others_are_served() {
    let t = start_with(Limits { max_per_address: 2, ..Limits::default() }).await;
    // Two connections from 127.0.0.1, each answered once, so the server has counted both.
    let mut first = connect_from("127.0.0.1", addr(&t)).await;
    let mut second = connect_from("127.0.0.1", addr(&t)).await;
    assert!(healthz(&mut first).await.starts_with("HTTP/1.1 200 OK"));
    assert!(healthz(&mut second).await.starts_with("HTTP/1.1 200 OK"));
    // A third from the same address is closed without an answer…
    let mut third = connect_from("127.0.0.1", addr(&t)).await;
    let _ = third.write_all(b"GET /healthz HTTP/1.1\r\nHost: idp\r\n\r\n").await;
    assert!(read_until_closed(&mut third).await.is_empty(), "the third connection is refused");
    // …while another address is served, and so are the two already open.
    let mut other = connect_from("127.0.0.2", addr(&t)).await;
    assert!(healthz(&mut other).await.starts_with("HTTP/1.1 200 OK"));
    assert!(healthz(&mut first).await.starts_with("HTTP/1.1 200 OK"));
}

#[tokio::test(flavor = "multi_thread")]
async fn hsts_is_sent_over_tls_only() {
    let dir = temp_dir("hsts");
    let names = ["localhost".to_string(), "login.example.test".to_string()];
    let ca = LocalCa::ensure(&dir, &names).unwrap();
    let tls = Listener::Tls { cert_pem: ca.cert_pem.clone(), key_pem: ca.key_pem.clone() };
    let t = start_serving(sqlite_store().await, false, |_| {}, tls, Limits::default()).await;
    let client = reqwest::Client::builder()
        .tls_certs_merge(reqwest::Certificate::from_pem_bundle(&std::fs::read(&ca.ca_pem_path).unwrap()).unwrap())
        .resolve("login.example.test", addr(&t))
        .build()
        .unwrap();
    let port = addr(&t).port();
    for path in ["healthz", "authorize", "nowhere"] {
        let res = client.get(format!("https://login.example.test:{port}/{path}")).send().await.unwrap();
        assert_eq!(res.headers()["strict-transport-security"], "max-age=31536000", "{path}");
    }
    // Not to loopback names: the rule would hold for every port of the host, so one run
    // would send plain-HTTP development servers there (`gatehouse up`) to HTTPS for a year.
    let res = client.get(t.url("healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("strict-transport-security").is_none());
    // Never over plain HTTP.
    let plain = start_with(Limits::default()).await;
    let res = reqwest::get(plain.url("healthz")).await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.headers().get("strict-transport-security").is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_on_a_listener_of_their_own_and_behind_a_token() {
    let t = start_on(sqlite_store().await, false, |c| {
        c.metrics_elsewhere = true;
        c.require_metrics_token("scrape-token");
    })
    .await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let metrics = format!("http://{}/metrics", listener.local_addr().unwrap());
    tokio::spawn(idp::serve(
        t.idp.metrics_router(),
        listener,
        Listener::Plain,
        Limits::default(),
        std::future::pending(),
    ));

    // The main listener does not know the route.
    let (status, body) = json(reqwest::get(t.url("metrics")).await.unwrap()).await;
    assert_eq!(status, 404, "{body}");
    assert_eq!(body["error"], "not_found");
    assert_eq!(reqwest::get(t.url("healthz")).await.unwrap().status(), 200);

    let http = reqwest::Client::new();
    for auth in [None, Some("Bearer wrong"), Some("scrape-token"), Some("Basic c2NyYXBlLXRva2Vu")] {
        let mut req = http.get(&metrics);
        if let Some(a) = auth {
            req = req.header("authorization", a);
        }
        let res = req.send().await.unwrap();
        assert_eq!(res.status(), 401, "{auth:?}");
        assert_eq!(res.headers()["www-authenticate"], "Bearer");
    }
    let res = http.get(&metrics).bearer_auth("scrape-token").send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(res.text().await.unwrap().contains("gatehouse_"), "Prometheus text");
    // Only /metrics is there.
    assert_eq!(http.get(metrics.replace("/metrics", "/healthz")).send().await.unwrap().status(), 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn metrics_stay_on_the_main_listener_by_default() {
    let t = start_with(Limits::default()).await;
    assert_eq!(reqwest::get(t.url("healthz")).await.unwrap().status(), 200);
    let res = reqwest::get(t.url("metrics")).await.unwrap();
    assert_eq!(res.status(), 200);
}
