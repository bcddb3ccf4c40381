//! The guide's rules, checked on a tenant file: each finding names the guide step it comes
//! from and how to fix it. Works on the file alone (no server), so it runs in CI before a
//! deploy and on an export of a live tenant alike. Besides the guide: keyword markers left
//! without a value (with their file and line; never those in YAML comments) and roles whose
//! permissions name an API or scope the file does not have.

use crate::TenantFile;
use serde_json::Value;
use std::fmt;
use store::Client;

/// The Management API permissions the guide's step 5 grants ("all the roles found filtering by
/// user").
pub const USER_SCOPES: &[&str] = &[
    "read:users",
    "update:users",
    "delete:users",
    "create:users",
    "read:users_app_metadata",
    "update:users_app_metadata",
    "delete:users_app_metadata",
    "create:users_app_metadata",
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Severity {
    /// Logins or user management will not work as the guide intends.
    Error,
    /// Allowed, but usually a mistake the guide warns about.
    Warning,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finding {
    pub severity: Severity,
    /// The guide's step, e.g. "step 3".
    pub step: &'static str,
    pub message: String,
    pub fix: String,
}

impl fmt::Display for Finding {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        if self.step.starts_with("step") {
            write!(f, "{level} [guide {}]: {} — fix: {}", self.step, self.message, self.fix)
        } else {
            write!(f, "{level} [{}]: {} — fix: {}", self.step, self.message, self.fix)
        }
    }
}

fn finding(severity: Severity, step: &'static str, message: String, fix: String) -> Finding {
    Finding { severity, step, message, fix }
}

/// Every rule of the guide, in the guide's order.
pub fn lint(file: &TenantFile) -> Vec<Finding> {
    let clients: Vec<Client> = file.clients.iter().filter_map(|c| c.to_client("lint").ok()).collect();
    let web: Vec<&Client> = clients.iter().filter(|c| c.app_type.as_deref() == Some("regular_web")).collect();
    let mut out = Vec::new();
    urls(file, &web, &mut out);
    databases(file, &web, &mut out);
    google(file, &mut out);
    lifetimes(file, &web, &mut out);
    management_grant(file, &clients, &mut out);
    action(file, &mut out);
    keywords(file, &mut out);
    roles(file, &mut out);
    out.sort_by_key(|f| f.severity);
    out
}

/// deploy-cli leaves a marker without a value as text, and the tenant gets `##KEY##` as a value.
fn keywords(file: &TenantFile, out: &mut Vec<Finding>) {
    for u in &file.unresolved_keywords {
        out.push(finding(
            Severity::Warning,
            "keywords",
            u.to_string(),
            format!(
                "give {} a value (AUTH0_KEYWORD_REPLACE_MAPPINGS in --config, --keywords or the environment)",
                u.name
            ),
        ));
    }
}

/// A role's permissions are scopes of APIs.
fn roles(file: &TenantFile, out: &mut Vec<Finding>) {
    for role in &file.roles {
        let mut seen = std::collections::BTreeSet::new();
        for p in &role.permissions {
            if !seen.insert(p) {
                out.push(finding(
                    Severity::Warning,
                    "roles",
                    format!("role {} lists {} of {} twice", role.name, p.permission_name, p.resource_server_identifier),
                    "list each permission once".into(),
                ));
                continue;
            }
            let Some(api) = file.resource_server(&p.resource_server_identifier) else {
                out.push(finding(
                    Severity::Warning,
                    "roles",
                    format!(
                        "role {} grants {} of {}, an API this file does not define",
                        role.name, p.permission_name, p.resource_server_identifier
                    ),
                    "add the API under `resourceServers`, or make sure the tenant has it".into(),
                ));
                continue;
            };
            let scopes = api.body.get("scopes").and_then(Value::as_array);
            let known = scopes
                .into_iter()
                .flatten()
                .any(|s| s.get("value").and_then(Value::as_str) == Some(&p.permission_name));
            if !known {
                out.push(finding(
                    Severity::Error,
                    "roles",
                    format!("role {} grants {}, which API {} does not define", role.name, p.permission_name, api.name),
                    format!("add {{value: {}}} to the scopes of {}", p.permission_name, api.name),
                ));
            }
        }
    }
}

/// Step 2 and step 6: callbacks and logout URLs on the application, logout URLs on the tenant.
fn urls(file: &TenantFile, web: &[&Client], out: &mut Vec<Finding>) {
    if web.is_empty() {
        out.push(finding(
            Severity::Error,
            "step 1",
            "no Regular Web Application (app_type regular_web) is defined".into(),
            "add the CMS application under `clients` with app_type: regular_web".into(),
        ));
    }
    for c in web {
        if c.callbacks.is_empty() {
            out.push(finding(
                Severity::Error,
                "step 2",
                format!("application {} has no allowed callback URL", c.name),
                format!("add https://<CMS host>/web-login/callback to `callbacks` of {}", c.name),
            ));
        }
        if c.allowed_logout_urls.is_empty() {
            out.push(finding(
                Severity::Error,
                "step 2",
                format!("application {} has no allowed logout URL", c.name),
                format!("add the CMS URL to `allowed_logout_urls` of {}", c.name),
            ));
        }
        for url in &c.allowed_logout_urls {
            if !file.tenant.allowed_logout_urls.contains(url) {
                out.push(finding(
                    Severity::Error,
                    "step 6",
                    format!("logout URL {url} of {} is not allowed at tenant level", c.name),
                    format!("add {url} to tenant.allowed_logout_urls"),
                ));
            }
        }
    }
}

/// Step 3: sign-up off on the environment databases, each enabled for the applications.
fn databases(file: &TenantFile, web: &[&Client], out: &mut Vec<Finding>) {
    if file.databases.is_empty() {
        out.push(finding(
            Severity::Warning,
            "step 3",
            "no database connection is defined".into(),
            "add one database per environment under `databases`".into(),
        ));
    }
    for db in &file.databases {
        let signup_off = db.body.get("options").and_then(|o| o.get("disable_signup")).and_then(Value::as_bool);
        if signup_off != Some(true) {
            out.push(finding(
                Severity::Error,
                "step 3",
                format!("database {} lets anyone sign up", db.name),
                format!("set options.disable_signup: true on {}", db.name),
            ));
        }
        if db.enabled_client_names().is_empty() {
            out.push(finding(
                Severity::Error,
                "step 3",
                format!("database {} is enabled for no application", db.name),
                format!("list the CMS application in enabled_clients of {}", db.name),
            ));
        }
    }
    for c in web {
        let enabled = file.databases.iter().any(|d| d.enabled_client_names().contains(&c.name));
        if !enabled && !file.databases.is_empty() {
            out.push(finding(
                Severity::Error,
                "step 3",
                format!("application {} can use no database, so its users cannot log in", c.name),
                format!("add {} to enabled_clients of its environment's database", c.name),
            ));
        }
    }
}

/// Step 4: Google is on by default in Auth0; the guide switches it off unless it is wanted.
fn google(file: &TenantFile, out: &mut Vec<Finding>) {
    for c in file.connections.iter().filter(|c| c.strategy == "google-oauth2") {
        if !c.enabled_client_names().is_empty() {
            out.push(finding(
                Severity::Warning,
                "step 4",
                format!("Google login is enabled for {}", c.enabled_client_names().join(", ")),
                "if social login is not meant, set enabled_clients: [] on google-oauth2".into(),
            ));
        }
    }
}

/// Step 5: the API's access-token lifetime must equal the applications' ID-token lifetime.
fn lifetimes(file: &TenantFile, web: &[&Client], out: &mut Vec<Finding>) {
    let apis: Vec<_> = file.resource_servers.iter().filter_map(|r| r.to_resource_server("lint").ok()).collect();
    if apis.is_empty() {
        out.push(finding(
            Severity::Error,
            "step 5",
            "no API (resource server) identifies the backoffice".into(),
            "add the CMS API under `resourceServers` with the CMS URL as identifier".into(),
        ));
    }
    for api in &apis {
        for c in web {
            if api.token_lifetime != c.jwt_configuration.lifetime_in_seconds {
                out.push(finding(
                    Severity::Error,
                    "step 5",
                    format!(
                        "API {} issues access tokens for {} s but {} issues ID tokens for {} s",
                        api.name, api.token_lifetime, c.name, c.jwt_configuration.lifetime_in_seconds
                    ),
                    format!(
                        "make them equal: token_lifetime of {} or jwt_configuration.lifetime_in_seconds of {}",
                        api.name, c.name
                    ),
                ));
            }
        }
    }
}

/// Step 5: the Machine-to-Machine application holds the Management API's user permissions.
fn management_grant(file: &TenantFile, clients: &[Client], out: &mut Vec<Finding>) {
    let m2m: Vec<&Client> = clients.iter().filter(|c| c.app_type.as_deref() == Some("non_interactive")).collect();
    if m2m.is_empty() {
        out.push(finding(
            Severity::Error,
            "step 1",
            "no Machine-to-Machine application (app_type non_interactive) manages users".into(),
            "add \"User Management CMS\" under `clients` with app_type: non_interactive".into(),
        ));
        return;
    }
    for c in m2m {
        let grant = file.client_grants.iter().find(|g| g.client_name == c.name && g.audience.ends_with("/api/v2/"));
        let Some(grant) = grant else {
            out.push(finding(
                Severity::Error,
                "step 5",
                format!("{} is not authorised on the Management API", c.name),
                format!("add a clientGrant for {} with audience https://<domain>/api/v2/ and the user scopes", c.name),
            ));
            continue;
        };
        let missing: Vec<&str> = USER_SCOPES.iter().copied().filter(|s| !grant.scope.iter().any(|g| g == s)).collect();
        if !missing.is_empty() {
            out.push(finding(
                Severity::Error,
                "step 5",
                format!("{} lacks Management API scopes: {}", c.name, missing.join(" ")),
                "grant every scope found filtering by \"user\"".into(),
            ));
        }
    }
}

/// Step 5: a post-login action puts app_metadata under the MIA_NAMESPACE claim, and is bound.
fn action(file: &TenantFile, out: &mut Vec<Finding>) {
    let sets_claim = |code: &str| code.contains("setCustomClaim") && code.contains("app_metadata");
    let candidate = file.actions.iter().find(|a| a.supports("post-login") && sets_claim(&a.code));
    let Some(action) = candidate else {
        out.push(finding(
            Severity::Error,
            "step 5",
            "no post-login action puts app_metadata into the ID token, so the CMS never sees groups".into(),
            "add the guide's inject-id-token action under `actions`".into(),
        ));
        return;
    };
    if action.secret("MIA_NAMESPACE").is_none_or(str::is_empty) {
        out.push(finding(
            Severity::Error,
            "step 5",
            format!("action {} has no MIA_NAMESPACE secret", action.name),
            format!("add secrets: [{{name: MIA_NAMESPACE, value: https://<tenant URL>/}}] to {}", action.name),
        ));
    } else if !action.code.contains("MIA_NAMESPACE") {
        out.push(finding(
            Severity::Warning,
            "step 5",
            format!("action {} does not read its MIA_NAMESPACE secret", action.name),
            "build the claim name from event.secrets.MIA_NAMESPACE, as the guide's code does".into(),
        ));
    }
    if let Some(ns) = action.secret("MIA_NAMESPACE").filter(|ns| !ns.is_empty())
        && (!(ns.starts_with("https://") || ns.starts_with("http://")) || !ns.ends_with('/'))
    {
        out.push(finding(
            Severity::Warning,
            "step 5",
            format!(
                "MIA_NAMESPACE of {} is {ns}: the claims are named {ns}app_metadata and {ns}user_metadata",
                action.name
            ),
            "use a URL ending with a slash, as the guide does (https://<tenant URL>/)".into(),
        ));
    }
    if !action.deployed {
        out.push(finding(
            Severity::Error,
            "step 5",
            format!("action {} is not deployed", action.name),
            format!("set deployed: true on {}", action.name),
        ));
    }
    if !file.bindings("post-login").iter().any(|b| b.action_name == action.name) {
        out.push(finding(
            Severity::Error,
            "step 5",
            format!("action {} is not bound to the Login flow", action.name),
            format!("add {{action_name: {}}} to triggers.post-login", action.name),
        ));
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keywords, parse_tenant};
    use std::path::PathBuf;

    fn example_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cms-tenant")
    }

    fn example_yaml() -> String {
        std::fs::read_to_string(example_dir().join("tenant.yaml")).unwrap()
    }

    fn load(yaml: &str) -> TenantFile {
        let mut kw = Keywords::from_env_file(example_dir().join("dev.env")).unwrap();
        kw.insert("AUTH0_DOMAIN", "tenant.example.test");
        parse_tenant(yaml, example_dir(), &kw).unwrap()
    }

    fn steps(findings: &[Finding]) -> Vec<(&'static str, Severity)> {
        findings.iter().map(|f| (f.step, f.severity)).collect()
    }

    #[test]
    fn the_guides_example_is_clean() {
        let findings = lint(&load(&example_yaml()));
        assert!(findings.is_empty(), "{findings:#?}");
    }

    #[test]
    fn each_pitfall_is_named_with_its_step() {
        let yaml = example_yaml()
            .replace("lifetime_in_seconds: 36000\n    refresh_token", "lifetime_in_seconds: 600\n    refresh_token")
            .replacen("disable_signup: true", "disable_signup: false", 1)
            .replace("      - delete:users_app_metadata\n", "")
            .replace("    enabled_clients: []\n", "    enabled_clients: [CMS]\n")
            .replace("    - \"##CMS_BASE_URL##/web-login/callback\"\n  # Step 3", "  # Step 3");
        let findings = lint(&load(&yaml));
        let got = steps(&findings);
        for want in [
            ("step 5", Severity::Error),
            ("step 3", Severity::Error),
            ("step 4", Severity::Warning),
            ("step 6", Severity::Error),
        ] {
            assert!(got.contains(&want), "missing {want:?} in {findings:#?}");
        }
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert!(text.iter().any(|t| t.contains("600 s") && t.contains("36000 s")), "{text:#?}");
        assert!(text.iter().any(|t| t.contains("lacks Management API scopes: delete:users_app_metadata")), "{text:#?}");
        assert!(
            text.iter().any(|t| t.contains("lets anyone sign up") && t.contains("fix: set options.disable_signup"))
        );
    }

    #[test]
    fn roles_name_apis_and_scopes_the_file_defines() {
        let yaml = example_yaml().replace("    scopes: []\n", "    scopes:\n      - {value: read:pages}\n")
            + concat!(
                "roles:\n",
                "  - name: Editor\n",
                "    permissions:\n",
                "      - {permission_name: read:pages, resource_server_identifier: \"##CMS_BASE_URL##/\"}\n",
                "      - {permission_name: read:pages, resource_server_identifier: \"##CMS_BASE_URL##/\"}\n",
                "      - {permission_name: write:pages, resource_server_identifier: \"##CMS_BASE_URL##/\"}\n",
                "      - {permission_name: read:orders, resource_server_identifier: https://orders.example/}\n",
            );
        let findings = lint(&load(&yaml));
        let text: Vec<String> = findings.iter().map(ToString::to_string).collect();
        assert_eq!(findings.len(), 3, "{text:#?}");
        assert!(
            text[0].starts_with("error [roles]: role Editor grants write:pages, which API CMS API does not define")
        );
        assert!(text.iter().any(|t| t.starts_with("warning [roles]: role Editor lists read:pages of")), "{text:#?}");
        assert!(
            text.iter().any(|t| t.contains("read:orders of https://orders.example/, an API this file does not define")),
            "{text:#?}"
        );
        let clean = yaml.replacen(
            "      - {permission_name: read:pages, resource_server_identifier: \"##CMS_BASE_URL##/\"}\n",
            "",
            1,
        );
        assert_eq!(lint(&load(&clean)).len(), 2);
    }

    #[test]
    fn a_missing_or_unbound_action_is_reported() {
        let unbound = example_yaml().replace(
            "triggers:\n  post-login:\n    - action_name: inject-id-token\n      display_name: inject-id-token\n",
            "",
        );
        let findings = lint(&load(&unbound));
        assert!(findings.iter().any(|f| f.message.contains("not bound to the Login flow")), "{findings:#?}");
        let no_slash = example_yaml().replace("value: \"##MIA_NAMESPACE##\"", "value: https://cms.example.test");
        let findings = lint(&load(&no_slash));
        assert!(
            findings.iter().any(|f| f.severity == Severity::Warning
                && f.message.contains("claims are named https://cms.example.testapp_metadata")),
            "{findings:#?}"
        );
        let empty = "tenant:\n  friendly_name: x\n";
        let findings = lint(&load(empty));
        assert!(findings.iter().any(|f| f.message.contains("no post-login action")));
        assert!(findings.iter().any(|f| f.message.contains("no Regular Web Application")));
        assert!(findings.iter().any(|f| f.message.contains("no Machine-to-Machine")));
    }
}
