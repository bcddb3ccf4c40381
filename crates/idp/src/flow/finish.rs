//! Step 5: a signed-in user's way back to the application. Post-login Actions run; then the
//! authorization code is stored with the grant it stands for, and the reply carries it (or the
//! Action's denial).

use super::{AuthRequest, NewSession, Next, Reply};
use crate::actions::post_login::{self, Authorization, RequestInfo, Verdict};
use crate::grants::Grant;
use crate::logs::{Event, Type};
use crate::util::{random_token, sha256};
use crate::{AppState, Error, Result};
use serde_json::{Map, Value, json};
use store::{AuthCode, Millis, SsoSession};

/// Step 4's end for every way in: the session starts and the login finishes.
pub async fn signed_in(
    idp: &AppState,
    tx_id: &str,
    req: &AuthRequest,
    user_id: &str,
    request: &RequestInfo,
) -> Result<Next> {
    let now = idp.now();
    let (session, new_session): (SsoSession, NewSession) = super::sso::start(idp, tx_id, user_id, now).await?;
    let reply = complete(idp, req, &session, request, now, false).await?;
    Ok(Next::SignedIn { reply, session: new_session })
}

/// Runs the post-login Actions for `session`'s user, then issues the code. The login is
/// recorded as `s` (`ssa` when `silent`, a `prompt=none` request); a denial is recorded where it
/// is decided (the Actions' trigger).
pub async fn complete(
    idp: &AppState,
    req: &AuthRequest,
    session: &SsoSession,
    request: &RequestInfo,
    now: Millis,
    silent: bool,
) -> Result<Reply> {
    let client = idp.store.client(&req.client_id).await?.map(|c| c.client);
    let user = idp.store.user(&session.user_id).await?.map(|u| u.user);
    let (Some(client), Some(user)) = (client, user) else {
        let gone = "The user or the application no longer exists.";
        let kind = if silent { Type::FailedSilentAuth } else { Type::Failed };
        idp.log(
            Event::from_request(request)
                .client_named(&req.client_id, None)
                .user_id(&session.user_id)
                .outcome(kind, Some(gone.into())),
        );
        return Ok(Reply::error(req, "access_denied", gone));
    };
    let mut request = request.clone();
    request.query = authorize_query(req);
    let login = post_login::Login {
        client: &client,
        user: &user,
        protocol: "oidc-basic-profile",
        scope: &req.scope,
        audience: req.audience.as_deref(),
        request: &request,
        authorization: Some(Authorization {
            redirect_uri: &req.redirect_uri,
            response_mode: req.response_mode.as_str(),
            state: req.state.as_deref(),
            login_hint: req.login_hint.as_deref(),
        }),
        session: Some((&session.id, session.auth_time)),
        auth_time: session.auth_time,
    };
    // The tenant's Actions never run on a console administrator's login: they must neither
    // lock administrators out nor shape their tokens.
    let verdict = if crate::admins::is_console_client(&client.client_id) {
        Verdict::Allow(Default::default())
    } else {
        post_login::run(idp, login).await?
    };
    let actions = match verdict {
        Verdict::Allow(claims) => claims,
        Verdict::Deny(reason) => return Ok(Reply::error(req, "access_denied", reason)),
    };
    let grant = Grant {
        client_id: req.client_id.clone(),
        user_id: session.user_id.clone(),
        scope: req.scope.clone(),
        audience: req.audience.clone(),
        redirect_uri: req.redirect_uri_sent.then(|| req.redirect_uri.clone()),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        code_challenge_method: req.code_challenge_method.clone(),
        sid: Some(session.id.clone()),
        auth_time: session.auth_time / 1000,
        include_auth_time: req.max_age.is_some(),
        family: random_token(),
        actions,
    };
    // A console sign-in is no tenant grant: recording it would list (and let a tenant token
    // revoke) an administrator's grant through `/api/v2/grants`.
    if !crate::admins::is_console_client(&grant.client_id) {
        crate::grants::consent::record(idp, &grant).await?;
    }
    let code = random_token();
    idp.store
        .put_code(&AuthCode {
            code_sha256: sha256(code.as_bytes()),
            grant: serde_json::to_value(&grant).map_err(Error::internal)?,
            expires_at: now + idp.config.code_ttl_secs * 1000,
        })
        .await?;
    let connection = idp.store.connection_by_name(&user.connection).await?;
    let event =
        Event::from_request(&request).client(&client).user(&user).audience(req.audience.as_deref()).scope(&req.scope);
    let event = match &connection {
        Some(c) => event.connection(c),
        None => event.connection_name(&user.connection),
    };
    idp.log(event.kind(if silent { Type::SuccessSilentAuth } else { Type::Success }));
    if !session.clients.contains(&req.client_id) {
        let mut s = session.clone();
        s.clients.push(req.client_id.clone());
        s.last_seen = now;
        idp.store.put_session(&s).await?;
    }
    Ok(Reply::new(req, vec![("code", code)]))
}

/// The `/authorize` parameters as `event.request.query` shows them.
fn authorize_query(req: &AuthRequest) -> Map<String, Value> {
    let mut q = Map::new();
    q.insert("client_id".into(), json!(req.client_id));
    q.insert("redirect_uri".into(), json!(req.redirect_uri));
    q.insert("response_type".into(), json!("code"));
    q.insert("scope".into(), json!(req.scope.join(" ")));
    for (k, v) in [
        ("state", &req.state),
        ("nonce", &req.nonce),
        ("audience", &req.audience),
        ("connection", &req.connection),
        ("login_hint", &req.login_hint),
    ] {
        if let Some(v) = v {
            q.insert(k.into(), json!(v));
        }
    }
    q
}
