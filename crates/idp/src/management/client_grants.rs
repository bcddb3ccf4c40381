//! `/api/v2/client-grants`: which application may get tokens for which API, with which scopes.

use super::{ApiError, ApiResult, Caller, Query, body_object, created, no_content, ok, paged, take_typed};
use crate::AppState;
use crate::util::random_alnum;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::routing::{get, patch};
use serde_json::{Map, Value, json};
use store::ClientGrant;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/client-grants", get(list).post(create))
        .route("/client-grants/{id}", patch(update).delete(remove).get(read))
}

fn not_found() -> ApiError {
    ApiError::not_found("The grant does not exist.", "inexistent_client_grant")
}

fn to_json(g: &ClientGrant) -> Value {
    let mut v = json!(g);
    v["is_system"] = json!(false);
    v
}

/// Scopes must exist on the API, as Auth0 insists.
async fn check_scopes(idp: &AppState, audience: &str, scope: &[String]) -> ApiResult<()> {
    let api = idp.store.resource_server_by_identifier(audience).await?.ok_or_else(|| {
        ApiError::not_found(format!("No resource server found for audience {audience}"), "inexistent_resource_server")
    })?;
    if let Some(bad) = scope.iter().find(|s| !api.scopes.iter().any(|x| x.value == **s)) {
        return Err(ApiError::bad_request(format!(
            "Payload validation error: scope must be a subset of resource server scopes ({bad})"
        )));
    }
    Ok(())
}

async fn list(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:client_grants"])?;
    let audience = q.get("audience");
    let client_id = q.get("client_id");
    let items = idp
        .store
        .client_grants()
        .await?
        .into_iter()
        .filter(|g| audience.is_none_or(|a| a == g.audience) && client_id.is_none_or(|c| c == g.client_id))
        .map(|g| to_json(&g))
        .collect();
    paged(&q, items, "client_grants")
}

async fn read(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:client_grants"])?;
    Ok(ok(&to_json(&idp.store.client_grant(&id).await?.ok_or_else(not_found)?)))
}

async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:client_grants"])?;
    let mut doc: Map<String, Value> = body_object(&body)?;
    let client_id: String = take_typed(&mut doc, "client_id")?
        .ok_or_else(|| ApiError::bad_request("Payload validation error: Missing required property: client_id"))?;
    let audience: String = take_typed(&mut doc, "audience")?
        .ok_or_else(|| ApiError::bad_request("Payload validation error: Missing required property: audience"))?;
    let scope: Vec<String> = take_typed(&mut doc, "scope")?.unwrap_or_default();
    doc.remove("id");
    doc.remove("is_system");
    if idp.store.client(&client_id).await?.is_none() {
        return Err(ApiError::not_found("The client does not exist", "inexistent_client"));
    }
    check_scopes(&idp, &audience, &scope).await?;
    if idp.store.client_grant_for(&client_id, &audience).await?.is_some() {
        return Err(ApiError::conflict(
            "A client grant for this client and audience already exists",
            "client_grant_conflict",
        ));
    }
    let grant = ClientGrant { id: format!("cgr_{}", random_alnum(16)), client_id, audience, scope, extra: doc };
    idp.store.put_client_grant(&grant).await?;
    Ok(created(&to_json(&grant)))
}

async fn update(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:client_grants"])?;
    let mut doc = body_object(&body)?;
    let mut grant = idp.store.client_grant(&id).await?.ok_or_else(not_found)?;
    if let Some(scope) = take_typed::<Vec<String>>(&mut doc, "scope")? {
        check_scopes(&idp, &grant.audience, &scope).await?;
        grant.scope = scope;
    }
    for k in ["organization_usage", "allow_any_organization", "authorization_details_types", "allow_all_scopes"] {
        if let Some(v) = doc.remove(k) {
            grant.extra.insert(k.into(), v);
        }
    }
    idp.store.put_client_grant(&grant).await?;
    Ok(ok(&to_json(&grant)))
}

async fn remove(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:client_grants"])?;
    idp.store.delete_client_grant(&id).await?;
    Ok(no_content())
}
