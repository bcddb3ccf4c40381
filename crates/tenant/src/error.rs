//! The crate's one error type. Every variant names where the problem is — the file, and for
//! tenant.yaml the section, the entry (by its name) and the key — because these errors are
//! read by people editing configuration, usually far from the code that raised them.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {}: {source}", path.display())]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// A line of a `.env` file that is not `KEY=value`, a comment or blank.
    #[error("{file} line {line}: {message}")]
    EnvFile { file: String, line: usize, message: String },

    /// Keywords referenced as `##KEY##` / `@@KEY@@` that have no value. All of them are listed
    /// at once, so a missing `.env` entry is fixed in one round instead of one per run.
    #[error("{origin}: no value for keyword{} {}; {sources}",
        if missing.len() == 1 { "" } else { "s" },
        missing.iter().map(|(k, line)| format!("{k} (line {line})")).collect::<Vec<_>>().join(", "))]
    MissingKeywords {
        /// The file (or text) in which the keywords appear.
        origin: String,
        /// Keyword name and the 1-based line of its first use.
        missing: Vec<(String, usize)>,
        /// Where values could have come from, e.g. "values come from dev.env or the environment".
        sources: String,
    },

    /// A keyword whose value cannot stand where its marker does.
    #[error("{origin} line {line}: {message}")]
    Keyword { origin: String, line: usize, message: String },

    /// deploy-cli's config.json (or an `AUTH0_*` variable) that cannot be used; `key` names
    /// the setting.
    #[error("{origin}: {key}: {message}")]
    Config { origin: String, key: String, message: String },

    /// Two files of a directory-format tenant describe the same object.
    #[error("{first} and {second} both describe {what}")]
    DuplicateFile { first: String, second: String, what: String },

    /// The file is not syntactically valid YAML / JSON.
    #[error("{file}: {message}")]
    Syntax { file: String, message: String },

    /// A whole section has the wrong shape (e.g. `clients` is not a list).
    #[error("{file}: section `{section}`: {message}")]
    Section { file: String, section: String, message: String },

    /// An entry of a section is wrong as a whole (missing name, duplicate, dangling binding).
    /// `entry` is the entry's name in quotes, or its 0-based position when it has no name.
    #[error("{file}: {section}[{entry}]: {message}")]
    Entry { file: String, section: String, entry: String, message: String },

    /// One key of an entry has a wrong value (wrong type, missing file, bad enum value).
    /// `entry` is empty for sections that are a single object (`tenant`); `key` is a path such
    /// as `jwt_configuration.lifetime_in_seconds` or `callbacks[0]`.
    #[error("{file}: {}: {message}", field_path(section, entry, key))]
    Field { file: String, section: String, entry: String, key: String, message: String },

    /// A user-import file that cannot be processed at all (not a JSON array). Problems with
    /// single users are not errors: they are reported per row in `UserImport::errors`.
    #[error("{file}: {message}")]
    UsersFile { file: String, message: String },

    /// Writing an export failed.
    #[error("cannot write {}: {source}", path.display())]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    /// The Management API (or the token endpoint) could not be reached, or answered with an
    /// error. `request` is `METHOD URL` (never a body: bodies may hold secrets); `message`
    /// carries Auth0's own words (`401 Unauthorized: Invalid token`) and a hint when one helps.
    #[error("{request}: {message}")]
    Remote { request: String, message: String },

    /// The tenant file refers to something neither it nor the target tenant has (checked before
    /// anything is written).
    #[error("cannot import: {}", problems.join("; "))]
    Unresolved { problems: Vec<String> },

    /// An import that failed after writing: what was applied, then the cause.
    #[error("import stopped: {cause}\napplied before it stopped ({}):{}",
        applied.len(),
        if applied.is_empty() { " nothing".to_string() } else {
            applied.iter().map(|a| format!("\n  {a}")).collect::<String>()
        })]
    ImportStopped { applied: Vec<String>, cause: Box<Error> },
}

/// `clients["CMS"].callbacks`, or `tenant.allowed_logout_urls` for single-object sections.
fn field_path(section: &str, entry: &str, key: &str) -> String {
    let mut out = section.to_string();
    if !entry.is_empty() {
        out.push('[');
        out.push_str(entry);
        out.push(']');
    }
    if !key.is_empty() {
        if !key.starts_with('[') {
            out.push('.');
        }
        out.push_str(key);
    }
    out
}
