//! Console administrators, kept apart from the tenant. An administrator is a user of a reserved
//! database connection that only the console's own application may use, named in a table of
//! its own (`console_admins`) with a role. Nothing the tenant controls reaches either: the
//! Management API neither lists nor touches the reserved connection, the console application
//! or the administrators' accounts, and what makes a token an administrator's is that table,
//! never a claim, a group, a role or an Action's output. Administrators are created by the
//! command line (`gatehouse console add-admin`, the first `up`), which has the database.
//!
//! The console is an OIDC client of this idp (code flow with PKCE); an administrator's access
//! token for the Management API carries no admin scopes itself: [`scopes_of`] grants them, per
//! request, from the role stored for the token's subject.

use crate::accounts::password::check_for;
use crate::util::{random_hex, random_secret};
use crate::{AppState, Error, Result};
use serde_json::{Map, Value, json};
use store::{Client, Connection, Identity, StoredClient, StoredUser, User};

/// The console's application (a public client: PKCE, no secret).
pub const CONSOLE_CLIENT_ID: &str = "gatehouse-console";
/// The reserved database connection administrators sign in with.
pub const CONSOLE_CONNECTION: &str = "gatehouse-console-admins";
pub const CONSOLE_CONNECTION_ID: &str = "con_gatehouseconsole";
/// Every administrator's user id starts so (tenant users are `auth0|…`, `google-oauth2|…`).
pub const ADMIN_ID_PREFIX: &str = "console|";

/// What an administrator may do in the Management API.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// Every Management API scope.
    Full,
    /// The `read:*` scopes only.
    ReadOnly,
}

impl Role {
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "full" => Some(Role::Full),
            "read-only" => Some(Role::ReadOnly),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Full => "full",
            Role::ReadOnly => "read-only",
        }
    }

    /// The Management API scopes of the role (never the `*:current_user*` ones, which reach
    /// only one's own account).
    pub fn scopes(self) -> Vec<String> {
        crate::grants::scopes::MANAGEMENT_SCOPES
            .iter()
            .filter(|s| !crate::grants::scopes::is_current_user_scope(s))
            .filter(|s| self == Role::Full || s.starts_with("read:"))
            .map(|s| (*s).to_owned())
            .collect()
    }
}

/// Whether `id` names the console's application.
pub fn is_console_client(id: &str) -> bool {
    id == CONSOLE_CLIENT_ID
}

/// Whether a path segment or identifier names something of the console's that the tenant's
/// Management API must not see: its application, its connection (by id or name), an
/// administrator's account.
pub fn is_reserved(id: &str) -> bool {
    id == CONSOLE_CLIENT_ID
        || id == CONSOLE_CONNECTION
        || id == CONSOLE_CONNECTION_ID
        || id.starts_with(ADMIN_ID_PREFIX)
}

/// The console's redirect URI on this idp.
pub fn callback_url(idp: &AppState) -> String {
    idp.config.url("console/callback")
}

/// Creates or updates the console's application and connection for this idp's public URL.
/// Run at every start: the callback follows the listener.
pub async fn ensure(idp: &AppState) -> Result<()> {
    ensure_connection(idp).await?;
    let client = Client {
        client_id: CONSOLE_CLIENT_ID.into(),
        name: "Gatehouse Console".into(),
        app_type: Some("spa".into()),
        callbacks: vec![callback_url(idp)],
        allowed_origins: vec![],
        web_origins: vec![],
        allowed_logout_urls: vec![idp.config.url("console")],
        grant_types: vec!["authorization_code".into()],
        token_endpoint_auth_method: "none".into(),
        jwt_configuration: Default::default(),
        refresh_token: Default::default(),
        is_first_party: true,
        oidc_conformant: true,
        extra: Map::new(),
    };
    let stored = StoredClient { client, secret_sha256: None };
    match idp.store.client(CONSOLE_CLIENT_ID).await? {
        Some(existing) if existing == stored => Ok(()),
        Some(_) => Ok(idp.store.put_client(&stored).await?),
        None => Ok(idp.store.create_client(&stored, false).await?),
    }
}

async fn ensure_connection(idp: &AppState) -> Result<Connection> {
    let mut options = Map::new();
    options.insert("disable_signup".into(), json!(true));
    options.insert("brute_force_protection".into(), json!(true));
    let connection = Connection {
        id: CONSOLE_CONNECTION_ID.into(),
        name: CONSOLE_CONNECTION.into(),
        strategy: "auth0".into(),
        options,
        enabled_clients: vec![CONSOLE_CLIENT_ID.into()],
        display_name: Some("Gatehouse Console".into()),
        realms: vec![CONSOLE_CONNECTION.into()],
        is_domain_connection: false,
        extra: Map::new(),
    };
    if idp.store.connection(CONSOLE_CONNECTION_ID).await?.as_ref() != Some(&connection) {
        idp.store.put_connection(&connection).await?;
    }
    Ok(connection)
}

/// Takes back the console's connection from applications that joined it (a new application
/// joins every connection, as on Auth0).
pub async fn keep_connection_private(idp: &AppState) -> Result<()> {
    ensure_connection(idp).await.map(drop)
}

/// A user search with the administrators left out: `query AND NOT user_id:console|*`.
pub fn without_admins(query: Option<store::search::Query>) -> store::search::Query {
    use store::search::{Pattern, PatternPart, Predicate, Query, TextField, TextMatch};
    let Ok(pattern) = Pattern::new(vec![PatternPart::Literal(ADMIN_ID_PREFIX.into()), PatternPart::AnyRun]) else {
        return query.unwrap_or(Query::All);
    };
    let admins = Query::Match(Predicate::Text { field: TextField::UserId, value: TextMatch::Wildcard(pattern) });
    let not_admin = Query::Not(Box::new(admins));
    match query {
        None | Some(Query::All) => not_admin,
        Some(q) => Query::And(vec![q, not_admin]),
    }
}

/// What `add_admin` did.
#[derive(Debug)]
pub struct AddedAdmin {
    pub user_id: String,
    /// The password, when it was generated here (printed once; the store keeps a hash).
    pub generated_password: Option<String>,
    /// `false` when the administrator existed (its password and role were replaced).
    pub created: bool,
}

/// Creates an administrator, or gives an existing one a new password and role.
pub async fn add_admin(idp: &AppState, email: &str, password: Option<&str>, role: Role) -> Result<AddedAdmin> {
    let email = email.trim().to_lowercase();
    if !crate::accounts::signup::looks_like_email(&email) {
        return Err(Error::InvalidRequest(format!("not an email address: {email}")));
    }
    let connection = ensure_connection(idp).await?;
    let generated = password.is_none().then(random_secret);
    let password = password.or(generated.as_deref()).unwrap_or_default();
    if password.chars().count() < 8 {
        return Err(Error::WeakPassword("the password must have at least 8 characters".into()));
    }
    check_for(&connection, password).map_err(|why| Error::WeakPassword(why.into()))?;
    let hash = idp.hash_password(password).await?;
    let now = idp.now();
    let (user_id, created) = match idp.store.user_by_login(CONSOLE_CONNECTION, &email).await? {
        Some(mut existing) => {
            existing.password_hash = Some(hash);
            existing.user.updated_at = now;
            idp.store.change_password(&existing).await?;
            (existing.user.user_id, false)
        }
        None => {
            let user_id = format!("{ADMIN_ID_PREFIX}{}", random_hex(24));
            let identity = Identity {
                connection: CONSOLE_CONNECTION.into(),
                provider: "auth0".into(),
                user_id: user_id.trim_start_matches(ADMIN_ID_PREFIX).into(),
                is_social: false,
                profile_data: None,
            };
            let mut user = User::new(user_id.clone(), CONSOLE_CONNECTION.into(), identity, now);
            user.email = Some(email.clone());
            user.email_verified = true;
            idp.store.create_user(&StoredUser { user, password_hash: Some(hash) }).await?;
            (user_id, true)
        }
    };
    idp.store.put_console_admin(&user_id, role.as_str(), now).await?;
    Ok(AddedAdmin { user_id, generated_password: generated, created })
}

/// Whether there is any administrator yet (the first `up` creates one when not).
pub async fn any(idp: &AppState) -> Result<bool> {
    Ok(idp.store.console_admin_count().await? > 0)
}

/// The role of the administrator a verified access token speaks for: a user's token (not a
/// client grant's) issued to the console's application, whose subject is in the
/// administrators' table. `None` for every other token.
pub async fn role_of_token(idp: &AppState, claims: &Map<String, Value>) -> Result<Option<Role>> {
    let str_of = |k: &str| claims.get(k).and_then(Value::as_str);
    if str_of("gty").is_some() || str_of("azp").or(str_of("client_id")) != Some(CONSOLE_CLIENT_ID) {
        return Ok(None);
    }
    let Some(sub) = str_of("sub").filter(|s| s.starts_with(ADMIN_ID_PREFIX)) else { return Ok(None) };
    Ok(idp.store.console_admin_role(sub).await?.as_deref().and_then(Role::parse))
}

/// The Management API scopes of a verified token's administrator, if it is one's.
pub async fn scopes_of(idp: &AppState, claims: &Map<String, Value>) -> Result<Option<Vec<String>>> {
    Ok(role_of_token(idp, claims).await?.map(Role::scopes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_hold_no_current_user_scope_and_read_only_only_reads() {
        let full = Role::Full.scopes();
        assert!(full.iter().any(|s| s == "update:users") && full.iter().any(|s| s == "read:logs"));
        assert!(!full.iter().any(|s| s.contains("current_user")));
        let read = Role::ReadOnly.scopes();
        assert!(read.iter().all(|s| s.starts_with("read:")) && read.iter().any(|s| s == "read:clients"));
        assert_eq!(Role::parse("read-only"), Some(Role::ReadOnly));
        assert_eq!(Role::parse("admin"), None);
    }

    #[test]
    fn reserved_names_cover_the_client_the_connection_and_admins() {
        assert!(is_reserved(CONSOLE_CLIENT_ID) && is_reserved(CONSOLE_CONNECTION_ID) && is_reserved("console|ab"));
        assert!(!is_reserved("auth0|console") && !is_reserved("con_abc"));
    }
}
