//! The Management API v2 through `managementClient`'s client-credentials token, cached until
//! shortly before it expires and fetched again once when Auth0 answers 401.

use super::{Upstream, describe, unreachable};
use crate::clock::Clock;
use crate::config::{ManagementClient, ServiceConfig};
use crate::error::{Error, Result};
use axum::body::Bytes;
use reqwest::Method;
use serde_json::Value;
use std::sync::RwLock;

/// A cached token is replaced this long before it expires.
const EARLY_RENEWAL_MS: i64 = 60_000;

/// A multipart part, kept as bytes so a request can be sent twice.
#[derive(Debug, Clone)]
pub struct Part {
    pub name: String,
    pub file_name: Option<String>,
    pub content_type: Option<String>,
    pub data: Bytes,
}

pub enum Body {
    Empty,
    Json(Value),
    Multipart(Vec<Part>),
}

pub struct Management {
    http: reqwest::Client,
    clock: Clock,
    client: ManagementClient,
    /// `https://<tenant>/api/v2/`: the audience Auth0 (and the SDKs) use.
    audience: String,
    /// Where `/api/v2` is called: `auth0TenantUrl` when set (custom domains), else the
    /// management client's `auth0Url`.
    api_base: String,
    cached: RwLock<Option<(String, i64)>>,
    fetching: tokio::sync::Mutex<()>,
}

/// `https://host[:port]/api/v2/`, whatever the scheme of the configured URL: Auth0 names the
/// Management API by its https identifier even when the tenant is reached otherwise.
pub fn audience_for(base: &str) -> String {
    let host = url::Url::parse(base)
        .ok()
        .and_then(|u| {
            u.host_str().map(|h| match u.port() {
                Some(p) => format!("{h}:{p}"),
                None => h.to_string(),
            })
        })
        .unwrap_or_default();
    format!("https://{host}/api/v2/")
}

impl Management {
    pub fn new(http: reqwest::Client, clock: Clock, config: &ServiceConfig) -> Self {
        let client = config.management_client.clone();
        let tenant = config.auth0_tenant_url.clone().unwrap_or_else(|| client.auth0_url.clone());
        Management {
            http,
            clock,
            audience: audience_for(&tenant),
            api_base: format!("{tenant}/api/v2"),
            client,
            cached: RwLock::new(None),
            fetching: tokio::sync::Mutex::new(()),
        }
    }

    pub fn client(&self) -> &ManagementClient {
        &self.client
    }

    fn cached_token(&self) -> Option<String> {
        let now = self.clock.now_ms();
        let c = self.cached.read().unwrap_or_else(|e| e.into_inner());
        c.as_ref().filter(|(_, exp)| *exp - EARLY_RENEWAL_MS > now).map(|(t, _)| t.clone())
    }

    async fn token(&self, stale: Option<&str>) -> Result<String> {
        if let Some(t) = self.cached_token().filter(|t| Some(t.as_str()) != stale) {
            return Ok(t);
        }
        let _one_fetch = self.fetching.lock().await;
        if let Some(t) = self.cached_token().filter(|t| Some(t.as_str()) != stale) {
            return Ok(t);
        }
        let url = format!("{}/oauth/token", self.client.auth0_url);
        let form = [
            ("grant_type", "client_credentials"),
            ("client_id", self.client.client_id.as_str()),
            ("client_secret", self.client.client_secret.as_str()),
            ("audience", self.audience.as_str()),
        ];
        let res = super::send(self.http.post(&url).form(&form), "POST /oauth/token")
            .await
            .map_err(|e| unreachable("Auth0", &url, &e))?;
        let up = Upstream::read(res, "Auth0 token endpoint").await?;
        if !up.is_success() {
            let why = String::from_utf8_lossy(&up.body).chars().take(300).collect::<String>();
            return Err(Error::Upstream(format!(
                "the management client cannot get a Management API token ({}): {why}",
                up.status
            )));
        }
        let body: Value = serde_json::from_slice(&up.body)
            .map_err(|e| Error::Upstream(format!("Auth0's token answer is not JSON: {e}")))?;
        let token = body
            .get("access_token")
            .and_then(Value::as_str)
            .ok_or_else(|| Error::Upstream("Auth0's token answer has no access_token".into()))?
            .to_string();
        let expires_in = body.get("expires_in").and_then(Value::as_i64).unwrap_or(86400);
        *self.cached.write().unwrap_or_else(|e| e.into_inner()) =
            Some((token.clone(), self.clock.now_ms() + expires_in * 1000));
        Ok(token)
    }

    /// Calls `/api/v2<path>` (path with its query); Auth0's answer is returned whatever its
    /// status, for the caller to relay.
    pub async fn call(&self, method: Method, path: &str, body: &Body) -> Result<Upstream> {
        let url = format!("{}{path}", self.api_base);
        let mut token = self.token(None).await?;
        for attempt in 0..2 {
            let mut req = self.http.request(method.clone(), &url).bearer_auth(&token);
            req = match body {
                Body::Empty => req,
                Body::Json(v) => req.json(v),
                Body::Multipart(parts) => {
                    let mut form = reqwest::multipart::Form::new();
                    for p in parts {
                        let mut part = reqwest::multipart::Part::stream(reqwest::Body::from(p.data.clone()));
                        if let Some(f) = &p.file_name {
                            part = part.file_name(f.clone());
                        }
                        if let Some(ct) = &p.content_type {
                            part = part
                                .mime_str(ct)
                                .map_err(|e| Error::BadRequest(format!("bad content type {ct:?}: {}", describe(&e))))?;
                        }
                        form = form.part(p.name.clone(), part);
                    }
                    req.multipart(form)
                }
            };
            let res = super::send(req, "Management API")
                .await
                .map_err(|e| unreachable("the Auth0 Management API", &url, &e))?;
            let up = Upstream::read(res, "Auth0 Management API").await?;
            if up.status.as_u16() == 401 && attempt == 0 {
                // The token may have been revoked or the keys rotated: fetch a new one, once.
                token = self.token(Some(&token)).await?;
                continue;
            }
            return Ok(up);
        }
        unreachable!("the loop returns on its second pass")
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn audience_is_the_https_identifier() {
        assert_eq!(super::audience_for("https://t.eu.auth0.com"), "https://t.eu.auth0.com/api/v2/");
        assert_eq!(super::audience_for("http://127.0.0.1:3000"), "https://127.0.0.1:3000/api/v2/");
    }
}
