//! `/oauth/token` and its neighbours: every grant, client authentication both ways, and each
//! refusal in Auth0's exact shape.

use crate::harness::*;
use serde_json::{Value, json};

async fn post_form(t: &TestIdp, path: &str, form: &[(&str, &str)]) -> (u16, Value) {
    json(reqwest::Client::new().post(t.url(path)).form(form).send().await.unwrap()).await
}

async fn post_json(t: &TestIdp, path: &str, body: Value) -> (u16, Value) {
    json(reqwest::Client::new().post(t.url(path)).json(&body).send().await.unwrap()).await
}

fn m2m(extra: Value) -> Value {
    let mut body = json!({"grant_type": "client_credentials", "client_id": kw("MGMT_CLIENT_ID"), "client_secret": kw("MGMT_CLIENT_SECRET")});
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    body
}

#[tokio::test]
async fn client_credentials_for_the_management_api() {
    let t = start().await;
    let audience = t.idp.config.management_audience();
    let (status, body) = post_json(&t, "oauth/token", m2m(json!({"audience": audience, "scope": null}))).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["expires_in"], 86400);
    assert!(body.get("id_token").is_none() && body.get("refresh_token").is_none());
    let c = claims(body["access_token"].as_str().unwrap());
    assert_eq!(c["aud"], audience.as_str());
    assert_eq!(c["gty"], "client-credentials");
    assert_eq!(c["sub"], format!("{}@clients", kw("MGMT_CLIENT_ID")));
    assert!(c["scope"].as_str().unwrap().split(' ').any(|s| s == "update:users_app_metadata"));

    // Narrower scopes are granted as asked; an ungranted one is refused by name.
    let (_, body) = post_json(&t, "oauth/token", m2m(json!({"audience": audience, "scope": "read:users"}))).await;
    assert_eq!(body["scope"], "read:users");
    let (status, body) =
        post_json(&t, "oauth/token", m2m(json!({"audience": audience, "scope": "read:users delete:clients"}))).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (403, Some("Client has not been granted scopes: delete:clients"))
    );

    // No grant for the CMS API.
    let (status, body) = post_json(&t, "oauth/token", m2m(json!({"audience": "http://localhost:8080/"}))).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("access_denied")));
    assert!(body["error_description"].as_str().unwrap().contains("You need to create a \"client-grant\""));
    let (status, body) = post_json(&t, "oauth/token", m2m(json!({"audience": "https://nowhere.example/"}))).await;
    assert_eq!(
        (status, body["error_description"].as_str()),
        (403, Some("Service not enabled within domain: https://nowhere.example/"))
    );
    let (status, body) = post_json(&t, "oauth/token", m2m(json!({}))).await;
    assert_eq!(status, 403);
    assert_eq!(
        body["error_description"],
        "No audience parameter was provided, and no default audience has been configured"
    );
}

#[tokio::test]
async fn client_authentication_post_basic_and_refusals() {
    let t = start().await;
    let audience = t.idp.config.management_audience();
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .basic_auth(kw("MGMT_CLIENT_ID"), Some(kw("MGMT_CLIENT_SECRET")))
        .form(&[("grant_type", "client_credentials"), ("audience", audience.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200, "client_secret_basic");
    for body in [
        m2m(json!({"client_secret": "wrong", "audience": audience})),
        m2m(json!({"client_id": "unknown-client", "audience": audience})),
        json!({"grant_type": "client_credentials", "client_id": kw("MGMT_CLIENT_ID"), "audience": audience}),
    ] {
        let (status, b) = post_json(&t, "oauth/token", body).await;
        assert_eq!(
            (status, b["error"].as_str(), b["error_description"].as_str()),
            (401, Some("access_denied"), Some("Unauthorized"))
        );
    }
    // A grant type the application does not have.
    let (status, b) = post_json(&t, "oauth/token", json!({"grant_type": "client_credentials", "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"), "audience": audience})).await;
    assert_eq!((status, b["error"].as_str()), (403, Some("unauthorized_client")));
    assert_eq!(b["error_description"], "Grant type 'client_credentials' not allowed for the client.");
}

#[tokio::test]
async fn a_public_client_never_gets_client_credentials() {
    let t = start().await;
    let admin = management_token(&t, None).await;
    let (status, spa) = call(
        &t,
        &admin,
        reqwest::Method::POST,
        "clients",
        Some(json!({"name": "Public SPA", "app_type": "spa", "token_endpoint_auth_method": "none",
                    "grant_types": ["authorization_code", "client_credentials"],
                    "callbacks": ["https://spa.example.test/cb"]})),
    )
    .await;
    assert_eq!(status, 201, "{spa}");
    let id = spa["client_id"].as_str().unwrap();
    let audience = "http://localhost:8080/";
    let (status, grant) = call(
        &t,
        &admin,
        reqwest::Method::POST,
        "client-grants",
        Some(json!({"client_id": id, "audience": audience, "scope": []})),
    )
    .await;
    assert_eq!(status, 201, "{grant}");
    // Knowing the id is all it takes to name a public client: no token for that.
    let (status, b) = post_json(
        &t,
        "oauth/token",
        json!({"grant_type": "client_credentials", "client_id": id, "audience": audience}),
    )
    .await;
    assert_eq!((status, b["error"].as_str()), (403, Some("unauthorized_client")), "{b}");
}

#[tokio::test]
async fn malformed_bodies_get_invalid_request() {
    let t = start().await;
    let http = reqwest::Client::new();
    let url = t.url("oauth/token");
    let cases: Vec<(reqwest::RequestBuilder, u16)> = vec![
        (http.post(&url).header("content-type", "application/json").body("{not json"), 400),
        (http.post(&url).header("content-type", "application/json").body("[1,2]"), 400),
        (http.post(&url).json(&json!({"grant_type": ["password"]})), 400),
        (http.post(&url).header("content-type", "text/plain").body("grant_type=password"), 400),
        (http.post(&url).form(&[("client_id", "x")]), 400),
        (
            http.post(&url)
                .body("grant_type=a&grant_type=b")
                .header("content-type", "application/x-www-form-urlencoded"),
            400,
        ),
        (http.post(&url).form(&[("grant_type", "urn:made:up")]), 403),
    ];
    for (i, (req, want)) in cases.into_iter().enumerate() {
        let (status, body) = json(req.send().await.unwrap()).await;
        assert_eq!(status, want, "case {i}: {body}");
        assert!(body["error"].is_string() && body["error_description"].is_string(), "case {i}: {body}");
    }
    let (_, body) = post_form(&t, "oauth/token", &[("client_id", "x")]).await;
    assert_eq!(body["error_description"], "Missing required parameter: grant_type");
    let huge = "a".repeat(100 * 1024);
    let res = http.post(&url).form(&[("grant_type", "password"), ("password", huge.as_str())]).send().await.unwrap();
    let (status, body) = json(res).await;
    assert_eq!((status, body["error"].as_str()), (413, Some("invalid_request")));
}

/// `body` as `application/json`, exactly as written (so it may repeat a key).
async fn post_raw_json(t: &TestIdp, path: &str, body: &str) -> (u16, Value) {
    let req = reqwest::Client::new().post(t.url(path)).header("content-type", "application/json");
    json(req.body(body.to_string()).send().await.unwrap()).await
}

#[tokio::test]
async fn json_bodies_repeating_a_key_are_refused_as_repeated_form_parameters_are() {
    let t = start().await;
    let (id, secret, audience) = (kw("MGMT_CLIENT_ID"), kw("MGMT_CLIENT_SECRET"), t.idp.config.management_audience());
    // serde_json alone keeps the last copy: a wrong secret first, the right one last, got a token.
    let body = format!(
        r#"{{"grant_type":"client_credentials","client_id":"{id}","client_secret":"wrong","audience":"{audience}","client_secret":"{secret}"}}"#
    );
    let (status, b) = post_raw_json(&t, "oauth/token", &body).await;
    assert_eq!((status, b["error"].as_str()), (400, Some("invalid_request")), "{b}");
    assert_eq!(b["error_description"], "Parameter client_secret was sent more than once");
    // The same body without the repetition is fine.
    let once = body.replace(r#""client_secret":"wrong","#, "");
    let (status, b) = post_raw_json(&t, "oauth/token", &once).await;
    assert_eq!(status, 200, "{b}");
    // Nested objects count too: a parameter's value is refused, not flattened.
    let (status, b) =
        post_raw_json(&t, "oauth/token", &once.replace(r#""grant_type""#, r#""x":{"a":1,"a":2},"grant_type""#)).await;
    assert_eq!((status, b["error"].as_str()), (400, Some("invalid_request")), "{b}");

    let cms = kw("CMS_CLIENT_ID");
    let revoke =
        format!(r#"{{"client_id":"{cms}","client_secret":"{}","token":"a","token":"b"}}"#, kw("CMS_CLIENT_SECRET"));
    let (status, b) = post_raw_json(&t, "oauth/revoke", &revoke).await;
    assert_eq!((status, b["error"].as_str()), (400, Some("invalid_request")), "{b}");

    // The database endpoints answer in their own shape; the typed fields already refused a
    // repeat, so these repeat what they did not check: metadata and unknown keys.
    let mut conn = t.idp.store.connection_by_name("prod-users").await.unwrap().unwrap();
    conn.options.insert("disable_signup".into(), json!(false));
    t.idp.store.put_connection(&conn).await.unwrap();
    let signup = format!(
        r#"{{"client_id":"{cms}","email":"dup@cms.example.test","password":"Str0ng-Passw0rd!","connection":"prod-users","user_metadata":{{"plan":"free","plan":"pro"}}}}"#
    );
    let (status, b) = post_raw_json(&t, "dbconnections/signup", &signup).await;
    assert_eq!((status, b["code"].as_str(), b["statusCode"].as_i64()), (400, Some("invalid_body"), Some(400)), "{b}");
    assert!(b["description"].as_str().unwrap().contains("\"plan\""), "{b}");
    assert!(
        t.idp.store.user_by_login("prod-users", "dup@cms.example.test").await.unwrap().is_none(),
        "nothing written"
    );
    let change =
        format!(r#"{{"client_id":"{cms}","email":"{}","connection":"dev-users","x":1,"x":2}}"#, kw("USER_EMAIL"));
    let (status, b) = post_raw_json(&t, "dbconnections/change_password", &change).await;
    assert_eq!((status, b["code"].as_str()), (400, Some("invalid_body")), "{b}");
    t.flush_mail().await;
    assert!(
        !t.data.join("outbox").exists() || std::fs::read_dir(t.data.join("outbox")).unwrap().next().is_none(),
        "no mail"
    );
}

#[tokio::test]
async fn chunked_bodies_over_the_limit_get_the_oauth_413() {
    let t = start().await;
    let form = [("content-type", "application/x-www-form-urlencoded")];
    // No Content-Length to refuse up front: the limit holds as the chunks arrive.
    let huge = format!("grant_type=password&password={}", "a".repeat(100 * 1024));
    let (status, body) = post_chunked(&t, "oauth/token", &form, huge.as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert_eq!(body, json!({"error": "invalid_request", "error_description": "Request body too large"}));
    // A chunked body within the limit reaches the endpoint whole.
    let small = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "client_credentials")
        .append_pair("client_id", &kw("MGMT_CLIENT_ID"))
        .append_pair("client_secret", &kw("MGMT_CLIENT_SECRET"))
        .append_pair("audience", &t.idp.config.management_audience())
        .finish();
    let (status, body) = post_chunked(&t, "oauth/token", &form, small.as_bytes()).await;
    assert_eq!(status, 200, "{body}");
    assert!(serde_json::from_str::<Value>(&body).unwrap()["access_token"].is_string(), "{body}");
}

#[tokio::test]
async fn a_body_that_stops_arriving_gets_a_504_in_each_apis_shape_not_a_hang() {
    let limit = std::time::Duration::from_millis(300);
    let t = start_on(sqlite_store().await, true, |c| c.request_timeout = limit).await;
    let token = management_token(&t, None).await;
    let cases = [
        ("oauth/token", "application/x-www-form-urlencoded", String::new()),
        ("api/v2/users", "application/json", format!("Authorization: Bearer {token}\r\n")),
    ];
    let mut answers = Vec::new();
    for (path, content_type, auth) in cases {
        // 100 bytes announced, 11 sent, and then nothing (the connection stays open).
        let wire = format!(
            "POST /{path} HTTP/1.1\r\nHost: {}\r\nContent-Type: {content_type}\r\n{auth}Content-Length: 100\r\n\r\ngrant_type=",
            t.idp.config.domain()
        );
        let started = std::time::Instant::now();
        let (status, body) = tokio::time::timeout(10 * limit, send_raw(&t, wire.as_bytes()))
            .await
            .unwrap_or_else(|_| panic!("{path}: no answer to a stalled body"));
        assert!(started.elapsed() >= limit, "{path}: answered before the limit");
        assert_eq!(status, 504, "{path}: {body}");
        answers.push(serde_json::from_str::<Value>(&body).unwrap_or_else(|_| panic!("{path}: not JSON: {body}")));
    }
    assert_eq!(
        answers[0],
        json!({"error": "temporarily_unavailable", "error_description": "The request took too long"})
    );
    assert_eq!(
        answers[1],
        json!({"statusCode": 504, "error": "Gateway Timeout", "message": "The request took too long"})
    );
}

#[tokio::test]
async fn password_grants_and_their_refusals() {
    let t = start().await;
    let base = || json!({"client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"), "username": kw("ADMIN_EMAIL"), "password": kw("ADMIN_PASSWORD"), "scope": "openid profile email", "audience": null, "realm": null});
    let mut ok = base();
    ok["grant_type"] = json!("password");
    let (status, body) = post_json(&t, "oauth/token", ok).await;
    assert_eq!(status, 200, "password grant through the default directory: {body}");
    let id = claims(body["id_token"].as_str().unwrap());
    assert!(id.get("nonce").is_none(), "no nonce on password-grant ID tokens");
    assert_eq!(claims(body["access_token"].as_str().unwrap())["gty"], "password");

    let mut wrong = base();
    wrong["grant_type"] = json!("http://auth0.com/oauth/grant-type/password-realm");
    wrong["realm"] = json!("dev-users");
    wrong["password"] = json!("nope");
    let (status, body) = post_json(&t, "oauth/token", wrong).await;
    assert_eq!(
        (status, body["error"].as_str(), body["error_description"].as_str()),
        (403, Some("invalid_grant"), Some("Wrong email or password."))
    );

    let mut other_realm = base();
    other_realm["grant_type"] = json!("http://auth0.com/oauth/grant-type/password-realm");
    other_realm["realm"] = json!("prod-users");
    let (status, _) = post_json(&t, "oauth/token", other_realm).await;
    assert_eq!(status, 403, "the admin lives in dev-users only");

    // A blocked user.
    let mut stored = t.idp.store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap();
    stored.user.blocked = true;
    t.idp.store.update_user(&stored).await.unwrap();
    let mut ok = base();
    ok["grant_type"] = json!("password");
    let (status, body) = post_json(&t, "oauth/token", ok).await;
    assert_eq!(
        (status, body["error"].as_str(), body["error_description"].as_str()),
        (401, Some("unauthorized"), Some("user is blocked"))
    );
}

#[tokio::test]
async fn codes_are_single_use_and_bound_to_pkce_and_redirect_uri() {
    let t = start().await;
    let b = browser();
    let code_for = |b: reqwest::Client| {
        let t = &t;
        async move {
            let res = b.get(authorize_url(t, &[])).send().await.unwrap();
            let loc = location(&res);
            let loc = if loc.contains("/u/login") {
                let r = login(t, &b, &authorize_url(t, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
                location(&r)
            } else {
                loc
            };
            query_param(&loc, "code").unwrap()
        }
    };
    // Wrong and missing verifier.
    let code = code_for(b.clone()).await;
    let (status, body) = json(exchange_code(&t, &code, &"x".repeat(43)).await).await;
    assert_eq!((status, body["error_description"].as_str()), (403, Some("Failed to verify code verifier")));
    let code = code_for(b.clone()).await;
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("code", &code),
            ("redirect_uri", CALLBACK),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await.0, 403);
    // Different redirect_uri.
    let code = code_for(b.clone()).await;
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "authorization_code"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("code", &code),
            ("redirect_uri", "http://localhost:8080/other"),
            ("code_verifier", VERIFIER),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(json(res).await.0, 403);

    // Reuse: the second exchange fails and the first exchange's refresh token dies with it.
    let code = code_for(b.clone()).await;
    let (status, first) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(status, 200);
    let (status, body) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!((status, body["error_description"].as_str()), (403, Some("Invalid authorization code")));
    let rt = first["refresh_token"].as_str().unwrap();
    let (status, _) = post_form(
        &t,
        "oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("refresh_token", rt),
        ],
    )
    .await;
    assert_eq!(status, 403, "refresh tokens from a replayed code are revoked");
    let (status, _) = json(exchange_code(&t, "made-up-code", VERIFIER).await).await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn expired_codes_are_refused() {
    let t = start_on(sqlite_store().await, true, |c| c.code_ttl_secs = 0).await;
    let b = browser();
    let res = login(&t, &b, &authorize_url(&t, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let code = query_param(&location(&res), "code").unwrap();
    let (status, body) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!((status, body["error_description"].as_str()), (403, Some("Invalid authorization code")));
}

#[tokio::test]
async fn refresh_tokens_rotate_and_reuse_revokes_the_family() {
    let t = start().await;
    let b = browser();
    let res = login(&t, &b, &authorize_url(&t, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let (_, body) = json(exchange_code(&t, &query_param(&location(&res), "code").unwrap(), VERIFIER).await).await;
    let rt1 = body["refresh_token"].as_str().unwrap().to_string();
    let refresh = |rt: String, scope: Option<&'static str>| {
        let t = &t;
        async move {
            let mut form = vec![
                ("grant_type", "refresh_token".to_string()),
                ("client_id", kw("CMS_CLIENT_ID")),
                ("client_secret", kw("CMS_CLIENT_SECRET")),
                ("refresh_token", rt),
            ];
            if let Some(s) = scope {
                form.push(("scope", s.to_string()));
            }
            json(reqwest::Client::new().post(t.url("oauth/token")).form(&form).send().await.unwrap()).await
        }
    };
    let (status, b2) = refresh(rt1.clone(), None).await;
    assert_eq!(status, 200, "{b2}");
    let rt2 = b2["refresh_token"].as_str().expect("rotation returns a successor").to_string();
    assert_ne!(rt1, rt2);
    let id = claims(b2["id_token"].as_str().unwrap());
    assert!(id.get("nonce").is_none(), "no nonce on refreshed ID tokens");
    assert_eq!(claims(b2["access_token"].as_str().unwrap())["gty"], "refresh_token");

    let (status, b3) = refresh(rt2.clone(), Some("openid email")).await;
    assert_eq!(status, 200, "narrowing is allowed");
    assert!(b3["scope"].as_str().unwrap().contains("email"));
    let (status, body) =
        refresh(b3["refresh_token"].as_str().unwrap().to_string(), Some("openid read:everything")).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_scope")));

    // Reusing rt1 (already rotated) revokes every descendant.
    let (status, body) = refresh(rt1, None).await;
    assert_eq!((status, body["error_description"].as_str()), (403, Some("Unknown or invalid refresh token.")));
    let (status, _) = refresh(b3["refresh_token"].as_str().unwrap().to_string(), None).await;
    assert_eq!(status, 403, "the family is revoked");
}

/// The CMS's refresh tokens (rotating, expiring) with the given leeway; returns a fresh one.
async fn cms_refresh_token(t: &TestIdp, leeway: i64) -> String {
    cms_refresh_token_of(t, "rotating", leeway).await
}

/// The CMS's refresh tokens (`rotation`, expiring, idle lifetime 15 days) with the given
/// leeway; returns a fresh one.
async fn cms_refresh_token_of(t: &TestIdp, rotation: &str, leeway: i64) -> String {
    let admin = management_token(t, None).await;
    let path = format!("clients/{}", kw("CMS_CLIENT_ID"));
    let policy = json!({"rotation_type": rotation, "expiration_type": "expiring", "leeway": leeway,
        "token_lifetime": 2592000, "idle_token_lifetime": 1296000,
        "infinite_token_lifetime": false, "infinite_idle_token_lifetime": false});
    let (status, body) = call(t, &admin, reqwest::Method::PATCH, &path, Some(json!({"refresh_token": policy}))).await;
    assert_eq!(status, 200, "{body}");
    let (_, body) = post_json(t, "oauth/token", json!({"grant_type": "password", "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"), "username": kw("USER_EMAIL"), "password": kw("USER_PASSWORD"), "scope": "openid offline_access"})).await;
    body["refresh_token"].as_str().expect("offline_access").to_string()
}

async fn refresh_with(t: &TestIdp, rt: &str) -> (u16, Value) {
    post_form(
        t,
        "oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("refresh_token", rt),
        ],
    )
    .await
}

#[tokio::test]
async fn within_the_leeway_a_retired_refresh_token_gets_a_successor_of_its_own() {
    let t = start().await;
    let rt1 = cms_refresh_token(&t, 60).await;
    let (status, b2) = refresh_with(&t, &rt1).await;
    assert_eq!(status, 200, "{b2}");
    let rt2 = b2["refresh_token"].as_str().unwrap();
    // The response was "lost": the client retries with rt1 and must not be left with it alone.
    let (status, retry) = refresh_with(&t, &rt1).await;
    assert_eq!(status, 200, "{retry}");
    let rt2b = retry["refresh_token"].as_str().expect("a successor for the retry");
    assert_ne!(rt2b, rt2);
    for rt in [rt2, rt2b] {
        assert_eq!(refresh_with(&t, rt).await.0, 200, "both successors live");
    }

    // Two exchanges of one token at once (two tabs): both get tokens, nothing is revoked.
    let rt = cms_refresh_token(&t, 60).await;
    let (a, b) = tokio::join!(refresh_with(&t, &rt), refresh_with(&t, &rt));
    for (status, body) in [&a, &b] {
        assert_eq!(*status, 200, "{body}");
        assert_eq!(refresh_with(&t, body["refresh_token"].as_str().unwrap()).await.0, 200);
    }
}

#[tokio::test]
async fn the_leeway_tolerates_only_the_token_just_rotated() {
    let t = start().await;
    let rt1 = cms_refresh_token(&t, 60).await;
    let (_, b2) = refresh_with(&t, &rt1).await;
    let rt2 = b2["refresh_token"].as_str().unwrap().to_string();
    let (_, b3) = refresh_with(&t, &rt2).await;
    let rt3 = b3["refresh_token"].as_str().unwrap().to_string();
    // rt2 was just rotated: a retry of it is tolerated within the leeway.
    let (status, retry) = refresh_with(&t, &rt2).await;
    assert_eq!(status, 200, "{retry}");
    // rt1 was retired two rotations ago, well within the leeway's minute: that is a replay.
    let (status, body) = refresh_with(&t, &rt1).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_grant")), "{body}");
    for rt in [rt3.as_str(), retry["refresh_token"].as_str().unwrap()] {
        assert_eq!(refresh_with(&t, rt).await.0, 403, "the family is revoked");
    }
}

#[tokio::test]
async fn a_non_rotating_refresh_token_dies_after_its_idle_lifetime_and_its_use_is_recorded() {
    let t = start().await;
    let rt = cms_refresh_token_of(&t, "non-rotating", 0).await;
    let digest = |token: &str| idp::util::sha256(token.as_bytes());
    let stored = t.idp.store.refresh_token(&digest(&rt)).await.unwrap().unwrap();
    const IDLE_MS: i64 = 1_296_000 * 1000;
    let now = stored.created_at;
    // Copies of it, born a month ago, last used just over and just under 15 days ago.
    let aged = |last_used_ago: i64, token: &str| store::RefreshToken {
        token_sha256: digest(token),
        created_at: now - 2 * IDLE_MS,
        last_used_at: Some(now - last_used_ago),
        ..stored.clone()
    };
    t.idp.store.put_refresh_token(&aged(IDLE_MS + 60_000, "idle-too-long")).await.unwrap();
    t.idp.store.put_refresh_token(&aged(IDLE_MS - 60_000, "idle-but-not-too-long")).await.unwrap();
    t.idp.store.put_refresh_token(&aged(30_000, "used-half-a-minute-ago")).await.unwrap();
    let (status, body) = refresh_with(&t, "idle-too-long").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_grant")), "{body}");

    // A use is recorded, so the token lives another idle lifetime from now…
    let (status, body) = refresh_with(&t, "idle-but-not-too-long").await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("refresh_token").is_none(), "non-rotating: no successor");
    let last_use = t.idp.store.refresh_token(&digest("idle-but-not-too-long")).await.unwrap().unwrap().last_used_at;
    assert!(last_use.is_some_and(|at| at >= now), "{last_use:?}");
    // …but at most once a minute, so frequent exchanges cost no write each.
    assert_eq!(refresh_with(&t, "used-half-a-minute-ago").await.0, 200);
    let recorded = t.idp.store.refresh_token(&digest("used-half-a-minute-ago")).await.unwrap().unwrap();
    assert_eq!(recorded.last_used_at, Some(now - 30_000));
}

#[tokio::test]
async fn with_no_leeway_any_reuse_revokes_the_family_even_at_once() {
    let t = start().await;
    let rt = cms_refresh_token(&t, 0).await;
    let (a, b) = tokio::join!(refresh_with(&t, &rt), refresh_with(&t, &rt));
    let ok: Vec<&Value> = [&a, &b].into_iter().filter(|(s, _)| *s == 200).map(|(_, b)| b).collect();
    assert!(ok.len() <= 1, "one winner at most: {a:?} {b:?}");
    // The token was presented twice: whatever the winner got is revoked with the family.
    for body in ok {
        assert_eq!(refresh_with(&t, body["refresh_token"].as_str().unwrap()).await.0, 403);
    }
}

#[tokio::test]
async fn an_unused_rotating_refresh_token_dies_after_its_idle_lifetime() {
    let t = start().await;
    let rt = cms_refresh_token(&t, 0).await;
    let stored = t.idp.store.refresh_token(&idp::util::sha256(rt.as_bytes())).await.unwrap().unwrap();
    // Two copies of it, as if issued 15 days (the idle lifetime) ago, give or take a minute.
    let aged = |age_secs: i64, token: &str| store::RefreshToken {
        token_sha256: idp::util::sha256(token.as_bytes()),
        created_at: stored.created_at - age_secs * 1000,
        ..stored.clone()
    };
    t.idp.store.put_refresh_token(&aged(1_296_000 + 60, "idle-too-long")).await.unwrap();
    t.idp.store.put_refresh_token(&aged(1_296_000 - 60, "idle-but-not-too-long")).await.unwrap();
    let (status, body) = refresh_with(&t, "idle-too-long").await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_grant")), "{body}");
    assert_eq!(refresh_with(&t, "idle-but-not-too-long").await.0, 200);
}

#[tokio::test]
async fn revoke_ends_a_refresh_token() {
    let t = start().await;
    let (_, body) = post_json(&t, "oauth/token", json!({"grant_type": "password", "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"), "username": kw("USER_EMAIL"), "password": kw("USER_PASSWORD"), "scope": "openid offline_access"})).await;
    let rt = body["refresh_token"].as_str().expect("offline_access").to_string();
    let res = reqwest::Client::new()
        .post(t.url("oauth/revoke"))
        .json(&json!({"client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"), "token": rt}))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    let (status, _) = post_form(
        &t,
        "oauth/token",
        &[
            ("grant_type", "refresh_token"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("refresh_token", &rt),
        ],
    )
    .await;
    assert_eq!(status, 403);
}

#[tokio::test]
async fn signup_is_refused_where_disabled() {
    let t = start().await;
    let (status, body) = post_json(&t, "dbconnections/signup", json!({"client_id": kw("CMS_CLIENT_ID"), "email": "new@cms.example.test", "password": "Str0ng-Passw0rd!", "connection": "dev-users"})).await;
    assert_eq!(
        (status, body["code"].as_str(), body["statusCode"].as_i64()),
        (400, Some("operation_not_allowed"), Some(400))
    );
    assert!(t.idp.store.user_by_login("dev-users", "new@cms.example.test").await.unwrap().is_none(), "nothing written");

    // Enabled on a connection: works once, then the email is taken; weak passwords refused.
    let mut conn = t.idp.store.connection_by_name("prod-users").await.unwrap().unwrap();
    conn.options.insert("disable_signup".into(), json!(false));
    t.idp.store.put_connection(&conn).await.unwrap();
    let body = json!({"client_id": kw("CMS_CLIENT_ID"), "email": "new@cms.example.test", "password": "Str0ng-Passw0rd!", "connection": "prod-users"});
    let (status, created) = post_json(&t, "dbconnections/signup", body.clone()).await;
    assert_eq!(status, 200, "{created}");
    assert_eq!(created["email"], "new@cms.example.test");
    assert_eq!(created["_id"].as_str().unwrap().len(), 24);
    let (status, dup) = post_json(&t, "dbconnections/signup", body).await;
    assert_eq!((status, dup["code"].as_str()), (400, Some("invalid_signup")));
    let (status, weak) = post_json(&t, "dbconnections/signup", json!({"client_id": kw("CMS_CLIENT_ID"), "email": "w@cms.example.test", "password": "weak", "connection": "prod-users"})).await;
    assert_eq!((status, weak["name"].as_str()), (400, Some("PasswordStrengthError")));
    let (status, _) =
        post_json(&t, "dbconnections/signup", json!({"client_id": kw("CMS_CLIENT_ID"), "email": 5})).await;
    assert_eq!(status, 400);
}

/// Public sign-up holds profile strings to the Management API's bound and metadata names to
/// Auth0's 100 characters: what it stores goes into every ID token of the account.
#[tokio::test]
async fn public_signup_bounds_what_it_stores() {
    let t = start().await;
    let mut conn = t.idp.store.connection_by_name("prod-users").await.unwrap().unwrap();
    conn.options.insert("disable_signup".into(), json!(false));
    t.idp.store.put_connection(&conn).await.unwrap();
    let signup = |email: &str, extra: Value| {
        let mut body = json!({"client_id": kw("CMS_CLIENT_ID"), "email": email, "password": "Str0ng-Passw0rd!", "connection": "prod-users"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        body
    };
    for (i, extra) in [
        json!({"name": "n".repeat(301)}),
        json!({"nickname": "é".repeat(301)}),
        json!({"picture": format!("https://example.test/{}", "p".repeat(300))}),
        json!({"given_name": "g".repeat(20_000)}),
        json!({"user_metadata": {"k".repeat(101): "v"}}),
    ]
    .into_iter()
    .enumerate()
    {
        let email = format!("long{i}@cms.example.test");
        let (status, body) = post_json(&t, "dbconnections/signup", signup(&email, extra)).await;
        assert_eq!((status, body["statusCode"].as_i64()), (400, Some(400)), "case {i}: {body}");
        assert!(t.idp.store.user_by_login("prod-users", &email).await.unwrap().is_none(), "case {i}: nothing written");
    }
    let fits = json!({"name": "é".repeat(300), "user_metadata": {"k".repeat(100): "v".repeat(500)}});
    let (status, body) = post_json(&t, "dbconnections/signup", signup("fits@cms.example.test", fits)).await;
    assert_eq!(status, 200, "{body}");
}

#[tokio::test]
async fn rotated_keys_stay_published_and_verify() {
    let t = start().await;
    let (_, body) = post_json(&t, "oauth/token", json!({"grant_type": "password", "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"), "username": kw("USER_EMAIL"), "password": kw("USER_PASSWORD"), "scope": "openid email"})).await;
    let old = body["access_token"].as_str().unwrap().to_string();
    t.idp.rotate_signing_key().await.unwrap();
    let (_, jwks) = json(reqwest::get(t.url(".well-known/jwks.json")).await.unwrap()).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
    let res = reqwest::Client::new().get(t.url("userinfo")).bearer_auth(&old).send().await.unwrap();
    assert_eq!(res.status(), 200, "tokens of the previous key stay valid");
    let res = reqwest::Client::new().get(t.url("userinfo")).bearer_auth(format!("{old}x")).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(reqwest::Client::new().get(t.url("userinfo")).send().await.unwrap().status(), 401);
}
