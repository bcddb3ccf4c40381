//! Google and OpenID Connect connections, end to end. The upstream provider is a second real
//! idp on its own listener (its own store, keys and tenant), with the guide's CMS application
//! registered for the downstream idp's `/login/callback`; the downstream idp finds it through
//! `Config::google_discovery_url` (Google) or a connection's options (OIDC). Two cookie jars
//! play the browser, one per site, since both listen on 127.0.0.1.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};
use std::time::{Duration, Instant};

pub(crate) const GOOGLE: &str = "google-oauth2";
pub(crate) const NS: &str = "https://cms.example.test/";

/// An upstream idp, and a downstream idp whose Google endpoints are the upstream's.
pub(crate) async fn pair() -> (TestIdp, TestIdp) {
    pair_on(sqlite_store().await).await
}

/// [`pair`] with the downstream idp on `store`.
pub(crate) async fn pair_on(store: std::sync::Arc<store::SqlStore>) -> (TestIdp, TestIdp) {
    let up = start().await;
    let discovery = url::Url::parse(&up.url(".well-known/openid-configuration")).unwrap();
    let down = start_on(store, true, |c| c.google_discovery_url = discovery).await;
    register_downstream(&up, &down).await;
    (up, down)
}

/// The upstream's CMS application accepts the downstream's callback.
async fn register_downstream(up: &TestIdp, down: &TestIdp) {
    let mut cms = up.idp.store.client(&kw("CMS_CLIENT_ID")).await.unwrap().unwrap();
    cms.client.callbacks.push(down.url("login/callback"));
    up.idp.store.put_client(&cms).await.unwrap();
}

async fn connection_id(t: &TestIdp, name: &str) -> String {
    t.idp.store.connection_by_name(name).await.unwrap().unwrap().id
}

/// Gives the downstream's Google connection the upstream's CMS credentials and, when asked,
/// enables it for the CMS, all through the Management API.
pub(crate) async fn configure_google(down: &TestIdp, enable: bool) {
    let token = management_token(down, None).await;
    let id = connection_id(down, GOOGLE).await;
    let options = json!({"client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"),
                         "email": true, "profile": true, "scope": ["email", "profile"]});
    let (status, body) =
        call(down, &token, Method::PATCH, &format!("connections/{id}"), Some(json!({"options": options}))).await;
    assert_eq!(status, 200, "{body}");
    if enable {
        let change = json!([{"client_id": kw("CMS_CLIENT_ID"), "status": true}]);
        let (status, body) =
            call(down, &token, Method::PATCH, &format!("connections/{id}/clients"), Some(change)).await;
        assert_eq!(status, 204, "{body}");
    }
}

/// The upstream leg: follows the upstream's authorize URL in the upstream browser, signing in
/// with the password form unless the upstream has an SSO session; returns where the upstream
/// sends the browser back (the downstream callback).
pub(crate) async fn upstream_leg(
    up: &TestIdp,
    ub: &reqwest::Client,
    authorize: &str,
    email: &str,
    password: &str,
) -> String {
    assert!(authorize.starts_with(&up.url("authorize")), "{authorize}");
    let res = ub.get(authorize).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let next = location(&res);
    if next.starts_with("http") {
        return next; // upstream SSO
    }
    let res = login(up, ub, authorize, email, password).await;
    assert_eq!(res.status(), 302, "upstream login should redirect back");
    location(&res)
}

/// A downstream login through `connection` from start to the application's callback.
pub(crate) async fn federated_login(
    up: &TestIdp,
    down: &TestIdp,
    b: &reqwest::Client,
    ub: &reqwest::Client,
    connection: &str,
) -> String {
    let res = b.get(authorize_url(down, &[("connection", connection)])).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let back = upstream_leg(up, ub, &location(&res), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    assert!(back.starts_with(&down.url("login/callback")), "{back}");
    let res = b.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 302, "{:?}", res.text().await);
    location(&res)
}

pub(crate) async fn tokens_for(down: &TestIdp, app_callback: &str) -> Value {
    assert!(app_callback.starts_with(CALLBACK), "{app_callback}");
    let code = query_param(app_callback, "code").unwrap_or_else(|| panic!("no code in {app_callback}"));
    assert_eq!(query_param(app_callback, "state").as_deref(), Some("st-123"));
    let (status, tokens) = json(exchange_code(down, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{tokens}");
    tokens
}

pub(crate) fn assert_error(app_callback: &str, error: &str, description_part: &str) {
    assert!(app_callback.starts_with(CALLBACK), "{app_callback}");
    assert_eq!(query_param(app_callback, "error").as_deref(), Some(error), "{app_callback}");
    let description = query_param(app_callback, "error_description").unwrap_or_default();
    assert!(description.contains(description_part), "{description:?} should mention {description_part:?}");
    assert_eq!(query_param(app_callback, "state").as_deref(), Some("st-123"));
    assert!(query_param(app_callback, "code").is_none());
}

async fn login_page(down: &TestIdp, b: &reqwest::Client) -> (String, String) {
    let res = b.get(authorize_url(down, &[])).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let page_url = down.url(&location(&res));
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    (page_url, html)
}

#[tokio::test]
async fn google_is_offered_only_where_the_application_enables_it() {
    let (up, down) = pair().await;
    configure_google(&down, false).await;

    // The guide's tenant: Google defined, enabled for no application.
    let b = browser();
    let (_, html) = login_page(&down, &b).await;
    assert!(html.contains("name=\"password\""), "the password form is there");
    assert!(!html.contains("connection-google-oauth2") && !html.contains("Continue with"), "no button: {html}");
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_error(&location(&res), "invalid_request", "not enabled for this application");
    let res = b.get(authorize_url(&down, &[("connection", "no-such-connection")])).send().await.unwrap();
    assert_error(&location(&res), "invalid_request", "was not found");

    // Enabled for the CMS: a button, which leaves for the upstream with state, nonce and PKCE.
    configure_google(&down, true).await;
    let (page_url, html) = login_page(&down, &b).await;
    assert!(html.contains("id=\"connection-google-oauth2\""), "{html}");
    assert!(html.contains("Continue with Google"));
    let form = [
        ("state", hidden(&html, "state").unwrap()),
        ("csrf", hidden(&html, "csrf").unwrap()),
        ("connection", GOOGLE.to_string()),
        ("action", "federated".to_string()),
    ];
    let res = b.post(&page_url).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 302);
    let upstream = location(&res);
    assert!(upstream.starts_with(&up.url("authorize")), "{upstream}");
    assert_eq!(query_param(&upstream, "client_id"), Some(kw("CMS_CLIENT_ID")));
    assert_eq!(query_param(&upstream, "redirect_uri"), Some(down.url("login/callback")));
    assert_eq!(query_param(&upstream, "response_type").as_deref(), Some("code"));
    assert_eq!(query_param(&upstream, "code_challenge_method").as_deref(), Some("S256"));
    assert_eq!(query_param(&upstream, "scope").as_deref(), Some("openid email profile"));
    for p in ["state", "nonce", "code_challenge"] {
        assert!(query_param(&upstream, p).is_some_and(|v| v.len() >= 43), "{p} in {upstream}");
    }
    assert_ne!(query_param(&upstream, "state"), hidden(&html, "state"), "the upstream state is not the page's");

    // The button's form is checked like the password form: a forged CSRF token is refused.
    let mut forged = form.clone();
    forged[1].1 = "forged".into();
    assert_eq!(b.post(&page_url).form(&forged).send().await.unwrap().status(), 403);
    // Only enabled providers: asking for another connection through the button is refused.
    let mut other = form.clone();
    other[2].1 = "dev-users".into();
    assert_eq!(b.post(&page_url).form(&other).send().await.unwrap().status(), 400);

    // Switched off again per application: button and direct route both go away.
    let token = management_token(&down, None).await;
    let id = connection_id(&down, GOOGLE).await;
    let off = json!([{"client_id": kw("CMS_CLIENT_ID"), "status": false}]);
    assert_eq!(call(&down, &token, Method::PATCH, &format!("connections/{id}/clients"), Some(off)).await.0, 204);
    let (_, html) = login_page(&down, &browser()).await;
    assert!(!html.contains("connection-google-oauth2"));
    let res = browser().get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    assert_error(&location(&res), "invalid_request", "not enabled");
}

#[tokio::test]
async fn first_and_second_google_logins_are_the_same_user_and_finish_like_password_logins() {
    let (up, down) = pair().await;
    configure_google(&down, true).await;
    let upstream_user = up.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user;

    let (b, ub) = (browser(), browser());
    let first = tokens_for(&down, &federated_login(&up, &down, &b, &ub, GOOGLE).await).await;
    let id = claims(first["id_token"].as_str().unwrap());
    let user_id = format!("google-oauth2|{}", upstream_user.user_id);
    assert_eq!(id["sub"], json!(user_id));
    assert_eq!(id["iss"], json!(down.url("")), "the downstream idp issues the tokens");
    assert_eq!(id["nonce"], "n-456");
    assert_eq!(id["email"], json!(kw("USER_EMAIL")));
    assert_eq!(id[format!("{NS}app_metadata")], json!({}), "the post-login action ran");
    assert!(first["refresh_token"].is_string());

    let stored = down.idp.store.user(&user_id).await.unwrap().expect("the user was created").user;
    assert_eq!(stored.connection, GOOGLE);
    assert_eq!(stored.logins_count, 1);
    let token = management_token(&down, None).await;
    let (status, api_user) = call(&down, &token, Method::GET, &format!("users/{}", urlencode(&user_id)), None).await;
    assert_eq!(status, 200, "{api_user}");
    assert_eq!(
        api_user["identities"],
        json!([{"connection": GOOGLE, "provider": GOOGLE, "user_id": upstream_user.user_id, "isSocial": true}])
    );
    let by_email = format!("users-by-email?email={}", urlencode(&kw("USER_EMAIL")));
    let (status, found) = call(&down, &token, Method::GET, &by_email, None).await;
    assert_eq!(status, 200, "{found}");
    assert!(found.as_array().unwrap().iter().any(|u| u["user_id"] == json!(user_id)), "social users too: {found}");

    // SSO at the downstream: no trip upstream.
    let res = b.get(authorize_url(&down, &[])).send().await.unwrap();
    assert!(location(&res).starts_with(CALLBACK) && query_param(&location(&res), "code").is_some());

    // Second login from a new downstream browser (the upstream still knows this browser):
    // the same user, metadata kept, the actions see it.
    let mut doc = down.idp.store.user(&user_id).await.unwrap().unwrap();
    doc.user.app_metadata.insert("groups".into(), json!(["editors"]));
    down.idp.store.update_user(&doc).await.unwrap();
    let second = tokens_for(&down, &federated_login(&up, &down, &browser(), &ub, GOOGLE).await).await;
    let id2 = claims(second["id_token"].as_str().unwrap());
    assert_eq!(id2["sub"], json!(user_id));
    assert_eq!(id2[format!("{NS}app_metadata")], json!({"groups": ["editors"]}));
    let stored = down.idp.store.user(&user_id).await.unwrap().unwrap().user;
    assert_eq!(stored.logins_count, 2);
    assert_eq!(stored.identities.len(), 1);
    assert_eq!(users(&down).await.iter().filter(|u| u.connection == GOOGLE).count(), 1, "one Google user, not two");
}

async fn users(t: &TestIdp) -> Vec<store::User> {
    let search = store::UserSearch { per_page: 100, ..Default::default() };
    t.idp.store.search_users(&search).await.unwrap().users.into_iter().map(|u| u.user).collect()
}

pub(crate) fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn an_upstream_denial_comes_back_to_the_application() {
    let (up, down) = pair().await;
    configure_google(&down, true).await;
    // A deny Action on the upstream idp ends its login with access_denied.
    let token = management_token(&up, None).await;
    let code = "exports.onExecutePostLogin = async (event, api) => { api.access.deny('Not from this network.'); };";
    let body = json!({"name": "deny-all", "supported_triggers": [{"id": "post-login", "version": "v3"}], "code": code, "runtime": "node22"});
    let (status, action) = call(&up, &token, Method::POST, "actions/actions", Some(body)).await;
    assert_eq!(status, 201, "{action}");
    let action_id = action["id"].as_str().unwrap();
    assert_eq!(call(&up, &token, Method::POST, &format!("actions/actions/{action_id}/deploy"), None).await.0, 200);
    let bindings =
        json!({"bindings": [{"ref": {"type": "action_name", "value": "deny-all"}, "display_name": "deny-all"}]});
    assert_eq!(call(&up, &token, Method::PATCH, "actions/triggers/post-login/bindings", Some(bindings)).await.0, 200);

    let (b, ub) = (browser(), browser());
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    let back = upstream_leg(&up, &ub, &location(&res), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    assert_eq!(query_param(&back, "error").as_deref(), Some("access_denied"), "{back}");
    let res = b.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_error(&location(&res), "access_denied", "Not from this network.");
    assert!(users(&down).await.iter().all(|u| u.connection != GOOGLE));
    // The downstream's tenant log: the upstream's refusal as a failed login of the connection.
    assert!(down.idp.flush_logs(std::time::Duration::from_secs(5)).await);
    let down_token = management_token(&down, None).await;
    let (status, events) = call(&down, &down_token, Method::GET, "logs?q=type:f", None).await;
    assert_eq!(status, 200, "{events}");
    let f = &events[0];
    assert_eq!((f["connection"].as_str(), f["strategy_type"].as_str()), (Some(GOOGLE), Some("social")), "{f}");
    assert!(f["description"].as_str().unwrap().contains("Not from this network."), "{f}");

    // The same callback again: the state was spent.
    let res = b.get(&back).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("already used"));
}

#[tokio::test]
async fn a_wrong_nonce_or_issuer_in_the_upstream_id_token_is_refused() {
    let (up, down) = pair().await;
    configure_google(&down, true).await;

    // Nonce: the browser swaps the nonce on its way to the upstream (a replayed ID token would
    // carry someone else's); the upstream signs a token the downstream must refuse.
    let (b, ub) = (browser(), browser());
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    let mut to_upstream = url::Url::parse(&location(&res)).unwrap();
    let pairs: Vec<(String, String)> = to_upstream
        .query_pairs()
        .map(|(k, v)| (k.to_string(), if k == "nonce" { "attacker-nonce".to_string() } else { v.to_string() }))
        .collect();
    to_upstream.query_pairs_mut().clear().extend_pairs(&pairs);
    let back = upstream_leg(&up, &ub, to_upstream.as_str(), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let res = b.get(&back).send().await.unwrap();
    assert_error(&location(&res), "access_denied", "nonce");

    // Issuer: an OIDC connection expecting another issuer than the upstream's.
    let token = management_token(&down, None).await;
    let body = json!({
        "name": "corp-wrong-issuer", "strategy": "oidc", "enabled_clients": [kw("CMS_CLIENT_ID")],
        "options": {"type": "back_channel", "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"),
                    "issuer": "https://issuer.example.test/", "authorization_endpoint": up.url("authorize"),
                    "token_endpoint": up.url("oauth/token"), "jwks_uri": up.url(".well-known/jwks.json")}
    });
    let (status, created) = call(&down, &token, Method::POST, "connections", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    let to_app = federated_login(&up, &down, &browser(), &ub, "corp-wrong-issuer").await;
    assert_error(&to_app, "access_denied", "issuer");
    assert!(users(&down).await.iter().all(|u| u.connection == "dev-users"), "no user from refused tokens");
}

#[tokio::test]
async fn oidc_connections_are_managed_through_the_management_api_and_log_in() {
    let (up, down) = pair().await;
    let token = management_token(&down, None).await;
    let bad = json!({"name": "corp", "strategy": "oidc", "options": {"client_id": "x"}});
    let (status, body) = call(&down, &token, Method::POST, "connections", Some(bad)).await;
    assert_eq!(status, 400, "{body}");
    assert!(body["message"].as_str().unwrap().contains("discovery_url"), "{body}");
    let bad_type = json!({"name": "corp", "strategy": "oidc",
                          "options": {"client_id": "x", "discovery_url": "https://x.test/", "type": "sideways"}});
    assert_eq!(call(&down, &token, Method::POST, "connections", Some(bad_type)).await.0, 400);

    let body = json!({
        "name": "corp", "strategy": "oidc", "display_name": "Corp SSO", "enabled_clients": [kw("CMS_CLIENT_ID")],
        "options": {"type": "back_channel", "discovery_url": up.url(".well-known/openid-configuration"),
                    "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"), "scope": "openid profile email"}
    });
    let (status, created) = call(&down, &token, Method::POST, "connections", Some(body)).await;
    assert_eq!(status, 201, "{created}");
    assert_eq!(created["strategy"], "oidc");
    let id = created["id"].as_str().unwrap();
    // Replacing the options with invalid ones is refused; the stored connection is unchanged.
    let (status, _) =
        call(&down, &token, Method::PATCH, &format!("connections/{id}"), Some(json!({"options": {"client_id": "x"}})))
            .await;
    assert_eq!(status, 400);

    let (_, html) = login_page(&down, &browser()).await;
    assert!(html.contains("id=\"connection-corp\"") && html.contains("Continue with Corp SSO"), "{html}");

    let upstream_user = up.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user;
    let tokens = tokens_for(&down, &federated_login(&up, &down, &browser(), &browser(), "corp").await).await;
    let user_id = format!("oidc|corp|{}", upstream_user.user_id);
    assert_eq!(claims(tokens["id_token"].as_str().unwrap())["sub"], json!(user_id));
    let user = down.idp.store.user(&user_id).await.unwrap().expect("created").user;
    assert_eq!(
        serde_json::to_value(&user.identities).unwrap(),
        json!([{"connection": "corp", "provider": "oidc", "user_id": format!("corp|{}", upstream_user.user_id), "isSocial": false}])
    );
}

#[tokio::test]
async fn an_unreachable_or_silent_upstream_fails_the_login_at_the_application() {
    // Discovery on a closed port: refused at once.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap();
    let down = start_on(sqlite_store().await, true, |c| {
        c.google_discovery_url = url::Url::parse(&format!("http://{closed}/.well-known/openid-configuration")).unwrap();
        c.upstream_timeout = Duration::from_secs(1);
    })
    .await;
    configure_google(&down, true).await;
    let b = browser();
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_error(&location(&res), "server_error", "could not be reached");
    // The login transaction ended; the login page still works for the next try.
    assert!(login_page(&down, &b).await.1.contains("name=\"password\""));

    // A listener that accepts and never answers: the timeout ends the login, not a hang.
    let silent = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let token = management_token(&down, None).await;
    let body = json!({
        "name": "silent", "strategy": "oidc", "enabled_clients": [kw("CMS_CLIENT_ID")],
        "options": {"client_id": "x", "discovery_url": format!("http://{}/.well-known/openid-configuration", silent.local_addr().unwrap())}
    });
    assert_eq!(call(&down, &token, Method::POST, "connections", Some(body)).await.0, 201);
    let started = Instant::now();
    let res = b.get(authorize_url(&down, &[("connection", "silent")])).send().await.unwrap();
    assert_error(&location(&res), "server_error", "could not be reached");
    assert!(started.elapsed() < Duration::from_secs(10), "bounded by the upstream timeout");
    drop(silent);

    // Token endpoint unreachable after a successful upstream login.
    let up = start().await;
    register_downstream(&up, &down).await;
    let body = json!({
        "name": "broken-token", "strategy": "oidc", "enabled_clients": [kw("CMS_CLIENT_ID")],
        "options": {"type": "back_channel", "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET"),
                    "issuer": up.url(""), "authorization_endpoint": up.url("authorize"),
                    "token_endpoint": format!("http://{closed}/oauth/token"), "jwks_uri": up.url(".well-known/jwks.json")}
    });
    assert_eq!(call(&down, &token, Method::POST, "connections", Some(body)).await.0, 201);
    let to_app = federated_login(&up, &down, &browser(), &browser(), "broken-token").await;
    assert_error(&to_app, "server_error", "could not be reached");
}

#[tokio::test]
async fn malformed_replayed_or_foreign_callbacks_get_clear_errors() {
    let (up, down) = pair().await;
    configure_google(&down, true).await;
    let callback = down.url("login/callback");
    let b = browser();
    for (query, status, text) in [
        ("", 400, "no state"),
        ("?code=x", 400, "no state"),
        ("?state=unknown&code=x", 400, "unknown or expired"),
        ("?state=a&state=b", 400, "more than once"),
    ] {
        let res = b.get(format!("{callback}{query}")).send().await.unwrap();
        assert_eq!(res.status(), status, "{query}");
        assert!(res.text().await.unwrap().contains(text), "{query}");
    }

    // A real state, but the callback arrives in another browser than the one that left.
    let ub = browser();
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    let back = upstream_leg(&up, &ub, &location(&res), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let res = browser().get(&back).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.text().await.unwrap().contains("another browser"));

    // A real state without code or error: the application hears of it.
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    let state = query_param(&location(&res), "state").unwrap();
    let res = b.get(format!("{callback}?state={state}")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_error(&location(&res), "invalid_request", "has no code");

    // An upstream error without a description gets one; unknown codes become server_error.
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    let state = query_param(&location(&res), "state").unwrap();
    let res = b.get(format!("{callback}?state={state}&error=weird_thing")).send().await.unwrap();
    assert_error(&location(&res), "server_error", "weird_thing");

    // A successful callback replayed (say, from history) is refused, and the first login stands.
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    let back = upstream_leg(&up, &ub, &location(&res), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let first = b.get(&back).send().await.unwrap();
    tokens_for(&down, &location(&first)).await;
    let again = b.get(&back).send().await.unwrap();
    assert_eq!(again.status(), 400);
    assert!(again.text().await.unwrap().contains("already used"));
}

#[tokio::test]
async fn federated_connections_come_from_tenant_files_and_bad_options_change_nothing() {
    let t = start().await;
    let mut words = keywords();
    words.insert("AUTH0_DOMAIN", t.idp.config.domain());
    let base = std::fs::read_to_string(example_dir().join("tenant.yaml")).unwrap();
    let with = |extra: &str| base.replacen("\nconnections:\n", &format!("\nconnections:\n{extra}"), 1);

    let good = "  - name: corp\n    strategy: oidc\n    display_name: Corp SSO\n    enabled_clients:\n      - CMS\n    options:\n      client_id: corp-client\n      type: front_channel\n      discovery_url: https://corp.example.test/.well-known/openid-configuration\n";
    let file = tenant::parse_tenant(&with(good), example_dir(), &words).unwrap();
    idp::provision::apply_tenant(&t.idp, &file).await.unwrap();
    let corp = t.idp.store.connection_by_name("corp").await.unwrap().expect("imported");
    assert_eq!(corp.strategy, "oidc");
    assert!(corp.enabled_for(&kw("CMS_CLIENT_ID")));
    let (_, html) = login_page(&t, &browser()).await;
    assert!(html.contains("Continue with Corp SSO"), "{html}");
    assert!(!html.contains("connection-google-oauth2"), "the guide's Google stays off for the CMS");

    let bad = "  - name: corp-two\n    strategy: oidc\n    options:\n      client_id: x\n";
    let file = tenant::parse_tenant(&with(bad), example_dir(), &words).unwrap();
    let before = t.idp.store.connections().await.unwrap();
    let err = idp::provision::apply_tenant(&t.idp, &file).await.unwrap_err().to_string();
    assert!(err.contains("corp-two") && err.contains("discovery_url"), "{err}");
    assert_eq!(t.idp.store.connections().await.unwrap(), before, "nothing written");
}

/// Creates an OIDC connection through the Management API, enabled for the CMS, with the
/// upstream's CMS credentials and `options` added.
async fn create_oidc(down: &TestIdp, name: &str, options: Value) -> (u16, Value) {
    let token = management_token(down, None).await;
    let mut all =
        json!({"type": "back_channel", "client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET")});
    all.as_object_mut().unwrap().extend(options.as_object().unwrap().clone());
    let body = json!({"name": name, "strategy": "oidc", "enabled_clients": [kw("CMS_CLIENT_ID")], "options": all});
    call(down, &token, Method::POST, "connections", Some(body)).await
}

fn discovery_of(up: &TestIdp) -> Value {
    json!({"discovery_url": up.url(".well-known/openid-configuration")})
}

/// A second upstream whose dev user has the same id (so the same `sub`) as `up`'s.
async fn twin_upstream(up: &TestIdp, down: &TestIdp) -> TestIdp {
    let twin = start().await;
    register_downstream(&twin, down).await;
    let original = up.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap();
    let theirs = twin.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap();
    assert!(twin.idp.store.delete_user(&theirs.user.user_id).await.unwrap());
    twin.idp.store.create_user(&original).await.unwrap();
    twin
}

#[tokio::test]
async fn actions_are_told_a_federated_login_from_a_password_login() {
    let (up, down) = pair().await;
    configure_google(&down, true).await;
    let (status, created) = create_oidc(&down, "corp", discovery_of(&up)).await;
    assert_eq!(status, 201, "{created}");
    let token = management_token(&down, None).await;
    let code = "exports.onExecutePostLogin = async (event, api) => {
        api.idToken.setCustomClaim('https://x.test/login', {
            methods: event.authentication.methods.map((m) => m.name),
            at: typeof event.authentication.methods[0].timestamp,
            connection: event.connection,
            providers: event.user.identities.map((i) => i.provider),
        });
    };";
    crate::actions::deploy_action(&down, &token, "how", code, json!([])).await;
    crate::actions::bind(&down, &token, &["how"]).await;
    let login_of = |tokens: &Value| claims(tokens["id_token"].as_str().unwrap())["https://x.test/login"].clone();
    let expect = |method: &str, id: &str, name: &str, strategy: &str, provider: &str| json!({"methods": [method], "at": "string", "connection": {"id": id, "name": name, "strategy": strategy, "metadata": {}}, "providers": [provider]});

    let (b, ub) = (browser(), browser());
    let tokens = tokens_for(&down, &federated_login(&up, &down, &b, &ub, GOOGLE).await).await;
    let google = expect("federated", &connection_id(&down, GOOGLE).await, GOOGLE, GOOGLE, GOOGLE);
    assert_eq!(login_of(&tokens), google);
    // A later login on the same SSO session was still a federated one.
    let res = b.get(authorize_url(&down, &[])).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(login_of(&tokens_for(&down, &location(&res)).await), google);

    let tokens = tokens_for(&down, &federated_login(&up, &down, &browser(), &browser(), "corp").await).await;
    assert_eq!(login_of(&tokens), expect("federated", created["id"].as_str().unwrap(), "corp", "oidc", "oidc"));

    let res = login(&down, &browser(), &authorize_url(&down, &[]), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let tokens = tokens_for(&down, &location(&res)).await;
    assert_eq!(
        login_of(&tokens),
        expect("pwd", &connection_id(&down, "dev-users").await, "dev-users", "auth0", "auth0")
    );
}

#[tokio::test]
async fn a_repointed_oidc_connection_does_not_log_into_the_old_account() {
    let (up, down) = pair().await;
    let (status, created) = create_oidc(&down, "corp", discovery_of(&up)).await;
    assert_eq!(status, 201, "{created}");
    let id = created["id"].as_str().unwrap().to_owned();
    let sub = up.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user.user_id;
    let user_id = format!("oidc|corp|{sub}");
    tokens_for(&down, &federated_login(&up, &down, &browser(), &browser(), "corp").await).await;
    let mut doc = down.idp.store.user(&user_id).await.unwrap().expect("created");
    doc.user.app_metadata.insert("groups".into(), json!(["admins"]));
    down.idp.store.update_user(&doc).await.unwrap();
    let token = management_token(&down, None).await;
    let (status, api_user) = call(&down, &token, Method::GET, &format!("users/{}", urlencode(&user_id)), None).await;
    assert_eq!(status, 200);
    assert!(!api_user.to_string().contains(&up.url("")), "the recorded issuer is not shown: {api_user}");
    // A user from before issuers were recorded gets the issuer of its next login.
    assert!(down.idp.store.delete_federated_issuer(&user_id).await.unwrap());
    tokens_for(&down, &federated_login(&up, &down, &browser(), &browser(), "corp").await).await;
    assert!(down.idp.store.federated_issuer(&user_id).await.unwrap().is_some());

    // The connection now points at another provider, where someone has the same `sub`.
    let twin = twin_upstream(&up, &down).await;
    let mut options = down.idp.store.connection(&id).await.unwrap().unwrap().options;
    options.insert("discovery_url".into(), json!(twin.url(".well-known/openid-configuration")));
    let (status, body) =
        call(&down, &token, Method::PATCH, &format!("connections/{id}"), Some(json!({"options": options}))).await;
    assert_eq!(status, 200, "{body}");
    let to_app = federated_login(&twin, &down, &browser(), &browser(), "corp").await;
    assert_error(&to_app, "access_denied", "another identity provider");
    let kept = down.idp.store.user(&user_id).await.unwrap().unwrap();
    assert_eq!(kept.user.logins_count, 2, "no login was counted");

    // Pointed back at the original provider, its user logs in as before.
    options.insert("discovery_url".into(), json!(up.url(".well-known/openid-configuration")));
    let patch = Some(json!({"options": options}));
    assert_eq!(call(&down, &token, Method::PATCH, &format!("connections/{id}"), patch).await.0, 200);
    let tokens = tokens_for(&down, &federated_login(&up, &down, &browser(), &browser(), "corp").await).await;
    assert_eq!(
        claims(tokens["id_token"].as_str().unwrap())[format!("{NS}app_metadata")],
        json!({"groups": ["admins"]})
    );
}

#[tokio::test]
async fn deleting_a_connection_deletes_its_users_so_a_recreated_one_starts_afresh() {
    let (up, down) = pair().await;
    let (status, created) = create_oidc(&down, "corp", discovery_of(&up)).await;
    assert_eq!(status, 201, "{created}");
    let sub = up.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user.user_id;
    let user_id = format!("oidc|corp|{sub}");
    tokens_for(&down, &federated_login(&up, &down, &browser(), &browser(), "corp").await).await;
    let mut doc = down.idp.store.user(&user_id).await.unwrap().expect("created");
    doc.user.app_metadata.insert("groups".into(), json!(["admins"]));
    down.idp.store.update_user(&doc).await.unwrap();
    let database_users = users(&down).await.iter().filter(|u| u.connection == "dev-users").count();
    assert!(database_users > 0);

    let token = management_token(&down, None).await;
    let id = created["id"].as_str().unwrap();
    let (status, _) = call(&down, &token, Method::DELETE, &format!("connections/{id}"), None).await;
    assert_eq!(status, 202);
    assert!(down.idp.store.user(&user_id).await.unwrap().is_none(), "the connection's user went with it");
    let (status, _) = call(&down, &token, Method::GET, &format!("users/{}", urlencode(&user_id)), None).await;
    assert_eq!(status, 404);
    assert_eq!(users(&down).await.iter().filter(|u| u.connection == "dev-users").count(), database_users);
    let (status, _) = call(&down, &token, Method::DELETE, &format!("connections/{id}"), None).await;
    assert_eq!(status, 404);

    // Recreated with the same name at another provider: a new account, without the old groups.
    let twin = twin_upstream(&up, &down).await;
    let (status, created) = create_oidc(&down, "corp", discovery_of(&twin)).await;
    assert_eq!(status, 201, "{created}");
    let tokens = tokens_for(&down, &federated_login(&twin, &down, &browser(), &browser(), "corp").await).await;
    let id_token = claims(tokens["id_token"].as_str().unwrap());
    assert_eq!(id_token["sub"], json!(user_id));
    assert_eq!(id_token[format!("{NS}app_metadata")], json!({}));
    assert_eq!(down.idp.store.user(&user_id).await.unwrap().unwrap().user.logins_count, 1);
}

#[tokio::test]
async fn a_google_user_of_one_connection_cannot_log_in_through_another() {
    let (up, down) = pair().await;
    configure_google(&down, true).await;
    let token = management_token(&down, None).await;
    let body = json!({"name": "google-b", "strategy": GOOGLE, "enabled_clients": [kw("CMS_CLIENT_ID")],
                      "options": {"client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET")}});
    let (status, created) = call(&down, &token, Method::POST, "connections", Some(body)).await;
    assert_eq!(status, 201, "{created}");

    let ub = browser();
    tokens_for(&down, &federated_login(&up, &down, &browser(), &ub, GOOGLE).await).await;
    let to_app = federated_login(&up, &down, &browser(), &ub, "google-b").await;
    assert_error(&to_app, "access_denied", "connection google-oauth2");
    let sub = up.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user.user_id;
    let user = down.idp.store.user(&format!("google-oauth2|{sub}")).await.unwrap().unwrap().user;
    assert_eq!((user.connection.as_str(), user.logins_count), (GOOGLE, 1));

    // The other way round: a user created through google-b stays google-b's.
    let (up2, down2) = pair().await;
    configure_google(&down2, true).await;
    let token = management_token(&down2, None).await;
    let body = json!({"name": "google-b", "strategy": GOOGLE, "enabled_clients": [kw("CMS_CLIENT_ID")],
                      "options": {"client_id": kw("CMS_CLIENT_ID"), "client_secret": kw("CMS_CLIENT_SECRET")}});
    assert_eq!(call(&down2, &token, Method::POST, "connections", Some(body)).await.0, 201);
    let ub = browser();
    tokens_for(&down2, &federated_login(&up2, &down2, &browser(), &ub, "google-b").await).await;
    let to_app = federated_login(&up2, &down2, &browser(), &ub, GOOGLE).await;
    assert_error(&to_app, "access_denied", "connection google-b");
}

#[tokio::test]
async fn oidc_endpoints_must_use_https_except_on_loopback() {
    let (up, down) = pair().await;
    let explicit = |token_endpoint: &str, jwks_uri: &str, authorization_endpoint: &str| {
        json!({"issuer": "https://corp.example.test/", "authorization_endpoint": authorization_endpoint,
               "token_endpoint": token_endpoint, "jwks_uri": jwks_uri})
    };
    let (t, k, a) =
        ("https://corp.example.test/token", "https://corp.example.test/jwks", "https://corp.example.test/authorize");
    for (options, key) in [
        (json!({"discovery_url": "http://corp.example.test/.well-known/openid-configuration"}), "discovery_url"),
        (explicit("http://corp.example.test/token", k, a), "token_endpoint"),
        (explicit(t, "http://corp.example.test/jwks", a), "jwks_uri"),
        (explicit(t, k, "http://corp.example.test/authorize"), "authorization_endpoint"),
        (explicit("http://127.0.0.2.example.test/token", k, a), "token_endpoint"),
        (explicit("http://localhost.example.test/token", k, a), "token_endpoint"),
    ] {
        let (status, body) = create_oidc(&down, "corp", options.clone()).await;
        assert_eq!(status, 400, "{options} {body}");
        assert_eq!(body["statusCode"], 400, "{body}");
        assert_eq!(body["error"], "Bad Request", "{body}");
        let message = body["message"].as_str().unwrap();
        assert!(message.contains(key) && message.contains("https"), "{message}");
    }
    for (name, options) in [
        ("https", explicit(t, k, a)),
        ("localhost", explicit("http://localhost:9/token", "http://LOCALHOST:9/jwks", "http://localhost/a")),
        ("ipv6", explicit("http://[::1]:9/token", k, a)),
        ("ipv4", discovery_of(&up)),
    ] {
        let (status, body) = create_oidc(&down, name, options).await;
        assert_eq!(status, 201, "{name}: {body}");
    }
    // A PATCH is held to the same rule, and changes nothing when refused.
    let token = management_token(&down, None).await;
    let id = connection_id(&down, "https").await;
    let before = down.idp.store.connection(&id).await.unwrap();
    let mut options = before.clone().unwrap().options;
    options.insert("jwks_uri".into(), json!("http://corp.example.test/jwks"));
    let (status, body) =
        call(&down, &token, Method::PATCH, &format!("connections/{id}"), Some(json!({"options": options}))).await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(down.idp.store.connection(&id).await.unwrap(), before);
}

#[tokio::test]
async fn an_iss_parameter_in_the_callback_must_be_the_connections_issuer() {
    let (up, down) = pair().await;
    configure_google(&down, true).await;
    let ub = browser();
    let with_iss = |back: &str, iss: &str| {
        let mut u = url::Url::parse(back).unwrap();
        u.query_pairs_mut().append_pair("iss", iss);
        u.to_string()
    };

    // A response claiming to come from another provider (a mix-up attack) is refused.
    let b = browser();
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    let back = upstream_leg(&up, &ub, &location(&res), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let res = b.get(with_iss(&back, "https://evil.example.test/")).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_error(&location(&res), "access_denied", "iss");
    assert!(users(&down).await.iter().all(|u| u.connection != GOOGLE), "no user from a refused response");

    // An error response is held to the same rule.
    let b = browser();
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    let state = query_param(&location(&res), "state").unwrap();
    let back = format!("{}?state={state}&error=login_required", down.url("login/callback"));
    let res = b.get(with_iss(&back, "https://evil.example.test/")).send().await.unwrap();
    assert_error(&location(&res), "access_denied", "iss");

    // The upstream's own issuer is accepted.
    let b = browser();
    let res = b.get(authorize_url(&down, &[("connection", GOOGLE)])).send().await.unwrap();
    let back = upstream_leg(&up, &ub, &location(&res), &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let res = b.get(with_iss(&back, &up.url(""))).send().await.unwrap();
    tokens_for(&down, &location(&res)).await;
}

#[tokio::test]
async fn an_upstream_key_rotation_is_picked_up_at_once() {
    let (up, down) = pair().await;
    configure_google(&down, true).await;
    let ub = browser();
    tokens_for(&down, &federated_login(&up, &down, &browser(), &ub, GOOGLE).await).await;
    // The upstream signs with a new key from now on; the downstream cached the old set just now.
    let token = management_token(&up, None).await;
    let (status, rotated) = call(&up, &token, Method::POST, "keys/signing/rotate", None).await;
    assert_eq!(status, 200, "{rotated}");
    let second = tokens_for(&down, &federated_login(&up, &down, &browser(), &ub, GOOGLE).await).await;
    assert!(second["id_token"].is_string());
}
