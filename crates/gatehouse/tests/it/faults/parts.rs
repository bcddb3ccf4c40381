//! The parts a fault test breaks, each its own: a PostgreSQL cluster (Debian's server binaries,
//! `initdb` into a temp dir, its own port), `redis-server`s (a primary, replicas, sentinels),
//! `gatehouse idp` nodes and `gatehouse auth0-client` instances on fixed ports, so a part that
//! was killed comes back where the balancer and its peers expect it. The machine's shared
//! PostgreSQL and Redis are never touched.

use crate::support::{TempDir, dev_env, free_port, gatehouse_command, spawn_collecting, workspace};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// How long a part may take to come up on a busy 2-core machine.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// Polls `check` every 20 ms until it holds; the test fails naming `what` after `bound`.
/// Returns how long it took.
pub async fn within<F, Fut>(what: &str, bound: Duration, mut check: F) -> Duration
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = Instant::now();
    loop {
        if check().await {
            return start.elapsed();
        }
        assert!(start.elapsed() < bound, "{what}: not within {bound:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// The status of `GET url`, or 0 when nothing answered within 3 s.
pub async fn status_of(url: &str) -> u16 {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(3)).build().unwrap();
    match client.get(url).send().await {
        Ok(res) => res.status().as_u16(),
        Err(_) => 0,
    }
}

fn running_as_root() -> bool {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status.lines().find_map(|l| l.strip_prefix("Uid:")).and_then(|l| l.split_whitespace().nth(1)) == Some("0")
}

/// Sends `signal` (`-KILL`, `-STOP`, `-CONT`) to these processes.
pub fn signal(signal: &str, pids: &[u32]) {
    let mut cmd = Command::new("kill");
    cmd.arg(signal).args(pids.iter().map(u32::to_string));
    let status = cmd.status().expect("running kill");
    assert!(status.success(), "kill {signal} {pids:?} failed");
}

/// The processes whose parent is `parent` (from /proc, no tool needed).
fn children_of(parent: u32) -> Vec<u32> {
    let mut pids = Vec::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else { continue };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else { continue };
        // `pid (comm) state ppid …`: comm may hold spaces, so read after its last ')'.
        let ppid = stat.rsplit_once(')').and_then(|(_, rest)| rest.split_whitespace().nth(1));
        if ppid.and_then(|p| p.parse::<u32>().ok()) == Some(parent) {
            pids.push(pid);
        }
    }
    pids
}

/// A PostgreSQL cluster of this test's own: Debian's newest server binaries, trust
/// authentication for `postgres` on 127.0.0.1 only, its socket in its own directory. `initdb`
/// refuses to run as root, so under root every server command runs as the `postgres` user
/// (`runuser`), who owns the directory.
pub struct Postgres {
    pub port: u16,
    bin: PathBuf,
    dir: TempDir,
}

impl Postgres {
    pub fn start() -> Postgres {
        let bin = std::fs::read_dir("/usr/lib/postgresql")
            .into_iter()
            .flatten()
            .flatten()
            .map(|e| e.path().join("bin"))
            .filter(|b| b.join("initdb").exists())
            .max_by_key(|b| {
                b.parent().and_then(|v| v.file_name()).and_then(|v| v.to_str()?.parse::<u32>().ok()).unwrap_or(0)
            })
            .expect("PostgreSQL's server binaries (/usr/lib/postgresql/*/bin): run scripts/install-test-deps");
        let dir = TempDir::new("pg");
        if running_as_root() {
            let status = Command::new("chown").arg("-R").arg("postgres:").arg(dir.path()).status().expect("chown");
            assert!(status.success(), "chown postgres {}", dir.path().display());
        }
        let pg = Postgres { port: free_port(), bin, dir };
        pg.run("initdb", &["-D", &pg.data(), "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"]);
        pg.start_again();
        pg
    }

    fn data(&self) -> String {
        self.dir.path().join("data").display().to_string()
    }

    fn run(&self, tool: &str, args: &[&str]) {
        let exe = self.bin.join(tool);
        let mut cmd = if running_as_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        // The server user may not be able to enter the test's working directory.
        let out = cmd
            .args(args)
            .current_dir(self.dir.path())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("running {tool}: {e}"));
        assert!(
            out.status.success(),
            "{tool} {args:?} failed:\n{}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(self.dir.path().join("log")).unwrap_or_default()
        );
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the server (again, after [`stop`](Self::stop)) and returns once it accepts
    /// connections (`pg_ctl -w`).
    pub fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100",
            self.port,
            self.dir.path().display()
        );
        let log = self.dir.path().join("log").display().to_string();
        self.run("pg_ctl", &["-D", &self.data(), "-l", &log, "-o", &options, "-w", "-t", "60", "start"]);
    }

    /// A clean, fast stop (what `pg_ctlcluster … restart` does first): open sessions are
    /// ended, the server exits, the port closes.
    pub fn stop(&self) {
        self.run("pg_ctl", &["-D", &self.data(), "-m", "fast", "-w", "-t", "60", "stop"]);
    }

    fn postmaster(&self) -> u32 {
        let pid = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid")).expect("postmaster.pid");
        pid.lines().next().and_then(|l| l.trim().parse().ok()).expect("a pid in postmaster.pid")
    }

    /// Freezes the server and every backend (SIGSTOP): connections stay open, nothing answers,
    /// as with a database host that hangs or a network that drops packets. The postmaster
    /// first, so no backend is forked meanwhile; a backend that ended since the listing is
    /// simply gone.
    pub fn freeze(&self) {
        let postmaster = self.postmaster();
        signal("-STOP", &[postmaster]);
        for pid in children_of(postmaster) {
            let _ = Command::new("kill").args(["-STOP", &pid.to_string()]).stderr(Stdio::null()).status();
        }
    }

    /// Lets a frozen server go on (SIGCONT).
    pub fn thaw(&self) {
        let postmaster = self.postmaster();
        for pid in children_of(postmaster) {
            let _ = Command::new("kill").args(["-CONT", &pid.to_string()]).stderr(Stdio::null()).status();
        }
        signal("-CONT", &[postmaster]);
    }

    /// Runs one SQL statement with `psql` and returns its rows, fields separated by `|`.
    pub fn query(&self, sql: &str) -> Vec<String> {
        let out = Command::new("psql")
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-d", &self.url(), "-c", sql])
            .stdin(Stdio::null())
            .output()
            .expect("psql is installed (Debian package postgresql-client)");
        assert!(out.status.success(), "psql {sql}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).lines().filter(|l| !l.is_empty()).map(str::to_owned).collect()
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Never leave a frozen or running server behind, panicking or not.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| self.thaw()));
        let exe = self.bin.join("pg_ctl");
        let data = self.data();
        let args = ["-D", data.as_str(), "-m", "immediate", "-w", "stop"];
        let _ = if running_as_root() {
            Command::new("runuser").args(["-u", "postgres", "--"]).arg(&exe).args(args).output()
        } else {
            Command::new(&exe).args(args).output()
        };
    }
}

/// A `redis-server` (or sentinel) of this test's own on a fixed port, so it can be killed and
/// started again where its clients look for it.
pub struct Redis {
    pub port: u16,
    child: Option<Child>,
    config: String,
    sentinel: bool,
    dir: TempDir,
}

impl Redis {
    pub async fn start(config: &str, sentinel: bool) -> Redis {
        let mut redis =
            Redis { port: free_port(), child: None, config: config.to_owned(), sentinel, dir: TempDir::new("redis") };
        redis.start_again().await;
        redis
    }

    pub fn addr(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Starts the server with its configuration, and returns once it answers PING.
    pub async fn start_again(&mut self) {
        let conf = self.dir.path().join("redis.conf");
        // A sentinel rewrites its file; a server started again starts from the same one.
        if !conf.exists() || !self.sentinel {
            std::fs::write(
                &conf,
                format!(
                    "port {}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n{}\n",
                    self.port,
                    self.dir.path().display(),
                    self.config
                ),
            )
            .unwrap();
        }
        let mut cmd = Command::new("redis-server");
        cmd.arg(&conf);
        if self.sentinel {
            cmd.arg("--sentinel");
        }
        let child = cmd
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed: run scripts/install-test-deps");
        self.child = Some(child);
        let port = self.port;
        within("redis-server answers PING", START_TIMEOUT, || async move { redis_ping(port).await }).await;
    }

    /// SIGKILL: the server is gone at once, its connections reset.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// `redis-cli -p PORT ARGS…`, its output.
    pub fn cli(&self, args: &[&str]) -> String {
        let out = Command::new("redis-cli")
            .args(["-p", &self.port.to_string()])
            .args(args)
            .output()
            .expect("redis-cli is installed");
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

impl Drop for Redis {
    fn drop(&mut self) {
        self.kill();
    }
}

async fn redis_ping(port: u16) -> bool {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let Ok(Ok(mut s)) =
        tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(("127.0.0.1", port))).await
    else {
        return false;
    };
    if s.write_all(b"PING\r\n").await.is_err() {
        return false;
    }
    let mut buf = [0u8; 64];
    matches!(tokio::time::timeout(Duration::from_secs(1), s.read(&mut buf)).await, Ok(Ok(n)) if buf[..n].starts_with(b"+PONG"))
}

/// A child process of the binary under test, on a fixed port: killed (SIGKILL) and started
/// again with the same command; its output kept and printed when the test fails.
pub struct Process {
    pub port: u16,
    pub name: String,
    make: Box<dyn Fn() -> Command + Send + Sync>,
    health: &'static str,
    child: Option<Child>,
    output: Arc<Mutex<Vec<String>>>,
}

impl Process {
    /// Starts `make()` and returns once `GET health` answers 200.
    pub async fn start(
        name: &str,
        port: u16,
        health: &'static str,
        make: impl Fn() -> Command + Send + Sync + 'static,
    ) -> Process {
        let mut p = Process {
            port,
            name: name.to_owned(),
            make: Box::new(make),
            health,
            child: None,
            output: Arc::new(Mutex::new(Vec::new())),
        };
        p.start_again().await;
        p
    }

    pub fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    pub async fn start_again(&mut self) {
        let (child, output, _) = spawn_collecting(&mut (self.make)(), "\u{0}never");
        // Keep what the earlier lives printed too.
        let earlier = std::mem::replace(&mut self.output, output);
        self.output.lock().unwrap().splice(0..0, earlier.lock().unwrap().drain(..));
        self.child = Some(child);
        let url = format!("{}{}", self.base(), self.health);
        let started = Instant::now();
        loop {
            if status_of(&url).await == 200 {
                return;
            }
            if let Some(status) = self.child.as_mut().and_then(|c| c.try_wait().ok().flatten()) {
                panic!("{} exited ({status}):\n{}", self.name, self.output());
            }
            assert!(started.elapsed() < START_TIMEOUT, "{} did not start:\n{}", self.name, self.output());
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// SIGKILL, and waits for the process to be gone.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for Process {
    fn drop(&mut self) {
        self.kill();
        if std::thread::panicking() {
            let out = self.output();
            let tail: Vec<&str> = out.lines().rev().take(40).collect();
            eprintln!("--- {} (last lines) ---", self.name);
            for line in tail.iter().rev() {
                eprintln!("{line}");
            }
        }
    }
}

/// The example tenant, where nodes of one cluster find it; the Management API grant also
/// reads connections (auth0-client's `supportedConnectionsMap` needs an id).
pub fn tenant_file(dir: &Path) -> PathBuf {
    let example = workspace().join("examples/cms-tenant");
    let text = std::fs::read_to_string(example.join("tenant.yaml")).expect("tenant.yaml");
    let scope = "      - create:users_app_metadata\n";
    assert!(text.contains(scope), "the example tenant's grant changed");
    let text = text
        .replace(scope, &format!("{scope}      - read:connections\n"))
        .replace("./actions/", &format!("{}/actions/", example.display()));
    let path = dir.join("tenant.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// One `gatehouse idp` node of a cluster: the shared database, public URL (the balancer's) and
/// secrets key; its own port and data dir.
pub async fn idp_node(name: &str, dir: &Path, database: &str, public_url: &str) -> Process {
    idp_node_with(name, dir, database, public_url, free_port(), &[]).await
}

/// [`idp_node`] on `port`, with more environment variables.
pub async fn idp_node_with(
    name: &str,
    dir: &Path,
    database: &str,
    public_url: &str,
    port: u16,
    env: &[(&str, String)],
) -> Process {
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    let example = workspace().join("examples/cms-tenant");
    let tenant = tenant_file(dir);
    let data = dir.join(name);
    let key = dir.join("secrets.key");
    let (database, public_url) = (database.to_owned(), public_url.to_owned());
    Process::start(name, port, "/healthz", move || {
        let mut cmd = gatehouse_command();
        cmd.arg("idp")
            .arg("--tenant")
            .arg(&tenant)
            .arg("--keywords")
            .arg(example.join("dev.env"))
            .arg("--users")
            .arg(example.join("users.json"))
            .args(["--users-connection", "dev-users"])
            .args(["--listen", &format!("127.0.0.1:{port}")])
            .args(["--database", &database, "--public-url", &public_url])
            .arg("--data")
            .arg(&data)
            .arg("--secrets-key")
            .arg(&key)
            // Shorter than the load's client timeout, so a stuck request gets its 504.
            .args(["--request-timeout", "10"])
            // Behind the balancer, as behind a production proxy: the client's address is the
            // last `X-Forwarded-For` entry (the load's reset mails each come from their own).
            .arg("--trust-proxy")
            // A mail claim's lease is four SMTP timeouts and 30 s: a killed node's claimed mail
            // goes out again within 34 s, not 150 s (the default 30 s timeout).
            .args(["--smtp-timeout", "1"])
            .env("RUST_LOG", "warn");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd
    })
    .await
}

/// The config.json for auth0-client instances in front of `auth0_url`: `cms` (website, the
/// `sid` cookie) and the management client.
pub fn client_config(auth0_url: &str, dev_users_id: &str) -> Value {
    json!({
        "clients": {
            "cms": {
                "auth0Url": auth0_url,
                "clientId": dev_env("CMS_CLIENT_ID"),
                "clientSecret": dev_env("CMS_CLIENT_SECRET"),
                "redirectUrl": crate::support::CALLBACK,
                "scopes": ["offline_access", "profile", "email", "website"],
                "audience": "http://localhost:8080/",
                "supportedConnections": ["dev-users"],
                "defaultConnection": "dev-users",
                "authorizeStateRequired": true,
            }
        },
        "defaultClient": "cms",
        "managementClient": {
            "auth0Url": auth0_url,
            "clientId": dev_env("MGMT_CLIENT_ID"),
            "clientSecret": dev_env("MGMT_CLIENT_SECRET"),
            "supportedConnectionsMap": {"dev-users": {"connectionId": dev_users_id}},
            "defaultManagementConnectionName": "dev-users",
        },
        "customClaimsNamespaces": ["https://cms.example.test/app_metadata"],
    })
}

/// One `gatehouse auth0-client` instance (Mia's environment variables, `env` among them).
pub async fn client_node(name: &str, dir: &Path, config: &Value, env: &[(&str, String)]) -> Process {
    let port = free_port();
    let config_dir = dir.join(format!("{name}-config"));
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("config.json"), config.to_string()).unwrap();
    let env: Vec<(String, String)> = env.iter().map(|(k, v)| ((*k).to_owned(), v.clone())).collect();
    Process::start(name, port, "/-/healthz", move || {
        let mut cmd = gatehouse_command();
        cmd.arg("auth0-client")
            .env("HTTP_PORT", port.to_string())
            .env("SERVICE_CONFIG_PATH", &config_dir)
            .env("SERVICE_CONFIG_FILE_NAME", "config")
            .env("SESSION_SCOPE", "faults")
            .env("DELAY_SHUTDOWN_SECONDS", "0")
            .env("LOG_LEVEL", "error")
            .env("ORIGINAL_PROTOCOL_HEADER", "x-forwarded-proto");
        for (k, v) in &env {
            cmd.env(k, v);
        }
        cmd
    })
    .await
}
