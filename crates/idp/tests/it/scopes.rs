//! The Management API's scope rules, endpoint by endpoint and field by field, as Auth0
//! documents them: each call is made with a client-credentials token holding exactly the scope
//! under test, or with a user's own token from a login for the Management API.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};

async fn user_id(t: &TestIdp, email: &str) -> String {
    t.idp.store.user_by_login("dev-users", email).await.unwrap().unwrap().user.user_id
}

/// A user's token for the Management API, from the password grant (as a SPA's login for the
/// API's audience would give it), asking for `scope`.
async fn own_token(t: &TestIdp, email: &str, password: &str, scope: &str) -> String {
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
