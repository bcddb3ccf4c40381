//! `/api/v2/resource-servers`: APIs (audiences). Addressed by id or by identifier; the system
//! Management API cannot be changed or removed.

use super::{ApiError, ApiResult, Caller, Query, body_object, created, no_content, ok, paged, select};
use crate::AppState;
use crate::util::random_hex;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::routing::get;
use serde_json::{Map, Value, json};
use store::ResourceServer;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/resource-servers", get(list).post(create))
        .route("/resource-servers/{id}", get(read).patch(update).delete(remove))
}

fn not_found() -> ApiError {
    ApiError::not_found("The resource server does not exist", "inexistent_resource_server")
}

async fn find(idp: &AppState, id: &str) -> ApiResult<ResourceServer> {
    if let Some(rs) = idp.store.resource_server(id).await? {
        return Ok(rs);
    }
    idp.store.resource_server_by_identifier(id).await?.ok_or_else(not_found)
}

/// `token_lifetime_for_web` defaults to 7200 but never above `token_lifetime`; a request that
/// does not set it gets it lowered along.
fn fit_web_lifetime(doc: &mut Map<String, Value>, explicit: bool) {
    let lifetime = doc.get("token_lifetime").and_then(Value::as_i64).unwrap_or(86400);
    let web = doc.get("token_lifetime_for_web").and_then(Value::as_i64).unwrap_or(7200);
    if !explicit && web > lifetime {
        doc.insert("token_lifetime_for_web".into(), json!(lifetime));
    }
}

fn parse(doc: Map<String, Value>) -> ApiResult<ResourceServer> {
    let rs: ResourceServer = serde_json::from_value(Value::Object(doc))
        .map_err(|e| ApiError::bad_request(format!("Payload validation error: {e}")))?;
    if rs.identifier.is_empty() || rs.identifier.len() > 600 {
        return Err(ApiError::bad_request("Payload validation error: 'identifier' must be 1 to 600 characters."));
    }
    if !(0..=2_592_000).contains(&rs.token_lifetime) {
        return Err(ApiError::bad_request("Payload validation error: token_lifetime must be from 0 to 2592000."));
    }
    if rs.token_lifetime_for_web > rs.token_lifetime {
        return Err(ApiError::bad_request(
            "Payload validation error: token_lifetime_for_web cannot exceed token_lifetime.",
        ));
    }
    check_rbac_settings(&rs)?;
    if rs.signing_alg != "RS256" {
        // Every token Gatehouse signs is RS256; accepting another value would be a lie.
        return Err(ApiError::bad_request("Payload validation error: only signing_alg RS256 is supported."));
    }
    Ok(rs)
}

/// The RBAC settings tokens and roles rely on: `enforce_policies` a boolean, `token_dialect`
/// one of Auth0's four, and scopes (the permissions roles hold) that a scope string can carry:
/// 1 to 280 characters without whitespace, each once, described in at most 500.
fn check_rbac_settings(rs: &ResourceServer) -> ApiResult<()> {
    if rs.extra.get("enforce_policies").is_some_and(|v| !v.is_boolean()) {
        return Err(ApiError::bad_request("Payload validation error: 'enforce_policies' must be a boolean."));
    }
    if let Some(d) = rs.extra.get("token_dialect")
        && d.as_str().is_none_or(|d| crate::rbac::Dialect::parse(d).is_none())
    {
        return Err(ApiError::bad_request(format!(
            "Payload validation error: 'token_dialect' must be one of {}.",
            crate::rbac::Dialect::NAMES.join(", ")
        )));
    }
    for (i, scope) in rs.scopes.iter().enumerate() {
        let v = &scope.value;
        if v.is_empty() || v.chars().count() > 280 || v.chars().any(char::is_whitespace) {
            return Err(ApiError::bad_request(format!(
                "Payload validation error: scope values must be 1 to 280 characters without whitespace ({v:?})."
            )));
        }
        if scope.description.chars().count() > 500 {
            return Err(ApiError::bad_request(
                "Payload validation error: scope descriptions are at most 500 characters.",
            ));
        }
        if rs.scopes[..i].iter().any(|s| s.value == *v) {
            return Err(ApiError::bad_request(format!("Payload validation error: the scope {v} is listed twice.")));
        }
    }
    Ok(())
}

/// An API as the Management API shows it: with Auth0's RBAC defaults (`enforce_policies`
/// false, `token_dialect` `access_token`) when they were never set, however it was created
/// (this API, a tenant file, an older version).
fn to_json(rs: &ResourceServer) -> Value {
    let mut v = json!(rs);
    if let (Value::Object(m), false) = (&mut v, rs.is_system) {
        m.entry("enforce_policies").or_insert(json!(false));
        m.entry("token_dialect").or_insert(json!("access_token"));
    }
    v
}

async fn list(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:resource_servers"])?;
    let wanted = q.all("identifiers");
    let items = idp
        .store
        .resource_servers()
        .await?
        .into_iter()
        .filter(|r| wanted.is_empty() || wanted.contains(&r.identifier.as_str()))
        .map(|r| to_json(&r))
        .collect();
    paged(&q, items, "resource_servers")
}

async fn read(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:resource_servers"])?;
    Ok(ok(&select(to_json(&find(&idp, &id).await?), &q.fields()?)))
}

async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:resource_servers"])?;
    let mut doc = body_object(&body)?;
    doc.remove("is_system");
    doc.insert("id".into(), json!(random_hex(24)));
    if !doc.contains_key("name")
        && let Some(i) = doc.get("identifier").cloned()
    {
        doc.insert("name".into(), i);
    }
    doc.entry("signing_alg").or_insert(json!("RS256"));
    let explicit = doc.contains_key("token_lifetime_for_web");
    fit_web_lifetime(&mut doc, explicit);
    let rs = parse(doc)?;
    if idp.store.resource_server_by_identifier(&rs.identifier).await?.is_some() {
        return Err(ApiError::conflict(
            "A resource server with the same identifier already exists",
            "operation_not_supported",
        ));
    }
    idp.store.put_resource_server(&rs).await?;
    Ok(created(&to_json(&rs)))
}

async fn update(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:resource_servers"])?;
    let patch = body_object(&body)?;
    let current = find(&idp, &id).await?;
    if current.is_system {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "The system resource server cannot be modified",
            Some("operation_not_supported"),
        ));
    }
    let Value::Object(mut doc) = json!(current) else { return Err(not_found()) };
    let explicit = patch.contains_key("token_lifetime_for_web");
    for (k, v) in patch {
        if matches!(k.as_str(), "id" | "identifier" | "is_system") {
            continue;
        }
        if v.is_null() {
            doc.remove(&k);
        } else {
            doc.insert(k, v);
        }
    }
    fit_web_lifetime(&mut doc, explicit);
    let rs = parse(doc)?;
    idp.store.put_resource_server(&rs).await?;
    Ok(ok(&to_json(&rs)))
}

async fn remove(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:resource_servers"])?;
    let rs = find(&idp, &id).await?;
    if rs.is_system {
        return Err(ApiError::new(
            StatusCode::FORBIDDEN,
            "The system resource server cannot be deleted",
            Some("operation_not_supported"),
        ));
    }
    // With the client grants for its audience, in one transaction.
    idp.store.delete_resource_server(&rs.id).await?;
    Ok(no_content())
}
