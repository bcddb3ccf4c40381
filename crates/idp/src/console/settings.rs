//! Settings → Advanced: the tenant's Allowed Logout URLs (guide steps 2 and 6).

use super::html;
use super::{Admin, Form, after_write};
use crate::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::get;
use serde_json::json;
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new().route("/settings/advanced", get(advanced).post(save))
}

async fn advanced(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let reply = admin.get(&idp, "/tenants/settings").await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let inner = format!(
        "{}{}",
        html::textarea(
            "allowed_logout_urls",
            "Allowed Logout URLs",
            "allowed_logout_urls",
            &html::lines(reply.body.get("allowed_logout_urls")),
            "Where a logout may return when the request names no application. Comma- or line-separated.",
            ""
        ),
        html::submit(&admin, "Save")
    );
    let body = format!(
        "{}<section><h2>Login and Logout</h2>{}</section>",
        html::tabs("/console/settings", "advanced", &[("advanced", "Advanced")]),
        html::form(&admin, "/console/settings/advanced", &inner)
    );
    html::page(&admin, "Tenant Settings", "/console/settings/advanced", q.get("m").map(String::as_str), &body)
}

async fn save(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let doc = json!({ "allowed_logout_urls": html::list(form.get("allowed_logout_urls")) });
    let reply = admin.api(&idp, Method::PATCH, "/tenants/settings", Some(&doc)).await;
    after_write(&admin, &reply, "/console/settings/advanced", "saved")
}
