//! Stateless nodes: two idp processes' worth of nodes on one PostgreSQL database finish each
//! other's logins, because nothing a login needs lives in one node's memory.

use crate::harness::*;

#[tokio::test]
async fn a_login_started_on_one_node_finishes_on_another() {
    let schema = pg_schema("nodes");
    let a = start_on(pg_store_in(&schema).await, true, |_| {}).await;
    // Node B opens its own pool on the same schema, as a second process would.
    // Behind one load balancer both nodes share the public URL (and so the issuer).
    let public = url::Url::parse(&a.base).unwrap();
    // Nodes on one database share the key file that encrypts action secrets.
    let key = a.idp.config.secrets_key_path();
    let b = start_on(pg_store_in(&schema).await, false, move |c| {
        c.public_url = public;
        c.secrets_key = Some(key);
    })
    .await;

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
