//! The Management API v2 over HTTP with tokens from the client-credentials grant: scopes,
//! Auth0's error bodies, and each resource's semantics.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};

fn assert_error(body: &Value, status: u16, code: Option<&str>) {
    assert_eq!(body["statusCode"], status, "{body}");
    assert!(body["error"].is_string() && body["message"].is_string(), "{body}");
    if let Some(c) = code {
        assert_eq!(body["errorCode"], c, "{body}");
    }
}

#[tokio::test]
async fn bodies_over_the_limit_get_the_management_413() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let bearer = format!("Bearer {tok}");
    let headers = [("content-type", "application/json"), ("authorization", bearer.as_str())];
    let too_large = json!({
        "statusCode": 413,
        "error": "Payload Too Large",
        "message": "Payload content length greater than maximum allowed: 65536.",
    });
    let huge = json!({"name": "huge", "strategy": "auth0", "options": {"pad": "a".repeat(100 * 1024)}});
    // Chunked, without Content-Length: refused once the limit is passed.
    let (status, body) = post_chunked(&t, "api/v2/connections", &headers, huge.to_string().as_bytes()).await;
    assert_eq!(status, 413, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap_or_else(|_| panic!("not JSON: {body}")), too_large);
    // Declared: refused before any byte of it is read, in the same shape.
    let (status, body) = call(&t, &tok, Method::POST, "connections", Some(huge)).await;
    assert_eq!((status, &body), (413, &too_large));
    // The users-import upload keeps its larger limit and its own message.
    let upload = vec![b' '; 2_000_000];
    let multipart = [("content-type", "multipart/form-data; boundary=x"), ("authorization", bearer.as_str())];
    let (status, body) = post_chunked(&t, "api/v2/jobs/users-imports", &multipart, &upload).await;
    assert_eq!(status, 413, "{body}");
    let body: Value = serde_json::from_str(&body).unwrap_or_else(|_| panic!("not JSON: {body}"));
    assert_eq!(body["message"], "Payload content length greater than maximum allowed: 512000.");
    // A chunked body within the limit reaches the endpoint whole.
    let small = json!({"name": "chunked", "strategy": "auth0"}).to_string();
    let (status, body) = post_chunked(&t, "api/v2/connections", &headers, small.as_bytes()).await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["name"], "chunked");
}

#[tokio::test]
async fn tokens_and_scopes_are_enforced() {
    let t = start().await;
    let res = reqwest::get(t.url("api/v2/users")).await.unwrap();
    let (status, body) = json(res).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Missing authentication")));
    let (status, body) = call(&t, "not-a-token", Method::GET, "users", None).await;
    assert_eq!((status, body["message"].as_str()), (401, Some("Invalid token")));
    // A user's token for the CMS API is not a Management API token.
    let (_, user_tokens) = json(
        reqwest::Client::new()
            .post(t.url("oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", &kw("CMS_CLIENT_ID")),
                ("client_secret", &kw("CMS_CLIENT_SECRET")),
                ("username", &kw("ADMIN_EMAIL")),
                ("password", &kw("ADMIN_PASSWORD")),
                ("audience", "http://localhost:8080/"),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    let (status, _) = call(&t, user_tokens["access_token"].as_str().unwrap(), Method::GET, "users", None).await;
    assert_eq!(status, 401);
    // A user asking for the Management API's admin scopes gets none of them, and a user's
    // token is refused by every Management endpoint, whatever it says.
    for grant in ["password", "http://auth0.com/oauth/grant-type/password-realm"] {
        let (status, body) = json(
            reqwest::Client::new()
                .post(t.url("oauth/token"))
                .form(&[
                    ("grant_type", grant),
                    ("realm", "dev-users"),
                    ("client_id", &kw("CMS_CLIENT_ID")),
                    ("client_secret", &kw("CMS_CLIENT_SECRET")),
                    ("username", &kw("ADMIN_EMAIL")),
                    ("password", &kw("ADMIN_PASSWORD")),
                    ("audience", &t.idp.config.management_audience()),
                    ("scope", "openid read:users delete:users update:clients create:client_grants"),
                ])
                .send()
                .await
                .unwrap(),
        )
        .await;
        assert_eq!(status, 200, "{body}");
        let access = body["access_token"].as_str().unwrap();
        assert_eq!(claims(access)["scope"], "openid", "{grant}: {body}");
        for (method, path) in [(Method::GET, "users"), (Method::DELETE, "users/auth0|000000000000000000000000")] {
            let (status, body) = call(&t, access, method, path, None).await;
            assert_eq!(status, 403, "{grant} {path}: {body}");
        }
    }
    let tok = management_token(&t, Some(&["read:users"])).await;
    let (status, body) = call(&t, &tok, Method::GET, "clients", None).await;
    assert_eq!(status, 403);
    assert_error(&body, 403, Some("insufficient_scope"));
    assert_eq!(
        body["message"],
        "Insufficient scope, expected any of: read:clients,read:client_keys,read:client_credentials,read:client_summary"
    );
    let res =
        reqwest::Client::new().get(t.url("api/v2/users-by-email?email=x@y.z")).bearer_auth(&tok).send().await.unwrap();
    let reset: i64 = res.headers()["x-ratelimit-reset"].to_str().unwrap().parse().unwrap();
    assert!(reset > 1_700_000_000, "x-ratelimit-reset is epoch seconds");
    assert!(res.headers().contains_key("x-ratelimit-remaining"));
    let (status, body) = call(&t, &tok, Method::GET, "no-such-thing", None).await;
    assert_error(&body, status, None);
    assert_eq!(status, 404);
}

#[tokio::test]
async fn users_crud_with_auth0_semantics() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let (status, u) = call(&t, &tok, Method::POST, "users", Some(json!({"connection": "dev-users", "email": "New.Person@CMS.example.test", "password": "Str0ng-Passw0rd!", "app_metadata": {"groups": ["editor"], "level": 1}, "user_metadata": {"lang": "it"}}))).await;
    assert_eq!(status, 201, "{u}");
    let id = u["user_id"].as_str().unwrap().to_string();
    assert!(id.starts_with("auth0|") && id.len() == 30);
    assert_eq!(u["email"], "new.person@cms.example.test");
    assert!(u["created_at"].as_str().unwrap().ends_with('Z'));
    assert_eq!(u["identities"][0]["provider"], "auth0");
    assert!(u.get("password").is_none() && !u.to_string().contains("$2b$"));

    let (status, body) = call(
        &t,
        &tok,
        Method::POST,
        "users",
        Some(
            json!({"connection": "dev-users", "email": "new.person@cms.example.test", "password": "Str0ng-Passw0rd!"}),
        ),
    )
    .await;
    assert_eq!(status, 409);
    assert_error(&body, 409, Some("auth0_idp_error"));
    let (status, _) = call(
        &t,
        &tok,
        Method::POST,
        "users",
        Some(json!({"connection": "dev-users", "email": "weak@cms.example.test", "password": "weak"})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &t,
        &tok,
        Method::POST,
        "users",
        Some(json!({"email": "x@cms.example.test", "password": "Str0ng-Passw0rd!"})),
    )
    .await;
    assert_eq!(status, 400, "connection is required");
    let (status, _) = call(
        &t,
        &tok,
        Method::POST,
        "users",
        Some(json!({"connection": "google-oauth2", "email": "x@cms.example.test", "password": "Str0ng-Passw0rd!"})),
    )
    .await;
    assert_eq!(status, 400);

    // Metadata merges one level deep; null deletes a key; nested objects are replaced.
    let path = format!("users/{}", id.replace('|', "%7C"));
    let (status, u) = call(
        &t,
        &tok,
        Method::PATCH,
        &path,
        Some(json!({"app_metadata": {"groups": ["admin"], "level": null, "nested": {"a": 1}}})),
    )
    .await;
    assert_eq!(status, 200, "{u}");
    assert_eq!(u["app_metadata"], json!({"groups": ["admin"], "nested": {"a": 1}}));
    let (_, u) = call(&t, &tok, Method::PATCH, &path, Some(json!({"app_metadata": {"nested": {"b": 2}}}))).await;
    assert_eq!(u["app_metadata"], json!({"groups": ["admin"], "nested": {"b": 2}}));
    assert_eq!(u["user_metadata"], json!({"lang": "it"}), "untouched");
    let (_, u) = call(&t, &tok, Method::PATCH, &path, Some(json!({"user_metadata": {}}))).await;
    assert_eq!(u["user_metadata"], json!({}), "{{}} clears");
    let (_, u) = call(&t, &tok, Method::PATCH, &path, Some(json!({"name": "Renamed", "nickname": null}))).await;
    assert_eq!(u["name"], "Renamed");
    assert!(u.get("nickname").is_none());
    let (status, body) = call(
        &t,
        &tok,
        Method::PATCH,
        &path,
        Some(json!({"password": "Other-Passw0rd!", "email": "z@cms.example.test"})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    let (status, _) =
        call(&t, &tok, Method::PATCH, &path, Some(json!({"app_metadata": ["not", "an", "object"]}))).await;
    assert_eq!(status, 400);
    let (status, _) = call(&t, &tok, Method::PATCH, &path, Some(json!({"unknown_key": 1}))).await;
    assert_eq!(status, 400);

    // A new password works at the token endpoint.
    let (status, _) = call(&t, &tok, Method::PATCH, &path, Some(json!({"password": "Other-Passw0rd!"}))).await;
    assert_eq!(status, 200);
    let res = reqwest::Client::new()
        .post(t.url("oauth/token"))
        .form(&[
            ("grant_type", "password"),
            ("client_id", &kw("CMS_CLIENT_ID")),
            ("client_secret", &kw("CMS_CLIENT_SECRET")),
            ("username", "new.person@cms.example.test"),
            ("password", "Other-Passw0rd!"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);

    // Metadata-only scope may not touch the profile.
    let limited = management_token(&t, Some(&["update:users_app_metadata"])).await;
    let (status, _) = call(&t, &limited, Method::PATCH, &path, Some(json!({"name": "x"}))).await;
    assert_eq!(status, 403);
    let (status, _) = call(&t, &limited, Method::PATCH, &path, Some(json!({"app_metadata": {"groups": []}}))).await;
    assert_eq!(status, 200);

    let tok = management_token(&t, None).await;
    let (status, list) = call(&t, &tok, Method::GET, "users-by-email?email=new.person%40cms.example.test", None).await;
    assert_eq!(status, 200);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let (status, u) = call(&t, &tok, Method::GET, &format!("{path}?fields=email,user_id"), None).await;
    assert_eq!(status, 200);
    assert_eq!(u.as_object().unwrap().len(), 2);
    let (status, _) = call(&t, &tok, Method::DELETE, &path, None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&t, &tok, Method::GET, &path, None).await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_user"));
    let res = reqwest::Client::new()
        .post(t.url("api/v2/users"))
        .bearer_auth(&tok)
        .header("content-type", "application/json")
        .body("{oops")
        .send()
        .await
        .unwrap();
    let (status, body) = json(res).await;
    assert_eq!(status, 400);
    assert_error(&body, 400, Some("invalid_body"));
}

#[tokio::test]
async fn users_search_with_lucene_queries() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let (status, page) = call(
        &t,
        &tok,
        Method::GET,
        "users?q=app_metadata.groups%3A%22admin%22&search_engine=v3&include_totals=true",
        None,
    )
    .await;
    assert_eq!(status, 200, "{page}");
    assert_eq!(page["total"], 1);
    assert_eq!(page["users"][0]["email"], kw("ADMIN_EMAIL").as_str());
    assert_eq!((page["start"].as_i64(), page["limit"].as_i64(), page["length"].as_i64()), (Some(0), Some(50), Some(1)));
    let (_, all) = call(&t, &tok, Method::GET, "users?per_page=1&page=1&sort=email:1", None).await;
    assert_eq!(all.as_array().unwrap().len(), 1);
    assert_eq!(all[0]["email"], kw("USER_EMAIL").as_str(), "sorted by email, second page");
    let (status, body) = call(&t, &tok, Method::GET, "users?q=app_metadata.groups%3A(admin", None).await;
    assert_eq!(status, 400);
    assert_error(&body, 400, None);
    let (status, _) = call(&t, &tok, Method::GET, "users?search_engine=v2&q=x", None).await;
    assert_eq!(status, 400);
    let (status, _) = call(&t, &tok, Method::GET, "users?per_page=101", None).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn clients_show_their_secret_once() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let (status, c) = call(&t, &tok, Method::POST, "clients", Some(json!({"name": "Backoffice", "app_type": "regular_web", "callbacks": ["https://bo.example.test/cb"], "client_metadata": {"team": "a", "tier": "1"}}))).await;
    assert_eq!(status, 201, "{c}");
    let id = c["client_id"].as_str().unwrap().to_string();
    let secret = c["client_secret"].as_str().unwrap().to_string();
    assert_eq!((id.len(), secret.len()), (32, 64));
    let (_, read) = call(&t, &tok, Method::GET, &format!("clients/{id}"), None).await;
    assert!(read.get("client_secret").is_none(), "never returned by a read");
    assert_eq!(read["callbacks"], json!(["https://bo.example.test/cb"]));
    let dev = t.idp.store.connection_by_name("dev-users").await.unwrap().unwrap();
    assert!(dev.enabled_for(&id), "new clients are enabled on every connection");

    let (_, patched) = call(
        &t,
        &tok,
        Method::PATCH,
        &format!("clients/{id}"),
        Some(json!({"client_metadata": {"tier": null, "owner": "b"}, "name": "Backoffice 2"})),
    )
    .await;
    assert_eq!(patched["client_metadata"], json!({"team": "a", "owner": "b"}));
    assert_eq!(patched["name"], "Backoffice 2");
    let (status, _) =
        call(&t, &tok, Method::PATCH, &format!("clients/{id}"), Some(json!({"callbacks": "not-a-list"}))).await;
    assert_eq!(status, 400);
    let (status, rotated) = call(&t, &tok, Method::POST, &format!("clients/{id}/rotate-secret"), None).await;
    assert_eq!(status, 200);
    assert_ne!(rotated["client_secret"].as_str().unwrap(), secret);

    let (status, page) = call(&t, &tok, Method::GET, "clients?include_totals=true&per_page=2&page=0", None).await;
    assert_eq!(status, 200);
    assert_eq!(page["total"], 3);
    assert_eq!(page["clients"].as_array().unwrap().len(), 2);
    let (status, _) = call(&t, &tok, Method::DELETE, &format!("clients/{id}"), None).await;
    assert_eq!(status, 204);
    let (status, body) = call(&t, &tok, Method::GET, &format!("clients/{id}"), None).await;
    assert_eq!(status, 404);
    assert_error(&body, 404, Some("inexistent_client"));
}

#[tokio::test]
async fn connections_resource_servers_grants_and_settings() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let cms = kw("CMS_CLIENT_ID");
    let (status, c) = call(
        &t,
        &tok,
        Method::POST,
        "connections",
        Some(json!({"name": "staging-users", "strategy": "auth0", "options": {"disable_signup": true}})),
    )
    .await;
    assert_eq!(status, 201, "{c}");
    let id = c["id"].as_str().unwrap().to_string();
    assert!(id.starts_with("con_") && id.len() == 20);
    assert_eq!(c["options"]["passwordPolicy"], "good");
    assert_eq!(c["realms"], json!(["staging-users"]));
    let (status, _) =
        call(&t, &tok, Method::POST, "connections", Some(json!({"name": "staging-users", "strategy": "auth0"}))).await;
    assert_eq!(status, 409);
    let (status, _) =
        call(&t, &tok, Method::POST, "connections", Some(json!({"name": "bad name!", "strategy": "auth0"}))).await;
    assert_eq!(status, 400);
    let (status, _) = call(
        &t,
        &tok,
        Method::PATCH,
        &format!("connections/{id}/clients"),
        Some(json!([{"client_id": cms, "status": true}])),
    )
    .await;
    assert_eq!(status, 204);
    let (_, clients) = call(&t, &tok, Method::GET, &format!("connections/{id}/clients?take=10"), None).await;
    assert_eq!(clients["clients"], json!([{"client_id": cms}]));
    let (_, patched) = call(
        &t,
        &tok,
        Method::PATCH,
        &format!("connections/{id}"),
        Some(json!({"name": "ignored", "options": {"passwordPolicy": "low"}})),
    )
    .await;
    assert_eq!(patched["name"], "staging-users");
    assert_eq!(patched["options"], json!({"passwordPolicy": "low"}), "options are replaced wholesale");
    let (_, first) = call(&t, &tok, Method::GET, "connections?take=1", None).await;
    assert_eq!(first["connections"].as_array().unwrap().len(), 1);
    assert!(first["next"].is_string());
    let (_, dbs) = call(&t, &tok, Method::GET, "connections?strategy=auth0&fields=name", None).await;
    assert_eq!(dbs.as_array().unwrap().len(), 3);
    assert_eq!(dbs[0].as_object().unwrap().len(), 1);
    let (status, deleted) = call(&t, &tok, Method::DELETE, &format!("connections/{id}"), None).await;
    assert_eq!(status, 202);
    assert!(deleted["deleted_at"].as_str().unwrap().ends_with('Z'));

    // Resource servers, addressed by identifier too.
    let (status, rs) = call(&t, &tok, Method::POST, "resource-servers", Some(json!({"name": "Orders", "identifier": "https://orders.example.test/", "scopes": [{"value": "read:orders"}], "token_lifetime": 3600}))).await;
    assert_eq!(status, 201, "{rs}");
    let (status, _) =
        call(&t, &tok, Method::POST, "resource-servers", Some(json!({"identifier": "https://orders.example.test/"})))
            .await;
    assert_eq!(status, 409);
    let (status, _) = call(
        &t,
        &tok,
        Method::POST,
        "resource-servers",
        Some(json!({"identifier": "https://x.example.test/", "token_lifetime": 9_999_999})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, rs2) = call(
        &t,
        &tok,
        Method::PATCH,
        "resource-servers/https%3A%2F%2Forders.example.test%2F",
        Some(json!({"token_lifetime": 7200})),
    )
    .await;
    assert_eq!((status, rs2["token_lifetime"].as_i64()), (200, Some(7200)));
    let mgmt_path = format!(
        "resource-servers/{}",
        url::form_urlencoded::byte_serialize(t.idp.config.management_audience().as_bytes()).collect::<String>()
    );
    let (status, _) = call(&t, &tok, Method::PATCH, &mgmt_path, Some(json!({"token_lifetime": 1}))).await;
    assert_eq!(status, 403, "the system API is read-only");

    // Client grants: scopes must exist on the API; one grant per pair.
    let (status, _) = call(
        &t,
        &tok,
        Method::POST,
        "client-grants",
        Some(json!({"client_id": cms, "audience": "https://orders.example.test/", "scope": ["write:everything"]})),
    )
    .await;
    assert_eq!(status, 400);
    let (status, g) = call(
        &t,
        &tok,
        Method::POST,
        "client-grants",
        Some(json!({"client_id": cms, "audience": "https://orders.example.test/", "scope": ["read:orders"]})),
    )
    .await;
    assert_eq!(status, 201, "{g}");
    let (status, _) = call(
        &t,
        &tok,
        Method::POST,
        "client-grants",
        Some(json!({"client_id": cms, "audience": "https://orders.example.test/", "scope": []})),
    )
    .await;
    assert_eq!(status, 409);
    let (_, grants) = call(&t, &tok, Method::GET, &format!("client-grants?client_id={cms}"), None).await;
    assert_eq!(grants.as_array().unwrap().len(), 1);
    let (status, _) =
        call(&t, &tok, Method::DELETE, &format!("resource-servers/{}", rs["id"].as_str().unwrap()), None).await;
    assert_eq!(status, 204);
    let (status, _) = call(
        &t,
        &tok,
        Method::PATCH,
        &format!("client-grants/{}", g["id"].as_str().unwrap()),
        Some(json!({"scope": []})),
    )
    .await;
    assert_eq!(status, 404, "deleting an API deletes its grants");

    // Tenant settings, with deploy-cli's minute keys.
    let (status, s) = call(&t, &tok, Method::PATCH, "tenants/settings", Some(json!({"session_lifetime_in_minutes": 120, "flags": {"enable_client_connections": false}, "default_audience": ""}))).await;
    assert_eq!(status, 200, "{s}");
    assert_eq!(s["session_lifetime"], 2.0);
    assert_eq!(s["default_directory"], "dev-users");
    let (status, _) = call(
        &t,
        &tok,
        Method::PATCH,
        "tenants/settings",
        Some(json!({"session_lifetime": 1, "session_lifetime_in_minutes": 60})),
    )
    .await;
    assert_eq!(status, 400);
    let (_, s) = call(&t, &tok, Method::GET, "tenants/settings?fields=friendly_name", None).await;
    assert_eq!(s, json!({"friendly_name": "CMS"}));

    // Signing keys: rotation keeps the previous key published.
    let (status, rotated) = call(&t, &tok, Method::POST, "keys/signing/rotate", None).await;
    assert_eq!(status, 200);
    let (_, keys) = call(&t, &tok, Method::GET, "keys/signing", None).await;
    assert_eq!(keys.as_array().unwrap().len(), 2);
    assert!(keys.as_array().unwrap().iter().any(|k| k["kid"] == rotated["kid"] && k["current"] == true));
    let (_, jwks) = json(reqwest::get(t.url(".well-known/jwks.json")).await.unwrap()).await;
    assert_eq!(jwks["keys"].as_array().unwrap().len(), 2);
}

/// Found with auth0-deploy-cli: it sends a tenant file's `client_id` on create and matches on it
/// at the next import, so a pinned id must be kept (Gatehouse extension; taken ids conflict).
#[tokio::test]
async fn clients_keep_a_given_client_id() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let body = json!({"name": "Pinned", "client_id": "PinnedClientId0123456789abcdefXY", "client_secret": "a-pinned-secret-of-enough-length"});
    let (status, c) = call(&t, &tok, Method::POST, "clients", Some(body.clone())).await;
    assert_eq!(status, 201, "{c}");
    assert_eq!(c["client_id"], "PinnedClientId0123456789abcdefXY");
    assert_eq!(c["client_secret"], "a-pinned-secret-of-enough-length");
    let (status, _) = call(&t, &tok, Method::GET, "clients/PinnedClientId0123456789abcdefXY", None).await;
    assert_eq!(status, 200);
    let (status, body) = call(&t, &tok, Method::POST, "clients", Some(body)).await;
    assert_eq!(status, 409, "{body}");
    let (status, _) =
        call(&t, &tok, Method::POST, "clients", Some(json!({"name": "Bad", "client_id": "not valid!"}))).await;
    assert_eq!(status, 400);
}

#[tokio::test]
async fn bad_requests_keep_the_management_shape_and_break_nothing() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    // A key naming one of the record's own fields is refused, never stored over it.
    let person = |email: &str, extra: Value| {
        let mut body = json!({"connection": "dev-users", "email": email, "password": "Str0ng-Passw0rd!"});
        body.as_object_mut().unwrap().extend(extra.as_object().unwrap().clone());
        Some(body)
    };
    let (status, body) = call(&t, &tok, Method::POST, "users", person("a@x.test", json!({"logins_count": 5}))).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("Additional properties not allowed: logins_count"), "{body}");
    assert_eq!(call(&t, &tok, Method::GET, "users", None).await.0, 200);

    // A username signs in like an email: one per connection.
    let (status, body) = call(&t, &tok, Method::POST, "users", person("b@x.test", json!({"username": "bob"}))).await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = call(&t, &tok, Method::POST, "users", person("c@x.test", json!({"username": "bob"}))).await;
    assert_eq!((status, body["message"].as_str()), (409, Some("The user already exists.")), "{body}");
    let (_, c) = call(&t, &tok, Method::POST, "users", person("c@x.test", json!({}))).await;
    let path = format!("users/{}", c["user_id"].as_str().unwrap());
    let (status, _) = call(&t, &tok, Method::PATCH, &path, Some(json!({"username": "bob"}))).await;
    assert_eq!(status, 409);

    // A method a path does not have, in the API's own shape.
    let (status, body) = call(&t, &tok, Method::PUT, "users/auth0|x", Some(json!({}))).await;
    assert_eq!((status, body["statusCode"].as_i64()), (405, Some(405)), "{body}");

    // A path segment that is not UTF-8 once decoded: axum refuses it before any handler, and
    // the refusal still comes in the API's shape.
    let (status, body) = call(&t, &tok, Method::GET, "users/%FF", None).await;
    assert_eq!((status, body["statusCode"].as_i64()), (400, Some(400)), "{body}");
    // Client credentials are read with a token, of a client that exists.
    let res = reqwest::get(t.url(&format!("api/v2/clients/{}/credentials", kw("MGMT_CLIENT_ID")))).await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(call(&t, &tok, Method::GET, "clients/nope/credentials", None).await.0, 404);
    let (status, body) =
        call(&t, &tok, Method::GET, &format!("clients/{}/credentials", kw("MGMT_CLIENT_ID")), None).await;
    assert_eq!((status, body), (200, json!([])));

    // A checkpoint at the end of the integers: an empty page, not a panic or a loop.
    let (status, body) = call(&t, &tok, Method::GET, "connections?from=18446744073709551615&take=1", None).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("next").is_none(), "{body}");
}

#[tokio::test]
async fn the_rate_limit_counts_a_token_however_it_is_spelled() {
    let t = start_on(sqlite_store().await, true, |c| c.management_rate_limit = 3).await;
    let tok = management_token(&t, None).await;
    let http = reqwest::Client::new();
    let mut limited = 0;
    for i in 0..8 {
        let spelling = ["Bearer ", "bearer ", "Bearer  "][i % 3];
        let res = http
            .get(t.url("api/v2/clients"))
            .header("authorization", format!("{spelling}{tok} "))
            .send()
            .await
            .unwrap();
        if res.status() == 429 {
            limited += 1;
        }
    }
    // Three a second: eight requests in at most two seconds meet the limit at least twice.
    assert!(limited >= 2, "{limited} of 8 limited");
}

#[tokio::test]
async fn connection_options_need_their_own_scope() {
    let t = start().await;
    let admin = management_token(&t, None).await;
    let body = json!({"name": "corp-google", "strategy": "google-oauth2",
        "options": {"client_id": "g-id", "client_secret": "g-secret-not-for-readers"}});
    let (status, created) = call(&t, &admin, Method::POST, "connections", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let path = format!("connections/{}", created["id"].as_str().unwrap());
    let reader = management_token(&t, Some(&["read:connections"])).await;
    for p in [path.as_str(), "connections?strategy=google-oauth2"] {
        let (status, seen) = call(&t, &reader, Method::GET, p, None).await;
        assert_eq!(status, 200, "{seen}");
        assert!(!seen.to_string().contains("g-secret-not-for-readers"), "{p}: {seen}");
    }
    let (_, seen) = call(&t, &admin, Method::GET, &path, None).await;
    assert_eq!(seen["options"]["client_secret"], "g-secret-not-for-readers", "with read:connections_options");
    // Changing them needs update:connections_options.
    let writer = management_token(&t, Some(&["update:connections"])).await;
    let patch = json!({"options": {"client_id": "g-id", "client_secret": "replaced"}});
    let (status, body) = call(&t, &writer, Method::PATCH, &path, Some(patch)).await;
    assert_eq!(status, 403, "{body}");
    let (status, body) = call(&t, &writer, Method::PATCH, &path, Some(json!({"display_name": "Corp"}))).await;
    assert_eq!(status, 200, "{body}");
    assert!(body.get("options").is_none(), "{body}");
}

/// A repeated key means one thing to whatever reads the first copy (a proxy, a WAF, an
/// audit log) and another to a parser keeping the last: the Management API refuses it at any
/// depth, in its own error shape, and changes nothing.
#[tokio::test]
async fn bodies_repeating_a_key_are_refused_and_change_nothing() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    let id = t.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user.user_id;
    let (_, before) = call(&t, &tok, Method::GET, &format!("users/{id}"), None).await;
    let send = |method: Method, path: String, body: &'static str| {
        let req = reqwest::Client::new()
            .request(method, t.url(&format!("api/v2/{path}")))
            .bearer_auth(&tok)
            .header("content-type", "application/json")
            .body(body);
        async move { json(req.send().await.unwrap()).await }
    };
    for body in [
        r#"{"app_metadata": {"groups": ["user"]}, "app_metadata": {"groups": ["admin"]}}"#,
        r#"{"app_metadata": {"groups": ["user"], "groups": ["admin"]}}"#,
    ] {
        let (status, answer) = send(Method::PATCH, format!("users/{id}"), body).await;
        assert_eq!(status, 400, "{body}: {answer}");
        assert_error(&answer, 400, None);
        assert!(answer["message"].as_str().unwrap().contains("appears more than once"), "{answer}");
    }
    let (_, after) = call(&t, &tok, Method::GET, &format!("users/{id}"), None).await;
    assert_eq!(after["app_metadata"], before["app_metadata"], "unchanged: {after}");

    // Bodies that are arrays too (a connection's enabled clients).
    let conn = t.idp.store.connection_by_name("prod-users").await.unwrap().unwrap().id;
    let body = r#"[{"client_id": "a", "client_id": "b", "status": true}]"#;
    let (status, answer) = send(Method::PATCH, format!("connections/{conn}/clients"), body).await;
    assert_eq!(status, 400, "{answer}");
    assert_error(&answer, 400, None);
}

/// Query parameters likewise: a single-valued one given twice is refused, list-valued ones
/// (`strategy`, `fields`, …) may repeat.
#[tokio::test]
async fn query_parameters_repeating_a_single_value_are_refused() {
    let t = start().await;
    let tok = management_token(&t, None).await;
    for path in [
        "users?q=email:%22a@b.c%22&q=*",
        "users?per_page=1&per_page=100",
        "clients?include_totals=false&include_totals=true",
    ] {
        let (status, answer) = call(&t, &tok, Method::GET, path, None).await;
        assert_eq!(status, 400, "{path}: {answer}");
        assert_error(&answer, 400, Some("invalid_query_string"));
        assert!(answer["message"].as_str().unwrap().contains("only once"), "{answer}");
    }
    let (status, answer) = call(&t, &tok, Method::GET, "connections?strategy=auth0&strategy=google-oauth2", None).await;
    assert_eq!(status, 200, "{answer}");
    let (status, answer) = call(&t, &tok, Method::GET, "clients?fields=name&fields=client_id", None).await;
    assert_eq!(status, 200, "{answer}");
    assert!(answer.as_array().unwrap().iter().all(|c| c.as_object().unwrap().len() == 2), "{answer}");
}

/// An idp whose users may keep `limit` bytes of metadata (Auth0's 16 MB is too large to reach
/// in a test; the rule is the same).
pub(crate) async fn start_with_metadata_limit(limit: usize) -> TestIdp {
    start_on(sqlite_store().await, true, |c| c.metadata_limit_bytes = limit).await
}

#[tokio::test]
async fn metadata_is_bounded_however_many_patches_add_to_it() {
    let t = start_with_metadata_limit(4096).await;
    let tok = management_token(&t, None).await;
    let refused = json!({"statusCode": 400, "error": "Bad Request", "errorCode": "invalid_body",
        "message": "Payload validation error: app_metadata and user_metadata together must not exceed 4096 bytes."});
    let admin = t.idp.store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap().user;
    let path = format!("users/{}", admin.user_id.replace('|', "%7C"));
    let chunk = "x".repeat(1500);

    for key in ["k1", "k2"] {
        let (status, body) = call(&t, &tok, Method::PATCH, &path, Some(json!({"app_metadata": {key: chunk}}))).await;
        assert_eq!(status, 200, "{body}");
    }
    let (status, body) = call(&t, &tok, Method::PATCH, &path, Some(json!({"user_metadata": {"k3": chunk}}))).await;
    assert_eq!((status, body), (400, refused.clone()));
    let kept = t.idp.store.user(&admin.user_id).await.unwrap().unwrap().user;
    assert!(kept.app_metadata.contains_key("k2") && !kept.user_metadata.contains_key("k3"), "nothing written");
    // Making room first lets it in.
    let patch = json!({"app_metadata": {"k1": null}, "user_metadata": {"k3": chunk}});
    assert_eq!(call(&t, &tok, Method::PATCH, &path, Some(patch)).await.0, 200);

    let user = json!({"connection": "dev-users", "email": "big@example.test", "password": "Str0ng-Passw0rd!",
        "app_metadata": {"a": "x".repeat(2500)}, "user_metadata": {"b": "x".repeat(2500)}});
    let (status, body) = call(&t, &tok, Method::POST, "users", Some(user)).await;
    assert_eq!((status, body), (400, refused));
    assert!(t.idp.store.user_by_login("dev-users", "big@example.test").await.unwrap().is_none());
}

#[tokio::test]
async fn signup_and_import_keep_to_the_metadata_bound() {
    let t = start_with_metadata_limit(4096).await;
    let mut conn = t.idp.store.connection_by_name("dev-users").await.unwrap().unwrap();
    conn.options.insert("disable_signup".into(), json!(false));
    t.idp.store.put_connection(&conn).await.unwrap();
    // Within Auth0's sign-up rule (10 strings of 500 characters) but over this idp's bound.
    let metadata: serde_json::Map<String, Value> = (0..10).map(|i| (format!("f{i}"), json!("x".repeat(450)))).collect();
    let signup = json!({"client_id": kw("CMS_CLIENT_ID"), "email": "new@example.test", "password": "Str0ng-Passw0rd!",
        "connection": "dev-users", "user_metadata": metadata});
    let (status, body) =
        json(reqwest::Client::new().post(t.url("dbconnections/signup")).json(&signup).send().await.unwrap()).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["name"], "BadRequestError");
    assert_eq!(body["code"], "invalid_user_metadata");
    assert_eq!(body["description"], "app_metadata and user_metadata together must not exceed 4096 bytes");
    assert!(t.idp.store.user_by_login("dev-users", "new@example.test").await.unwrap().is_none());

    let tok = management_token(&t, None).await;
    let con = crate::jobs::connection_id(&t, "dev-users").await;
    let file = json!([
        {"email": "big@example.test", "app_metadata": {"a": "x".repeat(5000)}},
        {"email": "small@example.test", "user_metadata": {"lang": "it"}},
        {"email": kw("ADMIN_EMAIL"), "user_metadata": {"b": "x".repeat(5000)}},
    ])
    .to_string();
    let parts: &[(&str, Option<&str>, &[u8])] = &[
        ("users", Some("u.json"), file.as_bytes()),
        ("connection_id", None, con.as_bytes()),
        ("upsert", None, b"true"),
    ];
    let (status, job) = crate::jobs::upload(&t, &tok, parts).await;
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_str().unwrap();
    let done = crate::jobs::wait_done(&t, &tok, id).await;
    assert_eq!(done["summary"], json!({"failed": 2, "updated": 0, "inserted": 1, "total": 3}), "{done}");
    let (_, errors) = crate::jobs::get(&t, &tok, &format!("jobs/{id}/errors")).await;
    let why = "app_metadata and user_metadata together must not exceed 4096 bytes";
    assert_eq!(
        errors[0]["errors"][0],
        json!({"code": "MAX_LENGTH", "message": why, "path": "app_metadata"}),
        "{errors}"
    );
    assert_eq!(errors[1]["errors"][0]["path"], "user_metadata", "the upsert too: {errors}");
    assert!(t.idp.store.user_by_login("dev-users", "big@example.test").await.unwrap().is_none());
    let admin = t.idp.store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap().user;
    assert!(!admin.user_metadata.contains_key("b"));
}
