//! `/api/v2/log-streams`: Auth0's log streams of type `http` (CRUD; the delivery is
//! [`crate::logs::streams`]). Scopes `read:`, `create:`, `update:` and `delete:log_streams`.
//! `sink.httpAuthorization` is write-only: sealed at rest, never shown.

use super::roles::refuse_additional;
use super::{ApiError, ApiResult, Caller, body_object, no_content, ok, take_typed};
use crate::AppState;
use crate::logs::streams::{CATEGORIES, FORMATS, authorization_context, check_endpoint};
use crate::util::random_alnum;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Map, Value, json};
use store::{LogStream, LogStreamConfig};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/log-streams", get(list).post(create))
        .route("/log-streams/{id}", get(read).patch(update).delete(remove))
}

const MAX_NAME: usize = 128;
const MAX_ENDPOINT: usize = 2048;
const MAX_AUTHORIZATION: usize = 4096;
const STATUSES: [&str; 3] = ["active", "paused", "suspended"];

fn not_found() -> ApiError {
    ApiError::not_found("The log stream does not exist.", "inexistent_log_stream")
}

fn invalid(message: impl std::fmt::Display) -> ApiError {
    ApiError::bad_request(format!("Payload validation error: {message}"))
}

/// A stream as Auth0 shows it: never its authorization.
fn to_json(s: &LogStream) -> Value {
    let c = &s.config;
    let mut v = json!({
        "id": s.id,
        "name": c.name,
        "type": c.stream_type,
        "status": s.status,
        "sink": {
            "httpEndpoint": c.endpoint,
            "httpContentFormat": c.content_format,
            "httpContentType": c.content_type,
        },
    });
    if !c.filters.is_empty() {
        v["filters"] = Value::Array(c.filters.iter().map(|f| json!({"type": "category", "name": f})).collect());
    }
    v
}

async fn find(idp: &AppState, id: &str) -> ApiResult<LogStream> {
    // An id that could not be one is just as absent (and never reaches the store).
    if id.len() > 64 {
        return Err(not_found());
    }
    idp.store.logs().log_stream(id).await?.ok_or_else(not_found)
}

/// `GET /api/v2/log-streams`.
async fn list(State(idp): State<AppState>, caller: Caller) -> ApiResult<Response> {
    caller.require(&["read:log_streams"])?;
    let streams = idp.store.logs().log_streams().await?;
    Ok(ok(&Value::Array(streams.iter().map(to_json).collect())))
}

/// `GET /api/v2/log-streams/{id}`.
async fn read(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(&["read:log_streams"])?;
    Ok(ok(&to_json(&find(&idp, &id).await?)))
}

/// A string of at most `max` characters, not blank.
fn text(body: &mut Map<String, Value>, key: &str, max: usize) -> ApiResult<Option<String>> {
    match take_typed::<String>(body, key)? {
        Some(s) if s.trim().is_empty() || s.chars().count() > max => {
            Err(invalid(format!("'{key}' must be a non-empty string of at most {max} characters")))
        }
        other => Ok(other),
    }
}

/// `filters`: `[{"type": "category", "name": …}]`, names from Auth0's categories.
fn filters(body: &mut Map<String, Value>) -> ApiResult<Option<Vec<String>>> {
    let Some(items) = take_typed::<Vec<Map<String, Value>>>(body, "filters")? else { return Ok(None) };
    let mut names = Vec::new();
    for mut f in items {
        match f.remove("type") {
            Some(Value::String(t)) if t == "category" => {}
            _ => return Err(invalid("each of 'filters' needs the 'type' \"category\"")),
        }
        let name = match f.remove("name") {
            Some(Value::String(n)) if CATEGORIES.contains(&n.as_str()) => n,
            _ => return Err(invalid(format!("each of 'filters' needs a 'name' among {}", CATEGORIES.join(", ")))),
        };
        refuse_additional(&f)?;
        if !names.contains(&name) {
            names.push(name);
        }
    }
    Ok(Some(names))
}

/// Applies a `sink` object to `config` (every key optional on update); returns the new
/// authorization when one was given (`Some(None)`: removed with an empty string).
fn apply_sink(config: &mut LogStreamConfig, sink: Value) -> ApiResult<Option<Option<String>>> {
    let Value::Object(mut sink) = sink else { return Err(invalid("'sink' must be an object")) };
    if let Some(endpoint) = text(&mut sink, "httpEndpoint", MAX_ENDPOINT)? {
        check_endpoint(&endpoint).map_err(invalid)?;
        config.endpoint = endpoint;
    }
    if let Some(format) = take_typed::<String>(&mut sink, "httpContentFormat")? {
        if !FORMATS.contains(&format.as_str()) {
            return Err(invalid(format!("'httpContentFormat' must be one of {}", FORMATS.join(", "))));
        }
        config.content_format = format;
    }
    if let Some(content_type) = text(&mut sink, "httpContentType", 256)? {
        if axum::http::HeaderValue::from_str(&content_type).is_err() {
            return Err(invalid("'httpContentType' is not a valid header value"));
        }
        config.content_type = content_type;
    }
    // Accepted empty (what exporters send); custom headers are not supported.
    if let Some(headers) = take_typed::<Vec<Value>>(&mut sink, "httpCustomHeaders")?
        && !headers.is_empty()
    {
        return Err(invalid("'httpCustomHeaders' is not supported by this server"));
    }
    let authorization = match take_typed::<String>(&mut sink, "httpAuthorization")? {
        None => None,
        Some(a) if a.is_empty() => Some(None),
        Some(a) if a.len() > MAX_AUTHORIZATION || axum::http::HeaderValue::from_str(&a).is_err() => {
            return Err(invalid("'httpAuthorization' is not a valid header value"));
        }
        Some(a) => Some(Some(a)),
    };
    refuse_additional(&sink)?;
    Ok(authorization)
}

fn seal(idp: &AppState, id: &str, authorization: Option<String>) -> ApiResult<Option<String>> {
    authorization.map(|a| idp.secrets.seal(&authorization_context(id), &a)).transpose().map_err(ApiError::from)
}

/// `POST /api/v2/log-streams`: starts from the newest event, or after `startFrom` (a log id).
async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult<Response> {
    caller.require(&["create:log_streams"])?;
    let mut body = body_object(&body)?;
    match take_typed::<String>(&mut body, "type")? {
        Some(t) if t == "http" => {}
        Some(t) => return Err(invalid(format!("log streams of type '{t}' are not supported (only 'http')"))),
        None => return Err(invalid("Missing required property: type")),
    }
    let id = format!("lst_{}", random_alnum(16));
    let name = text(&mut body, "name", MAX_NAME)?.unwrap_or_else(|| id.clone());
    let mut config = LogStreamConfig {
        name,
        stream_type: "http".into(),
        content_format: "JSONLINES".into(),
        content_type: "application/json".into(),
        ..Default::default()
    };
    let sink = body.remove("sink").ok_or_else(|| invalid("Missing required property: sink"))?;
    let authorization = apply_sink(&mut config, sink)?.flatten();
    if config.endpoint.is_empty() {
        return Err(invalid("Missing required property: sink.httpEndpoint"));
    }
    config.filters = filters(&mut body)?.unwrap_or_default();
    let start_from = take_typed::<String>(&mut body, "startFrom")?;
    let _ = take_typed::<bool>(&mut body, "isPriority")?;
    refuse_additional(&body)?;
    let from = match start_from {
        Some(from) if !from.is_empty() && from.len() <= 64 && from.bytes().all(|b| b.is_ascii_digit()) => Some(from),
        Some(_) => return Err(invalid("'startFrom' must be a log id")),
        None => None,
    };
    // The end of the log, or before every event after `startFrom`.
    let cursor = idp.store.logs().log_position(from.as_deref()).await?;
    let now = idp.now();
    let stream = LogStream {
        authorization_sealed: seal(&idp, &id, authorization)?,
        id,
        config,
        status: "active".into(),
        cursor,
        failing_since: None,
        created_at: now,
        updated_at: now,
        lease_owner: None,
        lease_until: None,
    };
    idp.store.logs().create_log_stream(&stream).await?;
    Ok(ok(&to_json(&stream)))
}

/// `PATCH /api/v2/log-streams/{id}`: `name`, `status`, `sink` (its type stays), `filters`.
/// Setting a stopped stream `active` again resumes it from its cursor.
async fn update(
    State(idp): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult<Response> {
    caller.require(&["update:log_streams"])?;
    let mut body = body_object(&body)?;
    let mut stream = find(&idp, &id).await?;
    if let Some(name) = text(&mut body, "name", MAX_NAME)? {
        stream.config.name = name;
    }
    if let Some(status) = take_typed::<String>(&mut body, "status")? {
        if !STATUSES.contains(&status.as_str()) {
            return Err(invalid(format!("'status' must be one of {}", STATUSES.join(", "))));
        }
        if status == "active" && stream.status != "active" {
            stream.failing_since = None;
        }
        stream.status = status;
    }
    if let Some(sink) = body.remove("sink")
        && let Some(authorization) = apply_sink(&mut stream.config, sink)?
    {
        stream.authorization_sealed = seal(&idp, &id, authorization)?;
    }
    if let Some(filters) = filters(&mut body)? {
        stream.config.filters = filters;
    }
    let _ = take_typed::<bool>(&mut body, "isPriority")?;
    refuse_additional(&body)?;
    stream.updated_at = idp.now();
    if !idp.store.logs().update_log_stream(&stream).await? {
        return Err(not_found());
    }
    Ok(ok(&to_json(&stream)))
}

/// `DELETE /api/v2/log-streams/{id}`.
async fn remove(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(&["delete:log_streams"])?;
    if id.len() > 64 || !idp.store.logs().delete_log_stream(&id).await? {
        return Err(not_found());
    }
    Ok(no_content())
}
