//! The tenant's email provider as the sender needs it: the stored record (Auth0's fields, the
//! SMTP password sealed by [`crate::secrets`]) turned into [`SmtpSettings`], and the sealing of a
//! new password. Only `smtp` delivers; the Management API refuses the other provider names.

use super::smtp::SmtpSettings;
use crate::secrets::SecretBox;
use crate::{Error, Result};
use serde_json::Value;
use std::time::Duration;
use store::mail::EmailProvider;

/// The additional data the SMTP password is sealed under.
const PASS_CONTEXT: &str = "email_provider:smtp_pass";

pub fn seal_password(secrets: &SecretBox, pass: &str) -> Result<String> {
    secrets.seal(PASS_CONTEXT, pass)
}

/// What this node needs to send that the stored provider does not say.
#[derive(Debug, Clone)]
pub struct Local {
    pub hello_name: String,
    /// The sender when neither the message nor the provider names one.
    pub fallback_from: String,
    pub timeout: Duration,
    pub extra_roots_pem: Option<Vec<u8>>,
    pub implicit_tls_ports: Vec<u16>,
}

/// The settings to deliver with: `None` when no provider is configured or it is disabled (the
/// outbox then takes the mail).
pub fn smtp_settings(
    provider: Option<&EmailProvider>,
    secrets: &SecretBox,
    local: &Local,
) -> Result<Option<SmtpSettings>> {
    let Some(p) = provider.filter(|p| p.enabled && p.name == "smtp") else { return Ok(None) };
    let text = |k: &str| p.credentials.get(k).and_then(Value::as_str).map(str::to_owned);
    let host = text("smtp_host").filter(|h| !h.is_empty()).ok_or_else(|| Error::internal("smtp_host is missing"))?;
    let port = p
        .credentials
        .get("smtp_port")
        .and_then(Value::as_u64)
        .and_then(|n| u16::try_from(n).ok())
        .ok_or_else(|| Error::internal("smtp_port is missing"))?;
    let pass = p.smtp_pass_sealed.as_deref().map(|sealed| secrets.open(PASS_CONTEXT, sealed)).transpose()?;
    Ok(Some(SmtpSettings {
        host,
        port,
        user: text("smtp_user"),
        pass,
        default_from: p.default_from_address.clone().unwrap_or_else(|| local.fallback_from.clone()),
        hello_name: local.hello_name.clone(),
        timeout: local.timeout,
        extra_roots_pem: local.extra_roots_pem.clone(),
        implicit_tls: local.implicit_tls_ports.contains(&port),
    }))
}
