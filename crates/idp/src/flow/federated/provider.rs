//! What a federated connection's options say about its upstream provider, validated without
//! the network (the Management API refuses bad options with these messages), and the provider
//! resolved for one login once discovery filled in what the options leave out.

use serde_json::Value;
use store::Connection;
use url::Url;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    Google,
    Oidc,
}

impl Strategy {
    pub fn of(connection: &Connection) -> Option<Self> {
        match connection.strategy.as_str() {
            "google-oauth2" => Some(Strategy::Google),
            "oidc" => Some(Strategy::Oidc),
            _ => None,
        }
    }

    /// Auth0 counts Google as social and OpenID Connect as enterprise (`identities[].isSocial`).
    pub fn is_social(self) -> bool {
        self == Strategy::Google
    }
}

/// The connection's options, checked. Endpoints not set here come from discovery.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    pub strategy: Strategy,
    pub connection: String,
    pub discovery_url: Option<Url>,
    pub issuer: Option<String>,
    pub authorization_endpoint: Option<Url>,
    pub token_endpoint: Option<Url>,
    pub jwks_uri: Option<Url>,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scope: String,
}

/// Everything one login needs to talk to the upstream.
#[derive(Debug, Clone)]
pub struct Provider {
    pub connection: String,
    /// The `iss` values accepted in its ID tokens.
    pub issuers: Vec<String>,
    pub authorization_endpoint: Url,
    pub token_endpoint: Url,
    pub jwks_uri: Url,
    pub client_id: String,
    pub client_secret: Option<String>,
    pub scope: String,
}

fn text<'a>(c: &'a Connection, key: &str) -> Option<&'a str> {
    c.options.get(key).and_then(Value::as_str).map(str::trim).filter(|s| !s.is_empty())
}

/// Whether `u` names this machine: the one place plain http is allowed (a provider on the
/// same host, as in tests and local development).
fn is_loopback(u: &Url) -> bool {
    match u.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        None => false,
    }
}

/// An endpoint URL: https, or http on a loopback host. Anything else would send the client
/// secret, codes and keys in clear (or let the network substitute its own signing keys).
fn endpoint(raw: &str) -> Result<Url, &'static str> {
    match Url::parse(raw) {
        Ok(u) if u.scheme() == "https" && u.host().is_some() => Ok(u),
        Ok(u) if u.scheme() == "http" && is_loopback(&u) => Ok(u),
        Ok(u) if u.scheme() == "http" => Err("must use https (http only for 127.0.0.1, ::1 or localhost)"),
        _ => Err("must be an https URL"),
    }
}

fn http_url(c: &Connection, key: &str) -> Result<Option<Url>, String> {
    let Some(raw) = text(c, key) else { return Ok(None) };
    endpoint(raw).map(Some).map_err(|why| format!("options.{key} {why}"))
}

/// Scopes from a space-separated string or an array of strings, `openid` first, no repeats.
fn scopes(values: &[&Value]) -> String {
    let mut out = vec!["openid".to_string()];
    let mut add = |s: &str| {
        for part in s.split_whitespace() {
            if !out.iter().any(|x| x == part) {
                out.push(part.to_string());
            }
        }
    };
    for v in values {
        match v {
            Value::String(s) => add(s),
            Value::Array(items) => items.iter().filter_map(Value::as_str).for_each(&mut add),
            _ => {}
        }
    }
    out.join(" ")
}

/// Reads and checks the options of a `google-oauth2` or `oidc` connection. A Google connection
/// may lack its keys (Auth0 creates one that way); logging in through it then fails clearly.
pub fn settings(c: &Connection, google_discovery_url: &Url) -> Result<Settings, String> {
    let strategy = Strategy::of(c).ok_or_else(|| format!("strategy {} is not a federated strategy", c.strategy))?;
    let client_id = text(c, "client_id").unwrap_or("").to_string();
    let client_secret = text(c, "client_secret").map(str::to_owned);
    match strategy {
        Strategy::Google => {
            let email = Value::from("email");
            let profile = Value::from("profile");
            let mut extra: Vec<&Value> = Vec::new();
            if let Some(v) = c.options.get("scope") {
                extra.push(v);
            }
            // `email` and `profile` default to on, as in Auth0's Google connection.
            if c.options.get("email").and_then(Value::as_bool) != Some(false) {
                extra.push(&email);
            }
            if c.options.get("profile").and_then(Value::as_bool) != Some(false) {
                extra.push(&profile);
            }
            Ok(Settings {
                strategy,
                connection: c.name.clone(),
                discovery_url: Some(google_discovery_url.clone()),
                issuer: None,
                authorization_endpoint: None,
                token_endpoint: None,
                jwks_uri: None,
                client_id,
                client_secret,
                scope: scopes(&extra),
            })
        }
        Strategy::Oidc => {
            if client_id.is_empty() {
                return Err("options.client_id is required".into());
            }
            let channel = c.options.get("type").and_then(Value::as_str);
            match channel {
                None | Some("front_channel") => {}
                Some("back_channel") if client_secret.is_none() => {
                    return Err("options.client_secret is required when options.type is back_channel".into());
                }
                Some("back_channel") => {}
                Some(other) => return Err(format!("options.type must be front_channel or back_channel, not {other}")),
            }
            let s = Settings {
                strategy,
                connection: c.name.clone(),
                discovery_url: http_url(c, "discovery_url")?,
                issuer: text(c, "issuer").map(str::to_owned),
                authorization_endpoint: http_url(c, "authorization_endpoint")?,
                token_endpoint: http_url(c, "token_endpoint")?,
                jwks_uri: http_url(c, "jwks_uri")?,
                client_id,
                client_secret,
                scope: scopes(
                    &[c.options.get("scope"), c.options.get("scopes")].into_iter().flatten().collect::<Vec<_>>(),
                ),
            };
            let explicit = s.issuer.is_some()
                && s.authorization_endpoint.is_some()
                && s.token_endpoint.is_some()
                && s.jwks_uri.is_some();
            if s.discovery_url.is_none() && !explicit {
                return Err(
                    "options.discovery_url, or all of options.issuer, authorization_endpoint, token_endpoint and jwks_uri, are required"
                        .into(),
                );
            }
            Ok(s)
        }
    }
}

impl Settings {
    /// Fills what the options leave out from the discovery document (`None` when the options
    /// name every endpoint). Explicit options win over discovery.
    pub fn resolve(self, discovery: Option<&Value>) -> Result<Provider, String> {
        let from_doc = |key: &str| -> Result<Option<Url>, String> {
            match discovery.and_then(|d| d.get(key)).and_then(Value::as_str) {
                None => Ok(None),
                Some(raw) => endpoint(raw).map(Some).map_err(|why| format!("the discovery document's {key} {why}")),
            }
        };
        let need = |explicit: Option<Url>, key: &str| -> Result<Url, String> {
            match explicit {
                Some(u) => Ok(u),
                None => from_doc(key)?.ok_or_else(|| format!("the discovery document has no {key}")),
            }
        };
        let issuer = match self.issuer {
            Some(i) => i,
            None => discovery
                .and_then(|d| d.get("issuer"))
                .and_then(Value::as_str)
                .filter(|i| !i.is_empty())
                .map(str::to_owned)
                .ok_or("the discovery document has no issuer")?,
        };
        if self.client_id.is_empty() {
            return Err(format!("the connection {} has no options.client_id", self.connection));
        }
        let mut issuers = vec![issuer.clone()];
        // Google's ID tokens carry either form of its issuer (its own documentation says so).
        if self.strategy == Strategy::Google && issuer == "https://accounts.google.com" {
            issuers.push("accounts.google.com".into());
        }
        Ok(Provider {
            connection: self.connection,
            issuers,
            authorization_endpoint: need(self.authorization_endpoint, "authorization_endpoint")?,
            token_endpoint: need(self.token_endpoint, "token_endpoint")?,
            jwks_uri: need(self.jwks_uri, "jwks_uri")?,
            client_id: self.client_id,
            client_secret: self.client_secret,
            scope: self.scope,
        })
    }
}

/// Whether the login page offers this connection as a button.
pub fn offers_button(c: &Connection) -> bool {
    Strategy::of(c).is_some() && c.extra.get("show_as_button").and_then(Value::as_bool) != Some(false)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn conn(strategy: &str, options: Value) -> Connection {
        serde_json::from_value(json!({"id": "con_x", "name": "up", "strategy": strategy, "options": options})).unwrap()
    }

    fn google_url() -> Url {
        Url::parse(crate::config::GOOGLE_DISCOVERY_URL).unwrap()
    }

    #[test]
    fn google_scopes_follow_the_email_and_profile_switches() {
        let s = settings(&conn("google-oauth2", json!({"client_id": "a", "scope": ["email", "x"]})), &google_url());
        assert_eq!(s.unwrap().scope, "openid email x profile");
        let s = settings(&conn("google-oauth2", json!({"email": false, "profile": false})), &google_url()).unwrap();
        assert_eq!(s.scope, "openid");
        assert_eq!(s.discovery_url, Some(google_url()));
    }

    #[test]
    fn oidc_options_are_checked() {
        let err = |o: Value| settings(&conn("oidc", o), &google_url()).unwrap_err();
        assert!(err(json!({"discovery_url": "https://x/"})).contains("client_id"));
        assert!(err(json!({"client_id": "a"})).contains("discovery_url"));
        assert!(err(json!({"client_id": "a", "discovery_url": "ftp://x/"})).contains("https"));
        assert!(
            err(json!({"client_id": "a", "discovery_url": "https://x/", "type": "back_channel"})).contains("secret")
        );
        assert!(err(json!({"client_id": "a", "discovery_url": "https://x/", "type": "side"})).contains("type"));
        let ok = settings(
            &conn(
                "oidc",
                json!({"client_id": "a", "issuer": "https://i/", "authorization_endpoint": "https://i/a",
                       "token_endpoint": "https://i/t", "jwks_uri": "https://i/k", "scope": "openid email email"}),
            ),
            &google_url(),
        )
        .unwrap();
        assert_eq!(ok.scope, "openid email");
        let p = ok.resolve(None).unwrap();
        assert_eq!(p.issuers, vec!["https://i/".to_string()]);
        assert_eq!(p.token_endpoint.as_str(), "https://i/t");
    }

    #[test]
    fn endpoints_need_https_except_on_loopback() {
        let with = |key: &str, value: &str| {
            let mut o = json!({"client_id": "a", "issuer": "https://i/", "authorization_endpoint": "https://i/a",
                               "token_endpoint": "https://i/t", "jwks_uri": "https://i/k"});
            o[key] = json!(value);
            settings(&conn("oidc", o), &google_url())
        };
        for key in ["authorization_endpoint", "token_endpoint", "jwks_uri", "discovery_url"] {
            for bad in ["http://i.example/x", "http://127.0.0.1.example/x", "http://localhost.example/x", "http:/x"] {
                let e = with(key, bad).unwrap_err();
                assert!(e.contains(&format!("options.{key}")) && e.contains("https"), "{key}={bad}: {e}");
            }
            for good in ["https://i.example/x", "http://127.0.0.1:8080/x", "http://[::1]/x", "http://LocalHost:1/x"] {
                assert!(with(key, good).is_ok(), "{key}={good}");
            }
        }
        // Endpoints found by discovery follow the same rule.
        let s = settings(&conn("oidc", json!({"client_id": "a", "discovery_url": "https://i/d"})), &google_url());
        let doc = json!({"issuer": "https://i/", "authorization_endpoint": "https://i/a",
                         "token_endpoint": "http://i/t", "jwks_uri": "https://i/k"});
        assert!(s.unwrap().resolve(Some(&doc)).unwrap_err().contains("token_endpoint must use https"));
    }

    #[test]
    fn discovery_fills_the_gaps_and_options_win() {
        let s = settings(
            &conn("oidc", json!({"client_id": "a", "discovery_url": "https://i/.well-known/openid-configuration", "issuer": "https://other/"})),
            &google_url(),
        )
        .unwrap();
        let doc = json!({"issuer": "https://i/", "authorization_endpoint": "https://i/authorize",
                         "token_endpoint": "https://i/oauth/token", "jwks_uri": "https://i/jwks"});
        let p = s.clone().resolve(Some(&doc)).unwrap();
        assert_eq!(p.issuers, vec!["https://other/".to_string()]);
        assert_eq!(p.jwks_uri.as_str(), "https://i/jwks");
        assert!(s.resolve(Some(&json!({"issuer": "https://i/"}))).unwrap_err().contains("authorization_endpoint"));
        let g = settings(&conn("google-oauth2", json!({"client_id": "a"})), &google_url()).unwrap();
        let p = g
            .resolve(Some(&json!({"issuer": "https://accounts.google.com", "authorization_endpoint": "https://a/",
                                        "token_endpoint": "https://t/", "jwks_uri": "https://k/"})))
            .unwrap();
        assert_eq!(p.issuers, vec!["https://accounts.google.com".to_string(), "accounts.google.com".to_string()]);
        let keyless = settings(&conn("google-oauth2", json!({"client_id": ""})), &google_url()).unwrap();
        assert!(keyless.resolve(Some(&json!({"issuer": "x"}))).unwrap_err().contains("client_id"));
    }
}
