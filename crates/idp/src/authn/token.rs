//! `POST /oauth/token`: body decoding (form or JSON, JSON `null` meaning absent, a repeated
//! parameter or key refused) and HTTP Basic credentials, then the grant's own module in
//! `grants`. `POST /oauth/revoke` shares the decoding.

use crate::grants::{self, Params, TokenResponse, client_auth};
use crate::http::client::request_info;
use crate::http::json_body::{self, JsonBodyError};
use crate::http::params::{media_type, single_params};
use crate::util::b64_decode;
use crate::{AppState, Error, Result};
use axum::Json;
use axum::extract::{ConnectInfo, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::Value;
use std::collections::HashMap;
use std::net::SocketAddr;

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

/// The `Authorization: Basic` credentials, form-decoded as RFC 6749 2.3.1 says.
pub fn basic_credentials(headers: &HeaderMap) -> Result<Option<(String, String)>> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic ").or_else(|| v.strip_prefix("basic ")))
        .map(|b| {
            let decoded =
                b64_decode(b.trim()).and_then(|d| String::from_utf8(d).ok()).ok_or(Error::ClientAuthentication)?;
            let (id, secret) = decoded.split_once(':').ok_or(Error::ClientAuthentication)?;
            let unescape =
                |s: &str| url::form_urlencoded::parse(format!("x={s}").as_bytes()).next().map(|(_, v)| v.into_owned());
            Ok((unescape(id).unwrap_or_default(), unescape(secret).unwrap_or_default()))
        })
        .transpose()
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
    let request = request_info(&idp.config, headers, Some(peer), "POST");
    grants::exchange::exchange(idp, basic_credentials(headers)?, &p, request).await
}

/// `POST /oauth/revoke`: revokes a refresh token (and so its family). Unknown tokens answer
/// 200 too (RFC 7009), so the endpoint reveals nothing about which tokens exist.
pub async fn revoke(State(idp): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    let run = async {
        let p = decode(&headers, &body)?;
        let client = client_auth::authenticate(&idp, basic_credentials(&headers)?, &p).await?;
        grants::refresh_token::revoke(&idp, &client.client, p.require("token")?).await
    };
    match run.await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}
