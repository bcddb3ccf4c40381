//! The browser login: /authorize, the login page, the code, the token exchange, /userinfo,
//! SSO, prompt and logout, and every way the browser side can be abused.

use crate::harness::*;
use serde_json::{Value, json};

#[tokio::test]
async fn code_flow_with_pkce_end_to_end() {
    let t = start().await;
    let b = browser();
    let res = login(&t, &b, &authorize_url(&t, &[]), &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
    assert_eq!(res.status(), 302);
    let callback = location(&res);
    assert!(callback.starts_with(CALLBACK), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("st-123"));
    let code = query_param(&callback, "code").expect("code");

    let (status, body) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["refresh_token"].is_string(), "offline_access gives a refresh token: {body}");
    let id = claims(body["id_token"].as_str().unwrap());
    assert_eq!(id["iss"], t.base.as_str());
    assert_eq!(id["aud"], kw("CMS_CLIENT_ID").as_str());
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["email"], kw("ADMIN_EMAIL").as_str());
    assert!(id["sub"].as_str().unwrap().starts_with("auth0|"));
    assert!(id["updated_at"].as_str().unwrap().ends_with('Z'), "updated_at is an ISO string");
    assert_eq!(id["exp"].as_i64().unwrap() - id["iat"].as_i64().unwrap(), 36000);
    assert!(id["sid"].is_string());

    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], json!(t.url("userinfo")));

    let info = reqwest::Client::new()
        .get(t.url("userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (status, info) = json(info).await;
    assert_eq!(status, 200);
    assert_eq!(info["sub"], id["sub"]);
    assert_eq!(info["email"], kw("ADMIN_EMAIL").as_str());
    assert_eq!(info["name"], "CMS Administrator");

    // The same browser signs in again without the form (SSO), and the code works.
    let res = b.get(authorize_url(&t, &[])).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let again = location(&res);
    assert!(again.starts_with(CALLBACK), "SSO skips the login page: {again}");
    let (status, body2) = json(exchange_code(&t, &query_param(&again, "code").unwrap(), VERIFIER).await).await;
    assert_eq!(status, 200);
    assert_eq!(claims(body2["id_token"].as_str().unwrap())["sid"], id["sid"], "same SSO session");
}

#[tokio::test]
async fn audience_and_max_age_shape_the_tokens() {
    let t = start().await;
    let b = browser();
    let api = "http://localhost:8080/";
    let res = login(
        &t,
        &b,
        &authorize_url(&t, &[("audience", api), ("max_age", "600")]),
        &kw("USER_EMAIL"),
        &kw("USER_PASSWORD"),
    )
    .await;
    let code = query_param(&location(&res), "code").unwrap();
    let (_, body) = json(exchange_code(&t, &code, VERIFIER).await).await;
    let access = claims(body["access_token"].as_str().unwrap());
    assert_eq!(access["aud"], json!([api, t.url("userinfo")]));
    assert_eq!(access["exp"].as_i64().unwrap() - access["iat"].as_i64().unwrap(), 36000, "the API's token_lifetime");
    assert_eq!(access["azp"], kw("CMS_CLIENT_ID").as_str());
    let id = claims(body["id_token"].as_str().unwrap());
    assert!(id["auth_time"].is_i64(), "max_age asks for auth_time");

    // A session older than max_age=0 must sign in again.
    let res = b.get(authorize_url(&t, &[("max_age", "0"), ("prompt", "none")])).send().await.unwrap();
    let loc = location(&res);
    assert_eq!(query_param(&loc, "error").as_deref(), Some("login_required"), "{loc}");
}

#[tokio::test]
async fn prompt_none_without_session_and_prompt_login_with_one() {
    let t = start().await;
    let b = browser();
    let res = b.get(authorize_url(&t, &[("prompt", "none")])).send().await.unwrap();
    let loc = location(&res);
    assert!(loc.starts_with(CALLBACK));
    assert_eq!(query_param(&loc, "error").as_deref(), Some("login_required"));
    assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"));

    login(&t, &b, &authorize_url(&t, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let res = b.get(authorize_url(&t, &[("prompt", "login")])).send().await.unwrap();
    assert!(location(&res).contains("/u/login"), "prompt=login shows the form despite the session");
}

#[tokio::test]
async fn form_post_response_mode_posts_the_code() {
    let t = start().await;
    let b = browser();
    let res =
        login(&t, &b, &authorize_url(&t, &[("response_mode", "form_post")]), &kw("USER_EMAIL"), &kw("USER_PASSWORD"))
            .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{CALLBACK}\"")));
    assert!(hidden(&html, "code").is_some());
    assert_eq!(hidden(&html, "state").as_deref(), Some("st-123"));
}

#[tokio::test]
async fn login_page_shows_only_enabled_connections_and_no_signup() {
    let t = start().await;
    let b = browser();
    let res = b.get(authorize_url(&t, &[])).send().await.unwrap();
    let html = b.get(t.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("to continue to CMS"));
    assert!(html.contains("dev-users") && html.contains("prod-users"));
    assert!(!html.contains("google"), "google-oauth2 is not enabled for CMS");
    assert!(!html.contains("signup-link"), "sign-up is disabled on both databases");

    let res = b.get(authorize_url(&t, &[("connection", "prod-users")])).send().await.unwrap();
    let html = b.get(t.url(&location(&res))).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("value=\"prod-users\"") && !html.contains("dev-users"));

    let res = b.get(authorize_url(&t, &[("connection", "google-oauth2")])).send().await.unwrap();
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("invalid_request"));
}

#[tokio::test]
async fn wrong_password_rerenders_the_form_and_never_redirects() {
    let t = start().await;
    let b = browser();
    let res = login(&t, &b, &authorize_url(&t, &[]), &kw("USER_EMAIL"), "wrong-password").await;
    assert_eq!(res.status(), 401);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("Wrong email or password."));
    let res = login(&t, &b, &authorize_url(&t, &[]), "nobody@cms.example.test", "whatever1A!").await;
    assert!(res.text().await.unwrap().contains("Wrong email or password."), "unknown users look the same");
}

#[tokio::test]
async fn login_form_needs_its_csrf_cookie() {
    let t = start().await;
    let b = browser();
    let res = b.get(authorize_url(&t, &[])).send().await.unwrap();
    let page_url = t.url(&location(&res));
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("state", hidden(&html, "state").unwrap()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("connection", "dev-users".into()),
        ("username", kw("USER_EMAIL")),
        ("password", kw("USER_PASSWORD")),
    ];
    // Another browser (no cookie) replaying the form, as a login-CSRF page would.
    let res = browser().post(&page_url).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get("location").is_none());
    // A tampered token from the right browser.
    let mut bad = form.clone();
    bad[1].1 = "x".repeat(43);
    assert_eq!(b.post(&page_url).form(&bad).send().await.unwrap().status(), 403);
    // The genuine one still works.
    assert_eq!(b.post(&page_url).form(&form).send().await.unwrap().status(), 302);
}

#[tokio::test]
async fn unknown_client_and_foreign_redirect_uri_are_pages_not_redirects() {
    let t = start().await;
    let b = browser();
    let res = b
        .get(t.url("authorize?client_id=nope&response_type=code&redirect_uri=https://evil.example/cb"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    assert!(res.text().await.unwrap().contains("Unknown client"));

    for evil in [
        "https://evil.example/cb",
        "http://localhost:8080/web-login/callback/../../evil",
        "http://localhost:8080/web-login/callback?x=1",
        "http://localhost:8080.evil.example/web-login/callback",
    ] {
        let mut u = url::Url::parse(&t.url("authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", &kw("CMS_CLIENT_ID"))
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", evil);
        let res = b.get(u.as_str()).send().await.unwrap();
        assert_eq!(res.status(), 400, "{evil}");
        assert!(res.headers().get("location").is_none(), "{evil}");
        assert!(res.text().await.unwrap().contains("Callback URL mismatch"));
    }
    // Duplicated parameters are refused rather than guessed at.
    let dup = format!("{}&redirect_uri=https://evil.example/cb", authorize_url(&t, &[]));
    let res = b.get(dup).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    // Oversized query.
    let res = b.get(authorize_url(&t, &[("login_hint", &"a".repeat(20_000))])).send().await.unwrap();
    assert!(res.status().is_client_error());
}

#[tokio::test]
async fn errors_after_validation_go_back_to_the_client() {
    let t = start().await;
    let b = browser();
    let cases = [
        (vec![("response_type", "token")], "unsupported_response_type"),
        (vec![("audience", "https://unknown.example/")], "access_denied"),
        (vec![("code_challenge_method", "S512")], "invalid_request"),
        (vec![("connection", "nope")], "invalid_request"),
    ];
    for (extra, error) in cases {
        let mut u = url::Url::parse(&authorize_url(&t, &[])).unwrap();
        let pairs: Vec<(String, String)> =
            u.query_pairs().into_owned().filter(|(k, _)| !extra.iter().any(|(e, _)| e == k)).collect();
        u.query_pairs_mut().clear().extend_pairs(pairs).extend_pairs(extra.iter());
        let res = b.get(u.as_str()).send().await.unwrap();
        let loc = location(&res);
        assert!(loc.starts_with(CALLBACK), "{loc}");
        assert_eq!(query_param(&loc, "error").as_deref(), Some(error), "{loc}");
        assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"));
    }
}

#[tokio::test]
async fn logout_checks_return_to_against_the_right_list() {
    let t = start().await;
    let b = browser();
    login(&t, &b, &authorize_url(&t, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let cid = kw("CMS_CLIENT_ID");

    let res = b.get(t.url(&format!("v2/logout?client_id={cid}&returnTo=https://evil.example/"))).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.headers().get("location").is_none());
    let res = b.get(t.url("v2/logout?returnTo=https://evil.example/")).send().await.unwrap();
    assert_eq!(res.status(), 400, "tenant list applies without client_id");

    // Still signed in: the refused logouts ended nothing.
    let res = b.get(authorize_url(&t, &[("prompt", "none")])).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some());

    let res = b
        .get(t.url(&format!("v2/logout?client_id={cid}&returnTo=http%3A%2F%2Flocalhost%3A8080%3Fbye%3D1")))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), "http://localhost:8080/?bye=1", "the URL as matched: an empty path is `/`");
    let res = b.get(authorize_url(&t, &[("prompt", "none")])).send().await.unwrap();
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("login_required"), "session ended");

    let res = b.get(t.url("v2/logout")).send().await.unwrap();
    assert_eq!(res.status(), 200);
}

#[tokio::test]
async fn oidc_logout_uses_the_id_token_hint() {
    let t = start().await;
    let b = browser();
    let res = login(&t, &b, &authorize_url(&t, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let (_, body) = json(exchange_code(&t, &query_param(&location(&res), "code").unwrap(), VERIFIER).await).await;
    let hint = body["id_token"].as_str().unwrap();
    let mut u = url::Url::parse(&t.url("oidc/logout")).unwrap();
    u.query_pairs_mut()
        .append_pair("id_token_hint", hint)
        .append_pair("post_logout_redirect_uri", "http://localhost:8080")
        .append_pair("state", "s1");
    let res = b.get(u.as_str()).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(query_param(&location(&res), "state").as_deref(), Some("s1"));
    let res = b.get(t.url("oidc/logout?id_token_hint=not.a.jwt")).send().await.unwrap();
    assert_eq!(res.status(), 400);
}

/// [`authorize_url`] with another `redirect_uri`.
fn authorize_at(t: &TestIdp, redirect_uri: &str, extra: &[(&str, &str)]) -> String {
    let mut u = url::Url::parse(&authorize_url(t, extra)).unwrap();
    let pairs: Vec<(String, String)> = u
        .query_pairs()
        .into_owned()
        .map(|(k, v)| if k == "redirect_uri" { (k, redirect_uri.to_string()) } else { (k, v) })
        .collect();
    u.query_pairs_mut().clear().extend_pairs(pairs);
    u.to_string()
}

/// Paths that a URL parser (a browser's, ours) resolves to the registered callback, spelled
/// with encoded dots: each is refused, whatever its spelling.
const DOTTED_CALLBACKS: [&str; 5] = [
    "http://localhost:8080/x/.%2e/web-login/callback",
    "http://localhost:8080/x/%2e./web-login/callback",
    "http://localhost:8080/x/%2E./web-login/callback",
    "http://localhost:8080/x/%2e%2E/web-login/callback",
    "http://localhost:8080/web-login/x/.%2E/callback",
];

#[tokio::test]
async fn form_post_goes_to_the_normalised_callback_and_dot_segments_never_match() {
    let t = start().await;
    let b = browser();
    let evil = DOTTED_CALLBACKS.iter().chain(&["http://localhost:8080/web-login/callback/..%2fevil"]);
    for given in evil {
        let res = b.get(authorize_at(&t, given, &[("response_mode", "form_post")])).send().await.unwrap();
        assert_eq!(res.status(), 400, "{given}");
        assert!(res.headers().get("location").is_none(), "{given}");
        assert!(res.text().await.unwrap().contains("Callback URL mismatch"), "{given}");
    }
    // A spelling that only differs in case matches; the form posts to the URL as it was
    // matched, not as it was typed.
    let typed = "HTTP://LOCALHOST:8080/web-login/callback";
    let res = login(
        &t,
        &b,
        &authorize_at(&t, typed, &[("response_mode", "form_post")]),
        &kw("USER_EMAIL"),
        &kw("USER_PASSWORD"),
    )
    .await;
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains(&format!("action=\"{CALLBACK}\"")), "{html}");
    assert!(!html.contains("LOCALHOST"), "{html}");
    // The token request may repeat the redirect_uri as the client typed it.
    let code = hidden(&html, "code").unwrap();
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("code", &code),
            ("redirect_uri", typed),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn logout_refuses_dot_segments_and_returns_to_the_normalised_url() {
    let t = start().await;
    let b = browser();
    login(&t, &b, &authorize_url(&t, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let cid = kw("CMS_CLIENT_ID");
    let logout = |path: &str, pairs: &[(&str, &str)]| {
        let mut u = url::Url::parse(&t.url(path)).unwrap();
        u.query_pairs_mut().extend_pairs(pairs);
        u.to_string()
    };
    for given in DOTTED_CALLBACKS.iter().chain(&["http://localhost:8080/evil/%2e."]) {
        for (path, key) in [("v2/logout", "returnTo"), ("oidc/logout", "post_logout_redirect_uri")] {
            let with_client = logout(path, &[("client_id", cid.as_str()), (key, given)]);
            let res = b.get(with_client).send().await.unwrap();
            assert_eq!(res.status(), 400, "{path} {given}");
            assert!(res.headers().get("location").is_none(), "{path} {given}");
            let res = b.get(logout(path, &[(key, given)])).send().await.unwrap();
            assert_eq!(res.status(), 400, "{path} {given}: the tenant's list too");
        }
    }
    // Still signed in: the refused logouts ended nothing.
    let res = b.get(authorize_url(&t, &[("prompt", "none")])).send().await.unwrap();
    assert!(query_param(&location(&res), "code").is_some());

    let typed = "HTTP://LocalHost:8080/web-login/callback?bye=%7e";
    let res = b.get(logout("v2/logout", &[("client_id", cid.as_str()), ("returnTo", typed)])).send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (302, "http://localhost:8080/web-login/callback?bye=%7e".into())
    );
    let res = b.get(logout("oidc/logout", &[("post_logout_redirect_uri", typed)])).send().await.unwrap();
    assert_eq!(
        (res.status().as_u16(), location(&res)),
        (302, "http://localhost:8080/web-login/callback?bye=%7e".into())
    );
}

/// A password grant for the example's plain user, sent from behind `forwarded` when given.
async fn password_guess(url: String, password: String, forwarded: Option<String>) -> (u16, Value) {
    let form = [
        ("grant_type", "password".to_string()),
        ("client_id", kw("CMS_CLIENT_ID")),
        ("client_secret", kw("CMS_CLIENT_SECRET")),
        ("username", kw("USER_EMAIL")),
        ("password", password),
    ];
    let mut req = reqwest::Client::new().post(url).form(&form);
    if let Some(f) = forwarded {
        req = req.header("x-forwarded-for", f);
    }
    json(req.send().await.unwrap()).await
}

#[tokio::test]
async fn a_burst_of_concurrent_guesses_gets_no_more_than_the_limit_checked() {
    // A real cost, so that the guesses overlap while their hashes are being checked.
    let t = start_on(sqlite_store().await, true, |c| c.bcrypt_cost = 10).await;
    let mut burst = tokio::task::JoinSet::new();
    for i in 0..30 {
        burst.spawn(password_guess(t.url("oauth/token"), format!("wrong-{i}"), None));
    }
    let mut checked = 0;
    while let Some(answer) = burst.join_next().await {
        let (status, body) = answer.unwrap();
        match (status, body["error"].as_str()) {
            (403, Some("invalid_grant")) => checked += 1,
            (429, Some("too_many_attempts")) => {}
            other => panic!("{other:?}: {body}"),
        }
    }
    assert_eq!(checked, 9, "the tenth failure blocks; the rest are refused unchecked");
    let (status, _) = password_guess(t.url("oauth/token"), kw("USER_PASSWORD"), None).await;
    assert_eq!(status, 429, "blocked, the right password included");
}

#[tokio::test]
async fn behind_a_trusted_proxy_the_address_it_appended_counts_not_the_clients_own() {
    let t = start_on(sqlite_store().await, true, |c| c.trust_proxy = true).await;
    let guess = |forwarded: String, password: String| {
        let url = t.url("oauth/token");
        async move { password_guess(url, password, Some(forwarded)).await.0 }
    };
    // The client makes up a new first entry each time; the proxy appends the real address.
    for i in 1..=9 {
        assert_eq!(guess(format!("10.9.0.{i}, 203.0.113.7"), "wrong".into()).await, 403, "attempt {i}");
    }
    assert_eq!(guess("10.9.0.10, 203.0.113.7".into(), "wrong".into()).await, 429);
    assert_eq!(guess("10.9.0.11, 203.0.113.7".into(), kw("USER_PASSWORD")).await, 429, "still blocked");
    // Another real address is another pair.
    assert_eq!(guess("10.9.0.11, 198.51.100.4".into(), kw("USER_PASSWORD")).await, 200);
}

#[tokio::test]
async fn the_reset_mail_goes_to_the_accounts_own_address_not_what_was_typed() {
    let t = start().await;
    let typed = kw("USER_EMAIL").to_uppercase();
    let res = reqwest::Client::new()
        .post(t.url("dbconnections/change_password"))
        .json(&json!({"client_id": kw("CMS_CLIENT_ID"), "email": typed, "connection": "dev-users"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    t.flush_mail().await;
    let outbox: Vec<_> = std::fs::read_dir(t.data.join("outbox")).unwrap().collect();
    assert_eq!(outbox.len(), 1, "the account was found");
    let mail: serde_json::Value =
        serde_json::from_slice(&std::fs::read(outbox[0].as_ref().unwrap().path()).unwrap()).unwrap();
    assert_eq!(mail["to"], kw("USER_EMAIL").as_str());
}

#[tokio::test]
async fn brute_force_blocks_the_pair_until_the_password_changes() {
    let t = start().await;
    let http = reqwest::Client::new();
    let token = |password: String| {
        let http = http.clone();
        let url = t.url("oauth/token");
        async move {
            http.post(url)
                .json(&json!({
                    "grant_type": "http://auth0.com/oauth/grant-type/password-realm",
                    "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"),
                    "username": kw("USER_EMAIL"), "password": password, "realm": "dev-users", "scope": "openid",
                }))
                .send()
                .await
                .unwrap()
        }
    };
    for i in 1..=9 {
        let (status, body) = json(token("wrong".into()).await).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("invalid_grant")), "attempt {i}");
    }
    let (status, body) = json(token("wrong".into()).await).await;
    assert_eq!((status, body["error"].as_str()), (429, Some("too_many_attempts")));
    let (status, _) = json(token(kw("USER_PASSWORD")).await).await;
    assert_eq!(status, 429, "the right password does not lift the block");

    // Reset through the mailed link.
    let res = http
        .post(t.url("dbconnections/change_password"))
        .json(&json!({"client_id": kw("CMS_CLIENT_ID"), "email": kw("USER_EMAIL"), "connection": "dev-users"}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(res.text().await.unwrap(), "We've just sent you an email to reset your password.");
    t.flush_mail().await;
    // Two mails: the block's notice (`blocked_account`), then the reset link.
    let outbox: Vec<serde_json::Value> = std::fs::read_dir(t.data.join("outbox"))
        .unwrap()
        .map(|e| serde_json::from_slice(&std::fs::read(e.unwrap().path()).unwrap()).unwrap())
        .collect();
    assert_eq!(outbox.len(), 2, "{outbox:?}");
    let mut subjects: Vec<&str> = outbox.iter().map(|m| m["subject"].as_str().unwrap()).collect();
    subjects.sort();
    assert_eq!(subjects, ["Reset your password", "Your account has been blocked"]);
    let mail = outbox.iter().find(|m| m["subject"] == "Reset your password").unwrap();
    let body = mail["body"].as_str().unwrap();
    let link = body.lines().find(|l| l.contains("/lo/reset?ticket=")).unwrap().trim();
    let ticket = query_param(link, "ticket").unwrap();
    assert!(reqwest::get(link).await.unwrap().text().await.unwrap().contains("Change your password"));
    let weak =
        http.post(t.url("lo/reset")).form(&[("ticket", ticket.as_str()), ("password", "weak")]).send().await.unwrap();
    assert_eq!(weak.status(), 400);
    let ok = http
        .post(t.url("lo/reset"))
        .form(&[("ticket", ticket.as_str()), ("password", "New-Passw0rd!")])
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let (status, body) = json(token("New-Passw0rd!".into()).await).await;
    assert_eq!(status, 200, "block lifted by the password change: {body}");
    let reuse = http
        .post(t.url("lo/reset"))
        .form(&[("ticket", ticket.as_str()), ("password", "Other-Passw0rd!")])
        .send()
        .await
        .unwrap();
    assert_eq!(reuse.status(), 400, "a reset link works once");
}

#[tokio::test]
async fn discovery_and_jwks_describe_the_issuer() {
    let t = start().await;
    let (status, d) = json(reqwest::get(t.url(".well-known/openid-configuration")).await.unwrap()).await;
    assert_eq!(status, 200);
    assert_eq!(d["issuer"], t.base.as_str());
    assert_eq!(d["token_endpoint"], t.url("oauth/token"));
    assert_eq!(d["code_challenge_methods_supported"], json!(["S256", "plain"]));
    let (_, jwks) = json(reqwest::get(t.url(".well-known/jwks.json")).await.unwrap()).await;
    let key = &jwks["keys"][0];
    assert_eq!(
        (key["kty"].as_str(), key["alg"].as_str(), key["e"].as_str()),
        (Some("RSA"), Some("RS256"), Some("AQAB"))
    );
    assert!(key["x5c"][0].is_string() && key["kid"].is_string());
}

#[tokio::test]
async fn signup_page_appears_only_where_allowed_and_signs_the_user_in() {
    let t = start().await;
    let mut conn = t.idp.store.connection_by_name("prod-users").await.unwrap().unwrap();
    conn.options.insert("disable_signup".into(), json!(false));
    t.idp.store.put_connection(&conn).await.unwrap();

    let b = browser();
    let res = b.get(authorize_url(&t, &[("connection", "prod-users")])).send().await.unwrap();
    let login_url = t.url(&location(&res));
    let html = b.get(&login_url).send().await.unwrap().text().await.unwrap();
    assert!(html.contains("signup-link"), "prod-users now allows sign-up");
    let signup_url = login_url.replace("/u/login", "/u/signup");
    let html = b.get(&signup_url).send().await.unwrap().text().await.unwrap();
    let form = |password: &str| {
        vec![
            ("state", hidden(&html, "state").unwrap()),
            ("csrf", hidden(&html, "csrf").unwrap()),
            ("connection", "prod-users".to_string()),
            ("email", "fresh@cms.example.test".to_string()),
            ("password", password.to_string()),
        ]
    };
    let weak = b.post(&signup_url).form(&form("weak")).send().await.unwrap();
    assert_eq!(weak.status(), 400);
    assert!(weak.text().await.unwrap().contains("Password is too weak"));
    let mut dev_only = form("Fresh-Passw0rd!");
    dev_only[2].1 = "dev-users".into();
    assert_eq!(b.post(&signup_url).form(&dev_only).send().await.unwrap().status(), 400, "dev-users refuses sign-up");
    let res = b.post(&signup_url).form(&form("Fresh-Passw0rd!")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let (status, body) = json(exchange_code(&t, &query_param(&location(&res), "code").unwrap(), VERIFIER).await).await;
    assert_eq!(status, 200);
    assert_eq!(claims(body["id_token"].as_str().unwrap())["email"], "fresh@cms.example.test");
    assert!(t.idp.store.user_by_login("dev-users", "fresh@cms.example.test").await.unwrap().is_none());
}

#[tokio::test]
async fn operations_endpoints_answer() {
    let t = start().await;
    assert_eq!(reqwest::get(t.url("healthz")).await.unwrap().status(), 200);
    assert_eq!(reqwest::get(t.url("readyz")).await.unwrap().status(), 200);
    let b = browser();
    login(&t, &b, &authorize_url(&t, &[]), &kw("USER_EMAIL"), "wrong").await;
    let metrics = reqwest::get(t.url("metrics")).await.unwrap().text().await.unwrap();
    assert!(metrics.contains("gatehouse_http_requests_total"), "{metrics}");
    assert!(metrics.contains("route=\"/u/login\""));
    assert!(metrics.contains("gatehouse_logins_total{outcome=\"wrong_credentials\"}"));
    let (status, body) = json(reqwest::get(t.url("no/such/route")).await.unwrap()).await;
    assert_eq!((status, body["error"].as_str()), (404, Some("not_found")));
    let id = |res: reqwest::Response| res.headers()["x-request-id"].to_str().unwrap().to_owned();
    let first = id(reqwest::get(t.url("healthz")).await.unwrap());
    let second = id(reqwest::get(t.url("healthz")).await.unwrap());
    assert!(!first.is_empty() && first != second, "{first} {second}");
    let given = reqwest::Client::new().get(t.url("healthz")).header("x-request-id", "trace-42").send().await.unwrap();
    assert_eq!(id(given), "trace-42", "a caller's id is kept");
}
