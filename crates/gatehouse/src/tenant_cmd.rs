//! `gatehouse tenant lint FILE [--keywords FILE]`: the guide's rules on a tenant file, no
//! server needed. Exits non-zero when anything is an error.

use clap::{Args, Subcommand};
use std::path::PathBuf;
use tenant::{Keywords, Severity};

#[derive(Subcommand, Debug)]
pub enum TenantCommand {
    /// Check a tenant file (auth0-deploy-cli YAML) against the guide's rules.
    Lint(LintArgs),
}

#[derive(Args, Debug)]
pub struct LintArgs {
    /// tenant.yaml
    pub file: PathBuf,
    /// `.env`-style keyword values (the environment wins).
    #[arg(long, env = "GATEHOUSE_KEYWORDS")]
    pub keywords: Option<PathBuf>,
}

pub fn run(cmd: TenantCommand) -> anyhow::Result<std::process::ExitCode> {
    match cmd {
        TenantCommand::Lint(args) => lint(args),
    }
}

fn lint(args: LintArgs) -> anyhow::Result<std::process::ExitCode> {
    let mut keywords = match &args.keywords {
        Some(path) => Keywords::from_env_file(path)?,
        None => Keywords::new(),
    }
    .with_process_env();
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
    Ok(if errors > 0 { std::process::ExitCode::FAILURE } else { std::process::ExitCode::SUCCESS })
}
