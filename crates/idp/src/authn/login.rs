//! The Universal Login pages: `/u/login` (password, or a provider's button) and `/u/signup`.
//! The forms are checked against their login transaction ([`flow::transaction`]); the sign-in
//! itself is [`flow::password`] or [`flow::federated`].

use crate::flow::transaction::{self, Pending};
use crate::http::client::request_info;
use crate::http::params::single_params;
use crate::http::{cookies, errors, reply};
use crate::pages::{self, DbChoice, FederatedChoice, LoginPage};
use crate::{AppState, Error, Result, flow};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};
use std::collections::HashMap;
use std::net::SocketAddr;
use store::Connection;

fn render(idp_default: Option<&str>, p: &Pending, username: &str, error: Option<&str>, status: StatusCode) -> Response {
    let selected = p
        .databases
        .iter()
        .find(|d| Some(d.name.as_str()) == idp_default)
        .or(p.databases.first())
        .map(|d| d.name.as_str());
    let page = LoginPage {
        app_name: &p.client_name,
        state: &p.tx.id,
        csrf: &p.tx.csrf,
        databases: p.databases.iter().map(|d| DbChoice { name: &d.name, signup: !d.signup_disabled() }).collect(),
        federated: p.federated.iter().map(|c| FederatedChoice { name: &c.name, label: button_label(c) }).collect(),
        selected,
        username,
        error,
    };
    form_page(status, pages::login_page(&page))
}

/// The text of a connection's button: its display name, else the provider's name.
fn button_label(c: &Connection) -> String {
    match (&c.display_name, c.strategy.as_str()) {
        (Some(d), _) if !d.is_empty() => d.clone(),
        (_, "google-oauth2") => "Google".into(),
        _ => c.name.clone(),
    }
}

/// A page with a credentials form: never cached, never framed (clickjacking).
fn form_page(status: StatusCode, html: String) -> Response {
    let mut res = (status, Html(html)).into_response();
    res.headers_mut().insert(header::CACHE_CONTROL, HeaderValue::from_static("no-store"));
    res.headers_mut().insert("x-frame-options", HeaderValue::from_static("deny"));
    res
}

pub async fn show(State(idp): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = single_params(raw.as_deref().unwrap_or("")).unwrap_or_default();
    let result = async {
        let p = transaction::load(&idp, q.get("state").map(String::as_str)).await?;
        let default = idp.store.tenant_settings().await?.default_directory;
        let hint = p.req.login_hint.clone().unwrap_or_default();
        Ok::<_, Error>(render(default.as_deref(), &p, &hint, None, StatusCode::OK))
    };
    result.await.unwrap_or_else(errors::page)
}

/// A posted login or sign-up form: parsed, its transaction loaded, and its anti-CSRF value
/// checked against both the transaction and this browser's cookie.
async fn posted(idp: &AppState, headers: &HeaderMap, body: &str) -> Result<(HashMap<String, String>, Pending)> {
    let form = single_params(body).map_err(Error::bad_page)?;
    let p = transaction::load(idp, form.get("state").map(String::as_str)).await?;
    let sent = form.get("csrf").map(String::as_str).unwrap_or("");
    transaction::check_form(&p, sent, cookies::get(headers, &cookies::login_name(&p.tx.id)).unwrap_or(""))?;
    Ok((form, p))
}

pub async fn submit(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let result = async {
        let (form, p) = posted(&idp, &headers, &body).await?;
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let default = idp.store.tenant_settings().await?.default_directory;
        let again =
            |message: &str, status| Ok(render(default.as_deref(), &p, field("username"), Some(message), status));
        // A provider button: leave for the upstream (the form proved this browser began the login).
        if field("action") == "federated" {
            let Some(c) = p.federated.iter().find(|c| c.name == field("connection")) else {
                return again("Choose a valid login method.", StatusCode::BAD_REQUEST);
            };
            let step = flow::federated::begin_or_fail(&idp, &p.tx.id, &p.req, c).await?;
            return Ok(reply::next(&idp.config, step));
        }
        let Some(connection) = p.databases.iter().find(|d| d.name == field("connection")) else {
            return again("Choose a valid directory.", StatusCode::BAD_REQUEST);
        };
        if field("username").is_empty() || field("password").is_empty() {
            return again("Enter your email and password.", StatusCode::BAD_REQUEST);
        }
        let request = request_info(&idp.config, &headers, Some(peer), "POST");
        match flow::password::sign_in(&idp, &p, connection, field("username"), field("password"), &request).await? {
            Ok(step) => Ok(reply::next(&idp.config, step)),
            Err(e @ crate::error::LoginError::TooManyAttempts) => again(e.message(), StatusCode::TOO_MANY_REQUESTS),
            Err(e) => again(e.message(), StatusCode::UNAUTHORIZED),
        }
    };
    result.await.unwrap_or_else(errors::page)
}

fn signup_render(p: &Pending, email: &str, error: Option<&str>, status: StatusCode) -> Response {
    let open: Vec<&str> = p.databases.iter().filter(|d| !d.signup_disabled()).map(|d| d.name.as_str()).collect();
    let page = pages::SignupPage {
        app_name: &p.client_name,
        state: &p.tx.id,
        csrf: &p.tx.csrf,
        databases: &open,
        email,
        error,
    };
    form_page(status, pages::signup_page(&page))
}

pub async fn signup_show(State(idp): State<AppState>, RawQuery(raw): RawQuery) -> Response {
    let q = single_params(raw.as_deref().unwrap_or("")).unwrap_or_default();
    match transaction::load(&idp, q.get("state").map(String::as_str)).await {
        Ok(p) => signup_render(&p, "", None, StatusCode::OK),
        Err(e) => errors::page(e),
    }
}

pub async fn signup_submit(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    body: String,
) -> Response {
    let result = async {
        let (form, p) = posted(&idp, &headers, &body).await?;
        let field = |k: &str| form.get(k).map(String::as_str).unwrap_or("");
        let Some(connection) = p.databases.iter().find(|d| d.name == field("connection") && !d.signup_disabled())
        else {
            return Ok(signup_render(
                &p,
                field("email"),
                Some("Sign-up is not available here."),
                StatusCode::BAD_REQUEST,
            ));
        };
        let request = request_info(&idp.config, &headers, Some(peer), "POST");
        match flow::password::sign_up(&idp, &p, connection, field("email"), field("password"), &request).await {
            Ok(step) => Ok(reply::next(&idp.config, step)),
            Err(e @ (Error::Refused { .. } | Error::WeakPassword(_))) => {
                Ok(signup_render(&p, field("email"), Some(&e.description()), errors::status(&e)))
            }
            Err(e) => Err(e),
        }
    };
    result.await.unwrap_or_else(errors::page)
}
