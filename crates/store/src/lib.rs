//! Persistence for the identity provider: the [`Store`] trait, the records it keeps
//! ([`model`]), and [`SqlStore`], its implementation for SQLite and PostgreSQL.
//!
//! This crate owns schemas, migrations and SQL. It knows nothing of HTTP, OAuth or Auth0's
//! wire formats: the idp shapes grants and requests as JSON values and the store keeps them.
//! Everything a login needs between two requests lives here, so idp nodes sharing one
//! PostgreSQL database are interchangeable.

pub mod cache;
pub mod logs;
pub mod model;
pub mod search;
mod sql;

pub use cache::CachedStore;
pub use logs::{LogEvent, LogStore};
pub use model::*;
pub use search::{UserPage, UserSearch};
pub use sql::{Dialect, SqlStore};

use async_trait::async_trait;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A unique key (id, name, email within a connection, …) is already taken.
    #[error("{0} already exists")]
    Conflict(String),
    #[error("{0} not found")]
    NotFound(String),
    /// A stored document no longer parses; never expected, reported rather than hidden.
    #[error("stored record is corrupt: {0}")]
    Corrupt(String),
    #[error("invalid database URL: {0}")]
    InvalidUrl(String),
    /// The schema cannot be brought up to date until an operator changes the data, as said.
    #[error("cannot migrate the database: {0}")]
    Migration(String),
    /// The database itself failed (unreachable, constraint we did not expect, …). Kept opaque
    /// so no driver type leaks into callers.
    #[error("storage backend error: {0}")]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// Everything the idp persists. Methods are grouped by record; "put" means insert or replace
/// by primary key.
#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Answers when the database is reachable (readiness).
    async fn ping(&self) -> Result<()>;

    // --- tenant
    async fn tenant_settings(&self) -> Result<TenantSettings>;
    async fn put_tenant_settings(&self, settings: &TenantSettings) -> Result<()>;

    // --- clients
    async fn client(&self, client_id: &str) -> Result<Option<StoredClient>>;
    async fn clients(&self) -> Result<Vec<StoredClient>>;
    /// Replaces the document; `secret_sha256: None` keeps the stored digest.
    async fn put_client(&self, client: &StoredClient) -> Result<()>;
    /// Adds a client; fails with `Conflict` when its `client_id` is taken, never replacing it.
    async fn create_client(&self, client: &StoredClient) -> Result<()>;
    async fn delete_client(&self, client_id: &str) -> Result<bool>;

    // --- connections (names are unique)
    async fn connection(&self, id: &str) -> Result<Option<Connection>>;
    async fn connection_by_name(&self, name: &str) -> Result<Option<Connection>>;
    async fn connections(&self) -> Result<Vec<Connection>>;
    async fn put_connection(&self, connection: &Connection) -> Result<()>;
    /// Deletes the connection and, in the same transaction, its users (by the connection's
    /// name), as Auth0 does: an account must not outlive its connection, or one recreated under
    /// the same name would log someone into it. How many users went; `None` when there was no
    /// such connection. The users' tickets, sessions and refresh tokens end with them.
    async fn delete_connection(&self, id: &str) -> Result<Option<u64>>;

    // --- resource servers (identifiers are unique)
    async fn resource_server(&self, id: &str) -> Result<Option<ResourceServer>>;
    async fn resource_server_by_identifier(&self, identifier: &str) -> Result<Option<ResourceServer>>;
    async fn resource_servers(&self) -> Result<Vec<ResourceServer>>;
    async fn put_resource_server(&self, rs: &ResourceServer) -> Result<()>;
    async fn delete_resource_server(&self, id: &str) -> Result<bool>;

    // --- client grants ((client_id, audience) is unique)
    async fn client_grant(&self, id: &str) -> Result<Option<ClientGrant>>;
    async fn client_grant_for(&self, client_id: &str, audience: &str) -> Result<Option<ClientGrant>>;
    async fn client_grants(&self) -> Result<Vec<ClientGrant>>;
    async fn put_client_grant(&self, grant: &ClientGrant) -> Result<()>;
    async fn delete_client_grant(&self, id: &str) -> Result<bool>;

    // --- users
    async fn user(&self, user_id: &str) -> Result<Option<StoredUser>>;
    /// Finds a user of one connection by email or username, case-insensitively.
    async fn user_by_login(&self, connection: &str, login: &str) -> Result<Option<StoredUser>>;
    /// Fails with `Conflict` when the id, or the email within the connection, is taken.
    async fn create_user(&self, user: &StoredUser) -> Result<()>;
    /// Replaces the document and hash; `NotFound` when absent, `Conflict` on a taken email.
    async fn update_user(&self, user: &StoredUser) -> Result<()>;
    /// Removes the user and, in the same transaction, ends what it held (reset tickets, SSO
    /// sessions, refresh tokens), so a user created again under the same id starts with none.
    async fn delete_user(&self, user_id: &str) -> Result<bool>;
    /// Counts a successful login (logins_count, last_login, last_ip) in one statement.
    async fn record_login(&self, user_id: &str, at: Millis, ip: &str) -> Result<()>;
    /// One page of the users a [`search::Query`] matches, and how many match in all; both
    /// stop at Auth0's first [`search::MAX_RESULTS`] matches.
    async fn search_users(&self, search: &UserSearch) -> Result<UserPage>;

    // --- signing keys
    async fn signing_keys(&self) -> Result<Vec<SigningKey>>;
    /// Adds a key; when `key.current`, the previous current key is marked rotated in the same
    /// transaction, so exactly one key is ever current.
    async fn add_signing_key(&self, key: &SigningKey) -> Result<()>;
    /// Replaces the stored private keys, all or none: each `kid`'s `private_pkcs8` becomes
    /// `new` only if every one still holds its `old`. `false` (nothing written) when one was
    /// changed meanwhile, e.g. by another node sealing the same keys at the same start.
    async fn replace_signing_key_secrets(&self, replacements: &[KeySecretReplacement]) -> Result<bool>;

    // --- login transactions (between /authorize and the login form)
    async fn put_login_transaction(&self, tx: &LoginTransaction) -> Result<()>;
    async fn login_transaction(&self, id: &str, now: Millis) -> Result<Option<LoginTransaction>>;
    async fn delete_login_transaction(&self, id: &str) -> Result<()>;

    // --- authorization codes
    async fn put_code(&self, code: &AuthCode) -> Result<()>;
    /// Consumes a code atomically: the first caller gets `Fresh`, every later one `Reused`;
    /// an expired or unknown code is `Unknown`.
    async fn redeem_code(&self, code_sha256: &[u8], now: Millis) -> Result<CodeRedemption>;

    // --- SSO sessions
    async fn put_session(&self, session: &SsoSession) -> Result<()>;
    async fn session(&self, id: &str, now: Millis) -> Result<Option<SsoSession>>;
    async fn delete_session(&self, id: &str) -> Result<()>;

    // --- refresh tokens
    async fn put_refresh_token(&self, token: &RefreshToken) -> Result<()>;
    async fn refresh_token(&self, token_sha256: &[u8]) -> Result<Option<RefreshToken>>;
    /// Marks `old` rotated and stores `new`, atomically; `false` (and nothing written) when
    /// `old` was already rotated or revoked, so two racing exchanges cannot both succeed.
    async fn rotate_refresh_token(&self, old_sha256: &[u8], now: Millis, new: &RefreshToken) -> Result<bool>;
    /// Revokes every token of a family (reuse detection, code reuse, /oauth/revoke).
    async fn revoke_refresh_family(&self, family: &str) -> Result<u64>;
    /// Whether a token of the family was rotated after `at`: then a token retired at `at` is
    /// no longer the one just rotated.
    async fn refresh_family_rotated_after(&self, family: &str, at: Millis) -> Result<bool>;
    /// Records that a (non-rotating) token was exchanged at `now`.
    async fn touch_refresh_token(&self, token_sha256: &[u8], now: Millis) -> Result<()>;

    // --- revoked grants: what a replayed authorization code issued, refused until `until`
    /// Records a grant as revoked until `until` (the end of the longest token it may have
    /// issued); recording it again keeps the later end.
    async fn revoke_grant(&self, grant_id: &str, until: Millis) -> Result<()>;
    /// Every grant still revoked at `now` (few: only replayed codes put them here).
    async fn revoked_grants(&self, now: Millis) -> Result<Vec<String>>;

    // --- brute-force accounting, per (user, ip)
    /// Adds one failure and returns the new count. A window older than `window_start` is
    /// restarted rather than extended.
    async fn record_failure(&self, user_id: &str, ip: &str, now: Millis, window_start: Millis) -> Result<FailureCount>;
    async fn failures(&self, user_id: &str, ip: &str) -> Result<Option<FailureCount>>;
    /// Clears one pair, or every pair of the user when `ip` is `None` (password change).
    async fn clear_failures(&self, user_id: &str, ip: Option<&str>) -> Result<()>;

    // --- rate limits shared by every node (reset mails per user and per address, …)
    /// Counts one hit on `key` and returns the hits of its current window, this one included.
    /// A window lasts `window_ms` from its first hit; a hit after it starts a new one.
    async fn count_hit(&self, key: &str, now: Millis, window_ms: Millis) -> Result<i64>;

    // --- password-reset tickets
    async fn put_password_ticket(&self, ticket: &PasswordTicket) -> Result<()>;
    /// The ticket stored under this digest, unless it has expired.
    async fn password_ticket(&self, ticket_sha256: &[u8], now: Millis) -> Result<Option<PasswordTicket>>;
    /// Stores a user's new password (the whole record, as [`update_user`](Store::update_user)
    /// does, with its errors) and, in the same transaction, ends everything the old password
    /// opened: the user's reset tickets and SSO sessions are deleted, their refresh tokens
    /// revoked and their brute-force counters cleared. Either all of it happens or none.
    async fn change_password(&self, user: &StoredUser) -> Result<()>;

    // --- opaque documents for later features (actions, bindings, jobs)
    async fn put_document(&self, kind: &str, id: &str, doc: &serde_json::Value) -> Result<()>;
    async fn document(&self, kind: &str, id: &str) -> Result<Option<serde_json::Value>>;
    async fn documents(&self, kind: &str) -> Result<Vec<serde_json::Value>>;
    async fn delete_document(&self, kind: &str, id: &str) -> Result<bool>;

    /// Deletes expired transactions, codes, sessions, refresh tokens, reset tickets, rate
    /// windows and grant revocations; returns rows removed.
    async fn purge_expired(&self, now: Millis) -> Result<u64>;

    /// The tenant log (`logs.rs`), kept by the same database.
    fn logs(&self) -> &dyn LogStore;
}
