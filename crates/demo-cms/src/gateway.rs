//! The CMS origin's routes, laid out like Mia's API gateway: auth0-client's authentication
//! routes pass through; its user-management routes pass through only for a session in the
//! `admin` group (in a Mia project the authorization service guards them with `groups.admin`;
//! auth0-client itself must never be exposed unguarded); the login site and the CMS pages are
//! served here.
//!
//! Two of those routes act on the browser's behalf in a way another site must not be able to
//! trigger, so browsers may reach them from the CMS origin only ([`foreign_browser_request`]):
//!
//! - `/oauth/token` answers a website client with the `sid` cookie for any `state` auth0-client
//!   knows. auth0-client cannot tell whose state it is; the login site can (its
//!   `web_login_state_*` cookie) and calls the route itself, server to server. Mia's gateway
//!   still routes it for API clients, so it stays; but a browser sent here by another site (a
//!   link with the attacker's `code` and `state`, or a form posting `grant_type=password` with
//!   the attacker's password) would be signed in as the attacker: login CSRF. No page navigates
//!   to it either, so a navigation is refused even from the CMS origin.
//! - `/users…` and `/change-password` act with the `sid` cookie. Every `http://localhost:*`
//!   origin is *same-site* with the CMS, so the `SameSite=Lax` cookie goes along, and a
//!   `text/plain` body holding JSON needs no CORS preflight: any other app on this machine
//!   could create users or change groups as the signed-in admin. Reads stay open (the same-origin
//!   policy keeps their answers from other origins); writes are refused.
//!
//! Clients that are not browsers send neither `Sec-Fetch-*` nor `Origin` and are served as
//! before.

use crate::{SiteState, Viewer, cms, html, login_site};
use auth0_client::error::mia_error;
use axum::Router;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode, header};
use axum::response::Response;
use axum::routing::{any, get, post};

pub(crate) fn routes(site: SiteState) -> Router {
    Router::new()
        .route("/authorize", get(forward))
        .route("/oauth/token", get(token).post(token))
        .route("/refreshtoken", post(forward))
        .route("/logout", get(forward))
        .route("/userinfo", get(forward))
        .route("/users/me", get(forward))
        .route("/users", any(forward_admin))
        .route("/users/{*rest}", any(forward_admin))
        .route("/change-password", post(forward_admin))
        .route("/web-login", get(login_site::start))
        .route("/web-login/callback", get(login_site::callback))
        .route("/", get(cms::home))
        .route("/admin/users", get(cms::users))
        .route("/admin/users/groups", post(cms::save_groups))
        .route("/assets/cms.css", get(html::stylesheet))
        .fallback(html::not_found)
        .with_state(site)
}

async fn forward(State(site): State<SiteState>, req: Request) -> Response {
    site.to_auth0(req).await
}

/// `/oauth/token`: to auth0-client, unless a browser was sent or made to post here from
/// anywhere but the CMS origin, or navigates here at all (see the module's comment).
async fn token(State(site): State<SiteState>, req: Request) -> Response {
    if let Some(why) = foreign_browser_request(req.headers(), &site.origins.cms_base()) {
        return mia_error(StatusCode::FORBIDDEN, &why);
    }
    if req.headers().get("sec-fetch-mode").is_some_and(|m| m.as_bytes().eq_ignore_ascii_case(b"navigate")) {
        return mia_error(
            StatusCode::FORBIDDEN,
            "/oauth/token is not a page: the login site (/web-login) exchanges the code itself",
        );
    }
    site.to_auth0(req).await
}

/// `/users…` and `/change-password`: admins only, answered in Mia's error shape otherwise (these
/// are API routes); writes only from the CMS origin or from clients that are not browsers.
async fn forward_admin(State(site): State<SiteState>, req: Request) -> Response {
    if !matches!(*req.method(), Method::GET | Method::HEAD)
        && let Some(why) = foreign_browser_request(req.headers(), &site.origins.cms_base())
    {
        return mia_error(StatusCode::FORBIDDEN, &why);
    }
    match site.viewer(req.headers()).await {
        Viewer::Admin(_) => site.to_auth0(req).await,
        Viewer::Anonymous => mia_error(StatusCode::UNAUTHORIZED, "sign in first: no session"),
        Viewer::Member(_) => mia_error(StatusCode::FORBIDDEN, "user management needs the admin group"),
        Viewer::Unknown(status, message) => mia_error(status, &message),
    }
}

/// Why a request is refused as a browser's request from another origin than `cms_origin`
/// (`http://localhost:PORT`), or `None`. A browser says where a request comes from with
/// `Sec-Fetch-Site` (all current browsers, on every request; it is a forbidden header name, so
/// pages cannot set it): only `same-origin` passes, not `same-site` (other localhost ports),
/// `cross-site` or `none` (typed in the address bar). Older browsers send no `Sec-Fetch-*`
/// but do send `Origin` with a POST (`null` for opaque origins), which must then be the CMS
/// origin. Requests with neither header come from clients that are not browsers, to which the
/// browser's cookies do not leak, and pass.
fn foreign_browser_request(headers: &HeaderMap, cms_origin: &str) -> Option<String> {
    if let Some(site) = headers.get("sec-fetch-site") {
        return (!site.as_bytes().eq_ignore_ascii_case(b"same-origin")).then(|| {
            format!(
                "refused: a browser request that is not from {cms_origin} (Sec-Fetch-Site: {})",
                site.to_str().unwrap_or("?")
            )
        });
    }
    let origin = headers.get(header::ORIGIN)?;
    (!origin.as_bytes().eq_ignore_ascii_case(cms_origin.as_bytes()))
        .then(|| format!("refused: a browser request from another origin than {cms_origin}"))
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::Origins;
    use axum::Json;
    use axum::body::Body;
    use axum::http::HeaderValue;
    use serde_json::{Value, json};
    use tower::ServiceExt;

    /// auth0-client as far as the gateway sees it: `/oauth/token` always signs in (the real one
    /// does so for any state it knows, whoever sends it), `/userinfo` says "an admin".
    fn auth0_stub() -> Router {
        let sign_in = || async { ([(header::SET_COOKIE, "sid=fresh; Path=/; HttpOnly; SameSite=Lax")], "") };
        Router::new()
            .route("/oauth/token", get(sign_in).post(sign_in))
            .route("/userinfo", get(|| async { Json(json!({ "sub": "auth0|a", "groups": ["admin"] })) }))
            .route("/users", get(|| async { Json(json!([])) }).post(|| async { StatusCode::CREATED }))
            .route("/users/{id}", any(|| async { StatusCode::OK }))
            .route("/change-password", post(|| async { StatusCode::OK }))
    }

    /// One request to `up`'s router for `http://localhost:8080`, with the signed-in admin's
    /// cookie and `headers`: the status, whether a `sid` was set, and the JSON body if any.
    pub(crate) async fn send(method: Method, path: &str, headers: &[(&str, &str)]) -> (StatusCode, bool, String) {
        let app = crate::router(auth0_stub(), Router::new(), Origins::local(8080));
        let mut req = Request::builder().method(method).uri(path).body(Body::empty()).unwrap();
        let h = req.headers_mut();
        h.insert(header::HOST, HeaderValue::from_static("localhost:8080"));
        h.insert(header::COOKIE, HeaderValue::from_static("sid=admins"));
        for (name, value) in headers {
            h.append(
                axum::http::HeaderName::from_bytes(name.as_bytes()).unwrap(),
                HeaderValue::from_str(value).unwrap(),
            );
        }
        let res = app.oneshot(req).await.unwrap();
        let status = res.status();
        let sid = res.headers().get_all(header::SET_COOKIE).iter().any(|c| c.as_bytes().starts_with(b"sid="));
        let body = axum::body::to_bytes(res.into_body(), 1 << 20).await.unwrap();
        (status, sid, String::from_utf8_lossy(&body).into_owned())
    }

    fn assert_mia_403(what: &str, (status, sid, body): (StatusCode, bool, String)) {
        assert_eq!(status, StatusCode::FORBIDDEN, "{what}: {body}");
        assert!(!sid, "{what}: no session cookie");
        let v: Value = serde_json::from_str(&body).unwrap_or_else(|e| panic!("{what}: {e}: {body}"));
        assert_eq!(v["statusCode"], 403, "{what}: {v}");
        assert_eq!(v["error"], "Forbidden", "{what}: {v}");
        assert!(v["message"].as_str().is_some_and(|m| m.starts_with("refused") || m.contains("not a page")), "{v}");
    }

    /// Browsers sent by another site, or by the address bar, or posting from an older
    /// browser's foreign page.
    const FOREIGN: &[&[(&str, &str)]] = &[
        &[("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "navigate")],
        &[("sec-fetch-site", "cross-site"), ("sec-fetch-mode", "no-cors")],
        &[("sec-fetch-site", "same-site"), ("sec-fetch-mode", "cors"), ("origin", "http://localhost:3000")],
        &[("sec-fetch-site", "none"), ("sec-fetch-mode", "navigate")],
        // Sec-Fetch-Site decides when present, whatever Origin says.
        &[("sec-fetch-site", "cross-site"), ("origin", "http://localhost:8080")],
        &[("origin", "http://localhost:3000")],
        &[("origin", "http://127.0.0.1:8080")],
        &[("origin", "null")],
    ];

    #[tokio::test]
    async fn token_endpoint_refuses_browsers_from_elsewhere() {
        let path = "/oauth/token?code=attackers&state=attackers";
        for headers in FOREIGN {
            for method in [Method::GET, Method::POST] {
                assert_mia_403(&format!("{method} {headers:?}"), send(method, path, headers).await);
            }
        }
        // No page navigates there, not even from the CMS origin.
        let same_origin_navigation = [("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "navigate")];
        assert_mia_403("same-origin navigation", send(Method::GET, path, &same_origin_navigation).await);
    }

    #[tokio::test]
    async fn token_endpoint_serves_api_clients_and_the_cms_origin() {
        let path = "/oauth/token?code=c&state=s";
        let allowed: &[&[(&str, &str)]] = &[
            &[],
            &[("sec-fetch-site", "same-origin"), ("sec-fetch-mode", "cors"), ("origin", "http://localhost:8080")],
            &[("origin", "http://localhost:8080")],
        ];
        for headers in allowed {
            for method in [Method::GET, Method::POST] {
                let (status, sid, body) = send(method.clone(), path, headers).await;
                assert_eq!(status, StatusCode::OK, "{method} {headers:?}: {body}");
                assert!(sid, "{method} {headers:?}");
            }
        }
    }

    #[tokio::test]
    async fn user_management_writes_only_from_the_cms_origin() {
        let writes = [
            (Method::POST, "/users"),
            (Method::PATCH, "/users/auth0%7C1"),
            (Method::DELETE, "/users/auth0%7C1"),
            (Method::POST, "/users/import"),
            (Method::POST, "/change-password"),
        ];
        for (method, path) in &writes {
            for headers in FOREIGN {
                assert_mia_403(&format!("{method} {path} {headers:?}"), send(method.clone(), path, headers).await);
            }
            for headers in [&[][..], &[("sec-fetch-site", "same-origin"), ("origin", "http://localhost:8080")]] {
                let (status, _, body) = send(method.clone(), path, headers).await;
                assert!(status.is_success(), "{method} {path} {headers:?}: {status} {body}");
            }
        }
        // Reads stay open: another origin cannot read the answer anyway.
        let (status, _, body) = send(Method::GET, "/users", &[("sec-fetch-site", "cross-site")]).await;
        assert_eq!(status, StatusCode::OK, "{body}");
    }

    #[test]
    fn foreign_requests() {
        let cms = "http://localhost:8080";
        let headers = |pairs: &[(&'static str, &'static str)]| {
            let mut h = HeaderMap::new();
            for (k, v) in pairs {
                h.insert(*k, HeaderValue::from_static(v));
            }
            h
        };
        assert!(foreign_browser_request(&headers(&[]), cms).is_none());
        assert!(foreign_browser_request(&headers(&[("sec-fetch-site", "same-origin")]), cms).is_none());
        assert!(foreign_browser_request(&headers(&[("origin", "http://LOCALHOST:8080")]), cms).is_none());
        assert!(foreign_browser_request(&headers(&[("origin", "http://localhost:80800")]), cms).is_some());
        assert!(foreign_browser_request(&headers(&[("sec-fetch-site", "same-site")]), cms).is_some());
    }
}
