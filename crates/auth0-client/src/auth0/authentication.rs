//! The Authentication API: `POST /oauth/token` for the grants the service uses, and
//! `POST /dbconnections/change_password`.

use super::{Upstream, unreachable};
use crate::config::ClientType;
use crate::error::{Error, Result};
use serde::Deserialize;
use serde_json::Value;

/// A successful token answer.
#[derive(Debug, Clone, Deserialize)]
pub struct TokenSet {
    pub access_token: String,
    #[serde(default)]
    pub refresh_token: Option<String>,
    #[serde(default)]
    pub id_token: Option<String>,
    /// Seconds.
    #[serde(default)]
    pub expires_in: Option<i64>,
}

/// Auth0 refused the grant (a 4xx with its `{error, error_description}`).
#[derive(Debug, Clone)]
pub struct Refusal {
    pub status: u16,
    pub error: String,
    pub description: String,
}

impl Refusal {
    pub fn message(&self) -> String {
        if self.description.is_empty() { self.error.clone() } else { format!("{}: {}", self.error, self.description) }
    }
}

pub enum Grant<'a> {
    AuthorizationCode {
        code: &'a str,
        redirect_uri: &'a str,
    },
    /// `realm` set: Auth0's password-realm grant on that connection.
    Password {
        username: &'a str,
        password: &'a str,
        realm: Option<&'a str>,
    },
    RefreshToken {
        refresh_token: &'a str,
    },
}

pub async fn token(
    http: &reqwest::Client,
    client: &ClientType,
    grant: Grant<'_>,
) -> Result<std::result::Result<TokenSet, Refusal>> {
    let scope = client.auth0_scope();
    let mut form: Vec<(&str, &str)> =
        vec![("client_id", client.client_id.as_str()), ("client_secret", client.client_secret.as_str())];
    match &grant {
        Grant::AuthorizationCode { code, redirect_uri } => {
            form.extend([("grant_type", "authorization_code"), ("code", code), ("redirect_uri", redirect_uri)]);
        }
        Grant::Password { username, password, realm } => {
            match realm {
                Some(realm) => {
                    form.extend([("grant_type", "http://auth0.com/oauth/grant-type/password-realm"), ("realm", realm)])
                }
                None => form.push(("grant_type", "password")),
            }
            form.extend([("username", *username), ("password", *password), ("scope", scope.as_str())]);
            if let Some(aud) = &client.audience {
                form.push(("audience", aud.as_str()));
            }
        }
        Grant::RefreshToken { refresh_token } => {
            form.extend([("grant_type", "refresh_token"), ("refresh_token", refresh_token)]);
        }
    }
    let url = format!("{}/oauth/token", client.auth0_url);
    let res = super::send(http.post(&url).form(&form), "POST /oauth/token")
        .await
        .map_err(|e| unreachable("Auth0", &url, &e))?;
    let up = Upstream::read(res, "Auth0 token endpoint").await?;
    let status = up.status.as_u16();
    if up.is_success() {
        return serde_json::from_slice::<TokenSet>(&up.body)
            .map(Ok)
            .map_err(|e| Error::Upstream(format!("Auth0's token answer is not usable: {e}")));
    }
    let body: Value = serde_json::from_slice(&up.body).unwrap_or(Value::Null);
    let s = |k: &str| body.get(k).and_then(Value::as_str).unwrap_or("").to_string();
    // A 429 is Auth0's brute-force block of these credentials (`too_many_attempts`), a refusal
    // like a wrong password, or a rate limit, which is Auth0 failing.
    if (status == 429 && s("error") != "too_many_attempts") || status >= 500 {
        return Err(Error::Upstream(format!("Auth0's token endpoint answered {status}")));
    }
    Ok(Err(Refusal { status, error: s("error"), description: s("error_description") }))
}

/// `POST /dbconnections/change_password`: Auth0 mails the user a reset link.
pub async fn change_password(
    http: &reqwest::Client,
    auth0_url: &str,
    client_id: &str,
    email: &str,
    connection: &str,
) -> Result<Upstream> {
    let url = format!("{auth0_url}/dbconnections/change_password");
    let body = serde_json::json!({ "client_id": client_id, "email": email, "connection": connection });
    let res = super::send(http.post(&url).json(&body), "POST /dbconnections/change_password")
        .await
        .map_err(|e| unreachable("Auth0", &url, &e))?;
    Upstream::read(res, "Auth0 change_password").await
}
