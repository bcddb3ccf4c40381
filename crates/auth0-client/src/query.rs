//! `GET /users`: the CRUD-style query and the `acl_rows` header translated to Auth0's user search
//! (`search_engine=v3`, Lucene syntax), spec 2.8:
//!
//! ```text
//! q = "(" F ")" [" AND (" ACL ")"]   then   "(" that ")" " AND (" C1 " OR " C2 … ")"
//! ```
//!
//! F is the filters ANDed in request order, ACL the row filter, C the connections (requested ∩
//! supported; all supported when none requested or none survive; the requested ones as they are
//! when the management client lists none). Exact values are quoted phrases, values holding `*`
//! are left unquoted with every other Lucene special character escaped.

use crate::error::{Error, Result};
use serde_json::Value;

pub const DEFAULT_PER_PAGE: u32 = 25;
pub const MAX_PER_PAGE: u32 = 100;

/// The Auth0 query string for `/api/v2/users`, in order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translated {
    pub params: Vec<(String, String)>,
    /// The `q` parameter, when there is one (also inside `params`).
    pub q: Option<String>,
}

fn bad(msg: impl Into<String>) -> Error {
    Error::BadRequest(msg.into())
}

/// Field names go into the query verbatim, so they are kept to a safe alphabet.
fn check_field(f: &str) -> Result<()> {
    let ok = !f.is_empty()
        && f.len() <= 200
        && f.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
        && !f.starts_with('.')
        && !f.ends_with('.');
    if ok { Ok(()) } else { Err(bad(format!("invalid field name {f:?}"))) }
}

/// `field:"value"` or, with a wildcard, `field:val\ ue*`.
pub fn clause(field: &str, value: &str) -> String {
    if value.contains('*') {
        let mut out = String::with_capacity(field.len() + value.len() + 4);
        out.push_str(field);
        out.push(':');
        for c in value.chars() {
            if matches!(
                c,
                '+' | '-'
                    | '&'
                    | '|'
                    | '!'
                    | '('
                    | ')'
                    | '{'
                    | '}'
                    | '['
                    | ']'
                    | '^'
                    | '"'
                    | '~'
                    | '?'
                    | ':'
                    | '\\'
                    | '/'
            ) || c.is_whitespace()
            {
                out.push('\\');
            }
            out.push(c);
        }
        out
    } else {
        phrase(field, value)
    }
}

/// `field:"value"`: the value matched exactly, a `*` in it included.
pub fn phrase(field: &str, value: &str) -> String {
    let escaped = value.replace('\\', "\\\\").replace('"', "\\\"");
    format!("{field}:\"{escaped}\"")
}

/// A JSON scalar of a row filter as a clause (numbers and booleans unquoted).
fn literal_clause(field: &str, v: &Value) -> Result<String> {
    match v {
        Value::String(s) => Ok(clause(field, s)),
        Value::Number(n) => Ok(format!("{field}:{n}")),
        Value::Bool(b) => Ok(format!("{field}:{b}")),
        _ => Err(bad(format!("acl_rows: unsupported value for {field:?} (a string, number or boolean is needed)"))),
    }
}

/// The `acl_rows` MongoDB-style filter as Lucene (without outer parentheses).
pub fn acl_to_lucene(filter: &Value) -> Result<String> {
    fn node(v: &Value, depth: usize) -> Result<String> {
        if depth > 16 {
            return Err(bad("acl_rows: nested too deeply"));
        }
        let Value::Object(m) = v else { return Err(bad("acl_rows: a filter must be a JSON object")) };
        if m.is_empty() {
            return Err(bad("acl_rows: an empty filter"));
        }
        let mut parts = Vec::new();
        for (k, v) in m {
            match k.as_str() {
                "$and" | "$or" => {
                    let Value::Array(items) = v else { return Err(bad(format!("acl_rows: {k} needs an array"))) };
                    if items.is_empty() {
                        return Err(bad(format!("acl_rows: {k} needs at least one filter")));
                    }
                    let op = if k == "$and" { " AND " } else { " OR " };
                    let inner = items
                        .iter()
                        .map(|i| node(i, depth + 1).map(|s| format!("({s})")))
                        .collect::<Result<Vec<_>>>()?;
                    parts.push(if inner.len() == 1 { inner[0].clone() } else { format!("({})", inner.join(op)) });
                }
                op if op.starts_with('$') => {
                    return Err(bad(format!("acl_rows: the operator {op} is not supported ($and, $or, $in, $eq are)")));
                }
                field => {
                    check_field(field)?;
                    parts.push(field_condition(field, v)?);
                }
            }
        }
        Ok(parts.join(" AND "))
    }
    fn field_condition(field: &str, v: &Value) -> Result<String> {
        let Value::Object(ops) = v else { return literal_clause(field, v) };
        let mut parts = Vec::new();
        for (op, arg) in ops {
            match op.as_str() {
                "$eq" => parts.push(literal_clause(field, arg)?),
                "$in" => {
                    let Value::Array(items) = arg else {
                        return Err(bad(format!("acl_rows: $in on {field:?} needs an array")));
                    };
                    if items.is_empty() {
                        return Err(bad(format!("acl_rows: $in on {field:?} is empty")));
                    }
                    let alts = items.iter().map(|i| literal_clause(field, i)).collect::<Result<Vec<_>>>()?;
                    parts.push(format!("({})", alts.join(" OR ")));
                }
                other => {
                    return Err(bad(format!(
                        "acl_rows: the operator {other} on {field:?} is not supported ($in and $eq are)"
                    )));
                }
            }
        }
        if parts.is_empty() {
            return Err(bad(format!("acl_rows: no condition on {field:?}")));
        }
        Ok(parts.join(" AND "))
    }
    node(filter, 0)
}

/// Translates `GET /users`'s query pairs and `acl_rows` header. `supported` is the management
/// client's connection list (empty: none configured).
pub fn translate(pairs: &[(String, String)], acl_rows: Option<&str>, supported: &[String]) -> Result<Translated> {
    let mut per_page = DEFAULT_PER_PAGE;
    let mut skip: u64 = 0;
    let mut filters = Vec::new();
    let mut requested: Vec<String> = Vec::new();
    let mut passthrough = Vec::new();
    for (k, v) in pairs {
        match k.as_str() {
            "_l" => {
                let n: u64 =
                    v.trim().parse().map_err(|_| bad(format!("_l must be a non-negative integer, got {v:?}")))?;
                per_page = n.clamp(1, MAX_PER_PAGE as u64) as u32;
            }
            "_sk" => {
                skip = v.trim().parse().map_err(|_| bad(format!("_sk must be a non-negative integer, got {v:?}")))?;
            }
            "email" | "nickname" | "username" => filters.push(clause(k, v)),
            "connection" => {
                requested.extend(v.split(',').map(str::trim).filter(|c| !c.is_empty()).map(str::to_owned));
            }
            "sort" | "fields" | "include_fields" => passthrough.push((k.clone(), v.clone())),
            key if key.starts_with("app_metadata.") => {
                check_field(key)?;
                filters.push(clause(key, v));
            }
            _ => {}
        }
    }

    let mut inner = String::new();
    if !filters.is_empty() {
        inner = format!("({})", filters.join(" AND "));
    }
    if let Some(acl) = acl_rows.map(str::trim).filter(|a| !a.is_empty()) {
        let filter: Value = serde_json::from_str(acl).map_err(|e| bad(format!("acl_rows is not valid JSON: {e}")))?;
        let acl = acl_to_lucene(&filter)?;
        inner = if inner.is_empty() { format!("({acl})") } else { format!("{inner} AND ({acl})") };
    }

    let connections: Vec<String> = if supported.is_empty() {
        requested
    } else {
        let kept: Vec<String> = requested.into_iter().filter(|c| supported.contains(c)).collect();
        if kept.is_empty() { supported.to_vec() } else { kept }
    };
    let q = if connections.is_empty() {
        inner
    } else {
        let mut unique: Vec<&String> = Vec::new();
        for c in &connections {
            if !unique.contains(&c) {
                unique.push(c);
            }
        }
        let group = unique.iter().map(|c| clause("identities.connection", c)).collect::<Vec<_>>().join(" OR ");
        if inner.is_empty() { format!("({group})") } else { format!("({inner}) AND ({group})") }
    };

    let page = skip / per_page as u64;
    let mut params = vec![
        ("search_engine".to_string(), "v3".to_string()),
        ("per_page".to_string(), per_page.to_string()),
        ("page".to_string(), page.to_string()),
    ];
    let q = (!q.is_empty()).then_some(q);
    if let Some(q) = &q {
        params.push(("q".to_string(), q.clone()));
    }
    params.extend(passthrough);
    Ok(Translated { params, q })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pairs(p: &[(&str, &str)]) -> Vec<(String, String)> {
        p.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    fn q(p: &[(&str, &str)], acl: Option<&str>, supported: &[&str]) -> Option<String> {
        let supported: Vec<String> = supported.iter().map(|s| s.to_string()).collect();
        translate(&pairs(p), acl, &supported).unwrap().q
    }

    #[test]
    fn the_spec_example() {
        assert_eq!(
            q(
                &[("email", "a*"), ("app_metadata.groups", "admin"), ("connection", "DB1")],
                Some(r#"{"app_metadata.tenant":"t1"}"#),
                &["DB1", "DB2"]
            )
            .unwrap(),
            r#"((email:a* AND app_metadata.groups:"admin") AND (app_metadata.tenant:"t1")) AND (identities.connection:"DB1")"#
        );
    }

    #[test]
    fn clauses_values_and_escaping() {
        assert_eq!(q(&[("email", "john@x.it")], None, &[]).unwrap(), r#"(email:"john@x.it")"#);
        assert_eq!(q(&[("nickname", r#"a"b\c"#)], None, &[]).unwrap(), r#"(nickname:"a\"b\\c")"#);
        assert_eq!(q(&[("email", "john*")], None, &[]).unwrap(), "(email:john*)");
        assert_eq!(q(&[("username", "a b*:")], None, &[]).unwrap(), r"(username:a\ b*\:)");
        assert_eq!(
            q(&[("app_metadata.groups", "a"), ("app_metadata.groups", "b")], None, &[]).unwrap(),
            r#"(app_metadata.groups:"a" AND app_metadata.groups:"b")"#,
            "a repeated key is ANDed"
        );
        assert_eq!(q(&[("other", "x"), ("_p", "y")], None, &[]), None, "unknown keys are ignored");
    }

    #[test]
    fn connections() {
        // None requested: every supported one, ORed, last.
        assert_eq!(
            q(&[("email", "a")], None, &["DB1", "DB2"]).unwrap(),
            r#"((email:"a")) AND (identities.connection:"DB1" OR identities.connection:"DB2")"#
        );
        // Unsupported ones are dropped; nothing left → all supported.
        assert_eq!(q(&[("connection", "X")], None, &["DB1"]).unwrap(), r#"(identities.connection:"DB1")"#);
        assert_eq!(
            q(&[("connection", "DB2"), ("connection", "X"), ("connection", "DB1")], None, &["DB1", "DB2"]).unwrap(),
            r#"(identities.connection:"DB2" OR identities.connection:"DB1")"#
        );
        // None configured: the requested ones as they are; nothing requested, no clause.
        assert_eq!(
            q(&[("connection", "A,B")], None, &[]).unwrap(),
            r#"(identities.connection:"A" OR identities.connection:"B")"#
        );
        assert_eq!(q(&[], None, &[]), None);
    }

    #[test]
    fn acl_rows_operators() {
        let acl = |s: &str| acl_to_lucene(&serde_json::from_str(s).unwrap());
        assert_eq!(acl(r#"{"f":"v"}"#).unwrap(), r#"f:"v""#);
        assert_eq!(acl(r#"{"f":{"$in":["a","b"]}}"#).unwrap(), r#"(f:"a" OR f:"b")"#);
        assert_eq!(acl(r#"{"f":{"$eq":"a"}}"#).unwrap(), r#"f:"a""#);
        assert_eq!(acl(r#"{"$or":[{"a":"1"},{"b":2}]}"#).unwrap(), r#"((a:"1") OR (b:2))"#);
        assert_eq!(acl(r#"{"$and":[{"a":"1"},{"b":{"$in":["x"]}}]}"#).unwrap(), r#"((a:"1") AND ((b:"x")))"#);
        assert_eq!(acl(r#"{"a":"1","b":true}"#).unwrap(), r#"a:"1" AND b:true"#);
        for bad in
            [r#"{"f":{"$ne":"a"}}"#, r#"{"$nor":[{"a":"1"}]}"#, r#"{"f":{"$in":[]}}"#, r#"[1]"#, r#"{"a b":"1"}"#]
        {
            assert!(matches!(acl(bad), Err(Error::BadRequest(_))), "{bad}");
        }
        // An OR inside the ACL stays inside its parentheses, before the connection AND.
        assert_eq!(
            q(&[], Some(r#"{"$or":[{"a":"1"},{"b":"2"}]}"#), &["DB"]).unwrap(),
            r#"((((a:"1") OR (b:"2")))) AND (identities.connection:"DB")"#
        );
        assert!(translate(&[], Some("{not json"), &[]).is_err());
    }

    #[test]
    fn paging() {
        let t = translate(&pairs(&[("_l", "10"), ("_sk", "25"), ("sort", "email:1")]), None, &[]).unwrap();
        assert_eq!(t.params, pairs(&[("search_engine", "v3"), ("per_page", "10"), ("page", "2"), ("sort", "email:1")]));
        let t = translate(&pairs(&[("_l", "1000")]), None, &[]).unwrap();
        assert_eq!(t.params[1].1, "100", "clamped to Auth0's maximum");
        let t = translate(&pairs(&[("_l", "0")]), None, &[]).unwrap();
        assert_eq!(t.params[1].1, "1");
        let t = translate(&[], None, &[]).unwrap();
        assert_eq!(t.params[1].1, "25", "default");
        assert!(translate(&pairs(&[("_sk", "-1")]), None, &[]).is_err());
    }
}
