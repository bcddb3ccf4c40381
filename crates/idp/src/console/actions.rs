//! Actions → Library (Build Custom), the code editor with its Secrets and Deploy, and
//! Flows → Login (add, order, Apply): guide step 5's custom action.

use super::html::{self, esc};
use super::{Admin, Form, after_write, enc, redirect};
use crate::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::Method;
use axum::response::Response;
use axum::routing::get;
use serde_json::{Value, json};
use std::collections::HashMap;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/actions", get(|| async { redirect("/console/actions/library") }))
        .route("/actions/library", get(library).post(create))
        .route("/actions/new", get(new))
        .route("/actions/flows", get(flows))
        .route("/actions/flows/login", get(login_flow).post(apply))
        .route("/actions/edit/{id}", get(editor).post(save))
        .route("/actions/edit/{id}/delete", axum::routing::post(delete))
}

const TRIGGER: &str = "post-login";
const TEMPLATE: &str = "/**\n * Handler that will be called during the execution of a PostLogin flow.\n *\n * @param {Event} event - Details about the user and the context in which they are logging in.\n * @param {PostLoginAPI} api - Interface whose methods can be used to change the behavior of the login.\n */\nexports.onExecutePostLogin = async (event, api) => {\n};\n";

fn edit_url(id: &str) -> String {
    format!("/console/actions/edit/{}", enc(id))
}

async fn library(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let reply = admin.get(&idp, "/actions/actions?per_page=100").await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let rows: Vec<Vec<String>> = reply.body["actions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|a| {
            let id = a["id"].as_str().unwrap_or_default();
            let deployed = if a["deployed_version"].is_object() {
                if a["all_changes_deployed"] == true { "Deployed" } else { "Deployed (draft has changes)" }
            } else {
                "Not deployed"
            };
            vec![
                format!("<a href=\"{}\">{}</a>", esc(&edit_url(id)), esc(a["name"].as_str().unwrap_or(id))),
                "Login / Post Login".to_string(),
                esc(a["status"].as_str().unwrap_or_default()),
                deployed.to_string(),
            ]
        })
        .collect();
    let create = if admin.can_write() {
        "<p><a class=\"button\" href=\"/console/actions/new\">Build Custom</a></p>"
    } else {
        ""
    };
    let body = format!("{create}{}", html::table("Custom Actions", &["Name", "Trigger", "Build", "Status"], &rows));
    html::page(&admin, "Library", "/console/actions/library", q.get("m").map(String::as_str), &body)
}

async fn new(admin: Admin) -> Response {
    let inner = format!(
        "{}{}{}",
        html::text("name", "Name", "name", "", " required maxlength=\"100\""),
        html::readonly("trigger", "Trigger", "Login / Post Login"),
        html::submit(&admin, "Create")
    );
    let body = html::form(&admin, "/console/actions/library", &inner);
    html::page(&admin, "Create Action", "/console/actions/library", None, &body)
}

async fn create(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let doc = json!({
        "name": form.get("name").trim(),
        "supported_triggers": [{ "id": TRIGGER, "version": "v3" }],
        "code": TEMPLATE,
    });
    let reply = admin.api(&idp, Method::POST, "/actions/actions", Some(&doc)).await;
    if !reply.ok() {
        return html::error(&admin, &reply.message(), "/console/actions/new");
    }
    redirect(&format!("{}?m=created", edit_url(reply.body["id"].as_str().unwrap_or_default())))
}

/// The line a build error names (`…:3:12`, `line 3`), to mark in the editor.
fn error_line(message: &str) -> Option<usize> {
    if let Some(i) = message.find("line ") {
        let digits: String = message[i + 5..].chars().take_while(char::is_ascii_digit).collect();
        if let Ok(n) = digits.parse() {
            return Some(n);
        }
    }
    let bytes = message.as_bytes();
    for (i, &b) in bytes.iter().enumerate() {
        if b == b':' {
            let digits: String = message[i + 1..].chars().take_while(char::is_ascii_digit).collect();
            if !digits.is_empty() && message[i + 1 + digits.len()..].starts_with(':') {
                return digits.parse().ok();
            }
        }
    }
    None
}

async fn editor(
    State(idp): State<AppState>,
    admin: Admin,
    Path(id): Path<String>,
    Query(q): Query<HashMap<String, String>>,
) -> Response {
    let reply = admin.get(&idp, &format!("/actions/actions/{}", enc(&id))).await;
    if !reply.ok() {
        return html::not_found(&admin, &reply.message());
    }
    let a = &reply.body;
    let name = a["name"].as_str().unwrap_or(&id).to_owned();
    let code = a["code"].as_str().unwrap_or_default();
    let build_error = a["errors"][0]["msg"].as_str();
    let line = build_error.and_then(error_line);
    let error = build_error
        .map(|e| {
            let at = line.map(|l| format!(" (line {l})")).unwrap_or_default();
            format!("<p class=\"error\" role=\"alert\" id=\"build-error\">Build failed{at}: {}</p>", esc(e))
        })
        .unwrap_or_default();
    let numbers: String = (1..=code.split('\n').count()).map(|n| format!("{n}\n")).collect();
    let mut secrets = String::new();
    for (i, s) in a["secrets"].as_array().into_iter().flatten().enumerate() {
        let key = s["name"].as_str().unwrap_or_default();
        secrets.push_str(&format!(
            "<div class=\"perm\"><input type=\"hidden\" name=\"secret_keep\" value=\"{k}\"><code>{k}</code> <span class=\"hint\">(value hidden)</span>\
             <input type=\"checkbox\" id=\"secret-remove-{i}\" name=\"secret_remove\" value=\"{k}\"><label for=\"secret-remove-{i}\">Remove</label></div>",
            k = esc(key)
        ));
    }
    let deploy =
        if admin.can_write() { "<button type=\"submit\" name=\"op\" value=\"deploy\">Deploy</button>" } else { "" };
    let inner = format!(
        "<div class=\"field\"><label for=\"code\">Code</label><div class=\"editor\">\
         <pre class=\"gutter\" id=\"code-lines\" aria-hidden=\"true\">{numbers}</pre>\
         <textarea id=\"code\" name=\"code\" rows=\"20\" spellcheck=\"false\" data-code=\"1\" data-error-line=\"{}\">{}</textarea></div></div>\
         <section><h2>Secrets</h2><p class=\"hint\">Values are write-only: once saved they are never shown again.</p>{}\
         <fieldset><legend>Add Secret</legend>{}<div class=\"field\"><label for=\"secret_value\">Value</label>\
         <input type=\"password\" id=\"secret_value\" name=\"secret_value\" autocomplete=\"off\"></div></fieldset></section>\
         {}{deploy}",
        line.unwrap_or(0),
        esc(code),
        if secrets.is_empty() { "<p class=\"empty\">No secrets yet.</p>".to_string() } else { secrets },
        html::text("secret_key", "Key", "secret_key", "", " autocomplete=\"off\""),
        html::submit(&admin, "Save Draft"),
    );
    let body = format!(
        "<p class=\"subtitle\">Login / Post Login · {}</p>{error}{}<section><h2>Danger Zone</h2>{}</section>",
        esc(a["status"].as_str().unwrap_or_default()),
        html::form(&admin, &edit_url(&id), &inner),
        html::delete_form(&admin, &format!("{}/delete", edit_url(&id)), &format!("the action {name}")),
    );
    html::page(&admin, &name, "/console/actions/library", q.get("m").map(String::as_str), &body)
}

async fn save(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let back = edit_url(&id);
    let removed = form.all("secret_remove");
    // Kept secrets are named without a value (the stored one stays); a new one has its value.
    let mut secrets: Vec<Value> =
        form.all("secret_keep").into_iter().filter(|k| !removed.contains(k)).map(|k| json!({ "name": k })).collect();
    let key = form.get("secret_key").trim();
    if !key.is_empty() {
        secrets.retain(|s| s["name"] != key);
        secrets.push(json!({ "name": key, "value": form.get("secret_value") }));
    }
    let doc = json!({ "code": form.get("code").replace("\r\n", "\n"), "secrets": secrets });
    let reply = admin.api(&idp, Method::PATCH, &format!("/actions/actions/{}", enc(&id)), Some(&doc)).await;
    if !reply.ok() || form.get("op") != "deploy" {
        return after_write(&admin, &reply, &back, "saved");
    }
    if let Some(e) = reply.body["errors"][0]["msg"].as_str() {
        return html::error(&admin, &format!("Not deployed: the build failed: {e}"), &back);
    }
    let reply = admin.api(&idp, Method::POST, &format!("/actions/actions/{}/deploy", enc(&id)), None).await;
    after_write(&admin, &reply, &back, "deployed")
}

async fn delete(State(idp): State<AppState>, admin: Admin, Path(id): Path<String>, body: Bytes) -> Response {
    if let Err(r) = Form::checked(&admin, &body) {
        return r;
    }
    let reply = admin.api(&idp, Method::DELETE, &format!("/actions/actions/{}?force=true", enc(&id)), None).await;
    after_write(&admin, &reply, "/console/actions/library", "deleted")
}

async fn flows(admin: Admin) -> Response {
    let body = "<section><h2>Flows</h2><p>Flows run actions at points of a login.</p>\
                <p><a class=\"button\" href=\"/console/actions/flows/login\">Login</a></p></section>";
    html::page(&admin, "Flows", "/console/actions/flows", None, body)
}

async fn login_flow(State(idp): State<AppState>, admin: Admin, Query(q): Query<HashMap<String, String>>) -> Response {
    let bound = admin.get(&idp, &format!("/actions/triggers/{TRIGGER}/bindings?per_page=100")).await;
    if !bound.ok() {
        return html::not_found(&admin, &bound.message());
    }
    let actions = admin.get(&idp, "/actions/actions?per_page=100").await;
    let mut rows = String::new();
    let mut bound_ids = Vec::new();
    for (i, b) in bound.body["bindings"].as_array().into_iter().flatten().enumerate() {
        let aid = b["action"]["id"].as_str().unwrap_or_default();
        bound_ids.push(aid.to_owned());
        let name = b["display_name"].as_str().or(b["action"]["name"].as_str()).unwrap_or(aid);
        rows.push_str(&format!(
            "<div class=\"perm\"><input type=\"hidden\" name=\"bound\" value=\"{v}\">\
             <label for=\"order-{i}\">{n}: order</label><input type=\"number\" id=\"order-{i}\" name=\"order\" value=\"{}\" min=\"1\" max=\"100\">\
             <input type=\"checkbox\" id=\"unbind-{i}\" name=\"unbind\" value=\"{v}\"><label for=\"unbind-{i}\">Remove</label></div>",
            i + 1,
            v = esc(aid),
            n = esc(name)
        ));
    }
    let mut options = String::from("<option value=\"\">(none)</option>");
    for a in actions.body["actions"].as_array().into_iter().flatten() {
        let aid = a["id"].as_str().unwrap_or_default();
        if bound_ids.iter().any(|b| b == aid) || !a["deployed_version"].is_object() {
            continue;
        }
        options.push_str(&format!(
            "<option value=\"{}\">{}</option>",
            esc(aid),
            esc(a["name"].as_str().unwrap_or(aid))
        ));
    }
    let inner = format!(
        "<fieldset><legend>Start → actions in order → Complete</legend>{}</fieldset>\
         <div class=\"field\"><label for=\"add\">Add Action</label><select id=\"add\" name=\"add\">{options}</select>\
         <p class=\"hint\">Only deployed actions can be added (Library → the action → Deploy).</p></div>{}",
        if rows.is_empty() { "<p class=\"empty\">No actions in this flow.</p>".to_string() } else { rows },
        html::submit(&admin, "Apply")
    );
    let body =
        format!("<p class=\"subtitle\">Post Login</p>{}", html::form(&admin, "/console/actions/flows/login", &inner));
    html::page(&admin, "Login", "/console/actions/flows", q.get("m").map(String::as_str), &body)
}

async fn apply(State(idp): State<AppState>, admin: Admin, body: Bytes) -> Response {
    let form = match Form::checked(&admin, &body) {
        Ok(f) => f,
        Err(r) => return r,
    };
    let unbind = form.all("unbind");
    let orders = form.all("order");
    let mut bound: Vec<(i64, usize, &str)> = form
        .all("bound")
        .into_iter()
        .enumerate()
        .filter(|(_, id)| !unbind.contains(id))
        .map(|(i, id)| (orders.get(i).and_then(|o| o.trim().parse().ok()).unwrap_or(i as i64 + 1), i, id))
        .collect();
    bound.sort();
    let mut ids: Vec<&str> = bound.into_iter().map(|(_, _, id)| id).collect();
    let add = form.get("add");
    if !add.is_empty() && !ids.contains(&add) {
        ids.push(add);
    }
    let bindings: Vec<Value> = ids.iter().map(|id| json!({ "ref": { "type": "action_id", "value": id } })).collect();
    let reply = admin
        .api(
            &idp,
            Method::PATCH,
            &format!("/actions/triggers/{TRIGGER}/bindings"),
            Some(&json!({ "bindings": bindings })),
        )
        .await;
    after_write(&admin, &reply, "/console/actions/flows/login", "applied")
}

#[cfg(test)]
mod tests {
    #[test]
    fn build_errors_name_their_line() {
        assert_eq!(super::error_line("SyntaxError: unexpected token at action.js:3:12"), Some(3));
        assert_eq!(super::error_line("expected '}' at line 7"), Some(7));
        assert_eq!(super::error_line("no line here"), None);
    }
}
