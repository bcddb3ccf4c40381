//! Monitoring → Logs: the tenant log, newest first, searched with Auth0's log query syntax.

use super::html::{self, esc};
use super::{Admin, enc};
use crate::AppState;
use axum::Router;
use axum::extract::{Query, State};
use axum::response::Response;
use axum::routing::get;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/logs", get(list))
}

const PER_PAGE: u32 = 50;

async fn list(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = html::page_number(&q).min(1000 / PER_PAGE - 1);
    let text = q.get("q").map(String::as_str).unwrap_or_default();
    let path = format!("/logs?include_totals=true&sort=date:-1&per_page={PER_PAGE}&page={page}&q={}", enc(text.trim()));
    let reply = admin.get(&idp, &path).await;
    let search = format!(
        "<form method=\"get\" action=\"/console/logs\" class=\"search\" role=\"search\">{}<button type=\"submit\">Search</button></form>",
        html::text("q", "Search logs (e.g. type:sapi or user_id:\"auth0|…\")", "q", text, " type=\"search\"")
    );
    if !reply.ok() {
        let body = format!("{search}<p class=\"error\" role=\"alert\">{}</p>", esc(&reply.message()));
        return html::page(&admin, "Logs", "/console/logs", None, &body);
    }
    let rows: Vec<Vec<String>> = reply.body["logs"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            let raw = serde_json::to_string_pretty(e).unwrap_or_default();
            vec![
                format!("<code>{}</code>", esc(e["type"].as_str().unwrap_or_default())),
                format!(
                    "<details><summary>{}</summary><pre>{}</pre></details>",
                    esc(e["description"].as_str().unwrap_or("(no description)")),
                    esc(&raw)
                ),
                esc(e["date"].as_str().unwrap_or_default()),
                esc(e["client_name"].as_str().or(e["client_id"].as_str()).unwrap_or_default()),
                esc(e["user_name"].as_str().or(e["user_id"].as_str()).unwrap_or_default()),
            ]
        })
        .collect();
    let total = reply.body["total"].as_u64().unwrap_or(0);
    let body = format!(
        "{search}{}{}",
        html::table("Log events", &["Type", "Description", "Date", "Application", "User"], &rows),
        html::pager(&format!("/console/logs?q={}&", enc(text)), page, PER_PAGE, total.min(1000))
    );
    html::page(&admin, "Logs", "/console/logs", None, &body)
}
