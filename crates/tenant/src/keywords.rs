//! auth0-deploy-cli's keyword replacement, applied to the raw text of tenant.yaml, of the files
//! it references (action code, database scripts) and of users.json.
//!
//! Two forms, as in deploy-cli (`AUTH0_KEYWORD_REPLACE_MAPPINGS`):
//! - `##KEY##` is replaced by the value as plain text;
//! - `@@KEY@@` is replaced by the value JSON-encoded (deploy-cli runs `JSON.stringify` on the
//!   mapping value). deploy-cli mappings are JSON values, ours come from `.env` files and are
//!   strings, so the rule is: a value that parses as a JSON array or object is inserted as that
//!   JSON (compact, one line, so it is valid YAML flow syntax too); any other value is inserted
//!   as a JSON string literal, quotes and escapes included. Like deploy-cli, a marker wrapped in
//!   matching quotes (`"@@KEY@@"` or `'@@KEY@@'`) is replaced together with its quotes, which
//!   lets files stay valid YAML/JSON before replacement.
//!
//! Where we differ from deploy-cli, on purpose:
//! - a referenced keyword without a value is an error listing every such keyword (deploy-cli
//!   leaves the marker in place and the tenant silently gets `##KEY##` as a value);
//! - markers are found in one left-to-right pass and inserted values are never rescanned, so a
//!   value containing `##OTHER##` is inserted literally;
//! - every marker counts, including ones inside YAML comments.
//!
//! Values are looked up in this order: [`Keywords::insert`] (values the program itself decides,
//! such as the idp's own `AUTH0_DOMAIN`, which a developer's shell must not override), then the
//! process environment when enabled, then the `.env` file — the environment beats the file, as
//! with dotenv.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// Keyword values for replacement. `Debug` shows keys only: values are often secrets.
#[derive(Clone, Default)]
pub struct Keywords {
    fixed: BTreeMap<String, String>,
    file: BTreeMap<String, String>,
    file_path: Option<PathBuf>,
    process_env: bool,
}

impl fmt::Debug for Keywords {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Keywords")
            .field("fixed", &self.fixed.keys().collect::<Vec<_>>())
            .field("file", &self.file_path)
            .field("file_keys", &self.file.keys().collect::<Vec<_>>())
            .field("process_env", &self.process_env)
            .finish()
    }
}

/// Values shorter than this are never turned back into markers by [`Keywords::restore`].
pub const MIN_RESTORED_LEN: usize = 6;

/// Keyword names are `[A-Za-z0-9_]+`.
pub fn is_keyword_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_name_byte)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

impl Keywords {
    /// No values at all: any marker in a replaced text is an error.
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

    /// Set a value that wins over both the environment and the file. Names outside
    /// `[A-Za-z0-9_]+` can be stored but never match a marker.
    pub fn insert(&mut self, key: impl Into<String>, value: impl Into<String>) -> &mut Self {
        self.fixed.insert(key.into(), value.into());
        self
    }

    /// Also look keywords up in the process environment, which then beats the file. Only
    /// keywords a text actually references are read from the environment.
    pub fn with_process_env(mut self) -> Self {
        self.process_env = true;
        self
    }

    /// The value a keyword resolves to, if any.
    pub fn get(&self, key: &str) -> Option<String> {
        if let Some(v) = self.fixed.get(key) {
            return Some(v.clone());
        }
        if self.process_env
            && let Ok(v) = std::env::var(key)
        {
            return Some(v);
        }
        self.file.get(key).cloned()
    }

    /// The `.env` file the values came from, if any.
    pub fn env_file(&self) -> Option<&Path> {
        self.file_path.as_deref()
    }

    /// Replace every marker in `text`; see the module docs for the rules.
    pub fn replace(&self, text: &str) -> Result<String> {
        self.replace_in(text, "text")
    }

    /// Like [`Keywords::replace`], naming `origin` (usually the file) in errors.
    pub fn replace_in(&self, text: &str, origin: &str) -> Result<String> {
        let mut out = String::with_capacity(text.len());
        let mut missing: Vec<(String, usize)> = Vec::new();
        let bytes = text.as_bytes();
        let mut last = 0; // end of the text already copied to `out`
        let mut line = 1;
        let mut line_counted_to = 0;
        let mut i = 0;
        while i + 1 < bytes.len() {
            let Some(marker) = marker_at(bytes, i, last) else {
                i += 1;
                continue;
            };
            line += bytecount_newlines(&bytes[line_counted_to..marker.start]);
            line_counted_to = marker.start;
            let name = &text[marker.name.0..marker.name.1];
            match self.get(name) {
                Some(value) => {
                    out.push_str(&text[last..marker.start]);
                    if marker.json {
                        out.push_str(&json_encode(&value));
                    } else {
                        out.push_str(&value);
                    }
                }
                None => {
                    if !missing.iter().any(|(k, _)| k == name) {
                        missing.push((name.to_string(), line));
                    }
                    // Keep going so the error can list every missing keyword.
                    out.push_str(&text[last..marker.end]);
                }
            }
            last = marker.end;
            i = marker.end;
        }
        if !missing.is_empty() {
            return Err(Error::MissingKeywords { origin: origin.to_string(), missing, sources: self.sources_hint() });
        }
        out.push_str(&text[last..]);
        Ok(out)
    }

    /// Every keyword with a known name (inserted or from the `.env` file) and the value it
    /// resolves to (the environment winning over the file, as in [`Keywords::get`]). The
    /// environment alone is not enumerated: only keywords a file names count.
    pub fn values(&self) -> Vec<(String, String)> {
        let mut names: Vec<&String> = self.fixed.keys().chain(self.file.keys()).collect();
        names.sort();
        names.dedup();
        names.into_iter().filter_map(|k| self.get(k).map(|v| (k.clone(), v))).collect()
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
        let file = self.file_path.as_ref().map(|p| p.display().to_string());
        match (file, self.process_env) {
            (Some(f), true) => format!("values come from {f} or the environment"),
            (Some(f), false) => format!("values come from {f}"),
            (None, true) => "values come from the environment".to_string(),
            (None, false) => "no keyword values were provided (use a keywords .env file)".into(),
        }
    }
}

struct Marker {
    start: usize,
    end: usize,
    name: (usize, usize),
    json: bool,
}

/// A `##NAME##` or `@@NAME@@` marker starting at `i`, if there is one. `copied` is where the
/// uncopied text begins: a quote before that was already consumed and cannot be swallowed.
fn marker_at(bytes: &[u8], i: usize, copied: usize) -> Option<Marker> {
    let delim = match (bytes[i], bytes.get(i + 1)) {
        (b'#', Some(b'#')) => b'#',
        (b'@', Some(b'@')) => b'@',
        _ => return None,
    };
    let name_start = i + 2;
    let mut j = name_start;
    while j < bytes.len() && is_name_byte(bytes[j]) {
        j += 1;
    }
    if j == name_start || bytes.get(j) != Some(&delim) || bytes.get(j + 1) != Some(&delim) {
        return None;
    }
    let mut start = i;
    let mut end = j + 2;
    let json = delim == b'@';
    if json && i > copied {
        let before = bytes[i - 1];
        if (before == b'"' || before == b'\'') && bytes.get(end) == Some(&before) {
            start -= 1;
            end += 1;
        }
    }
    Some(Marker { start, end, name: (name_start, j), json })
}

fn bytecount_newlines(bytes: &[u8]) -> usize {
    bytes.iter().filter(|b| **b == b'\n').count()
}

/// `@@KEY@@` encoding: JSON arrays/objects go in as JSON, anything else as a JSON string.
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
    fn debug_does_not_show_values() {
        let k = kw(&[("SECRET", "hunter2")]);
        let shown = format!("{k:?}");
        assert!(shown.contains("SECRET") && !shown.contains("hunter2"), "{shown}");
    }
}
