//! The interactive login, read top to bottom. No HTTP types here: endpoints in `authn` hand in
//! parameters and cookie values and turn the [`Next`] step into a response.
//!
//! 1. [`authorize`]: the `/authorize` request is checked ([`request::validate`]); until client
//!    and redirect URI are known good a failure is a page, after that it goes back to the
//!    application.
//! 2. An SSO session that fits goes straight to step 5 ([`sso`]).
//! 3. Otherwise a login transaction is stored and the browser goes to the login page, or for a
//!    federated connection straight to its provider ([`federated::begin`]).
//! 4. The person proves who they are: a password or a sign-up ([`password`]), or the provider's
//!    callback ([`federated::callback`]); an SSO session starts ([`sso::start`]).
//! 5. [`finish`]: post-login Actions run, the code is stored, and the browser goes back to the
//!    application with it (or with the Action's denial).

pub mod federated;
pub mod finish;
pub mod logout;
pub mod password;
pub mod request;
pub mod sso;
pub mod transaction;

pub use request::{AuthRequest, ResponseMode};

use crate::actions::post_login::RequestInfo;
use crate::{AppState, Result};
use std::collections::HashMap;

/// Where the browser goes next.
#[derive(Debug)]
pub enum Next {
    /// Back to the application, with the code or an error.
    Client(Reply),
    /// Back to the application, signed in just now: the browser also gets the new SSO session.
    SignedIn { reply: Reply, session: NewSession },
    /// To the login page of a new login transaction, with its anti-CSRF value for a cookie.
    LoginPage { tx_id: String, csrf: String },
    /// To an upstream provider; `binding` goes into a cookie the callback must bring back.
    Upstream { url: url::Url, state: String, binding: String },
}

/// An SSO session begun by this request, and the login transaction it ended.
#[derive(Debug)]
pub struct NewSession {
    /// The cookie's value (the store keeps only its digest).
    pub cookie: String,
    pub lifetime_secs: i64,
    pub ended_tx: String,
}

/// Parameters for the application's (verified) redirect URI, delivered in its response mode.
#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub redirect_uri: String,
    pub mode: ResponseMode,
    pub params: Vec<(&'static str, String)>,
}

impl Reply {
    pub fn new(req: &AuthRequest, mut params: Vec<(&'static str, String)>) -> Self {
        if let Some(state) = &req.state {
            params.push(("state", state.clone()));
        }
        Reply { redirect_uri: req.redirect_uri.clone(), mode: req.response_mode, params }
    }

    /// Auth0's answer to the application when a blocked user signs in, whichever way.
    pub fn blocked(req: &AuthRequest) -> Self {
        Self::error(req, crate::Error::UserBlocked.oauth_code(), crate::Error::UserBlocked.description())
    }

    /// An OAuth error for the application, with the request's `state`.
    pub fn error(req: &AuthRequest, code: &'static str, description: impl Into<String>) -> Self {
        Self::new(req, vec![("error", code.into()), ("error_description", description.into())])
    }
}

/// `/authorize`, steps 1 to 3. `session_cookie` is the SSO cookie the browser sent.
pub async fn authorize(
    idp: &AppState,
    params: &HashMap<String, String>,
    session_cookie: Option<&str>,
    request: &RequestInfo,
) -> Result<Next> {
    let request::Valid { req, prompt, federated } = match request::validate(idp, params).await? {
        Ok(valid) => valid,
        Err(refusal) => return Ok(Next::Client(refusal)),
    };
    let now = idp.now();
    if prompt != request::Prompt::Login
        && let Some(session) = sso::current(idp, session_cookie, now).await?
        && sso::fresh_enough(&session, req.max_age, now)
    {
        let silent = prompt == request::Prompt::None;
        match sso::fits(idp, &session, &req).await? {
            sso::Fit::Yes => {
                return Ok(Next::Client(finish::complete(idp, &req, &session, request, now, silent).await?));
            }
            sso::Fit::Blocked(user) => {
                let kind = if silent { crate::logs::Type::FailedSilentAuth } else { crate::logs::Type::Failed };
                let event = crate::logs::Event::from_request(request).client_named(&req.client_id, None).user(&user);
                idp.log(event.outcome(kind, Some(crate::Error::UserBlocked.description())));
                return Ok(Next::Client(Reply::blocked(&req)));
            }
            sso::Fit::No => {}
        }
    }
    if prompt == request::Prompt::None {
        let event = crate::logs::Event::from_request(request).client_named(&req.client_id, None);
        idp.log(event.outcome(crate::logs::Type::FailedSilentAuth, Some("Login required".into())));
        return Ok(Next::Client(Reply::error(&req, "login_required", "Login required")));
    }
    let tx = transaction::open(idp, &req, now).await?;
    match federated {
        Some(c) => federated::begin_or_fail(idp, &tx.id, &req, &c).await,
        None => Ok(Next::LoginPage { tx_id: tx.id, csrf: tx.csrf }),
    }
}
