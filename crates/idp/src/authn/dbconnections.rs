//! Database-connection endpoints: `POST /dbconnections/signup`, `POST
//! /dbconnections/change_password`, and the password-reset page its mail links to
//! (`/lo/reset`), the email-verification and unblock links (`/u/email-verification`,
//! `/u/unblock`). What a rule refuses uses the `{name, code, description, statusCode}` shape of
//! these endpoints (`http::errors::dbconnections`).

use crate::accounts::reset::{self, ChangePassword};
use crate::accounts::signup::{self, Signup};
use crate::accounts::{blocks, verify};
use crate::http::errors;
use crate::http::params::single_params;
use crate::logs::Event;
use crate::util::html_escape;
use crate::{AppState, Error, Result, pages};
use axum::Json;
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use serde::Deserialize;
use serde_json::{Value, json};
use std::net::SocketAddr;

fn json_body<T: for<'de> Deserialize<'de>>(body: &[u8]) -> Result<T> {
    crate::http::json_body::parse(body)
        .map_err(|e| Error::refused("invalid_body", format!("Invalid request body: {e}")))
}

pub async fn signup(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ip = crate::http::client::ip(idp.config.trust_proxy, &headers, Some(peer));
    let run = async {
        let s: Signup = json_body(&body)?;
        let user = signup::public(&idp, &s, &ip).await?;
        Ok::<_, Error>(signup_answer(&s, &user))
    };
    match run.await {
        Ok(v) => Json(v).into_response(),
        Err(e) => errors::dbconnections(e),
    }
}

/// Auth0's answer to a sign-up: the new account's id and the profile it was given.
fn signup_answer(s: &Signup, user: &store::User) -> Value {
    let mut out = json!({
        "_id": user.user_id.trim_start_matches("auth0|"),
        "email": user.email,
        "email_verified": false,
    });
    for (k, v) in [
        ("username", &user.username),
        ("given_name", &user.given_name),
        ("family_name", &user.family_name),
        ("name", &s.name),
        ("nickname", &s.nickname),
        ("picture", &s.picture),
    ] {
        if let Some(v) = v {
            out[k] = json!(v);
        }
    }
    if !user.user_metadata.is_empty() {
        out["user_metadata"] = json!(user.user_metadata);
    }
    out
}

pub async fn change_password(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Response {
    let ip = crate::http::client::ip(idp.config.trust_proxy, &headers, Some(peer));
    let run = async {
        let req: ChangePassword = json_body(&body)?;
        reset::request(&idp, &req, &ip).await
    };
    match run.await {
        Ok(()) => {
            let mut res = "We've just sent you an email to reset your password.".into_response();
            res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
            res
        }
        Err(e) => errors::dbconnections(e),
    }
}

fn reset_form(ticket: &str, error: Option<&str>) -> String {
    let err =
        error.map(|e| format!("<div class=\"error\" role=\"alert\">{}</div>", html_escape(e))).unwrap_or_default();
    let body = format!(
        "<h1>Change your password</h1>{err}<form method=\"post\" action=\"/lo/reset\"><input type=\"hidden\" name=\"ticket\" value=\"{}\">\
         <label for=\"password\">New password</label><input id=\"password\" name=\"password\" type=\"password\" autocomplete=\"new-password\" required>\
         <button type=\"submit\">Reset password</button></form>",
        html_escape(ticket)
    );
    pages::page("Change your password", &body)
}

pub async fn reset_page(State(idp): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = single_params(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let ticket = q.get("ticket").cloned().unwrap_or_default();
    match reset::ticket_user(&idp, &ticket).await {
        Ok(_) => Html(reset_form(&ticket, None)).into_response(),
        Err(e) => errors::page(e),
    }
}

pub async fn reset_submit(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let origin = crate::http::client::request_info(&idp.config, &headers, Some(peer), "POST");
    let run = async {
        let form = single_params(&body).map_err(Error::bad_page)?;
        let ticket = form.get("ticket").cloned().unwrap_or_default();
        let password = form.get("password").cloned().unwrap_or_default();
        Ok::<_, Error>(match reset::complete(&idp, &origin, &ticket, &password).await? {
            Err(why) => (StatusCode::BAD_REQUEST, Html(reset_form(&ticket, Some(why)))).into_response(),
            Ok(Some(result_url)) => redirect(&result_url),
            Ok(None) => Html(pages::message_page(
                "Password changed",
                "Your password has been changed. You can now log in with it.",
            ))
            .into_response(),
        })
    };
    run.await.unwrap_or_else(errors::page)
}

/// `GET /u/email-verification?ticket=`: the link of a verification mail or ticket. A live
/// ticket verifies the address, then goes to the ticket's result URL or a page; any other is
/// an error page.
pub async fn verify_email(State(idp): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let run = async {
        let q = single_params(raw.as_deref().unwrap_or("")).map_err(Error::bad_page)?;
        let ticket = q.get("ticket").cloned().unwrap_or_default();
        Ok::<_, Error>(match verify::verify(&idp, &ticket).await? {
            Some(url) => redirect(&url),
            None => {
                Html(pages::message_page("Email verified", "Your email address has been verified.")).into_response()
            }
        })
    };
    run.await.unwrap_or_else(errors::page)
}

/// `GET /u/unblock?ticket=`: the link of a `blocked_account` mail. A live ticket lifts the
/// user's brute-force blocks; any other is an error page.
pub async fn unblock(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let origin = crate::http::client::request_info(&idp.config, &headers, Some(peer), "GET");
    let run = async {
        let q = single_params(raw.as_deref().unwrap_or("")).map_err(Error::bad_page)?;
        let ticket = q.get("ticket").cloned().unwrap_or_default();
        blocks::unblock_by_link(&idp, &ticket, Event::from_request(&origin)).await?;
        Ok::<_, Error>(
            Html(pages::message_page("Account unblocked", "Your account has been unblocked. You can log in again."))
                .into_response(),
        )
    };
    run.await.unwrap_or_else(errors::page)
}

fn redirect(url: &str) -> Response {
    match HeaderValue::from_str(url) {
        Ok(location) => (StatusCode::FOUND, [(header::LOCATION, location)]).into_response(),
        Err(_) => errors::page(Error::bad_page("invalid result URL")),
    }
}
