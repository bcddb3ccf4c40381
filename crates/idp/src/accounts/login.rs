//! The credential check every password login shares (the login page, the password and
//! password-realm grants): brute-force limits per (user, IP), timing that does not reveal which
//! accounts exist, rehash on login.

use super::password::Verified;
use crate::config::BruteForce;
use crate::error::LoginError;
use crate::logs::{Event, Type};
use crate::util::{b64url, sha256};
use crate::{AppState, Result};
use store::{Connection, StoredUser};

/// What the failures counted so far mean for this attempt, before and after the password is
/// checked. `failures` includes this attempt (it is counted first, see [`check_password`]).
pub fn blocked_before_check(policy: BruteForce, failures: i64) -> bool {
    failures > policy.max_attempts
}

/// A wrong password that reaches the limit blocks at once: the attempt that makes it is told so.
pub fn blocked_by_this_failure(policy: BruteForce, failures: i64) -> bool {
    failures >= policy.max_attempts
}

/// Checks a password against a database connection. The outer `Result` is for infrastructure
/// failures; the inner one is the login's outcome. A failure is recorded here (`fu`, `fp`,
/// `limit_wc`, `f`) on `origin`, the request and client the attempt came with; a success is
/// recorded by the caller once the login has gone through (Actions may still deny it).
pub async fn check_password(
    idp: &AppState,
    connection: &Connection,
    login: &str,
    password: &str,
    origin: &Event,
) -> Result<std::result::Result<StoredUser, LoginError>> {
    let origin = origin.clone().connection(connection);
    let failed = |kind: Type, stored: Option<&StoredUser>, description: Option<String>| {
        let event = origin.outcome(kind, description);
        idp.log(match stored {
            Some(s) => event.user(&s.user),
            None => event.user_name(login.trim()),
        });
    };
    let ip = origin.ip();
    let now = idp.now();
    let policy = idp.config.brute_force;
    let block_ms = policy.block_secs * 1000;
    // A database identity linked into another user signs in as that user, with its own
    // password (the link kept its hash).
    let (stored, linked_hash) = match idp.store.user_by_login(&connection.name, login.trim()).await? {
        Some(s) => (Some(s), None),
        None => match idp.store.linked_login(&connection.name, login.trim()).await? {
            Some(l) => (idp.store.user(&l.primary_user_id).await?, Some(l.password_hash)),
            None => (None, None),
        },
    };
    // The attempt is counted before the password is checked and taken back when it was right:
    // counting only afterwards would let a burst of concurrent guesses all pass the limit
    // while none of them was recorded yet.
    //
    // Logins that name no user are counted too, or the block itself would tell which accounts
    // exist: only a real one would answer `too_many_attempts` to the tenth wrong password. They
    // count as a rate window (purged when it ends) under a digest of the login, so what was
    // typed is not stored and a flood of made-up names does not pile up.
    let failures = match &stored {
        Some(s) => idp.store.record_failure(&s.user.user_id, ip, now, now - block_ms).await?.failures,
        None => {
            let login = b64url(&sha256(format!("{}\0{}", connection.name, login.trim().to_lowercase()).as_bytes()));
            idp.store.count_hit(&format!("login-failure:{login}:{ip}"), now, block_ms).await?
        }
    };
    if blocked_before_check(policy, failures) {
        metrics::counter!("gatehouse_logins_total", "outcome" => "too_many_attempts").increment(1);
        failed(Type::BlockedAccount, stored.as_ref(), None);
        return Ok(Err(LoginError::TooManyAttempts));
    }
    let hash = match &linked_hash {
        Some(linked) => linked.as_deref(),
        None => stored.as_ref().and_then(|s| s.password_hash.as_deref()),
    };
    let verified = idp.hasher.verify(password, hash).await?;
    let (Some(mut stored), true) = (stored.clone(), verified != Verified::No) else {
        if blocked_by_this_failure(policy, failures) {
            let user_id = stored.as_ref().map_or("(none)", |s| s.user.user_id.as_str());
            tracing::warn!(user_id, ip, "login blocked after repeated failures");
            // The user is told, with a link that lifts the block. A mail that cannot be queued
            // does not change the login's answer.
            if let Some(s) = &stored
                && let Err(e) = super::blocks::notify(idp, &s.user, origin.0.client_id.as_deref()).await
            {
                tracing::warn!(error = %e, user_id, "the blocked_account mail could not be queued");
            }
            metrics::counter!("gatehouse_logins_total", "outcome" => "too_many_attempts").increment(1);
            failed(Type::BlockedAccount, stored.as_ref(), None);
            return Ok(Err(LoginError::TooManyAttempts));
        }
        metrics::counter!("gatehouse_logins_total", "outcome" => "wrong_credentials").increment(1);
        match &stored {
            Some(s) => failed(Type::WrongPassword, Some(s), None),
            None => failed(Type::WrongUsername, None, None),
        }
        return Ok(Err(LoginError::WrongCredentials));
    };
    idp.store.clear_failures(&stored.user.user_id, Some(ip)).await?;
    if stored.user.blocked {
        metrics::counter!("gatehouse_logins_total", "outcome" => "blocked").increment(1);
        failed(Type::Failed, Some(&stored), Some(LoginError::UserBlocked.message().into()));
        return Ok(Err(LoginError::UserBlocked));
    }
    // (A linked identity's hash is not the user's: it stays as it is.)
    if verified == Verified::YesRehash && linked_hash.is_none() {
        stored.password_hash = Some(idp.hasher.hash(password).await?);
        idp.store.update_user(&stored).await?;
    }
    idp.store.record_login(&stored.user.user_id, now, ip).await?;
    stored.user.logins_count += 1;
    stored.user.last_login = Some(now);
    metrics::counter!("gatehouse_logins_total", "outcome" => "success").increment(1);
    Ok(Ok(stored))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tenth_wrong_password_blocks_and_the_eleventh_attempt_is_not_checked() {
        let policy = BruteForce { max_attempts: 10, block_secs: 900 };
        // Attempts 1 to 9 are checked and, when wrong, are just wrong.
        for failures in 1..10 {
            assert!(!blocked_before_check(policy, failures));
            assert!(!blocked_by_this_failure(policy, failures));
        }
        // The tenth is checked (a right password still gets in) but a wrong one blocks.
        assert!(!blocked_before_check(policy, 10));
        assert!(blocked_by_this_failure(policy, 10));
        // From the eleventh on nothing is checked, right password or not.
        assert!(blocked_before_check(policy, 11));
    }
}
