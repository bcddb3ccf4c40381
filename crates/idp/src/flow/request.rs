//! Step 1: an `/authorize` request checked. Until client and redirect URI are known good,
//! every failure is a page (never a redirect to an unverified URL); after that, failures go
//! back to the application as `error`/`error_description`/`state`, as Auth0 does.

use super::Reply;
use crate::error::PageKind;
use crate::grants::scopes::grantable_scopes;
use crate::urls::match_callback;
use crate::{AppState, Error, Result};
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use store::{Client, Connection, StoredClient};

/// A validated `/authorize` request, kept in the login transaction while the user signs in.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AuthRequest {
    pub client_id: String,
    pub redirect_uri: String,
    /// Whether the client sent `redirect_uri` (then the token request must repeat it).
    pub redirect_uri_sent: bool,
    pub response_mode: ResponseMode,
    pub state: Option<String>,
    pub nonce: Option<String>,
    pub scope: Vec<String>,
    pub audience: Option<String>,
    pub connection: Option<String>,
    pub code_challenge: Option<String>,
    pub code_challenge_method: Option<String>,
    pub max_age: Option<i64>,
    pub login_hint: Option<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ResponseMode {
    Query,
    Fragment,
    FormPost,
}

impl ResponseMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ResponseMode::Query => "query",
            ResponseMode::Fragment => "fragment",
            ResponseMode::FormPost => "form_post",
        }
    }
}

/// The `prompt` parameter: `login` asks for the password again, `none` must not show a page.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Prompt {
    Default,
    Login,
    None,
}

/// A request that passed step 1.
pub struct Valid {
    pub req: AuthRequest,
    pub prompt: Prompt,
    /// The federated connection asked for with `connection`, which skips the login page.
    pub federated: Option<Connection>,
}

/// Checks an `/authorize` request. The outer `Err` is for a page: an unknown client or a
/// redirect URI that is not the application's; the inner one is a refusal with its answer for
/// the (verified) redirect URI.
pub async fn validate(idp: &AppState, q: &HashMap<String, String>) -> Result<std::result::Result<Valid, Reply>> {
    let get = |k: &str| q.get(k).map(String::as_str).filter(|v| !v.is_empty());
    let client_id = get("client_id").ok_or_else(|| Error::bad_page("Missing required parameter: client_id"))?;
    let Some(StoredClient { client, .. }) = idp.store.client(client_id).await? else {
        return Err(Error::page(PageKind::UnknownClient, format!("Unknown client: {client_id}")));
    };
    let redirect_uri = match get("redirect_uri") {
        // The normalised URL that matched, not the raw input, is where the answer goes.
        Some(r) => match_callback(&client.callbacks, r),
        None => client.callbacks.first().filter(|c| !c.contains('*')).cloned(),
    };
    let Some(redirect_uri) = redirect_uri else {
        return Err(Error::page(
            PageKind::CallbackMismatch,
            format!(
                "The provided redirect_uri is not in the list of allowed callback URLs of the application {}.",
                client.name
            ),
        ));
    };
    let response_mode = match get("response_mode") {
        None | Some("query") => ResponseMode::Query,
        Some("fragment") => ResponseMode::Fragment,
        Some("form_post") => ResponseMode::FormPost,
        Some(other) => return Err(Error::bad_page(format!("Unsupported response_mode: {other}"))),
    };
    let mut req = AuthRequest {
        client_id: client.client_id.clone(),
        redirect_uri,
        redirect_uri_sent: get("redirect_uri").is_some(),
        response_mode,
        state: q.get("state").cloned(),
        nonce: get("nonce").map(str::to_owned),
        scope: get("scope").unwrap_or("openid").split(' ').filter(|s| !s.is_empty()).map(str::to_owned).collect(),
        audience: None,
        connection: get("connection").map(str::to_owned),
        code_challenge: get("code_challenge").map(str::to_owned),
        code_challenge_method: None,
        max_age: None,
        login_hint: get("login_hint").map(str::to_owned),
    };
    // From here on the redirect URI is trusted: failures go back to the application.
    macro_rules! refuse {
        ($error:expr, $description:expr) => {
            return Ok(Err(Reply::error(&req, $error, $description)))
        };
    }

    // Request objects are not supported: the state and nonce inside one would be lost, so the
    // client is told at once, as OIDC Core 6.1 and 6.2 say (discovery says so too).
    if get("request").is_some() {
        refuse!("request_not_supported", "The request parameter is not supported");
    }
    if get("request_uri").is_some() {
        refuse!("request_uri_not_supported", "The request_uri parameter is not supported");
    }
    match get("response_type") {
        Some("code") => {}
        None => refuse!("invalid_request", "Missing required parameter: response_type"),
        Some(other) => refuse!("unsupported_response_type", format!("Unsupported response type: {other}")),
    }
    if !client.allows_grant("authorization_code") {
        refuse!("unauthorized_client", "Grant type 'authorization_code' not allowed for the client.");
    }
    match pkce_challenge(&client, req.code_challenge.as_deref(), get("code_challenge_method")) {
        Ok(method) => req.code_challenge_method = method,
        Err(why) => refuse!("invalid_request", why),
    }
    if let Some(m) = get("max_age") {
        match m.parse::<i64>() {
            Ok(v) if v >= 0 => req.max_age = Some(v),
            _ => refuse!("invalid_request", "max_age must be a non-negative integer"),
        }
    }
    let prompt = match get("prompt") {
        Some("login") => Prompt::Login,
        Some("none") => Prompt::None,
        _ => Prompt::Default,
    };
    let settings = idp.store.tenant_settings().await?;
    req.audience = get("audience").map(str::to_owned).or(settings.default_audience.clone().filter(|a| !a.is_empty()));
    let api = match &req.audience {
        Some(aud) => match idp.store.resource_server_by_identifier(aud).await? {
            Some(rs) => Some(rs),
            None => refuse!("access_denied", format!("Service not enabled within domain: {aud}")),
        },
        None => None,
    };
    let federated = match &req.connection {
        Some(name) => match connection_choice(idp.store.connection_by_name(name).await?, name, &client) {
            Ok(c) => c,
            Err(why) => refuse!("invalid_request", why),
        },
        None => None,
    };
    req.scope = grantable_scopes(&req.scope, &client, api.as_ref());
    Ok(Ok(Valid { req, prompt, federated }))
}

/// The PKCE method of a request (`plain` when a challenge comes without one), or why the
/// challenge is refused. A public client must use PKCE (it has no secret to prove itself).
pub fn pkce_challenge(
    client: &Client,
    challenge: Option<&str>,
    method: Option<&str>,
) -> std::result::Result<Option<String>, String> {
    let Some(challenge) = challenge else {
        if client.token_endpoint_auth_method == "none" {
            return Err("Parameter 'code_challenge' is required for public clients".into());
        }
        return Ok(None);
    };
    let method = method.unwrap_or("plain");
    if !matches!(method, "S256" | "plain") {
        return Err(format!("Unsupported code_challenge_method: {method}"));
    }
    if !crate::grants::authorization_code::pkce_shape(challenge) {
        return Err("Invalid code_challenge".into());
    }
    Ok(Some(method.to_owned()))
}

/// What `connection=name` means for this application: the login page (a database connection,
/// `None`), a federated provider to go to at once, or a refusal.
fn connection_choice(
    found: Option<Connection>,
    name: &str,
    client: &Client,
) -> std::result::Result<Option<Connection>, String> {
    match found {
        Some(c) if !c.enabled_for(&client.client_id) => {
            Err(format!("the connection {name} is not enabled for this application"))
        }
        Some(c) if c.is_database() => Ok(None),
        Some(c) if super::federated::Strategy::of(&c).is_some() => Ok(Some(c)),
        Some(c) => Err(format!("The connection {name} (strategy {}) is not supported yet", c.strategy)),
        None => Err(format!("the connection {name} was not found")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(auth_method: &str) -> Client {
        serde_json::from_value(json!({
            "client_id": "app", "name": "App", "token_endpoint_auth_method": auth_method
        }))
        .unwrap()
    }

    #[test]
    fn pkce_is_required_of_public_clients_and_checked_for_shape() {
        let verifier_like = "a".repeat(43);
        assert_eq!(pkce_challenge(&client("client_secret_post"), None, None), Ok(None));
        assert!(pkce_challenge(&client("none"), None, None).unwrap_err().contains("required for public clients"));
        assert_eq!(pkce_challenge(&client("none"), Some(&verifier_like), None), Ok(Some("plain".into())));
        assert_eq!(pkce_challenge(&client("none"), Some(&verifier_like), Some("S256")), Ok(Some("S256".into())));
        assert_eq!(
            pkce_challenge(&client("none"), Some(&verifier_like), Some("S512")),
            Err("Unsupported code_challenge_method: S512".into())
        );
        assert_eq!(pkce_challenge(&client("none"), Some("short"), None), Err("Invalid code_challenge".into()));
        let bad_char = format!("{}+", "a".repeat(42));
        assert_eq!(pkce_challenge(&client("none"), Some(&bad_char), None), Err("Invalid code_challenge".into()));
    }

    #[test]
    fn a_named_connection_must_be_enabled_and_supported() {
        let app = client("client_secret_post");
        let connection = |strategy: &str, enabled: &[&str]| -> Connection {
            serde_json::from_value(json!({
                "id": "con_1", "name": "c", "strategy": strategy, "enabled_clients": enabled
            }))
            .unwrap()
        };
        assert!(connection_choice(Some(connection("auth0", &["app"])), "c", &app).unwrap().is_none());
        assert!(connection_choice(Some(connection("google-oauth2", &["app"])), "c", &app).unwrap().is_some());
        assert!(
            connection_choice(Some(connection("auth0", &["other"])), "c", &app).unwrap_err().contains("not enabled")
        );
        assert!(
            connection_choice(Some(connection("samlp", &["app"])), "c", &app).unwrap_err().contains("not supported")
        );
        assert!(connection_choice(None, "c", &app).unwrap_err().contains("not found"));
    }
}
