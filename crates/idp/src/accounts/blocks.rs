//! Brute-force blocks as an administrator sees them: which (user, address) pairs the password
//! check's counters hold blocked now, and lifting them. A block lasts until its window ends,
//! the password changes, or it is lifted here.
//!
//! When a block begins, the user is told by the `blocked_account` mail (Auth0's default
//! brute-force shield `user_notification`; a tenant turns it off by saving the template with
//! `enabled: false`). The mail carries a one-time, expiring unblock link
//! (`/u/unblock?ticket=`, kept by its digest only) whose page lifts the block as
//! `DELETE /api/v2/user-blocks/{id}` does.

use crate::config::BruteForce;
use crate::error::PageKind;
use crate::logs::{Event, Type};
use crate::mail::compose;
use crate::util::{random_token, sha256};
use crate::{AppState, Error, Result};
use store::mail::{EmailTicket, TicketOptions};
use store::{AddressFailures, Millis, User};

/// The template of the mail a new block sends.
pub const BLOCKED_ACCOUNT: &str = "blocked_account";
/// The kind of ticket its link carries.
pub const UNBLOCK: &str = "unblock";
/// How long the unblock link lives unless the template says otherwise: the block itself ends
/// by then in the default policy, but a tenant may block for longer.
pub const UNBLOCK_TTL_SECS: i64 = 5 * 24 * 3600;

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

/// Queues the `blocked_account` mail with a fresh unblock link for `user`, who was just
/// blocked. `Ok(false)`: no mail (no address, or the tenant disabled the template).
pub async fn notify(idp: &AppState, user: &User, client_id: Option<&str>) -> Result<bool> {
    if user.email.is_none() {
        return Ok(false);
    }
    let template = compose::saved_template(idp, BLOCKED_ACCOUNT).await?;
    if template.as_ref().is_some_and(|t| t.enabled == Some(false)) {
        return Ok(false);
    }
    let ttl = template
        .as_ref()
        .and_then(|t| t.url_lifetime_in_seconds)
        .filter(|s| *s > 0)
        .unwrap_or(UNBLOCK_TTL_SECS)
        .min(super::verify::MAX_TTL_SECS);
    let token = random_token();
    let ticket = EmailTicket {
        ticket_sha256: sha256(token.as_bytes()),
        kind: UNBLOCK.into(),
        user_id: user.user_id.clone(),
        expires_at: idp.now().saturating_add(ttl.saturating_mul(1000)),
        options: TicketOptions { client_id: client_id.map(str::to_owned), ..Default::default() },
    };
    idp.store.mail().put_email_ticket(&ticket).await?;
    let url = idp.config.url(&format!("u/unblock?ticket={token}"));
    let message = compose::message(idp, BLOCKED_ACCOUNT, template.as_ref(), user, client_id, Some(&url)).await?;
    idp.queue_mail(BLOCKED_ACCOUNT, &message).await?;
    Ok(true)
}

/// Uses an unblock link: the user's brute-force blocks are lifted (`ublkdu` when there was
/// one). An unknown, expired or used link is an error page.
pub async fn unblock_by_link(idp: &AppState, ticket: &str, origin: Event) -> Result<User> {
    let invalid =
        || Error::page(PageKind::InvalidLink, "This unblock link is invalid, has expired or was already used.");
    let found = idp.store.mail().redeem_email_ticket(&sha256(ticket.as_bytes()), UNBLOCK, idp.now()).await?;
    let Some(found) = found else { return Err(invalid()) };
    let Some(stored) = idp.store.user(&found.user_id).await? else { return Err(invalid()) };
    let origin = match found.options.client_id.as_deref() {
        Some(id) => origin.client_named(id, None),
        None => origin,
    };
    lift(idp, &stored.user, origin.description("Unblocked by the link of the blocked_account mail")).await?;
    Ok(stored.user)
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
