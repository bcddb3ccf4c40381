//! Authentication → Database (Create DB Connection, Disable Sign Ups, its Applications tab)
//! and → Social (the Google switch): guide steps 3 and 4.

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
        .route("/connections/database", get(databases).post(create))
        .route("/connections/database/new", get(new))
        .route(
            "/connections/database/{id}",
            get(|Path(id): Path<String>| async move { redirect(&format!("{}/settings", base(&id))) }),
        )
        .route("/connections/database/{id}/settings", get(settings).post(save_settings))
        .route("/connections/database/{id}/applications", get(applications).post(save_applications))
        .route("/connections/database/{id}/delete", post(delete))
        .route("/connections/social", get(social).post(save_social))
}

fn base(id: &str) -> String {
    format!("/console/connections/database/{}", enc(id))
}

fn flash(q: &HashMap<String, String>) -> Option<&str> {
    q.get("m").map(String::as_str)
}

async fn databases(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let reply = admin.get(&idp, "/connections?strategy=auth0&per_page=100").await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let rows: Vec<Vec<String>> = reply
        .body
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let id = c["id"].as_str().unwrap_or_default();
            let apps = c["enabled_clients"].as_array().map_or(0, Vec::len);
            let signups = if c["options"]["disable_signup"] == true { "Disabled" } else { "Enabled" };
            vec![
                format!("<a href=\"{}/settings\">{}</a>", esc(&base(id)), esc(c["name"].as_str().unwrap_or(id))),
                format!("<code>{}</code>", esc(id)),
                signups.to_string(),
                apps.to_string(),
            ]
        })
        .collect();
    let create = if admin.can_write() {
        "<p><a class=\"button\" href=\"/console/connections/database/new\">Create DB Connection</a></p>"
    } else {
        ""
    };
    let body = format!(
        "{create}{}",
        html::table("Database Connections", &["Name", "Identifier", "Sign ups", "Applications"], &rows)
    );
    html::page(&admin, "Database Connections", "/console/connections/database", flash(&q), &body)
}

async fn new(admin: Admin) -> Response {
    let inner = format!(
        "{}{}{}",
        html::text(
            "name",
            "Name",
            "name",
            "",
            " required maxlength=\"128\" pattern=\"[A-Za-z0-9][A-Za-z0-9-]*[A-Za-z0-9]|[A-Za-z0-9]\""
        ),
        html::switch("disable_signup", "Disable Sign Ups", "disable_signup", "1", true),
        html::submit(&admin, "Create")
    );
    let body = format!(
        "<p class=\"hint\">One database per environment; a name of letters, digits and dashes.</p>{}",
        html::form(&admin, "/console/connections/database", &inner)
    );
    html::page(&admin, "Create DB Connection", "/console/connections/database", None, &body)
}

async fn create(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let doc = json!({
        "name": form.get("name").trim(),
        "strategy": "auth0",
        "options": { "disable_signup": form.has("disable_signup") },
    });
    let reply = admin.api(&idp, Method::POST, "/connections", Some(&doc)).await;
    if !reply.ok() {
        return html::error(&admin, &reply.message(), "/console/connections/database/new");
    }
    let id = reply.body["id"].as_str().unwrap_or_default();
    redirect(&format!("{}/applications?m=created", base(id)))
}

async fn connection_or_page(idp: &AppState, admin: &Admin, id: &str) -> Result<Value, Response> {
    let reply = admin.get(idp, &format!("/connections/{}", enc(id))).await;
    if reply.ok() { Ok(reply.body) } else { Err(html::not_found(admin, &reply.message())) }
}

fn header(c: &Value, current: &str) -> String {
    let id = c["id"].as_str().unwrap_or_default();
    format!(
        "<p class=\"subtitle\">Database · Identifier <code>{}</code></p>{}",
        esc(id),
        html::tabs(&base(id), current, &[("settings", "Settings"), ("applications", "Applications")])
    )
}

async fn settings(
    State(idp): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = match connection_or_page(&idp, &admin, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let name = c["name"].as_str().unwrap_or(&id).to_owned();
    let inner = format!(
        "{}{}",
        html::switch(
            "disable_signup",
            "Disable Sign Ups",
            "disable_signup",
            "1",
            c["options"]["disable_signup"] == true
        ),
        html::submit(&admin, "Save")
    );
    let body = format!(
        "{}<section><h2>Settings</h2><p class=\"hint\">With sign ups disabled, only the Management API (and this console) create users.</p>{}</section>\
         <section><h2>Danger Zone</h2>{}</section>",
        header(&c, "settings"),
        html::form(&admin, &format!("{}/settings", base(&id)), &inner),
        html::delete_form(
            &admin,
            &format!("{}/delete", base(&id)),
            &format!("the connection {name} and all its users")
        ),
    );
    html::page(&admin, &name, "/console/connections/database", flash(&q), &body)
}

async fn save_settings(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let c = match connection_or_page(&idp, &admin, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    // `options` is replaced as a whole by the API: send every option back, one changed.
    let mut options = c["options"].clone();
    if !options.is_object() {
        options = json!({});
    }
    options["disable_signup"] = json!(form.has("disable_signup"));
    let reply = admin
        .api(&idp, Method::PATCH, &format!("/connections/{}", enc(&id)), Some(&json!({ "options": options })))
        .await;
    after_write(&admin, &reply, &format!("{}/settings", base(&id)), "saved")
}

async fn applications(
    State(idp): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let c = match connection_or_page(&idp, &admin, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let clients = admin.get(&idp, "/clients?per_page=100&fields=client_id,name,app_type").await;
    let enabled: Vec<&str> = c["enabled_clients"].as_array().into_iter().flatten().filter_map(Value::as_str).collect();
    let mut switches = String::new();
    for client in clients.body.as_array().into_iter().flatten() {
        let cid = client["client_id"].as_str().unwrap_or_default();
        let name = client["name"].as_str().unwrap_or(cid);
        switches.push_str(&html::switch(
            &format!("app-{}", esc(cid)),
            &esc(name),
            "enabled",
            cid,
            enabled.contains(&cid),
        ));
    }
    let inner = format!(
        "<fieldset><legend>Applications using this connection</legend>{}</fieldset>{}",
        if switches.is_empty() { "<p class=\"empty\">No applications yet.</p>".to_string() } else { switches },
        html::submit(&admin, "Save")
    );
    let name = c["name"].as_str().unwrap_or(&id).to_owned();
    let body =
        format!("{}{}", header(&c, "applications"), html::form(&admin, &format!("{}/applications", base(&id)), &inner));
    html::page(&admin, &name, "/console/connections/database", flash(&q), &body)
}

async fn save_applications(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let enabled = form.all("enabled");
    let reply = admin
        .api(&idp, Method::PATCH, &format!("/connections/{}", enc(&id)), Some(&json!({ "enabled_clients": enabled })))
        .await;
    after_write(&admin, &reply, &format!("{}/applications", base(&id)), "saved")
}

async fn delete(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = Form::checked(&admin, &body) {
        return r;
    }
    let reply = admin.api(&idp, Method::DELETE, &format!("/connections/{}", enc(&id)), None).await;
    after_write(&admin, &reply, "/console/connections/database", "deleted")
}

/// The social providers: Google's switch turns its connection on for every application (or
/// off for all); per-application choices are on each application's Connections tab.
async fn social(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let reply = admin.get(&idp, "/connections?strategy=google-oauth2&per_page=100").await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let google = reply.body.as_array().and_then(|a| a.first()).cloned();
    let on = google.as_ref().is_some_and(|g| g["enabled_clients"].as_array().is_some_and(|a| !a.is_empty()));
    let inner = format!("{}{}", html::switch("google", "Google", "google", "1", on), html::submit(&admin, "Save"));
    let note = if google.is_none() {
        "<p class=\"hint\">No Google connection exists yet; switching it on creates one (set its client id and secret with the Management API or tenant file).</p>"
    } else {
        "<p class=\"hint\">On: enabled for every application. Off: for none. Choose per application on its Connections tab.</p>"
    };
    let body = format!(
        "<section><h2>Social Connections</h2>{note}{}</section>",
        html::form(&admin, "/console/connections/social", &inner)
    );
    html::page(&admin, "Social Connections", "/console/connections/social", flash(&q), &body)
}

async fn save_social(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let on = form.has("google");
    let reply = admin.get(&idp, "/connections?strategy=google-oauth2&per_page=100").await;
    let google = reply.body.as_array().and_then(|a| a.first()).cloned();
    let clients: Vec<String> = if on {
        let all = admin.get(&idp, "/clients?per_page=100&fields=client_id").await;
        all.body.as_array().into_iter().flatten().filter_map(|c| c["client_id"].as_str()).map(str::to_owned).collect()
    } else {
        vec![]
    };
    let reply = match google {
        Some(g) => {
            let id = g["id"].as_str().unwrap_or_default();
            let doc = json!({ "enabled_clients": clients });
            admin.api(&idp, Method::PATCH, &format!("/connections/{}", enc(id)), Some(&doc)).await
        }
        None if on => {
            let doc = json!({ "name": "google-oauth2", "strategy": "google-oauth2", "enabled_clients": clients });
            admin.api(&idp, Method::POST, "/connections", Some(&doc)).await
        }
        None => return redirect("/console/connections/social?m=saved"),
    };
    after_write(&admin, &reply, "/console/connections/social", "saved")
}
