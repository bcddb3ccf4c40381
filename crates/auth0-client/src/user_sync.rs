//! The optional MongoDB user sync (spec 4.6): on every token create or update (login,
//! `/refreshtoken`, the refresh inside `/userinfo`), one document per user in
//! `<USERS_DATABASE_NAME>.<USERS_COLLECTION_NAME>`, matched on `userId == sub` and `$set` with the
//! listed properties of the `/userinfo` profile (spec 6 D6).
//!
//! Best-effort by design, as the spec asks ("Mongo errors are logged and never fail the
//! login"): a sync runs beside the request, never in it, so a MongoDB that is down or slow
//! costs a login nothing, not even latency. At most [`MAX_IN_FLIGHT`] syncs run at once; past
//! that a sync is skipped and logged, and the user's next token writes the document again, as
//! after any failed sync. A document over MongoDB's 16 MiB limit is skipped and logged before
//! it is sent. [`SyncStats`] counts every outcome (tests and operators read them).
//!
//! The rule that turns a profile into the update ([`update_for`]) is a plain function; the
//! MongoDB client is made lazily on the first sync, so a `mongodb+srv://` name that does not
//! resolve yet is one failed sync, not a service that cannot start.

pub use crate::config::USER_ID_FIELD;
use crate::config::UserSyncSettings;
use mongodb::bson::{Bson, Document, doc};
use mongodb::options::{ClientOptions, ConnectionString};
use serde_json::{Map, Value};
use std::collections::HashSet;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::sync::{OnceCell, Semaphore};

/// MongoDB's limit on one document.
pub const MAX_DOCUMENT_BYTES: usize = 16 * 1024 * 1024;
/// Room kept under the limit for what the server adds to an upserted document (`_id`).
const DOCUMENT_HEADROOM: usize = 64;
/// Syncs running at once, at most; more are skipped (the next token retries).
pub const MAX_IN_FLIGHT: usize = 64;
/// One sync, all in (server selection, connection, the write).
const SYNC_TIMEOUT: Duration = Duration::from_secs(10);
/// The driver waits 30 s for a server by default, far longer than a sync is worth; used unless
/// the URL sets `serverSelectionTimeoutMS` / `connectTimeoutMS`.
const SERVER_SELECTION_TIMEOUT: Duration = Duration::from_secs(5);
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a sync did not write.
#[derive(Debug, thiserror::Error)]
pub enum SyncError {
    #[error("the profile has no sub")]
    NoSubject,
    #[error("the document would be {bytes} bytes, over MongoDB's {MAX_DOCUMENT_BYTES}-byte limit")]
    TooLarge { bytes: usize },
    #[error("MongoDB: {0}")]
    Mongo(String),
    #[error("MongoDB did not answer within {0:?}")]
    Timeout(Duration),
}

/// What the sync did since start.
#[derive(Debug, Default)]
pub struct SyncStats {
    /// Documents written.
    pub written: AtomicU64,
    /// Writes MongoDB refused or that could not reach it (down, timed out).
    pub failed: AtomicU64,
    /// Syncs not attempted: no `sub`, a document over the size limit, too many in flight.
    pub skipped: AtomicU64,
}

impl SyncStats {
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (
            self.written.load(Ordering::Relaxed),
            self.failed.load(Ordering::Relaxed),
            self.skipped.load(Ordering::Relaxed),
        )
    }
}

/// The update for one profile: the filter on `userId` and the `$set` document (`userId` plus
/// every listed property the profile has). Listed properties the profile lacks are left as they
/// are in the document, and returned so the caller can say so.
pub fn update_for<'a>(
    profile: &Map<String, Value>,
    properties: &'a [String],
) -> Result<(Document, Document, Vec<&'a str>), SyncError> {
    let sub = profile.get("sub").and_then(Value::as_str).filter(|s| !s.is_empty()).ok_or(SyncError::NoSubject)?;
    let mut set = doc! { USER_ID_FIELD: sub };
    let mut absent = Vec::new();
    for name in properties {
        match profile.get(name) {
            Some(v) => {
                set.insert(name.clone(), json_to_bson(v));
            }
            None => absent.push(name.as_str()),
        }
    }
    let bytes = set.to_vec().map(|v| v.len()).map_err(|e| SyncError::Mongo(e.to_string()))?;
    if bytes + DOCUMENT_HEADROOM > MAX_DOCUMENT_BYTES {
        return Err(SyncError::TooLarge { bytes });
    }
    Ok((doc! { USER_ID_FIELD: sub }, doc! { "$set": set }, absent))
}

/// JSON to BSON without failing: integers stay 64-bit integers; one beyond `i64` (only a `u64`
/// can be) becomes a double, as JavaScript drivers would store it.
fn json_to_bson(v: &Value) -> Bson {
    match v {
        Value::Null => Bson::Null,
        Value::Bool(b) => Bson::Boolean(*b),
        Value::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Bson::Int64(i),
            (None, Some(f)) => Bson::Double(f),
            (None, None) => Bson::String(n.to_string()),
        },
        Value::String(s) => Bson::String(s.clone()),
        Value::Array(items) => Bson::Array(items.iter().map(json_to_bson).collect()),
        Value::Object(members) => Bson::Document(members.iter().map(|(k, v)| (k.clone(), json_to_bson(v))).collect()),
    }
}

/// The sync: off (no settings) or on, sharing one lazily made MongoDB client.
#[derive(Clone, Default)]
pub struct UserSync {
    inner: Option<Arc<Inner>>,
    pub stats: Arc<SyncStats>,
}

struct Inner {
    settings: UserSyncSettings,
    client: OnceCell<mongodb::Client>,
    in_flight: Arc<Semaphore>,
    /// Listed properties already reported missing from a profile (said once, not per login).
    reported_absent: Mutex<HashSet<String>>,
}

impl UserSync {
    pub fn new(settings: Option<UserSyncSettings>) -> UserSync {
        UserSync {
            inner: settings.map(|settings| {
                Arc::new(Inner {
                    settings,
                    client: OnceCell::new(),
                    in_flight: Arc::new(Semaphore::new(MAX_IN_FLIGHT)),
                    reported_absent: Mutex::new(HashSet::new()),
                })
            }),
            stats: Arc::default(),
        }
    }

    pub fn enabled(&self) -> bool {
        self.inner.is_some()
    }

    /// Starts the sync of one profile and returns at once (see the module doc).
    pub fn spawn(&self, profile: &Map<String, Value>) {
        let Some(inner) = &self.inner else { return };
        let (filter, update) = match update_for(profile, &inner.settings.properties) {
            Ok((filter, update, absent)) => {
                inner.report_absent(&absent);
                (filter, update)
            }
            Err(e) => {
                self.stats.skipped.fetch_add(1, Ordering::Relaxed);
                tracing::warn!(error = %e, "MongoDB user sync skipped");
                return;
            }
        };
        let Ok(permit) = inner.in_flight.clone().try_acquire_owned() else {
            self.stats.skipped.fetch_add(1, Ordering::Relaxed);
            tracing::warn!(
                in_flight = MAX_IN_FLIGHT,
                "MongoDB user sync skipped: too many syncs waiting for MongoDB (the user's next token retries)"
            );
            return;
        };
        let inner = inner.clone();
        let stats = self.stats.clone();
        tokio::spawn(async move {
            let _permit = permit;
            match inner.write(filter, update).await {
                Ok(()) => {
                    stats.written.fetch_add(1, Ordering::Relaxed);
                }
                Err(e) => {
                    stats.failed.fetch_add(1, Ordering::Relaxed);
                    tracing::warn!(error = %e, "MongoDB user sync failed (the user's next token retries)");
                }
            }
        });
    }

    /// `ping` on the server (for `/-/check-up`); `Ok` when the sync is off.
    pub async fn ping(&self) -> Result<(), SyncError> {
        let Some(inner) = &self.inner else { return Ok(()) };
        let run = async {
            let client = inner.client().await?;
            client.database("admin").run_command(doc! { "ping": 1 }).await.map_err(mongo)?;
            Ok(())
        };
        tokio::time::timeout(SYNC_TIMEOUT, run).await.map_err(|_| SyncError::Timeout(SYNC_TIMEOUT))?
    }
}

fn mongo(e: mongodb::error::Error) -> SyncError {
    // The kind only: the full error can quote the connection string.
    SyncError::Mongo(e.kind.to_string())
}

impl Inner {
    async fn client(&self) -> Result<&mongodb::Client, SyncError> {
        self.client
            .get_or_try_init(|| async {
                let cs = ConnectionString::parse(&self.settings.url).map_err(mongo)?;
                let mut options = ClientOptions::parse(cs).await.map_err(mongo)?;
                options.server_selection_timeout.get_or_insert(SERVER_SELECTION_TIMEOUT);
                options.connect_timeout.get_or_insert(CONNECT_TIMEOUT);
                options.app_name.get_or_insert_with(|| "auth0-client".to_string());
                mongodb::Client::with_options(options).map_err(mongo)
            })
            .await
    }

    async fn write(&self, filter: Document, update: Document) -> Result<(), SyncError> {
        let run = async {
            let client = self.client().await?;
            let collection = client.database(&self.settings.database).collection::<Document>(&self.settings.collection);
            collection.update_one(filter, update).upsert(true).await.map_err(mongo)?;
            Ok(())
        };
        tokio::time::timeout(SYNC_TIMEOUT, run).await.map_err(|_| SyncError::Timeout(SYNC_TIMEOUT))?
    }

    fn report_absent(&self, absent: &[&str]) {
        if absent.is_empty() {
            return;
        }
        let mut reported = self.reported_absent.lock().unwrap_or_else(|e| e.into_inner());
        for name in absent {
            if reported.insert((*name).to_string()) {
                tracing::warn!(
                    property = %name,
                    "USERS_PROPERTIES_TO_SAVE names a property this user's profile does not have; \
                     it is left out of the document (said once per property)"
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn profile(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn listed_properties_of_the_profile_keyed_by_sub() {
        let p =
            profile(json!({"sub":"auth0|1","email":"a@b.it","groups":["admin"],"n":3,"big":18446744073709551615u64}));
        let props: Vec<String> = ["email", "groups", "missing", "n", "big"].map(String::from).to_vec();
        let (filter, update, absent) = update_for(&p, &props).unwrap();
        assert_eq!(filter, doc! {"userId": "auth0|1"});
        assert_eq!(
            update,
            doc! {"$set": {"userId": "auth0|1", "email": "a@b.it", "groups": ["admin"], "n": 3i64, "big": 18446744073709551615u64 as f64}}
        );
        assert_eq!(absent, vec!["missing"]);
    }

    #[test]
    fn no_sub_or_too_large_is_refused() {
        assert!(matches!(update_for(&profile(json!({"email":"x"})), &[]), Err(SyncError::NoSubject)));
        let huge = "x".repeat(MAX_DOCUMENT_BYTES);
        let err = update_for(&profile(json!({"sub":"u","blob":huge})), &["blob".to_string()]).unwrap_err();
        assert!(matches!(err, SyncError::TooLarge { bytes } if bytes > MAX_DOCUMENT_BYTES), "{err}");
        let fits = "x".repeat(MAX_DOCUMENT_BYTES - 1024);
        assert!(update_for(&profile(json!({"sub":"u","blob":fits})), &["blob".to_string()]).is_ok());
    }
}
