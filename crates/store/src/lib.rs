//! Persistence for the identity provider: the [`Store`] trait, the records it keeps
//! ([`model`]), and [`SqlStore`], its implementation for SQLite and PostgreSQL.
//!
//! This crate owns schemas, migrations and SQL. It knows nothing of HTTP, OAuth or Auth0's
//! wire formats: the idp shapes grants and requests as JSON values and the store keeps them.
//! Everything a login needs between two requests lives here, so idp nodes sharing one
//! PostgreSQL database are interchangeable.

pub mod cache;
pub mod logs;
pub mod mail;
pub mod model;
pub mod search;
mod sql;

pub use cache::CachedStore;
pub use logs::{LogEvent, LogStore, LogStream, LogStreamConfig};
pub use mail::MailStore;
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
    /// With `enable_on_connections`, the client joins every connection's `enabled_clients` in
    /// the same transaction (Auth0's default for a new application).
    async fn create_client(&self, client: &StoredClient, enable_on_connections: bool) -> Result<()>;
    /// Deletes a client and, in the same transaction, what names it: its client grants, its
    /// place in connections' `enabled_clients`, and its refresh tokens (revoked).
    async fn delete_client(&self, client_id: &str) -> Result<bool>;

    // --- connections (names are unique)
    async fn connection(&self, id: &str) -> Result<Option<Connection>>;
    async fn connection_by_name(&self, name: &str) -> Result<Option<Connection>>;
    async fn connections(&self) -> Result<Vec<Connection>>;
    async fn put_connection(&self, connection: &Connection) -> Result<()>;
    /// Deletes the connection and, in the same transaction, its users (by the connection's
    /// name), as Auth0 does: an account must not outlive its connection, or one recreated under
    /// the same name would log someone into it. How many users went; `None` when there was no
    /// such connection. The users' tickets, sessions and refresh tokens end with them, and so
    /// do the links of the connection's identities linked into other users.
    async fn delete_connection(&self, id: &str) -> Result<Option<u64>>;

    // --- resource servers (identifiers are unique)
    async fn resource_server(&self, id: &str) -> Result<Option<ResourceServer>>;
    async fn resource_server_by_identifier(&self, identifier: &str) -> Result<Option<ResourceServer>>;
    async fn resource_servers(&self) -> Result<Vec<ResourceServer>>;
    async fn put_resource_server(&self, rs: &ResourceServer) -> Result<()>;
    /// Deletes an API and, in the same transaction, the client grants for its audience.
    async fn delete_resource_server(&self, id: &str) -> Result<bool>;

    // --- client grants ((client_id, audience) is unique)
    async fn client_grant(&self, id: &str) -> Result<Option<ClientGrant>>;
    async fn client_grant_for(&self, client_id: &str, audience: &str) -> Result<Option<ClientGrant>>;
    async fn client_grants(&self) -> Result<Vec<ClientGrant>>;
    async fn put_client_grant(&self, grant: &ClientGrant) -> Result<()>;
    async fn delete_client_grant(&self, id: &str) -> Result<bool>;

    // --- roles and permissions (RBAC). A permission is a scope of an API; roles hold
    // permissions, users hold roles and permissions of their own. A write that names a role, a
    // user or a permission checks, in its transaction, that it exists (`NotFound` naming it,
    // and nothing written); adding what is already there changes nothing. Deleting a role, a
    // user, an API or one of an API's scopes (`put_resource_server` without it) removes what
    // hangs on it in the same transaction.
    async fn role(&self, id: &str) -> Result<Option<Role>>;
    /// Roles whose name contains `name_filter` (case-insensitively), by name.
    async fn roles(&self, name_filter: Option<&str>, page: Page) -> Result<Paged<Role>>;
    /// Fails with `Conflict` when the id or the name is taken.
    async fn create_role(&self, role: &Role) -> Result<()>;
    /// `NotFound` when absent, `Conflict` when the new name is another role's.
    async fn update_role(&self, role: &Role) -> Result<()>;
    async fn delete_role(&self, id: &str) -> Result<bool>;
    /// A role's permissions by API and name; `NotFound` when there is no such role.
    async fn role_permissions(&self, role_id: &str, page: Page) -> Result<Paged<Permission>>;
    async fn add_role_permissions(&self, role_id: &str, permissions: &[Permission]) -> Result<()>;
    async fn remove_role_permissions(&self, role_id: &str, permissions: &[Permission]) -> Result<()>;
    /// The role's users by `user_id`, from the first id after `after` (checkpoint paging) or
    /// at `page.offset`; `NotFound` when there is no such role.
    async fn role_users(&self, role_id: &str, after: Option<&str>, page: Page) -> Result<Paged<User>>;
    /// The user's roles by name; `NotFound` when there is no such user.
    async fn user_roles(&self, user_id: &str, page: Page) -> Result<Paged<Role>>;
    /// Gives every one of `user_ids` every one of `role_ids` (the API sends one of either).
    async fn assign_roles(&self, user_ids: &[String], role_ids: &[String]) -> Result<()>;
    async fn unassign_roles(&self, user_id: &str, role_ids: &[String]) -> Result<()>;
    /// Every permission the user holds with why, by API and name (a permission held twice
    /// appears twice); `NotFound` when there is no such user.
    async fn user_permission_sources(&self, user_id: &str) -> Result<Vec<(Permission, PermissionSource)>>;
    async fn add_user_permissions(&self, user_id: &str, permissions: &[Permission]) -> Result<()>;
    async fn remove_user_permissions(&self, user_id: &str, permissions: &[Permission]) -> Result<()>;
    /// The names of the scopes of the API `resource_server` the user holds, directly or
    /// through roles, sorted: one indexed query (the token endpoint asks it per token).
    async fn permissions_for(&self, user_id: &str, resource_server: &str) -> Result<Vec<String>>;
    /// The names of the user's roles, sorted (post-login Actions' `event.authorization.roles`).
    async fn role_names_of(&self, user_id: &str) -> Result<Vec<String>>;

    // --- console administrators (kept apart from the tenant: no Management API reaches them)
    /// The console role (`full`, `read-only`) of the user `user_id`, if it is an administrator.
    async fn console_admin_role(&self, user_id: &str) -> Result<Option<String>>;
    /// Makes `user_id` (an existing user) an administrator with `role`, or changes its role.
    async fn put_console_admin(&self, user_id: &str, role: &str, now: Millis) -> Result<()>;
    /// How many administrators there are (the first `up` creates one when there are none).
    async fn console_admin_count(&self) -> Result<u64>;

    // --- users
    async fn user(&self, user_id: &str) -> Result<Option<StoredUser>>;
    /// Finds a user of one connection by email or username, case-insensitively.
    async fn user_by_login(&self, connection: &str, login: &str) -> Result<Option<StoredUser>>;
    /// Fails with `Conflict` when the id, or the email within the connection, is taken.
    async fn create_user(&self, user: &StoredUser) -> Result<()>;
    /// Replaces the document and hash; `NotFound` when absent, `Conflict` on a taken email.
    async fn update_user(&self, user: &StoredUser) -> Result<()>;
    /// Removes the user and, in the same transaction, ends what it held (reset tickets, SSO
    /// sessions, refresh tokens, its federated issuer), so a user created again under the same
    /// id starts with none.
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

    // --- actions (drafts), their deployed versions and trigger bindings
    async fn action(&self, id: &str) -> Result<Option<StoredAction>>;
    /// Every draft, oldest first (by `created_at`, then id).
    async fn actions(&self) -> Result<Vec<StoredAction>>;
    /// Writes a draft and its sealed secrets in one statement.
    async fn put_action(&self, action: &StoredAction) -> Result<()>;
    async fn action_version(&self, id: &str) -> Result<Option<StoredActionVersion>>;
    /// The versions of an action, newest first.
    async fn action_versions(&self, action_id: &str) -> Result<Vec<StoredActionVersion>>;
    /// Deploys, in one transaction: replaces the draft (which points at the new version),
    /// adds the version, and deletes the oldest versions beyond the newest `keep` (never the
    /// one in force). `NotFound` when the action is gone; `Conflict` when its version number is
    /// taken (another deploy of the same draft won). Nothing is written unless all of it is.
    async fn deploy_action(&self, action: &StoredAction, version: &StoredActionVersion, keep: usize) -> Result<()>;
    /// Deletes an action with its versions and its bindings to every trigger, in one
    /// transaction; `false` when there was no such action.
    async fn delete_action(&self, id: &str) -> Result<bool>;
    /// A trigger's bindings in execution order.
    async fn trigger_bindings(&self, trigger: &str) -> Result<Vec<TriggerBinding>>;
    /// Replaces a trigger's bindings, all or none: `NotFound` (and the old list kept) when one
    /// names an action that does not exist.
    async fn put_trigger_bindings(&self, trigger: &str, bindings: &[TriggerBinding]) -> Result<()>;
    /// The triggers an action is bound to, by name.
    async fn action_triggers(&self, action_id: &str) -> Result<Vec<String>>;

    // --- users-import jobs
    /// Stores a new job with its users file; `Conflict` when the id is taken.
    async fn create_import_job(&self, job: &ImportJob, users_file: &str) -> Result<()>;
    async fn import_job(&self, id: &str) -> Result<Option<ImportJob>>;
    /// Every job, oldest first.
    async fn import_jobs(&self) -> Result<Vec<ImportJob>>;
    /// The uploaded file of a job that has not ended (it may hold passwords: it goes with the
    /// job's end).
    async fn import_job_file(&self, id: &str) -> Result<Option<String>>;
    async fn import_job_errors(&self, id: &str) -> Result<Vec<ImportRowError>>;
    /// Saves a job's progress and, with `errors`, replaces its row errors in the same
    /// transaction; a job that has [ended](JobStatus::ended) loses its users file in it too.
    /// `false` (nothing written) when the job is gone.
    async fn save_import_job(&self, job: &ImportJob, errors: Option<&[ImportRowError]>) -> Result<bool>;
    /// Replaces the job only while its heartbeat is still `seen_heartbeat`: of the nodes that
    /// found it cut off at once, exactly one takes it over (`true`).
    async fn claim_import_job(&self, job: &ImportJob, seen_heartbeat: Millis) -> Result<bool>;
    /// Deletes a job with its file and errors.
    async fn delete_import_job(&self, id: &str) -> Result<bool>;

    // --- federated login: the state of each trip upstream, and the issuer of each user
    /// Stores the state of a trip upstream; `Conflict` when its digest is taken.
    async fn put_federated_state(&self, state: &FederatedState) -> Result<()>;
    /// Consumes a state atomically: the first caller gets `Fresh`, every later one `Reused`;
    /// an expired or unknown state is `Unknown`.
    async fn redeem_federated_state(&self, state_sha256: &[u8], now: Millis) -> Result<StateRedemption>;
    async fn federated_issuer(&self, user_id: &str) -> Result<Option<FederatedIssuer>>;
    async fn put_federated_issuer(&self, issuer: &FederatedIssuer) -> Result<()>;
    /// Forgets a user's issuer: its next federated login records the issuer it comes from.
    async fn delete_federated_issuer(&self, user_id: &str) -> Result<bool>;

    // --- the Action claims /userinfo returns, by a key the idp derives from (client, user)
    async fn userinfo_claims(&self, key: &str) -> Result<Option<UserinfoClaims>>;
    async fn put_userinfo_claims(&self, key: &str, claims: &UserinfoClaims) -> Result<()>;
    async fn delete_userinfo_claims(&self, key: &str) -> Result<bool>;

    // --- a user's lifecycle: what they hold, listed and ended by user; consent grants;
    // identities linked into another user
    /// The user's live SSO sessions, by id.
    async fn user_sessions(&self, user_id: &str, now: Millis) -> Result<Vec<SsoSession>>;
    /// Ends every SSO session of the user; how many there were.
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64>;
    /// The user's refresh tokens that may still be exchanged, one per family (its newest),
    /// by family.
    async fn user_refresh_tokens(&self, user_id: &str, now: Millis) -> Result<Vec<RefreshToken>>;
    /// The newest token of a family that may still be exchanged.
    async fn live_refresh_family(&self, family: &str, now: Millis) -> Result<Option<RefreshToken>>;
    /// Revokes every refresh token of the user; how many were not revoked yet.
    async fn revoke_user_refresh_tokens(&self, user_id: &str) -> Result<u64>;
    /// The user's brute-force counters, one per address, by address.
    async fn user_failures(&self, user_id: &str) -> Result<Vec<AddressFailures>>;
    /// Records a consent grant; one for the same user, client and audience keeps its id and
    /// takes the new scope. `NotFound` when the user or client is gone.
    async fn put_user_grant(&self, grant: &UserGrant) -> Result<()>;
    async fn user_grant(&self, id: &str) -> Result<Option<UserGrant>>;
    /// Grants matching `filter`, by id, and how many match in all.
    async fn user_grants(&self, filter: &GrantFilter, page: Page) -> Result<Paged<UserGrant>>;
    /// Deletes a grant and, in the same transaction, revokes the refresh-token `families`
    /// issued under it; `false` when there was no such grant.
    async fn delete_user_grant(&self, id: &str, families: &[String]) -> Result<bool>;
    /// Deletes every grant of the user and revokes all their refresh tokens, in one
    /// transaction; how many grants went.
    async fn delete_user_grants(&self, user_id: &str) -> Result<u64>;
    /// A database identity linked into another user, by its login name (email or username,
    /// case-insensitively) in `connection`.
    async fn linked_login(&self, connection: &str, login: &str) -> Result<Option<LinkedLogin>>;
    /// The user an identity (`provider`, the identity's `user_id`) is linked into, if any.
    async fn linked_identity_owner(&self, provider: &str, identity_id: &str) -> Result<Option<String>>;
    /// Links an identity into `primary` (the record as it is to be stored, the identity in its
    /// `identities`), in one transaction: the secondary user `secondary_user_id` goes, with
    /// what it held, and the identity is recorded as the primary's. `Conflict` when the
    /// identity is already linked; `NotFound` when either user is gone; nothing written then.
    /// The link keeps the secondary's login names and password hash
    /// ([`linked_login`](Store::linked_login)).
    async fn link_identity(
        &self,
        primary: &StoredUser,
        secondary_user_id: &str,
        provider: &str,
        identity_id: &str,
    ) -> Result<()>;
    /// Unlinks an identity from `primary` (the record as it is to be stored, the identity gone
    /// from it) and creates `restored`, its user again (with the password hash the link kept),
    /// in one transaction. `NotFound` when the identity is not linked into `primary`;
    /// `Conflict` when `restored`'s id is taken.
    async fn unlink_identity(
        &self,
        primary: &StoredUser,
        provider: &str,
        identity_id: &str,
        restored: &StoredUser,
    ) -> Result<()>;

    /// Deletes expired transactions, codes, federated states, sessions, refresh tokens, reset
    /// tickets, rate windows and grant revocations; returns rows removed.
    async fn purge_expired(&self, now: Millis) -> Result<u64>;

    /// The tenant log (`logs.rs`), kept by the same database.
    fn logs(&self) -> &dyn LogStore;
    /// The mail queue, email provider and templates (`mail.rs`), kept by the same database.
    fn mail(&self) -> &dyn MailStore;
}
