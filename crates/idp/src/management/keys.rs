//! `/api/v2/keys/signing`: list the signing keys and rotate them (the previous key stays
//! published while tokens it signed can be valid).

use super::{ApiError, ApiResult, Caller, ok};
use crate::AppState;
use crate::util::{b64, iso8601};
use axum::Router;
use axum::extract::{Path, State};
use axum::routing::{get, post};
use serde_json::{Value, json};
use store::SigningKey;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/keys/signing", get(list))
        .route("/keys/signing/rotate", post(rotate))
        .route("/keys/signing/{kid}", get(read))
}

fn pem(der: &[u8]) -> String {
    let body = b64(der);
    let lines: Vec<&str> = body.as_bytes().chunks(64).map(|c| std::str::from_utf8(c).unwrap_or("")).collect();
    format!("-----BEGIN CERTIFICATE-----\r\n{}\r\n-----END CERTIFICATE-----\r\n", lines.join("\r\n"))
}

fn to_json(k: &SigningKey) -> Value {
    let digest = crate::util::sha256(&k.cert_der);
    let fingerprint: Vec<String> = digest.iter().map(|b| format!("{b:02X}")).collect();
    let mut v = json!({
        "kid": k.kid,
        "cert": pem(&k.cert_der),
        "fingerprint": fingerprint.join(":"),
        "thumbprint": fingerprint.concat().to_lowercase(),
        "current": k.current,
        "previous": !k.current && k.rotated_at.is_some(),
        "revoked": k.revoked_at.is_some(),
        "current_since": iso8601(k.created_at),
    });
    if let Some(r) = k.rotated_at {
        v["current_until"] = json!(iso8601(r));
    }
    if let Some(r) = k.revoked_at {
        v["revoked_at"] = json!(iso8601(r));
    }
    v
}

async fn list(State(idp): State<AppState>, caller: Caller) -> ApiResult {
    caller.require(&["read:signing_keys"])?;
    let keys: Vec<Value> = idp.store.signing_keys().await?.iter().map(to_json).collect();
    Ok(ok(&json!(keys)))
}

async fn read(State(idp): State<AppState>, caller: Caller, Path(kid): Path<String>) -> ApiResult {
    caller.require(&["read:signing_keys"])?;
    let keys = idp.store.signing_keys().await?;
    let key = keys
        .iter()
        .find(|k| k.kid == kid)
        .ok_or_else(|| ApiError::not_found("Signing key not found", "inexistent_key"))?;
    Ok(ok(&to_json(key)))
}

async fn rotate(State(idp): State<AppState>, caller: Caller) -> ApiResult {
    caller.require(&["create:signing_keys", "update:signing_keys"])?;
    idp.rotate_signing_key().await?;
    let keys = idp.store.signing_keys().await?;
    let current =
        keys.iter().find(|k| k.current).ok_or_else(|| ApiError::bad_request("no current key after rotation"))?;
    Ok(ok(&json!({ "cert": pem(&current.cert_der), "kid": current.kid })))
}
