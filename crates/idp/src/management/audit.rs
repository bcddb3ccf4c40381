//! Every Management API write in the tenant log: `sapi` when it succeeded, `fapi` when it did
//! not, with who (the token's client or user, its scopes), what (the method and a description)
//! and which resource (the path), and the answer's status. A user's deletion also gets `sdu` /
//! `fdu`. Recorded by one middleware around every endpoint, so no write goes unrecorded; bodies
//! are never recorded (they carry passwords and client secrets).

use crate::AppState;
use crate::logs::{Event, Type};
use crate::tokens::verify::verify_access_token;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, header};
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Value, json};
use std::net::SocketAddr;

pub async fn record_writes(State(idp): State<AppState>, req: Request, next: Next) -> Response {
    if matches!(*req.method(), Method::GET | Method::HEAD | Method::OPTIONS) {
        return next.run(req).await;
    }
    let method = req.method().clone();
    let path = format!("/api/v2{}", req.uri().path());
    let peer = req.extensions().get::<ConnectInfo<SocketAddr>>().map(|c| c.0);
    let request = crate::http::client::request_info(&idp.config, req.headers(), peer, "POST");
    let token = req
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|h| h.get(7..).filter(|_| h[..7].eq_ignore_ascii_case("bearer ")))
        .map(|t| t.trim().to_owned());
    let res = next.run(req).await;
    let status = res.status();
    let mut event = Event::from_request(&request);
    let mut auth = json!({});
    if let Some(token) = token
        && let Ok(claims) = verify_access_token(&idp, &token).await
    {
        let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
        let client_id = claims.get("azp").and_then(Value::as_str).unwrap_or(sub.trim_end_matches("@clients"));
        event = event.client_named(client_id, None);
        if !sub.ends_with("@clients") && !sub.is_empty() {
            event = event.user_id(sub);
        }
        // A console administrator is named by email too: the log says who changed what.
        if crate::admins::is_console_client(client_id)
            && sub.starts_with(crate::admins::ADMIN_ID_PREFIX)
            && let Ok(Some(admin)) = idp.store.user(sub).await
            && let Some(email) = &admin.user.email
        {
            event = event.user_name(email);
        }
        auth = json!({
            "subject": sub,
            "scopes": claims.get("scope").and_then(Value::as_str).unwrap_or_default().split(' ').collect::<Vec<_>>(),
        });
    }
    let description = describe(&method, &path);
    let details = json!({
        "request": { "method": method.as_str().to_lowercase(), "path": path, "auth": auth },
        "response": { "statusCode": status.as_u16() },
    });
    let ok = status.is_success();
    let event = event.details(details).description(&description);
    if method == Method::DELETE
        && let Some(user_id) = path.strip_prefix("/api/v2/users/").filter(|id| !id.contains('/'))
    {
        let user_id = percent_decode(user_id);
        let kind = if ok { Type::SuccessUserDeletion } else { Type::FailedUserDeletion };
        idp.log(event.clone().user_id(&user_id).kind(kind));
    }
    idp.log(event.kind(if ok { Type::SuccessApi } else { Type::FailedApi }));
    res
}

/// "Create a client", "Update a user", "Delete a connection": Auth0's wording for API
/// operations, from the method and the path's resource.
fn describe(method: &Method, path: &str) -> String {
    let verb = match *method {
        Method::POST => "Create",
        Method::PATCH => "Update",
        Method::PUT => "Set",
        Method::DELETE => "Delete",
        _ => method.as_str(),
    };
    let segments: Vec<&str> = path.trim_start_matches("/api/v2/").split('/').collect();
    let resource = segments.first().copied().unwrap_or("resource").trim_end_matches('s').replace(['-', '_'], " ");
    match segments.len() {
        0 | 1 => format!("{verb} a {resource}"),
        2 => format!("{verb} {resource} {}", percent_decode(segments[1])),
        _ => format!("{verb} {} of {resource} {}", segments[2..].join("/"), percent_decode(segments[1])),
    }
}

pub(super) fn percent_decode(s: &str) -> String {
    url::form_urlencoded::parse(format!("x={}", s.replace('+', "%2B")).as_bytes())
        .next()
        .map(|(_, v)| v.into_owned())
        .unwrap_or_else(|| s.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn descriptions_name_the_operation_and_the_resource() {
        assert_eq!(describe(&Method::POST, "/api/v2/clients"), "Create a client");
        assert_eq!(describe(&Method::PATCH, "/api/v2/users/auth0%7C42"), "Update user auth0|42");
        assert_eq!(describe(&Method::POST, "/api/v2/clients/abc/rotate-secret"), "Create rotate-secret of client abc");
        assert_eq!(describe(&Method::PATCH, "/api/v2/tenants/settings"), "Update tenant settings");
    }
}
