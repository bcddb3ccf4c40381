//! The deployment files under `deploy/`: the Kubernetes manifests pass the Kubernetes schemas
//! (kubernetes-validate, strict, offline; installed by scripts/install-test-deps), and what they
//! configure really runs: the idp from the tenant ConfigMap as the pod mounts it, auth0-client
//! from the config.json and environment the manifest gives it, started through the image's
//! `auth0-client` link to this binary. Their probes answer 200 on the paths the manifests name.

use crate::support::{TempDir, free_port, gatehouse_command, require_file, spawn_collecting, workspace};
use serde_json::Value;
use std::path::{Path, PathBuf};
use std::time::Duration;

const START_TIMEOUT: Duration = Duration::from_secs(60);

fn manifests() -> Vec<PathBuf> {
    let dir = workspace().join("deploy/kubernetes");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "yaml"))
        .collect();
    files.sort();
    assert!(files.len() >= 2, "{files:?}");
    files
}

/// Every object of a manifest file, as JSON.
fn objects(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|doc| serde::Deserialize::deserialize(doc).unwrap())
        .filter(|v: &Value| !v.is_null())
        .collect()
}

fn object<'a>(all: &'a [Value], kind: &str, name: &str) -> &'a Value {
    all.iter()
        .find(|o| o["kind"] == kind && o["metadata"]["name"] == name)
        .unwrap_or_else(|| panic!("no {kind} {name}"))
}

fn container(deployment: &Value) -> &Value {
    &deployment["spec"]["template"]["spec"]["containers"][0]
}

fn probe_path(c: &Value, probe: &str) -> String {
    c[probe]["httpGet"]["path"].as_str().unwrap_or_else(|| panic!("{probe}: {c}")).to_string()
}

/// GET over plain HTTP/1.1 (what the kubelet does), the status code.
async fn status(url: &str) -> u16 {
    reqwest::Client::builder().no_proxy().build().unwrap().get(url).send().await.unwrap().status().as_u16()
}

#[test]
fn manifests_pass_the_kubernetes_schemas() {
    let validator = workspace().join("tests/python/.venv-k8s/bin/kubernetes-validate");
    require_file(&validator, "kubernetes-validate");
    let out = std::process::Command::new(&validator).arg("--strict").arg("--quiet").args(manifests()).output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "{text}");
    // The validator does fail on a bad manifest (an unknown probe field).
    let dir = TempDir::new("k8s");
    let bad = dir.path().join("bad.yaml");
    let text = std::fs::read_to_string(workspace().join("deploy/kubernetes/idp.yaml")).unwrap();
    std::fs::write(&bad, text.replacen("periodSeconds:", "periodSecond:", 1)).unwrap();
    let out = std::process::Command::new(&validator).arg("--strict").arg("--quiet").arg(&bad).output().unwrap();
    assert!(!out.status.success(), "the validator accepted an unknown field");
}

#[tokio::test]
async fn the_idp_manifest_runs_as_written() {
    let all = objects(&workspace().join("deploy/kubernetes/idp.yaml"));
    let deployment = object(&all, "Deployment", "idp");
    assert_eq!(deployment["spec"]["replicas"], 3);
    let c = container(deployment);
    assert_eq!(c["command"], serde_json::json!(["gatehouse", "idp"]));
    let env = |name: &str| -> String {
        c["env"]
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["name"] == name)
            .and_then(|e| e["value"].as_str())
            .unwrap_or_default()
            .into()
    };
    assert!(env("GATEHOUSE_PUBLIC_URL").starts_with("https://"));
    assert!(env("GATEHOUSE_LISTEN").ends_with(&format!(":{}", c["ports"][0]["containerPort"])));

    // The ConfigMap's tenant is the example's, laid out as the pod's volume items say.
    let tenant = object(&all, "ConfigMap", "idp-tenant");
    let volume = deployment["spec"]["template"]["spec"]["volumes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["configMap"]["name"] == "idp-tenant")
        .unwrap();
    let mount = c["volumeMounts"].as_array().unwrap().iter().find(|m| m["name"] == volume["name"]).unwrap();
    let root = TempDir::new("k8s-tenant");
    for item in volume["configMap"]["items"].as_array().unwrap() {
        let text = tenant["data"][item["key"].as_str().unwrap()].as_str().unwrap();
        let path = root.path().join(item["path"].as_str().unwrap());
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(&path, text).unwrap();
    }
    let example = workspace().join("examples/cms-tenant");
    for file in ["tenant.yaml", "actions/inject-id-token/code.js"] {
        assert_eq!(
            std::fs::read_to_string(root.path().join(file)).unwrap(),
            std::fs::read_to_string(example.join(file)).unwrap(),
            "{file} differs from examples/cms-tenant"
        );
    }
    let tenant_file = root.path().join(
        env("GATEHOUSE_TENANT").strip_prefix(mount["mountPath"].as_str().unwrap()).unwrap().trim_start_matches('/'),
    );

    // It starts from there (development keywords: the Secret's are placeholders) and its
    // probes answer on the manifest's paths.
    let data = TempDir::new("k8s-idp");
    let port = free_port();
    let mut cmd = gatehouse_command();
    cmd.arg("idp")
        .env("GATEHOUSE_TENANT", &tenant_file)
        .env("GATEHOUSE_KEYWORDS", example.join("dev.env"))
        .env("GATEHOUSE_LISTEN", format!("127.0.0.1:{port}"))
        .env("GATEHOUSE_DATA", data.path());
    let (mut child, output, ready) = spawn_collecting(&mut cmd, "idp listening on ");
    let started = ready.recv_timeout(START_TIMEOUT);
    let result = async {
        started.map_err(|e| format!("no start: {e}"))?;
        for probe in ["livenessProbe", "readinessProbe"] {
            let path = probe_path(c, probe);
            let code = status(&format!("http://127.0.0.1:{port}{path}")).await;
            if code != 200 {
                return Err(format!("{probe} {path}: {code}"));
            }
        }
        Ok(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        panic!("{e}\n{}", output.lock().unwrap().join("\n"));
    }
}

#[tokio::test]
async fn the_auth0_client_manifest_runs_as_written() {
    let all = objects(&workspace().join("deploy/kubernetes/auth0-client.yaml"));
    let deployment = object(&all, "Deployment", "auth0-client");
    let c = container(deployment);
    assert!(c.get("command").is_none() && c.get("args").is_none(), "the image's default command runs");
    let settings = object(&all, "ConfigMap", "auth0-client")["data"].as_object().unwrap().clone();
    let secret = object(&all, "Secret", "auth0-client")["stringData"].as_object().unwrap().clone();
    assert_eq!(settings["HTTP_PORT"].as_str().unwrap(), c["ports"][0]["containerPort"].to_string());

    // config.json where SERVICE_CONFIG_PATH says, the ConfigMap as the environment, the
    // Secret's MONGO_DB_URL (its host does not resolve here: the sync is best-effort and
    // connects lazily, so the start does not depend on it); Redis is the test machine's.
    let dir = TempDir::new("k8s-a0c");
    let config_dir = dir.path().join("configs");
    std::fs::create_dir_all(&config_dir).unwrap();
    std::fs::write(config_dir.join("config.json"), secret["config.json"].as_str().unwrap()).unwrap();
    // The image's link: this binary, called auth0-client.
    let link = dir.path().join("auth0-client");
    std::os::unix::fs::symlink(env!("CARGO_BIN_EXE_gatehouse"), &link).unwrap();
    let port = free_port();
    let mut cmd = std::process::Command::new(&link);
    cmd.env_clear().env("PATH", std::env::var_os("PATH").unwrap_or_default());
    for (k, v) in &settings {
        cmd.env(k, v.as_str().unwrap());
    }
    cmd.env("SERVICE_CONFIG_PATH", &config_dir)
        .env("HTTP_PORT", port.to_string())
        .env("REDIS_HOSTS", "127.0.0.1:6379")
        .env("SESSION_SCOPE", format!("k8s-test-{}", std::process::id()))
        .env("MONGO_DB_URL", secret["MONGO_DB_URL"].as_str().unwrap())
        .env("DELAY_SHUTDOWN_SECONDS", "0");
    let (mut child, output, ready) = spawn_collecting(&mut cmd, "{");
    let result = async {
        let mut line = ready.recv_timeout(START_TIMEOUT).map_err(|e| format!("no start: {e}"))?;
        // JSON log lines; the one saying it listens comes after the configuration was accepted.
        while !line.contains("auth0-client listening") {
            line = ready.recv_timeout(START_TIMEOUT).map_err(|e| format!("no start: {e}"))?;
        }
        let lines = output.lock().unwrap().join("\n");
        if !lines.contains("MongoDB user sync on") {
            return Err("the user sync is not on".into());
        }
        for probe in ["livenessProbe", "readinessProbe"] {
            let path = probe_path(c, probe);
            let code = status(&format!("http://127.0.0.1:{port}{path}")).await;
            if code != 200 {
                return Err(format!("{probe} {path}: {code}"));
            }
        }
        Ok::<(), String>(())
    }
    .await;
    let _ = child.kill();
    let _ = child.wait();
    if let Err(e) = result {
        panic!("{e}\n{}", output.lock().unwrap().join("\n"));
    }
}
