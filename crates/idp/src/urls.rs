//! Allow-list matching for redirect and logout URLs, as Auth0 does it: scheme and host compare
//! case-insensitively, the path case-sensitively, and `*` may stand for exactly one left-most
//! subdomain label. Callback URLs must match with their query; logout URLs ignore the query and
//! fragment of `returnTo`.
//!
//! What is matched is the URL as a browser reads it (WHATWG parsing: host lower-cased, default
//! port dropped, percent-encoding made canonical), and a match returns that normalised URL:
//! callers write it, never the raw input, into redirects and `form_post` forms, so what the
//! browser is sent to is exactly what was checked.

use url::Url;

const WILDCARD_LABEL: &str = "gatehouse-wildcard-label";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Callback,
    Logout,
}

/// `given`, normalised, when it matches an allowed callback. A URL with a fragment or
/// credentials never matches, whatever the list says.
pub fn match_callback(allowed: &[String], given: &str) -> Option<String> {
    find(allowed, given, Mode::Callback)
}

/// `given`, normalised, when it matches an allowed logout URL.
pub fn match_logout(allowed: &[String], given: &str) -> Option<String> {
    find(allowed, given, Mode::Logout)
}

/// Whether the `redirect_uri` of a token request names the callback the authorization request
/// was answered at (`matched`, as [`match_callback`] returned it).
pub fn same_callback(matched: &str, given: &str) -> bool {
    given == matched || parse_target(given, Mode::Callback).is_some_and(|u| u.as_str() == matched)
}

fn find(allowed: &[String], given: &str, mode: Mode) -> Option<String> {
    let given = parse_target(given, mode)?;
    allowed.iter().any(|pattern| matches(pattern, &given, mode)).then(|| given.into())
}

fn parse_target(given: &str, mode: Mode) -> Option<Url> {
    // The parser drops tabs and newlines anywhere and trims spaces and controls at the ends, so
    // with any of them the string checked below would not be the URL parsed.
    if given.chars().any(|c| c.is_control() || c == ' ') {
        return None;
    }
    let url = Url::parse(given).ok()?;
    let sane = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.host_str().is_some()
        // Backslashes and dot segments normalise away (`/cb/x/..` is `/cb`); a URL that needed
        // that is not the one that was registered.
        && !given.contains('\\')
        && !has_dot_segment(given);
    if !sane || (mode == Mode::Callback && url.fragment().is_some()) {
        return None;
    }
    Some(url)
}

/// Whether the path of `url` has a segment the URL parser resolves as `.` or `..`: in any
/// spelling it accepts, `%2e` in either case standing for a dot (`.%2e`, `%2E.`, `%2e%2e`).
fn has_dot_segment(url: &str) -> bool {
    let before_query = url.split(['?', '#']).next().unwrap_or("");
    before_query.split('/').any(|segment| {
        let dots = segment.to_ascii_lowercase().replace("%2e", ".");
        dots == "." || dots == ".."
    })
}

fn matches(pattern: &str, given: &Url, mode: Mode) -> bool {
    let (pattern, wildcard) = match pattern.split_once("://*.") {
        Some((scheme, rest)) => (format!("{scheme}://{WILDCARD_LABEL}.{rest}"), true),
        None => (pattern.to_string(), false),
    };
    let Ok(p) = Url::parse(&pattern) else {
        return false;
    };
    if !p.username().is_empty() || p.password().is_some() {
        return false;
    }
    let host_ok = match (p.host_str(), given.host_str()) {
        (Some(ph), Some(gh)) if wildcard => {
            // A pattern whose host did not keep the placeholder as its first label (`*.@a.io`
            // parses with host `a.io`) is malformed: it matches nothing.
            let Some(suffix) = ph.strip_prefix(WILDCARD_LABEL).filter(|s| s.starts_with('.') && s.len() > 1) else {
                return false;
            }; // ".example.com"
            gh.strip_suffix(suffix).is_some_and(|label| !label.is_empty() && !label.contains('.'))
        }
        (Some(ph), Some(gh)) => ph == gh,
        _ => false,
    };
    let query_ok = mode == Mode::Logout || p.query() == given.query();
    host_ok
        && p.scheme() == given.scheme()
        && p.port_or_known_default() == given.port_or_known_default()
        && p.path() == given.path()
        && query_ok
}

#[cfg(test)]
mod tests {
    use super::*;

    fn list(v: &[&str]) -> Vec<String> {
        v.iter().map(|s| s.to_string()).collect()
    }

    #[test]
    fn malformed_wildcard_patterns_match_nothing_and_never_panic() {
        let a = list(&["https://*.@a.io/cb", "https://*.@averyveryverylonghostname.example.com/cb", "https://*./cb"]);
        for given in [
            "https://a.io/cb",
            "https://x.a.io/cb",
            "https://x.averyveryverylonghostname.example.com/cb",
            "https://e.com/cb",
        ] {
            assert!(match_callback(&a, given).is_none(), "{given}");
            assert!(match_logout(&a, given).is_none(), "{given}");
        }
        let a = list(&["https://user@cms.example.com/cb"]);
        assert!(match_callback(&a, "https://cms.example.com/cb").is_none());
    }

    #[test]
    fn callbacks_match_exactly() {
        let a = list(&["https://cms.example.com/web-login/callback", "http://localhost:8080/cb?x=1"]);
        assert!(match_callback(&a, "https://cms.example.com/web-login/callback").is_some());
        assert!(match_callback(&a, "HTTPS://CMS.Example.com/web-login/callback").is_some());
        assert!(match_callback(&a, "https://cms.example.com:443/web-login/callback").is_some());
        assert!(match_callback(&a, "https://cms.example.com/Web-Login/callback").is_none());
        assert!(match_callback(&a, "https://cms.example.com/web-login/callback/").is_none());
        assert!(match_callback(&a, "https://cms.example.com/web-login/callback?evil=1").is_none());
        assert!(match_callback(&a, "https://cms.example.com/web-login/callback#x").is_none());
        assert!(match_callback(&a, "https://cms.example.com.evil.com/web-login/callback").is_none());
        assert!(match_callback(&a, "https://evil@cms.example.com/web-login/callback").is_none());
        assert!(match_callback(&a, "https://cms.example.com/x/../web-login/callback").is_none());
        assert!(match_callback(&a, "http://cms.example.com/web-login/callback").is_none());
        assert!(match_callback(&a, "http://localhost:8080/cb?x=1").is_some());
        assert!(match_callback(&a, "http://localhost:8081/cb?x=1").is_none());
        assert!(match_callback(&a, "javascript:alert(1)").is_none());
    }

    #[test]
    fn wildcard_is_one_left_most_label() {
        let a = list(&["https://*.example.com/cb"]);
        assert!(match_callback(&a, "https://tenant1.example.com/cb").is_some());
        assert!(match_callback(&a, "https://example.com/cb").is_none());
        assert!(match_callback(&a, "https://a.b.example.com/cb").is_none());
        assert!(match_callback(&a, "https://evilexample.com/cb").is_none());
    }

    #[test]
    fn dot_segments_in_any_spelling_match_nothing() {
        let a = list(&["https://app.test/cb", "https://*.app.test/cb", "https://app.test/evil"]);
        for given in [
            "https://app.test/cb/../evil",
            "https://app.test/cb/./",
            "https://app.test/x/../cb",
            "https://app.test/x/.%2e/cb",
            "https://app.test/x/%2e./cb",
            "https://app.test/x/%2E./cb",
            "https://app.test/x/.%2E/cb",
            "https://app.test/x/%2e%2e/cb",
            "https://app.test/x/%2E%2e/cb",
            "https://app.test/cb/%2e%2e/evil",
            "https://app.test/x/%2e/../cb",
            "https://t1.app.test/x/.%2e/cb",
            // Tabs and newlines vanish in parsing: `.\t.` is `..` to a browser.
            "https://app.test/x/.\t./cb",
            "https://app.test/x/.\n./cb",
            " https://app.test/cb",
            "https://app.test\\cb",
        ] {
            assert_eq!(match_callback(&a, given), None, "{given}");
            assert_eq!(match_logout(&a, given), None, "{given}");
        }
        // `%2f` is no separator: the segment stays as sent and the path is another one.
        assert_eq!(match_callback(&a, "https://app.test/cb/..%2fevil"), None);
        assert_eq!(match_callback(&a, "https://app.test/cb/..%2f..%2fevil"), None);
        // Dots inside a segment are ordinary characters.
        let dotted = list(&["https://app.test/a.../.b/..c"]);
        assert!(match_callback(&dotted, "https://app.test/a.../.b/..c").is_some());
    }

    #[test]
    fn a_match_is_the_normalised_url() {
        let a = list(&["https://cms.example.com/web-login/callback", "https://*.example.com/cb?x=1"]);
        assert_eq!(
            match_callback(&a, "HTTPS://CMS.Example.com:443/web-login/callback").as_deref(),
            Some("https://cms.example.com/web-login/callback")
        );
        assert_eq!(
            match_callback(&a, "https://T1.example.com/cb?x=1").as_deref(),
            Some("https://t1.example.com/cb?x=1")
        );
        let a = list(&["http://localhost:8080"]);
        assert_eq!(
            match_logout(&a, "http://LOCALHOST:8080?a=<b>").as_deref(),
            Some("http://localhost:8080/?a=%3Cb%3E")
        );
        assert!(same_callback(
            "https://cms.example.com/web-login/callback",
            "https://CMS.example.com/web-login/callback"
        ));
        assert!(!same_callback(
            "https://cms.example.com/web-login/callback",
            "https://cms.example.com/x/../web-login/callback"
        ));
        assert!(!same_callback(
            "https://cms.example.com/web-login/callback",
            "https://cms.example.com/web-login/callback2"
        ));
    }

    #[test]
    fn logout_ignores_query_and_fragment() {
        let a = list(&["http://localhost:8080"]);
        assert!(match_logout(&a, "http://localhost:8080/?a=b#c").is_some());
        assert!(match_logout(&a, "http://localhost:8080/other").is_none());
        assert!(match_logout(&a, "http://localhost:9090/").is_none());
    }
}
