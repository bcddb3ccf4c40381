//! [`MailStore`] as SQL: the queue in `mail_queue` (claims are conditional `UPDATE`s, so only
//! one worker wins a message, on either database), the provider as the one row of
//! `email_provider`, templates by name in `email_templates`.

use async_trait::async_trait;
use sqlx::any::AnyRow;
use sqlx::query;

use super::{SqlStore, data, get, to_json};
use crate::mail::{ClaimedMail, EmailProvider, EmailTemplate, EmailTicket, MailStatus, MailStore, NewMail};
use crate::{Error, Millis, Result};

/// The longest error text kept for a message (an SMTP server's answer may be long).
const MAX_ERROR: usize = 1000;

#[async_trait]
impl MailStore for SqlStore {
    async fn enqueue_mail(&self, mail: &NewMail) -> Result<()> {
        let q = query(
            "INSERT INTO mail_queue (id, kind, payload, created_at, attempts, next_attempt_at) \
             VALUES ($1, $2, $3, $4, 0, $4)",
        )
        .bind(mail.id.clone())
        .bind(mail.kind.clone())
        .bind(mail.payload.clone())
        .bind(mail.created_at);
        self.exec("queued mail", q).await.map(drop)
    }

    async fn claim_mail(&self, claim: &str, now: Millis, lease_until: Millis, limit: u32) -> Result<Vec<ClaimedMail>> {
        let due = query(
            "SELECT id FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1 \
             AND (lease_until IS NULL OR lease_until <= $1) ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit));
        let mut claimed = Vec::new();
        for row in self.rows("queued mail", due).await? {
            let id: String = get(&row, "id")?;
            // Re-checked by the database on the row it updates: of two workers that saw the
            // message due, the second finds the first's lease and updates nothing.
            let take = query(
                "UPDATE mail_queue SET claim = $1, lease_until = $2 WHERE id = $3 AND sent_at IS NULL \
                 AND failed_at IS NULL AND (lease_until IS NULL OR lease_until <= $4)",
            )
            .bind(claim)
            .bind(lease_until)
            .bind(id.clone())
            .bind(now);
            if self.exec("queued mail", take).await? == 1 {
                let q = query(
                    "SELECT id, kind, payload, attempts, created_at FROM mail_queue WHERE id = $1 AND claim = $2",
                )
                .bind(id)
                .bind(claim);
                if let Some(row) = self.row("queued mail", q).await? {
                    claimed.push(ClaimedMail {
                        id: get(&row, "id")?,
                        kind: get(&row, "kind")?,
                        payload: get(&row, "payload")?,
                        attempts: u32::try_from(get::<i64>(&row, "attempts")?).unwrap_or(u32::MAX),
                        created_at: get(&row, "created_at")?,
                    });
                }
            }
        }
        Ok(claimed)
    }

    async fn mail_sent(&self, id: &str, claim: &str, now: Millis) -> Result<bool> {
        let q = query(
            "UPDATE mail_queue SET sent_at = $1, attempts = attempts + 1, lease_until = NULL, last_error = NULL \
             WHERE id = $2 AND claim = $3 AND sent_at IS NULL",
        )
        .bind(now)
        .bind(id)
        .bind(claim);
        Ok(self.exec("queued mail", q).await? == 1)
    }

    async fn mail_failed(
        &self,
        id: &str,
        claim: &str,
        error: &str,
        retry_at: Option<Millis>,
        now: Millis,
    ) -> Result<bool> {
        let error: String = error.chars().take(MAX_ERROR).collect();
        let q = query(
            "UPDATE mail_queue SET attempts = attempts + 1, lease_until = NULL, last_error = $1, \
             next_attempt_at = COALESCE($2, next_attempt_at), failed_at = $3 \
             WHERE id = $4 AND claim = $5 AND sent_at IS NULL",
        )
        .bind(error)
        .bind(retry_at)
        .bind(if retry_at.is_none() { Some(now) } else { None })
        .bind(id)
        .bind(claim);
        Ok(self.exec("queued mail", q).await? == 1)
    }

    async fn mail_status(&self, id: &str) -> Result<Option<MailStatus>> {
        let q = query(
            "SELECT id, kind, attempts, next_attempt_at, sent_at, failed_at, last_error FROM mail_queue WHERE id = $1",
        )
        .bind(id);
        self.row("queued mail", q).await?.as_ref().map(status).transpose()
    }

    async fn pending_mail(&self, now: Millis) -> Result<u64> {
        let q = query(
            "SELECT COUNT(*) AS n FROM mail_queue WHERE sent_at IS NULL AND failed_at IS NULL AND next_attempt_at <= $1",
        )
        .bind(now);
        let row = self.row("queued mail", q).await?;
        Ok(row.map(|r| get::<i64>(&r, "n")).transpose()?.map_or(0, |n| u64::try_from(n).unwrap_or(0)))
    }

    async fn purge_mail(&self, before: Millis) -> Result<u64> {
        let q = query("DELETE FROM mail_queue WHERE sent_at < $1 OR failed_at < $1").bind(before);
        self.exec("queued mail", q).await
    }

    async fn email_provider(&self) -> Result<Option<EmailProvider>> {
        self.doc("email provider", query("SELECT data FROM email_provider WHERE id = 1")).await
    }

    async fn create_email_provider(&self, provider: &EmailProvider) -> Result<()> {
        let q = query("INSERT INTO email_provider (id, data) VALUES (1, $1)").bind(to_json(provider)?);
        self.exec("email provider", q).await.map(drop)
    }

    async fn update_email_provider(&self, provider: &EmailProvider) -> Result<()> {
        let q = query("UPDATE email_provider SET data = $1 WHERE id = 1").bind(to_json(provider)?);
        match self.exec("email provider", q).await? {
            0 => Err(Error::NotFound("email provider".into())),
            _ => Ok(()),
        }
    }

    async fn delete_email_provider(&self) -> Result<bool> {
        self.remove("email provider", query("DELETE FROM email_provider WHERE id = 1")).await
    }

    async fn email_template(&self, name: &str) -> Result<Option<EmailTemplate>> {
        self.doc("email template", query("SELECT data FROM email_templates WHERE name = $1").bind(name)).await
    }

    async fn email_templates(&self) -> Result<Vec<EmailTemplate>> {
        let rows = self.rows("email template", query("SELECT data FROM email_templates ORDER BY name")).await?;
        rows.iter().map(|r| data(r, "email template")).collect()
    }

    async fn create_email_template(&self, template: &EmailTemplate) -> Result<()> {
        let q = query("INSERT INTO email_templates (name, data) VALUES ($1, $2)")
            .bind(template.template.clone())
            .bind(to_json(template)?);
        self.exec("email template", q).await.map(drop)
    }

    async fn put_email_template(&self, template: &EmailTemplate) -> Result<()> {
        let q = query(
            "INSERT INTO email_templates (name, data) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET data = excluded.data",
        )
        .bind(template.template.clone())
        .bind(to_json(template)?);
        self.exec("email template", q).await.map(drop)
    }

    async fn put_email_ticket(&self, ticket: &EmailTicket) -> Result<()> {
        let q = query(
            "INSERT INTO email_tickets (ticket_sha256, kind, user_id, expires_at, data) VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(ticket.ticket_sha256.clone())
        .bind(ticket.kind.clone())
        .bind(ticket.user_id.clone())
        .bind(ticket.expires_at)
        .bind(to_json(&ticket.options)?);
        self.exec("email ticket", q).await.map(drop)
    }

    async fn redeem_email_ticket(&self, ticket_sha256: &[u8], kind: &str, now: Millis) -> Result<Option<EmailTicket>> {
        // Used up by the one UPDATE that finds it unused: of two racing redemptions, the
        // second updates nothing.
        let used = query(
            "UPDATE email_tickets SET used_at = $1 WHERE ticket_sha256 = $2 AND kind = $3 AND used_at IS NULL \
             AND expires_at > $1",
        )
        .bind(now)
        .bind(ticket_sha256.to_vec())
        .bind(kind);
        if self.exec("email ticket", used).await? != 1 {
            return Ok(None);
        }
        let q =
            query("SELECT ticket_sha256, kind, user_id, expires_at, data FROM email_tickets WHERE ticket_sha256 = $1")
                .bind(ticket_sha256.to_vec());
        let Some(row) = self.row("email ticket", q).await? else { return Ok(None) };
        Ok(Some(EmailTicket {
            ticket_sha256: get(&row, "ticket_sha256")?,
            kind: get(&row, "kind")?,
            user_id: get(&row, "user_id")?,
            expires_at: get(&row, "expires_at")?,
            options: data(&row, "email ticket")?,
        }))
    }
}

fn status(row: &AnyRow) -> Result<MailStatus> {
    Ok(MailStatus {
        id: get(row, "id")?,
        kind: get(row, "kind")?,
        attempts: u32::try_from(get::<i64>(row, "attempts")?).unwrap_or(u32::MAX),
        next_attempt_at: get(row, "next_attempt_at")?,
        sent_at: get(row, "sent_at")?,
        failed_at: get(row, "failed_at")?,
        last_error: get(row, "last_error")?,
    })
}
