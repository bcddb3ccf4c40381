//! Provisioning a store from a tenant file (auth0-deploy-cli YAML) and a users file (Auth0's
//! bulk-import JSON). Idempotent: records are matched as deploy-cli matches them (clients and
//! connections by name, APIs by identifier, grants by client and audience) and keep their ids,
//! so importing the same files twice changes nothing. Existing users are left alone: after the
//! first start they belong to the application (passwords changed, groups edited).

use crate::accounts::password::{TOO_LONG, check_for};
use crate::accounts::signup::looks_like_email;
use crate::util::{now_ms, random_alnum, random_hex, random_secret, sha256};
use crate::{AppState, Error, Result};
use serde_json::{Map, Value, json};
use store::{Connection, ResourceServer, Scope, StoredClient, StoredUser, User};
use tenant::{ImportPassword, ImportUser, TenantFile, UserImport};

pub use crate::grants::scopes::MANAGEMENT_SCOPES;

/// What the import did that the operator must hear about once.
#[derive(Debug, Default)]
pub struct TenantReport {
    /// (client name, client_id, client_secret) of clients created with generated credentials.
    pub generated_credentials: Vec<(String, String, String)>,
}

#[derive(Debug, Default)]
pub struct UsersReport {
    pub created: usize,
    pub existing: usize,
    /// (row index, message)
    pub errors: Vec<(usize, String)>,
}

/// The Management API's own resource server, which every Auth0 tenant has.
pub async fn ensure_management_api(idp: &AppState) -> Result<()> {
    let identifier = idp.config.management_audience();
    let existing = idp.store.resource_server_by_identifier(&identifier).await?;
    let rs = ResourceServer {
        id: existing.as_ref().map(|r| r.id.clone()).unwrap_or_else(|| random_hex(24)),
        name: "Auth0 Management API".into(),
        identifier,
        scopes: MANAGEMENT_SCOPES.iter().map(|s| Scope { value: (*s).into(), description: String::new() }).collect(),
        signing_alg: "RS256".into(),
        token_lifetime: 86400,
        token_lifetime_for_web: 7200,
        allow_offline_access: false,
        skip_consent_for_verifiable_first_party_clients: false,
        is_system: true,
        extra: Default::default(),
    };
    if existing.as_ref() != Some(&rs) {
        idp.store.put_resource_server(&rs).await?;
    }
    Ok(())
}

pub async fn apply_tenant(idp: &AppState, file: &TenantFile) -> Result<TenantReport> {
    let store = &idp.store;
    let mut report = TenantReport::default();
    // Federated connections' options are checked before anything is written, so a bad one
    // leaves the tenant as it was.
    for spec in file.all_connections() {
        let connection = spec.to_connection("con_check", &[]).map_err(|e| Error::internal(e.to_string()))?;
        if crate::flow::federated::Strategy::of(&connection).is_some() {
            crate::flow::federated::validate_options(&connection, &idp.config.google_discovery_url)
                .map_err(|e| Error::internal(format!("connection {}: {e}", connection.name)))?;
        }
    }
    ensure_management_api(idp).await?;
    let mut settings = store.tenant_settings().await?;
    let mut wanted = file.tenant.clone();
    // Keys the file does not mention keep their stored values.
    for (k, v) in std::mem::take(&mut settings.extra) {
        wanted.extra.entry(k).or_insert(v);
    }
    if wanted != settings {
        store.put_tenant_settings(&wanted).await?;
    }

    let existing = store.clients().await?;
    for spec in &file.clients {
        let found = existing
            .iter()
            .find(|c| Some(&c.client.client_id) == spec.client_id.as_ref() || c.client.name == spec.name);
        let client_id = spec
            .client_id
            .clone()
            .or_else(|| found.map(|c| c.client.client_id.clone()))
            .unwrap_or_else(|| random_alnum(32));
        let client = spec.to_client(&client_id).map_err(|e| Error::internal(e.to_string()))?;
        let public = client.token_endpoint_auth_method == "none";
        let secret_sha256 = match (&spec.client_secret, found) {
            (Some(secret), _) => Some(sha256(secret.as_bytes())),
            (None, Some(f)) if f.client.client_id == client_id => f.secret_sha256.clone(),
            (None, _) if public => None,
            (None, _) => {
                let secret = random_secret();
                report.generated_credentials.push((client.name.clone(), client_id.clone(), secret.clone()));
                Some(sha256(secret.as_bytes()))
            }
        };
        let stored = StoredClient { client, secret_sha256 };
        if found != Some(&stored) {
            store.put_client(&stored).await?;
        }
    }
    let clients = store.clients().await?;
    let client_id_of = |name: &str| {
        clients
            .iter()
            .find(|c| c.client.name == name || c.client.client_id == name)
            .map(|c| c.client.client_id.clone())
            .ok_or_else(|| Error::internal(format!("tenant file names an unknown client: {name}")))
    };

    for spec in &file.resource_servers {
        let found = store.resource_server_by_identifier(&spec.identifier).await?;
        let id = found.as_ref().map(|r| r.id.clone()).unwrap_or_else(|| random_hex(24));
        let rs = spec.to_resource_server(&id).map_err(|e| Error::internal(e.to_string()))?;
        if found.as_ref() != Some(&rs) {
            store.put_resource_server(&rs).await?;
        }
    }

    for spec in file.all_connections() {
        let found = store.connection_by_name(&spec.name).await?;
        let id = found.as_ref().map(|c| c.id.clone()).unwrap_or_else(|| format!("con_{}", random_alnum(16)));
        let enabled = spec.enabled_client_names().iter().map(|n| client_id_of(n)).collect::<Result<Vec<_>>>()?;
        let mut connection = spec.to_connection(&id, &enabled).map_err(|e| Error::internal(e.to_string()))?;
        connection_defaults(&mut connection);
        if found.as_ref() != Some(&connection) {
            store.put_connection(&connection).await?;
        }
    }

    for spec in &file.client_grants {
        let client_id = client_id_of(&spec.client_name)?;
        let found = store.client_grant_for(&client_id, &spec.audience).await?;
        let id = found.as_ref().map(|g| g.id.clone()).unwrap_or_else(|| format!("cgr_{}", random_alnum(16)));
        let grant = spec.to_client_grant(&id, &client_id).map_err(|e| Error::internal(e.to_string()))?;
        if found.as_ref() != Some(&grant) {
            store.put_client_grant(&grant).await?;
        }
    }

    apply_actions(idp, file).await?;
    Ok(report)
}

/// What Auth0 stores for a new database connection when its options leave these out. Both
/// `POST /api/v2/connections` and [`apply_tenant`] apply them, so a connection is the same
/// whichever created it (and so is an export of it). Options given are kept.
pub(crate) fn connection_defaults(connection: &mut Connection) {
    if !connection.is_database() {
        return;
    }
    let o = &mut connection.options;
    o.entry("passwordPolicy").or_insert(json!("good"));
    o.entry("brute_force_protection").or_insert(json!(true));
    o.entry("strategy_version").or_insert(json!(2));
    o.entry("mfa").or_insert(json!({"active": true, "return_enroll_settings": true}));
}

/// Actions as deploy-cli imports them, through `crate::actions` so the documents are the ones
/// the Management API writes: a draft is created or changed only when it differs from the file
/// (secret values compared decrypted), deployed when the file says `deployed: true` and the
/// version in force lacks the draft's changes, and each trigger's bindings are replaced. A
/// draft to deploy that does not build stops the import with the build error; the version in
/// force, if any, stays in force.
async fn apply_actions(idp: &AppState, file: &TenantFile) -> Result<()> {
    use crate::actions::{self as flow, BindingRef, DraftChange, SecretInput, TriggerRef};
    let existing = flow::all_actions(idp).await?;
    for spec in &file.actions {
        let triggers: Vec<TriggerRef> = spec
            .supported_triggers
            .iter()
            .map(|t| TriggerRef { id: t.id.clone(), version: t.version.clone() })
            .collect();
        let dependencies: Vec<Value> =
            spec.dependencies.iter().map(|d| json!({"name": d.name, "version": d.version})).collect();
        let wanted: Map<String, Value> = spec.secrets.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let change = DraftChange {
            name: Some(spec.name.clone()),
            supported_triggers: Some(triggers.clone()),
            code: Some(spec.code.clone()),
            dependencies: Some(dependencies.clone()),
            runtime: Some(spec.runtime.clone()),
            secrets: Some(
                spec.secrets.iter().map(|(k, v)| SecretInput { name: k.clone(), value: Some(v.clone()) }).collect(),
            ),
        };
        let action = match existing.iter().find(|a| a.name == spec.name) {
            None => flow::create(idp, change).await?,
            Some(a) => {
                let same = a.status == "built"
                    && a.code == spec.code
                    && a.runtime == spec.runtime
                    && a.dependencies == dependencies
                    && a.supported_triggers == triggers
                    && a.secrets.iter().map(|s| &s.name).eq(spec.secrets.iter().map(|(k, _)| k))
                    // Values stored by an older build (or under another key) count as changed.
                    && flow::draft_secrets(idp, a).await.ok().as_ref() == Some(&wanted);
                if same { a.clone() } else { flow::update(idp, a.clone(), change).await? }
            }
        };
        if !spec.deployed {
            continue;
        }
        if action.status != "built" {
            return Err(Error::internal(format!(
                "action {}: the build failed: {}",
                action.name,
                action.build_error.as_deref().unwrap_or("unknown error")
            )));
        }
        let in_force = match &action.deployed_version {
            Some(v) => flow::version(idp, v).await?,
            None => None,
        };
        if !flow::all_changes_deployed(&action, in_force.as_ref()) {
            flow::deploy(idp, action).await?;
        }
    }
    for (trigger, bindings) in &file.triggers {
        let refs = bindings
            .iter()
            .map(|b| (BindingRef::ActionName(b.action_name.clone()), Some(b.display_name.clone())))
            .collect();
        flow::set_bindings(idp, trigger, refs).await?;
    }
    Ok(())
}

/// Creates the users of an import file that the connection does not have yet.
pub async fn import_users(idp: &AppState, connection: &str, import: &UserImport) -> Result<UsersReport> {
    let conn = idp.store.connection_by_name(connection).await?.filter(|c| c.is_database()).ok_or_else(|| {
        Error::internal(format!("users connection {connection} is not a database connection of this tenant"))
    })?;
    let mut report = UsersReport {
        errors: import.errors.iter().map(|e| (e.index, e.message.clone())).collect(),
        ..Default::default()
    };
    for row in &import.rows {
        let mode = ImportMode { upsert: None, new_id: random_hex(24), resumed: false };
        match import_user(idp, &conn, row, &mode).await? {
            Imported::Inserted | Imported::Updated => report.created += 1,
            Imported::Existing => report.existing += 1,
            Imported::Failed(f) => report.errors.push((row.index, f.message)),
        }
    }
    Ok(report)
}

/// How one row of a users file is imported (the startup users file and import jobs alike).
pub(crate) struct ImportMode<'a> {
    /// `Some(row as written)`: an existing user is updated with the upsertable attributes the
    /// row names (Auth0's `upsert=true`); `None`: an existing user is left alone.
    pub upsert: Option<&'a Map<String, Value>>,
    /// The `auth0|`-less id a new user gets when the row has no `user_id`.
    pub new_id: String,
    /// The import was interrupted and runs again: a user that already has exactly the id this
    /// row gets was written by the interrupted run, and counts as inserted.
    pub resumed: bool,
}

/// What importing one row did.
#[derive(Debug)]
pub(crate) enum Imported {
    Inserted,
    Updated,
    /// The connection has a user with this email and the import does not update users.
    Existing,
    Failed(RowFailure),
}

/// Why one row was not imported, in the shape of an Auth0 job error.
#[derive(Debug)]
pub(crate) struct RowFailure {
    pub code: &'static str,
    pub message: String,
    pub path: &'static str,
}

fn failed(code: &'static str, path: &'static str, message: impl Into<String>) -> Imported {
    Imported::Failed(RowFailure { code, message: message.into(), path })
}

/// Attributes an upsert changes on an existing user (Auth0's list; metadata is replaced
/// wholesale, not merged).
const UPSERTABLE_NAMES: [&str; 5] = ["given_name", "family_name", "name", "nickname", "picture"];

/// Imports one validated row into a database connection: one store write per user, so a row
/// is either fully written or not at all. Users are matched by email within the connection.
pub(crate) async fn import_user(
    idp: &AppState,
    conn: &Connection,
    row: &ImportUser,
    mode: &ImportMode<'_>,
) -> Result<Imported> {
    let email = row.email.trim().to_lowercase();
    if !looks_like_email(&email) {
        return Ok(failed("INVALID_FORMAT", "email", format!("invalid email {}", row.email)));
    }
    let user_id = match &row.user_id {
        Some(id) if id.starts_with("auth0|") => id.clone(),
        Some(id) => format!("auth0|{id}"),
        None => format!("auth0|{}", mode.new_id),
    };
    let existing = idp
        .store
        .user_by_login(&conn.name, &email)
        .await?
        .filter(|u| u.user.email.as_deref().is_some_and(|e| e.eq_ignore_ascii_case(&email)));
    if let Some(mut stored) = existing {
        if mode.resumed && stored.user.user_id == user_id {
            return Ok(Imported::Inserted);
        }
        let Some(raw) = mode.upsert else { return Ok(Imported::Existing) };
        let user = &mut stored.user;
        if raw.contains_key("app_metadata") {
            user.app_metadata = row.app_metadata.clone();
        }
        if raw.contains_key("user_metadata") {
            user.user_metadata = row.user_metadata.clone();
        }
        if raw.contains_key("email_verified") {
            user.email_verified = row.email_verified;
        }
        if raw.contains_key("blocked") {
            user.blocked = row.blocked;
        }
        for key in UPSERTABLE_NAMES {
            if raw.contains_key(key) {
                let (slot, value) = match key {
                    "given_name" => (&mut user.given_name, &row.given_name),
                    "family_name" => (&mut user.family_name, &row.family_name),
                    "name" => (&mut user.name, &row.name),
                    "nickname" => (&mut user.nickname, &row.nickname),
                    _ => (&mut user.picture, &row.picture),
                };
                *slot = value.clone();
            }
        }
        // Only `custom_password_hash` replaces a password on upsert; `password_hash` (and
        // Gatehouse's plain `password`) count on the first import only, as in Auth0.
        if let Some(custom @ ImportPassword::Custom(_)) = &row.password {
            match custom.stored_hash() {
                Some(h) if h.starts_with("$2") => stored.password_hash = Some(h.to_string()),
                _ => return Ok(unsupported_hash()),
            }
        }
        if let Some(too_large) = metadata_too_large(idp, &stored.user) {
            return Ok(too_large);
        }
        stored.user.updated_at = now_ms();
        return match idp.store.update_user(&stored).await {
            Ok(()) => Ok(Imported::Updated),
            Err(store::Error::Conflict(what)) => Ok(failed("CONFLICT", "", format!("{what} already exists"))),
            Err(e) => Err(e.into()),
        };
    }
    let hash = match &row.password {
        // Plain text is Gatehouse's extension: it meets the connection's policy as any other
        // new password does, reported per user as Auth0's import reports each row's errors.
        Some(ImportPassword::Plain(p)) => match check_for(conn, p) {
            Ok(()) => Some(idp.hash_password(p).await?),
            Err(why) => {
                let code = if why == TOO_LONG { "MAX_LENGTH" } else { "INVALID_PASSWORD" };
                return Ok(failed(code, "password", format!("PasswordStrengthError: {why}")));
            }
        },
        Some(other) => match other.stored_hash() {
            Some(h) if h.starts_with("$2") => Some(h.to_string()),
            _ => return Ok(unsupported_hash()),
        },
        None => None,
    };
    let mut user = row.to_user(&user_id, &conn.name, now_ms());
    user.email = Some(email.clone());
    let defaults = crate::accounts::signup::new_user(&conn.name, &email, |_| {});
    user.name = user.name.or(defaults.name);
    user.nickname = user.nickname.or(defaults.nickname);
    user.picture = user.picture.or(defaults.picture);
    if let Some(too_large) = metadata_too_large(idp, &user) {
        return Ok(too_large);
    }
    match idp.store.create_user(&StoredUser { user, password_hash: hash }).await {
        Ok(()) => Ok(Imported::Inserted),
        Err(store::Error::Conflict(what)) => Ok(failed("CONFLICT", "user_id", format!("{what} already exists"))),
        Err(e) => Err(e.into()),
    }
}

/// The row's user over Auth0's bound on metadata, as that row's error (named after the larger
/// of the two objects).
fn metadata_too_large(idp: &AppState, user: &User) -> Option<Imported> {
    let e = crate::metadata::check(user, idp.config.metadata_limit_bytes).err()?;
    let size = |m: &Map<String, Value>| serde_json::to_string(m).map_or(0, |t| t.len());
    let path = if size(&user.app_metadata) >= size(&user.user_metadata) { "app_metadata" } else { "user_metadata" };
    Some(failed("MAX_LENGTH", path, e.to_string()))
}

fn unsupported_hash() -> Imported {
    failed("ENUM_MISMATCH", "custom_password_hash.algorithm", "password hash algorithm not supported yet (bcrypt only)")
}
