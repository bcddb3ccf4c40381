//! Tenant logs through the real paths: each outcome of a login, a token exchange, a logout and
//! a Management API write is an Auth0 log event, searchable with `/api/v2/logs`; no password,
//! code, token, client secret or Action secret reaches an event; bad searches get Auth0's
//! errors.

use crate::actions::{bind, deploy_action};
use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

/// Writes what was recorded, so a search sees it at once.
async fn flushed(t: &TestIdp) {
    assert!(t.idp.flush_logs(Duration::from_secs(5)).await, "the recorder flushed");
}

/// Every event, oldest first, walked with checkpoints as a log exporter does.
async fn all_events(t: &TestIdp, token: &str) -> Vec<Value> {
    flushed(t).await;
    let mut out: Vec<Value> = Vec::new();
    let mut from = String::new();
    loop {
        let (status, page) = call(t, token, Method::GET, &format!("logs?take=100&from={from}"), None).await;
        assert_eq!(status, 200, "{page}");
        let page = page.as_array().unwrap().clone();
        if page.is_empty() {
            return out;
        }
        from = page.last().unwrap()["log_id"].as_str().unwrap().to_string();
        out.extend(page);
    }
}

async fn search(t: &TestIdp, token: &str, q: &str) -> Vec<Value> {
    flushed(t).await;
    let path = format!("logs?q={}&per_page=100", urlencode(q));
    let (status, body) = call(t, token, Method::GET, &path, None).await;
    assert_eq!(status, 200, "{q}: {body}");
    body.as_array().unwrap().clone()
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

fn types(events: &[Value]) -> Vec<&str> {
    events.iter().map(|e| e["type"].as_str().unwrap()).collect()
}

async fn token_request(t: &TestIdp, form: &[(&str, &str)]) -> (u16, Value) {
    json(reqwest::Client::new().post(t.url("oauth/token")).form(form).send().await.unwrap()).await
}

#[tokio::test]
async fn logins_and_token_exchanges_are_logged_in_auth0s_codes_without_secrets() {
    let t = start().await;
    let admin = kw("ADMIN_EMAIL");
    let (cms, cms_secret) = (kw("CMS_CLIENT_ID"), kw("CMS_CLIENT_SECRET"));
    let canary_password = "CANARY-password-5f1c";
    let canary_secret = "CANARY-secret-77ab";

    // The login page: a wrong password (fp), an unknown account (fu), then the right one (s).
    let b = browser();
    let res = login(&t, &b, &authorize_url(&t, &[]), &admin, canary_password).await;
    assert_eq!(res.status(), 401);
    let res = login(&t, &b, &authorize_url(&t, &[]), "nobody@cms.example.test", canary_password).await;
    assert_eq!(res.status(), 401);
    let res = login(&t, &b, &authorize_url(&t, &[]), &admin, &kw("ADMIN_PASSWORD")).await;
    let code = query_param(&location(&res), "code").expect("a code");
    // The code exchange (seacft).
    let (status, tokens) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{tokens}");
    // A refresh (sertft) and a bad one (fertft).
    let refresh = tokens["refresh_token"].as_str().unwrap().to_string();
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", &cms),
        ("client_secret", &cms_secret),
        ("refresh_token", &refresh),
    ];
    assert_eq!(token_request(&t, &form).await.0, 200);
    let form = [
        ("grant_type", "refresh_token"),
        ("client_id", &cms),
        ("client_secret", &cms_secret),
        ("refresh_token", "CANARY-refresh"),
    ];
    assert_eq!(token_request(&t, &form).await.0, 403);
    // The same code again (feacft), which also revokes what it issued.
    let (status, _) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(status, 403);
    // Client credentials (seccft) and a wrong secret (feccft).
    let token = management_token(&t, None).await;
    let (mgmt, audience) = (kw("MGMT_CLIENT_ID"), t.idp.config.management_audience());
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", &mgmt),
        ("client_secret", canary_secret),
        ("audience", &audience),
    ];
    assert_eq!(token_request(&t, &form).await.0, 401);
    // The password grant: right (sepft), wrong (fp).
    let form = [
        ("grant_type", "password"),
        ("client_id", &cms),
        ("client_secret", &cms_secret),
        ("username", &admin),
        ("password", canary_password),
    ];
    assert_eq!(token_request(&t, &form).await.0, 403);
    // prompt=none without a session (fsa), with one (ssa); then the logout (slo).
    let (status, _) = {
        let res = browser().get(authorize_url(&t, &[("prompt", "none")])).send().await.unwrap();
        (res.status().as_u16(), ())
    };
    assert_eq!(status, 302);
    let res = b.get(authorize_url(&t, &[("prompt", "none")])).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));
    let res = b.get(t.url(&format!("v2/logout?client_id={cms}"))).send().await.unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());

    let events = all_events(&t, &token).await;
    let kinds = types(&events);
    for expected in ["fp", "fu", "s", "seacft", "feacft", "sertft", "fertft", "seccft", "feccft", "fsa", "ssa", "slo"] {
        assert!(kinds.contains(&expected), "{expected} missing from {kinds:?}");
    }
    // Fields in Auth0's shape.
    let s = events.iter().find(|e| e["type"] == "s").unwrap();
    let admin_id = s["user_id"].as_str().unwrap().to_string();
    assert!(admin_id.starts_with("auth0|"), "{s}");
    assert_eq!((s["client_id"].as_str(), s["user_name"].as_str()), (Some(cms.as_str()), Some(admin.as_str())));
    assert_eq!(
        (s["connection"].as_str(), s["strategy"].as_str(), s["strategy_type"].as_str()),
        (Some("dev-users"), Some("auth0"), Some("database"))
    );
    assert_eq!(s["ip"], "127.0.0.1");
    assert!(s["date"].as_str().unwrap().ends_with('Z'), "{s}");
    let fp = events.iter().find(|e| e["type"] == "fp").unwrap();
    assert_eq!(
        (fp["user_id"].as_str(), fp["description"].as_str()),
        (Some(admin_id.as_str()), Some("Wrong email or password."))
    );
    let fu = events.iter().find(|e| e["type"] == "fu").unwrap();
    assert_eq!(fu["user_name"], "nobody@cms.example.test");
    assert_eq!(events.iter().find(|e| e["type"] == "feccft").unwrap()["client_id"], mgmt);

    // Nothing secret in any event: the canaries, the code, the tokens, the real secrets.
    let dump = serde_json::to_string(&events).unwrap();
    for secret in [
        canary_password,
        canary_secret,
        "CANARY-refresh",
        &code,
        &refresh,
        tokens["access_token"].as_str().unwrap(),
        tokens["id_token"].as_str().unwrap(),
        &cms_secret,
        &kw("MGMT_CLIENT_SECRET"),
        &kw("ADMIN_PASSWORD"),
        &token,
    ] {
        assert!(!dump.contains(secret), "an event holds a secret ({secret})");
    }

    // Searches: a user's failures, by type, and the user's own log.
    let mine = search(&t, &token, &format!("user_id:\"{admin_id}\" AND type:fp")).await;
    assert_eq!(types(&mine), ["fp", "fp"], "the page's and the grant's");
    let (status, body) = call(
        &t,
        &token,
        Method::GET,
        &format!("users/{}/logs?include_totals=true&per_page=2", urlencode(&admin_id)),
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["logs"].as_array().unwrap().len(), 2);
    assert!(body["total"].as_u64().unwrap() >= 5, "{body}");
    let id = s["log_id"].as_str().unwrap();
    let (status, one) = call(&t, &token, Method::GET, &format!("logs/{id}"), None).await;
    assert_eq!((status, &one), (200, s));
}

#[tokio::test]
async fn management_writes_and_action_failures_are_logged_without_secrets() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let action_secret = "CANARY-action-secret-93d1";
    deploy_action(
        &t,
        &token,
        "deny-all",
        "exports.onExecutePostLogin = async (event, api) => { api.access.deny('no entry ' + event.secrets.KEY); };",
        json!([{"name": "KEY", "value": action_secret}]),
    )
    .await;
    bind(&t, &token, &["deny-all"]).await;
    let form = [
        ("grant_type", "password"),
        ("client_id", &kw("CMS_CLIENT_ID")),
        ("client_secret", &kw("CMS_CLIENT_SECRET")),
        ("username", &kw("USER_EMAIL")),
        ("password", &kw("USER_PASSWORD")),
    ];
    let (status, body) = token_request(&t, &form).await;
    assert_eq!(status, 403, "{body}");
    // A throwing action: actions_execution_failed.
    deploy_action(
        &t,
        &token,
        "thrower",
        "exports.onExecutePostLogin = async (event, api) => { throw new Error('boom ' + event.secrets.KEY); };",
        json!([{"name": "KEY", "value": action_secret}]),
    )
    .await;
    bind(&t, &token, &["thrower"]).await;
    assert_eq!(token_request(&t, &form).await.0, 403);

    // Writes: a client created, a user deleted (sdu), a refused write (fapi).
    let (status, client) = call(&t, &token, Method::POST, "clients", Some(json!({"name": "Logged app"}))).await;
    assert_eq!(status, 201, "{client}");
    let new_secret = client["client_secret"].as_str().unwrap().to_string();
    let (status, user) = call(
        &t,
        &token,
        Method::POST,
        "users",
        Some(json!({"connection": "dev-users", "email": "gone@cms.example.test", "password": "CANARY-Passw0rd-x1!"})),
    )
    .await;
    assert_eq!(status, 201, "{user}");
    let user_id = user["user_id"].as_str().unwrap().to_string();
    let (status, _) = call(&t, &token, Method::DELETE, &format!("users/{}", urlencode(&user_id)), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(&t, &token, Method::POST, "clients", Some(json!({"name": 7}))).await;
    assert_eq!(status, 400);

    let events = all_events(&t, &token).await;
    let denied = events
        .iter()
        .find(|e| e["type"] == "f" && e["description"].as_str().unwrap_or("").starts_with("no entry"))
        .expect("the denial as f");
    assert_eq!(denied["description"], "no entry [redacted]");
    assert!(events.iter().any(|e| e["type"] == "actions_execution_failed"), "{:?}", types(&events));
    let created = events.iter().find(|e| e["type"] == "sapi" && e["description"] == "Create a client").expect("sapi");
    assert_eq!(created["client_id"], kw("MGMT_CLIENT_ID"));
    assert_eq!(created["details"]["request"]["path"], "/api/v2/clients");
    assert_eq!(created["details"]["response"]["statusCode"], 201);
    let sdu = events.iter().find(|e| e["type"] == "sdu").expect("sdu");
    assert_eq!(sdu["user_id"], user_id);
    assert!(events.iter().any(|e| e["type"] == "fapi" && e["details"]["response"]["statusCode"] == 400));
    let dump = serde_json::to_string(&events).unwrap();
    for secret in [action_secret, &new_secret, "CANARY-Passw0rd-x1!", &token] {
        assert!(!dump.contains(secret), "an event holds a secret ({secret})");
    }
}

#[tokio::test]
async fn bad_log_requests_get_auth0s_errors() {
    let t = start().await;
    let token = management_token(&t, None).await;
    for (path, status, says) in [
        ("logs?q=type:(s", 400, "missing ')'"),
        ("logs?q=nope:1", 400, "unknown field"),
        ("logs?per_page=101", 400, "per_page"),
        ("logs?from=1&page=0", 400, "cannot be combined"),
        ("logs?take=101", 400, "take"),
        ("logs?sort=user_id:1", 400, "sort"),
        ("logs?fields=password", 400, "unknown field"),
        ("logs/90020000000000000000000000000", 404, "log does not exist"),
    ] {
        let (got, body) = call(&t, &token, Method::GET, path, None).await;
        assert_eq!(got, status, "{path}: {body}");
        assert_eq!(body["statusCode"], status, "{body}");
        assert!(body["message"].as_str().unwrap().contains(says), "{path}: {body}");
        assert!(body["errorCode"].is_string(), "{body}");
    }
    let weak = management_token(&t, Some(&["read:users"])).await;
    let (status, body) = call(&t, &weak, Method::GET, "logs", None).await;
    assert_eq!((status, body["errorCode"].as_str()), (403, Some("insufficient_scope")), "{body}");
}

#[tokio::test]
async fn search_pages_sort_and_select_fields() {
    let t = start().await;
    let token = management_token(&t, None).await;
    for _ in 0..3 {
        let res = login(&t, &browser(), &authorize_url(&t, &[]), &kw("USER_EMAIL"), "wrong-password").await;
        assert_eq!(res.status(), 401);
    }
    flushed(&t).await;
    let (status, body) = call(
        &t,
        &token,
        Method::GET,
        "logs?q=type:fp&per_page=2&page=0&include_totals=true&sort=date:1&fields=type,log_id",
        None,
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!((body["total"].as_u64(), body["length"].as_u64(), body["limit"].as_u64()), (Some(3), Some(2), Some(2)));
    let first = &body["logs"][0];
    assert_eq!(first.as_object().unwrap().len(), 2, "only the fields asked for: {first}");
    let (_, newest) = call(&t, &token, Method::GET, "logs?q=type:fp&per_page=1", None).await;
    let (_, oldest) = call(&t, &token, Method::GET, "logs?q=type:fp&per_page=1&sort=date:1", None).await;
    assert!(newest[0]["log_id"].as_str() > oldest[0]["log_id"].as_str());
    assert_eq!(oldest[0]["log_id"], first["log_id"]);
}

#[tokio::test]
async fn sign_ups_resets_blocks_and_refused_logouts_are_logged() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let http = reqwest::Client::new();
    let cms = kw("CMS_CLIENT_ID");
    // The guide's connection has sign-up off: fs.
    let res = http
        .post(t.url("dbconnections/signup"))
        .json(&json!({"client_id": cms, "email": "new@cms.example.test", "password": "CANARY-Signup-1!", "connection": "dev-users"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    // A reset mail for an account (scpr) and for none (fcpr).
    for email in [kw("USER_EMAIL"), "nobody@cms.example.test".into()] {
        let body = json!({"client_id": cms, "email": email, "connection": "dev-users"});
        let res = http.post(t.url("dbconnections/change_password")).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 200);
    }
    // A logout to a URL on no allow-list: flo.
    let res =
        http.get(t.url(&format!("v2/logout?client_id={cms}&returnTo=https://evil.example/"))).send().await.unwrap();
    assert_eq!(res.status(), 400);
    // Ten wrong passwords block the account from this address: limit_wc.
    for _ in 0..10 {
        let form = [
            ("grant_type", "password"),
            ("client_id", cms.as_str()),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("username", &kw("USER_EMAIL")),
            ("password", "wrong"),
        ];
        token_request(&t, &form).await;
    }

    let events = all_events(&t, &token).await;
    let kinds = types(&events);
    for expected in ["fs", "scpr", "fcpr", "flo", "limit_wc"] {
        assert!(kinds.contains(&expected), "{expected} missing from {kinds:?}");
    }
    let fs = events.iter().find(|e| e["type"] == "fs").unwrap();
    assert_eq!(
        (fs["description"].as_str(), fs["user_name"].as_str()),
        (Some("public signup is disabled"), Some("new@cms.example.test"))
    );
    let fcpr = events.iter().find(|e| e["type"] == "fcpr").unwrap();
    assert_eq!(fcpr["description"], "The user does not exist.");
    assert_eq!(kinds.iter().filter(|k| **k == "fp").count(), 9, "the tenth failure is the block: {kinds:?}");
    assert!(!serde_json::to_string(&events).unwrap().contains("CANARY-Signup-1!"));
}

/// The sign-up page's success (`ss`), the reset page's success and failure (`scp`, `fcp`), a
/// password-realm grant (`sepft` and no `s`, as Auth0's Resource Owner Password flow logs it)
/// and a logout, each with the address it came from.
#[tokio::test]
async fn sign_up_page_reset_page_grants_and_logouts_are_logged_with_the_address() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let mut conn = t.idp.store.connection_by_name("prod-users").await.unwrap().unwrap();
    conn.options.insert("disable_signup".into(), json!(false));
    t.idp.store.put_connection(&conn).await.unwrap();

    // The sign-up page, to its end: ss.
    let b = browser();
    let res = b.get(authorize_url(&t, &[("connection", "prod-users")])).send().await.unwrap();
    let signup_url = t.url(&location(&res)).replace("/u/login", "/u/signup");
    let html = b.get(&signup_url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("state", hidden(&html, "state").unwrap()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("connection", "prod-users".to_string()),
        ("email", "signed-up@cms.example.test".to_string()),
        ("password", "CANARY-Signup-Passw0rd!".to_string()),
    ];
    let res = b.post(&signup_url).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 302);
    // The logout of that session: slo with the user and the address.
    let res = b.get(t.url(&format!("v2/logout?client_id={}", kw("CMS_CLIENT_ID")))).send().await.unwrap();
    assert!(res.status().is_success() || res.status().is_redirection());

    // The reset page a reset mail links to: a weak password (fcp), then a good one (scp).
    let ticket = crate::passwords::reset_tickets(&t, &kw("USER_EMAIL"), 1).await.remove(0);
    let reset = |password: &'static str| {
        reqwest::Client::new()
            .post(t.url("lo/reset"))
            .form(&[("ticket", ticket.clone()), ("password", password.into())])
    };
    assert_eq!(reset("weak").send().await.unwrap().status(), 400);
    assert_eq!(reset("CANARY-Reset-Passw0rd!").send().await.unwrap().status(), 200);

    // A password-realm grant with the new password: sepft.
    let form = [
        ("grant_type", "http://auth0.com/oauth/grant-type/password-realm"),
        ("client_id", &kw("CMS_CLIENT_ID")),
        ("client_secret", &kw("CMS_CLIENT_SECRET")),
        ("username", &kw("USER_EMAIL")),
        ("password", "CANARY-Reset-Passw0rd!"),
        ("realm", "dev-users"),
    ];
    let (status, body) = token_request(&t, &form).await;
    assert_eq!(status, 200, "{body}");

    let events = all_events(&t, &token).await;
    let kinds = types(&events);
    let ss = events.iter().find(|e| e["type"] == "ss").unwrap_or_else(|| panic!("no ss in {kinds:?}"));
    assert_eq!(
        (ss["user_name"].as_str(), ss["connection"].as_str(), ss["ip"].as_str()),
        (Some("signed-up@cms.example.test"), Some("prod-users"), Some("127.0.0.1")),
        "{ss}"
    );
    let slo = events.iter().find(|e| e["type"] == "slo").unwrap_or_else(|| panic!("no slo in {kinds:?}"));
    assert_eq!((slo["ip"].as_str(), slo["user_id"].as_str()), (Some("127.0.0.1"), ss["user_id"].as_str()), "{slo}");
    let fcp = events.iter().find(|e| e["type"] == "fcp").unwrap_or_else(|| panic!("no fcp in {kinds:?}"));
    let scp = events.iter().find(|e| e["type"] == "scp").unwrap_or_else(|| panic!("no scp in {kinds:?}"));
    assert!(fcp["log_id"].as_str() < scp["log_id"].as_str());
    assert_eq!(scp["ip"], "127.0.0.1");
    assert!(scp["user_id"].as_str().is_some_and(|u| u.starts_with("auth0|")), "{scp}");
    let user_id = scp["user_id"].as_str().unwrap();
    let sepft: Vec<_> = events.iter().filter(|e| e["type"] == "sepft").collect();
    assert_eq!(sepft.len(), 1, "{kinds:?}");
    assert_eq!((sepft[0]["user_id"].as_str(), sepft[0]["ip"].as_str()), (Some(user_id), Some("127.0.0.1")));
    assert!(
        !events.iter().any(|e| e["type"] == "s" && e["user_id"] == user_id),
        "a password grant is sepft only: {kinds:?}"
    );
    let dump = serde_json::to_string(&events).unwrap();
    for secret in ["CANARY-Signup-Passw0rd!", "CANARY-Reset-Passw0rd!", &ticket] {
        assert!(!dump.contains(secret), "an event holds a secret ({secret})");
    }
}

/// A token over the Management API's rate limit: one `api_limit` a second for it, with the
/// address and the path, however many requests are refused.
#[tokio::test]
async fn the_management_rate_limit_is_logged_once_a_second() {
    let t = start_on(sqlite_store().await, true, |c| c.management_rate_limit = 3).await;
    let flood = management_token(&t, Some(&["read:users"])).await;
    assert_eq!(call(&t, &flood, Method::GET, "users?per_page=1", None).await.0, 200);
    // Twenty at once: they land within a second or two, so one or two events, not seventeen.
    let mut burst = tokio::task::JoinSet::new();
    for _ in 0..20 {
        let (base, flood) = (t.base.clone(), flood.clone());
        burst.spawn(async move {
            let res = reqwest::Client::new()
                .get(format!("{base}api/v2/users?per_page=1"))
                .bearer_auth(flood)
                .send()
                .await
                .unwrap();
            res.status().as_u16()
        });
    }
    let refused = burst.join_all().await.into_iter().filter(|s| *s == 429).count();
    assert!(refused >= 10, "{refused} of 20 refused");
    let reader = management_token(&t, None).await;
    let limits = search(&t, &reader, "type:api_limit").await;
    assert!((1..=3).contains(&limits.len()), "{limits:?} for {refused} refusals");
    let e = &limits[0];
    assert_eq!(
        (e["ip"].as_str(), e["details"]["path"].as_str(), e["description"].as_str()),
        (Some("127.0.0.1"), Some("/api/v2/users"), Some("Global limit has been reached"))
    );
}
