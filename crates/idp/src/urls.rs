//! Allow-list matching for redirect and logout URLs, as Auth0 does it: scheme and host compare
//! case-insensitively, the path case-sensitively, and `*` may stand for exactly one left-most
//! subdomain label. Callback URLs must match with their query; logout URLs ignore the query and
//! fragment of `returnTo`.

use url::Url;

const WILDCARD_LABEL: &str = "gatehouse-wildcard-label";

#[derive(Clone, Copy, PartialEq, Eq)]
enum Mode {
    Callback,
    Logout,
}

/// The allowed callback `given` matches, if any. A URL with a fragment or credentials never
/// matches, whatever the list says.
pub fn match_callback<'a>(allowed: &'a [String], given: &str) -> Option<&'a str> {
    find(allowed, given, Mode::Callback)
}

pub fn match_logout<'a>(allowed: &'a [String], given: &str) -> Option<&'a str> {
    find(allowed, given, Mode::Logout)
}

fn find<'a>(allowed: &'a [String], given: &str, mode: Mode) -> Option<&'a str> {
    let given = parse_target(given, mode)?;
    allowed.iter().find(|pattern| matches(pattern, &given, mode)).map(String::as_str)
}

fn parse_target(given: &str, mode: Mode) -> Option<Url> {
    let url = Url::parse(given).ok()?;
    let sane = matches!(url.scheme(), "http" | "https")
        && url.username().is_empty()
        && url.password().is_none()
        && url.host_str().is_some()
        // Dot segments and backslashes normalise away; a URL that needed normalising is not
        // the one that was registered.
        && !given.contains('\\')
        && !given.split(['?', '#']).next().unwrap_or("").split('/').any(|s| s == "." || s == ".." || s.eq_ignore_ascii_case("%2e") || s.eq_ignore_ascii_case("%2e%2e"));
    if !sane || (mode == Mode::Callback && url.fragment().is_some()) {
        return None;
    }
    Some(url)
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
    fn logout_ignores_query_and_fragment() {
        let a = list(&["http://localhost:8080"]);
        assert!(match_logout(&a, "http://localhost:8080/?a=b#c").is_some());
        assert!(match_logout(&a, "http://localhost:8080/other").is_none());
        assert!(match_logout(&a, "http://localhost:9090/").is_none());
    }
}
