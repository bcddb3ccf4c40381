//! `/.well-known/openid-configuration` (Auth0's document, field order kept) and
//! `/.well-known/jwks.json` (served from the bytes serialised at key load).

use crate::AppState;
use axum::Json;
use axum::extract::State;
use axum::http::{HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde_json::{Value, json};

pub async fn openid_configuration(State(idp): State<AppState>) -> Json<Value> {
    let u = |p: &str| idp.config.url(p);
    Json(json!({
        "issuer": idp.config.issuer(),
        "authorization_endpoint": u("authorize"),
        "token_endpoint": u("oauth/token"),
        "userinfo_endpoint": u("userinfo"),
        "jwks_uri": u(".well-known/jwks.json"),
        "revocation_endpoint": u("oauth/revoke"),
        "end_session_endpoint": u("oidc/logout"),
        "scopes_supported": ["openid", "profile", "offline_access", "name", "given_name", "family_name", "nickname", "email", "email_verified", "picture", "created_at", "identities", "phone", "address"],
        "response_types_supported": ["code"],
        "code_challenge_methods_supported": ["S256", "plain"],
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "token_endpoint_auth_methods_supported": ["client_secret_basic", "client_secret_post"],
        "claims_supported": ["aud", "auth_time", "created_at", "email", "email_verified", "exp", "family_name", "given_name", "iat", "identities", "iss", "name", "nickname", "phone_number", "picture", "sub"],
        "request_uri_parameter_supported": false,
        "request_parameter_supported": false,
        "grant_types_supported": ["authorization_code", "refresh_token", "client_credentials", "password", "http://auth0.com/oauth/grant-type/password-realm"],
    }))
}

pub async fn jwks(State(idp): State<AppState>) -> Response {
    let body = idp.keys.current().jwks.clone();
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json; charset=utf-8"));
    h.insert(header::CACHE_CONTROL, HeaderValue::from_static("public, max-age=15"));
    res
}
