//! The other Redis modes against real servers this test starts on its own ports (the machine's
//! `redis-server` binary, never the machine's Redis): `REDIS_MODE=sentinel` with a sentinel and
//! a master, normal mode with several hosts (a Redis Cluster), and ACL credentials.

use crate::support::*;
use serde_json::json;
use std::process::{Child, Command, Stdio};
use std::time::Duration;

/// A `redis-server` child, killed when dropped.
struct Server {
    child: Child,
    port: u16,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A free port whose cluster bus port (+10000) is valid too.
fn port() -> u16 {
    loop {
        let p = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        if p < 55000 {
            return p;
        }
    }
}

async fn start(config: &str, sentinel: bool) -> Server {
    let dir = TempDir::new("redis");
    let port = port();
    let conf = dir.path().join("redis.conf");
    std::fs::write(
        &conf,
        format!("port {port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {}\n{config}\n", dir.path().display()),
    )
    .unwrap();
    let mut cmd = Command::new("redis-server");
    cmd.arg(&conf);
    if sentinel {
        cmd.arg("--sentinel");
    }
    let child = cmd.stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("redis-server is installed");
    let server = Server { child, port, _dir: dir };
    let client = redis::Client::open(format!("redis://127.0.0.1:{port}/")).unwrap();
    eventually("redis-server answers", 100, Duration::from_millis(50), || {
        let client = client.clone();
        async move {
            match client.get_multiplexed_async_connection().await {
                Ok(mut c) => match redis::cmd("PING").query_async::<String>(&mut c).await {
                    Ok(_) => true,
                    // Up, but wanting credentials (the ACL test).
                    Err(e) => e.to_string().contains("NOAUTH") || e.to_string().contains("AUTH"),
                },
                Err(e) => e.to_string().contains("AUTH"),
            }
        }
    })
    .await;
    server
}

async fn session_roundtrip(svc: &Service, idp: &Idp) {
    let sid = website_login(idp, svc, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    let (status, info) = json(get_with_sid(svc, "/userinfo", &sid).await).await;
    assert_eq!(status, 200, "{info}");
    let (_, active) = json(reqwest::get(svc.url("/users/active")).await.unwrap()).await;
    assert_eq!(active, json!([{"userId": info["sub"]}]));
    assert_eq!(reqwest::get(svc.url("/-/ready")).await.unwrap().status(), 200);
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(svc.url("/logout"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(get_with_sid(svc, "/userinfo", &sid).await.status(), 401);
}

#[tokio::test(flavor = "multi_thread")]
async fn sentinel_mode() {
    let master = start("", false).await;
    let sentinel = start(
        &format!(
            "sentinel monitor gh-master 127.0.0.1 {} 1\nsentinel down-after-milliseconds gh-master 5000",
            master.port
        ),
        true,
    )
    .await;
    let idp = tokio::task::spawn_blocking(Idp::start).await.unwrap();
    let id = idp.connection_id("dev-users").await;
    let hosts = format!("127.0.0.1:{}", sentinel.port);
    let svc = start_service(
        Store::RedisAt(hosts.clone()),
        config_json(&idp, &id),
        &[("REDIS_MODE", "sentinel"), ("REDIS_MASTER_NAME", "gh-master"), ("REDIS_HOSTS", &hosts)],
    )
    .await;
    session_roundtrip(&svc, &idp).await;
    // The keys go to the master the sentinel named (a login state lives there 600 s).
    let res = browser().get(svc.url("/authorize?state=probe")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let mut c = redis::Client::open(format!("redis://127.0.0.1:{}/", master.port))
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    let keys: Vec<String> =
        redis::cmd("KEYS").arg(format!("auth0-client:{}:*", svc.scope)).query_async(&mut c).await.unwrap();
    assert_eq!(keys, vec![format!("auth0-client:{}:state:probe", svc.scope)]);
}

#[tokio::test(flavor = "multi_thread")]
async fn several_hosts_are_a_cluster() {
    let mut nodes = Vec::new();
    for _ in 0..3 {
        nodes
            .push(start("cluster-enabled yes\ncluster-node-timeout 5000\ncluster-config-file nodes.conf", false).await);
    }
    let addrs: Vec<String> = nodes.iter().map(|n| format!("127.0.0.1:{}", n.port)).collect();
    let out = Command::new("redis-cli")
        .arg("--cluster")
        .arg("create")
        .args(&addrs)
        .args(["--cluster-replicas", "0", "--cluster-yes"])
        .output()
        .expect("redis-cli");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
    let probe = redis::Client::open(format!("redis://{}/", addrs[0])).unwrap();
    eventually("the cluster is ok", 100, Duration::from_millis(100), || {
        let probe = probe.clone();
        async move {
            let Ok(mut c) = probe.get_multiplexed_async_connection().await else { return false };
            let info: String = redis::cmd("CLUSTER").arg("INFO").query_async(&mut c).await.unwrap_or_default();
            info.contains("cluster_state:ok")
        }
    })
    .await;
    let idp = tokio::task::spawn_blocking(Idp::start).await.unwrap();
    let id = idp.connection_id("dev-users").await;
    let svc = start_service(Store::RedisAt(addrs.join(",")), config_json(&idp, &id), &[]).await;
    session_roundtrip(&svc, &idp).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn acl_username_and_password() {
    let server = start("user default off\nuser gh-app on >gh-secret ~* &* +@all", false).await;
    let idp = tokio::task::spawn_blocking(Idp::start).await.unwrap();
    let id = idp.connection_id("dev-users").await;
    let addr = format!("127.0.0.1:{}", server.port);
    let wrong = start_service(
        Store::RedisAt(addr.clone()),
        config_json(&idp, &id),
        &[("REDIS_USERNAME", "gh-app"), ("REDIS_PASSWORD", "not-it")],
    )
    .await;
    assert_eq!(reqwest::get(wrong.url("/-/ready")).await.unwrap().status(), 503, "a wrong password is not ready");
    let svc = start_service(
        Store::RedisAt(addr),
        config_json(&idp, &id),
        &[("REDIS_USERNAME", "gh-app"), ("REDIS_PASSWORD", "gh-secret")],
    )
    .await;
    session_roundtrip(&svc, &idp).await;
}

/// Runs `openssl` with `args` in `dir`; the certificates of the TLS test come from it.
fn openssl(dir: &std::path::Path, args: &[&str]) {
    let out = Command::new("openssl").current_dir(dir).args(args).output().expect("openssl is installed");
    assert!(out.status.success(), "openssl {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_with_a_private_ca() {
    // A CA and a server certificate for 127.0.0.1, and a Redis that only speaks TLS.
    let dir = TempDir::new("redis-tls");
    let d = dir.path();
    openssl(
        d,
        &[
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "ca.key",
            "-out",
            "ca.pem",
            "-days",
            "1",
            "-subj",
            "/CN=gatehouse test CA",
        ],
    );
    openssl(
        d,
        &[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
            "-subj",
            "/CN=127.0.0.1",
        ],
    );
    std::fs::write(d.join("san.ext"), "subjectAltName=IP:127.0.0.1\n").unwrap();
    openssl(
        d,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-out",
            "server.pem",
            "-days",
            "1",
            "-extfile",
            "san.ext",
        ],
    );
    let tls_port = port();
    let conf = d.join("redis.conf");
    std::fs::write(
        &conf,
        format!(
            "port 0\ntls-port {tls_port}\nbind 127.0.0.1\nsave \"\"\nappendonly no\ndir {dir}\n\
             tls-cert-file {dir}/server.pem\ntls-key-file {dir}/server.key\ntls-ca-cert-file {dir}/ca.pem\ntls-auth-clients no\n",
            dir = d.display()
        ),
    )
    .unwrap();
    let child = Command::new("redis-server")
        .arg(&conf)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("redis-server");
    let _server = Server { child, port: tls_port, _dir: TempDir::new("redis-tls-data") };
    let ca = d.join("ca.pem");
    eventually("redis-server answers over TLS", 100, Duration::from_millis(50), || {
        let ca = ca.clone();
        async move {
            let out = Command::new("redis-cli")
                .args(["--tls", "--cacert"])
                .arg(&ca)
                .args(["-h", "127.0.0.1", "-p", &tls_port.to_string(), "PING"])
                .output();
            out.is_ok_and(|o| String::from_utf8_lossy(&o.stdout).contains("PONG"))
        }
    })
    .await;

    let idp = tokio::task::spawn_blocking(Idp::start).await.unwrap();
    let id = idp.connection_id("dev-users").await;
    let addr = format!("127.0.0.1:{tls_port}");
    let ca_path = ca.display().to_string();
    // Without the CA the server certificate is not trusted: not ready, never a crash.
    let untrusted = start_service(Store::RedisAt(addr.clone()), config_json(&idp, &id), &[("REDIS_TLS", "true")]).await;
    assert_eq!(reqwest::get(untrusted.url("/-/ready")).await.unwrap().status(), 503);
    let svc = start_service(
        Store::RedisAt(addr),
        config_json(&idp, &id),
        &[("REDIS_TLS", "true"), ("REDIS_TLS_CACERT", &ca_path)],
    )
    .await;
    session_roundtrip(&svc, &idp).await;
}
