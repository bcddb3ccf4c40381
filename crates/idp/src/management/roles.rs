//! `/api/v2/roles`: roles (Auth0's RBAC), their permissions and their users. A permission is a
//! scope an API defines (`resource_server_identifier` + `permission_name`); one it does not
//! define is refused with nothing written. Assigning what is already assigned changes nothing,
//! as on Auth0. The users' side (`/users/{id}/roles`, `/users/{id}/permissions`) is
//! `user_roles.rs`, over the shared pieces here.

use super::users::to_json as user_json;
use super::{ApiError, ApiResult, Caller, Query, body_object, ok};
use crate::AppState;
use crate::util::{b64url, b64url_decode, random_alnum};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Map, Value, json};
use std::collections::HashMap;
use store::{Page, Permission, ResourceServer, Role};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/roles", get(list).post(create))
        .route("/roles/{id}", get(read).patch(update).delete(remove))
        .route("/roles/{id}/permissions", get(permissions).post(add_permissions).delete(remove_permissions))
        .route("/roles/{id}/users", get(users).post(assign_users))
}

/// Auth0's bounds: permissions a role, or a user directly, may hold, and what one call names.
pub(super) const MAX_PERMISSIONS: u64 = 1000;
const MAX_PER_CALL: usize = 1000;
/// Lengths of a role's name and description.
const MAX_NAME: usize = 255;
const MAX_DESCRIPTION: usize = 255;
/// Offset paging reaches this far; checkpoint paging (`from`/`take`) goes further.
const MAX_OFFSET: u64 = 1000;

pub(super) fn role_not_found() -> ApiError {
    ApiError::not_found("The role does not exist.", "inexistent_role")
}

pub(super) fn user_not_found() -> ApiError {
    ApiError::not_found("The user does not exist.", "inexistent_user")
}

/// A store `NotFound` from a write names what it missed ("role …", "user …", "permission …");
/// each is answered as Auth0 answers it.
pub(super) fn missing(e: store::Error) -> ApiError {
    match e {
        store::Error::NotFound(what) if what.starts_with("role ") => role_not_found(),
        store::Error::NotFound(what) if what.starts_with("user ") => user_not_found(),
        store::Error::NotFound(what) => {
            ApiError::bad_request(format!("Payload validation error: {what} does not exist."))
        }
        other => other.into(),
    }
}

/// Passes with `read:role_members`, or with both `read:users` and `read:roles` (Auth0's rule
/// for listing who holds which role).
pub(super) fn require_members_read(caller: &Caller) -> ApiResult<()> {
    if caller.has("read:role_members") || (caller.has("read:users") && caller.has("read:roles")) {
        return Ok(());
    }
    Err(ApiError::new(
        StatusCode::FORBIDDEN,
        "Insufficient scope, expected all of: read:users,read:roles",
        Some("insufficient_scope"),
    ))
}

pub(super) fn empty(status: StatusCode) -> Response {
    status.into_response()
}

/// `page`/`per_page` (at most 100 a page, within Auth0's first 1000 entries).
pub(super) fn offset_page(q: &Query) -> ApiResult<Page> {
    let per_page = u64::from(q.number("per_page", 100)?.unwrap_or(50));
    let page = u64::from(q.number("page", 100_000)?.unwrap_or(0));
    let offset = page * per_page;
    if page > 0 && offset >= MAX_OFFSET {
        return Err(ApiError::bad_query("You can only page through the first 1000 records."));
    }
    Ok(Page { offset, limit: per_page })
}

/// A list in Auth0's two shapes: the bare array, or with `include_totals` inside
/// `{start, limit, total, <collection>}`.
pub(super) fn listed(q: &Query, page: Page, total: u64, collection: &str, items: Vec<Value>) -> ApiResult<Response> {
    if q.flag("include_totals")?.unwrap_or(false) {
        let mut body = json!({ "start": page.offset, "limit": page.limit, "total": total });
        body[collection] = Value::Array(items);
        return Ok(ok(&body));
    }
    Ok(ok(&Value::Array(items)))
}

fn role_json(r: &Role) -> Value {
    let mut v = json!({ "id": r.id, "name": r.name });
    if let Some(d) = &r.description {
        v["description"] = json!(d);
    }
    v
}

pub(super) fn role_list(roles: &[Role]) -> Vec<Value> {
    roles.iter().map(role_json).collect()
}

/// Keys left in a body once every known one was taken: Auth0 refuses them.
pub(super) fn refuse_additional(doc: &Map<String, Value>) -> ApiResult<()> {
    match doc.keys().next() {
        Some(k) => {
            Err(ApiError::bad_request(format!("Payload validation error: 'Additional properties not allowed: {k}'.")))
        }
        None => Ok(()),
    }
}

/// A required array of non-empty strings (role ids, user ids), at most [`MAX_PER_CALL`].
pub(super) fn id_list(doc: &mut Map<String, Value>, key: &str) -> ApiResult<Vec<String>> {
    let invalid = || {
        ApiError::bad_request(format!(
            "Payload validation error: '{key}' must be an array of 1 to {MAX_PER_CALL} non-empty strings."
        ))
    };
    let items = match doc.remove(key) {
        Some(Value::Array(items)) => items,
        None => {
            return Err(ApiError::bad_request(format!("Payload validation error: Missing required property: {key}")));
        }
        Some(_) => return Err(invalid()),
    };
    if items.is_empty() || items.len() > MAX_PER_CALL {
        return Err(invalid());
    }
    let mut ids: Vec<String> = Vec::with_capacity(items.len());
    for item in items {
        match item {
            Value::String(s) if !s.is_empty() && s.len() <= 1024 => {
                if !ids.contains(&s) {
                    ids.push(s);
                }
            }
            _ => return Err(invalid()),
        }
    }
    refuse_additional(doc)?;
    Ok(ids)
}

/// The body's `permissions`: 1 to [`MAX_PER_CALL`] pairs, each exactly a
/// `resource_server_identifier` and a `permission_name`, each defined by its API (`apis`).
pub(super) fn permission_list(body: &[u8], apis: &Apis) -> ApiResult<Vec<Permission>> {
    let mut doc = body_object(body)?;
    let Some(items) = doc.remove("permissions") else {
        return Err(ApiError::bad_request("Payload validation error: Missing required property: permissions"));
    };
    refuse_additional(&doc)?;
    let Value::Array(items) = items else {
        return Err(ApiError::bad_request("Payload validation error: 'permissions' must be an array."));
    };
    if items.is_empty() || items.len() > MAX_PER_CALL {
        return Err(ApiError::bad_request(format!(
            "Payload validation error: 'permissions' must hold 1 to {MAX_PER_CALL} permissions."
        )));
    }
    let mut out: Vec<Permission> = Vec::with_capacity(items.len());
    for item in items {
        let permission: Permission = match item {
            Value::Object(m) if m.len() == 2 => serde_json::from_value(Value::Object(m)).map_err(|_| shape_error())?,
            _ => return Err(shape_error()),
        };
        apis.check(&permission)?;
        if !out.contains(&permission) {
            out.push(permission);
        }
    }
    Ok(out)
}

fn shape_error() -> ApiError {
    ApiError::bad_request(
        "Payload validation error: each permission must be an object with exactly the strings 'resource_server_identifier' and 'permission_name'.",
    )
}

/// The tenant's APIs, read once per request: which permissions exist, and the names and
/// descriptions a listing shows with each.
pub(super) struct Apis(HashMap<String, ResourceServer>);

impl Apis {
    pub(super) async fn load(idp: &AppState) -> ApiResult<Apis> {
        let all = idp.store.resource_servers().await?;
        Ok(Apis(all.into_iter().map(|a| (a.identifier.clone(), a)).collect()))
    }

    fn check(&self, p: &Permission) -> ApiResult<()> {
        let api = self.0.get(&p.resource_server_identifier).ok_or_else(|| {
            ApiError::bad_request(format!(
                "Payload validation error: no API has the identifier '{}'.",
                p.resource_server_identifier
            ))
        })?;
        if !api.scopes.iter().any(|s| s.value == p.permission_name) {
            return Err(ApiError::bad_request(format!(
                "Payload validation error: the permission '{}' is not defined by the API '{}'.",
                p.permission_name, p.resource_server_identifier
            )));
        }
        Ok(())
    }

    /// A permission as Auth0 lists it, with its API's name and the scope's description.
    pub(super) fn describe(&self, p: &Permission) -> Value {
        let api = self.0.get(&p.resource_server_identifier);
        let description =
            api.and_then(|a| a.scopes.iter().find(|s| s.value == p.permission_name)).map(|s| &s.description);
        json!({
            "resource_server_identifier": p.resource_server_identifier,
            "permission_name": p.permission_name,
            "resource_server_name": api.map(|a| a.name.as_str()).unwrap_or_default(),
            "description": description.map(String::as_str).unwrap_or_default(),
        })
    }
}

/// A role's name and description from a body; `required` for a new role.
fn role_fields(doc: &mut Map<String, Value>, role: &mut Role, required: bool) -> ApiResult<()> {
    match doc.remove("name") {
        Some(Value::String(n)) if !n.trim().is_empty() && n.chars().count() <= MAX_NAME => role.name = n,
        None if !required => {}
        None => return Err(ApiError::bad_request("Payload validation error: Missing required property: name")),
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "Payload validation error: 'name' must be a non-blank string of at most {MAX_NAME} characters."
            )));
        }
    }
    match doc.remove("description") {
        Some(Value::String(d)) if d.chars().count() <= MAX_DESCRIPTION => role.description = Some(d),
        Some(Value::Null) | None => {}
        Some(_) => {
            return Err(ApiError::bad_request(format!(
                "Payload validation error: 'description' must be a string of at most {MAX_DESCRIPTION} characters."
            )));
        }
    }
    refuse_additional(doc)
}

fn conflict() -> ApiError {
    ApiError::conflict("A role with the same name already exists.", "role_conflict")
}

async fn find(idp: &AppState, id: &str) -> ApiResult<Role> {
    idp.store.role(id).await?.ok_or_else(role_not_found)
}

async fn list(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:roles"])?;
    let page = offset_page(&q)?;
    let filter = q.get("name_filter").filter(|f| !f.is_empty());
    let found = idp.store.roles(filter, page).await?;
    listed(&q, page, found.total, "roles", role_list(&found.items))
}

async fn read(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:roles"])?;
    Ok(ok(&role_json(&find(&idp, &id).await?)))
}

async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:roles"])?;
    let mut doc = body_object(&body)?;
    let mut role = Role { id: format!("rol_{}", random_alnum(16)), name: String::new(), description: None };
    role_fields(&mut doc, &mut role, true)?;
    match idp.store.create_role(&role).await {
        Ok(()) => Ok(ok(&role_json(&role))),
        Err(store::Error::Conflict(_)) => Err(conflict()),
        Err(e) => Err(e.into()),
    }
}

async fn update(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:roles"])?;
    let mut doc = body_object(&body)?;
    let mut role = find(&idp, &id).await?;
    role_fields(&mut doc, &mut role, false)?;
    match idp.store.update_role(&role).await {
        Ok(()) => Ok(ok(&role_json(&role))),
        Err(store::Error::Conflict(_)) => Err(conflict()),
        Err(store::Error::NotFound(_)) => Err(role_not_found()),
        Err(e) => Err(e.into()),
    }
}

async fn remove(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:roles"])?;
    // Its permissions and assignments go with it, in the same transaction.
    if !idp.store.delete_role(&id).await? {
        return Err(role_not_found());
    }
    Ok(empty(StatusCode::OK))
}

async fn permissions(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:roles"])?;
    let page = offset_page(&q)?;
    let found = idp.store.role_permissions(&id, page).await.map_err(missing)?;
    let apis = Apis::load(&idp).await?;
    let items = found.items.iter().map(|p| apis.describe(p)).collect();
    listed(&q, page, found.total, "permissions", items)
}

async fn add_permissions(
    State(idp): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require(&["update:roles"])?;
    let wanted = permission_list(&body, &Apis::load(&idp).await?)?;
    let held =
        idp.store.role_permissions(&id, Page { offset: 0, limit: MAX_PERMISSIONS + 1 }).await.map_err(missing)?;
    let new = wanted.iter().filter(|p| !held.items.contains(p)).count() as u64;
    if held.total + new > MAX_PERMISSIONS {
        return Err(ApiError::bad_request(format!(
            "A role can hold at most {MAX_PERMISSIONS} permissions; this one holds {} and the request adds {new}.",
            held.total
        )));
    }
    idp.store.add_role_permissions(&id, &wanted).await.map_err(missing)?;
    Ok(empty(StatusCode::CREATED))
}

async fn remove_permissions(
    State(idp): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require(&["update:roles"])?;
    let gone = permission_list(&body, &Apis::load(&idp).await?)?;
    idp.store.remove_role_permissions(&id, &gone).await.map_err(missing)?;
    Ok(empty(StatusCode::OK))
}

/// A role's users: offset paging, or checkpoint paging with `from`/`take` (past Auth0's
/// first 1000), whose `next` is opaque (the last user id, encoded).
async fn users(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    require_members_read(&caller)?;
    let member = |u: &store::User| {
        let mut v = user_json(u);
        if let Value::Object(m) = &mut v {
            m.retain(|k, _| matches!(k.as_str(), "user_id" | "email" | "name" | "picture"));
        }
        v
    };
    if q.get("from").is_some() || q.get("take").is_some() {
        let take = u64::from(q.number("take", 100)?.unwrap_or(50)).max(1);
        let after = match q.get("from").filter(|f| !f.is_empty()) {
            Some(f) => Some(b64url_decode(f).and_then(|b| String::from_utf8(b).ok()).ok_or_else(|| {
                ApiError::bad_query("Query validation error: 'from' is not a checkpoint this API gave.")
            })?),
            None => None,
        };
        // One more than asked: whether there is a next page.
        let found =
            idp.store.role_users(&id, after.as_deref(), Page { offset: 0, limit: take + 1 }).await.map_err(missing)?;
        let more = (found.items.len() as u64) > take;
        let page: Vec<&store::User> = found.items.iter().take(take as usize).collect();
        let mut body = json!({ "users": page.iter().map(|u| member(u)).collect::<Vec<_>>() });
        if let (true, Some(last)) = (more, page.last()) {
            body["next"] = json!(b64url(last.user_id.as_bytes()));
        }
        return Ok(ok(&body));
    }
    let page = offset_page(&q)?;
    let found = idp.store.role_users(&id, None, page).await.map_err(missing)?;
    let items = found.items.iter().map(member).collect();
    listed(&q, page, found.total, "users", items)
}

async fn assign_users(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:roles", "create:role_members"])?;
    let mut doc = body_object(&body)?;
    let users = id_list(&mut doc, "users")?;
    idp.store.assign_roles(&users, std::slice::from_ref(&id)).await.map_err(missing)?;
    Ok(empty(StatusCode::OK))
}
