//! Stateless nodes: two idp processes' worth of nodes on one PostgreSQL database finish each
//! other's logins, because nothing a login needs lives in one node's memory.

use crate::harness::*;
use reqwest::Method;
use serde_json::Value;

/// Node A, provisioned, and node B on its own pool on the same schema, as a second process
/// would be; behind one load balancer both share the public URL (so the issuer) and the key
/// file that encrypts action secrets.
async fn two_nodes(tag: &str) -> (TestIdp, TestIdp) {
    let schema = pg_schema(tag);
    let a = start_on(pg_store_in(&schema).await, true, |_| {}).await;
    let public = url::Url::parse(&a.base).unwrap();
    let key = a.idp.config.secrets_key_path();
    let b = start_on(pg_store_in(&schema).await, false, move |c| {
        c.public_url = public;
        c.secrets_key = Some(key);
    })
    .await;
    (a, b)
}

#[tokio::test]
async fn a_login_started_on_one_node_finishes_on_another() {
    let (a, b) = two_nodes("nodes").await;

    let browser = browser();
    // /authorize on A, login form served and posted on B.
    let res = browser.get(authorize_url(&a, &[])).send().await.unwrap();
    let login_path = location(&res);
    let page_b = b.url(&login_path);
    let html = browser.get(&page_b).send().await.unwrap().text().await.unwrap();
    // The CSRF cookie was set for A's origin (another port); carry it to B as a shared
    // domain behind a load balancer would.
    let csrf = hidden(&html, "csrf").unwrap();
    let state = hidden(&html, "state").unwrap();
    let cookie_name = format!("gatehouse_login_{}", &state[..12]);
    let res = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
        .post(&page_b)
        .header("cookie", format!("{cookie_name}={csrf}"))
        .form(&[
            ("state", state.as_str()),
            ("csrf", csrf.as_str()),
            ("connection", "dev-users"),
            ("username", &kw("ADMIN_EMAIL")),
            ("password", &kw("ADMIN_PASSWORD")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 302);
    let code = query_param(&location(&res), "code").expect("B issued the code");
    // B issued it, A redeems it, and B's ID token verifies with A's JWKS (the keys are shared).
    let (status, body) = json(exchange_code(&a, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{body}");
    let userinfo = reqwest::Client::new()
        .get(b.url("userinfo"))
        .bearer_auth(body["access_token"].as_str().unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(userinfo.status(), 200);
    let (_, ja) = json(reqwest::get(a.url(".well-known/jwks.json")).await.unwrap()).await;
    let (_, jb) = json(reqwest::get(b.url(".well-known/jwks.json")).await.unwrap()).await;
    assert_eq!(ja, jb);
    // Brute-force counters are shared too: failures on A and B add up.
    let fail = |t: &TestIdp| {
        let url = t.url("oauth/token");
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "password"),
                    ("client_id", &kw("CMS_CLIENT_ID")),
                    ("client_secret", &kw("CMS_CLIENT_SECRET")),
                    ("username", &kw("USER_EMAIL")),
                    ("password", "bad"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    for i in 0..9 {
        assert_eq!(fail(if i % 2 == 0 { &a } else { &b }).await, 403);
    }
    assert_eq!(fail(&b).await, 429);
    assert_eq!(fail(&a).await, 429);
}

#[tokio::test]
async fn the_whole_login_works_on_postgres() {
    let t = start_on(pg_store("flow").await, true, |_| {}).await;
    let b = browser();
    let res = login(&t, &b, &authorize_url(&t, &[]), &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
    let code = query_param(&location(&res), "code").unwrap();
    let (status, body) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(status, 200);
    let (status, _) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(status, 403);
    let rt = body["refresh_token"].as_str().unwrap();
    let (status, _) = json(
        reqwest::Client::new()
            .post(t.url("oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &kw("CMS_CLIENT_ID")),
                ("client_secret", &kw("CMS_CLIENT_SECRET")),
                ("refresh_token", rt),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 403, "refresh tokens of a replayed code are revoked on PostgreSQL too");
}

/// Nodes cache clients, APIs and grants for the token endpoint; a change made through one node
/// applies there at once and on the others once their entry is older than the cache TTL (1 s).
#[tokio::test]
async fn a_grant_narrowed_on_one_node_is_enforced_by_the_other() {
    let (a, b) = two_nodes("nodes_grant").await;
    let audience = a.idp.config.management_audience();
    let ask = |t: &TestIdp| {
        let url = t.url("oauth/token");
        let audience = audience.clone();
        async move {
            reqwest::Client::new()
                .post(url)
                .form(&[
                    ("grant_type", "client_credentials"),
                    ("client_id", &kw("MGMT_CLIENT_ID")),
                    ("client_secret", &kw("MGMT_CLIENT_SECRET")),
                    ("audience", &audience),
                    ("scope", "delete:users"),
                ])
                .send()
                .await
                .unwrap()
                .status()
                .as_u16()
        }
    };
    assert_eq!(ask(&b).await, 200, "B caches the grant");

    let token = management_token(&a, None).await;
    let grants_url = a.url("api/v2/client-grants");
    let (_, grants) = json(reqwest::Client::new().get(&grants_url).bearer_auth(&token).send().await.unwrap()).await;
    let grant = grants
        .as_array()
        .unwrap()
        .iter()
        .find(|g| g["client_id"] == kw("MGMT_CLIENT_ID").as_str() && g["audience"] == audience.as_str())
        .unwrap();
    let narrowed: Vec<&str> =
        idp::provision::MANAGEMENT_SCOPES.iter().copied().filter(|s| *s != "delete:users").collect();
    let patch = reqwest::Client::new()
        .patch(format!("{grants_url}/{}", grant["id"].as_str().unwrap()))
        .bearer_auth(&token)
        .json(&serde_json::json!({ "scope": narrowed }))
        .send()
        .await
        .unwrap();
    assert_eq!(patch.status(), 200);
    let changed = std::time::Instant::now();
    assert_eq!(ask(&a).await, 403, "at once on the node that made the change");
    loop {
        if ask(&b).await == 403 {
            break;
        }
        assert!(changed.elapsed() < std::time::Duration::from_secs(3), "B kept granting a revoked scope");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_key_rotated_on_one_node_is_trusted_by_the_other_at_its_first_token() {
    let (a, b) = two_nodes("nodes_rotate").await;
    let old = management_token(&a, None).await;
    assert_eq!(call(&b, &old, Method::GET, "keys/signing", None).await.0, 200);

    let (status, rotated) = call(&a, &old, Method::POST, "keys/signing/rotate", None).await;
    assert_eq!(status, 200, "{rotated}");
    let new = management_token(&a, None).await;
    let kid = |jwt: &str| {
        let header = idp::util::b64url_decode(jwt.split('.').next().unwrap()).unwrap();
        serde_json::from_slice::<Value>(&header).unwrap()["kid"].as_str().unwrap().to_owned()
    };
    assert_eq!(kid(&new), rotated["kid"].as_str().unwrap());

    // B has not reloaded since A rotated: the unknown kid makes it read the keys, once.
    let (status, keys) = call(&b, &new, Method::GET, "keys/signing", None).await;
    assert_eq!(status, 200, "{keys}");
    assert_eq!(call(&b, &old, Method::GET, "keys/signing", None).await.0, 200, "the old key still verifies");
    let (_, ja) = json(reqwest::get(a.url(".well-known/jwks.json")).await.unwrap()).await;
    let (_, jb) = json(reqwest::get(b.url(".well-known/jwks.json")).await.unwrap()).await;
    assert_eq!(ja, jb);
}

#[tokio::test]
async fn a_code_replayed_on_one_node_revokes_its_access_token_on_the_other_within_a_second() {
    let (a, b) = two_nodes("nodes_replay").await;
    let res = login(&a, &browser(), &authorize_url(&a, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let code = query_param(&location(&res), "code").unwrap();
    let (status, body) = json(exchange_code(&a, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{body}");
    let access = body["access_token"].as_str().unwrap().to_string();
    let userinfo = |t: &TestIdp| {
        let req = reqwest::Client::new().get(t.url("userinfo")).bearer_auth(&access);
        async move { req.send().await.unwrap().status().as_u16() }
    };
    assert_eq!(userinfo(&b).await, 200, "B has checked the token (and read the revocations) before");

    assert_eq!(json(exchange_code(&a, &code, VERIFIER).await).await.0, 403);
    let replayed = std::time::Instant::now();
    assert_eq!(userinfo(&a).await, 401, "at once on the node that saw the replay");
    loop {
        if userinfo(&b).await == 401 {
            break;
        }
        assert!(replayed.elapsed() < std::time::Duration::from_secs(3), "B kept accepting the token");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }
}
