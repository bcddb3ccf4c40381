//! auth0-deploy-cli's configuration: its `config.json` and the `AUTH0_*` environment variables,
//! which win over the file as in deploy-cli (it loads the environment before the file). The
//! settings Gatehouse acts on are typed and checked — a wrong type is an error naming the key
//! — and the rest of deploy-cli's settings are ignored, so a team's config.json is taken as it
//! is.
//!
//! As in deploy-cli, lists and maps may also be given as JSON text (that is how environment
//! variables carry them, and deploy-cli parses such strings in the file too), and booleans as
//! `"true"` / `"false"`. `AUTH0_KEYWORD_REPLACE_MAPPINGS` from the environment is laid over the
//! file's key by key.

use std::collections::BTreeMap;
use std::path::Path;

use serde_json::{Map, Value};

use crate::error::{Error, Result};
use crate::selection::Selection;

/// The settings of a deploy-cli config.json (and environment) that Gatehouse uses.
#[derive(Clone, Default, PartialEq)]
pub struct DeployConfig {
    /// The config file, when there is one.
    pub origin: Option<String>,
    pub domain: Option<String>,
    pub client_id: Option<String>,
    pub client_secret: Option<String>,
    /// `AUTH0_KEYWORD_REPLACE_MAPPINGS`.
    pub mappings: BTreeMap<String, Value>,
    /// `AUTH0_INCLUDED_ONLY`, `AUTH0_EXCLUDED` and the per-name lists.
    pub selection: Selection,
    /// `AUTH0_ALLOW_DELETE`.
    pub allow_delete: bool,
    /// `AUTH0_PRESERVE_KEYWORDS` (export).
    pub preserve_keywords: bool,
    /// `AUTH0_EXPORT_IDENTIFIERS` (export).
    pub export_identifiers: bool,
    /// `AUTH0_EXPORT_SECRETS` (export).
    pub export_secrets: bool,
}

impl std::fmt::Debug for DeployConfig {
    // Hand-written: the secret and the mapping values stay out of logs.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeployConfig")
            .field("origin", &self.origin)
            .field("domain", &self.domain)
            .field("client_id", &self.client_id)
            .field("client_secret", &self.client_secret.as_ref().map(|_| "…"))
            .field("mappings", &self.mappings.keys().collect::<Vec<_>>())
            .field("selection", &self.selection)
            .field("allow_delete", &self.allow_delete)
            .finish()
    }
}

/// The per-name exclusion lists deploy-cli has (`AUTH0_EXCLUDED_RULES` is accepted and has
/// nothing to act on: Gatehouse serves no rules).
const NAME_LISTS: [&str; 6] = [
    "AUTH0_EXCLUDED_CLIENTS",
    "AUTH0_EXCLUDED_DATABASES",
    "AUTH0_EXCLUDED_CONNECTIONS",
    "AUTH0_EXCLUDED_RESOURCE_SERVERS",
    "AUTH0_EXCLUDED_RULES",
    "AUTH0_INCLUDED_CONNECTIONS",
];

impl DeployConfig {
    /// Reads `path` (if any), then lays the `AUTH0_*` variables `env` knows over it.
    pub fn load(path: Option<&Path>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        match path {
            None => Self::parse(None, env),
            Some(p) => {
                let text = std::fs::read_to_string(p).map_err(|source| Error::Io { path: p.to_path_buf(), source })?;
                Self::parse(Some((&text, &p.display().to_string())), env)
            }
        }
    }

    /// `file` is the config.json text and its name.
    pub fn parse(file: Option<(&str, &str)>, env: impl Fn(&str) -> Option<String>) -> Result<Self> {
        let origin = file.map(|(_, name)| name.to_string());
        let label = origin.clone().unwrap_or_else(|| "configuration".into());
        let top: Map<String, Value> = match file {
            None => Map::new(),
            Some((text, name)) => match serde_json::from_str::<Value>(text) {
                Ok(Value::Object(m)) => m,
                Ok(other) => {
                    return Err(Error::Config {
                        origin: name.to_string(),
                        key: "(top level)".into(),
                        message: format!("expected a JSON object of settings, found {}", crate::ctx::describe(&other)),
                    });
                }
                Err(e) => {
                    return Err(Error::Syntax { file: name.to_string(), message: format!("not JSON: {e}") });
                }
            },
        };
        // The environment wins: each known key is read from it first.
        let get = |key: &str| -> Result<Option<(Value, String)>> {
            if let Some(v) = env(key) {
                return Ok(Some((Value::String(v), format!("environment variable {key}"))));
            }
            Ok(top.get(key).filter(|v| !v.is_null()).map(|v| (v.clone(), label.clone())))
        };
        let string = |key: &str| -> Result<Option<String>> {
            match get(key)? {
                None => Ok(None),
                Some((Value::String(s), _)) => Ok(Some(s)),
                Some((other, origin)) => Err(wrong(&origin, key, "a string", &other)),
            }
        };
        let boolean = |key: &str| -> Result<bool> {
            match get(key)? {
                None => Ok(false),
                Some((Value::Bool(b), _)) => Ok(b),
                Some((Value::String(s), _)) if s == "true" => Ok(true),
                Some((Value::String(s), _)) if s == "false" || s.is_empty() => Ok(false),
                Some((other, origin)) => Err(wrong(&origin, key, "true or false", &other)),
            }
        };
        let list = |key: &str| -> Result<Option<Vec<String>>> {
            let Some((value, origin)) = get(key)? else { return Ok(None) };
            let value = json_text(value, &origin, key)?;
            match value {
                Value::Array(items) => items
                    .into_iter()
                    .enumerate()
                    .map(|(i, v)| match v {
                        Value::String(s) => Ok(s),
                        other => Err(wrong(&origin, &format!("{key}[{i}]"), "a string", &other)),
                    })
                    .collect::<Result<Vec<_>>>()
                    .map(Some),
                other => Err(wrong(&origin, key, "a list of strings", &other)),
            }
        };

        let mut mappings = BTreeMap::new();
        const MAPPINGS: &str = "AUTH0_KEYWORD_REPLACE_MAPPINGS";
        // The file's mappings, then the environment's over them key by key (nconf merges).
        let mut layers: Vec<(Value, String)> = Vec::new();
        if let Some(v) = top.get(MAPPINGS).filter(|v| !v.is_null()) {
            layers.push((v.clone(), label.clone()));
        }
        if let Some(v) = env(MAPPINGS) {
            layers.push((Value::String(v), format!("environment variable {MAPPINGS}")));
        }
        for (value, origin) in layers {
            match json_text(value, &origin, MAPPINGS)? {
                Value::Object(m) => mappings.extend(m),
                other => return Err(wrong(&origin, MAPPINGS, "a map of keyword to value", &other)),
            }
        }

        let mut by_name = BTreeMap::new();
        for key in NAME_LISTS {
            if let Some(names) = list(key)? {
                by_name.insert(key, names);
            }
        }
        let selection =
            Selection::new(list("AUTH0_INCLUDED_ONLY")?, list("AUTH0_EXCLUDED")?.unwrap_or_default(), by_name)
                .map_err(|(key, message)| Error::Config { origin: label.clone(), key: key.to_string(), message })?;

        Ok(Self {
            domain: string("AUTH0_DOMAIN")?.filter(|s| !s.trim().is_empty()),
            client_id: string("AUTH0_CLIENT_ID")?.filter(|s| !s.trim().is_empty()),
            client_secret: string("AUTH0_CLIENT_SECRET")?.filter(|s| !s.is_empty()),
            mappings,
            selection,
            allow_delete: boolean("AUTH0_ALLOW_DELETE")?,
            preserve_keywords: boolean("AUTH0_PRESERVE_KEYWORDS")?,
            export_identifiers: boolean("AUTH0_EXPORT_IDENTIFIERS")?,
            export_secrets: boolean("AUTH0_EXPORT_SECRETS")?,
            origin,
        })
    }

    /// Where the mappings came from, for hints.
    pub fn mappings_label(&self) -> String {
        match &self.origin {
            Some(o) => format!("{o} (AUTH0_KEYWORD_REPLACE_MAPPINGS)"),
            None => "AUTH0_KEYWORD_REPLACE_MAPPINGS".into(),
        }
    }
}

/// A value that may be given as JSON text (an environment variable, or a string in the file).
fn json_text(value: Value, origin: &str, key: &str) -> Result<Value> {
    match value {
        Value::String(s) => serde_json::from_str(&s).map_err(|e| Error::Config {
            origin: origin.to_string(),
            key: key.to_string(),
            message: format!("a string that is not JSON ({e}); give a JSON list or map"),
        }),
        v => Ok(v),
    }
}

fn wrong(origin: &str, key: &str, expected: &str, found: &Value) -> Error {
    Error::Config {
        origin: origin.to_string(),
        key: key.to_string(),
        message: format!("expected {expected}, found {}", crate::ctx::describe(found)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_file_is_read_and_the_environment_wins() {
        let text = json!({
            "AUTH0_DOMAIN": "file.example",
            "AUTH0_CLIENT_ID": "id",
            "AUTH0_KEYWORD_REPLACE_MAPPINGS": {"A": "a", "LIST": ["x", "y"], "B": "b"},
            "AUTH0_ALLOW_DELETE": true,
            "AUTH0_EXCLUDED_CLIENTS": "[\"Legacy\"]",
            "AUTH0_API_MAX_RETRIES": 1,
        })
        .to_string();
        let c = DeployConfig::parse(Some((&text, "config.json")), no_env).unwrap();
        assert_eq!(c.domain.as_deref(), Some("file.example"));
        assert!(c.allow_delete);
        assert_eq!(c.mappings["LIST"], json!(["x", "y"]));
        assert!(!c.selection.keeps_name("clients", "Legacy"));

        let env = |k: &str| match k {
            "AUTH0_DOMAIN" => Some("env.example".to_string()),
            "AUTH0_ALLOW_DELETE" => Some("false".to_string()),
            "AUTH0_KEYWORD_REPLACE_MAPPINGS" => Some(r#"{"B": "from-env"}"#.to_string()),
            _ => None,
        };
        let c = DeployConfig::parse(Some((&text, "config.json")), env).unwrap();
        assert_eq!(c.domain.as_deref(), Some("env.example"));
        assert!(!c.allow_delete);
        assert_eq!((c.mappings["A"].clone(), c.mappings["B"].clone()), (json!("a"), json!("from-env")));
    }

    #[test]
    fn bad_files_and_values_name_the_key() {
        let err = DeployConfig::parse(Some(("{\"AUTH0_DOMAIN\": ", "config.json")), no_env).unwrap_err();
        assert!(err.to_string().starts_with("config.json: not JSON: "), "{err}");
        let err = DeployConfig::parse(Some(("[1]", "config.json")), no_env).unwrap_err();
        assert!(err.to_string().contains("expected a JSON object"), "{err}");
        for (text, key) in [
            (r#"{"AUTH0_ALLOW_DELETE": "yes"}"#, "AUTH0_ALLOW_DELETE: expected true or false, found string \"yes\""),
            (r#"{"AUTH0_EXCLUDED": "clients"}"#, "AUTH0_EXCLUDED: a string that is not JSON"),
            (r#"{"AUTH0_INCLUDED_ONLY": [1]}"#, "AUTH0_INCLUDED_ONLY[0]: expected a string, found number 1"),
            (r#"{"AUTH0_KEYWORD_REPLACE_MAPPINGS": ["A"]}"#, "AUTH0_KEYWORD_REPLACE_MAPPINGS: expected a map"),
            (r#"{"AUTH0_DOMAIN": 5}"#, "AUTH0_DOMAIN: expected a string, found number 5"),
            (r#"{"AUTH0_INCLUDED_ONLY": ["clients"], "AUTH0_EXCLUDED": ["roles"]}"#, "only one can be used"),
            (r#"{"AUTH0_INCLUDED_ONLY": []}"#, "AUTH0_INCLUDED_ONLY: needs at least one resource type"),
        ] {
            let err = DeployConfig::parse(Some((text, "config.json")), no_env).unwrap_err();
            assert!(err.to_string().starts_with("config.json: ") && err.to_string().contains(key), "{text}: {err}");
        }
        let env = |k: &str| (k == "AUTH0_EXCLUDED").then(|| "not json".to_string());
        let err = DeployConfig::parse(None, env).unwrap_err();
        assert!(err.to_string().starts_with("environment variable AUTH0_EXCLUDED: AUTH0_EXCLUDED: "), "{err}");
    }
}
