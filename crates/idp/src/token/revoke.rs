//! `POST /oauth/revoke`: revokes a refresh token (and so its family). Unknown tokens answer
//! 200 too (RFC 7009), so the endpoint reveals nothing about which tokens exist.

use super::{authenticate, decode};
use crate::util::sha256;
use crate::{AppState, Result};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};

pub async fn revoke(State(idp): State<AppState>, headers: HeaderMap, body: axum::body::Bytes) -> Response {
    match run(&idp, &headers, &body).await {
        Ok(()) => StatusCode::OK.into_response(),
        Err(e) => e.into_response(),
    }
}

async fn run(idp: &AppState, headers: &HeaderMap, body: &[u8]) -> Result<()> {
    let p = decode(headers, body)?;
    let client = &authenticate(idp, headers, &p).await?.client;
    let token = p.require("token")?;
    if let Some(t) = idp.store.refresh_token(&sha256(token.as_bytes())).await?
        && t.client_id == client.client_id
    {
        idp.store.revoke_refresh_family(&t.family).await?;
    }
    Ok(())
}
