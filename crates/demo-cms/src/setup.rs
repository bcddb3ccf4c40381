//! auth0-client's configuration for `gatehouse up`, written as the `config.json` and environment
//! an operator would give the original (guide step 7), then loaded through auth0-client's own
//! parser and start-up rules, so the stack runs exactly what a file would say.

use crate::Origins;
use auth0_client::config::{Config, ConfigError, Env, ServiceConfig};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::path::PathBuf;

/// The client type of the CMS (also `defaultClient`, as the gateway sends no `client-type`).
pub const CLIENT_TYPE: &str = "cms";

/// What the generated configuration needs from the tenant.
#[derive(Debug, Clone)]
pub struct Auth0ClientSetup {
    pub origins: Origins,
    /// The Regular Web Application (`CMS_CLIENT_ID` / `CMS_CLIENT_SECRET`).
    pub cms_client_id: String,
    pub cms_client_secret: String,
    /// The Machine-to-Machine application (`MGMT_CLIENT_ID` / `MGMT_CLIENT_SECRET`).
    pub management_client_id: String,
    pub management_client_secret: String,
    /// The action's `MIA_NAMESPACE` (e.g. `https://cms.example.test/`).
    pub namespace: String,
    /// The database connection users sign in with and are created in, and its id.
    pub connection: String,
    pub connection_id: String,
    /// `REDIS_HOSTS` (`host:port`); sessions in memory when `None`.
    pub redis_hosts: Option<String>,
    /// Where the equivalent `config.json` is written for reference (`SERVICE_CONFIG_PATH`).
    pub config_dir: PathBuf,
}

impl Auth0ClientSetup {
    /// The `config.json` document.
    pub fn config_json(&self) -> Value {
        let idp = self.origins.idp_base();
        let cms = self.origins.cms_base();
        json!({
            "clients": {
                CLIENT_TYPE: {
                    "auth0Url": idp,
                    "clientId": self.cms_client_id,
                    "clientSecret": self.cms_client_secret,
                    "redirectUrl": format!("{cms}/web-login/callback"),
                    // Guide step 7: `profile`, or the ID token is empty; `website`: the sid cookie.
                    "scopes": ["offline_access", "profile", "email", "website"],
                    "audience": format!("{cms}/"),
                    "supportedConnections": [self.connection],
                    "defaultConnection": self.connection,
                    "sameSite": "Lax",
                    "authorizeStateRequired": true
                }
            },
            "defaultClient": CLIENT_TYPE,
            "managementClient": {
                "auth0Url": idp,
                "clientId": self.management_client_id,
                "clientSecret": self.management_client_secret,
                "defaultManagementConnectionName": self.connection,
                "supportedConnectionsMap": { (self.connection.clone()): { "connectionId": self.connection_id } }
            },
            // Guide step 7: the action's claims, `${MIA_NAMESPACE}app_metadata` and `…user_metadata`.
            "customClaimsNamespaces": [
                format!("{}app_metadata", self.namespace),
                format!("{}user_metadata", self.namespace)
            ]
        })
    }

    /// The environment variables of the service.
    pub fn env(&self) -> BTreeMap<&'static str, String> {
        let mut env = BTreeMap::from([
            ("SERVICE_CONFIG_PATH", self.config_dir.display().to_string()),
            ("SERVICE_CONFIG_FILE_NAME", "config".to_string()),
            ("ORIGINAL_PROTOCOL_HEADER", "x-forwarded-proto".to_string()),
            ("SERVICE_VERSION", env!("CARGO_PKG_VERSION").to_string()),
        ]);
        if let Some(hosts) = &self.redis_hosts {
            env.insert("REDIS_HOSTS", hosts.clone());
        }
        env
    }

    /// The configuration, checked by auth0-client's parser and start-up rules.
    pub fn config(&self) -> Result<Config, ConfigError> {
        let vars = self.env();
        let env = Env::parse(&|k: &str| vars.get(k).cloned())?;
        let (service, warnings) = ServiceConfig::parse(&self.config_json().to_string())?;
        Ok(Config { env, service, warnings })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_generated_configuration_passes_auth0_clients_checks() {
        let setup = Auth0ClientSetup {
            origins: Origins::local(9090),
            cms_client_id: "cms".into(),
            cms_client_secret: "secret".into(),
            management_client_id: "m2m".into(),
            management_client_secret: "secret2".into(),
            namespace: "https://cms.example.test/".into(),
            connection: "dev-users".into(),
            connection_id: "con_1".into(),
            redis_hosts: Some("127.0.0.1:6379".into()),
            config_dir: PathBuf::from("/tmp/x"),
        };
        let config = setup.config().expect("valid");
        let cms = config.service.client(CLIENT_TYPE).expect("the cms client");
        assert_eq!(cms.auth0_url, "http://127.0.0.1:9090");
        assert_eq!(cms.redirect_url, "http://localhost:9090/web-login/callback");
        assert_eq!(cms.audience.as_deref(), Some("http://localhost:9090/"));
        assert!(cms.website() && cms.authorize_state_required);
        assert_eq!(cms.auth0_scope(), "openid offline_access profile email");
        assert_eq!(config.service.custom_claims_namespaces[0], "https://cms.example.test/app_metadata");
        assert_eq!(config.service.management_client.default_connection(), Some("dev-users"));
        assert_eq!(config.env.redis.as_ref().map(|r| r.hosts.clone()), Some(vec![("127.0.0.1".to_string(), 6379)]));
    }
}
