//! Outgoing mail: the queue of messages waiting to be sent, the tenant's email provider and
//! its email templates, and [`MailStore`], the port the idp keeps them through.
//!
//! The queue is what lets a request answer before its mail is sent without losing it: a
//! message is written here first, then any idp node's worker claims it for a while (a lease),
//! sends it and marks it sent, or puts it back with a later attempt time. A claim is one
//! conditional `UPDATE` per message, so two nodes racing for the same message cannot both win
//! it; a node that dies mid-send leaves a lease that runs out, and the message goes out again
//! (the one case of a second copy, "within reason").
//!
//! The queued payload is opaque here: the idp seals it (it holds live links) before it comes in.

use crate::{Millis, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// A message to queue.
#[derive(Debug, Clone, PartialEq)]
pub struct NewMail {
    pub id: String,
    /// What the message is (a template name such as `reset_email`), for operators.
    pub kind: String,
    /// The message, sealed by the idp.
    pub payload: String,
    pub created_at: Millis,
}

/// A message a worker has claimed.
#[derive(Debug, Clone, PartialEq)]
pub struct ClaimedMail {
    pub id: String,
    pub kind: String,
    pub payload: String,
    /// Attempts made before this one.
    pub attempts: u32,
    pub created_at: Millis,
}

/// Where a queued message stands.
#[derive(Debug, Clone, PartialEq)]
pub struct MailStatus {
    pub id: String,
    pub kind: String,
    pub attempts: u32,
    pub next_attempt_at: Millis,
    pub sent_at: Option<Millis>,
    /// When the worker gave up on it.
    pub failed_at: Option<Millis>,
    pub last_error: Option<String>,
}

/// The tenant's email provider (Auth0's `/api/v2/emails/provider`). `credentials` keeps what
/// was given except the password, which lives sealed in `smtp_pass_sealed`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct EmailProvider {
    pub name: String,
    pub enabled: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_from_address: Option<String>,
    pub credentials: Map<String, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub smtp_pass_sealed: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub settings: Option<Value>,
}

/// One email template (Auth0's `/api/v2/email-templates/{name}`), in Auth0's field names.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct EmailTemplate {
    pub template: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub body: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub subject: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub syntax: Option<String>,
    #[serde(default, rename = "resultUrl", skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
    #[serde(default, rename = "urlLifetimeInSeconds", skip_serializing_if = "Option::is_none")]
    pub url_lifetime_in_seconds: Option<i64>,
    #[serde(default, rename = "includeEmailInRedirect", skip_serializing_if = "Option::is_none")]
    pub include_email_in_redirect: Option<bool>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub enabled: Option<bool>,
}

/// A one-time link mailed or handed out (Auth0's tickets): email verification, or what a
/// password-change ticket does besides the reset page's own ticket. Kept by its digest only.
#[derive(Debug, Clone, PartialEq)]
pub struct EmailTicket {
    pub ticket_sha256: Vec<u8>,
    /// `verify_email` or `password_change`.
    pub kind: String,
    pub user_id: String,
    pub expires_at: Millis,
    pub options: TicketOptions,
}

/// What happens once a ticket is used.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TicketOptions {
    /// Where the browser goes afterwards (none: a page says it is done).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub result_url: Option<String>,
    pub include_email_in_redirect: bool,
    pub mark_email_as_verified: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub client_id: Option<String>,
}

/// Where mail, its provider and templates are kept.
#[async_trait]
pub trait MailStore: Send + Sync {
    /// Queues a message, due at once.
    async fn enqueue_mail(&self, mail: &NewMail) -> Result<()>;
    /// Claims up to `limit` due messages (not sent, not given up, not under another live
    /// lease) until `lease_until`, under the caller's `claim` (unique per call); the oldest
    /// due first. Each message goes to one caller only, however many race.
    async fn claim_mail(&self, claim: &str, now: Millis, lease_until: Millis, limit: u32) -> Result<Vec<ClaimedMail>>;
    /// Marks a claimed message sent; `false` when the claim was lost (the lease ran out and
    /// another worker took it).
    async fn mail_sent(&self, id: &str, claim: &str, now: Millis) -> Result<bool>;
    /// Records a failed attempt: due again at `retry_at`, or given up when `None`.
    async fn mail_failed(
        &self,
        id: &str,
        claim: &str,
        error: &str,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> Result<bool>;
    async fn mail_status(&self, id: &str) -> Result<Option<MailStatus>>;
    /// Messages due at `now` and not yet sent (leased ones included: they are being sent).
    async fn pending_mail(&self, now: Millis) -> Result<u64>;
    /// Removes messages sent or given up before `before`; returns how many.
    async fn purge_mail(&self, before: Millis) -> Result<u64>;

    async fn email_provider(&self) -> Result<Option<EmailProvider>>;
    /// Creates the provider; `Conflict` when one exists.
    async fn create_email_provider(&self, provider: &EmailProvider) -> Result<()>;
    /// Replaces the provider; `NotFound` when there is none.
    async fn update_email_provider(&self, provider: &EmailProvider) -> Result<()>;
    async fn delete_email_provider(&self) -> Result<bool>;

    async fn email_template(&self, name: &str) -> Result<Option<EmailTemplate>>;
    async fn email_templates(&self) -> Result<Vec<EmailTemplate>>;
    /// Creates a template; `Conflict` when one of that name exists.
    async fn create_email_template(&self, template: &EmailTemplate) -> Result<()>;
    /// Creates or replaces a template.
    async fn put_email_template(&self, template: &EmailTemplate) -> Result<()>;

    async fn put_email_ticket(&self, ticket: &EmailTicket) -> Result<()>;
    /// Uses a live ticket of `kind` once: the ticket, or `None` when it is unknown, expired
    /// or already used (one of two racing redemptions wins).
    async fn redeem_email_ticket(&self, ticket_sha256: &[u8], kind: &str, now: Millis) -> Result<Option<EmailTicket>>;
}
