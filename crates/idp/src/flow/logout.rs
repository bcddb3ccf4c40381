//! Logout: the SSO session ends, and the browser returns to a URL only when it is on the right
//! allow-list (the application's when a client is named, else the tenant's).

use crate::error::PageKind;
use crate::logs::{Event, Origin, Type};
use crate::tokens::jwt;
use crate::urls::match_logout;
use crate::{AppState, Error, Result};
use serde_json::Value;

/// The application an `id_token_hint` names (its audience), checked against `client_id` when
/// both are given. An expired hint still names its audience; only the signature matters.
pub fn hinted_client(idp: &AppState, hint: &str, client_id: Option<String>) -> Result<Option<String>> {
    let claims =
        jwt::verify(&idp.keys.current(), hint).map_err(|_| Error::bad_page("id_token_hint is not a valid ID token"))?;
    let aud = claims.get("aud").and_then(Value::as_str).map(str::to_owned);
    if client_id.is_some() && client_id != aud {
        return Err(Error::bad_page("client_id does not match the id_token_hint audience"));
    }
    Ok(aud)
}

/// Where to send the browser after logout, checked against the right allow-list. `origin` is
/// who asked (a refusal is recorded as `flo` with its address).
pub async fn return_url(
    idp: &AppState,
    origin: &impl Origin,
    client_id: Option<&str>,
    return_to: Option<&str>,
    state: Option<&str>,
) -> Result<Option<String>> {
    let return_to = return_to.filter(|r| !r.is_empty());
    let (allowed, whose) = match client_id.filter(|c| !c.is_empty()) {
        Some(id) => {
            let Some(client) = idp.store.client(id).await? else {
                return Err(failed(
                    idp,
                    origin,
                    Some(id),
                    Error::page(PageKind::UnknownClient, format!("Unknown client: {id}")),
                ));
            };
            let client = client.client;
            if return_to.is_none() {
                return Ok(client.allowed_logout_urls.first().filter(|u| !u.contains('*')).cloned());
            }
            (client.allowed_logout_urls, "the application's")
        }
        None => (idp.store.tenant_settings().await?.allowed_logout_urls, "the tenant's"),
    };
    let Some(target) = return_to else {
        return Ok(None);
    };
    let Some(matched) = match_logout(&allowed, target) else {
        let e = Error::bad_page(format!(
            "The \"returnTo\" querystring parameter \"{target}\" is not defined as a valid URL in {whose} \"Allowed Logout URLs\"."
        ));
        return Err(failed(idp, origin, client_id, e));
    };
    // The browser goes to the URL that was checked (normalised), with only `state` added.
    let Some(s) = state else {
        return Ok(Some(matched));
    };
    let mut url = url::Url::parse(&matched).map_err(Error::internal)?;
    url.query_pairs_mut().append_pair("state", s);
    Ok(Some(url.to_string()))
}

/// A logout refused: recorded as `flo`.
fn failed(idp: &AppState, origin: &impl Origin, client_id: Option<&str>, e: Error) -> Error {
    let event = Event::from_request(origin).kind(Type::FailedLogout).description(e.description());
    idp.log(match client_id {
        Some(id) => event.client_named(id, None),
        None => event,
    });
    e
}

/// Ends the SSO session this cookie names, if any, recorded as `slo` for its user and the
/// application named (`client_id`), from the address and browser `origin` names.
pub async fn end_session(
    idp: &AppState,
    origin: &impl Origin,
    session_cookie: Option<&str>,
    client_id: Option<&str>,
) -> Result<()> {
    let mut event = Event::from_request(origin).kind(Type::SuccessLogout);
    if let Some(id) = client_id.filter(|c| !c.is_empty()) {
        event = event.client_named(id, None);
    }
    if let Some(raw) = session_cookie {
        let key = super::sso::session_key(raw);
        if let Some(session) = idp.store.session(&key, idp.now()).await? {
            event = event.user_id(&session.user_id);
        }
        idp.store.delete_session(&key).await?;
    }
    idp.log(event);
    Ok(())
}
