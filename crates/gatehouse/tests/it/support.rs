//! What every real-path test needs: the `gatehouse idp` binary started as a child process on
//! its own port and data directory, the example tenant's development credentials, and guards
//! that clean up processes and directories even when a test panics.

use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

/// Where the CMS's callback is registered in the example tenant. Nothing listens there: the
/// tests read the code from the redirect instead of receiving it.
pub const CALLBACK: &str = "http://localhost:8080/web-login/callback";

/// How long the idp may take to import the tenant and start listening (a cold debug build on a
/// busy 2-core machine hashes the users' passwords with bcrypt cost 10 first).
const IDP_START_TIMEOUT: Duration = Duration::from_secs(60);

pub fn workspace() -> PathBuf {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../..")).canonicalize().expect("workspace root")
}

fn example_dir() -> PathBuf {
    workspace().join("examples/cms-tenant")
}

/// A value of the example tenant's `dev.env` (client ids, secrets, user passwords), read with
/// the same parser the idp uses so quoting rules cannot drift.
pub fn dev_env(name: &str) -> String {
    let keywords = tenant::Keywords::from_env_file(example_dir().join("dev.env")).expect("examples/cms-tenant/dev.env");
    keywords.get(name).unwrap_or_else(|| panic!("{name} missing from dev.env"))
}

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicU32 = AtomicU32::new(0);
        let n = N.fetch_add(1, Ordering::SeqCst);
        let dir = std::env::temp_dir().join(format!("gatehouse-bin-it-{tag}-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).expect("creating a temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A port that was free a moment ago, for servers (chromedriver) that cannot report the port
/// they bound themselves.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port()
}

/// Fails the test, naming what is missing and how to install it: these tests never skip.
pub fn require_file(path: &Path, what: &str) {
    assert!(path.exists(), "{what} is missing ({}): run scripts/install-test-deps", path.display());
}

pub fn query_param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A running `gatehouse idp`, provisioned from `examples/cms-tenant` into a fresh data dir and
/// killed when dropped. Its output is kept, and printed if the test fails, for diagnosis.
pub struct IdpProcess {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    /// The issuer URL the idp announced (`http(s)://localhost:PORT/`), with its trailing slash.
    pub issuer: String,
    pub data: TempDir,
}

impl IdpProcess {
    /// Starts the binary and returns once it printed that it listens: the line is printed after
    /// the tenant import, right before serving, so no polling is needed.
    pub fn start(tls: bool) -> Self {
        Self::start_with(tls, &[])
    }

    /// [`start`](Self::start) with more flags.
    pub fn start_with(tls: bool, extra: &[&str]) -> Self {
        let data = TempDir::new("idp");
        let dir = data.path().to_path_buf();
        Self::start_at(data, &dir, tls, extra)
    }

    /// [`start_with`](Self::start_with) with the data dir at `dir`, e.g. a directory under
    /// `data` that does not exist yet (`data` is removed when the process is dropped).
    pub fn start_at(data: TempDir, dir: &Path, tls: bool, extra: &[&str]) -> Self {
        let mut cmd = idp_command(dir, tls);
        cmd.args(extra);
        Self::spawn(data, cmd)
    }

    /// [`start_with`](Self::start_with) importing `tenant` (a variant of the example's).
    pub fn start_with_tenant(tenant: &Path, extra: &[&str]) -> Self {
        let data = TempDir::new("idp");
        let mut cmd = idp_command_with_tenant(data.path(), false, tenant);
        cmd.args(extra);
        Self::spawn(data, cmd)
    }

    fn spawn(data: TempDir, mut cmd: Command) -> Self {
        let (child, output, rx) = spawn_collecting(&mut cmd, "idp listening on ");
        let line = rx.recv_timeout(IDP_START_TIMEOUT);
        let mut idp = IdpProcess { child, output, issuer: String::new(), data };
        match line {
            Ok(line) => idp.issuer = parse_issuer(&line),
            // The reader dropped its sender: the process ended before listening.
            Err(e) => panic!("gatehouse idp did not start ({e}):\n{}", idp.output()),
        }
        idp
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer, path.trim_start_matches('/'))
    }

    /// The local CA the idp generated for `--tls`.
    pub fn ca_pem(&self) -> PathBuf {
        self.data.path().join("ca.pem")
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }

    /// Sends SIGTERM (a clean stop) and waits, at most 20 s, for the process to exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let sent = Command::new("kill").args(["-TERM", &self.child.id().to_string()]).status().expect("running kill");
        assert!(sent.success(), "kill -TERM failed");
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        loop {
            if let Some(status) = self.child.try_wait().expect("waiting for gatehouse idp") {
                return status;
            }
            assert!(std::time::Instant::now() < deadline, "gatehouse idp did not stop:\n{}", self.output());
            std::thread::sleep(std::time::Duration::from_millis(20));
        }
    }
}

impl Drop for IdpProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gatehouse idp output ---\n{}\n---", self.output());
        }
    }
}

pub fn idp_command(data: &Path, tls: bool) -> Command {
    idp_command_with_tenant(data, tls, &example_dir().join("tenant.yaml"))
}

/// [`idp_command`] importing `tenant` instead of the example's `tenant.yaml` (same keywords
/// and users).
pub fn idp_command_with_tenant(data: &Path, tls: bool, tenant: &Path) -> Command {
    let example = example_dir();
    let mut cmd = gatehouse_command();
    cmd.arg("idp")
        .arg("--tenant")
        .arg(tenant)
        .arg("--keywords")
        .arg(example.join("dev.env"))
        .arg("--users")
        .arg(example.join("users.json"))
        .args(["--users-connection", "dev-users", "--listen", "127.0.0.1:0"])
        .arg("--data")
        .arg(data);
    if tls {
        cmd.arg("--tls");
    }
    cmd
}

/// The `gatehouse` binary under test. Its flags are the whole configuration: variables of the
/// developer's shell (GATEHOUSE_DATABASE, GATEHOUSE_PUBLIC_URL, …) must not leak in.
pub fn gatehouse_command() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_gatehouse"));
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("GATEHOUSE_") {
            cmd.env_remove(key);
        }
    }
    cmd
}

/// Spawns `cmd` with its output collected (see [`collect_lines`]); the channel gets the line
/// starting with `ready`, and disconnects if the process ends first.
pub fn spawn_collecting(
    cmd: &mut Command,
    ready: &'static str,
) -> (Child, Arc<Mutex<Vec<String>>>, mpsc::Receiver<String>) {
    let mut child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning the gatehouse binary");
    let output = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    collect_lines(child.stdout.take().unwrap(), output.clone(), Some((ready, tx)));
    collect_lines(child.stderr.take().unwrap(), output.clone(), None);
    (child, output, rx)
}

/// Copies a child's output lines into `sink`; lines starting with the `notify` prefix also go
/// to its channel. Reading continues afterwards so the child never blocks on a full pipe.
pub fn collect_lines(
    stream: impl Read + Send + 'static,
    sink: Arc<Mutex<Vec<String>>>,
    notify: Option<(&'static str, mpsc::Sender<String>)>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            if let Some((prefix, tx)) = &notify
                && line.starts_with(prefix)
            {
                let _ = tx.send(line.clone());
            }
            sink.lock().unwrap().push(line);
        }
    });
}

/// `idp listening on 127.0.0.1:PORT, issuer URL` → `URL`.
fn parse_issuer(line: &str) -> String {
    let (_, issuer) = line.split_once(", issuer ").unwrap_or_else(|| panic!("unexpected line: {line}"));
    let issuer = issuer.trim().to_string();
    assert!(issuer.ends_with('/'), "issuer without a trailing slash: {issuer}");
    issuer
}
