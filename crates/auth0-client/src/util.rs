//! Small helpers: randomness, base64url, URL pieces.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

/// `bytes` random bytes as base64url (16 bytes = 128 bits → 22 characters).
pub fn random_token(bytes: usize) -> String {
    let mut buf = vec![0u8; bytes];
    aws_lc_rs::rand::fill(&mut buf).expect("system randomness");
    URL_SAFE_NO_PAD.encode(&buf)
}

/// A random UUID v4, for request ids.
pub fn uuid_v4() -> String {
    let mut b = [0u8; 16];
    aws_lc_rs::rand::fill(&mut b).expect("system randomness");
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    let h: String = b.iter().map(|x| format!("{x:02x}")).collect();
    format!("{}-{}-{}-{}-{}", &h[..8], &h[8..12], &h[12..16], &h[16..20], &h[20..])
}

pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    URL_SAFE_NO_PAD.decode(s.trim_end_matches('=')).ok()
}

/// One path segment, percent-encoded (`auth0|123` → `auth0%7C123`).
pub fn path_segment(s: &str) -> String {
    const SEGMENT: &percent_encoding::AsciiSet =
        &percent_encoding::NON_ALPHANUMERIC.remove(b'-').remove(b'_').remove(b'.').remove(b'~');
    percent_encoding::utf8_percent_encode(s, SEGMENT).to_string()
}

/// `candidate` when it is a path on the caller's own site, the only kind of post-login target
/// this service hands back: it starts with one `/` (not `//host` or `/\\host`, which browsers
/// read as another site), holds no backslash and no control character (browsers drop tabs and
/// newlines, turning `/\t/host` into `//host`), and is at most 2 KiB.
pub fn same_site_path(candidate: &str) -> Option<&str> {
    let ok = candidate.starts_with('/')
        && !candidate.starts_with("//")
        && candidate.len() <= 2048
        && !candidate.contains('\\')
        && !candidate.chars().any(char::is_control);
    ok.then_some(candidate)
}

#[cfg(test)]
mod tests {
    #[test]
    fn same_site_paths_only() {
        for good in ["/", "/backoffice", "/web-login?redirect=/backoffice", "/a/b?x=1#frag"] {
            assert_eq!(super::same_site_path(good), Some(good));
        }
        let long = format!("/{}", "a".repeat(2048));
        for bad in [
            "",
            "backoffice",
            "//evil.example",
            "/\\evil.example",
            "/a\\b",
            "https://evil.example/",
            "javascript:alert(1)",
            "/\t/evil.example",
            "/a\nb",
            "/a\u{85}b",
            long.as_str(),
        ] {
            assert_eq!(super::same_site_path(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn helpers() {
        assert_eq!(super::random_token(16).len(), 22);
        assert_eq!(super::uuid_v4().len(), 36);
        assert_eq!(super::path_segment("auth0|12 3"), "auth0%7C12%203");
    }
}
