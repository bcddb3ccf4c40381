//! The `gatehouse` command line: argument parsing and wiring only. Everything it starts lives
//! in the library crates, where tests reach it.

mod console_cmd;
mod doctor_cmd;
mod drain;
mod idp_cmd;
mod logging;
mod logs_cmd;
mod tenant_cmd;
mod up_cmd;

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
    /// Run the guide's whole system on one port: the idp with the guide's tenant, auth0-client and a
    /// demo CMS with its login site (http://localhost:8080).
    Up(up_cmd::UpArgs),
    /// Tenant as code in auth0-deploy-cli's YAML: export, import (any Management API) and lint.
    #[command(subcommand)]
    Tenant(tenant_cmd::TenantCommand),
    /// Check an auth0-client config.json against a tenant file or a live tenant.
    Doctor(doctor_cmd::DoctorArgs),
    /// Read a tenant's log (any Management API, the same credentials as `tenant export`).
    #[command(subcommand)]
    Logs(logs_cmd::LogsCommand),
    /// The admin console (served by the idp under /console): its administrators.
    #[command(subcommand)]
    Console(console_cmd::ConsoleCommand),
    /// Run Mia-Platform's auth0-client (drop-in): configured like the original, by
    /// SERVICE_CONFIG_PATH/SERVICE_CONFIG_FILE_NAME.json and its environment variables.
    Auth0Client,
}

fn main() -> anyhow::Result<std::process::ExitCode> {
    // Called as `auth0-client` (the container image's link to this binary), it is Mia's
    // service: no arguments, configured by the environment like the original.
    if invoked_as_auth0_client(std::env::args_os().next()) {
        return Ok(auth0_client::main_from_env());
    }
    let cli = Cli::parse();
    if let Command::Tenant(cmd) = cli.command {
        return tenant_cmd::run(cmd);
    }
    if let Command::Doctor(args) = cli.command {
        return doctor_cmd::run(args);
    }
    if let Command::Logs(cmd) = cli.command {
        return logs_cmd::run(cmd);
    }
    if let Command::Auth0Client = cli.command {
        return Ok(auth0_client::main_from_env());
    }
    logging::init(match cli.command {
        Command::Up(_) => "gatehouse",
        _ => "idp",
    });
    let runtime = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    let result = runtime.block_on(async {
        match cli.command {
            Command::Idp(args) => idp_cmd::run(*args).await,
            Command::Up(args) => up_cmd::run(args).await,
            Command::Console(cmd) => console_cmd::run(cmd).await,
            Command::Tenant(_) | Command::Doctor(_) | Command::Logs(_) | Command::Auth0Client => {
                unreachable!("handled before the runtime starts")
            }
        }
        .map(|()| std::process::ExitCode::SUCCESS)
    });
    telemetry::shutdown();
    logging::flush();
    result
}

fn invoked_as_auth0_client(argv0: Option<std::ffi::OsString>) -> bool {
    argv0.as_deref().map(std::path::Path::new).and_then(std::path::Path::file_name) == Some("auth0-client".as_ref())
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_auth0_client_link() {
        let called = |s: &str| super::invoked_as_auth0_client(Some(s.into()));
        assert!(called("/usr/local/bin/auth0-client") && called("auth0-client"));
        assert!(!called("gatehouse") && !called("/x/auth0-client-old") && !super::invoked_as_auth0_client(None));
    }
}
