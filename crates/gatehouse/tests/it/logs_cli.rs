//! `gatehouse logs tail | get` against a real `gatehouse idp --tls`, through the binary with the
//! same credentials as `tenant export`.

use crate::sdk_support::{ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET, Gatehouse, Tenant};
use crate::support::dev_env;
use crate::tenant_remote::{Run, gatehouse};
use serde_json::Value;
use std::time::{Duration, Instant};

fn logs(idp: &Gatehouse, args: &[&str]) -> Run {
    let ca = idp.ca_pem().display().to_string();
    let mut all: Vec<&str> = vec!["logs"];
    all.extend(args);
    all.extend(["--domain", &idp.domain, "--client-id", ADMIN_CLIENT_ID, "--client-secret", ADMIN_CLIENT_SECRET]);
    all.extend(["--ca-file", &ca]);
    gatehouse(&all, &[])
}

#[tokio::test]
async fn tail_and_get_print_the_tenants_events() {
    let idp = Gatehouse::start(Tenant::ExampleWithAdmin);
    let ca = reqwest::Certificate::from_pem(&std::fs::read(idp.ca_pem()).unwrap()).unwrap();
    let http = reqwest::Client::builder().add_root_certificate(ca).build().unwrap();
    let res = http
        .post(format!("https://{}/oauth/token", idp.domain))
        .form(&[
            ("grant_type", "password"),
            ("client_id", &dev_env("CMS_CLIENT_ID")),
            ("client_secret", &dev_env("CMS_CLIENT_SECRET")),
            ("username", &dev_env("USER_EMAIL")),
            ("password", "not-the-password"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 403);

    // Events reach the store within about a second.
    let deadline = Instant::now() + Duration::from_secs(10);
    let events: Vec<Value> = loop {
        let run = logs(&idp, &["tail", "--filter", "type:fp", "--json"]);
        assert!(run.ok, "{}", run.text());
        let events: Vec<Value> = run.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        if !events.is_empty() || Instant::now() > deadline {
            break events;
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["user_name"], dev_env("USER_EMAIL"));
    let id = events[0]["log_id"].as_str().unwrap();

    let run = logs(&idp, &["get", id]);
    assert!(run.ok, "{}", run.text());
    assert!(run.stdout.contains("  fp ") && run.stdout.contains(&format!("log_id={id}")), "{}", run.text());
    let run = logs(&idp, &["tail", "-n", "100"]);
    assert!(run.ok && run.stdout.lines().any(|l| l.contains("  fp ")), "{}", run.text());

    let run = logs(&idp, &["tail", "--filter", "type:(fp"]);
    assert!(!run.ok, "a malformed filter fails: {}", run.text());
    assert!(run.stderr.contains("400") && run.stderr.contains("missing ')'"), "{}", run.text());
    let run = logs(&idp, &["get", "900000"]);
    assert!(!run.ok && run.stderr.contains("404"), "{}", run.text());
}
