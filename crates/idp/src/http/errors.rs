//! Every wire shape an idp error takes, chosen by the API that answers: the Authentication
//! API's OAuth JSON (`{error, error_description}`, the default `IntoResponse`), the
//! `/dbconnections` JSON (`{name, code, description, statusCode}`), an HTML page for browser
//! endpoints that must never redirect, and `WWW-Authenticate` for bearer tokens. The status of
//! each failure is decided here and nowhere else.

use crate::error::{Error, PageKind};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde_json::json;

/// The status Auth0's Authentication API answers a failure with.
pub fn status(e: &Error) -> StatusCode {
    match e {
        Error::InvalidRequest(_)
        | Error::Refused { .. }
        | Error::WeakPassword(_)
        | Error::UpstreamRefused { .. }
        | Error::Page { .. } => StatusCode::BAD_REQUEST,
        Error::ClientAuthentication | Error::UserBlocked | Error::Unauthorized(_) => StatusCode::UNAUTHORIZED,
        Error::InvalidGrant(_)
        | Error::UnauthorizedClient(_)
        | Error::UnsupportedGrantType(_)
        | Error::InvalidScope(_)
        | Error::AccessDenied(_) => StatusCode::FORBIDDEN,
        Error::TooManyAttempts => StatusCode::TOO_MANY_REQUESTS,
        Error::Conflict(_) => StatusCode::CONFLICT,
        Error::Upstream(_) => StatusCode::BAD_GATEWAY,
        Error::Store(store::Error::Backend(_)) => StatusCode::SERVICE_UNAVAILABLE,
        Error::Misconfigured(_) | Error::Store(_) | Error::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// Logs what the client is not told.
fn log(e: &Error) {
    match e {
        Error::Store(e) => tracing::error!(error = %e, "store failure"),
        Error::Internal(e) => tracing::error!(error = %e, "internal failure"),
        Error::Unauthorized(why) => tracing::debug!(why, "bearer token refused"),
        _ => {}
    }
}

pub fn json(status: StatusCode, body: serde_json::Value) -> Response {
    let mut res = (status, body.to_string()).into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res
}

/// An OAuth error body with a status of the caller's choosing (the edge's own refusals:
/// body too large, time limit, metrics token).
pub fn oauth(status: StatusCode, code: &str, description: &str) -> Response {
    json(status, json!({ "error": code, "error_description": description }))
}

impl IntoResponse for Error {
    /// The Authentication API's shape.
    fn into_response(self) -> Response {
        log(&self);
        let status = status(&self);
        let mut res = oauth(status, self.oauth_code(), &self.description());
        if let Error::Unauthorized(_) = self {
            res.headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer error=\"invalid_token\""));
        }
        res
    }
}

/// The `/dbconnections` endpoints' shape for what a rule refused; other failures keep the
/// OAuth shape, as on Auth0.
pub fn dbconnections(e: Error) -> Response {
    let name = match &e {
        Error::Refused { .. } => "BadRequestError",
        Error::WeakPassword(_) => "PasswordStrengthError",
        _ => return e.into_response(),
    };
    let status = status(&e);
    json(
        status,
        json!({ "name": name, "code": e.oauth_code(), "description": e.description(), "statusCode": status.as_u16() }),
    )
}

/// An HTML page for browser endpoints.
pub fn page(e: Error) -> Response {
    log(&e);
    let (status, title) = match &e {
        Error::Page { kind, .. } => match kind {
            PageKind::BadRequest => (StatusCode::BAD_REQUEST, "Bad request"),
            PageKind::UnknownClient => (StatusCode::BAD_REQUEST, "Unknown client"),
            PageKind::CallbackMismatch => (StatusCode::BAD_REQUEST, "Callback URL mismatch"),
            PageKind::Expired => (StatusCode::BAD_REQUEST, "Session expired"),
            PageKind::Forged => (StatusCode::FORBIDDEN, "Invalid request"),
            PageKind::InvalidLoginResponse => (StatusCode::BAD_REQUEST, "Invalid login response"),
            PageKind::InvalidLink => (StatusCode::BAD_REQUEST, "Invalid link"),
        },
        other => (status(other), "Error"),
    };
    page_with(status, title, &e.description())
}

/// A page with a status and title of the endpoint's own (request too large, wrong media type).
pub fn page_with(status: StatusCode, title: &str, message: &str) -> Response {
    (status, Html(crate::pages::error_page(title, message))).into_response()
}
