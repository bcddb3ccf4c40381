//! `/api/v2/clients`: applications. Secrets are stored as digests, so a secret is shown once,
//! when it is made (create, rotate-secret), and never returned by a read.

use super::{ApiError, ApiResult, Caller, Query, body_object, created, no_content, ok, paged, select};
use crate::AppState;
use crate::util::{random_alnum, random_secret, sha256};
use axum::Router;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::response::Response;
use axum::routing::{get, post};
use serde_json::{Map, Value, json};
use store::{Client, StoredClient};

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/clients", get(list).post(create))
        .route("/clients/{id}", get(read).patch(update).delete(remove))
        .route("/clients/{id}/rotate-secret", post(rotate_secret))
        .route("/clients/{id}/credentials", get(credentials))
}

/// Gatehouse keeps no client credentials (private-key JWT): an existing client has none.
async fn credentials(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["read:client_credentials"])?;
    idp.store.client(&id).await?.ok_or_else(not_found)?;
    Ok(ok(&json!([])))
}

const READ_ONLY: &[&str] =
    &["client_id", "tenant", "global", "signing_keys", "callback_url_template", "owners", "config_route"];
const APP_TYPES: &[&str] = &[
    "regular_web",
    "non_interactive",
    "spa",
    "native",
    "rms",
    "box",
    "cloudbees",
    "concur",
    "dropbox",
    "mscrm",
    "echosign",
    "egnyte",
    "newrelic",
    "office365",
    "salesforce",
    "sentry",
    "sharepoint",
    "slack",
    "springcm",
    "zendesk",
    "zoom",
    "sso_integration",
    "oag",
    "express_configuration",
];
const AUTH_METHODS: &[&str] = &["none", "client_secret_post", "client_secret_basic"];

pub fn to_json(idp: &AppState, c: &Client) -> Value {
    let mut v = serde_json::to_value(c).unwrap_or_default();
    v["tenant"] = json!(idp.config.domain());
    v["global"] = json!(false);
    v
}

/// The scopes that read clients: any of them shows the summary; `read:clients` or
/// `read:client_keys` every setting (the keys would add the secret, which is never stored
/// here); `read:client_credentials` the authentication methods too.
const READ_SCOPES: &[&str] = &["read:clients", "read:client_keys", "read:client_credentials", "read:client_summary"];
const SUMMARY: &[&str] = &["client_id", "app_type", "name", "description"];

/// A client as this reader may see it, by Auth0's per-field rule for `READ_SCOPES`.
fn visible(caller: &Caller, mut v: Value) -> Value {
    if caller.require(&["read:clients", "read:client_keys"]).is_ok() {
        return v;
    }
    let credentials = caller.has("read:client_credentials");
    if let Value::Object(m) = &mut v {
        m.retain(|k, _| SUMMARY.contains(&k.as_str()) || (credentials && k == "client_authentication_methods"));
    }
    v
}

/// The scopes that may change one field of a client, as on Auth0: the secret and keys only
/// with `update:client_keys`, `client_authentication_methods` only with
/// `update:client_credentials`, every other setting (callbacks, logout URLs, grant types…)
/// only with `update:clients`.
fn field_scopes(field: &str) -> &'static [&'static str] {
    match field {
        "client_secret" | "encryption_key" => &["update:client_keys"],
        "client_authentication_methods" => &["update:client_credentials"],
        _ => &["update:clients"],
    }
}

fn not_found() -> ApiError {
    ApiError::not_found("The client does not exist", "inexistent_client")
}

/// Builds a client from a document, validating what the idp relies on.
fn parse(doc: Map<String, Value>) -> ApiResult<Client> {
    let client: Client = serde_json::from_value(Value::Object(doc))
        .map_err(|e| ApiError::bad_request(format!("Payload validation error: {e}")))?;
    if client.name.trim().is_empty() || client.name.len() > 128 {
        return Err(ApiError::bad_request("Payload validation error: 'name' must be 1 to 128 characters."));
    }
    if let Some(t) = &client.app_type
        && !APP_TYPES.contains(&t.as_str())
    {
        return Err(ApiError::bad_request(format!("Payload validation error: invalid app_type '{t}'.")));
    }
    if !AUTH_METHODS.contains(&client.token_endpoint_auth_method.as_str()) {
        return Err(ApiError::bad_request("Payload validation error: invalid token_endpoint_auth_method."));
    }
    if !(1..=2_592_000).contains(&client.jwt_configuration.lifetime_in_seconds) {
        return Err(ApiError::bad_request(
            "Payload validation error: jwt_configuration.lifetime_in_seconds out of range.",
        ));
    }
    for url in client.callbacks.iter().chain(&client.allowed_logout_urls).chain(&client.web_origins) {
        if url.len() > 2048 {
            return Err(ApiError::bad_request("Payload validation error: URL too long."));
        }
    }
    Ok(client)
}

async fn list(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(READ_SCOPES)?;
    let types = q.all("app_type");
    let first_party = q.flag("is_first_party")?;
    if q.flag("is_global")? == Some(true) {
        return paged(&q, vec![], "clients");
    }
    let clients = idp
        .store
        .clients()
        .await?
        .into_iter()
        .map(|s| s.client)
        .filter(|c| !crate::admins::is_console_client(&c.client_id))
        .filter(|c| types.is_empty() || c.app_type.as_deref().is_some_and(|t| types.contains(&t)))
        .filter(|c| first_party.is_none_or(|f| c.is_first_party == f))
        .map(|c| visible(&caller, to_json(&idp, &c)))
        .collect();
    paged(&q, clients, "clients")
}

async fn read(State(idp): State<AppState>, caller: Caller, q: Query, Path(id): Path<String>) -> ApiResult {
    caller.require(READ_SCOPES)?;
    let c = idp.store.client(&id).await?.ok_or_else(not_found)?;
    Ok(ok(&select(visible(&caller, to_json(&idp, &c.client)), &q.fields()?)))
}

async fn create(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["create:clients"])?;
    let mut doc = body_object(&body)?;
    if doc.contains_key("client_authentication_methods") {
        caller.require(&["create:client_credentials"])?;
    }
    let secret = match doc.remove("client_secret") {
        Some(Value::String(s)) if s.len() >= 16 => s,
        Some(Value::Null) | None => random_secret(),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Payload validation error: client_secret must be a string of at least 16 characters.",
            ));
        }
    };
    // Gatehouse extension: a given client_id is kept (tenant files pin credentials, and
    // auth0-deploy-cli sends the file's client_id on create and matches on it next time).
    let client_id = match doc.get("client_id") {
        Some(Value::String(id)) if valid_client_id(id) => id.clone(),
        None | Some(Value::Null) => random_alnum(32),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Payload validation error: client_id must be 1 to 64 letters, digits, '-' or '_'.",
            ));
        }
    };
    for k in READ_ONLY {
        doc.remove(*k);
    }
    // Auth0's defaults for a client created through the API.
    let public = matches!(doc.get("app_type").and_then(Value::as_str), Some("spa" | "native"));
    doc.entry("grant_types")
        .or_insert_with(|| json!(["authorization_code", "implicit", "refresh_token", "client_credentials"]));
    doc.entry("oidc_conformant").or_insert(json!(false));
    doc.entry("token_endpoint_auth_method")
        .or_insert_with(|| json!(if public { "none" } else { "client_secret_post" }));
    doc.insert("client_id".into(), json!(client_id));
    let client = parse(doc)?;
    let has_secret = client.token_endpoint_auth_method != "none";
    let stored = StoredClient { client, secret_sha256: has_secret.then(|| sha256(secret.as_bytes())) };
    // Auth0 enables a new application on every connection unless the tenant turned that off;
    // the client and its place in the connections are one transaction.
    let settings = idp.store.tenant_settings().await?;
    let flag = settings.extra.get("flags").and_then(|f| f.get("enable_client_connections")).and_then(Value::as_bool);
    match idp.store.create_client(&stored, flag != Some(false)).await {
        // Joining every connection must not include the console's.
        Ok(()) => crate::admins::keep_connection_private(&idp).await?,
        Err(store::Error::Conflict(_)) => {
            return Err(ApiError::conflict("A client with the same client_id already exists.", "conflict"));
        }
        Err(e) => return Err(e.into()),
    }
    let mut out = to_json(&idp, &stored.client);
    if has_secret {
        out["client_secret"] = json!(secret);
    }
    Ok(created(&out))
}

fn valid_client_id(id: &str) -> bool {
    (1..=64).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
}

async fn update(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>, body: Bytes) -> ApiResult {
    caller.require(&["update:clients", "update:client_keys", "update:client_credentials"])?;
    let mut patch = body_object(&body)?;
    // Read-only keys are ignored (deploy-cli re-sends whole objects), so they need no scope.
    for k in READ_ONLY {
        patch.remove(*k);
    }
    for field in patch.keys() {
        caller.require(field_scopes(field))?;
    }
    let mut stored = idp.store.client(&id).await?.ok_or_else(not_found)?;
    let new_secret = match patch.remove("client_secret") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) if s.len() >= 16 => Some(s),
        Some(_) => {
            return Err(ApiError::bad_request(
                "Payload validation error: client_secret must be a string of at least 16 characters.",
            ));
        }
    };
    let Value::Object(mut doc) = serde_json::to_value(&stored.client).unwrap_or_default() else {
        return Err(ApiError::bad_request("stored client is not an object"));
    };
    for (k, v) in patch {
        if k == "client_metadata" {
            merge_metadata(&mut doc, &k, v)?;
        } else if v.is_null() {
            doc.remove(&k);
        } else {
            doc.insert(k, v);
        }
    }
    stored.client = parse(doc)?;
    if let Some(s) = &new_secret {
        stored.secret_sha256 = Some(sha256(s.as_bytes()));
    }
    idp.store.put_client(&stored).await?;
    Ok(ok(&to_json(&idp, &stored.client)))
}

/// Top-level keys of the patch replace, `null` deletes (`client_metadata`, user metadata).
pub fn merge_metadata(doc: &mut Map<String, Value>, key: &str, patch: Value) -> ApiResult<()> {
    let Value::Object(patch) = patch else {
        if patch.is_null() {
            doc.remove(key);
            return Ok(());
        }
        return Err(ApiError::bad_request(format!("Payload validation error: '{key}' must be an object.")));
    };
    if patch.is_empty() {
        doc.insert(key.into(), json!({}));
        return Ok(());
    }
    let target = doc.entry(key).or_insert_with(|| json!({}));
    if !target.is_object() {
        *target = json!({});
    }
    if let Value::Object(t) = target {
        for (k, v) in patch {
            if v.is_null() {
                t.remove(&k);
            } else {
                t.insert(k, v);
            }
        }
    }
    Ok(())
}

async fn remove(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult {
    caller.require(&["delete:clients"])?;
    // With its grants, its place in connections and its refresh tokens, in one transaction.
    idp.store.delete_client(&id).await?;
    Ok(no_content())
}

async fn rotate_secret(State(idp): State<AppState>, caller: Caller, Path(id): Path<String>) -> ApiResult<Response> {
    caller.require(&["update:client_keys"])?;
    let mut stored = idp.store.client(&id).await?.ok_or_else(not_found)?;
    let secret = random_secret();
    stored.secret_sha256 = Some(sha256(secret.as_bytes()));
    idp.store.put_client(&stored).await?;
    let mut out = to_json(&idp, &stored.client);
    out["client_secret"] = json!(secret);
    Ok(ok(&out))
}
