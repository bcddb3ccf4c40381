//! The syntax of deploy-cli's keyword markers (`##KEY##`, `@@KEY@@`) and of what surrounds
//! them in a YAML file: which text is a comment. Shared by `envfile` (which names are
//! valid) and `keywords` (where markers are and whether they count), so neither
//! depends on the other for it.

/// Keyword names are `[A-Za-z0-9_]+`.
pub fn is_keyword_name(name: &str) -> bool {
    !name.is_empty() && name.bytes().all(is_name_byte)
}

fn is_name_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}

/// One marker in a text: its byte range (including the quotes of a quoted `@@KEY@@`), the
/// range of its name, and its form.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Marker {
    pub start: usize,
    pub end: usize,
    pub name: (usize, usize),
    /// `@@KEY@@` (JSON-encoded) rather than `##KEY##` (text).
    pub json: bool,
}

/// A `##NAME##` or `@@NAME@@` marker starting at `i`, if there is one. `copied` is where the
/// not yet consumed text begins: a quote before it was already consumed and cannot be
/// swallowed. Like deploy-cli, a `@@KEY@@` wrapped in matching quotes (`"@@KEY@@"` or
/// `'@@KEY@@'`) takes its quotes along, so files stay valid YAML/JSON before replacement.
pub fn marker_at(bytes: &[u8], i: usize, copied: usize) -> Option<Marker> {
    let delim = match (bytes.get(i), bytes.get(i + 1)) {
        (Some(b'#'), Some(b'#')) => b'#',
        (Some(b'@'), Some(b'@')) => b'@',
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

/// The byte ranges of a YAML text's comments: from a `#` that opens a comment to the end of
/// its line. A `#` opens a comment at the start of a line or after whitespace, outside quoted
/// scalars and block scalars (`|`, `>`) — and never where it begins a marker: deploy-cli
/// replaces markers before the YAML is parsed, so `url: ##BASE##/x` is content, not a comment.
pub fn yaml_comments(text: &str) -> Vec<(usize, usize)> {
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    // Indentation of the line that opened a block scalar, while inside one.
    let mut block: Option<usize> = None;
    // The quote of a quoted scalar that continues onto the next line.
    let mut open_quote: Option<u8> = None;
    let mut line_start = 0;
    while line_start < bytes.len() {
        let line_end = bytes[line_start..].iter().position(|b| *b == b'\n').map_or(bytes.len(), |p| line_start + p);
        let line = &bytes[line_start..line_end];
        let indent = line.iter().take_while(|b| **b == b' ' || **b == b'\t').count();
        let blank = indent == line.len() || line[indent] == b'\r';
        if let Some(parent) = block {
            if blank || indent > parent {
                line_start = line_end + 1;
                continue;
            }
            block = None;
        }
        let mut i = 0;
        let mut quote = open_quote.take();
        let mut last_content: Option<u8> = None;
        while i < line.len() {
            let b = line[i];
            if let Some(q) = quote {
                if q == b'"' && b == b'\\' {
                    i += 2;
                    continue;
                }
                if b == q {
                    if q == b'\'' && line.get(i + 1) == Some(&b'\'') {
                        i += 2;
                        continue;
                    }
                    quote = None;
                    last_content = Some(b);
                }
                i += 1;
                continue;
            }
            let after_space = i == 0 || line[i - 1] == b' ' || line[i - 1] == b'\t';
            if b == b'#' && after_space {
                if let Some(m) = marker_at(line, i, i) {
                    last_content = Some(b'#');
                    i = m.end;
                    continue;
                }
                out.push((line_start + i, line_end));
                break;
            }
            if (b == b'"' || b == b'\'')
                && (after_space || matches!(line.get(i.wrapping_sub(1)), Some(b'[' | b'{' | b',')))
            {
                quote = Some(b);
            } else if b != b' ' && b != b'\t' && b != b'\r' {
                last_content = Some(b);
            }
            i += 1;
        }
        if quote.is_some() {
            open_quote = quote;
        } else if is_block_indicator(line, last_content) {
            block = Some(indent);
        }
        line_start = line_end + 1;
    }
    out
}

/// Whether a line (comments aside) ends with a block scalar header: `|` or `>`, optionally
/// followed by a chomping and an indentation indicator, after `: `, `- ` or alone.
fn is_block_indicator(line: &[u8], last_content: Option<u8>) -> bool {
    if !matches!(last_content, Some(b'|' | b'>' | b'+' | b'-' | b'0'..=b'9')) {
        return false;
    }
    let text = String::from_utf8_lossy(line);
    let code = match text.find(" #") {
        Some(p) => &text[..p],
        None => &text,
    };
    let code = code.trim_end();
    let head = code.trim_end_matches(['+', '-', '1', '2', '3', '4', '5', '6', '7', '8', '9']);
    let Some(before) = head.strip_suffix('|').or_else(|| head.strip_suffix('>')) else {
        return false;
    };
    let before = before.trim_end();
    before.is_empty() || before.ends_with(':') || before.ends_with('-') || before.ends_with('?')
}

/// 1-based line of byte `pos`.
pub fn line_of(text: &str, pos: usize) -> usize {
    1 + text.as_bytes()[..pos.min(text.len())].iter().filter(|b| **b == b'\n').count()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn comments(text: &str) -> Vec<&str> {
        yaml_comments(text).into_iter().map(|(a, b)| &text[a..b]).collect()
    }

    #[test]
    fn comments_are_found_outside_quotes_blocks_and_markers() {
        let text = concat!(
            "# Step 3: ##KEYWORDS## are replaced\n",
            "a: ##BASE##/x # trailing ##T##\n",
            "b: \"quoted # not a comment\" # yes\n",
            "c: 'it''s # no' #yes2\n",
            "d: it's#fine\n",
            "e: |\n",
            "  # inside a block scalar\n",
            "  code ##K##\n",
            "f: [ \"a\", ##LIST## ]\n",
            "g: \"multi\n",
            "  line # still quoted\"\n",
            "  # indented comment\n",
        );
        assert_eq!(
            comments(text),
            ["# Step 3: ##KEYWORDS## are replaced", "# trailing ##T##", "# yes", "#yes2", "# indented comment"]
        );
    }

    #[test]
    fn markers_take_matching_quotes_along() {
        let m = marker_at(b"x: '@@A@@'", 4, 0).unwrap();
        assert_eq!((m.start, m.end, m.json), (3, 10, true));
        let m = marker_at(b"x: '@@A@@\"", 4, 0).unwrap();
        assert_eq!((m.start, m.end), (4, 9));
        assert!(marker_at(b"## A##", 0, 0).is_none());
        assert_eq!(line_of("a\nb\nc", 4), 3);
    }
}
