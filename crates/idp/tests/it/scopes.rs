//! The Management API's scope rules, endpoint by endpoint and field by field, as Auth0
//! documents them: each call is made with a client-credentials token holding exactly the scope
//! under test, or with a user's own token from a login for the Management API.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};

/// One call with a token holding exactly `scope`, and the status Auth0 gives it.
struct Case {
    scope: &'static str,
    method: Method,
    path: &'static str,
    body: Option<Value>,
    status: u16,
}

fn case(scope: &'static str, method: Method, path: &'static str, body: Option<Value>, status: u16) -> Case {
    Case { scope, method, path, body, status }
}

/// `{client}`, `{user}` and `{action}` in a path name objects made for the test.
fn fill(path: &str, ids: &[(&str, &str)]) -> String {
    ids.iter().fold(path.to_string(), |p, (k, v)| p.replace(k, v))
}

async fn user_id(t: &TestIdp, email: &str) -> String {
    t.idp.store.user_by_login("dev-users", email).await.unwrap().unwrap().user.user_id
}

#[tokio::test]
async fn each_scope_reaches_only_what_auth0_documents() {
    let t = start().await;
    let admin = management_token(&t, None).await;
    let (status, client) = call(
        &t,
        &admin,
        Method::POST,
        "clients",
        Some(json!({"name": "scoped", "app_type": "regular_web", "callbacks": ["https://app.test/cb"]})),
    )
    .await;
    assert_eq!(status, 201, "{client}");
    let client_id = client["client_id"].as_str().unwrap().to_string();
    let action = json!({
        "name": "noop",
        "supported_triggers": [{"id": "post-login", "version": "v3"}],
        "code": "exports.onExecutePostLogin = async () => {};",
    });
    let (status, action) = call(&t, &admin, Method::POST, "actions/actions", Some(action)).await;
    assert_eq!(status, 201, "{action}");
    let user = user_id(&t, &kw("USER_EMAIL")).await;
    let ids =
        [("{client}", client_id.as_str()), ("{user}", user.as_str()), ("{action}", action["id"].as_str().unwrap())];
    let evil = || Some(json!({"callbacks": ["https://evil.test/cb"]}));
    let secret = || Some(json!({"client_secret": "s".repeat(40)}));
    let methods = || Some(json!({"client_authentication_methods": {"private_key_jwt": {"credentials": []}}}));
    let bindings = || Some(json!({"bindings": []}));
    let cases = [
        // Clients: the keys scope changes credentials only; every setting needs update:clients.
        case("update:client_keys", Method::PATCH, "clients/{client}", evil(), 403),
        case(
            "update:client_keys",
            Method::PATCH,
            "clients/{client}",
            Some(json!({"allowed_logout_urls": ["https://evil.test/"]})),
            403,
        ),
        case(
            "update:client_keys",
            Method::PATCH,
            "clients/{client}",
            Some(json!({"token_endpoint_auth_method": "none"})),
            403,
        ),
        case("update:client_keys", Method::PATCH, "clients/{client}", secret(), 200),
        case("update:client_keys", Method::POST, "clients/{client}/rotate-secret", None, 200),
        case("update:clients", Method::PATCH, "clients/{client}", secret(), 403),
        case("update:clients", Method::PATCH, "clients/{client}", Some(json!({"name": "renamed"})), 200),
        case("update:clients", Method::PATCH, "clients/{client}", methods(), 403),
        case("update:client_credentials", Method::PATCH, "clients/{client}", Some(json!({"name": "x"})), 403),
        case("update:client_credentials", Method::PATCH, "clients/{client}", methods(), 200),
        case("update:client_credentials", Method::POST, "clients/{client}/rotate-secret", None, 403),
        case(
            "create:clients",
            Method::POST,
            "clients",
            Some(json!({"name": "pkjwt", "client_authentication_methods": {}})),
            403,
        ),
        case("read:client_summary", Method::GET, "clients/{client}", None, 200),
        case("read:client_credentials", Method::GET, "clients", None, 200),
        case("read:client_credentials", Method::GET, "clients/{client}/credentials", None, 200),
        case("read:client_keys", Method::GET, "clients/{client}/credentials", None, 403),
        // Users: metadata scopes reach metadata only; *:current_user* scopes reach only the
        // token's own user, and a client's token has none.
        case(
            "update:users_app_metadata",
            Method::PATCH,
            "users/{user}",
            Some(json!({"app_metadata": {"plan": "gold"}})),
            200,
        ),
        case(
            "update:users_app_metadata",
            Method::PATCH,
            "users/{user}",
            Some(json!({"user_metadata": {"theme": "dark"}})),
            200,
        ),
        case(
            "update:users_app_metadata",
            Method::PATCH,
            "users/{user}",
            Some(json!({"email": "x@cms.example.test"})),
            403,
        ),
        case("update:users_app_metadata", Method::PATCH, "users/{user}", Some(json!({"blocked": true})), 403),
        case(
            "update:current_user_metadata",
            Method::PATCH,
            "users/{user}",
            Some(json!({"user_metadata": {"a": 1}})),
            403,
        ),
        case("read:current_user", Method::GET, "users/{user}", None, 403),
        case("delete:current_user", Method::DELETE, "users/{user}", None, 403),
        case("read:user_idp_tokens", Method::GET, "users/{user}", None, 200),
        case("read:user_idp_tokens", Method::GET, "users-by-email?email=x@y.z", None, 403),
        // Actions: deploying is create:actions, triggers and bindings are read/update:actions.
        case("update:actions", Method::POST, "actions/actions/{action}/deploy", None, 403),
        case("create:actions", Method::POST, "actions/actions/{action}/deploy", None, 200),
        case("read:triggers", Method::GET, "actions/triggers", None, 403),
        case("read:triggers", Method::GET, "actions/triggers/post-login/bindings", None, 403),
        case("read:actions", Method::GET, "actions/triggers/post-login/bindings", None, 200),
        case("update:triggers", Method::PATCH, "actions/triggers/post-login/bindings", bindings(), 403),
        case("update:actions", Method::PATCH, "actions/triggers/post-login/bindings", bindings(), 200),
    ];
    let mut wrong = Vec::new();
    for c in cases {
        let token = management_token(&t, Some(&[c.scope])).await;
        let path = fill(c.path, &ids);
        let (status, body) = call(&t, &token, c.method.clone(), &path, c.body.clone()).await;
        let shape_ok = status != 403 || body["errorCode"] == "insufficient_scope";
        if status != c.status || !shape_ok {
            wrong.push(format!(
                "{} {} {path} {:?}: expected {}, got {status} {body}",
                c.scope, c.method, c.body, c.status
            ));
        }
    }
    assert!(wrong.is_empty(), "{} rules broken:\n{}", wrong.len(), wrong.join("\n"));

    // None of the refused writes touched the client, and a summary reader sees only the summary.
    let (_, now) = call(&t, &admin, Method::GET, &format!("clients/{client_id}"), None).await;
    assert_eq!(now["callbacks"], json!(["https://app.test/cb"]), "{now}");
    assert!(now.get("allowed_logout_urls").is_none_or(|v| v == &json!([])), "{now}");
    assert_eq!(now["token_endpoint_auth_method"], "client_secret_post", "{now}");
    for scope in ["read:client_summary", "read:client_credentials"] {
        let token = management_token(&t, Some(&[scope])).await;
        let (status, seen) = call(&t, &token, Method::GET, &format!("clients/{client_id}"), None).await;
        assert_eq!(status, 200, "{seen}");
        let keys: Vec<&str> = seen.as_object().unwrap().keys().map(String::as_str).collect();
        assert!(
            keys.iter()
                .all(|k| ["client_id", "app_type", "name", "description", "client_authentication_methods"].contains(k)),
            "{scope}: {seen}"
        );
    }
    let token = management_token(&t, Some(&["read:client_keys"])).await;
    let (_, seen) = call(&t, &token, Method::GET, &format!("clients/{client_id}"), None).await;
    assert_eq!(seen["callbacks"], json!(["https://app.test/cb"]), "read:client_keys shows what read:clients shows");
    let token = management_token(&t, Some(&["update:clients"])).await;
    let (status, body) = call(&t, &token, Method::PATCH, &format!("clients/{client_id}"), secret()).await;
    assert_eq!(
        (status, body["message"].as_str()),
        (403, Some("Insufficient scope, expected any of: update:client_keys"))
    );
}

/// A user's token for the Management API, from the password grant (as a SPA's login for the
/// API's audience would give it), asking for `scope`.
pub(crate) async fn own_token(t: &TestIdp, email: &str, password: &str, scope: &str) -> String {
    let (status, body) = json(
        reqwest::Client::new()
            .post(t.url("oauth/token"))
            .form(&[
                ("grant_type", "password"),
                ("client_id", &kw("CMS_CLIENT_ID")),
                ("client_secret", &kw("CMS_CLIENT_SECRET")),
                ("username", email),
                ("password", password),
                ("audience", &t.idp.config.management_audience()),
                ("scope", scope),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let token = body["access_token"].as_str().unwrap().to_string();
    let granted = claims(&token)["scope"].as_str().unwrap().to_string();
    for s in scope.split(' ').filter(|s| s.contains("current_user")) {
        assert!(granted.split(' ').any(|g| g == s), "{s} not granted: {granted}");
    }
    token
}

#[tokio::test]
async fn current_user_scopes_reach_only_the_tokens_own_user() {
    let t = start().await;
    let me = user_id(&t, &kw("USER_EMAIL")).await;
    let other = user_id(&t, &kw("ADMIN_EMAIL")).await;
    let token = own_token(
        &t,
        &kw("USER_EMAIL"),
        &kw("USER_PASSWORD"),
        "openid read:current_user update:current_user_metadata delete:current_user read:users update:users",
    )
    .await;
    let mismatch = "User to be acted on does not match subject in bearer token.";

    // read:current_user: itself, nobody else, and no listing.
    let (status, body) = call(&t, &token, Method::GET, &format!("users/{me}"), None).await;
    assert_eq!((status, body["user_id"].as_str()), (200, Some(me.as_str())), "{body}");
    let (status, body) = call(&t, &token, Method::GET, &format!("users/{other}"), None).await;
    assert_eq!((status, body["message"].as_str()), (403, Some(mismatch)), "{body}");
    assert_eq!(body["errorCode"], "insufficient_scope");
    assert!(body.get("email").is_none(), "{body}");
    for path in ["users", "users-by-email?email=admin@cms.example.test"] {
        let (status, body) = call(&t, &token, Method::GET, path, None).await;
        assert_eq!(status, 403, "{path}: {body}");
    }

    // update:current_user_metadata: its own user_metadata, and nothing else of anyone.
    let (status, body) =
        call(&t, &token, Method::PATCH, &format!("users/{me}"), Some(json!({"user_metadata": {"theme": "dark"}})))
            .await;
    assert_eq!((status, &body["user_metadata"]["theme"]), (200, &json!("dark")), "{body}");
    let refused = [
        (other.as_str(), json!({"user_metadata": {"theme": "dark"}}), Some(mismatch)),
        (me.as_str(), json!({"app_metadata": {"groups": ["admin"]}}), None),
        (me.as_str(), json!({"user_metadata": {"a": 1}, "app_metadata": {"groups": ["admin"]}}), None),
        (me.as_str(), json!({"email": "me@evil.test"}), None),
        (me.as_str(), json!({"password": "An0ther-Passw0rd!"}), None),
        (me.as_str(), json!({"blocked": false}), None),
        (me.as_str(), json!({"name": "Someone Else"}), None),
    ];
    for (id, patch, message) in refused {
        let (status, body) = call(&t, &token, Method::PATCH, &format!("users/{id}"), Some(patch.clone())).await;
        assert_eq!(status, 403, "{id} {patch}: {body}");
        assert_eq!(body["errorCode"], "insufficient_scope", "{body}");
        if let Some(m) = message {
            assert_eq!(body["message"], m);
        }
    }
    let mine = t.idp.store.user(&me).await.unwrap().unwrap().user;
    assert_eq!(Value::Object(mine.user_metadata), json!({"theme": "dark"}));
    assert!(
        mine.app_metadata.get("groups").is_none_or(|g| !g.to_string().contains("admin")),
        "{:?}",
        mine.app_metadata
    );
    assert_eq!(mine.email.as_deref(), Some(kw("USER_EMAIL").as_str()));
    let theirs = t.idp.store.user(&other).await.unwrap().unwrap().user;
    assert!(theirs.user_metadata.get("theme").is_none());

    // delete:current_user: never another user.
    let (status, body) = call(&t, &token, Method::DELETE, &format!("users/{other}"), None).await;
    assert_eq!((status, body["message"].as_str()), (403, Some(mismatch)), "{body}");
    assert!(t.idp.store.user(&other).await.unwrap().is_some());
}
