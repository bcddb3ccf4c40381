//! Auth0's user search (`GET /api/v2/users?q=…&search_engine=v3`) as a typed query.
//!
//! [`parse`] reads the Lucene subset Auth0 documents into a [`Query`]; the store translates
//! that into SQL for SQLite or PostgreSQL (`sql/search.rs`), so a search never loads users into
//! memory. The types make the combinations Auth0 refuses unrepresentable: wildcards exist only
//! on root text fields, ranges only on numbers and dates, metadata only takes literals.
//!
//! Grammar decisions (where Lucene or Auth0 leave room):
//! - Terms side by side are OR-ed, Lucene's default operator (Auth0 runs Elasticsearch's
//!   `query_string`, whose default is OR): `a b` is `a OR b`.
//! - `AND` binds tighter than `OR` (`a OR b AND c` is `a OR (b AND c)`), and `NOT` tighter
//!   than both. Operators are upper case only, as Auth0 requires; `&&`, `||` and `!` are their
//!   spellings too.
//! - In a list of OR-ed clauses, Lucene's prefixes apply: `-x` (and `NOT x`, `!x`) excludes, `+x`
//!   requires, and when any clause is required the optional ones only rank, so they do not
//!   filter. `a -b` is "a but not b"; `NOT a` alone is "everyone but a".
//! - A date names a span: `2024`, `2024-05`, `2024-05-17`, a minute, a second or a millisecond,
//!   in UTC unless it carries an offset. `created_at:2024-05-17` matches the whole day; an
//!   inclusive upper bound includes its whole span (`[* TO 2024-12-31]` ends at 23:59:59.999, the
//!   rule Lucene's parser applies to inclusive date-only upper bounds), an exclusive upper bound
//!   stops before it, an inclusive lower bound starts with it and an exclusive lower bound starts
//!   after it (Elasticsearch's rounding for date ranges).
//! - Fields match their whole value, not words in it (search v3 does not tokenize); a term
//!   without a field matches any root text field and never metadata.

pub(crate) mod date;
mod parse;

pub use parse::parse;

use crate::StoredUser;

/// The longest query string accepted, in bytes.
pub const MAX_QUERY_BYTES: usize = 4096;
/// How deeply parentheses and `NOT`s may nest.
pub const MAX_DEPTH: usize = 32;
/// How many field terms one query may hold (a bare term counts once).
pub const MAX_TERMS: usize = 100;
/// Segments in a metadata path (`app_metadata.a.b.c` has three).
pub const MAX_PATH_SEGMENTS: usize = 10;
/// Auth0 returns at most this many matches for one query, across all pages.
pub const MAX_RESULTS: u64 = 1000;

/// A query Auth0 would refuse, with a message fit for the API caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct SearchError(pub(crate) String);

impl SearchError {
    pub fn message(&self) -> &str {
        &self.0
    }
}

/// A parsed search.
#[derive(Debug, Clone, PartialEq)]
pub enum Query {
    /// Every user: the empty query string.
    All,
    And(Vec<Query>),
    Or(Vec<Query>),
    Not(Box<Query>),
    Match(Predicate),
}

/// One condition on one field.
#[derive(Debug, Clone, PartialEq)]
pub enum Predicate {
    /// A root text field equals a value or matches a pattern.
    Text {
        field: TextField,
        value: TextMatch,
    },
    /// A term without a field: any of [`TextField::BARE`] matches.
    AnyText(TextMatch),
    Flag {
        field: FlagField,
        value: bool,
    },
    /// A number or an instant (milliseconds) within a range; equality is a range one unit wide.
    Number {
        field: NumberField,
        range: Range,
    },
    /// Some value at the path (array levels transparent) equals the literal.
    Metadata {
        path: MetadataPath,
        value: Literal,
    },
    /// The field holds a value (metadata: some non-null value at or below the path).
    Exists(Target),
}

/// A field an `_exists_` can name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Root(RootField),
    Metadata(MetadataPath),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RootField {
    Text(TextField),
    Flag(FlagField),
    Number(NumberField),
}

/// Root fields holding text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TextField {
    UserId,
    Email,
    /// The part of `email` after the `@`.
    EmailDomain,
    Name,
    GivenName,
    FamilyName,
    Nickname,
    Username,
    PhoneNumber,
    LastIp,
    IdentityConnection,
    IdentityProvider,
    IdentityUserId,
}

impl TextField {
    /// The fields a term without a field searches.
    pub const BARE: [TextField; 8] = [
        TextField::UserId,
        TextField::Email,
        TextField::Name,
        TextField::GivenName,
        TextField::FamilyName,
        TextField::Nickname,
        TextField::Username,
        TextField::PhoneNumber,
    ];

    /// Auth0 normalises these five and compares them case-insensitively.
    pub fn case_insensitive(self) -> bool {
        matches!(
            self,
            TextField::Email
                | TextField::EmailDomain
                | TextField::Name
                | TextField::GivenName
                | TextField::FamilyName
                | TextField::Nickname
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlagField {
    EmailVerified,
    PhoneVerified,
    Blocked,
}

/// Root fields holding numbers; the three dates are milliseconds since the epoch.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NumberField {
    LoginsCount,
    CreatedAt,
    UpdatedAt,
    LastLogin,
}

impl NumberField {
    pub fn is_date(self) -> bool {
        !matches!(self, NumberField::LoginsCount)
    }
}

impl RootField {
    /// Resolves a root field's name as Auth0 spells it.
    pub fn parse(name: &str) -> Option<RootField> {
        use RootField::{Flag, Number, Text};
        Some(match name {
            "user_id" => Text(TextField::UserId),
            "email" => Text(TextField::Email),
            "email.domain" => Text(TextField::EmailDomain),
            "name" => Text(TextField::Name),
            "given_name" => Text(TextField::GivenName),
            "family_name" => Text(TextField::FamilyName),
            "nickname" => Text(TextField::Nickname),
            "username" => Text(TextField::Username),
            "phone_number" => Text(TextField::PhoneNumber),
            "last_ip" => Text(TextField::LastIp),
            "identities.connection" => Text(TextField::IdentityConnection),
            "identities.provider" => Text(TextField::IdentityProvider),
            "identities.user_id" => Text(TextField::IdentityUserId),
            "email_verified" => Flag(FlagField::EmailVerified),
            "phone_verified" => Flag(FlagField::PhoneVerified),
            "blocked" => Flag(FlagField::Blocked),
            "logins_count" => Number(NumberField::LoginsCount),
            "created_at" => Number(NumberField::CreatedAt),
            "updated_at" => Number(NumberField::UpdatedAt),
            "last_login" => Number(NumberField::LastLogin),
            _ => return None,
        })
    }
}

/// How a text field is compared.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TextMatch {
    Exact(String),
    Wildcard(Pattern),
}

/// A wildcard pattern: literal runs, `*` (any run) and `?` (any one character).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Pattern(Vec<PatternPart>);

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PatternPart {
    Literal(String),
    AnyRun,
    AnyChar,
}

impl Pattern {
    /// Builds a pattern, refusing what Auth0 refuses: a pattern must keep one literal
    /// character, and three when it starts with a wildcard (suffix and infix searches).
    pub fn new(parts: Vec<PatternPart>) -> Result<Pattern, SearchError> {
        let literal_chars: usize = parts
            .iter()
            .map(|part| match part {
                PatternPart::Literal(text) => text.chars().count(),
                _ => 0,
            })
            .sum();
        let leading_wildcard = !matches!(parts.first(), Some(PatternPart::Literal(_)));
        if literal_chars == 0 {
            return Err(SearchError(
                "a wildcard needs literal characters; to find users having a field, use _exists_:field".into(),
            ));
        }
        if leading_wildcard && literal_chars < 3 {
            return Err(SearchError("a wildcard before the text needs at least 3 literal characters".into()));
        }
        Ok(Pattern(parts))
    }

    pub fn parts(&self) -> &[PatternPart] {
        &self.0
    }

    /// The same pattern with its literal text mapped (case folding).
    pub(crate) fn map_literals(&self, f: impl Fn(&str) -> String) -> Pattern {
        Pattern(
            self.0
                .iter()
                .map(|part| match part {
                    PatternPart::Literal(text) => PatternPart::Literal(f(text)),
                    other => other.clone(),
                })
                .collect(),
        )
    }
}

/// A range of integers: `min` inclusive, `max` exclusive, either open.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Range {
    pub min: Option<i64>,
    pub max: Option<i64>,
}

/// A metadata value as written. It matches a string equal to `text`, and also a number or a
/// boolean when the text reads as one (`3` matches `3`, `3.0` and `"3"`), as Elasticsearch's
/// coercion does.
#[derive(Debug, Clone, PartialEq)]
pub struct Literal {
    pub text: String,
    pub number: Option<Number>,
    pub boolean: Option<bool>,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Number {
    Integer(i64),
    Float(f64),
}

/// `app_metadata.…` or `user_metadata.…`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetadataKind {
    App,
    User,
}

impl MetadataKind {
    /// The document key the metadata lives under.
    pub fn key(self) -> &'static str {
        match self {
            MetadataKind::App => "app_metadata",
            MetadataKind::User => "user_metadata",
        }
    }
}

/// A path into metadata. Segments are validated: never empty, and free of the characters that
/// JSON paths quote or split on (`.`, `"`, `\`, `[`, `]`, `*`, whitespace, control characters).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetadataPath {
    kind: MetadataKind,
    segments: Vec<String>,
}

impl MetadataPath {
    /// Parses `app_metadata.a.b` / `user_metadata.a`; `None` when `field` names no metadata.
    pub fn parse(field: &str) -> Option<Result<MetadataPath, SearchError>> {
        let (kind, rest) = if let Some(rest) = field.strip_prefix("app_metadata") {
            (MetadataKind::App, rest)
        } else if let Some(rest) = field.strip_prefix("user_metadata") {
            (MetadataKind::User, rest)
        } else {
            return None;
        };
        if rest.is_empty() {
            return Some(Ok(MetadataPath { kind, segments: Vec::new() }));
        }
        let rest = rest.strip_prefix('.')?;
        Some(Self::new(kind, rest.split('.').map(str::to_owned).collect()))
    }

    pub fn new(kind: MetadataKind, segments: Vec<String>) -> Result<MetadataPath, SearchError> {
        if segments.len() > MAX_PATH_SEGMENTS {
            return Err(SearchError(format!("metadata paths have at most {MAX_PATH_SEGMENTS} levels")));
        }
        for segment in &segments {
            let bad = |c: char| matches!(c, '.' | '"' | '\\' | '[' | ']' | '*') || c.is_whitespace() || c.is_control();
            if segment.is_empty() || segment.len() > 256 || segment.contains(bad) {
                return Err(SearchError(format!("invalid metadata field name {segment:?}")));
            }
        }
        Ok(MetadataPath { kind, segments })
    }

    pub fn kind(&self) -> MetadataKind {
        self.kind
    }

    /// The keys below `app_metadata` / `user_metadata`; empty for the whole object.
    pub fn segments(&self) -> &[String] {
        &self.segments
    }
}

/// The root fields results can be sorted by (Auth0 sorts by no metadata).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SortField {
    UserId,
    Email,
    Name,
    GivenName,
    FamilyName,
    Nickname,
    Username,
    CreatedAt,
    UpdatedAt,
    LastLogin,
    LoginsCount,
}

impl SortField {
    /// Resolves the field part of Auth0's `sort=field:1`.
    pub fn parse(name: &str) -> Option<SortField> {
        Some(match name {
            "user_id" => SortField::UserId,
            "email" => SortField::Email,
            "name" => SortField::Name,
            "given_name" => SortField::GivenName,
            "family_name" => SortField::FamilyName,
            "nickname" => SortField::Nickname,
            "username" => SortField::Username,
            "created_at" => SortField::CreatedAt,
            "updated_at" => SortField::UpdatedAt,
            "last_login" => SortField::LastLogin,
            "logins_count" => SortField::LoginsCount,
            _ => return None,
        })
    }
}

/// One page of a user search.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct UserSearch {
    /// `None` lists every user.
    pub query: Option<Query>,
    /// The field and `true` for ascending. Without it, users come in `user_id` order; ties in
    /// any order are broken by `user_id`, so pages never overlap.
    pub sort: Option<(SortField, bool)>,
    /// 0-based.
    pub page: u32,
    pub per_page: u32,
    /// Also count every match (Auth0's `include_totals`): a second statement, as costly as
    /// the page itself, so only when asked.
    pub totals: bool,
}

/// A page of users and, when [`UserSearch::totals`] asked, how many matched in all, both
/// within Auth0's first [`MAX_RESULTS`].
#[derive(Debug, Clone, PartialEq)]
pub struct UserPage {
    pub users: Vec<StoredUser>,
    pub total: Option<u64>,
}

#[cfg(test)]
mod tests;
