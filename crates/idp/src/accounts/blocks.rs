//! Brute-force blocks as an administrator sees them: which (user, address) pairs the password
//! check's counters hold blocked now, and lifting them. A block lasts until its window ends,
//! the password changes, or it is lifted here.
//!
//! (The `blocked_account` mail with an unblock link, Auth0's notice of a new block, belongs to
//! the mail templates; its link would end in [`lift`].)

use crate::config::BruteForce;
use crate::logs::{Event, Type};
use crate::{AppState, Result};
use store::{AddressFailures, Millis, User};

/// Whether these counters block their address now: the limit was reached within the window.
pub fn blocking(policy: BruteForce, f: &AddressFailures, now: Millis) -> bool {
    f.count.failures >= policy.max_attempts && f.count.first_at >= now - policy.block_secs * 1000
}

/// The addresses the user is blocked from now.
pub async fn blocked_addresses(idp: &AppState, user_id: &str) -> Result<Vec<String>> {
    let now = idp.now();
    let policy = idp.config.brute_force;
    let counters = idp.store.user_failures(user_id).await?;
    Ok(counters.into_iter().filter(|f| blocking(policy, f, now)).map(|f| f.ip).collect())
}

/// Users whose email or username is `identifier`, in every database connection (where
/// passwords, and so brute-force blocks, live).
pub async fn users_named(idp: &AppState, identifier: &str) -> Result<Vec<User>> {
    let mut found = Vec::new();
    for c in idp.store.connections().await?.into_iter().filter(|c| c.is_database()) {
        if let Some(u) = idp.store.user_by_login(&c.name, identifier.trim()).await? {
            found.push(u.user);
        }
    }
    Ok(found)
}

/// Lifts every brute-force block of the user (all addresses) and records `ublkdu` when there
/// was one. Blocks set by an administrator (`blocked: true`) are not touched, as on Auth0.
pub async fn lift(idp: &AppState, user: &User, origin: Event) -> Result<bool> {
    let was_blocked = !blocked_addresses(idp, &user.user_id).await?.is_empty();
    idp.store.clear_failures(&user.user_id, None).await?;
    if was_blocked {
        let event = origin.user(user).connection_name(&user.connection);
        idp.log(event.kind(Type::BlockReleased));
    }
    Ok(was_blocked)
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::FailureCount;

    #[test]
    fn a_block_holds_from_the_limit_until_its_window_ends() {
        let policy = BruteForce { max_attempts: 3, block_secs: 60 };
        let at = |failures, first_at| AddressFailures { ip: "1".into(), count: FailureCount { failures, first_at } };
        assert!(!blocking(policy, &at(2, 1_000), 2_000), "below the limit");
        assert!(blocking(policy, &at(3, 1_000), 2_000));
        assert!(blocking(policy, &at(3, 1_000), 61_000));
        assert!(!blocking(policy, &at(3, 1_000), 61_001), "the window is over");
    }
}
