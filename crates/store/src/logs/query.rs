//! Auth0's log search syntax (`GET /api/v2/logs?q=…`): Lucene's query string over the log's
//! own fields, e.g. `type:fp AND user_id:"auth0|42"`, `type:(s OR f)`, `NOT ip:10.0.0.1`,
//! `date:[2025-01-01 TO *]`, `description:*password*`, `_exists_:user_id`.
//!
//! Not the users search parser (`crate::search`): that one's types encode the user record
//! (metadata paths, flags, the fields a bare term searches), and every value here is one
//! keyword column or the date. The grammar and its bounds are the same: terms side by side are
//! OR-ed, `AND` binds tighter, `NOT`/`-`/`!` tighter still; a field applies inside its
//! parentheses; dates name spans (`crate::search::date`). A term needs a field: the log has no
//! "any field" to search. Input is bounded before parsing and nesting is counted.

use crate::Millis;
use crate::search::date;

pub const MAX_QUERY_BYTES: usize = 4096;
const MAX_DEPTH: usize = 32;
const MAX_TERMS: usize = 100;

/// A parsed log search.
#[derive(Debug, Clone, PartialEq)]
pub enum LogQuery {
    All,
    And(Vec<LogQuery>),
    Or(Vec<LogQuery>),
    Not(Box<LogQuery>),
    Match(LogField, Match),
    Exists(LogField),
}

/// How one field is compared.
#[derive(Debug, Clone, PartialEq)]
pub enum Match {
    Exact(String),
    /// A `LIKE` pattern (`%`, `_`) with `\` escaping literal `%`, `_` and `\`.
    Like(String),
    /// `date` within `[min, max)`, either open.
    Between(Option<Millis>, Option<Millis>),
}

/// The searchable fields, each a column of the log table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogField {
    LogId,
    Date,
    Type,
    Description,
    ClientId,
    ClientName,
    Ip,
    UserAgent,
    UserId,
    UserName,
    Connection,
    ConnectionId,
    Strategy,
    StrategyType,
    Audience,
    Scope,
    Hostname,
}

impl LogField {
    pub fn parse(name: &str) -> Option<LogField> {
        use LogField::*;
        Some(match name {
            "log_id" => LogId,
            "date" => Date,
            "type" => Type,
            "description" => Description,
            "client_id" => ClientId,
            "client_name" => ClientName,
            "ip" => Ip,
            "user_agent" => UserAgent,
            "user_id" => UserId,
            "user_name" => UserName,
            "connection" => Connection,
            "connection_id" => ConnectionId,
            "strategy" => Strategy,
            "strategy_type" => StrategyType,
            "audience" => Audience,
            "scope" => Scope,
            "hostname" => Hostname,
            _ => return None,
        })
    }

    /// The column that holds it.
    pub fn column(self) -> &'static str {
        use LogField::*;
        match self {
            LogId => "log_id",
            Date => "date",
            Type => "event_type",
            Description => "description",
            ClientId => "client_id",
            ClientName => "client_name",
            Ip => "ip",
            UserAgent => "user_agent",
            UserId => "user_id",
            UserName => "user_name",
            Connection => "connection",
            ConnectionId => "connection_id",
            Strategy => "strategy",
            StrategyType => "strategy_type",
            Audience => "audience",
            Scope => "scope",
            Hostname => "hostname",
        }
    }
}

/// A query Auth0 would refuse, with a message for the caller.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct LogQueryError(pub String);

/// Parses `q`. Blank text is [`LogQuery::All`].
pub fn parse_log_query(text: &str) -> Result<LogQuery, LogQueryError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(LogQueryError(format!("the query is longer than {MAX_QUERY_BYTES} bytes")));
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(LogQueryError("the query contains control characters".into()));
    }
    let mut p = Parser { text, pos: 0, depth: 0, terms: 0 };
    p.ws();
    if p.pos == text.len() {
        return Ok(LogQuery::All);
    }
    let q = p.or(None)?;
    if p.pos < text.len() {
        return Err(p.err("unbalanced parentheses: unexpected ')'"));
    }
    Ok(q)
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
    depth: usize,
    terms: usize,
}

impl Parser<'_> {
    fn or(&mut self, field: Option<LogField>) -> Result<LogQuery, LogQueryError> {
        let mut any = Vec::new();
        loop {
            self.ws();
            if self.end() || self.peek() == Some(')') {
                break;
            }
            if !any.is_empty() && self.keyword(&["OR", "||"]) {
                self.ws();
                if self.end() || self.peek() == Some(')') {
                    return Err(self.err("OR needs a term on its right"));
                }
            }
            if self.at_keyword(&["AND", "&&", "OR", "||"]) {
                return Err(self.err("an operator needs a term on each side"));
            }
            any.push(self.and(field)?);
        }
        match any.len() {
            0 => Err(self.err("a term was expected")),
            1 => Ok(any.pop().unwrap_or(LogQuery::All)),
            _ => Ok(LogQuery::Or(any)),
        }
    }

    fn and(&mut self, field: Option<LogField>) -> Result<LogQuery, LogQueryError> {
        let mut all = vec![self.unary(field)?];
        loop {
            self.ws();
            if !self.keyword(&["AND", "&&"]) {
                break;
            }
            self.ws();
            if self.end() || self.peek() == Some(')') || self.at_keyword(&["AND", "&&", "OR", "||"]) {
                return Err(self.err("AND needs a term on its right"));
            }
            all.push(self.unary(field)?);
        }
        Ok(if all.len() == 1 { all.pop().unwrap_or(LogQuery::All) } else { LogQuery::And(all) })
    }

    fn unary(&mut self, field: Option<LogField>) -> Result<LogQuery, LogQueryError> {
        self.ws();
        let negated = if self.eat('-') || self.eat('!') || self.keyword(&["NOT"]) {
            true
        } else {
            self.eat('+');
            false
        };
        if !negated {
            return self.primary(field);
        }
        self.enter()?;
        let q = self.unary(field)?;
        self.depth -= 1;
        Ok(LogQuery::Not(Box::new(q)))
    }

    fn primary(&mut self, field: Option<LogField>) -> Result<LogQuery, LogQueryError> {
        self.ws();
        match self.peek() {
            None => Err(self.err("the query ends where a term was expected")),
            Some('(') => {
                self.enter()?;
                self.pos += 1;
                let q = self.or(field)?;
                if !self.eat(')') {
                    return Err(self.err("unbalanced parentheses: missing ')'"));
                }
                self.depth -= 1;
                Ok(q)
            }
            Some(')') => Err(self.err("unbalanced parentheses: unexpected ')'")),
            Some('"') => {
                let phrase = self.phrase()?;
                self.term(field, Match::Exact(phrase))
            }
            Some('[' | '{') => self.range(field),
            Some(_) => {
                let start = self.pos;
                let (word, like) = self.word(field.is_none())?;
                if field.is_none() && self.eat(':') {
                    if word == "_exists_" {
                        let (name, _) = self.word(false)?;
                        let f = resolve(&name, self.char_at(start))?;
                        self.count()?;
                        return Ok(LogQuery::Exists(f));
                    }
                    let f = resolve(&word, self.char_at(start))?;
                    return self.primary(Some(f));
                }
                let m = match like {
                    Some(pattern) => Match::Like(pattern),
                    None => Match::Exact(word),
                };
                self.term(field, m)
            }
        }
    }

    fn term(&mut self, field: Option<LogField>, m: Match) -> Result<LogQuery, LogQueryError> {
        let Some(field) = field else {
            return Err(self.err("a term needs a field (field:value)"));
        };
        self.count()?;
        if field != LogField::Date {
            return Ok(LogQuery::Match(field, m));
        }
        let Match::Exact(text) = m else { return Err(self.err("wildcards are not supported on date")) };
        let (start, end) = date::span(&text).ok_or_else(|| self.err(&format!("{text:?} is not a date")))?;
        Ok(LogQuery::Match(field, Match::Between(Some(start), Some(end))))
    }

    /// `[a TO b]`, `{a TO b}` or mixed; `*` is open. Only on `date`.
    fn range(&mut self, field: Option<LogField>) -> Result<LogQuery, LogQueryError> {
        if field != Some(LogField::Date) {
            return Err(self.err("ranges are supported on date only"));
        }
        let lower_inclusive = self.peek() == Some('[');
        self.pos += 1;
        self.ws();
        let (lower, _) = self.bound_word()?;
        self.ws();
        if !self.keyword(&["TO"]) {
            return Err(self.err("a range is [from TO to]"));
        }
        self.ws();
        let (upper, _) = self.bound_word()?;
        self.ws();
        let upper_inclusive = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            _ => return Err(self.err("a range ends with ']' or '}'")),
        };
        self.pos += 1;
        let span = |t: &str| date::span(t).ok_or_else(|| self.err(&format!("{t:?} is not a date")));
        let min = match lower.as_str() {
            "*" => None,
            t => Some(if lower_inclusive { span(t)?.0 } else { span(t)?.1 }),
        };
        let max = match upper.as_str() {
            "*" => None,
            t => Some(if upper_inclusive { span(t)?.1 } else { span(t)?.0 }),
        };
        self.count()?;
        Ok(LogQuery::Match(LogField::Date, Match::Between(min, max)))
    }

    /// A range's upper bound: a word that stops before `]` and `}`.
    fn bound_word(&mut self) -> Result<(String, Option<String>), LogQueryError> {
        let start = self.pos;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ']' || c == '}' {
                break;
            }
            self.pos += c.len_utf8();
        }
        if self.pos == start {
            return Err(self.err("a range bound was expected"));
        }
        Ok((self.text[start..self.pos].to_string(), None))
    }

    /// An unquoted word, `\` escaping any character. At a clause's start (`clause`) a `:` ends
    /// it (it named a field). Returns the text and, when it holds an unescaped `*` or `?`, the
    /// `LIKE` pattern it stands for.
    fn word(&mut self, clause: bool) -> Result<(String, Option<String>), LogQueryError> {
        let (mut text, mut like, mut wild) = (String::new(), String::new(), false);
        while let Some(c) = self.peek() {
            if c.is_whitespace() || matches!(c, '(' | ')' | '"' | '[' | ']' | '{' | '}') || (clause && c == ':') {
                break;
            }
            self.pos += c.len_utf8();
            match c {
                '\\' => {
                    let Some(e) = self.peek() else { return Err(self.err("a '\\' ends the query")) };
                    self.pos += e.len_utf8();
                    text.push(e);
                    push_like_literal(&mut like, e);
                }
                '*' | '?' => {
                    wild = true;
                    text.push(c);
                    like.push(if c == '*' { '%' } else { '_' });
                }
                _ => {
                    text.push(c);
                    push_like_literal(&mut like, c);
                }
            }
        }
        if text.is_empty() {
            return Err(self.err("a term was expected"));
        }
        if wild && text.chars().all(|c| c == '*' || c == '?') {
            return Err(self.err("a wildcard needs literal characters; use _exists_:field"));
        }
        Ok((text, wild.then_some(like)))
    }

    fn phrase(&mut self) -> Result<String, LogQueryError> {
        self.pos += 1; // '"'
        let mut out = String::new();
        while let Some(c) = self.peek() {
            self.pos += c.len_utf8();
            match c {
                '"' => return Ok(out),
                '\\' => {
                    let Some(e) = self.peek() else { break };
                    self.pos += e.len_utf8();
                    out.push(e);
                }
                _ => out.push(c),
            }
        }
        Err(self.err("a quoted phrase is not closed"))
    }

    // --- lexing helpers

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }
    fn end(&self) -> bool {
        self.pos >= self.text.len()
    }
    fn eat(&mut self, c: char) -> bool {
        if self.peek() == Some(c) {
            self.pos += c.len_utf8();
            return true;
        }
        false
    }
    fn ws(&mut self) {
        while let Some(c) = self.peek().filter(|c| c.is_whitespace()) {
            self.pos += c.len_utf8();
        }
    }
    /// Whether one of `words` stands here as a whole word (upper case only, as Lucene wants).
    fn at_keyword(&self, words: &[&str]) -> bool {
        let rest = &self.text[self.pos..];
        words.iter().any(|w| {
            rest.starts_with(w) && rest[w.len()..].chars().next().is_none_or(|c| c.is_whitespace() || c == '(')
        })
    }
    fn keyword(&mut self, words: &[&str]) -> bool {
        let rest = &self.text[self.pos..];
        for w in words {
            if rest.starts_with(w) && rest[w.len()..].chars().next().is_none_or(|c| c.is_whitespace() || c == '(') {
                self.pos += w.len();
                return true;
            }
        }
        false
    }
    fn enter(&mut self) -> Result<(), LogQueryError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(LogQueryError(format!("the query nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }
    fn count(&mut self) -> Result<(), LogQueryError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(LogQueryError(format!("the query has more than {MAX_TERMS} terms")));
        }
        Ok(())
    }
    fn char_at(&self, byte: usize) -> usize {
        self.text[..byte].chars().count() + 1
    }
    fn err(&self, message: &str) -> LogQueryError {
        LogQueryError(format!("{message} (at character {})", self.char_at(self.pos.min(self.text.len()))))
    }
}

fn push_like_literal(like: &mut String, c: char) {
    if matches!(c, '%' | '_' | '\\') {
        like.push('\\');
    }
    like.push(c);
}

fn resolve(name: &str, at: usize) -> Result<LogField, LogQueryError> {
    LogField::parse(name).ok_or_else(|| LogQueryError(format!("unknown field {name:?} (at character {at})")))
}

#[cfg(test)]
mod tests {
    use super::LogField::*;
    use super::*;

    fn m(f: LogField, v: &str) -> LogQuery {
        LogQuery::Match(f, Match::Exact(v.into()))
    }

    #[test]
    fn fields_values_and_operators() {
        assert_eq!(parse_log_query("  ").unwrap(), LogQuery::All);
        assert_eq!(parse_log_query("type:fp").unwrap(), m(Type, "fp"));
        assert_eq!(parse_log_query(r#"user_id:"auth0|42""#).unwrap(), m(UserId, "auth0|42"));
        assert_eq!(parse_log_query("user_id:auth0|42").unwrap(), m(UserId, "auth0|42"));
        assert_eq!(
            parse_log_query("type:(s OR f) AND NOT ip:10.0.0.1").unwrap(),
            LogQuery::And(vec![
                LogQuery::Or(vec![m(Type, "s"), m(Type, "f")]),
                LogQuery::Not(Box::new(m(Ip, "10.0.0.1")))
            ])
        );
        assert_eq!(parse_log_query("type:s type:f").unwrap(), LogQuery::Or(vec![m(Type, "s"), m(Type, "f")]));
        assert_eq!(parse_log_query("_exists_:user_id").unwrap(), LogQuery::Exists(UserId));
        assert_eq!(
            parse_log_query("description:*pass_word%*").unwrap(),
            LogQuery::Match(Description, Match::Like(r"%pass\_word\%%".into()))
        );
        assert_eq!(parse_log_query("ip:::1").unwrap(), m(Ip, "::1"));
    }

    #[test]
    fn dates_are_spans_and_ranges() {
        let day = 86_400_000;
        assert_eq!(
            parse_log_query("date:1970-01-02").unwrap(),
            LogQuery::Match(Date, Match::Between(Some(day), Some(2 * day)))
        );
        assert_eq!(
            parse_log_query("date:[1970-01-02 TO *]").unwrap(),
            LogQuery::Match(Date, Match::Between(Some(day), None))
        );
        assert_eq!(
            parse_log_query("date:{* TO 1970-01-02]").unwrap(),
            LogQuery::Match(Date, Match::Between(None, Some(2 * day)))
        );
    }

    #[test]
    fn malformed_queries_are_refused_with_a_reason() {
        for (q, says) in [
            ("type:", "term was expected"),
            ("nope:1", "unknown field \"nope\""),
            ("fp", "needs a field"),
            ("type:(s OR f", "missing ')'"),
            ("type:s)", "unexpected ')'"),
            ("type:s AND", "AND needs a term"),
            ("type:\"s", "not closed"),
            ("ip:[1 TO 2]", "date only"),
            ("date:yesterday", "not a date"),
            ("type:*", "literal characters"),
        ] {
            let e = parse_log_query(q).unwrap_err();
            assert!(e.0.contains(says), "{q}: {}", e.0);
        }
        let deep = format!("{}type:s{}", "(".repeat(40), ")".repeat(40));
        assert!(parse_log_query(&deep).unwrap_err().0.contains("deeper"));
        let many = vec!["type:s"; 101].join(" OR ");
        assert!(parse_log_query(&many).unwrap_err().0.contains("more than 100"));
    }
}
