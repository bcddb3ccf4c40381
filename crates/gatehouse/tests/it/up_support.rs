//! `gatehouse up` as a child process (its own port and data dir), and what walking its pages
//! over HTTP needs: a cookie-keeping client that does not follow redirects (each hop is
//! asserted), and just enough HTML reading to submit the login form and the CMS's forms.

use crate::support::{gatehouse_command, spawn_collecting};
use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::{Child, Command, ExitStatus};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

/// Tenant import and user hashing on a busy 2-core machine, in a debug build.
const START_TIMEOUT: Duration = Duration::from_secs(90);
/// How long a SIGTERM may take to stop everything.
pub const STOP_TIMEOUT: Duration = Duration::from_secs(30);
const READY_LINE: &str = "Gatehouse is up: open ";

/// A running `gatehouse up`, killed when dropped (its output printed if the test failed).
pub struct UpProcess {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    pub port: u16,
}

impl UpProcess {
    /// Starts `gatehouse up --data DIR --port PORT` and returns once it printed that it is up
    /// (the line comes after the imports, right before serving on the already bound port).
    pub fn start(data: &Path, port: u16) -> UpProcess {
        let (up, ready) = Self::spawn(data, port, &[]);
        match ready.recv_timeout(START_TIMEOUT) {
            Ok(line) => assert_eq!(line, format!("{READY_LINE}http://localhost:{port}/"), "the URL to open"),
            Err(e) => panic!("gatehouse up did not start ({e}):\n{}", up.output()),
        }
        up
    }

    /// Spawns without waiting; the channel gets the "up" line.
    pub fn spawn(data: &Path, port: u16, extra: &[&str]) -> (UpProcess, mpsc::Receiver<String>) {
        let mut cmd = gatehouse_command();
        cmd.arg("up").arg("--data").arg(data).arg("--port").arg(port.to_string()).args(extra);
        let (child, output, rx) = spawn_collecting(&mut cmd, READY_LINE);
        (UpProcess { child, output, port }, rx)
    }

    pub fn cms(&self, path: &str) -> String {
        format!("http://localhost:{}/{}", self.port, path.trim_start_matches('/'))
    }

    pub fn idp(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}/{}", self.port, path.trim_start_matches('/'))
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Waits (bounded) for the process to end by itself.
    pub fn wait_exit(&mut self, timeout: Duration) -> ExitStatus {
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "gatehouse up still running after {timeout:?}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// SIGTERM, as a service manager stops it, and the exit status.
    pub fn terminate(&mut self) -> ExitStatus {
        self.signal("TERM");
        self.wait_exit(STOP_TIMEOUT)
    }

    /// Sends `SIG<name>` (`TERM`, `INT` for Ctrl-C) without waiting for anything.
    pub fn signal(&self, name: &str) {
        let sent = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .expect("running kill");
        assert!(sent.success(), "kill -{name} failed");
    }

    /// Waits (bounded) until a line of the output contains `needle`.
    pub fn wait_for_output(&self, needle: &str, timeout: Duration) {
        let deadline = Instant::now() + timeout;
        while !self.output.lock().unwrap().iter().any(|line| line.contains(needle)) {
            assert!(Instant::now() < deadline, "no {needle:?} in the output after {timeout:?}:\n{}", self.output());
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// A request the server is busy with and that never ends by itself: the head of a `POST
    /// /oauth/token` announcing `body_len` bytes with `Expect: 100-continue`, returned once the
    /// `100 Continue` came back (hyper sends it when the handler starts reading the body, so the
    /// request is in flight from then on). The rest of the body is the caller's to send, or not.
    pub fn request_in_flight(&self, body_len: usize) -> TcpStream {
        let mut stream = TcpStream::connect(("127.0.0.1", self.port)).expect("connecting to gatehouse up");
        stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        let head = format!(
            "POST /oauth/token HTTP/1.1\r\nHost: localhost:{}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {body_len}\r\nExpect: 100-continue\r\n\r\n",
            self.port
        );
        stream.write_all(head.as_bytes()).unwrap();
        let mut seen = Vec::new();
        let mut byte = [0u8; 1];
        while !seen.ends_with(b"\r\n\r\n") {
            let n = stream.read(&mut byte).unwrap_or_else(|e| panic!("waiting for 100 Continue: {e}"));
            assert_eq!(n, 1, "connection closed before 100 Continue: {}", String::from_utf8_lossy(&seen));
            seen.push(byte[0]);
        }
        assert!(seen.starts_with(b"HTTP/1.1 100 Continue"), "{}", String::from_utf8_lossy(&seen));
        stream
    }
}

impl Drop for UpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gatehouse up output ---\n{}\n---", self.output());
        }
    }
}

/// A browser-like client: keeps cookies (per host, so the CMS's and the idp's stay apart), asks
/// for HTML, and leaves redirects to the test. No connection is kept for reuse: a test that
/// restarts `up` on the same port must not send its next request down a dead connection.
pub fn browser_client() -> reqwest::Client {
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(reqwest::header::ACCEPT, "text/html,application/xhtml+xml".parse().unwrap());
    reqwest::Client::builder()
        .no_proxy()
        .cookie_store(true)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .default_headers(headers)
        .timeout(Duration::from_secs(30))
        .build()
        .unwrap()
}

/// A page reached after following redirects: where it ended, its status and body, and every
/// URL on the way (the first one included).
pub struct Landed {
    pub url: String,
    pub status: u16,
    pub body: String,
    pub hops: Vec<String>,
    /// Every `Set-Cookie` on the way, with the URL that set it.
    pub cookies: Vec<(String, String)>,
}

impl Landed {
    pub fn passed_through(&self, prefix: &str) -> bool {
        self.hops.iter().any(|h| h.starts_with(prefix))
    }
}

/// Follows up to 10 redirects from the answer to `first`, GET after each.
pub async fn follow(http: &reqwest::Client, first: reqwest::RequestBuilder, url: &str) -> Landed {
    let mut res = first.send().await.unwrap_or_else(|e| panic!("{url}: {e}"));
    let mut current = url::Url::parse(url).unwrap();
    let mut hops = vec![url.to_string()];
    let mut cookies = Vec::new();
    for _ in 0..10 {
        for c in res.headers().get_all("set-cookie") {
            cookies.push((current.to_string(), c.to_str().unwrap().to_string()));
        }
        if !res.status().is_redirection() {
            let status = res.status().as_u16();
            let body = res.text().await.unwrap();
            return Landed { url: current.to_string(), status, body, hops, cookies };
        }
        let location = res.headers()["location"].to_str().unwrap().to_string();
        current = current.join(&location).unwrap();
        hops.push(current.to_string());
        res = http.get(current.clone()).send().await.unwrap_or_else(|e| panic!("{current}: {e}"));
    }
    panic!("more than 10 redirects: {hops:#?}");
}

pub async fn open(http: &reqwest::Client, url: &str) -> Landed {
    follow(http, http.get(url), url).await
}

/// Signs in on the idp's login page `page` (what `open` landed on) and follows the way back
/// to the CMS.
pub async fn submit_login(http: &reqwest::Client, page: &Landed, email: &str, password: &str) -> Landed {
    assert!(page.url.contains("/u/login"), "not the login page: {} ({})", page.url, page.status);
    let form = Form::first(&page.body);
    let action = url::Url::parse(&page.url).unwrap().join(&form.action).unwrap().to_string();
    let mut fields = form.hidden;
    fields.push(("username".into(), email.into()));
    fields.push(("password".into(), password.into()));
    follow(http, http.post(&action).form(&fields), &action).await
}

/// Opens `/` and signs in: the CMS page a user lands on.
pub async fn sign_in(http: &reqwest::Client, up: &UpProcess, email: &str, password: &str) -> Landed {
    let login = open(http, &up.cms("/")).await;
    submit_login(http, &login, email, password).await
}

/// The first `<form>` of a page: its action and hidden fields.
pub struct Form {
    pub action: String,
    pub hidden: Vec<(String, String)>,
}

impl Form {
    pub fn first(html: &str) -> Form {
        Self::after(html, "<form")
    }

    /// The first form after `marker`.
    pub fn after(html: &str, marker: &str) -> Form {
        let start = html.find(marker).unwrap_or_else(|| panic!("no {marker} in:\n{html}"));
        let html = &html[start..];
        let start = html.find("<form").unwrap_or_else(|| panic!("no form after {marker}"));
        let end = html[start..].find("</form>").map(|e| start + e).expect("an end of form");
        let form = &html[start..end];
        let open_tag = &form[..form.find('>').unwrap()];
        let action = attr(open_tag, "action").unwrap_or_default();
        let hidden = form
            .split("<input")
            .skip(1)
            .map(|tag| &tag[..tag.find('>').unwrap_or(tag.len())])
            .filter(|tag| attr(tag, "type").as_deref() == Some("hidden"))
            .map(|tag| (attr(tag, "name").unwrap_or_default(), attr(tag, "value").unwrap_or_default()))
            .collect();
        Form { action, hidden }
    }

    pub fn field(&self, name: &str) -> String {
        self.hidden.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone()).unwrap_or_default()
    }
}

/// A double-quoted attribute of a tag, unescaped.
fn attr(tag: &str, name: &str) -> Option<String> {
    let key = format!(" {name}=\"");
    let start = tag.find(&key)? + key.len();
    let end = tag[start..].find('"')? + start;
    Some(unescape(&tag[start..end]))
}

pub fn unescape(s: &str) -> String {
    s.replace("&quot;", "\"").replace("&#39;", "'").replace("&lt;", "<").replace("&gt;", ">").replace("&amp;", "&")
}
