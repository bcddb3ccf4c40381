//! `gatehouse doctor`: an auth0-client `config.json` checked against the tenant it talks to,
//! for every pitfall the guide warns about. Pure functions over [`ServiceInput`] (the parts of
//! config.json that matter here, filled by the caller from auth0-client's own parser) and a
//! [`TenantFile`] (read from tenant.yaml, or exported from a live tenant).
//!
//! Each finding names the config.json key, the guide step and the fix, as [`crate::lint`]
//! findings do; errors are what makes logins or user management fail.

use std::collections::BTreeMap;

use store::Client;

use crate::lint::{Finding, Severity, USER_SCOPES};
use crate::{ActionSpec, ClientSpec, TenantFile};

/// One entry of config.json's `clients` (a login client).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LoginClient {
    /// Its key in `clients` (`cms`).
    pub key: String,
    pub client_id: String,
    pub redirect_url: String,
    pub scopes: Vec<String>,
    /// `None` when absent or empty.
    pub audience: Option<String>,
    pub supported_connections: Vec<String>,
    pub default_connection: Option<String>,
}

/// config.json's `managementClient`.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ManagementInput {
    pub client_id: String,
    /// Connection names users are listed and created in (`supportedConnections` or the keys
    /// of `supportedConnectionsMap`), and the default one.
    pub connections: Vec<String>,
    pub default_connection: Option<String>,
    /// `supportedConnectionsMap`: connection name → the `connectionId` configured.
    pub connection_ids: BTreeMap<String, String>,
}

/// What doctor needs of a config.json.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ServiceInput {
    pub clients: Vec<LoginClient>,
    pub management: ManagementInput,
    pub custom_claims_namespaces: Vec<String>,
}

/// The tenant side.
#[derive(Debug, Clone)]
pub struct TenantInput<'a> {
    pub file: &'a TenantFile,
    /// Read from a live tenant: action secret values are write-only there, and connection
    /// ids are known.
    pub live: bool,
    /// For a live tenant, MIA_NAMESPACE's value when the user knows it (`--keywords`).
    pub namespace_hint: Option<String>,
    /// Live tenant: connection name → id.
    pub connection_ids: BTreeMap<String, String>,
    /// `https://{domain}/api/v2/` when the domain is known.
    pub management_audience: Option<String>,
}

impl<'a> TenantInput<'a> {
    /// A tenant file read from disk.
    pub fn file(file: &'a TenantFile) -> Self {
        Self { file, live: false, namespace_hint: None, connection_ids: BTreeMap::new(), management_audience: None }
    }
}

/// The Management API scopes auth0-client's user routes call for, and the routes that fail
/// without each (Auth0 accepts `update:users` for app_metadata changes too).
pub const ROUTE_SCOPES: &[(&str, &str)] = &[
    ("read:users", "GET /users, GET /users/active, change password, import job status"),
    ("create:users", "POST /users, POST /users/import"),
    ("update:users", "PATCH /users/{userID}"),
    ("delete:users", "DELETE /users/{userID}"),
];

/// The connections a setting names: its list, and its default when the list lacks it.
fn named_connections<'a>(list: &'a [String], default: &'a Option<String>) -> Vec<&'a String> {
    let mut names: Vec<&String> = list.iter().collect();
    if let Some(d) = default
        && !names.contains(&d)
    {
        names.push(d);
    }
    names
}

fn err(step: &'static str, message: String, fix: String) -> Finding {
    Finding { severity: Severity::Error, step, message, fix }
}

fn warn(step: &'static str, message: String, fix: String) -> Finding {
    Finding { severity: Severity::Warning, step, message, fix }
}

/// Every check; errors first, then warnings, each group in config.json's order.
pub fn doctor(service: &ServiceInput, tenant: &TenantInput<'_>) -> Vec<Finding> {
    let mut out = Vec::new();
    let pinned = tenant.file.clients.iter().any(|c| c.client_id.is_some());
    if !pinned {
        out.push(warn(
            "step 1",
            "the tenant file pins no client_id, so config.json's client ids cannot be checked".into(),
            "check against the live tenant (--domain …) or export with --export-identifiers".into(),
        ));
    }
    for c in &service.clients {
        login_client(c, tenant, pinned, &mut out);
    }
    namespaces(service, tenant, &mut out);
    management(&service.management, tenant, pinned, &mut out);
    out.sort_by_key(|f| f.severity);
    out
}

fn client_record(spec: &ClientSpec) -> Option<Client> {
    spec.to_client(spec.client_id.as_deref().unwrap_or("doctor")).ok()
}

/// The login client: a Regular Web Application with the redirect URL, `profile`, the API
/// audience with equal lifetimes, and its connections enabled.
fn login_client(c: &LoginClient, tenant: &TenantInput<'_>, pinned: bool, out: &mut Vec<Finding>) {
    let key = format!("clients.{}", c.key);
    if !c.scopes.iter().any(|s| s == "profile") {
        out.push(err(
            "step 7",
            format!("{key}.scopes lacks profile, so Auth0 answers with an empty ID token"),
            format!("add \"profile\" to {key}.scopes"),
        ));
    }
    let file = tenant.file;
    let spec = file.clients.iter().find(|s| s.client_id.as_deref() == Some(c.client_id.as_str()));
    let client = spec.and_then(client_record);
    if pinned && spec.is_none() {
        out.push(err(
            "step 1",
            format!("{key}.clientId {} is not an application of the tenant", c.client_id),
            format!("set {key}.clientId to the Client ID of the Regular Web Application"),
        ));
    }
    if let Some(client) = &client {
        let app_type = client.app_type.as_deref().unwrap_or("none");
        if app_type != "regular_web" {
            out.push(err(
                "step 1",
                format!(
                    "{key}.clientId names {}, a {app_type} application; logins need a Regular Web Application",
                    client.name
                ),
                format!("use the Regular Web Application's Client ID, or set app_type: regular_web on {}", client.name),
            ));
        }
        if !client.callbacks.contains(&c.redirect_url) {
            out.push(err(
                "step 2",
                format!("{key}.redirectUrl {} is not an allowed callback URL of {}", c.redirect_url, client.name),
                format!("add {} to callbacks of {}", c.redirect_url, client.name),
            ));
        }
        if !client.allows_grant("authorization_code") {
            out.push(err(
                "step 1",
                format!("{} does not allow the authorization_code grant the login uses", client.name),
                format!("add authorization_code to grant_types of {}", client.name),
            ));
        }
        if c.scopes.iter().any(|s| s == "offline_access") && !client.allows_grant("refresh_token") {
            out.push(warn(
                "step 1",
                format!("{key}.scopes asks for offline_access but {} does not allow refresh_token", client.name),
                format!("add refresh_token to grant_types of {}", client.name),
            ));
        }
    }

    match &c.audience {
        None => out.push(warn(
            "step 5",
            format!("{key}.audience is not set, so access tokens are not issued for the backoffice API"),
            format!("set {key}.audience to the identifier of the API created in step 5"),
        )),
        Some(aud) => match file.resource_server(aud).and_then(|r| r.to_resource_server("doctor").ok()) {
            None => out.push(err(
                "step 5",
                format!("{key}.audience {aud} is not the identifier of any API of the tenant"),
                format!("set {key}.audience to an API identifier ({})", api_list(file)),
            )),
            Some(api) => {
                if let Some(client) = &client
                    && api.token_lifetime != client.jwt_configuration.lifetime_in_seconds
                {
                    out.push(err(
                        "step 5",
                        format!(
                            "API {} issues access tokens for {} s but {} issues ID tokens for {} s",
                            api.name, api.token_lifetime, client.name, client.jwt_configuration.lifetime_in_seconds
                        ),
                        format!(
                            "make them equal: token_lifetime of {} or jwt_configuration.lifetime_in_seconds of {}",
                            api.name, client.name
                        ),
                    ));
                }
            }
        },
    }

    for name in named_connections(&c.supported_connections, &c.default_connection) {
        match file.connection(name) {
            None => out.push(err(
                "step 3",
                format!("{key} names connection {name}, which the tenant does not have"),
                format!("create {name} or remove it from {key}.supportedConnections"),
            )),
            Some(conn) => {
                if let Some(client) = &client
                    && !conn.enabled_client_names().iter().any(|n| *n == client.name || *n == client.client_id)
                {
                    out.push(err(
                        "step 3",
                        format!(
                            "connection {name} is not enabled for {} ({key}), so its users cannot log in",
                            client.name
                        ),
                        format!("add {} to enabled_clients of {name}", client.name),
                    ));
                }
            }
        }
    }
}

fn api_list(file: &TenantFile) -> String {
    let ids: Vec<&str> = file.resource_servers.iter().map(|r| r.identifier.as_str()).collect();
    if ids.is_empty() { "the tenant has none: create it".into() } else { ids.join(", ") }
}

/// The post-login action of step 5 (the one that sets custom claims from app_metadata).
pub fn claims_action(file: &TenantFile) -> Option<&ActionSpec> {
    file.actions
        .iter()
        .find(|a| a.supports("post-login") && a.code.contains("setCustomClaim") && a.code.contains("app_metadata"))
}

/// Step 7: customClaimsNamespaces lists the claims the action names after MIA_NAMESPACE.
fn namespaces(service: &ServiceInput, tenant: &TenantInput<'_>, out: &mut Vec<Finding>) {
    let configured = &service.custom_claims_namespaces;
    let Some(action) = claims_action(tenant.file) else {
        out.push(err(
            "step 5",
            "no post-login action sets the namespaced app_metadata claim, so customClaimsNamespaces has nothing to read"
                .into(),
            "add the guide's inject-id-token action (gatehouse tenant lint shows what is missing)".into(),
        ));
        return;
    };
    if !tenant.file.bindings("post-login").iter().any(|b| b.action_name == action.name) {
        out.push(err(
            "step 5",
            format!("action {} is not bound to the Login flow, so no claim is set", action.name),
            format!("add {{action_name: {}}} to triggers.post-login", action.name),
        ));
    }
    if action.secret("MIA_NAMESPACE").is_none() {
        out.push(err(
            "step 5",
            format!("action {} has no MIA_NAMESPACE secret", action.name),
            format!("add the secret MIA_NAMESPACE to {} with the value customClaimsNamespaces uses", action.name),
        ));
        return;
    }
    let namespace =
        if tenant.live { tenant.namespace_hint.clone() } else { action.secret("MIA_NAMESPACE").map(str::to_owned) };
    let Some(ns) = namespace else {
        if configured.is_empty() {
            out.push(err(
                "step 7",
                "customClaimsNamespaces is empty, so groups never reach the CMS".into(),
                "list \"<MIA_NAMESPACE>app_metadata\" and \"<MIA_NAMESPACE>user_metadata\" in customClaimsNamespaces"
                    .into(),
            ));
        } else {
            out.push(warn(
                "step 7",
                format!(
                    "action {} has a MIA_NAMESPACE secret, but its value cannot be read (Auth0 secrets are write-only), so customClaimsNamespaces {} was not compared with it",
                    action.name,
                    configured.join(", ")
                ),
                "pass --keywords with MIA_NAMESPACE=<value> to compare".into(),
            ));
        }
        return;
    };
    let app = format!("{ns}app_metadata");
    let user = format!("{ns}user_metadata");
    if !configured.contains(&app) {
        out.push(err(
            "step 7",
            format!(
                "customClaimsNamespaces lacks {app}, the claim the action sets from MIA_NAMESPACE {ns}, so groups never reach the CMS"
            ),
            format!("add \"{app}\" to customClaimsNamespaces"),
        ));
    }
    if !configured.contains(&user) {
        out.push(warn(
            "step 7",
            format!("customClaimsNamespaces lacks {user}, so user_metadata stays out of the profile"),
            format!("add \"{user}\" to customClaimsNamespaces"),
        ));
    }
    for n in configured.iter().filter(|n| **n != app && **n != user) {
        out.push(warn(
            "step 7",
            format!("customClaimsNamespaces lists {n}, a claim the action never sets (MIA_NAMESPACE is {ns})"),
            format!("use {app} and {user}, or change MIA_NAMESPACE"),
        ));
    }
}

/// Step 1 and 5: the management client is the M2M application with the user scopes, and the
/// connections users are managed in exist.
fn management(m: &ManagementInput, tenant: &TenantInput<'_>, pinned: bool, out: &mut Vec<Finding>) {
    let file = tenant.file;
    let spec = file.clients.iter().find(|s| s.client_id.as_deref() == Some(m.client_id.as_str()));
    if pinned && spec.is_none() {
        out.push(err(
            "step 1",
            format!("managementClient.clientId {} is not an application of the tenant", m.client_id),
            "set managementClient.clientId to the Client ID of the Machine-to-Machine application".into(),
        ));
    }
    if let Some(client) = spec.and_then(client_record) {
        let app_type = client.app_type.as_deref().unwrap_or("none");
        if app_type != "non_interactive" {
            out.push(err(
                "step 1",
                format!(
                    "managementClient.clientId names {}, a {app_type} application, not a Machine-to-Machine one",
                    client.name
                ),
                format!(
                    "use the Machine-to-Machine application's Client ID, or set app_type: non_interactive on {}",
                    client.name
                ),
            ));
        }
        if !client.allows_grant("client_credentials") {
            out.push(err(
                "step 1",
                format!(
                    "{} does not allow the client_credentials grant, so it gets no Management API token",
                    client.name
                ),
                format!("add client_credentials to grant_types of {}", client.name),
            ));
        }
        let is_management = |aud: &str| match &tenant.management_audience {
            Some(m) => aud == m,
            None => aud.ends_with("/api/v2/"),
        };
        let grant = file.client_grants.iter().find(|g| {
            (g.client_name == client.name || g.client_name == client.client_id) && is_management(&g.audience)
        });
        match grant {
            None => out.push(err(
                "step 5",
                format!("{} (managementClient) is not authorised on the Management API", client.name),
                format!("grant {} the Management API with the user scopes", client.name),
            )),
            Some(g) => {
                let has = |s: &str| g.scope.iter().any(|x| x == s);
                let broken: Vec<String> =
                    ROUTE_SCOPES.iter().filter(|(s, _)| !has(s)).map(|(s, routes)| format!("{s} ({routes})")).collect();
                if !broken.is_empty() {
                    out.push(err(
                        "step 5",
                        format!(
                            "{} (managementClient) lacks Management API scopes auth0-client's routes need: {}",
                            client.name,
                            broken.join(", ")
                        ),
                        format!("grant {} every scope found filtering by \"user\"", client.name),
                    ));
                }
                let rest: Vec<&str> = USER_SCOPES
                    .iter()
                    .copied()
                    .filter(|s| !has(s) && !ROUTE_SCOPES.iter().any(|(r, _)| r == s))
                    .collect();
                if !rest.is_empty() {
                    out.push(warn(
                        "step 5",
                        format!("{} (managementClient) lacks the guide's scopes {}", client.name, rest.join(" ")),
                        format!("grant {} every scope found filtering by \"user\"", client.name),
                    ));
                }
            }
        }
    }
    for name in named_connections(&m.connections, &m.default_connection) {
        match file.connection(name) {
            None => out.push(err(
                "step 3",
                format!("managementClient names connection {name}, which the tenant does not have"),
                format!("create the database {name} or remove it from managementClient"),
            )),
            Some(c) if !c.is_database() => out.push(err(
                "step 3",
                format!(
                    "managementClient names connection {name}, a {} connection: users are created in databases",
                    c.strategy
                ),
                format!("name a database connection instead of {name}"),
            )),
            Some(_) => {}
        }
        if let (Some(configured), Some(actual)) = (m.connection_ids.get(name), tenant.connection_ids.get(name))
            && configured != actual
        {
            out.push(err(
                "step 3",
                format!("managementClient.supportedConnectionsMap.{name}.connectionId is {configured}, but {name}'s id is {actual}"),
                format!("set it to {actual}"),
            ));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Keywords, parse_tenant};
    use std::path::PathBuf;

    const NS: &str = "https://cms.example.test/";

    fn example_dir() -> PathBuf {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../examples/cms-tenant")
    }

    fn keywords() -> Keywords {
        let mut k = Keywords::from_env_file(example_dir().join("dev.env")).unwrap();
        k.insert("AUTH0_DOMAIN", "tenant.example.test");
        k
    }

    fn tenant_from(yaml: &str) -> TenantFile {
        parse_tenant(yaml, example_dir(), &keywords()).unwrap()
    }

    fn example_yaml() -> String {
        std::fs::read_to_string(example_dir().join("tenant.yaml")).unwrap()
    }

    /// The config.json that matches examples/cms-tenant.
    fn good() -> ServiceInput {
        let k = keywords();
        ServiceInput {
            clients: vec![LoginClient {
                key: "cms".into(),
                client_id: k.get("CMS_CLIENT_ID").unwrap(),
                redirect_url: "http://localhost:8080/web-login/callback".into(),
                scopes: ["offline_access", "profile", "email", "website"].map(String::from).to_vec(),
                audience: Some("http://localhost:8080/".into()),
                supported_connections: vec!["dev-users".into(), "prod-users".into()],
                default_connection: Some("dev-users".into()),
            }],
            management: ManagementInput {
                client_id: k.get("MGMT_CLIENT_ID").unwrap(),
                connections: vec!["dev-users".into()],
                default_connection: Some("dev-users".into()),
                connection_ids: BTreeMap::new(),
            },
            custom_claims_namespaces: vec![format!("{NS}app_metadata"), format!("{NS}user_metadata")],
        }
    }

    fn run(service: &ServiceInput, yaml: &str) -> Vec<Finding> {
        let file = tenant_from(yaml);
        doctor(service, &TenantInput::file(&file))
    }

    /// The findings as lines, asserting exactly one error contains `needle`.
    fn one_error(findings: &[Finding], needle: &str) {
        let hits: Vec<&Finding> =
            findings.iter().filter(|f| f.severity == Severity::Error && f.to_string().contains(needle)).collect();
        assert_eq!(hits.len(), 1, "want one error with {needle:?} in {findings:#?}");
    }

    #[test]
    fn the_example_config_is_clean() {
        let findings = run(&good(), &example_yaml());
        assert!(findings.is_empty(), "{findings:#?}");
    }

    #[test]
    fn client_ids_and_application_types() {
        let mut s = good();
        s.clients[0].client_id = "nope".into();
        one_error(&run(&s, &example_yaml()), "clients.cms.clientId nope is not an application");
        let mut s = good();
        s.clients[0].client_id = keywords().get("MGMT_CLIENT_ID").unwrap();
        one_error(&run(&s, &example_yaml()), "a non_interactive application; logins need a Regular Web Application");
        let mut s = good();
        s.management.client_id = keywords().get("CMS_CLIENT_ID").unwrap();
        let f = run(&s, &example_yaml());
        one_error(&f, "a regular_web application, not a Machine-to-Machine one");
    }

    #[test]
    fn redirect_url_must_be_a_callback() {
        let mut s = good();
        s.clients[0].redirect_url = "https://elsewhere.test/cb".into();
        one_error(
            &run(&s, &example_yaml()),
            "redirectUrl https://elsewhere.test/cb is not an allowed callback URL of CMS",
        );
    }

    #[test]
    fn profile_scope_is_required() {
        let mut s = good();
        s.clients[0].scopes.retain(|x| x != "profile");
        one_error(&run(&s, &example_yaml()), "lacks profile, so Auth0 answers with an empty ID token");
    }

    #[test]
    fn audience_must_be_an_api_and_lifetimes_equal() {
        let mut s = good();
        s.clients[0].audience = Some("https://other.test/".into());
        one_error(&run(&s, &example_yaml()), "audience https://other.test/ is not the identifier of any API");
        let yaml = example_yaml().replace("token_lifetime: 36000\n", "token_lifetime: 86400\n");
        one_error(&run(&good(), &yaml), "issues access tokens for 86400 s but CMS issues ID tokens for 36000 s");
        s.clients[0].audience = None;
        let f = run(&s, &example_yaml());
        assert!(
            f.iter().any(|f| f.severity == Severity::Warning && f.message.contains("audience is not set")),
            "{f:#?}"
        );
    }

    #[test]
    fn connections_exist_and_are_enabled() {
        let mut s = good();
        s.clients[0].supported_connections.push("staging-users".into());
        one_error(&run(&s, &example_yaml()), "names connection staging-users, which the tenant does not have");
        let yaml = example_yaml().replacen("    enabled_clients:\n      - CMS\n", "    enabled_clients: []\n", 1);
        one_error(&run(&good(), &yaml), "connection dev-users is not enabled for CMS");
        let mut s = good();
        s.management.connections = vec!["google-oauth2".into()];
        one_error(&run(&s, &example_yaml()), "a google-oauth2 connection: users are created in databases");
    }

    #[test]
    fn namespaces_match_mia_namespace() {
        let mut s = good();
        s.custom_claims_namespaces = vec!["https://mia-platform.eu/app_metadata".into()];
        let f = run(&s, &example_yaml());
        one_error(&f, "customClaimsNamespaces lacks https://cms.example.test/app_metadata");
        assert!(
            f.iter().any(|f| f
                .message
                .contains("lists https://mia-platform.eu/app_metadata, a claim the action never sets"))
        );
        // Live: the secret cannot be read; a hint makes it comparable.
        let file = tenant_from(&example_yaml());
        let live = TenantInput { live: true, ..TenantInput::file(&file) };
        let f = doctor(&good(), &live);
        assert!(
            f.len() == 1 && f[0].severity == Severity::Warning && f[0].message.contains("cannot be read"),
            "{f:#?}"
        );
        let hinted = TenantInput { namespace_hint: Some("https://x.test/".into()), ..live };
        one_error(&doctor(&good(), &hinted), "lacks https://x.test/app_metadata");
        let unbound = example_yaml().replace(
            "triggers:\n  post-login:\n    - action_name: inject-id-token\n      display_name: inject-id-token\n",
            "",
        );
        one_error(&run(&good(), &unbound), "is not bound to the Login flow");
    }

    #[test]
    fn management_grant_needs_the_user_scopes() {
        let yaml = example_yaml().replace("      - delete:users\n", "");
        one_error(&run(&good(), &yaml), "lacks Management API scopes auth0-client's routes need: delete:users (DELETE");
        let yaml = example_yaml().replace("      - delete:users_app_metadata\n", "");
        let f = run(&good(), &yaml);
        assert!(
            f.len() == 1
                && f[0].severity == Severity::Warning
                && f[0].message.contains("lacks the guide's scopes delete:users_app_metadata"),
            "{f:#?}"
        );
        let no_grant = example_yaml()
            .replace("clientGrants:\n  - client_id: User Management CMS\n", "clientGrants:\n  - client_id: CMS\n");
        one_error(&run(&good(), &no_grant), "(managementClient) is not authorised on the Management API");
    }

    #[test]
    fn live_connection_ids_are_compared() {
        let file = tenant_from(&example_yaml());
        let mut s = good();
        s.management.connection_ids.insert("dev-users".into(), "con_wrong".into());
        let live = TenantInput {
            file: &file,
            live: true,
            namespace_hint: Some(NS.into()),
            connection_ids: [("dev-users".to_string(), "con_right".to_string())].into(),
            management_audience: Some("https://tenant.example.test/api/v2/".into()),
        };
        one_error(&doctor(&s, &live), "connectionId is con_wrong, but dev-users's id is con_right");
    }
}
