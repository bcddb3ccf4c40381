//! The query-string parser: a recursive descent over the text itself (the lexing depends on
//! where a word stands: after `field:` a value may contain `:`, as IPv6 addresses and
//! timestamps do). Input is bounded before parsing starts and nesting is counted as it goes,
//! so hostile input ends in a [`SearchError`], never a deep stack or a long run.
//!
//! ```text
//! query       := disjunction?
//! disjunction := clause ((OR | '||')? clause)*          -- side by side means OR
//! clause      := prefixed ((AND | '&&') prefixed)*
//! prefixed    := ('+' | '-' | NOT | '!') unary | primary  -- Lucene's required / prohibited
//! unary       := (NOT | '!' | '-') unary | '+' unary | primary
//! primary     := '(' disjunction ')' | field ':' value | '_exists_' ':' field | value
//! value       := word | '"' phrase '"' | range | '(' disjunction ')'   -- the field applies inside
//! range       := ('[' | '{') bound TO bound (']' | '}')
//! ```

use super::date;
use super::{
    Literal, MAX_DEPTH, MAX_QUERY_BYTES, MAX_TERMS, MetadataPath, Number, NumberField, Pattern, PatternPart, Predicate,
    Query, Range, RootField, SearchError, Target, TextMatch,
};

/// Parses an Auth0 search v3 query string. Blank text is [`Query::All`].
pub fn parse(text: &str) -> Result<Query, SearchError> {
    if text.len() > MAX_QUERY_BYTES {
        return Err(error(format!("the query is longer than {MAX_QUERY_BYTES} bytes")));
    }
    if text.chars().any(|c| c.is_control() && !matches!(c, '\t' | '\n' | '\r')) {
        return Err(error("the query contains control characters"));
    }
    let mut parser = Parser { text, pos: 0, depth: 0, terms: 0 };
    parser.skip_whitespace();
    if parser.at_end() {
        return Ok(Query::All);
    }
    if parser.peek() == Some(')') {
        return Err(parser.error_here("unbalanced parentheses: unexpected ')'"));
    }
    let query = parser.disjunction(None)?;
    if !parser.at_end() {
        // The disjunction stops only at the end or at a ')' no '(' opened.
        return Err(parser.error_here("unbalanced parentheses: unexpected ')'"));
    }
    Ok(query)
}

fn error(message: impl Into<String>) -> SearchError {
    SearchError(message.into())
}

/// What a field name resolves to.
#[derive(Debug, Clone)]
enum Field {
    Root(RootField),
    Metadata(MetadataPath),
}

/// How a clause of a disjunction takes part, as in Lucene.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Occur {
    Should,
    Must,
    MustNot,
}

/// An unquoted word: its text with escapes resolved, and how it splits around wildcards.
struct Word {
    text: String,
    parts: Vec<PatternPart>,
    wildcard: bool,
}

/// A value before it is typed by its field.
enum Value {
    Phrase(String),
    Word(Word),
}

impl Value {
    fn text(&self) -> &str {
        match self {
            Value::Phrase(text) => text,
            Value::Word(word) => &word.text,
        }
    }

    fn has_wildcard(&self) -> bool {
        matches!(self, Value::Word(word) if word.wildcard)
    }
}

/// `[a TO b}` as written; `None` bounds are `*`.
struct RangeText {
    lower: Option<String>,
    lower_inclusive: bool,
    upper: Option<String>,
    upper_inclusive: bool,
}

/// Where a word is read: at the start of a clause a `:` ends it (it was a field name); in a
/// field's value it is part of it.
#[derive(Clone, Copy, PartialEq)]
enum WordMode {
    Clause,
    Value,
}

const AND: [&str; 2] = ["AND", "&&"];
const OR: [&str; 2] = ["OR", "||"];
const NOT: [&str; 1] = ["NOT"];

struct Parser<'a> {
    text: &'a str,
    /// Byte offset of the next character.
    pos: usize,
    depth: usize,
    terms: usize,
}

impl Parser<'_> {
    // --- grammar

    /// Clauses up to the end or a closing parenthesis, combined with Lucene's rules: required
    /// and prohibited clauses filter; optional ones filter only when nothing is required.
    fn disjunction(&mut self, field: Option<&Field>) -> Result<Query, SearchError> {
        let (mut must, mut should, mut must_not) = (Vec::new(), Vec::new(), Vec::new());
        loop {
            self.skip_whitespace();
            if self.at_end() || self.peek() == Some(')') {
                break;
            }
            let first = must.is_empty() && should.is_empty() && must_not.is_empty();
            if !first && self.eat_keyword(&OR) {
                self.skip_whitespace();
                if self.at_end() || self.peek() == Some(')') {
                    return Err(self.error_here("OR needs a term on its right"));
                }
            }
            if self.keyword_ahead(&AND) || self.keyword_ahead(&OR) {
                return Err(self.error_here("an operator needs a term on its left"));
            }
            let (occur, query) = self.clause(field)?;
            match occur {
                Occur::Must => must.push(query),
                Occur::Should => should.push(query),
                Occur::MustNot => must_not.push(query),
            }
        }
        if must.is_empty() && should.is_empty() && must_not.is_empty() {
            return Err(self.error_here("empty parentheses"));
        }
        let optional_filters = must.is_empty();
        let mut required = must;
        required.extend(must_not.into_iter().map(|q| Query::Not(Box::new(q))));
        if required.is_empty() {
            return Ok(any_of(should));
        }
        if optional_filters && !should.is_empty() {
            required.push(any_of(should));
        }
        Ok(all_of(required))
    }

    /// One clause: a prefixed term, or several joined by AND (which binds tighter than OR).
    fn clause(&mut self, field: Option<&Field>) -> Result<(Occur, Query), SearchError> {
        let (occur, first) = self.prefixed(field)?;
        self.skip_whitespace();
        if !self.keyword_ahead(&AND) {
            return Ok((occur, first));
        }
        let mut terms = vec![apply(occur, first)];
        while self.eat_keyword(&AND) {
            self.skip_whitespace();
            if self.at_end() || self.peek() == Some(')') || self.keyword_ahead(&AND) || self.keyword_ahead(&OR) {
                return Err(self.error_here("AND needs a term on its right"));
            }
            let (occur, term) = self.prefixed(field)?;
            terms.push(apply(occur, term));
            self.skip_whitespace();
        }
        Ok((Occur::Should, Query::And(terms)))
    }

    fn prefixed(&mut self, field: Option<&Field>) -> Result<(Occur, Query), SearchError> {
        let occur = if self.eat_char('+') {
            Occur::Must
        } else if self.eat_char('-') || self.eat_char('!') || self.eat_keyword(&NOT) {
            Occur::MustNot
        } else {
            return Ok((Occur::Should, self.primary(field)?));
        };
        self.enter()?;
        let operand = self.unary(field)?;
        self.leave();
        Ok((occur, operand))
    }

    fn unary(&mut self, field: Option<&Field>) -> Result<Query, SearchError> {
        self.skip_whitespace();
        let negated = if self.eat_char('+') {
            false
        } else if self.eat_char('-') || self.eat_char('!') || self.eat_keyword(&NOT) {
            true
        } else {
            return self.primary(field);
        };
        self.enter()?;
        let operand = self.unary(field)?;
        self.leave();
        Ok(if negated { Query::Not(Box::new(operand)) } else { operand })
    }

    fn primary(&mut self, field: Option<&Field>) -> Result<Query, SearchError> {
        self.skip_whitespace();
        match self.peek() {
            None => Err(self.error_here("the query ends where a term was expected")),
            Some('(') => self.group(field),
            Some(')') => Err(self.error_here("unbalanced parentheses: unexpected ')'")),
            Some('"') => {
                let phrase = self.phrase()?;
                self.value(field, Value::Phrase(phrase))
            }
            Some('[' | '{') => {
                let range = self.range()?;
                self.range_term(field, range)
            }
            Some(_) => {
                if self.keyword_ahead(&AND) || self.keyword_ahead(&OR) || self.keyword_ahead(&NOT) {
                    return Err(self.error_here("an operator stands where a term was expected"));
                }
                let start = self.pos;
                let word = self.word(WordMode::Clause)?;
                if self.eat_char(':') {
                    return self.field_value(&word.text, start);
                }
                self.value(field, Value::Word(word))
            }
        }
    }

    /// `( … )`, with `field` applying to the terms inside that name none.
    fn group(&mut self, field: Option<&Field>) -> Result<Query, SearchError> {
        self.enter()?;
        self.bump(); // '('
        let query = self.disjunction(field)?;
        if !self.eat_char(')') {
            return Err(self.error_here("unbalanced parentheses: missing ')'"));
        }
        self.leave();
        Ok(query)
    }

    /// What follows `name:`.
    fn field_value(&mut self, name: &str, at: usize) -> Result<Query, SearchError> {
        if name == "_exists_" {
            return self.exists();
        }
        let field = resolve(name).map_err(|e| error(format!("{} (at character {})", e.0, self.char_index(at) + 1)))?;
        if let Field::Metadata(path) = &field
            && path.segments().is_empty()
        {
            return Err(error(format!("name a field inside {name}, as in {name}.plan:\"gold\"")));
        }
        self.skip_whitespace();
        match self.peek() {
            None | Some(')') => Err(self.error_here(&format!("{name} has no value"))),
            Some('(') => self.group(Some(&field)),
            Some('"') => {
                let phrase = self.phrase()?;
                self.value(Some(&field), Value::Phrase(phrase))
            }
            Some('[' | '{') => {
                let range = self.range()?;
                self.range_term(Some(&field), range)
            }
            Some(_) => {
                let word = self.word(WordMode::Value)?;
                self.value(Some(&field), Value::Word(word))
            }
        }
    }

    /// `_exists_:field`.
    fn exists(&mut self) -> Result<Query, SearchError> {
        self.skip_whitespace();
        if !matches!(self.peek(), Some(c) if !matches!(c, '(' | ')' | '"' | '[' | '{')) {
            return Err(self.error_here("_exists_ takes a field name"));
        }
        let word = self.word(WordMode::Value)?;
        if word.wildcard {
            return Err(error("_exists_ takes a field name, not a pattern"));
        }
        let target = match resolve(&word.text)? {
            Field::Root(root) => Target::Root(root),
            Field::Metadata(path) => Target::Metadata(path),
        };
        self.count_term()?;
        Ok(Query::Match(Predicate::Exists(target)))
    }

    /// A word or phrase, typed by the field it is a value of.
    fn value(&mut self, field: Option<&Field>, value: Value) -> Result<Query, SearchError> {
        self.count_term()?;
        let predicate = match field {
            None => Predicate::AnyText(text_match(value)?),
            Some(Field::Root(RootField::Text(field))) => Predicate::Text { field: *field, value: text_match(value)? },
            Some(Field::Root(RootField::Flag(field))) => {
                if value.has_wildcard() {
                    return Err(error("wildcards work on text fields only"));
                }
                let value = match value.text() {
                    "true" => true,
                    "false" => false,
                    other => return Err(error(format!("{other:?} is not a boolean: use true or false"))),
                };
                Predicate::Flag { field: *field, value }
            }
            Some(Field::Root(RootField::Number(field))) => {
                if value.has_wildcard() {
                    return Err(error("wildcards work on text fields only; use a range for numbers and dates"));
                }
                let (start, end) = number_span(*field, value.text())?;
                Predicate::Number { field: *field, range: Range { min: Some(start), max: end } }
            }
            Some(Field::Metadata(path)) => {
                if value.has_wildcard() {
                    return Err(error("wildcards are not supported on metadata fields"));
                }
                Predicate::Metadata { path: path.clone(), value: literal(value.text()) }
            }
        };
        Ok(Query::Match(predicate))
    }

    fn range_term(&mut self, field: Option<&Field>, range: RangeText) -> Result<Query, SearchError> {
        let field = match field {
            Some(Field::Root(RootField::Number(field))) => *field,
            None => return Err(error("a range needs a field, as in logins_count:[1 TO 5]")),
            Some(Field::Metadata(_)) => return Err(error("ranges are not supported on metadata fields")),
            Some(Field::Root(_)) => {
                return Err(error("ranges work on logins_count, created_at, updated_at and last_login only"));
            }
        };
        self.count_term()?;
        // A bound's span decides which of its edges the range keeps (see the module docs).
        let min = match &range.lower {
            None => None,
            Some(text) => {
                let (start, end) = number_span(field, text)?;
                match (range.lower_inclusive, end) {
                    (true, _) => Some(start),
                    (false, Some(end)) => Some(end),
                    // Nothing lies above the largest number: a range that holds nothing.
                    (false, None) => return Ok(Query::Match(empty_range(field))),
                }
            }
        };
        let max = match &range.upper {
            None => None,
            Some(text) => {
                let (start, end) = number_span(field, text)?;
                if range.upper_inclusive { end } else { Some(start) }
            }
        };
        Ok(Query::Match(Predicate::Number { field, range: Range { min, max } }))
    }

    // --- lexing

    /// An unquoted word; `\` makes the next character literal.
    fn word(&mut self, mode: WordMode) -> Result<Word, SearchError> {
        let start = self.pos;
        let mut word = Word { text: String::new(), parts: Vec::new(), wildcard: false };
        let mut literal = String::new();
        while let Some(c) = self.peek() {
            match c {
                c if c.is_whitespace() => break,
                '(' | ')' | '"' => break,
                ':' if mode == WordMode::Clause => break,
                '\\' => {
                    self.bump();
                    let Some(escaped) = self.peek() else {
                        return Err(self.error_here("the query ends with a lone backslash"));
                    };
                    literal.push(escaped);
                    word.text.push(escaped);
                }
                '*' | '?' => {
                    if !literal.is_empty() {
                        word.parts.push(PatternPart::Literal(std::mem::take(&mut literal)));
                    }
                    word.parts.push(if c == '*' { PatternPart::AnyRun } else { PatternPart::AnyChar });
                    word.wildcard = true;
                    word.text.push(c);
                }
                '[' | ']' | '{' | '}' => {
                    return Err(self.error_here(&format!("unexpected '{c}': quote the value or escape it with \\")));
                }
                '^' | '~' => {
                    return Err(self.error_here("boosts (^) and fuzzy or proximity searches (~) are not supported"));
                }
                '/' if self.pos == start => return Err(self.error_here("regular expressions are not supported")),
                _ => {
                    literal.push(c);
                    word.text.push(c);
                }
            }
            self.bump();
        }
        if self.pos == start {
            return Err(self.error_here("a term was expected"));
        }
        if !literal.is_empty() {
            word.parts.push(PatternPart::Literal(literal));
        }
        Ok(word)
    }

    /// `"…"`: everything up to the closing quote is literal; `\"` and `\\` escape.
    fn phrase(&mut self) -> Result<String, SearchError> {
        let open = self.pos;
        self.bump(); // '"'
        let mut text = String::new();
        loop {
            match self.peek() {
                None => {
                    self.pos = open;
                    return Err(self.error_here("unterminated quoted phrase"));
                }
                Some('"') => {
                    self.bump();
                    return Ok(text);
                }
                Some('\\') => {
                    self.bump();
                    let Some(escaped) = self.peek() else { continue };
                    text.push(escaped);
                    self.bump();
                }
                Some(c) => {
                    text.push(c);
                    self.bump();
                }
            }
        }
    }

    /// `[a TO b]`, `{a TO b}`, mixed, with `*` for an open end.
    fn range(&mut self) -> Result<RangeText, SearchError> {
        let lower_inclusive = self.peek() == Some('[');
        self.bump();
        self.skip_whitespace();
        let lower = self.bound()?;
        self.skip_whitespace();
        if !self.eat_keyword(&["TO"]) {
            return Err(self.error_here("a range is written [low TO high]"));
        }
        self.skip_whitespace();
        let upper = self.bound()?;
        self.skip_whitespace();
        let upper_inclusive = match self.peek() {
            Some(']') => true,
            Some('}') => false,
            _ => return Err(self.error_here("a range must end with ] or }")),
        };
        self.bump();
        Ok(RangeText { lower, lower_inclusive, upper, upper_inclusive })
    }

    /// One end of a range: a phrase, `*`, or anything up to whitespace or the closing bracket.
    fn bound(&mut self) -> Result<Option<String>, SearchError> {
        if self.peek() == Some('"') {
            return self.phrase().map(Some);
        }
        let start = self.pos;
        let mut text = String::new();
        let mut escaped = false;
        while let Some(c) = self.peek() {
            if c.is_whitespace() || c == ']' || c == '}' {
                break;
            }
            if c == '\\' {
                self.bump();
                escaped = true;
                let Some(next) = self.peek() else { break };
                text.push(next);
            } else {
                text.push(c);
            }
            self.bump();
        }
        if self.pos == start {
            return Err(self.error_here("a range bound is missing"));
        }
        Ok(if text == "*" && !escaped { None } else { Some(text) })
    }

    // --- characters

    fn peek(&self) -> Option<char> {
        self.text[self.pos..].chars().next()
    }

    fn bump(&mut self) {
        if let Some(c) = self.peek() {
            self.pos += c.len_utf8();
        }
    }

    fn at_end(&self) -> bool {
        self.pos >= self.text.len()
    }

    fn eat_char(&mut self, c: char) -> bool {
        let found = self.peek() == Some(c);
        if found {
            self.bump();
        }
        found
    }

    fn skip_whitespace(&mut self) {
        while self.peek().is_some_and(char::is_whitespace) {
            self.bump();
        }
    }

    /// Whether one of `words` comes next as a word of its own (so `ORDER` is no `OR`).
    fn keyword_ahead(&self, words: &[&str]) -> bool {
        self.keyword_len(words).is_some()
    }

    /// The length of the keyword of `words` that comes next, if one does.
    fn keyword_len(&self, words: &[&str]) -> Option<usize> {
        let rest = &self.text[self.pos..];
        words.iter().find_map(|word| {
            let after = rest.strip_prefix(word)?;
            let delimited = after.chars().next().is_none_or(|c| c.is_whitespace() || matches!(c, '(' | ')' | '"'));
            delimited.then_some(word.len())
        })
    }

    fn eat_keyword(&mut self, words: &[&str]) -> bool {
        match self.keyword_len(words) {
            Some(len) => {
                self.pos += len;
                true
            }
            None => false,
        }
    }

    // --- limits

    fn enter(&mut self) -> Result<(), SearchError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(error(format!("the query nests deeper than {MAX_DEPTH} levels")));
        }
        Ok(())
    }

    fn leave(&mut self) {
        self.depth -= 1;
    }

    fn count_term(&mut self) -> Result<(), SearchError> {
        self.terms += 1;
        if self.terms > MAX_TERMS {
            return Err(error(format!("the query has more than {MAX_TERMS} terms")));
        }
        Ok(())
    }

    fn char_index(&self, byte: usize) -> usize {
        self.text[..byte].chars().count()
    }

    fn error_here(&self, message: &str) -> SearchError {
        error(format!("{message} (at character {})", self.char_index(self.pos) + 1))
    }
}

/// How a clause enters an AND chain.
fn apply(occur: Occur, query: Query) -> Query {
    match occur {
        Occur::MustNot => Query::Not(Box::new(query)),
        Occur::Should | Occur::Must => query,
    }
}

fn any_of(mut queries: Vec<Query>) -> Query {
    if queries.len() == 1 { queries.remove(0) } else { Query::Or(queries) }
}

fn all_of(mut queries: Vec<Query>) -> Query {
    if queries.len() == 1 { queries.remove(0) } else { Query::And(queries) }
}

fn resolve(name: &str) -> Result<Field, SearchError> {
    if let Some(root) = RootField::parse(name) {
        return Ok(Field::Root(root));
    }
    if let Some(path) = MetadataPath::parse(name) {
        return path.map(Field::Metadata);
    }
    Err(error(format!("{name:?} is not a searchable field")))
}

fn text_match(value: Value) -> Result<TextMatch, SearchError> {
    Ok(match value {
        Value::Phrase(text) => TextMatch::Exact(text),
        Value::Word(word) if word.wildcard => TextMatch::Wildcard(Pattern::new(word.parts)?),
        Value::Word(word) => TextMatch::Exact(word.text),
    })
}

/// The span `[start, end)` a value of a number field names: one unit for an integer, the
/// period written for a date. `end` is `None` past the largest number.
fn number_span(field: NumberField, text: &str) -> Result<(i64, Option<i64>), SearchError> {
    if field.is_date() {
        let (start, end) = date::span(text).ok_or_else(|| {
            error(format!("{text:?} is not a date: use 2024-12-31, 2024-12-31T23:59:59Z or a shorter prefix"))
        })?;
        return Ok((start, Some(end)));
    }
    let n: i64 = text.parse().map_err(|_| error(format!("{text:?} is not an integer")))?;
    Ok((n, n.checked_add(1)))
}

/// A range no number falls in.
fn empty_range(field: NumberField) -> Predicate {
    Predicate::Number { field, range: Range { min: Some(i64::MAX), max: Some(i64::MAX) } }
}

/// A metadata literal: text, and a number or boolean when it reads as one.
fn literal(text: &str) -> Literal {
    let boolean = match text {
        "true" => Some(true),
        "false" => Some(false),
        _ => None,
    };
    Literal { text: text.to_owned(), number: number(text), boolean }
}

/// `-?digits(.digits)?([eE][+-]?digits)?` as an integer when it fits, else a finite float.
fn number(text: &str) -> Option<Number> {
    let body = text.strip_prefix('-').unwrap_or(text);
    let (mantissa, exponent) = match body.find(['e', 'E']) {
        Some(at) => (&body[..at], Some(&body[at + 1..])),
        None => (body, None),
    };
    let (int, fraction) = match mantissa.split_once('.') {
        Some((int, fraction)) => (int, Some(fraction)),
        None => (mantissa, None),
    };
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    let exponent_ok = exponent.is_none_or(|e| digits(e.strip_prefix(['+', '-']).unwrap_or(e)));
    if !digits(int) || !fraction.is_none_or(digits) || !exponent_ok {
        return None;
    }
    if fraction.is_none()
        && exponent.is_none()
        && let Ok(n) = text.parse::<i64>()
    {
        return Some(Number::Integer(n));
    }
    text.parse::<f64>().ok().filter(|f| f.is_finite()).map(Number::Float)
}
