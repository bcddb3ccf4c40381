//! The user-management façade over Auth0's Management API (spec 2.8): list and count with the
//! CRUD-style query translated to Auth0's search, users with live sessions, create, update,
//! delete, change password, and the bulk import jobs. Auth0's answers are relayed unchanged
//! (status and body) except where the spec adds to them (`_id` in lists, 204 for
//! change-password).

use super::{header_utf8, json_ok, optional_client, relay};
use crate::AppState;
use crate::auth0::Upstream;
use crate::auth0::management::{Body, Part};
use crate::config::ManagementShape;
use crate::error::{Error, Result};
use crate::query::{phrase, translate};
use crate::util::path_segment;
use axum::body::Bytes;
use axum::extract::{FromRequest, Multipart, Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use reqwest::Method;
use serde_json::{Map, Value, json};

type MiaError = crate::error::MiaError;

#[derive(serde::Serialize, utoipa::ToSchema)]
#[serde(rename_all = "camelCase")]
pub struct ActiveUser {
    pub user_id: String,
}

fn query_pairs(q: Option<&str>) -> Vec<(String, String)> {
    url::form_urlencoded::parse(q.unwrap_or("").as_bytes()).into_owned().collect()
}

fn encode_query(params: &[(String, String)]) -> String {
    let mut s = url::form_urlencoded::Serializer::new(String::new());
    for (k, v) in params {
        s.append_pair(k, v);
    }
    s.finish()
}

fn json_body(body: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(Error::BadRequest("the body must be a JSON object".into())),
        Err(e) => Err(Error::BadRequest(format!("the body is not valid JSON: {e}"))),
    }
}

fn parse_json(up: &Upstream) -> Result<Value> {
    serde_json::from_slice(&up.body).map_err(|e| Error::Upstream(format!("Auth0's answer is not JSON: {e}")))
}

async fn search(app: &crate::App, headers: &HeaderMap, query: Option<&str>, count: bool) -> Result<Upstream> {
    let acl = header_utf8(headers, "acl_rows")?;
    let supported = app.management.client().supported_connections();
    let mut t = translate(&query_pairs(query), acl, &supported)?;
    if count {
        t.params.retain(|(k, _)| !matches!(k.as_str(), "per_page" | "page" | "fields" | "include_fields" | "sort"));
        t.params.extend([
            ("per_page".into(), "1".into()),
            ("page".into(), "0".into()),
            ("include_totals".into(), "true".into()),
        ]);
    }
    app.management.call(Method::GET, &format!("/users?{}", encode_query(&t.params)), &Body::Empty).await
}

/// The answer to a write on one user when the caller may not reach that user: the writes
/// (`PATCH`, `DELETE`, change-password) are held to the users `GET /users` would show, i.e.
/// the management client's supported connections and the `acl_rows` filter, since the M2M
/// token itself reaches every connection of the tenant (another environment's users
/// included). `who` is an exact clause naming the user (`user_id:"…"`, `email:"…"`). Without
/// connections or an ACL nothing narrows the search and the write is forwarded as Mia's is.
/// Out of reach answers 404 like an unknown user, so the answer does not tell them apart.
async fn out_of_reach(app: &crate::App, headers: &HeaderMap, who: &str) -> Result<Option<Response>> {
    let acl = header_utf8(headers, "acl_rows")?;
    let supported = app.management.client().supported_connections();
    let Some(reach) = translate(&[], acl, &supported)?.q else {
        return Ok(None);
    };
    let params = [
        ("search_engine".to_string(), "v3".to_string()),
        ("per_page".to_string(), "1".to_string()),
        ("fields".to_string(), "user_id".to_string()),
        ("q".to_string(), format!("({who}) AND {reach}")),
    ];
    let up = app.management.call(Method::GET, &format!("/users?{}", encode_query(&params)), &Body::Empty).await?;
    if !up.is_success() {
        return Ok(Some(relay(up)));
    }
    match parse_json(&up)? {
        Value::Array(found) if !found.is_empty() => Ok(None),
        Value::Array(_) => Err(Error::NotFound("The user does not exist.".into())),
        _ => Err(Error::Upstream("Auth0's user list is not an array".into())),
    }
}

/// Lists users: `_l`, `_sk`, `email`, `nickname`, `username`, `connection`, `app_metadata.*`,
/// `sort`, `fields`, `include_fields`, and the `acl_rows` header, as Auth0 search v3.
#[utoipa::path(
    get,
    path = "/users",
    tag = "users",
    params(
        ("_l" = Option<u32>, Query, description = "Page size (default 25, at most 100)"),
        ("_sk" = Option<u64>, Query, description = "Records to skip"),
        ("email" = Option<String>, Query, description = "Exact, or with * wildcards"),
        ("nickname" = Option<String>, Query),
        ("username" = Option<String>, Query),
        ("connection" = Option<String>, Query, description = "May repeat; limited to the supported connections"),
        ("acl_rows" = Option<String>, Header, description = "MongoDB-style row filter ($and, $or, $in, $eq)"),
    ),
    responses(
        (status = 200, description = "Auth0 users, each with _id = user_id", body = Vec<Object>),
        (status = 400, description = "Bad query or acl_rows", body = MiaError),
        (status = 502, description = "Auth0 unreachable", body = MiaError),
    )
)]
pub async fn list(State(app): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response> {
    optional_client(&app, &headers)?;
    let up = search(&app, &headers, query.as_deref(), false).await?;
    if !up.is_success() {
        return Ok(relay(up));
    }
    let mut users = parse_json(&up)?;
    let Value::Array(items) = &mut users else {
        return Err(Error::Upstream("Auth0's user list is not an array".into()));
    };
    for u in items.iter_mut() {
        if let Value::Object(m) = u
            && let Some(id) = m.get("user_id").cloned()
        {
            m.insert("_id".into(), id);
        }
    }
    Ok(json_ok(&users))
}

/// The number of users the same filters match.
#[utoipa::path(
    get,
    path = "/users/count",
    tag = "users",
    responses((status = 200, description = "A number", body = u64), (status = 400, body = MiaError))
)]
pub async fn count(State(app): State<AppState>, headers: HeaderMap, RawQuery(query): RawQuery) -> Result<Response> {
    optional_client(&app, &headers)?;
    let up = search(&app, &headers, query.as_deref(), true).await?;
    if !up.is_success() {
        return Ok(relay(up));
    }
    let total = parse_json(&up)?
        .get("total")
        .and_then(Value::as_u64)
        .ok_or_else(|| Error::Upstream("Auth0's answer has no total".into()))?;
    Ok(json_ok(&total))
}

/// Users holding a live session, across all clients.
#[utoipa::path(
    get,
    path = "/users/active",
    tag = "users",
    responses(
        (status = 200, description = "One entry per user", body = Vec<ActiveUser>),
        (status = 503, description = "Session store unavailable", body = MiaError),
    )
)]
pub async fn active(State(app): State<AppState>, headers: HeaderMap) -> Result<Response> {
    optional_client(&app, &headers)?;
    let users = app.sessions.active_users(app.clock.now_ms()).await?;
    Ok(json_ok(&users.into_iter().map(|user_id| ActiveUser { user_id }).collect::<Vec<_>>()))
}

/// Creates a user (Auth0's body; `connection` defaults to the management client's default).
#[utoipa::path(
    post,
    path = "/users",
    tag = "users",
    request_body(content = Object, content_type = "application/json"),
    responses(
        (status = 201, description = "Auth0's user", body = Object),
        (status = 400, description = "No connection, or an unsupported one", body = MiaError),
    )
)]
pub async fn create(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    optional_client(&app, &headers)?;
    let mut user = json_body(&body)?;
    let mc = app.management.client();
    let connection = match user.get("connection") {
        Some(Value::String(c)) if !c.is_empty() => c.clone(),
        None | Some(Value::Null) | Some(Value::String(_)) => {
            mc.default_connection().map(str::to_owned).ok_or_else(|| {
                Error::BadRequest("connection is required: the management client has no default connection".into())
            })?
        }
        Some(_) => return Err(Error::BadRequest("connection must be a string".into())),
    };
    let supported = mc.supported_connections();
    if !supported.is_empty() && !supported.contains(&connection) {
        return Err(Error::BadRequest(format!("connection {connection:?} is not supported by the management client")));
    }
    user.insert("connection".into(), json!(connection));
    Ok(relay(app.management.call(Method::POST, "/users", &Body::Json(Value::Object(user))).await?))
}

/// Updates a user (Auth0's PATCH body, forwarded as it is).
#[utoipa::path(
    patch,
    path = "/users/{userID}",
    tag = "users",
    params(("userID" = String, Path, description = "Auth0 user id, e.g. auth0|123")),
    request_body(content = Object, content_type = "application/json"),
    responses((status = 200, description = "Auth0's user", body = Object))
)]
pub async fn update(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(user_id): Path<String>,
    body: Bytes,
) -> Result<Response> {
    optional_client(&app, &headers)?;
    let patch = json_body(&body)?;
    if let Some(refused) = out_of_reach(&app, &headers, &phrase("user_id", &user_id)).await? {
        return Ok(refused);
    }
    let path = format!("/users/{}", path_segment(&user_id));
    Ok(relay(app.management.call(Method::PATCH, &path, &Body::Json(Value::Object(patch))).await?))
}

/// Deletes a user.
#[utoipa::path(
    delete,
    path = "/users/{userID}",
    tag = "users",
    params(("userID" = String, Path, description = "Auth0 user id")),
    responses((status = 204, description = "Deleted"))
)]
pub async fn remove(State(app): State<AppState>, headers: HeaderMap, Path(user_id): Path<String>) -> Result<Response> {
    optional_client(&app, &headers)?;
    if let Some(refused) = out_of_reach(&app, &headers, &phrase("user_id", &user_id)).await? {
        return Ok(refused);
    }
    let path = format!("/users/{}", path_segment(&user_id));
    Ok(relay(app.management.call(Method::DELETE, &path, &Body::Empty).await?))
}

#[derive(serde::Deserialize)]
#[serde(rename_all = "camelCase")]
struct ChangePassword {
    email: Option<String>,
    connection: Option<String>,
    user_id: Option<String>,
    auth_user_id: Option<String>,
}

/// Sends the user Auth0's password-change e-mail.
#[utoipa::path(
    post,
    path = "/change-password",
    tag = "users",
    request_body(content = Object, content_type = "application/json",
        description = "{\"email\", \"connection\"?} or {\"userId\"} / {\"authUserId\"}"),
    responses((status = 204, description = "Mail sent"), (status = 400, body = MiaError))
)]
pub async fn change_password(State(app): State<AppState>, headers: HeaderMap, body: Bytes) -> Result<Response> {
    let client = optional_client(&app, &headers)?;
    let req: ChangePassword =
        serde_json::from_slice(&body).map_err(|e| Error::BadRequest(format!("invalid body: {e}")))?;
    let mut email = req.email.filter(|e| !e.is_empty());
    let mut connection = req.connection.filter(|c| !c.is_empty());
    if let Some(id) = req.user_id.or(req.auth_user_id).filter(|i| !i.is_empty()) {
        if let Some(refused) = out_of_reach(&app, &headers, &phrase("user_id", &id)).await? {
            return Ok(refused);
        }
        let up = app.management.call(Method::GET, &format!("/users/{}", path_segment(&id)), &Body::Empty).await?;
        if !up.is_success() {
            return Ok(relay(up));
        }
        let user = parse_json(&up)?;
        email = email.or_else(|| user.get("email").and_then(Value::as_str).map(str::to_owned));
        if connection.is_none() {
            connection = user
                .get("identities")
                .and_then(Value::as_array)
                .and_then(|ids| ids.iter().find(|i| i.get("provider").and_then(Value::as_str) == Some("auth0")))
                .and_then(|i| i.get("connection"))
                .and_then(Value::as_str)
                .map(str::to_owned);
        }
    }
    let email = email.ok_or_else(|| Error::BadRequest("email (or userId) is required".into()))?;
    let mc = app.management.client();
    let connection = connection.or_else(|| mc.default_connection().map(str::to_owned)).ok_or_else(|| {
        Error::BadRequest("connection is required: the management client has no default connection".into())
    })?;
    let supported = mc.supported_connections();
    if !supported.is_empty() && !supported.contains(&connection) {
        return Err(Error::BadRequest(format!("connection {connection:?} is not supported by the management client")));
    }
    let who = format!("{} AND {}", phrase("email", &email), phrase("identities.connection", &connection));
    if let Some(refused) = out_of_reach(&app, &headers, &who).await? {
        return Ok(refused);
    }
    let (auth0_url, client_id) = match client {
        Some(c) => (c.auth0_url.as_str(), c.client_id.as_str()),
        None => (mc.auth0_url.as_str(), mc.client_id.as_str()),
    };
    let up =
        crate::auth0::authentication::change_password(&app.http, auth0_url, client_id, &email, &connection).await?;
    if up.is_success() {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(relay(up))
}

/// The connection map of the current management-client shape; the import routes exist only
/// with it (spec B8).
fn import_map(app: &crate::App) -> Result<(&std::collections::BTreeMap<String, String>, Option<&str>)> {
    match &app.management.client().shape {
        ManagementShape::Current { supported_connections_map, default_management_connection_name } => {
            Ok((supported_connections_map, default_management_connection_name.as_deref()))
        }
        _ => Err(Error::NotFound("bulk import is not enabled: managementClient has no supportedConnectionsMap".into())),
    }
}

/// Starts an Auth0 bulk import job: multipart (`users` file, `connection` name, `upsert`,
/// `external_id`, `send_completion_email`) or the same as JSON with `users` an array.
#[utoipa::path(
    post,
    path = "/users/import",
    tag = "import",
    request_body(content = String, content_type = "multipart/form-data",
        description = "users (file), connection (name), upsert, external_id, send_completion_email"),
    responses(
        (status = 202, description = "Auth0's job", body = Object),
        (status = 400, description = "connection_id sent, or an unknown connection", body = MiaError),
        (status = 404, description = "Import not enabled (no supportedConnectionsMap)", body = MiaError),
    )
)]
pub async fn import(State(app): State<AppState>, req: Request) -> Result<Response> {
    optional_client(&app, req.headers())?;
    let (map, default) = import_map(&app)?;
    let is_multipart = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|ct| ct.to_ascii_lowercase().starts_with("multipart/form-data"));
    let mut fields: Vec<(String, String)> = Vec::new();
    let mut users: Option<Part> = None;
    if is_multipart {
        let mut mp = Multipart::from_request(req, &())
            .await
            .map_err(|e| Error::BadRequest(format!("invalid multipart body: {e}")))?;
        while let Some(field) =
            mp.next_field().await.map_err(|e| Error::BadRequest(format!("invalid multipart body: {e}")))?
        {
            let name = field.name().unwrap_or("").to_string();
            let file_name = field.file_name().map(str::to_owned);
            let content_type = field.content_type().map(str::to_owned);
            let data = field.bytes().await.map_err(|e| {
                let status = e.status();
                if status == StatusCode::PAYLOAD_TOO_LARGE {
                    Error::BadRequest("the import file is too large".into())
                } else {
                    Error::BadRequest(format!("invalid multipart body: {e}"))
                }
            })?;
            if name == "users" {
                users = Some(Part {
                    name,
                    file_name: file_name.or(Some("users.json".into())),
                    content_type: content_type.or(Some("application/json".into())),
                    data,
                });
            } else {
                fields.push((name, String::from_utf8_lossy(&data).into_owned()));
            }
        }
    } else {
        let body =
            Bytes::from_request(req, &()).await.map_err(|e| Error::BadRequest(format!("unreadable body: {e}")))?;
        let mut m = json_body(&body)?;
        let list = m.remove("users").ok_or_else(|| Error::BadRequest("users is required".into()))?;
        if !list.is_array() {
            return Err(Error::BadRequest("users must be an array".into()));
        }
        let data = serde_json::to_vec(&list).map_err(|e| Error::Internal(e.to_string()))?;
        users = Some(Part {
            name: "users".into(),
            file_name: Some("users.json".into()),
            content_type: Some("application/json".into()),
            data: data.into(),
        });
        for (k, v) in m {
            let v = match v {
                Value::String(s) => s,
                Value::Null => continue,
                other => other.to_string(),
            };
            fields.push((k, v));
        }
    }
    if fields.iter().any(|(k, _)| k == "connection_id") {
        return Err(Error::BadRequest("connection_id must not be sent: name the connection with connection".into()));
    }
    let users = users.ok_or_else(|| Error::BadRequest("the users file is required".into()))?;
    let name = fields
        .iter()
        .find(|(k, v)| k == "connection" && !v.is_empty())
        .map(|(_, v)| v.as_str())
        .or(default)
        .ok_or_else(|| Error::BadRequest("connection is required: no defaultManagementConnectionName".into()))?;
    let connection_id = map
        .get(name)
        .ok_or_else(|| Error::BadRequest(format!("connection {name:?} is not in supportedConnectionsMap")))?;
    let mut parts = vec![users, text_part("connection_id", connection_id)];
    for (k, v) in &fields {
        if matches!(k.as_str(), "upsert" | "external_id" | "send_completion_email") {
            parts.push(text_part(k, v));
        }
    }
    Ok(relay(app.management.call(Method::POST, "/jobs/users-imports", &Body::Multipart(parts)).await?))
}

fn text_part(name: &str, value: &str) -> Part {
    Part { name: name.into(), file_name: None, content_type: None, data: Bytes::copy_from_slice(value.as_bytes()) }
}

/// An import job's state.
#[utoipa::path(
    get,
    path = "/users/import/status/{jobID}",
    tag = "import",
    params(("jobID" = String, Path)),
    responses((status = 200, description = "Auth0's job", body = Object), (status = 404, body = MiaError))
)]
pub async fn job_status(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> Result<Response> {
    optional_client(&app, &headers)?;
    let job = job_in_reach(&app, &job_id).await?;
    Ok(relay(job))
}

/// The job `job_id` as Auth0 answers it, when it imports into one of the connections of
/// `supportedConnectionsMap`. The management token reaches every job of the tenant, and a
/// job's errors list the emails of the users it refused, so a job of another connection
/// (say another environment's) is answered as an unknown one.
async fn job_in_reach(app: &crate::App, job_id: &str) -> Result<Upstream> {
    let (map, _) = import_map(app)?;
    let job = app.management.call(Method::GET, &format!("/jobs/{}", path_segment(job_id)), &Body::Empty).await?;
    if !job.status.is_success() {
        return Ok(job);
    }
    let connection_id = serde_json::from_slice::<Value>(&job.body)
        .ok()
        .and_then(|v| v.get("connection_id").and_then(Value::as_str).map(str::to_owned));
    match connection_id {
        Some(id) if map.values().any(|known| *known == id) => Ok(job),
        _ => Err(Error::NotFound("job not found".into())),
    }
}

/// An import job's errors (Auth0 answers 204 when there are none).
#[utoipa::path(
    get,
    path = "/users/import/status/{jobID}/errors",
    tag = "import",
    params(("jobID" = String, Path)),
    responses((status = 200, description = "Auth0's error list", body = Vec<Object>), (status = 204, description = "No errors"))
)]
pub async fn job_errors(
    State(app): State<AppState>,
    headers: HeaderMap,
    Path(job_id): Path<String>,
) -> Result<Response> {
    optional_client(&app, &headers)?;
    let job = job_in_reach(&app, &job_id).await?;
    if !job.status.is_success() {
        return Ok(relay(job));
    }
    let path = format!("/jobs/{}/errors", path_segment(&job_id));
    Ok(relay(app.management.call(Method::GET, &path, &Body::Empty).await?))
}
