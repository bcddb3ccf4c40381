//! The records the store keeps. Configuration records (clients, connections, APIs, grants,
//! tenant settings, users) are serde documents in Auth0's own field names, so the Management
//! API can return them as they are; fields the idp does not interpret ride along in `extra`.
//! Secrets (client-secret digests, password hashes) are never part of a document.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Milliseconds since the Unix epoch; every stored instant uses it.
pub type Millis = i64;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct TenantSettings {
    #[serde(skip_serializing_if = "Option::is_none")]
    pub friendly_name: Option<String>,
    pub allowed_logout_urls: Vec<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_audience: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub default_directory: Option<String>,
    /// Hours an SSO session lives at most (Auth0's `session_lifetime`, default 168).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session_lifetime: Option<f64>,
    /// Hours an SSO session lives without activity (Auth0's `idle_session_lifetime`, default 72).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub idle_session_lifetime: Option<f64>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct JwtConfiguration {
    #[serde(default = "default_alg")]
    pub alg: String,
    #[serde(default = "default_id_token_lifetime")]
    pub lifetime_in_seconds: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_alg() -> String {
    "RS256".into()
}
fn default_id_token_lifetime() -> i64 {
    36000
}

impl Default for JwtConfiguration {
    fn default() -> Self {
        Self { alg: default_alg(), lifetime_in_seconds: default_id_token_lifetime(), extra: Map::new() }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RefreshTokenPolicy {
    /// `rotating` or `non-rotating`.
    pub rotation_type: String,
    /// `expiring` or `non-expiring`.
    pub expiration_type: String,
    pub leeway: i64,
    pub token_lifetime: i64,
    pub idle_token_lifetime: i64,
    pub infinite_token_lifetime: bool,
    pub infinite_idle_token_lifetime: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Default for RefreshTokenPolicy {
    fn default() -> Self {
        Self {
            rotation_type: "non-rotating".into(),
            expiration_type: "non-expiring".into(),
            leeway: 0,
            token_lifetime: 2_592_000,
            idle_token_lifetime: 1_296_000,
            infinite_token_lifetime: true,
            infinite_idle_token_lifetime: true,
            extra: Map::new(),
        }
    }
}

impl RefreshTokenPolicy {
    pub fn rotating(&self) -> bool {
        self.rotation_type == "rotating"
    }

    /// Whether a token retired at `rotated_at` may still be exchanged at `now` (a retry of a
    /// lost answer) rather than taken as stolen. No leeway tolerates nothing, not even a reuse
    /// in the same millisecond.
    pub fn within_leeway(&self, rotated_at: Millis, now: Millis) -> bool {
        self.leeway > 0 && now - rotated_at <= self.leeway * 1000
    }
}

/// An application (Auth0 "client").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Client {
    pub client_id: String,
    pub name: String,
    /// `regular_web`, `non_interactive`, `spa`, `native`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_type: Option<String>,
    #[serde(default)]
    pub callbacks: Vec<String>,
    #[serde(default)]
    pub allowed_origins: Vec<String>,
    #[serde(default)]
    pub web_origins: Vec<String>,
    #[serde(default)]
    pub allowed_logout_urls: Vec<String>,
    #[serde(default)]
    pub grant_types: Vec<String>,
    /// `none`, `client_secret_post` or `client_secret_basic`.
    #[serde(default = "default_auth_method")]
    pub token_endpoint_auth_method: String,
    #[serde(default)]
    pub jwt_configuration: JwtConfiguration,
    #[serde(default)]
    pub refresh_token: RefreshTokenPolicy,
    #[serde(default = "yes")]
    pub is_first_party: bool,
    #[serde(default = "yes")]
    pub oidc_conformant: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_auth_method() -> String {
    "client_secret_post".into()
}
fn yes() -> bool {
    true
}

impl Client {
    pub fn allows_grant(&self, grant_type: &str) -> bool {
        self.grant_types.iter().any(|g| g == grant_type)
    }
}

/// A client as stored: the document plus the SHA-256 digest of its secret.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredClient {
    pub client: Client,
    pub secret_sha256: Option<Vec<u8>>,
}

/// A connection (database, social or enterprise).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Connection {
    /// `con_` + 16 alphanumerics.
    pub id: String,
    pub name: String,
    /// `auth0`, `google-oauth2`, `oidc`, …
    pub strategy: String,
    #[serde(default)]
    pub options: Map<String, Value>,
    #[serde(default)]
    pub enabled_clients: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default)]
    pub realms: Vec<String>,
    #[serde(default)]
    pub is_domain_connection: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl Connection {
    pub fn is_database(&self) -> bool {
        self.strategy == "auth0"
    }
    pub fn signup_disabled(&self) -> bool {
        self.options.get("disable_signup").and_then(Value::as_bool).unwrap_or(false)
    }
    pub fn enabled_for(&self, client_id: &str) -> bool {
        self.enabled_clients.iter().any(|c| c == client_id)
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Scope {
    pub value: String,
    #[serde(default)]
    pub description: String,
}

/// An API (Auth0 "resource server").
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ResourceServer {
    /// 24 hex characters.
    pub id: String,
    pub name: String,
    /// The audience.
    pub identifier: String,
    #[serde(default)]
    pub scopes: Vec<Scope>,
    #[serde(default = "default_rs_alg")]
    pub signing_alg: String,
    #[serde(default = "default_access_token_lifetime")]
    pub token_lifetime: i64,
    #[serde(default = "default_web_lifetime")]
    pub token_lifetime_for_web: i64,
    #[serde(default)]
    pub allow_offline_access: bool,
    #[serde(default)]
    pub skip_consent_for_verifiable_first_party_clients: bool,
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub is_system: bool,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

fn default_rs_alg() -> String {
    "RS256".into()
}
fn default_access_token_lifetime() -> i64 {
    86400
}
fn default_web_lifetime() -> i64 {
    7200
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ClientGrant {
    /// `cgr_` + 16 alphanumerics.
    pub id: String,
    pub client_id: String,
    pub audience: String,
    #[serde(default)]
    pub scope: Vec<String>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Identity {
    pub connection: String,
    pub provider: String,
    pub user_id: String,
    #[serde(rename = "isSocial")]
    pub is_social: bool,
    /// The profile a linked (secondary) identity brought along; the main identity has none.
    #[serde(default, rename = "profileData", skip_serializing_if = "Option::is_none")]
    pub profile_data: Option<Map<String, Value>>,
}

/// A user document. Timestamps are milliseconds; the wire formats them as ISO strings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct User {
    pub user_id: String,
    pub connection: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    #[serde(default)]
    pub email_verified: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub phone_number: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nickname: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub given_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub picture: Option<String>,
    #[serde(default)]
    pub app_metadata: Map<String, Value>,
    #[serde(default)]
    pub user_metadata: Map<String, Value>,
    #[serde(default)]
    pub identities: Vec<Identity>,
    #[serde(default)]
    pub blocked: bool,
    pub created_at: Millis,
    pub updated_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_login: Option<Millis>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_ip: Option<String>,
    #[serde(default)]
    pub logins_count: i64,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

impl User {
    /// A user as it is at creation: its id, connection and one identity, created and updated
    /// `now`, with no profile, metadata or logins yet.
    pub fn new(user_id: String, connection: String, identity: Identity, now: Millis) -> Self {
        User {
            user_id,
            connection,
            email: None,
            email_verified: false,
            username: None,
            phone_number: None,
            name: None,
            nickname: None,
            given_name: None,
            family_name: None,
            picture: None,
            app_metadata: Map::new(),
            user_metadata: Map::new(),
            identities: vec![identity],
            blocked: false,
            created_at: now,
            updated_at: now,
            last_login: None,
            last_ip: None,
            logins_count: 0,
            extra: Map::new(),
        }
    }
}

/// A user as stored: the document plus its password hash (bcrypt in Auth0's `$2a$`/`$2b$`
/// format, or argon2 PHC), kept out of the document so it can never be serialised by mistake.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredUser {
    pub user: User,
    pub password_hash: Option<String>,
}

/// An RSA signing key.
#[derive(Debug, Clone, PartialEq)]
pub struct SigningKey {
    pub kid: String,
    /// The private key as the idp stores it: sealed (the store never sees it in clear), or
    /// PKCS#8 DER in databases written before sealing.
    pub private_pkcs8: Vec<u8>,
    /// DER of a self-signed certificate for the key (the JWKS `x5c`).
    pub cert_der: Vec<u8>,
    pub created_at: Millis,
    /// The key new tokens are signed with; exactly one key is current.
    pub current: bool,
    /// Set when a key was rotated out; it stays published until tokens it signed expire.
    pub rotated_at: Option<Millis>,
    pub revoked_at: Option<Millis>,
}

/// One key of [`Store::replace_signing_key_secrets`](crate::Store::replace_signing_key_secrets).
#[derive(Debug, Clone, PartialEq)]
pub struct KeySecretReplacement {
    pub kid: String,
    pub old: Vec<u8>,
    pub new: Vec<u8>,
}

/// A pending `/authorize` request waiting for the user to sign in.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LoginTransaction {
    pub id: String,
    /// The validated authorization request, as the idp shapes it.
    pub request: Value,
    /// Anti-CSRF token the login form must echo.
    pub csrf: String,
    pub expires_at: Millis,
}

/// An issued authorization code (stored by its SHA-256 digest, never in clear).
#[derive(Debug, Clone, PartialEq)]
pub struct AuthCode {
    pub code_sha256: Vec<u8>,
    /// What the code grants, as the idp shapes it.
    pub grant: Value,
    pub expires_at: Millis,
}

/// The result of presenting a code: it is consumed exactly once.
#[derive(Debug, Clone, PartialEq)]
pub enum CodeRedemption {
    /// First use: here is what it grants.
    Fresh(Value),
    /// Presented again: the grant it carried, so tokens issued from it can be revoked.
    Reused(Value),
    Unknown,
}

/// An SSO session (the idp's cookie points at it).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct SsoSession {
    pub id: String,
    pub user_id: String,
    pub auth_time: Millis,
    pub last_seen: Millis,
    pub expires_at: Millis,
    #[serde(default)]
    pub clients: Vec<String>,
}

/// A refresh token (stored by SHA-256 digest). Tokens that descend from one login share a
/// `family`; reuse of a rotated token revokes the family.
#[derive(Debug, Clone, PartialEq)]
pub struct RefreshToken {
    pub token_sha256: Vec<u8>,
    pub family: String,
    pub client_id: String,
    pub user_id: String,
    /// What the token grants (scopes, audience, session), as the idp shapes it.
    pub grant: Value,
    pub created_at: Millis,
    /// Absolute end of the family (does not move on rotation); `None` for non-expiring.
    pub expires_at: Option<Millis>,
    /// When it was exchanged for a successor (rotating clients only).
    pub rotated_at: Option<Millis>,
    pub revoked: bool,
    /// When a non-rotating token was last exchanged, for its idle lifetime. Recorded at most
    /// once a minute, so an exchange rarely pays a write; a rotating token's birth is its use.
    pub last_used_at: Option<Millis>,
}

/// Failed-login accounting for one (user, ip) pair.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FailureCount {
    pub failures: i64,
    pub first_at: Millis,
}

/// A password-reset ticket: the link of a reset mail, stored by the SHA-256 digest of its value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswordTicket {
    pub ticket_sha256: Vec<u8>,
    pub user_id: String,
    pub expires_at: Millis,
}

// --- Actions: drafts, deployed versions and trigger bindings, in Auth0's field names.

/// A trigger an action supports (`post-login` / `v3`, …).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerRef {
    pub id: String,
    #[serde(default)]
    pub version: String,
}

/// A secret's name and when its value last changed; the sealed value is kept next to the
/// record ([`SealedSecrets`]), never in it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SecretName {
    pub name: String,
    #[serde(default)]
    pub updated_at: String,
}

/// An action's draft. Instants are ISO strings, as the Management API shows them.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Action {
    pub id: String,
    pub name: String,
    pub supported_triggers: Vec<TriggerRef>,
    #[serde(default)]
    pub code: String,
    #[serde(default)]
    pub dependencies: Vec<Value>,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub secrets: Vec<SecretName>,
    /// `built` or `failed` (empty in records an older build wrote).
    #[serde(default)]
    pub status: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub build_error: Option<String>,
    #[serde(default)]
    pub created_at: String,
    #[serde(default)]
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_at: Option<String>,
    /// The id of the version in force.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub deployed_version: Option<String>,
    /// Number of the latest version.
    #[serde(default)]
    pub versions: u64,
}

/// An immutable deployed snapshot of a draft.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ActionVersion {
    pub id: String,
    pub action_id: String,
    pub number: u64,
    pub code: String,
    #[serde(default)]
    pub dependencies: Vec<Value>,
    #[serde(default)]
    pub runtime: String,
    #[serde(default)]
    pub supported_triggers: Vec<TriggerRef>,
    #[serde(default)]
    pub secrets: Vec<SecretName>,
    pub created_at: String,
    pub updated_at: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub built_at: Option<String>,
}

/// Secret values by name, each sealed by the idp (the store never sees them in clear).
pub type SealedSecrets = std::collections::BTreeMap<String, String>;

/// A draft as stored: the record plus its sealed secret values.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAction {
    pub action: Action,
    pub secrets: SealedSecrets,
}

/// A version as stored: the record plus the sealed secret values it was deployed with.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredActionVersion {
    pub version: ActionVersion,
    pub secrets: SealedSecrets,
}

/// One action bound to a trigger; a trigger's bindings run in their stored order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TriggerBinding {
    pub id: String,
    pub action_id: String,
    pub display_name: String,
    pub created_at: String,
    pub updated_at: String,
}

// --- Users-import jobs

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum JobStatus {
    Pending,
    Processing,
    Completed,
    Failed,
}

impl JobStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            JobStatus::Pending => "pending",
            JobStatus::Processing => "processing",
            JobStatus::Completed => "completed",
            JobStatus::Failed => "failed",
        }
    }

    /// Completed or failed: nothing more will run.
    pub fn ended(self) -> bool {
        matches!(self, JobStatus::Completed | JobStatus::Failed)
    }
}

/// What a users-import job did so far.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImportSummary {
    pub inserted: u64,
    pub updated: u64,
    pub failed: u64,
    pub total: u64,
}

/// A users-import job: what the Management API shows, and the state a node needs to run it,
/// resume it after a crash, or tell that another node is running it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportJob {
    /// `job_` + 16 alphanumerics.
    pub id: String,
    pub connection_id: String,
    /// The connection's name.
    pub connection: String,
    pub status: JobStatus,
    pub created_at: Millis,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub external_id: Option<String>,
    pub upsert: bool,
    pub send_completion_email: bool,
    /// Last sign of life of the node running it; a stale heartbeat means it was cut off.
    pub heartbeat: Millis,
    /// Runs started, the first included.
    pub attempts: u64,
    /// Rows before this index are done (checkpointed).
    #[serde(default)]
    pub next_row: u64,
    /// Counts at the last checkpoint; `None` until the first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub summary: Option<ImportSummary>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub percentage_done: Option<u64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub time_left_seconds: Option<u64>,
    /// Why a failed job failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status_details: Option<String>,
}

/// One rejected row of an import: the row as written (less any password) and Auth0's error
/// objects for it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ImportRowError {
    /// The row's index in the file.
    pub index: u64,
    pub user: Value,
    pub errors: Vec<Value>,
}

// --- Federated login

/// The idp's half of one trip to an upstream identity provider, stored by the SHA-256 digest
/// of the `state` sent upstream and redeemed once by the callback, on any node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedState {
    pub state_sha256: Vec<u8>,
    /// The login transaction the trip belongs to.
    pub login_transaction: String,
    /// The connection's name.
    pub connection: String,
    pub nonce: String,
    /// The PKCE code verifier.
    pub code_verifier: String,
    /// Digest of the browser-binding cookie, as the idp encodes it.
    pub binding_digest: String,
    pub expires_at: Millis,
}

/// The result of presenting an upstream state: it is consumed exactly once.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StateRedemption {
    Fresh(FederatedState),
    /// Presented again (a replayed callback).
    Reused,
    /// Never issued, or expired.
    Unknown,
}

/// The upstream issuer a federated user was created from (kept out of the user document,
/// which the Management API shows as it is).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FederatedIssuer {
    pub user_id: String,
    /// The connection's name.
    pub connection: String,
    pub issuer: String,
}

/// The ID-token custom claims the latest login of a user at a client got from Actions, for
/// `/userinfo`. Kept under a key the idp derives from the pair.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct UserinfoClaims {
    pub claims: Map<String, Value>,
    pub updated_at: Millis,
}
/// A role (Auth0's RBAC): a named set of permissions that users are assigned. Names are unique.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// `rol_` + 16 alphanumerics.
    pub id: String,
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A permission: one scope (`permission_name`) of one API (`resource_server_identifier`), held
/// by a role or directly by a user.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub struct Permission {
    pub resource_server_identifier: String,
    pub permission_name: String,
}

/// Why a user holds a permission: directly, or through one of their roles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PermissionSource {
    Direct,
    Role { id: String, name: String },
}

/// A page of a list: skip `offset` entries, return at most `limit`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Page {
    pub offset: u64,
    pub limit: u64,
}

/// One page of a list and how many entries the whole list has.
#[derive(Debug, Clone, PartialEq)]
pub struct Paged<T> {
    pub items: Vec<T>,
    pub total: u64,
}

// --- User lifecycle: consent grants, linked identities

/// What a user let a client have for an audience (Auth0's user "grant"), recorded at login;
/// `(user_id, client_id, audience)` is unique.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserGrant {
    /// `grt_` + 16 alphanumerics.
    pub id: String,
    pub user_id: String,
    pub client_id: String,
    pub audience: String,
    pub scope: Vec<String>,
    pub created_at: Millis,
}

/// Which grants a listing wants; every given field must match.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct GrantFilter {
    pub user_id: Option<String>,
    pub client_id: Option<String>,
    pub audience: Option<String>,
}

/// The failed logins counted for a user from one address (brute-force protection).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFailures {
    pub ip: String,
    pub count: FailureCount,
}

/// A database identity linked into another user, found by its login name: the user it signs
/// in as, and its own password hash.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkedLogin {
    pub primary_user_id: String,
    pub password_hash: Option<String>,
}
