//! Where the login flow's [`Next`] step becomes a response: a 302 (as Auth0 redirects; axum's
//! `Redirect::to` answers 303) or a `form_post` page, with the cookies the step implies.

use super::cookies;
use super::errors;
use crate::config::Config;
use crate::flow::{Next, Reply, ResponseMode};
use crate::pages;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{Html, IntoResponse, Response};

pub fn found(location: &str) -> Response {
    match HeaderValue::from_str(location) {
        Ok(v) => (StatusCode::FOUND, [(header::LOCATION, v)]).into_response(),
        Err(_) => errors::page_with(StatusCode::BAD_REQUEST, "Bad request", "Invalid redirect location"),
    }
}

/// Delivers parameters to the application's redirect URI in the requested response mode.
pub fn to_client(reply: &Reply) -> Response {
    let params = reply.params.iter().map(|(k, v)| (*k, v.as_str()));
    match reply.mode {
        ResponseMode::FormPost => {
            let params: Vec<(&str, &str)> = params.collect();
            Html(pages::form_post(&reply.redirect_uri, &params)).into_response()
        }
        mode => {
            let Ok(mut url) = url::Url::parse(&reply.redirect_uri) else {
                return errors::page_with(StatusCode::BAD_REQUEST, "Bad request", "Invalid redirect_uri");
            };
            if mode == ResponseMode::Fragment {
                let encoded = url::form_urlencoded::Serializer::new(String::new()).extend_pairs(params).finish();
                url.set_fragment(Some(&encoded));
            } else {
                url.query_pairs_mut().extend_pairs(params);
            }
            found(url.as_str())
        }
    }
}

/// The response for a step of the login flow.
pub fn next(config: &Config, step: Next) -> Response {
    let secure = config.secure_cookies();
    match step {
        Next::Client(reply) => to_client(&reply),
        Next::SignedIn { reply, session } => {
            let mut res = to_client(&reply);
            cookies::append(
                &mut res,
                &cookies::set(cookies::SESSION, &session.cookie, "/", session.lifetime_secs, secure),
            );
            cookies::append(&mut res, &cookies::set(&cookies::login_name(&session.ended_tx), "", "/u/", 0, secure));
            res
        }
        Next::LoginPage { tx_id, csrf } => {
            let mut res = found(&format!("/u/login?state={tx_id}"));
            let cookie = cookies::set(&cookies::login_name(&tx_id), &csrf, "/u/", config.login_ttl_secs, secure);
            cookies::append(&mut res, &cookie);
            res
        }
        Next::Upstream { url, state, binding } => {
            let mut res = found(url.as_str());
            let path = format!("/{}", crate::flow::federated::CALLBACK_PATH);
            cookies::append(
                &mut res,
                &cookies::set(&cookies::binding_name(&state), &binding, &path, config.login_ttl_secs, secure),
            );
            res
        }
    }
}
