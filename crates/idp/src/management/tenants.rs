//! `/api/v2/tenants/settings`. deploy-cli sends session lifetimes as `*_in_minutes`; they are
//! stored in Auth0's hour form, which is what GET returns.

use super::{ApiError, ApiResult, Caller, Query, body_object, ok, select};
use crate::AppState;
use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::routing::get;
use serde_json::{Value, json};
use store::TenantSettings;

pub fn routes() -> Router<AppState> {
    Router::new().route("/tenants/settings", get(read).patch(update))
}

fn to_json(s: &TenantSettings) -> Value {
    let mut v = json!(s);
    v.as_object_mut().map(|m| m.entry("sandbox_versions_available").or_insert(json!(["18", "22"])));
    v
}

async fn read(State(idp): State<AppState>, caller: Caller, q: Query) -> ApiResult {
    caller.require(&["read:tenant_settings"])?;
    Ok(ok(&select(to_json(&idp.store.tenant_settings().await?), &q.fields()?)))
}

const MINUTE_KEYS: &[(&str, &str)] = &[
    ("session_lifetime_in_minutes", "session_lifetime"),
    ("idle_session_lifetime_in_minutes", "idle_session_lifetime"),
    ("ephemeral_session_lifetime_in_minutes", "ephemeral_session_lifetime"),
    ("idle_ephemeral_session_lifetime_in_minutes", "idle_ephemeral_session_lifetime"),
];

async fn update(State(idp): State<AppState>, caller: Caller, body: Bytes) -> ApiResult {
    caller.require(&["update:tenant_settings"])?;
    let mut patch = body_object(&body)?;
    for (minutes, hours) in MINUTE_KEYS {
        if let Some(v) = patch.remove(*minutes) {
            if patch.contains_key(*hours) {
                return Err(ApiError::bad_request(format!(
                    "Payload validation error: {minutes} and {hours} are mutually exclusive."
                )));
            }
            let m = v.as_f64().ok_or_else(|| {
                ApiError::bad_request(format!("Payload validation error: {minutes} must be a number."))
            })?;
            patch.insert((*hours).into(), json!(m / 60.0));
        }
    }
    patch.remove("sandbox_versions_available");
    let current = idp.store.tenant_settings().await?;
    let Value::Object(mut doc) = json!(current) else { return Err(ApiError::bad_request("corrupt settings")) };
    for (k, v) in patch {
        if k == "flags"
            && let (Value::Object(new), Some(Value::Object(old))) = (&v, doc.get_mut("flags"))
        {
            // Flags merge key by key, as Auth0 does.
            old.extend(new.clone());
            continue;
        }
        if v.is_null() {
            doc.remove(&k);
        } else {
            doc.insert(k, v);
        }
    }
    let settings: TenantSettings = serde_json::from_value(Value::Object(doc))
        .map_err(|e| ApiError::bad_request(format!("Payload validation error: {e}")))?;
    if let Some(h) = settings.session_lifetime
        && !(1.0 / 60.0..=8760.0).contains(&h)
    {
        return Err(ApiError::bad_request("Payload validation error: session_lifetime out of range."));
    }
    idp.store.put_tenant_settings(&settings).await?;
    Ok(ok(&to_json(&settings)))
}
