//! The post-login trigger during a login: builds Auth0's `event` from the real user, client,
//! connection, request and transaction, runs the deployed actions bound to `post-login` (in
//! binding order, through `actions::Runner`), writes their `console` lines to the log
//! with the action's name, persists their metadata updates once at the end, and hands back
//! what the tokens of this login must carry ([`ActionClaims`]) or why the login is denied.
//!
//! Where the outcome lives: in the `Grant` (the code, then the refresh tokens carry it), so the
//! tokens issued for this login get the claims without running anything again; refresh
//! exchanges run the actions again and replace it. `/userinfo` returns the ID-token custom
//! claims of the latest login of that user at that client, kept as a store record
//! (`store::UserinfoClaims`) — an access token has no other link to the login that minted it.
//!
//! This module must not issue tokens (that is `grants::issue`) nor know wire formats.

use super::POST_LOGIN;
use crate::metadata::TooLarge;
use crate::util::{b64url, iso8601, sha256};
use crate::{AppState, Error, Result};
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};
use store::{Client, Connection, User, UserinfoClaims};

/// What the post-login actions added to this login's tokens.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ActionClaims {
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub id_token: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Map::is_empty")]
    pub access_token: Map<String, Value>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub add_scopes: Vec<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub remove_scopes: Vec<String>,
}

impl ActionClaims {
    pub fn is_empty(&self) -> bool {
        *self == ActionClaims::default()
    }

    /// The access token's scope: the granted one with the actions' changes.
    pub fn access_scope(&self, granted: &[String]) -> Vec<String> {
        let mut scope: Vec<String> = granted.iter().filter(|s| !self.remove_scopes.contains(s)).cloned().collect();
        for s in &self.add_scopes {
            if !scope.contains(s) {
                scope.push(s.clone());
            }
        }
        scope
    }
}

/// How a login ends after the post-login trigger.
#[derive(Debug)]
pub enum Verdict {
    Allow(ActionClaims),
    /// `api.access.deny(reason)`, or an action that failed (the reason names it).
    Deny(String),
}

/// The HTTP request a login arrived with, as `event.request` shows it.
#[derive(Debug, Clone, Default)]
pub struct RequestInfo {
    pub ip: String,
    pub hostname: String,
    pub method: &'static str,
    pub user_agent: Option<String>,
    pub language: Option<String>,
    pub query: Map<String, Value>,
    /// Token-endpoint parameters, without credentials.
    pub body: Map<String, Value>,
}

impl crate::logs::Origin for RequestInfo {
    fn ip(&self) -> &str {
        &self.ip
    }
    fn hostname(&self) -> &str {
        &self.hostname
    }
    fn user_agent(&self) -> Option<&str> {
        self.user_agent.as_deref()
    }
}

/// Body parameters never shown to action code.
const CREDENTIALS: &[&str] =
    &["password", "client_secret", "client_assertion", "code", "code_verifier", "refresh_token", "otp", "csrf"];

impl RequestInfo {
    pub fn with_body<'a>(mut self, params: impl IntoIterator<Item = (&'a String, &'a String)>) -> Self {
        for (k, v) in params {
            if !CREDENTIALS.contains(&k.as_str()) {
                self.body.insert(k.clone(), json!(v));
            }
        }
        self
    }
}

/// One login, as the post-login trigger sees it.
pub struct Login<'a> {
    pub client: &'a Client,
    pub user: &'a User,
    /// `event.transaction.protocol`: `oidc-basic-profile` (code flow), `oauth2-password`
    /// (password and password-realm grants), `oauth2-refresh-token`.
    pub protocol: &'static str,
    pub scope: &'a [String],
    pub audience: Option<&'a str>,
    pub request: &'a RequestInfo,
    /// The `/authorize` request of an interactive login.
    pub authorization: Option<Authorization<'a>>,
    /// (id, authenticated at, ms) of the SSO session.
    pub session: Option<(&'a str, i64)>,
    /// Milliseconds: when the user proved who they are.
    pub auth_time: i64,
}

/// What `event.transaction` shows of the `/authorize` request of an interactive login.
pub struct Authorization<'a> {
    pub redirect_uri: &'a str,
    pub response_mode: &'static str,
    pub state: Option<&'a str>,
    pub login_hint: Option<&'a str>,
}

/// Runs the post-login trigger for one login.
pub async fn run(idp: &AppState, login: Login<'_>) -> Result<Verdict> {
    let (verdict, secrets) = decide(idp, &login).await?;
    // The tenant log gets the reason, with every Action secret's value taken out: action code
    // may put one in a denial or an error message (`api.access.deny(event.secrets.KEY)`).
    Ok(match verdict {
        Verdict::Deny(reason) => {
            let reason = redact(&reason, &secrets);
            let event = crate::logs::Event::from_request(login.request)
                .client(login.client)
                .user(login.user)
                .connection_name(&login.user.connection)
                .audience(login.audience)
                .scope(login.scope);
            idp.log(event.outcome(crate::logs::Type::Failed, Some(reason.clone())));
            Verdict::Deny(reason)
        }
        allow => allow,
    })
}

/// Replaces each secret value (of a few characters at least) in `text`.
fn redact(text: &str, secrets: &[std::sync::Arc<Map<String, Value>>]) -> String {
    let mut out = text.to_owned();
    for value in secrets.iter().flat_map(|m| m.values()).filter_map(Value::as_str) {
        if value.len() >= 4 {
            out = out.replace(value, "[redacted]");
        }
    }
    out
}

/// [`run`]'s decision, and the secrets of the actions that ran (for redaction).
async fn decide(idp: &AppState, login: &Login<'_>) -> Result<(Verdict, Vec<std::sync::Arc<Map<String, Value>>>)> {
    let userinfo_key = userinfo_key(&login.client.client_id, &login.user.user_id);
    let chain = match super::deployed_chain(idp, POST_LOGIN).await? {
        Ok(c) => c,
        Err(reason) => {
            let failed = crate::logs::Event::from_request(login.request).client(login.client).user(login.user);
            idp.log(failed.outcome(crate::logs::Type::ActionsExecutionFailed, Some(reason.clone())));
            return Ok((Verdict::Deny(reason), Vec::new()));
        }
    };
    if chain.is_empty() {
        // Claims of an earlier login with actions must not outlive them at /userinfo.
        idp.store.delete_userinfo_claims(&userinfo_key).await?;
        return Ok((Verdict::Allow(ActionClaims::default()), Vec::new()));
    }
    let secrets: Vec<_> = chain.iter().map(|a| a.secrets.clone()).collect();
    let event = event(idp, login).await?;
    let execution = idp.actions.run(chain, event).await?;
    for l in &execution.logs {
        let (action, line) = (&l.action, &l.line);
        match l.level {
            actions::Level::Error => tracing::error!(target: "gatehouse::actions", action = %action, "{line}"),
            actions::Level::Warn => tracing::warn!(target: "gatehouse::actions", action = %action, "{line}"),
            actions::Level::Info => tracing::info!(target: "gatehouse::actions", action = %action, "{line}"),
            actions::Level::Debug => tracing::debug!(target: "gatehouse::actions", action = %action, "{line}"),
        }
    }
    let outcome = match execution.result {
        Ok(o) => o,
        Err(e) => {
            tracing::warn!(action = e.action().unwrap_or(""), user_id = %login.user.user_id, error = %e, "post-login action failed; login denied");
            metrics::counter!("gatehouse_actions_total", "outcome" => "failed").increment(1);
            let failed = crate::logs::Event::from_request(login.request)
                .client(login.client)
                .user(login.user)
                .details(json!({ "action_name": e.action(), "trigger": POST_LOGIN }));
            let message = redact(&e.to_string(), &secrets);
            idp.log(failed.outcome(crate::logs::Type::ActionsExecutionFailed, Some(message)));
            return Ok((Verdict::Deny(e.to_string()), secrets));
        }
    };
    if let Some(d) = outcome.denied {
        tracing::info!(action = %d.action, user_id = %login.user.user_id, "post-login action denied the login");
        metrics::counter!("gatehouse_actions_total", "outcome" => "denied").increment(1);
        return Ok((Verdict::Deny(d.reason), secrets));
    }
    if (!outcome.app_metadata.is_empty() || !outcome.user_metadata.is_empty())
        && let Err(too_large) =
            persist_metadata(idp, &login.user.user_id, &outcome.app_metadata, &outcome.user_metadata).await?
    {
        // Nothing was written; a login whose actions' updates cannot be kept does not go on
        // as if they had been.
        tracing::warn!(user_id = %login.user.user_id, "post-login metadata updates refused: {too_large}; login denied");
        metrics::counter!("gatehouse_actions_total", "outcome" => "failed").increment(1);
        return Ok((
            Verdict::Deny(format!("The metadata updates of the post-login actions were refused: {too_large}.")),
            secrets,
        ));
    }
    metrics::counter!("gatehouse_actions_total", "outcome" => "allowed").increment(1);
    let claims = ActionClaims {
        id_token: outcome.id_token_claims,
        access_token: outcome.access_token_claims,
        add_scopes: outcome.add_scopes,
        remove_scopes: outcome.remove_scopes,
    };
    let stored = idp.store.userinfo_claims(&userinfo_key).await?;
    if claims.id_token.is_empty() {
        if stored.is_some() {
            idp.store.delete_userinfo_claims(&userinfo_key).await?;
        }
    } else if stored.as_ref().map(|d| &d.claims) != Some(&claims.id_token) {
        let record = UserinfoClaims { claims: claims.id_token.clone(), updated_at: idp.now() };
        idp.store.put_userinfo_claims(&userinfo_key, &record).await?;
    }
    Ok((Verdict::Allow(claims), secrets))
}

/// `run` for the token endpoint: a denial is Auth0's 403 `access_denied`.
pub async fn run_for_token(idp: &AppState, login: Login<'_>) -> Result<ActionClaims> {
    match run(idp, login).await? {
        Verdict::Allow(c) => Ok(c),
        Verdict::Deny(reason) => Err(Error::access_denied(reason)),
    }
}

/// The ID-token custom claims the latest login of `user_id` at `client_id` got from actions,
/// as far as `scope` releases them, for `/userinfo`.
pub async fn userinfo_claims(
    idp: &AppState,
    client_id: &str,
    user_id: &str,
    scope: &[&str],
) -> Result<Map<String, Value>> {
    let stored = idp.cache.cached_userinfo_claims(&userinfo_key(client_id, user_id)).await?;
    Ok(match stored.as_deref() {
        Some(record) => crate::tokens::custom_claims(&record.claims, scope),
        None => Map::new(),
    })
}

fn userinfo_key(client_id: &str, user_id: &str) -> String {
    b64url(&sha256(format!("{client_id}\n{user_id}").as_bytes()))
}

/// Applies the queued metadata updates to the freshest copy of the user: top-level keys are
/// replaced, `null` deletes. Writes nothing when the result would break Auth0's metadata bound.
async fn persist_metadata(
    idp: &AppState,
    user_id: &str,
    app: &Map<String, Value>,
    user: &Map<String, Value>,
) -> Result<std::result::Result<(), TooLarge>> {
    let Some(mut stored) = idp.store.user(user_id).await? else { return Ok(Ok(())) };
    let merge = |target: &mut Map<String, Value>, updates: &Map<String, Value>| {
        for (k, v) in updates {
            if v.is_null() {
                target.remove(k);
            } else {
                target.insert(k.clone(), v.clone());
            }
        }
    };
    let before = (stored.user.app_metadata.clone(), stored.user.user_metadata.clone());
    merge(&mut stored.user.app_metadata, app);
    merge(&mut stored.user.user_metadata, user);
    if (stored.user.app_metadata.clone(), stored.user.user_metadata.clone()) != before {
        if let Err(e) = crate::metadata::check(&stored.user, idp.config.metadata_limit_bytes) {
            return Ok(Err(e));
        }
        stored.user.updated_at = idp.now();
        idp.store.update_user(&stored).await?;
    }
    Ok(Ok(()))
}

fn iso(ms: Option<i64>) -> Value {
    ms.map(|m| json!(iso8601(m))).unwrap_or(Value::Null)
}

/// The tenant's name as Auth0 would have it: the first label of the domain.
fn tenant_name(idp: &AppState) -> String {
    let host = idp.config.public_url.host_str().unwrap_or("gatehouse");
    match host.parse::<std::net::IpAddr>() {
        Ok(_) => "gatehouse".into(),
        Err(_) => host.split('.').next().unwrap_or(host).to_string(),
    }
}

/// Auth0's post-login `event` (spec C), without `secrets` (each action gets its own).
async fn event(idp: &AppState, l: &Login<'_>) -> Result<Value> {
    let u = l.user;
    let connection = idp.store.connection_by_name(&u.connection).await?;
    let roles = idp.store.role_names_of(&u.user_id).await?;
    let mut user = json!({
        "user_id": u.user_id,
        "email": u.email,
        "email_verified": u.email_verified,
        "username": u.username,
        "phone_number": u.phone_number,
        "name": u.name,
        "nickname": u.nickname,
        "given_name": u.given_name,
        "family_name": u.family_name,
        "picture": u.picture,
        "created_at": iso8601(u.created_at),
        "updated_at": iso8601(u.updated_at),
        "last_login": iso(u.last_login),
        "last_ip": u.last_ip,
        "app_metadata": u.app_metadata,
        "user_metadata": u.user_metadata,
        "identities": u.identities,
        "multifactor": [],
        "enrolledFactors": [],
    });
    if let Value::Object(m) = &mut user {
        m.retain(|_, v| !v.is_null());
    }
    let a = l.authorization.as_ref();
    let mut transaction = json!({
        "id": b64url(&sha256(format!("{}{}{}", u.user_id, l.client.client_id, l.auth_time).as_bytes())[..12]),
        "protocol": l.protocol,
        "requested_scopes": l.scope,
        "locale": l.request.language.clone().unwrap_or_else(|| "en".into()),
        "ui_locales": [],
        "acr_values": [],
        "prompt": [],
        "metadata": {},
    });
    if let (Some(a), Value::Object(t)) = (a, &mut transaction) {
        t.insert("redirect_uri".into(), json!(a.redirect_uri));
        t.insert("response_type".into(), json!(["code"]));
        t.insert("response_mode".into(), json!(a.response_mode));
        if let Some(s) = a.state {
            t.insert("state".into(), json!(s));
        }
        if let Some(h) = a.login_hint {
            t.insert("login_hint".into(), json!(h));
        }
    }
    let mut request = json!({
        "ip": l.request.ip,
        "hostname": l.request.hostname,
        "method": l.request.method,
        "query": l.request.query,
        "body": l.request.body,
        "geoip": {},
    });
    if let Value::Object(r) = &mut request {
        if let Some(ua) = &l.request.user_agent {
            r.insert("user_agent".into(), json!(ua));
        }
        if let Some(lang) = &l.request.language {
            r.insert("language".into(), json!(lang));
        }
    }
    let mut event = json!({
        "user": user,
        "client": {
            "client_id": l.client.client_id,
            "name": l.client.name,
            "metadata": l.client.extra.get("client_metadata").cloned().unwrap_or_else(|| json!({})),
        },
        "request": request,
        "transaction": transaction,
        "tenant": {"id": tenant_name(idp)},
        "stats": {"logins_count": u.logins_count},
        "authorization": {"roles": roles},
        "authentication": {"methods": [{"name": first_factor(connection.as_ref(), u), "timestamp": iso8601(l.auth_time)}]},
    });
    let Value::Object(e) = &mut event else { unreachable!("a JSON object literal") };
    if let Some(c) = connection {
        e.insert(
            "connection".into(),
            json!({
                "id": c.id,
                "name": c.name,
                "strategy": c.strategy,
                "metadata": c.extra.get("metadata").cloned().unwrap_or_else(|| json!({})),
            }),
        );
    }
    if let Some(aud) = l.audience {
        e.insert("resource_server".into(), json!({ "identifier": aud }));
    }
    if let Some((id, authenticated_at)) = l.session {
        e.insert(
            "session".into(),
            json!({ "id": id, "authenticated_at": iso8601(authenticated_at), "created_at": iso8601(authenticated_at) }),
        );
    }
    Ok(event)
}

/// The name Auth0 gives the first factor of a login in `event.authentication.methods`: `pwd`
/// for a database connection's password, `federated` for a social or enterprise connection.
/// A user signs in only through the connection they belong to (accounts are never linked across
/// connections), so that connection says which it was — on an SSO or refresh-token login too;
/// without it (deleted since), the user's own identity does.
fn first_factor(connection: Option<&Connection>, user: &User) -> &'static str {
    let database = match connection {
        Some(c) => c.is_database(),
        None => user.identities.first().is_none_or(|i| i.provider == "auth0"),
    };
    if database { "pwd" } else { "federated" }
}

#[cfg(test)]
mod tests {
    use super::*;
    use store::Identity;

    fn user(provider: &str, connection: &str) -> User {
        let identity = Identity {
            connection: connection.into(),
            provider: provider.into(),
            user_id: "1".into(),
            is_social: provider != "auth0",
            profile_data: None,
        };
        User::new(format!("{provider}|1"), connection.into(), identity, 0)
    }

    #[test]
    fn the_first_factor_follows_the_users_connection_or_identity() {
        let connection = |strategy: &str| -> Connection {
            serde_json::from_value(json!({"id": "con_1", "name": "c", "strategy": strategy})).unwrap()
        };
        let db = user("auth0", "dev-users");
        let google = user("google-oauth2", "google-oauth2");
        assert_eq!(first_factor(Some(&connection("auth0")), &db), "pwd");
        assert_eq!(first_factor(Some(&connection("google-oauth2")), &google), "federated");
        assert_eq!(first_factor(Some(&connection("oidc")), &user("oidc", "corp")), "federated");
        // The connection was deleted since: the identity tells.
        assert_eq!(first_factor(None, &db), "pwd");
        assert_eq!(first_factor(None, &google), "federated");
    }
}
