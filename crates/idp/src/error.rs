//! The idp's one error type, in the domain's words: what went wrong, never how it is sent.
//! No variant carries an HTTP status or a body shape; `http::errors` maps each to the API that
//! answers it (the Authentication API's OAuth JSON, `/dbconnections`' JSON, HTML pages for the
//! browser) and `management` maps them to the Management API's shape.
//!
//! The OAuth error code of a failure ([`Error::oauth_code`]) is protocol vocabulary, not wire
//! shape: the login flow also sends it to the application's redirect URI.

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A parameter is missing or malformed.
    #[error("invalid_request: {0}")]
    InvalidRequest(String),
    /// The client could not prove who it is (unknown client, wrong secret).
    #[error("the client could not be authenticated")]
    ClientAuthentication,
    /// A code, refresh token, PKCE verifier or password that does not hold.
    #[error("invalid_grant: {0}")]
    InvalidGrant(String),
    /// The client may not use this grant or flow.
    #[error("unauthorized_client: {0}")]
    UnauthorizedClient(String),
    #[error("unsupported_grant_type: {0}")]
    UnsupportedGrantType(String),
    /// More scope than the grant holds.
    #[error("invalid_scope: {0}")]
    InvalidScope(String),
    /// Policy says no: an Action denied, an API is not enabled, a federated account is not
    /// this connection's.
    #[error("access_denied: {0}")]
    AccessDenied(String),
    /// The user is blocked.
    #[error("user is blocked")]
    UserBlocked,
    /// Too many failed logins for this account from this address.
    #[error("too many failed login attempts")]
    TooManyAttempts,
    /// Sign-up or password-change input a rule refused, with Auth0's code for it
    /// (`invalid_signup`, `user_exists`, `invalid_password`, …).
    #[error("{code}: {description}")]
    Refused { code: &'static str, description: String },
    /// A password the connection's policy refuses.
    #[error("weak password: {0}")]
    WeakPassword(String),
    /// Something with that name already exists.
    #[error("conflict: {0}")]
    Conflict(String),
    /// A browser request that cannot go on and has no verified place to send the browser back
    /// to: only a page can answer it.
    #[error("{kind:?}: {message}")]
    Page { kind: PageKind, message: String },
    /// The tenant lacks a setting the request needs (said to the client, as Auth0 does).
    #[error("misconfigured: {0}")]
    Misconfigured(String),
    /// An upstream identity provider could not be used (unreachable, misconfigured, refused
    /// the code exchange).
    #[error("upstream: {0}")]
    Upstream(String),
    /// The upstream provider answered the login with an OAuth error the application can act
    /// on (`access_denied`, `login_required`, …).
    #[error("{code}: {description}")]
    UpstreamRefused { code: &'static str, description: String },
    /// A bearer token that does not authorise the call (why is logged, not sent).
    #[error("unauthorized: {0}")]
    Unauthorized(&'static str),
    #[error(transparent)]
    Store(#[from] store::Error),
    #[error("internal error: {0}")]
    Internal(String),
}

/// Why a browser request ended on a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PageKind {
    BadRequest,
    UnknownClient,
    /// The `redirect_uri` is not one of the application's callback URLs.
    CallbackMismatch,
    /// The login transaction or reset link is gone or expired.
    Expired,
    /// A form or response that this browser did not start (anti-CSRF or binding cookie).
    Forged,
    /// An upstream provider's response that cannot be read.
    InvalidLoginResponse,
    InvalidLink,
}

impl Error {
    pub fn invalid_request(description: impl Into<String>) -> Self {
        Error::InvalidRequest(description.into())
    }
    pub fn missing(param: &str) -> Self {
        Self::invalid_request(format!("Missing required parameter: {param}"))
    }
    pub fn invalid_grant(description: impl Into<String>) -> Self {
        Error::InvalidGrant(description.into())
    }
    pub fn access_denied(description: impl Into<String>) -> Self {
        Error::AccessDenied(description.into())
    }
    pub fn page(kind: PageKind, message: impl Into<String>) -> Self {
        Error::Page { kind, message: message.into() }
    }
    pub fn bad_page(message: impl Into<String>) -> Self {
        Self::page(PageKind::BadRequest, message)
    }
    pub fn refused(code: &'static str, description: impl Into<String>) -> Self {
        Error::Refused { code, description: description.into() }
    }
    pub fn internal(e: impl std::fmt::Display) -> Self {
        Error::Internal(e.to_string())
    }

    /// The OAuth error code (RFC 6749 and Auth0's additions) a client is told.
    pub fn oauth_code(&self) -> &'static str {
        match self {
            Error::InvalidRequest(_) | Error::Page { .. } => "invalid_request",
            Error::ClientAuthentication | Error::AccessDenied(_) => "access_denied",
            Error::InvalidGrant(_) => "invalid_grant",
            Error::UnauthorizedClient(_) => "unauthorized_client",
            Error::UnsupportedGrantType(_) => "unsupported_grant_type",
            Error::InvalidScope(_) => "invalid_scope",
            Error::UserBlocked => "unauthorized",
            Error::TooManyAttempts => "too_many_attempts",
            Error::Refused { code, .. } | Error::UpstreamRefused { code, .. } => code,
            Error::WeakPassword(_) => "invalid_password",
            Error::Conflict(_) => "conflict",
            Error::Unauthorized(_) => "invalid_token",
            Error::Upstream(_) | Error::Misconfigured(_) | Error::Store(_) | Error::Internal(_) => "server_error",
        }
    }

    /// What a client or person is told. Infrastructure failures say nothing of their cause
    /// (that goes to the log).
    pub fn description(&self) -> String {
        match self {
            Error::InvalidRequest(d)
            | Error::InvalidGrant(d)
            | Error::UnauthorizedClient(d)
            | Error::UnsupportedGrantType(d)
            | Error::InvalidScope(d)
            | Error::Misconfigured(d)
            | Error::AccessDenied(d)
            | Error::WeakPassword(d)
            | Error::Conflict(d)
            | Error::Upstream(d) => d.clone(),
            Error::Refused { description, .. } | Error::UpstreamRefused { description, .. } => description.clone(),
            Error::Page { message, .. } => message.clone(),
            Error::ClientAuthentication => "Unauthorized".into(),
            Error::UserBlocked => LoginError::UserBlocked.message().into(),
            Error::TooManyAttempts => LoginError::TooManyAttempts.message().into(),
            Error::Unauthorized(_) => "Unauthorized".into(),
            Error::Store(_) => "The service is temporarily unable to complete the request.".into(),
            Error::Internal(_) => "Internal error.".into(),
        }
    }
}

/// How a password login ends when it does not succeed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LoginError {
    WrongCredentials,
    UserBlocked,
    TooManyAttempts,
}

impl LoginError {
    /// Auth0's words for it, on the login page and at the token endpoint.
    pub fn message(self) -> &'static str {
        match self {
            LoginError::WrongCredentials => "Wrong email or password.",
            LoginError::UserBlocked => "user is blocked",
            LoginError::TooManyAttempts => {
                "Your account has been blocked after multiple consecutive login attempts. We've sent you an email with instructions on how to unblock it."
            }
        }
    }
}

impl From<LoginError> for Error {
    fn from(e: LoginError) -> Self {
        match e {
            LoginError::WrongCredentials => Error::invalid_grant(e.message()),
            LoginError::UserBlocked => Error::UserBlocked,
            LoginError::TooManyAttempts => Error::TooManyAttempts,
        }
    }
}
