//! Users-import jobs (`/api/v2/jobs`): Auth0's multipart upload, the background run with
//! per-row errors, upsert, the refusals, and a job that outlives the node it was queued on.

use crate::harness::*;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;

const BCRYPT_OF_SECRET: &str = "$2b$04$cjfc9H1Kh3.q2y1PG5.5zuT4/mJkh0vUnYSfoto5WSiluo1UKm8iC"; // "Imported-Passw0rd!"

/// One part of a multipart upload: (name, file name, content).
type Part<'a> = (&'a str, Option<&'a str>, &'a [u8]);

/// A multipart/form-data body as the SDKs send it.
fn multipart(parts: &[Part<'_>]) -> (String, Vec<u8>) {
    let boundary = "----gatehouse-test-boundary-7MA4YWxkTrZu0gW";
    let mut body = Vec::new();
    for (name, file, content) in parts {
        body.extend_from_slice(format!("--{boundary}\r\n").as_bytes());
        match file {
            Some(f) => body.extend_from_slice(
                format!(
                    "Content-Disposition: form-data; name=\"{name}\"; filename=\"{f}\"\r\nContent-Type: application/json\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(format!("Content-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes()),
        }
        body.extend_from_slice(content);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

pub(crate) async fn upload(t: &TestIdp, tok: &str, parts: &[Part<'_>]) -> (u16, Value) {
    let (content_type, body) = multipart(parts);
    let res = reqwest::Client::new()
        .post(t.url("api/v2/jobs/users-imports"))
        .bearer_auth(tok)
        .header("content-type", content_type)
        .body(body)
        .send()
        .await
        .unwrap();
    json(res).await
}

pub(crate) async fn get(t: &TestIdp, tok: &str, path: &str) -> (u16, Value) {
    let res = reqwest::Client::new().get(t.url(&format!("api/v2/{path}"))).bearer_auth(tok).send().await.unwrap();
    let status = res.status().as_u16();
    let text = res.text().await.unwrap();
    (status, if text.is_empty() { Value::Null } else { serde_json::from_str(&text).unwrap() })
}

pub(crate) async fn connection_id(t: &TestIdp, name: &str) -> String {
    t.idp.store.connection_by_name(name).await.unwrap().unwrap().id
}

/// Polls the job until it is over (a few seconds at most).
pub(crate) async fn wait_done(t: &TestIdp, tok: &str, id: &str) -> Value {
    for _ in 0..200 {
        let (status, job) = get(t, tok, &format!("jobs/{id}")).await;
        assert_eq!(status, 200, "{job}");
        if matches!(job["status"].as_str(), Some("completed" | "failed")) {
            return job;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("job {id} did not finish");
}

async fn password_login(t: &TestIdp, email: &str, password: &str) -> u16 {
    reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "http://auth0.com/oauth/grant-type/password-realm"),
            ("realm", "dev-users"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("username", email),
            ("password", password),
        ])
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

#[tokio::test]
async fn import_job_imports_good_rows_and_reports_broken_ones() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let con = connection_id(&t, "dev-users").await;
    let file = json!([
        {"email": "Imported.One@example.test", "email_verified": true, "password_hash": BCRYPT_OF_SECRET,
         "app_metadata": {"groups": ["editor"]}, "user_metadata": {"tag": "##LITERAL##"}},
        {"email": "two@example.test", "user_id": "custom-two", "given_name": "Two"},
        {"email": "not-an-email"},
        {"name": "no email"},
        {"email": kw("ADMIN_EMAIL"), "name": "Admin again"},
        {"email": "bad-hash@example.test", "custom_password_hash": {"algorithm": "md5", "hash": {"value": "5f4dcc3b5aa765d61d8327deb882cf99", "encoding": "hex"}}},
        "not an object"
    ])
    .to_string();
    let (status, job) = upload(
        &t,
        &tok,
        &[
            ("users", Some("users.json"), file.as_bytes()),
            ("connection_id", None, con.as_bytes()),
            ("upsert", None, b"false"),
            ("external_id", None, b"batch-42"),
            ("send_completion_email", None, b"false"),
        ],
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("job_") && id.len() == 20, "{id}");
    assert_eq!(job["type"], "users_import");
    assert_eq!(job["status"], "pending");
    assert_eq!(job["connection"], "dev-users");
    assert_eq!(job["connection_id"], con.as_str());
    assert_eq!(job["external_id"], "batch-42");
    assert!(job["created_at"].as_str().unwrap().ends_with('Z'));
    assert!(job.as_object().unwrap().keys().all(|k| !k.starts_with('_')), "no internal state: {job}");

    let done = wait_done(&t, &tok, &id).await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["summary"], json!({"failed": 5, "updated": 0, "inserted": 2, "total": 7}));
    assert_eq!(done["external_id"], "batch-42");

    let (status, errors) = get(&t, &tok, &format!("jobs/{id}/errors")).await;
    assert_eq!(status, 200, "{errors}");
    let errors = errors.as_array().unwrap();
    assert_eq!(errors.len(), 5, "{errors:?}");
    assert_eq!(errors[0]["user"], json!({"email": "not-an-email"}), "the row as written");
    assert_eq!(errors[0]["errors"][0]["code"], "INVALID_FORMAT");
    assert_eq!(errors[0]["errors"][0]["path"], "email");
    assert_eq!(errors[1]["errors"][0]["code"], "OBJECT_MISSING_REQUIRED_PROPERTY");
    assert_eq!(errors[2]["user"]["email"], kw("ADMIN_EMAIL").as_str());
    assert_eq!(errors[2]["errors"][0]["code"], "DUPLICATED_USER");
    assert_eq!(errors[2]["errors"][0]["message"], "The user already exist and upsert parameter is false");
    assert_eq!(errors[3]["errors"][0]["path"], "custom_password_hash.algorithm");
    assert_eq!(errors[4]["errors"][0]["code"], "INVALID_TYPE");

    // The imported users are there, as Auth0 would have made them, and can log in.
    let one = t.idp.store.user_by_login("dev-users", "imported.one@example.test").await.unwrap().unwrap();
    assert_eq!(one.user.email.as_deref(), Some("imported.one@example.test"), "DB emails are lower-cased");
    assert!(one.user.email_verified);
    assert_eq!(one.user.app_metadata["groups"], json!(["editor"]));
    assert_eq!(one.user.user_metadata["tag"], "##LITERAL##", "uploaded files are taken literally");
    assert!(one.user.user_id.starts_with("auth0|") && one.user.user_id.len() == 30, "{}", one.user.user_id);
    assert_eq!(password_login(&t, "imported.one@example.test", "Imported-Passw0rd!").await, 200);
    let two = t.idp.store.user("auth0|custom-two").await.unwrap().expect("user_id is kept, prefixed");
    assert_eq!(two.user.given_name.as_deref(), Some("Two"));
    let admin = t.idp.store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap();
    assert_eq!(admin.user.name.as_deref(), Some("CMS Administrator"), "untouched without upsert");

    // A clean file: no errors means 204; read:users may read jobs.
    let (status, job) = upload(
        &t,
        &tok,
        &[("users", Some("u.json"), br#"[{"email": "three@example.test"}]"#), ("connection_id", None, con.as_bytes())],
    )
    .await;
    assert_eq!(status, 202, "{job}");
    assert!(job.get("external_id").is_none());
    let id = job["id"].as_str().unwrap();
    wait_done(&t, &tok, id).await;
    let reader = management_token(&t, Some(&["read:users"])).await;
    let (status, body) = get(&t, &reader, &format!("jobs/{id}/errors")).await;
    assert_eq!((status, body), (204, Value::Null));
    let (status, body) = get(&t, &reader, &format!("jobs/{id}")).await;
    assert_eq!((status, body["summary"]["inserted"].as_u64()), (200, Some(1)));
    let (status, body) = get(&t, &reader, "jobs/job_0000000000000000").await;
    assert_eq!(status, 404);
    assert_eq!(body["errorCode"], "inexistent_job");
}

#[tokio::test]
async fn upsert_replaces_metadata_and_updates_upsertable_attributes_only() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let con = connection_id(&t, "dev-users").await;
    let before = t.idp.store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap();
    let file = json!([
        {"email": kw("ADMIN_EMAIL").to_uppercase(), "app_metadata": {"groups": ["editor"], "team": "a"},
         "given_name": "Chief", "password_hash": BCRYPT_OF_SECRET, "phone_number": "+390000000"},
        {"email": "new@example.test", "user_metadata": {"lang": "it"}}
    ])
    .to_string();
    let (status, job) = upload(
        &t,
        &tok,
        &[
            ("users", Some("u.json"), file.as_bytes()),
            ("connection_id", None, con.as_bytes()),
            ("upsert", None, b"true"),
        ],
    )
    .await;
    assert_eq!(status, 202, "{job}");
    let done = wait_done(&t, &tok, job["id"].as_str().unwrap()).await;
    assert_eq!(done["summary"], json!({"failed": 0, "updated": 1, "inserted": 1, "total": 2}), "{done}");
    let after = t.idp.store.user(&before.user.user_id).await.unwrap().unwrap();
    assert_eq!(after.user.app_metadata, json!({"groups": ["editor"], "team": "a"}).as_object().unwrap().clone());
    assert_eq!(after.user.given_name.as_deref(), Some("Chief"));
    assert_eq!(after.user.family_name, before.user.family_name, "attributes the row leaves out stay");
    assert_eq!(after.user.user_metadata, before.user.user_metadata);
    assert_eq!(after.user.phone_number, before.user.phone_number, "phone_number is not upsertable");
    assert_eq!(after.password_hash, before.password_hash, "password_hash counts on the first import only");
    assert_eq!(password_login(&t, &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await, 200);

    // Metadata is replaced wholesale, not merged.
    let file = json!([{"email": kw("ADMIN_EMAIL"), "app_metadata": {"groups": ["admin"]}}]).to_string();
    let (_, job) = upload(
        &t,
        &tok,
        &[
            ("users", Some("u.json"), file.as_bytes()),
            ("connection_id", None, con.as_bytes()),
            ("upsert", None, b"true"),
        ],
    )
    .await;
    wait_done(&t, &tok, job["id"].as_str().unwrap()).await;
    let after = t.idp.store.user(&before.user.user_id).await.unwrap().unwrap();
    assert_eq!(Value::Object(after.user.app_metadata), json!({"groups": ["admin"]}));
}

#[tokio::test]
async fn bad_uploads_get_auth0s_errors() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let con = connection_id(&t, "dev-users").await;
    let file: &[u8] = br#"[{"email": "x@example.test"}]"#;

    // 512000 bytes is the limit of the file; one more is Auth0's 413.
    let mut big = b"[{\"email\": \"big@example.test\", \"user_metadata\": {\"pad\": \"".to_vec();
    big.resize(512_001 - 4, b'x');
    big.extend_from_slice(b"\"}}]");
    assert_eq!(big.len(), 512_001);
    let (status, body) =
        upload(&t, &tok, &[("users", Some("u.json"), &big), ("connection_id", None, con.as_bytes())]).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(body["message"], "Payload content length greater than maximum allowed: 512000.");
    assert_eq!(body["statusCode"], 413);
    let huge = vec![b' '; 2_000_000];
    let (status, body) =
        upload(&t, &tok, &[("users", Some("u.json"), &huge), ("connection_id", None, con.as_bytes())]).await;
    assert_eq!((status, body["statusCode"].as_u64()), (413, Some(413)), "{body}");
    big.truncate(512_000 - 4);
    big.extend_from_slice(b"\"}}]");
    let (status, body) =
        upload(&t, &tok, &[("users", Some("u.json"), &big), ("connection_id", None, con.as_bytes())]).await;
    assert_eq!(status, 202, "exactly 512000 bytes is accepted: {body}");

    let google = connection_id(&t, "google-oauth2").await;
    let cases: Vec<(Vec<Part<'_>>, &str)> = vec![
        (vec![("connection_id", None, con.as_bytes())], "users"),
        (vec![("users", Some("u.json"), b"  "), ("connection_id", None, con.as_bytes())], "empty"),
        (vec![("users", Some("u.json"), file)], "connection_id"),
        (vec![("users", Some("u.json"), file), ("connection_id", None, b"dev-users")], "pattern"),
        (vec![("users", Some("u.json"), file), ("connection_id", None, b"con_0000000000000000")], "exist"),
        (vec![("users", Some("u.json"), file), ("connection_id", None, google.as_bytes())], "database"),
        (
            vec![("users", Some("u.json"), file), ("connection_id", None, con.as_bytes()), ("upsert", None, b"maybe")],
            "boolean",
        ),
        (
            vec![
                ("users", Some("u.json"), b"{\"email\": \"x@example.test\"}"),
                ("connection_id", None, con.as_bytes()),
            ],
            "array",
        ),
        (vec![("users", Some("u.json"), b"[{"), ("connection_id", None, con.as_bytes())], "JSON"),
    ];
    for (parts, needle) in cases {
        let (status, body) = upload(&t, &tok, &parts).await;
        assert_eq!(status, 400, "{needle}: {body}");
        assert_eq!(body["statusCode"], 400);
        assert!(body["message"].as_str().unwrap().contains(needle), "{needle}: {body}");
    }
    // A database connection enabled for no application is disabled.
    let mut lonely = t.idp.store.connection_by_name("prod-users").await.unwrap().unwrap();
    lonely.enabled_clients.clear();
    t.idp.store.put_connection(&lonely).await.unwrap();
    let (status, body) =
        upload(&t, &tok, &[("users", Some("u.json"), file), ("connection_id", None, lonely.id.as_bytes())]).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("disabled"), "{body}");
    // Not multipart at all.
    let res = reqwest::Client::new()
        .post(t.url("api/v2/jobs/users-imports"))
        .bearer_auth(&tok)
        .json(&json!({"users": []}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);

    // Scopes: create:users to import; read:users is not enough.
    let reader = management_token(&t, Some(&["read:users"])).await;
    let (status, body) =
        upload(&t, &reader, &[("users", Some("u.json"), file), ("connection_id", None, con.as_bytes())]).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["message"], "Insufficient scope, expected any of: create:users");
    let (status, _) = get(&t, &management_token(&t, Some(&["read:clients"])).await, "jobs/job_0000000000000000").await;
    assert_eq!(status, 403);
}

/// Auth0 runs two import jobs of a tenant at once; a third upload gets its 429 until one ends.
#[tokio::test]
async fn a_third_concurrent_job_is_refused_until_one_ends() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let con = connection_id(&t, "dev-users").await;
    // Two jobs running (on another node: their heartbeats are fresh, so nobody resumes them).
    let running = |id: &str| {
        let now = idp::util::now_ms();
        import_job(id, &con, store::JobStatus::Processing, now, now, 1)
    };
    for id in ["job_ActiveActive0001", "job_ActiveActive0002"] {
        t.idp.store.create_import_job(&running(id), "[]").await.unwrap();
    }
    let file: &[u8] = br#"[{"email": "third@example.test", "email_verified": true}]"#;
    let parts: &[Part<'_>] = &[("users", Some("u.json"), file), ("connection_id", None, con.as_bytes())];
    let (status, body) = upload(&t, &tok, parts).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        body,
        json!({"statusCode": 429, "error": "Too Many Requests", "errorCode": "too_many_requests",
            "message": "There are 2 active import users jobs, please wait until some of them are finished and try again"})
    );
    // A refused upload queues nothing.
    assert_eq!(t.idp.store.import_jobs().await.unwrap().len(), 2);

    // One ends: the next upload is queued and runs.
    let mut done = running("job_ActiveActive0001");
    done.status = store::JobStatus::Completed;
    assert!(t.idp.store.save_import_job(&done, None).await.unwrap());
    let (status, body) = upload(&t, &tok, parts).await;
    assert_eq!(status, 202, "{body}");
    let job = wait_done(&t, &tok, body["id"].as_str().unwrap()).await;
    assert_eq!((job["status"].as_str(), job["summary"]["inserted"].as_u64()), (Some("completed"), Some(1)), "{job}");
    // Two at once from one caller: at most one more fits beside the running job.
    let (a, b) = tokio::join!(upload(&t, &tok, parts), upload(&t, &tok, parts));
    let mut statuses = [a.0, b.0];
    statuses.sort_unstable();
    assert!(matches!(statuses, [202, 202] | [202, 429]), "{statuses:?}");
}

/// A job queued by a node that stopped before running it: the next node on the same database
/// picks it up and finishes it; a job past its attempts is marked failed instead.
#[tokio::test]
async fn a_job_survives_a_restart() {
    let dir = temp_dir("jobs-restart");
    let url = format!("sqlite://{}", dir.join("gatehouse.db").display());
    let first = start_on(Arc::new(store::SqlStore::connect(&url).await.unwrap()), true, |_| {}).await;
    let con = connection_id(&first, "dev-users").await;
    let file = json!([{"email": "survivor@example.test", "password_hash": BCRYPT_OF_SECRET}, {"email": "broken"}]);
    // What POST /jobs/users-imports stores before answering 202, for a node that then died.
    let store = &first.idp.store;
    let pending =
        |id: &str, attempts: u64| import_job(id, &con, store::JobStatus::Pending, idp::util::now_ms(), 0, attempts);
    store.create_import_job(&pending("job_RestartRestart00", 1), &file.to_string()).await.unwrap();
    store.create_import_job(&pending("job_GivenUpGivenUp00", 3), "[]").await.unwrap();
    // The next node opens the sealed signing keys with the same secrets key.
    let key = first.idp.config.secrets_key_path();
    drop(first);

    // Provisioning again is idempotent; it grants the M2M app the new node's audience.
    let second =
        start_on(Arc::new(store::SqlStore::connect(&url).await.unwrap()), true, |c| c.secrets_key = Some(key)).await;
    let resumer = second.idp.resume_jobs();
    let tok = management_token(&second, None).await;
    let done = wait_done(&second, &tok, "job_RestartRestart00").await;
    assert_eq!(done["status"], "completed", "{done}");
    assert_eq!(done["summary"], json!({"failed": 1, "updated": 0, "inserted": 1, "total": 2}));
    assert_eq!(password_login(&second, "survivor@example.test", "Imported-Passw0rd!").await, 200);
    let given_up = wait_done(&second, &tok, "job_GivenUpGivenUp00").await;
    assert_eq!(given_up["status"], "failed", "{given_up}");
    assert!(second.idp.store.import_job_file("job_RestartRestart00").await.unwrap().is_none(), "file deleted");
    assert!(second.idp.store.import_job_file("job_GivenUpGivenUp00").await.unwrap().is_none(), "file deleted");
    resumer.abort();
}

/// A job as `POST /jobs/users-imports` stores it, for a node that then ran it or died.
fn import_job(
    id: &str,
    connection_id: &str,
    status: store::JobStatus,
    created_at: i64,
    heartbeat: i64,
    attempts: u64,
) -> store::ImportJob {
    store::ImportJob {
        id: id.into(),
        connection_id: connection_id.into(),
        connection: "dev-users".into(),
        status,
        created_at,
        external_id: None,
        upsert: false,
        send_completion_email: true,
        heartbeat,
        attempts,
        next_row: 0,
        summary: None,
        percentage_done: None,
        time_left_seconds: None,
        status_details: None,
    }
}
