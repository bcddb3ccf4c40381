//! Roles and permissions (RBAC) end to end: the Management API's `/roles` and a user's roles
//! and permissions as Auth0 answers them (bad input included, with nothing half-written), the
//! access tokens of an API that enforces RBAC or carries `permissions` (both token profiles),
//! refresh tokens as the API allows them, and `event.authorization.roles` in Actions.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::sync::Arc;
use std::time::{Duration, Instant};
use store::{Page, Permission, Role, Store};

const API: &str = "https://rbac.example.test/";

async fn user_id(t: &TestIdp, email: &str) -> String {
    t.idp.store.user_by_login("dev-users", email).await.unwrap().unwrap().user.user_id
}

/// An API with three scopes (and `extra` settings), made through the Management API.
async fn make_api(t: &TestIdp, token: &str, extra: Value) -> String {
    let mut body = json!({
        "name": "RBAC API",
        "identifier": API,
        "scopes": [
            {"value": "read:things", "description": "Read things"},
            {"value": "write:things", "description": "Write things"},
            {"value": "admin:things", "description": "Administer things"},
        ],
    });
    body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
    let (status, api) = call(t, token, Method::POST, "resource-servers", Some(body)).await;
    assert_eq!(status, 201, "{api}");
    api["id"].as_str().unwrap().to_string()
}

async fn make_role(t: &TestIdp, token: &str, name: &str) -> String {
    let (status, role) = call(t, token, Method::POST, "roles", Some(json!({"name": name, "description": "d"}))).await;
    assert_eq!(status, 200, "{role}");
    role["id"].as_str().unwrap().to_string()
}

fn perms(names: &[&str]) -> Value {
    let list: Vec<Value> =
        names.iter().map(|n| json!({"resource_server_identifier": API, "permission_name": n})).collect();
    json!({ "permissions": list })
}

#[tokio::test]
async fn roles_and_their_permissions_and_users_as_auth0_answers() {
    let t = start().await;
    let token = management_token(&t, None).await;
    make_api(&t, &token, json!({})).await;
    let editors = make_role(&t, &token, "Editors").await;
    assert!(editors.starts_with("rol_") && editors.len() == 20, "{editors}");
    let viewers = make_role(&t, &token, "Viewers").await;

    // Names are unique; bodies are Auth0's.
    let (status, body) = call(&t, &token, Method::POST, "roles", Some(json!({"name": "Editors"}))).await;
    assert_eq!((status, body["statusCode"].as_u64()), (409, Some(409)), "{body}");
    let (status, body) = call(&t, &token, Method::POST, "roles", Some(json!({"description": "x"}))).await;
    assert_eq!(status, 400, "{body}");
    let (status, body) = call(&t, &token, Method::POST, "roles", Some(json!({"name": "x", "extra": 1}))).await;
    assert_eq!((status, body["errorCode"].as_str()), (400, Some("invalid_body")), "{body}");
    let (status, body) =
        call(&t, &token, Method::PATCH, &format!("roles/{viewers}"), Some(json!({"name": "Editors"}))).await;
    assert_eq!(status, 409, "{body}");
    let (status, body) =
        call(&t, &token, Method::PATCH, &format!("roles/{viewers}"), Some(json!({"description": "Read only"}))).await;
    assert_eq!((status, body), (200, json!({"id": viewers, "name": "Viewers", "description": "Read only"})));

    // Lists: name_filter is case-insensitive; include_totals wraps the page.
    let (status, body) = call(&t, &token, Method::GET, "roles?name_filter=EDIT", None).await;
    assert_eq!((status, body.as_array().unwrap().len()), (200, 1), "{body}");
    let (_, body) = call(&t, &token, Method::GET, "roles?include_totals=true&per_page=1&page=1", None).await;
    assert_eq!((body["total"].as_u64(), body["start"].as_u64(), body["limit"].as_u64()), (Some(2), Some(1), Some(1)));
    assert_eq!(body["roles"][0]["name"], "Viewers", "{body}");

    // Unknown ids are 404 everywhere.
    for (method, path, body) in [
        (Method::GET, "roles/rol_nope", None),
        (Method::PATCH, "roles/rol_nope", Some(json!({"name": "n"}))),
        (Method::DELETE, "roles/rol_nope", None),
        (Method::GET, "roles/rol_nope/permissions", None),
        (Method::POST, "roles/rol_nope/permissions", Some(perms(&["read:things"]))),
        (Method::GET, "roles/rol_nope/users", None),
        (Method::POST, "roles/rol_nope/users", Some(json!({"users": [user_id(&t, &kw("USER_EMAIL")).await]}))),
        (Method::GET, "users/auth0%7Cnope/roles", None),
        (Method::POST, "users/auth0%7Cnope/roles", Some(json!({"roles": [editors]}))),
        (Method::GET, "users/auth0%7Cnope/permissions", None),
        (Method::POST, "users/auth0%7Cnope/permissions", Some(perms(&["read:things"]))),
    ] {
        let (status, answer) = call(&t, &token, method.clone(), path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }

    // Permissions: only what the API defines, all or nothing.
    let path = format!("roles/{editors}/permissions");
    let (status, _) = call(&t, &token, Method::POST, &path, Some(perms(&["read:things", "write:things"]))).await;
    assert_eq!(status, 201);
    let (status, _) = call(&t, &token, Method::POST, &path, Some(perms(&["read:things"]))).await;
    assert_eq!(status, 201, "adding again is fine");
    let long = "a".repeat(300);
    for bad in [
        perms(&["admin:things", "delete:things"]),
        perms(&["admin:things", "read things"]),
        perms(&["admin:things", &long]),
        json!({"permissions": []}),
        json!({"permissions": [{"resource_server_identifier": "https://nowhere/", "permission_name": "read:things"}]}),
        json!({"permissions": [{"resource_server_identifier": API}]}),
        json!({"permissions": [{"resource_server_identifier": API, "permission_name": "read:things", "x": 1}]}),
        json!({"permissions": "read:things"}),
    ] {
        let (status, answer) = call(&t, &token, Method::POST, &path, Some(bad.clone())).await;
        assert_eq!((status, answer["statusCode"].as_u64()), (400, Some(400)), "{bad}: {answer}");
    }
    let (_, body) = call(&t, &token, Method::GET, &format!("{path}?include_totals=true"), None).await;
    assert_eq!(body["total"], 2, "nothing half-written: {body}");
    assert_eq!(
        body["permissions"][0],
        json!({"resource_server_identifier": API, "permission_name": "read:things",
               "resource_server_name": "RBAC API", "description": "Read things"})
    );
    let (status, _) = call(&t, &token, Method::DELETE, &path, Some(perms(&["write:things"]))).await;
    assert_eq!(status, 200);

    // Users of a role: idempotent assignment, checkpoint paging.
    let user = user_id(&t, &kw("USER_EMAIL")).await;
    let admin = user_id(&t, &kw("ADMIN_EMAIL")).await;
    let users_path = format!("roles/{editors}/users");
    for _ in 0..2 {
        let (status, body) = call(&t, &token, Method::POST, &users_path, Some(json!({"users": [user, admin]}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) =
        call(&t, &token, Method::POST, &users_path, Some(json!({"users": [user, "auth0|nope"]}))).await;
    assert_eq!(status, 404, "{body}");
    let (_, first) = call(&t, &token, Method::GET, &format!("{users_path}?take=1"), None).await;
    assert_eq!(first["users"].as_array().unwrap().len(), 1, "{first}");
    let next = first["next"].as_str().expect("a next checkpoint").to_string();
    let (_, second) = call(&t, &token, Method::GET, &format!("{users_path}?take=1&from={next}"), None).await;
    assert_eq!(second["users"].as_array().unwrap().len(), 1, "{second}");
    assert!(second.get("next").is_none(), "{second}");
    let mut seen = vec![first["users"][0]["user_id"].clone(), second["users"][0]["user_id"].clone()];
    seen.sort_by_key(|v| v.to_string());
    let mut both = vec![json!(user), json!(admin)];
    both.sort_by_key(|v| v.to_string());
    assert_eq!(seen, both);
    assert!(first["users"][0]["email"].is_string(), "{first}");
    let (_, offset) = call(&t, &token, Method::GET, &format!("{users_path}?include_totals=true"), None).await;
    assert_eq!(offset["total"], 2, "{offset}");

    // A user's roles and permissions, with where each comes from.
    let (status, _) =
        call(&t, &token, Method::POST, &format!("users/{user}/roles"), Some(json!({"roles": [viewers, viewers]})))
            .await;
    assert_eq!(status, 204);
    let (_, roles) = call(&t, &token, Method::GET, &format!("users/{user}/roles"), None).await;
    let names: Vec<&str> = roles.as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["Editors", "Viewers"]);
    let (status, _) = call(
        &t,
        &token,
        Method::POST,
        &format!("users/{user}/permissions"),
        Some(perms(&["read:things", "admin:things"])),
    )
    .await;
    assert_eq!(status, 201);
    let (_, listed) = call(&t, &token, Method::GET, &format!("users/{user}/permissions"), None).await;
    let read = listed.as_array().unwrap().iter().find(|p| p["permission_name"] == "read:things").unwrap();
    let sources: Vec<&str> =
        read["sources"].as_array().unwrap().iter().map(|s| s["source_type"].as_str().unwrap()).collect();
    assert_eq!(sources, ["DIRECT", "ROLE"], "{listed}");
    assert_eq!(listed.as_array().unwrap().len(), 2, "each permission once: {listed}");
    let (status, _) =
        call(&t, &token, Method::DELETE, &format!("users/{user}/permissions"), Some(perms(&["admin:things"]))).await;
    assert_eq!(status, 204);
    let (status, _) =
        call(&t, &token, Method::DELETE, &format!("users/{user}/roles"), Some(json!({"roles": [viewers]}))).await;
    assert_eq!(status, 204);

    // Deleting the role takes its assignments along.
    let (status, _) = call(&t, &token, Method::DELETE, &format!("roles/{editors}"), None).await;
    assert_eq!(status, 200);
    let (_, roles) = call(&t, &token, Method::GET, &format!("users/{user}/roles"), None).await;
    assert_eq!(roles, json!([]));
}

#[tokio::test]
async fn a_thousand_permissions_in_one_call_and_not_one_more() {
    let t = start().await;
    let token = management_token(&t, None).await;
    // Short names: 1,000 permissions must fit in the API's 64 KB body, as on Auth0.
    let scopes: Vec<Value> = (0..1001).map(|i| json!({"value": format!("p{i:03}")})).collect();
    let (status, body) =
        call(&t, &token, Method::POST, "resource-servers", Some(json!({"identifier": "x", "scopes": scopes}))).await;
    assert_eq!(status, 201, "{body}");
    let role = make_role(&t, &token, "Many").await;
    let names: Vec<String> = (0..1001).map(|i| format!("p{i:03}")).collect();
    let list = |names: &[String]| {
        let list: Vec<Value> =
            names.iter().map(|n| json!({"resource_server_identifier": "x", "permission_name": n})).collect();
        json!({ "permissions": list })
    };
    let path = format!("roles/{role}/permissions");
    let (status, body) = call(&t, &token, Method::POST, &path, Some(list(&names))).await;
    assert_eq!(status, 400, "1,001 in one call: {body}");
    let (status, body) = call(&t, &token, Method::POST, &path, Some(list(&names[..1000]))).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&t, &token, Method::POST, &path, Some(list(&names[1000..]))).await;
    assert_eq!(status, 400, "a role holds at most 1,000: {body}");
    // Past 64 KB the body is refused whole (Auth0's 413).
    let long: Vec<Value> =
        (0..1000).map(|i| json!({"resource_server_identifier": API, "permission_name": format!("p{i:03}")})).collect();
    let (status, body) = call(&t, &token, Method::POST, &path, Some(json!({ "permissions": long }))).await;
    assert_eq!(status, 413, "{body}");
    let (_, body) = call(&t, &token, Method::GET, &format!("{path}?include_totals=true&per_page=1"), None).await;
    assert_eq!(body["total"], 1000, "{body}");
    let (status, _) = call(&t, &token, Method::DELETE, &path, Some(list(&names[..1000]))).await;
    assert_eq!(status, 200);
    let (_, body) = call(&t, &token, Method::GET, &format!("{path}?include_totals=true"), None).await;
    assert_eq!(body["total"], 0, "{body}");
}

/// The scopes a token holds, the call, and Auth0's status for it.
type Case = (&'static [&'static str], Method, String, Option<Value>, u16);

#[tokio::test]
async fn member_scopes_are_auth0s() {
    let t = start().await;
    let admin = management_token(&t, None).await;
    let role = make_role(&t, &admin, "Scoped").await;
    let user = user_id(&t, &kw("USER_EMAIL")).await;
    let cases: [Case; 9] = [
        (&["read:roles"], Method::GET, format!("roles/{role}/users"), None, 403),
        (&["read:roles", "read:users"], Method::GET, format!("roles/{role}/users"), None, 200),
        (&["read:role_members"], Method::GET, format!("users/{user}/roles"), None, 200),
        (&["read:roles"], Method::POST, format!("roles/{role}/users"), Some(json!({"users": [user]})), 403),
        (&["create:role_members"], Method::POST, format!("roles/{role}/users"), Some(json!({"users": [user]})), 200),
        (&["delete:role_members"], Method::DELETE, format!("users/{user}/roles"), Some(json!({"roles": [role]})), 204),
        (&["read:users"], Method::POST, "roles".into(), Some(json!({"name": "no"})), 403),
        (&["create:roles"], Method::POST, "roles".into(), Some(json!({"name": "yes"})), 200),
        (&["update:users"], Method::GET, format!("users/{user}/permissions"), None, 403),
    ];
    for (scopes, method, path, body, expected) in cases {
        let token = management_token(&t, Some(scopes)).await;
        let (status, answer) = call(&t, &token, method.clone(), &path, body).await;
        assert_eq!(status, expected, "{scopes:?} {method} {path}: {answer}");
    }
}

async fn password_grant(t: &TestIdp, email: &str, password: &str, scope: &str) -> Value {
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "http://auth0.com/oauth/grant-type/password-realm"),
            ("realm", "dev-users"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("username", email),
            ("password", password),
            ("audience", API),
            ("scope", scope),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    body
}

fn header(jwt: &str) -> Value {
    let bytes = idp::util::b64url_decode(jwt.split('.').next().unwrap()).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

#[tokio::test]
async fn user_tokens_carry_what_the_user_holds_in_the_apis_dialect() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let api = make_api(
        &t,
        &token,
        json!({"enforce_policies": true, "token_dialect": "access_token_authz", "allow_offline_access": true}),
    )
    .await;
    let role = make_role(&t, &token, "Readers").await;
    call(&t, &token, Method::POST, &format!("roles/{role}/permissions"), Some(perms(&["read:things"]))).await;
    let user = user_id(&t, &kw("USER_EMAIL")).await;
    call(&t, &token, Method::POST, &format!("users/{user}/roles"), Some(json!({"roles": [role]}))).await;
    call(&t, &token, Method::POST, &format!("users/{user}/permissions"), Some(perms(&["admin:things"]))).await;
    let asked = "openid offline_access read:things write:things";

    // Enforced: only held scopes; `permissions` lists everything held on the API.
    let body = password_grant(&t, &kw("USER_EMAIL"), &kw("USER_PASSWORD"), asked).await;
    assert_eq!(body["scope"], "openid offline_access read:things", "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["scope"], "openid offline_access read:things");
    assert_eq!(at["permissions"], json!(["admin:things", "read:things"]));
    assert_eq!((at["azp"].as_str(), at.get("client_id")), (Some(kw("CMS_CLIENT_ID").as_str()), None));
    assert_eq!(header(body["access_token"].as_str().unwrap())["typ"], "JWT");
    let refresh = body["refresh_token"].as_str().expect("offline access allowed").to_string();

    // A user with nothing gets none of the API's scopes.
    let body = password_grant(&t, &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD"), asked).await;
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!((at["scope"].as_str(), &at["permissions"]), (Some("openid offline_access"), &json!([])));

    // Refreshing asks again: a permission taken away is gone from the next token.
    call(&t, &token, Method::DELETE, &format!("users/{user}/roles"), Some(json!({"roles": [role]}))).await;
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "refresh_token"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("refresh_token", &refresh),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!((at["scope"].as_str(), &at["permissions"]), (Some("openid offline_access"), &json!(["admin:things"])));

    // Not enforced, RFC 9068 with permissions: every granted scope, shaped as RFC 9068.
    let (status, b) = call(
        &t,
        &token,
        Method::PATCH,
        &format!("resource-servers/{api}"),
        Some(
            json!({"enforce_policies": false, "token_dialect": "rfc9068_profile_authz", "allow_offline_access": false}),
        ),
    )
    .await;
    assert_eq!(status, 200, "{b}");
    assert_eq!(b["skip_consent_for_verifiable_first_party_clients"], false, "stored and shown: {b}");
    let body = password_grant(&t, &kw("USER_EMAIL"), &kw("USER_PASSWORD"), asked).await;
    assert!(body.get("refresh_token").is_none(), "offline access no longer allowed: {body}");
    let jwt = body["access_token"].as_str().unwrap();
    assert_eq!(header(jwt)["typ"], "at+jwt");
    let at = claims(jwt);
    assert_eq!(at["scope"], "openid read:things write:things", "{at}");
    assert_eq!(at["permissions"], json!(["admin:things"]));
    assert_eq!(at["client_id"], kw("CMS_CLIENT_ID"));
    assert!(at.get("azp").is_none() && at.get("gty").is_none() && at["jti"].is_string(), "{at}");
    // The token still opens /userinfo.
    let res = reqwest::Client::new().get(t.url("userinfo")).bearer_auth(jwt).send().await.unwrap();
    assert_eq!(res.status(), 200);

    // Bad settings are refused.
    for bad in [
        json!({"token_dialect": "jwt"}),
        json!({"enforce_policies": "yes"}),
        json!({"scopes": [{"value": "read things"}]}),
    ] {
        let (status, b) = call(&t, &token, Method::PATCH, &format!("resource-servers/{api}"), Some(bad.clone())).await;
        assert_eq!(status, 400, "{bad}: {b}");
    }

    // Taking a scope off the API takes it from the user.
    let (status, _) = call(
        &t,
        &token,
        Method::PATCH,
        &format!("resource-servers/{api}"),
        Some(json!({"scopes": [{"value": "read:things"}, {"value": "write:things"}]})),
    )
    .await;
    assert_eq!(status, 200);
    let (_, listed) = call(&t, &token, Method::GET, &format!("users/{user}/permissions"), None).await;
    assert_eq!(listed, json!([]));
}

#[tokio::test]
async fn authorization_code_tokens_and_client_credentials_follow_the_api_too() {
    let t = start().await;
    let token = management_token(&t, None).await;
    make_api(&t, &token, json!({"enforce_policies": true, "token_dialect": "rfc9068_profile_authz"})).await;
    let admin = user_id(&t, &kw("ADMIN_EMAIL")).await;
    call(&t, &token, Method::POST, &format!("users/{admin}/permissions"), Some(perms(&["write:things"]))).await;

    let b = browser();
    let mut authorize = url::Url::parse(&authorize_url(&t, &[("audience", API)])).unwrap();
    let pairs: Vec<(String, String)> = authorize
        .query_pairs()
        .map(|(k, v)| {
            (k.to_string(), if k == "scope" { "openid read:things write:things".into() } else { v.to_string() })
        })
        .collect();
    authorize.query_pairs_mut().clear().extend_pairs(pairs);
    let authorize = authorize.to_string();
    let res = login(&t, &b, &authorize, &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
    let code = query_param(&location(&res), "code").expect("a code");
    let (status, body) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{body}");
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!((at["scope"].as_str(), &at["permissions"]), (Some("openid write:things"), &json!(["write:things"])));

    // A client keeps following its grant, with `permissions` in an authz dialect.
    let (status, g) = call(
        &t,
        &token,
        Method::POST,
        "client-grants",
        Some(json!({"client_id": kw("MGMT_CLIENT_ID"), "audience": API, "scope": ["read:things", "admin:things"]})),
    )
    .await;
    assert_eq!(status, 201, "{g}");
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .json(&json!({"grant_type": "client_credentials", "client_id": kw("MGMT_CLIENT_ID"),
                      "client_secret": kw("MGMT_CLIENT_SECRET"), "audience": API}))
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    let jwt = body["access_token"].as_str().unwrap();
    let at = claims(jwt);
    assert_eq!(
        (at["scope"].as_str(), &at["permissions"]),
        (Some("read:things admin:things"), &json!(["read:things", "admin:things"]))
    );
    assert_eq!(
        (header(jwt)["typ"].as_str(), at["client_id"].as_str()),
        (Some("at+jwt"), Some(kw("MGMT_CLIENT_ID").as_str()))
    );
}

#[tokio::test]
async fn actions_see_the_users_roles() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let code = "exports.onExecutePostLogin = async (event, api) => { \
                api.idToken.setCustomClaim('https://rbac.test/roles', event.authorization.roles); };";
    crate::actions::deploy_action(&t, &token, "roles-claim", code, json!([])).await;
    crate::actions::bind(&t, &token, &["roles-claim"]).await;
    let user = user_id(&t, &kw("USER_EMAIL")).await;
    for name in ["Zeta", "Alpha"] {
        let role = make_role(&t, &token, name).await;
        call(&t, &token, Method::POST, &format!("roles/{role}/users"), Some(json!({"users": [user]}))).await;
    }
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("username", &kw("USER_EMAIL")),
            ("password", &kw("USER_PASSWORD")),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["id_token"].as_str().unwrap())["https://rbac.test/roles"], json!(["Alpha", "Zeta"]));
}

/// 500 roles of 10 permissions each (5,000 permissions on one API) still log in within the
/// usual time, on both databases: the permissions are one indexed query.
async fn heavy_user_logs_in_quickly(store: Arc<dyn Store>) {
    let t = start_on(store, true, |_| {}).await;
    let token = management_token(&t, None).await;
    // 5,000 scopes are past the Management API's 64 KB body: the API goes straight to the store.
    let (status, body) = call(
        &t,
        &token,
        Method::POST,
        "resource-servers",
        Some(json!({"identifier": API, "enforce_policies": true, "token_dialect": "access_token_authz"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let store = &t.idp.store;
    let mut api = store.resource_server_by_identifier(API).await.unwrap().unwrap();
    api.scopes = (0..5000).map(|i| store::Scope { value: format!("p:{i:04}"), description: String::new() }).collect();
    store.put_resource_server(&api).await.unwrap();
    let mut roles = Vec::new();
    for r in 0..500 {
        let role = Role { id: format!("rol_heavy{r:011}"), name: format!("heavy {r}"), description: None };
        store.create_role(&role).await.unwrap();
        let permissions: Vec<Permission> = (0..10)
            .map(|p| Permission {
                resource_server_identifier: API.into(),
                permission_name: format!("p:{:04}", r * 10 + p),
            })
            .collect();
        store.add_role_permissions(&role.id, &permissions).await.unwrap();
        roles.push(role.id);
    }
    let user = user_id(&t, &kw("USER_EMAIL")).await;
    store.assign_roles(std::slice::from_ref(&user), &roles).await.unwrap();
    assert_eq!(store.user_roles(&user, Page { offset: 0, limit: 1 }).await.unwrap().total, 500);

    let time = |email: String, password: String| {
        let t = &t;
        async move {
            let started = Instant::now();
            let body = password_grant(t, &email, &password, "openid p:0000 p:4999").await;
            (started.elapsed(), body)
        }
    };
    // Warm both paths once, then compare: the plain user is the usual time.
    time(kw("ADMIN_EMAIL"), kw("ADMIN_PASSWORD")).await;
    time(kw("USER_EMAIL"), kw("USER_PASSWORD")).await;
    let (usual, _) = time(kw("ADMIN_EMAIL"), kw("ADMIN_PASSWORD")).await;
    let (heavy, body) = time(kw("USER_EMAIL"), kw("USER_PASSWORD")).await;
    let at = claims(body["access_token"].as_str().unwrap());
    assert_eq!(at["scope"], "openid p:0000 p:4999");
    assert_eq!(at["permissions"].as_array().unwrap().len(), 5000);
    assert!(heavy < usual + Duration::from_millis(250), "500 roles: {heavy:?}, no roles: {usual:?}");
}

#[tokio::test]
async fn a_user_with_500_roles_and_5000_permissions_logs_in_in_the_usual_time_sqlite() {
    heavy_user_logs_in_quickly(sqlite_store().await).await;
}

#[tokio::test]
async fn a_user_with_500_roles_and_5000_permissions_logs_in_in_the_usual_time_postgres() {
    heavy_user_logs_in_quickly(pg_store("rbac_heavy").await).await;
}
