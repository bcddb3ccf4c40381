//! The typed records that have no protocol of their own: actions with their versions and
//! trigger bindings, users-import jobs, the state of federated logins and the issuers of
//! federated users, and the Action claims `/userinfo` returns. [`queries`](super::queries)
//! calls these from the `Store` impl; the writers that take a connection are shared with the
//! migration that moved these records out of the generic `documents` table.

use sqlx::any::AnyRow;
use sqlx::{AnyConnection, query};

use super::{SqlStore, data, db, from_json, get, to_json};
use crate::model::*;
use crate::{Error, Result};

impl SqlStore {
    // --- actions

    pub(super) async fn get_action(&self, id: &str) -> Result<Option<StoredAction>> {
        let q = query("SELECT data, secrets FROM actions WHERE id = $1").bind(id);
        self.row("action", q).await?.as_ref().map(stored_action).transpose()
    }

    pub(super) async fn all_actions(&self) -> Result<Vec<StoredAction>> {
        let q = query("SELECT data, secrets FROM actions ORDER BY created_at, id");
        self.rows("action", q).await?.iter().map(stored_action).collect()
    }

    pub(super) async fn write_action(&self, action: &StoredAction) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db("action"))?;
        upsert_action(&mut conn, action).await
    }

    pub(super) async fn get_action_version(&self, id: &str) -> Result<Option<StoredActionVersion>> {
        let q = query("SELECT data, secrets FROM action_versions WHERE id = $1").bind(id);
        self.row("action version", q).await?.as_ref().map(stored_version).transpose()
    }

    pub(super) async fn versions_of(&self, action_id: &str) -> Result<Vec<StoredActionVersion>> {
        let q = query("SELECT data, secrets FROM action_versions WHERE action_id = $1 ORDER BY number DESC")
            .bind(action_id);
        self.rows("action version", q).await?.iter().map(stored_version).collect()
    }

    pub(super) async fn deploy(&self, action: &StoredAction, version: &StoredActionVersion, keep: usize) -> Result<()> {
        let id = &action.action.id;
        let what = format!("action {id}");
        let mut tx = self.begin_write().await?;
        // The draft first, so a missing action is told apart from a taken version number.
        let updated = query("UPDATE actions SET created_at = $2, data = $3, secrets = $4 WHERE id = $1")
            .bind(id)
            .bind(&action.action.created_at)
            .bind(to_json(&action.action)?)
            .bind(to_json(&action.secrets)?)
            .execute(&mut *tx)
            .await
            .map_err(db(&what))?
            .rows_affected();
        if updated == 0 {
            tx.rollback().await.map_err(db(&what))?;
            return Err(Error::NotFound(what));
        }
        // A failure from here on drops `tx`, which rolls the draft back too.
        insert_version(&mut tx, version).await?;
        let in_force = action.action.deployed_version.as_deref().unwrap_or(&version.version.id);
        let keep = i64::try_from(keep).unwrap_or(i64::MAX);
        query(
            "DELETE FROM action_versions WHERE action_id = $1 AND id <> $2 AND number <= (
                 SELECT number FROM action_versions WHERE action_id = $1
                 ORDER BY number DESC LIMIT 1 OFFSET $3)",
        )
        .bind(id)
        .bind(in_force)
        .bind(keep)
        .execute(&mut *tx)
        .await
        .map_err(db(&what))?;
        tx.commit().await.map_err(db(&what))
    }

    pub(super) async fn remove_action(&self, id: &str) -> Result<bool> {
        let what = format!("action {id}");
        let mut tx = self.begin_write().await?;
        for sql in
            ["DELETE FROM trigger_bindings WHERE action_id = $1", "DELETE FROM action_versions WHERE action_id = $1"]
        {
            query(sql).bind(id).execute(&mut *tx).await.map_err(db(&what))?;
        }
        let removed = query("DELETE FROM actions WHERE id = $1").bind(id).execute(&mut *tx).await.map_err(db(&what))?;
        tx.commit().await.map_err(db(&what))?;
        Ok(removed.rows_affected() > 0)
    }

    pub(super) async fn bindings_of(&self, trigger: &str) -> Result<Vec<TriggerBinding>> {
        let q = query("SELECT data FROM trigger_bindings WHERE trigger_id = $1 ORDER BY position").bind(trigger);
        self.docs("trigger binding", q).await
    }

    pub(super) async fn replace_bindings(&self, trigger: &str, bindings: &[TriggerBinding]) -> Result<()> {
        let mut tx = self.begin_write().await?;
        query("DELETE FROM trigger_bindings WHERE trigger_id = $1")
            .bind(trigger)
            .execute(&mut *tx)
            .await
            .map_err(db("trigger bindings"))?;
        insert_bindings(&mut tx, trigger, bindings).await?;
        tx.commit().await.map_err(db("trigger bindings"))
    }

    pub(super) async fn triggers_of(&self, action_id: &str) -> Result<Vec<String>> {
        let q = query("SELECT DISTINCT trigger_id FROM trigger_bindings WHERE action_id = $1 ORDER BY trigger_id")
            .bind(action_id);
        self.rows("trigger binding", q).await?.iter().map(|r| get(r, "trigger_id")).collect()
    }

    // --- users-import jobs

    pub(super) async fn new_import_job(&self, job: &ImportJob, users_file: &str) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db("import job"))?;
        insert_job(&mut conn, job, Some(users_file), &[]).await
    }

    pub(super) async fn get_import_job(&self, id: &str) -> Result<Option<ImportJob>> {
        let q = query("SELECT data FROM import_jobs WHERE id = $1").bind(id);
        self.doc("import job", q).await
    }

    pub(super) async fn all_import_jobs(&self) -> Result<Vec<ImportJob>> {
        let q = query("SELECT data FROM import_jobs ORDER BY created_at, id");
        self.docs("import job", q).await
    }

    pub(super) async fn job_file(&self, id: &str) -> Result<Option<String>> {
        let q = query("SELECT users_file FROM import_jobs WHERE id = $1").bind(id);
        let row = self.row("import job", q).await?;
        Ok(row.map(|r| get::<Option<String>>(&r, "users_file")).transpose()?.flatten())
    }

    pub(super) async fn job_errors(&self, id: &str) -> Result<Vec<ImportRowError>> {
        let q = query("SELECT errors FROM import_jobs WHERE id = $1").bind(id);
        match self.row("import job", q).await? {
            Some(row) => from_json("import job errors", &get::<String>(&row, "errors")?),
            None => Ok(Vec::new()),
        }
    }

    pub(super) async fn save_job(&self, job: &ImportJob, errors: Option<&[ImportRowError]>) -> Result<bool> {
        // One statement: the progress, the errors up to it and the end of the file go together.
        let file = if job.status.ended() { ", users_file = NULL" } else { "" };
        let errors_set = if errors.is_some() { ", errors = $4" } else { "" };
        let sql = format!("UPDATE import_jobs SET heartbeat = $2, data = $3{file}{errors_set} WHERE id = $1");
        let mut q = query(&sql).bind(&job.id).bind(job.heartbeat).bind(to_json(job)?);
        if let Some(errors) = errors {
            q = q.bind(to_json(&errors)?);
        }
        Ok(self.exec("import job", q).await? > 0)
    }

    pub(super) async fn claim_job(&self, job: &ImportJob, seen_heartbeat: Millis) -> Result<bool> {
        // Compare and set: of racing claimants, the first to update changes the heartbeat the
        // others' condition names (PostgreSQL re-checks it once the row lock is theirs).
        let q = query("UPDATE import_jobs SET heartbeat = $2, data = $3 WHERE id = $1 AND heartbeat = $4")
            .bind(&job.id)
            .bind(job.heartbeat)
            .bind(to_json(job)?)
            .bind(seen_heartbeat);
        Ok(self.exec("import job", q).await? == 1)
    }

    pub(super) async fn remove_import_job(&self, id: &str) -> Result<bool> {
        self.remove("import job", query("DELETE FROM import_jobs WHERE id = $1").bind(id)).await
    }

    // --- federated login

    pub(super) async fn new_federated_state(&self, state: &FederatedState) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db("federated state"))?;
        insert_federated_state(&mut conn, state, None).await
    }

    pub(super) async fn redeem_state(&self, state_sha256: &[u8], now: Millis) -> Result<StateRedemption> {
        // One conditional UPDATE: of racing callbacks, only one sees the state unredeemed.
        let q = query(
            "UPDATE federated_states SET redeemed_at = $2
             WHERE state_sha256 = $1 AND redeemed_at IS NULL AND expires_at > $2
             RETURNING state_sha256, login_transaction, connection, nonce, code_verifier,
                 binding_digest, expires_at",
        )
        .bind(state_sha256)
        .bind(now);
        if let Some(row) = self.row("federated state", q).await? {
            return Ok(StateRedemption::Fresh(federated_state(&row)?));
        }
        let q = query("SELECT redeemed_at FROM federated_states WHERE state_sha256 = $1").bind(state_sha256);
        Ok(match self.row("federated state", q).await? {
            Some(row) if get::<Option<Millis>>(&row, "redeemed_at")?.is_some() => StateRedemption::Reused,
            _ => StateRedemption::Unknown,
        })
    }

    pub(super) async fn get_federated_issuer(&self, user_id: &str) -> Result<Option<FederatedIssuer>> {
        let q = query("SELECT user_id, connection, issuer FROM federated_issuers WHERE user_id = $1").bind(user_id);
        let row = self.row("federated issuer", q).await?;
        row.map(|r| {
            Ok(FederatedIssuer {
                user_id: get(&r, "user_id")?,
                connection: get(&r, "connection")?,
                issuer: get(&r, "issuer")?,
            })
        })
        .transpose()
    }

    pub(super) async fn write_federated_issuer(&self, issuer: &FederatedIssuer) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db("federated issuer"))?;
        upsert_federated_issuer(&mut conn, issuer).await
    }

    // --- /userinfo claims

    pub(super) async fn get_userinfo_claims(&self, key: &str) -> Result<Option<UserinfoClaims>> {
        self.doc("userinfo claims", query("SELECT data FROM userinfo_claims WHERE id = $1").bind(key)).await
    }

    pub(super) async fn write_userinfo_claims(&self, key: &str, claims: &UserinfoClaims) -> Result<()> {
        let mut conn = self.pool.acquire().await.map_err(db("userinfo claims"))?;
        upsert_userinfo_claims(&mut conn, key, claims).await
    }

    pub(super) async fn remove_userinfo_claims(&self, key: &str) -> Result<bool> {
        self.remove("userinfo claims", query("DELETE FROM userinfo_claims WHERE id = $1").bind(key)).await
    }
}

// --- writers shared with the migration

pub(super) async fn upsert_action(conn: &mut AnyConnection, action: &StoredAction) -> Result<()> {
    query(
        "INSERT INTO actions (id, created_at, data, secrets) VALUES ($1, $2, $3, $4)
         ON CONFLICT (id) DO UPDATE SET created_at = excluded.created_at, data = excluded.data,
             secrets = excluded.secrets",
    )
    .bind(&action.action.id)
    .bind(&action.action.created_at)
    .bind(to_json(&action.action)?)
    .bind(to_json(&action.secrets)?)
    .execute(conn)
    .await
    .map_err(db(&format!("action {}", action.action.id)))?;
    Ok(())
}

/// Adds a version; `Conflict` when its id or its number within the action is taken,
/// `NotFound` when its action does not exist.
pub(super) async fn insert_version(conn: &mut AnyConnection, version: &StoredActionVersion) -> Result<()> {
    let v = &version.version;
    let what = format!("version {} of action {}", v.number, v.action_id);
    query("INSERT INTO action_versions (id, action_id, number, data, secrets) VALUES ($1, $2, $3, $4, $5)")
        .bind(&v.id)
        .bind(&v.action_id)
        .bind(i64::try_from(v.number).map_err(|_| Error::Conflict(what.clone()))?)
        .bind(to_json(v)?)
        .bind(to_json(&version.secrets)?)
        .execute(conn)
        .await
        .map_err(db(&what))?;
    Ok(())
}

/// Appends bindings to a trigger whose list is empty; `NotFound` when one names no action.
pub(super) async fn insert_bindings(
    conn: &mut AnyConnection,
    trigger: &str,
    bindings: &[TriggerBinding],
) -> Result<()> {
    for (position, b) in bindings.iter().enumerate() {
        query("INSERT INTO trigger_bindings (trigger_id, position, action_id, data) VALUES ($1, $2, $3, $4)")
            .bind(trigger)
            .bind(position as i64)
            .bind(&b.action_id)
            .bind(to_json(b)?)
            .execute(&mut *conn)
            .await
            .map_err(db(&format!("action {} of binding {}", b.action_id, b.id)))?;
    }
    Ok(())
}

pub(super) async fn insert_job(
    conn: &mut AnyConnection,
    job: &ImportJob,
    users_file: Option<&str>,
    errors: &[ImportRowError],
) -> Result<()> {
    query(
        "INSERT INTO import_jobs (id, created_at, heartbeat, data, users_file, errors)
         VALUES ($1, $2, $3, $4, $5, $6)",
    )
    .bind(&job.id)
    .bind(job.created_at)
    .bind(job.heartbeat)
    .bind(to_json(job)?)
    .bind(users_file)
    .bind(to_json(&errors)?)
    .execute(conn)
    .await
    .map_err(db(&format!("import job {}", job.id)))?;
    Ok(())
}

pub(super) async fn insert_federated_state(
    conn: &mut AnyConnection,
    state: &FederatedState,
    redeemed_at: Option<Millis>,
) -> Result<()> {
    query(
        "INSERT INTO federated_states (state_sha256, login_transaction, connection, nonce,
             code_verifier, binding_digest, expires_at, redeemed_at)
         VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
    )
    .bind(&state.state_sha256)
    .bind(&state.login_transaction)
    .bind(&state.connection)
    .bind(&state.nonce)
    .bind(&state.code_verifier)
    .bind(&state.binding_digest)
    .bind(state.expires_at)
    .bind(redeemed_at)
    .execute(conn)
    .await
    .map_err(db("federated state"))?;
    Ok(())
}

pub(super) async fn upsert_federated_issuer(conn: &mut AnyConnection, issuer: &FederatedIssuer) -> Result<()> {
    query(
        "INSERT INTO federated_issuers (user_id, connection, issuer) VALUES ($1, $2, $3)
         ON CONFLICT (user_id) DO UPDATE SET connection = excluded.connection, issuer = excluded.issuer",
    )
    .bind(&issuer.user_id)
    .bind(&issuer.connection)
    .bind(&issuer.issuer)
    .execute(conn)
    .await
    .map_err(db("federated issuer"))?;
    Ok(())
}

pub(super) async fn upsert_userinfo_claims(conn: &mut AnyConnection, key: &str, claims: &UserinfoClaims) -> Result<()> {
    query(
        "INSERT INTO userinfo_claims (id, data) VALUES ($1, $2)
         ON CONFLICT (id) DO UPDATE SET data = excluded.data",
    )
    .bind(key)
    .bind(to_json(claims)?)
    .execute(conn)
    .await
    .map_err(db("userinfo claims"))?;
    Ok(())
}

// --- row decoding

fn stored_action(row: &AnyRow) -> Result<StoredAction> {
    Ok(StoredAction {
        action: data(row, "action")?,
        secrets: from_json("action secrets", &get::<String>(row, "secrets")?)?,
    })
}

fn stored_version(row: &AnyRow) -> Result<StoredActionVersion> {
    Ok(StoredActionVersion {
        version: data(row, "action version")?,
        secrets: from_json("action version secrets", &get::<String>(row, "secrets")?)?,
    })
}

fn federated_state(row: &AnyRow) -> Result<FederatedState> {
    Ok(FederatedState {
        state_sha256: get(row, "state_sha256")?,
        login_transaction: get(row, "login_transaction")?,
        connection: get(row, "connection")?,
        nonce: get(row, "nonce")?,
        code_verifier: get(row, "code_verifier")?,
        binding_digest: get(row, "binding_digest")?,
        expires_at: get(row, "expires_at")?,
    })
}
