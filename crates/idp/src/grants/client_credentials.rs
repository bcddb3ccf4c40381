//! The client-credentials grant: a client grant for (client, audience) must exist; scopes are
//! the requested ones when all were granted, else every granted one when none was asked.

use super::{Params, TokenResponse};
use crate::tokens::{Subject, access_token};
use crate::{AppState, Error, Result};
use store::Client;

pub async fn exchange(idp: &AppState, client: &Client, p: &Params) -> Result<TokenResponse> {
    let audience = match p.get("audience") {
        Some(a) => a.to_owned(),
        None => {
            idp.cache.cached_tenant_settings().await?.default_audience.clone().filter(|a| !a.is_empty()).ok_or_else(
                || {
                    Error::access_denied(
                        "No audience parameter was provided, and no default audience has been configured",
                    )
                },
            )?
        }
    };
    let api = idp
        .cache
        .cached_resource_server_by_identifier(&audience)
        .await?
        .ok_or_else(|| Error::access_denied(format!("Service not enabled within domain: {audience}")))?;
    let grant = idp.cache.cached_client_grant_for(&client.client_id, &audience).await?.ok_or_else(|| {
        Error::access_denied(format!(
            "Client \"{}\" is not authorized to access resource server \"{audience}\". You need to create a \"client-grant\" associated to this API.",
            client.client_id
        ))
    })?;
    let scope = match p.scope() {
        Some(asked) => {
            let missing: Vec<&str> = asked.iter().filter(|s| !grant.scope.contains(s)).map(String::as_str).collect();
            if !missing.is_empty() {
                return Err(Error::access_denied(format!("Client has not been granted scopes: {}", missing.join(" "))));
            }
            asked
        }
        None => grant.scope.clone(),
    };
    // In the `*_authz` dialects a client's permissions are the scopes its grant gave this token.
    let permissions = crate::rbac::Dialect::of(Some(&api)).with_permissions().then_some(scope.as_slice());
    let keys = idp.keys.current();
    let (access_token, expires_in) = access_token(
        &idp.config,
        &keys,
        Subject::Client,
        &client.client_id,
        Some(&api),
        &scope,
        Some("client-credentials"),
        None,
        &Default::default(),
        permissions,
        idp.now(),
    )?;
    Ok(TokenResponse {
        access_token,
        id_token: None,
        refresh_token: None,
        scope: (!scope.is_empty()).then(|| scope.join(" ")),
        expires_in,
        token_type: "Bearer",
    })
}
