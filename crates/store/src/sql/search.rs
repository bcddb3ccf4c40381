//! A search [`Query`] as SQL: one walk over the query writes the `WHERE` condition for either
//! database, branching on [`Dialect`] only in the small functions that spell an expression.
//! Every value from the query is a bound parameter; the only names written into the SQL are
//! the root fields' keys, which come from this file, never from the query.
//!
//! How fields are reached:
//! - `user_id`, `email` (the `email_lower` column), `created_at`, `updated_at` are columns;
//!   other root fields are read from the JSON document (`json_extract` on SQLite, `->>` on a
//!   `data::jsonb` on PostgreSQL).
//! - Paths with transparent array levels (metadata, `identities.*`): on PostgreSQL a lax-mode
//!   `jsonpath` with `@?` on the `app_metadata` (`user_metadata`, `identities`) `jsonb` column
//!   migration 3 derives from the document (what its GIN indexes serve). The path is a bound
//!   parameter; keys and the compared value sit inside it as JSON strings and numbers written
//!   by `serde_json`. On SQLite one `json_each` per level, where a level is either an object
//!   or an array of objects (PostgreSQL's lax mode also unwraps one array level per step).
//! - Case-insensitive fields compare lower-cased text. `email` uses the `email_lower` column,
//!   written with Rust's Unicode lower-casing; `name`, `given_name`, `family_name` and
//!   `nickname` fold ASCII letters only, the one folding both databases do alike (SQLite's
//!   `lower()` knows no other letters).
//! - Wildcards: SQLite's `GLOB` (case-sensitive, unlike its `LIKE`), PostgreSQL's `LIKE` with
//!   `\` as escape, and inside `identities` an anchored `like_regex`; what the query meant
//!   literally (`%`, `_`, `*`, `?`, `[`, regex operators) is escaped. On a column, a pattern
//!   that starts with literal text also gets that prefix's range, which the column's index
//!   serves even in a prepared statement's generic plan.
//! - PostgreSQL predicates stay single operators, never set-returning functions in subqueries:
//!   those inflate the plan's estimated cost until JIT compilation kicks in and takes seconds.
//! - SQL's `NULL` (a field the user lacks) would make `NOT` unknown; every negation treats it
//!   as "no match", so `NOT last_login:[…]` includes users who never logged in.

use super::{Dialect, Query as SqlQuery};
use crate::search::{
    FlagField, Literal, Number, NumberField, Pattern, PatternPart, Predicate, Query, Range, RootField, SortField,
    Target, TextField, TextMatch,
};

/// A value bound to a `$n` placeholder.
#[derive(Debug, Clone, PartialEq)]
pub(super) enum Param {
    Text(String),
    Int(i64),
    Float(f64),
}

/// A condition on the `users` table and the parameters it binds as `$1…$n`.
#[derive(Debug)]
pub(super) struct Condition {
    pub sql: String,
    pub params: Vec<Param>,
}

/// The `WHERE` condition selecting the users `query` matches (all users for `None`).
pub(super) fn condition(dialect: Dialect, query: Option<&Query>) -> Condition {
    let mut writer = Writer { dialect, params: Vec::new() };
    let sql = match query {
        Some(query) => writer.query(query),
        None => "TRUE".to_owned(),
    };
    Condition { sql, params: writer.params }
}

/// Binds `params` in order after whatever `q` already binds.
pub(super) fn bind<'q>(mut q: SqlQuery<'q>, params: &[Param]) -> SqlQuery<'q> {
    for param in params {
        q = match param {
            Param::Text(text) => q.bind(text.clone()),
            Param::Int(n) => q.bind(*n),
            Param::Float(f) => q.bind(*f),
        };
    }
    q
}

/// The `ORDER BY` list: the sort field with missing values last (as Auth0 does in either
/// direction), then `user_id` so equal values still page in a stable order. Text sorts by
/// code point on both databases.
pub(super) fn order_by(dialect: Dialect, sort: Option<(SortField, bool)>) -> String {
    let tie = binary(dialect, "users.user_id");
    let Some((field, ascending)) = sort else { return format!("{tie} ASC") };
    let expr = match field {
        SortField::UserId => tie.clone(),
        SortField::Email => binary(dialect, "users.email_lower"),
        SortField::Name => binary(dialect, &json_text(dialect, "name")),
        SortField::GivenName => binary(dialect, &json_text(dialect, "given_name")),
        SortField::FamilyName => binary(dialect, &json_text(dialect, "family_name")),
        SortField::Nickname => binary(dialect, &json_text(dialect, "nickname")),
        SortField::Username => binary(dialect, &json_text(dialect, "username")),
        SortField::CreatedAt => number_expr(dialect, NumberField::CreatedAt),
        SortField::UpdatedAt => number_expr(dialect, NumberField::UpdatedAt),
        SortField::LastLogin => number_expr(dialect, NumberField::LastLogin),
        SortField::LoginsCount => number_expr(dialect, NumberField::LoginsCount),
    };
    let direction = if ascending { "ASC" } else { "DESC" };
    format!("{expr} {direction} NULLS LAST, {tie} ASC")
}

/// Where a root text field's value comes from.
#[derive(Clone, Copy)]
enum Source {
    /// One value per user, and how it is case-folded.
    Scalar(Scalar, Fold),
    /// A member of each `identities` entry, compared as written.
    Identity(&'static str),
}

#[derive(Clone, Copy)]
enum Scalar {
    Column(&'static str),
    /// A string member of the document.
    Json(&'static str),
    EmailDomain,
}

/// How values are case-folded before comparing.
#[derive(Clone, Copy, PartialEq)]
enum Fold {
    None,
    /// The stored side is lower-cased already (by Rust, at write time).
    Stored,
    /// Both sides fold ASCII letters.
    Ascii,
}

fn source(field: TextField) -> Source {
    use Source::{Identity, Scalar as S};
    match field {
        TextField::UserId => S(Scalar::Column("users.user_id"), Fold::None),
        TextField::Email => S(Scalar::Column("users.email_lower"), Fold::Stored),
        TextField::EmailDomain => S(Scalar::EmailDomain, Fold::Stored),
        TextField::Name => S(Scalar::Json("name"), Fold::Ascii),
        TextField::GivenName => S(Scalar::Json("given_name"), Fold::Ascii),
        TextField::FamilyName => S(Scalar::Json("family_name"), Fold::Ascii),
        TextField::Nickname => S(Scalar::Json("nickname"), Fold::Ascii),
        TextField::Username => S(Scalar::Json("username"), Fold::None),
        TextField::PhoneNumber => S(Scalar::Json("phone_number"), Fold::None),
        TextField::LastIp => S(Scalar::Json("last_ip"), Fold::None),
        TextField::IdentityConnection => Identity("connection"),
        TextField::IdentityProvider => Identity("provider"),
        TextField::IdentityUserId => Identity("user_id"),
    }
}

fn flag_key(field: FlagField) -> &'static str {
    match field {
        FlagField::EmailVerified => "email_verified",
        FlagField::PhoneVerified => "phone_verified",
        FlagField::Blocked => "blocked",
    }
}

/// What the innermost level of a path must hold.
#[derive(Clone, Copy)]
enum Leaf<'a> {
    Literal(&'a Literal),
    Text(&'a TextMatch),
    /// Some non-null scalar at or below it.
    Exists,
}

struct Writer {
    dialect: Dialect,
    params: Vec<Param>,
}

impl Writer {
    fn bind(&mut self, param: Param) -> String {
        self.params.push(param);
        format!("${}", self.params.len())
    }

    fn bind_text(&mut self, text: impl Into<String>) -> String {
        self.bind(Param::Text(text.into()))
    }

    fn query(&mut self, query: &Query) -> String {
        match query {
            Query::All => "TRUE".to_owned(),
            Query::And(queries) => self.join(queries, " AND ", "TRUE"),
            Query::Or(queries) => self.join(queries, " OR ", "FALSE"),
            Query::Not(query) => format!("NOT COALESCE(({}), FALSE)", self.query(query)),
            Query::Match(predicate) => self.predicate(predicate),
        }
    }

    fn join(&mut self, queries: &[Query], separator: &str, empty: &str) -> String {
        if queries.is_empty() {
            return empty.to_owned();
        }
        let parts: Vec<String> = queries.iter().map(|q| format!("({})", self.query(q))).collect();
        parts.join(separator)
    }

    fn predicate(&mut self, predicate: &Predicate) -> String {
        match predicate {
            Predicate::Text { field, value } => self.text_field(*field, value),
            Predicate::AnyText(value) => {
                let parts: Vec<String> =
                    TextField::BARE.iter().map(|field| format!("({})", self.text_field(*field, value))).collect();
                parts.join(" OR ")
            }
            Predicate::Flag { field, value } => self.flag(*field, *value),
            Predicate::Number { field, range } => self.range(*field, *range),
            Predicate::Metadata { path, value } => self.path(path.kind().key(), path.segments(), Leaf::Literal(value)),
            Predicate::Exists(target) => self.exists(target),
        }
    }

    fn text_field(&mut self, field: TextField, value: &TextMatch) -> String {
        let (scalar, fold) = match source(field) {
            Source::Scalar(scalar, fold) => (scalar, fold),
            Source::Identity(key) => return self.path("identities", &[key.to_owned()], Leaf::Text(value)),
        };
        let value = match fold {
            Fold::None => value.clone(),
            Fold::Stored => fold_match(value, str::to_lowercase),
            Fold::Ascii => fold_match(value, str::to_ascii_lowercase),
        };
        let mut expr = self.scalar(scalar);
        if fold == Fold::Ascii {
            expr = match self.dialect {
                Dialect::Sqlite => format!("lower({expr})"),
                // The "C" collation makes lower() fold ASCII only, like SQLite's.
                Dialect::Postgres => format!("lower(({expr}) COLLATE \"C\")"),
            };
        }
        let condition = self.text_condition(&expr, &value);
        match (scalar, &value) {
            (Scalar::Column(_), TextMatch::Wildcard(pattern)) => match self.prefix_range(&expr, pattern) {
                Some(range) => format!("{condition} AND {range}"),
                None => condition,
            },
            _ => condition,
        }
    }

    /// For a wildcard that starts with literal text, the range of values starting with it:
    /// `expr >= prefix AND expr < successor(prefix)`, compared byte by byte (which is code
    /// point order in UTF-8), so a column's btree index serves it. PostgreSQL derives the same
    /// range from `LIKE` only when the pattern is known at planning time, never in the generic
    /// plan of a prepared statement; `~>=~`/`~<~` are the operators of the `text_pattern_ops`
    /// index on `email_lower`.
    fn prefix_range(&mut self, expr: &str, pattern: &Pattern) -> Option<String> {
        let Some(PatternPart::Literal(prefix)) = pattern.parts().first() else { return None };
        if prefix.is_empty() {
            return None;
        }
        let (at_least, below) = match self.dialect {
            Dialect::Sqlite => (">=", "<"),
            Dialect::Postgres => ("~>=~", "~<~"),
        };
        let mut range = format!("{expr} {at_least} {}", self.bind_text(prefix.as_str()));
        if let Some(upper) = successor(prefix) {
            range.push_str(&format!(" AND {expr} {below} {}", self.bind_text(upper)));
        }
        Some(range)
    }

    /// The SQL expression of a root text field that is no array.
    fn scalar(&self, scalar: Scalar) -> String {
        match scalar {
            Scalar::Column(column) => column.to_owned(),
            Scalar::Json(key) => json_text(self.dialect, key),
            Scalar::EmailDomain => {
                let position = match self.dialect {
                    Dialect::Sqlite => "instr(users.email_lower, '@')",
                    Dialect::Postgres => "strpos(users.email_lower, '@')",
                };
                format!("CASE WHEN {position} > 0 THEN substr(users.email_lower, {position} + 1) END")
            }
        }
    }

    fn text_condition(&mut self, expr: &str, value: &TextMatch) -> String {
        match value {
            TextMatch::Exact(text) => format!("{expr} = {}", self.bind_text(text.as_str())),
            TextMatch::Wildcard(pattern) => match self.dialect {
                Dialect::Sqlite => format!("{expr} GLOB {}", self.bind_text(glob(pattern))),
                Dialect::Postgres => format!("{expr} LIKE {} ESCAPE '\\'", self.bind_text(like(pattern))),
            },
        }
    }

    fn flag(&mut self, field: FlagField, value: bool) -> String {
        let key = flag_key(field);
        let value = self.bind_text(if value { "true" } else { "false" });
        match self.dialect {
            Dialect::Sqlite => format!("json_type(users.data, '$.{key}') = {value}"),
            Dialect::Postgres => format!("(users.data::jsonb -> '{key}') = CAST({value} AS jsonb)"),
        }
    }

    fn range(&mut self, field: NumberField, range: Range) -> String {
        let expr = number_expr(self.dialect, field);
        let mut parts = Vec::new();
        if let Some(min) = range.min {
            parts.push(format!("{expr} >= {}", self.bind(Param::Int(min))));
        }
        if let Some(max) = range.max {
            parts.push(format!("{expr} < {}", self.bind(Param::Int(max))));
        }
        if parts.is_empty() {
            return format!("{expr} IS NOT NULL");
        }
        parts.join(" AND ")
    }

    fn exists(&mut self, target: &Target) -> String {
        let field = match target {
            Target::Metadata(path) => return self.path(path.kind().key(), path.segments(), Leaf::Exists),
            Target::Root(field) => *field,
        };
        match field {
            RootField::Text(field) => match source(field) {
                Source::Identity(key) => self.path("identities", &[key.to_owned()], Leaf::Exists),
                Source::Scalar(scalar, _) => format!("{} IS NOT NULL", self.scalar(scalar)),
            },
            RootField::Flag(field) => {
                let key = flag_key(field);
                match self.dialect {
                    Dialect::Sqlite => format!("json_type(users.data, '$.{key}') IN ('true', 'false')"),
                    Dialect::Postgres => format!("jsonb_typeof(users.data::jsonb -> '{key}') = 'boolean'"),
                }
            }
            RootField::Number(field) => format!("{} IS NOT NULL", number_expr(self.dialect, field)),
        }
    }

    /// Whether some value at `root.segments…` (array levels transparent) satisfies `leaf`.
    /// `root` is one of this file's constants.
    fn path(&mut self, root: &'static str, segments: &[String], leaf: Leaf) -> String {
        match self.dialect {
            Dialect::Sqlite => self.sqlite_path(root, segments, leaf),
            Dialect::Postgres => self.postgres_path(root, segments, leaf),
        }
    }

    /// One `json_each` per level. A level's rows are the members of an object (the next key
    /// is picked among them) or the elements of an array (each element object is looked into
    /// for the next key); the innermost level's rows are the value itself when it is a scalar
    /// (`key` is NULL) or the elements of an array of scalars (`key` is an index).
    fn sqlite_path(&mut self, root: &str, segments: &[String], leaf: Leaf) -> String {
        let keys: Vec<&str> = std::iter::once(root).chain(segments.iter().map(String::as_str)).collect();
        let mut from = Vec::new();
        let mut conditions = Vec::new();
        let mut path = self.bind_text(format!("$.\"{root}\""));
        for level in 0..keys.len() {
            let row = format!("j{level}");
            let Some(next) = keys.get(level + 1) else {
                let function = if matches!(leaf, Leaf::Exists) { "json_tree" } else { "json_each" };
                from.push(format!("{function}(users.data, {path}) AS {row}"));
                conditions.push(self.sqlite_leaf(&row, leaf));
                break;
            };
            from.push(format!("json_each(users.data, {path}) AS {row}"));
            let next_key = self.bind_text(*next);
            let next_member = self.bind_text(format!(".\"{next}\""));
            conditions.push(format!(
                "((typeof({row}.key) = 'text' AND {row}.key = {next_key}) \
                 OR (typeof({row}.key) = 'integer' AND {row}.type = 'object'))"
            ));
            path = format!(
                "CASE WHEN typeof({row}.key) = 'text' THEN {row}.fullkey ELSE {row}.fullkey || {next_member} END"
            );
        }
        let exists = format!("EXISTS (SELECT 1 FROM {} WHERE {})", from.join(", "), conditions.join(" AND "));
        // A string the leaf must equal is in the document as `serde_json` wrote it (every
        // document is written by `to_json`): finding that text first is a cheap necessary
        // condition that spares parsing the documents that cannot match.
        let needle = match leaf {
            Leaf::Text(TextMatch::Exact(text)) => Some(text.as_str()),
            Leaf::Literal(literal) if literal.number.is_none() && literal.boolean.is_none() => {
                Some(literal.text.as_str())
            }
            _ => None,
        };
        match needle {
            Some(text) => format!("(instr(users.data, {}) > 0 AND {exists})", self.bind_text(json_string(text))),
            None => exists,
        }
    }

    fn sqlite_leaf(&mut self, row: &str, leaf: Leaf) -> String {
        // Members of an object (text keys) are not values of the path itself.
        let scalar = format!("typeof({row}.key) <> 'text' AND {row}.type NOT IN ('object', 'array', 'null')");
        match leaf {
            Leaf::Exists => format!("{row}.type NOT IN ('object', 'array', 'null')"),
            Leaf::Text(value) => {
                let value = self.text_condition(&format!("{row}.value"), value);
                format!("{scalar} AND {row}.type = 'text' AND {value}")
            }
            Leaf::Literal(literal) => {
                let text = self.bind_text(literal.text.as_str());
                let mut alternatives = vec![format!("({row}.type = 'text' AND {row}.value = {text})")];
                if let Some(number) = literal.number {
                    let number = self.bind(match number {
                        Number::Integer(n) => Param::Int(n),
                        Number::Float(f) => Param::Float(f),
                    });
                    alternatives.push(format!("({row}.type IN ('integer', 'real') AND {row}.value = {number})"));
                }
                if let Some(boolean) = literal.boolean {
                    alternatives.push(format!("{row}.type = '{boolean}'"));
                }
                format!("{scalar} AND ({})", alternatives.join(" OR "))
            }
        }
    }

    /// A lax `jsonpath` on the `root` column, tested with `@?`: equality is a filter a
    /// GIN index can serve; a wildcard is a `like_regex` filter.
    fn postgres_path(&mut self, root: &str, segments: &[String], leaf: Leaf) -> String {
        // The `jsonb` column migration 3 derives from the document, indexed.
        let target = format!("users.{root}");
        let mut path = String::from("$");
        for segment in segments {
            path.push('.');
            path.push_str(&json_string(segment));
        }
        match leaf {
            Leaf::Exists => {
                path.push_str(r#".** ? (@.type() == "string" || @.type() == "number" || @.type() == "boolean")"#);
                format!("{target} @? CAST({} AS jsonpath)", self.bind_text(path))
            }
            Leaf::Literal(literal) => {
                let mut alternatives = vec![format!("@ == {}", json_string(&literal.text))];
                match literal.number {
                    Some(Number::Integer(n)) => alternatives.push(format!("@ == {n}")),
                    Some(Number::Float(f)) => alternatives.push(format!("@ == {f}")),
                    None => {}
                }
                if let Some(boolean) = literal.boolean {
                    alternatives.push(format!("@ == {boolean}"));
                }
                path.push_str(&format!(" ? ({})", alternatives.join(" || ")));
                format!("{target} @? CAST({} AS jsonpath)", self.bind_text(path))
            }
            Leaf::Text(TextMatch::Exact(text)) => {
                path.push_str(&format!(" ? (@ == {})", json_string(text)));
                format!("{target} @? CAST({} AS jsonpath)", self.bind_text(path))
            }
            Leaf::Text(TextMatch::Wildcard(pattern)) => {
                // An anchored regular expression inside the path, not a set-returning function
                // per term: a hundred of those lift the plan's cost past `jit_above_cost`, and
                // compiling it then takes seconds.
                path.push_str(&format!(" ? (@ like_regex {} flag \"s\")", json_string(&regex(pattern))));
                format!("{target} @? CAST({} AS jsonpath)", self.bind_text(path))
            }
        }
    }
}

/// A root field's string member of the document.
fn json_text(dialect: Dialect, key: &str) -> String {
    match dialect {
        Dialect::Sqlite => format!("json_extract(users.data, '$.{key}')"),
        Dialect::Postgres => format!("(users.data::jsonb ->> '{key}')"),
    }
}

/// A number field: a column for the two instants the table keeps, else the document member.
fn number_expr(dialect: Dialect, field: NumberField) -> String {
    let key = match field {
        NumberField::CreatedAt => return "users.created_at".to_owned(),
        NumberField::UpdatedAt => return "users.updated_at".to_owned(),
        NumberField::LoginsCount => "logins_count",
        NumberField::LastLogin => "last_login",
    };
    match dialect {
        Dialect::Sqlite => format!("json_extract(users.data, '$.{key}')"),
        Dialect::Postgres => format!("((users.data::jsonb ->> '{key}')::numeric)"),
    }
}

/// Text compared by code point, whatever the database's default collation.
fn binary(dialect: Dialect, expr: &str) -> String {
    match dialect {
        Dialect::Sqlite => expr.to_owned(),
        Dialect::Postgres => format!("{expr} COLLATE \"C\""),
    }
}

fn fold_match(value: &TextMatch, fold: fn(&str) -> String) -> TextMatch {
    match value {
        TextMatch::Exact(text) => TextMatch::Exact(fold(text)),
        TextMatch::Wildcard(pattern) => TextMatch::Wildcard(pattern.map_literals(fold)),
    }
}

/// A JSON string literal, which is also a `jsonpath` string literal (`serde_json` writes only
/// escapes both grammars share).
fn json_string(text: &str) -> String {
    serde_json::Value::String(text.to_owned()).to_string()
}

/// The least string greater than every string starting with `prefix` (in code point order):
/// its last character raised by one, dropping characters that cannot be raised; `None` when
/// no character can.
fn successor(prefix: &str) -> Option<String> {
    let mut chars: Vec<char> = prefix.chars().collect();
    while let Some(last) = chars.pop() {
        // Skips the surrogate gap; nothing follows char::MAX.
        if let Some(next) = (u32::from(last) + 1..=u32::from(char::MAX)).find_map(char::from_u32) {
            chars.push(next);
            return Some(chars.into_iter().collect());
        }
    }
    None
}

/// A SQLite `GLOB` pattern: `*` and `?` are the wildcards; brackets make them literal.
fn glob(pattern: &Pattern) -> String {
    let mut out = String::new();
    for part in pattern.parts() {
        match part {
            PatternPart::AnyRun => out.push('*'),
            PatternPart::AnyChar => out.push('?'),
            PatternPart::Literal(text) => {
                for c in text.chars() {
                    match c {
                        '*' => out.push_str("[*]"),
                        '?' => out.push_str("[?]"),
                        '[' => out.push_str("[[]"),
                        c => out.push(c),
                    }
                }
            }
        }
    }
    out
}

/// An anchored POSIX regular expression (for `jsonpath`'s `like_regex`): ASCII punctuation
/// and spaces are escaped with `\` (which makes any non-alphanumeric character literal);
/// other characters are never operators.
fn regex(pattern: &Pattern) -> String {
    let mut out = String::from("^");
    for part in pattern.parts() {
        match part {
            PatternPart::AnyRun => out.push_str(".*"),
            PatternPart::AnyChar => out.push('.'),
            PatternPart::Literal(text) => {
                for c in text.chars() {
                    if c.is_ascii() && !c.is_ascii_alphanumeric() {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
        }
    }
    out.push('$');
    out
}

/// A PostgreSQL `LIKE` pattern with `\` as escape character.
fn like(pattern: &Pattern) -> String {
    let mut out = String::new();
    for part in pattern.parts() {
        match part {
            PatternPart::AnyRun => out.push('%'),
            PatternPart::AnyChar => out.push('_'),
            PatternPart::Literal(text) => {
                for c in text.chars() {
                    if matches!(c, '\\' | '%' | '_') {
                        out.push('\\');
                    }
                    out.push(c);
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::parse;

    fn sql(dialect: Dialect, q: &str) -> Condition {
        condition(dialect, Some(&parse(q).unwrap()))
    }

    #[test]
    fn values_are_bound_never_written() {
        let hostile = r#"name:"x'); DROP TABLE users;--" OR app_metadata.a:"'\"%_\\" OR email:o'h*"#;
        for dialect in [Dialect::Sqlite, Dialect::Postgres] {
            let condition = sql(dialect, hostile);
            assert!(!condition.sql.contains("DROP"), "{}", condition.sql);
            assert!(!condition.sql.contains("o'h"), "{}", condition.sql);
            assert!(condition.params.contains(&Param::Text("x'); drop table users;--".into())), "{condition:?}");
        }
    }

    #[test]
    fn wildcard_patterns_escape_their_literals() {
        let pattern = Pattern::new(vec![
            PatternPart::Literal("a%_\\*?[".into()),
            PatternPart::AnyRun,
            PatternPart::Literal("z".into()),
            PatternPart::AnyChar,
        ])
        .unwrap();
        assert_eq!(like(&pattern), "a\\%\\_\\\\*?[%z_");
        assert_eq!(regex(&pattern), "^a\\%\\_\\\\\\*\\?\\[.*z.$");
        assert_eq!(glob(&pattern), "a%_\\[*][?][[]*z?");
    }

    #[test]
    fn postgres_paths_quote_keys_and_values_as_json() {
        let condition = sql(Dialect::Postgres, r#"app_metadata.plan.tier:"go\"ld""#);
        assert_eq!(condition.sql, "users.app_metadata @? CAST($1 AS jsonpath)");
        assert_eq!(condition.params, vec![Param::Text(r#"$."plan"."tier" ? (@ == "go\"ld")"#.into())]);
        let condition = sql(Dialect::Postgres, "app_metadata.level:-2.5");
        assert_eq!(condition.params, vec![Param::Text(r#"$."level" ? (@ == "-2.5" || @ == -2.5)"#.into())]);
    }

    #[test]
    fn prefix_wildcards_on_columns_add_an_indexable_range() {
        let condition = sql(Dialect::Postgres, "email:Ab*");
        assert_eq!(
            condition.sql,
            "users.email_lower LIKE $1 ESCAPE '\\' AND users.email_lower ~>=~ $2 AND users.email_lower ~<~ $3"
        );
        assert_eq!(
            condition.params,
            vec![Param::Text("ab%".into()), Param::Text("ab".into()), Param::Text("ac".into())]
        );
        let condition = sql(Dialect::Sqlite, "email:a*z");
        assert_eq!(condition.sql, "users.email_lower GLOB $1 AND users.email_lower >= $2 AND users.email_lower < $3");
        // No literal prefix, or a field read from the document: no range.
        assert_eq!(sql(Dialect::Sqlite, "email:*xyz").params.len(), 1);
        assert_eq!(sql(Dialect::Sqlite, "name:ab*").params.len(), 1);
        assert_eq!(successor("a\u{10FFFF}").as_deref(), Some("b"));
        assert_eq!(successor("\u{D7FF}").as_deref(), Some("\u{E000}"));
        assert_eq!(successor("\u{10FFFF}"), None);
    }

    #[test]
    fn sqlite_looks_for_an_exact_string_in_the_text_before_parsing() {
        let condition = sql(Dialect::Sqlite, r#"app_metadata.groups:"ad\"min""#);
        assert!(condition.sql.starts_with("(instr(users.data, $5) > 0 AND EXISTS ("), "{}", condition.sql);
        assert_eq!(condition.params[4], Param::Text(r#""ad\"min""#.into()));
        // A number may be written otherwise (`5`, `5.0`): no shortcut.
        assert!(sql(Dialect::Sqlite, "app_metadata.level:5").sql.starts_with("EXISTS"));
    }

    #[test]
    fn negation_counts_missing_fields_as_no_match() {
        let condition = sql(Dialect::Sqlite, "NOT last_login:[2024 TO *]");
        assert_eq!(condition.sql, "NOT COALESCE((json_extract(users.data, '$.last_login') >= $1), FALSE)");
    }

    #[test]
    fn sort_puts_missing_values_last_and_breaks_ties_by_user_id() {
        assert_eq!(order_by(Dialect::Sqlite, None), "users.user_id ASC");
        assert_eq!(
            order_by(Dialect::Postgres, Some((SortField::Name, false))),
            "(users.data::jsonb ->> 'name') COLLATE \"C\" DESC NULLS LAST, users.user_id COLLATE \"C\" ASC"
        );
    }
}
