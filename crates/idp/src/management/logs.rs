//! `/api/v2/logs`, `/api/v2/logs/{id}` and `/api/v2/users/{id}/logs`: the tenant log, searched
//! with Auth0's log query syntax (`q`), paged by page or by checkpoint (`from`/`take`), in
//! Auth0's log shape. Scopes: `read:logs` (and `read:logs_users` for a user's events).

use super::{ApiError, ApiResult, Caller, Query, ok, select};
use crate::AppState;
use crate::logs::to_json;
use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use store::logs::{LogPaging, LogQuery, LogSearch, MAX_SEARCH_RESULTS, parse_log_query};

pub fn routes() -> Router<AppState> {
    Router::new().route("/logs", get(list)).route("/logs/{id}", get(read)).route("/users/{id}/logs", get(user_logs))
}

/// `sort`: only `date`, as `date:1` (oldest first) or `date:-1` (newest first, the default).
fn newest_first(q: &Query) -> ApiResult<bool> {
    match q.get("sort") {
        None | Some("") | Some("date:-1") => Ok(true),
        Some("date:1") => Ok(false),
        Some(other) => {
            Err(ApiError::bad_query(format!("Query validation error: 'sort' must be date:1 or date:-1, not {other:?}")))
        }
    }
}

fn per_page(q: &Query) -> ApiResult<u32> {
    match q.get("per_page") {
        None | Some("") => Ok(50),
        Some(v) => match v.parse::<u32>() {
            Ok(n) if (1..=100).contains(&n) => Ok(n),
            _ => Err(ApiError::bad_query("Query validation error: 'per_page' must be an integer from 1 to 100")),
        },
    }
}

/// Which fields each event keeps (`fields`, `include_fields`); an unknown field is Auth0's 400.
fn fields(q: &Query) -> ApiResult<Option<(Vec<String>, bool)>> {
    let fields = q.fields()?;
    if let Some((names, _)) = &fields {
        const KNOWN: &[&str] = &[
            "date",
            "type",
            "description",
            "client_id",
            "client_name",
            "ip",
            "user_agent",
            "user_id",
            "user_name",
            "connection",
            "connection_id",
            "strategy",
            "strategy_type",
            "audience",
            "scope",
            "hostname",
            "details",
            "isMobile",
            "log_id",
            "_id",
        ];
        if let Some(unknown) = names.iter().find(|f| !KNOWN.contains(&f.as_str())) {
            return Err(ApiError::bad_query(format!("Query validation error: unknown field '{unknown}' in 'fields'")));
        }
    }
    Ok(fields)
}

/// `GET /api/v2/logs`.
async fn list(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult<Response> {
    caller.require(&["read:logs"])?;
    let fields = fields(&q)?;
    if q.get("from").is_some() || q.get("take").is_some() {
        // Checkpoint paging: Auth0 ignores every other parameter, except that combining it
        // with page paging is a mistake worth saying.
        if q.get("page").is_some() || q.get("per_page").is_some() {
            return Err(ApiError::bad_query(
                "Query validation error: 'from' and 'take' cannot be combined with 'page' or 'per_page'",
            ));
        }
        let take = match q.get("take") {
            None | Some("") => 50,
            Some(v) => match v.parse::<u32>() {
                Ok(n) if (1..=100).contains(&n) => n,
                _ => {
                    return Err(ApiError::bad_query("Query validation error: 'take' must be an integer from 1 to 100"));
                }
            },
        };
        let from = q.get("from").filter(|f| !f.is_empty()).map(str::to_owned);
        if from.as_ref().is_some_and(|f| f.len() > 64 || !f.bytes().all(|b| b.is_ascii_alphanumeric())) {
            return Err(ApiError::bad_query("Query validation error: 'from' is not a log id"));
        }
        let search = LogSearch { query: LogQuery::All, paging: LogPaging::From { from: from.clone(), take } };
        let page = idp.store.logs().search_logs(&search).await?;
        let next = page.events.last().map(|e| e.log_id.clone()).or(from);
        let body: Vec<Value> = page.events.iter().map(|e| select(to_json(e), &fields)).collect();
        let mut res = ok(&json!(body));
        // The next checkpoint, as Auth0 gives it: the same query from the last event returned
        // (or, when nothing was new, from the same place).
        let mut link =
            url::Url::parse(&idp.config.url("api/v2/logs")).map_err(|e| ApiError::from(crate::Error::internal(e)))?;
        link.query_pairs_mut().append_pair("take", &take.to_string());
        if let Some(next) = next {
            link.query_pairs_mut().append_pair("from", &next);
        }
        if let Ok(v) = HeaderValue::from_str(&format!("<{link}>; rel=\"next\"")) {
            res.headers_mut().insert(header::LINK, v);
        }
        return Ok(res);
    }
    // `q`, or `search` as the v7 SDK names it.
    let query = parse_log_query(q.get("q").or(q.get("search")).unwrap_or(""))
        .map_err(|e| ApiError::bad_query(format!("Query validation error: invalid log search query: {}", e.0)))?;
    search_page(&idp, &q, query, fields).await
}

/// One page of a search, in Auth0's two shapes (`include_totals`).
async fn search_page(
    idp: &AppState,
    q: &Query,
    query: LogQuery,
    fields: Option<(Vec<String>, bool)>,
) -> ApiResult<Response> {
    let per_page = per_page(q)?;
    let page = q.number("page", 100_000)?.unwrap_or(0);
    let totals = q.flag("include_totals")?.unwrap_or(false);
    let paging = LogPaging::Page { page, per_page, totals, newest_first: newest_first(q)? };
    let found = idp.store.logs().search_logs(&LogSearch { query, paging }).await?;
    let logs: Vec<Value> = found.events.iter().map(|e| select(to_json(e), &fields)).collect();
    if !totals {
        return Ok(ok(&json!(logs)));
    }
    let start = (u64::from(page) * u64::from(per_page)).min(MAX_SEARCH_RESULTS);
    Ok(ok(&json!({
        "start": start,
        "limit": per_page,
        "length": logs.len(),
        "total": found.total.unwrap_or(0),
        "logs": logs,
    })))
}

/// `GET /api/v2/logs/{id}`.
async fn read(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(&["read:logs"])?;
    match idp.store.logs().log_event(&id).await? {
        Some(e) => Ok(ok(&to_json(&e))),
        None => Err(ApiError::new(StatusCode::NOT_FOUND, "log does not exist", Some("inexistent_log"))),
    }
}

/// `GET /api/v2/users/{id}/logs`: the user's events, newest first unless `sort=date:1`.
async fn user_logs(
    State(idp): State<AppState>,
    caller: Caller,
    Path(id): Path<String>,
    q: Query,
) -> ApiResult<Response> {
    caller.require(&["read:logs", "read:logs_users"])?;
    let query = LogQuery::Match(store::logs::LogField::UserId, store::logs::Match::Exact(id));
    search_page(&idp, &q, query, None).await
}
