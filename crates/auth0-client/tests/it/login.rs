//! The login site's flow and the API clients' grants, end to end against a real idp, with real
//! Redis and with the in-memory store.

use crate::support::*;
use auth0_client::session::SessionKey;
use serde_json::{Value, json};

async fn website_flow(store: Store) {
    let (idp, svc) = stack(store).await;
    let b = browser();
    let state = unique("st");
    // 1. The login site sends the browser to /authorize with its own state.
    let res = b
        .get(svc.url(&format!("/authorize?redirect=/backoffice&state={state}&prompt=login&connection=nope")))
        .header("client-type", "cms")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let to_idp = location(&res);
    assert!(to_idp.starts_with(&idp.url("authorize")), "{to_idp}");
    assert_eq!(query_param(&to_idp, "response_type").as_deref(), Some("code"));
    assert_eq!(query_param(&to_idp, "client_id"), Some(dev_env("CMS_CLIENT_ID")));
    assert_eq!(query_param(&to_idp, "redirect_uri").as_deref(), Some(CALLBACK));
    assert_eq!(
        query_param(&to_idp, "scope").as_deref(),
        Some("openid offline_access profile email"),
        "website stripped"
    );
    assert_eq!(query_param(&to_idp, "state"), Some(state.clone()));
    assert_eq!(query_param(&to_idp, "audience").as_deref(), Some(API_AUDIENCE));
    assert_eq!(query_param(&to_idp, "connection").as_deref(), Some("dev-users"), "unsupported → default");
    assert_eq!(query_param(&to_idp, "prompt").as_deref(), Some("login"));

    // 2. The user signs in at the idp, which sends the browser to the callback.
    let callback = login_at_idp(&idp, &b, &to_idp, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    let code = query_param(&callback, "code").unwrap();
    assert_eq!(query_param(&callback, "state"), Some(state.clone()));

    // 3. The login site exchanges code and state (query string) for the sid cookie.
    let res = reqwest::Client::new()
        .post(svc.url(&format!("/oauth/token?code={code}&state={state}")))
        .header("client-type", "cms")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(location(&res), "/backoffice", "the stored redirect comes back as Location");
    let cookie = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    assert!(cookie.contains("HttpOnly") && cookie.contains("Secure") && cookie.contains("Path=/"), "{cookie}");
    assert!(cookie.contains("Max-Age=86400") && cookie.contains("SameSite=Lax"), "{cookie}");
    let sid = sid_cookie(&res).unwrap();
    assert!(res.text().await.unwrap().is_empty(), "website mode answers with an empty body");

    // The same state cannot be used twice.
    let replay = reqwest::Client::new()
        .post(svc.url(&format!("/oauth/token?code={code}&state={state}")))
        .header("client-type", "cms")
        .send()
        .await
        .unwrap();
    assert_eq!(replay.status(), 401);

    // 4. /userinfo with the cookie: sub, the profile, groups always there.
    let (status, info) = json(get_with_sid(&svc, "/userinfo", &sid).await).await;
    assert_eq!(status, 200, "{info}");
    assert!(info["sub"].as_str().unwrap().starts_with("auth0|"), "{info}");
    assert_eq!(info["email"], dev_env("ADMIN_EMAIL").as_str());
    assert_eq!(info["name"], "CMS Administrator");
    assert!(info["groups"].is_array(), "{info}");
    for plumbing in ["iss", "aud", "exp", "iat", "nonce"] {
        assert!(info.get(plumbing).is_none(), "{plumbing} leaked: {info}");
    }
    let (status, me) = json(get_with_sid(&svc, "/users/me", &sid).await).await;
    assert_eq!((status, &me), (200, &info));

    // /users/active knows the admin.
    let (status, active) = json(reqwest::get(svc.url("/users/active")).await.unwrap()).await;
    assert_eq!(status, 200);
    assert!(active.as_array().unwrap().contains(&json!({"userId": info["sub"]})), "{active}");

    // 5. Logout: session gone, cookie expired, redirect to the idp's /v2/logout with returnTo.
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .get(svc.url("/logout?redirect=/web-login?redirect=/backoffice"))
        .header("cookie", format!("sid={sid}"))
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "localhost:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.starts_with(&idp.url("v2/logout")), "{to}");
    assert_eq!(query_param(&to, "returnTo").as_deref(), Some("http://localhost:8080/web-login?redirect=/backoffice"));
    let expired = res.headers().get("set-cookie").unwrap().to_str().unwrap();
    assert!(
        expired.starts_with("sid=;") && expired.contains("Expires=Thu, 01 Jan 1970") && !expired.contains("Max-Age")
    );
    // Without a session logout still works; the idp accepts the returnTo (tenant allow-list)
    // and sends the browser there.
    let res = browser()
        .get(svc.url("/logout?redirect=/"))
        .header("x-forwarded-proto", "http")
        .header("x-forwarded-host", "localhost:8080")
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let res = browser().get(location(&res)).send().await.unwrap();
    assert_eq!(location(&res), "http://localhost:8080/");

    assert_eq!(get_with_sid(&svc, "/userinfo", &sid).await.status(), 401);
    let (_, active) = json(reqwest::get(svc.url("/users/active")).await.unwrap()).await;
    assert!(!active.as_array().unwrap().contains(&json!({"userId": info["sub"]})), "{active}");
}

#[tokio::test(flavor = "multi_thread")]
async fn website_login_flow_with_redis() {
    website_flow(Store::Redis).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn website_login_flow_in_memory() {
    website_flow(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn token_mode_code_flow_with_internal_state() {
    let (idp, svc) = stack(Store::Redis).await;
    let b = browser();
    // `api` has authorizeStateRequired false: a caller's state is replaced by the service's.
    let res = b.get(svc.url("/authorize?state=mine")).header("client-type", "api").send().await.unwrap();
    assert_eq!(res.status(), 302);
    let to_idp = location(&res);
    let state = query_param(&to_idp, "state").unwrap();
    assert_ne!(state, "mine");
    let callback = login_at_idp(&idp, &b, &to_idp, &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
    let code = query_param(&callback, "code").unwrap();
    // Code and state in a JSON body this time.
    let res = reqwest::Client::new()
        .post(svc.url("/oauth/token"))
        .header("client-type", "api")
        .json(&json!({"code": code, "state": state}))
        .send()
        .await
        .unwrap();
    let (status, tokens) = json(res).await;
    assert_eq!(status, 200, "{tokens}");
    for k in ["accessToken", "refreshToken", "idToken", "expireAt"] {
        assert!(tokens[k].as_str().is_some_and(|v| !v.is_empty()), "{k}: {tokens}");
    }
    assert!(tokens["expireAt"].as_str().unwrap().ends_with('Z'));
    let res = reqwest::Client::new()
        .get(svc.url("/userinfo"))
        .header("client-type", "api")
        .bearer_auth(tokens["accessToken"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    let (status, info) = json(res).await;
    assert_eq!(status, 200);
    assert_eq!(info["email"], dev_env("USER_EMAIL").as_str());
    assert_eq!(info["groups"], json!([]));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_password_login_blocked_by_brute_force_protection_is_a_403_like_a_wrong_password() {
    let (_idp, svc) = stack(Store::Memory).await;
    let http = reqwest::Client::new();
    // The idp blocks the pair at the tenth failure with 429 too_many_attempts: a refusal of
    // these credentials, not the identity provider failing (which would be a 502).
    for attempt in 1..=11 {
        let res = http
            .post(svc.url("/oauth/token"))
            .header("client-type", "api")
            .form(&[("grant_type", "password"), ("username", &dev_env("USER_EMAIL")), ("password", "wrong")])
            .send()
            .await
            .unwrap();
        let (status, body) = json(res).await;
        assert_eq!(status, 403, "attempt {attempt}: {body}");
        if attempt >= 10 {
            assert!(body["message"].as_str().unwrap().contains("blocked"), "attempt {attempt}: {body}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn refreshtoken_without_any_refresh_token_refuses_but_keeps_the_session() {
    let idp = tokio::task::spawn_blocking(Idp::start).await.unwrap();
    let mut config = config_json(&idp, &idp.connection_id("dev-users").await);
    config["clients"]["api"]["scopes"] = json!(["profile", "email"]); // no offline_access
    let svc = start_service(Store::Memory, config, &[]).await;
    let http = reqwest::Client::new();
    let res = http
        .post(svc.url("/oauth/token"))
        .header("client-type", "api")
        .form(&[
            ("grant_type", "password"),
            ("username", &dev_env("USER_EMAIL")),
            ("password", &dev_env("USER_PASSWORD")),
        ])
        .send()
        .await
        .unwrap();
    let (status, tokens) = json(res).await;
    assert_eq!(status, 200, "{tokens}");
    assert!(tokens.get("refreshToken").is_none_or(|r| r.as_str() == Some("")), "{tokens}");
    let access = tokens["accessToken"].as_str().unwrap();

    let res = http.post(svc.url("/refreshtoken")).bearer_auth(access).json(&json!({})).send().await.unwrap();
    let (status, body) = json(res).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("no refresh token was sent and the session holds none")));
    let res = http.get(svc.url("/userinfo")).header("client-type", "api").bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), 200, "the session is still there");
}

#[tokio::test(flavor = "multi_thread")]
async fn password_grant_refresh_and_rotation() {
    let (idp, svc) = stack(Store::Memory).await;
    let http = reqwest::Client::new();
    // Wrong password: 403.
    let res = http
        .post(svc.url("/oauth/token"))
        .header("client-type", "api")
        .form(&[("grant_type", "password"), ("username", &dev_env("ADMIN_EMAIL")), ("password", "wrong")])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["statusCode"], 403);

    let res = http
        .post(svc.url("/oauth/token"))
        .header("client-type", "api")
        .form(&[
            ("grant_type", "password"),
            ("username", &dev_env("ADMIN_EMAIL")),
            ("password", &dev_env("ADMIN_PASSWORD")),
            ("connection", "dev-users"),
        ])
        .send()
        .await
        .unwrap();
    let (status, tokens) = json(res).await;
    assert_eq!(status, 200, "{tokens}");
    let access = tokens["accessToken"].as_str().unwrap().to_string();
    let refresh = tokens["refreshToken"].as_str().unwrap().to_string();

    // POST /refreshtoken with the bearer and the refresh token: new tokens, the old key is gone.
    let res = http
        .post(svc.url("/refreshtoken"))
        .header("client-type", "api")
        .bearer_auth(&access)
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    let (status, renewed) = json(res).await;
    assert_eq!(status, 200, "{renewed}");
    let new_access = renewed["accessToken"].as_str().unwrap();
    assert_ne!(new_access, access);
    assert_ne!(renewed["refreshToken"], refresh, "the idp rotates refresh tokens");
    let info = |token: String| {
        let http = http.clone();
        let url = svc.url("/userinfo");
        async move { http.get(url).bearer_auth(token).header("client-type", "api").send().await.unwrap().status() }
    };
    assert_eq!(info(access.clone()).await, 401);
    assert_eq!(info(new_access.to_string()).await, 200);

    // The old refresh token is spent: using it again is refused (401) and ends the session.
    let res = http
        .post(svc.url("/refreshtoken"))
        .header("client-type", "api")
        .bearer_auth(new_access)
        .json(&json!({"refresh_token": refresh}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    drop(idp);
}

/// An expired access token is refreshed inside /userinfo, once per session however many
/// requests arrive together: the idp detects refresh-token reuse (rotation), so a second refresh
/// with the same token would revoke the session's tokens and make later calls fail.
async fn refresh_inside_userinfo(store: Store) {
    let (idp, svc) = stack(store).await;
    let sid = website_login(&idp, &svc, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    let key = SessionKey::of(&sid);
    for round in 0..2 {
        let mut session = svc.app.sessions.get(&key).await.unwrap().unwrap();
        // Rotation gives a new refresh token each time (an access token minted in the same
        // second with the same claims may be byte-identical).
        let before = session.refresh_token.clone();
        session.expire_at = svc.clock.now_ms() - 1;
        assert!(svc.app.sessions.update(&key, &session).await.unwrap());
        let calls = (0..8).map(|_| {
            let svc_url = svc.url("/userinfo");
            let sid = sid.clone();
            tokio::spawn(async move {
                reqwest::Client::new()
                    .get(svc_url)
                    .header("cookie", format!("sid={sid}"))
                    .send()
                    .await
                    .unwrap()
                    .status()
            })
        });
        for c in calls.collect::<Vec<_>>() {
            assert_eq!(c.await.unwrap(), 200, "round {round}");
        }
        let after = svc.app.sessions.get(&key).await.unwrap().unwrap();
        assert_ne!(after.refresh_token, before, "round {round}: refreshed");
        assert!(after.expire_at > svc.clock.now_ms());
    }
    assert_eq!(get_with_sid(&svc, "/userinfo", &sid).await.status(), 200);

    // A refused refresh ends the session: 401.
    let mut session = svc.app.sessions.get(&key).await.unwrap().unwrap();
    session.expire_at = 0;
    session.refresh_token = "not-a-refresh-token".into();
    svc.app.sessions.update(&key, &session).await.unwrap();
    assert_eq!(get_with_sid(&svc, "/userinfo", &sid).await.status(), 401);
    assert!(svc.app.sessions.get(&key).await.unwrap().is_none());
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_inside_userinfo_is_single_flight_with_redis() {
    refresh_inside_userinfo(Store::Redis).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn refresh_inside_userinfo_is_single_flight_in_memory() {
    refresh_inside_userinfo(Store::Memory).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn cookie_refreshtoken_reissues_the_cookie() {
    let (idp, svc) = stack(Store::Redis).await;
    let sid = website_login(&idp, &svc, &dev_env("USER_EMAIL"), &dev_env("USER_PASSWORD")).await;
    let res = reqwest::Client::new()
        .post(svc.url("/refreshtoken"))
        .header("cookie", format!("sid={sid}"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert_eq!(sid_cookie(&res).as_deref(), Some(sid.as_str()));
    assert!(res.text().await.unwrap().is_empty());
    assert_eq!(get_with_sid(&svc, "/userinfo", &sid).await.status(), 200);
}

/// The guide's post-login action copies app_metadata into the ID token under MIA_NAMESPACE;
/// customClaimsNamespaces hoists it, so the admin's groups reach /userinfo.
#[tokio::test(flavor = "multi_thread")]
async fn groups_come_from_the_guides_action() {
    let (idp, svc) = stack(Store::Redis).await;
    let sid = website_login(&idp, &svc, &dev_env("ADMIN_EMAIL"), &dev_env("ADMIN_PASSWORD")).await;
    let (status, info) = json(get_with_sid(&svc, "/userinfo", &sid).await).await;
    assert_eq!(status, 200);
    assert_eq!(info["groups"], json!(["admin"]), "{info}");
    assert!(info.get(format!("{NAMESPACE}app_metadata").as_str()).is_none(), "hoisted: {info}");
    let session = svc.app.sessions.get(&SessionKey::of(&sid)).await.unwrap().unwrap();
    let claims: Value = {
        use base64::Engine;
        let payload = session.id_token.split('.').nth(1).unwrap();
        serde_json::from_slice(&base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).unwrap()).unwrap()
    };
    assert_eq!(claims[format!("{NAMESPACE}app_metadata")]["groups"], json!(["admin"]));
}
