//! Where an error is: the file, the section, the entry and the key. Shared by the entry types
//! (`model`), the files they reference (`sources`) and the file readers
//! (`file`, `directory`), below all of them.

use serde::de::DeserializeOwned;
use serde_json::Value;

use crate::error::{Error, Result};

/// Label used for errors raised after parsing, when the file name is no longer known.
const DETACHED_FILE: &str = "tenant.yaml";

/// Error labelling for one entry of one section of one file.
pub struct Ctx<'a> {
    pub file: &'a str,
    pub section: &'a str,
    /// `"name"` in quotes, a position, or empty for single-object sections.
    pub entry: String,
}

impl<'a> Ctx<'a> {
    pub fn new(file: &'a str, section: &'a str, entry: String) -> Self {
        Self { file, section, entry }
    }

    pub fn detached(section: &'a str, entry: String) -> Self {
        Self { file: DETACHED_FILE, section, entry }
    }

    pub fn entry_error(&self, message: impl Into<String>) -> Error {
        Error::Entry {
            file: self.file.to_string(),
            section: self.section.to_string(),
            entry: self.entry.clone(),
            message: message.into(),
        }
    }

    pub fn field(&self, key: &str, message: impl Into<String>) -> Error {
        Error::Field {
            file: self.file.to_string(),
            section: self.section.to_string(),
            entry: self.entry.clone(),
            key: key.to_string(),
            message: message.into(),
        }
    }

    /// Deserialize a whole entry, naming the offending key on error.
    pub fn deserialize<T: DeserializeOwned>(&self, value: Value) -> Result<T> {
        self.deserialize_key("", value)
    }

    /// Deserialize the value of `key`, naming `key` (and any path inside it) on error.
    pub fn deserialize_key<T: DeserializeOwned>(&self, key: &str, value: Value) -> Result<T> {
        serde_path_to_error::deserialize(value).map_err(|e| {
            let inner = e.path().to_string();
            let path = match (key, inner.as_str()) {
                (k, ".") => k.to_string(),
                ("", p) => p.to_string(),
                (k, p) if p.starts_with('[') => format!("{k}{p}"),
                (k, p) => format!("{k}.{p}"),
            };
            self.field(&path, e.into_inner().to_string())
        })
    }
}

/// Grants have no name: they are labelled by client and audience.
pub fn grant_label(client: &str, audience: &str) -> String {
    format!("{} -> {}", quote(client), quote(audience))
}

/// Entry labels quote names so `clients["User Management CMS"]` reads unambiguously.
pub fn quote(name: &str) -> String {
    Value::String(name.to_string()).to_string()
}

/// `integer 5`, `a list`, … for messages.
pub(crate) fn describe(value: &Value) -> String {
    match value {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => format!("string {}", quote(s)),
        Value::Array(_) => "a list".into(),
        Value::Object(_) => "a map".into(),
    }
}
