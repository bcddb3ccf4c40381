//! Federated login: `google-oauth2` (endpoints from Google's discovery document, configurable
//! with `Config::google_discovery_url`) and `oidc` connections. The idp is the upstream's
//! client: authorization code flow with `state`, `nonce` and PKCE S256, the ID token checked
//! against the upstream's JWKS, then the user linked or created and the login finished as a
//! password login is (post-login Actions, code, SSO session).
//!
//! Nothing is trusted to the browser: the upstream `state` is a random key to a one-time record
//! in the store (nonce, PKCE verifier, login transaction), redeemed atomically, so any node can
//! take the callback and a replayed callback fails. A cookie set when the browser left for the
//! upstream binds the callback to that browser.

mod id_token;
mod jwks;
mod profile;
pub mod provider;

pub use provider::Strategy;

use super::{AuthRequest, Next, Reply};
use crate::actions::post_login::RequestInfo;
use crate::error::PageKind;
use crate::util::{b64url, ct_eq, random_token, sha256};
use crate::{AppState, Error, Result};
use id_token::{Expect, Refusal};
use jwks::{Fetched, JwksCache};
use provider::Provider;
use reqwest::header;
use serde_json::{Map, Value};
use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};
use store::{Connection, FederatedIssuer, FederatedState, StateRedemption, StoredUser};

/// Discovery documents are re-read after this long (providers move endpoints rarely).
const DISCOVERY_TTL: Duration = Duration::from_secs(3600);
/// Largest upstream response read (discovery, JWKS, token response).
const MAX_UPSTREAM_BODY: usize = 1 << 20;
pub const CALLBACK_PATH: &str = "login/callback";

/// Checks a federated connection's options (Management API and tenant files).
pub fn validate_options(c: &Connection, google_discovery_url: &url::Url) -> std::result::Result<(), String> {
    provider::settings(c, google_discovery_url).map(|_| ())
}

/// Per-node HTTP client and caches of upstream discovery documents and JWKS.
pub struct Upstreams {
    http: reqwest::Client,
    discovery: RwLock<HashMap<String, (Instant, Arc<Value>)>>,
    jwks: JwksCache,
}

/// The store key of an upstream state. (The prefix dates from when these records shared the
/// authorization codes' table; kept so that states issued before the upgrade still redeem.)
fn trip_key(state: &str) -> Vec<u8> {
    sha256(format!("gatehouse upstream state\0{state}").as_bytes())
}

fn upstream_failure(description: impl Into<String>) -> Error {
    Error::Upstream(description.into())
}

impl Upstreams {
    pub fn new(timeout: Duration) -> Result<Self> {
        let http = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            // Endpoints are used exactly as published; a redirect would be someone else's.
            .redirect(reqwest::redirect::Policy::none())
            .user_agent(concat!("gatehouse-idp/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(Error::internal)?;
        Ok(Upstreams { http, discovery: RwLock::default(), jwks: JwksCache::new(Arc::new(Instant::now)) })
    }

    /// Reads a JSON document (bounded in time and size). Errors name the connection and what
    /// was being fetched, never a credential.
    async fn read_json(&self, connection: &str, what: &str, res: reqwest::Result<reqwest::Response>) -> Result<Value> {
        let unreachable = |e: &dyn std::fmt::Display| {
            tracing::warn!(connection, what, error = %e, "upstream identity provider call failed");
            upstream_failure(format!("The identity provider of connection {connection} could not be reached ({what})."))
        };
        let mut res = res.map_err(|e| unreachable(&e))?;
        let mut body = Vec::new();
        while let Some(chunk) = res.chunk().await.map_err(|e| unreachable(&e))? {
            body.extend_from_slice(&chunk);
            if body.len() > MAX_UPSTREAM_BODY {
                return Err(upstream_failure(format!("The {what} of connection {connection} is too large.")));
            }
        }
        let status = res.status();
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) if v.is_object() => Ok(v),
            _ => {
                tracing::warn!(
                    connection,
                    what,
                    status = status.as_u16(),
                    "upstream answered with something else than JSON"
                );
                Err(upstream_failure(format!(
                    "The identity provider of connection {connection} sent an invalid {what} (HTTP {}).",
                    status.as_u16()
                )))
            }
        }
    }

    async fn get_json(&self, connection: &str, what: &str, url: &url::Url) -> Result<Value> {
        let res = self.http.get(url.as_str()).header(header::ACCEPT, "application/json").send().await;
        let status = res.as_ref().map(|r| r.status()).ok();
        let doc = self.read_json(connection, what, res).await?;
        if status.is_some_and(|s| !s.is_success()) {
            return Err(upstream_failure(format!("The {what} of connection {connection} is unavailable.")));
        }
        Ok(doc)
    }

    async fn discovery(&self, connection: &str, url: &url::Url) -> Result<Arc<Value>> {
        let fresh = self.discovery.read().unwrap_or_else(|e| e.into_inner()).get(url.as_str()).cloned();
        if let Some((at, doc)) = fresh
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok(doc);
        }
        let doc = Arc::new(self.get_json(connection, "discovery document", url).await?);
        self.discovery
            .write()
            .unwrap_or_else(|e| e.into_inner())
            .insert(url.to_string(), (Instant::now(), doc.clone()));
        Ok(doc)
    }

    /// The provider behind a connection, discovery applied.
    async fn provider(&self, idp: &AppState, c: &Connection) -> Result<Provider> {
        let misconfigured = |e: String| upstream_failure(format!("The connection {} is misconfigured: {e}", c.name));
        let settings = provider::settings(c, &idp.config.google_discovery_url).map_err(misconfigured)?;
        let doc = match &settings.discovery_url {
            Some(url) => Some(self.discovery(&c.name, url).await?),
            None => None,
        };
        settings.resolve(doc.as_deref()).map_err(misconfigured)
    }

    /// Reads a provider's JWKS with the lifetime its `Cache-Control` allows.
    async fn fetch_jwks(&self, p: &Provider) -> Result<Fetched> {
        let res = self.http.get(p.jwks_uri.as_str()).header(header::ACCEPT, "application/json").send().await;
        let status = res.as_ref().map(|r| r.status()).ok();
        let max_age = res
            .as_ref()
            .ok()
            .and_then(|r| r.headers().get(header::CACHE_CONTROL))
            .and_then(|v| v.to_str().ok())
            .and_then(jwks::max_age);
        let doc = self.read_json(&p.connection, "JWKS", res).await?;
        if status.is_some_and(|s| !s.is_success()) {
            return Err(upstream_failure(format!("The JWKS of connection {} is unavailable.", p.connection)));
        }
        Ok(Fetched { doc, max_age })
    }

    /// Checks an ID token's signature with the provider's keys (see [`jwks`] for when they
    /// are fetched), then its claims.
    async fn verify(&self, p: &Provider, token: &str, expect: &Expect<'_>) -> Result<Map<String, Value>> {
        let refused = |r: Refusal| Error::access_denied(format!("Connection {}: {r}.", p.connection));
        let parts = id_token::split(token).map_err(refused)?;
        let checked = self.jwks.verify(p.jwks_uri.as_str(), &parts, expect, || self.fetch_jwks(p)).await?;
        checked.map_err(refused)
    }

    /// Exchanges the upstream's code for its ID token (client secret in the body, as Google
    /// and most providers accept; PKCE verifier always).
    async fn exchange(&self, idp: &AppState, p: &Provider, code: &str, verifier: &str) -> Result<String> {
        let redirect_uri = idp.config.url(CALLBACK_PATH);
        let mut form = vec![
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", redirect_uri.as_str()),
            ("client_id", p.client_id.as_str()),
            ("code_verifier", verifier),
        ];
        if let Some(secret) = &p.client_secret {
            form.push(("client_secret", secret.as_str()));
        }
        let res = self
            .http
            .post(p.token_endpoint.as_str())
            .header(header::ACCEPT, "application/json")
            .form(&form)
            .send()
            .await;
        let status = res.as_ref().map(|r| r.status()).ok();
        let body = self.read_json(&p.connection, "token response", res).await?;
        let field = |k: &str| body.get(k).and_then(Value::as_str);
        if status.is_some_and(|s| !s.is_success()) || field("error").is_some() {
            let error = field("error").unwrap_or("unknown_error");
            tracing::warn!(connection = %p.connection, error, "upstream refused the code exchange");
            return Err(upstream_failure(format!(
                "The identity provider of connection {} refused the code exchange: {error}{}{}",
                p.connection,
                if field("error_description").is_some() { ": " } else { "" },
                clip(field("error_description").unwrap_or(""))
            )));
        }
        field("id_token").map(str::to_owned).ok_or_else(|| {
            upstream_failure(format!("The identity provider of connection {} returned no ID token.", p.connection))
        })
    }
}

/// Upstream text shown to the application: bounded, one line.
fn clip(s: &str) -> String {
    s.chars().filter(|c| !c.is_control()).take(300).collect()
}

/// Sends the browser to the upstream provider for login transaction `tx_id`. Failures are
/// meant for the application's redirect URI (see [`begin_or_fail`]).
async fn begin(idp: &AppState, tx_id: &str, c: &Connection) -> Result<Next> {
    let p = idp.upstreams.provider(idp, c).await?;
    let state = random_token();
    let binding = random_token();
    let trip = FederatedState {
        state_sha256: trip_key(&state),
        login_transaction: tx_id.to_owned(),
        connection: c.name.clone(),
        nonce: random_token(),
        code_verifier: random_token(),
        binding_digest: b64url(&sha256(binding.as_bytes())),
        expires_at: idp.now() + idp.config.login_ttl_secs * 1000,
    };
    idp.store.put_federated_state(&trip).await?;
    let mut url = p.authorization_endpoint.clone();
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &p.client_id)
        .append_pair("redirect_uri", &idp.config.url(CALLBACK_PATH))
        .append_pair("scope", &p.scope)
        .append_pair("state", &state)
        .append_pair("nonce", &trip.nonce)
        .append_pair("code_challenge", &b64url(&sha256(trip.code_verifier.as_bytes())))
        .append_pair("code_challenge_method", "S256");
    Ok(Next::Upstream { url, state, binding })
}

/// [`begin`], with failures sent back to the application (the login transaction ends).
pub async fn begin_or_fail(idp: &AppState, tx_id: &str, req: &AuthRequest, c: &Connection) -> Result<Next> {
    match begin(idp, tx_id, c).await {
        Ok(next) => Ok(next),
        Err(e @ (Error::Store(_) | Error::Internal(_))) => Err(e),
        Err(e) => {
            idp.store.delete_login_transaction(tx_id).await?;
            let event = crate::logs::Event::default().client_named(&req.client_id, None).connection(c);
            idp.log(event.outcome(crate::logs::Type::Failed, Some(e.description())));
            Ok(Next::Client(Reply::error(req, e.oauth_code(), e.description())))
        }
    }
}

/// Step 4 for a federated login: the upstream's answer at `/login/callback`, with the binding
/// cookie this browser brought. `Err` is a page: until the state is redeemed there is no
/// verified place to send the browser back to; after that every failure goes back to the
/// application.
pub async fn callback(
    idp: &AppState,
    q: &HashMap<String, String>,
    binding: Option<&str>,
    request: &RequestInfo,
) -> Result<Next> {
    let (trip, req) = redeem(idp, q, binding).await?;
    match finish(idp, &trip, &req, q, request).await {
        Ok(next) => Ok(next),
        Err(e) => {
            metrics::counter!("gatehouse_logins_total", "outcome" => "federated_failure").increment(1);
            let _ = idp.store.delete_login_transaction(&trip.login_transaction).await;
            let event = crate::logs::Event::from_request(request)
                .client_named(&req.client_id, None)
                .connection_name(&trip.connection)
                .outcome(crate::logs::Type::Failed, Some(e.description()));
            idp.log(match idp.store.connection_by_name(&trip.connection).await {
                Ok(Some(c)) => event.connection(&c),
                _ => event,
            });
            let reply = match e {
                Error::Store(_) | Error::Internal(_) => {
                    tracing::error!(connection = %trip.connection, error = %e, "federated login failed");
                    Reply::error(&req, "server_error", "The login could not be completed. Try again later.")
                }
                e => Reply::error(&req, e.oauth_code(), e.description()),
            };
            Ok(Next::Client(reply))
        }
    }
}

/// Consumes the upstream state (once, atomically) and checks the browser binding; the errors
/// are pages, since until the state is known there is no trusted place to redirect to.
async fn redeem(
    idp: &AppState,
    q: &HashMap<String, String>,
    binding: Option<&str>,
) -> Result<(FederatedState, AuthRequest)> {
    let bad = |m: &str| Error::page(PageKind::InvalidLoginResponse, m.to_string());
    let state = q.get("state").filter(|s| !s.is_empty()).ok_or_else(|| bad("The response has no state."))?;
    let trip = match idp.store.redeem_federated_state(&trip_key(state), idp.now()).await? {
        StateRedemption::Fresh(s) => s,
        StateRedemption::Reused => {
            return Err(bad("This login response was already used. Go back to the application and try again."));
        }
        StateRedemption::Unknown => {
            return Err(bad("The response's state is unknown or expired. Go back to the application and try again."));
        }
    };
    let sent = binding.unwrap_or("");
    if !ct_eq(b64url(&sha256(sent.as_bytes())).as_bytes(), trip.binding_digest.as_bytes()) {
        return Err(Error::page(
            PageKind::Forged,
            "This login was started in another browser. Go back to the application and try again.",
        ));
    }
    let req = super::transaction::request_of(idp, &trip.login_transaction).await?;
    Ok((trip, req))
}

/// The upstream's own error codes an application can act on; anything else is its failure.
fn upstream_error(code: &str) -> &'static str {
    match code {
        "access_denied" => "access_denied",
        "login_required" => "login_required",
        "consent_required" => "consent_required",
        "interaction_required" => "interaction_required",
        "temporarily_unavailable" => "temporarily_unavailable",
        _ => "server_error",
    }
}

async fn finish(
    idp: &AppState,
    trip: &FederatedState,
    req: &AuthRequest,
    q: &HashMap<String, String>,
    request: &RequestInfo,
) -> Result<Next> {
    let name = &trip.connection;
    // RFC 9207: a provider that names itself in its response must be this connection's, or the
    // response is another provider's sent here (a mix-up attack). Errors are checked too.
    let mut resolved = None;
    if let Some(iss) = q.get("iss") {
        let (c, p) = provider_for(idp, name, req).await?;
        if !p.issuers.iter().any(|i| i == iss) {
            tracing::warn!(connection = %name, iss = %clip(iss), "authorization response from another issuer");
            return Err(Error::access_denied(format!(
                "The response's issuer (iss) is not the identity provider of connection {name}."
            )));
        }
        resolved = Some((c, p));
    }
    if let Some(code) = q.get("error") {
        let description = match q.get("error_description").map(|d| clip(d)).filter(|d| !d.is_empty()) {
            Some(d) => d,
            None => format!("The identity provider of connection {name} answered {}.", clip(code)),
        };
        return Err(Error::UpstreamRefused { code: upstream_error(code), description });
    }
    let code = q
        .get("code")
        .filter(|c| !c.is_empty())
        .ok_or_else(|| Error::invalid_request(format!("The response of connection {name} has no code.")))?;
    let (c, p) = match resolved {
        Some(both) => both,
        None => provider_for(idp, name, req).await?,
    };
    let strategy = Strategy::of(&c).ok_or_else(|| Error::invalid_request(format!("the connection {name} changed")))?;
    let id_token = idp.upstreams.exchange(idp, &p, code, &trip.code_verifier).await?;
    let now = idp.now();
    let expect = Expect { issuers: &p.issuers, client_id: &p.client_id, nonce: &trip.nonce, now_secs: now / 1000 };
    let claims = idp.upstreams.verify(&p, &id_token, &expect).await?;
    let user_id = link(idp, strategy, &c, &p, &claims, now).await?;
    idp.store.record_login(&user_id, now, &request.ip).await?;
    metrics::counter!("gatehouse_logins_total", "outcome" => "success").increment(1);
    super::finish::signed_in(idp, &trip.login_transaction, req, &user_id, request).await
}

/// The trip's connection, still enabled for the application, and its provider.
async fn provider_for(idp: &AppState, name: &str, req: &AuthRequest) -> Result<(Connection, Provider)> {
    let c =
        idp.store.connection_by_name(name).await?.filter(|c| c.enabled_for(&req.client_id)).ok_or_else(|| {
            Error::invalid_request(format!("the connection {name} is not enabled for this application"))
        })?;
    let p = idp.upstreams.provider(idp, &c).await?;
    Ok((c, p))
}

/// Records that `user_id` comes from `issuer` (before the user is created, so no user of a
/// federated connection exists without the record).
async fn record_issuer(idp: &AppState, user_id: &str, c: &Connection, issuer: &str) -> Result<()> {
    let record = FederatedIssuer { user_id: user_id.to_owned(), connection: c.name.clone(), issuer: issuer.to_owned() };
    idp.store.put_federated_issuer(&record).await?;
    Ok(())
}

/// Finds the user of these claims (updating the profile) or creates it; refuses blocked users,
/// users of another connection (every Google connection makes the same `google-oauth2|<sub>`
/// ids) and users created from another issuer (the connection was pointed elsewhere, where
/// someone else may have the same `sub`).
async fn link(
    idp: &AppState,
    strategy: Strategy,
    c: &Connection,
    p: &Provider,
    claims: &Map<String, Value>,
    now: i64,
) -> Result<String> {
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    // Verified to be one of `p.issuers`.
    let issuer = claims.get("iss").and_then(Value::as_str).unwrap_or_default();
    let (user_id, identity) = profile::identity(strategy, c, sub);
    let existing = match idp.store.user(&user_id).await? {
        Some(u) => u,
        None => {
            if let Some(primary) = idp.store.linked_identity_owner(&identity.provider, &identity.user_id).await? {
                return linked(idp, c, p, &user_id, &identity, &primary, issuer).await;
            }
            record_issuer(idp, &user_id, c, issuer).await?;
            let user = profile::new_user(strategy, c, claims, now);
            match idp.store.create_user(&StoredUser { user, password_hash: None }).await {
                Ok(()) => return Ok(user_id),
                // A concurrent first login of the same person created it: use that one.
                Err(store::Error::Conflict(_)) => idp.store.user(&user_id).await?.ok_or_else(|| {
                    Error::access_denied(format!("Another user of connection {} has the same email address.", c.name))
                })?,
                Err(e) => return Err(e.into()),
            }
        }
    };
    if existing.user.connection != c.name {
        tracing::warn!(
            user_id,
            connection = %c.name,
            owner = %existing.user.connection,
            "federated login through another connection refused"
        );
        return Err(Error::access_denied(format!(
            "This account belongs to connection {}; it cannot sign in through connection {}.",
            existing.user.connection, c.name
        )));
    }
    same_issuer(idp, c, p, &user_id, issuer).await?;
    if existing.user.blocked {
        return Err(Error::UserBlocked);
    }
    let mut updated = existing.clone();
    profile::apply(&mut updated.user, claims, now);
    updated.user.updated_at = existing.user.updated_at;
    if updated != existing {
        updated.user.updated_at = now;
        idp.store.update_user(&updated).await?;
    }
    Ok(user_id)
}

/// The login of an identity linked into another user (`primary`): it signs in as that user,
/// with the primary's metadata and roles, provided the identity came through this connection
/// and from the issuer it was first recorded with.
async fn linked(
    idp: &AppState,
    c: &Connection,
    p: &Provider,
    user_id: &str,
    identity: &store::Identity,
    primary: &str,
    issuer: &str,
) -> Result<String> {
    let gone = || Error::access_denied("The account this identity is linked to no longer exists.");
    let owner = idp.store.user(primary).await?.ok_or_else(gone)?;
    let linked =
        owner.user.identities.iter().find(|i| i.provider == identity.provider && i.user_id == identity.user_id);
    match linked {
        Some(i) if i.connection == c.name => {}
        Some(i) => {
            return Err(Error::access_denied(format!(
                "This account belongs to connection {}; it cannot sign in through connection {}.",
                i.connection, c.name
            )));
        }
        None => return Err(gone()),
    }
    same_issuer(idp, c, p, user_id, issuer).await?;
    if owner.user.blocked {
        return Err(Error::UserBlocked);
    }
    Ok(owner.user.user_id)
}

/// The identity `user_id` comes from the issuer it was first recorded with (recorded now for
/// one from before issuers were recorded).
async fn same_issuer(idp: &AppState, c: &Connection, p: &Provider, user_id: &str, issuer: &str) -> Result<()> {
    match idp.store.federated_issuer(user_id).await? {
        Some(r) if p.issuers.contains(&r.issuer) => {}
        Some(r) => {
            tracing::warn!(
                user_id,
                connection = %c.name,
                recorded = %r.issuer,
                issuer,
                "federated login from another issuer refused"
            );
            return Err(Error::access_denied(format!(
                "Connection {} now uses another identity provider than the one this account was created with.",
                c.name
            )));
        }
        // A user from before issuers were recorded: it belongs to the issuer it next logs in with.
        None => {
            tracing::warn!(user_id, connection = %c.name, issuer, "recording the issuer of an existing user");
            record_issuer(idp, user_id, c, issuer).await?;
        }
    }
    Ok(())
}
