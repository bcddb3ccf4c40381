//! `GET|POST /userinfo`: the signed-in user's claims for an access token that names
//! `https://{domain}/userinfo` among its audiences and carries `openid`.

use crate::tokens::profile_claims;
use crate::tokens::verify::verify_access_token;
use crate::{AppState, Error, Result};
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Map, Value};

pub async fn userinfo(State(idp): State<AppState>, headers: HeaderMap) -> Response {
    match claims(&idp, &headers).await {
        Ok(c) => Json(c).into_response(),
        Err(e) => e.into_response(),
    }
}

async fn claims(idp: &AppState, headers: &HeaderMap) -> Result<Map<String, Value>> {
    let token = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer ").or_else(|| v.strip_prefix("bearer ")))
        .ok_or(Error::Unauthorized("no bearer token"))?;
    let claims = verify_access_token(idp, token.trim()).await?;
    let for_userinfo = |a: &Value| a.as_str().is_some_and(|a| idp.config.is_url(a, "userinfo"));
    let aud_ok = match claims.get("aud") {
        Some(Value::Array(a)) => a.iter().any(for_userinfo),
        Some(a) => for_userinfo(a),
        None => false,
    };
    let scope: Vec<&str> = claims.get("scope").and_then(Value::as_str).unwrap_or("").split(' ').collect();
    if !aud_ok || !scope.contains(&"openid") {
        return Err(Error::Unauthorized("token not valid for /userinfo"));
    }
    let sub = claims.get("sub").and_then(Value::as_str).ok_or(Error::Unauthorized("no sub"))?;
    let stored = idp.cache.cached_user(sub).await?.ok_or(Error::Unauthorized("user gone"))?;
    let user = &stored.user;
    if user.blocked {
        return Err(Error::Unauthorized("user blocked"));
    }
    let mut out = Map::new();
    out.insert("sub".into(), Value::String(user.user_id.clone()));
    out.extend(profile_claims(user, &scope));
    // The ID-token claims the post-login actions set at this client's latest login, as Auth0
    // returns them here too (standard claims still only with their scope).
    // An RFC 9068 token names its client in `client_id`.
    if let Some(azp) = claims.get("azp").or_else(|| claims.get("client_id")).and_then(Value::as_str) {
        out.extend(crate::actions::post_login::userinfo_claims(idp, azp, &user.user_id, &scope).await?);
    }
    Ok(out)
}
