//! `GET /api/v2/users`: Auth0's search v3 (`q` in its Lucene syntax), sort, paging and the
//! `{start, limit, length, total, users}` shape. The query is parsed here into the store's typed
//! query and run as SQL by the store; nothing is filtered in memory.

use super::users::to_json;
use super::{ApiError, ApiResult, Query, ok, select};
use crate::AppState;
use axum::response::Response;
use serde_json::{Value, json};
use store::search::{self, SortField};
use store::{UserPage, UserSearch};

/// Auth0 pages through the first 1000 matches only.
const MAX_RESULTS: u32 = 1000;

pub async fn list_users(idp: &AppState, q: &Query) -> ApiResult<Response> {
    if let Some(engine) = q.get("search_engine").filter(|e| !e.is_empty())
        && engine != "v3"
    {
        return Err(ApiError::bad_query(format!("The search_engine {engine} is no longer supported; use v3.")));
    }
    let per_page = q.number("per_page", 100)?.unwrap_or(50);
    let page = q.number("page", MAX_RESULTS)?.unwrap_or(0);
    if (page + 1) * per_page.max(1) > MAX_RESULTS && page > 0 {
        return Err(ApiError::bad_query("You can only page through the first 1000 records."));
    }
    let query = match q.get("q").map(str::trim).filter(|s| !s.is_empty()) {
        Some(text) => {
            Some(search::parse(text).map_err(|e| ApiError::bad_query(format!("Query validation error: {e}")))?)
        }
        None => None,
    };
    let sort = match q.get("sort").filter(|s| !s.is_empty()) {
        Some(s) => {
            let (field, dir) = s.rsplit_once(':').unwrap_or((s, "1"));
            let field = SortField::parse(field)
                .ok_or_else(|| ApiError::bad_query(format!("Query validation error: cannot sort by {field}")))?;
            let ascending = match dir {
                "1" => true,
                "-1" => false,
                _ => return Err(ApiError::bad_query("Query validation error: sort order must be 1 or -1")),
            };
            Some((field, ascending))
        }
        None => None,
    };
    let totals = q.flag("include_totals")?.unwrap_or(false);
    let fields = q.fields()?;
    let UserPage { users, total } = idp.store.search_users(&UserSearch { query, sort, page, per_page, totals }).await?;
    let users: Vec<Value> = users.iter().map(|u| select(to_json(&u.user), &fields)).collect();
    // The page moves into the body as it is: `json!` would copy every user's value again.
    if let Some(total) = total {
        let mut body = json!({
            "start": page * per_page,
            "limit": per_page,
            "length": users.len(),
            "total": total,
        });
        body["users"] = Value::Array(users);
        return Ok(ok(&body));
    }
    Ok(ok(&Value::Array(users)))
}
