//! `GET /login/callback`: where an upstream provider sends the browser back
//! ([`flow::federated::callback`]). The binding cookie of this trip is cleared whatever happens.

use crate::http::client::request_info;
use crate::http::params::single_params;
use crate::http::{cookies, errors, reply};
use crate::{AppState, Error, flow};
use axum::extract::{ConnectInfo, RawQuery, State};
use axum::http::HeaderMap;
use axum::response::Response;
use std::net::SocketAddr;

pub async fn callback(
    State(idp): State<AppState>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    RawQuery(raw): RawQuery,
) -> Response {
    let q = match single_params(raw.as_deref().unwrap_or("")) {
        Ok(q) => q,
        Err(e) => return errors::page(Error::bad_page(e)),
    };
    let binding_cookie = cookies::binding_name(q.get("state").map(String::as_str).unwrap_or(""));
    let request = request_info(&idp.config, &headers, Some(peer), "GET");
    let mut res = match flow::federated::callback(&idp, &q, cookies::get(&headers, &binding_cookie), &request).await {
        Ok(step) => reply::next(&idp.config, step),
        Err(e) => errors::page(e),
    };
    let path = format!("/{}", flow::federated::CALLBACK_PATH);
    cookies::append(&mut res, &cookies::set(&binding_cookie, "", &path, 0, idp.config.secure_cookies()));
    res
}
