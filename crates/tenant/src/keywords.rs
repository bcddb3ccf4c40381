//! auth0-deploy-cli's keyword replacement, applied to the raw text of tenant.yaml, of the
//! directory format's JSON files, of the files they reference (action code, database scripts)
//! and of users.json.
//!
//! Two forms, as in deploy-cli (`AUTH0_KEYWORD_REPLACE_MAPPINGS`):
//! - `##KEY##` is replaced by the value as text (a list's items joined by `,`, as JavaScript
//!   turns a list into text; a map has no text form and is an error);
//! - `@@KEY@@` is replaced by the value JSON-encoded (deploy-cli runs `JSON.stringify`), and a
//!   marker wrapped in matching quotes (`"@@KEY@@"`, `'@@KEY@@'`) is replaced with its quotes.
//!   Values from a config.json are JSON already and go in as they are. Values from `.env` files
//!   and the environment are strings: one that parses as a JSON list or map goes in as that
//!   JSON (compact, one line, so it is valid YAML flow syntax too), any other as a JSON string.
//!   `##KEY##` markers inside an inserted JSON value are replaced too (deploy-cli replaces
//!   `@@` markers first, then `##` ones).
//!
//! Like deploy-cli, only keywords that have a value are replaced: any other marker stays in
//! the text as it is, and [`Replaced::unresolved`] lists it with its line so that `tenant
//! lint` can warn — except markers inside YAML comments, which are not content and are never
//! reported ([`crate::markers::yaml_comments`]). [`Keywords::replace_in`] is the strict form
//! (an error listing every keyword without a value) for the files Gatehouse provisions itself.
//! Markers are found in one left-to-right pass and inserted text is never rescanned, so a
//! value containing `##OTHER##` (outside an `@@` value) is inserted literally.
//!
//! Values are looked up in this order: [`Keywords::insert`] (values the program itself decides,
//! such as the idp's own `AUTH0_DOMAIN`, which a developer's shell must not override), then the
//! process environment when enabled (deploy-cli adds the environment to its mappings), then the
//! config.json mappings ([`Keywords::with_mappings`]), then the `.env` file.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};
use crate::markers::{line_of, marker_at, yaml_comments};

pub use crate::markers::is_keyword_name;

/// A keyword's value: text (from a `.env` file or the environment) or JSON (config.json).
#[derive(Clone, PartialEq)]
pub enum KeywordValue {
    Text(String),
    Json(Value),
}

impl KeywordValue {
    /// The value as `##KEY##` inserts it; `None` for a map (or a list holding one).
    pub fn as_text(&self) -> Option<String> {
        match self {
            KeywordValue::Text(s) => Some(s.clone()),
            KeywordValue::Json(v) => js_text(v),
        }
    }

    /// The value as `@@KEY@@` inserts it.
    pub fn as_json(&self) -> String {
        match self {
            KeywordValue::Text(s) => json_encode(s),
            KeywordValue::Json(v) => v.to_string(),
        }
    }
}

/// JavaScript's `String(value)` for what deploy-cli's `##` replacement inserts, except a map
/// (which JavaScript turns into `[object Object]`).
fn js_text(v: &Value) -> Option<String> {
    match v {
        Value::String(s) => Some(s.clone()),
        Value::Null => Some("null".into()),
        Value::Bool(_) | Value::Number(_) => Some(v.to_string()),
        Value::Array(items) => items
            .iter()
            .map(|i| if i.is_null() { Some(String::new()) } else { js_text(i) })
            .collect::<Option<Vec<_>>>()
            .map(|parts| parts.join(",")),
        Value::Object(_) => None,
    }
}

/// What kind of text is being replaced: YAML comments are not content.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Syntax {
    Yaml,
    /// JSON, code, anything without YAML comments.
    Plain,
}

/// A marker left in a text because its keyword has no value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unresolved {
    /// The file (or text) it appears in.
    pub origin: String,
    pub name: String,
    /// 1-based line.
    pub line: usize,
    /// `@@KEY@@` rather than `##KEY##`.
    pub json: bool,
}

impl fmt::Display for Unresolved {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (d, name) = (if self.json { "@@" } else { "##" }, &self.name);
        write!(f, "{} line {}: {d}{name}{d} has no value and is left as text", self.origin, self.line)
    }
}

/// A `@@KEY@@` replaced by JSON: where it stood, for error messages about what it produced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JsonUse {
    pub name: String,
    pub line: usize,
    /// The JSON inserted.
    pub json: String,
    /// The text before the marker on its line, e.g. `  allowed_logout_urls: `.
    pub before: String,
    /// The text after the marker on its line.
    pub after: String,
}

impl JsonUse {
    /// Whether the JSON stands as a whole value: after `key:`, `-`, `[`, `{` or `,` (or alone
    /// on its line) and before the end of the line, `,`, `]`, `}` or a comment. Anywhere else
    /// — inside a string, next to other text — JSON changes what the text means.
    pub fn fits(&self) -> bool {
        let before = self.before.trim_end();
        let after = self.after.trim_start();
        let before_ok = before.is_empty()
            || before.ends_with([':', '[', '{', ','])
            || before.trim_start() == "-"
            || before.ends_with(" -");
        let after_ok = after.is_empty() || after.starts_with([',', ']', '}', '#', '\r']);
        before_ok && after_ok
    }

    /// The key the value is given to (`allowed_logout_urls` in `  allowed_logout_urls: @@X@@`).
    pub fn key(&self) -> Option<&str> {
        let k = self.before.trim().strip_suffix(':')?.trim_end();
        let k = k.rsplit([',', '{', ' ', '\t']).next()?.trim_matches(['"', '\'']);
        (!k.is_empty()).then_some(k)
    }
}

impl Replaced {
    /// An error for the first `@@KEY@@` whose JSON does not stand as a whole value.
    pub fn check_json_fits(&self, origin: &str) -> Result<()> {
        match self.json_uses.iter().find(|u| !u.fits()) {
            None => Ok(()),
            Some(u) => Err(Error::Keyword {
                origin: origin.to_string(),
                line: u.line,
                message: format!(
                    "@@{0}@@ stands next to other text (`{1}@@{0}@@{2}`), where its JSON value {3} does not fit; \
                     a @@KEY@@ must be a whole value (use ##{0}## to insert text)",
                    u.name,
                    u.before.trim_start(),
                    u.after.trim_end(),
                    u.json
                ),
            }),
        }
    }
}

/// A replaced text and what was not replaced.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replaced {
    pub text: String,
    /// Markers without a value, outside comments, in text order.
    pub unresolved: Vec<Unresolved>,
    /// Every `@@KEY@@` that was replaced.
    pub json_uses: Vec<JsonUse>,
}

/// Keyword values for replacement. `Debug` shows keys only: values are often secrets.
#[derive(Clone, Default)]
pub struct Keywords {
    fixed: BTreeMap<String, String>,
    mappings: BTreeMap<String, Value>,
    file: BTreeMap<String, String>,
    file_path: Option<PathBuf>,
    mappings_from: Option<String>,
    process_env: bool,
}

impl fmt::Debug for Keywords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keywords")
            .field("fixed", &self.fixed.keys().collect::<Vec<_>>())
            .field("mappings", &self.mappings.keys().collect::<Vec<_>>())
            .field("file", &self.file_path)
            .field("file_keys", &self.file.keys().collect::<Vec<_>>())
            .field("process_env", &self.process_env)
            .finish()
    }
}

/// Values shorter than this are never turned back into markers by [`Keywords::restore`].
pub const MIN_RESTORED_LEN: usize = 6;

impl Keywords {
    /// No values at all: no marker is replaced.
    pub fn new() -> Self {
        Self::default()
    }

    /// Values from a `.env`-style file (see [`crate::envfile`] for the syntax).
    pub fn from_env_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let text = std::fs::read_to_string(path).map_err(|source| Error::Io { path: path.to_path_buf(), source })?;
        let mut keywords = Self::from_env_text(&text, &path.display().to_string())?;
        keywords.file_path = Some(path.to_path_buf());
        Ok(keywords)
    }

    /// Values from `.env`-style text; `label` names it in errors.
    pub fn from_env_text(text: &str, label: &str) -> Result<Self> {
        let file = crate::envfile::parse_env(text, label)?.into_iter().collect();
        Ok(Self { file, file_path: Some(PathBuf::from(label)), ..Self::default() })
    }

    /// Add deploy-cli's `AUTH0_KEYWORD_REPLACE_MAPPINGS` (JSON values), which beat the `.env`
    /// file and lose to the environment; `from` names where they came from in hints.
    pub fn with_mappings(mut self, mappings: BTreeMap<String, Value>, from: impl Into<String>) -> Self {
        self.mappings = mappings;
        self.mappings_from = Some(from.into());
        self
    }

    /// Set a value that wins over both the environment and the file. Names outside
    /// `[A-Za-z0-9_]+` can be stored but never match a marker.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.fixed.insert(key.into(), value.into());
        self
    }

    /// Also look keywords up in the process environment, which then beats the mappings and
    /// the file. Only keywords a text actually references are read from the environment.
    pub fn with_process_env(mut self) -> Self {
        self.process_env = true;
        self
    }

    /// The value a keyword resolves to, if any.
    pub fn lookup(&self, key: &str) -> Option<KeywordValue> {
        if let Some(v) = self.fixed.get(key) {
            return Some(KeywordValue::Text(v.clone()));
        }
        if self.process_env
            && let Ok(v) = std::env::var(key)
        {
            return Some(KeywordValue::Text(v));
        }
        if let Some(v) = self.mappings.get(key) {
            return Some(KeywordValue::Json(v.clone()));
        }
        self.file.get(key).map(|v| KeywordValue::Text(v.clone()))
    }

    /// The value a keyword resolves to as text (`##KEY##`), if any.
    pub fn get(&self, key: &str) -> Option<String> {
        self.lookup(key).and_then(|v| v.as_text())
    }

    /// The `.env` file the values came from, if any.
    pub fn env_file(&self) -> Option<&Path> {
        self.file_path.as_deref()
    }

    /// Whether any value is known besides the environment.
    pub fn is_empty(&self) -> bool {
        self.fixed.is_empty() && self.mappings.is_empty() && self.file.is_empty()
    }

    /// Replace every marker that has a value (strictly: see [`Keywords::replace_in`]).
    pub fn replace(&self, text: &str) -> Result<String> {
        self.replace_in(text, "text")
    }

    /// The strict form, for files Gatehouse provisions itself (users.json, `gatehouse idp
    /// --tenant`): every marker must have a value, else an error lists each one with its line.
    pub fn replace_in(&self, text: &str, origin: &str) -> Result<String> {
        let replaced = self.replace_all(text, origin, Syntax::Plain)?;
        if !replaced.unresolved.is_empty() {
            return Err(self.missing_error(origin, &replaced.unresolved));
        }
        Ok(replaced.text)
    }

    /// The error [`Keywords::replace_in`] gives for markers without a value.
    pub fn missing_error(&self, origin: &str, unresolved: &[Unresolved]) -> Error {
        let mut missing: Vec<(String, usize)> = Vec::new();
        for u in unresolved {
            if !missing.iter().any(|(k, _)| *k == u.name) {
                missing.push((u.name.clone(), u.line));
            }
        }
        Error::MissingKeywords { origin: origin.to_string(), missing, sources: self.sources_hint() }
    }

    /// deploy-cli's replacement: markers with a value are replaced, the others stay and are
    /// listed (those inside YAML comments excepted). The one error is a `##KEY##` whose value
    /// has no text form (a map).
    pub fn replace_all(&self, text: &str, origin: &str, syntax: Syntax) -> Result<Replaced> {
        let comments = if syntax == Syntax::Yaml { yaml_comments(text) } else { Vec::new() };
        let in_comment = |pos: usize| comments.iter().any(|(a, b)| *a <= pos && pos < *b);
        let mut out = String::with_capacity(text.len());
        let mut unresolved = Vec::new();
        let mut json_uses = Vec::new();
        let bytes = text.as_bytes();
        let mut last = 0; // end of the text already copied to `out`
        let mut i = 0;
        while i + 1 < bytes.len() {
            let Some(marker) = marker_at(bytes, i, last) else {
                i += 1;
                continue;
            };
            let name = &text[marker.name.0..marker.name.1];
            match self.lookup(name) {
                Some(value) => {
                    out.push_str(&text[last..marker.start]);
                    let line = line_of(text, marker.start);
                    if marker.json {
                        let json = self.replace_text_markers(&value.as_json());
                        let line_start = text[..marker.start].rfind('\n').map_or(0, |p| p + 1);
                        json_uses.push(JsonUse {
                            name: name.to_string(),
                            line,
                            json: json.clone(),
                            before: text[line_start..marker.start].to_string(),
                            after: text[marker.end..].split('\n').next().unwrap_or_default().to_string(),
                        });
                        out.push_str(&json);
                    } else {
                        let Some(value) = value.as_text() else {
                            return Err(Error::Keyword {
                                origin: origin.to_string(),
                                line,
                                message: format!(
                                    "##{name}##: its value is a map, which has no text form (use @@{name}@@ for JSON)"
                                ),
                            });
                        };
                        out.push_str(&value);
                    }
                }
                None => {
                    if !in_comment(marker.start) {
                        unresolved.push(Unresolved {
                            origin: origin.to_string(),
                            name: name.to_string(),
                            line: line_of(text, marker.start),
                            json: marker.json,
                        });
                    }
                    out.push_str(&text[last..marker.end]);
                }
            }
            last = marker.end;
            i = marker.end;
        }
        out.push_str(&text[last..]);
        Ok(Replaced { text: out, unresolved, json_uses })
    }

    /// `##KEY##` markers inside an inserted JSON value (deploy-cli's nested replacement);
    /// markers without a value stay.
    fn replace_text_markers(&self, json: &str) -> String {
        let bytes = json.as_bytes();
        let mut out = String::with_capacity(json.len());
        let (mut last, mut i) = (0, 0);
        while i + 1 < bytes.len() {
            match marker_at(bytes, i, i) {
                Some(m) if !m.json => {
                    if let Some(v) = self.lookup(&json[m.name.0..m.name.1]).and_then(|v| v.as_text()) {
                        out.push_str(&json[last..m.start]);
                        out.push_str(&v);
                        last = m.end;
                    }
                    i = m.end;
                }
                _ => i += 1,
            }
        }
        out.push_str(&json[last..]);
        out
    }

    /// Every keyword with a known name (inserted, from the mappings or from the `.env` file)
    /// and the text it resolves to (the environment winning, as in [`Keywords::get`]). The
    /// environment alone is not enumerated: only keywords a file names count.
    pub fn values(&self) -> Vec<(String, String)> {
        let mut names: Vec<&String> = self.fixed.keys().chain(self.mappings.keys()).chain(self.file.keys()).collect();
        names.sort();
        names.dedup();
        names.into_iter().filter_map(|k| self.get(k).map(|v| (k.clone(), v))).collect()
    }

    /// The mappings whose values are JSON lists or maps, by name: what an export writes back
    /// as `@@KEY@@` where it finds that exact value.
    pub fn json_values(&self) -> Vec<(String, Value)> {
        self.mappings
            .iter()
            .filter(|(k, v)| {
                is_keyword_name(k)
                    && match v {
                        Value::Array(a) => !a.is_empty(),
                        Value::Object(m) => !m.is_empty(),
                        _ => false,
                    }
            })
            .filter(|(k, _)| !self.fixed.contains_key(*k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect()
    }

    /// The reverse of [`Keywords::replace`] for `##KEY##`: every occurrence of a keyword's
    /// value in `text` becomes the keyword's marker, the longest value winning where values
    /// overlap, in one left-to-right pass. Used on export so that a tenant exported from one
    /// environment imports into another with that environment's keywords.
    ///
    /// Values that could not round-trip are skipped: shorter than [`MIN_RESTORED_LEN`]
    /// characters (`dev` would turn `dev-users` into `##ENV##-users`), or holding a quote, a
    /// backslash, `#` or a line break (replacing the marker would then change the YAML's
    /// syntax). deploy-cli's own `AUTH0_PRESERVE_KEYWORDS` instead copies markers back from
    /// the local file at the same address; this works without a local file.
    pub fn restore(&self, text: &str) -> String {
        let mut values: Vec<(String, String)> = self
            .values()
            .into_iter()
            .filter(|(k, v)| {
                is_keyword_name(k)
                    && v.chars().count() >= MIN_RESTORED_LEN
                    && !v.contains(['"', '\'', '\\', '#', '\n', '\r'])
            })
            .collect();
        // Longest first; ties by name so the result does not depend on map order.
        values.sort_by(|a, b| b.1.len().cmp(&a.1.len()).then_with(|| a.0.cmp(&b.0)));
        let mut out = String::with_capacity(text.len());
        let mut i = 0;
        'scan: while i < text.len() {
            for (k, v) in &values {
                if text[i..].starts_with(v.as_str()) {
                    out.push_str("##");
                    out.push_str(k);
                    out.push_str("##");
                    i += v.len();
                    continue 'scan;
                }
            }
            let ch = text[i..].chars().next().expect("inside the text");
            out.push(ch);
            i += ch.len_utf8();
        }
        out
    }

    fn sources_hint(&self) -> String {
        let mut from: Vec<String> = Vec::new();
        if let Some(m) = &self.mappings_from {
            from.push(m.clone());
        }
        if let Some(f) = &self.file_path {
            from.push(f.display().to_string());
        }
        if self.process_env {
            from.push("the environment".into());
        }
        if from.is_empty() {
            "no keyword values were provided (use --config config.json or a keywords .env file)".into()
        } else {
            format!("values come from {}", from.join(" or "))
        }
    }
}

/// `@@KEY@@` encoding of a text value: JSON lists/maps go in as JSON, anything else as a
/// JSON string.
fn json_encode(value: &str) -> String {
    match serde_json::from_str::<Value>(value.trim()) {
        Ok(v @ (Value::Array(_) | Value::Object(_))) => v.to_string(),
        _ => Value::String(value.to_string()).to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kw(pairs: &[(&str, &str)]) -> Keywords {
        let mut k = Keywords::new();
        for (a, b) in pairs {
            k.insert(*a, *b);
        }
        k
    }

    #[test]
    fn hash_form_is_plain_text() {
        let k = kw(&[("HOST", "cms.test"), ("PORT", "8080")]);
        assert_eq!(k.replace("url: https://##HOST##:##PORT##/x").unwrap(), "url: https://cms.test:8080/x");
    }

    #[test]
    fn at_form_is_json() {
        let k = kw(&[
            ("NAME", "say \"hi\""),
            ("LIST", r#"["https://a.test", "https://b.test"]"#),
            ("OBJ", "{\"a\": 1}"),
            ("NUM", "42"),
        ]);
        assert_eq!(k.replace("n: @@NAME@@").unwrap(), r#"n: "say \"hi\"""#);
        assert_eq!(k.replace("l: @@LIST@@").unwrap(), r#"l: ["https://a.test","https://b.test"]"#);
        assert_eq!(k.replace("o: @@OBJ@@").unwrap(), r#"o: {"a":1}"#);
        // Only arrays and objects go in raw: a number-looking value stays a string.
        assert_eq!(k.replace("x: @@NUM@@").unwrap(), r#"x: "42""#);
        // Quoted markers are replaced together with their quotes, as deploy-cli does.
        assert_eq!(k.replace(r#"l: "@@LIST@@""#).unwrap(), r#"l: ["https://a.test","https://b.test"]"#);
        assert_eq!(k.replace("n: '@@NAME@@'").unwrap(), r#"n: "say \"hi\"""#);
        // Mismatched quotes are left alone.
        assert_eq!(k.replace(r#"x: '@@NUM@@""#).unwrap(), r#"x: '"42"""#);
    }

    #[test]
    fn values_are_not_rescanned_and_non_markers_are_kept() {
        let k = kw(&[("A", "##B##"), ("B", "b")]);
        assert_eq!(k.replace("##A## ## not ## #x# ###B### @@ @a@").unwrap(), "##B## ## not ## #x# #b# @@ @a@");
    }

    #[test]
    fn missing_keywords_are_all_reported_with_lines() {
        let k = Keywords::from_env_text("A=1\n", "dev.env").unwrap();
        let err = k.replace_in("a: ##A##\nb: ##B##\nc: @@C@@\nd: ##B##\n", "tenant.yaml").unwrap_err();
        match &err {
            Error::MissingKeywords { origin, missing, .. } => {
                assert_eq!(origin, "tenant.yaml");
                assert_eq!(missing, &vec![("B".to_string(), 2), ("C".to_string(), 3)]);
            }
            other => panic!("unexpected {other:?}"),
        }
        assert_eq!(
            err.to_string(),
            "tenant.yaml: no value for keywords B (line 2), C (line 3); values come from dev.env"
        );
    }

    #[test]
    fn environment_beats_file_and_insert_beats_environment() {
        // cargo sets CARGO_PKG_NAME for the test process, so no test has to mutate the
        // environment (which would race with other tests).
        let text = "CARGO_PKG_NAME=from-file\nONLY_FILE=f\n";
        let file_only = Keywords::from_env_text(text, "dev.env").unwrap();
        assert_eq!(file_only.replace("##CARGO_PKG_NAME##").unwrap(), "from-file");

        let with_env = Keywords::from_env_text(text, "dev.env").unwrap().with_process_env();
        assert_eq!(with_env.replace("##CARGO_PKG_NAME## ##ONLY_FILE##").unwrap(), "tenant f");

        let mut fixed = with_env.clone();
        fixed.insert("CARGO_PKG_NAME", "fixed");
        assert_eq!(fixed.replace("##CARGO_PKG_NAME##").unwrap(), "fixed");
    }

    #[test]
    fn env_file_values_with_quotes_and_export() {
        let k = Keywords::from_env_text("# dev only\nexport A='x # y'\nB=\"p\\\"w\"\nC=plain # comment\n", "dev.env")
            .unwrap();
        assert_eq!(k.replace("##A##|##B##|##C##").unwrap(), "x # y|p\"w|plain");
        assert_eq!(k.replace("@@B@@").unwrap(), r#""p\"w""#);
    }

    #[test]
    fn restore_turns_values_back_into_markers() {
        let k = kw(&[
            ("BASE", "http://localhost:8080"),
            ("NS", "http://localhost:8080/ns/"),
            ("ENV", "dev"),
            ("QUOTED", "a\"bcdefgh"),
        ]);
        assert_eq!(
            k.restore("http://localhost:8080/web-login/callback http://localhost:8080/ns/x dev-users a\"bcdefgh"),
            "##BASE##/web-login/callback ##NS##x dev-users a\"bcdefgh"
        );
        // What restore writes, replace reads back.
        let text = "url: \"http://localhost:8080/x\"";
        assert_eq!(k.replace(&k.restore(text)).unwrap(), text);
    }

    #[test]
    fn markers_without_value_stay_and_are_listed_outside_comments() {
        let k = kw(&[("A", "1")]);
        let text = "# uses ##KEYWORDS## here\na: ##A##\nb: \"##B##\" # and ##C##\nc: '@@D@@'\n";
        let r = k.replace_all(text, "tenant.yaml", Syntax::Yaml).unwrap();
        assert_eq!(r.text, "# uses ##KEYWORDS## here\na: 1\nb: \"##B##\" # and ##C##\nc: '@@D@@'\n");
        let listed: Vec<(String, usize, bool)> =
            r.unresolved.iter().map(|u| (u.name.clone(), u.line, u.json)).collect();
        assert_eq!(listed, [("B".to_string(), 3, false), ("D".to_string(), 4, true)]);
        assert_eq!(r.unresolved[0].to_string(), "tenant.yaml line 3: ##B## has no value and is left as text");
        // Outside YAML, a `#` opens no comment.
        let r = k.replace_all("x # ##C##", "code.js", Syntax::Plain).unwrap();
        assert_eq!(r.unresolved.len(), 1);
    }

    #[test]
    fn config_json_mappings_go_in_as_json_and_lose_to_fixed_values() {
        let mut mappings = BTreeMap::new();
        mappings.insert("LIST".to_string(), serde_json::json!(["https://##HOST##/a", "b"]));
        mappings.insert("NUM".to_string(), serde_json::json!(42));
        mappings.insert("S".to_string(), serde_json::json!("[1]"));
        mappings.insert("OBJ".to_string(), serde_json::json!({"a": 1}));
        mappings.insert("HOST".to_string(), serde_json::json!("from-mappings"));
        let mut k = Keywords::from_env_text("HOST=from-file\nNUM=7\n", "dev.env")
            .unwrap()
            .with_mappings(mappings, "config.json");
        assert_eq!(
            k.replace("@@LIST@@ ##LIST## @@NUM@@ ##NUM## @@S@@").unwrap(),
            r#"["https://from-mappings/a","b"] https://##HOST##/a,b 42 42 "[1]""#
        );
        k.insert("HOST", "fixed");
        assert_eq!(k.replace("l: '@@LIST@@'").unwrap(), r#"l: ["https://fixed/a","b"]"#);
        let err = k.replace_all("a\nx: ##OBJ##", "t.yaml", Syntax::Yaml).unwrap_err();
        assert!(err.to_string().contains("t.yaml line 2: ##OBJ##: its value is a map"), "{err}");
        let r = k.replace_all("  urls: @@OBJ@@\n", "t.yaml", Syntax::Yaml).unwrap();
        assert_eq!(r.json_uses[0].before, "  urls: ");
        assert_eq!(r.json_uses[0].json, r#"{"a":1}"#);
        assert_eq!(k.json_values().len(), 2);
    }

    #[test]
    fn debug_does_not_show_values() {
        let k = kw(&[("SECRET", "hunter2")]);
        let shown = format!("{k:?}");
        assert!(shown.contains("SECRET") && !shown.contains("hunter2"), "{shown}");
    }
}
