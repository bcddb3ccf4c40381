//! Which scopes a user's login can receive.

use store::{Client, ResourceServer};

/// Scopes a user login can receive: the OIDC ones, and the API's own. Of the Management API
/// (a system API), only the `*:current_user*` ones, as on Auth0: a user's token must never
/// carry `delete:users` and the like, which only client grants confer.
pub fn grantable_scopes(requested: &[String], client: &Client, api: Option<&ResourceServer>) -> Vec<String> {
    requested
        .iter()
        .filter(|s| match s.as_str() {
            "openid" | "profile" | "email" => true,
            "offline_access" => client.allows_grant("refresh_token") && api.is_none_or(|a| a.allow_offline_access),
            other => api.is_some_and(|a| {
                a.scopes.iter().any(|x| x.value == other) && (!a.is_system || is_current_user_scope(other))
            }),
        })
        .cloned()
        .collect::<Vec<_>>()
}

/// `read:current_user`, `update:current_user_metadata`…: the Management API scopes a user may
/// hold for their own account.
pub fn is_current_user_scope(scope: &str) -> bool {
    scope.split_once(':').is_some_and(|(_, what)| what.starts_with("current_user"))
}

/// The Management API scopes of an Auth0 tenant (the subset Gatehouse's API serves grows with it).
pub const MANAGEMENT_SCOPES: &[&str] = &[
    "read:client_grants",
    "create:client_grants",
    "delete:client_grants",
    "update:client_grants",
    "read:users",
    "update:users",
    "delete:users",
    "create:users",
    "read:users_app_metadata",
    "update:users_app_metadata",
    "delete:users_app_metadata",
    "create:users_app_metadata",
    "read:user_custom_blocks",
    "create:user_custom_blocks",
    "delete:user_custom_blocks",
    "create:user_tickets",
    "read:clients",
    "update:clients",
    "delete:clients",
    "create:clients",
    "read:client_keys",
    "update:client_keys",
    "delete:client_keys",
    "create:client_keys",
    "read:client_credentials",
    "update:client_credentials",
    "delete:client_credentials",
    "create:client_credentials",
    "read:connections",
    "update:connections",
    "delete:connections",
    "create:connections",
    "read:connections_options",
    "update:connections_options",
    "read:resource_servers",
    "update:resource_servers",
    "delete:resource_servers",
    "create:resource_servers",
    "read:device_credentials",
    "update:device_credentials",
    "delete:device_credentials",
    "create:device_credentials",
    "read:rules",
    "update:rules",
    "delete:rules",
    "create:rules",
    "read:rules_configs",
    "update:rules_configs",
    "delete:rules_configs",
    "read:hooks",
    "update:hooks",
    "delete:hooks",
    "create:hooks",
    "read:actions",
    "update:actions",
    "delete:actions",
    "create:actions",
    "read:email_provider",
    "update:email_provider",
    "delete:email_provider",
    "create:email_provider",
    "blacklist:tokens",
    "read:stats",
    "read:insights",
    "read:tenant_settings",
    "update:tenant_settings",
    "read:logs",
    "read:logs_users",
    "read:shields",
    "create:shields",
    "update:shields",
    "delete:shields",
    "read:anomaly_blocks",
    "delete:anomaly_blocks",
    "update:triggers",
    "read:triggers",
    "read:grants",
    "delete:grants",
    "read:sessions",
    "delete:sessions",
    "read:refresh_tokens",
    "delete:refresh_tokens",
    "read:guardian_factors",
    "update:guardian_factors",
    "read:roles",
    "create:roles",
    "delete:roles",
    "update:roles",
    "read:role_members",
    "create:role_members",
    "delete:role_members",
    "read:prompts",
    "update:prompts",
    "read:branding",
    "update:branding",
    "delete:branding",
    "read:log_streams",
    "create:log_streams",
    "delete:log_streams",
    "update:log_streams",
    "create:signing_keys",
    "read:signing_keys",
    "update:signing_keys",
    "read:attack_protection",
    "update:attack_protection",
    "read:organizations",
    "update:organizations",
    "create:organizations",
    "delete:organizations",
    "read:custom_domains",
    "create:custom_domains",
    "update:custom_domains",
    "delete:custom_domains",
    "read:email_templates",
    "create:email_templates",
    "update:email_templates",
    "read:mfa_policies",
    "update:mfa_policies",
    "read:user_idp_tokens",
    "read:client_summary",
    // A user's own account: a login for this API may ask for these (never for the others),
    // and they reach only the token's own user.
    "read:current_user",
    "delete:current_user",
    "update:current_user_metadata",
    "create:current_user_metadata",
    "delete:current_user_metadata",
    "update:current_user_identities",
    "create:current_user_device_credentials",
    "delete:current_user_device_credentials",
];

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn client(grants: &[&str]) -> Client {
        serde_json::from_value(json!({ "client_id": "app", "name": "App", "grant_types": grants })).unwrap()
    }

    fn api(identifier: &str, scopes: &[&str], offline: bool, system: bool) -> ResourceServer {
        let scopes: Vec<_> = scopes.iter().map(|s| json!({ "value": s })).collect();
        serde_json::from_value(json!({
            "id": "rs", "name": identifier, "identifier": identifier, "scopes": scopes,
            "allow_offline_access": offline, "is_system": system
        }))
        .unwrap()
    }

    fn ask(s: &str) -> Vec<String> {
        s.split(' ').map(str::to_owned).collect()
    }

    #[test]
    fn oidc_scopes_pass_and_unknown_ones_are_dropped() {
        let app = client(&["authorization_code"]);
        assert_eq!(grantable_scopes(&ask("openid profile email read:x"), &app, None), ask("openid profile email"));
        let orders = api("https://orders", &["read:orders"], false, false);
        assert_eq!(
            grantable_scopes(&ask("openid read:orders write:orders"), &app, Some(&orders)),
            ask("openid read:orders")
        );
    }

    #[test]
    fn offline_access_needs_the_refresh_grant_and_the_apis_consent() {
        let with_refresh = client(&["authorization_code", "refresh_token"]);
        let without = client(&["authorization_code"]);
        let offline = api("https://a", &[], true, false);
        let online = api("https://b", &[], false, false);
        assert_eq!(grantable_scopes(&ask("openid offline_access"), &with_refresh, None), ask("openid offline_access"));
        assert_eq!(grantable_scopes(&ask("openid offline_access"), &without, None), ask("openid"));
        assert_eq!(grantable_scopes(&ask("offline_access"), &with_refresh, Some(&offline)), ask("offline_access"));
        assert!(grantable_scopes(&ask("offline_access"), &with_refresh, Some(&online)).is_empty());
    }

    #[test]
    fn a_user_gets_only_current_user_scopes_of_the_management_api() {
        let app = client(&["authorization_code"]);
        let management = api("https://t/api/v2/", &["read:users", "delete:users", "read:current_user"], false, true);
        assert_eq!(
            grantable_scopes(&ask("read:users delete:users read:current_user"), &app, Some(&management)),
            ask("read:current_user")
        );
        assert!(is_current_user_scope("update:current_user_metadata"));
        assert!(!is_current_user_scope("read:users"));
        assert!(!is_current_user_scope("current_user"));
    }
}
