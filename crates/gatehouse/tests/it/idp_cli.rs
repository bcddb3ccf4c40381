//! `gatehouse idp`'s own flags, through the binary.

use crate::support::*;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

#[test]
fn request_timeout_answers_a_stalled_body_with_a_504_after_the_given_seconds() {
    let idp = IdpProcess::start_with(false, &["--request-timeout", "1"]);
    let authority = idp.issuer.trim_start_matches("http://").trim_end_matches('/').replace("localhost", "127.0.0.1");
    let mut stream = TcpStream::connect(&authority).expect("connecting to the idp");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    // A body announced and never sent.
    let head = format!(
        "POST /oauth/token HTTP/1.1\r\nHost: {authority}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
         Content-Length: 100\r\n\r\ngrant_type="
    );
    let started = Instant::now();
    stream.write_all(head.as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    let answer = String::from_utf8_lossy(&answer);
    let waited = started.elapsed();
    assert!(answer.starts_with("HTTP/1.1 504 "), "{answer}\n{}", idp.output());
    assert!(answer.contains(r#""error":"#), "the OAuth error shape: {answer}");
    assert!(waited >= Duration::from_secs(1) && waited < Duration::from_secs(15), "answered after {waited:?}");
}

#[test]
fn request_timeout_out_of_range_or_not_a_number_stops_the_start_with_the_flag_named() {
    for bad in ["0", "3601", "soon"] {
        let data = TempDir::new("idp-timeout");
        let out = idp_command(data.path(), false).args(["--request-timeout", bad]).output().expect("running gatehouse");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bad}: started anyway");
        assert!(stderr.contains("--request-timeout"), "{bad}: {stderr}");
    }
}
