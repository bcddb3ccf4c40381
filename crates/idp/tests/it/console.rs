//! The admin console over HTTP, as a browser uses it: sign-in through the idp's own
//! `/authorize` with PKCE, the session cookie, the anti-CSRF token on every form, and the
//! Management API behind every page. Who may enter (an administrator, never a tenant user),
//! and what is refused: a forged cookie, a cross-site post, an expired session. The browser
//! test (crates/gatehouse/tests/it/browser_console.rs) follows the guide through the pages.

use crate::harness::*;
use idp::admins::{self, CONSOLE_CLIENT_ID, CONSOLE_CONNECTION, Role};
use reqwest::Method;
use serde_json::{Value, json};
use std::time::Duration;

const ADMIN: &str = "root@console.test";
const ADMIN_PASSWORD: &str = "Console-Passw0rd!";

async fn with_admin(role: Role) -> (TestIdp, String) {
    let t = start().await;
    admins::ensure(&t.idp).await.unwrap();
    let added = admins::add_admin(&t.idp, ADMIN, Some(ADMIN_PASSWORD), role).await.unwrap();
    (t, added.user_id)
}

fn header(res: &reqwest::Response, name: &str) -> String {
    res.headers().get(name).map(|v| v.to_str().unwrap().to_string()).unwrap_or_default()
}

/// `/console/login` → `/authorize` → the login page → its form post, with `connection`,
/// `email` and `password`; returns the answer to the form post.
async fn console_login(
    t: &TestIdp,
    b: &reqwest::Client,
    connection: &str,
    email: &str,
    password: &str,
) -> reqwest::Response {
    let res = b.get(t.url("console/applications")).send().await.unwrap();
    assert_eq!(res.status(), 303, "a page without a session goes to the sign-in");
    assert_eq!(location(&res), "/console/login");
    let res = b.get(t.url("console/login")).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let authorize = location(&res);
    assert!(authorize.starts_with(&t.url("authorize?")), "{authorize}");
    assert_eq!(query_param(&authorize, "client_id").as_deref(), Some(CONSOLE_CLIENT_ID));
    assert_eq!(query_param(&authorize, "code_challenge_method").as_deref(), Some("S256"));
    let res = b.get(&authorize).send().await.unwrap();
    assert_eq!(res.status(), 302, "authorize should redirect to the login page");
    let page_url = t.url(&location(&res));
    let html = b.get(&page_url).send().await.unwrap().text().await.unwrap();
    let form = [
        ("state", hidden(&html, "state").expect("state field")),
        ("csrf", hidden(&html, "csrf").expect("csrf field")),
        ("connection", connection.to_string()),
        ("username", email.to_string()),
        ("password", password.to_string()),
    ];
    b.post(&page_url).form(&form).send().await.unwrap()
}

/// Signs the administrator in; returns the browser holding the session.
async fn signed_in(t: &TestIdp) -> reqwest::Client {
    let b = browser();
    let res = console_login(t, &b, CONSOLE_CONNECTION, ADMIN, ADMIN_PASSWORD).await;
    assert_eq!(res.status(), 302, "{}", res.text().await.unwrap());
    let callback = location(&res);
    assert!(callback.starts_with(&t.url("console/callback?")), "{callback}");
    let res = b.get(&callback).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap_or_default());
    assert_eq!(location(&res), "/console/applications");
    let cookie = res
        .headers()
        .get_all("set-cookie")
        .iter()
        .map(|v| v.to_str().unwrap().to_string())
        .find(|c| c.starts_with("gatehouse_console="))
        .expect("a session cookie");
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.contains(attribute), "{attribute} missing: {cookie}");
    }
    b
}

/// The anti-CSRF token of a console page's forms.
async fn csrf_of(t: &TestIdp, b: &reqwest::Client, page: &str) -> String {
    let res = b.get(t.url(page)).send().await.unwrap();
    assert_eq!(res.status(), 200, "{page}");
    hidden(&res.text().await.unwrap(), "csrf").expect("a csrf field")
}

async fn client_names(t: &TestIdp) -> Vec<String> {
    t.idp.store.clients().await.unwrap().into_iter().map(|c| c.client.name).collect()
}

#[tokio::test]
async fn console_admin_signs_in_and_a_write_is_a_sapi_event_naming_the_admin() {
    let (t, admin_id) = with_admin(Role::Full).await;
    let b = signed_in(&t).await;

    let res = b.get(t.url("console/applications")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let csp = header(&res, "content-security-policy");
    assert!(csp.contains("default-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert_eq!(header(&res, "x-frame-options"), "DENY");
    let html = res.text().await.unwrap();
    assert!(html.contains(">CMS<") && html.contains(ADMIN), "the list shows the tenant's applications");
    assert!(!html.contains("<script>") && !html.contains(" style="), "no inline script or style");
    assert!(!html.contains("Gatehouse Console</a></td>"), "the console's own application is not listed");

    let csrf = csrf_of(&t, &b, "console/applications/new").await;
    let form = [("csrf", csrf.as_str()), ("name", "Console App"), ("app_type", "regular_web")];
    let res = b.post(t.url("console/applications")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let page = res.text().await.unwrap();
    assert!(page.contains("Client Secret") && page.contains("data-reveal"), "the new secret, behind Reveal");
    assert!(client_names(&t).await.contains(&"Console App".to_string()));

    assert!(t.idp.flush_logs(Duration::from_secs(5)).await);
    let token = management_token(&t, Some(&["read:logs"])).await;
    let (status, logs) = call(&t, &token, Method::GET, "logs?q=type:sapi&per_page=100", None).await;
    assert_eq!(status, 200, "{logs}");
    let event = logs
        .as_array()
        .unwrap()
        .iter()
        .find(|e| e["description"] == "Create a client")
        .unwrap_or_else(|| panic!("no sapi event for the new application: {logs}"));
    assert_eq!(event["user_id"], admin_id.as_str(), "{event}");
    assert_eq!(event["user_name"], ADMIN, "{event}");
    assert_eq!(event["client_id"], CONSOLE_CLIENT_ID, "{event}");
}

#[tokio::test]
async fn console_refuses_a_tenant_user_even_on_a_connection_opened_to_it() {
    let (t, admin_id) = with_admin(Role::Full).await;
    // A tenant user cannot use the console's connection...
    let b = browser();
    let res = console_login(&t, &b, CONSOLE_CONNECTION, &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
    assert_ne!(res.status(), 302, "a tenant user signed in with the console's connection");

    // ...and where the tenant's own connection were opened to the console's application, its
    // users sign in to the idp but get no console session: the administrators' table decides.
    let mut dev = t.idp.store.connection_by_name("dev-users").await.unwrap().unwrap();
    dev.enabled_clients.push(CONSOLE_CLIENT_ID.into());
    t.idp.store.put_connection(&dev).await.unwrap();
    let b = browser();
    let res = console_login(&t, &b, "dev-users", &kw("ADMIN_EMAIL"), &kw("ADMIN_PASSWORD")).await;
    assert_eq!(res.status(), 302);
    let res = b.get(location(&res)).send().await.unwrap();
    assert_eq!(res.status(), 403);
    assert!(res.headers().get_all("set-cookie").iter().all(|c| !c.to_str().unwrap().starts_with("gatehouse_console=")));
    assert!(res.text().await.unwrap().contains("not a console administrator"));
    let res = b.get(t.url("console/applications")).send().await.unwrap();
    assert_eq!(res.status(), 303, "still no session");

    // The tenant's Management API sees none of the console's records, whatever its scopes.
    let token = management_token(&t, None).await;
    let encoded = admin_id.replace('|', "%7C");
    for (method, path) in [
        (Method::GET, format!("clients/{CONSOLE_CLIENT_ID}")),
        (Method::PATCH, format!("clients/{CONSOLE_CLIENT_ID}")),
        (Method::POST, format!("clients/{CONSOLE_CLIENT_ID}/rotate-secret")),
        (Method::GET, format!("connections/{}", admins::CONSOLE_CONNECTION_ID)),
        (Method::DELETE, format!("connections/{}", admins::CONSOLE_CONNECTION_ID)),
        (Method::GET, format!("users/{encoded}")),
        (Method::PATCH, format!("users/{encoded}")),
        (Method::DELETE, format!("users/{encoded}")),
    ] {
        let body = (method != Method::GET && method != Method::DELETE).then(|| json!({"name": "x"}));
        let (status, answer) = call(&t, &token, method.clone(), &path, body).await;
        assert_eq!(status, 404, "{method} {path}: {answer}");
    }
    let (_, users) = call(&t, &token, Method::GET, "users?per_page=100", None).await;
    assert!(!users.to_string().contains(ADMIN), "the user list shows the administrator: {users}");
    let (_, users) = call(&t, &token, Method::GET, &format!("users-by-email?email={ADMIN}"), None).await;
    assert_eq!(users, json!([]));
    let (_, clients) = call(&t, &token, Method::GET, "clients?per_page=100", None).await;
    assert!(!clients.to_string().contains(CONSOLE_CLIENT_ID));
    // A new application joins every connection, but not the console's.
    let (status, _) = call(&t, &token, Method::POST, "clients", Some(json!({"name": "Joiner"}))).await;
    assert_eq!(status, 201);
    let console = t.idp.store.connection_by_name(CONSOLE_CONNECTION).await.unwrap().unwrap();
    assert_eq!(console.enabled_clients, vec![CONSOLE_CLIENT_ID.to_string()]);
    // None of this touched the administrator.
    let admin = t.idp.store.console_admin_role(&admin_id).await.unwrap();
    assert_eq!(admin.as_deref(), Some("full"));
}

#[tokio::test]
async fn console_refuses_forged_cookies_and_cross_site_posts() {
    let (t, _) = with_admin(Role::Full).await;
    let b = signed_in(&t).await;
    let csrf = csrf_of(&t, &b, "console/applications/new").await;

    // A cookie that is not one the idp sealed (made up, or one character changed).
    let plain = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    for forged in
        ["gatehouse_console=forged", "gatehouse_console=eyJ0IjoiYSIsImMiOiJiIiwiZSI6OTk5OTk5OTk5OTk5OSwibiI6IngifQ"]
    {
        let res = plain.get(t.url("console/applications")).header("cookie", forged).send().await.unwrap();
        assert_eq!(res.status(), 303, "{forged}");
        assert_eq!(location(&res), "/console/login");
    }

    // A post without the form's token, with a wrong one, or from another origin, writes nothing.
    let before = client_names(&t).await;
    for (token, origin) in [("", None), ("not-the-token", None), (csrf.as_str(), Some("https://evil.example"))] {
        let mut req = b.post(t.url("console/applications"));
        if let Some(origin) = origin {
            req = req.header("origin", origin);
        }
        let form = [("csrf", token), ("name", "Forged App"), ("app_type", "regular_web")];
        let res = req.form(&form).send().await.unwrap();
        assert_eq!(res.status(), 403, "token {token:?}, origin {origin:?}");
    }
    assert_eq!(client_names(&t).await, before, "a refused post wrote something");

    // The same post from the console itself is accepted.
    let form = [("csrf", csrf.as_str()), ("name", "Real App"), ("app_type", "non_interactive")];
    let res = b
        .post(t.url("console/applications"))
        .header("origin", t.base.trim_end_matches('/'))
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 200);
    assert!(client_names(&t).await.contains(&"Real App".to_string()));
}

#[tokio::test]
async fn console_session_ends_with_its_token_and_goes_back_to_sign_in() {
    let (t, _) = with_admin(Role::Full).await;
    // Management API tokens for browser flows live one second here.
    let audience = t.idp.config.management_audience();
    let mut api = t.idp.store.resource_server_by_identifier(&audience).await.unwrap().unwrap();
    api.token_lifetime = 1;
    api.token_lifetime_for_web = 1;
    t.idp.store.put_resource_server(&api).await.unwrap();
    let b = signed_in(&t).await;
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let res = b.get(t.url("console/users")).send().await.unwrap();
        if res.status() == 303 {
            assert_eq!(location(&res), "/console/login");
            // The cookie lives exactly as long as the session, so the browser may have dropped
            // it already (then there is nothing to clear); if it was sent, it is cleared.
            let cleared = header(&res, "set-cookie");
            assert!(
                cleared.is_empty() || (cleared.starts_with("gatehouse_console=;") && cleared.contains("Max-Age=0")),
                "{cleared}"
            );
            break;
        }
        assert_eq!(res.status(), 200);
        assert!(std::time::Instant::now() < deadline, "the session outlived its token");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test]
async fn console_read_only_admin_reads_but_cannot_write() {
    let (t, _) = with_admin(Role::ReadOnly).await;
    let b = signed_in(&t).await;
    let res = b.get(t.url("console/users")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let html = res.text().await.unwrap();
    assert!(html.contains("read-only") && !html.contains("Create User"), "no write controls");
    let csrf = csrf_of(&t, &b, "console/applications").await;
    let form = [("csrf", csrf.as_str()), ("name", "Sneaky"), ("app_type", "regular_web")];
    let res = b.post(t.url("console/applications")).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("Insufficient scope"));
    assert!(!client_names(&t).await.contains(&"Sneaky".to_string()));
}

#[tokio::test]
async fn console_pages_answer_and_metadata_must_be_json() {
    let (t, _) = with_admin(Role::Full).await;
    let b = signed_in(&t).await;
    for page in [
        "console/applications",
        "console/applications/new",
        "console/apis",
        "console/apis/new",
        "console/connections/database",
        "console/connections/database/new",
        "console/connections/social",
        "console/users",
        "console/users?q=admin",
        "console/users/new",
        "console/roles",
        "console/logs",
        "console/logs?q=type:sapi",
        "console/actions/library",
        "console/actions/new",
        "console/actions/flows",
        "console/actions/flows/login",
        "console/settings/advanced",
    ] {
        let res = b.get(t.url(page)).send().await.unwrap();
        assert_eq!(res.status(), 200, "{page}: {}", res.text().await.unwrap());
    }
    let cms = t.idp.store.clients().await.unwrap().into_iter().find(|c| c.client.name == "CMS").unwrap();
    for tab in ["settings", "connections", "apis"] {
        let res = b.get(t.url(&format!("console/applications/{}/{tab}", cms.client.client_id))).send().await.unwrap();
        assert_eq!(res.status(), 200, "{tab}");
    }
    // A bad user search is the API's message on the page, not a failure.
    let res = b.get(t.url("console/users?q=email:(")).send().await.unwrap();
    assert_eq!(res.status(), 200);

    let user = t.idp.store.user_by_login("dev-users", &kw("USER_EMAIL")).await.unwrap().unwrap().user;
    let page = format!("console/users/{}", user.user_id.replace('|', "%7C"));
    let csrf = csrf_of(&t, &b, &page).await;
    let bad = [("csrf", csrf.as_str()), ("app_metadata", "{\"groups\": [\"admin\"],}"), ("user_metadata", "{}")];
    let res = b.post(t.url(&page)).form(&bad).send().await.unwrap();
    assert_eq!(res.status(), 400);
    assert!(res.text().await.unwrap().contains("app_metadata"));
    let good = [("csrf", csrf.as_str()), ("app_metadata", "{\"groups\": [\"admin\"]}"), ("user_metadata", "{}")];
    let res = b.post(t.url(&page)).form(&good).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(location(&res).ends_with("m=saved"));
    let saved = t.idp.store.user(&user.user_id).await.unwrap().unwrap().user;
    assert_eq!(Value::Object(saved.app_metadata), json!({"groups": ["admin"]}));
}

#[tokio::test]
async fn console_unknown_pages_and_objects_are_pages_not_failures() {
    let (t, _) = with_admin(Role::Full).await;
    let b = signed_in(&t).await;
    let res = b.get(t.url("console/no-such-page")).send().await.unwrap();
    assert_eq!(res.status(), 404);
    assert_eq!(header(&res, "x-frame-options"), "DENY");
    assert!(res.text().await.unwrap().contains("There is no such console page."));
    for page in [
        "console/applications/nope/settings",
        "console/apis/nope/settings",
        "console/connections/database/con_nope/settings",
        "console/users/auth0%7Cnope",
        "console/actions/edit/nope",
    ] {
        let res = b.get(t.url(page)).send().await.unwrap();
        assert_eq!(res.status(), 404, "{page}");
        assert!(res.text().await.unwrap().contains("error-message"), "{page}");
    }
    // Hostile input in a search is the API's error on the page.
    let res = b.get(t.url("console/logs?q=%22%3Cscript%3E")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    assert!(!res.text().await.unwrap().contains("<script>"));
}

#[tokio::test]
async fn console_google_switch_and_sign_out() {
    let (t, _) = with_admin(Role::Full).await;
    let b = signed_in(&t).await;
    let google = || async {
        let all = t.idp.store.connections().await.unwrap();
        all.into_iter().find(|c| c.strategy == "google-oauth2").unwrap().enabled_clients
    };
    assert!(google().await.is_empty(), "the guide's tenant has Google off");
    let page = b.get(t.url("console/connections/social")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("role=\"switch\" id=\"google\" name=\"google\" value=\"1\">"), "{page}");
    let csrf = hidden(&page, "csrf").unwrap();
    let res = b
        .post(t.url("console/connections/social"))
        .form(&[("csrf", csrf.as_str()), ("google", "1")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let on = google().await;
    assert!(!on.is_empty() && !on.iter().any(|c| c == CONSOLE_CLIENT_ID), "on for the tenant's applications: {on:?}");
    let page = b.get(t.url("console/connections/social")).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("value=\"1\" checked"), "{page}");
    // Switching Google off: the form is posted without the switch's field.
    let res = b.post(t.url("console/connections/social")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    assert!(google().await.is_empty(), "Google is off for every application");

    // Signing out ends the session and the idp's SSO session, and comes back to the console.
    let res = b.post(t.url("console/logout")).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 303);
    let logout = location(&res);
    assert!(logout.starts_with(&t.url("v2/logout?")), "{logout}");
    let res = b.get(&logout).send().await.unwrap();
    assert_eq!(res.status(), 302);
    assert_eq!(location(&res), t.url("console"));
    let res = b.get(t.url("console/applications")).send().await.unwrap();
    assert_eq!(res.status(), 303, "signed out");
}

#[tokio::test]
async fn console_action_editor_shows_a_failed_build_at_its_line() {
    let (t, _) = with_admin(Role::Full).await;
    let b = signed_in(&t).await;
    let csrf = csrf_of(&t, &b, "console/actions/new").await;
    let res = b
        .post(t.url("console/actions/library"))
        .form(&[("csrf", csrf.as_str()), ("name", "broken")])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let editor = location(&res).split('?').next().unwrap().to_string();
    let code = "exports.onExecutePostLogin = async (event, api) => {\n  const x = ;\n};\n";
    let form = [("csrf", csrf.as_str()), ("code", code), ("op", "deploy")];
    let res = b.post(t.url(&editor)).form(&form).send().await.unwrap();
    assert_eq!(res.status(), 400, "a failed build is not deployed");
    assert!(res.text().await.unwrap().contains("Not deployed: the build failed"));
    let page = b.get(t.url(&editor)).send().await.unwrap().text().await.unwrap();
    assert!(page.contains("Build failed (line 2)"), "{page}");
    assert!(page.contains("data-error-line=\"2\""), "the editor marks the line");
}

#[tokio::test]
async fn console_admin_cannot_be_linked_into_a_tenant_user() {
    let (t, admin_id) = with_admin(Role::Full).await;
    let token = management_token(&t, None).await;
    let person = json!({"connection": "dev-users", "email": "linker@cms.example.test", "password": "Str0ng-Passw0rd!"});
    let (status, user) = call(&t, &token, Method::POST, "users", Some(person)).await;
    assert_eq!(status, 201, "{user}");
    let path = format!("users/{}/identities", user["user_id"].as_str().unwrap());
    let (provider, id) = admin_id.split_once('|').unwrap();
    for body in [json!({"provider": provider, "user_id": id}), json!({"provider": provider, "user_id": admin_id})] {
        let (status, answer) = call(&t, &token, Method::POST, &path, Some(body)).await;
        assert_eq!(status, 400, "an administrator is not the tenant's to link: {answer}");
    }
    assert!(t.idp.store.user(&admin_id).await.unwrap().is_some(), "the administrator is still there");
    signed_in(&t).await;
}

#[tokio::test]
async fn console_blocks_and_unblocks_a_user_and_sends_the_verification_mail() {
    let (t, _) = with_admin(Role::Full).await;
    let b = signed_in(&t).await;
    let token = management_token(&t, None).await;
    let person =
        json!({"connection": "dev-users", "email": "blockme@cms.example.test", "password": "Str0ng-Passw0rd!"});
    let (status, user) = call(&t, &token, Method::POST, "users", Some(person)).await;
    assert_eq!(status, 201, "{user}");
    let id = user["user_id"].as_str().unwrap().to_string();
    let page = format!("console/users/{}", id.replace('|', "%7C"));
    let blocked = |t: &TestIdp, id: String| {
        let store = t.idp.store.clone();
        async move { store.user(&id).await.unwrap().unwrap().user.blocked }
    };

    for (value, shown, expected) in [("true", "User blocked.", true), ("false", "User unblocked.", false)] {
        let csrf = csrf_of(&t, &b, &page).await;
        let res = b
            .post(t.url(&format!("{page}/block")))
            .form(&[("csrf", csrf.as_str()), ("blocked", value)])
            .send()
            .await
            .unwrap();
        assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
        let html =
            b.get(t.url(&format!("{page}?m={}", location(&res).rsplit("m=").next().unwrap()))).send().await.unwrap();
        let html = html.text().await.unwrap();
        assert!(html.contains(shown), "{html}");
        assert!(html.contains(if expected { ">Unblock<" } else { ">Block<" }), "the button turns");
        assert_eq!(blocked(&t, id.clone()).await, expected);
    }
    let res = b.post(t.url(&format!("{page}/block"))).form(&[("blocked", "true")]).send().await.unwrap();
    assert_eq!(res.status(), 403, "no anti-CSRF token, no block");
    assert!(!blocked(&t, id.clone()).await);

    let csrf = csrf_of(&t, &b, &page).await;
    let res =
        b.post(t.url(&format!("{page}/verification-email"))).form(&[("csrf", csrf.as_str())]).send().await.unwrap();
    assert_eq!(res.status(), 303, "{}", res.text().await.unwrap());
    t.flush_mail().await;
    let outbox = t.data.join("outbox");
    let mails: Vec<String> =
        std::fs::read_dir(&outbox).unwrap().map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap()).collect();
    assert!(mails.iter().any(|m| m.contains("blockme@cms.example.test")), "a verification mail to the user: {mails:?}");
}

#[tokio::test]
async fn console_sign_ins_are_no_tenant_grants() {
    let (t, admin_id) = with_admin(Role::Full).await;
    signed_in(&t).await;
    let token = management_token(&t, None).await;
    let (status, grants) = call(&t, &token, Method::GET, "grants?per_page=100", None).await;
    assert_eq!(status, 200, "{grants}");
    let listed = grants.as_array().unwrap();
    assert!(listed.iter().all(|g| g["user_id"] != admin_id.as_str()), "an administrator's grant is listed: {grants}");
    let (status, mine) =
        call(&t, &token, Method::GET, &format!("grants?user_id={}", admin_id.replace('|', "%7C")), None).await;
    assert_eq!((status, mine.as_array().map(Vec::len)), (200, Some(0)), "{mine}");
}
