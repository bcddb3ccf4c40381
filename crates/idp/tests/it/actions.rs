//! Post-login Actions through the real paths: the guide's `inject-id-token` action in browser
//! logins and password grants, deny, metadata updates, each kind of failure, deploy-time build
//! errors, write-only secrets and isolation between logins, and the Management API's shapes.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const NS: &str = "https://cms.example.test/";

/// An idp whose actions get short limits, so runaway code fails fast.
async fn start_fast() -> TestIdp {
    start_on(sqlite_store().await, true, |c| {
        c.action_limits =
            actions::Limits { time: Duration::from_secs(1), memory_bytes: 16 << 20, stack_bytes: 256 << 10 };
    })
    .await
}

/// Creates, builds and deploys an action for post-login; returns its id.
pub(crate) async fn deploy_action(t: &TestIdp, token: &str, name: &str, code: &str, secrets: Value) -> String {
    let body = json!({
        "name": name,
        "supported_triggers": [{"id": "post-login", "version": "v3"}],
        "code": code,
        "runtime": "node22",
        "secrets": secrets,
    });
    let (status, a) = call(t, token, Method::POST, "actions/actions", Some(body)).await;
    assert_eq!((status, a["status"].as_str()), (201, Some("built")), "{a}");
    let id = a["id"].as_str().unwrap().to_string();
    let (status, v) = call(t, token, Method::POST, &format!("actions/actions/{id}/deploy"), None).await;
    assert_eq!(status, 200, "{v}");
    id
}

/// Makes `names` the post-login flow, in this order.
pub(crate) async fn bind(t: &TestIdp, token: &str, names: &[&str]) {
    let bindings: Vec<Value> =
        names.iter().map(|n| json!({"ref": {"type": "action_name", "value": n}, "display_name": n})).collect();
    let (status, body) =
        call(t, token, Method::PATCH, "actions/triggers/post-login/bindings", Some(json!({ "bindings": bindings })))
            .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["bindings"].as_array().unwrap().len(), names.len());
}

fn handler(body: &str) -> String {
    format!("exports.onExecutePostLogin = async (event, api) => {{ {body} }};")
}

async fn password_grant(t: &TestIdp, email: &str, password: &str, extra: &[(&str, &str)]) -> (u16, Value) {
    let mut form = vec![
        ("grant_type", "password".to_string()),
        ("client_id", kw("CMS_CLIENT_ID")),
        ("client_secret", kw("CMS_CLIENT_SECRET")),
        ("username", email.to_string()),
        ("password", password.to_string()),
        ("scope", "openid profile email offline_access".to_string()),
    ];
    for (k, v) in extra {
        form.retain(|(name, _)| name != k);
        form.push((k, v.to_string()));
    }
    json(reqwest::Client::new().post(t.url("oauth/token")).form(&form).send().await.unwrap()).await
}

async fn admin_grant(t: &TestIdp) -> (u16, Value) {
    password_grant(t, &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD"), &[]).await
}

async fn userinfo(t: &TestIdp, access_token: &str) -> Value {
    let res = reqwest::Client::new().get(t.url("userinfo")).bearer_auth(access_token).send().await.unwrap();
    json(res).await.1
}

#[tokio::test]
async fn the_guides_action_reaches_the_id_token_in_browser_logins_and_password_grants() {
    assert_eq!(kw("MIA_NAMESPACE"), NS);
    let t = start().await;

    // Browser: /authorize → login page → callback → code exchange.
    let b = browser();
    let res = login(&t, &b, &authorize_url(&t, &[]), &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
    assert_eq!(res.status(), 302);
    let code = query_param(&location(&res), "code").expect("a code");
    let (status, tokens) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id[format!("{NS}app_metadata")], json!({"groups": ["admin"]}), "{id}");
    assert_eq!(id[format!("{NS}user_metadata")], json!({}));
    assert_eq!(id["nonce"], "n-456", "the rest of the ID token is untouched");
    // Auth0 returns the actions' ID-token claims from /userinfo too.
    let info = userinfo(&t, tokens["access_token"].as_str().unwrap()).await;
    assert_eq!(info[format!("{NS}app_metadata")], json!({"groups": ["admin"]}), "{info}");

    // SSO: a second /authorize runs the actions again, without the login page.
    let res = b.get(authorize_url(&t, &[])).send().await.unwrap();
    let code = query_param(&location(&res), "code").expect("SSO code");
    let (_, tokens) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())[format!("{NS}app_metadata")], json!({"groups": ["admin"]}));

    // Password grant, then its refresh token: the action runs on both.
    let (status, tokens) = admin_grant(&t).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())[format!("{NS}app_metadata")], json!({"groups": ["admin"]}));
    let (status, refreshed) = json(
        reqwest::Client::new()
            .post(t.url("oauth/token"))
            .form(&[
                ("grant_type", "refresh_token"),
                ("client_id", &kw("CMS_CLIENT_ID")),
                ("client_secret", &kw("CMS_CLIENT_SECRET")),
                ("refresh_token", tokens["refresh_token"].as_str().unwrap()),
            ])
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        claims(refreshed["id_token"].as_str().unwrap())[format!("{NS}app_metadata")],
        json!({"groups": ["admin"]})
    );

    // A user without groups gets an empty object, and the action's warning is only logged.
    let (status, tokens) = password_grant(&t, &kw("USER_EMAIL"), &kw("USER_PASSWORD"), &[]).await;
    assert_eq!(status, 200, "{tokens}");
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())[format!("{NS}app_metadata")], json!({}));
}

#[tokio::test]
async fn deny_ends_the_login_with_access_denied() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let code =
        handler("if (event.user.email === 'user@cms.example.test') api.access.deny('Users may not sign in here.');");
    deploy_action(&t, &token, "admins-only", &code, json!([])).await;
    bind(&t, &token, &["inject-id-token", "admins-only"]).await;

    let res = login(&t, &browser(), &authorize_url(&t, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    assert_eq!(res.status(), 302);
    let to = location(&res);
    assert!(to.starts_with(CALLBACK), "{to}");
    assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"));
    assert_eq!(query_param(&to, "error_description").as_deref(), Some("Users may not sign in here."));
    assert_eq!(query_param(&to, "state").as_deref(), Some("st-123"));
    assert!(query_param(&to, "code").is_none());

    let (status, body) = password_grant(&t, &kw("USER_EMAIL"), &kw("USER_PASSWORD"), &[]).await;
    assert_eq!(status, 403);
    assert_eq!(body, json!({"error": "access_denied", "error_description": "Users may not sign in here."}));
    assert_eq!(admin_grant(&t).await.0, 200, "the admin still gets in");
}

#[tokio::test]
async fn metadata_updates_scopes_and_access_token_claims_are_applied() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let code = handler(
        "api.user.setAppMetadata('last_protocol', event.transaction.protocol);
         api.user.setAppMetadata('plan', {tier: 'gold'});
         api.user.setUserMetadata('theme', 'dark');
         api.accessToken.setCustomClaim(`${event.secrets.NS}tier`, 'gold');
         api.accessToken.addScope('read:reports');
         api.idToken.setCustomClaim('groups', ['smuggled']);
         api.idToken.setCustomClaim('email', 'spoofed@x.test');
         api.idToken.setCustomClaim(`${event.secrets.NS}ip`, event.request.ip);",
    );
    deploy_action(&t, &token, "enrich", &code, json!([{"name": "NS", "value": NS}])).await;
    bind(&t, &token, &["inject-id-token", "enrich"]).await;

    // Only `openid`: the action's `email` claim needs the email scope and is stripped.
    let (status, tokens) = password_grant(
        &t,
        &kw("ADMIN_EMAIL"),
        &kw("ADMIN_PASSWORD"),
        &[("scope", "openid"), ("audience", "http://localhost:8080/")],
    )
    .await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert!(id.get("groups").is_none() && id.get("email").is_none(), "{id}");
    assert_eq!(id[format!("{NS}ip")], "127.0.0.1");
    assert_eq!(
        id[format!("{NS}app_metadata")],
        json!({"groups": ["admin"]}),
        "metadata updates are not in this login's event"
    );
    let at = claims(tokens["access_token"].as_str().unwrap());
    assert_eq!(at[format!("{NS}tier")], "gold", "{at}");
    assert!(at["scope"].as_str().unwrap().split(' ').any(|s| s == "read:reports"), "{at}");
    assert!(tokens["scope"].as_str().unwrap().split(' ').any(|s| s == "read:reports"));

    let user = t.idp.store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap().user;
    assert_eq!(
        serde_json::Value::Object(user.app_metadata),
        json!({"groups": ["admin"], "last_protocol": "oauth2-password", "plan": {"tier": "gold"}})
    );
    assert_eq!(user.user_metadata["theme"], "dark");

    // The next login sees them.
    let (_, tokens) = admin_grant(&t).await;
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id[format!("{NS}app_metadata")]["plan"], json!({"tier": "gold"}));
    assert_eq!(id["email"], "spoofed@x.test", "with the email scope an action may set it, as in Auth0");
}

#[tokio::test]
async fn an_undefined_value_leaves_the_claim_out_and_a_wrong_argument_names_the_call() {
    let t = start().await;
    let token = management_token(&t, None).await;
    // The admin has no `favorite_color`: Auth0's own example would set an undefined claim.
    let code = handler(
        "api.user.setAppMetadata('plan', 'gold');
         api.idToken.setCustomClaim('https://x.test/color', event.user.user_metadata.favorite_color);
         api.accessToken.setCustomClaim('https://x.test/color', undefined);
         api.idToken.setCustomClaim('https://x.test/seen', true);",
    );
    deploy_action(&t, &token, "colors", &code, json!([])).await;
    bind(&t, &token, &["colors"]).await;
    let (status, tokens) =
        password_grant(&t, &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD"), &[("audience", "http://localhost:8080/")]).await;
    assert_eq!(status, 200, "{tokens}");
    let id = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id["https://x.test/seen"], true);
    assert!(id.get("https://x.test/color").is_none(), "{id}");
    assert!(claims(tokens["access_token"].as_str().unwrap()).get("https://x.test/color").is_none());

    // A later login unsets the metadata key with `undefined`.
    let code = handler("api.user.setAppMetadata('plan', undefined);");
    deploy_action(&t, &token, "unset", &code, json!([])).await;
    bind(&t, &token, &["unset"]).await;
    assert_eq!(admin_grant(&t).await.0, 200);
    let user = t.idp.store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap().user;
    assert!(!user.app_metadata.contains_key("plan"), "{:?}", user.app_metadata);

    let code = handler("api.accessToken.addScope(event.user.user_metadata.extra_scope);");
    deploy_action(&t, &token, "scopes", &code, json!([])).await;
    bind(&t, &token, &["scopes"]).await;
    let (status, body) = admin_grant(&t).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("access_denied")), "{body}");
    assert_eq!(
        body["error_description"],
        "action scopes failed: TypeError: api.accessToken.addScope: scope must be a string"
    );
}

#[tokio::test]
async fn an_action_cannot_grow_metadata_past_the_bound() {
    let t = crate::management::start_with_metadata_limit(4096).await;
    let token = management_token(&t, None).await;
    // A new key every login: each login's updates are small, their sum is not.
    let code = handler("api.user.setAppMetadata(`login${event.stats.logins_count}`, 'x'.repeat(1500));");
    deploy_action(&t, &token, "hoarder", &code, json!([])).await;
    bind(&t, &token, &["hoarder"]).await;
    for _ in 0..2 {
        assert_eq!(admin_grant(&t).await.0, 200);
    }
    let before = t.idp.store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap().user;
    assert_eq!(before.app_metadata.len(), 3, "groups and two logins' keys: {:?}", before.app_metadata.keys());

    let (status, body) = admin_grant(&t).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("access_denied")), "{body}");
    assert_eq!(
        body["error_description"],
        "The metadata updates of the post-login actions were refused: app_metadata and user_metadata together must not exceed 4096 bytes."
    );
    let res = login(&t, &browser(), &authorize_url(&t, &[]), &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("access_denied"));
    let after = t.idp.store.user_by_login("dev-users", &kw("ADMIN_EMAIL")).await.unwrap().unwrap().user;
    assert_eq!(after.app_metadata, before.app_metadata, "nothing written");
}

#[tokio::test]
async fn failing_actions_fail_the_login_and_the_idp_keeps_serving() {
    let t = start_fast().await;
    let token = management_token(&t, None).await;
    let cases = [
        ("thrower", handler("throw new Error('the CRM is down');"), "the CRM is down"),
        ("looper", handler("while (true) {}"), "time limit"),
        (
            "hog",
            handler(
                "const kept = []; for (;;) kept.push(new ArrayBuffer(1 << 20), JSON.stringify(event).repeat(100));",
            ),
            "memory limit",
        ),
        ("waiter", handler("await new Promise(() => {});"), "never settled"),
    ];
    for (name, code, why) in &cases {
        deploy_action(&t, &token, name, code, json!([])).await;
        bind(&t, &token, &["inject-id-token", name]).await;
        let (status, body) = admin_grant(&t).await;
        assert_eq!((status, body["error"].as_str()), (403, Some("access_denied")), "{name}: {body}");
        let description = body["error_description"].as_str().unwrap();
        assert!(description.contains(name) && description.contains(why), "{name}: {description}");

        let res = login(&t, &browser(), &authorize_url(&t, &[]), &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
        let to = location(&res);
        assert_eq!(query_param(&to, "error").as_deref(), Some("access_denied"), "{name}: {to}");
        assert!(query_param(&to, "error_description").unwrap().contains(name));

        // The idp keeps serving, and the next login without the broken action works.
        assert_eq!(reqwest::get(t.url("healthz")).await.unwrap().status(), 200);
        bind(&t, &token, &["inject-id-token"]).await;
        assert_eq!(admin_grant(&t).await.0, 200, "after {name}");
    }
}

#[tokio::test]
async fn a_syntax_error_fails_the_build_and_the_deployed_version_stays_in_force() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let (_, list) = call(&t, &token, Method::GET, "actions/actions?actionName=inject-id-token", None).await;
    let a = &list["actions"][0];
    let id = a["id"].as_str().unwrap().to_string();
    assert_eq!((a["status"].as_str(), a["all_changes_deployed"].as_bool()), (Some("built"), Some(true)), "{a}");
    let v1 = a["deployed_version"]["id"].as_str().unwrap().to_string();

    let broken = "exports.onExecutePostLogin = async (event, api) => {\n  const x = ;\n};";
    let (status, a) =
        call(&t, &token, Method::PATCH, &format!("actions/actions/{id}"), Some(json!({"code": broken}))).await;
    assert_eq!((status, a["status"].as_str()), (200, Some("failed")), "{a}");
    assert!(a["errors"][0]["msg"].as_str().unwrap().contains("line 2"), "{a}");
    assert_eq!(a["all_changes_deployed"], false);
    let (status, body) = call(&t, &token, Method::POST, &format!("actions/actions/{id}/deploy"), None).await;
    assert_eq!(status, 400);
    assert_eq!(body["message"], "A draft must be in the 'built' state before it can be deployed.");
    let (_, tokens) = admin_grant(&t).await;
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())[format!("{NS}app_metadata")],
        json!({"groups": ["admin"]}),
        "version 1 still runs"
    );

    // Fixed and deployed: version 2 runs; rolling back to version 1 makes version 3.
    let v2_code = handler("api.idToken.setCustomClaim(`${event.secrets.MIA_NAMESPACE}v`, 2);");
    let (_, a) =
        call(&t, &token, Method::PATCH, &format!("actions/actions/{id}"), Some(json!({"code": v2_code}))).await;
    assert_eq!(a["status"], "built");
    let (status, v) = call(&t, &token, Method::POST, &format!("actions/actions/{id}/deploy"), None).await;
    assert_eq!((status, v["number"].as_u64(), v["deployed"].as_bool()), (200, Some(2), Some(true)), "{v}");
    let (_, tokens) = admin_grant(&t).await;
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())[format!("{NS}v")], 2);
    let (status, v) = call(&t, &token, Method::POST, &format!("actions/actions/{id}/versions/{v1}/deploy"), None).await;
    assert_eq!((status, v["number"].as_u64()), (200, Some(3)), "{v}");
    let (_, tokens) = admin_grant(&t).await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert!(id_token.get(format!("{NS}v")).is_none() && id_token.get(format!("{NS}app_metadata")).is_some());
    let (_, versions) = call(&t, &token, Method::GET, &format!("actions/actions/{id}/versions"), None).await;
    assert_eq!(versions["total"], 3);
    assert_eq!(versions["versions"][0]["number"], 3);
    assert_eq!(versions["versions"][0]["deployed"], true);
    assert_eq!(versions["versions"][1]["deployed"], false);
}

#[tokio::test]
async fn secrets_are_write_only_and_kept_when_patched_without_a_value() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let secret = "s3cr3t-value-never-shown";
    let code = handler("api.idToken.setCustomClaim('https://x.test/k', event.secrets.KEY.length);");
    let id = deploy_action(&t, &token, "uses-secret", &code, json!([{"name": "KEY", "value": secret}])).await;
    bind(&t, &token, &["uses-secret"]).await;

    let mut texts = Vec::new();
    for path in [
        format!("actions/actions/{id}"),
        "actions/actions".to_string(),
        format!("actions/actions/{id}/versions"),
        "actions/triggers/post-login/bindings".to_string(),
    ] {
        let (status, body) = call(&t, &token, Method::GET, &path, None).await;
        assert_eq!(status, 200, "{path}: {body}");
        texts.push(body.to_string());
    }
    // deploy-cli re-sends exported secrets by name only: the value stays.
    let (status, a) = call(
        &t,
        &token,
        Method::PATCH,
        &format!("actions/actions/{id}"),
        Some(json!({"secrets": [{"name": "KEY"}], "code": code})),
    )
    .await;
    assert_eq!(status, 200);
    texts.push(a.to_string());
    assert_eq!(a["secrets"][0]["name"], "KEY");
    assert!(a["secrets"][0]["updated_at"].is_string() && a["secrets"][0].get("value").is_none());
    for text in &texts {
        assert!(!text.contains(secret), "a response shows the secret: {text}");
    }
    for stored in t.idp.store.actions().await.unwrap() {
        let doc = format!("{stored:?}");
        assert!(!doc.contains(secret), "the action stores the secret in clear: {doc}");
        for version in t.idp.store.action_versions(&stored.action.id).await.unwrap() {
            let doc = format!("{version:?}");
            assert!(!doc.contains(secret), "a version stores the secret in clear: {doc}");
        }
    }
    let (_, tokens) = admin_grant(&t).await;
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["https://x.test/k"], secret.len());
}

#[tokio::test]
async fn consecutive_logins_do_not_share_globals() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let code = handler(
        "api.idToken.setCustomClaim('https://x.test/seen', typeof globalThis.previous === 'undefined' ? 'nothing' : globalThis.previous);
         globalThis.previous = event.user.email;
         Object.prototype.polluted = 'yes';",
    );
    deploy_action(&t, &token, "leaky", &code, json!([])).await;
    bind(&t, &token, &["leaky"]).await;
    for _ in 0..4 {
        let (status, tokens) = admin_grant(&t).await;
        assert_eq!(status, 200, "{tokens}");
        assert_eq!(claims(tokens["id_token"].as_str().unwrap())["https://x.test/seen"], "nothing");
    }
}

#[tokio::test]
async fn the_actions_api_speaks_auth0s_shapes() {
    let t = start().await;
    let token = management_token(&t, None).await;
    let (status, list) = call(&t, &token, Method::GET, "actions/actions?per_page=100&page=0", None).await;
    assert_eq!(status, 200);
    assert_eq!(
        (list["total"].as_u64(), list["per_page"].as_u64(), list["page"].as_u64()),
        (Some(1), Some(100), Some(0))
    );
    let a = &list["actions"][0];
    for key in
        ["id", "name", "supported_triggers", "code", "runtime", "status", "secrets", "deployed_version", "created_at"]
    {
        assert!(a.get(key).is_some(), "{key} missing: {a}");
    }
    let (_, filtered) = call(&t, &token, Method::GET, "actions/actions?triggerId=credentials-exchange", None).await;
    assert_eq!(filtered["total"], 0);
    let (_, filtered) = call(&t, &token, Method::GET, "actions/actions?deployed=true", None).await;
    assert_eq!(filtered["total"], 1);

    let (status, triggers) = call(&t, &token, Method::GET, "actions/triggers", None).await;
    assert_eq!(status, 200);
    let ids: Vec<&str> = triggers["triggers"].as_array().unwrap().iter().map(|x| x["id"].as_str().unwrap()).collect();
    assert!(ids.contains(&"post-login") && ids.contains(&"credentials-exchange"));
    // deploy-cli PATCHes every trigger of a tenant file, most with an empty list.
    for id in &ids {
        let (status, body) =
            call(&t, &token, Method::PATCH, &format!("actions/triggers/{id}/bindings"), Some(json!({"bindings": []})))
                .await;
        assert_eq!((status, body.clone()), (200, json!({"bindings": []})), "{id}");
    }
    let (status, body) = call(&t, &token, Method::GET, "actions/triggers/post-login/bindings", None).await;
    assert_eq!((status, body["total"].as_u64()), (200, Some(0)));
    assert_eq!(admin_grant(&t).await.0, 200);
    let (_, tokens) = admin_grant(&t).await;
    assert!(claims(tokens["id_token"].as_str().unwrap()).get(format!("{NS}app_metadata")).is_none(), "unbound");

    // A draft that was never deployed cannot be bound.
    let (status, a) = call(
        &t,
        &token,
        Method::POST,
        "actions/actions",
        Some(json!({"name": "draft-only", "supported_triggers": [{"id": "post-login", "version": "v3"}], "code": handler("")})),
    )
    .await;
    assert_eq!(status, 201, "{a}");
    let (status, body) = call(
        &t,
        &token,
        Method::PATCH,
        "actions/triggers/post-login/bindings",
        Some(json!({"bindings": [{"ref": {"type": "action_id", "value": a["id"]}}]})),
    )
    .await;
    assert_eq!(status, 400, "{body}");

    let (status, modules) = call(&t, &token, Method::GET, "actions/modules", None).await;
    assert_eq!((status, modules["modules"].clone()), (200, json!([])));
    let (status, body) =
        call(&t, &token, Method::GET, "actions/actions/00000000-0000-4000-a000-000000000000", None).await;
    assert_eq!((status, body["message"].as_str()), (404, Some("That action does not exist.")));

    // Deleting a bound action needs force=true.
    bind(&t, &token, &["inject-id-token"]).await;
    let id = list["actions"][0]["id"].as_str().unwrap();
    let (status, _) = call(&t, &token, Method::DELETE, &format!("actions/actions/{id}"), None).await;
    assert_eq!(status, 400);
    let (status, _) = call(&t, &token, Method::DELETE, &format!("actions/actions/{id}?force=true"), None).await;
    assert_eq!(status, 204);
    let (_, body) = call(&t, &token, Method::GET, "actions/triggers/post-login/bindings", None).await;
    assert_eq!(body["bindings"], json!([]));

    let read_only = management_token(&t, Some(&["read:users"])).await;
    let (status, body) = call(&t, &read_only, Method::GET, "actions/actions", None).await;
    assert_eq!((status, body["errorCode"].as_str()), (403, Some("insufficient_scope")));
}
