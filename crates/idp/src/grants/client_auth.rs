//! Client authentication at the token and revocation endpoints: a confidential client proves
//! its secret (in the body or with HTTP Basic, decoded by the endpoint), in constant time; a
//! public one (`none`) may only name itself.

use super::Params;
use crate::util::{ct_eq, sha256};
use crate::{AppState, Error, Result};
use std::sync::Arc;
use store::StoredClient;

/// The client the request authenticates as. `basic` is the `Authorization: Basic` pair.
pub async fn authenticate(idp: &AppState, basic: Option<(String, String)>, p: &Params) -> Result<Arc<StoredClient>> {
    let (client_id, secret) = match &basic {
        Some((id, secret)) => {
            if p.get("client_id").is_some_and(|b| b != id) {
                return Err(Error::ClientAuthentication);
            }
            (id.as_str(), Some(secret.as_str()))
        }
        None => (p.require("client_id")?, p.get("client_secret")),
    };
    let stored = idp.cache.cached_client(client_id).await?.ok_or(Error::ClientAuthentication)?;
    match (&stored.secret_sha256, secret) {
        (Some(digest), Some(secret)) if ct_eq(digest, &sha256(secret.as_bytes())) => Ok(stored),
        (None, None) if stored.client.token_endpoint_auth_method == "none" => Ok(stored),
        _ => Err(Error::ClientAuthentication),
    }
}
