//! The mail queue: [`enqueue`] writes a message (sealed: it holds live links) into the store
//! before the request that made it answers; the [`Worker`] on every node claims what is due,
//! sends it, and marks it sent, or puts it back with exponential backoff
//! ([`crate::MailDelivery`]) until it gives up and logs `fn`.
//!
//! - **Restarts**: the queue is in the store, so a stopped node's messages are sent by the next
//!   node to look, including the one that restarts.
//! - **Several nodes**: a claim is a lease the store grants to one worker only; a message goes
//!   out twice only when a node dies after the server accepted it and before it was marked
//!   (or a send outlives its lease, which is longer than the SMTP timeouts allow).
//! - **Outages**: an unreachable or stalling server costs each attempt at most the SMTP timeout,
//!   in the worker, never in a request.

use super::provider::{self, Local};
use super::smtp::{SmtpSender, SmtpSettings};
use super::{Mailer, Message, SendError};
use crate::logs::{Event, Type};
use crate::{Idp, Result};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;
use store::Millis;
use store::mail::{ClaimedMail, NewMail};
use tokio::sync::Notify;

/// Messages claimed (and sent concurrently) per round.
const BATCH: u32 = 10;

/// Seals `message` and queues it; returns its id. The worker on this node is woken at once.
pub async fn enqueue(idp: &Idp, kind: &str, message: &Message) -> Result<String> {
    let id = format!("mail_{}", crate::util::random_alnum(20));
    let json = serde_json::to_string(message).map_err(crate::Error::internal)?;
    let payload = idp.secrets.seal(&context(&id), &json)?;
    let mail = NewMail { id: id.clone(), kind: kind.to_owned(), payload, created_at: idp.now() };
    idp.store.mail().enqueue_mail(&mail).await?;
    idp.mail.wake.notify_one();
    Ok(id)
}

fn context(id: &str) -> String {
    format!("mail:{id}")
}

/// The node's worker and its SMTP connection settings. Owned by the [`Idp`]; its task ends
/// when the idp is dropped.
pub struct Worker {
    wake: Arc<Notify>,
    /// The outbox (or whatever the embedding chose) when no provider is enabled.
    fallback: Arc<dyn Mailer>,
    /// The sender for the provider settings last seen, rebuilt when they change.
    smtp: Mutex<Option<Arc<SmtpSender>>>,
    local: Local,
}

impl Drop for Worker {
    fn drop(&mut self) {
        // Lets the task see the idp is gone without waiting for its next poll.
        self.wake.notify_one();
    }
}

impl Worker {
    pub fn new(fallback: Arc<dyn Mailer>, local: Local) -> Worker {
        Worker { wake: Arc::new(Notify::new()), fallback, smtp: Mutex::new(None), local }
    }

    /// Starts the node's worker task: a round now, then whenever a message is queued here and
    /// every `poll`.
    pub fn start(idp: &Arc<Idp>) {
        let weak: Weak<Idp> = Arc::downgrade(idp);
        let wake = idp.mail.wake.clone();
        let poll = idp.config.mail.poll;
        tokio::spawn(async move {
            loop {
                let claimed = match weak.upgrade() {
                    Some(idp) => round(&idp).await,
                    None => return,
                };
                if claimed == BATCH as usize {
                    continue;
                }
                tokio::select! {
                    () = wake.notified() => {}
                    () = tokio::time::sleep(poll) => {}
                }
            }
        });
    }

    /// The sender for this round: SMTP when the tenant has an enabled provider, else the
    /// fallback.
    async fn sender(&self, idp: &Idp) -> std::result::Result<Arc<dyn Mailer>, SendError> {
        let provider = idp.store.mail().email_provider().await.map_err(|e| SendError::transient(e.to_string()))?;
        let settings = provider::smtp_settings(provider.as_ref(), &idp.secrets, &self.local)
            .map_err(|e| SendError::transient(format!("the email provider cannot be used: {e}")))?;
        let Some(settings) = settings else { return Ok(self.fallback.clone()) };
        Ok(self.smtp_for(settings)?)
    }

    fn smtp_for(&self, settings: SmtpSettings) -> std::result::Result<Arc<SmtpSender>, SendError> {
        let mut cached = self.smtp.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(sender) = cached.as_ref().filter(|s| *s.settings() == settings) {
            return Ok(sender.clone());
        }
        let sender = Arc::new(SmtpSender::new(settings)?);
        *cached = Some(sender.clone());
        Ok(sender)
    }

    /// How long a claim lasts: longer than the longest send ([`SmtpSender`] bounds one at four
    /// timeouts), so a live worker never loses a message it is still sending.
    fn lease(&self) -> Duration {
        self.local.timeout * 4 + Duration::from_secs(30)
    }
}

/// One round: claims up to [`BATCH`] due messages and sends them concurrently. Returns how
/// many were claimed.
pub async fn round(idp: &Arc<Idp>) -> usize {
    let worker = &idp.mail;
    let claim = format!("claim_{}", crate::util::random_alnum(16));
    let now = idp.now();
    let lease_until = now + i64::try_from(worker.lease().as_millis()).unwrap_or(i64::MAX / 2);
    let claimed = match idp.store.mail().claim_mail(&claim, now, lease_until, BATCH).await {
        Ok(c) => c,
        Err(e) => {
            tracing::warn!(error = %e, "claiming queued mail failed");
            return 0;
        }
    };
    if claimed.is_empty() {
        return 0;
    }
    let count = claimed.len();
    let sender = worker.sender(idp).await;
    let mut sends = tokio::task::JoinSet::new();
    for mail in claimed {
        let (idp, claim, sender) = (idp.clone(), claim.clone(), sender.clone());
        sends.spawn(async move { deliver(&idp, &claim, mail, sender).await });
    }
    while sends.join_next().await.is_some() {}
    count
}

async fn deliver(idp: &Idp, claim: &str, mail: ClaimedMail, sender: std::result::Result<Arc<dyn Mailer>, SendError>) {
    let sent = match sender {
        Ok(sender) => match open(idp, &mail) {
            Ok(message) => sender.send(&message).await,
            Err(e) => Err(e),
        },
        Err(e) => Err(e),
    };
    let store = idp.store.mail();
    let now = idp.now();
    let attempt = mail.attempts + 1;
    let recorded = match &sent {
        Ok(()) => {
            tracing::info!(mail_id = %mail.id, kind = %mail.kind, attempt, "mail sent");
            metrics::counter!("gatehouse_mail_sent_total").increment(1);
            store.mail_sent(&mail.id, claim, now).await
        }
        Err(e) => {
            let retry_at = (!e.permanent && attempt < idp.config.mail.max_attempts)
                .then(|| now + backoff_ms(&idp.config.mail, mail.attempts));
            let outcome = if retry_at.is_some() { "retry" } else { "given_up" };
            metrics::counter!("gatehouse_mail_failures_total", "outcome" => outcome).increment(1);
            match retry_at {
                Some(at) => {
                    tracing::warn!(mail_id = %mail.id, kind = %mail.kind, attempt, error = %e, retry_in_ms = at - now, "mail not sent; will retry")
                }
                None => {
                    tracing::error!(mail_id = %mail.id, kind = %mail.kind, attempt, error = %e, "mail not sent; giving up")
                }
            }
            // The tenant log says so on the first failure and when the queue gives up, not on
            // every retry of an outage.
            if attempt == 1 || retry_at.is_none() {
                let final_word = if retry_at.is_none() { "giving up" } else { "will retry" };
                idp.log(Event::new(Type::FailedSendingNotification).description(format!(
                    "Failed to send the {} email (attempt {attempt}, {final_word}): {e}",
                    mail.kind
                )));
            }
            store.mail_failed(&mail.id, claim, &e.message, retry_at, now).await
        }
    };
    match recorded {
        Ok(true) => {}
        Ok(false) => tracing::warn!(mail_id = %mail.id, "the claim on a mail ran out while it was being sent"),
        Err(e) => tracing::warn!(mail_id = %mail.id, error = %e, "recording a mail's outcome failed"),
    }
}

/// Sends `message` at once through the sender a round would use (the Management API's test
/// send): what the server said, within the SMTP timeouts.
pub async fn send_now(idp: &Idp, message: &Message) -> std::result::Result<(), SendError> {
    idp.mail.sender(idp).await?.send(message).await
}

fn open(idp: &Idp, mail: &ClaimedMail) -> std::result::Result<Message, SendError> {
    let json = idp
        .secrets
        .open(&context(&mail.id), &mail.payload)
        .map_err(|e| SendError::transient(format!("the queued message cannot be opened: {e}")))?;
    serde_json::from_str(&json).map_err(|e| SendError::permanent(format!("the queued message is corrupt: {e}")))
}

/// Wait before the next attempt after `attempts` failed ones: `first · 2^(attempts)`, capped.
pub fn backoff_ms(policy: &crate::MailDelivery, attempts: u32) -> Millis {
    let first = i64::try_from(policy.first_backoff.as_millis()).unwrap_or(i64::MAX);
    let max = i64::try_from(policy.max_backoff.as_millis()).unwrap_or(i64::MAX);
    first.saturating_mul(1_i64.checked_shl(attempts.min(40)).unwrap_or(i64::MAX)).min(max)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn backoff_doubles_up_to_its_cap() {
        let policy = crate::MailDelivery {
            first_backoff: Duration::from_secs(10),
            max_backoff: Duration::from_secs(60),
            ..Default::default()
        };
        let waits: Vec<Millis> = (0..5).map(|a| backoff_ms(&policy, a)).collect();
        assert_eq!(waits, [10_000, 20_000, 40_000, 60_000, 60_000]);
        assert_eq!(backoff_ms(&policy, 200), 60_000, "no overflow");
    }
}
