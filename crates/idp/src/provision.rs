//! Provisioning a store from a tenant file (auth0-deploy-cli YAML) and a users file (Auth0's
//! bulk-import JSON). Idempotent: records are matched as deploy-cli matches them (clients and
//! connections by name, APIs by identifier, grants by client and audience) and keep their ids,
//! so importing the same files twice changes nothing. Existing users are left alone: after the
//! first start they belong to the application (passwords changed, groups edited).

use crate::dbconnections::looks_like_email;
use crate::util::{now_ms, random_alnum, random_hex, random_secret, sha256};
use crate::{AppState, Error, Result};
use serde_json::{Value, json};
use store::{ResourceServer, Scope, StoredClient, StoredUser};
use tenant::{ImportPassword, TenantFile, UserImport};

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
        let connection = spec.to_connection(&id, &enabled).map_err(|e| Error::internal(e.to_string()))?;
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

/// Actions are kept as documents until the Actions runtime lands: the code, its settings and
/// secret names; secret values apart, never part of what a listing returns.
async fn apply_actions(idp: &AppState, file: &TenantFile) -> Result<()> {
    let store = &idp.store;
    let existing = store.documents("action").await?;
    for spec in &file.actions {
        let found = existing.iter().find(|a| a.get("name").and_then(Value::as_str) == Some(&spec.name));
        let id = found.and_then(|a| a.get("id")).and_then(Value::as_str).map(str::to_owned).unwrap_or_else(uuid_like);
        let doc = json!({
            "id": id,
            "name": spec.name,
            "code": spec.code,
            "runtime": spec.runtime,
            "dependencies": spec.dependencies.iter().map(|d| json!({"name": d.name, "version": d.version})).collect::<Vec<_>>(),
            "supported_triggers": spec.supported_triggers.iter().map(|t| json!({"id": t.id, "version": t.version})).collect::<Vec<_>>(),
            "secrets": spec.secrets.iter().map(|(name, _)| json!({"name": name})).collect::<Vec<_>>(),
            "deployed": spec.deployed,
        });
        if found != Some(&doc) {
            store.put_document("action", &id, &doc).await?;
        }
        let secrets: serde_json::Map<String, Value> = spec.secrets.iter().map(|(k, v)| (k.clone(), json!(v))).collect();
        let secrets = Value::Object(secrets);
        if store.document("action_secrets", &id).await?.as_ref() != Some(&secrets) {
            store.put_document("action_secrets", &id, &secrets).await?;
        }
    }
    for (trigger, bindings) in &file.triggers {
        let doc = json!(
            bindings
                .iter()
                .map(|b| json!({"action_name": b.action_name, "display_name": b.display_name}))
                .collect::<Vec<_>>()
        );
        if store.document("trigger_bindings", trigger).await?.as_ref() != Some(&doc) {
            store.put_document("trigger_bindings", trigger, &doc).await?;
        }
    }
    Ok(())
}

fn uuid_like() -> String {
    let h = random_hex(32);
    format!("{}-{}-4{}-a{}-{}", &h[..8], &h[8..12], &h[13..16], &h[17..20], &h[20..32])
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
        if !looks_like_email(&row.email) {
            report.errors.push((row.index, format!("invalid email {}", row.email)));
            continue;
        }
        if idp.store.user_by_login(&conn.name, &row.email).await?.is_some() {
            report.existing += 1;
            continue;
        }
        let hash = match &row.password {
            Some(ImportPassword::Plain(p)) => Some(idp.hash_password(p).await?),
            Some(other) => match other.stored_hash() {
                Some(h) if h.starts_with("$2") => Some(h.to_string()),
                _ => {
                    report.errors.push((row.index, "password hash algorithm not supported yet (bcrypt only)".into()));
                    continue;
                }
            },
            None => None,
        };
        let user_id = match &row.user_id {
            Some(id) if id.starts_with("auth0|") => id.clone(),
            Some(id) => format!("auth0|{id}"),
            None => format!("auth0|{}", random_hex(24)),
        };
        let mut user = row.to_user(&user_id, &conn.name, now_ms());
        let defaults = crate::dbconnections::new_user(&conn.name, &row.email, |_| {});
        user.name = user.name.or(defaults.name);
        user.nickname = user.nickname.or(defaults.nickname);
        user.picture = user.picture.or(defaults.picture);
        match idp.store.create_user(&StoredUser { user, password_hash: hash }).await {
            Ok(()) => report.created += 1,
            Err(store::Error::Conflict(what)) => report.errors.push((row.index, format!("{what} already exists"))),
            Err(e) => return Err(e.into()),
        }
    }
    Ok(report)
}

/// The Management API scopes of an Auth0 tenant (the subset Gatehouse's API serves grows with it).
pub const MANAGEMENT_SCOPES: &[&str] = &[
    "read:client_grants",
    "create:client_grants",
    "delete:client_grants",
    "update:client_grants",
    "read:users",
    "update:users",
    "delete:users",
    "create:users",
    "read:users_app_metadata",
    "update:users_app_metadata",
    "delete:users_app_metadata",
    "create:users_app_metadata",
    "read:user_custom_blocks",
    "create:user_custom_blocks",
    "delete:user_custom_blocks",
    "create:user_tickets",
    "read:clients",
    "update:clients",
    "delete:clients",
    "create:clients",
    "read:client_keys",
    "update:client_keys",
    "delete:client_keys",
    "create:client_keys",
    "read:connections",
    "update:connections",
    "delete:connections",
    "create:connections",
    "read:resource_servers",
    "update:resource_servers",
    "delete:resource_servers",
    "create:resource_servers",
    "read:device_credentials",
    "update:device_credentials",
    "delete:device_credentials",
    "create:device_credentials",
    "read:rules",
    "update:rules",
    "delete:rules",
    "create:rules",
    "read:rules_configs",
    "update:rules_configs",
    "delete:rules_configs",
    "read:hooks",
    "update:hooks",
    "delete:hooks",
    "create:hooks",
    "read:actions",
    "update:actions",
    "delete:actions",
    "create:actions",
    "read:email_provider",
    "update:email_provider",
    "delete:email_provider",
    "create:email_provider",
    "blacklist:tokens",
    "read:stats",
    "read:insights",
    "read:tenant_settings",
    "update:tenant_settings",
    "read:logs",
    "read:logs_users",
    "read:shields",
    "create:shields",
    "update:shields",
    "delete:shields",
    "read:anomaly_blocks",
    "delete:anomaly_blocks",
    "update:triggers",
    "read:triggers",
    "read:grants",
    "delete:grants",
    "read:guardian_factors",
    "update:guardian_factors",
    "read:roles",
    "create:roles",
    "delete:roles",
    "update:roles",
    "read:prompts",
    "update:prompts",
    "read:branding",
    "update:branding",
    "delete:branding",
    "read:log_streams",
    "create:log_streams",
    "delete:log_streams",
    "update:log_streams",
    "create:signing_keys",
    "read:signing_keys",
    "update:signing_keys",
    "read:attack_protection",
    "update:attack_protection",
    "read:organizations",
    "update:organizations",
    "create:organizations",
    "delete:organizations",
    "read:custom_domains",
    "create:custom_domains",
    "update:custom_domains",
    "delete:custom_domains",
    "read:email_templates",
    "create:email_templates",
    "update:email_templates",
    "read:mfa_policies",
    "update:mfa_policies",
    "read:user_idp_tokens",
];
