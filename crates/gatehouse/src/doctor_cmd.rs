//! `gatehouse doctor --config config.json (--tenant tenant.yaml | --domain …)`: an
//! auth0-client config.json checked against a tenant file or a live tenant. Wiring only: the
//! config is parsed by auth0-client's own parser (so what doctor accepts is exactly what the
//! service accepts), converted to `tenant::doctor::ServiceInput`, and checked by
//! `tenant::doctor`.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::ExitCode;

use auth0_client::config::{ManagementShape, ServiceConfig};
use clap::Args;
use tenant::ManagementClient;
use tenant::doctor::{LoginClient, ManagementInput, ServiceInput, TenantInput};
use tenant::{RemoteState, Severity};

use crate::tenant_cmd::{ConfigArgs, RemoteArgs, block_on, keywords, load, report};

#[derive(Args, Debug)]
pub struct DoctorArgs {
    /// auth0-client's config.json.
    #[arg(long)]
    pub config: PathBuf,
    /// A tenant (auth0-deploy-cli YAML or directory format); without it, the live tenant of
    /// --domain.
    #[arg(long)]
    pub tenant: Option<PathBuf>,
    /// `.env`-style keyword values for the tenant file; for a live tenant, MIA_NAMESPACE's
    /// value (Auth0 never shows secret values).
    #[arg(long, env = "GATEHOUSE_KEYWORDS")]
    pub keywords: Option<PathBuf>,
    /// auth0-deploy-cli's config.json, for its keyword mappings, exclusions and credentials
    /// (`--config` is auth0-client's config.json here); AUTH0_* variables win over it.
    #[arg(long, alias = "config_file")]
    pub deploy_config: Option<PathBuf>,
    #[command(flatten)]
    pub remote: RemoteArgs,
}

pub fn run(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    report(block_on(doctor(args)))
}

async fn doctor(args: DoctorArgs) -> anyhow::Result<ExitCode> {
    let text = std::fs::read_to_string(&args.config)
        .map_err(|e| anyhow::anyhow!("cannot read {}: {e}", args.config.display()))?;
    let (config, warnings) =
        ServiceConfig::parse(&text).map_err(|e| anyhow::anyhow!("{}: {e}", args.config.display()))?;
    for w in &warnings {
        println!("warning [config.json]: {w}");
    }
    let service = service_input(&config);
    let deploy = ConfigArgs { config: args.deploy_config.clone() }.load()?;
    let mut kw = keywords(args.keywords.as_deref(), &deploy)?;
    let (findings, against) = match &args.tenant {
        Some(path) => {
            if kw.get("AUTH0_DOMAIN").is_none() {
                // The Management API audience names the tenant auth0-client talks to.
                let host = url::Url::parse(&config.management_client.auth0_url)
                    .ok()
                    .and_then(|u| {
                        u.host_str().map(|h| match u.port() {
                            Some(p) => format!("{h}:{p}"),
                            None => h.to_string(),
                        })
                    })
                    .unwrap_or_else(|| "tenant.invalid".into());
                kw.insert("AUTH0_DOMAIN", host);
            }
            let file = load(path, &kw, &deploy)?;
            (tenant::doctor::doctor(&service, &TenantInput::file(&file)), path.display().to_string())
        }
        None => {
            let api = ManagementClient::connect(&args.remote.credentials(&deploy).map_err(|e| {
                anyhow::anyhow!(
                    "{e}: doctor needs --tenant FILE or a live tenant (--domain, --client-id, --client-secret)"
                )
            })?)
            .await?;
            let mut state = RemoteState::fetch(&api, Some(vec!["post-login".into()])).await?;
            deploy.selection.apply_to_state(&mut state);
            let mut notes = Vec::new();
            let file = state.to_tenant_file(&api, &mut notes)?;
            let connection_ids: BTreeMap<String, String> = state
                .connections
                .iter()
                .filter_map(|(c, _)| Some((c.get("name")?.as_str()?.to_string(), c.get("id")?.as_str()?.to_string())))
                .collect();
            let input = TenantInput {
                file: &file,
                live: true,
                namespace_hint: kw.get("MIA_NAMESPACE"),
                connection_ids,
                management_audience: Some(api.management_audience()),
            };
            (tenant::doctor::doctor(&service, &input), api.domain().to_string())
        }
    };
    for f in &findings {
        println!("{f}");
    }
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    println!("{} finding(s), {errors} error(s): {} against {against}", findings.len(), args.config.display());
    Ok(if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}

/// The parts of auth0-client's parsed config doctor checks.
fn service_input(config: &ServiceConfig) -> ServiceInput {
    let m = &config.management_client;
    let connection_ids = match &m.shape {
        ManagementShape::Current { supported_connections_map, .. } => supported_connections_map.clone(),
        _ => BTreeMap::new(),
    };
    ServiceInput {
        clients: config
            .clients
            .iter()
            .map(|c| LoginClient {
                key: c.name.clone(),
                client_id: c.client_id.clone(),
                redirect_url: c.redirect_url.clone(),
                scopes: c.scopes.clone(),
                audience: c.audience.clone().filter(|a| !a.is_empty()),
                supported_connections: c.supported_connections.clone(),
                default_connection: c.default_connection.clone().filter(|d| !d.is_empty()),
            })
            .collect(),
        management: ManagementInput {
            client_id: m.client_id.clone(),
            connections: m.supported_connections(),
            default_connection: m.default_connection().map(str::to_owned).filter(|d| !d.is_empty()),
            connection_ids,
        },
        custom_claims_namespaces: config.custom_claims_namespaces.clone(),
    }
}
