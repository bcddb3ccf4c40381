//! A small typed client for Auth0's Management API v2, the way auth0-deploy-cli uses it: a
//! client-credentials token for `https://{domain}/api/v2/`, lists read page by page, Auth0's
//! 429 (the token request's too) answered by waiting until `x-ratelimit-reset`. It works
//! against any Management API — a real Auth0 tenant or Gatehouse's idp — because it speaks
//! HTTP only.
//!
//! Nothing secret is ever part of an error or a log line: requests are named by method and
//! URL (no body), and the access token stays inside [`ManagementClient`] (its `Debug` hides it).

use std::fmt;
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::{Value, json};

use crate::error::{Error, Result};

/// How many times a request answered 429 is tried again before giving up.
const MAX_RATE_LIMIT_RETRIES: u32 = 8;
/// The longest single wait for a rate-limit window (Auth0's windows are seconds long).
const MAX_RATE_LIMIT_WAIT: Duration = Duration::from_secs(30);
/// Auth0's maximum page size.
const PAGE_SIZE: usize = 100;

/// Where a tenant is and how to authenticate to its Management API.
#[derive(Clone)]
pub struct Credentials {
    /// `tenant.eu.auth0.com`, `localhost:3000`, or a URL (`https://…`, `http://…` for an idp
    /// without TLS); only its scheme, host and port count.
    pub domain: String,
    /// A Machine-to-Machine application granted the Management API.
    pub client_id: String,
    pub client_secret: String,
    /// Extra PEM certificates to trust (a local CA such as `gatehouse idp --tls`'s `ca.pem`),
    /// besides the system roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl fmt::Debug for Credentials {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Credentials")
            .field("domain", &self.domain)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("ca_pem", &self.ca_pem.as_ref().map(Vec::len))
            .finish()
    }
}

/// An authenticated Management API client.
pub struct ManagementClient {
    http: reqwest::Client,
    /// `https://host[:port]` without a trailing slash (`http://` only when asked for).
    base: String,
    /// `host[:port]`: the tenant's domain, as `##AUTH0_DOMAIN##` means it.
    domain: String,
    /// The application this client authenticates as: exports leave it out and imports never
    /// change it, as deploy-cli does with its own application.
    self_client_id: String,
    token: String,
}

impl fmt::Debug for ManagementClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManagementClient")
            .field("base", &self.base)
            .field("self_client_id", &self.self_client_id)
            .finish_non_exhaustive()
    }
}

/// `(base URL, host[:port])` of a `--domain` value.
pub fn normalize_domain(domain: &str) -> Result<(String, String)> {
    let raw = domain.trim().trim_end_matches('/');
    let with_scheme = if raw.contains("://") { raw.to_string() } else { format!("https://{raw}") };
    let bad = |why: &str| Error::Remote {
        request: format!("domain {domain:?}"),
        message: format!("{why}; give the tenant's domain, e.g. tenant.eu.auth0.com or localhost:3000"),
    };
    let url = url::Url::parse(&with_scheme).map_err(|e| bad(&e.to_string()))?;
    if !matches!(url.scheme(), "https" | "http") {
        return Err(bad("only https:// (or http:// for a local idp) can be used"));
    }
    let host = url.host_str().filter(|h| !h.is_empty()).ok_or_else(|| bad("no host"))?;
    if url.path() != "/" && !url.path().is_empty() {
        return Err(bad("a domain has no path"));
    }
    let host_port = match url.port() {
        Some(p) => format!("{host}:{p}"),
        None => host.to_string(),
    };
    Ok((format!("{}://{host_port}", url.scheme()), host_port))
}

impl ManagementClient {
    /// Gets a Management API token with the client-credentials grant.
    pub async fn connect(credentials: &Credentials) -> Result<Self> {
        let (base, domain) = normalize_domain(&credentials.domain)?;
        let mut builder = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(10))
            .timeout(Duration::from_secs(60))
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse-tenant/", env!("CARGO_PKG_VERSION")));
        if let Some(pem) = &credentials.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem).map_err(|e| Error::Remote {
                request: "CA file".into(),
                message: format!("not a PEM certificate bundle: {e}"),
            })?;
            builder = builder.tls_certs_merge(certs);
        }
        let http = builder
            .build()
            .map_err(|e| Error::Remote { request: "HTTP client".into(), message: describe_transport(&e) })?;
        let audience = format!("https://{domain}/api/v2/");
        let url = format!("{base}/oauth/token");
        let request = format!("POST {url}");
        let body = json!({
            "grant_type": "client_credentials",
            "client_id": credentials.client_id,
            "client_secret": credentials.client_secret,
            "audience": audience,
        });
        let res = send(|| http.post(&url).json(&body), &request).await?;
        let status = res.status();
        let text = res.text().await.unwrap_or_default();
        if !status.is_success() {
            let hint = match status {
                StatusCode::UNAUTHORIZED => " (check --client-id and --client-secret)",
                StatusCode::FORBIDDEN => " (grant the application the Management API, with the scopes it needs)",
                _ => "",
            };
            return Err(Error::Remote { request, message: format!("{}{hint}", describe_answer(status, &text)) });
        }
        let token = serde_json::from_str::<Value>(&text)
            .ok()
            .and_then(|v| v.get("access_token").and_then(Value::as_str).map(str::to_owned))
            .ok_or_else(|| Error::Remote { request, message: "the answer holds no access_token".into() })?;
        Ok(Self { http, base, domain, self_client_id: credentials.client_id.clone(), token })
    }

    /// `host[:port]` of the tenant.
    pub fn domain(&self) -> &str {
        &self.domain
    }

    /// The Management API's audience, `https://{domain}/api/v2/`.
    pub fn management_audience(&self) -> String {
        format!("https://{}/api/v2/", self.domain)
    }

    /// The client id this client authenticates as.
    pub fn self_client_id(&self) -> &str {
        &self.self_client_id
    }

    /// One call to `/api/v2{path}`; `path` includes any query string. A 204 answers `null`.
    pub async fn call(&self, method: Method, path: &str, body: Option<&Value>) -> Result<Value> {
        let url = format!("{}/api/v2{path}", self.base);
        let request = format!("{method} {}", url.split('?').next().unwrap_or(&url));
        let res = send(
            || {
                let req = self.http.request(method.clone(), &url).bearer_auth(&self.token);
                match body {
                    Some(b) => req.json(b),
                    None => req,
                }
            },
            &request,
        )
        .await?;
        let status = res.status();
        let text = res
            .text()
            .await
            .map_err(|e| Error::Remote { request: request.clone(), message: describe_transport(&e) })?;
        if !status.is_success() {
            let hint = match status {
                StatusCode::UNAUTHORIZED => " (the token was refused)",
                StatusCode::FORBIDDEN => " (grant the missing scope to the application)",
                _ => "",
            };
            return Err(Error::Remote { request, message: format!("{}{hint}", describe_answer(status, &text)) });
        }
        if text.trim().is_empty() {
            return Ok(Value::Null);
        }
        serde_json::from_str(&text).map_err(|e| Error::Remote {
            request,
            message: format!("{} with a body that is not JSON: {e}", status.as_u16()),
        })
    }

    pub async fn get(&self, path: &str) -> Result<Value> {
        self.call(Method::GET, path, None).await
    }

    /// Every item of a list endpoint, page by page (`page`, `per_page`, `include_totals`).
    /// `collection` is the key holding the items (`clients`, `actions`, …).
    pub async fn list(&self, path: &str, collection: &str) -> Result<Vec<Value>> {
        let mut out: Vec<Value> = Vec::new();
        let sep = if path.contains('?') { '&' } else { '?' };
        for page in 0.. {
            let answer = self.get(&format!("{path}{sep}page={page}&per_page={PAGE_SIZE}&include_totals=true")).await?;
            let (items, total) = match answer {
                Value::Array(items) => (items, None),
                Value::Object(mut m) => {
                    let total = m.get("total").and_then(Value::as_u64).map(|t| t as usize);
                    match m.remove(collection) {
                        Some(Value::Array(items)) => (items, total),
                        _ => {
                            return Err(Error::Remote {
                                request: format!("GET {}/api/v2{path}", self.base),
                                message: format!("the answer has no `{collection}` list"),
                            });
                        }
                    }
                }
                _ => {
                    return Err(Error::Remote {
                        request: format!("GET {}/api/v2{path}", self.base),
                        message: "the answer is not a list".into(),
                    });
                }
            };
            let n = items.len();
            out.extend(items);
            if last_page(n, total, out.len()) {
                break;
            }
        }
        Ok(out)
    }
}

/// Sends the request `make` builds, again after each 429 (at most [`MAX_RATE_LIMIT_RETRIES`]
/// times, waiting [`rate_limit_wait`] in between); `request` names it in errors.
async fn send(make: impl Fn() -> reqwest::RequestBuilder, request: &str) -> Result<reqwest::Response> {
    let mut attempt = 0;
    loop {
        let res = make()
            .send()
            .await
            .map_err(|e| Error::Remote { request: request.to_string(), message: describe_transport(&e) })?;
        if res.status() == StatusCode::TOO_MANY_REQUESTS && attempt < MAX_RATE_LIMIT_RETRIES {
            attempt += 1;
            tokio::time::sleep(rate_limit_wait(res.headers())).await;
            continue;
        }
        return Ok(res);
    }
}

/// Whether a page of `n` items ends a list, `have` items read so far. With a `total`, only
/// reaching it (or an empty page) ends the list: an endpoint may cap `per_page` below
/// [`PAGE_SIZE`]. Without one, a short page is the last.
fn last_page(n: usize, total: Option<usize>, have: usize) -> bool {
    n == 0 || total.map_or(n < PAGE_SIZE, |t| have >= t)
}

/// How long to wait after a 429: until `x-ratelimit-reset` (epoch seconds), else
/// `Retry-After` seconds, else one second; at least 100 ms and at most [`MAX_RATE_LIMIT_WAIT`].
fn rate_limit_wait(headers: &reqwest::header::HeaderMap) -> Duration {
    let number =
        |name: &str| headers.get(name).and_then(|v| v.to_str().ok()).and_then(|v| v.trim().parse::<u64>().ok());
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    let wait = match (number("x-ratelimit-reset"), number("retry-after")) {
        (Some(reset), _) => Duration::from_secs(reset).saturating_sub(now),
        (None, Some(secs)) => Duration::from_secs(secs),
        (None, None) => Duration::from_secs(1),
    };
    wait.clamp(Duration::from_millis(100), MAX_RATE_LIMIT_WAIT)
}

/// `403 Forbidden: Insufficient scope, expected any of: read:clients (insufficient_scope)`
/// from Auth0's Management API error (`{statusCode, error, message, errorCode}`) or its
/// Authentication API error (`{error, error_description}`); else the status and a short body.
pub fn describe_answer(status: StatusCode, body: &str) -> String {
    let reason = status.canonical_reason().unwrap_or("");
    let head = format!("{} {reason}", status.as_u16()).trim().to_string();
    let Ok(Value::Object(m)) = serde_json::from_str::<Value>(body) else {
        let short: String = body.chars().take(200).collect();
        return if short.trim().is_empty() { head } else { format!("{head}: {}", short.trim()) };
    };
    let s = |k: &str| m.get(k).and_then(Value::as_str).filter(|v| !v.is_empty());
    let text = match (s("message"), s("error_description"), s("error")) {
        (Some(msg), _, _) => msg.to_string(),
        (None, Some(desc), Some(err)) => format!("{err}: {desc}"),
        (None, Some(desc), None) => desc.to_string(),
        (None, None, Some(err)) => err.to_string(),
        (None, None, None) => String::new(),
    };
    let code = s("errorCode").map(|c| format!(" ({c})")).unwrap_or_default();
    if text.is_empty() { head } else { format!("{head}: {text}{code}") }
}

/// A transport failure in a few words, with its root cause (never a URL's query or a body).
fn describe_transport(e: &reqwest::Error) -> String {
    let kind = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "cannot connect"
    } else if e.is_body() || e.is_decode() {
        "unreadable answer"
    } else {
        "request failed"
    };
    let mut root = String::new();
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        root = s.to_string();
        source = s.source();
    }
    if root.is_empty() { kind.to_string() } else { format!("{kind}: {root}") }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn domains_are_normalized() {
        assert_eq!(
            normalize_domain("tenant.eu.auth0.com").unwrap(),
            ("https://tenant.eu.auth0.com".into(), "tenant.eu.auth0.com".into())
        );
        assert_eq!(
            normalize_domain("https://localhost:3000/").unwrap(),
            ("https://localhost:3000".into(), "localhost:3000".into())
        );
        assert_eq!(normalize_domain("http://127.0.0.1:9").unwrap().0, "http://127.0.0.1:9");
        assert!(normalize_domain("ftp://x").is_err());
        assert!(normalize_domain("https://x/api/v2").is_err());
        assert!(normalize_domain("").is_err());
    }

    #[test]
    fn auth0_error_bodies_are_read() {
        let mgmt = r#"{"statusCode":403,"error":"Forbidden","message":"Insufficient scope, expected any of: read:clients","errorCode":"insufficient_scope"}"#;
        assert_eq!(
            describe_answer(StatusCode::FORBIDDEN, mgmt),
            "403 Forbidden: Insufficient scope, expected any of: read:clients (insufficient_scope)"
        );
        let auth = r#"{"error":"access_denied","error_description":"Unauthorized"}"#;
        assert_eq!(describe_answer(StatusCode::UNAUTHORIZED, auth), "401 Unauthorized: access_denied: Unauthorized");
        assert_eq!(describe_answer(StatusCode::BAD_GATEWAY, "<html>"), "502 Bad Gateway: <html>");
    }

    #[test]
    fn lists_end_at_their_total_or_else_at_a_short_page() {
        // An endpoint capping per_page at 50: the total says more remain.
        assert!(!last_page(50, Some(120), 50));
        assert!(!last_page(50, Some(120), 100));
        assert!(last_page(20, Some(120), 120));
        assert!(last_page(100, Some(100), 100));
        assert!(last_page(0, Some(120), 100), "an empty page ends a list whatever its total says");
        // No total (a bare array): a short page is the last.
        assert!(!last_page(100, None, 200));
        assert!(last_page(99, None, 199));
        assert!(last_page(0, None, 0));
    }

    type Answer = (u16, Vec<(&'static str, String)>, String);

    /// A plain-HTTP server answering request number `i` (from 0) for `path` with
    /// `answer(i, method, path)`, one request per connection. Returns its base URL and the
    /// requests it saw (`METHOD path?query`).
    async fn serve(
        answer: impl Fn(usize, &str, &str) -> Answer + Send + Sync + 'static,
    ) -> (String, std::sync::Arc<std::sync::Mutex<Vec<String>>>) {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            loop {
                let Ok((mut stream, _)) = listener.accept().await else { return };
                let mut buf = Vec::new();
                let mut chunk = [0u8; 4096];
                let head_end = loop {
                    if let Some(i) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        break i + 4;
                    }
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                };
                let head = String::from_utf8_lossy(&buf[..head_end]).into_owned();
                let length: usize = head
                    .lines()
                    .find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length:").map(|v| v.trim().to_string()))
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(0);
                while buf.len() < head_end + length {
                    match stream.read(&mut chunk).await {
                        Ok(0) | Err(_) => return,
                        Ok(n) => buf.extend_from_slice(&chunk[..n]),
                    }
                }
                let mut words = head.split_whitespace();
                let (method, path) = (words.next().unwrap_or("").to_string(), words.next().unwrap_or("").to_string());
                let i = {
                    let mut log = log.lock().unwrap();
                    log.push(format!("{method} {path}"));
                    log.len() - 1
                };
                let (status, headers, body) = answer(i, &method, &path);
                let mut out = format!(
                    "HTTP/1.1 {status} X\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n",
                    body.len()
                );
                for (k, v) in headers {
                    out.push_str(&format!("{k}: {v}\r\n"));
                }
                out.push_str("\r\n");
                out.push_str(&body);
                let _ = stream.write_all(out.as_bytes()).await;
                let _ = stream.shutdown().await;
            }
        });
        (base, seen)
    }

    fn credentials(base: &str) -> Credentials {
        Credentials { domain: base.into(), client_id: "me".into(), client_secret: "secret".into(), ca_pem: None }
    }

    fn token() -> Answer {
        (200, vec![], r#"{"access_token":"t","token_type":"Bearer"}"#.into())
    }

    #[tokio::test]
    async fn the_token_request_waits_out_a_rate_limit() {
        let (base, seen) = serve(|i, _, _| match i {
            0 => (429, vec![("retry-after", "0".into())], r#"{"error":"too_many_requests"}"#.into()),
            _ => token(),
        })
        .await;
        let api = ManagementClient::connect(&credentials(&base)).await.expect("connects after the 429");
        assert_eq!(api.token, "t");
        assert_eq!(*seen.lock().unwrap(), ["POST /oauth/token", "POST /oauth/token"]);
    }

    #[tokio::test]
    async fn lists_are_read_to_their_total_when_pages_are_short() {
        // 120 items, at most 50 a page whatever per_page asks.
        let (base, seen) = serve(|i, _, path| {
            if i == 0 {
                return token();
            }
            let page: usize = path.split("page=").nth(1).and_then(|p| p.split('&').next()?.parse().ok()).unwrap();
            let items: Vec<usize> = (page * 50..((page + 1) * 50).min(120)).collect();
            (200, vec![], serde_json::json!({"things": items, "total": 120, "start": page * 50}).to_string())
        })
        .await;
        let api = ManagementClient::connect(&credentials(&base)).await.unwrap();
        let all = api.list("/things", "things").await.unwrap();
        assert_eq!(all, (0..120).map(Value::from).collect::<Vec<_>>());
        assert_eq!(seen.lock().unwrap().len(), 1 + 3);
    }

    #[test]
    fn rate_limit_waits_are_bounded() {
        let mut h = reqwest::header::HeaderMap::new();
        assert_eq!(rate_limit_wait(&h), Duration::from_secs(1));
        h.insert("retry-after", "3".parse().unwrap());
        assert_eq!(rate_limit_wait(&h), Duration::from_secs(3));
        h.insert("x-ratelimit-reset", "1".parse().unwrap()); // long past
        assert_eq!(rate_limit_wait(&h), Duration::from_millis(100));
        h.insert("x-ratelimit-reset", "99999999999".parse().unwrap());
        assert_eq!(rate_limit_wait(&h), MAX_RATE_LIMIT_WAIT);
    }
}
