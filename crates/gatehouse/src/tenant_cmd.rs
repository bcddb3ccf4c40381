//! `gatehouse tenant export | import | lint`: tenant as code in auth0-deploy-cli's YAML or
//! directory format, configured by deploy-cli's config.json and `AUTH0_*` variables, against
//! any Management API (a real Auth0 tenant or Gatehouse's idp). Wiring only: the rules live in
//! the `tenant` crate (`config`, `export`, `import`, `yaml_out`, `directory`, `lint`).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Args, Subcommand, ValueEnum};
use tenant::config::DeployConfig;
use tenant::{Credentials, ImportOptions, Keywords, ManagementClient, Severity, WriteOptions};

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Write a live tenant as auth0-deploy-cli YAML (tenant.yaml + actions/<name>/code.js) or
    /// in its directory format (--format directory).
    Export(ExportArgs),
    /// Apply a tenant (tenant.yaml, or a folder in deploy-cli's directory format) to a live
    /// tenant: create what is missing, update what differs, delete only with
    /// AUTH0_ALLOW_DELETE; prints the plan. A second run changes nothing.
    Import(ImportArgs),
    /// Check a tenant (YAML or directory format) against the guide's rules.
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
    /// The flags (or their variables), else what deploy-cli's config.json says.
    pub fn credentials(&self, config: &DeployConfig) -> anyhow::Result<Credentials> {
        let need = |v: &Option<String>, from_config: &Option<String>, flag: &str, var: &str| {
            v.clone()
                .filter(|s| !s.trim().is_empty())
                .or_else(|| from_config.clone())
                .ok_or_else(|| anyhow::anyhow!("{flag} is required (or set {var}, or give it in --config)"))
        };
        let ca_pem = match &self.ca_file {
            Some(p) => {
                Some(std::fs::read(p).map_err(|e| anyhow::anyhow!("cannot read --ca-file {}: {e}", p.display()))?)
            }
            None => None,
        };
        Ok(Credentials {
            domain: need(&self.domain, &config.domain, "--domain", "AUTH0_DOMAIN")?,
            client_id: need(&self.client_id, &config.client_id, "--client-id", "AUTH0_CLIENT_ID")?,
            client_secret: need(&self.client_secret, &config.client_secret, "--client-secret", "AUTH0_CLIENT_SECRET")?,
            ca_pem,
        })
    }
}

/// auth0-deploy-cli's config.json.
#[derive(Args, Debug, Clone)]
pub struct ConfigArgs {
    /// deploy-cli's config.json (AUTH0_DOMAIN, AUTH0_CLIENT_ID/SECRET,
    /// AUTH0_KEYWORD_REPLACE_MAPPINGS, AUTH0_INCLUDED_ONLY, AUTH0_EXCLUDED, AUTH0_EXCLUDED_*,
    /// AUTH0_ALLOW_DELETE, AUTH0_PRESERVE_KEYWORDS, AUTH0_EXPORT_IDENTIFIERS); AUTH0_*
    /// environment variables win over it, as in deploy-cli.
    #[arg(long = "config", short = 'c', alias = "config_file")]
    pub config: Option<PathBuf>,
}

impl ConfigArgs {
    pub fn load(&self) -> anyhow::Result<DeployConfig> {
        Ok(DeployConfig::load(self.config.as_deref(), |k| std::env::var(k).ok())?)
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum ExportFormat {
    /// tenant.yaml and the files it references.
    Yaml,
    /// One JSON file per object, in deploy-cli's folders.
    Directory,
}

#[derive(Args, Debug)]
pub struct ExportArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub config: ConfigArgs,
    /// Folder to write the tenant into (created if missing).
    #[arg(long, short = 'o', alias = "output_folder")]
    pub output_folder: PathBuf,
    /// deploy-cli's two formats.
    #[arg(long, short = 'f', value_enum, default_value = "yaml")]
    pub format: ExportFormat,
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
    #[command(flatten)]
    pub config: ConfigArgs,
    /// tenant.yaml (paths in it are relative to its folder), or a folder in deploy-cli's
    /// directory format.
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
    /// Delete what the file does not list, in the sections it has (deploy-cli's
    /// AUTH0_ALLOW_DELETE); never the application the import runs as.
    #[arg(long)]
    pub allow_delete: bool,
}

#[derive(Args, Debug)]
pub struct LintArgs {
    #[command(flatten)]
    pub config: ConfigArgs,
    /// tenant.yaml, or a folder in deploy-cli's directory format.
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

/// Keyword values from `--keywords`, the config's mappings and the environment.
pub fn keywords(path: Option<&Path>, config: &DeployConfig) -> anyhow::Result<Keywords> {
    let kw = match path {
        Some(p) => Keywords::from_env_file(p)?,
        None => Keywords::new(),
    };
    let kw = if config.mappings.is_empty() {
        kw
    } else {
        kw.with_mappings(config.mappings.clone(), config.mappings_label())
    };
    Ok(kw.with_process_env())
}

/// Reads a tenant (YAML or directory) and leaves out what the configuration does not manage;
/// prints what was left out and every keyword left without a value.
pub fn load(path: &Path, kw: &Keywords, config: &DeployConfig) -> anyhow::Result<tenant::TenantFile> {
    let mut file = tenant::load_tenant(path, kw)?;
    for t in config.selection.unmanaged_types() {
        println!("note: {t}: not a resource type Gatehouse manages");
    }
    for n in config.selection.apply_to_file(&mut file) {
        println!("note: {n}");
    }
    for u in &file.unresolved_keywords {
        println!("warning: {u}");
    }
    Ok(file)
}

async fn export(args: ExportArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    if config.preserve_keywords && config.mappings.is_empty() {
        anyhow::bail!(
            "AUTH0_PRESERVE_KEYWORDS needs AUTH0_KEYWORD_REPLACE_MAPPINGS: without mappings there is no keyword to preserve"
        );
    }
    let api = ManagementClient::connect(&args.remote.credentials(&config)?).await?;
    let (file, notes) = tenant::export_with(&api, &config.selection).await?;
    let mut kw = keywords(args.keywords.as_deref(), &config)?;
    kw.insert("AUTH0_DOMAIN", api.domain());
    let opts = WriteOptions {
        identifiers: args.export_identifiers || config.export_identifiers,
        client_secrets: args.include_secrets || config.export_secrets,
        keywords: (args.keywords.is_some() || config.preserve_keywords).then_some(&kw),
    };
    let rendered = match args.format {
        ExportFormat::Yaml => tenant::yaml_out::render(&file, &opts),
        ExportFormat::Directory => tenant::directory::render_dir(&file, &opts),
    };
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
        "exported {}: {} clients, {} databases, {} connections, {} APIs, {} client grants, {} actions, {} roles to {}",
        api.domain(),
        file.clients.len(),
        file.databases.len(),
        file.connections.len(),
        file.resource_servers.len(),
        file.client_grants.len(),
        file.actions.len(),
        file.roles.len(),
        match args.format {
            ExportFormat::Yaml => args.output_folder.join("tenant.yaml"),
            ExportFormat::Directory => args.output_folder.clone(),
        }
        .display()
    );
    Ok(ExitCode::SUCCESS)
}

async fn import(args: ImportArgs) -> anyhow::Result<ExitCode> {
    let config = args.config.load()?;
    let credentials = args.remote.credentials(&config)?;
    let mut kw = keywords(args.keywords.as_deref(), &config)?;
    let (_, domain) = tenant::remote::normalize_domain(&credentials.domain)?;
    // As with the idp: the tenant's own domain, whatever the keyword file says.
    kw.insert("AUTH0_DOMAIN", domain);
    // The file is read before anything is sent, so a broken file never reaches the tenant.
    let file = load(&args.file, &kw, &config)?;
    let api = ManagementClient::connect(&credentials).await?;
    let opts = ImportOptions {
        dry_run: args.dry_run,
        update_secrets: args.update_secrets,
        allow_delete: args.allow_delete || config.allow_delete,
        selection: config.selection.clone(),
    };
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
    let config = args.config.load()?;
    let mut keywords = keywords(args.keywords.as_deref(), &config)?;
    // The file may name the tenant's own domain; its value does not matter to any rule.
    if keywords.get("AUTH0_DOMAIN").is_none() {
        keywords.insert("AUTH0_DOMAIN", config.domain.clone().unwrap_or_else(|| "tenant.invalid".into()));
    }
    let file = load(&args.file, &keywords, &config)?;
    let findings = tenant::lint(&file);
    for f in &findings {
        println!("{f}");
    }
    let errors = findings.iter().filter(|f| f.severity == Severity::Error).count();
    println!("{} finding(s), {errors} error(s) in {}", findings.len(), args.file.display());
    Ok(if errors > 0 { ExitCode::FAILURE } else { ExitCode::SUCCESS })
}
