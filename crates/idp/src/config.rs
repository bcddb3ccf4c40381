//! Runtime settings of one idp node.

use std::path::PathBuf;
use url::Url;

#[derive(Debug, Clone)]
pub struct Config {
    /// The base every URL and the issuer derive from, e.g. `https://127.0.0.1:3000/`.
    pub public_url: Url,
    /// Where the outbox and generated files live.
    pub data_dir: PathBuf,
    /// Take the client address from `X-Forwarded-For` (only behind a trusted proxy).
    pub trust_proxy: bool,
    pub bcrypt_cost: u32,
    pub brute_force: BruteForce,
    pub reset_mails: ResetMails,
    pub code_ttl_secs: i64,
    pub login_ttl_secs: i64,
    /// Management API requests per second per token, per node (Auth0's limits are similar).
    pub management_rate_limit: u32,
    /// The key file encrypting action secrets (default `<data_dir>/secrets.key`, created on
    /// first start). Nodes sharing a database must share it.
    pub secrets_key: Option<PathBuf>,
    /// Time, memory and stack limits of one post-login execution.
    pub action_limits: actions::Limits,
    /// Bytes a user's `app_metadata` and `user_metadata` may take together (Auth0's 16 MB).
    pub metadata_limit_bytes: usize,
    /// Google's OpenID discovery document; `google-oauth2` connections take their endpoints
    /// from it, so tests (and air-gapped setups) can point it at another OpenID provider.
    pub google_discovery_url: Url,
    /// Limit on each call to an upstream identity provider (discovery, JWKS, token exchange):
    /// an unreachable provider fails the login, it never hangs it.
    pub upstream_timeout: std::time::Duration,
    /// A request still unanswered after this long (a body that stops arriving, a stuck
    /// database) gets a 504 in its API's error shape, and its work is dropped.
    pub request_timeout: std::time::Duration,
    /// `/metrics` is served on a listener of its own (see [`crate::Idp::metrics_router`]),
    /// so the main router answers 404 for it.
    pub metrics_elsewhere: bool,
    /// SHA-256 of the bearer token `/metrics` requires, if any (set with
    /// [`Config::require_metrics_token`]; the digest, so the configuration holds no usable secret).
    pub metrics_token_digest: Option<Vec<u8>>,
    /// Record tenant log events (`false` only to measure what recording costs).
    pub tenant_logs: bool,
    /// Days tenant log events are kept; housekeeping removes older ones.
    pub log_retention_days: u32,
    /// How the mail queue retries and how long SMTP may take.
    pub mail: MailDelivery,
    /// How log streams are delivered.
    pub log_streams: StreamSettings,
}

/// The mail queue's worker (`crate::mail::queue`).
#[derive(Debug, Clone)]
pub struct MailDelivery {
    /// Wait before the first retry; each later one waits twice as long, up to `max_backoff`.
    pub first_backoff: std::time::Duration,
    pub max_backoff: std::time::Duration,
    /// Attempts before a message is given up (and logged as `fn`).
    pub max_attempts: u32,
    /// How often the worker looks for mail queued by other nodes or due again.
    pub poll: std::time::Duration,
    /// Limit on connecting to the SMTP server and on each command.
    pub smtp_timeout: std::time::Duration,
    /// A PEM file of certificates trusted for the SMTP server besides the system's.
    pub smtp_ca_file: Option<PathBuf>,
    /// Days sent (or given-up) messages stay in the queue table for operators.
    pub keep_days: u32,
    /// SMTP ports spoken with implicit TLS (RFC 8314); every other port requires STARTTLS.
    pub implicit_tls_ports: Vec<u16>,
}

impl Default for MailDelivery {
    fn default() -> Self {
        MailDelivery {
            first_backoff: std::time::Duration::from_secs(10),
            max_backoff: std::time::Duration::from_secs(3600),
            max_attempts: 20,
            poll: std::time::Duration::from_secs(5),
            smtp_timeout: std::time::Duration::from_secs(30),
            smtp_ca_file: None,
            keep_days: 7,
            implicit_tls_ports: vec![465],
        }
    }
}

/// Log stream delivery (the `streams` module of the tenant log).
#[derive(Debug, Clone, Copy)]
pub struct StreamSettings {
    /// How often the streams are looked at for new events (an event reaches its endpoint about
    /// this long after it is in the store).
    pub poll: std::time::Duration,
    /// A stream whose endpoint fails without a success for this long is suspended.
    pub suspend_after: std::time::Duration,
    /// How long a node's claim on a stream lasts unless renewed: another node takes over a
    /// stream this long (at most) after its node died. More than twice the request timeout
    /// (10 s), so a renewal outlasts a request.
    pub lease: std::time::Duration,
}

pub const GOOGLE_DISCOVERY_URL: &str = "https://accounts.google.com/.well-known/openid-configuration";

/// Auth0's brute-force protection: this many failures for one user from one IP block that pair.
#[derive(Debug, Clone, Copy)]
pub struct BruteForce {
    pub max_attempts: i64,
    /// How long a block lasts unless the password is changed first.
    pub block_secs: i64,
}

/// Password-reset mails (`/dbconnections/change_password`): within one window, at most
/// `per_user` mails to one account and `per_ip` requests from one address (whatever address
/// they name) send a mail; the rest get the same answer and no mail. Counted in the store, so
/// every node shares the counts.
#[derive(Debug, Clone, Copy)]
pub struct ResetMails {
    pub per_user: i64,
    pub per_ip: i64,
    pub window_secs: i64,
}

impl Config {
    pub fn new(public_url: Url, data_dir: PathBuf) -> Self {
        Config {
            public_url,
            data_dir,
            trust_proxy: false,
            bcrypt_cost: crate::accounts::password::DEFAULT_COST,
            brute_force: BruteForce { max_attempts: 10, block_secs: 3600 },
            reset_mails: ResetMails { per_user: 3, per_ip: 10, window_secs: 3600 },
            code_ttl_secs: 600,
            login_ttl_secs: 3600,
            management_rate_limit: 100,
            secrets_key: None,
            action_limits: actions::Limits::default(),
            metadata_limit_bytes: crate::metadata::MAX_METADATA_BYTES,
            google_discovery_url: Url::parse(GOOGLE_DISCOVERY_URL).expect("a valid constant URL"),
            upstream_timeout: std::time::Duration::from_secs(10),
            request_timeout: std::time::Duration::from_secs(30),
            metrics_elsewhere: false,
            metrics_token_digest: None,
            tenant_logs: true,
            log_retention_days: 30,
            mail: MailDelivery::default(),
            log_streams: StreamSettings {
                poll: std::time::Duration::from_secs(1),
                suspend_after: std::time::Duration::from_secs(24 * 3600),
                lease: std::time::Duration::from_secs(30),
            },
        }
    }

    /// `/metrics` answers only requests bearing `token` (`Authorization: Bearer <token>`).
    pub fn require_metrics_token(&mut self, token: &str) {
        self.metrics_token_digest = Some(crate::util::sha256(token.as_bytes()));
    }

    pub fn secrets_key_path(&self) -> PathBuf {
        self.secrets_key.clone().unwrap_or_else(|| self.data_dir.join("secrets.key"))
    }

    /// `https://{domain}/`, with the trailing slash Auth0's clients compare byte for byte.
    pub fn issuer(&self) -> String {
        let mut base = self.public_url.origin().ascii_serialization();
        base.push('/');
        base
    }

    /// Whether `s` is [`Self::issuer`] (compared in place: checked on every token).
    pub fn is_issuer(&self, s: &str) -> bool {
        self.is_url(s, "")
    }

    /// Whether `s` is [`Self::url`]`(path)`, compared piece by piece without building it.
    pub fn is_url(&self, s: &str, path: &str) -> bool {
        use url::Position::{AfterScheme, BeforeHost, BeforePath};
        let u = &self.public_url;
        s.strip_prefix(&u[..AfterScheme])
            .and_then(|r| r.strip_prefix("://"))
            .and_then(|r| r.strip_prefix(&u[BeforeHost..BeforePath]))
            .and_then(|r| r.strip_prefix('/'))
            == Some(path.trim_start_matches('/'))
    }

    /// `host[:port]`, what Auth0 SDKs are configured with.
    pub fn domain(&self) -> String {
        let host = self.public_url.host_str().unwrap_or("localhost");
        match self.public_url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_string(),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{}", self.issuer(), path.trim_start_matches('/'))
    }

    /// Always `https://{domain}/api/v2/`: the SDKs and deploy-cli hard-code that string, also
    /// when TLS ends at a proxy in front of a plain-HTTP idp.
    pub fn management_audience(&self) -> String {
        format!("https://{}/api/v2/", self.domain())
    }

    pub fn userinfo_audience(&self) -> String {
        self.url("userinfo")
    }

    /// Cookies get `Secure` when the public URL is HTTPS.
    pub fn secure_cookies(&self) -> bool {
        self.public_url.scheme() == "https"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_are_recognised_as_they_are_built() {
        for base in
            ["https://tenant.example.test/", "http://127.0.0.1:3000/", "https://[::1]:8443/x/", "https://h:443/"]
        {
            let config = Config::new(Url::parse(base).expect("url"), PathBuf::new());
            assert!(config.is_issuer(&config.issuer()), "{base}");
            assert!(config.is_url(&config.url("userinfo"), "userinfo"), "{base}");
            assert!(config.is_url(&config.url("userinfo"), "/userinfo"), "{base}");
            for wrong in [config.url("userinfo/"), config.url("user"), config.url("userinfox"), config.issuer()] {
                assert!(!config.is_url(&wrong, "userinfo"), "{base}: {wrong}");
            }
            let issuer = config.issuer();
            for wrong in [&issuer[..issuer.len() - 1], &format!("{issuer}/"), "", &issuer.replace("//", "/")] {
                assert!(!config.is_issuer(wrong), "{base}: {wrong}");
            }
        }
    }
}
