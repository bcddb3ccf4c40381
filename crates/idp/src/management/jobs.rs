//! `/api/v2/jobs`: users-import jobs (Auth0's bulk import). `POST /jobs/users-imports` takes a
//! multipart upload (a `users` file in Auth0's import format, `connection_id`, `upsert`,
//! `external_id`, `send_completion_email`) and answers 202 once the job and its file are stored;
//! the rows are then imported by a background task, one store write per user, while broken rows
//! are reported per row (`GET /jobs/{id}/errors`) and the good ones imported.
//!
//! Jobs survive a restart: progress is checkpointed into the job record with a heartbeat, and
//! [`resume_jobs`] (started next to housekeeping) picks up every pending or processing job whose
//! heartbeat went stale — a node that crashed mid-job — and finishes it, or marks it failed when
//! it is past Auth0's two-hour limit, lost its file, or was already resumed too often. A new
//! user's id is derived from the job and the row, so a resumed run recognises the users the
//! interrupted run wrote after its last checkpoint instead of reporting them as duplicates.
//!
//! At most two jobs run at once, as in Auth0: a third upload gets Auth0's 429 until one ends.
//!
//! Stored as a `store::ImportJob` with its uploaded text (dropped by the store in the write that
//! ends the job: it may carry passwords) and its per-row errors (`store::ImportRowError`),
//! saved with each checkpoint in the same write.

use super::{ApiError, ApiResult, Caller, json_response, no_content, ok};
use crate::AppState;
use crate::provision::{ImportMode, Imported, import_user};
use crate::util::{iso8601, now_ms, random_alnum, sha256};
use axum::Router;
use axum::extract::multipart::{Field, MultipartError, MultipartRejection};
use axum::extract::{DefaultBodyLimit, Multipart, Path, State};
use axum::http::StatusCode;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::time::Duration;
use store::{Connection, ImportJob, ImportRowError, ImportSummary, JobStatus};
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
    let jobs = idp.store.import_jobs().await?;
    Ok(jobs.iter().filter(|job| !job.status.ended()).filter(|job| now - job.created_at <= JOB_TIMEOUT_MS).count())
}

fn multipart_error(e: MultipartError) -> ApiError {
    if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
        too_large()
    } else {
        ApiError::bad_request(format!("Invalid multipart payload: {}", e.body_text()))
    }
}

/// The job as the API shows it: the state a node keeps to run it left out.
fn view(job: &ImportJob) -> Value {
    let mut out = json!({
        "type": "users_import",
        "status": job.status.as_str(),
        "connection_id": job.connection_id,
        "connection": job.connection,
        "created_at": iso8601(job.created_at),
        "id": job.id,
    });
    if let Some(external_id) = &job.external_id {
        out["external_id"] = json!(external_id);
    }
    if let Some(pct) = job.percentage_done {
        out["percentage_done"] = json!(pct);
    }
    if let Some(left) = job.time_left_seconds {
        out["time_left_seconds"] = json!(left);
    }
    if let Some(summary) = job.summary.filter(|_| job.status.ended()) {
        out["summary"] = summary_json(summary);
    }
    if let Some(details) = &job.status_details {
        out["status_details"] = json!(details);
    }
    out
}

fn summary_json(s: ImportSummary) -> Value {
    json!({"failed": s.failed, "updated": s.updated, "inserted": s.inserted, "total": s.total})
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
        .filter(|c| !crate::admins::is_reserved(&c.id))
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
    let job = ImportJob {
        id: id.clone(),
        connection_id: connection.id.clone(),
        connection: connection.name.clone(),
        status: JobStatus::Pending,
        created_at: now,
        external_id,
        upsert,
        send_completion_email,
        heartbeat: now,
        attempts: 1,
        next_row: 0,
        summary: None,
        percentage_done: None,
        time_left_seconds: None,
        status_details: None,
    };
    // The job and its file in one write.
    idp.store.create_import_job(&job, &text).await?;
    tracing::info!(job = %id, connection = %connection.name, upsert, "users import job queued");
    let runner = idp.clone();
    let job_id = id.clone();
    tokio::spawn(async move { run(runner, job_id, false).await });
    Ok(json_response(StatusCode::ACCEPTED, &view(&job)))
}

async fn read(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["create:users", "read:users"])?;
    let job = idp.store.import_job(&id).await?.ok_or_else(not_found)?;
    Ok(ok(&view(&job)))
}

async fn errors(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["create:users", "read:users"])?;
    let job = idp.store.import_job(&id).await?.ok_or_else(not_found)?;
    if !job.status.ended() {
        // Auth0 answers with the job itself while it runs.
        return Ok(ok(&view(&job)));
    }
    let entries = idp.store.import_job_errors(&id).await?;
    if entries.is_empty() {
        return Ok(no_content());
    }
    let out: Vec<Value> = entries.into_iter().map(|e| json!({"user": e.user, "errors": e.errors})).collect();
    Ok(ok(&json!(out)))
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
    let Some(mut job) = idp.store.import_job(id).await? else { return Ok(()) };
    job.status = JobStatus::Failed;
    job.status_details = Some(why.to_owned());
    job.percentage_done = None;
    job.time_left_seconds = None;
    // Ending the job drops its file in the same write.
    idp.store.save_import_job(&job, None).await?;
    Ok(())
}

async fn run_job(idp: &AppState, id: &str, resumed: bool) -> ApiResult<()> {
    let Some(mut job) = idp.store.import_job(id).await? else { return Ok(()) };
    let Some(text) = idp.store.import_job_file(id).await? else {
        return Err(ApiError::bad_request("the job's users file is gone"));
    };
    let connection_id = job.connection_id.clone();
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
    let upsert = job.upsert;
    let start = job.next_row as usize;
    let mut summary = job.summary.unwrap_or_default();
    summary.total = items.len() as u64;
    // Errors of rows the interrupted run checkpointed; later ones are redone.
    let mut errors: Vec<ImportRowError> =
        idp.store.import_job_errors(id).await?.into_iter().filter(|e| (e.index as usize) < start).collect();
    let begun = std::time::Instant::now();
    let mut last_checkpoint = begun;
    job.status = JobStatus::Processing;
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
            errors.push(ImportRowError { index: index as u64, user: echo(item), errors: errs });
        }
        let done = index + 1;
        if done < items.len() && (done % CHECKPOINT_ROWS == 0 || last_checkpoint.elapsed() >= CHECKPOINT_EVERY) {
            last_checkpoint = std::time::Instant::now();
            let pct = (done * 100 / items.len().max(1)) as u64;
            let per_row = begun.elapsed().as_secs_f64() / (done - start).max(1) as f64;
            job.percentage_done = Some(pct);
            job.time_left_seconds = Some((per_row * (items.len() - done) as f64).ceil() as u64);
            job.next_row = done as u64;
            job.summary = Some(summary);
            job.heartbeat = now_ms();
            // The progress and the errors up to it, in one write.
            idp.store.save_import_job(&job, Some(&errors)).await?;
        }
    }
    job.status = JobStatus::Completed;
    job.next_row = items.len() as u64;
    job.summary = Some(summary);
    job.heartbeat = now_ms();
    job.percentage_done = None;
    job.time_left_seconds = None;
    // The file may hold passwords: the write that ends the job drops it.
    idp.store.save_import_job(&job, Some(&errors)).await?;
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
    for job in idp.store.import_jobs().await? {
        let id = job.id.clone();
        let created = job.created_at;
        if now - created > JOB_RETENTION_MS {
            idp.store.delete_import_job(&id).await?;
            continue;
        }
        if job.status.ended() {
            continue;
        }
        if now - job.heartbeat < STALE_AFTER_MS {
            continue; // running somewhere
        }
        let attempts = job.attempts;
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

/// Takes a cut-off job over; `false` when another node claimed it first (the store replaces
/// the job only while its heartbeat is still the stale one this node saw).
async fn claim(idp: &AppState, mut job: ImportJob, attempt: u64) -> ApiResult<bool> {
    let seen = job.heartbeat;
    job.heartbeat = now_ms();
    job.attempts = attempt;
    Ok(idp.store.claim_import_job(&job, seen).await?)
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
