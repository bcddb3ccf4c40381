//! `POST /oauth/token`: body decoding (form or JSON, JSON `null` meaning absent, a repeated
//! parameter or key refused), client authentication (post or basic, constant-time secret
//! check), grant-type permission, then one module per grant.

mod authorization_code;
mod client_credentials;
mod password;
mod refresh_token;
pub mod revoke;

use crate::authorize::single_params;
use crate::grant::TokenResponse;
use crate::json_body::{self, JsonBodyError};
use crate::util::{b64_decode, ct_eq, media_type, sha256};
use crate::{AppState, Error, Result};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::Arc;
use store::StoredClient;

pub const PASSWORD_REALM: &str = "http://auth0.com/oauth/grant-type/password-realm";

/// The decoded request: single string values only.
pub struct Params(HashMap<String, String>);

impl Params {
    pub fn get(&self, k: &str) -> Option<&str> {
        self.0.get(k).map(String::as_str).filter(|v| !v.is_empty())
    }
    pub fn require(&self, k: &str) -> Result<&str> {
        self.get(k).ok_or_else(|| Error::missing(k))
    }
    pub fn scope(&self) -> Option<Vec<String>> {
        self.get("scope").map(|s| s.split(' ').filter(|x| !x.is_empty()).map(str::to_owned).collect())
    }
}

pub fn decode(headers: &HeaderMap, body: &[u8]) -> Result<Params> {
    match media_type(headers).as_str() {
        "application/json" => {
            let value: Value = json_body::parse(body).map_err(|e| match e {
                JsonBodyError::DuplicateKey(k) => {
                    Error::invalid_request(format!("Parameter {k} was sent more than once"))
                }
                JsonBodyError::Invalid(_) => Error::invalid_request("Invalid JSON body"),
            })?;
            let Value::Object(map) = value else {
                return Err(Error::invalid_request("The body must be a JSON object"));
            };
            let mut out = HashMap::new();
            for (k, v) in map {
                match v {
                    Value::Null => {}
                    Value::String(s) => {
                        out.insert(k, s);
                    }
                    // Numbers and booleans are unambiguous; objects and arrays are not parameters.
                    Value::Number(n) => {
                        out.insert(k, n.to_string());
                    }
                    Value::Bool(b) => {
                        out.insert(k, b.to_string());
                    }
                    _ => {
                        return Err(Error::invalid_request(format!("Invalid type for parameter: {k}")));
                    }
                }
            }
            Ok(Params(out))
        }
        "application/x-www-form-urlencoded" => {
            let text = std::str::from_utf8(body).map_err(|_| Error::invalid_request("The body is not valid UTF-8"))?;
            single_params(text).map(Params).map_err(Error::invalid_request)
        }
        _ => Err(Error::invalid_request("Content-Type must be application/x-www-form-urlencoded or application/json")),
    }
}

/// The client the request authenticates as. A confidential client must prove its secret (in
/// the body or with HTTP Basic); a public one (`none`) may only name itself.
pub async fn authenticate(idp: &AppState, headers: &HeaderMap, p: &Params) -> Result<Arc<StoredClient>> {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .map(|b| {
            let decoded = b64_decode(b.trim()).and_then(|d| String::from_utf8(d).ok()).ok_or_else(Error::bad_client)?;
            let (id, secret) = decoded.split_once(':').ok_or_else(Error::bad_client)?;
            let unescape =
                |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
            Ok::<_, Error>((unescape(id).unwrap_or_default(), unescape(secret).unwrap_or_default()))
        })
        .transpose()?;
    let (client_id, secret) = match &basic {
        Some((id, secret)) => {
            if p.get("client_id").is_some_and(|b| b != id) {
                return Err(Error::bad_client());
            }
            (id.as_str(), Some(secret.as_str()))
        }
        None => (p.require("client_id")?, p.get("client_secret")),
    };
    let stored = idp.cache.cached_client(client_id).await?.ok_or_else(Error::bad_client)?;
    match (&stored.secret_sha256, secret) {
        (Some(digest), Some(secret)) if ct_eq(digest, &sha256(secret.as_bytes())) => Ok(stored),
        (None, None) if stored.client.token_endpoint_auth_method == "none" => Ok(stored),
        _ => Err(Error::bad_client()),
    }
}

pub async fn token(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    match run(&idp, &headers, peer, &body).await {
        Ok(tokens) => {
            let mut res = Json(tokens).into_response();
            let h = res.headers_mut();
            h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
            h.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
            h.insert(header::PRAGMA, HeaderValue::from_static("no-cache"));
            res
        }
        Err(e) => e.into_response(),
    }
}

async fn run(idp: &AppState, headers: &HeaderMap, peer: SocketAddr, body: &[u8]) -> Result<TokenResponse> {
    let p = decode(headers, body)?;
    let grant_type = p.require("grant_type")?.to_owned();
    if !matches!(
        grant_type.as_str(),
        "authorization_code" | "refresh_token" | "password" | "client_credentials" | PASSWORD_REALM
    ) {
        return Err(Error::oauth(
            axum::http::StatusCode::FORBIDDEN,
            "unsupported_grant_type",
            format!("Unsupported grant type: {grant_type}"),
        ));
    }
    let client = &authenticate(idp, headers, &p).await?.client;
    // A public client has no secret, so anyone who knows its id could run client credentials
    // as it: that grant is for confidential clients only, whatever the list says.
    let public = client.token_endpoint_auth_method == "none";
    if !client.allows_grant(&grant_type) || (public && grant_type == "client_credentials") {
        return Err(Error::oauth(
            axum::http::StatusCode::FORBIDDEN,
            "unauthorized_client",
            format!("Grant type '{grant_type}' not allowed for the client."),
        ));
    }
    // What post-login actions see of the request; only the grants that run them need it.
    let request = || crate::post_login::RequestInfo::new(idp, headers, Some(peer), "POST").with_body(p.0.iter());
    match grant_type.as_str() {
        "authorization_code" => authorization_code::exchange(idp, client, &p).await,
        "refresh_token" => refresh_token::exchange(idp, client, &p, &request()).await,
        "client_credentials" => client_credentials::exchange(idp, client, &p).await,
        _ => password::exchange(idp, client, &p, &grant_type, &request()).await,
    }
}
