//! Single sign-on sessions: a browser that signed in recently goes on without the login page,
//! if its session still fits the request. Sessions are stored under a digest of the cookie, so
//! a leaked database holds no live cookie.

use super::{AuthRequest, NewSession};
use crate::util::{b64url, random_token, sha256};
use crate::{AppState, Result};
use store::{Millis, SsoSession};

pub fn session_key(cookie_value: &str) -> String {
    b64url(&sha256(cookie_value.as_bytes()))
}

/// The live session of this cookie.
pub async fn current(idp: &AppState, cookie: Option<&str>, now: Millis) -> Result<Option<SsoSession>> {
    let Some(raw) = cookie else { return Ok(None) };
    Ok(idp.store.session(&session_key(raw), now).await?)
}

/// Whether the session's sign-in is recent enough for `max_age` (seconds); `max_age=0` always
/// asks for the password again, as `prompt=login` does.
pub fn fresh_enough(session: &SsoSession, max_age: Option<i64>, now: Millis) -> bool {
    max_age.is_none_or(|max| max > 0 && (now - session.auth_time) / 1000 <= max)
}

/// Whether a session may sign into the client of a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Fit {
    Yes,
    /// Not this session: the login page asks who it is.
    No,
    /// The session's user is blocked: the login ends (Auth0 does not ask for another user).
    Blocked(Box<store::User>),
}

/// The session's user may sign into this client: still present, not blocked, in a connection
/// enabled for it (and the one asked for, if any).
pub async fn fits(idp: &AppState, session: &SsoSession, req: &AuthRequest) -> Result<Fit> {
    let Some(stored) = idp.store.user(&session.user_id).await? else {
        return Ok(Fit::No);
    };
    let user = stored.user;
    if req.connection.as_ref().is_some_and(|c| *c != user.connection) {
        return Ok(Fit::No);
    }
    if user.blocked {
        return Ok(Fit::Blocked(Box::new(user)));
    }
    let enabled = idp.store.connection_by_name(&user.connection).await?.is_some_and(|c| c.enabled_for(&req.client_id));
    Ok(if enabled { Fit::Yes } else { Fit::No })
}

/// Starts the SSO session of a user who just proved who they are and ends login transaction
/// `tx_id`. Returns the session and the cookie that names it.
pub async fn start(idp: &AppState, tx_id: &str, user_id: &str, now: Millis) -> Result<(SsoSession, NewSession)> {
    let settings = idp.store.tenant_settings().await?;
    let lifetime_ms = (settings.session_lifetime.unwrap_or(168.0) * 3_600_000.0) as i64;
    let cookie = random_token();
    let session = SsoSession {
        id: session_key(&cookie),
        user_id: user_id.to_owned(),
        auth_time: now,
        last_seen: now,
        expires_at: now + lifetime_ms,
        clients: vec![],
    };
    idp.store.put_session(&session).await?;
    idp.store.delete_login_transaction(tx_id).await?;
    Ok((session, NewSession { cookie, lifetime_secs: lifetime_ms / 1000, ended_tx: tx_id.to_owned() }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_age_counts_seconds_since_the_sign_in() {
        let session = SsoSession {
            id: "s".into(),
            user_id: "u".into(),
            auth_time: 1_000_000,
            last_seen: 1_000_000,
            expires_at: 9_000_000,
            clients: vec![],
        };
        assert!(fresh_enough(&session, None, 5_000_000));
        assert!(fresh_enough(&session, Some(60), 1_060_000));
        assert!(!fresh_enough(&session, Some(60), 1_061_000));
        assert!(!fresh_enough(&session, Some(0), 1_000_000));
    }
}
