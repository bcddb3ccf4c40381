//! [`CachedStore`]: a [`Store`] that also answers the hot read-only paths (`/oauth/token`,
//! `/userinfo`) from memory: the tenant's configuration (settings, clients, APIs, client grants)
//! users with the Action claims of their latest logins, and the revoked grants, which otherwise
//! cost a database round trip each on every request.
//!
//! Cached reads are opt-in (`cached_*`): the [`Store`] methods always read the database, so a
//! read-modify-write (a Management API PATCH) never starts from a stale copy. Every write goes
//! through this wrapper and drops what it changed once it has committed, so the node that made
//! a change serves it at once; a change made on another node is served once the entry is older
//! than the TTL (one second in the idp). A read that raced with a write must not put the old
//! value back: each fill remembers the epoch it started in and is dropped when an invalidation
//! came meanwhile.

use crate::model::*;
use crate::search::{UserPage, UserSearch};
use crate::{Result, Store};
use async_trait::async_trait;
use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

/// Past this many entries a map starts over. Clients, APIs and grants are looked up by what a
/// caller sends, so only the ones that exist are kept: made-up ids neither grow the maps nor
/// push the real entries out. Users and `/userinfo` claims are looked up by the claims of a
/// token this idp signed, so their misses are kept too (most users have no Action claims).
const MAX_ENTRIES: usize = 4096;

pub struct CachedStore {
    inner: Arc<dyn Store>,
    ttl: Duration,
    /// Bumped, under the `maps` write lock, by every invalidation.
    epoch: AtomicU64,
    maps: RwLock<Maps>,
}

#[derive(Default)]
struct Maps {
    settings: Option<Entry<Arc<TenantSettings>>>,
    clients: HashMap<String, Read<StoredClient>>,
    apis: HashMap<String, Read<ResourceServer>>,
    /// By client id, then audience: a hit needs no owned key.
    grants: HashMap<String, HashMap<String, Read<ClientGrant>>>,
    // (The three above only ever hold `Some`; the `Option` keeps one fill path for all maps.)
    users: HashMap<String, Read<StoredUser>>,
    userinfo_claims: HashMap<String, Read<UserinfoClaims>>,
    /// Every grant revoked and not yet expired, read whole: one query a second per node
    /// whatever the number of tokens checked against it.
    revoked_grants: Option<Entry<Arc<HashSet<String>>>>,
}

impl Maps {
    fn clear_config(&mut self) {
        self.settings = None;
        self.clients.clear();
        self.apis.clear();
        self.grants.clear();
    }
}

struct Entry<T> {
    at: Instant,
    value: T,
}

/// What one read found (or that there was nothing), shared with every caller it is served to.
type Read<T> = Entry<Option<Arc<T>>>;

impl CachedStore {
    pub fn new(inner: Arc<dyn Store>, ttl: Duration) -> Self {
        CachedStore { inner, ttl, epoch: AtomicU64::new(0), maps: RwLock::default() }
    }

    pub async fn cached_tenant_settings(&self) -> Result<Arc<TenantSettings>> {
        if let Some(s) = self.fresh(|m| m.settings.as_ref()) {
            return Ok(s);
        }
        let epoch = self.epoch();
        let settings = Arc::new(self.inner.tenant_settings().await?);
        let entry = Entry { at: Instant::now(), value: settings.clone() };
        self.fill(epoch, |m| m.settings = Some(entry));
        Ok(settings)
    }

    pub async fn cached_client(&self, client_id: &str) -> Result<Option<Arc<StoredClient>>> {
        if let Some(c) = self.fresh(|m| m.clients.get(client_id)) {
            return Ok(c);
        }
        let epoch = self.epoch();
        let client = self.inner.client(client_id).await?.map(Arc::new);
        if client.is_some() {
            self.fill_map(epoch, |m| &mut m.clients, client_id.to_owned(), client.clone());
        }
        Ok(client)
    }

    pub async fn cached_resource_server_by_identifier(&self, identifier: &str) -> Result<Option<Arc<ResourceServer>>> {
        if let Some(rs) = self.fresh(|m| m.apis.get(identifier)) {
            return Ok(rs);
        }
        let epoch = self.epoch();
        let rs = self.inner.resource_server_by_identifier(identifier).await?.map(Arc::new);
        if rs.is_some() {
            self.fill_map(epoch, |m| &mut m.apis, identifier.to_owned(), rs.clone());
        }
        Ok(rs)
    }

    pub async fn cached_client_grant_for(&self, client_id: &str, audience: &str) -> Result<Option<Arc<ClientGrant>>> {
        if let Some(g) = self.fresh(|m| m.grants.get(client_id)?.get(audience)) {
            return Ok(g);
        }
        let epoch = self.epoch();
        let grant = self.inner.client_grant_for(client_id, audience).await?.map(Arc::new);
        if grant.is_some() {
            self.fill_map(
                epoch,
                |m| m.grants.entry(client_id.to_owned()).or_default(),
                audience.to_owned(),
                grant.clone(),
            );
        }
        Ok(grant)
    }

    pub async fn cached_user(&self, user_id: &str) -> Result<Option<Arc<StoredUser>>> {
        if let Some(u) = self.fresh(|m| m.users.get(user_id)) {
            return Ok(u);
        }
        let epoch = self.epoch();
        let user = self.inner.user(user_id).await?.map(Arc::new);
        self.fill_map(epoch, |m| &mut m.users, user_id.to_owned(), user.clone());
        Ok(user)
    }

    /// Like [`Store::revoked_grants`], as a set.
    pub async fn cached_revoked_grants(&self, now: Millis) -> Result<Arc<HashSet<String>>> {
        if let Some(set) = self.fresh(|m| m.revoked_grants.as_ref()) {
            return Ok(set);
        }
        let epoch = self.epoch();
        let set: Arc<HashSet<String>> = Arc::new(self.inner.revoked_grants(now).await?.into_iter().collect());
        let entry = Entry { at: Instant::now(), value: set.clone() };
        self.fill(epoch, |m| m.revoked_grants = Some(entry));
        Ok(set)
    }

    /// Like [`Store::userinfo_claims`].
    pub async fn cached_userinfo_claims(&self, key: &str) -> Result<Option<Arc<UserinfoClaims>>> {
        if let Some(c) = self.fresh(|m| m.userinfo_claims.get(key)) {
            return Ok(c);
        }
        let epoch = self.epoch();
        let claims = self.inner.userinfo_claims(key).await?.map(Arc::new);
        self.fill_map(epoch, |m| &mut m.userinfo_claims, key.to_owned(), claims.clone());
        Ok(claims)
    }

    fn forget_userinfo_claims(&self, key: &str) {
        self.invalidate(|m| {
            m.userinfo_claims.remove(key);
        });
    }

    fn epoch(&self) -> u64 {
        self.epoch.load(Ordering::Acquire)
    }

    /// The entry (a shared pointer) `get` finds, if it is younger than the TTL.
    fn fresh<T: Clone>(&self, get: impl FnOnce(&Maps) -> Option<&Entry<T>>) -> Option<T> {
        let maps = self.maps.read().unwrap_or_else(|e| e.into_inner());
        get(&maps).filter(|e| e.at.elapsed() < self.ttl).map(|e| e.value.clone())
    }

    /// Stores a value read from the database in `epoch`, unless an invalidation came since.
    fn fill(&self, epoch: u64, put: impl FnOnce(&mut Maps)) {
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        if self.epoch.load(Ordering::Acquire) == epoch {
            put(&mut maps);
        }
    }

    fn fill_map<K: Eq + Hash, V>(
        &self,
        epoch: u64,
        map: impl FnOnce(&mut Maps) -> &mut HashMap<K, Entry<V>>,
        key: K,
        value: V,
    ) {
        self.fill(epoch, |m| insert_bounded(map(m), key, Entry { at: Instant::now(), value }));
    }

    /// Drops what a write may have changed. Runs after the write, also when it failed: a failed
    /// write may still have committed before the error reached us.
    fn invalidate(&self, forget: impl FnOnce(&mut Maps)) {
        let mut maps = self.maps.write().unwrap_or_else(|e| e.into_inner());
        self.epoch.fetch_add(1, Ordering::AcqRel);
        forget(&mut maps);
    }

    fn forget_user(&self, user_id: &str) {
        self.invalidate(|m| {
            m.users.remove(user_id);
        });
    }
}

fn insert_bounded<K: Eq + Hash, V>(map: &mut HashMap<K, V>, key: K, value: V) {
    if map.len() >= MAX_ENTRIES {
        map.clear();
    }
    map.insert(key, value);
}

#[async_trait]
impl Store for CachedStore {
    async fn ping(&self) -> Result<()> {
        self.inner.ping().await
    }

    async fn tenant_settings(&self) -> Result<TenantSettings> {
        self.inner.tenant_settings().await
    }
    async fn put_tenant_settings(&self, settings: &TenantSettings) -> Result<()> {
        let result = self.inner.put_tenant_settings(settings).await;
        self.invalidate(Maps::clear_config);
        result
    }

    async fn client(&self, client_id: &str) -> Result<Option<StoredClient>> {
        self.inner.client(client_id).await
    }
    async fn clients(&self) -> Result<Vec<StoredClient>> {
        self.inner.clients().await
    }
    async fn put_client(&self, client: &StoredClient) -> Result<()> {
        let result = self.inner.put_client(client).await;
        self.invalidate(Maps::clear_config);
        result
    }
    async fn create_client(&self, client: &StoredClient, enable_on_connections: bool) -> Result<()> {
        let result = self.inner.create_client(client, enable_on_connections).await;
        self.invalidate(Maps::clear_config);
        result
    }
    async fn delete_client(&self, client_id: &str) -> Result<bool> {
        let result = self.inner.delete_client(client_id).await;
        self.invalidate(Maps::clear_config);
        result
    }

    async fn connection(&self, id: &str) -> Result<Option<Connection>> {
        self.inner.connection(id).await
    }
    async fn connection_by_name(&self, name: &str) -> Result<Option<Connection>> {
        self.inner.connection_by_name(name).await
    }
    async fn connections(&self) -> Result<Vec<Connection>> {
        self.inner.connections().await
    }
    async fn put_connection(&self, connection: &Connection) -> Result<()> {
        let result = self.inner.put_connection(connection).await;
        self.invalidate(Maps::clear_config);
        result
    }
    async fn delete_connection(&self, id: &str) -> Result<Option<u64>> {
        let result = self.inner.delete_connection(id).await;
        // The connection's users may go with it.
        self.invalidate(|m| {
            m.clear_config();
            m.users.clear();
        });
        result
    }

    async fn resource_server(&self, id: &str) -> Result<Option<ResourceServer>> {
        self.inner.resource_server(id).await
    }
    async fn resource_server_by_identifier(&self, identifier: &str) -> Result<Option<ResourceServer>> {
        self.inner.resource_server_by_identifier(identifier).await
    }
    async fn resource_servers(&self) -> Result<Vec<ResourceServer>> {
        self.inner.resource_servers().await
    }
    async fn put_resource_server(&self, rs: &ResourceServer) -> Result<()> {
        let result = self.inner.put_resource_server(rs).await;
        self.invalidate(Maps::clear_config);
        result
    }
    async fn delete_resource_server(&self, id: &str) -> Result<bool> {
        let result = self.inner.delete_resource_server(id).await;
        self.invalidate(Maps::clear_config);
        result
    }

    async fn client_grant(&self, id: &str) -> Result<Option<ClientGrant>> {
        self.inner.client_grant(id).await
    }
    async fn client_grant_for(&self, client_id: &str, audience: &str) -> Result<Option<ClientGrant>> {
        self.inner.client_grant_for(client_id, audience).await
    }
    async fn client_grants(&self) -> Result<Vec<ClientGrant>> {
        self.inner.client_grants().await
    }
    async fn put_client_grant(&self, grant: &ClientGrant) -> Result<()> {
        let result = self.inner.put_client_grant(grant).await;
        self.invalidate(Maps::clear_config);
        result
    }
    async fn delete_client_grant(&self, id: &str) -> Result<bool> {
        let result = self.inner.delete_client_grant(id).await;
        self.invalidate(Maps::clear_config);
        result
    }

    // Roles and permissions are read per token from the database (one indexed query), so
    // nothing of them is cached and their writes drop nothing.
    async fn role(&self, id: &str) -> Result<Option<Role>> {
        self.inner.role(id).await
    }
    async fn roles(&self, name_filter: Option<&str>, page: Page) -> Result<Paged<Role>> {
        self.inner.roles(name_filter, page).await
    }
    async fn create_role(&self, role: &Role) -> Result<()> {
        self.inner.create_role(role).await
    }
    async fn update_role(&self, role: &Role) -> Result<()> {
        self.inner.update_role(role).await
    }
    async fn delete_role(&self, id: &str) -> Result<bool> {
        self.inner.delete_role(id).await
    }
    async fn role_permissions(&self, role_id: &str, page: Page) -> Result<Paged<Permission>> {
        self.inner.role_permissions(role_id, page).await
    }
    async fn add_role_permissions(&self, role_id: &str, permissions: &[Permission]) -> Result<()> {
        self.inner.add_role_permissions(role_id, permissions).await
    }
    async fn remove_role_permissions(&self, role_id: &str, permissions: &[Permission]) -> Result<()> {
        self.inner.remove_role_permissions(role_id, permissions).await
    }
    async fn role_users(&self, role_id: &str, after: Option<&str>, page: Page) -> Result<Paged<User>> {
        self.inner.role_users(role_id, after, page).await
    }
    async fn user_roles(&self, user_id: &str, page: Page) -> Result<Paged<Role>> {
        self.inner.user_roles(user_id, page).await
    }
    async fn assign_roles(&self, user_ids: &[String], role_ids: &[String]) -> Result<()> {
        self.inner.assign_roles(user_ids, role_ids).await
    }
    async fn unassign_roles(&self, user_id: &str, role_ids: &[String]) -> Result<()> {
        self.inner.unassign_roles(user_id, role_ids).await
    }
    async fn user_permission_sources(&self, user_id: &str) -> Result<Vec<(Permission, PermissionSource)>> {
        self.inner.user_permission_sources(user_id).await
    }
    async fn add_user_permissions(&self, user_id: &str, permissions: &[Permission]) -> Result<()> {
        self.inner.add_user_permissions(user_id, permissions).await
    }
    async fn remove_user_permissions(&self, user_id: &str, permissions: &[Permission]) -> Result<()> {
        self.inner.remove_user_permissions(user_id, permissions).await
    }
    async fn permissions_for(&self, user_id: &str, resource_server: &str) -> Result<Vec<String>> {
        self.inner.permissions_for(user_id, resource_server).await
    }
    async fn role_names_of(&self, user_id: &str) -> Result<Vec<String>> {
        self.inner.role_names_of(user_id).await
    }
    async fn console_admin_role(&self, user_id: &str) -> Result<Option<String>> {
        self.inner.console_admin_role(user_id).await
    }
    async fn put_console_admin(&self, user_id: &str, role: &str, now: Millis) -> Result<()> {
        self.inner.put_console_admin(user_id, role, now).await
    }
    async fn console_admin_count(&self) -> Result<u64> {
        self.inner.console_admin_count().await
    }

    async fn user(&self, user_id: &str) -> Result<Option<StoredUser>> {
        self.inner.user(user_id).await
    }
    async fn user_by_login(&self, connection: &str, login: &str) -> Result<Option<StoredUser>> {
        self.inner.user_by_login(connection, login).await
    }
    async fn create_user(&self, user: &StoredUser) -> Result<()> {
        let result = self.inner.create_user(user).await;
        self.forget_user(&user.user.user_id);
        result
    }
    async fn update_user(&self, user: &StoredUser) -> Result<()> {
        let result = self.inner.update_user(user).await;
        self.forget_user(&user.user.user_id);
        result
    }
    async fn delete_user(&self, user_id: &str) -> Result<bool> {
        let result = self.inner.delete_user(user_id).await;
        self.forget_user(user_id);
        result
    }
    async fn record_login(&self, user_id: &str, at: Millis, ip: &str) -> Result<()> {
        let result = self.inner.record_login(user_id, at, ip).await;
        self.forget_user(user_id);
        result
    }
    async fn search_users(&self, search: &UserSearch) -> Result<UserPage> {
        self.inner.search_users(search).await
    }
    async fn signing_keys(&self) -> Result<Vec<SigningKey>> {
        self.inner.signing_keys().await
    }
    async fn add_signing_key(&self, key: &SigningKey) -> Result<()> {
        self.inner.add_signing_key(key).await
    }
    async fn replace_signing_key_secrets(&self, replacements: &[KeySecretReplacement]) -> Result<bool> {
        self.inner.replace_signing_key_secrets(replacements).await
    }
    async fn put_login_transaction(&self, tx: &LoginTransaction) -> Result<()> {
        self.inner.put_login_transaction(tx).await
    }
    async fn login_transaction(&self, id: &str, now: Millis) -> Result<Option<LoginTransaction>> {
        self.inner.login_transaction(id, now).await
    }
    async fn delete_login_transaction(&self, id: &str) -> Result<()> {
        self.inner.delete_login_transaction(id).await
    }
    async fn put_code(&self, code: &AuthCode) -> Result<()> {
        self.inner.put_code(code).await
    }
    async fn redeem_code(&self, code_sha256: &[u8], now: Millis) -> Result<CodeRedemption> {
        self.inner.redeem_code(code_sha256, now).await
    }
    async fn put_session(&self, session: &SsoSession) -> Result<()> {
        self.inner.put_session(session).await
    }
    async fn session(&self, id: &str, now: Millis) -> Result<Option<SsoSession>> {
        self.inner.session(id, now).await
    }
    async fn delete_session(&self, id: &str) -> Result<()> {
        self.inner.delete_session(id).await
    }
    async fn put_refresh_token(&self, token: &RefreshToken) -> Result<()> {
        self.inner.put_refresh_token(token).await
    }
    async fn refresh_token(&self, token_sha256: &[u8]) -> Result<Option<RefreshToken>> {
        self.inner.refresh_token(token_sha256).await
    }
    async fn rotate_refresh_token(&self, old_sha256: &[u8], now: Millis, new: &RefreshToken) -> Result<bool> {
        self.inner.rotate_refresh_token(old_sha256, now, new).await
    }
    async fn revoke_refresh_family(&self, family: &str) -> Result<u64> {
        self.inner.revoke_refresh_family(family).await
    }
    async fn refresh_family_rotated_after(&self, family: &str, at: Millis) -> Result<bool> {
        self.inner.refresh_family_rotated_after(family, at).await
    }
    async fn touch_refresh_token(&self, token_sha256: &[u8], now: Millis) -> Result<()> {
        self.inner.touch_refresh_token(token_sha256, now).await
    }
    async fn revoke_grant(&self, grant_id: &str, until: Millis) -> Result<()> {
        let result = self.inner.revoke_grant(grant_id, until).await;
        self.invalidate(|m| m.revoked_grants = None);
        result
    }
    async fn revoked_grants(&self, now: Millis) -> Result<Vec<String>> {
        self.inner.revoked_grants(now).await
    }
    async fn record_failure(&self, user_id: &str, ip: &str, now: Millis, window_start: Millis) -> Result<FailureCount> {
        self.inner.record_failure(user_id, ip, now, window_start).await
    }
    async fn failures(&self, user_id: &str, ip: &str) -> Result<Option<FailureCount>> {
        self.inner.failures(user_id, ip).await
    }
    async fn clear_failures(&self, user_id: &str, ip: Option<&str>) -> Result<()> {
        self.inner.clear_failures(user_id, ip).await
    }
    async fn count_hit(&self, key: &str, now: Millis, window_ms: Millis) -> Result<i64> {
        self.inner.count_hit(key, now, window_ms).await
    }
    async fn put_password_ticket(&self, ticket: &PasswordTicket) -> Result<()> {
        self.inner.put_password_ticket(ticket).await
    }
    async fn password_ticket(&self, ticket_sha256: &[u8], now: Millis) -> Result<Option<PasswordTicket>> {
        self.inner.password_ticket(ticket_sha256, now).await
    }
    async fn change_password(&self, user: &StoredUser) -> Result<()> {
        let result = self.inner.change_password(user).await;
        self.forget_user(&user.user.user_id);
        result
    }
    async fn action(&self, id: &str) -> Result<Option<StoredAction>> {
        self.inner.action(id).await
    }
    async fn actions(&self) -> Result<Vec<StoredAction>> {
        self.inner.actions().await
    }
    async fn put_action(&self, action: &StoredAction) -> Result<()> {
        self.inner.put_action(action).await
    }
    async fn action_version(&self, id: &str) -> Result<Option<StoredActionVersion>> {
        self.inner.action_version(id).await
    }
    async fn action_versions(&self, action_id: &str) -> Result<Vec<StoredActionVersion>> {
        self.inner.action_versions(action_id).await
    }
    async fn deploy_action(&self, action: &StoredAction, version: &StoredActionVersion, keep: usize) -> Result<()> {
        self.inner.deploy_action(action, version, keep).await
    }
    async fn delete_action(&self, id: &str) -> Result<bool> {
        self.inner.delete_action(id).await
    }
    async fn trigger_bindings(&self, trigger: &str) -> Result<Vec<TriggerBinding>> {
        self.inner.trigger_bindings(trigger).await
    }
    async fn put_trigger_bindings(&self, trigger: &str, bindings: &[TriggerBinding]) -> Result<()> {
        self.inner.put_trigger_bindings(trigger, bindings).await
    }
    async fn action_triggers(&self, action_id: &str) -> Result<Vec<String>> {
        self.inner.action_triggers(action_id).await
    }
    async fn create_import_job(&self, job: &ImportJob, users_file: &str) -> Result<()> {
        self.inner.create_import_job(job, users_file).await
    }
    async fn import_job(&self, id: &str) -> Result<Option<ImportJob>> {
        self.inner.import_job(id).await
    }
    async fn import_jobs(&self) -> Result<Vec<ImportJob>> {
        self.inner.import_jobs().await
    }
    async fn import_job_file(&self, id: &str) -> Result<Option<String>> {
        self.inner.import_job_file(id).await
    }
    async fn import_job_errors(&self, id: &str) -> Result<Vec<ImportRowError>> {
        self.inner.import_job_errors(id).await
    }
    async fn save_import_job(&self, job: &ImportJob, errors: Option<&[ImportRowError]>) -> Result<bool> {
        self.inner.save_import_job(job, errors).await
    }
    async fn claim_import_job(&self, job: &ImportJob, seen_heartbeat: Millis) -> Result<bool> {
        self.inner.claim_import_job(job, seen_heartbeat).await
    }
    async fn delete_import_job(&self, id: &str) -> Result<bool> {
        self.inner.delete_import_job(id).await
    }
    async fn put_federated_state(&self, state: &FederatedState) -> Result<()> {
        self.inner.put_federated_state(state).await
    }
    async fn redeem_federated_state(&self, state_sha256: &[u8], now: Millis) -> Result<StateRedemption> {
        self.inner.redeem_federated_state(state_sha256, now).await
    }
    async fn federated_issuer(&self, user_id: &str) -> Result<Option<FederatedIssuer>> {
        self.inner.federated_issuer(user_id).await
    }
    async fn put_federated_issuer(&self, issuer: &FederatedIssuer) -> Result<()> {
        self.inner.put_federated_issuer(issuer).await
    }
    async fn delete_federated_issuer(&self, user_id: &str) -> Result<bool> {
        self.inner.delete_federated_issuer(user_id).await
    }
    async fn userinfo_claims(&self, key: &str) -> Result<Option<UserinfoClaims>> {
        self.inner.userinfo_claims(key).await
    }
    async fn put_userinfo_claims(&self, key: &str, claims: &UserinfoClaims) -> Result<()> {
        let result = self.inner.put_userinfo_claims(key, claims).await;
        self.forget_userinfo_claims(key);
        result
    }
    async fn delete_userinfo_claims(&self, key: &str) -> Result<bool> {
        let result = self.inner.delete_userinfo_claims(key).await;
        self.forget_userinfo_claims(key);
        result
    }
    // A user's sessions, refresh tokens and grants are never cached: ending them here ends
    // them on every node at once. Linking changes two users.
    async fn user_sessions(&self, user_id: &str, now: Millis) -> Result<Vec<SsoSession>> {
        self.inner.user_sessions(user_id, now).await
    }
    async fn delete_user_sessions(&self, user_id: &str) -> Result<u64> {
        self.inner.delete_user_sessions(user_id).await
    }
    async fn user_refresh_tokens(&self, user_id: &str, now: Millis) -> Result<Vec<RefreshToken>> {
        self.inner.user_refresh_tokens(user_id, now).await
    }
    async fn live_refresh_family(&self, family: &str, now: Millis) -> Result<Option<RefreshToken>> {
        self.inner.live_refresh_family(family, now).await
    }
    async fn revoke_user_refresh_tokens(&self, user_id: &str) -> Result<u64> {
        self.inner.revoke_user_refresh_tokens(user_id).await
    }
    async fn user_failures(&self, user_id: &str) -> Result<Vec<AddressFailures>> {
        self.inner.user_failures(user_id).await
    }
    async fn put_user_grant(&self, grant: &UserGrant) -> Result<()> {
        self.inner.put_user_grant(grant).await
    }
    async fn user_grant(&self, id: &str) -> Result<Option<UserGrant>> {
        self.inner.user_grant(id).await
    }
    async fn user_grants(&self, filter: &GrantFilter, page: Page) -> Result<Paged<UserGrant>> {
        self.inner.user_grants(filter, page).await
    }
    async fn delete_user_grant(&self, id: &str, families: &[String]) -> Result<bool> {
        self.inner.delete_user_grant(id, families).await
    }
    async fn delete_user_grants(&self, user_id: &str) -> Result<u64> {
        self.inner.delete_user_grants(user_id).await
    }
    async fn linked_login(&self, connection: &str, login: &str) -> Result<Option<LinkedLogin>> {
        self.inner.linked_login(connection, login).await
    }
    async fn linked_identity_owner(&self, provider: &str, identity_id: &str) -> Result<Option<String>> {
        self.inner.linked_identity_owner(provider, identity_id).await
    }
    async fn link_identity(
        &self,
        primary: &StoredUser,
        secondary_user_id: &str,
        provider: &str,
        identity_id: &str,
    ) -> Result<()> {
        let result = self.inner.link_identity(primary, secondary_user_id, provider, identity_id).await;
        self.forget_user(&primary.user.user_id);
        self.forget_user(secondary_user_id);
        result
    }
    async fn unlink_identity(
        &self,
        primary: &StoredUser,
        provider: &str,
        identity_id: &str,
        restored: &StoredUser,
    ) -> Result<()> {
        let result = self.inner.unlink_identity(primary, provider, identity_id, restored).await;
        self.forget_user(&primary.user.user_id);
        self.forget_user(&restored.user.user_id);
        result
    }

    async fn purge_expired(&self, now: Millis) -> Result<u64> {
        self.inner.purge_expired(now).await
    }

    fn logs(&self) -> &dyn crate::LogStore {
        // Never cached: events are written in batches and searched by the Management API.
        self.inner.logs()
    }

    fn mail(&self) -> &dyn crate::MailStore {
        // Never cached: the queue is shared by every node's worker, and the provider and
        // templates are read once per message.
        self.inner.mail()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::SqlStore;
    use serde_json::json;

    const TTL: Duration = Duration::from_millis(200);

    fn client(id: &str, name: &str) -> StoredClient {
        let client = serde_json::from_value(json!({ "client_id": id, "name": name })).unwrap();
        StoredClient { client, secret_sha256: Some(vec![1; 32]) }
    }

    /// Two "nodes" over one SQLite file, each with its own cache.
    async fn two_nodes(tag: &str) -> (CachedStore, CachedStore, std::path::PathBuf) {
        let path = std::env::temp_dir().join(format!("gatehouse-cache-{tag}-{}.db", std::process::id()));
        let _ = std::fs::remove_file(&path);
        let url = format!("sqlite://{}", path.display());
        let node = |store: SqlStore| CachedStore::new(Arc::new(store), TTL);
        let a = node(SqlStore::connect(&url).await.unwrap());
        let b = node(SqlStore::connect(&url).await.unwrap());
        (a, b, path)
    }

    async fn name_on(node: &CachedStore) -> Option<String> {
        node.cached_client("c1").await.unwrap().map(|c| c.client.name.clone())
    }

    #[tokio::test]
    async fn a_write_is_served_at_once_on_its_node_and_within_the_ttl_on_the_others() {
        let (a, b, path) = two_nodes("writes").await;
        a.put_client(&client("c1", "first")).await.unwrap();
        assert_eq!(name_on(&b).await.as_deref(), Some("first"));

        a.put_client(&client("c1", "second")).await.unwrap();
        let changed = Instant::now();
        assert_eq!(name_on(&a).await.as_deref(), Some("second"), "at once on the node that wrote");
        assert_eq!(name_on(&b).await.as_deref(), Some("first"), "B serves its cached copy");
        // Polls, since only the TTL tells B; it must not take much longer than the TTL.
        while name_on(&b).await.as_deref() != Some("second") {
            assert!(changed.elapsed() < TTL * 5, "B never saw the change");
            tokio::time::sleep(TTL / 10).await;
        }

        assert!(a.delete_client("c1").await.unwrap());
        assert_eq!(name_on(&a).await, None);
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn unknown_clients_are_not_cached() {
        let (a, b, path) = two_nodes("unknown").await;
        assert_eq!(name_on(&a).await, None);
        b.put_client(&client("c1", "made on B")).await.unwrap();
        assert_eq!(name_on(&a).await.as_deref(), Some("made on B"), "a miss is asked again");
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn plain_reads_never_come_from_the_cache() {
        let (a, b, path) = two_nodes("plain").await;
        a.put_client(&client("c1", "first")).await.unwrap();
        assert_eq!(name_on(&b).await.as_deref(), Some("first"));
        a.put_client(&client("c1", "second")).await.unwrap();
        assert_eq!(b.client("c1").await.unwrap().unwrap().client.name, "second");
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn linking_and_unlinking_drop_both_users() {
        let (a, _b, path) = two_nodes("linking").await;
        let user = |id: &str, provider: &str| {
            let (_, sub) = id.split_once('|').unwrap();
            let identity = Identity {
                connection: provider.into(),
                provider: provider.into(),
                user_id: sub.into(),
                is_social: false,
                profile_data: None,
            };
            StoredUser { user: User::new(id.into(), provider.into(), identity, 1), password_hash: None }
        };
        let (primary, secondary) = (user("auth0|p", "auth0"), user("google-oauth2|s", "google-oauth2"));
        a.create_user(&primary).await.unwrap();
        a.create_user(&secondary).await.unwrap();
        assert!(a.cached_user("google-oauth2|s").await.unwrap().is_some());
        assert_eq!(a.cached_user("auth0|p").await.unwrap().unwrap().user.identities.len(), 1);
        let mut linked = primary.clone();
        linked.user.identities.push(secondary.user.identities[0].clone());
        a.link_identity(&linked, "google-oauth2|s", "google-oauth2", "s").await.unwrap();
        assert!(a.cached_user("google-oauth2|s").await.unwrap().is_none(), "the secondary is gone at once");
        assert_eq!(a.cached_user("auth0|p").await.unwrap().unwrap().user.identities.len(), 2);
        a.unlink_identity(&primary, "google-oauth2", "s", &secondary).await.unwrap();
        assert!(a.cached_user("google-oauth2|s").await.unwrap().is_some(), "back at once");
        assert_eq!(a.cached_user("auth0|p").await.unwrap().unwrap().user.identities.len(), 1);
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn user_and_userinfo_claims_writes_drop_their_entries() {
        let (a, _b, path) = two_nodes("users").await;
        let user: User = serde_json::from_value(json!({
            "user_id": "auth0|1", "connection": "db", "email": "a@example.test",
            "created_at": 1, "updated_at": 1
        }))
        .unwrap();
        let mut stored = StoredUser { user, password_hash: None };
        assert!(a.cached_user("auth0|1").await.unwrap().is_none());
        a.create_user(&stored).await.unwrap();
        assert!(a.cached_user("auth0|1").await.unwrap().is_some());
        stored.user.blocked = true;
        a.update_user(&stored).await.unwrap();
        assert!(a.cached_user("auth0|1").await.unwrap().unwrap().user.blocked);

        assert!(a.cached_userinfo_claims("k").await.unwrap().is_none());
        let claims = UserinfoClaims { claims: json!({ "x": 1 }).as_object().unwrap().clone(), updated_at: 5 };
        a.put_userinfo_claims("k", &claims).await.unwrap();
        assert_eq!(a.cached_userinfo_claims("k").await.unwrap(), Some(Arc::new(claims)));
        assert!(a.delete_userinfo_claims("k").await.unwrap());
        assert!(a.cached_userinfo_claims("k").await.unwrap().is_none());
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn deleting_a_connections_users_drops_them_from_the_cache() {
        let (a, _b, path) = two_nodes("connection_users").await;
        let corp: Connection =
            serde_json::from_value(json!({"id": "con_corp", "name": "corp", "strategy": "oidc"})).unwrap();
        a.put_connection(&corp).await.unwrap();
        let user: User = serde_json::from_value(json!({
            "user_id": "oidc|corp|1", "connection": "corp", "created_at": 1, "updated_at": 1
        }))
        .unwrap();
        a.create_user(&StoredUser { user, password_hash: None }).await.unwrap();
        assert!(a.cached_user("oidc|corp|1").await.unwrap().is_some());
        assert_eq!(a.delete_connection("con_corp").await.unwrap(), Some(1));
        assert!(a.cached_user("oidc|corp|1").await.unwrap().is_none(), "not served from the cache");
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn a_revoked_grant_is_seen_at_once_on_its_node_and_within_the_ttl_on_the_others() {
        let (a, b, path) = two_nodes("revoked").await;
        assert!(b.cached_revoked_grants(0).await.unwrap().is_empty());
        a.revoke_grant("g1", i64::MAX).await.unwrap();
        let revoked = Instant::now();
        assert!(a.cached_revoked_grants(0).await.unwrap().contains("g1"), "at once on the node that wrote");
        while !b.cached_revoked_grants(0).await.unwrap().contains("g1") {
            assert!(revoked.elapsed() < TTL * 5, "B never saw the revocation");
            tokio::time::sleep(TTL / 10).await;
        }
        let _ = std::fs::remove_file(path);
    }

    #[tokio::test]
    async fn a_fill_that_raced_with_an_invalidation_is_dropped() {
        let (a, _b, path) = two_nodes("race").await;
        let epoch = a.epoch();
        a.invalidate(Maps::clear_config);
        a.fill_map(epoch, |m| &mut m.clients, "c1".to_owned(), Some(Arc::new(client("c1", "stale"))));
        assert!(a.fresh(|m| m.clients.get("c1")).is_none());
        let _ = std::fs::remove_file(path);
    }

    #[test]
    fn maps_stay_bounded() {
        let mut map = HashMap::new();
        for i in 0..MAX_ENTRIES * 3 {
            insert_bounded(&mut map, i, ());
        }
        assert!(map.len() <= MAX_ENTRIES);
    }
}
