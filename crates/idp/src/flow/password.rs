//! Step 4 on the login page: a password for a database connection, or a sign-up.

use super::transaction::Pending;
use super::{Next, finish};
use crate::accounts;
use crate::actions::post_login::RequestInfo;
use crate::error::LoginError;
use crate::{AppState, Result};
use store::Connection;

/// Signs in with a password. The inner `Err` is a failed login the page shows again.
pub async fn sign_in(
    idp: &AppState,
    p: &Pending,
    connection: &Connection,
    username: &str,
    password: &str,
    request: &RequestInfo,
) -> Result<std::result::Result<Next, LoginError>> {
    match accounts::login::check_password(idp, connection, username, password, &request.ip).await? {
        Ok(stored) => Ok(Ok(finish::signed_in(idp, &p.tx.id, &p.req, &stored.user.user_id, request).await?)),
        Err(e) => Ok(Err(e)),
    }
}

/// Creates the account, then signs it in. What the connection's rules refuse is an `Err` the
/// page shows (`Error::Refused`, `Error::WeakPassword`).
pub async fn sign_up(
    idp: &AppState,
    p: &Pending,
    connection: &Connection,
    email: &str,
    password: &str,
    request: &RequestInfo,
) -> Result<Next> {
    let user = accounts::signup::register(idp, connection, email, password, |_| {}).await?;
    finish::signed_in(idp, &p.tx.id, &p.req, &user.user_id, request).await
}
