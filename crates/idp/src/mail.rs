//! Outgoing mail. There is no SMTP relay here, so the one sender writes each message as a file
//! into an outbox directory and logs that it did (without the link, which is a credential).
//! A real SMTP sender implements [`Mailer`] too.

use async_trait::async_trait;
use std::path::PathBuf;

#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct Message {
    pub to: String,
    pub subject: String,
    pub body: String,
}

#[async_trait]
pub trait Mailer: Send + Sync + 'static {
    async fn send(&self, message: Message) -> std::io::Result<()>;
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
    async fn send(&self, message: Message) -> std::io::Result<()> {
        let name = format!("{}-{}.json", crate::util::now_ms(), crate::util::random_hex(8));
        let body = serde_json::to_vec_pretty(&message).map_err(std::io::Error::other)?;
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
        .map_err(std::io::Error::other)??;
        tracing::info!(to = %message.to, subject = %message.subject, file = %name, "mail written to outbox");
        Ok(())
    }
}
