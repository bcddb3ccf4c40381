//! `GET /api/v2/users`: Auth0's search v3 (`q` in its Lucene syntax), sort, paging and the
//! `{start, limit, length, total, users}` shape. The query is parsed here into the store's typed
//! query and run as SQL by the store; nothing is filtered in memory.

use super::{ApiError, ApiResult, Query};
use serde_json::{Value, json};
use store::UserSearch;
use store::search::{self, SortField};

/// Auth0 pages through the first 1000 matches only.
const MAX_RESULTS: u32 = 1000;

/// The store's search for the list's query parameters.
pub fn user_search(q: &Query) -> ApiResult<UserSearch> {
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
    Ok(UserSearch { query, sort, page, per_page, totals })
}

/// The list's body: the users alone, or with `include_totals` Auth0's paging shape.
pub fn page_body(search: &UserSearch, users: Vec<Value>, total: Option<u64>) -> Value {
    let Some(total) = total else {
        return Value::Array(users);
    };
    // The page moves into the body as it is: `json!` would copy every user's value again.
    let mut body = json!({
        "start": search.page * search.per_page,
        "limit": search.per_page,
        "length": users.len(),
        "total": total,
    });
    body["users"] = Value::Array(users);
    body
}
