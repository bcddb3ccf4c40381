//! `gatehouse up`: the guide's whole system on one port. The idp (the embedded example tenant,
//! SQLite in the data dir or `--database`), auth0-client (sessions in memory or `--redis`) and
//! the demo CMS with its login site and Mia-like gateway (crate `demo-cms`), wired together and
//! served by one listener (HTTPS with `--tls`) until Ctrl-C or SIGTERM (a second one stops it at once, without
//! waiting for requests in flight).

use crate::drain::Front;
use crate::idp_cmd::{self, IdpArgs};
use anyhow::{Context, anyhow};
use clap::Args;
use demo_cms::Origins;
use demo_cms::setup::Auth0ClientSetup;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use tenant::Keywords;

#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Data directory: SQLite database, the unpacked example tenant, auth0-client's config.json.
    #[arg(long, env = "GATEHOUSE_DATA", default_value = ".gatehouse")]
    pub data: PathBuf,
    /// The one port (on 127.0.0.1): the CMS is http://localhost:PORT, the idp http://127.0.0.1:PORT.
    #[arg(long, env = "GATEHOUSE_PORT", default_value_t = 8080)]
    pub port: u16,
    /// The idp's database, e.g. `postgres://user:pass@host/db` (default: SQLite in the data dir).
    #[arg(long, env = "GATEHOUSE_DATABASE")]
    pub database: Option<String>,
    /// Keep auth0-client's sessions in Redis at HOST:PORT (default: in memory, lost on exit).
    #[arg(long, env = "GATEHOUSE_REDIS", value_name = "HOST:PORT")]
    pub redis: Option<String>,
    /// HTTPS on the one port, with the local CA `<data>/ca.pem` (created once, then kept), so
    /// the official Auth0 SDKs (https only) work against `up` too.
    #[arg(long, env = "GATEHOUSE_TLS")]
    pub tls: bool,
    /// The address to listen on. Browsers still use localhost:PORT (CMS) and 127.0.0.1:PORT
    /// (idp); 0.0.0.0 is for a container whose port is published on the host's loopback.
    #[arg(long, env = "GATEHOUSE_BIND", default_value = "127.0.0.1")]
    pub bind: std::net::IpAddr,
}

/// The guide's tenant, compiled in so `up` runs from anywhere.
const EXAMPLE_TENANT: &str = include_str!("../../../examples/cms-tenant/tenant.yaml");
const EXAMPLE_ACTION: &str = include_str!("../../../examples/cms-tenant/actions/inject-id-token/code.js");
const EXAMPLE_ENV: &str = include_str!("../../../examples/cms-tenant/dev.env");
const EXAMPLE_USERS: &str = include_str!("../../../examples/cms-tenant/users.json");
/// The database connection the example users live in.
const CONNECTION: &str = "dev-users";

/// `gatehouse idp`'s defaults (its other `GATEHOUSE_*` variables apply to `up` too), for the
/// flags `up` does not set itself.
fn idp_defaults() -> anyhow::Result<IdpArgs> {
    use clap::{Args, FromArgMatches};
    let command = IdpArgs::augment_args(clap::Command::new("up").no_binary_name(true));
    let matches = command.try_get_matches_from(std::iter::empty::<String>())?;
    Ok(IdpArgs::from_arg_matches(&matches)?)
}

/// Unpacks the embedded example so the idp reads it like any tenant folder (private, as all of
/// the data dir: `dev.env` holds client secrets).
fn unpack_tenant(data: &Path) -> anyhow::Result<PathBuf> {
    let dir = data.join("cms-tenant");
    idp::datadir::create_private_dir(&dir.join("actions/inject-id-token"))
        .with_context(|| format!("creating {}", dir.display()))?;
    for (name, text) in [
        ("tenant.yaml", EXAMPLE_TENANT),
        ("actions/inject-id-token/code.js", EXAMPLE_ACTION),
        ("dev.env", EXAMPLE_ENV),
        ("users.json", EXAMPLE_USERS),
    ] {
        idp::datadir::write_private(&dir.join(name), text.as_bytes())
            .with_context(|| format!("writing {}", dir.join(name).display()))?;
    }
    Ok(dir)
}

pub async fn run(args: UpArgs) -> anyhow::Result<()> {
    // Bound first: a taken port fails at once, before any import.
    let listen = SocketAddr::new(args.bind, args.port);
    let listener = std::net::TcpListener::bind(listen).map_err(|e| {
        anyhow!("cannot listen on {listen}: {e}. Is another `gatehouse up` running? Choose another port with --port.")
    })?;
    let local = listener.local_addr()?;
    let origins = origins(local.port(), args.tls)?;

    let dir = unpack_tenant(&args.data)?;
    let idp_args = IdpArgs {
        tenant: Some(dir.join("tenant.yaml")),
        keywords: Some(dir.join("dev.env")),
        users: Some(dir.join("users.json")),
        users_connection: Some(CONNECTION.into()),
        database: args.database.clone(),
        data: args.data.clone(),
        // The idp's names and issuer are the browser's (localhost, 127.0.0.1), whatever the
        // bound address; with --tls its local CA certifies both.
        listen: SocketAddr::from(([127, 0, 0, 1], local.port())),
        tls: args.tls,
        tls_cert: None,
        tls_key: None,
        public_url: Some(origins.idp.clone()),
        trust_proxy: false,
        ..idp_defaults()?
    };
    let transport = idp_cmd::transport(&idp_args)?;
    let mut keywords = idp_cmd::keywords(&idp_args)?;
    // The callback and logout URLs registered in the tenant follow the port.
    keywords.insert("CMS_BASE_URL", origins.cms_base());
    let (idp, mode) = idp_cmd::build(&idp_args, idp_args.listen, keywords.clone()).await?;
    // auth0-client reaches the idp at its https origin through the same listener: it trusts the
    // local CA the idp's certificate comes from.
    let local_ca = match args.tls {
        true => Some(std::fs::read(ca_path(&args.data)).context("reading the local CA")?),
        false => None,
    };

    let connection_id = idp
        .store
        .connection_by_name(CONNECTION)
        .await?
        .map(|c| c.id)
        .with_context(|| format!("the tenant has no {CONNECTION} connection"))?;
    let kw = |k: &str| keywords.get(k).with_context(|| format!("the example tenant's dev.env has no {k}"));
    let setup = Auth0ClientSetup {
        origins: origins.clone(),
        cms_client_id: kw("CMS_CLIENT_ID")?,
        cms_client_secret: kw("CMS_CLIENT_SECRET")?,
        management_client_id: kw("MGMT_CLIENT_ID")?,
        management_client_secret: kw("MGMT_CLIENT_SECRET")?,
        namespace: kw("MIA_NAMESPACE")?,
        connection: CONNECTION.into(),
        connection_id,
        redis_hosts: args.redis.clone(),
        config_dir: args.data.join("auth0-client"),
    };
    write_config(&setup)?;
    let config = setup.config().context("auth0-client configuration")?;
    for w in &config.warnings {
        tracing::warn!("auth0-client: {w}");
    }
    auth0_client::install_crypto_provider();
    let app = auth0_client::App::trusting(config, auth0_client::clock::Clock::default(), local_ca.as_deref())
        .map_err(|e| anyhow!("starting auth0-client: {e}"))?;
    // auth0-client's requests are counted, so that stopping waits for them before it closes
    // the listener they reach the idp through.
    let front = Front::default();
    let router = demo_cms::router(front.guard(auth0_client::router(app)), idp.router(), origins.clone());
    // Without an email provider the idp's mail lands in the outbox; the dev mailbox shows it.
    let router = demo_cms::mailbox::wrap(args.data.join("outbox"), router);

    let first_admin = crate::console_cmd::first_admin(&idp).await?;
    // Counting starts before serving, so that no signal from then on is missed.
    let stop_now = idp_cmd::second_signal()?;
    announce(&args, &origins, &keywords, first_admin);
    tracing::info!(cms = %origins.cms_base(), idp = %origins.idp_base(), "gatehouse up");
    idp_cmd::serve(&idp, router, listener, mode, transport, Some(front), stop_now).await
}

/// Where `--tls` keeps the local CA's certificate (the idp's `--tls` layout).
fn ca_path(data: &Path) -> PathBuf {
    data.join("ca.pem")
}

/// The CMS at `localhost:PORT` and the idp at `127.0.0.1:PORT`, over HTTPS with `--tls`.
fn origins(port: u16, tls: bool) -> anyhow::Result<Origins> {
    if !tls {
        return Ok(Origins::local(port));
    }
    let url = |host: &str| url::Url::parse(&format!("https://{host}:{port}/"));
    Ok(Origins { cms: url("localhost")?, idp: url("127.0.0.1")? })
}

/// The equivalent of what runs, as files: `SERVICE_CONFIG_PATH=<data>/auth0-client
/// SERVICE_CONFIG_FILE_NAME=config gatehouse auth0-client` would start the same service.
/// Private (0700 directory, 0600 file): it holds both clients' secrets.
fn write_config(setup: &Auth0ClientSetup) -> anyhow::Result<()> {
    idp::datadir::create_private_dir(&setup.config_dir)
        .with_context(|| format!("creating {}", setup.config_dir.display()))?;
    let path = setup.config_dir.join("config.json");
    let text = serde_json::to_string_pretty(&setup.config_json())? + "\n";
    idp::datadir::write_private(&path, text.as_bytes()).with_context(|| format!("writing {}", path.display()))
}

/// What a newcomer needs, printed once everything is ready (tests wait for the first line).
fn announce(args: &UpArgs, origins: &Origins, keywords: &Keywords, first_admin: Option<(String, String)>) {
    let kw = |k: &str| keywords.get(k).unwrap_or_default();
    let database = match &args.database {
        Some(_) => "the --database given".to_string(),
        None => format!("SQLite {}", args.data.join("gatehouse.db").display()),
    };
    let sessions = match &args.redis {
        Some(r) => format!("Redis {r}"),
        None => "memory (signed out on restart)".to_string(),
    };
    println!("Gatehouse is up: open {}/", origins.cms_base());
    println!();
    println!("  Sign in as the CMS administrator (group admin): {} / {}", kw("ADMIN_EMAIL"), kw("ADMIN_PASSWORD"));
    println!("  or as a plain user (no group, sees \"no access\"): {} / {}", kw("USER_EMAIL"), kw("USER_PASSWORD"));
    println!();
    println!("  identity provider  {}/ (issuer; Management API under /api/v2)", origins.idp_base());
    println!("  M2M application    client_id={} client_secret={}", kw("MGMT_CLIENT_ID"), kw("MGMT_CLIENT_SECRET"));
    println!("  admin console      {}/console", origins.idp_base());
    match first_admin {
        // Printed this once: the store keeps a hash.
        Some((email, password)) => println!("                     administrator {email} / {password} (shown once)"),
        None => println!(
            "                     more administrators: gatehouse console add-admin EMAIL --data {}",
            args.data.display()
        ),
    }
    println!("  data               {database}; auth0-client sessions in {sessions}");
    println!("  auth0-client       config {}", args.data.join("auth0-client/config.json").display());
    println!(
        "  dev mailbox        {}{} (mail, e.g. password resets, while no email provider is set)",
        origins.cms_base(),
        demo_cms::mailbox::PATH
    );
    if args.tls {
        let ca = ca_path(&args.data);
        println!("  HTTPS              certificates from the local CA {}, which nothing trusts yet:", ca.display());
        println!("                     import it into the browser (Settings > Certificates > Authorities),");
        println!(
            "                     or for tools: SSL_CERT_FILE / NODE_EXTRA_CA_CERTS / REQUESTS_CA_BUNDLE={}",
            ca.display()
        );
    }
    if !args.bind.is_loopback() {
        println!("  listening on       {} (every interface: development credentials, keep it private)", args.bind);
    }
    println!();
    println!("Development credentials only (examples/cms-tenant/dev.env). Ctrl-C stops everything");
    println!("(requests in flight get up to 10 s; a second Ctrl-C stops at once).");
}
