//! What `gatehouse up` puts in front of the identity provider, so that one port behaves like a
//! Mia-Platform project: the API gateway's routing (`/authorize`, `/oauth/token`, `/logout`,
//! `/userinfo`, `/refreshtoken`, `/users…` to auth0-client, the `@error401` redirect to
//! `/web-login?redirect=…`), the login site (`/web-login`, `/web-login/callback`) and a small
//! CMS (who you are and your groups, "no access" without the `admin` group, and a users page
//! that edits groups through auth0-client's `/users` routes, the guide's "assign users to groups
//! using CMS").
//!
//! Two origins share the listener: the CMS origin (`http://localhost:PORT`) and the idp's
//! origin (`http://127.0.0.1:PORT`, its issuer), told apart by the `Host` header, as a real
//! tenant lives on its own domain; cookies stay apart because browsers key them by host.
//! auth0-client's router is mounted in process, and it reaches the idp over real HTTP (its
//! `auth0Url` is the idp's origin).
//!
//! This crate owns the pages, the routing and the generated auth0-client configuration
//! ([`setup`]). It must not link the `idp` crate: the idp is an opaque router here, and
//! auth0-client talks to it over HTTP only. Every page is server-rendered HTML with plain forms;
//! all user data is escaped ([`html`]).

mod cms;
mod gateway;
pub mod html;
mod login_site;
pub mod mailbox;
pub mod setup;

use axum::Router;
use axum::body::Bytes;
use axum::extract::Request;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::sync::Arc;
use tower::ServiceExt;
use url::Url;

/// The group the CMS requires (the guide's step 8 gives it to the first user).
pub const ADMIN_GROUP: &str = "admin";

/// The largest auth0-client answer the pages read (user lists of 100 users fit easily).
const MAX_ANSWER: usize = 4 * 1024 * 1024;

/// The two origins served on one port.
#[derive(Debug, Clone)]
pub struct Origins {
    /// The CMS, its login site and the gateway routes, e.g. `http://localhost:8080`.
    pub cms: Url,
    /// The identity provider (its issuer's origin), e.g. `http://127.0.0.1:8080`.
    pub idp: Url,
}

impl Origins {
    /// `http://localhost:PORT` for the CMS and `http://127.0.0.1:PORT` for the idp.
    pub fn local(port: u16) -> Origins {
        let url = |host: &str| Url::parse(&format!("http://{host}:{port}/")).expect("a valid URL");
        Origins { cms: url("localhost"), idp: url("127.0.0.1") }
    }

    /// `http://localhost:8080`, without a trailing slash (the tenant's `CMS_BASE_URL`).
    pub fn cms_base(&self) -> String {
        self.cms.origin().ascii_serialization()
    }

    /// `http://127.0.0.1:8080`, without a trailing slash (auth0-client's `auth0Url`).
    pub fn idp_base(&self) -> String {
        self.idp.origin().ascii_serialization()
    }
}

/// `host:port` of a URL, lower-cased, with the scheme's default port filled in.
fn authority(url: &Url) -> String {
    format!("{}:{}", url.host_str().unwrap_or("").to_ascii_lowercase(), url.port_or_known_default().unwrap_or(80))
}

/// The authority a request was sent to (`Host`, or the URI's for HTTP/2), normalised like
/// [`authority`]; `None` when it is missing or unparsable.
fn request_authority(req: &Request, default_port: u16) -> Option<String> {
    let raw = match req.headers().get(header::HOST).and_then(|v| v.to_str().ok()) {
        Some(h) => h.to_string(),
        None => req.uri().authority()?.to_string(),
    };
    let url = Url::parse(&format!("http://{}/", raw.trim())).ok()?;
    let port = url.port().unwrap_or(default_port);
    Some(format!("{}:{port}", url.host_str()?.to_ascii_lowercase()))
}

/// Shared by every handler.
pub(crate) struct Site {
    /// auth0-client's router, called in process.
    auth0: Router,
    origins: Origins,
    cms_authority: String,
}

pub(crate) type SiteState = Arc<Site>;

/// An answer of auth0-client, read whole.
pub(crate) struct Answer {
    pub status: StatusCode,
    pub headers: HeaderMap,
    pub body: Bytes,
}

impl Answer {
    pub fn json(&self) -> Option<Value> {
        serde_json::from_slice(&self.body).ok()
    }

    /// The human part of an error answer: Mia's `message`, Auth0's `message` or
    /// `error_description`, else the status.
    pub fn message(&self) -> String {
        let v = self.json().unwrap_or(Value::Null);
        ["message", "error_description", "error"]
            .iter()
            .find_map(|k| v.get(k).and_then(Value::as_str).map(str::to_owned))
            .unwrap_or_else(|| self.status.to_string())
    }
}

/// Who is asking, according to auth0-client's `/userinfo`.
pub(crate) enum Viewer {
    Anonymous,
    Member(Profile),
    Admin(Profile),
    /// auth0-client could not tell (session store or idp down): status and message.
    Unknown(StatusCode, String),
}

/// The parts of the `/userinfo` profile the pages show.
#[derive(Debug, Clone)]
pub(crate) struct Profile {
    pub sub: String,
    pub email: String,
    pub name: String,
    pub groups: Vec<String>,
}

impl Profile {
    fn from_json(v: &Value) -> Profile {
        let s = |k: &str| v.get(k).and_then(Value::as_str).unwrap_or_default().to_string();
        let groups = v
            .get("groups")
            .and_then(Value::as_array)
            .map(|a| a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
            .unwrap_or_default();
        Profile { sub: s("sub"), email: s("email"), name: s("name"), groups }
    }
}

impl Site {
    /// Passes a browser's request to auth0-client the way Mia's gateway does: the public
    /// protocol and host in `X-Forwarded-*`, and none of the headers only the gateway and the
    /// authorization service may set (`client-type` comes from an API key there; `acl_rows`
    /// from the RBAC service).
    async fn to_auth0(&self, mut req: Request) -> Response {
        let h = req.headers_mut();
        for name in ["client-type", "acl_rows", "x-forwarded-host", "x-forwarded-proto", "secret", "client-key"] {
            h.remove(name);
        }
        self.forwarded(h);
        match self.auth0.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        }
    }

    fn forwarded(&self, h: &mut HeaderMap) {
        if let Ok(v) = HeaderValue::from_str(self.origins.cms.scheme()) {
            h.insert("x-forwarded-proto", v);
        }
        if let Ok(v) = HeaderValue::from_str(&self.cms_authority) {
            h.insert("x-forwarded-host", v.clone());
            h.insert(header::HOST, v);
        }
    }

    /// One request to auth0-client on the pages' behalf: `credentials` are the browser's
    /// headers whose `Cookie` and `Authorization` are passed on.
    async fn call(
        &self,
        method: Method,
        path_and_query: &str,
        credentials: Option<&HeaderMap>,
        json: Option<&Value>,
    ) -> Answer {
        let mut builder = Request::builder().method(method).uri(path_and_query);
        if let Some(from) = credentials {
            for name in [header::COOKIE, header::AUTHORIZATION] {
                for v in from.get_all(&name) {
                    builder = builder.header(&name, v);
                }
            }
        }
        let body = match json {
            Some(v) => {
                builder = builder.header(header::CONTENT_TYPE, "application/json");
                axum::body::Body::from(v.to_string())
            }
            None => axum::body::Body::empty(),
        };
        let mut req = match builder.body(body) {
            Ok(r) => r,
            Err(e) => return internal(format!("building a request to auth0-client: {e}")),
        };
        self.forwarded(req.headers_mut());
        let res = match self.auth0.clone().oneshot(req).await {
            Ok(res) => res,
            Err(never) => match never {},
        };
        let (parts, body) = res.into_parts();
        match axum::body::to_bytes(body, MAX_ANSWER).await {
            Ok(body) => Answer { status: parts.status, headers: parts.headers, body },
            Err(e) => internal(format!("reading auth0-client's answer: {e}")),
        }
    }

    /// Asks `/userinfo` who sent `headers` (nothing is asked without a credential).
    async fn viewer(&self, headers: &HeaderMap) -> Viewer {
        if auth0_client::routes::credential(headers).is_none() {
            return Viewer::Anonymous;
        }
        let answer = self.call(Method::GET, "/userinfo", Some(headers), None).await;
        match answer.status {
            StatusCode::OK => match answer.json() {
                Some(v) => {
                    let profile = Profile::from_json(&v);
                    if profile.groups.iter().any(|g| g == ADMIN_GROUP) {
                        Viewer::Admin(profile)
                    } else {
                        Viewer::Member(profile)
                    }
                }
                None => Viewer::Unknown(StatusCode::BAD_GATEWAY, "auth0-client answered /userinfo without JSON".into()),
            },
            StatusCode::UNAUTHORIZED => Viewer::Anonymous,
            status => Viewer::Unknown(status, answer.message()),
        }
    }
}

fn internal(message: String) -> Answer {
    tracing::error!(%message, "demo CMS");
    let body = serde_json::json!({ "message": message }).to_string();
    Answer { status: StatusCode::INTERNAL_SERVER_ERROR, headers: HeaderMap::new(), body: Bytes::from(body) }
}

/// Everything on one listener: requests for the idp's origin go to `idp` (`/` there sends the
/// browser to the CMS, which a newcomer typing the wrong address wants), requests for the CMS
/// origin to the gateway, and any other host name is redirected to the CMS origin so cookies
/// and registered URLs always match.
pub fn router(auth0: Router, idp: Router, origins: Origins) -> Router {
    let cms_authority = authority(&origins.cms);
    let idp_authority = authority(&origins.idp);
    let default_port = origins.cms.port_or_known_default().unwrap_or(80);
    let site = Arc::new(Site { auth0, origins, cms_authority: cms_authority.clone() });
    let cms = gateway::routes(site.clone());
    let cms_base = site.origins.cms_base();
    Router::new().fallback(move |req: Request| {
        let (cms, idp, cms_base) = (cms.clone(), idp.clone(), cms_base.clone());
        let (cms_authority, idp_authority) = (cms_authority.clone(), idp_authority.clone());
        async move {
            let target = request_authority(&req, default_port);
            let routed = if target.as_deref() == Some(idp_authority.as_str()) {
                if req.uri().path() == "/" && req.method() == Method::GET {
                    return redirect(&format!("{cms_base}/"));
                }
                idp.oneshot(req).await
            } else if target.as_deref() == Some(cms_authority.as_str()) {
                cms.oneshot(req).await
            } else {
                let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
                return redirect(&format!("{cms_base}{path}"));
            };
            match routed {
                Ok(res) => res,
                Err(never) => match never {},
            }
        }
    })
}

/// `302 Found` to `location`.
pub(crate) fn redirect(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    }
}

/// A same-site path to send the browser to after a login: auth0-client's rule for its
/// `Location` (one leading `/`, no backslash, no control character), and not back into the
/// login site (which would loop).
pub fn safe_local_path(candidate: &str) -> Option<&str> {
    auth0_client::util::same_site_path(candidate).filter(|p| !p.starts_with("/web-login"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn local_paths_only() {
        assert_eq!(safe_local_path("/"), Some("/"));
        assert_eq!(safe_local_path("/admin/users?x=1"), Some("/admin/users?x=1"));
        for bad in ["", "admin", "//evil.example", "/\\evil.example", "https://evil.example/", "/a\nb", "/web-login"] {
            assert_eq!(safe_local_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn origins_and_authorities() {
        let o = Origins::local(8080);
        assert_eq!(o.cms_base(), "http://localhost:8080");
        assert_eq!(o.idp_base(), "http://127.0.0.1:8080");
        assert_eq!(authority(&o.cms), "localhost:8080");
        let req = Request::builder().uri("/").header("host", "LocalHost:8080").body(axum::body::Body::empty()).unwrap();
        assert_eq!(request_authority(&req, 8080).as_deref(), Some("localhost:8080"));
        let req = Request::builder().uri("/").header("host", "localhost").body(axum::body::Body::empty()).unwrap();
        assert_eq!(request_authority(&req, 80).as_deref(), Some("localhost:80"));
    }
}
