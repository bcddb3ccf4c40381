//! Configuration exactly as the original reads it: `config.json` at
//! `<SERVICE_CONFIG_PATH>/<SERVICE_CONFIG_FILE_NAME>.json`, checked against the original's JSON
//! schema (closed objects, case-sensitive keys, numeric and boolean strings coerced) and the
//! start-up rules of spec 3.3, plus the environment variables of spec 3.5 with their defaults.
//!
//! The schema check is hand-written over `serde_json::Value` rather than done with a JSON-schema
//! crate: the schema is small and fixed, the error must name the offending key by its full path
//! (`clients.cms.scopes[2]`), and a generic validator would add a regex engine and a few hundred
//! kilobytes to a binary whose whole point is being small. Every violation is a [`ConfigError`]
//! naming the key.

use serde_json::{Map, Value};
use std::collections::BTreeMap;
use std::fmt;
use std::path::PathBuf;

/// A configuration problem; the process stops with it at start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid configuration: {key}: {message}")]
pub struct ConfigError {
    /// The offending environment variable or config.json key (a dotted path).
    pub key: String,
    pub message: String,
}

fn err(key: impl Into<String>, message: impl Into<String>) -> ConfigError {
    ConfigError { key: key.into(), message: message.into() }
}

/// Everything the service runs with.
#[derive(Debug, Clone)]
pub struct Config {
    pub env: Env,
    pub service: ServiceConfig,
    /// Warnings found while loading (logged at start, after logging is set up).
    pub warnings: Vec<String>,
}

impl Config {
    /// Reads the environment and the config file; the binary's entry point.
    pub fn from_env() -> Result<Config, ConfigError> {
        Self::load(|k| std::env::var(k).ok())
    }

    /// Like [`Config::from_env`], with the variables taken from `get`.
    pub fn load(get: impl Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        let env = Env::parse(&get)?;
        let path = env.config_file();
        let text = std::fs::read_to_string(&path)
            .map_err(|e| err("SERVICE_CONFIG_PATH", format!("cannot read {}: {e}", path.display())))?;
        let (service, mut warnings) = ServiceConfig::parse(&text)?;
        warnings.extend(env.warnings());
        Ok(Config { env, service, warnings })
    }
}

// ---------------------------------------------------------------------------------------------
// Environment (spec 3.5)

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 10,
    Debug = 20,
    Info = 30,
    Warn = 40,
    Error = 50,
    Fatal = 60,
    Panic = 70,
}

impl LogLevel {
    pub fn parse(s: &str) -> Option<LogLevel> {
        Some(match s.trim().to_ascii_lowercase().as_str() {
            "trace" => LogLevel::Trace,
            "debug" => LogLevel::Debug,
            "info" => LogLevel::Info,
            "warn" | "warning" => LogLevel::Warn,
            "error" => LogLevel::Error,
            "fatal" => LogLevel::Fatal,
            "panic" => LogLevel::Panic,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RedisMode {
    Normal,
    Sentinel,
}

#[derive(Clone, PartialEq, Eq)]
pub struct RedisSettings {
    pub mode: RedisMode,
    /// `host:port` pairs (sentinels in sentinel mode).
    pub hosts: Vec<(String, u16)>,
    pub master_name: Option<String>,
    pub username: Option<String>,
    pub password: Option<String>,
    pub tls: bool,
    pub tls_cacert: Option<PathBuf>,
}

impl fmt::Debug for RedisSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RedisSettings")
            .field("mode", &self.mode)
            .field("hosts", &self.hosts)
            .field("master_name", &self.master_name)
            .field("username", &self.username)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("tls", &self.tls)
            .field("tls_cacert", &self.tls_cacert)
            .finish()
    }
}

/// The MongoDB user sync (spec 4.6), on when all four of `MONGO_DB_URL`, `USERS_DATABASE_NAME`,
/// `USERS_COLLECTION_NAME` and `USERS_PROPERTIES_TO_SAVE` are set. Names are checked here, at
/// start, so a typo stops the service instead of failing every sync later.
#[derive(Clone, PartialEq, Eq)]
pub struct UserSyncSettings {
    /// `mongodb://` or `mongodb+srv://`; parsed by the driver at start (no connection made).
    pub url: String,
    pub database: String,
    pub collection: String,
    /// Property names of the `/userinfo` profile, trimmed, without duplicates, in the given order.
    pub properties: Vec<String>,
}

impl fmt::Debug for UserSyncSettings {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // The URL may carry a password.
        f.debug_struct("UserSyncSettings")
            .field("url", &"<redacted>")
            .field("database", &self.database)
            .field("collection", &self.collection)
            .field("properties", &self.properties)
            .finish()
    }
}

/// The field of a synced document holding the Auth0 user id (the profile's `sub`), its key.
pub const USER_ID_FIELD: &str = "userId";

/// The variables of the user sync, in the order the spec lists them.
pub const USER_SYNC_VARIABLES: [&str; 4] =
    ["MONGO_DB_URL", "USERS_DATABASE_NAME", "USERS_COLLECTION_NAME", "USERS_PROPERTIES_TO_SAVE"];

impl UserSyncSettings {
    /// `Ok(None)` when the sync is off; the second value names the variables that are missing
    /// when only some are set (a warning, as the original simply stays off).
    fn parse(
        var: &impl Fn(&str) -> Option<String>,
    ) -> Result<(Option<UserSyncSettings>, Vec<&'static str>), ConfigError> {
        // A tutorial spells it MONGODB_URL: accepted as an alias.
        let url = var("MONGO_DB_URL").or_else(|| var("MONGODB_URL"));
        let values = [url, var("USERS_DATABASE_NAME"), var("USERS_COLLECTION_NAME"), var("USERS_PROPERTIES_TO_SAVE")];
        let missing: Vec<&'static str> =
            USER_SYNC_VARIABLES.iter().zip(&values).filter(|(_, v)| v.is_none()).map(|(k, _)| *k).collect();
        if !missing.is_empty() {
            let partial = if missing.len() < USER_SYNC_VARIABLES.len() { missing } else { Vec::new() };
            return Ok((None, partial));
        }
        let [Some(url), Some(database), Some(collection), Some(properties)] = values else {
            return Ok((None, Vec::new()));
        };
        let url = url.trim().to_string();
        check_mongo_url(&url)?;
        let database = database.trim().to_string();
        check_database_name(&database)?;
        let collection = collection.trim().to_string();
        check_collection_name(&collection)?;
        let properties = property_list(&properties)?;
        Ok((Some(UserSyncSettings { url, database, collection, properties }), Vec::new()))
    }
}

/// The driver's own parser, so what starts is what the driver accepts; its message never
/// repeats the URL (which may hold a password).
fn check_mongo_url(url: &str) -> Result<(), ConfigError> {
    const KEY: &str = "MONGO_DB_URL";
    if !(url.starts_with("mongodb://") || url.starts_with("mongodb+srv://")) {
        return Err(err(KEY, "must start with mongodb:// or mongodb+srv://"));
    }
    mongodb::options::ConnectionString::parse(url)
        .map(|_| ())
        .map_err(|e| err(KEY, format!("is not a valid MongoDB connection string: {}", redact_mongo_error(&e, url))))
}

/// The driver's message about a connection string, with the string's password (if any) taken
/// out in case the driver quoted it.
fn redact_mongo_error(e: &mongodb::error::Error, url: &str) -> String {
    let mut text = e.kind.to_string();
    if let Some(password) = url::Url::parse(url).ok().and_then(|u| u.password().map(str::to_owned))
        && !password.is_empty()
    {
        text = text.replace(&password, "<redacted>");
    }
    text
}

/// MongoDB's rules for database names (no `/\. "$*<>:|?`, NUL, at most 63 bytes).
fn check_database_name(name: &str) -> Result<(), ConfigError> {
    const KEY: &str = "USERS_DATABASE_NAME";
    if let Some(c) = name.chars().find(|c| "/\\. \"$*<>:|?\0".contains(*c)) {
        return Err(err(KEY, format!("must not contain {c:?}")));
    }
    if name.len() > 63 {
        return Err(err(KEY, "must be at most 63 bytes long"));
    }
    Ok(())
}

/// MongoDB's rules for collection names (no `$` or NUL, not `system.`-prefixed).
fn check_collection_name(name: &str) -> Result<(), ConfigError> {
    const KEY: &str = "USERS_COLLECTION_NAME";
    if let Some(c) = name.chars().find(|c| *c == '$' || *c == '\0') {
        return Err(err(KEY, format!("must not contain {c:?}")));
    }
    if name.starts_with("system.") {
        return Err(err(KEY, "must not start with system. (reserved by MongoDB)"));
    }
    Ok(())
}

/// `USERS_PROPERTIES_TO_SAVE`: comma-separated, blanks ignored, duplicates kept once. A name
/// that cannot be a top-level field (`$…`, dotted, NUL) or that would overwrite the document's
/// key (`_id`, `userId`) is refused here rather than at every login.
fn property_list(text: &str) -> Result<Vec<String>, ConfigError> {
    const KEY: &str = "USERS_PROPERTIES_TO_SAVE";
    let mut out: Vec<String> = Vec::new();
    for name in text.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        if name.starts_with('$') || name.contains('.') || name.contains('\0') {
            return Err(err(KEY, format!("{name:?} cannot be a field name ($-prefixed, dotted or NUL)")));
        }
        if name == "_id" || name == USER_ID_FIELD {
            return Err(err(KEY, format!("{name:?} is the document's key and is always written")));
        }
        if !out.iter().any(|n| n == name) {
            out.push(name.to_string());
        }
    }
    if out.is_empty() {
        return Err(err(KEY, "lists no property"));
    }
    Ok(out)
}

#[derive(Debug, Clone)]
pub struct Env {
    pub log_level: LogLevel,
    pub http_port: u16,
    /// `""` or `/something` without a trailing slash.
    pub service_prefix: String,
    pub service_version: String,
    pub session_duration_seconds: u64,
    pub session_scope: String,
    /// `None` when `REDIS_HOSTS` is unset or empty: sessions live in memory.
    pub redis: Option<RedisSettings>,
    /// Lower-cased header name, when set.
    pub original_protocol_header: Option<String>,
    pub service_config_path: String,
    pub service_config_file_name: String,
    pub auth0_logout_client_id_enabled: bool,
    /// The MongoDB user sync, when all four of its variables are set.
    pub user_sync: Option<UserSyncSettings>,
    /// The user-sync variables missing when some, not all, are set (a start-up warning).
    pub user_sync_missing: Vec<&'static str>,
    pub delay_shutdown_seconds: u64,
    /// Gatehouse's own (not Mia's): how long a client may take to send a request head, how long
    /// a connection may stay unused, and how many one address may hold open.
    pub connection_limits: server::Limits,
}

/// Go's `strconv.ParseBool`, which the original's configlib uses.
fn parse_bool(s: &str) -> Option<bool> {
    match s.trim() {
        "1" | "t" | "T" | "true" | "TRUE" | "True" => Some(true),
        "0" | "f" | "F" | "false" | "FALSE" | "False" => Some(false),
        _ => None,
    }
}

impl Env {
    pub fn parse(get: &impl Fn(&str) -> Option<String>) -> Result<Env, ConfigError> {
        // Unset and empty are the same thing for every variable, as in Kubernetes manifests.
        let var = |k: &str| get(k).filter(|v| !v.trim().is_empty());
        let number = |k: &str, default: u64| -> Result<u64, ConfigError> {
            match var(k) {
                None => Ok(default),
                Some(v) => v.trim().parse().map_err(|_| err(k, format!("must be a non-negative integer, got {v:?}"))),
            }
        };
        let boolean = |k: &str| -> Result<bool, ConfigError> {
            match var(k) {
                None => Ok(false),
                Some(v) => parse_bool(&v).ok_or_else(|| err(k, format!("must be true or false, got {v:?}"))),
            }
        };
        let log_level = match var("LOG_LEVEL") {
            None => LogLevel::Info,
            Some(v) => LogLevel::parse(&v).ok_or_else(|| {
                err("LOG_LEVEL", format!("must be one of trace, debug, info, warn, error, fatal, panic; got {v:?}"))
            })?,
        };
        let http_port = number("HTTP_PORT", 8080)?;
        let http_port = u16::try_from(http_port).map_err(|_| err("HTTP_PORT", "must be at most 65535"))?;
        let service_prefix = match var("SERVICE_PREFIX") {
            None => String::new(),
            Some(p) => {
                let p = p.trim();
                if !p.starts_with('/') {
                    return Err(err("SERVICE_PREFIX", format!("must start with '/', got {p:?}")));
                }
                p.trim_end_matches('/').to_string()
            }
        };
        let session_duration_seconds = number("SESSION_DURATION_SECONDS", 86400)?;
        if session_duration_seconds == 0 {
            return Err(err("SESSION_DURATION_SECONDS", "must be greater than 0"));
        }
        let service_config_path =
            var("SERVICE_CONFIG_PATH").ok_or_else(|| err("SERVICE_CONFIG_PATH", "is required"))?;
        let service_config_file_name =
            var("SERVICE_CONFIG_FILE_NAME").ok_or_else(|| err("SERVICE_CONFIG_FILE_NAME", "is required"))?;
        let redis = match var("REDIS_HOSTS") {
            None => None,
            Some(hosts) => Some(Self::redis(&hosts, &var, &boolean)?),
        };
        let (user_sync, user_sync_missing) = UserSyncSettings::parse(&var)?;
        Ok(Env {
            log_level,
            http_port,
            service_prefix,
            service_version: var("SERVICE_VERSION").unwrap_or_default(),
            session_duration_seconds,
            session_scope: var("SESSION_SCOPE").unwrap_or_default(),
            redis,
            original_protocol_header: var("ORIGINAL_PROTOCOL_HEADER").map(|h| h.trim().to_ascii_lowercase()),
            service_config_path,
            service_config_file_name,
            auth0_logout_client_id_enabled: boolean("AUTH0_LOGOUT_CLIENT_ID_ENABLED")?,
            user_sync,
            user_sync_missing,
            delay_shutdown_seconds: number("DELAY_SHUTDOWN_SECONDS", 10)?,
            connection_limits: Self::connection_limits(&number)?,
        })
    }

    fn connection_limits(
        number: &impl Fn(&str, u64) -> Result<u64, ConfigError>,
    ) -> Result<server::Limits, ConfigError> {
        let defaults = server::Limits::default();
        let seconds = |k: &str, default: std::time::Duration| -> Result<std::time::Duration, ConfigError> {
            match number(k, default.as_secs())? {
                0 => Err(err(k, "must be greater than 0")),
                n => Ok(std::time::Duration::from_secs(n)),
            }
        };
        let max = number("MAX_CONNECTIONS_PER_IP", defaults.max_per_address as u64)?;
        Ok(server::Limits {
            header_timeout: seconds("HEADER_TIMEOUT_SECONDS", defaults.header_timeout)?,
            idle_timeout: seconds("IDLE_TIMEOUT_SECONDS", defaults.idle_timeout)?,
            max_per_address: usize::try_from(max).map_err(|_| err("MAX_CONNECTIONS_PER_IP", "is too large"))?,
            max_header_bytes: crate::MAX_HEADER_BYTES,
        })
    }

    fn redis(
        hosts: &str,
        var: &impl Fn(&str) -> Option<String>,
        boolean: &impl Fn(&str) -> Result<bool, ConfigError>,
    ) -> Result<RedisSettings, ConfigError> {
        let mode = match var("REDIS_MODE").map(|m| m.trim().to_ascii_lowercase()) {
            None => RedisMode::Normal,
            Some(m) if m == "normal" => RedisMode::Normal,
            Some(m) if m == "sentinel" => RedisMode::Sentinel,
            Some(m) => return Err(err("REDIS_MODE", format!("must be normal or sentinel, got {m:?}"))),
        };
        let mut parsed = Vec::new();
        for h in hosts.split(',').map(str::trim).filter(|h| !h.is_empty()) {
            parsed.push(parse_host(h).map_err(|m| err("REDIS_HOSTS", m))?);
        }
        if parsed.is_empty() {
            return Err(err("REDIS_HOSTS", "lists no host"));
        }
        let master_name = var("REDIS_MASTER_NAME");
        if mode == RedisMode::Sentinel && master_name.is_none() {
            return Err(err("REDIS_MASTER_NAME", "is required when REDIS_MODE is sentinel"));
        }
        let tls = boolean("REDIS_TLS")?;
        let tls_cacert = var("REDIS_TLS_CACERT").map(PathBuf::from);
        if let (true, Some(ca)) = (tls, &tls_cacert)
            && !ca.is_file()
        {
            return Err(err("REDIS_TLS_CACERT", format!("{} is not a readable file", ca.display())));
        }
        Ok(RedisSettings {
            mode,
            hosts: parsed,
            master_name,
            username: var("REDIS_USERNAME"),
            password: var("REDIS_PASSWORD"),
            tls,
            tls_cacert,
        })
    }

    pub fn config_file(&self) -> PathBuf {
        PathBuf::from(&self.service_config_path).join(format!("{}.json", self.service_config_file_name))
    }

    fn warnings(&self) -> Vec<String> {
        let mut w = Vec::new();
        if self.original_protocol_header.is_none() {
            w.push(
                "ORIGINAL_PROTOCOL_HEADER is not set: the original protocol is read from X-Forwarded-Proto, else https"
                    .to_string(),
            );
        }
        if let Some(r) = &self.redis
            && r.mode == RedisMode::Sentinel
            && (r.username.is_some() || r.password.is_some())
        {
            w.push("REDIS_USERNAME / REDIS_PASSWORD apply to normal mode only and are ignored in sentinel mode".into());
        }
        if !self.user_sync_missing.is_empty() {
            w.push(format!(
                "MongoDB user sync is off: {} not set (it needs all of {})",
                self.user_sync_missing.join(", "),
                USER_SYNC_VARIABLES.join(", ")
            ));
        }
        w
    }
}

/// `host`, `host:port` or `[v6]:port`; the port defaults to 6379.
fn parse_host(h: &str) -> Result<(String, u16), String> {
    let (host, port) = if let Some(rest) = h.strip_prefix('[') {
        let (host, after) = rest.split_once(']').ok_or_else(|| format!("bad host {h:?}"))?;
        (host.to_string(), after.strip_prefix(':'))
    } else {
        match h.rsplit_once(':') {
            Some((host, port)) => (host.to_string(), Some(port)),
            None => (h.to_string(), None),
        }
    };
    if host.is_empty() {
        return Err(format!("bad host {h:?}"));
    }
    let port = match port {
        None => 6379,
        Some(p) => p.parse().map_err(|_| format!("bad port in {h:?}"))?,
    };
    Ok((host, port))
}

// ---------------------------------------------------------------------------------------------
// config.json (spec 3.2)

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SameSite {
    Lax,
    None,
    Strict,
}

impl SameSite {
    pub fn as_str(self) -> &'static str {
        match self {
            SameSite::Lax => "Lax",
            SameSite::None => "None",
            SameSite::Strict => "Strict",
        }
    }
}

/// ID-token signature algorithms the verifier knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum SigningAlg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    /// HMAC with the application's client secret, as Auth0 signs ID tokens for applications
    /// set to HS256.
    HS256,
}

impl SigningAlg {
    pub fn parse(s: &str) -> Option<SigningAlg> {
        Some(match s {
            "RS256" => SigningAlg::RS256,
            "RS384" => SigningAlg::RS384,
            "RS512" => SigningAlg::RS512,
            "PS256" => SigningAlg::PS256,
            "PS384" => SigningAlg::PS384,
            "PS512" => SigningAlg::PS512,
            "ES256" => SigningAlg::ES256,
            "ES384" => SigningAlg::ES384,
            "HS256" => SigningAlg::HS256,
            _ => return None,
        })
    }
}

#[derive(Debug, Clone)]
pub struct ClientType {
    pub name: String,
    /// Without a trailing slash.
    pub auth0_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub redirect_url: String,
    /// As configured (may contain `website`).
    pub scopes: Vec<String>,
    pub audience: Option<String>,
    pub supported_signing_algs: Vec<SigningAlg>,
    pub supported_connections: Vec<String>,
    pub default_connection: Option<String>,
    pub same_site: Option<SameSite>,
    pub authorize_state_required: bool,
}

impl ClientType {
    /// Cookie (`sid`) sessions when the pseudo-scope `website` is configured.
    pub fn website(&self) -> bool {
        self.scopes.iter().any(|s| s == "website")
    }

    /// The scope sent to Auth0: `openid` first, then the configured scopes once each, without
    /// the pseudo-scope `website`.
    pub fn auth0_scope(&self) -> String {
        let mut out: Vec<&str> = vec!["openid"];
        for s in &self.scopes {
            let s = s.as_str();
            if !s.is_empty() && s != "website" && !out.contains(&s) {
                out.push(s);
            }
        }
        out.join(" ")
    }
}

/// The three closed shapes of `managementClient`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ManagementShape {
    Base,
    Deprecated { supported_connections: Vec<String>, default_create_user_connection: Option<String> },
    Current { default_management_connection_name: Option<String>, supported_connections_map: BTreeMap<String, String> },
}

#[derive(Debug, Clone)]
pub struct ManagementClient {
    pub auth0_url: String,
    pub client_id: String,
    pub client_secret: String,
    pub shape: ManagementShape,
}

impl ManagementClient {
    /// Connection names user lists and creations are limited to (empty: no limit).
    pub fn supported_connections(&self) -> Vec<String> {
        match &self.shape {
            ManagementShape::Base => Vec::new(),
            ManagementShape::Deprecated { supported_connections, .. } => supported_connections.clone(),
            ManagementShape::Current { supported_connections_map, .. } => {
                supported_connections_map.keys().cloned().collect()
            }
        }
    }

    /// The connection a new user goes to when the request names none.
    pub fn default_connection(&self) -> Option<&str> {
        match &self.shape {
            ManagementShape::Base => None,
            ManagementShape::Deprecated { default_create_user_connection, .. } => {
                default_create_user_connection.as_deref()
            }
            ManagementShape::Current { default_management_connection_name, .. } => {
                default_management_connection_name.as_deref()
            }
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServiceConfig {
    /// In file order.
    pub clients: Vec<ClientType>,
    pub default_client: Option<String>,
    pub management_client: ManagementClient,
    pub custom_claims_namespaces: Vec<String>,
    pub auth0_tenant_url: Option<String>,
}

impl ServiceConfig {
    pub fn client(&self, name: &str) -> Option<&ClientType> {
        self.clients.iter().find(|c| c.name == name)
    }

    /// Parses and validates a config.json document; returns the config and any warnings.
    pub fn parse(text: &str) -> Result<(ServiceConfig, Vec<String>), ConfigError> {
        let doc: Value = serde_json::from_str(text).map_err(|e| {
            err("config.json", format!("is not valid JSON: {e} (line {}, column {})", e.line(), e.column()))
        })?;
        let mut warnings = Vec::new();
        let root = object(&doc, "config.json")?;
        closed(
            root,
            "",
            &["clients", "defaultClient", "managementClient", "customClaimsNamespaces", "auth0TenantUrl"],
        )?;

        let clients_v = root.get("clients").ok_or_else(|| err("clients", "is required"))?;
        let mut clients = Vec::new();
        for (name, v) in object(clients_v, "clients")? {
            clients.push(client_type(name, v, &format!("clients.{name}"))?);
        }
        let default_client = opt_string(root, "defaultClient", "defaultClient")?.filter(|s| !s.is_empty());
        let mc = root.get("managementClient").ok_or_else(|| err("managementClient", "is required"))?;
        let management_client = management_client(mc, &mut warnings)?;
        let custom_claims_namespaces =
            opt_string_array(root, "customClaimsNamespaces", "customClaimsNamespaces")?.unwrap_or_default();
        let auth0_tenant_url = match opt_string(root, "auth0TenantUrl", "auth0TenantUrl")?.filter(|s| !s.is_empty()) {
            Some(u) => Some(http_url(&u, "auth0TenantUrl")?),
            None => None,
        };

        // Start-up rules (spec 3.3).
        if let Some(d) = &default_client
            && !clients.iter().any(|c| &c.name == d)
        {
            return Err(err("defaultClient", format!("names {d:?}, which is not a key of clients")));
        }
        for c in &clients {
            if let Some(d) = &c.default_connection
                && !c.supported_connections.contains(d)
            {
                return Err(err(
                    format!("clients.{}.defaultConnection", c.name),
                    format!("{d:?} is not one of clients.{}.supportedConnections", c.name),
                ));
            }
        }
        match &management_client.shape {
            ManagementShape::Deprecated { supported_connections, default_create_user_connection: Some(d) }
                if !supported_connections.contains(d) =>
            {
                return Err(err(
                    "managementClient.defaultCreateUserConnection",
                    format!("{d:?} is not one of managementClient.supportedConnections"),
                ));
            }
            ManagementShape::Current { default_management_connection_name: Some(d), supported_connections_map }
                if !supported_connections_map.contains_key(d) =>
            {
                return Err(err(
                    "managementClient.defaultManagementConnectionName",
                    format!("{d:?} is not a key of managementClient.supportedConnectionsMap"),
                ));
            }
            _ => {}
        }
        Ok((
            ServiceConfig { clients, default_client, management_client, custom_claims_namespaces, auth0_tenant_url },
            warnings,
        ))
    }
}

fn client_type(name: &str, v: &Value, path: &str) -> Result<ClientType, ConfigError> {
    let m = object(v, path)?;
    closed(
        m,
        path,
        &[
            "auth0Url",
            "clientId",
            "clientSecret",
            "redirectUrl",
            "scopes",
            "audience",
            "supportedSigningAlgs",
            "supportedConnections",
            "defaultConnection",
            "sameSite",
            "authorizeStateRequired",
        ],
    )?;
    let key = |k: &str| format!("{path}.{k}");
    let auth0_url = http_url(&req_string(m, "auth0Url", &key("auth0Url"))?, &key("auth0Url"))?;
    let client_id = req_nonempty(m, "clientId", &key("clientId"))?;
    let client_secret = req_nonempty(m, "clientSecret", &key("clientSecret"))?;
    let redirect_url = req_nonempty(m, "redirectUrl", &key("redirectUrl"))?;
    if !redirect_url.starts_with('/') {
        http_url(&redirect_url, &key("redirectUrl"))?;
    }
    let scopes = opt_string_array(m, "scopes", &key("scopes"))?.ok_or_else(|| err(key("scopes"), "is required"))?;
    let audience = opt_string(m, "audience", &key("audience"))?.filter(|s| !s.is_empty());
    let algs = opt_string_array(m, "supportedSigningAlgs", &key("supportedSigningAlgs"))?.unwrap_or_default();
    let mut supported_signing_algs = Vec::new();
    for (i, a) in algs.iter().enumerate() {
        let alg = SigningAlg::parse(a).ok_or_else(|| {
            err(
                format!("{path}.supportedSigningAlgs[{i}]"),
                format!("unsupported algorithm {a:?} (RS256, RS384, RS512, PS256, PS384, PS512, ES256, ES384, HS256)"),
            )
        })?;
        supported_signing_algs.push(alg);
    }
    if supported_signing_algs.is_empty() {
        supported_signing_algs.push(SigningAlg::RS256);
    }
    let supported_connections: Vec<String> = opt_string_array(m, "supportedConnections", &key("supportedConnections"))?
        .unwrap_or_default()
        .into_iter()
        .filter(|s| !s.is_empty())
        .collect();
    let default_connection = opt_string(m, "defaultConnection", &key("defaultConnection"))?.filter(|s| !s.is_empty());
    let same_site = match opt_string(m, "sameSite", &key("sameSite"))? {
        None => None,
        Some(s) => Some(match s.as_str() {
            "Lax" => SameSite::Lax,
            "None" => SameSite::None,
            "Strict" => SameSite::Strict,
            _ => return Err(err(key("sameSite"), format!("must be one of Lax, None, Strict; got {s:?}"))),
        }),
    };
    let authorize_state_required =
        opt_bool(m, "authorizeStateRequired", &key("authorizeStateRequired"))?.unwrap_or(false);
    Ok(ClientType {
        name: name.to_string(),
        auth0_url,
        client_id,
        client_secret,
        redirect_url,
        scopes,
        audience,
        supported_signing_algs,
        supported_connections,
        default_connection,
        same_site,
        authorize_state_required,
    })
}

fn management_client(v: &Value, warnings: &mut Vec<String>) -> Result<ManagementClient, ConfigError> {
    const PATH: &str = "managementClient";
    let m = object(v, PATH)?;
    const BASE: [&str; 3] = ["auth0Url", "clientId", "clientSecret"];
    const DEPRECATED: [&str; 2] = ["supportedConnections", "defaultCreateUserConnection"];
    const CURRENT: [&str; 2] = ["defaultManagementConnectionName", "supportedConnectionsMap"];
    for k in m.keys() {
        if k == "authorizeStateRequired" {
            // Doc examples put it here; the closed schema forbids it. Tolerated (spec 3.3, C3).
            warnings.push(
                "managementClient.authorizeStateRequired is ignored: set authorizeStateRequired on each client".into(),
            );
            continue;
        }
        if !BASE.contains(&k.as_str()) && !DEPRECATED.contains(&k.as_str()) && !CURRENT.contains(&k.as_str()) {
            return Err(err(format!("{PATH}.{k}"), "is not an allowed key"));
        }
    }
    let has_deprecated = DEPRECATED.iter().find(|k| m.contains_key(**k));
    let has_current = CURRENT.iter().find(|k| m.contains_key(**k));
    if let (Some(d), Some(c)) = (has_deprecated, has_current) {
        return Err(err(
            format!("{PATH}.{c}"),
            format!("cannot be combined with the deprecated {PATH}.{d}: use one management client shape"),
        ));
    }
    let auth0_url = http_url(&req_string(m, "auth0Url", "managementClient.auth0Url")?, "managementClient.auth0Url")?;
    let client_id = req_nonempty(m, "clientId", "managementClient.clientId")?;
    let client_secret = req_nonempty(m, "clientSecret", "managementClient.clientSecret")?;
    let shape = if has_deprecated.is_some() {
        ManagementShape::Deprecated {
            supported_connections: opt_string_array(
                m,
                "supportedConnections",
                "managementClient.supportedConnections",
            )?
            .unwrap_or_default()
            .into_iter()
            .filter(|s| !s.is_empty())
            .collect(),
            default_create_user_connection: opt_string(
                m,
                "defaultCreateUserConnection",
                "managementClient.defaultCreateUserConnection",
            )?
            .filter(|s| !s.is_empty()),
        }
    } else if has_current.is_some() {
        let mut map = BTreeMap::new();
        if let Some(v) = m.get("supportedConnectionsMap") {
            let path = "managementClient.supportedConnectionsMap";
            for (name, entry) in object(v, path)? {
                let p = format!("{path}.{name}");
                let e = object(entry, &p)?;
                closed(e, &p, &["connectionId"])?;
                map.insert(name.clone(), req_nonempty(e, "connectionId", &format!("{p}.connectionId"))?);
            }
        }
        ManagementShape::Current {
            default_management_connection_name: opt_string(
                m,
                "defaultManagementConnectionName",
                "managementClient.defaultManagementConnectionName",
            )?
            .filter(|s| !s.is_empty()),
            supported_connections_map: map,
        }
    } else {
        ManagementShape::Base
    };
    Ok(ManagementClient { auth0_url, client_id, client_secret, shape })
}

// ---------------------------------------------------------------------------------------------
// Schema helpers: each names the key it checks.

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

fn object<'a>(v: &'a Value, path: &str) -> Result<&'a Map<String, Value>, ConfigError> {
    v.as_object().ok_or_else(|| err(path, format!("must be an object, found {}", type_name(v))))
}

/// `additionalProperties: false`.
fn closed(m: &Map<String, Value>, path: &str, allowed: &[&str]) -> Result<(), ConfigError> {
    for k in m.keys() {
        if !allowed.contains(&k.as_str()) {
            let key = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
            return Err(err(key, "is not an allowed key"));
        }
    }
    Ok(())
}

fn req_string(m: &Map<String, Value>, k: &str, path: &str) -> Result<String, ConfigError> {
    opt_string(m, k, path)?.ok_or_else(|| err(path, "is required"))
}

fn req_nonempty(m: &Map<String, Value>, k: &str, path: &str) -> Result<String, ConfigError> {
    let s = req_string(m, k, path)?;
    if s.trim().is_empty() {
        return Err(err(path, "must not be empty"));
    }
    Ok(s)
}

fn opt_string(m: &Map<String, Value>, k: &str, path: &str) -> Result<Option<String>, ConfigError> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(v) => Err(err(path, format!("must be a string, found {}", type_name(v)))),
    }
}

/// Booleans, with `"true"`/`"false"` strings coerced as the original's decoder does.
fn opt_bool(m: &Map<String, Value>, k: &str, path: &str) -> Result<Option<bool>, ConfigError> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::Bool(b)) => Ok(Some(*b)),
        Some(Value::String(s)) => {
            parse_bool(s).map(Some).ok_or_else(|| err(path, format!("must be a boolean, found the string {s:?}")))
        }
        Some(v) => Err(err(path, format!("must be a boolean, found {}", type_name(v)))),
    }
}

fn opt_string_array(m: &Map<String, Value>, k: &str, path: &str) -> Result<Option<Vec<String>>, ConfigError> {
    match m.get(k) {
        None => Ok(None),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, v)| match v {
                Value::String(s) => Ok(s.clone()),
                other => Err(err(format!("{path}[{i}]"), format!("must be a string, found {}", type_name(other)))),
            })
            .collect::<Result<Vec<_>, _>>()
            .map(Some),
        Some(v) => Err(err(path, format!("must be an array of strings, found {}", type_name(v)))),
    }
}

/// An absolute http(s) URL, returned without its trailing slashes.
fn http_url(s: &str, path: &str) -> Result<String, ConfigError> {
    let s = s.trim();
    let u = url::Url::parse(s).map_err(|e| err(path, format!("must be an absolute URL ({e}), got {s:?}")))?;
    if !matches!(u.scheme(), "http" | "https") || u.host_str().is_none() {
        return Err(err(path, format!("must be an http(s) URL, got {s:?}")));
    }
    Ok(s.trim_end_matches('/').to_string())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn base() -> Value {
        json!({
            "clients": {"cms": {
                "auth0Url": "https://tenant.eu.auth0.com/",
                "clientId": "id", "clientSecret": "secret",
                "redirectUrl": "https://cms.example.test/web-login/callback",
                "scopes": ["offline_access", "profile", "email", "website"],
                "audience": "https://cms.example.test/",
                "supportedConnections": [], "defaultConnection": ""
            }},
            "defaultClient": "",
            "managementClient": {
                "auth0Url": "https://tenant.eu.auth0.com", "clientId": "m", "clientSecret": "s",
                "supportedConnectionsMap": {"foo": {"connectionId": "bar"}},
                "defaultManagementConnectionName": "foo"
            },
            "customClaimsNamespaces": ["https://mia-platform.eu/app_metadata", "https://mia-platform.eu/user_metadata"]
        })
    }

    fn parse(v: &Value) -> Result<ServiceConfig, ConfigError> {
        ServiceConfig::parse(&v.to_string()).map(|(c, _)| c)
    }

    #[test]
    fn marketplace_default_starts() {
        let c = parse(&base()).unwrap();
        let cms = c.client("cms").unwrap();
        assert_eq!(cms.auth0_url, "https://tenant.eu.auth0.com");
        assert!(cms.website());
        assert_eq!(cms.auth0_scope(), "openid offline_access profile email");
        assert_eq!(cms.supported_signing_algs, vec![SigningAlg::RS256]);
        assert_eq!(c.default_client, None);
        assert_eq!(c.management_client.default_connection(), Some("foo"));
    }

    type Change = Box<dyn Fn(&mut Value)>;

    #[test]
    fn each_rule_names_its_key() {
        let cases: Vec<(Change, &str)> = vec![
            (Box::new(|v| v["extra"] = json!(1)), "extra"),
            (Box::new(|v| v["clients"]["cms"]["ClientId"] = json!("x")), "clients.cms.ClientId"),
            (Box::new(|v| v["defaultClient"] = json!("nope")), "defaultClient"),
            (Box::new(|v| v["clients"]["cms"]["defaultConnection"] = json!("db")), "clients.cms.defaultConnection"),
            (Box::new(|v| v["clients"]["cms"]["scopes"] = json!("email")), "clients.cms.scopes"),
            (Box::new(|v| v["clients"]["cms"]["scopes"] = json!(["a", 3])), "clients.cms.scopes[1]"),
            (Box::new(|v| v["clients"]["cms"]["sameSite"] = json!("lax")), "clients.cms.sameSite"),
            (
                Box::new(|v| v["clients"]["cms"]["supportedSigningAlgs"] = json!(["none"])),
                "clients.cms.supportedSigningAlgs[0]",
            ),
            (Box::new(|v| v["clients"]["cms"]["auth0Url"] = json!("tenant")), "clients.cms.auth0Url"),
            (
                Box::new(|v| v["clients"]["cms"].as_object_mut().unwrap().remove("clientSecret").map(|_| ()).unwrap()),
                "clients.cms.clientSecret",
            ),
            (
                Box::new(|v| v.as_object_mut().unwrap().remove("managementClient").map(|_| ()).unwrap()),
                "managementClient",
            ),
            (
                Box::new(|v| v["managementClient"]["defaultManagementConnectionName"] = json!("x")),
                "managementClient.defaultManagementConnectionName",
            ),
            (
                Box::new(|v| v["managementClient"]["supportedConnections"] = json!(["foo"])),
                "managementClient.defaultManagementConnectionName",
            ),
            (
                Box::new(|v| v["managementClient"]["supportedConnectionsMap"]["foo"] = json!({})),
                "managementClient.supportedConnectionsMap.foo.connectionId",
            ),
            (Box::new(|v| v["customClaimsNamespaces"] = json!([1])), "customClaimsNamespaces[0]"),
        ];
        for (change, key) in cases {
            let mut v = base();
            change(&mut v);
            let e = parse(&v).expect_err(key);
            assert_eq!(e.key, key, "{e}");
        }
    }

    #[test]
    fn deprecated_shape_rule() {
        let mut v = base();
        v["managementClient"] = json!({"auth0Url": "https://t", "clientId": "a", "clientSecret": "b",
            "supportedConnections": ["db"], "defaultCreateUserConnection": "other"});
        assert_eq!(parse(&v).unwrap_err().key, "managementClient.defaultCreateUserConnection");
        v["managementClient"]["defaultCreateUserConnection"] = json!("db");
        assert_eq!(parse(&v).unwrap().management_client.default_connection(), Some("db"));
    }

    #[test]
    fn coercion_and_tolerated_key() {
        let mut v = base();
        v["clients"]["cms"]["authorizeStateRequired"] = json!("true");
        v["managementClient"]["authorizeStateRequired"] = json!(true);
        let (c, warnings) = ServiceConfig::parse(&v.to_string()).unwrap();
        assert!(c.client("cms").unwrap().authorize_state_required);
        assert_eq!(warnings.len(), 1);
    }

    #[test]
    fn env_defaults_and_errors() {
        let vars = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        let e =
            Env::parse(&vars(&[("SERVICE_CONFIG_PATH", "/configs"), ("SERVICE_CONFIG_FILE_NAME", "config")])).unwrap();
        assert_eq!(e.http_port, 8080);
        assert_eq!(e.session_duration_seconds, 86400);
        assert_eq!(e.delay_shutdown_seconds, 10);
        assert_eq!(e.connection_limits, server::Limits::default());
        assert_eq!(e.log_level, LogLevel::Info);
        assert!(e.redis.is_none());
        assert_eq!(e.config_file(), PathBuf::from("/configs/config.json"));
        let e = Env::parse(&vars(&[
            ("SERVICE_CONFIG_PATH", "/c"),
            ("SERVICE_CONFIG_FILE_NAME", "c"),
            ("REDIS_HOSTS", "a, b:6380 ,[::1]:7000"),
        ]))
        .unwrap();
        let r = e.redis.unwrap();
        assert_eq!(r.hosts, vec![("a".into(), 6379), ("b".into(), 6380), ("::1".into(), 7000)]);
        assert_eq!(Env::parse(&vars(&[("SERVICE_CONFIG_PATH", "/c")])).unwrap_err().key, "SERVICE_CONFIG_FILE_NAME");
        for (bad, key) in [
            (&[("HTTP_PORT", "x")][..], "HTTP_PORT"),
            (&[("LOG_LEVEL", "loud")][..], "LOG_LEVEL"),
            (&[("REDIS_HOSTS", "r"), ("REDIS_MODE", "cluster")][..], "REDIS_MODE"),
            (&[("REDIS_HOSTS", "r"), ("REDIS_MODE", "sentinel")][..], "REDIS_MASTER_NAME"),
            (&[("SERVICE_PREFIX", "api")][..], "SERVICE_PREFIX"),
            (&[("HEADER_TIMEOUT_SECONDS", "0")][..], "HEADER_TIMEOUT_SECONDS"),
            (&[("IDLE_TIMEOUT_SECONDS", "soon")][..], "IDLE_TIMEOUT_SECONDS"),
            (&[("MAX_CONNECTIONS_PER_IP", "-1")][..], "MAX_CONNECTIONS_PER_IP"),
        ] {
            let get = |k: &str| {
                bad.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string()).or_else(|| match k {
                    "SERVICE_CONFIG_PATH" | "SERVICE_CONFIG_FILE_NAME" => Some("x".into()),
                    _ => None,
                })
            };
            assert_eq!(Env::parse(&get).unwrap_err().key, key);
        }
    }

    #[test]
    fn user_sync_variables() {
        let parse = |pairs: &[(&str, &str)]| {
            let pairs: Vec<(String, String)> = pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
            Env::parse(&move |k: &str| {
                pairs.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone()).or_else(|| match k {
                    "SERVICE_CONFIG_PATH" | "SERVICE_CONFIG_FILE_NAME" => Some("x".into()),
                    _ => None,
                })
            })
        };
        let all = |url: &str, db: &str, coll: &str, props: &str| {
            parse(&[
                ("MONGO_DB_URL", url),
                ("USERS_DATABASE_NAME", db),
                ("USERS_COLLECTION_NAME", coll),
                ("USERS_PROPERTIES_TO_SAVE", props),
            ])
        };
        // Off unless all four are set; a partial set is a warning naming what is missing.
        let e = parse(&[]).unwrap();
        assert!(e.user_sync.is_none() && !e.warnings().iter().any(|w| w.contains("MongoDB")));
        let e = parse(&[("MONGO_DB_URL", "mongodb://m/"), ("USERS_DATABASE_NAME", "d")]).unwrap();
        assert!(e.user_sync.is_none());
        assert!(e.warnings().iter().any(|w| w.contains("USERS_COLLECTION_NAME, USERS_PROPERTIES_TO_SAVE not set")));
        // On, with the list trimmed and de-duplicated; the tutorial's MONGODB_URL is an alias.
        let e =
            all("mongodb://u:p@m1:27017,m2/?replicaSet=rs", "crud", "users", " email, name,,email ,groups").unwrap();
        let s = e.user_sync.unwrap();
        assert_eq!((s.database.as_str(), s.collection.as_str()), ("crud", "users"));
        assert_eq!(s.properties, ["email", "name", "groups"]);
        assert!(!format!("{s:?}").contains("u:p"), "the URL is redacted");
        let e = parse(&[
            ("MONGODB_URL", "mongodb+srv://cluster0.example.net/"),
            ("USERS_DATABASE_NAME", "d"),
            ("USERS_COLLECTION_NAME", "c"),
            ("USERS_PROPERTIES_TO_SAVE", "email"),
        ])
        .unwrap();
        assert!(e.user_sync.is_some());
        // Malformed values stop the start, naming the variable and never echoing a password.
        for (url, db, coll, props, key) in [
            ("http://m/", "d", "c", "email", "MONGO_DB_URL"),
            ("mongodb://", "d", "c", "email", "MONGO_DB_URL"),
            ("mongodb://u:s3cret@m:notaport/", "d", "c", "email", "MONGO_DB_URL"),
            ("mongodb://m/?w=banana&journal=maybe", "d", "c", "email", "MONGO_DB_URL"),
            ("mongodb://m/", "my.db", "c", "email", "USERS_DATABASE_NAME"),
            ("mongodb://m/", "d", "system.users", "email", "USERS_COLLECTION_NAME"),
            ("mongodb://m/", "d", "c$", "email", "USERS_COLLECTION_NAME"),
            ("mongodb://m/", "d", "c", " , ", "USERS_PROPERTIES_TO_SAVE"),
            ("mongodb://m/", "d", "c", "email,$where", "USERS_PROPERTIES_TO_SAVE"),
            ("mongodb://m/", "d", "c", "app_metadata.groups", "USERS_PROPERTIES_TO_SAVE"),
            ("mongodb://m/", "d", "c", "email,_id", "USERS_PROPERTIES_TO_SAVE"),
            ("mongodb://m/", "d", "c", "userId", "USERS_PROPERTIES_TO_SAVE"),
        ] {
            let e = all(url, db, coll, props).unwrap_err();
            assert_eq!(e.key, key, "{url} {db} {coll} {props}: {e}");
            assert!(!e.to_string().contains("s3cret"), "{e}");
        }
    }
}
