//! APIs: the list, Create API (Name, Identifier), an API's Token Expiration (Seconds) and
//! Permissions (guide step 5).

use super::html::{self, esc};
use super::{Admin, Form, after_write, enc, redirect};
use crate::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/apis", get(list).post(create))
        .route("/apis/new", get(new))
        .route("/apis/{id}", get(|Path(id): Path<String>| async move { redirect(&format!("{}/settings", base(&id))) }))
        .route("/apis/{id}/settings", get(settings).post(save))
        .route("/apis/{id}/delete", post(delete))
}

fn base(id: &str) -> String {
    format!("/console/apis/{}", enc(id))
}

/// Auth0's bounds on an access token's lifetime.
const MAX_LIFETIME: i64 = 2_592_000;

async fn list(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let reply = admin.get(&idp, "/resource-servers?per_page=100").await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let rows: Vec<Vec<String>> = reply
        .body
        .as_array()
        .into_iter()
        .flatten()
        .map(|api| {
            let id = api["id"].as_str().unwrap_or_default();
            let system = if api["is_system"] == true { " <span class=\"badge\">System API</span>" } else { "" };
            vec![
                format!(
                    "<a href=\"{}/settings\">{}</a>{system}",
                    esc(&base(id)),
                    esc(api["name"].as_str().unwrap_or(id))
                ),
                format!("<code>{}</code>", esc(api["identifier"].as_str().unwrap_or_default())),
                api["token_lifetime"].as_i64().unwrap_or_default().to_string(),
            ]
        })
        .collect();
    let create =
        if admin.can_write() { "<p><a class=\"button\" href=\"/console/apis/new\">Create API</a></p>" } else { "" };
    let body = format!("{create}{}", html::table("APIs", &["Name", "Identifier", "Token Expiration (Seconds)"], &rows));
    html::page(&admin, "APIs", "/console/apis", q.get("m").map(String::as_str), &body)
}

async fn new(admin: Admin) -> Response {
    let inner = format!(
        "{}{}<p class=\"hint\" id=\"identifier-hint\">A logical identifier for this API, e.g. the URL of your backoffice. It cannot be changed later.</p>{}",
        html::text("name", "Name", "name", "", " required maxlength=\"200\""),
        html::text(
            "identifier",
            "Identifier",
            "identifier",
            "",
            " required maxlength=\"600\" aria-describedby=\"identifier-hint\""
        ),
        html::submit(&admin, "Create")
    );
    let body = html::form(&admin, "/console/apis", &inner);
    html::page(&admin, "Create API", "/console/apis", None, &body)
}

async fn create(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let doc = json!({ "name": form.get("name").trim(), "identifier": form.get("identifier").trim() });
    let reply = admin.api(&idp, Method::POST, "/resource-servers", Some(&doc)).await;
    if !reply.ok() {
        return html::error(&admin, &reply.message(), "/console/apis/new");
    }
    let id = reply.body["id"].as_str().unwrap_or_default();
    redirect(&format!("{}/settings?m=created", base(id)))
}

async fn settings(
    State(idp): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let reply = admin.get(&idp, &format!("/resource-servers/{}", enc(&id))).await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let api = &reply.body;
    let name = api["name"].as_str().unwrap_or(&id).to_owned();
    let system = api["is_system"] == true;
    let scopes: Vec<String> =
        api["scopes"].as_array().into_iter().flatten().filter_map(|s| s["value"].as_str()).map(str::to_owned).collect();
    let edit = if system {
        format!(
            "<p class=\"hint\">The Management API is a system API: its settings are fixed.</p>{}",
            html::readonly("token_lifetime", "Token Expiration (Seconds)", &api["token_lifetime"].to_string())
        )
    } else {
        let inner = format!(
            "{}{}{}{}",
            html::text("name", "Name", "name", &name, " required maxlength=\"200\""),
            html::number(
                "token_lifetime",
                "Token Expiration (Seconds)",
                "token_lifetime",
                api["token_lifetime"].as_i64().unwrap_or(86400),
                MAX_LIFETIME
            ),
            html::textarea(
                "scopes",
                "Permissions",
                "scopes",
                &scopes.join("\n"),
                "One permission (scope) a line, e.g. read:users",
                ""
            ),
            html::submit(&admin, "Save")
        );
        html::form(&admin, &format!("{}/settings", base(&id)), &inner)
    };
    let danger = if system {
        String::new()
    } else {
        format!(
            "<section><h2>Danger Zone</h2>{}</section>",
            html::delete_form(&admin, &format!("{}/delete", base(&id)), &format!("the API {name}"))
        )
    };
    let body = format!(
        "<p class=\"subtitle\">Identifier <code>{}</code></p><section><h2>Settings</h2>{}{edit}</section>{danger}",
        esc(api["identifier"].as_str().unwrap_or_default()),
        html::readonly("identifier", "Identifier", api["identifier"].as_str().unwrap_or_default()),
    );
    html::page(&admin, &name, "/console/apis", q.get("m").map(String::as_str), &body)
}

async fn save(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = format!("{}/settings", base(&id));
    let lifetime = match form.get("token_lifetime").trim().parse::<i64>() {
        Ok(n) if (1..=MAX_LIFETIME).contains(&n) => n,
        _ => {
            return html::error(
                &admin,
                &format!("Token Expiration (Seconds) must be from 1 to {MAX_LIFETIME}."),
                &back,
            );
        }
    };
    let current = admin.get(&idp, &format!("/resource-servers/{}", enc(&id))).await;
    // Descriptions of kept permissions stay as they were.
    let described: HashMap<String, Value> = current.body["scopes"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|s| Some((s["value"].as_str()?.to_owned(), s.clone())))
        .collect();
    let scopes: Vec<Value> = html::list(form.get("scopes"))
        .into_iter()
        .map(|v| described.get(&v).cloned().unwrap_or_else(|| json!({ "value": v, "description": v })))
        .collect();
    let doc = json!({ "name": form.get("name").trim(), "token_lifetime": lifetime, "scopes": scopes });
    let reply = admin.api(&idp, Method::PATCH, &format!("/resource-servers/{}", enc(&id)), Some(&doc)).await;
    after_write(&admin, &reply, &back, "saved")
}

async fn delete(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = Form::checked(&admin, &body) {
        return r;
    }
    let reply = admin.api(&idp, Method::DELETE, &format!("/resource-servers/{}", enc(&id)), None).await;
    after_write(&admin, &reply, "/console/apis", "deleted")
}
