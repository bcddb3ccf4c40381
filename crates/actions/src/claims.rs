//! Which custom-claim names Auth0 lets an Action set (spec A.3.3): restricted names and reserved
//! namespaces are dropped silently, as Auth0 drops them (the login does not fail).

/// Claim names no Action may set (Auth0's list, verbatim).
pub const RESTRICTED: &[&str] = &[
    "acr",
    "act",
    "active",
    "amr",
    "at_hash",
    "ath",
    "attest",
    "aud",
    "auth_time",
    "authorization_details",
    "azp",
    "c_hash",
    "client_id",
    "cnf",
    "cty",
    "dest",
    "entitlements",
    "events",
    "exp",
    "groups",
    "gty",
    "htm",
    "htu",
    "iat",
    "internalService",
    "iss",
    "jcard",
    "jku",
    "jti",
    "jwe",
    "jwk",
    "kid",
    "may_act",
    "mky",
    "nbf",
    "nonce",
    "object_id",
    "org_id",
    "org_name",
    "orig",
    "origid",
    "permissions",
    "roles",
    "rph",
    "s_hash",
    "sid",
    "sip_callid",
    "sip_cseq_num",
    "sip_date",
    "sip_from_tag",
    "sip_via_branch",
    "sub",
    "sub_jwk",
    "toe",
    "txn",
    "typ",
    "uuid",
    "vot",
    "vtm",
    "x5t#S256",
];

/// Hosts whose URLs are Auth0's own namespaces.
const RESERVED_HOSTS: &[&str] = &["auth0.com", "webtask.io", "webtask.run"];

/// Whether an Action may set a claim called `name`.
pub fn allowed(name: &str) -> bool {
    if name.is_empty() || RESTRICTED.contains(&name) {
        return false;
    }
    if name.len() >= 9 && name[..9].eq_ignore_ascii_case("urn:auth0") {
        return false;
    }
    if let Some(host) = url_host(name) {
        // `auth0.com.` is the same host as `auth0.com` (the root's trailing dot).
        let host = host.trim_end_matches('.').to_ascii_lowercase();
        return !RESERVED_HOSTS.iter().any(|r| host == *r || host.ends_with(&format!(".{r}")));
    }
    true
}

/// Whether `name` is a namespaced (URL or URN) claim rather than a private, bare one.
pub fn namespaced(name: &str) -> bool {
    url_host(name).is_some() || name.starts_with("urn:")
}

fn url_host(name: &str) -> Option<&str> {
    let rest = name.strip_prefix("https://").or_else(|| name.strip_prefix("http://"))?;
    let authority = rest.split(['/', '?', '#']).next().unwrap_or("");
    let host = authority.rsplit('@').next().unwrap_or("");
    Some(host.split(':').next().unwrap_or(""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn restricted_and_reserved_names_are_refused() {
        for name in ["groups", "roles", "sub", "iss", "permissions", "x5t#S256", "", "urn:auth0:x", "URN:AUTH0"] {
            assert!(!allowed(name), "{name}");
        }
        for name in [
            "https://auth0.com/x",
            "https://tenant.auth0.com/x",
            "http://x.webtask.run/y",
            "https://auth0.com./x",
            "https://Tenant.Auth0.COM../x",
        ] {
            assert!(!allowed(name), "{name}");
        }
        for name in ["https://cms.example.test/app_metadata", "email", "name", "myClaim", "urn:example:x"] {
            assert!(allowed(name), "{name}");
        }
        assert!(allowed("https://notauth0.com/x"));
    }

    #[test]
    fn namespaced_names() {
        assert!(namespaced("https://cms.example.test/groups"));
        assert!(namespaced("urn:example:groups"));
        assert!(!namespaced("groups_list"));
    }
}
