//! Applications: the list, Create Application, and an application's Settings, Connections and
//! APIs tabs (guide steps 1, 2, 4 and 5).

use super::html::{self, esc};
use super::{Admin, ApiReply, Form, after_write, enc, redirect};
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
        .route("/applications", get(list).post(create))
        .route("/applications/new", get(new))
        .route("/applications/{id}", get(|Path(id): Path<String>| async move { redirect(&settings_url(&id)) }))
        .route("/applications/{id}/settings", get(settings).post(save_settings))
        .route("/applications/{id}/rotate", post(rotate))
        .route("/applications/{id}/delete", post(delete))
        .route("/applications/{id}/connections", get(connections).post(save_connections))
        .route("/applications/{id}/apis", get(apis).post(save_api))
}

const TYPES: &[(&str, &str)] = &[
    ("regular_web", "Regular Web Application"),
    ("non_interactive", "Machine to Machine"),
    ("spa", "Single Page Application"),
    ("native", "Native"),
];

fn type_label(t: Option<&str>) -> &'static str {
    TYPES.iter().find(|(k, _)| Some(*k) == t).map_or("Generic", |(_, l)| l)
}

fn base(id: &str) -> String {
    format!("/console/applications/{}", enc(id))
}

fn settings_url(id: &str) -> String {
    format!("{}/settings", base(id))
}

const PER_PAGE: u32 = 50;

async fn list(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = html::page_number(&q);
    let reply = admin.get(&idp, &format!("/clients?include_totals=true&per_page={PER_PAGE}&page={page}")).await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let rows: Vec<Vec<String>> = reply.body["clients"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|c| {
            let id = c["client_id"].as_str().unwrap_or_default();
            vec![
                format!("<a href=\"{}\">{}</a>", esc(&settings_url(id)), esc(c["name"].as_str().unwrap_or(id))),
                type_label(c["app_type"].as_str()).to_string(),
                format!("<code>{}</code>", esc(id)),
            ]
        })
        .collect();
    let total = reply.body["total"].as_u64().unwrap_or(0);
    let create = if admin.can_write() {
        "<p><a class=\"button\" href=\"/console/applications/new\">Create Application</a></p>"
    } else {
        ""
    };
    let body = format!(
        "{create}{}{}",
        html::table("Applications", &["Name", "Type", "Client ID"], &rows),
        html::pager("/console/applications?", page, PER_PAGE, total)
    );
    html::page(&admin, "Applications", "/console/applications", q.get("m").map(String::as_str), &body)
}

async fn new(admin: Admin) -> Response {
    let mut types = String::from("<fieldset><legend>Choose an application type</legend>");
    for (i, (value, label)) in TYPES.iter().enumerate() {
        let checked = if i == 0 { " checked" } else { "" };
        types.push_str(&format!(
            "<div class=\"choice\"><input type=\"radio\" id=\"type-{value}\" name=\"app_type\" value=\"{value}\"{checked}><label for=\"type-{value}\">{label}</label></div>"
        ));
    }
    types.push_str("</fieldset>");
    let inner = format!(
        "{}{types}{}",
        html::text("name", "Name", "name", "", " required maxlength=\"100\""),
        html::submit(&admin, "Create")
    );
    let body = html::form(&admin, "/console/applications", &inner);
    html::page(&admin, "Create Application", "/console/applications", None, &body)
}

async fn create(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let app_type = form.get("app_type");
    let mut doc = json!({ "name": form.get("name").trim(), "app_type": app_type });
    if app_type == "non_interactive" {
        doc["grant_types"] = json!(["client_credentials"]);
    }
    let reply = admin.api(&idp, Method::POST, "/clients", Some(&doc)).await;
    if !reply.ok() {
        return html::error(&admin, &reply.message(), "/console/applications/new");
    }
    // The secret exists only now (the store keeps its digest): shown once, behind Reveal.
    let secret = reply.body["client_secret"].as_str().map(str::to_owned);
    settings_page(&idp, &admin, &reply.body, secret.as_deref(), Some("created"))
}

async fn settings(
    State(idp): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let reply = admin.get(&idp, &format!("/clients/{}", enc(&id))).await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    settings_page(&idp, &admin, &reply.body, None, q.get("m").map(String::as_str))
}

fn header(client: &Value, current: &str) -> String {
    let id = client["client_id"].as_str().unwrap_or_default();
    format!(
        "<p class=\"subtitle\">{} · Client ID <code>{}</code></p>{}",
        type_label(client["app_type"].as_str()),
        esc(id),
        html::tabs(&base(id), current, &[("settings", "Settings"), ("connections", "Connections"), ("apis", "APIs")])
    )
}

fn settings_page(idp: &AppState, admin: &Admin, c: &Value, secret: Option<&str>, flash: Option<&str>) -> Response {
    let id = c["client_id"].as_str().unwrap_or_default();
    let name = c["name"].as_str().unwrap_or(id);
    let public = c["token_endpoint_auth_method"].as_str() == Some("none");
    let secret_field = match (public, secret) {
        (true, _) => String::new(),
        (false, Some(secret)) => format!(
            "<div class=\"field\"><label for=\"client_secret\">Client Secret</label><div class=\"reveal\">\
             <input type=\"password\" id=\"client_secret\" value=\"{}\" readonly autocomplete=\"off\">\
             <button type=\"button\" data-reveal=\"client_secret\" aria-controls=\"client_secret\">Reveal</button></div>\
             <p class=\"hint\">Copy it now: Gatehouse keeps only a digest, so it cannot be shown again (rotate it to get a new one).</p></div>",
            esc(secret)
        ),
        (false, None) => "<div class=\"field\"><label for=\"client_secret\">Client Secret</label>\
             <input type=\"password\" id=\"client_secret\" value=\"\" placeholder=\"hidden\" readonly aria-describedby=\"secret-hint\">\
             <p class=\"hint\" id=\"secret-hint\">Shown once, when it is made. Rotate to get a new one.</p></div>"
            .to_string(),
    };
    let lifetime = c["jwt_configuration"]["lifetime_in_seconds"].as_i64().unwrap_or(36000);
    let inner = format!(
        "<section><h2>Basic Information</h2>{}{}{}{secret_field}</section>\
         <section><h2>Application URIs</h2>{}{}{}</section>\
         <section><h2>Token Lifetime Settings</h2>{}</section>{}",
        html::text("name", "Name", "name", name, " required maxlength=\"100\""),
        html::readonly("domain", "Domain", &idp.config.domain()),
        html::readonly("client_id", "Client ID", id),
        html::textarea(
            "callbacks",
            "Allowed Callback URLs",
            "callbacks",
            &html::lines(c.get("callbacks")),
            "Comma- or line-separated, e.g. https://cms.example.com/web-login/callback",
            ""
        ),
        html::textarea("web_origins", "Allowed Web Origins", "web_origins", &html::lines(c.get("web_origins")), "", ""),
        html::textarea(
            "allowed_logout_urls",
            "Allowed Logout URLs",
            "allowed_logout_urls",
            &html::lines(c.get("allowed_logout_urls")),
            "",
            ""
        ),
        html::number(
            "id_token_expiration",
            "ID Token Expiration (seconds)",
            "lifetime_in_seconds",
            lifetime,
            2_592_000
        ),
        html::submit(admin, "Save Changes"),
    );
    let rotate = if admin.can_write() && !public {
        format!(
            "<form method=\"post\" action=\"{}/rotate\" data-confirm=\"Rotate the client secret? Applications using the old one stop working.\">{}<button type=\"submit\" class=\"secondary\">Rotate secret</button></form>",
            esc(&base(id)),
            html::csrf(admin)
        )
    } else {
        String::new()
    };
    let body = format!(
        "{}{}{rotate}<section><h2>Danger Zone</h2>{}</section>",
        header(c, "settings"),
        html::form(admin, &settings_url(id), &inner),
        html::delete_form(admin, &format!("{}/delete", base(id)), &format!("the application {name}")),
    );
    html::page(admin, name, "/console/applications", flash, &body)
}

async fn save_settings(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let current = admin.get(&idp, &format!("/clients/{}", enc(&id))).await;
    if !current.ok() {
        return html::not_found(&admin, &current.message());
    }
    let Ok(lifetime) = form.get("lifetime_in_seconds").trim().parse::<i64>() else {
        return html::error(&admin, "ID Token Expiration (seconds) must be a whole number.", &settings_url(&id));
    };
    // The whole jwt_configuration goes back, with only the lifetime changed.
    let mut jwt = current.body["jwt_configuration"].clone();
    if !jwt.is_object() {
        jwt = json!({});
    }
    jwt["lifetime_in_seconds"] = json!(lifetime);
    let patch = json!({
        "name": form.get("name").trim(),
        "callbacks": html::list(form.get("callbacks")),
        "web_origins": html::list(form.get("web_origins")),
        "allowed_logout_urls": html::list(form.get("allowed_logout_urls")),
        "jwt_configuration": jwt,
    });
    let reply = admin.api(&idp, Method::PATCH, &format!("/clients/{}", enc(&id)), Some(&patch)).await;
    after_write(&admin, &reply, &settings_url(&id), "saved")
}

async fn rotate(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = Form::checked(&admin, &body) {
        return r;
    }
    let reply = admin.api(&idp, Method::POST, &format!("/clients/{}/rotate-secret", enc(&id)), None).await;
    if !reply.ok() {
        return html::error(&admin, &reply.message(), &settings_url(&id));
    }
    let secret = reply.body["client_secret"].as_str().map(str::to_owned);
    settings_page(&idp, &admin, &reply.body, secret.as_deref(), Some("saved"))
}

async fn delete(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = Form::checked(&admin, &body) {
        return r;
    }
    let reply = admin.api(&idp, Method::DELETE, &format!("/clients/{}", enc(&id)), None).await;
    after_write(&admin, &reply, "/console/applications", "deleted")
}

async fn client_or_page(idp: &AppState, admin: &Admin, id: &str) -> Result<Value, Response> {
    let reply = admin.get(idp, &format!("/clients/{}", enc(id))).await;
    if reply.ok() { Ok(reply.body) } else { Err(html::not_found(admin, &reply.message())) }
}

/// Every connection, with a switch for this application.
async fn connections(
    State(idp): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let client = match client_or_page(&idp, &admin, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let all = admin.get(&idp, "/connections?per_page=100").await;
    let mut databases = String::new();
    let mut social = String::new();
    for c in all.body.as_array().into_iter().flatten() {
        let cid = c["id"].as_str().unwrap_or_default();
        let name = c["name"].as_str().unwrap_or(cid);
        let on = c["enabled_clients"].as_array().is_some_and(|a| a.iter().any(|x| x.as_str() == Some(&id)));
        let label = if c["strategy"] == "google-oauth2" { format!("{} (Google)", esc(name)) } else { esc(name) };
        let item = html::switch(&format!("conn-{}", esc(cid)), &label, "enabled", cid, on);
        if c["strategy"] == "auth0" { databases.push_str(&item) } else { social.push_str(&item) }
    }
    let inner = format!(
        "<input type=\"hidden\" name=\"shown\" value=\"1\"><fieldset><legend>Database</legend>{}</fieldset>\
         <fieldset><legend>Social</legend>{}</fieldset>{}",
        if databases.is_empty() { "<p class=\"empty\">No database connections.</p>".into() } else { databases },
        if social.is_empty() { "<p class=\"empty\">No social connections.</p>".into() } else { social },
        html::submit(&admin, "Save")
    );
    let body = format!(
        "{}{}",
        header(&client, "connections"),
        html::form(&admin, &format!("{}/connections", base(&id)), &inner)
    );
    let title = client["name"].as_str().unwrap_or(&id).to_owned();
    html::page(&admin, &title, "/console/applications", q.get("m").map(String::as_str), &body)
}

async fn save_connections(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let wanted = form.all("enabled");
    let all = admin.get(&idp, "/connections?per_page=100").await;
    if !all.ok() {
        return html::error(&admin, &all.message(), &format!("{}/connections", base(&id)));
    }
    for c in all.body.as_array().into_iter().flatten() {
        let cid = c["id"].as_str().unwrap_or_default();
        let mut enabled: Vec<String> = c["enabled_clients"]
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(Value::as_str)
            .map(str::to_owned)
            .collect();
        let on = enabled.contains(&id);
        let want = wanted.contains(&cid);
        if on == want {
            continue;
        }
        if want {
            enabled.push(id.clone());
        } else {
            enabled.retain(|x| *x != id);
        }
        let reply: ApiReply = admin
            .api(
                &idp,
                Method::PATCH,
                &format!("/connections/{}", enc(cid)),
                Some(&json!({ "enabled_clients": enabled })),
            )
            .await;
        if !reply.ok() {
            return html::error(&admin, &reply.message(), &format!("{}/connections", base(&id)));
        }
    }
    super::redirect(&format!("{}/connections?m=saved", base(&id)))
}

/// Every API, with whether this application is authorized (a client grant) and which of the
/// API's permissions it holds; a filter box and Select all per API.
async fn apis(
    State(idp): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let client = match client_or_page(&idp, &admin, &id).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let apis = admin.get(&idp, "/resource-servers?per_page=100").await;
    let grants = admin.get(&idp, &format!("/client-grants?client_id={}&per_page=100", enc(&id))).await;
    let mut out = String::new();
    for (n, api) in apis.body.as_array().into_iter().flatten().enumerate() {
        let audience = api["identifier"].as_str().unwrap_or_default();
        let grant = grants.body.as_array().into_iter().flatten().find(|g| g["audience"] == audience);
        let held: Vec<&str> =
            grant.and_then(|g| g["scope"].as_array()).into_iter().flatten().filter_map(Value::as_str).collect();
        let mut perms = String::new();
        for (i, s) in api["scopes"].as_array().into_iter().flatten().enumerate() {
            let value = s["value"].as_str().unwrap_or_default();
            if crate::grants::scopes::is_current_user_scope(value) {
                continue;
            }
            let checked = if held.contains(&value) { " checked" } else { "" };
            perms.push_str(&format!(
                "<div class=\"perm\" data-perm=\"{v}\"><input type=\"checkbox\" id=\"perm-{n}-{i}\" name=\"scope\" value=\"{v}\"{checked}><label for=\"perm-{n}-{i}\">{v}</label></div>",
                v = esc(value)
            ));
        }
        let name = api["name"].as_str().unwrap_or(audience);
        if perms.is_empty() {
            perms = "<p class=\"empty\">This API defines no permissions (add them on its Settings page).</p>".into();
        }
        let inner = format!(
            "<input type=\"hidden\" name=\"audience\" value=\"{}\">{}\
             <fieldset><legend>Permissions</legend><div class=\"perm-tools\">\
             <label for=\"filter-{n}\">Filter Permissions</label><input type=\"search\" id=\"filter-{n}\" data-filter=\"perms-{n}\">\
             <button type=\"button\" data-select-all=\"perms-{n}\">Select all</button>\
             <button type=\"button\" data-select-none=\"perms-{n}\">None</button></div>\
             <div class=\"perms\" id=\"perms-{n}\">{perms}</div></fieldset>{}",
            esc(audience),
            html::switch(
                &format!("authorize-{n}"),
                &format!("Authorized: {}", esc(name)),
                "authorized",
                "1",
                grant.is_some()
            ),
            html::submit(&admin, "Update"),
        );
        out.push_str(&format!(
            "<section class=\"api-grant\"><h2>{}</h2><p class=\"subtitle\"><code>{}</code></p>{}</section>",
            esc(name),
            esc(audience),
            html::form(&admin, &format!("{}/apis", base(&id)), &inner)
        ));
    }
    let body = format!("{}{out}", header(&client, "apis"));
    let title = client["name"].as_str().unwrap_or(&id).to_owned();
    html::page(&admin, &title, "/console/applications", q.get("m").map(String::as_str), &body)
}

async fn save_api(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = format!("{}/apis", base(&id));
    let audience = form.get("audience");
    let scopes: Vec<&str> = form.all("scope");
    let grants = admin.get(&idp, &format!("/client-grants?client_id={}&audience={}", enc(&id), enc(audience))).await;
    let existing = grants.body.as_array().and_then(|a| a.first()).and_then(|g| g["id"].as_str()).map(str::to_owned);
    let reply = match (existing, form.has("authorized")) {
        (None, false) => return super::redirect(&format!("{back}?m=saved")),
        (None, true) => {
            let doc = json!({ "client_id": id, "audience": audience, "scope": scopes });
            admin.api(&idp, Method::POST, "/client-grants", Some(&doc)).await
        }
        (Some(g), true) => {
            admin
                .api(&idp, Method::PATCH, &format!("/client-grants/{}", enc(&g)), Some(&json!({ "scope": scopes })))
                .await
        }
        (Some(g), false) => admin.api(&idp, Method::DELETE, &format!("/client-grants/{}", enc(&g)), None).await,
    };
    after_write(&admin, &reply, &back, "saved")
}
