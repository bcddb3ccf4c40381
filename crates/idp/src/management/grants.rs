//! `/api/v2/grants`: what users let applications have, recorded at login, listed by user,
//! client and audience, and revoked by id or by user. Revoking a grant revokes the refresh
//! tokens issued under it (all of the user's, when revoking by user).

use super::{ApiError, ApiResult, Caller, Query, no_content, ok};
use crate::AppState;
use crate::grants::consent;
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{delete, get};
use serde_json::{Value, json};
use store::{GrantFilter, Page, UserGrant};

pub fn routes() -> Router<AppState> {
    Router::new().route("/grants", get(list).delete(revoke_of_user)).route("/grants/{id}", delete(revoke))
}

fn to_json(g: &UserGrant) -> Value {
    json!({ "id": g.id, "clientID": g.client_id, "user_id": g.user_id, "audience": g.audience, "scope": g.scope })
}

async fn list(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:grants"])?;
    let text = |k: &str| q.get(k).filter(|v| !v.is_empty()).map(str::to_owned);
    let filter = GrantFilter { user_id: text("user_id"), client_id: text("client_id"), audience: text("audience") };
    let per_page = u64::from(q.number("per_page", 100)?.unwrap_or(50));
    let page = u64::from(q.number("page", 100_000)?.unwrap_or(0));
    let found = idp.store.user_grants(&filter, Page { offset: page * per_page, limit: per_page }).await?;
    let grants: Vec<Value> = found.items.iter().map(to_json).collect();
    if q.flag("include_totals")?.unwrap_or(false) {
        return Ok(ok(&json!({
            "start": page * per_page,
            "limit": per_page,
            "length": grants.len(),
            "total": found.total,
            "grants": grants,
        })));
    }
    Ok(ok(&json!(grants)))
}

async fn revoke(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:grants"])?;
    let grant = idp
        .store
        .user_grant(&id)
        .await?
        .ok_or_else(|| ApiError::not_found("The grant does not exist.", "inexistent_grant"))?;
    consent::revoke(&idp, &grant).await?;
    Ok(no_content())
}

async fn revoke_of_user(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["delete:grants"])?;
    let user_id = q
        .get("user_id")
        .filter(|u| !u.is_empty())
        .ok_or_else(|| ApiError::bad_query("Query validation error: Missing required property: user_id"))?;
    idp.store.delete_user_grants(user_id).await?;
    Ok(no_content())
}
