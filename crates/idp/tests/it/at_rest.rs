//! Secrets at rest: outbox mails are private files.

use crate::harness::*;
use serde_json::json;
use std::path::Path;

#[cfg(unix)]
#[tokio::test]
async fn outbox_mails_are_private_files() {
    use std::os::unix::fs::PermissionsExt;
    let t = start().await;
    let res = reqwest::Client::new()
        .post(t.url("dbconnections/change_password"))
        .json(&json!({"client_id": kw("CMS_CLIENT_ID"), "email": kw("USER_EMAIL"), "connection": "dev-users"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let outbox = t.data.join("outbox");
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(&outbox), 0o700, "the outbox directory");
    let mails: Vec<_> = std::fs::read_dir(&outbox).unwrap().map(|e| e.unwrap().path()).collect();
    assert_eq!(mails.len(), 1);
    assert_eq!(mode(&mails[0]), 0o600, "a mail holds a live reset link");
}
