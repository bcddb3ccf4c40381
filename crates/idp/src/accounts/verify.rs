//! Email verification and Auth0's tickets: a one-time, expiring link that sets
//! `email_verified` (`/u/email-verification?ticket=`), mailed after a sign-up (unless the
//! tenant disabled its `verify_email` template), by `POST /api/v2/jobs/verification-email`, or
//! handed out by `POST /api/v2/tickets/email-verification`; and the password-change ticket,
//! which opens the reset page and may afterwards verify the address and redirect. Tickets are
//! kept by their digest only; an unknown, expired or used one gets an error page and never a
//! redirect.

use crate::error::PageKind;
use crate::logs::{Event, Type};
use crate::mail::compose;
use crate::util::{random_token, sha256};
use crate::{AppState, Error, Result};
use store::mail::{EmailTicket, TicketOptions};
use store::{PasswordTicket, User};

pub const VERIFY: &str = "verify_email";
pub const PASSWORD_CHANGE: &str = "password_change";
const WELCOME: &str = "welcome_email";
/// Auth0's default life of a ticket: 5 days.
pub const DEFAULT_TTL_SECS: i64 = 5 * 24 * 3600;
/// Auth0's longest: 30 days.
pub const MAX_TTL_SECS: i64 = 30 * 24 * 3600;

/// A new email-verification ticket for `user`; returns its URL.
pub async fn verification_ticket(idp: &AppState, user: &User, options: TicketOptions, ttl_secs: i64) -> Result<String> {
    let token = random_token();
    let ticket = EmailTicket {
        ticket_sha256: sha256(token.as_bytes()),
        kind: VERIFY.into(),
        user_id: user.user_id.clone(),
        expires_at: idp.now().saturating_add(ttl_secs.saturating_mul(1000)),
        options,
    };
    idp.store.mail().put_email_ticket(&ticket).await?;
    Ok(idp.config.url(&format!("u/email-verification?ticket={token}#")))
}

/// A new password-change ticket for `user` (the reset page's own ticket, plus what happens
/// after); returns its URL.
pub async fn password_change_ticket(
    idp: &AppState,
    user: &User,
    options: TicketOptions,
    ttl_secs: i64,
) -> Result<String> {
    let token = random_token();
    let digest = sha256(token.as_bytes());
    let expires_at = idp.now().saturating_add(ttl_secs.saturating_mul(1000));
    let after = EmailTicket {
        ticket_sha256: digest.clone(),
        kind: PASSWORD_CHANGE.into(),
        user_id: user.user_id.clone(),
        expires_at,
        options,
    };
    idp.store.mail().put_email_ticket(&after).await?;
    idp.store
        .put_password_ticket(&PasswordTicket { ticket_sha256: digest, user_id: user.user_id.clone(), expires_at })
        .await?;
    Ok(idp.config.url(&format!("lo/reset?ticket={token}#")))
}

/// Queues the `verify_email` mail for `user`, with the template's link life, result URL and
/// redirect setting. `on_signup`: a disabled template means no mail, as on Auth0.
pub async fn send_verification(idp: &AppState, user: &User, client_id: Option<&str>, on_signup: bool) -> Result<bool> {
    if user.email.is_none() || (on_signup && user.email_verified) {
        return Ok(false);
    }
    let template = compose::saved_template(idp, VERIFY).await?;
    if on_signup && template.as_ref().is_some_and(|t| t.enabled == Some(false)) {
        return Ok(false);
    }
    let ttl = template.as_ref().and_then(|t| t.url_lifetime_in_seconds).filter(|s| *s > 0).unwrap_or(DEFAULT_TTL_SECS);
    let options = TicketOptions {
        result_url: template.as_ref().and_then(|t| t.result_url.clone()).filter(|u| !u.is_empty()),
        include_email_in_redirect: template.as_ref().and_then(|t| t.include_email_in_redirect).unwrap_or(true),
        mark_email_as_verified: true,
        client_id: client_id.map(str::to_owned),
    };
    let url = verification_ticket(idp, user, options, ttl.min(MAX_TTL_SECS)).await?;
    let message = compose::message(idp, VERIFY, template.as_ref(), user, client_id, Some(&url)).await?;
    idp.queue_mail(VERIFY, &message).await?;
    Ok(true)
}

/// After a sign-up: the verification mail, unless disabled, and the welcome mail when the
/// tenant saved an enabled `welcome_email` template (Auth0 sends none by default). A failure
/// to queue either does not undo the sign-up; it is logged.
pub async fn after_signup(idp: &AppState, user: &User, client_id: &str) {
    if let Err(e) = send_verification(idp, user, Some(client_id), true).await {
        tracing::warn!(error = %e, user_id = %user.user_id, "the verification mail could not be queued");
    }
    if let Err(e) = send_welcome(idp, user, client_id).await {
        tracing::warn!(error = %e, user_id = %user.user_id, "the welcome mail could not be queued");
    }
}

/// After `POST /api/v2/users`: the verification mail as Auth0 decides it, `verify_email` when
/// given, else whenever the address is not marked verified. Asked for explicitly, it goes out
/// as `POST /api/v2/jobs/verification-email` would send it; by default, not when the tenant
/// saved the template disabled (as after a sign-up). A failure to queue it does not undo the
/// creation; it is logged.
pub async fn after_create(idp: &AppState, user: &User, verify_email: Option<bool>) {
    let sent = match verify_email {
        Some(false) => return,
        Some(true) => send_verification(idp, user, None, false).await,
        None => send_verification(idp, user, None, true).await,
    };
    if let Err(e) = sent {
        tracing::warn!(error = %e, user_id = %user.user_id, "the verification mail could not be queued");
    }
}

async fn send_welcome(idp: &AppState, user: &User, client_id: &str) -> Result<()> {
    let template = compose::saved_template(idp, WELCOME).await?;
    let Some(template) = template.filter(|t| t.enabled == Some(true)) else { return Ok(()) };
    if user.email.is_none() {
        return Ok(());
    }
    let message = compose::message(idp, WELCOME, Some(&template), user, Some(client_id), None).await?;
    idp.queue_mail(WELCOME, &message).await.map(drop)
}

fn invalid_link() -> Error {
    Error::page(PageKind::InvalidLink, "This email verification link is invalid, has expired or was already used.")
}

/// Uses a verification ticket: the address is verified (`sv`); the answer is where to send the
/// browser (the ticket's result URL with Auth0's parameters), or `None` for a page.
pub async fn verify(idp: &AppState, ticket: &str) -> Result<Option<String>> {
    let found = idp.store.mail().redeem_email_ticket(&sha256(ticket.as_bytes()), VERIFY, idp.now()).await?;
    let Some(found) = found else {
        idp.log(Event::new(Type::FailedVerificationEmail).description("Invalid, expired or used verification link"));
        return Err(invalid_link());
    };
    let Some(mut stored) = idp.store.user(&found.user_id).await? else {
        idp.log(
            Event::new(Type::FailedVerificationEmail).user_id(&found.user_id).description("The user does not exist."),
        );
        return Err(invalid_link());
    };
    stored.user.email_verified = true;
    stored.user.updated_at = idp.now();
    idp.store.update_user(&stored).await?;
    idp.log(Event::new(Type::SuccessVerificationEmail).user(&stored.user));
    Ok(result_redirect(
        &found.options,
        &stored.user,
        "Your email was verified. You can continue using the application.",
    ))
}

/// After a password set through a password-change ticket: the address verified if the ticket
/// says so, and where to send the browser, if anywhere.
pub async fn after_password_change(idp: &AppState, ticket: &str, user_id: &str) -> Result<Option<String>> {
    let found = idp.store.mail().redeem_email_ticket(&sha256(ticket.as_bytes()), PASSWORD_CHANGE, idp.now()).await?;
    let Some(found) = found.filter(|t| t.user_id == user_id) else { return Ok(None) };
    let Some(mut stored) = idp.store.user(user_id).await? else { return Ok(None) };
    if found.options.mark_email_as_verified && !stored.user.email_verified {
        stored.user.email_verified = true;
        stored.user.updated_at = idp.now();
        idp.store.update_user(&stored).await?;
    }
    Ok(result_redirect(&found.options, &stored.user, "You can now login to the application with the new password."))
}

/// The result URL with Auth0's `success`, `message` and (when asked) `email` parameters.
fn result_redirect(options: &TicketOptions, user: &User, message: &str) -> Option<String> {
    let mut url = url::Url::parse(options.result_url.as_deref()?).ok()?;
    {
        let mut q = url.query_pairs_mut();
        q.append_pair("success", "true").append_pair("message", message);
        if options.include_email_in_redirect
            && let Some(email) = &user.email
        {
            q.append_pair("email", email);
        }
    }
    Some(url.to_string())
}
