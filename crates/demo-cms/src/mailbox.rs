//! The dev mailbox: `gatehouse up` without an email provider delivers mail into the idp's
//! outbox folder (one JSON file per message); `/dev/mailbox` shows the newest messages there,
//! links clickable, so a person trying password reset or verification can follow the mail. It
//! reads files only; nothing here knows the idp. Development only: the messages hold live
//! links, and `up` listens on loopback unless told otherwise.

use crate::html::{Page, escape};
use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::Value;
use std::path::PathBuf;
use std::sync::Arc;

/// Messages shown, newest first.
const SHOWN: usize = 50;
pub const PATH: &str = "/dev/mailbox";

/// `/dev/mailbox` over `outbox`, in front of `rest` (everything else).
pub fn wrap(outbox: PathBuf, rest: Router) -> Router {
    Router::new().route(PATH, get(show)).with_state(Arc::new(outbox)).fallback_service(rest)
}

async fn show(State(outbox): State<Arc<PathBuf>>) -> Response {
    let dir = outbox.as_ref().clone();
    let messages = tokio::task::spawn_blocking(move || read(&dir)).await.unwrap_or_default();
    let mut body = String::from("<h1>Dev mailbox</h1>");
    body.push_str(&format!(
        "<p>Mail the identity provider sent while no email provider is configured (newest first, at most \
         {SHOWN}), from <code>{}</code>.</p>",
        escape(&outbox.display().to_string())
    ));
    if messages.is_empty() {
        body.push_str("<p id=\"empty\">No mail yet.</p>");
    }
    for (name, m) in &messages {
        let text = |k: &str| m.get(k).and_then(Value::as_str).unwrap_or("");
        body.push_str(&format!(
            "<article class=\"mail\" id=\"{}\"><h2>{}</h2><p>To <strong>{}</strong></p><pre>{}</pre></article>",
            escape(name),
            escape(text("subject")),
            escape(text("to")),
            linkify(text("body")),
        ));
    }
    Page::new(StatusCode::OK, "Dev mailbox").body(body).into_response()
}

/// The newest messages, as (file name, message).
fn read(dir: &std::path::Path) -> Vec<(String, Value)> {
    let Ok(entries) = std::fs::read_dir(dir) else { return Vec::new() };
    let mut names: Vec<String> = entries
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.ends_with(".json") && !n.starts_with('.'))
        .collect();
    // Names start with the time in milliseconds.
    names.sort_unstable_by(|a, b| b.cmp(a));
    names
        .into_iter()
        .take(SHOWN)
        .filter_map(|n| {
            let bytes = std::fs::read(dir.join(&n)).ok()?;
            Some((n, serde_json::from_slice(&bytes).ok()?))
        })
        .collect()
}

/// Escapes `text` and makes its `http(s)://` words links.
fn linkify(text: &str) -> String {
    let mut out = String::new();
    for (i, line) in text.lines().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        let words: Vec<String> = line
            .split(' ')
            .map(|w| {
                if w.starts_with("https://") || w.starts_with("http://") {
                    format!("<a href=\"{0}\">{0}</a>", escape(w))
                } else {
                    escape(w)
                }
            })
            .collect();
        out.push_str(&words.join(" "));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn links_are_clickable_and_text_escaped() {
        let html = linkify("Open:\nhttps://id.test/lo/reset?ticket=a&b <x>");
        assert!(html.contains("<a href=\"https://id.test/lo/reset?ticket=a&amp;b\">"), "{html}");
        assert!(html.contains("&lt;x&gt;"));
    }
}
