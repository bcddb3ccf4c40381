//! A user's lifecycle through the Management API, end to end: blocking a user, lifting
//! brute-force blocks, listing and ending sessions, refresh tokens and grants (on two nodes of
//! one PostgreSQL database), and linking a Google identity into a database user.

use crate::harness::*;
use crate::social::{GOOGLE, NS, assert_error, configure_google, federated_login, pair_on, tokens_for, urlencode};
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::Duration;
use store::SqlStore;

async fn user_id(t: &TestIdp, email: &str) -> String {
    t.idp.store.user_by_login("dev-users", email).await.unwrap().unwrap().user.user_id
}

async fn post_form(t: &TestIdp, form: &[(&str, &str)]) -> (u16, Value) {
    json(reqwest::Client::new().post(t.url("oauth/token")).form(form).send().await.unwrap()).await
}

async fn password_grant(t: &TestIdp, email: &str, password: &str) -> (u16, Value) {
    let (id, secret) = (kw("CMS_CLIENT_ID"), kw("CMS_CLIENT_SECRET"));
    post_form(
        t,
        &[
            ("grant_type", "password"),
            ("client_id", &id),
            ("client_secret", &secret),
            ("username", email),
            ("password", password),
            ("scope", "openid offline_access"),
        ],
    )
    .await
}

async fn refresh(t: &TestIdp, token: &str) -> (u16, Value) {
    let (id, secret) = (kw("CMS_CLIENT_ID"), kw("CMS_CLIENT_SECRET"));
    post_form(
        t,
        &[("grant_type", "refresh_token"), ("client_id", &id), ("client_secret", &secret), ("refresh_token", token)],
    )
    .await
}

/// A browser login through the password form; returns the tokens.
async fn browser_login(t: &TestIdp, b: &reqwest::Client, email: &str, password: &str) -> Value {
    let res = login(t, b, &authorize_url(t, &[]), email, password).await;
    assert_eq!(res.status(), 302);
    let code = query_param(&location(&res), "code").unwrap_or_else(|| panic!("no code: {}", location(&res)));
    let (status, tokens) = json(exchange_code(t, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

async fn log_types(t: &TestIdp, token: &str, q: &str) -> Vec<Value> {
    assert!(t.idp.flush_logs(Duration::from_secs(5)).await);
    let (status, events) = call(t, token, Method::GET, &format!("logs?q={}", urlencode(q)), None).await;
    assert_eq!(status, 200, "{events}");
    events.as_array().unwrap().clone()
}

#[tokio::test]
async fn a_blocked_user_signs_in_no_way_until_unblocked() {
    let t = start().await;
    let admin = management_token(&t, None).await;
    let (email, password) = (kw("USER_EMAIL"), kw("USER_PASSWORD"));
    let id = user_id(&t, &email).await;
    let b = browser();
    let tokens = browser_login(&t, &b, &email, &password).await;
    let refresh_token = tokens["refresh_token"].as_str().unwrap().to_string();

    let path = format!("users/{}", urlencode(&id));
    let (status, body) = call(&t, &admin, Method::PATCH, &path, Some(json!({"blocked": true}))).await;
    assert_eq!((status, &body["blocked"]), (200, &json!(true)), "{body}");

    // The password grant, as Auth0 answers it.
    let (status, body) = password_grant(&t, &email, &password).await;
    assert_eq!(
        (status, body["error"].as_str(), body["error_description"].as_str()),
        (401, Some("unauthorized"), Some("user is blocked"))
    );
    // A refresh: Auth0's invalid_grant.
    let (status, body) = refresh(&t, &refresh_token).await;
    assert_eq!(
        (status, body["error"].as_str(), body["error_description"].as_str()),
        (403, Some("invalid_grant"), Some("user is blocked"))
    );
    // The SSO session of the browser: back to the application with the error, no login page.
    let res = b.get(authorize_url(&t, &[])).send().await.unwrap();
    assert_error(&location(&res), "unauthorized", "user is blocked");
    let res = b.get(authorize_url(&t, &[("prompt", "none")])).send().await.unwrap();
    assert_error(&location(&res), "unauthorized", "user is blocked");
    // The password form in a new browser: the right password ends the login the same way.
    let res = login(&t, &browser(), &authorize_url(&t, &[]), &email, &password).await;
    assert_eq!(res.status(), 302);
    assert_error(&location(&res), "unauthorized", "user is blocked");
    // ... and a wrong one still says only that it is wrong.
    let res = login(&t, &browser(), &authorize_url(&t, &[]), &email, "Wrong-Passw0rd!").await;
    assert_eq!(res.status(), 401, "the form again, never a redirect");
    assert!(res.text().await.unwrap().contains("Wrong email or password"));

    let failures = log_types(&t, &admin, "type:f").await;
    assert!(
        failures.iter().filter(|e| e["user_id"] == json!(id) && e["description"] == json!("user is blocked")).count()
            >= 3,
        "{failures:?}"
    );

    let (status, _) = call(&t, &admin, Method::PATCH, &path, Some(json!({"blocked": false}))).await;
    assert_eq!(status, 200);
    assert_eq!(password_grant(&t, &email, &password).await.0, 200);
    assert_eq!(refresh(&t, &refresh_token).await.0, 200, "unblocking gives the old refresh token back");
}

/// Three wrong passwords block the user from this address (the test's limit).
async fn block(t: &TestIdp, email: &str, password: &str) {
    for _ in 0..3 {
        password_grant(t, email, "Wrong-Passw0rd!").await;
    }
    assert_eq!(password_grant(t, email, password).await.0, 429, "blocked");
}

#[tokio::test]
async fn brute_force_blocks_are_listed_and_lifted() {
    let t = start_on(sqlite_store().await, true, |c| c.brute_force.max_attempts = 3).await;
    let admin = management_token(&t, None).await;
    let (email, password) = (kw("USER_EMAIL"), kw("USER_PASSWORD"));
    let id = user_id(&t, &email).await;
    block(&t, &email, &password).await;
    let by_identifier = format!("user-blocks?identifier={}", urlencode(&email));
    let expected = json!({"blocked_for": [{"identifier": email, "ip": "127.0.0.1", "connection": "dev-users"}]});
    assert_eq!(call(&t, &admin, Method::GET, &by_identifier, None).await, (200, expected.clone()));
    let by_id = format!("user-blocks/{}", urlencode(&id));
    assert_eq!(call(&t, &admin, Method::GET, &by_id, None).await, (200, expected));
    let nobody = "user-blocks?identifier=nobody%40example.test";
    assert_eq!(call(&t, &admin, Method::GET, nobody, None).await, (200, json!({"blocked_for": []})));

    // Scopes as Auth0 documents them; bad input in the API's shape.
    let reader = management_token(&t, Some(&["read:users"])).await;
    assert_eq!(call(&t, &reader, Method::GET, &by_id, None).await.0, 200);
    let (status, body) = call(&t, &reader, Method::DELETE, &by_id, None).await;
    assert_eq!((status, body["errorCode"].as_str()), (403, Some("insufficient_scope")), "{body}");
    let none = management_token(&t, Some(&["read:clients"])).await;
    assert_eq!(call(&t, &none, Method::GET, &by_identifier, None).await.0, 403);
    let (status, body) = call(&t, &admin, Method::GET, "user-blocks", None).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("invalid_query_string")), "{body}");
    let (status, body) = call(&t, &admin, Method::GET, "user-blocks/auth0%7Cnobody", None).await;
    assert_eq!((status, body["statusCode"].as_u64()), (404, Some(404)), "{body}");

    // Lifted by identifier: the right password works again at once.
    let (status, _) = call(&t, &admin, Method::DELETE, &by_identifier, None).await;
    assert_eq!(status, 204);
    assert_eq!(password_grant(&t, &email, &password).await.0, 200);
    // Lifted by user id.
    block(&t, &email, &password).await;
    assert_eq!(call(&t, &admin, Method::DELETE, &by_id, None).await.0, 204);
    assert_eq!(call(&t, &admin, Method::GET, &by_id, None).await, (200, json!({"blocked_for": []})));
    assert_eq!(password_grant(&t, &email, &password).await.0, 200);

    let released = log_types(&t, &admin, "type:ublkdu").await;
    assert_eq!(released.len(), 2, "{released:?}");
    assert_eq!(released[0]["user_id"], json!(id));
}

/// Node A, provisioned, and node B on the same PostgreSQL schema (as `nodes.rs` does).
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

/// Whether the browser's SSO session on `t` still signs it in without a password.
async fn sso_signs_in(t: &TestIdp, b: &reqwest::Client) -> bool {
    let res = b.get(authorize_url(t, &[("prompt", "none")])).send().await.unwrap();
    let back = location(&res);
    match query_param(&back, "error").as_deref() {
        None => query_param(&back, "code").is_some(),
        Some("login_required") => false,
        Some(other) => panic!("{other}: {back}"),
    }
}

#[tokio::test]
async fn sessions_refresh_tokens_and_grants_end_at_once_on_every_node() {
    let (a, b) = two_nodes("lifecycle").await;
    let admin = management_token(&a, None).await;
    let (email, password) = (kw("USER_EMAIL"), kw("USER_PASSWORD"));
    let id = user_id(&a, &email).await;
    let uid = urlencode(&id);
    let browser_a = browser();
    let tokens = browser_login(&a, &browser_a, &email, &password).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();

    // Listed on node B, in Auth0's shapes.
    let (status, sessions) = call(&b, &admin, Method::GET, &format!("users/{uid}/sessions"), None).await;
    assert_eq!(status, 200, "{sessions}");
    let list = sessions["sessions"].as_array().unwrap();
    assert_eq!(list.len(), 1, "{sessions}");
    let session = &list[0];
    assert_eq!(session["user_id"], json!(id));
    assert_eq!(session["clients"], json!([{"client_id": kw("CMS_CLIENT_ID")}]));
    for k in ["created_at", "updated_at", "authenticated_at", "expires_at"] {
        assert!(session[k].as_str().is_some_and(|s| s.ends_with('Z')), "{k}: {session}");
    }
    let sid = session["id"].as_str().unwrap().to_string();
    assert_eq!(call(&b, &admin, Method::GET, &format!("sessions/{sid}"), None).await, (200, session.clone()));

    let (status, listed) = call(&b, &admin, Method::GET, &format!("users/{uid}/refresh-tokens"), None).await;
    assert_eq!(status, 200, "{listed}");
    let rts = listed["tokens"].as_array().unwrap();
    assert_eq!(rts.len(), 1, "{listed}");
    assert_eq!(rts[0]["client_id"], json!(kw("CMS_CLIENT_ID")));
    assert_eq!(rts[0]["session_id"], json!(sid));
    assert_eq!(rts[0]["resource_servers"][0]["scopes"], json!("openid profile email offline_access"));
    let rt_id = rts[0]["id"].as_str().unwrap().to_string();
    assert_eq!(call(&b, &admin, Method::GET, &format!("refresh-tokens/{rt_id}"), None).await, (200, rts[0].clone()));

    let (status, grants) = call(&b, &admin, Method::GET, &format!("grants?user_id={uid}"), None).await;
    assert_eq!(status, 200, "{grants}");
    let grant = &grants[0];
    assert_eq!(grant["clientID"], json!(kw("CMS_CLIENT_ID")));
    assert_eq!(grant["audience"], json!(a.url("userinfo")));
    assert_eq!(grant["scope"], json!(["openid", "profile", "email", "offline_access"]));
    let paged = format!("grants?user_id={uid}&include_totals=true&per_page=1&page=0");
    let (_, page) = call(&b, &admin, Method::GET, &paged, None).await;
    assert_eq!((page["total"].as_u64(), page["grants"].as_array().map(Vec::len)), (Some(1), Some(1)));
    let (_, none) = call(&b, &admin, Method::GET, "grants?client_id=nobody", None).await;
    assert_eq!(none, json!([]));

    // Ended on B: A honours it at once (nothing of either is cached by a node).
    assert!(sso_signs_in(&a, &browser_a).await);
    assert_eq!(call(&b, &admin, Method::DELETE, &format!("sessions/{sid}"), None).await.0, 202);
    assert!(!sso_signs_in(&a, &browser_a).await, "the session ended on A too");
    assert_eq!(call(&a, &admin, Method::GET, &format!("sessions/{sid}"), None).await.0, 404);
    assert_eq!(refresh(&a, &rt).await.0, 200);
    assert_eq!(call(&b, &admin, Method::DELETE, &format!("refresh-tokens/{rt_id}"), None).await.0, 202);
    let (status, body) = refresh(&a, &rt).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_grant")), "{body}");
    assert_eq!(call(&a, &admin, Method::GET, &format!("refresh-tokens/{rt_id}"), None).await.0, 404);

    // Everything of the user at once (two browsers now), after paging through it.
    let tokens = browser_login(&a, &browser_a, &email, &password).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    browser_login(&b, &browser(), &email, &password).await;
    let (_, first) = call(&b, &admin, Method::GET, &format!("users/{uid}/sessions?take=1"), None).await;
    assert_eq!((first["sessions"].as_array().map(Vec::len), first["next"].as_str()), (Some(1), Some("1")), "{first}");
    let (_, second) = call(&a, &admin, Method::GET, &format!("users/{uid}/sessions?take=1&from=1"), None).await;
    assert_eq!((second["sessions"].as_array().map(Vec::len), second.get("next")), (Some(1), None), "{second}");
    assert_ne!(first["sessions"][0]["id"], second["sessions"][0]["id"]);
    let (_, tokens_page) = call(&a, &admin, Method::GET, &format!("users/{uid}/refresh-tokens?take=1"), None).await;
    assert_eq!(tokens_page["next"].as_str(), Some("1"), "{tokens_page}");
    assert_eq!(call(&b, &admin, Method::DELETE, &format!("users/{uid}/sessions"), None).await.0, 202);
    assert_eq!(call(&b, &admin, Method::DELETE, &format!("users/{uid}/refresh-tokens"), None).await.0, 202);
    assert!(!sso_signs_in(&a, &browser_a).await);
    assert_eq!(refresh(&a, &rt).await.0, 403);
    let (_, left) = call(&a, &admin, Method::GET, &format!("users/{uid}/refresh-tokens"), None).await;
    assert_eq!(left, json!({"tokens": []}));

    // Revoking the grant revokes the refresh tokens issued under it.
    let tokens = browser_login(&a, &browser_a, &email, &password).await;
    let rt = tokens["refresh_token"].as_str().unwrap().to_string();
    let (_, grants) = call(&b, &admin, Method::GET, &format!("grants?user_id={uid}"), None).await;
    let grant_id = grants[0]["id"].as_str().unwrap().to_string();
    assert_eq!(call(&b, &admin, Method::DELETE, &format!("grants/{grant_id}"), None).await.0, 204);
    assert_eq!(refresh(&a, &rt).await.0, 403);
    assert_eq!(call(&b, &admin, Method::DELETE, &format!("grants/{grant_id}"), None).await.0, 404);
    let tokens = browser_login(&a, &browser(), &email, &password).await;
    assert_eq!(call(&b, &admin, Method::DELETE, &format!("grants?user_id={uid}"), None).await.0, 204);
    assert_eq!(refresh(&a, tokens["refresh_token"].as_str().unwrap()).await.0, 403);
    assert_eq!(call(&b, &admin, Method::GET, &format!("grants?user_id={uid}"), None).await, (200, json!([])));

    // Scopes, and what does not exist.
    let users_only = management_token(&a, Some(&["read:users", "update:users", "delete:users"])).await;
    for (method, path) in [
        (Method::GET, format!("users/{uid}/sessions")),
        (Method::DELETE, format!("users/{uid}/sessions")),
        (Method::GET, format!("sessions/{sid}")),
        (Method::GET, format!("users/{uid}/refresh-tokens")),
        (Method::DELETE, format!("refresh-tokens/{rt_id}")),
        (Method::GET, "grants".to_string()),
        (Method::DELETE, format!("grants/{grant_id}")),
    ] {
        let (status, body) = call(&a, &users_only, method.clone(), &path, None).await;
        assert_eq!((status, body["errorCode"].as_str()), (403, Some("insufficient_scope")), "{method} {path}: {body}");
    }
    let reader = management_token(&a, Some(&["read:sessions"])).await;
    assert_eq!(call(&a, &reader, Method::DELETE, &format!("users/{uid}/sessions"), None).await.0, 403);
    assert_eq!(call(&a, &admin, Method::GET, "users/auth0%7Cnobody/sessions", None).await.0, 404);
    assert_eq!(call(&a, &admin, Method::GET, "users/auth0%7Cnobody/refresh-tokens", None).await.0, 404);
    assert_eq!(call(&a, &admin, Method::GET, "grants?per_page=1000", None).await.0, 400);
    assert_eq!(call(&a, &admin, Method::DELETE, "grants", None).await.0, 400);
    assert_eq!(call(&a, &admin, Method::GET, &format!("users/{uid}/sessions?take=x"), None).await.0, 400);
}

#[tokio::test]
async fn a_linked_google_login_signs_in_as_the_primary_on_sqlite() {
    linking_on(sqlite_store().await).await;
}

#[tokio::test]
async fn a_linked_google_login_signs_in_as_the_primary_on_postgres() {
    linking_on(pg_store("linking").await).await;
}

/// An action that puts the user's role names into the ID token, so a test sees what a login
/// got from RBAC.
async fn roles_claim_action(t: &TestIdp, token: &str) {
    let code = format!(
        "exports.onExecutePostLogin = async (event, api) => {{ api.idToken.setCustomClaim('{NS}roles', event.authorization.roles); }};"
    );
    let body = json!({"name": "roles-claim", "supported_triggers": [{"id": "post-login", "version": "v3"}], "code": code, "runtime": "node22"});
    let (status, action) = call(t, token, Method::POST, "actions/actions", Some(body)).await;
    assert_eq!(status, 201, "{action}");
    let id = action["id"].as_str().unwrap();
    assert_eq!(call(t, token, Method::POST, &format!("actions/actions/{id}/deploy"), None).await.0, 200);
    let (_, current) = call(t, token, Method::GET, "actions/triggers/post-login/bindings", None).await;
    let mut bindings: Vec<Value> = current["bindings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| json!({"ref": {"type": "action_id", "value": b["action"]["id"]}, "display_name": b["display_name"]}))
        .collect();
    bindings.push(json!({"ref": {"type": "action_name", "value": "roles-claim"}, "display_name": "roles-claim"}));
    let (status, body) =
        call(t, token, Method::PATCH, "actions/triggers/post-login/bindings", Some(json!({"bindings": bindings})))
            .await;
    assert_eq!(status, 200, "{body}");
}

async fn linking_on(store: Arc<SqlStore>) {
    let (up, down) = pair_on(store).await;
    configure_google(&down, true).await;
    let admin = management_token(&down, None).await;
    roles_claim_action(&down, &admin).await;
    let (status, role) = call(&down, &admin, Method::POST, "roles", Some(json!({"name": "editor"}))).await;
    assert_eq!(status, 200, "{role}");
    let primary = user_id(&down, &kw("ADMIN_EMAIL")).await;
    let p = urlencode(&primary);
    let roles = json!({"roles": [role["id"]]});
    assert_eq!(call(&down, &admin, Method::POST, &format!("users/{p}/roles"), Some(roles)).await.0, 204);

    // A first Google login makes a user of its own.
    let (b, ub) = (browser(), browser());
    let first = tokens_for(&down, &federated_login(&up, &down, &b, &ub, GOOGLE).await).await;
    let google_id = claims(first["id_token"].as_str().unwrap())["sub"].as_str().unwrap().to_string();
    let sub = google_id.strip_prefix("google-oauth2|").unwrap().to_string();
    let g = urlencode(&google_id);
    // Blocked, the Google user is refused at its next login, as a password user is.
    let blocked = |on: bool| Some(json!({"blocked": on}));
    assert_eq!(call(&down, &admin, Method::PATCH, &format!("users/{g}"), blocked(true)).await.0, 200);
    assert_error(&federated_login(&up, &down, &browser(), &ub, GOOGLE).await, "unauthorized", "user is blocked");
    assert_eq!(call(&down, &admin, Method::PATCH, &format!("users/{g}"), blocked(false)).await.0, 200);

    // Linked into the database administrator.
    let link = json!({"provider": GOOGLE, "user_id": sub});
    let (status, identities) =
        call(&down, &admin, Method::POST, &format!("users/{p}/identities"), Some(link.clone())).await;
    assert_eq!(status, 201, "{identities}");
    assert_eq!(identities.as_array().unwrap().len(), 2, "{identities}");
    assert_eq!(identities[0]["provider"], json!("auth0"));
    assert_eq!(
        (
            &identities[1]["provider"],
            &identities[1]["user_id"],
            &identities[1]["connection"],
            &identities[1]["isSocial"]
        ),
        (&json!(GOOGLE), &json!(sub), &json!(GOOGLE), &json!(true))
    );
    assert_eq!(identities[1]["profileData"]["email"], json!(kw("USER_EMAIL")));
    assert_eq!(call(&down, &admin, Method::GET, &format!("users/{g}"), None).await.0, 404, "the secondary is gone");
    let (_, user) = call(&down, &admin, Method::GET, &format!("users/{p}"), None).await;
    assert_eq!(user["identities"], identities);

    // The Google login now signs in as the administrator, with its groups and roles.
    let again = tokens_for(&down, &federated_login(&up, &down, &browser(), &ub, GOOGLE).await).await;
    let id = claims(again["id_token"].as_str().unwrap());
    assert_eq!(id["sub"], json!(primary));
    assert_eq!(id[format!("{NS}app_metadata")], json!({"groups": ["admin"]}));
    assert_eq!(id[format!("{NS}roles")], json!(["editor"]));
    let searched = format!("users?q={}", urlencode(&format!("identities.user_id:\"{sub}\"")));
    let (_, found) = call(&down, &admin, Method::GET, &searched, None).await;
    assert_eq!(
        found.as_array().map(|a| a.iter().map(|u| u["user_id"].clone()).collect::<Vec<_>>()),
        Some(vec![json!(primary)])
    );

    // What Auth0 refuses.
    let (status, body) = call(&down, &admin, Method::POST, &format!("users/{p}/identities"), Some(link.clone())).await;
    assert_eq!(status, 409, "linked already: {body}");
    let user_id_of = user_id(&down, &kw("USER_EMAIL")).await;
    let u = urlencode(&user_id_of);
    let (status, body) = call(&down, &admin, Method::POST, &format!("users/{u}/identities"), Some(link)).await;
    assert_eq!(status, 409, "linked elsewhere: {body}");
    let own = json!({"provider": "auth0", "user_id": primary});
    let (status, body) = call(&down, &admin, Method::POST, &format!("users/{p}/identities"), Some(own)).await;
    assert_eq!((status, body["statusCode"].as_u64()), (400, Some(400)), "to itself: {body}");
    for bad in [
        json!({}),
        json!({"provider": GOOGLE}),
        json!({"link_with": "x.y.z"}),
        json!({"provider": 7, "user_id": "x"}),
        json!({"link_with": "a", "provider": "auth0", "user_id": "b"}),
        json!({"provider": "auth0", "user_id": "b", "extra": 1}),
    ] {
        let (status, body) =
            call(&down, &admin, Method::POST, &format!("users/{p}/identities"), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {body}");
    }
    let nobody = json!({"provider": "auth0", "user_id": "nobody"});
    assert_eq!(call(&down, &admin, Method::POST, "users/auth0%7Cnobody/identities", Some(nobody)).await.0, 404);
    let reader = management_token(&down, Some(&["read:users"])).await;
    let (status, _) = call(&down, &reader, Method::DELETE, &format!("users/{p}/identities/{GOOGLE}/{sub}"), None).await;
    assert_eq!(status, 403);

    // A blocked primary: the linked login is refused too.
    assert_eq!(call(&down, &admin, Method::PATCH, &format!("users/{p}"), Some(json!({"blocked": true}))).await.0, 200);
    assert_error(&federated_login(&up, &down, &browser(), &ub, GOOGLE).await, "unauthorized", "user is blocked");
    assert_eq!(call(&down, &admin, Method::PATCH, &format!("users/{p}"), Some(json!({"blocked": false}))).await.0, 200);

    // Unlinked: the identity is its own user again, without the primary's metadata.
    let unlink = format!("users/{p}/identities/{GOOGLE}/{sub}");
    let (status, left) = call(&down, &admin, Method::DELETE, &unlink, None).await;
    assert_eq!(status, 200, "{left}");
    assert_eq!(left.as_array().unwrap().len(), 1);
    assert_eq!(left[0]["user_id"], json!(primary.strip_prefix("auth0|").unwrap()));
    let (status, restored) = call(&down, &admin, Method::GET, &format!("users/{g}"), None).await;
    assert_eq!(status, 200, "{restored}");
    assert_eq!((&restored["app_metadata"], &restored["email"]), (&json!({}), &json!(kw("USER_EMAIL"))));
    assert_eq!(restored["identities"][0].get("profileData"), None);
    assert_eq!(call(&down, &admin, Method::DELETE, &unlink, None).await.0, 404, "not linked any more");
    let main = format!("users/{p}/identities/auth0/{}", primary.strip_prefix("auth0|").unwrap());
    assert_eq!(call(&down, &admin, Method::DELETE, &main, None).await.0, 400, "the main identity stays");
    let after = tokens_for(&down, &federated_login(&up, &down, &browser(), &ub, GOOGLE).await).await;
    assert_eq!(claims(after["id_token"].as_str().unwrap())["sub"], json!(google_id));

    // A database identity linked in signs in with its own password, as the primary.
    let (user_email, user_password) = (kw("USER_EMAIL"), kw("USER_PASSWORD"));
    let link = json!({"provider": "auth0", "user_id": user_id_of});
    let (status, body) = call(&down, &admin, Method::POST, &format!("users/{p}/identities"), Some(link)).await;
    assert_eq!(status, 201, "{body}");
    let (status, tokens) = password_grant(&down, &user_email, &user_password).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["sub"], json!(primary));
    assert_eq!(password_grant(&down, &user_email, "Wrong-Passw0rd!").await.0, 403);
    assert_eq!(password_grant(&down, &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await.0, 200, "the primary's own");
    // Its email is still taken in its connection.
    let again = json!({"connection": "dev-users", "email": user_email, "password": "Another-Passw0rd!"});
    assert_eq!(call(&down, &admin, Method::POST, "users", Some(again)).await.0, 409);
    let mut dev = down.idp.store.connection_by_name("dev-users").await.unwrap().unwrap();
    dev.options.insert("disable_signup".into(), json!(false));
    down.idp.store.put_connection(&dev).await.unwrap();
    let signup = json!({"client_id": kw("CMS_CLIENT_ID"), "connection": "dev-users", "email": user_email, "password": "Another-Passw0rd!"});
    let res = reqwest::Client::new().post(down.url("dbconnections/signup")).json(&signup).send().await.unwrap();
    let (status, body) = json(res).await;
    assert_eq!((status, body["code"].as_str()), (400, Some("invalid_signup")), "{body}");
    let unlink_db = format!("users/{p}/identities/auth0/{}", user_id_of.strip_prefix("auth0|").unwrap());
    assert_eq!(call(&down, &admin, Method::DELETE, &unlink_db, None).await.0, 200);
    let (status, tokens) = password_grant(&down, &user_email, &user_password).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["sub"], json!(user_id_of), "itself again");

    // Linking by the secondary's own ID token (`link_with`).
    let link_with = json!({"link_with": after["id_token"]});
    let (status, identities) =
        call(&down, &admin, Method::POST, &format!("users/{p}/identities"), Some(link_with)).await;
    assert_eq!((status, identities.as_array().map(Vec::len)), (201, Some(2)), "{identities}");
}

#[tokio::test]
async fn a_nul_in_a_path_or_query_is_refused_not_a_database_failure() {
    let t = start_on(pg_store("nul").await, true, |_| {}).await;
    let admin = management_token(&t, None).await;
    for path in [
        "users/a%00b",
        "sessions/a%00b",
        "refresh-tokens/a%00b",
        "users/a%00b/sessions",
        "users/a%00b/refresh-tokens",
        "user-blocks?identifier=a%00b",
        "user-blocks/a%00b",
        "grants?user_id=a%00b",
        "grants/a%00b",
        "users/auth0%7Cx/identities/a%00/b",
        "roles/a%00b",
    ] {
        for method in [Method::GET, Method::DELETE] {
            let (status, body) = call(&t, &admin, method.clone(), path, None).await;
            assert!(status == 400 || status == 405, "{method} {path}: {status} {body}");
        }
    }
    let (status, body) = call(&t, &admin, Method::GET, "user-blocks?identifier=a%2500b", None).await;
    assert_eq!((status, body), (200, json!({"blocked_for": []})), "a literal %00 is just text");
}

#[tokio::test]
async fn a_users_own_token_links_only_an_account_it_proves() {
    let t = start().await;
    let (email, password) = (kw("USER_EMAIL"), kw("USER_PASSWORD"));
    let me = user_id(&t, &email).await;
    let admin = user_id(&t, &kw("ADMIN_EMAIL")).await;
    let own = crate::scopes::own_token(&t, &email, &password, "openid update:current_user_identities").await;
    let path = format!("users/{}/identities", urlencode(&me));
    // Naming another account is not proving it: refused, nothing moved.
    let by_name = json!({"provider": "auth0", "user_id": admin});
    let (status, body) = call(&t, &own, Method::POST, &path, Some(by_name)).await;
    assert_eq!((status, body["errorCode"].as_str()), (403, Some("insufficient_scope")), "{body}");
    assert!(t.idp.store.user(&admin).await.unwrap().is_some());
    // Nor for another user's account.
    let elsewhere = format!("users/{}/identities", urlencode(&admin));
    let (status, _) = call(&t, &own, Method::POST, &elsewhere, Some(json!({"link_with": "x"}))).await;
    assert_eq!(status, 403);
    // The other account's own ID token proves it.
    let (status, tokens) = password_grant(&t, &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
    assert_eq!(status, 200, "{tokens}");
    let (status, identities) =
        call(&t, &own, Method::POST, &path, Some(json!({"link_with": tokens["id_token"]}))).await;
    assert_eq!((status, identities.as_array().map(Vec::len)), (201, Some(2)), "{identities}");
    assert!(t.idp.store.user(&admin).await.unwrap().is_none());
    // A Management API access token is no ID token.
    let m2m = management_token(&t, None).await;
    let (status, _) = call(&t, &m2m, Method::POST, &path, Some(json!({"link_with": m2m}))).await;
    assert_eq!(status, 400);
}
