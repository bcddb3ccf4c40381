//! `gatehouse logs tail | get`: a tenant's log through any Management API (the idp's or real
//! Auth0's), with the same credentials as `tenant export`. The requests and the line format are
//! `tenant::logs`.

use crate::tenant_cmd::{ConfigArgs, RemoteArgs, block_on, report};
use clap::{Args, Subcommand};
use serde_json::Value;
use std::process::ExitCode;
use std::time::Duration;
use tenant::remote::ManagementClient;

#[derive(Subcommand, Debug)]
pub enum LogsCommand {
    /// Print the newest events (oldest first), and with --follow the ones that come after.
    Tail(TailArgs),
    /// Print one event.
    Get(GetArgs),
}

#[derive(Args, Debug)]
pub struct TailArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub deploy: ConfigArgs,
    /// Only events matching this search (Auth0's log search syntax, e.g. `type:fp`).
    #[arg(long)]
    pub filter: Option<String>,
    /// Keep polling (every 2 s) for new events until interrupted.
    #[arg(long)]
    pub follow: bool,
    /// How many of the newest events to start with (at most 100).
    #[arg(long, short = 'n', default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub number: u32,
    /// One JSON object per line instead of readable lines.
    #[arg(long)]
    pub json: bool,
}

#[derive(Args, Debug)]
pub struct GetArgs {
    #[command(flatten)]
    pub remote: RemoteArgs,
    #[command(flatten)]
    pub deploy: ConfigArgs,
    /// The event's log_id.
    pub id: String,
    /// The event as JSON.
    #[arg(long)]
    pub json: bool,
}

pub fn run(cmd: LogsCommand) -> anyhow::Result<ExitCode> {
    match cmd {
        LogsCommand::Tail(args) => report(block_on(tail(args))),
        LogsCommand::Get(args) => report(block_on(get(args))),
    }
}

fn print(e: &Value, json: bool) {
    if json {
        println!("{e}");
    } else {
        println!("{}", tenant::logs::line(e));
    }
}

async fn tail(args: TailArgs) -> anyhow::Result<ExitCode> {
    let client = ManagementClient::connect(&args.remote.credentials(&args.deploy.load()?)?).await?;
    let filter = args.filter.as_deref();
    let mut last = None;
    for e in tenant::logs::newest(&client, filter, args.number).await? {
        print(&e, args.json);
        last = Some(e);
    }
    if !args.follow {
        return Ok(ExitCode::SUCCESS);
    }
    loop {
        tokio::time::sleep(Duration::from_secs(2)).await;
        let new = match &last {
            Some(seen) => tenant::logs::after(&client, seen, filter).await?,
            None => tenant::logs::newest(&client, filter, tenant::logs::PAGE).await?,
        };
        for e in new {
            print(&e, args.json);
            last = Some(e);
        }
    }
}

async fn get(args: GetArgs) -> anyhow::Result<ExitCode> {
    let client = ManagementClient::connect(&args.remote.credentials(&args.deploy.load()?)?).await?;
    let e = tenant::logs::get(&client, &args.id).await?;
    if args.json {
        println!("{}", serde_json::to_string_pretty(&e)?);
    } else {
        println!("{}", tenant::logs::line(&e));
    }
    Ok(ExitCode::SUCCESS)
}
