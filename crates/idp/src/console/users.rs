//! User Management → Users (search by Lucene query or plain text, Create User, a user's
//! app_metadata and user_metadata JSON editors: guide step 8) and → Roles.

use super::html::{self, esc};
use super::{Admin, Form, after_write, enc, redirect};
use crate::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/users", get(list).post(create))
        .route("/users/new", get(new))
        .route("/users/{id}", get(detail).post(save))
        .route("/users/{id}/delete", post(delete))
        .route("/users/{id}/block", post(block))
        .route("/users/{id}/verification-email", post(verification_email))
        .route("/roles", get(roles).post(create_role))
        .route("/roles/{id}/delete", post(delete_role))
}

const PER_PAGE: u32 = 50;

fn user_url(id: &str) -> String {
    format!("/console/users/{}", enc(id))
}

/// Plain text (no field, quote or wildcard) finds the emails starting with it (a prefix search
/// an index answers; an infix one scans every user); anything else is a Lucene query as Auth0's
/// user search takes it.
fn to_query(text: &str) -> String {
    let t = text.trim();
    let plain = !t.is_empty() && !t.contains([':', '*', '"', '(', ')', ' ']);
    if plain { format!("email:{t}*") } else { t.to_owned() }
}

async fn list(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = html::page_number(&q);
    let text = q.get("q").map(String::as_str).unwrap_or_default();
    let query = to_query(text);
    let path = format!("/users?include_totals=true&search_engine=v3&per_page={PER_PAGE}&page={page}&q={}", enc(&query));
    let reply = admin.get(&idp, &path).await;
    let search = format!(
        "<form method=\"get\" action=\"/console/users\" class=\"search\" role=\"search\">{}<button type=\"submit\">Search</button></form>",
        html::text("q", "Search users by email or Lucene query", "q", text, " type=\"search\"")
    );
    let create =
        if admin.can_write() { "<p><a class=\"button\" href=\"/console/users/new\">Create User</a></p>" } else { "" };
    if !reply.ok() {
        let body = format!("{create}{search}<p class=\"error\" role=\"alert\">{}</p>", esc(&reply.message()));
        return html::page(&admin, "Users", "/console/users", None, &body);
    }
    let rows: Vec<Vec<String>> = reply.body["users"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|u| {
            let id = u["user_id"].as_str().unwrap_or_default();
            let email = u["email"].as_str().unwrap_or(id);
            let connection = u["identities"][0]["connection"].as_str().unwrap_or_default();
            vec![
                format!("<a href=\"{}\">{}</a>", esc(&user_url(id)), esc(email)),
                esc(connection),
                u["logins_count"].as_i64().unwrap_or_default().to_string(),
                esc(u["last_login"].as_str().unwrap_or("Never")),
            ]
        })
        .collect();
    let total = reply.body["total"].as_u64().unwrap_or(0);
    let body = format!(
        "{create}{search}{}{}",
        html::table("Users", &["Email", "Connection", "Logins", "Latest Login"], &rows),
        html::pager(&format!("/console/users?q={}&", enc(text)), page, PER_PAGE, total)
    );
    html::page(&admin, "Users", "/console/users", q.get("m").map(String::as_str), &body)
}

async fn new(State(idp): State<AppState>, admin: Admin) -> Response {
    let dbs = admin.get(&idp, "/connections?strategy=auth0&per_page=100").await;
    let mut options = String::new();
    for c in dbs.body.as_array().into_iter().flatten() {
        let name = c["name"].as_str().unwrap_or_default();
        options.push_str(&format!("<option value=\"{n}\">{n}</option>", n = esc(name)));
    }
    let inner = format!(
        "<div class=\"field\"><label for=\"email\">Email</label><input type=\"email\" id=\"email\" name=\"email\" required autocomplete=\"off\"></div>\
         <div class=\"field\"><label for=\"password\">Password</label><input type=\"password\" id=\"password\" name=\"password\" required autocomplete=\"new-password\"></div>\
         <div class=\"field\"><label for=\"connection\">Connection</label><select id=\"connection\" name=\"connection\">{options}</select></div>{}",
        html::submit(&admin, "Create")
    );
    let body = html::form(&admin, "/console/users", &inner);
    html::page(&admin, "Create User", "/console/users", None, &body)
}

async fn create(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let doc = json!({
        "email": form.get("email").trim(),
        "password": form.get("password"),
        "connection": form.get("connection"),
    });
    let reply = admin.api(&idp, Method::POST, "/users", Some(&doc)).await;
    if !reply.ok() {
        return html::error(&admin, &reply.message(), "/console/users/new");
    }
    let id = reply.body["user_id"].as_str().unwrap_or_default();
    redirect(&format!("{}?m=created", user_url(id)))
}

fn pretty(v: &Value) -> String {
    match v {
        Value::Object(m) if m.is_empty() => "{}".into(),
        Value::Object(_) => serde_json::to_string_pretty(v).unwrap_or_default(),
        _ => "{}".into(),
    }
}

fn json_editor(id: &str, label: &str, value: &str) -> String {
    format!(
        "<div class=\"field\"><label for=\"{id}\">{label}</label>\
         <textarea id=\"{id}\" name=\"{id}\" rows=\"8\" data-json=\"{label}\" spellcheck=\"false\" aria-describedby=\"{id}-error\">{}</textarea>\
         <p class=\"json-error\" id=\"{id}-error\" role=\"alert\"></p></div>",
        esc(value)
    )
}

async fn detail(
    State(idp): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let reply = admin.get(&idp, &format!("/users/{}", enc(&id))).await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let u = &reply.body;
    let email = u["email"].as_str().unwrap_or(&id).to_owned();
    let details = format!(
        "<section><h2>Details</h2>{}{}{}{}{}<p><a href=\"/console/logs?q={}\">View this user's logs</a></p></section>",
        html::readonly("user_id", "User ID", &id),
        html::readonly("user_email", "Email", &email),
        html::readonly("user_connection", "Connection", u["identities"][0]["connection"].as_str().unwrap_or_default()),
        html::readonly("user_created", "Signed Up", u["created_at"].as_str().unwrap_or_default()),
        html::readonly("user_logins", "Logins", &u["logins_count"].as_i64().unwrap_or_default().to_string()),
        enc(&format!("user_id:\"{id}\"")),
    );
    let inner = format!(
        "{}{}{}",
        json_editor("app_metadata", "app_metadata", &pretty(&u["app_metadata"])),
        json_editor("user_metadata", "user_metadata", &pretty(&u["user_metadata"])),
        html::submit(&admin, "Save")
    );
    let blocked = u["blocked"].as_bool().unwrap_or(false);
    let account = account_actions(&admin, &id, blocked, u["email"].is_string() && u["email_verified"] != true);
    let body = format!(
        "{details}{account}<section><h2>Metadata</h2><p class=\"hint\">JSON objects. app_metadata holds what the user may not change (e.g. {{\"groups\": [\"admin\"]}}).</p>{}</section>\
         <section><h2>Danger Zone</h2>{}</section>",
        html::form(&admin, &user_url(&id), &inner),
        html::delete_form(&admin, &format!("{}/delete", user_url(&id)), &format!("the user {email}")),
    );
    html::page(&admin, &email, "/console/users", q.get("m").map(String::as_str), &body)
}

/// A JSON object from an editor, or the message naming what is wrong.
fn parse_object(label: &str, text: &str) -> Result<Map<String, Value>, String> {
    if text.trim().is_empty() {
        return Ok(Map::new());
    }
    match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(m)) => Ok(m),
        Ok(_) => Err(format!("{label}: must be a JSON object")),
        Err(e) => Err(format!("{label}: {e}")),
    }
}

/// What turns `old` into `new` under the API's one-level merge: new values, and `null` for
/// every key that went away.
fn merge_patch(old: &Value, new: Map<String, Value>) -> Value {
    let mut patch = new.clone();
    for key in old.as_object().into_iter().flat_map(Map::keys) {
        if !new.contains_key(key) {
            patch.insert(key.clone(), Value::Null);
        }
    }
    Value::Object(patch)
}

async fn save(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = user_url(&id);
    let (app, user) = match (
        parse_object("app_metadata", form.get("app_metadata")),
        parse_object("user_metadata", form.get("user_metadata")),
    ) {
        (Ok(a), Ok(u)) => (a, u),
        (Err(e), _) | (_, Err(e)) => return html::error(&admin, &format!("Not saved: {e}"), &back),
    };
    let current = admin.get(&idp, &format!("/users/{}", enc(&id))).await;
    if !current.ok() {
        return html::not_found(&admin, &current.message());
    }
    let doc = json!({
        "app_metadata": merge_patch(&current.body["app_metadata"], app),
        "user_metadata": merge_patch(&current.body["user_metadata"], user),
    });
    let reply = admin.api(&idp, Method::PATCH, &format!("/users/{}", enc(&id)), Some(&doc)).await;
    after_write(&admin, &reply, &back, "saved")
}

/// Block or Unblock (a blocked user signs in no way, refreshes included), and Send
/// Verification Email while the address is unverified; both through the Management API.
fn account_actions(admin: &Admin, id: &str, blocked: bool, unverified: bool) -> String {
    let status = html::readonly("user_blocked", "Status", if blocked { "Blocked" } else { "Active" });
    if !admin.can_write() {
        return format!("<section><h2>Account</h2>{status}</section>");
    }
    let (value, label) = if blocked { ("false", "Unblock") } else { ("true", "Block") };
    let block = html::form(
        admin,
        &format!("{}/block", user_url(id)),
        &format!("<input type=\"hidden\" name=\"blocked\" value=\"{value}\"><button type=\"submit\">{label}</button>"),
    );
    let verify = if unverified {
        html::form(
            admin,
            &format!("{}/verification-email", user_url(id)),
            "<button type=\"submit\">Send Verification Email</button>",
        )
    } else {
        String::new()
    };
    format!("<section><h2>Account</h2>{status}{block}{verify}</section>")
}

async fn block(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let blocked = form.get("blocked") == "true";
    let path = format!("/users/{}", enc(&id));
    let reply = admin.api(&idp, Method::PATCH, &path, Some(&json!({ "blocked": blocked }))).await;
    after_write(&admin, &reply, &user_url(&id), if blocked { "blocked" } else { "unblocked" })
}

async fn verification_email(
    State(idp): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    body: Bytes,
) -> Response {
    if let Err(r) = Form::checked(&admin, &body) {
        return r;
    }
    let reply = admin.api(&idp, Method::POST, "/jobs/verification-email", Some(&json!({ "user_id": id }))).await;
    after_write(&admin, &reply, &user_url(&id), "verification")
}

async fn delete(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = Form::checked(&admin, &body) {
        return r;
    }
    let reply = admin.api(&idp, Method::DELETE, &format!("/users/{}", enc(&id)), None).await;
    after_write(&admin, &reply, "/console/users", "deleted")
}

async fn roles(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let page = html::page_number(&q);
    let reply = admin.get(&idp, &format!("/roles?include_totals=true&per_page={PER_PAGE}&page={page}")).await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let rows: Vec<Vec<String>> = reply.body["roles"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|r| {
            let id = r["id"].as_str().unwrap_or_default();
            let name = r["name"].as_str().unwrap_or(id);
            vec![
                esc(name),
                esc(r["description"].as_str().unwrap_or_default()),
                html::delete_form(&admin, &format!("/console/roles/{}/delete", enc(id)), &format!("the role {name}")),
            ]
        })
        .collect();
    let create = if admin.can_write() {
        let inner = format!(
            "{}{}{}",
            html::text("role_name", "Name", "name", "", " required maxlength=\"50\""),
            html::text("role_description", "Description", "description", "", " maxlength=\"140\""),
            html::submit(&admin, "Create Role")
        );
        format!("<section><h2>Create Role</h2>{}</section>", html::form(&admin, "/console/roles", &inner))
    } else {
        String::new()
    };
    let total = reply.body["total"].as_u64().unwrap_or(0);
    let body = format!(
        "{}{}{create}",
        html::table("Roles", &["Name", "Description", "Delete"], &rows),
        html::pager("/console/roles?", page, PER_PAGE, total)
    );
    html::page(&admin, "Roles", "/console/roles", q.get("m").map(String::as_str), &body)
}

async fn create_role(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let doc = json!({ "name": form.get("name").trim(), "description": form.get("description").trim() });
    let reply = admin.api(&idp, Method::POST, "/roles", Some(&doc)).await;
    after_write(&admin, &reply, "/console/roles", "created")
}

async fn delete_role(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = Form::checked(&admin, &body) {
        return r;
    }
    let reply = admin.api(&idp, Method::DELETE, &format!("/roles/{}", enc(&id)), None).await;
    after_write(&admin, &reply, "/console/roles", "deleted")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_searches_contain_and_queries_pass_through() {
        assert_eq!(to_query("ann"), "email:ann*");
        assert_eq!(to_query("email:\"a@b.c\""), "email:\"a@b.c\"");
        assert_eq!(to_query("a b"), "a b");
    }

    #[test]
    fn a_removed_metadata_key_is_sent_as_null() {
        let old = json!({"groups": ["a"], "gone": 1});
        let new = json!({"groups": ["admin"]}).as_object().unwrap().clone();
        assert_eq!(merge_patch(&old, new), json!({"groups": ["admin"], "gone": null}));
        assert!(parse_object("app_metadata", "{\"a\": }").unwrap_err().starts_with("app_metadata: "));
        assert!(parse_object("app_metadata", "[1]").is_err());
    }
}
