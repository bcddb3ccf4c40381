//! Reading `.env`-style files (the `--keywords dev.env` file): `KEY=value` lines, `#` comments,
//! blank lines, an optional `export ` prefix, and values optionally wrapped in quotes.
//!
//! Quoting follows the dotenv convention most tools share:
//! - `'single'` quotes are literal (no escapes) and may span lines;
//! - `"double"` quotes understand `\n`, `\r`, `\t`, `\"` and `\\` and may span lines;
//! - unquoted values are trimmed and end at a ` #` comment (a `#` directly after a
//!   non-space character is kept, so `a#b` stays `a#b`).
//!
//! A later line for the same key overrides an earlier one.

use crate::error::{Error, Result};

/// Parse `.env` text into `(key, value)` pairs in file order. `file` only labels errors.
pub fn parse_env(text: &str, file: &str) -> Result<Vec<(String, String)>> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let lines: Vec<&str> = text.lines().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line_no = i + 1;
        let err = |message: String| Error::EnvFile { file: file.to_string(), line: line_no, message };
        let line = lines[i].trim_start();
        i += 1;
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let line = strip_export(line);
        let Some((key, rest)) = line.split_once('=') else {
            return Err(err(format!("expected KEY=value, found `{}`", lines[line_no - 1].trim())));
        };
        let key = key.trim();
        if !crate::markers::is_keyword_name(key) {
            return Err(err(format!("`{key}` is not a valid name (letters, digits and _ only)")));
        }
        let rest = rest.trim_start();
        let value = match rest.chars().next() {
            Some(q @ ('"' | '\'')) => {
                // The value may continue on following lines until the closing quote.
                let mut body = rest[1..].to_string();
                loop {
                    if let Some((value, after)) = split_quoted(&body, q) {
                        let after = after.trim();
                        if !after.is_empty() && !after.starts_with('#') {
                            return Err(err(format!("unexpected `{after}` after the closing quote of {key}")));
                        }
                        break value;
                    }
                    let Some(next) = lines.get(i) else {
                        return Err(err(format!("value of {key} has no closing {q}")));
                    };
                    body.push('\n');
                    body.push_str(next);
                    i += 1;
                }
            }
            _ => strip_inline_comment(rest).trim_end().to_string(),
        };
        out.push((key.to_string(), value));
    }
    Ok(out)
}

fn strip_export(line: &str) -> &str {
    match line.strip_prefix("export") {
        Some(rest) if rest.starts_with([' ', '\t']) => rest.trim_start(),
        _ => line,
    }
}

/// Unquoted values end where a comment starts: a `#` preceded by whitespace.
fn strip_inline_comment(value: &str) -> &str {
    let bytes = value.as_bytes();
    for (i, b) in bytes.iter().enumerate() {
        if *b == b'#' && i > 0 && bytes[i - 1].is_ascii_whitespace() {
            return &value[..i];
        }
    }
    value
}

/// Find the closing quote in `body` (the text after the opening quote). Returns the unescaped
/// value and what follows the closing quote, or `None` when the quote is not closed yet.
fn split_quoted(body: &str, quote: char) -> Option<(String, &str)> {
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        if c == quote {
            return Some((value, &body[i + 1..]));
        }
        if c == '\\' && quote == '"' {
            match chars.next() {
                Some((_, 'n')) => value.push('\n'),
                Some((_, 'r')) => value.push('\r'),
                Some((_, 't')) => value.push('\t'),
                Some((_, other @ ('"' | '\\'))) => value.push(other),
                // Unknown escapes are kept as written, like dotenv does.
                Some((_, other)) => {
                    value.push('\\');
                    value.push(other);
                }
                None => value.push('\\'),
            }
            continue;
        }
        value.push(c);
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, String)> {
        parse_env(text, "test.env").expect("valid env text")
    }

    fn pair(k: &str, v: &str) -> (String, String) {
        (k.to_string(), v.to_string())
    }

    #[test]
    fn plain_comments_blank_lines_and_export() {
        let got = parse("# header\n\nA=1\n  export B = two words  \nC=\n");
        assert_eq!(got, vec![pair("A", "1"), pair("B", "two words"), pair("C", "")]);
    }

    #[test]
    fn quoting_rules() {
        let got = parse(concat!(
            "S='literal \\n # kept'\n",
            "D=\"line\\nnext \\\"q\\\"\" # comment\n",
            "H=value # comment\n",
            "K=a#b\n",
            "U=https://x.test/?a=b=c\n",
            "M=\"first\n",
            "second\"\n",
            "A=1\n",
            "A=2\n",
        ));
        assert_eq!(
            got,
            vec![
                pair("S", "literal \\n # kept"),
                pair("D", "line\nnext \"q\""),
                pair("H", "value"),
                pair("K", "a#b"),
                pair("U", "https://x.test/?a=b=c"),
                pair("M", "first\nsecond"),
                pair("A", "1"),
                pair("A", "2"),
            ]
        );
    }

    #[test]
    fn malformed_lines_name_file_and_line() {
        let err = parse_env("A=1\nnot a pair\n", "dev.env").unwrap_err();
        assert_eq!(err.to_string(), "dev.env line 2: expected KEY=value, found `not a pair`");
        let err = parse_env("BAD-KEY=1\n", "dev.env").unwrap_err();
        assert!(err.to_string().contains("line 1"), "{err}");
        let err = parse_env("A='never closed\n", "dev.env").unwrap_err();
        assert!(err.to_string().contains("no closing '"), "{err}");
        let err = parse_env("A='x' trailing\n", "dev.env").unwrap_err();
        assert!(err.to_string().contains("after the closing quote"), "{err}");
    }
}
