//! Migration 7's data step: moves what earlier versions kept in the generic `documents` table
//! (kind, id, JSON) into the typed tables, and the state of federated logins out of
//! `auth_codes` (where it sat under a key prefix), then drops `documents`. Runs inside the
//! migration's transaction: all of it happens or none.
//!
//! Records that only existed because the old writes were not transactions are dropped with a
//! warning rather than carried over: versions and bindings of an action that no longer exists
//! (the runtime skipped them), secrets of no action. A document that no longer parses, or a
//! kind this version does not know, stops the migration and is named, so an operator decides
//! instead of the migrator silently losing it.

use std::collections::{BTreeMap, HashSet};

use serde::Deserialize;
use serde_json::Value;
use sqlx::{Any, Row, Transaction, query};

use super::db;
use super::records::{
    insert_bindings, insert_federated_state, insert_job, insert_version, upsert_action, upsert_federated_issuer,
    upsert_userinfo_claims,
};
use crate::model::*;
use crate::{Error, Result};

/// The job document: the job as the API showed it plus `_`-prefixed internal state.
#[derive(Deserialize)]
struct LegacyJob {
    id: String,
    status: JobStatus,
    connection_id: String,
    connection: String,
    #[serde(default)]
    external_id: Option<String>,
    #[serde(rename = "_upsert", default)]
    upsert: bool,
    #[serde(rename = "_send_completion_email", default = "yes")]
    send_completion_email: bool,
    #[serde(rename = "_created_ms", default)]
    created_ms: Millis,
    #[serde(rename = "_heartbeat", default)]
    heartbeat: Millis,
    #[serde(rename = "_attempts", default)]
    attempts: u64,
    #[serde(rename = "_next", default)]
    next: u64,
    #[serde(rename = "_summary", default)]
    summary: Option<ImportSummary>,
    #[serde(default)]
    percentage_done: Option<u64>,
    #[serde(default)]
    time_left_seconds: Option<u64>,
    #[serde(default)]
    status_details: Option<String>,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct LegacyRowError {
    #[serde(rename = "_index")]
    index: u64,
    user: Value,
    #[serde(default)]
    errors: Vec<Value>,
}

#[derive(Deserialize)]
struct LegacyIssuer {
    connection: String,
    issuer: String,
}

/// The upstream trip as the idp kept it in `auth_codes.grant_doc`. Exactly these fields: an
/// authorization code's grant never has them all, and has others.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LegacyTrip {
    tx: String,
    connection: String,
    nonce: String,
    verifier: String,
    binding: String,
}

/// The kinds earlier versions wrote (`password_ticket` went in migration 4).
const KNOWN_KINDS: &[&str] = &[
    "action",
    "action_version",
    "action_secrets",
    "action_version_secrets",
    "trigger_bindings",
    "job",
    "job_file",
    "job_errors",
    "federated_issuer",
    "userinfo_claims",
];

pub(super) async fn move_documents(tx: &mut Transaction<'static, Any>) -> Result<()> {
    let rows = query("SELECT kind, id, data FROM documents ORDER BY kind, id")
        .fetch_all(&mut **tx)
        .await
        .map_err(db("documents"))?;
    let mut docs: BTreeMap<String, BTreeMap<String, Value>> = BTreeMap::new();
    let mut problems = Vec::new();
    for row in &rows {
        let (kind, id, text): (String, String, String) = (
            row.try_get("kind").map_err(backend)?,
            row.try_get("id").map_err(backend)?,
            row.try_get("data").map_err(backend)?,
        );
        if !KNOWN_KINDS.contains(&kind.as_str()) {
            problems.push(format!("{kind} {id} (a kind this version does not know)"));
            continue;
        }
        match serde_json::from_str(&text) {
            Ok(v) => {
                docs.entry(kind).or_default().insert(id, v);
            }
            Err(e) => problems.push(format!("{kind} {id} ({e})")),
        }
    }
    let mut docs = Documents { docs, problems };

    let actions = move_actions(tx, &mut docs).await?;
    move_bindings(tx, &mut docs, &actions).await?;
    move_jobs(tx, &mut docs).await?;
    for (id, v) in docs.take("federated_issuer") {
        if let Some(r) = docs.parse::<LegacyIssuer>("federated_issuer", &id, v) {
            let record = FederatedIssuer { user_id: id, connection: r.connection, issuer: r.issuer };
            upsert_federated_issuer(tx, &record).await?;
        }
    }
    for (id, v) in docs.take("userinfo_claims") {
        if let Some(claims) = docs.parse::<UserinfoClaims>("userinfo_claims", &id, v) {
            upsert_userinfo_claims(tx, &id, &claims).await?;
        }
    }
    if !docs.problems.is_empty() {
        let shown: Vec<&str> = docs.problems.iter().take(50).map(String::as_str).collect();
        return Err(Error::Migration(format!(
            "{} stored documents cannot be moved into their tables: {}; delete them from the \
             `documents` table (DELETE FROM documents WHERE kind = '…' AND id = '…') or repair their \
             JSON, then start again",
            docs.problems.len(),
            shown.join("; ")
        )));
    }
    move_federated_states(tx).await?;
    sqlx::raw_sql("DROP TABLE documents").execute(&mut **tx).await.map_err(db("documents"))?;
    Ok(())
}

struct Documents {
    docs: BTreeMap<String, BTreeMap<String, Value>>,
    problems: Vec<String>,
}

impl Documents {
    fn take(&mut self, kind: &str) -> BTreeMap<String, Value> {
        self.docs.remove(kind).unwrap_or_default()
    }

    fn parse<T: serde::de::DeserializeOwned>(&mut self, kind: &str, id: &str, v: Value) -> Option<T> {
        match serde_json::from_value(v) {
            Ok(t) => Some(t),
            Err(e) => {
                self.problems.push(format!("{kind} {id} ({e})"));
                None
            }
        }
    }

    /// A secrets document (`{NAME: sealed}`); none is no secrets.
    fn secrets(&mut self, kind: &str, id: &str, secrets: &mut BTreeMap<String, Value>) -> SealedSecrets {
        match secrets.remove(id) {
            Some(v) => self.parse(kind, id, v).unwrap_or_default(),
            None => SealedSecrets::new(),
        }
    }
}

/// Moves drafts and versions; returns the ids of the actions moved.
async fn move_actions(tx: &mut Transaction<'static, Any>, docs: &mut Documents) -> Result<HashSet<String>> {
    let mut secrets = docs.take("action_secrets");
    let mut version_secrets = docs.take("action_version_secrets");
    let mut moved = HashSet::new();
    let mut deployed = HashSet::new();
    for (id, v) in docs.take("action") {
        let Some(action) = docs.parse::<Action>("action", &id, v) else { continue };
        let sealed = docs.secrets("action_secrets", &id, &mut secrets);
        deployed.extend(action.deployed_version.clone());
        upsert_action(tx, &StoredAction { action, secrets: sealed }).await?;
        moved.insert(id);
    }
    let mut versions: Vec<ActionVersion> = Vec::new();
    for (id, v) in docs.take("action_version") {
        versions.extend(docs.parse::<ActionVersion>("action_version", &id, v));
    }
    // Versions in force first: if two share a number (two deploys that raced), the one in
    // force is the one kept.
    versions.sort_by_key(|v| (!deployed.contains(&v.id), v.number));
    let mut numbers = HashSet::new();
    for version in versions {
        if !moved.contains(&version.action_id) {
            tracing::warn!(version = %version.id, action = %version.action_id, "dropping a version of a deleted action");
            continue;
        }
        if !numbers.insert((version.action_id.clone(), version.number)) {
            tracing::warn!(version = %version.id, number = version.number, "dropping a second version with the same number");
            continue;
        }
        let sealed = docs.secrets("action_version_secrets", &version.id, &mut version_secrets);
        insert_version(tx, &StoredActionVersion { version, secrets: sealed }).await?;
    }
    let orphans = secrets.len() + version_secrets.len();
    if orphans > 0 {
        tracing::warn!(orphans, "dropping the secrets of deleted actions and versions");
    }
    Ok(moved)
}

async fn move_bindings(
    tx: &mut Transaction<'static, Any>,
    docs: &mut Documents,
    actions: &HashSet<String>,
) -> Result<()> {
    #[derive(Deserialize)]
    struct Bindings {
        #[serde(default)]
        bindings: Vec<TriggerBinding>,
    }
    for (trigger, v) in docs.take("trigger_bindings") {
        // A list is what the earliest builds stored from tenant files; it bound nothing.
        if !v.is_object() {
            continue;
        }
        let Some(list) = docs.parse::<Bindings>("trigger_bindings", &trigger, v) else { continue };
        let (kept, gone): (Vec<_>, Vec<_>) = list.bindings.into_iter().partition(|b| actions.contains(&b.action_id));
        for b in gone {
            tracing::warn!(trigger, binding = %b.id, action = %b.action_id, "dropping a binding to a deleted action");
        }
        insert_bindings(tx, &trigger, &kept).await?;
    }
    Ok(())
}

async fn move_jobs(tx: &mut Transaction<'static, Any>, docs: &mut Documents) -> Result<()> {
    #[derive(Deserialize)]
    struct Errors {
        #[serde(default)]
        errors: Vec<LegacyRowError>,
    }
    let mut files = docs.take("job_file");
    let mut errors = docs.take("job_errors");
    for (id, v) in docs.take("job") {
        let Some(old) = docs.parse::<LegacyJob>("job", &id, v) else { continue };
        let file = match files.remove(&id) {
            Some(Value::String(text)) if !old.status.ended() => Some(text),
            _ => None,
        };
        let rows = match errors.remove(&id) {
            Some(v) => docs.parse::<Errors>("job_errors", &id, v).map(|e| e.errors).unwrap_or_default(),
            None => Vec::new(),
        };
        let rows: Vec<ImportRowError> =
            rows.into_iter().map(|r| ImportRowError { index: r.index, user: r.user, errors: r.errors }).collect();
        let job = ImportJob {
            id: old.id,
            connection_id: old.connection_id,
            connection: old.connection,
            status: old.status,
            created_at: old.created_ms,
            external_id: old.external_id,
            upsert: old.upsert,
            send_completion_email: old.send_completion_email,
            heartbeat: old.heartbeat,
            attempts: old.attempts,
            next_row: old.next,
            summary: old.summary,
            percentage_done: old.percentage_done,
            time_left_seconds: old.time_left_seconds,
            status_details: old.status_details,
        };
        insert_job(tx, &job, file.as_deref(), &rows).await?;
    }
    // Files and errors of jobs already forgotten go with the table.
    Ok(())
}

async fn move_federated_states(tx: &mut Transaction<'static, Any>) -> Result<()> {
    let rows = query("SELECT code_sha256, grant_doc, expires_at, redeemed_at FROM auth_codes")
        .fetch_all(&mut **tx)
        .await
        .map_err(db("authorization codes"))?;
    for row in rows {
        let grant: String = row.try_get("grant_doc").map_err(backend)?;
        let Ok(trip) = serde_json::from_str::<LegacyTrip>(&grant) else { continue };
        let key: Vec<u8> = row.try_get("code_sha256").map_err(backend)?;
        let state = FederatedState {
            state_sha256: key.clone(),
            login_transaction: trip.tx,
            connection: trip.connection,
            nonce: trip.nonce,
            code_verifier: trip.verifier,
            binding_digest: trip.binding,
            expires_at: row.try_get("expires_at").map_err(backend)?,
        };
        let redeemed_at: Option<Millis> = row.try_get("redeemed_at").map_err(backend)?;
        insert_federated_state(tx, &state, redeemed_at).await?;
        query("DELETE FROM auth_codes WHERE code_sha256 = $1")
            .bind(&key)
            .execute(&mut **tx)
            .await
            .map_err(db("authorization codes"))?;
    }
    Ok(())
}

fn backend(e: sqlx::Error) -> Error {
    Error::Backend(Box::new(e))
}
