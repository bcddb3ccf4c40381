//! The `auth0-client` binary at start: each malformed configuration stops it with a non-zero
//! exit and a message naming the offending key; a good one starts, logs in the original's
//! format and stops cleanly on SIGTERM.

use crate::support::*;
use serde_json::{Value, json};
use std::process::{Command, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

fn good() -> Value {
    json!({
        "clients": {"cms": {
            "auth0Url": "https://tenant.example.test", "clientId": "id", "clientSecret": "secret",
            "redirectUrl": "/web-login/callback", "scopes": ["offline_access", "profile", "email", "website"],
            "audience": "", "supportedConnections": [], "defaultConnection": ""
        }},
        "defaultClient": "",
        "managementClient": {
            "auth0Url": "https://tenant.example.test", "clientId": "m", "clientSecret": "s",
            "supportedConnectionsMap": {"foo": {"connectionId": "bar"}},
            "defaultManagementConnectionName": "foo"
        },
        "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata"]
    })
}

fn command(dir: &TempDir, env: &[(&str, &str)]) -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_auth0-client"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("SERVICE_CONFIG_PATH", dir.path())
        .env("SERVICE_CONFIG_FILE_NAME", "config")
        .env("HTTP_PORT", "0")
        .stdin(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

/// Runs the binary with `config` and returns (exit code, stdout + stderr).
fn refused(config: &str, env: &[(&str, &str)]) -> (Option<i32>, String) {
    let dir = TempDir::new("cfg");
    std::fs::write(dir.path().join("config.json"), config).unwrap();
    let out = command(&dir, env).output().expect("running auth0-client");
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

/// The four variables of the MongoDB user sync.
fn mongo<'a>(url: &'a str, properties: &'a str) -> Vec<(&'a str, &'a str)> {
    vec![
        ("MONGO_DB_URL", url),
        ("USERS_DATABASE_NAME", "crud"),
        ("USERS_COLLECTION_NAME", "users"),
        ("USERS_PROPERTIES_TO_SAVE", properties),
    ]
}

#[test]
fn every_startup_rule_names_the_key() {
    let edit = |f: &dyn Fn(&mut Value)| {
        let mut v = good();
        f(&mut v);
        v.to_string()
    };
    type Env<'a> = Vec<(&'a str, &'a str)>;
    let cases: Vec<(String, Env, &str)> = vec![
        ("{not json".into(), vec![], "config.json"),
        (edit(&|v| v["unknown"] = json!(1)), vec![], "unknown"),
        (edit(&|v| v["defaultClient"] = json!("web")), vec![], "defaultClient"),
        (edit(&|v| v["clients"]["cms"]["defaultConnection"] = json!("db")), vec![], "clients.cms.defaultConnection"),
        (
            edit(&|v| {
                v["managementClient"] = json!({"auth0Url": "https://t.test", "clientId": "a", "clientSecret": "b",
                    "supportedConnections": ["db"], "defaultCreateUserConnection": "other"})
            }),
            vec![],
            "managementClient.defaultCreateUserConnection",
        ),
        (
            edit(&|v| v["managementClient"]["defaultManagementConnectionName"] = json!("nope")),
            vec![],
            "managementClient.defaultManagementConnectionName",
        ),
        (edit(&|v| v["managementClient"]["supportedConnections"] = json!(["foo"])), vec![], "managementClient"),
        (edit(&|v| v["clients"]["cms"]["scopes"] = json!("website")), vec![], "clients.cms.scopes"),
        (edit(&|v| v["clients"]["cms"]["sameSite"] = json!("strict")), vec![], "clients.cms.sameSite"),
        (
            edit(&|v| v["clients"]["cms"]["supportedSigningAlgs"] = json!(["none"])),
            vec![],
            "clients.cms.supportedSigningAlgs[0]",
        ),
        (edit(&|v| v["clients"]["cms"].as_object_mut().unwrap().clear()), vec![], "clients.cms.auth0Url"),
        (edit(&|v| v.as_object_mut().unwrap().remove("clients").map(|_| ()).unwrap()), vec![], "clients"),
        (good().to_string(), vec![("REDIS_HOSTS", "r"), ("REDIS_MODE", "cluster")], "REDIS_MODE"),
        (good().to_string(), vec![("REDIS_HOSTS", "r"), ("REDIS_MODE", "sentinel")], "REDIS_MASTER_NAME"),
        (good().to_string(), vec![("LOG_LEVEL", "chatty")], "LOG_LEVEL"),
        (good().to_string(), vec![("SESSION_DURATION_SECONDS", "a day")], "SESSION_DURATION_SECONDS"),
        (good().to_string(), mongo("mongodb://admin:hunter2@mongo:port/", "email"), "MONGO_DB_URL"),
        (good().to_string(), mongo("mongo.internal:27017", "email"), "MONGO_DB_URL"),
        (good().to_string(), mongo("mongodb://mongo/", "email,$where"), "USERS_PROPERTIES_TO_SAVE"),
    ];
    for (config, env, key) in cases {
        let (code, text) = refused(&config, &env);
        assert!(code.is_some_and(|c| c != 0), "{key}: exit {code:?}\n{text}");
        assert!(text.contains(key), "{key} not named:\n{text}");
        assert!(!text.contains("panicked"), "{text}");
        assert!(!text.contains("hunter2"), "a password in MONGO_DB_URL is never printed: {text}");
    }
    // A missing file and missing variables are named too.
    let dir = TempDir::new("cfg");
    let out = command(&dir, &[]).output().unwrap();
    assert_ne!(out.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&out.stderr).contains("SERVICE_CONFIG_PATH"));
    let out = command(&dir, &[]).env_remove("SERVICE_CONFIG_FILE_NAME").output().unwrap();
    assert!(String::from_utf8_lossy(&out.stderr).contains("SERVICE_CONFIG_FILE_NAME"));
}

#[test]
fn starts_logs_and_stops_on_sigterm() {
    let dir = TempDir::new("cfg");
    let mut config = good();
    // Doc examples put this here: tolerated with a warning.
    config["managementClient"]["authorizeStateRequired"] = json!(true);
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    let mut child = command(&dir, &[("DELAY_SHUTDOWN_SECONDS", "0"), ("MONGO_DB_URL", "mongodb://nowhere/")])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let output = Arc::new(Mutex::new(Vec::new()));
    let (tx, rx) = mpsc::channel();
    collect_lines(child.stdout.take().unwrap(), output.clone(), Some(("auth0-client listening", tx)));
    collect_lines(child.stderr.take().unwrap(), output.clone(), None);
    let line = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| panic!("{:?}", output.lock().unwrap()));
    let log: Value = serde_json::from_str(&line).expect("a JSON log line");
    assert_eq!(log["level"], 30);
    assert!(log["time"].as_i64().unwrap() > 1_600_000_000_000, "epoch milliseconds");
    let lines = output.lock().unwrap().clone();
    let has = |needle: &str| lines.iter().any(|l| l.contains(needle));
    assert!(has("REDIS_HOSTS is not set"), "the in-memory store is announced: {lines:?}");
    assert!(has("MongoDB user sync is off: USERS_DATABASE_NAME"), "a partial set is a warning: {lines:?}");
    assert!(has("managementClient.authorizeStateRequired is ignored"), "{lines:?}");
    let status = Command::new("kill").args(["-TERM", &child.id().to_string()]).status().unwrap();
    assert!(status.success());
    let mut exited = None;
    for _ in 0..100 {
        if let Some(s) = child.try_wait().unwrap() {
            exited = Some(s);
            break;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    let exited = exited.unwrap_or_else(|| {
        let _ = child.kill();
        panic!("no exit after SIGTERM: {:?}", output.lock().unwrap())
    });
    assert!(exited.success(), "{exited:?}");
}
