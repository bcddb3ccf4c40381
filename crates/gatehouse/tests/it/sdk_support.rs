//! What the official-SDK tests share: a `gatehouse idp --tls` child process whose tenant also
//! has an administration M2M application granted the whole Management API (the example
//! tenant's own M2M app keeps the user scopes the guide gives it), and running an SDK script
//! that prints one JSON summary.

use crate::support::{TempDir, gatehouse_command, spawn_collecting, workspace};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

/// The administration application the tests add (32 / 64 characters, as Auth0 makes them).
pub const ADMIN_CLIENT_ID: &str = "GatehouseSdkTestsAdmin0000000001";
pub const ADMIN_CLIENT_SECRET: &str = "sdk-tests-admin-secret-0123456789-abcdefghijklmnopqrstuvwxyz_ABC";
/// A password and its bcrypt hash (cost 10, `$2b$`), for users imported with `password_hash`.
pub const IMPORTED_PASSWORD: &str = "Imported-Passw0rd!";
pub const IMPORTED_BCRYPT: &str = "$2b$10$JsxmOY8PQQE2hc3oHdYVhueHKrbiK62VxEnheqYslX3etTxnvyr7q";

/// Bounds a hung SDK run; each script finishes in seconds.
pub const SCRIPT_TIMEOUT: Duration = Duration::from_secs(90);
const IDP_START_TIMEOUT: Duration = Duration::from_secs(60);

/// What the idp starts with.
pub enum Tenant {
    /// `examples/cms-tenant` (tenant, keywords, users) plus the administration application.
    ExampleWithAdmin,
    /// Nothing but the administration application: an empty tenant for auth0-deploy-cli.
    AdminOnly,
}

/// The administration application and its grant, as tenant-file list items.
fn admin_yaml() -> (String, String) {
    let client = format!(
        "  - name: Gatehouse SDK tests\n    app_type: non_interactive\n    client_id: \"{ADMIN_CLIENT_ID}\"\n    \
         client_secret: \"{ADMIN_CLIENT_SECRET}\"\n    grant_types:\n      - client_credentials\n    \
         token_endpoint_auth_method: client_secret_post\n    jwt_configuration:\n      alg: RS256\n      \
         lifetime_in_seconds: 36000\n"
    );
    let scopes: String = idp::provision::MANAGEMENT_SCOPES.iter().map(|s| format!("      - \"{s}\"\n")).collect();
    let grant = format!(
        "  - client_id: Gatehouse SDK tests\n    audience: \"https://##AUTH0_DOMAIN##/api/v2/\"\n    scope:\n{scopes}"
    );
    (client, grant)
}

/// Writes the tenant folder for `tenant` into `dir`; returns the tenant file.
fn write_tenant(dir: &Path, tenant: &Tenant) -> PathBuf {
    let (client, grant) = admin_yaml();
    let file = dir.join("tenant.yaml");
    match tenant {
        Tenant::AdminOnly => {
            std::fs::write(&file, format!("clients:\n{client}clientGrants:\n{grant}")).unwrap();
        }
        Tenant::ExampleWithAdmin => {
            let example = workspace().join("examples/cms-tenant");
            let yaml = std::fs::read_to_string(example.join("tenant.yaml")).unwrap();
            assert!(
                yaml.contains("\nclients:\n") && yaml.contains("\nclientGrants:\n"),
                "example tenant layout changed"
            );
            let yaml = yaml.replacen("\nclients:\n", &format!("\nclients:\n{client}"), 1).replacen(
                "\nclientGrants:\n",
                &format!("\nclientGrants:\n{grant}"),
                1,
            );
            std::fs::write(&file, yaml).unwrap();
            std::fs::create_dir_all(dir.join("actions/inject-id-token")).unwrap();
            for name in ["dev.env", "users.json", "actions/inject-id-token/code.js"] {
                std::fs::copy(example.join(name), dir.join(name)).unwrap();
            }
        }
    }
    file
}

/// A running `gatehouse idp --tls`, killed when dropped; its output is printed if the test fails.
pub struct Gatehouse {
    child: Child,
    output: Arc<Mutex<Vec<String>>>,
    /// `localhost:PORT`, what SDKs are configured with.
    pub domain: String,
    pub data: TempDir,
}

impl Gatehouse {
    pub fn start(tenant: Tenant) -> Self {
        let data = TempDir::new("sdk");
        let tenant_dir = data.path().join("tenant");
        std::fs::create_dir_all(&tenant_dir).unwrap();
        let file = write_tenant(&tenant_dir, &tenant);
        let mut cmd = gatehouse_command();
        cmd.arg("idp").arg("--tenant").arg(&file);
        if let Tenant::ExampleWithAdmin = tenant {
            cmd.arg("--keywords")
                .arg(tenant_dir.join("dev.env"))
                .arg("--users")
                .arg(tenant_dir.join("users.json"))
                .args(["--users-connection", "dev-users"]);
        }
        cmd.args(["--listen", "127.0.0.1:0", "--tls"]).arg("--data").arg(data.path().join("idp"));
        let (child, output, rx) = spawn_collecting(&mut cmd, "idp listening on ");
        let line = rx.recv_timeout(IDP_START_TIMEOUT);
        let mut g = Gatehouse { child, output, domain: String::new(), data };
        match line {
            Ok(line) => {
                let issuer = line.split_once(", issuer ").map(|(_, i)| i.trim()).unwrap_or_default();
                g.domain = issuer.trim_start_matches("https://").trim_end_matches('/').to_string();
                assert!(issuer.starts_with("https://") && g.domain.starts_with("localhost:"), "{line}");
            }
            Err(e) => panic!("gatehouse idp did not start ({e}):\n{}", g.output()),
        }
        g
    }

    pub fn ca_pem(&self) -> PathBuf {
        self.data.path().join("idp/ca.pem")
    }

    pub fn output(&self) -> String {
        self.output.lock().unwrap().join("\n")
    }
}

impl Drop for Gatehouse {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            eprintln!("--- gatehouse idp output ---\n{}\n---", self.output());
        }
    }
}

/// Runs an SDK script to its end; returns the JSON object its last stdout line holds, or fails
/// the test with the script's own output.
pub async fn run_json(what: &str, mut cmd: tokio::process::Command) -> Value {
    cmd.kill_on_drop(true).stdin(Stdio::null());
    let started = std::time::Instant::now();
    let run = tokio::time::timeout(SCRIPT_TIMEOUT, cmd.output())
        .await
        .unwrap_or_else(|_| panic!("{what} timed out after {SCRIPT_TIMEOUT:?}"));
    let out = run.unwrap_or_else(|e| panic!("running {what}: {e}"));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{what} failed ({}):\n{stderr}\n{stdout}", out.status);
    println!("{what} ({:.1}s): {}", started.elapsed().as_secs_f64(), stdout.trim());
    let last = stdout.lines().rev().find(|l| l.trim_start().starts_with('{')).unwrap_or_default();
    serde_json::from_str(last).unwrap_or_else(|e| panic!("{what} printed no JSON summary ({e}):\n{stderr}\n{stdout}"))
}
