//! The `gatehouse` command line: argument parsing and wiring only. Everything it starts lives
//! in the library crates, where tests reach it.

mod idp_cmd;
mod tenant_cmd;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "gatehouse",
    version,
    about = "Auth0-compatible identity provider and Mia-Platform auth0-client, in one binary"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the identity provider.
    Idp(Box<idp_cmd::IdpArgs>),
    /// Run the guide's whole system on embedded defaults (today: the idp with the guide's tenant).
    Up(idp_cmd::UpArgs),
    /// Tenant as code: check a tenant file against the guide.
    #[command(subcommand)]
    Tenant(tenant_cmd::TenantCommand),
    /// Run Mia-Platform's auth0-client (drop-in): configured like the original, by
    /// SERVICE_CONFIG_PATH/SERVICE_CONFIG_FILE_NAME.json and its environment variables.
    Auth0Client,
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    let cli = Cli::parse();
    if let Command::Tenant(cmd) = cli.command {
        return tenant_cmd::run(cmd);
    }
    if let Command::Auth0Client = cli.command {
        return Ok(auth0_client::main_from_env());
    }
    init_logging();
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    runtime.block_on(async {
        match cli.command {
            Command::Idp(args) => idp_cmd::run(*args).await,
            Command::Up(args) => idp_cmd::up(args).await,
            Command::Tenant(_) | Command::Auth0Client => unreachable!("handled before the runtime starts"),
        }
        .map(|()| std::process::ExitCode::SUCCESS)
    })
}

/// One JSON object per line on stdout; `RUST_LOG` filters (default `info`).
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt().json().with_current_span(false).with_target(true).with_env_filter(filter).init();
}
