//! Database-connection accounts: password hashing and policy (`password`), the credential
//! check every password login shares (`login`), sign-up (`signup`), password reset
//! (`reset`) and email verification and tickets (`verify`). Below the login flow and the grants, which both use them; no HTTP here.

pub mod blocks;
pub mod linking;
pub mod login;
pub mod password;
pub mod reset;
pub mod signup;
pub mod verify;

use crate::{AppState, Error, Result};
use store::Connection;

/// The connection named in a request, provided it is a database enabled for the client.
pub async fn database_for(idp: &AppState, client_id: &str, connection: &str) -> Result<Connection> {
    if idp.store.client(client_id).await?.is_none() {
        return Err(Error::refused("invalid_client", format!("Unknown client: {client_id}")));
    }
    match idp.store.connection_by_name(connection).await? {
        Some(c) if c.is_database() && c.enabled_for(client_id) => Ok(c),
        Some(_) => Err(Error::refused("connection_not_enabled", "Connection is not enabled for this client")),
        None => Err(Error::refused("invalid_connection", format!("Connection does not exist: {connection}"))),
    }
}
