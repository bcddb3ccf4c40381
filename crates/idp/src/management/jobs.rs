//! `/api/v2/jobs`: users-import jobs (Auth0's bulk import). `POST /jobs/users-imports` takes a
//! multipart upload (a `users` file in Auth0's import format, `connection_id`, `upsert`,
//! `external_id`, `send_completion_email`) and answers 202 once the job and its file are stored;
//! the rows are then imported by a background task, one store write per user, while broken rows
//! are reported per row (`GET /jobs/{id}/errors`) and the good ones imported.
//!
//! Jobs survive a restart: progress is checkpointed into the job document with a heartbeat, and
//! [`resume_jobs`] (started next to housekeeping) picks up every pending or processing job whose
//! heartbeat went stale — a node that crashed mid-job — and finishes it, or marks it failed when
//! it is past Auth0's two-hour limit, lost its file, or was already resumed too often. A new
//! user's id is derived from the job and the row, so a resumed run recognises the users the
//! interrupted run wrote after its last checkpoint instead of reporting them as duplicates.
//!
//! At most two jobs run at once, as in Auth0: a third upload gets Auth0's 429 until one ends.
//!
//! Stored as documents: `job` (the job as the API shows it, plus `_`-prefixed internal state),
//! `job_file` (the uploaded text, deleted when the job ends: it may carry passwords) and
//! `job_errors` (the per-row errors).

use super::{ApiError, ApiResult, Caller, json_response, no_content, ok};
use crate::AppState;
use crate::provision::{ImportMode, Imported, import_user};
use crate::util::{iso8601, now_ms, random_alnum, random_hex, sha256};
use axum::Router;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use store::Connection;
use tenant::{ImportUser, Keywords};

/// Auth0's limit on the users file.
pub const FILE_LIMIT: usize = 512_000;
/// The whole multipart body: the file plus the other parts and the boundaries.
pub(crate) const UPLOAD_LIMIT: usize = FILE_LIMIT + 64 * 1024;
/// A job whose heartbeat is older than this was cut off (its node crashed or stopped).
const STALE_AFTER_MS: i64 = 30_000;
/// How often a running job checkpoints its progress (and heartbeat).
const CHECKPOINT_EVERY: Duration = Duration::from_secs(2);
const CHECKPOINT_ROWS: usize = 200;
/// How often [`resume_jobs`] looks for cut-off jobs and expired ones.
const SCAN_EVERY: Duration = Duration::from_secs(15);
/// Auth0 times jobs out after two hours and keeps their data for a day.
const JOB_TIMEOUT_MS: i64 = 2 * 3600 * 1000;
const JOB_RETENTION_MS: i64 = 24 * 3600 * 1000;
/// A job resumed this many times without finishing is marked failed rather than tried again.
const MAX_ATTEMPTS: u64 = 3;
/// Auth0 runs at most this many import jobs of a tenant at once and refuses more with 429.
const MAX_ACTIVE_JOBS: usize = 2;

const JOB: &str = "job";
const JOB_FILE: &str = "job_file";
const JOB_ERRORS: &str = "job_errors";

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/jobs/users-imports", post(create).layer(DefaultBodyLimit::max(UPLOAD_LIMIT)))
        .route("/jobs/{id}", get(read))
        .route("/jobs/{id}/errors", get(errors))
}

fn not_found() -> ApiError {
    ApiError::not_found("The job does not exist.", "inexistent_job")
}

/// Auth0's answer to a file over the limit (also sent by the router for larger bodies).
pub(crate) fn too_large() -> ApiError {
    ApiError::new(
        StatusCode::PAYLOAD_TOO_LARGE,
        format!("Payload content length greater than maximum allowed: {FILE_LIMIT}."),
        None,
    )
}

/// Auth0's answer while [`MAX_ACTIVE_JOBS`] jobs are pending or processing.
fn too_many_jobs() -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        format!(
            "There are {MAX_ACTIVE_JOBS} active import users jobs, please wait until some of them are finished and try again"
        ),
        Some("too_many_requests"),
    )
}

/// Held from counting the active jobs to storing a new one, so that two uploads at once on
/// this node cannot both take the last slot. (Nodes sharing a database can still both take
/// it in the same instant: the limit keeps a tenant from flooding itself, it guards no data.)
fn queueing() -> &'static tokio::sync::Mutex<()> {
    static QUEUEING: std::sync::OnceLock<tokio::sync::Mutex<()>> = std::sync::OnceLock::new();
    QUEUEING.get_or_init(|| tokio::sync::Mutex::new(()))
}

/// Jobs pending or processing; those past Auth0's two-hour limit are about to be failed by
/// [`resume_jobs`] and no longer count.
async fn active_jobs(idp: &AppState) -> ApiResult<usize> {
    let now = now_ms();
    let jobs = idp.store.documents(JOB).await?;
    Ok(jobs
        .iter()
        .filter(|job| matches!(job["status"].as_str(), Some("pending" | "processing")))
        .filter(|job| now - job["_created_ms"].as_i64().unwrap_or(0) <= JOB_TIMEOUT_MS)
        .count())
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::bad_request(format!("Invalid multipart payload: {}", e.body_text()))
    }
}

/// The job as the API shows it: internal state (`_…` keys) left out.
fn view(doc: &Value) -> Value {
    match doc {
        Value::Object(m) => {
            Value::Object(m.iter().filter(|(k, _)| !k.starts_with('_')).map(|(k, v)| (k.clone(), v.clone())).collect())
        }
        other => other.clone(),
    }
}

async fn read_file(field: &mut Field<'_>) -> ApiResult<Vec<u8>> {
    let mut data = Vec::new();
    while let Some(chunk) = field.chunk().await.map_err(multipart_error)? {
        if data.len() + chunk.len() > FILE_LIMIT {
            return Err(too_large());
        }
        data.extend_from_slice(&chunk);
    }
    Ok(data)
}

fn flag(value: Option<String>, name: &str, default: bool) -> ApiResult<bool> {
    match value.as_deref().map(str::trim) {
        None | Some("") => Ok(default),
        Some("true") => Ok(true),
        Some("false") => Ok(false),
        Some(_) => Err(ApiError::bad_request(format!(
            "Payload validation error: 'Expected type boolean but found type string' on property {name}."
        ))),
    }
}

fn valid_connection_id(id: &str) -> bool {
    id.len() == 20 && id.starts_with("con_") && id[4..].bytes().all(|b| b.is_ascii_alphanumeric())
}

async fn create(
    State(idp): State<AppState>,
    caller: Caller,
    multipart: Result<Multipart, MultipartRejection>,
) -> ApiResult {
    caller.require(&["create:users"])?;
    let mut multipart = multipart.map_err(|e| {
        ApiError::bad_request(format!("Payload validation error: expected multipart/form-data ({})", e.body_text()))
    })?;
    let (mut users, mut text) = (None, BTreeMap::<String, String>::new());
    while let Some(mut field) = multipart.next_field().await.map_err(multipart_error)? {
        let name = field.name().unwrap_or_default().to_owned();
        if name == "users" {
            users = Some(read_file(&mut field).await?);
        } else if matches!(name.as_str(), "connection_id" | "upsert" | "external_id" | "send_completion_email") {
            let value = field.text().await.map_err(multipart_error)?;
            if value.len() > 1024 {
                return Err(ApiError::bad_request(format!("Payload validation error: '{name}' is too long.")));
            }
            text.insert(name, value);
        }
        // Other parts are ignored, as unknown JSON keys are elsewhere.
    }
    let Some(users) = users else {
        return Err(ApiError::bad_request("Payload validation error: 'Missing required property: users'."));
    };
    if users.iter().all(u8::is_ascii_whitespace) {
        return Err(ApiError::bad_request("Payload validation error: the users file is empty."));
    }
    let Some(connection_id) = text.remove("connection_id").map(|c| c.trim().to_owned()).filter(|c| !c.is_empty())
    else {
        return Err(ApiError::bad_request("Payload validation error: 'Missing required property: connection_id'."));
    };
    if !valid_connection_id(&connection_id) {
        return Err(ApiError::bad_request(format!(
            "Payload validation error: 'String does not match pattern ^con_[A-Za-z0-9]{{16}}$: {connection_id}' on property connection_id."
        )));
    }
    let upsert = flag(text.remove("upsert"), "upsert", false)?;
    let send_completion_email = flag(text.remove("send_completion_email"), "send_completion_email", true)?;
    let external_id = text.remove("external_id");
    let connection = idp
        .store
        .connection(&connection_id)
        .await?
        .ok_or_else(|| ApiError::bad_request(format!("The connection does not exist: {connection_id}")))?;
    if !connection.is_database() {
        return Err(ApiError::bad_request(format!(
            "The connection {} is not a database connection (strategy {}).",
            connection.name, connection.strategy
        )));
    }
    if connection.enabled_clients.is_empty() {
        return Err(ApiError::bad_request(format!(
            "The connection {} is disabled: it is enabled for no application.",
            connection.name
        )));
    }
    let text = String::from_utf8(users)
        .map_err(|_| ApiError::bad_request("Payload validation error: the users file is not UTF-8 text."))?;
    match serde_json::from_str::<Value>(&text) {
        Ok(Value::Array(_)) => {}
        Ok(_) => return Err(ApiError::bad_request("Users file must be a JSON array of users.")),
        Err(e) => return Err(ApiError::bad_request(format!("Users file is not valid JSON: {e}"))),
    }

    // Until the job is stored: the next upload counts it.
    let _queueing = queueing().lock().await;
    if active_jobs(&idp).await? >= MAX_ACTIVE_JOBS {
        return Err(too_many_jobs());
    }
    let id = format!("job_{}", random_alnum(16));
    let now = now_ms();
    let mut job = json!({
        "type": "users_import",
        "status": "pending",
        "connection_id": connection.id,
        "connection": connection.name,
        "created_at": iso8601(now),
        "id": id,
    });
    if let Some(external_id) = external_id {
        job["external_id"] = json!(external_id);
    }
    let Value::Object(ref mut m) = job else { unreachable!("a JSON object literal") };
    m.insert("_upsert".into(), json!(upsert));
    m.insert("_send_completion_email".into(), json!(send_completion_email));
    m.insert("_created_ms".into(), json!(now));
    m.insert("_heartbeat".into(), json!(now));
    m.insert("_attempts".into(), json!(1));
    // The file first: a job document always has its file.
    idp.store.put_document(JOB_FILE, &id, &Value::String(text)).await?;
    idp.store.put_document(JOB, &id, &job).await?;
    tracing::info!(job = %id, connection = %connection.name, upsert, "users import job queued");
    let runner = idp.clone();
    let job_id = id.clone();
    tokio::spawn(async move { run(runner, job_id, false).await });
    Ok(json_response(StatusCode::ACCEPTED, &view(&job)))
}

async fn read(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["create:users", "read:users"])?;
    let job = idp.store.document(JOB, &id).await?.ok_or_else(not_found)?;
    Ok(ok(&view(&job)))
}

async fn errors(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["create:users", "read:users"])?;
    let job = idp.store.document(JOB, &id).await?.ok_or_else(not_found)?;
    if !matches!(job["status"].as_str(), Some("completed" | "failed")) {
        // Auth0 answers with the job itself while it runs.
        return Ok(ok(&view(&job)));
    }
    let entries = stored_errors(&idp, &id).await?;
    if entries.is_empty() {
        return Ok(no_content());
    }
    let out: Vec<Value> = entries.into_iter().map(|(_, e)| e).collect();
    Ok(ok(&json!(out)))
}

/// The stored per-row errors, by row index.
async fn stored_errors(idp: &AppState, id: &str) -> ApiResult<Vec<(usize, Value)>> {
    let doc = idp.store.document(JOB_ERRORS, id).await?;
    let items = doc.and_then(|d| d.get("errors").and_then(Value::as_array).cloned()).unwrap_or_default();
    Ok(items
        .into_iter()
        .filter_map(|mut e| {
            let index = e.as_object_mut()?.remove("_index")?.as_u64()? as usize;
            Some((index, e))
        })
        .collect())
}

/// Keyword markers (`##KEY##`, `@@KEY@@`) are a tenant-file feature: an uploaded file is taken
/// literally. `#` and `@` can only stand inside JSON strings, where `\u0023` / `\u0040` read
/// back as the same characters, so escaping them keeps the data and hides every marker.
fn literal(text: &str) -> String {
    if text.contains("##") || text.contains("@@") {
        text.replace('#', "\\u0023").replace('@', "\\u0040")
    } else {
        text.to_owned()
    }
}

/// The id a new user of row `index` gets when the row has none: stable across resumptions.
fn row_user_id(job: &str, index: usize) -> String {
    sha256(format!("{job}:{index}").as_bytes())[..12].iter().map(|b| format!("{b:02x}")).collect()
}

/// Runs (or resumes) a job to its end; failures to run are recorded on the job.
async fn run(idp: AppState, id: String, resumed: bool) {
    if let Err(e) = run_job(&idp, &id, resumed).await {
        tracing::error!(job = %id, error = %e.message, "users import job failed");
        if let Err(e) = finish_failed(&idp, &id, &e.message).await {
            tracing::error!(job = %id, error = %e.message, "could not mark the job failed");
        }
    }
}

async fn finish_failed(idp: &AppState, id: &str, why: &str) -> ApiResult<()> {
    let Some(mut job) = idp.store.document(JOB, id).await? else { return Ok(()) };
    job["status"] = json!("failed");
    job["status_details"] = json!(why);
    if let Some(summary) = job.get("_summary").cloned() {
        job["summary"] = summary;
    }
    if let Value::Object(m) = &mut job {
        m.remove("percentage_done");
        m.remove("time_left_seconds");
    }
    idp.store.put_document(JOB, id, &job).await?;
    idp.store.delete_document(JOB_FILE, id).await?;
    Ok(())
}

#[derive(Default, Clone, Copy)]
struct Summary {
    inserted: u64,
    updated: u64,
    failed: u64,
    total: u64,
}

impl Summary {
    fn from_json(v: &Value) -> Self {
        let n = |k: &str| v.get(k).and_then(Value::as_u64).unwrap_or(0);
        Summary { inserted: n("inserted"), updated: n("updated"), failed: n("failed"), total: n("total") }
    }
    fn to_json(self) -> Value {
        json!({"failed": self.failed, "updated": self.updated, "inserted": self.inserted, "total": self.total})
    }
}

async fn run_job(idp: &AppState, id: &str, resumed: bool) -> ApiResult<()> {
    let Some(mut job) = idp.store.document(JOB, id).await? else { return Ok(()) };
    let Some(Value::String(text)) = idp.store.document(JOB_FILE, id).await? else {
        return Err(ApiError::bad_request("the job's users file is gone"));
    };
    let connection_id = job["connection_id"].as_str().unwrap_or_default().to_owned();
    let connection: Connection = idp
        .store
        .connection(&connection_id)
        .await?
        .filter(Connection::is_database)
        .ok_or_else(|| ApiError::bad_request(format!("the connection {connection_id} no longer exists")))?;
    let items: Vec<Value> = serde_json::from_str(&text).map_err(|e| ApiError::bad_request(e.to_string()))?;
    let import =
        tenant::parse_users(&literal(&text), &Keywords::new()).map_err(|e| ApiError::bad_request(e.to_string()))?;
    drop(text);
    let mut invalid: BTreeMap<usize, Vec<Value>> = BTreeMap::new();
    for e in &import.errors {
        let mut err = json!({"code": e.code, "message": e.message});
        if !e.path.is_empty() {
            err["path"] = json!(e.path);
        }
        invalid.entry(e.index).or_default().push(err);
    }
    let rows: BTreeMap<usize, &ImportUser> = import.rows.iter().map(|r| (r.index, r)).collect();
    let upsert = job["_upsert"].as_bool().unwrap_or(false);
    let start = job.get("_next").and_then(Value::as_u64).unwrap_or(0) as usize;
    let mut summary = job.get("_summary").map(Summary::from_json).unwrap_or_default();
    summary.total = items.len() as u64;
    // Errors of rows the interrupted run checkpointed; later ones are redone.
    let mut errors: Vec<(usize, Value)> =
        stored_errors(idp, id).await?.into_iter().filter(|(i, _)| *i < start).collect();
    let begun = std::time::Instant::now();
    let mut last_checkpoint = begun;
    job["status"] = json!("processing");
    for (index, item) in items.iter().enumerate().skip(start) {
        let row_errors = match (invalid.remove(&index), rows.get(&index)) {
            (Some(errs), _) => Some(errs),
            (None, None) => Some(vec![json!({"code": "INVALID_TYPE", "message": "not a valid user"})]),
            (None, Some(row)) => {
                let mode = ImportMode {
                    upsert: if upsert { item.as_object() } else { None },
                    new_id: row_user_id(id, index),
                    resumed,
                };
                match import_user(idp, &connection, row, &mode).await? {
                    Imported::Inserted => {
                        summary.inserted += 1;
                        None
                    }
                    Imported::Updated => {
                        summary.updated += 1;
                        None
                    }
                    Imported::Existing => Some(vec![json!({
                        "code": "DUPLICATED_USER",
                        "message": "The user already exist and upsert parameter is false",
                    })]),
                    Imported::Failed(f) => {
                        let mut err = json!({"code": f.code, "message": f.message});
                        if !f.path.is_empty() {
                            err["path"] = json!(f.path);
                        }
                        Some(vec![err])
                    }
                }
            }
        };
        if let Some(errs) = row_errors {
            summary.failed += 1;
            errors.push((index, json!({"user": echo(item), "errors": errs})));
        }
        let done = index + 1;
        if done < items.len() && (done % CHECKPOINT_ROWS == 0 || last_checkpoint.elapsed() >= CHECKPOINT_EVERY) {
            last_checkpoint = std::time::Instant::now();
            let pct = (done * 100 / items.len().max(1)) as u64;
            let per_row = begun.elapsed().as_secs_f64() / (done - start).max(1) as f64;
            job["percentage_done"] = json!(pct);
            job["time_left_seconds"] = json!((per_row * (items.len() - done) as f64).ceil() as u64);
            save_errors(idp, id, &errors).await?;
            job["_next"] = json!(done);
            job["_summary"] = summary.to_json();
            job["_heartbeat"] = json!(now_ms());
            idp.store.put_document(JOB, id, &job).await?;
        }
    }
    if !errors.is_empty() {
        save_errors(idp, id, &errors).await?;
    }
    job["status"] = json!("completed");
    job["summary"] = summary.to_json();
    job["_next"] = json!(items.len());
    job["_summary"] = summary.to_json();
    job["_heartbeat"] = json!(now_ms());
    if let Value::Object(m) = &mut job {
        m.remove("percentage_done");
        m.remove("time_left_seconds");
    }
    idp.store.put_document(JOB, id, &job).await?;
    // The file may hold passwords: it goes as soon as the job is over.
    idp.store.delete_document(JOB_FILE, id).await?;
    tracing::info!(
        job = %id, inserted = summary.inserted, updated = summary.updated, failed = summary.failed,
        "users import job completed"
    );
    Ok(())
}

/// A row as written, for its error report; Gatehouse's plain-text `password` is not repeated.
fn echo(item: &Value) -> Value {
    let mut item = item.clone();
    if let Value::Object(m) = &mut item {
        m.remove("password");
    }
    item
}

async fn save_errors(idp: &AppState, id: &str, errors: &[(usize, Value)]) -> ApiResult<()> {
    let items: Vec<Value> = errors
        .iter()
        .map(|(i, e)| {
            let mut e = e.clone();
            e["_index"] = json!(i);
            e
        })
        .collect();
    idp.store.put_document(JOB_ERRORS, id, &json!({ "errors": items })).await?;
    Ok(())
}

/// Resumes, now and every few seconds, the import jobs a stopped or crashed node left behind
/// (pending or processing, heartbeat stale), marks failed those that cannot be finished, and
/// forgets jobs older than a day. Started next to housekeeping.
pub fn resume_jobs(idp: &AppState) -> tokio::task::JoinHandle<()> {
    let idp = idp.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(SCAN_EVERY);
        loop {
            tick.tick().await;
            if let Err(e) = scan(&idp).await {
                tracing::warn!(error = %e.message, "scanning import jobs failed");
            }
        }
    })
}

async fn scan(idp: &AppState) -> ApiResult<()> {
    let now = now_ms();
    for job in idp.store.documents(JOB).await? {
        let Some(id) = job["id"].as_str().map(str::to_owned) else { continue };
        let created = job["_created_ms"].as_i64().unwrap_or(0);
        if now - created > JOB_RETENTION_MS {
            for kind in [JOB_FILE, JOB_ERRORS, JOB] {
                idp.store.delete_document(kind, &id).await?;
            }
            continue;
        }
        if !matches!(job["status"].as_str(), Some("pending" | "processing")) {
            continue;
        }
        let heartbeat = job["_heartbeat"].as_i64().unwrap_or(0);
        if now - heartbeat < STALE_AFTER_MS {
            continue; // running somewhere
        }
        let attempts = job["_attempts"].as_u64().unwrap_or(0);
        if now - created > JOB_TIMEOUT_MS {
            finish_failed(idp, &id, "The job timed out.").await?;
            continue;
        }
        if attempts >= MAX_ATTEMPTS {
            finish_failed(idp, &id, "The job was interrupted too many times.").await?;
            continue;
        }
        if claim(idp, job, attempts + 1).await? {
            tracing::info!(job = %id, attempt = attempts + 1, "resuming an interrupted users import job");
            let runner = idp.clone();
            tokio::spawn(async move { run(runner, id, true).await });
        }
    }
    Ok(())
}

/// Takes a cut-off job over; `false` when another node claimed it at the same time (the last
/// writer wins, and each claimant checks it was the last).
async fn claim(idp: &AppState, mut job: Value, attempt: u64) -> ApiResult<bool> {
    let id = job["id"].as_str().unwrap_or_default().to_owned();
    let token = random_hex(16);
    job["_claim"] = json!(token);
    job["_heartbeat"] = json!(now_ms());
    job["_attempts"] = json!(attempt);
    idp.store.put_document(JOB, &id, &job).await?;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let current = idp.store.document(JOB, &id).await?;
    Ok(current.is_some_and(|j| j["_claim"] == json!(token)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_files_keep_their_text_and_lose_their_markers() {
        let text = r###"[{"email": "a@b.test", "user_metadata": {"tag": "##NOT_A_KEYWORD##", "x": "@@Y@@"}}]"###;
        let escaped = literal(text);
        assert!(!escaped.contains("##") && !escaped.contains("@@"));
        let a: Value = serde_json::from_str(text).unwrap();
        let b: Value = serde_json::from_str(&escaped).unwrap();
        assert_eq!(a, b);
        let parsed = tenant::parse_users(&escaped, &Keywords::new()).unwrap();
        assert_eq!(parsed.rows[0].user_metadata["tag"], "##NOT_A_KEYWORD##");
    }

    #[test]
    fn connection_ids_follow_auth0s_pattern() {
        assert!(valid_connection_id("con_0123456789abcdEF"));
        for bad in ["con_123", "cxn_0123456789abcdEF", "con_0123456789abcd-F", ""] {
            assert!(!valid_connection_id(bad), "{bad}");
        }
    }
}
