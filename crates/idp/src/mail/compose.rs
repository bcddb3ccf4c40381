//! A named mail for a user, from the tenant's records: the saved template (or the built-in
//! one), the application's name, the tenant's friendly name, rendered into a [`Message`].

use super::Message;
use super::templates::{self, Context};
use crate::{Error, Idp, Result};
use store::mail::EmailTemplate;

/// The template a kind of mail is written with: its own name, or Auth0's legacy name for it.
pub async fn saved_template(idp: &Idp, name: &str) -> Result<Option<EmailTemplate>> {
    let mail = idp.store.mail();
    if let Some(t) = mail.email_template(name).await? {
        return Ok(Some(t));
    }
    if name == "reset_email" {
        for legacy in ["change_password", "password_reset"] {
            if let Some(t) = mail.email_template(legacy).await? {
                return Ok(Some(t));
            }
        }
    }
    Ok(None)
}

/// Renders `name` (with `template`, as [`saved_template`] found it) for `user` and `url`.
pub async fn message(
    idp: &Idp,
    name: &str,
    template: Option<&EmailTemplate>,
    user: &store::User,
    client_id: Option<&str>,
    url: Option<&str>,
) -> Result<Message> {
    let Some(to) = user.email.clone() else {
        return Err(Error::InvalidRequest("the user has no email address".into()));
    };
    let client = match client_id {
        Some(id) => idp.store.client(id).await?,
        None => None,
    };
    let settings = idp.store.tenant_settings().await?;
    let tenant = idp.config.domain();
    let ctx = Context {
        user: Some(user),
        application_name: client.as_ref().map(|c| c.client.name.as_str()),
        client_id,
        url,
        friendly_name: settings.friendly_name.as_deref(),
        tenant: &tenant,
        connection: Some(&user.connection),
    };
    let rendered =
        templates::render(name, template, &ctx).map_err(|e| Error::internal(format!("the {name} template: {e}")))?;
    Ok(Message {
        to,
        subject: rendered.subject,
        body: super::html_to_text(&rendered.html),
        from: rendered.from,
        html: Some(rendered.html),
    })
}
