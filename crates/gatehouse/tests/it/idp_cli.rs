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

#[cfg(unix)]
fn mode(path: &std::path::Path) -> u32 {
    use std::os::unix::fs::PermissionsExt;
    let meta = std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    meta.permissions().mode() & 0o777
}

/// What others can read in a data dir, as the start-up warning words it.
const SHARED_WARNING: &str = "other users of this machine can read it";

#[cfg(unix)]
#[test]
fn the_data_dir_and_every_file_it_creates_are_private() {
    let root = TempDir::new("idp-private");
    let dir = root.path().join("data");
    let idp = IdpProcess::start_at(root, &dir, true, &[]);
    assert_eq!(mode(&dir), 0o700, "the data dir");
    // SQLite keeps the -wal and -shm files while the database is open.
    for file in ["gatehouse.db", "gatehouse.db-wal", "gatehouse.db-shm", "secrets.key", "ca-key.pem", "ca.pem"] {
        assert_eq!(mode(&dir.join(file)), 0o600, "{file}");
    }
    assert!(!idp.output().contains(SHARED_WARNING), "nothing to warn about: {}", idp.output());
}

#[cfg(unix)]
#[test]
fn start_warns_about_a_data_dir_and_files_others_can_read_naming_the_fix() {
    use std::os::unix::fs::PermissionsExt;
    let data = TempDir::new("idp-shared");
    let dir = data.path().to_path_buf();
    let db = dir.join("gatehouse.db");
    // As an earlier version left them: an empty file is an empty SQLite database.
    std::fs::write(&db, b"").unwrap();
    std::fs::set_permissions(&db, std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o755)).unwrap();
    let idp = IdpProcess::start_at(data, &dir, false, &[]);
    let output = idp.output();
    let warning = |path: &std::path::Path| {
        let name = format!("{} has mode ", path.display());
        output.lines().find(|l| l.contains(&name) && l.contains(SHARED_WARNING)).map(str::to_string)
    };
    let on_db = warning(&db).unwrap_or_else(|| panic!("no warning about the database:\n{output}"));
    assert!(on_db.contains("0644") && on_db.contains(&format!("chmod 600 {}", db.display())), "{on_db}");
    assert!(on_db.contains(r#""level":"WARN""#), "{on_db}");
    let on_dir = warning(&dir).unwrap_or_else(|| panic!("no warning about the data dir:\n{output}"));
    assert!(on_dir.contains("0755") && on_dir.contains(&format!("chmod 700 {}", dir.display())), "{on_dir}");
    assert_eq!(mode(&db), 0o644, "reported, not changed");
}

#[test]
fn header_timeout_closes_a_half_sent_request_head() {
    let idp = IdpProcess::start_with(false, &["--header-timeout", "1"]);
    let authority = idp.issuer.trim_start_matches("http://").trim_end_matches('/').replace("localhost", "127.0.0.1");
    // Half a request head: the idp hangs up after the header timeout, without an answer.
    let mut stream = TcpStream::connect(&authority).expect("connecting to the idp");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let started = Instant::now();
    stream.write_all(format!("GET /healthz HTTP/1.1\r\nHost: {authority}\r\n").as_bytes()).unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer); // ends when the idp closes, or after 20 s
    let waited = started.elapsed();
    assert!(answer.is_empty(), "{}", String::from_utf8_lossy(&answer));
    assert!(waited >= Duration::from_millis(950) && waited < Duration::from_secs(15), "closed after {waited:?}");
}

/// One request with `Connection: close`; the whole answer.
fn get(authority: &str, path: &str, headers: &str) -> String {
    let mut stream = TcpStream::connect(authority).expect("connecting");
    stream.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    write!(stream, "GET {path} HTTP/1.1\r\nHost: {authority}\r\nConnection: close\r\n{headers}\r\n").unwrap();
    let mut answer = Vec::new();
    let _ = stream.read_to_end(&mut answer);
    String::from_utf8_lossy(&answer).into_owned()
}

#[test]
fn metrics_listen_moves_metrics_to_their_own_address_behind_the_token() {
    let metrics = format!("127.0.0.1:{}", free_port());
    let idp = IdpProcess::start_with(false, &["--metrics-listen", &metrics, "--metrics-token", "scrape-token"]);
    let authority = idp.issuer.trim_start_matches("http://").trim_end_matches('/').replace("localhost", "127.0.0.1");
    // `/metrics` is not on the main listener…
    let answer = get(&authority, "/metrics", "");
    assert!(answer.starts_with("HTTP/1.1 404 "), "{answer}");
    assert!(get(&authority, "/healthz", "").starts_with("HTTP/1.1 200 "));
    // …but on its own, with the token.
    assert!(get(&metrics, "/metrics", "").starts_with("HTTP/1.1 401 "));
    let answer = get(&metrics, "/metrics", "Authorization: Bearer scrape-token\r\n");
    assert!(answer.starts_with("HTTP/1.1 200 ") && answer.contains("gatehouse_http_requests_total"), "{answer}");
}

/// The recorder holds events up to a second to batch them: a clean stop right after a request
/// must still write its event (a crash would lose it; see the README's durability note).
#[cfg(unix)]
#[tokio::test]
async fn a_clean_stop_writes_the_tenant_log_events_still_queued() {
    let mut idp = IdpProcess::start_with(false, &[]);
    // No kept-alive connection: the stop does not wait for one to go idle.
    let client = reqwest::Client::builder().pool_max_idle_per_host(0).build().unwrap();
    let res = client
        .post(idp.url("oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &dev_env("MGMT_CLIENT_ID")),
            ("client_secret", "not-the-secret"),
            ("audience", "https://nowhere.example/"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let status = idp.terminate();
    assert!(status.success(), "a clean stop: {status}\n{}", idp.output());
    let db = format!("sqlite://{}", idp.data.path().join("gatehouse.db").display());
    let store = store::SqlStore::connect(&db).await.unwrap();
    let search = store::logs::LogSearch {
        query: store::logs::parse_log_query("type:feccft").unwrap(),
        paging: store::logs::LogPaging::From { from: None, take: 10 },
    };
    let found = store::Store::logs(&store).search_logs(&search).await.unwrap();
    assert_eq!(found.events.len(), 1, "the event recorded just before the stop\n{}", idp.output());
    assert_eq!(found.events[0].client_id.as_deref(), Some(dev_env("MGMT_CLIENT_ID").as_str()));
}

#[test]
fn console_add_admin_creates_updates_and_refuses_bad_input() {
    let data = TempDir::new("add-admin");
    let run = |args: &[&str]| {
        let out = gatehouse_command()
            .args(["console", "add-admin"])
            .args(args)
            .arg("--data")
            .arg(data.path())
            .output()
            .unwrap();
        (out.status.success(), String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr))
    };
    let (ok, out) = run(&["Ops@Example.test", "--password", "Long-Enough-1", "--role", "read-only"]);
    assert!(ok, "{out}");
    assert!(out.contains("console administrator created: ops@example.test (read-only)"), "{out}");
    assert!(!out.contains("password:"), "a given password is not printed: {out}");
    let (ok, out) = run(&["ops@example.test"]);
    assert!(ok, "{out}");
    assert!(out.contains("console administrator updated: ops@example.test (full)"), "{out}");
    assert!(out.lines().any(|l| l.starts_with("password: ") && l.len() > 30), "a generated password: {out}");
    for (args, says) in [
        (&["not-an-email"][..], "not an email address"),
        (&["a@example.test", "--password", "short"][..], "at least 8 characters"),
        (&["a@example.test", "--role", "owner"][..], "invalid value 'owner'"),
    ] {
        let (ok, out) = run(args);
        assert!(!ok && out.contains(says), "{args:?}: {out}");
    }
}
