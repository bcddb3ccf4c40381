//! `/api/v2/users/{id}/roles` and `/api/v2/users/{id}/permissions`: the roles a user holds and
//! the permissions given to them directly. A user's permission listing shows every permission
//! they hold, each once, with its `sources` (`DIRECT`, or each role it comes through), as
//! Auth0 shows it; only direct ones can be removed here.

use super::roles::{
    Apis, MAX_PERMISSIONS, empty, id_list, listed, missing, offset_page, permission_list, require_members_read,
    role_list,
};
use super::{ApiError, ApiResult, Caller, Query, body_object};
use crate::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Value, json};
use store::{Permission, PermissionSource};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users/{id}/roles", get(roles).post(assign).delete(unassign))
        .route("/users/{id}/permissions", get(permissions).post(add_permissions).delete(remove_permissions))
}

async fn roles(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    require_members_read(&caller)?;
    let page = offset_page(&q)?;
    let found = idp.store.user_roles(&id, page).await.map_err(missing)?;
    listed(&q, page, found.total, "roles", role_list(&found.items))
}

async fn assign(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:users", "create:role_members"])?;
    let mut doc = body_object(&body)?;
    let roles = id_list(&mut doc, "roles")?;
    idp.store.assign_roles(std::slice::from_ref(&id), &roles).await.map_err(missing)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

async fn unassign(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:users", "delete:role_members"])?;
    let mut doc = body_object(&body)?;
    let roles = id_list(&mut doc, "roles")?;
    idp.store.unassign_roles(&id, &roles).await.map_err(missing)?;
    Ok(empty(StatusCode::NO_CONTENT))
}

/// Every permission the user holds, once each, with where it comes from.
async fn permissions(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:users"])?;
    let page = offset_page(&q)?;
    let sources = idp.store.user_permission_sources(&id).await.map_err(missing)?;
    let apis = Apis::load(&idp).await?;
    // The store sorts by permission, so each permission's sources are adjacent.
    let mut grouped: Vec<(&Permission, Vec<Value>)> = Vec::new();
    for (permission, source) in &sources {
        let source = match source {
            PermissionSource::Direct => json!({ "source_id": "", "source_name": "", "source_type": "DIRECT" }),
            PermissionSource::Role { id, name } => {
                json!({ "source_id": id, "source_name": name, "source_type": "ROLE" })
            }
        };
        match grouped.last_mut() {
            Some((p, list)) if *p == permission => list.push(source),
            _ => grouped.push((permission, vec![source])),
        }
    }
    let total = grouped.len() as u64;
    let items = grouped
        .into_iter()
        .skip(usize::try_from(page.offset).unwrap_or(usize::MAX))
        .take(usize::try_from(page.limit).unwrap_or(usize::MAX))
        .map(|(p, sources)| {
            let mut v = apis.describe(p);
            v["sources"] = Value::Array(sources);
            v
        })
        .collect();
    listed(&q, page, total, "permissions", items)
}

async fn add_permissions(
    State(idp): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require(&["update:users"])?;
    let wanted = permission_list(&body, &Apis::load(&idp).await?)?;
    let direct: Vec<Permission> = idp
        .store
        .user_permission_sources(&id)
        .await
        .map_err(missing)?
        .into_iter()
        .filter(|(_, s)| *s == PermissionSource::Direct)
        .map(|(p, _)| p)
        .collect();
    let new = wanted.iter().filter(|p| !direct.contains(p)).count() as u64;
    if direct.len() as u64 + new > MAX_PERMISSIONS {
        return Err(ApiError::bad_request(format!(
            "A user can hold at most {MAX_PERMISSIONS} permissions directly; this one holds {} and the request adds {new}.",
            direct.len()
        )));
    }
    idp.store.add_user_permissions(&id, &wanted).await.map_err(missing)?;
    Ok(empty(StatusCode::CREATED))
}

async fn remove_permissions(
    State(idp): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    body: Bytes,
) -> ApiResult {
    caller.require(&["update:users"])?;
    let gone = permission_list(&body, &Apis::load(&idp).await?)?;
    idp.store.remove_user_permissions(&id, &gone).await.map_err(missing)?;
    Ok(empty(StatusCode::NO_CONTENT))
}
