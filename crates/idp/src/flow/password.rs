//! Step 4 on the login page: a password for a database connection, or a sign-up.

use super::transaction::Pending;
use super::{Next, Reply, finish};
use crate::accounts;
use crate::actions::post_login::RequestInfo;
use crate::error::LoginError;
use crate::logs::{Event, Type};
use crate::{AppState, Error, Result};
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
    let origin = Event::from_request(request).client_named(&p.req.client_id, Some(&p.client_name));
    match accounts::login::check_password(idp, connection, username, password, &origin).await? {
        Ok(stored) => Ok(Ok(finish::signed_in(idp, &p.tx.id, &p.req, &stored.user.user_id, request).await?)),
        // The right password of a blocked user: the login ends, and the application hears
        // Auth0's `unauthorized` (the failure was recorded as `f`).
        Err(LoginError::UserBlocked) => {
            idp.store.delete_login_transaction(&p.tx.id).await?;
            Ok(Ok(Next::Client(Reply::blocked(&p.req))))
        }
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
    let origin =
        Event::from_request(request).client_named(&p.req.client_id, Some(&p.client_name)).connection(connection);
    let user = match accounts::signup::register(idp, connection, email, password, |_| {}).await {
        Ok(user) => user,
        Err(e) => {
            if !matches!(e, Error::Store(_) | Error::Internal(_)) {
                idp.log(origin.outcome(Type::FailedSignup, Some(e.description())).user_name(email));
            }
            return Err(e);
        }
    };
    idp.log(origin.outcome(Type::SuccessSignup, None).user(&user));
    accounts::verify::after_signup(idp, &user, &p.req.client_id).await;
    finish::signed_in(idp, &p.tx.id, &p.req, &user.user_id, request).await
}
