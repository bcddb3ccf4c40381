//! The password and password-realm grants (Resource Owner Password). `password` signs into the
//! tenant's default directory; `password-realm` into the connection named by `realm`, which
//! must be enabled for the client.

use super::scopes::grantable_scopes;
use super::{Grant, Issuance, PASSWORD_REALM, Params, Refresh, TokenResponse, issue};
use crate::accounts::login::check_password;
use crate::actions::post_login::{self, RequestInfo};
use crate::logs::Event;
use crate::util::random_token;
use crate::{AppState, Error, Result};
use store::Client;

pub async fn exchange(
    idp: &AppState,
    client: &Client,
    p: &Params,
    grant_type: &str,
    request: &RequestInfo,
    event: &mut Event,
) -> Result<TokenResponse> {
    let username = p.require("username")?;
    let password = p.require("password")?;
    let settings = idp.store.tenant_settings().await?;
    let realm = if grant_type == PASSWORD_REALM {
        p.require("realm")?.to_owned()
    } else {
        settings.default_directory.clone().filter(|d| !d.is_empty()).ok_or_else(|| {
            Error::Misconfigured("Authorization server not configured with default connection.".into())
        })?
    };
    let connection = idp.store.connection_by_name(&realm).await?.filter(|c| c.is_database()).ok_or_else(|| {
        Error::invalid_request(format!("connection {realm} does not exist or is not a database connection"))
    })?;
    if !connection.enabled_for(&client.client_id) {
        return Err(Error::UnauthorizedClient("The connection is not enabled for this client.".into()));
    }
    let audience = p.get("audience").map(str::to_owned).or(settings.default_audience.filter(|a| !a.is_empty()));
    let api = match &audience {
        Some(aud) => Some(
            idp.store
                .resource_server_by_identifier(aud)
                .await?
                .ok_or_else(|| Error::access_denied(format!("Service not enabled within domain: {aud}")))?,
        ),
        None => None,
    };
    *event = std::mem::take(event).connection(&connection);
    let stored = check_password(idp, &connection, username, password, event).await?.map_err(Error::from)?;
    *event = std::mem::take(event).user(&stored.user);
    let requested = p.scope().unwrap_or_else(|| vec!["openid".into()]);
    let mut grant = Grant {
        client_id: client.client_id.clone(),
        user_id: stored.user.user_id.clone(),
        scope: grantable_scopes(&requested, client, api.as_ref()),
        audience,
        redirect_uri: None,
        nonce: None,
        code_challenge: None,
        code_challenge_method: None,
        sid: None,
        auth_time: idp.now() / 1000,
        include_auth_time: false,
        family: random_token(),
        actions: Default::default(),
    };
    let login = post_login::Login {
        client,
        user: &stored.user,
        protocol: "oauth2-password",
        scope: &grant.scope,
        audience: grant.audience.as_deref(),
        request,
        authorization: None,
        session: None,
        auth_time: grant.auth_time * 1000,
    };
    grant.actions = post_login::run_for_token(idp, login).await?;
    super::consent::record(idp, &grant).await?;
    issue(idp, client, &stored.user, &grant, Issuance::Password, Refresh::New).await
}
