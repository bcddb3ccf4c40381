//! The SMTP sender (lettre over tokio and rustls): implicit TLS on port 465 (or the ports
//! configured so), STARTTLS required on any other port (a server that does not offer it is refused, so a password never crosses
//! in the clear), AUTH when a user is configured, and a timeout on the connection and on every
//! command, with an overall bound on each message on top: a stalled server delays the queue,
//! never a request, and never the worker for long.

use super::{Mailer, Message, SendError};
use async_trait::async_trait;
use lettre::message::{Mailbox, MultiPart, SinglePart, header::ContentType};
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Certificate, Tls, TlsParameters};
use lettre::transport::smtp::extension::ClientId;
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use std::time::Duration;

/// Where and how to deliver.
#[derive(Clone, PartialEq, Eq)]
pub struct SmtpSettings {
    pub host: String,
    pub port: u16,
    pub user: Option<String>,
    pub pass: Option<String>,
    /// The sender of a message that names none.
    pub default_from: String,
    /// The name this node gives in `EHLO`.
    pub hello_name: String,
    /// Limit on connecting and on each SMTP command.
    pub timeout: Duration,
    /// Certificates (PEM) trusted besides the system's, for a relay with a private CA.
    pub extra_roots_pem: Option<Vec<u8>>,
    /// TLS from the first byte (else STARTTLS, required).
    pub implicit_tls: bool,
}

impl std::fmt::Debug for SmtpSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SmtpSettings")
            .field("host", &self.host)
            .field("port", &self.port)
            .field("user", &self.user)
            .field("pass", &self.pass.as_ref().map(|_| "…"))
            .finish_non_exhaustive()
    }
}

pub struct SmtpSender {
    settings: SmtpSettings,
    transport: AsyncSmtpTransport<Tokio1Executor>,
}

impl SmtpSender {
    pub fn new(settings: SmtpSettings) -> Result<Self, SendError> {
        let mut tls = TlsParameters::builder(settings.host.clone());
        if let Some(pem) = &settings.extra_roots_pem {
            for cert in split_pem_certificates(pem) {
                let cert = Certificate::from_pem(&cert).map_err(|e| {
                    SendError::transient(format!("the SMTP CA file holds an unusable certificate: {e}"))
                })?;
                tls = tls.add_root_certificate(cert);
            }
        }
        let tls = tls.build_rustls().map_err(|e| SendError::transient(format!("SMTP TLS setup: {e}")))?;
        let tls = if settings.implicit_tls { Tls::Wrapper(tls) } else { Tls::Required(tls) };
        let mut builder = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(settings.host.clone())
            .port(settings.port)
            .tls(tls)
            .hello_name(ClientId::Domain(settings.hello_name.clone()))
            .timeout(Some(settings.timeout));
        if let Some(user) = settings.user.as_deref().filter(|u| !u.is_empty()) {
            builder = builder.credentials(Credentials::new(user.to_owned(), settings.pass.clone().unwrap_or_default()));
        }
        Ok(SmtpSender { transport: builder.build(), settings })
    }

    pub fn settings(&self) -> &SmtpSettings {
        &self.settings
    }
}

#[async_trait]
impl Mailer for SmtpSender {
    async fn send(&self, message: &Message) -> Result<(), SendError> {
        let email = build(message, &self.settings.default_from)?;
        // lettre bounds each step; this bounds the whole exchange (connect, TLS, AUTH, data).
        let overall = self.settings.timeout * 4;
        match tokio::time::timeout(overall, self.transport.send(email)).await {
            Ok(Ok(_)) => Ok(()),
            Ok(Err(e)) => Err(classify(&self.settings, &e)),
            Err(_) => Err(SendError::transient(format!(
                "SMTP server {}:{} did not finish within {} s",
                self.settings.host,
                self.settings.port,
                overall.as_secs()
            ))),
        }
    }
}

/// Whether `s` is an address (or `Name <address>`) a message can be sent from or to.
pub fn valid_sender(s: &str) -> bool {
    s.len() <= 320 && !s.contains(['\r', '\n']) && s.parse::<Mailbox>().is_ok()
}

/// The lettre message: CR/LF refused in every header value first, addresses parsed, a text part
/// and, when there is HTML, an HTML alternative.
fn build(message: &Message, default_from: &str) -> Result<lettre::Message, SendError> {
    message.check_headers()?;
    let from = message.from.as_deref().unwrap_or(default_from);
    if from.contains(['\r', '\n']) {
        return Err(SendError::permanent("the from header contains a line break"));
    }
    let from: Mailbox =
        from.parse().map_err(|e| SendError::permanent(format!("the sender address {from:?} is invalid: {e}")))?;
    let to: Mailbox = message
        .to
        .parse()
        .map_err(|e| SendError::permanent(format!("the recipient address {:?} is invalid: {e}", message.to)))?;
    let builder = lettre::Message::builder().from(from).to(to).subject(message.subject.clone());
    let built = match &message.html {
        Some(html) => builder.multipart(
            MultiPart::alternative()
                .singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(message.body.clone()))
                .singlepart(SinglePart::builder().header(ContentType::TEXT_HTML).body(html.clone())),
        ),
        None => builder.singlepart(SinglePart::builder().header(ContentType::TEXT_PLAIN).body(message.body.clone())),
    };
    built.map_err(|e| SendError::permanent(format!("the message cannot be built: {e}")))
}

/// Says what failed in words an operator can act on. A server's permanent refusal of the
/// message is final; everything else (unreachable, timeouts, TLS, a refused login that an
/// administrator may fix) is tried again later.
fn classify(settings: &SmtpSettings, e: &lettre::transport::smtp::Error) -> SendError {
    let at = format!("{}:{}", settings.host, settings.port);
    let code = e.status().map(u16::from);
    let message = if e.is_timeout() {
        format!("SMTP server {at} timed out: {e}")
    } else if e.is_tls() || is_certificate_problem(e) {
        format!("TLS with SMTP server {at} failed (certificate not trusted, or no STARTTLS?): {e}")
    } else if matches!(code, Some(530 | 534 | 535 | 538)) {
        format!("SMTP server {at} refused the login: {e}")
    } else if e.is_response() || e.is_permanent() || e.is_transient() {
        format!("SMTP server {at} refused the message: {e}")
    } else {
        format!("cannot reach SMTP server {at}: {e}")
    };
    let login_refused = matches!(code, Some(530 | 534 | 535 | 538));
    if e.is_permanent() && !login_refused { SendError::permanent(message) } else { SendError::transient(message) }
}

/// A handshake refused over the server's certificate: lettre reports a failed STARTTLS upgrade
/// as a connection error, with rustls's reason inside.
fn is_certificate_problem(e: &lettre::transport::smtp::Error) -> bool {
    let mut source: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = source {
        let text = err.to_string().to_ascii_lowercase();
        if text.contains("certificate") || text.contains("handshake") {
            return true;
        }
        source = err.source();
    }
    false
}

/// The `-----BEGIN CERTIFICATE-----` blocks of a PEM file, each as PEM.
fn split_pem_certificates(pem: &[u8]) -> Vec<Vec<u8>> {
    const END: &str = "-----END CERTIFICATE-----";
    let text = String::from_utf8_lossy(pem);
    let mut out = Vec::new();
    let mut rest = text.as_ref();
    while let Some(start) = rest.find("-----BEGIN CERTIFICATE-----") {
        let Some(end) = rest[start..].find(END) else { break };
        out.push(rest.as_bytes()[start..start + end + END.len()].to_vec());
        rest = &rest[start + end + END.len()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn message(subject: &str) -> Message {
        Message { to: "a@example.test".into(), subject: subject.into(), body: "b".into(), from: None, html: None }
    }

    #[test]
    fn header_injection_is_refused_before_anything_is_sent() {
        assert!(build(&message("Hello"), "no-reply@example.test").is_ok());
        let e = build(&message("Hello\r\nBcc: victim@example.test"), "no-reply@example.test").unwrap_err();
        assert!(e.permanent, "{e}");
        assert!(build(&message("Hello"), "no-reply@example.test\r\nBcc: x@y.test").is_err());
        assert!(build(&Message { to: "not an address".into(), ..message("x") }, "no-reply@example.test").is_err());
    }

    #[test]
    fn pem_bundles_split_into_certificates() {
        let one = "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n";
        assert_eq!(split_pem_certificates(format!("junk\n{one}{one}").as_bytes()).len(), 2);
        assert!(split_pem_certificates(b"nothing").is_empty());
    }
}
