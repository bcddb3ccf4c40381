//! Protocol details an OpenID Connect conformance run and the official SDKs exercise:
//! `POST /authorize`, request objects, and what a replayed authorization code revokes.

use crate::harness::*;
use reqwest::Method;
use serde_json::{Value, json};

/// The parameters of [`authorize_url`], as a form.
fn authorize_form(t: &TestIdp, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    url::Url::parse(&authorize_url(t, extra)).unwrap().query_pairs().into_owned().collect()
}

fn form_body(pairs: &[(String, String)]) -> String {
    url::form_urlencoded::Serializer::new(String::new()).extend_pairs(pairs).finish()
}

async fn post_authorize(b: &reqwest::Client, t: &TestIdp, content_type: &str, body: String) -> reqwest::Response {
    b.post(t.url("authorize")).header("content-type", content_type).body(body).send().await.unwrap()
}

const FORM: &str = "application/x-www-form-urlencoded";

#[tokio::test]
async fn post_authorize_with_a_form_works_as_get_does() {
    let t = start().await;
    let b = browser();
    let res = post_authorize(&b, &t, FORM, form_body(&authorize_form(&t, &[]))).await;
    let res = sign_in(&t, &b, res, &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    let callback = location(&res);
    assert!(callback.starts_with(CALLBACK), "{callback}");
    assert_eq!(query_param(&callback, "state").as_deref(), Some("st-123"));
    let (status, body) = json(exchange_code(&t, &query_param(&callback, "code").unwrap(), VERIFIER).await).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(claims(body["id_token"].as_str().unwrap())["nonce"], "n-456", "the form's nonce");

    // SSO: the same browser posts again and goes straight back with a code.
    let res = post_authorize(&b, &t, &format!("{FORM}; charset=UTF-8"), form_body(&authorize_form(&t, &[]))).await;
    assert_eq!(res.status(), 302);
    assert!(query_param(&location(&res), "code").is_some(), "{}", location(&res));

    // Validated as the query is: errors after validation go back to the client with the state…
    let res = post_authorize(&b, &t, FORM, form_body(&authorize_form(&t, &[("max_age", "-1")]))).await;
    assert_eq!(query_param(&location(&res), "error").as_deref(), Some("invalid_request"));
    assert_eq!(query_param(&location(&res), "state").as_deref(), Some("st-123"));

    // …and everything before is a page, never a redirect: a foreign redirect URI, a repeated
    // parameter, an oversized form, a body that is not a form.
    let mut foreign = authorize_form(&t, &[]);
    foreign.retain(|(k, _)| k != "redirect_uri");
    foreign.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    let mut repeated = authorize_form(&t, &[]);
    repeated.push(("redirect_uri".into(), "https://evil.example/cb".into()));
    let oversized = authorize_form(&t, &[("login_hint", &"a".repeat(20_000))]);
    let as_json: serde_json::Map<String, Value> =
        authorize_form(&t, &[]).into_iter().map(|(k, v)| (k, Value::String(v))).collect();
    let json_body = Value::Object(as_json).to_string();
    let cases = [
        (FORM, form_body(&foreign), 400, "Callback URL mismatch"),
        (FORM, form_body(&repeated), 400, "more than once"),
        (FORM, form_body(&oversized), 413, "too large"),
        ("application/json", json_body, 415, "must be a form"),
        ("text/plain", form_body(&authorize_form(&t, &[])), 415, "must be a form"),
    ];
    for (content_type, body, status, says) in cases {
        let res = post_authorize(&b, &t, content_type, body).await;
        assert_eq!(res.status(), status, "{content_type} {says}");
        assert!(res.headers().get("location").is_none(), "{says}");
        assert!(res.headers()["content-type"].to_str().unwrap().starts_with("text/html"), "{says}: a page");
        let page = res.text().await.unwrap();
        assert!(page.contains(says), "{says}: {page}");
    }
}

#[tokio::test]
async fn request_objects_are_refused_at_the_redirect_uri_with_the_state() {
    let t = start().await;
    let b = browser();
    // An unsigned request object carrying its own state and nonce (OIDC Core 6.1).
    let object = "eyJhbGciOiJub25lIn0.eyJzdGF0ZSI6ImlubmVyIiwibm9uY2UiOiJpbm5lciJ9.";
    let cases = [
        ("request", object, "request_not_supported"),
        ("request_uri", "https://client.example/request.jwt", "request_uri_not_supported"),
    ];
    for (param, value, error) in cases {
        let res = b.get(authorize_url(&t, &[(param, value)])).send().await.unwrap();
        let loc = location(&res);
        assert!(loc.starts_with(CALLBACK), "{param}: {loc}");
        assert_eq!(query_param(&loc, "error").as_deref(), Some(error), "{loc}");
        assert_eq!(query_param(&loc, "state").as_deref(), Some("st-123"), "the outer request's state");
        assert!(query_param(&loc, "code").is_none());

        // Without an outer state there is none to return; POST answers the same.
        let mut form = authorize_form(&t, &[(param, value)]);
        form.retain(|(k, _)| k != "state");
        let res = post_authorize(&b, &t, FORM, form_body(&form)).await;
        let loc = location(&res);
        assert_eq!(query_param(&loc, "error").as_deref(), Some(error), "{loc}");
        assert_eq!(query_param(&loc, "state"), None, "{loc}");

        // The redirect URI is checked first: a foreign one is still a page.
        let mut u = url::Url::parse(&t.url("authorize")).unwrap();
        u.query_pairs_mut()
            .append_pair("client_id", &kw("CMS_CLIENT_ID"))
            .append_pair("response_type", "code")
            .append_pair("redirect_uri", "https://evil.example/cb")
            .append_pair(param, value);
        let res = b.get(u.as_str()).send().await.unwrap();
        assert_eq!(res.status(), 400);
        assert!(res.headers().get("location").is_none());
    }
    let (_, d) = json(reqwest::get(t.url(".well-known/openid-configuration")).await.unwrap()).await;
    assert_eq!(d["request_parameter_supported"], json!(false));
    assert_eq!(d["request_uri_parameter_supported"], json!(false));
}

/// A login through the browser for the Management API's audience (so the one access token is
/// good at `/userinfo` and for `read:current_user`); returns the code.
async fn code_for_management(t: &TestIdp) -> String {
    let audience = t.idp.config.management_audience();
    let url = authorize_url(t, &[("audience", &audience)]).replace(
        "scope=openid+profile+email+offline_access",
        "scope=openid+profile+email+offline_access+read%3Acurrent_user",
    );
    let res = login(t, &browser(), &url, &kw("USER_EMAIL"), &kw("USER_PASSWORD")).await;
    query_param(&location(&res), "code").expect("code")
}

async fn userinfo_status(t: &TestIdp, token: &str) -> u16 {
    reqwest::Client::new().get(t.url("userinfo")).bearer_auth(token).send().await.unwrap().status().as_u16()
}

#[tokio::test]
async fn a_replayed_code_revokes_the_access_token_its_first_use_issued() {
    let t = start().await;
    let code = code_for_management(&t).await;
    let (status, first) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!(status, 200, "{first}");
    let access = first["access_token"].as_str().unwrap();
    assert!(claims(access)["scope"].as_str().unwrap().contains("read:current_user"), "{}", claims(access));
    let me = claims(access)["sub"].as_str().unwrap().to_string();
    let own_user = format!("users/{me}");
    assert_eq!(userinfo_status(&t, access).await, 200);
    assert_eq!(call(&t, access, Method::GET, &own_user, None).await.0, 200);
    // Another login of the same user at the same client, whose code is not replayed.
    let (_, other) = json(exchange_code(&t, &code_for_management(&t).await, VERIFIER).await).await;
    let other = other["access_token"].as_str().unwrap();

    let (status, body) = json(exchange_code(&t, &code, VERIFIER).await).await;
    assert_eq!((status, body["error"].as_str()), (403, Some("invalid_grant")), "{body}");

    // From then on the first exchange's access token is refused at the idp's own endpoints…
    let res = reqwest::Client::new().get(t.url("userinfo")).bearer_auth(access).send().await.unwrap();
    assert_eq!(res.status(), 401);
    let (status, body) = call(&t, access, Method::GET, &own_user, None).await;
    assert_eq!((status, body["statusCode"].as_i64()), (401, Some(401)), "{body}");
    // …and the other login's is not.
    assert_eq!(userinfo_status(&t, other).await, 200);
    assert_eq!(call(&t, other, Method::GET, &own_user, None).await.0, 200);
}
