//! The one error type, mapped at the edge to Mia's error shape
//! `{"statusCode", "error", "message"}`, except for Auth0 answers relayed unchanged.

use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// 400: the request is malformed or names something not allowed.
    #[error("{0}")]
    BadRequest(String),
    /// 401: unknown client type, no session, bad state, failed refresh.
    #[error("{0}")]
    Unauthorized(String),
    /// 403: Auth0 refused a code or a password.
    #[error("{0}")]
    Forbidden(String),
    #[error("{0}")]
    NotFound(String),
    /// 503: the session store does not answer.
    #[error("session store unavailable: {0}")]
    SessionStore(String),
    /// 502: Auth0 (or the idp) cannot be reached, or answered something unusable.
    #[error("{0}")]
    Upstream(String),
    /// An answer of Auth0 passed through as it is (Management API façade).
    #[error("Auth0 answered {status}")]
    Relay { status: StatusCode, content_type: Option<HeaderValue>, body: Bytes },
    #[error("{0}")]
    Internal(String),
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn status(&self) -> StatusCode {
        match self {
            Error::BadRequest(_) => StatusCode::BAD_REQUEST,
            Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            Error::Forbidden(_) => StatusCode::FORBIDDEN,
            Error::NotFound(_) => StatusCode::NOT_FOUND,
            Error::SessionStore(_) => StatusCode::SERVICE_UNAVAILABLE,
            Error::Upstream(_) => StatusCode::BAD_GATEWAY,
            Error::Relay { status, .. } => *status,
            Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    /// The text a caller sees; internal details stay in the log.
    fn public_message(&self) -> String {
        match self {
            Error::SessionStore(_) => "the session store (Redis) is unavailable; retry shortly".to_string(),
            Error::Internal(_) => "internal error".to_string(),
            other => other.to_string(),
        }
    }
}

/// Mia's error body, as the OpenAPI description names it ([`mia_error`] writes it).
#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct MiaError {
    pub status_code: u16,
    pub error: String,
    pub message: String,
}

/// The Mia error body.
pub fn mia_error(status: StatusCode, message: &str) -> Response {
    let body = serde_json::json!({
        "statusCode": status.as_u16(),
        "error": status.canonical_reason().unwrap_or("Error"),
        "message": message,
    });
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
    res
}

impl IntoResponse for Error {
    fn into_response(self) -> Response {
        match self {
            Error::Relay { status, content_type, body } => {
                let mut res = (status, body).into_response();
                if let Some(ct) = content_type {
                    res.headers_mut().insert(header::CONTENT_TYPE, ct);
                }
                res
            }
            other => {
                match &other {
                    Error::SessionStore(detail) => tracing::error!(error = %detail, "session store failure"),
                    Error::Upstream(detail) => tracing::error!(error = %detail, "Auth0 unreachable or unusable"),
                    Error::Internal(detail) => tracing::error!(error = %detail, "internal error"),
                    _ => {}
                }
                mia_error(other.status(), &other.public_message())
            }
        }
    }
}
