//! `gatehouse console add-admin`: console administrators are made here, with the database, never
//! through the Management API (see `idp::admins`).

use anyhow::{Context, anyhow};
use clap::{Args, Subcommand};
use idp::admins::Role;
use idp::{Config, Idp};
use std::path::PathBuf;
use std::sync::Arc;
use store::SqlStore;

#[derive(Subcommand, Debug)]
pub enum ConsoleCommand {
    /// Create a console administrator (or give an existing one a new password and role).
    AddAdmin(AddAdminArgs),
}

#[derive(Args, Debug)]
pub struct AddAdminArgs {
    /// The administrator's email (their sign-in name).
    pub email: String,
    /// The password (default: a generated one, printed once). Prefer the generated one: a
    /// password on the command line is visible to other users of the machine.
    #[arg(long)]
    pub password: Option<String>,
    /// `full` (every Management API scope) or `read-only` (the read:* scopes).
    #[arg(long, default_value = "full", value_parser = ["full", "read-only"])]
    pub role: String,
    /// The idp's data directory (its SQLite database and secrets key).
    #[arg(long, env = "GATEHOUSE_DATA", default_value = ".gatehouse")]
    pub data: PathBuf,
    /// The idp's database, when not SQLite in the data directory.
    #[arg(long, env = "GATEHOUSE_DATABASE")]
    pub database: Option<String>,
    /// The secrets key, when not `<data>/secrets.key`.
    #[arg(long, env = "GATEHOUSE_SECRETS_KEY")]
    pub secrets_key: Option<PathBuf>,
}

pub async fn run(cmd: ConsoleCommand) -> anyhow::Result<()> {
    let ConsoleCommand::AddAdmin(args) = cmd;
    let role = Role::parse(&args.role).ok_or_else(|| anyhow!("--role must be full or read-only"))?;
    idp::datadir::prepare(&args.data).with_context(|| format!("creating data dir {}", args.data.display()))?;
    let database = match &args.database {
        Some(d) => d.clone(),
        None => format!("sqlite://{}", args.data.join("gatehouse.db").display()),
    };
    let store = Arc::new(SqlStore::connect(&database).await.context("opening the database")?);
    // The URL only matters for the console's callback, which every start of the idp sets.
    let mut config = Config::new(url::Url::parse("http://localhost/")?, args.data.clone());
    config.secrets_key = args.secrets_key.clone();
    let mailer = Arc::new(idp::mail::Outbox::new(args.data.join("outbox")));
    let idp = Idp::new(config, store, mailer).await?;
    let added = idp::admins::add_admin(&idp, &args.email, args.password.as_deref(), role).await?;
    let verb = if added.created { "created" } else { "updated" };
    println!("console administrator {verb}: {} ({})", args.email.trim().to_lowercase(), role.as_str());
    if let Some(password) = added.generated_password {
        // Printed once, to the terminal only: the store keeps a hash.
        println!("password: {password}");
    }
    println!("sign in at <idp>/console (e.g. http://127.0.0.1:8080/console under `gatehouse up`)");
    Ok(())
}

/// The first `up` (or `idp`) of a data directory: an administrator, if there is none yet, whose
/// generated credentials the banner prints once. `None` when one exists already.
pub async fn first_admin(idp: &Arc<Idp>) -> anyhow::Result<Option<(String, String)>> {
    if idp::admins::any(idp).await? {
        return Ok(None);
    }
    const EMAIL: &str = "admin@gatehouse.localhost";
    let added = idp::admins::add_admin(idp, EMAIL, None, Role::Full).await?;
    Ok(added.generated_password.map(|p| (EMAIL.to_string(), p)))
}
