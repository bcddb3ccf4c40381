//! One tenant log event as the login path and the Management API describe it: Auth0's type
//! code ([`Type`]) and fields, filled from the records at hand. The builders take records and
//! names, never a credential: no password, code, token, client secret or Action secret has a
//! way in (the integration tests look for a canary of each in every event).

use crate::util::iso8601;
use serde_json::{Map, Value, json};
use store::{Client, Connection, LogEvent, User};

/// Auth0's log event type codes this idp records ("Log Event Type Codes" in Auth0's docs).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Type {
    /// `s`: a login succeeded (interactive or password grant).
    Success,
    /// `f`: a login failed for another reason than the credentials (blocked user, an Action's
    /// denial, an upstream provider's failure).
    Failed,
    /// `fp`: wrong password.
    WrongPassword,
    /// `fu`: no such user.
    WrongUsername,
    /// `limit_wc`: too many failed logins for one account from one address.
    BlockedAccount,
    SuccessSignup,
    FailedSignup,
    SuccessLogout,
    FailedLogout,
    SuccessExchangeCode,
    FailedExchangeCode,
    SuccessExchangeClientCredentials,
    FailedExchangeClientCredentials,
    SuccessExchangeRefresh,
    FailedExchangeRefresh,
    SuccessExchangePassword,
    FailedExchangePassword,
    /// `ssa`/`fsa`: `prompt=none`.
    SuccessSilentAuth,
    FailedSilentAuth,
    SuccessChangePassword,
    FailedChangePassword,
    SuccessChangePasswordRequest,
    FailedChangePasswordRequest,
    /// `sapi`/`fapi`: a Management API write.
    SuccessApi,
    FailedApi,
    /// `sdu`/`fdu`: a user deletion through the Management API.
    SuccessUserDeletion,
    FailedUserDeletion,
    ActionsExecutionFailed,
    /// `api_limit`: a request over the Management API's rate limit.
    ApiLimit,
    /// `ublkdu`: a brute-force block lifted (the Management API's user blocks).
    BlockReleased,
    /// `sv`/`fv`: an email verification link used, or refused.
    SuccessVerificationEmail,
    FailedVerificationEmail,
    /// `fn`: a mail could not be delivered (the queue gave up on it, or its first attempt
    /// failed).
    FailedSendingNotification,
}

impl Type {
    pub fn code(self) -> &'static str {
        use Type::*;
        match self {
            Success => "s",
            Failed => "f",
            WrongPassword => "fp",
            WrongUsername => "fu",
            BlockedAccount => "limit_wc",
            SuccessSignup => "ss",
            FailedSignup => "fs",
            SuccessLogout => "slo",
            FailedLogout => "flo",
            SuccessExchangeCode => "seacft",
            FailedExchangeCode => "feacft",
            SuccessExchangeClientCredentials => "seccft",
            FailedExchangeClientCredentials => "feccft",
            SuccessExchangeRefresh => "sertft",
            FailedExchangeRefresh => "fertft",
            SuccessExchangePassword => "sepft",
            FailedExchangePassword => "fepft",
            SuccessSilentAuth => "ssa",
            FailedSilentAuth => "fsa",
            SuccessChangePassword => "scp",
            FailedChangePassword => "fcp",
            SuccessChangePasswordRequest => "scpr",
            FailedChangePasswordRequest => "fcpr",
            SuccessApi => "sapi",
            FailedApi => "fapi",
            SuccessUserDeletion => "sdu",
            FailedUserDeletion => "fdu",
            ActionsExecutionFailed => "actions_execution_failed",
            ApiLimit => "api_limit",
            BlockReleased => "ublkdu",
            FailedSendingNotification => "fn",
            SuccessVerificationEmail => "sv",
            FailedVerificationEmail => "fv",
        }
    }

    /// The description an event gets unless it says more.
    fn default_description(self) -> Option<&'static str> {
        use Type::*;
        Some(match self {
            Success => "Successful login",
            WrongPassword => "Wrong email or password.",
            WrongUsername => "Wrong email or password.",
            BlockedAccount => "Too many failed login attempts for this account from this IP address.",
            SuccessSignup => "Successful signup",
            SuccessLogout => "Successful logout",
            SuccessExchangeCode => "Authorization Code for Access Token",
            SuccessExchangeClientCredentials => "Client Credentials for Access Token",
            SuccessExchangeRefresh => "Refresh Token for Access Token",
            SuccessExchangePassword => "Password for Access Token",
            SuccessSilentAuth => "Successful silent authentication",
            SuccessChangePassword => "Changed password",
            SuccessChangePasswordRequest => "Change password request",
            SuccessUserDeletion => "User deleted",
            ApiLimit => "Global limit has been reached",
            BlockReleased => "User login block released",
            SuccessVerificationEmail => "Email verified",
            _ => return None,
        })
    }
}

/// What kind of connection a strategy is, as Auth0's `strategy_type` says.
pub fn strategy_type(strategy: &str) -> &'static str {
    match strategy {
        "auth0" => "database",
        "oidc" | "samlp" | "waad" | "adfs" | "okta" | "ad" | "pingfederate" => "enterprise",
        "email" | "sms" => "passwordless",
        _ => "social",
    }
}

/// Where a request came from, as an event records it (the login path's `RequestInfo` is one;
/// this module sits below it).
pub trait Origin {
    fn ip(&self) -> &str;
    fn hostname(&self) -> &str;
    fn user_agent(&self) -> Option<&str>;
}

/// An event being described; recorded with [`crate::Idp::log`].
#[derive(Debug, Clone, Default)]
pub struct Event(pub(crate) LogEvent);

impl Event {
    /// An event of `kind` with no request behind it (the mail worker, a link's page).
    pub fn new(kind: Type) -> Self {
        Event(LogEvent::default()).kind(kind)
    }

    /// An event (type still to be set) from the request a login or call came with: address,
    /// user agent and the tenant's host name.
    pub fn from_request(request: &impl Origin) -> Self {
        Event(LogEvent {
            ip: Some(request.ip().to_owned()),
            hostname: Some(request.hostname().to_owned()),
            user_agent: request.user_agent().map(|ua| ua.chars().take(512).collect()),
            ..Default::default()
        })
    }

    /// An event (type still to be set) from a caller known by its address only.
    pub fn at_ip(ip: &str) -> Self {
        Event(LogEvent { ip: Some(ip.to_owned()), ..Default::default() })
    }

    /// This type, with its default description unless one was given.
    pub fn kind(mut self, kind: Type) -> Self {
        self.0.event_type = kind.code().into();
        if self.0.description.is_none() {
            self.0.description = kind.default_description().map(str::to_owned);
        }
        self
    }

    /// The same event with another type and its description: one template, several outcomes.
    pub fn outcome(&self, kind: Type, description: Option<String>) -> Self {
        let mut e = self.clone();
        e.0.description = description;
        e.kind(kind)
    }

    pub fn description(mut self, d: impl Into<String>) -> Self {
        let d: String = d.into();
        self.0.description = Some(d.chars().take(1024).collect());
        self
    }

    pub fn client(mut self, c: &Client) -> Self {
        self.0.client_id = Some(c.client_id.clone());
        self.0.client_name = Some(c.name.clone());
        self
    }

    pub fn client_named(mut self, client_id: &str, name: Option<&str>) -> Self {
        self.0.client_id = Some(client_id.to_owned());
        self.0.client_name = name.map(str::to_owned);
        self
    }

    /// The user: its id, and as `user_name` its email, else username, else name.
    pub fn user(mut self, u: &User) -> Self {
        self.0.user_id = Some(u.user_id.clone());
        self.0.user_name = u.email.clone().or_else(|| u.username.clone()).or_else(|| u.name.clone());
        self
    }

    pub fn user_id(mut self, user_id: &str) -> Self {
        self.0.user_id = Some(user_id.to_owned());
        self
    }

    /// What a person typed as their login name (the `fu` of an unknown account).
    pub fn user_name(mut self, name: &str) -> Self {
        self.0.user_name = Some(name.chars().take(256).collect());
        self
    }

    pub fn connection(mut self, c: &Connection) -> Self {
        self.0.connection = Some(c.name.clone());
        self.0.connection_id = Some(c.id.clone());
        self.0.strategy = Some(c.strategy.clone());
        self.0.strategy_type = Some(strategy_type(&c.strategy).into());
        self
    }

    pub fn connection_name(mut self, name: &str) -> Self {
        self.0.connection = Some(name.to_owned());
        self
    }

    pub fn audience(mut self, audience: Option<&str>) -> Self {
        self.0.audience = audience.map(str::to_owned);
        self
    }

    pub fn scope(mut self, scope: &[String]) -> Self {
        self.0.scope = (!scope.is_empty()).then(|| scope.join(" "));
        self
    }

    pub fn details(mut self, details: Value) -> Self {
        self.0.details = Some(details);
        self
    }

    pub fn ip(&self) -> &str {
        self.0.ip.as_deref().unwrap_or("unknown")
    }
}

/// An event as Auth0's API shows it: `date` in ISO 8601, absent fields left out.
pub fn to_json(e: &LogEvent) -> Value {
    let mut m = Map::new();
    m.insert("date".into(), json!(iso8601(e.date)));
    m.insert("type".into(), json!(e.event_type));
    for (k, v) in [
        ("description", &e.description),
        ("client_id", &e.client_id),
        ("client_name", &e.client_name),
        ("ip", &e.ip),
        ("user_agent", &e.user_agent),
        ("user_id", &e.user_id),
        ("user_name", &e.user_name),
        ("connection", &e.connection),
        ("connection_id", &e.connection_id),
        ("strategy", &e.strategy),
        ("strategy_type", &e.strategy_type),
        ("audience", &e.audience),
        ("scope", &e.scope),
        ("hostname", &e.hostname),
    ] {
        if let Some(v) = v {
            m.insert(k.into(), json!(v));
        }
    }
    if let Some(d) = &e.details {
        m.insert("details".into(), d.clone());
    }
    m.insert("isMobile".into(), json!(false));
    m.insert("log_id".into(), json!(e.log_id));
    m.insert("_id".into(), json!(e.log_id));
    Value::Object(m)
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Request;

    impl Origin for Request {
        fn ip(&self) -> &str {
            "203.0.113.9"
        }
        fn hostname(&self) -> &str {
            "login.example.com"
        }
        fn user_agent(&self) -> Option<&str> {
            None
        }
    }

    #[test]
    fn a_template_becomes_events_of_several_types() {
        let base = Event::from_request(&Request).client_named("app", Some("App"));
        let fp = base.outcome(Type::WrongPassword, None);
        assert_eq!(fp.0.event_type, "fp");
        assert_eq!(fp.0.description.as_deref(), Some("Wrong email or password."));
        let f = base.outcome(Type::Failed, Some("user is blocked".into()));
        assert_eq!((f.0.event_type.as_str(), f.0.description.as_deref()), ("f", Some("user is blocked")));
        assert_eq!((f.0.ip.as_deref(), f.0.client_id.as_deref()), (Some("203.0.113.9"), Some("app")));
        assert_eq!(strategy_type("google-oauth2"), "social");
        assert_eq!(strategy_type("auth0"), "database");
        assert_eq!(strategy_type("oidc"), "enterprise");
    }
}
