//! Password reset by mail: `/dbconnections/change_password` sends a one-time link, `/lo/reset`
//! takes the new password.

use super::password::{check_for, check_policy};
use crate::error::PageKind;
use crate::logs::{Event, Type};
use crate::mail::compose;
use crate::util::{random_token, sha256};
use crate::{AppState, Error, Result};
use serde::Deserialize;
use store::{PasswordTicket, StoredUser};

const TICKET_TTL_MS: i64 = 5 * 24 * 3600 * 1000;

#[derive(Deserialize)]
pub struct ChangePassword {
    pub client_id: String,
    pub email: String,
    pub connection: String,
    #[allow(dead_code)]
    organization: Option<String>,
}

/// Sends a reset mail, unless the account does not exist or the limits of
/// [`ResetMails`](crate::ResetMails) are reached: every one of those cases gets the same
/// answer as a sent mail, so the endpoint can neither list accounts nor flood a mailbox. The
/// tenant log (for administrators only) says which it was: `scpr` or `fcpr`.
pub async fn request(idp: &AppState, req: &ChangePassword, ip: &str) -> Result<()> {
    let origin = Event::at_ip(ip).client_named(&req.client_id, None).connection_name(&req.connection);
    match send_link(idp, req, ip).await {
        Ok(Ok(user)) => idp.log(origin.outcome(Type::SuccessChangePasswordRequest, None).user(&user)),
        Ok(Err(why)) => {
            idp.log(origin.outcome(Type::FailedChangePasswordRequest, Some(why.into())).user_name(&req.email))
        }
        Err(e @ (Error::Store(_) | Error::Internal(_))) => return Err(e),
        Err(e) => {
            idp.log(origin.outcome(Type::FailedChangePasswordRequest, Some(e.description())).user_name(&req.email));
            return Err(e);
        }
    }
    Ok(())
}

/// The mail of [`request`]: the user it went to, or why none went.
async fn send_link(
    idp: &AppState,
    req: &ChangePassword,
    ip: &str,
) -> Result<std::result::Result<store::User, &'static str>> {
    let connection = super::database_for(idp, &req.client_id, &req.connection).await?;
    let limits = idp.config.reset_mails;
    let (now, window_ms) = (idp.now(), limits.window_secs * 1000);
    // Every request counts against its address, found or not: otherwise probing for accounts
    // would be free.
    if idp.store.count_hit(&format!("reset-mail:ip:{ip}"), now, window_ms).await? > limits.per_ip {
        tracing::warn!(ip, "reset mails from this address over the limit; none sent");
        return Ok(Err("Too many password reset requests from this address."));
    }
    let Some(stored) = idp.store.user_by_login(&connection.name, &req.email).await? else {
        return Ok(Err("The user does not exist."));
    };
    // The link goes to the account's own address, never to what was typed: a username, or an
    // address that only matched once lower-cased, is not where the account receives mail.
    if stored.user.email.is_none() {
        return Ok(Err("The user has no email address."));
    }
    let user_id = &stored.user.user_id;
    if idp.store.count_hit(&format!("reset-mail:user:{user_id}"), now, window_ms).await? > limits.per_user {
        tracing::warn!(%user_id, "reset mails to this account over the limit; none sent");
        return Ok(Err("Too many password reset requests for this user."));
    }
    let template = compose::saved_template(idp, "reset_email").await?;
    // The template's `urlLifetimeInSeconds` is the link's life, as on Auth0.
    let ttl_ms = template
        .as_ref()
        .and_then(|t| t.url_lifetime_in_seconds)
        .filter(|s| *s > 0)
        .map_or(TICKET_TTL_MS, |s| s.saturating_mul(1000));
    let ticket = random_token();
    let record = PasswordTicket {
        ticket_sha256: sha256(ticket.as_bytes()),
        user_id: user_id.clone(),
        expires_at: now.saturating_add(ttl_ms),
    };
    idp.store.put_password_ticket(&record).await?;
    let link = idp.config.url(&format!("lo/reset?ticket={ticket}"));
    let message =
        compose::message(idp, "reset_email", template.as_ref(), &stored.user, Some(&req.client_id), Some(&link))
            .await?;
    // Queued before the answer; the mail worker sends it (see `crate::mail::queue`).
    idp.queue_mail("reset_email", &message).await?;
    Ok(Ok(stored.user))
}

/// The user a live reset ticket is for; any other ticket is an error page.
pub async fn ticket_user(idp: &AppState, ticket: &str) -> Result<StoredUser> {
    let invalid = || Error::page(PageKind::InvalidLink, "This password reset link is invalid or has expired.");
    let found = idp.store.password_ticket(&sha256(ticket.as_bytes()), idp.now()).await?.ok_or_else(invalid)?;
    idp.store.user(&found.user_id).await?.ok_or_else(invalid)
}

/// Sets the new password of a live ticket, for the browser `origin` names. The inner `Err` is
/// the policy's refusal, for the form to show again; the inner `Ok` is where a password-change
/// ticket sends the browser.
pub async fn complete(
    idp: &AppState,
    origin: &impl crate::logs::Origin,
    ticket: &str,
    password: &str,
) -> Result<std::result::Result<Option<String>, &'static str>> {
    let mut stored = ticket_user(idp, ticket).await?;
    let connection = idp.store.connection_by_name(&stored.user.connection).await?;
    let checked = match &connection {
        Some(c) => check_for(c, password),
        None => check_policy(None, password),
    };
    let origin = Event::from_request(origin).user(&stored.user);
    let origin = match &connection {
        Some(c) => origin.connection(c),
        None => origin,
    };
    if let Err(why) = checked {
        idp.log(origin.outcome(Type::FailedChangePassword, Some(why.into())));
        return Ok(Err(why));
    }
    // Ends this ticket too, with every other one of the user's.
    super::password::replace(idp, &mut stored, password).await?;
    idp.log(origin.outcome(Type::SuccessChangePassword, None));
    // A password-change ticket may verify the address and name where to go next.
    Ok(Ok(super::verify::after_password_change(idp, ticket, &stored.user.user_id).await?))
}
