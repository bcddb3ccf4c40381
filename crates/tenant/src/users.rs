//! Users in Auth0's bulk user-import format: a JSON array of user objects (`email`,
//! `email_verified`, `user_id`, `username`, names, `picture`, `blocked`, `app_metadata`,
//! `user_metadata`, `phone_number`, `password_hash` (bcrypt), `custom_password_hash`,
//! `mfa_factors`). Gatehouse extension: a plain `password`, which the idp hashes on import.
//!
//! As with an Auth0 import job, a broken user does not sink the file: it is reported in
//! [`UserImport::errors`] (index, code, message, path — Auth0's job-error shape) and the good
//! users are kept. Only a file that is not a JSON array at all is an `Err`. Codes follow the
//! JSON-schema validator codes Auth0 reports (`INVALID_TYPE`, `INVALID_FORMAT`,
//! `ENUM_MISMATCH`, `OBJECT_MISSING_REQUIRED_PROPERTY`, `DUPLICATED_USER`), plus
//! `CONFLICTING_PASSWORDS` when more than one password field is given.
//!
//! Unknown keys are kept in [`ImportUser::extra`] rather than rejected (Auth0 rejects them) so
//! nothing in the file is lost; the idp decides what to do with them.

use std::collections::HashSet;
use std::path::Path;

use serde_json::{Map, Value};
use store::{Identity, Millis, User};

use crate::error::{Error, Result};
use crate::keywords::Keywords;

/// Algorithms Auth0 accepts in `custom_password_hash.algorithm`.
pub const HASH_ALGORITHMS: [&str; 11] =
    ["argon2", "bcrypt", "hmac", "ldap", "md4", "md5", "sha1", "sha256", "sha512", "pbkdf2", "scrypt"];
const HASH_ENCODINGS: [&str; 3] = ["base64", "hex", "utf8"];
const HMAC_DIGESTS: [&str; 9] =
    ["md4", "md5", "ripemd160", "sha1", "sha224", "sha256", "sha384", "sha512", "whirlpool"];
const SALT_POSITIONS: [&str; 2] = ["prefix", "suffix"];
const PASSWORD_ENCODINGS: [&str; 6] = ["ascii", "utf8", "utf16le", "ucs2", "latin1", "binary"];
/// Auth0 accepts at most this many `mfa_factors` per user.
const MAX_MFA_FACTORS: usize = 10;

/// The outcome of reading an import file.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserImport {
    pub rows: Vec<ImportUser>,
    pub errors: Vec<RowError>,
}

/// Why one user of the file was not accepted.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RowError {
    /// 0-based position in the array.
    pub index: usize,
    pub code: String,
    pub message: String,
    /// The field concerned (`email`, `custom_password_hash.algorithm`), empty for the row.
    pub path: String,
    /// The row's email when it had a readable one, to help find it.
    pub email: Option<String>,
}

impl std::fmt::Display for RowError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "user #{}", self.index)?;
        if let Some(email) = &self.email {
            write!(f, " ({email})")?;
        }
        if !self.path.is_empty() {
            write!(f, " {}", self.path)?;
        }
        write!(f, ": {} {}", self.code, self.message)
    }
}

/// One accepted user. The idp adds what the file does not carry (`user_id` when absent,
/// `connection`, timestamps) — see [`ImportUser::to_user`].
#[derive(Debug, Clone, PartialEq)]
pub struct ImportUser {
    /// 0-based position in the file, for reporting later failures (e.g. a conflict on insert).
    pub index: usize,
    pub email: String,
    pub email_verified: bool,
    /// As written; Auth0 prefixes it with the strategy (`auth0|`).
    pub user_id: Option<String>,
    pub username: Option<String>,
    pub given_name: Option<String>,
    pub family_name: Option<String>,
    pub name: Option<String>,
    pub nickname: Option<String>,
    pub picture: Option<String>,
    pub blocked: bool,
    pub phone_number: Option<String>,
    pub phone_verified: bool,
    pub app_metadata: Map<String, Value>,
    pub user_metadata: Map<String, Value>,
    pub password: Option<ImportPassword>,
    pub mfa_factors: Vec<MfaFactor>,
    /// Keys outside the import schema, as written.
    pub extra: Map<String, Value>,
}

impl ImportUser {
    /// The user document for `connection`, created `now`. `user_id` is the full id the idp
    /// chose (`auth0|…`); the identity carries it without the `auth0|` prefix, as Auth0 does.
    pub fn to_user(&self, user_id: &str, connection: &str, now: Millis) -> User {
        let identity_id = user_id.strip_prefix("auth0|").unwrap_or(user_id);
        let identity = Identity {
            connection: connection.to_string(),
            provider: "auth0".into(),
            user_id: identity_id.to_string(),
            is_social: false,
            profile_data: None,
        };
        User {
            email: Some(self.email.clone()),
            email_verified: self.email_verified,
            username: self.username.clone(),
            phone_number: self.phone_number.clone(),
            name: self.name.clone(),
            nickname: self.nickname.clone(),
            given_name: self.given_name.clone(),
            family_name: self.family_name.clone(),
            picture: self.picture.clone(),
            app_metadata: self.app_metadata.clone(),
            user_metadata: self.user_metadata.clone(),
            blocked: self.blocked,
            ..User::new(user_id.to_string(), connection.to_string(), identity, now)
        }
    }
}

/// The one password field a user may carry.
#[derive(Clone, PartialEq)]
pub enum ImportPassword {
    /// Gatehouse extension `password`: plain text for the idp to hash.
    Plain(String),
    /// `password_hash`: bcrypt (`$2a$` / `$2b$` / `$2y$`).
    Bcrypt(String),
    /// `custom_password_hash`.
    Custom(Box<CustomPasswordHash>),
}

impl std::fmt::Debug for ImportPassword {
    // Hand-written so a plain password never reaches logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Plain(_) => f.write_str("Plain(<redacted>)"),
            Self::Bcrypt(_) => f.write_str("Bcrypt(<hash>)"),
            Self::Custom(c) => write!(f, "Custom({})", c.algorithm),
        }
    }
}

impl ImportPassword {
    /// A hash the idp can store and verify as it is: bcrypt, or argon2 in PHC form. `None` for
    /// plain passwords (hash them first) and for algorithms the idp cannot verify yet.
    pub fn stored_hash(&self) -> Option<&str> {
        match self {
            Self::Plain(_) => None,
            Self::Bcrypt(h) => Some(h),
            Self::Custom(c) if c.is_verifiable() => Some(&c.hash.value),
            Self::Custom(_) => None,
        }
    }
}

/// Auth0's `custom_password_hash` object.
#[derive(Debug, Clone, PartialEq)]
pub struct CustomPasswordHash {
    /// One of [`HASH_ALGORITHMS`].
    pub algorithm: String,
    pub hash: HashValue,
    pub salt: Option<Salt>,
    /// `password.encoding`: how the password was turned into bytes before hashing.
    pub password_encoding: Option<String>,
    /// scrypt's derived key length.
    pub keylen: Option<u64>,
    pub extra: Map<String, Value>,
}

impl CustomPasswordHash {
    /// Whether the idp can check passwords against this hash today (bcrypt; argon2 in PHC form).
    pub fn is_verifiable(&self) -> bool {
        let utf8 = matches!(self.hash.encoding.as_deref(), None | Some("utf8"));
        match self.algorithm.as_str() {
            "bcrypt" => is_bcrypt(&self.hash.value),
            "argon2" => utf8 && self.hash.value.starts_with("$argon2"),
            _ => false,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct HashValue {
    pub value: String,
    /// `base64`, `hex` or `utf8`.
    pub encoding: Option<String>,
    /// hmac's digest (`sha256`, …).
    pub digest: Option<String>,
    /// hmac's key.
    pub key: Option<EncodedValue>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct EncodedValue {
    pub value: String,
    pub encoding: Option<String>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Salt {
    pub value: String,
    pub encoding: Option<String>,
    /// `prefix` or `suffix`.
    pub position: Option<String>,
}

/// An MFA enrollment to import.
#[derive(Clone, PartialEq)]
pub enum MfaFactor {
    /// Base32 TOTP secret.
    Totp {
        secret: String,
    },
    Phone {
        value: String,
    },
    Email {
        value: String,
    },
}

impl std::fmt::Debug for MfaFactor {
    // TOTP secrets are credentials: keep them out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Totp { .. } => f.write_str("Totp(<secret>)"),
            Self::Phone { value } => write!(f, "Phone({value})"),
            Self::Email { value } => write!(f, "Email({value})"),
        }
    }
}

/// Read an import file; keywords are replaced in the raw text first.
pub fn load_users(path: impl AsRef<Path>, keywords: &Keywords) -> Result<UserImport> {
    let path = path.as_ref();
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
    parse_named(&text, keywords, &path.display().to_string())
}

/// Parse import-file text; keywords are replaced in the raw text first.
pub fn parse_users(json: &str, keywords: &Keywords) -> Result<UserImport> {
    parse_named(json, keywords, "users.json")
}

fn parse_named(json: &str, keywords: &Keywords, file: &str) -> Result<UserImport> {
    let text = keywords.replace_in(json, file)?;
    let value: Value = serde_json::from_str(&text)
        .map_err(|e| Error::Syntax { file: file.to_string(), message: format!("not valid JSON: {e}") })?;
    let Value::Array(items) = value else {
        return Err(Error::UsersFile {
            file: file.to_string(),
            message: "expected a JSON array of users (Auth0's bulk import format)".into(),
        });
    };
    let mut out = UserImport::default();
    let mut emails = HashSet::new();
    let mut user_ids = HashSet::new();
    for (index, item) in items.into_iter().enumerate() {
        let mut row = Row { index, email: None, errors: Vec::new() };
        let user = row.user(item);
        if let Some(user) = &user {
            // Auth0 matches emails case-insensitively; a second row for the same person is a
            // duplicate, not an update.
            if !emails.insert(user.email.to_ascii_lowercase()) {
                row.error("DUPLICATED_USER", "email", "another user in this file has the same email");
            }
            if let Some(id) = &user.user_id
                && !user_ids.insert(id.clone())
            {
                row.error("DUPLICATED_USER", "user_id", "another user in this file has the same user_id");
            }
        }
        match user {
            Some(user) if row.errors.is_empty() => out.rows.push(user),
            _ => out.errors.append(&mut row.errors),
        }
    }
    Ok(out)
}

/// Validation state of one row: every problem is collected, so a row's report is complete.
struct Row {
    index: usize,
    email: Option<String>,
    errors: Vec<RowError>,
}

impl Row {
    fn error(&mut self, code: &str, path: &str, message: impl Into<String>) {
        self.errors.push(RowError {
            index: self.index,
            code: code.to_string(),
            message: message.into(),
            path: path.to_string(),
            email: self.email.clone(),
        });
    }

    fn user(&mut self, item: Value) -> Option<ImportUser> {
        let Value::Object(mut obj) = item else {
            self.error("INVALID_TYPE", "", format!("expected a user object, found {}", type_name(&item)));
            return None;
        };
        self.email = obj.get("email").and_then(Value::as_str).map(str::to_string);
        let email = match obj.remove("email") {
            None | Some(Value::Null) => {
                self.error("OBJECT_MISSING_REQUIRED_PROPERTY", "email", "missing required property: email");
                None
            }
            Some(Value::String(e)) if is_email(&e) => Some(e),
            Some(Value::String(e)) => {
                self.error("INVALID_FORMAT", "email", format!("`{e}` is not an email address"));
                None
            }
            Some(other) => {
                self.type_error("email", "string", &other);
                None
            }
        };
        let mut s = |obj: &mut Map<String, Value>, key: &str| self.opt_string(obj, key, key);
        let user_id = s(&mut obj, "user_id");
        let username = s(&mut obj, "username");
        let given_name = s(&mut obj, "given_name");
        let family_name = s(&mut obj, "family_name");
        let name = s(&mut obj, "name");
        let nickname = s(&mut obj, "nickname");
        let picture = s(&mut obj, "picture");
        let phone_number = s(&mut obj, "phone_number");
        let plain = s(&mut obj, "password");
        let bcrypt = s(&mut obj, "password_hash");
        let email_verified = self.opt_bool(&mut obj, "email_verified");
        let phone_verified = self.opt_bool(&mut obj, "phone_verified");
        let blocked = self.opt_bool(&mut obj, "blocked");
        let app_metadata = self.opt_object(&mut obj, "app_metadata");
        let user_metadata = self.opt_object(&mut obj, "user_metadata");
        let custom = obj.remove("custom_password_hash").filter(|v| !v.is_null());
        let custom = custom.and_then(|v| self.custom_hash(v));
        let mfa_factors = self.mfa_factors(obj.remove("mfa_factors"));

        if let Some(h) = &bcrypt
            && !is_bcrypt(h)
        {
            self.error("INVALID_FORMAT", "password_hash", "expected a bcrypt hash ($2a$ or $2b$, 60 characters)");
        }
        let given: Vec<&str> = [("password", plain.is_some()), ("password_hash", bcrypt.is_some())]
            .into_iter()
            .chain([("custom_password_hash", custom.is_some())])
            .filter_map(|(k, present)| present.then_some(k))
            .collect();
        if given.len() > 1 {
            self.error(
                "CONFLICTING_PASSWORDS",
                "",
                format!(
                    "give at most one of password, password_hash, custom_password_hash (found {})",
                    given.join(", ")
                ),
            );
        }
        let password = match (plain, bcrypt, custom) {
            (Some(p), _, _) => Some(ImportPassword::Plain(p)),
            (_, Some(h), _) => Some(ImportPassword::Bcrypt(h)),
            (_, _, Some(c)) => Some(ImportPassword::Custom(Box::new(c))),
            _ => None,
        };
        Some(ImportUser {
            index: self.index,
            email: email?,
            email_verified,
            user_id,
            username,
            given_name,
            family_name,
            name,
            nickname,
            picture,
            blocked,
            phone_number,
            phone_verified,
            app_metadata,
            user_metadata,
            password,
            mfa_factors,
            extra: obj,
        })
    }

    fn type_error(&mut self, path: &str, expected: &str, found: &Value) {
        self.error("INVALID_TYPE", path, format!("expected {expected}, found {}", type_name(found)));
    }

    fn opt_string(&mut self, obj: &mut Map<String, Value>, key: &str, path: &str) -> Option<String> {
        match obj.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::String(s)) => Some(s),
            Some(other) => {
                self.type_error(path, "string", &other);
                None
            }
        }
    }

    fn opt_bool(&mut self, obj: &mut Map<String, Value>, key: &str) -> bool {
        match obj.remove(key) {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => b,
            Some(other) => {
                self.type_error(key, "boolean", &other);
                false
            }
        }
    }

    fn opt_object(&mut self, obj: &mut Map<String, Value>, key: &str) -> Map<String, Value> {
        match obj.remove(key) {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(m)) => m,
            Some(other) => {
                self.type_error(key, "object", &other);
                Map::new()
            }
        }
    }

    fn enum_field(&mut self, obj: &mut Map<String, Value>, key: &str, path: &str, allowed: &[&str]) -> Option<String> {
        let value = self.opt_string(obj, key, path)?;
        if allowed.contains(&value.as_str()) {
            Some(value)
        } else {
            self.error("ENUM_MISMATCH", path, format!("`{value}` is not one of {}", allowed.join(", ")));
            None
        }
    }

    fn sub_object(&mut self, obj: &mut Map<String, Value>, key: &str, path: &str) -> Option<Map<String, Value>> {
        match obj.remove(key) {
            None | Some(Value::Null) => None,
            Some(Value::Object(m)) => Some(m),
            Some(other) => {
                self.type_error(path, "object", &other);
                None
            }
        }
    }

    fn missing(&mut self, path: &str) {
        let name = path.rsplit('.').next().unwrap_or(path);
        self.error("OBJECT_MISSING_REQUIRED_PROPERTY", path, format!("missing required property: {name}"));
    }

    fn required_object(&mut self, obj: &mut Map<String, Value>, key: &str, path: &str) -> Option<Map<String, Value>> {
        if obj.get(key).is_none_or(Value::is_null) {
            self.missing(path);
            return None;
        }
        self.sub_object(obj, key, path)
    }

    fn custom_hash(&mut self, value: Value) -> Option<CustomPasswordHash> {
        const P: &str = "custom_password_hash";
        let Value::Object(mut obj) = value else {
            self.type_error(P, "object", &value);
            return None;
        };
        let before = self.errors.len();
        let algorithm = match obj.get("algorithm") {
            None | Some(Value::Null) => {
                self.missing("custom_password_hash.algorithm");
                None
            }
            _ => self.enum_field(&mut obj, "algorithm", "custom_password_hash.algorithm", &HASH_ALGORITHMS),
        };
        let hash = match self.required_object(&mut obj, "hash", "custom_password_hash.hash") {
            None => None,
            Some(mut h) => {
                let value = match h.get("value") {
                    None | Some(Value::Null) => {
                        self.missing("custom_password_hash.hash.value");
                        None
                    }
                    _ => self.opt_string(&mut h, "value", "custom_password_hash.hash.value"),
                };
                let encoding =
                    self.enum_field(&mut h, "encoding", "custom_password_hash.hash.encoding", &HASH_ENCODINGS);
                let digest = self.enum_field(&mut h, "digest", "custom_password_hash.hash.digest", &HMAC_DIGESTS);
                let key = self.sub_object(&mut h, "key", "custom_password_hash.hash.key").map(|mut k| EncodedValue {
                    value: self.opt_string(&mut k, "value", "custom_password_hash.hash.key.value").unwrap_or_default(),
                    encoding: self.enum_field(
                        &mut k,
                        "encoding",
                        "custom_password_hash.hash.key.encoding",
                        &HASH_ENCODINGS,
                    ),
                });
                value.map(|value| HashValue { value, encoding, digest, key })
            }
        };
        let salt = self.sub_object(&mut obj, "salt", "custom_password_hash.salt").map(|mut s| Salt {
            value: self.opt_string(&mut s, "value", "custom_password_hash.salt.value").unwrap_or_default(),
            encoding: self.enum_field(&mut s, "encoding", "custom_password_hash.salt.encoding", &HASH_ENCODINGS),
            position: self.enum_field(&mut s, "position", "custom_password_hash.salt.position", &SALT_POSITIONS),
        });
        let password_encoding =
            self.sub_object(&mut obj, "password", "custom_password_hash.password").and_then(|mut p| {
                self.enum_field(&mut p, "encoding", "custom_password_hash.password.encoding", &PASSWORD_ENCODINGS)
            });
        let keylen = match obj.remove("keylen") {
            None | Some(Value::Null) => None,
            Some(Value::Number(n)) if n.as_u64().is_some() => n.as_u64(),
            Some(other) => {
                self.type_error("custom_password_hash.keylen", "a positive integer", &other);
                None
            }
        };
        let (algorithm, hash) = (algorithm?, hash?);
        let custom = CustomPasswordHash { algorithm, hash, salt, password_encoding, keylen, extra: obj };
        // The idp stores these two as they are, so their shape is checked here, not at login.
        if custom.algorithm == "bcrypt" && !is_bcrypt(&custom.hash.value) {
            self.error("INVALID_FORMAT", "custom_password_hash.hash.value", "expected a bcrypt hash ($2a$ or $2b$)");
        }
        if custom.algorithm == "argon2" && !custom.hash.value.starts_with("$argon2") {
            self.error(
                "INVALID_FORMAT",
                "custom_password_hash.hash.value",
                "expected an argon2 hash in PHC form ($argon2id$…)",
            );
        }
        (self.errors.len() == before).then_some(custom)
    }

    fn mfa_factors(&mut self, value: Option<Value>) -> Vec<MfaFactor> {
        let items = match value {
            None | Some(Value::Null) => return Vec::new(),
            Some(Value::Array(items)) => items,
            Some(other) => {
                self.type_error("mfa_factors", "array", &other);
                return Vec::new();
            }
        };
        if items.len() > MAX_MFA_FACTORS {
            self.error("ARRAY_LENGTH_LONG", "mfa_factors", format!("at most {MAX_MFA_FACTORS} factors are allowed"));
        }
        let mut out = Vec::new();
        for (i, item) in items.into_iter().enumerate() {
            let path = format!("mfa_factors[{i}]");
            let factor = match &item {
                Value::Object(m) if m.len() == 1 => m.iter().next().and_then(|(kind, v)| {
                    let field = |f: &str| v.get(f).and_then(Value::as_str).map(str::to_string);
                    match kind.as_str() {
                        "totp" => field("secret").map(|secret| MfaFactor::Totp { secret }),
                        "phone" => field("value").map(|value| MfaFactor::Phone { value }),
                        "email" => field("value").map(|value| MfaFactor::Email { value }),
                        _ => None,
                    }
                }),
                _ => None,
            };
            match factor {
                Some(f) => out.push(f),
                None => self.error(
                    "INVALID_FORMAT",
                    &path,
                    "expected one of {\"totp\": {\"secret\": …}}, {\"phone\": {\"value\": …}}, {\"email\": {\"value\": …}}",
                ),
            }
        }
        out
    }
}

fn type_name(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "boolean",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

/// bcrypt in the modular-crypt form Auth0 imports: `$2a$`/`$2b$`/`$2y$`, cost, 53 chars.
fn is_bcrypt(h: &str) -> bool {
    h.len() == 60 && ["$2a$", "$2b$", "$2y$"].iter().any(|p| h.starts_with(p)) && h.as_bytes()[6] == b'$'
}

/// Email shape as JSON-schema's `email` format checks it in practice: one `@`, a local part
/// without spaces, and a dotted domain of letters, digits and hyphens.
fn is_email(e: &str) -> bool {
    let Some((local, domain)) = e.rsplit_once('@') else {
        return false;
    };
    let local_ok = !local.is_empty()
        && local.len() <= 64
        && !local.contains('@')
        && !local.starts_with('.')
        && !local.ends_with('.')
        && local.chars().all(|c| !c.is_whitespace() && !c.is_control() && c != '<' && c != '>');
    let labels: Vec<&str> = domain.split('.').collect();
    let domain_ok = labels.len() >= 2
        && domain.len() <= 253
        && labels.iter().all(|l| {
            !l.is_empty()
                && !l.starts_with('-')
                && !l.ends_with('-')
                && l.chars().all(|c| c.is_alphanumeric() || c == '-')
        });
    local_ok && domain_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    const BCRYPT: &str = "$2b$10$C9hB01.YxRSTcn/ZOOo4j.TW7xCKKFKBSF.C7E0xiUwumqIDqWUXG";

    fn parse(json: &str) -> UserImport {
        parse_users(json, &Keywords::new()).expect("a JSON array")
    }

    #[test]
    fn broken_rows_are_reported_and_good_rows_kept() {
        let json = format!(
            r#"[
              {{"email": "ok@example.test", "password": "pw", "app_metadata": {{"groups": ["admin"]}}}},
              {{"email": "not-an-email"}},
              {{"name": "no email"}},
              {{"email": "two@example.test", "password": "pw", "password_hash": "{BCRYPT}"}},
              "just a string",
              {{"email": "hash@example.test", "password_hash": "{BCRYPT}", "email_verified": true}},
              {{"email": "OK@example.test"}},
              {{"email": "algo@example.test", "custom_password_hash": {{"algorithm": "rot13", "hash": {{"value": "x"}}}}}},
              {{"email": "types@example.test", "blocked": "yes", "app_metadata": []}}
            ]"#
        );
        let got = parse(&json);
        let kept: Vec<(usize, &str)> = got.rows.iter().map(|u| (u.index, u.email.as_str())).collect();
        assert_eq!(kept, vec![(0, "ok@example.test"), (5, "hash@example.test")]);
        let errs: Vec<(usize, &str, &str)> =
            got.errors.iter().map(|e| (e.index, e.code.as_str(), e.path.as_str())).collect();
        assert_eq!(
            errs,
            vec![
                (1, "INVALID_FORMAT", "email"),
                (2, "OBJECT_MISSING_REQUIRED_PROPERTY", "email"),
                (3, "CONFLICTING_PASSWORDS", ""),
                (4, "INVALID_TYPE", ""),
                (6, "DUPLICATED_USER", "email"),
                (7, "ENUM_MISMATCH", "custom_password_hash.algorithm"),
                (8, "INVALID_TYPE", "blocked"),
                (8, "INVALID_TYPE", "app_metadata"),
            ]
        );
        assert_eq!(got.rows[0].app_metadata["groups"], serde_json::json!(["admin"]));
        assert!(matches!(got.rows[0].password, Some(ImportPassword::Plain(_))));
        assert_eq!(got.rows[1].password.as_ref().and_then(ImportPassword::stored_hash), Some(BCRYPT));
        assert!(got.errors[0].to_string().contains("user #1 (not-an-email) email: INVALID_FORMAT"));
    }

    #[test]
    fn not_an_array_is_an_error() {
        let err = parse_users(r#"{"email": "a@b.test"}"#, &Keywords::new()).unwrap_err();
        assert!(matches!(err, Error::UsersFile { .. }), "{err}");
        let err = parse_users("[", &Keywords::new()).unwrap_err();
        assert!(matches!(err, Error::Syntax { .. }), "{err}");
    }

    #[test]
    fn custom_hashes_keep_algorithm_and_know_what_is_verifiable() {
        let got = parse(
            r#"[
              {"email": "a@x.test", "custom_password_hash": {"algorithm": "argon2",
                "hash": {"value": "$argon2id$v=19$m=65536,t=2,p=1$J6Q/82PCyaNpYKRELJyTZg$m04qUAB8rexWDR4+/0f+SFB+4XMFxt7YAvAq2UycYos"}}},
              {"email": "b@x.test", "custom_password_hash": {"algorithm": "sha256",
                "hash": {"value": "d24e79", "encoding": "hex"}, "salt": {"value": "abc123", "position": "prefix"},
                "password": {"encoding": "utf8"}}},
              {"email": "c@x.test", "custom_password_hash": {"algorithm": "hmac",
                "hash": {"value": "AA==", "encoding": "base64", "digest": "sha1", "key": {"value": "k", "encoding": "utf8"}}}},
              {"email": "d@x.test", "custom_password_hash": {"algorithm": "bcrypt", "hash": {"value": "nope"}}},
              {"email": "e@x.test", "custom_password_hash": {"algorithm": "md5"}},
              {"email": "f@x.test", "custom_password_hash": {"algorithm": "sha1", "hash": {"value": "x", "encoding": "rot"}}}
            ]"#,
        );
        assert_eq!(got.rows.len(), 3);
        let custom = |i: usize| match &got.rows[i].password {
            Some(ImportPassword::Custom(c)) => c.clone(),
            other => panic!("row {i}: {other:?}"),
        };
        assert!(custom(0).is_verifiable());
        let sha = custom(1);
        assert_eq!(sha.algorithm, "sha256");
        assert!(!sha.is_verifiable());
        assert_eq!(sha.salt.as_ref().and_then(|s| s.position.as_deref()), Some("prefix"));
        assert_eq!(sha.password_encoding.as_deref(), Some("utf8"));
        assert_eq!(custom(2).hash.digest.as_deref(), Some("sha1"));
        let errs: Vec<(usize, &str, &str)> =
            got.errors.iter().map(|e| (e.index, e.code.as_str(), e.path.as_str())).collect();
        assert_eq!(
            errs,
            vec![
                (3, "INVALID_FORMAT", "custom_password_hash.hash.value"),
                (4, "OBJECT_MISSING_REQUIRED_PROPERTY", "custom_password_hash.hash"),
                (5, "ENUM_MISMATCH", "custom_password_hash.hash.encoding"),
            ]
        );
    }

    #[test]
    fn keywords_are_replaced_and_extras_kept() {
        let mut k = Keywords::new();
        k.insert("EMAIL", "kw@example.test").insert("PW", "p\"w");
        let got = parse_users(
            r###"[{"email": "##EMAIL##", "password": "@@PW@@", "mfa_factors": [{"totp": {"secret": "JBSWY3DPEHPK3PXP"}}], "custom_field": 1}]"###,
            &k,
        )
        .unwrap();
        assert!(got.errors.is_empty(), "{:?}", got.errors);
        let u = &got.rows[0];
        assert_eq!(u.email, "kw@example.test");
        assert_eq!(u.password, Some(ImportPassword::Plain("p\"w".into())));
        assert_eq!(u.mfa_factors, vec![MfaFactor::Totp { secret: "JBSWY3DPEHPK3PXP".into() }]);
        assert_eq!(u.extra.get("custom_field"), Some(&serde_json::json!(1)));
        assert!(!format!("{u:?}").contains("p\\\"w"), "passwords stay out of Debug");

        let user = u.to_user("auth0|abc", "dev-users", 1000);
        assert_eq!(user.identities[0].user_id, "abc");
        assert_eq!(user.connection, "dev-users");
        assert_eq!(user.created_at, 1000);
    }

    #[test]
    fn email_shapes() {
        for ok in ["a@b.co", "first.last+tag@sub.example.test", "x_y@a-b.io"] {
            assert!(is_email(ok), "{ok}");
        }
        for bad in ["", "a", "a@", "@b.co", "a@b", "a b@c.de", "a@b..c", "a@-b.co", "a@b.co.", ".a@b.co"] {
            assert!(!is_email(bad), "{bad}");
        }
    }
}
