//! `gatehouse tenant export | import | lint`: tenant as code in auth0-deploy-cli's YAML, against
//! any Management API (a real Auth0 tenant or Gatehouse's idp). Wiring only: the rules live in
//! the `tenant` crate (`export`, `import`, `yaml_out`, `lint`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand};
use tenant::{Credentials, ImportOptions, Keywords, ManagementClient, Severity, WriteOptions};

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Write a live tenant as auth0-deploy-cli YAML (tenant.yaml + actions/<name>/code.js).
    Export(ExportArgs),
    /// Apply a tenant file to a live tenant: create what is missing, update what differs,
    /// delete nothing; prints the plan. A second run changes nothing.
    Import(ImportArgs),
    /// Check a tenant file (auth0-deploy-cli YAML) against the guide's rules.
    Lint(LintArgs),
}

/// Where the tenant is and the Machine-to-Machine application to reach its Management API
/// with, named as auth0-deploy-cli names them.
#[derive(Args, Debug, Clone)]
pub struct RemoteArgs {
    /// The tenant's domain (`tenant.eu.auth0.com`, `localhost:3000`).
    #[arg(long, env = "AUTH0_DOMAIN")]
    pub domain: Option<String>,
    /// Client id of an application granted the Management API.
    #[arg(long, env = "AUTH0_CLIENT_ID")]
    pub client_id: Option<String>,
    /// Its client secret.
    #[arg(long, env = "AUTH0_CLIENT_SECRET", hide_env_values = true)]
    pub client_secret: Option<String>,
    /// Extra CA certificates (PEM) to trust, e.g. `gatehouse idp --tls`'s `<data>/ca.pem`.
    #[arg(long, env = "SSL_CERT_FILE")]
    pub ca_file: Option<PathBuf>,
}

impl RemoteArgs {
    pub fn credentials(&self) -> anyhow::Result<Credentials> {
        let need = |v: &Option<String>, flag: &str, var: &str| {
            v.clone()
                .filter(|s| !s.trim().is_empty())
                .ok_or_else(|| anyhow::anyhow!("{flag} is required (or set {var})"))
        };
        let ca_pem = match &self.ca_file {
            Some(p) => {
                Some(std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read --ca-file {}: {e}", p.display()))?)
            }
            None => None,
        };
        Ok(Credentials {
            domain: need(&self.domain, "--domain", "AUTH0_DOMAIN")?,
            client_id: need(&self.client_id, "--client-id", "AUTH0_CLIENT_ID")?,
            client_secret: need(&self.client_secret, "--client-secret", "AUTH0_CLIENT_SECRET")?,
            ca_pem,
        })
    }
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// Folder to write tenant.yaml and the action code into (created if missing).
    #[arg(long, short = 'o', alias = "output_folder")]
    pub output_folder: PathBuf,
    /// `.env`-style keyword values: each value found in the export is written back as its
    /// `##KEY##` marker (AUTH0_DOMAIN is the tenant's domain).
    #[arg(long, env = "GATEHOUSE_KEYWORDS")]
    pub keywords: Option<PathBuf>,
    /// Write each application's client_id (deploy-cli's AUTH0_EXPORT_IDENTIFIERS).
    #[arg(long)]
    pub export_identifiers: bool,
    /// Write secrets in clear: client secrets when the API shows them (Auth0 does, to
    /// read:client_keys), and connections' options.client_secret and options.configuration
    /// (otherwise written as ##<CONNECTION>_CLIENT_SECRET##-style keywords).
    #[arg(long)]
    pub include_secrets: bool,
}

#[derive(Args, Debug)]
pub struct ImportArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    /// tenant.yaml (paths in it are relative to its folder).
    #[arg(alias = "input_file")]
    pub file: PathBuf,
    /// `.env`-style keyword values (the environment wins; AUTH0_DOMAIN is the tenant's domain).
    #[arg(long, env = "GATEHOUSE_KEYWORDS")]
    pub keywords: Option<PathBuf>,
    /// Print the plan, change nothing.
    #[arg(long)]
    pub dry_run: bool,
    /// Send action secret values and client secrets even when nothing shows they changed
    /// (the API never shows them, so they cannot be compared).
    #[arg(long)]
    pub update_secrets: bool,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// tenant.yaml
    pub file: PathBuf,
    /// `.env`-style keyword values (the environment wins).
    #[arg(long, env = "GATEHOUSE_KEYWORDS")]
    pub keywords: Option<PathBuf>,
}

pub fn run(cmd: TenantCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        TenantCommand::Export(args) => report(block_on(export(args))),
        TenantCommand::Import(args) => report(block_on(import(args))),
        TenantCommand::Lint(args) => lint(args),
    }
}

/// Errors as one `error: …` block on stderr and a failing exit status, never a panic.
pub fn report(result: anyhow::Result<ExitCode>) -> anyhow::Result<ExitCode> {
    match result {
        Ok(code) => Ok(code),
        Err(e) => {
            eprintln!("error: {e:#}");
            Ok(ExitCode::FAILURE)
        }
    }
}

pub fn block_on<T>(f: impl std::future::Future<Output = anyhow::Result<T>>) -> anyhow::Result<T> {
    auth0_client::install_crypto_provider();
    tokio::runtime::Builder::new_current_thread().enable_all().build()?.block_on(f)
}

/// Keyword values from `--keywords` and the environment.
pub fn keywords(path: Option<&Path>) -> anyhow::Result<Keywords> {
    Ok(match path {
        Some(p) => Keywords::from_env_file(p)?,
        None => Keywords::new(),
    }
    .with_process_env())
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let api = ManagementClient::connect(&args.remote.credentials()?).await?;
    let (file, notes) = tenant::export(&api).await?;
    let mut kw = keywords(args.keywords.as_deref())?;
    kw.insert("AUTH0_DOMAIN", api.domain());
    let opts = WriteOptions {
        identifiers: args.export_identifiers,
        client_secrets: args.include_secrets,
        keywords: args.keywords.is_some().then_some(&kw),
    };
    let rendered = tenant::yaml_out::render(&file, &opts);
    tenant::yaml_out::write_dir(&args.output_folder, &rendered)?;
    for n in &notes {
        println!("note: {n}");
    }
    if !rendered.secret_keywords.is_empty() {
        println!(
            "note: secrets are written as keywords; importing this file needs their values (--keywords): {}",
            rendered.secret_keywords.join(", ")
        );
    }
    println!(
        "exported {}: {} clients, {} databases, {} connections, {} APIs, {} client grants, {} actions to {}",
        api.domain(),
        file.clients.len(),
        file.databases.len(),
        file.connections.len(),
        file.resource_servers.len(),
        file.client_grants.len(),
        file.actions.len(),
        args.output_folder.join("tenant.yaml").display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let credentials = args.remote.credentials()?;
    let mut kw = keywords(args.keywords.as_deref())?;
    let (_, domain) = tenant::remote::normalize_domain(&credentials.domain)?;
    // As with the idp: the tenant's own domain, whatever the keyword file says.
    kw.insert("AUTH0_DOMAIN", domain);
    // The file is read before anything is sent, so a broken file never reaches the tenant.
    let file = tenant::load_tenant(&args.file, &kw)?;
    let api = ManagementClient::connect(&credentials).await?;
    let opts = ImportOptions { dry_run: args.dry_run, update_secrets: args.update_secrets };
    let report = tenant::import(&api, &file, opts).await?;
    println!(
        "{} {} from {}:",
        if args.dry_run { "plan for" } else { "import into" },
        api.domain(),
        args.file.display()
    );
    for c in &report.changes {
        println!("  {c}");
    }
    for n in &report.notes {
        println!("note: {n}");
    }
    println!("{}", report.summary());
    Ok(ExitCode::SUCCESS)
}

fn lint(args: LintArgs) -> anyhow::Result<ExitCode> {
    let mut keywords = keywords(args.keywords.as_deref())?;
    // The file may name the tenant's own domain; its value does not matter to any rule.
    if keywords.get("AUTH0_DOMAIN").is_none() {
        keywords.insert("AUTH0_DOMAIN", "tenant.invalid");
    }
    let file = tenant::load_tenant(&args.file, &keywords)?;
    let findings = tenant::lint(&file);
    for f in &findings {
        println!("{f}");
    }
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    println!("{} finding(s), {errors} error(s) in {}", findings.len(), args.file.display());
    Ok(if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
