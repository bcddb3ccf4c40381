//! The login transaction: the checked `/authorize` request kept while the person signs in, with
//! its anti-CSRF value, and what the login page offers for it.

use super::AuthRequest;
use crate::error::PageKind;
use crate::util::random_token;
use crate::{AppState, Error, Result};
use store::{Connection, LoginTransaction, Millis};

/// Stores a new login transaction for `req`.
pub async fn open(idp: &AppState, req: &AuthRequest, now: Millis) -> Result<LoginTransaction> {
    let tx = LoginTransaction {
        id: random_token(),
        request: serde_json::to_value(req).map_err(Error::internal)?,
        csrf: random_token(),
        expires_at: now + idp.config.login_ttl_secs * 1000,
    };
    idp.store.put_login_transaction(&tx).await?;
    Ok(tx)
}

/// A login transaction in progress, as the login and sign-up pages show it.
pub struct Pending {
    pub tx: LoginTransaction,
    pub req: AuthRequest,
    pub client_name: String,
    /// Database connections enabled for the application (the one asked for, if any).
    pub databases: Vec<Connection>,
    /// Google and OpenID Connect connections enabled for the application: one button each.
    pub federated: Vec<Connection>,
}

fn expired() -> Error {
    Error::page(PageKind::Expired, "This login page has expired. Go back to the application and try again.")
}

/// The transaction named by the login page's `state`, or the page saying it expired.
pub async fn load(idp: &AppState, state: Option<&str>) -> Result<Pending> {
    let state = state.filter(|s| !s.is_empty()).ok_or_else(expired)?;
    let tx = idp.store.login_transaction(state, idp.now()).await?.ok_or_else(expired)?;
    let req: AuthRequest = serde_json::from_value(tx.request.clone()).map_err(|_| expired())?;
    let client = idp.store.client(&req.client_id).await?.ok_or_else(expired)?.client;
    let (databases, federated) = idp
        .store
        .connections()
        .await?
        .into_iter()
        .filter(|c| c.enabled_for(&client.client_id))
        .filter(|c| req.connection.as_ref().is_none_or(|only| *only == c.name))
        .filter(|c| c.is_database() || super::federated::provider::offers_button(c))
        .partition(Connection::is_database);
    Ok(Pending { tx, req, client_name: client.name, databases, federated })
}

/// The request of a transaction still open (the federated callback's), or the page saying it
/// expired.
pub async fn request_of(idp: &AppState, tx_id: &str) -> Result<AuthRequest> {
    let expired =
        || Error::page(PageKind::Expired, "This login has expired. Go back to the application and try again.");
    let tx = idp.store.login_transaction(tx_id, idp.now()).await?.ok_or_else(expired)?;
    serde_json::from_value(tx.request).map_err(|_| expired())
}

/// A posted login or sign-up form came from this browser's own login page: its anti-CSRF value
/// matches both the transaction and the cookie `/authorize` set in this browser.
pub fn check_form(p: &Pending, sent: &str, cookie: &str) -> Result<()> {
    let csrf = p.tx.csrf.as_bytes();
    if crate::util::ct_eq(sent.as_bytes(), csrf) && crate::util::ct_eq(cookie.as_bytes(), csrf) {
        return Ok(());
    }
    Err(Error::page(
        PageKind::Forged,
        "The login form could not be verified. Go back to the application and try again.",
    ))
}
