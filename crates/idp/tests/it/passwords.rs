//! Passwords over HTTP: login timing that does not tell which accounts exist, bcrypt's 72-byte
//! limit at every place a password is set or checked, what a new password ends (other reset
//! tickets, refresh tokens, SSO sessions), and the limits on reset mails.

use crate::harness::*;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

async fn post_json(t: &TestIdp, path: &str, body: Value) -> (u16, Value) {
    json(reqwest::Client::new().post(t.url(path)).json(&body).send().await.unwrap()).await
}

fn realm_login(username: &str, password: &str, realm: &str) -> Value {
    json!({
        "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
        "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"),
        "username": username, "password": password, "realm": realm, "scope": "openid",
    })
}

fn median(mut samples: Vec<Duration>) -> Duration {
    samples.sort();
    samples[samples.len() / 2]
}

/// Medians of `rounds` timings of `attempt` for each case, the cases taken in turn in every
/// round so that a change in the machine's load weighs on all of them alike.
async fn medians<F, Fut>(cases: &[&str], rounds: usize, attempt: F) -> Vec<Duration>
where
    F: Fn(String) -> Fut,
    Fut: std::future::Future<Output = ()>,
{
    let mut samples = vec![Vec::new(); cases.len()];
    for _ in 0..rounds {
        for (i, case) in cases.iter().enumerate() {
            let started = Instant::now();
            attempt(case.to_string()).await;
            samples[i].push(started.elapsed());
        }
    }
    samples.into_iter().map(median).collect()
}

/// Each case's median must be within a factor of 1.5 of the first case's (a known user with a
/// wrong password). Before every case cost a full hash, an unknown user answered ~25x faster.
fn assert_alike(what: &str, cases: &[&str], medians: &[Duration]) {
    let base = medians[0].as_secs_f64();
    for (case, m) in cases.iter().zip(medians).skip(1) {
        let ratio = m.as_secs_f64() / base;
        assert!(
            (1.0 / 1.5..=1.5).contains(&ratio),
            "{what}: {case} answers in {m:?}, a known user with a wrong password in {:?} (ratio {ratio:.2})",
            medians[0]
        );
    }
}

#[tokio::test]
async fn login_time_does_not_tell_which_accounts_exist() {
    // A real cost, so that the hash dominates each answer as it does in production; and no
    // brute-force block, which would end the known user's attempts before the hash.
    let t = start_on(sqlite_store().await, true, |c| {
        c.bcrypt_cost = 10;
        c.brute_force.max_attempts = 1_000_000;
    })
    .await;
    let tok = management_token(&t, None).await;
    for (connection, email, blocked) in
        [("dev-users", "blocked@example.test", true), ("prod-users", "elsewhere@example.test", false)]
    {
        let user = json!({"connection": connection, "email": email, "password": "Some-Passw0rd!", "blocked": blocked});
        let (status, body) = call(&t, &tok, reqwest::Method::POST, "users", Some(user)).await;
        assert_eq!(status, 201, "{body}");
    }
    // A user without a password (imported without one, as `--users` and import jobs allow).
    let file = temp_dir("nohash").join("users.json");
    std::fs::write(&file, r#"[{"email": "nohash@example.test"}]"#).unwrap();
    let users = tenant::load_users(&file, &keywords()).unwrap();
    assert!(idp::provision::import_users(&t.idp, "dev-users", &users).await.unwrap().errors.is_empty());

    let cases = [
        kw("USER_EMAIL"),
        "nobody@example.test".into(),
        "blocked@example.test".into(),
        "elsewhere@example.test".into(),
        "nohash@example.test".into(),
    ];
    let cases: Vec<&str> = cases.iter().map(String::as_str).collect();

    let http = reqwest::Client::new();
    let token = medians(&cases, 30, |user| {
        let req = http.post(t.url("oauth/token")).json(&realm_login(&user, "Wrong-Passw0rd!", "dev-users"));
        async move {
            let (status, body) = json(req.send().await.unwrap()).await;
            assert_eq!((status, body["error"].as_str()), (403, Some("invalid_grant")), "{user}: {body}");
        }
    })
    .await;
    assert_alike("/oauth/token", &cases, &token);

    // The login page: one transaction, the form posted again after each failure.
    let b = browser();
    let res = b.get(authorize_url(&t, &[])).send().await.unwrap();
    let page_url = t.url(&location(&res));
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    let (state, csrf) = (hidden(&html, "state").unwrap(), hidden(&html, "csrf").unwrap());
    let page = medians(&cases, 30, |user| {
        let form = [
            ("state", state.clone()),
            ("csrf", csrf.clone()),
            ("connection", "dev-users".into()),
            ("username", user.clone()),
            ("password", "Wrong-Passw0rd!".into()),
        ];
        let req = b.post(&page_url).form(&form);
        async move {
            let res = req.send().await.unwrap();
            assert_eq!(res.status(), 401, "{user}");
            assert!(res.text().await.unwrap().contains("Wrong email or password."), "{user}");
        }
    })
    .await;
    assert_alike("/u/login", &cases, &page);
}

/// 72 bytes that meet the `good` policy.
/// The brute-force block must not tell accounts apart either: were only real accounts
/// counted, the tenth wrong password would answer `too_many_attempts` for them alone.
#[tokio::test]
async fn the_brute_force_block_does_not_tell_which_accounts_exist() {
    let t = start().await;
    let mut answers = Vec::new();
    for email in [kw("USER_EMAIL"), "nobody@cms.example.test".to_string()] {
        let mut seen = Vec::new();
        for _ in 0..11 {
            let (status, body) =
                post_json(&t, "oauth/token", realm_login(&email, "wrong-Passw0rd!", "dev-users")).await;
            seen.push((status, body["error"].as_str().map(str::to_owned)));
        }
        answers.push(seen);
    }
    assert_eq!(answers[0][9], (429, Some("too_many_attempts".to_string())), "{:?}", answers[0]);
    assert_eq!(answers[0], answers[1], "a real account and an unknown one answer alike");
    // The same made-up name in other letters is the same name, as logins are.
    let (status, _) =
        post_json(&t, "oauth/token", realm_login("NOBODY@cms.example.test", "wrong-Passw0rd!", "dev-users")).await;
    assert_eq!(status, 429);
}

fn longest_password() -> String {
    "Aa1!".repeat(18)
}

#[tokio::test]
async fn a_stored_72_byte_password_does_not_log_in_with_a_suffix() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let password = longest_password();
    assert_eq!(password.len(), 72);
    let user = json!({"connection": "dev-users", "email": "long@example.test", "password": password});
    let (status, body) = call(&t, &tok, reqwest::Method::POST, "users", Some(user)).await;
    assert_eq!(status, 201, "{body}");

    let (status, _) = post_json(&t, "oauth/token", realm_login("long@example.test", &password, "dev-users")).await;
    assert_eq!(status, 200, "the password itself works");
    let longer = format!("{password}anything");
    let (status, body) = post_json(&t, "oauth/token", realm_login("long@example.test", &longer, "dev-users")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_grant")), "{body}");

    let b = browser();
    let res = login(&t, &b, &authorize_url(&t, &[]), "long@example.test", &longer).await;
    assert_eq!(res.status(), 401, "the login page refuses it too");
}

#[tokio::test]
async fn passwords_over_72_bytes_are_refused_wherever_one_is_set() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let too_long = format!("{}x", longest_password());
    let too_long = too_long.as_str();
    let mut conn = t.idp.store.connection_by_name("prod-users").await.unwrap().unwrap();
    conn.options.insert("disable_signup".into(), json!(false));
    t.idp.store.put_connection(&conn).await.unwrap();

    // /dbconnections/signup: Auth0's PasswordStrengthError.
    let signup = json!({"client_id": kw("CMS_CLIENT_ID"), "email": "a@example.test", "password": too_long, "connection": "prod-users"});
    let (status, body) = post_json(&t, "dbconnections/signup", signup).await;
    assert_eq!(
        (status, body["name"].as_str(), body["code"].as_str(), body["description"].as_str()),
        (400, Some("PasswordStrengthError"), Some("invalid_password"), Some("Password is too long (at most 72 bytes)"))
    );

    // The sign-up page.
    let b = browser();
    let res = b.get(authorize_url(&t, &[("connection", "prod-users")])).send().await.unwrap();
    let signup_url = t.url(&location(&res)).replace("/u/login", "/u/signup");
    let html = b.get(&signup_url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("state", hidden(&html, "state").unwrap()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("connection", "prod-users".to_string()),
        ("email", "b@example.test".to_string()),
        ("password", too_long.to_string()),
    ];
    let res = b.post(&signup_url).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Password is too long"));

    // The reset page a reset mail links to.
    let ticket = reset_tickets(&t, &kw("USER_EMAIL"), 1).await.remove(0);
    let res = reqwest::Client::new()
        .post(t.url("lo/reset"))
        .form(&[("ticket", ticket.as_str()), ("password", too_long)])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Password is too long"));

    // The Management API, on creation and on change.
    let message = "PasswordStrengthError: Password is too long (at most 72 bytes)";
    let user = json!({"connection": "dev-users", "email": "c@example.test", "password": too_long});
    let (status, body) = call(&t, &tok, reqwest::Method::POST, "users", Some(user)).await;
    assert_eq!(
        (status, body["message"].as_str(), body["errorCode"].as_str()),
        (400, Some(message), Some("invalid_body"))
    );
    let id = t.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user.user_id;
    let (status, body) =
        call(&t, &tok, reqwest::Method::PATCH, &format!("users/{id}"), Some(json!({"password": too_long}))).await;
    assert_eq!((status, body["message"].as_str()), (400, Some(message)));

    // Nothing was written anywhere, and the user's password is the old one.
    for (connection, email) in
        [("prod-users", "a@example.test"), ("prod-users", "b@example.test"), ("dev-users", "c@example.test")]
    {
        assert!(t.idp.store.user_by_login(connection, email).await.unwrap().is_none(), "{email}");
    }
    let (status, _) =
        post_json(&t, "oauth/token", realm_login(&kw("USER_EMAIL"), &kw("USER_PASSWORD"), "dev-users")).await;
    assert_eq!(status, 200);
}

#[tokio::test]
async fn imported_plain_passwords_meet_the_connection_policy() {
    let t = start().await;
    let rows = json!([
        {"email": "long@example.test", "password": format!("{}x", longest_password())},
        {"email": "weak@example.test", "password": "a"},
        {"email": "good@example.test", "password": "Imported-Passw0rd!"},
    ]);

    // `gatehouse idp --users`: the report names the refused rows.
    let file = temp_dir("plain").join("users.json");
    std::fs::write(&file, rows.to_string()).unwrap();
    let users = tenant::load_users(&file, &keywords()).unwrap();
    let report = idp::provision::import_users(&t.idp, "dev-users", &users).await.unwrap();
    let errors: Vec<String> = report.errors.iter().map(|(_, message)| message.clone()).collect();
    assert_eq!(
        errors,
        [
            "PasswordStrengthError: Password is too long (at most 72 bytes)",
            "PasswordStrengthError: Password is too weak: at least 8 characters with 3 of lower case, upper case, digits, special characters",
        ]
    );
    assert_eq!(report.created, 1);

    // An import job: the same rows into prod-users (also `good`), each refusal in the job's
    // error report.
    let tok = management_token(&t, None).await;
    let connection_id = t.idp.store.connection_by_name("prod-users").await.unwrap().unwrap().id;
    let boundary = "gatehouse-passwords-test";
    let body = format!(
        "--{boundary}\r\nContent-Disposition: form-data; name=\"users\"; filename=\"users.json\"\r\nContent-Type: application/json\r\n\r\n{rows}\r\n\
         --{boundary}\r\nContent-Disposition: form-data; name=\"connection_id\"\r\n\r\n{connection_id}\r\n--{boundary}--\r\n"
    );
    let res = reqwest::Client::new()
        .post(t.url("api/v2/jobs/users-imports"))
        .bearer_auth(&tok)
        .header("content-type", format!("multipart/form-data; boundary={boundary}"))
        .body(body)
        .send()
        .await
        .unwrap();
    let (status, job) = json(res).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    let mut job = Value::Null;
    for _ in 0..200 {
        job = call(&t, &tok, reqwest::Method::GET, &format!("jobs/{id}"), None).await.1;
        if job["status"] == "completed" || job["status"] == "failed" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(job["summary"]["inserted"], 1, "{job}");
    let (_, errors) = call(&t, &tok, reqwest::Method::GET, &format!("jobs/{id}/errors"), None).await;
    let codes: Vec<(&str, &str, &str)> = errors
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let first = &e["errors"][0];
            (e["user"]["email"].as_str().unwrap(), first["code"].as_str().unwrap(), first["path"].as_str().unwrap())
        })
        .collect();
    assert_eq!(
        codes,
        [("long@example.test", "MAX_LENGTH", "password"), ("weak@example.test", "INVALID_PASSWORD", "password")]
    );

    for connection in ["dev-users", "prod-users"] {
        for email in ["long@example.test", "weak@example.test"] {
            assert!(t.idp.store.user_by_login(connection, email).await.unwrap().is_none(), "{email} not imported");
        }
    }
    let (status, _) =
        post_json(&t, "oauth/token", realm_login("good@example.test", "Imported-Passw0rd!", "dev-users")).await;
    assert_eq!(status, 200);
}

/// Asks for `n` reset mails for `email` and returns the tickets their links carry, in order.
pub async fn reset_tickets(t: &TestIdp, email: &str, n: usize) -> Vec<String> {
    t.flush_mail().await;
    let before = outbox(t).len();
    for _ in 0..n {
        let body = json!({"client_id": kw("CMS_CLIENT_ID"), "email": email, "connection": "dev-users"});
        let res = reqwest::Client::new().post(t.url("dbconnections/change_password")).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    t.flush_mail().await;
    let mails = outbox(t);
    assert_eq!(mails.len(), before + n);
    mails[before..]
        .iter()
        .map(|m| {
            let link = m["body"].as_str().unwrap().lines().find(|l| l.contains("/lo/reset?ticket=")).unwrap().trim();
            query_param(link, "ticket").unwrap()
        })
        .collect()
}

/// The messages in the outbox, oldest first.
fn outbox(t: &TestIdp) -> Vec<Value> {
    let Ok(dir) = std::fs::read_dir(t.data.join("outbox")) else { return vec![] };
    let mut files: Vec<_> =
        dir.map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "json")).collect();
    files.sort();
    files.iter().map(|p| serde_json::from_slice(&std::fs::read(p).unwrap()).unwrap()).collect()
}

/// What a login opens: an SSO session in `b` (checked with `prompt=none`) and a refresh token.
async fn sign_in(t: &TestIdp, b: &reqwest::Client) -> String {
    let res = login(t, b, &authorize_url(t, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let code = query_param(&location(&res), "code").expect("signed in");
    let (status, body) = json(exchange_code(t, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(prompt_none(t, b).await, None, "the session issues codes");
    body["refresh_token"].as_str().unwrap().to_string()
}

/// The `error` of a `prompt=none` authorization (`None` when it issued a code).
async fn prompt_none(t: &TestIdp, b: &reqwest::Client) -> Option<String> {
    let res = b.get(authorize_url(t, &[("prompt", "none")])).send().await.unwrap();
    let loc = location(&res);
    assert!(loc.starts_with(CALLBACK), "{loc}");
    query_param(&loc, "error")
}

async fn refresh(t: &TestIdp, refresh_token: &str) -> (u16, Value) {
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", &kw("CMS_CLIENT_ID")),
        ("client_secret", &kw("CMS_CLIENT_SECRET")),
        ("refresh_token", refresh_token),
    ];
    json(reqwest::Client::new().post(t.url("oauth/token")).form(&form).send().await.unwrap()).await
}

/// After a password change, the refresh token and the session of before are dead.
async fn assert_ended(t: &TestIdp, b: &reqwest::Client, refresh_token: &str) {
    let (status, body) = refresh(t, refresh_token).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_grant")), "refresh token revoked: {body}");
    assert_eq!(prompt_none(t, b).await.as_deref(), Some("login_required"), "SSO session ended");
}

fn reset(t: &TestIdp, ticket: &str, password: &str) -> reqwest::RequestBuilder {
    reqwest::Client::new().post(t.url("lo/reset")).form(&[("ticket", ticket), ("password", password)])
}

#[tokio::test]
async fn a_password_reset_ends_the_other_tickets_the_refresh_tokens_and_the_sessions() {
    let t = start().await;
    let b = browser();
    let refresh_token = sign_in(&t, &b).await;
    let tickets = reset_tickets(&t, &kw("USER_EMAIL"), 2).await;
    // A refresh token from before still works until the reset.
    let (status, _) = refresh(&t, &refresh_token).await;
    assert_eq!(status, 200);

    assert_eq!(reset(&t, &tickets[1], "New-Passw0rd!").send().await.unwrap().status(), 200);

    let other = reset(&t, &tickets[0], "Other-Passw0rd!").send().await.unwrap();
    assert_eq!(other.status(), 400, "the other ticket is void");
    assert!(other.text().await.unwrap().contains("invalid or has expired"));
    assert_eq!(reqwest::get(t.url(&format!("lo/reset?ticket={}", tickets[0]))).await.unwrap().status(), 400);
    assert_ended(&t, &b, &refresh_token).await;
    let (status, _) = post_json(&t, "oauth/token", realm_login(&kw("USER_EMAIL"), "New-Passw0rd!", "dev-users")).await;
    assert_eq!(status, 200, "the new password works");
}

/// The user signed in through a browser (SSO session, refresh token) with one outstanding
/// reset ticket, and a Management API token: what a password change or a delete must end.
struct Signed {
    t: TestIdp,
    tok: String,
    b: reqwest::Client,
    refresh_token: String,
    ticket: String,
    id: String,
}

async fn signed_in_with_a_ticket() -> Signed {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let b = browser();
    let refresh_token = sign_in(&t, &b).await;
    let ticket = reset_tickets(&t, &kw("USER_EMAIL"), 1).await.remove(0);
    let id = t.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user.user_id;
    Signed { t, tok, b, refresh_token, ticket, id }
}

#[tokio::test]
async fn a_management_api_password_change_ends_them_too() {
    let Signed { t, tok, b, refresh_token, ticket, id } = signed_in_with_a_ticket().await;

    // A change that sets no password ends nothing.
    let patch = json!({"user_metadata": {"theme": "dark"}});
    let (status, _) = call(&t, &tok, reqwest::Method::PATCH, &format!("users/{id}"), Some(patch)).await;
    assert_eq!(status, 200);
    assert_eq!(prompt_none(&t, &b).await, None);

    let patch = json!({"password": "Admin-Set-Passw0rd!"});
    let (status, user) = call(&t, &tok, reqwest::Method::PATCH, &format!("users/{id}"), Some(patch)).await;
    assert_eq!(status, 200, "{user}");
    assert!(user["last_password_reset"].as_str().is_some_and(|s| s.ends_with('Z')), "{user}");

    assert_ended(&t, &b, &refresh_token).await;
    assert_eq!(reset(&t, &ticket, "Other-Passw0rd!").send().await.unwrap().status(), 400, "ticket void");
    let (status, _) =
        post_json(&t, "oauth/token", realm_login(&kw("USER_EMAIL"), "Admin-Set-Passw0rd!", "dev-users")).await;
    assert_eq!(status, 200);
}

/// Credentials are keyed by `user_id`, and `POST /users` (like an import) may choose the id:
/// a user deleted and created again under the same id must not inherit what the first held.
#[tokio::test]
async fn a_user_created_again_under_a_deleted_users_id_inherits_nothing() {
    let Signed { t, tok, b, refresh_token, ticket, id } = signed_in_with_a_ticket().await;

    let (status, _) = call(&t, &tok, reqwest::Method::DELETE, &format!("users/{id}"), None).await;
    assert_eq!(status, 204);
    let again = json!({
        "connection": "dev-users",
        "user_id": id,
        "email": "someone.else@example.test",
        "password": "Someone-Else-Passw0rd!",
    });
    let (status, user) = call(&t, &tok, reqwest::Method::POST, "users", Some(again)).await;
    assert_eq!((status, user["user_id"].as_str()), (201, Some(id.as_str())), "{user}");

    assert_ended(&t, &b, &refresh_token).await;
    assert_eq!(reset(&t, &ticket, "Taken-Over-Passw0rd!").send().await.unwrap().status(), 400, "ticket void");
}

#[tokio::test]
async fn reset_mails_are_limited_per_account_and_per_address_without_saying_so() {
    let t = start_on(sqlite_store().await, true, |c| c.trust_proxy = true).await;
    let limits = t.idp.config.reset_mails;
    let ask = |email: String, ip: &'static str| {
        let req = reqwest::Client::new()
            .post(t.url("dbconnections/change_password"))
            .header("x-forwarded-for", ip)
            .json(&json!({"client_id": kw("CMS_CLIENT_ID"), "email": email, "connection": "dev-users"}));
        async move {
            let res = req.send().await.unwrap();
            // The same answer whether a mail went out, the account exists or a limit held.
            assert_eq!(res.status(), 200);
            assert_eq!(res.text().await.unwrap(), "We've just sent you an email to reset your password.");
        }
    };
    let mails_to = |email: String| outbox(&t).iter().filter(|m| m["to"] == email.as_str()).count() as i64;

    // Per account, from addresses that are each well under their own limit.
    let ips = ["198.51.100.1", "198.51.100.2", "198.51.100.3", "198.51.100.4", "198.51.100.5"];
    assert!(ips.len() as i64 > limits.per_user);
    for ip in ips {
        ask(kw("USER_EMAIL"), ip).await;
    }
    t.flush_mail().await;
    assert_eq!(mails_to(kw("USER_EMAIL")), limits.per_user);

    // Per address, whatever accounts it names (unknown ones count too).
    for _ in 1..limits.per_ip {
        ask("nobody@example.test".into(), "203.0.113.9").await;
    }
    ask(kw("ADMIN_EMAIL"), "203.0.113.9").await;
    t.flush_mail().await;
    assert_eq!(mails_to(kw("ADMIN_EMAIL")), 1, "the last request within the address's limit");
    ask(kw("ADMIN_EMAIL"), "203.0.113.9").await;
    t.flush_mail().await;
    assert_eq!(mails_to(kw("ADMIN_EMAIL")), 1, "over the address's limit: no mail");
    ask(kw("ADMIN_EMAIL"), "203.0.113.10").await;
    t.flush_mail().await;
    assert_eq!(mails_to(kw("ADMIN_EMAIL")), 2, "another address still gets one");
}
