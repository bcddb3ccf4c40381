//! Outgoing mail. A request never sends mail itself: it queues the message in the store
//! ([`queue`]) before it answers, and a worker on every node sends what is due, through the
//! tenant's SMTP provider ([`smtp`], configured with `/api/v2/emails/provider`, see
//! [`provider`]) or, without one, into the outbox directory ([`Outbox`]), where `gatehouse up`'s
//! dev mailbox shows it. Neither ever logs a message's body: it holds live links.

pub mod compose;
pub mod provider;
pub mod queue;
pub mod smtp;
pub mod templates;

use async_trait::async_trait;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub to: String,
    pub subject: String,
    /// The plain-text body.
    pub body: String,
    /// The sender; the provider's `default_from_address` when `None`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub from: Option<String>,
    /// An HTML alternative of `body` (what an email template renders).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub html: Option<String>,
}

impl Message {
    /// Refuses what would let a value end a header and start another (CR or LF in an address
    /// or the subject): the message could otherwise gain recipients or headers.
    pub fn check_headers(&self) -> Result<(), SendError> {
        for (field, value) in [("to", Some(&self.to)), ("subject", Some(&self.subject)), ("from", self.from.as_ref())] {
            if value.is_some_and(|v| v.contains(['\r', '\n'])) {
                return Err(SendError::permanent(format!("the {field} header contains a line break")));
            }
        }
        Ok(())
    }
}

/// Why a message was not sent, and whether trying again may help.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct SendError {
    pub message: String,
    /// Trying again cannot help (a refused recipient, a malformed message).
    pub permanent: bool,
}

impl SendError {
    pub fn transient(message: impl Into<String>) -> Self {
        SendError { message: message.into(), permanent: false }
    }
    pub fn permanent(message: impl Into<String>) -> Self {
        SendError { message: message.into(), permanent: true }
    }
}

/// Sends one message (the queue's worker calls it; requests never do).
#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, message: &Message) -> Result<(), SendError>;
}

/// Writes `<outbox>/<millis>-<random>.json` per message.
pub struct Outbox {
    dir: PathBuf,
}

impl Outbox {
    pub fn new(dir: PathBuf) -> Self {
        Outbox { dir }
    }
}

#[async_trait]
impl Mailer for Outbox {
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        message.check_headers()?;
        let name = format!("{}-{}.json", crate::util::now_ms(), crate::util::random_hex(8));
        let body = serde_json::to_vec_pretty(message).map_err(|e| SendError::permanent(e.to_string()))?;
        // Write then rename, so a reader never sees half a message. Private (0700 directory,
        // 0600 file from its creation): a message holds a live password-reset link.
        let dir = self.dir.clone();
        let written = name.clone();
        tokio::task::spawn_blocking(move || {
            crate::datadir::create_private_dir(&dir)?;
            let tmp = dir.join(format!(".{written}.tmp"));
            crate::datadir::write_private(&tmp, &body)?;
            std::fs::rename(&tmp, dir.join(&written))
        })
        .await
        .map_err(|e| SendError::transient(e.to_string()))?
        .map_err(|e| SendError::transient(format!("writing to the outbox: {e}")))?;
        tracing::info!(to = %message.to, subject = %message.subject, file = %name, "mail written to outbox");
        Ok(())
    }
}

/// A crude plain-text rendering of an HTML body, for the text part next to it: tags dropped,
/// the common entities decoded, links kept as their targets.
pub fn html_to_text(html: &str) -> String {
    let mut out = String::with_capacity(html.len());
    // The open link's target and where its text starts in `out`.
    let mut link: Option<(String, usize)> = None;
    let mut rest = html;
    while let Some(start) = rest.find('<') {
        out.push_str(&rest[..start]);
        let Some(end) = rest[start..].find('>') else {
            rest = "";
            break;
        };
        let tag = &rest[start + 1..start + end];
        let lower = tag.to_ascii_lowercase();
        if lower.starts_with("a ")
            && let Some(pos) = lower.find("href=")
        {
            let value = &tag[pos + 5..];
            let quote = value.chars().next().filter(|c| *c == '"' || *c == '\'');
            let target = match quote {
                Some(q) => value[1..].split(q).next().unwrap_or(""),
                None => value.split_whitespace().next().unwrap_or(""),
            };
            link = Some((target.replace("&amp;", "&"), out.len()));
        } else if lower.starts_with("/a")
            && let Some((target, at)) = link.take()
        {
            // A link whose text is its target stays as it is; any other gets the target on a
            // line of its own, so a reader (or a test) finds it whole.
            if out[at..].trim().replace("&amp;", "&") != target {
                out.push_str(&format!(":\n{target}\n"));
            }
        }
        if lower.starts_with("br") || lower.starts_with("/p") || lower.starts_with("/div") || lower.starts_with("/h") {
            out.push('\n');
        }
        rest = &rest[start + end + 1..];
    }
    out.push_str(rest);
    let text = out
        .replace("&nbsp;", " ")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&#39;", "'")
        .replace("&amp;", "&");
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let mut joined = lines.join("\n");
    while joined.contains("\n\n\n") {
        joined = joined.replace("\n\n\n", "\n\n");
    }
    joined.trim().to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn line_breaks_in_headers_are_refused() {
        let ok =
            Message { to: "a@example.test".into(), subject: "Hi".into(), body: "b".into(), from: None, html: None };
        assert!(ok.check_headers().is_ok());
        let bad_subject = Message { subject: "Hi\r\nBcc: x@evil.test".into(), ..ok.clone() };
        assert!(bad_subject.check_headers().unwrap_err().permanent);
        let bad_from = Message { from: Some("a@example.test\nX: y".into()), ..ok.clone() };
        assert!(bad_from.check_headers().is_err());
        let bad_to = Message { to: "a@example.test\r".into(), ..ok };
        assert!(bad_to.check_headers().is_err());
    }

    #[test]
    fn html_becomes_text_with_its_links() {
        let text = html_to_text("<p>Hello &amp; welcome</p><p><a href=\"https://x.test/a?b=1&amp;c=2\">Verify</a></p>");
        assert!(text.contains("Hello & welcome"), "{text}");
        assert!(text.lines().any(|l| l == "https://x.test/a?b=1&c=2"), "{text}");
        let same = html_to_text("<p><a href=\"https://x.test/r?t=1\">https://x.test/r?t=1</a></p>");
        assert_eq!(same, "https://x.test/r?t=1");
        assert!(!text.contains('<'));
    }
}
