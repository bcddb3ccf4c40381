//! One token request, whatever its grant: the grant type is checked, the client authenticated
//! and allowed the grant, the grant's own module runs, and the outcome is recorded in the
//! tenant log with the grant's Auth0 codes (`seacft`/`feacft`, `seccft`/`feccft`,
//! `sertft`/`fertft`, `sepft`/`fepft`). The grants fill in the user, audience and scope of the
//! event as they learn them.

use super::{PASSWORD_REALM, Params, TokenResponse, client_auth};
use crate::actions::post_login::RequestInfo;
use crate::logs::{Event, Type};
use crate::{AppState, Error, Result};

/// The success and failure codes of a grant type.
fn codes(grant_type: &str) -> Option<(Type, Type)> {
    Some(match grant_type {
        "authorization_code" => (Type::SuccessExchangeCode, Type::FailedExchangeCode),
        "client_credentials" => (Type::SuccessExchangeClientCredentials, Type::FailedExchangeClientCredentials),
        "refresh_token" => (Type::SuccessExchangeRefresh, Type::FailedExchangeRefresh),
        "password" | PASSWORD_REALM => (Type::SuccessExchangePassword, Type::FailedExchangePassword),
        _ => return None,
    })
}

/// Runs a token request. `basic` is the `Authorization: Basic` pair; `request` is what
/// post-login Actions see of it (the credentials left out).
pub async fn exchange(
    idp: &AppState,
    basic: Option<(String, String)>,
    p: &Params,
    request: RequestInfo,
) -> Result<TokenResponse> {
    let grant_type = p.require("grant_type")?.to_owned();
    let Some((succeeded, failed)) = codes(&grant_type) else {
        return Err(Error::UnsupportedGrantType(format!("Unsupported grant type: {grant_type}")));
    };
    let named = basic.as_ref().map(|(id, _)| id.as_str()).or(p.get("client_id")).unwrap_or("");
    let mut event = Event::from_request(&request).client_named(&named.chars().take(128).collect::<String>(), None);
    event = event.audience(p.get("audience"));
    let result = run(idp, basic, p, &grant_type, request, &mut event).await;
    match &result {
        Ok(tokens) => {
            event.0.scope = tokens.scope.clone().filter(|s| !s.is_empty());
            idp.log(event.kind(succeeded));
        }
        // The credential check recorded its own failure (`fp`, `fu`, `limit_wc`, `f`).
        Err(Error::InvalidGrant(_) | Error::UserBlocked | Error::TooManyAttempts)
            if failed == Type::FailedExchangePassword => {}
        Err(Error::Store(_) | Error::Internal(_)) => {
            idp.log(event.outcome(failed, Some("The service is temporarily unable to complete the request.".into())))
        }
        Err(e) => idp.log(event.outcome(failed, Some(e.description()))),
    }
    result
}

async fn run(
    idp: &AppState,
    basic: Option<(String, String)>,
    p: &Params,
    grant_type: &str,
    request: RequestInfo,
    event: &mut Event,
) -> Result<TokenResponse> {
    let stored = client_auth::authenticate(idp, basic, p).await?;
    let client = &stored.client;
    *event = std::mem::take(event).client(client);
    // A public client has no secret, so anyone who knows its id could run client credentials
    // as it: that grant is for confidential clients only, whatever the list says.
    let public = client.token_endpoint_auth_method == "none";
    if !client.allows_grant(grant_type) || (public && grant_type == "client_credentials") {
        return Err(Error::UnauthorizedClient(format!("Grant type '{grant_type}' not allowed for the client.")));
    }
    // What post-login actions see of the request; only the grants that run them need it.
    let request = || request.clone().with_body(p.0.iter());
    match grant_type {
        "authorization_code" => super::authorization_code::exchange(idp, client, p, event).await,
        "refresh_token" => super::refresh_token::exchange(idp, client, p, &request(), event).await,
        "client_credentials" => super::client_credentials::exchange(idp, client, p).await,
        _ => super::password::exchange(idp, client, p, grant_type, &request(), event).await,
    }
}
