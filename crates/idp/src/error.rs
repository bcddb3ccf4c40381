//! The idp's one error type. Each variant carries the wire shape of the API that raised it:
//! OAuth JSON (`{error, error_description}`), the `/dbconnections` JSON
//! (`{name, code, description, statusCode}`), or an HTML error page for browser endpoints
//! that must never redirect (unknown client, callback URL mismatch, bad logout URL).

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{error}: {description}")]
    OAuth { status: StatusCode, error: &'static str, description: String },
    #[error("{code}: {description}")]
    DbConnections { status: StatusCode, name: &'static str, code: &'static str, description: String },
    #[error("{title}: {message}")]
    Page { status: StatusCode, title: &'static str, message: String },
    /// A bearer token that does not authorise the call (`/userinfo`).
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

impl Error {
    pub fn oauth(status: StatusCode, error: &'static str, description: impl Into<String>) -> Self {
        Error::OAuth { status, error, description: description.into() }
    }
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Self::oauth(StatusCode::BAD_REQUEST, "invalid_request", description)
    }
    pub fn missing(param: &str) -> Self {
        Self::invalid_request(format!("Missing required parameter: {param}"))
    }
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Self::oauth(StatusCode::FORBIDDEN, "invalid_grant", description)
    }
    pub fn access_denied(description: impl Into<String>) -> Self {
        Self::oauth(StatusCode::FORBIDDEN, "access_denied", description)
    }
    /// Auth0's answer to a wrong client secret or unknown client at the token endpoint.
    pub fn bad_client() -> Self {
        Self::oauth(StatusCode::UNAUTHORIZED, "access_denied", "Unauthorized")
    }
    pub fn page(status: StatusCode, title: &'static str, message: impl Into<String>) -> Self {
        Error::Page { status, title, message: message.into() }
    }
    pub fn db(status: StatusCode, name: &'static str, code: &'static str, description: impl Into<String>) -> Self {
        Error::DbConnections { status, name, code, description: description.into() }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    /// The same failure shown as an HTML page (browser endpoints).
    pub fn into_page(self) -> Self {
        match self {
            Error::OAuth { status, description, .. } => Error::Page { status, title: "Error", message: description },
            Error::DbConnections { status, description, .. } => {
                Error::Page { status, title: "Error", message: description }
            }
            other => other,
        }
    }
}

fn json_response(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::OAuth { status, error, description } => {
                json_response(status, json!({ "error": error, "error_description": description }))
            }
            Error::DbConnections { status, name, code, description } => json_response(
                status,
                json!({ "name": name, "code": code, "description": description, "statusCode": status.as_u16() }),
            ),
            Error::Page { status, title, message } => {
                (status, Html(crate::pages::error_page(title, &message))).into_response()
            }
            Error::Unauthorized(why) => {
                tracing::debug!(why, "bearer token refused");
                let mut res = (StatusCode::UNAUTHORIZED, "Unauthorized").into_response();
                res.headers_mut()
                    .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
                res
            }
            Error::Store(e) => {
                tracing::error!(error = %e, "store failure");
                let status = match e {
                    store::Error::Backend(_) => StatusCode::SERVICE_UNAVAILABLE,
                    _ => StatusCode::INTERNAL_SERVER_ERROR,
                };
                json_response(
                    status,
                    json!({ "error": "server_error", "error_description": "The service is temporarily unable to complete the request." }),
                )
            }
            Error::Internal(e) => {
                tracing::error!(error = %e, "internal failure");
                json_response(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    json!({ "error": "server_error", "error_description": "Internal error." }),
                )
            }
        }
    }
}
