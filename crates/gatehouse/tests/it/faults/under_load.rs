//! The fault harness: three idp nodes on one PostgreSQL behind a balancer, two auth0-client
//! instances on one Redis behind another, a mixed load ([`super::load`]) running throughout,
//! and one part failing at a time: an idp node killed (SIGKILL) and started again, PostgreSQL
//! restarted, PostgreSQL frozen (SIGSTOP) and let go, an auth0-client instance killed and
//! started again. After each, the invariants: every acknowledged user create is in the
//! database exactly once; no refresh-token family has two live tokens; no answer was wrong and
//! none hung; and the whole system serves normally within [`RECOVERY_BOUND`] of the part's
//! return (the time is measured and reported). After the run, the queued mail and the tenant
//! log: every reset mail acknowledged in any phase is in a node's outbox (no SMTP provider is
//! configured, so the queue's worker writes there), and at most [`MAIL_CLAIM_BATCH`] twice
//! (the queue's stated window: a node dying, or its database going, after a send and before
//! the mark); every acknowledged password login and rotation has its `sepft`/`sertft` event,
//! except at most those a
//! node killed by SIGKILL held unwritten: acknowledged within [`LOG_LOSS_WINDOW`] before
//! the kill (the recorder's stated loss on a crash). A PostgreSQL restart or freeze loses none.
//!
//! The short form runs in `scripts/test`. `GATEHOUSE_FAULTS_LONG=1` holds each fault and the
//! load longer, with more workers; `GATEHOUSE_FAULTS_RESULTS=FILE` writes the figures there
//! (`bench/faults.sh` does both).

use super::balancer::Balancer;
use super::load::{self, Account, Load, Tally, Target};
use super::parts::{Postgres, Process, Redis, client_config, client_node, idp_node, status_of, within};
use crate::support::{TempDir, dev_env};
use serde_json::Value;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

/// The target: serving normally within 5 s of the failed part's return.
const RECOVERY_BOUND: Duration = Duration::from_secs(5);

/// Events a crash may lose: those of the recorder's last linger (1 s) and the batch then being
/// written, which on this busy machine may take a second more.
const LOG_LOSS_WINDOW: Duration = Duration::from_secs(2);

/// How long acknowledged mail may take to be delivered: a mail claimed by the killed node goes
/// out again when its claim's lease (34 s with `--smtp-timeout 1`) runs out, plus a poll.
const MAIL_BOUND: Duration = Duration::from_secs(45);

/// Messages one node's mail worker claims at once (`idp::mail::queue`): what a node dying in a
/// send can leave to be sent twice.
const MAIL_CLAIM_BATCH: usize = 10;

struct Shape {
    workers: usize,
    /// Load before the first fault, and after each recovery.
    steady: Duration,
    /// How long a killed node stays down, and PostgreSQL frozen.
    outage: Duration,
    freeze: Duration,
}

const SHORT: Shape = Shape {
    workers: 4,
    steady: Duration::from_secs(2),
    outage: Duration::from_secs(1),
    freeze: Duration::from_secs(3),
};
const LONG: Shape = Shape {
    workers: 8,
    steady: Duration::from_secs(20),
    outage: Duration::from_secs(5),
    freeze: Duration::from_secs(10),
};

const PHASES: [&str; 6] = [
    "steady load",
    "idp node SIGKILL",
    "PostgreSQL restart",
    "PostgreSQL frozen",
    "auth0-client SIGKILL",
    "Redis primary SIGKILL, Sentinel failover",
];

/// The phase that kills the Redis primary.
const REDIS_FAILOVER: usize = 5;

/// The Sentinel set's name for the primary.
const MASTER: &str = "faults";

struct Cluster {
    pg: Postgres,
    primary: Redis,
    replica: Redis,
    sentinels: Vec<Redis>,
    idps: Vec<Process>,
    clients: Vec<Process>,
    idp_lb: Balancer,
    client_lb: Balancer,
    dir: TempDir,
}

async fn cluster() -> Cluster {
    let pg = tokio::task::spawn_blocking(Postgres::start).await.unwrap();
    let primary = Redis::start("", false).await;
    let replica = Redis::start(&format!("replicaof 127.0.0.1 {}", primary.port), false).await;
    let mut sentinels = Vec::new();
    for _ in 0..3 {
        let config = format!(
            "sentinel monitor {MASTER} 127.0.0.1 {} 2\nsentinel down-after-milliseconds {MASTER} 1000\n\
             sentinel failover-timeout {MASTER} 5000",
            primary.port
        );
        sentinels.push(Redis::start(&config, true).await);
    }
    let dir = TempDir::new("faults");
    let idp_lb = Balancer::start().await;
    let public = format!("{}/", idp_lb.url());
    // The first node creates the schema and imports the tenant; the others find both.
    let database = pg.url();
    let mut idps = vec![idp_node("idp-1", dir.path(), &database, &public).await];
    let (b, c) = tokio::join!(
        idp_node("idp-2", dir.path(), &database, &public),
        idp_node("idp-3", dir.path(), &database, &public)
    );
    idps.extend([b, c]);
    idp_lb.set_backends(&idps.iter().map(|p| p.port).collect::<Vec<_>>());

    let token = management_token(&idp_lb.url()).await;
    let connections = management_get(&idp_lb.url(), &token, "connections?name=dev-users").await;
    let dev_users = connections[0]["id"].as_str().expect("dev-users connection").to_owned();
    let config = client_config(&idp_lb.url(), &dev_users);
    let hosts: Vec<String> = sentinels.iter().map(Redis::addr).collect();
    let redis_env = [
        ("REDIS_MODE", "sentinel".to_owned()),
        ("REDIS_MASTER_NAME", MASTER.to_owned()),
        ("REDIS_HOSTS", hosts.join(",")),
    ];
    let clients = vec![
        client_node("auth0-client-1", dir.path(), &config, &redis_env).await,
        client_node("auth0-client-2", dir.path(), &config, &redis_env).await,
    ];
    let client_lb = Balancer::start().await;
    client_lb.set_backends(&clients.iter().map(|p| p.port).collect::<Vec<_>>());
    Cluster { pg, primary, replica, sentinels, idps, clients, idp_lb, client_lb, dir }
}

async fn management_token(idp: &str) -> String {
    let res = reqwest::Client::new()
        .post(format!("{idp}/oauth/token"))
        .form(&[
            ("grant_type", "client_credentials"),
            ("client_id", &dev_env("MGMT_CLIENT_ID")),
            ("client_secret", &dev_env("MGMT_CLIENT_SECRET")),
            ("audience", &load::management_audience(idp)),
        ])
        .send()
        .await
        .unwrap();
    let body: Value = res.json().await.unwrap();
    body["access_token"].as_str().unwrap_or_else(|| panic!("management token: {body}")).to_owned()
}

async fn management_get(idp: &str, token: &str, path: &str) -> Value {
    let res = reqwest::Client::new().get(format!("{idp}/api/v2/{path}")).bearer_auth(token).send().await.unwrap();
    assert_eq!(res.status(), 200, "GET {path}");
    res.json().await.unwrap()
}

/// The whole system serves normally: every node and instance is ready, and a password login,
/// a Management API read and a `/userinfo` through the balancers all succeed.
async fn serves_normally(c: &Cluster, load: &Load) -> bool {
    for p in &c.idps {
        if status_of(&format!("{}/readyz", p.base())).await != 200 {
            return false;
        }
    }
    for p in &c.clients {
        if status_of(&format!("{}/-/ready", p.base())).await != 200 {
            return false;
        }
    }
    let http = reqwest::Client::builder().timeout(Duration::from_secs(3)).pool_max_idle_per_host(0).build().unwrap();
    let t = &load.target;
    let account = &t.accounts[0];
    let login = http
        .post(format!("{}/oauth/token", t.idp))
        .form(&[
            ("grant_type", "http://auth0.com/oauth/grant-type/password-realm"),
            ("realm", "dev-users"),
            ("username", account.email.as_str()),
            ("password", account.password.as_str()),
            ("client_id", &dev_env("CMS_CLIENT_ID")),
            ("client_secret", &dev_env("CMS_CLIENT_SECRET")),
        ])
        .send()
        .await;
    let read =
        http.get(format!("{}/api/v2/users/{}", t.idp, account.user_id)).bearer_auth(&t.management_token).send().await;
    let (sid, _) = &t.sessions[0];
    let info = http.get(format!("{}/userinfo", t.client)).header("cookie", format!("sid={sid}")).send().await;
    [login, read, info].iter().all(|r| r.as_ref().is_ok_and(|r| r.status() == 200))
}

/// Writes that are lost (acknowledged, not in the database) and duplicated (in it twice).
fn lost_and_duplicated(c: &Cluster, load: &Load) -> (Vec<String>, Vec<String>) {
    // What was acknowledged before the query: the load goes on, and a user acknowledged after
    // the query is not in its answer.
    let acked = load.ledger.lock().unwrap().acked_users.clone();
    let rows = c.pg.query(&format!(
        "SELECT email_lower, count(*) FROM users WHERE email_lower LIKE '{}-%' GROUP BY email_lower",
        load.target.run
    ));
    let counts: std::collections::HashMap<String, u64> = rows
        .iter()
        .filter_map(|r| r.split_once('|'))
        .map(|(email, n)| (email.to_owned(), n.parse().unwrap_or(0)))
        .collect();
    let lost = acked.iter().filter(|e| !counts.contains_key(e.as_str())).cloned().collect();
    let duplicated = counts.iter().filter(|(_, n)| **n > 1).map(|(e, _)| e.clone()).collect();
    (lost, duplicated)
}

/// Refresh-token families with more than one live (neither rotated nor revoked) token.
fn forked_families(c: &Cluster) -> Vec<String> {
    c.pg.query(
        "SELECT family FROM refresh_tokens WHERE rotated_at IS NULL AND NOT revoked \
         GROUP BY family HAVING count(*) > 1",
    )
}

/// How many mails each address got, over every node's outbox.
fn delivered_mails(c: &Cluster) -> std::collections::HashMap<String, usize> {
    let mut counts = std::collections::HashMap::new();
    for node in &c.idps {
        let outbox = c.dir.path().join(&node.name).join("outbox");
        for entry in std::fs::read_dir(&outbox).into_iter().flatten().flatten() {
            let name = entry.file_name().to_string_lossy().into_owned();
            // `.NAME.tmp` is a message being written.
            if name.starts_with('.') || !name.ends_with(".json") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(entry.path()) else { continue };
            let message: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
            if let Some(to) = message["to"].as_str() {
                *counts.entry(to.to_owned()).or_insert(0) += 1;
            }
        }
    }
    counts
}

/// The User-Agents of the load's password logins and rotations that have their event.
fn logged_logins(c: &Cluster) -> std::collections::HashSet<String> {
    c.pg.query(&format!(
        "SELECT user_agent FROM log_events WHERE event_type IN ('sepft', 'sertft') AND user_agent LIKE '{}%'",
        load::LOGIN_AGENT
    ))
    .into_iter()
    .collect()
}

/// Per phase: reset mails acknowledged, delivered, delivered more than once; log events lost.
#[derive(Default, Clone, Copy)]
struct Durable {
    mails_acked: usize,
    mails_delivered: usize,
    mails_duplicated: usize,
    logins_acked: usize,
    events_lost: usize,
}

struct Figures {
    tally: Tally,
    lost: Vec<String>,
    duplicated: Vec<String>,
    forked: Vec<String>,
    recovery: Option<Duration>,
}

fn report(figures: &[Figures], durable: &[Durable], shape: &Shape) -> String {
    let mut out = format!(
        "{} load workers; each fault under load, then {:?} of load after recovery\n\n\
         | phase | requests | ok | clean 5xx | closed connections | hangs | wrong answers | lost writes | duplicate writes | families revoked by reuse | login states lost to failover | recovery |\n\
         | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |\n",
        shape.workers, shape.steady
    );
    let mut mail = String::from(
        "\nQueued mail and tenant log, counted after the run, by the phase the request was answered in \
         (a reset mail per created user; the `sepft`/`sertft` event of each password login and refresh rotation):\n\n\
         | phase | reset mails acknowledged | delivered | delivered twice | logins and rotations acknowledged | their log events lost |\n\
         | --- | ---: | ---: | ---: | ---: | ---: |\n",
    );
    for (name, d) in PHASES.iter().zip(durable) {
        mail.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} |\n",
            d.mails_acked, d.mails_delivered, d.mails_duplicated, d.logins_acked, d.events_lost
        ));
    }
    for (name, f) in PHASES.iter().zip(figures) {
        let t = &f.tally;
        let recovery = f.recovery.map_or("-".to_owned(), |d| format!("{:.2} s", d.as_secs_f64()));
        out.push_str(&format!(
            "| {name} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {} | {recovery} |\n",
            t.requests,
            t.ok,
            t.clean_status,
            t.clean_closed,
            t.hangs,
            t.wrong,
            f.lost.len(),
            f.duplicated.len(),
            t.families_revoked,
            t.states_lost_in_failover
        ));
    }
    out.push_str(&mail);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn nothing_is_lost_when_parts_fail_under_load() {
    let shape = if std::env::var_os("GATEHOUSE_FAULTS_LONG").is_some() { LONG } else { SHORT };
    let started = Instant::now();
    let mut c = cluster().await;
    let setup = started.elapsed();

    // The two example users, their ids, and a session each through auth0-client.
    let token = management_token(&c.idp_lb.url()).await;
    let mut accounts = Vec::new();
    for (email, password) in [("ADMIN_EMAIL", "ADMIN_PASSWORD"), ("USER_EMAIL", "USER_PASSWORD")] {
        let email = dev_env(email);
        let found =
            management_get(&c.idp_lb.url(), &token, &format!("users-by-email?email={}", email.replace('@', "%40")))
                .await;
        let user_id = found[0]["user_id"].as_str().expect("example user").to_owned();
        accounts.push(Account { email, password: dev_env(password), user_id });
    }
    let run = format!("fault{}", std::process::id());
    let target = |sessions| Target {
        idp: c.idp_lb.url(),
        client: c.client_lb.url(),
        accounts: accounts.clone(),
        management_token: token.clone(),
        sessions,
        run: run.clone(),
    };
    let before = Load::new(target(Vec::new()), 1, None);
    let mut sessions = Vec::new();
    for account in &accounts {
        let sid = load::browser_login(&before, account).await;
        let tally = before.tallies.lock().unwrap()[0].clone();
        let sid = sid.unwrap_or_else(|| panic!("a login before the load failed: {tally:?}"));
        sessions.push((sid, account.user_id.clone()));
    }

    // The sessions are on the replica too before the primary may go.
    assert_eq!(c.primary.cli(&["WAIT", "1", "5000"]), "1", "the replica did not take the sessions");
    let load = Load::new(target(sessions), PHASES.len(), Some(REDIS_FAILOVER));
    let workers: Vec<_> = (0..shape.workers).map(|n| tokio::spawn(load::worker(load.clone(), n))).collect();
    let mut figures = Vec::new();
    let mut failover = None;
    let mut killed_at = None;
    for (phase, _) in PHASES.iter().enumerate() {
        load.phase.store(phase, Ordering::SeqCst);
        let returned = match phase {
            0 => None,
            1 => {
                killed_at = Some(Instant::now());
                c.idps[1].kill();
                tokio::time::sleep(shape.outage).await;
                c.idps[1].start_again().await;
                Some(Instant::now())
            }
            2 => {
                let pg = &c.pg;
                tokio::task::block_in_place(|| {
                    pg.stop();
                    pg.start_again();
                });
                Some(Instant::now())
            }
            3 => {
                c.pg.freeze();
                tokio::time::sleep(shape.freeze).await;
                c.pg.thaw();
                Some(Instant::now())
            }
            4 => {
                c.clients[0].kill();
                tokio::time::sleep(shape.outage).await;
                c.clients[0].start_again().await;
                Some(Instant::now())
            }
            REDIS_FAILOVER => {
                // The sentinels must know the replica and each other before the primary goes.
                let seen = &c;
                within("the sentinels see the replica and each other", Duration::from_secs(30), || async move {
                    seen.sentinels.iter().all(|s| {
                        s.cli(&["SENTINEL", "REPLICAS", MASTER]).contains(&seen.replica.port.to_string())
                            && s.cli(&["SENTINEL", "SENTINELS", MASTER]).lines().filter(|l| *l == "ip").count() == 2
                    })
                })
                .await;
                let killed = Instant::now();
                c.primary.kill();
                // The part that returns is the replica, promoted: recovery counts from there.
                let seen = &c;
                within("a sentinel names the replica the primary", Duration::from_secs(30), || async move {
                    let named = seen.sentinels[0].cli(&["SENTINEL", "GET-MASTER-ADDR-BY-NAME", MASTER]);
                    named.ends_with(&seen.replica.port.to_string())
                })
                .await;
                failover = Some(killed.elapsed());
                Some(Instant::now())
            }
            _ => unreachable!(),
        };
        let recovery = match returned {
            Some(at) => {
                let c = &c;
                let load = &load;
                within(&format!("{}: serving normally again", PHASES[phase]), Duration::from_secs(30), || async move {
                    serves_normally(c, load).await
                })
                .await;
                Some(at.elapsed())
            }
            None => None,
        };
        tokio::time::sleep(shape.steady).await;
        let (lost, duplicated) = tokio::task::block_in_place(|| lost_and_duplicated(&c, &load));
        let forked = tokio::task::block_in_place(|| forked_families(&c));
        let tally = load.tallies.lock().unwrap()[phase].clone();
        figures.push(Figures { tally, lost, duplicated, forked, recovery });
    }
    load.stop();
    for w in workers {
        w.await.unwrap();
    }

    // A rotated refresh token is refused, whichever node is asked (presenting it revokes its
    // family, which is why this comes last).
    let retired: Vec<String> = load.ledger.lock().unwrap().retired_tokens.iter().rev().take(10).cloned().collect();
    assert!(!retired.is_empty(), "no rotation happened");
    for token in &retired {
        let res = reqwest::Client::new()
            .post(format!("{}/oauth/token", c.idp_lb.url()))
            .form(&[
                ("grant_type", "refresh_token"),
                ("refresh_token", token.as_str()),
                ("client_id", &dev_env("CMS_CLIENT_ID")),
                ("client_secret", &dev_env("CMS_CLIENT_SECRET")),
            ])
            .send()
            .await
            .unwrap();
        let status = res.status();
        let body = res.text().await.unwrap();
        // Auth0 refuses a bad refresh token with a 403 `invalid_grant`.
        assert!(status == 403 && body.contains("invalid_grant"), "a rotated token was not refused: {status} {body}");
    }

    // The durable side effects. Mail: every acknowledged one delivered (a claim held by the
    // killed node is sent again once its lease runs out). Log: every acknowledged login's
    // event written, except what the killed node may have held (the rest are written within
    // about a second, the recorder's linger).
    let (acked_mails, acked_logins) = {
        let ledger = load.ledger.lock().unwrap();
        (ledger.acked_mails.clone(), ledger.acked_logins.clone())
    };
    assert!(!acked_mails.is_empty() && !acked_logins.is_empty(), "no reset mail or token request acknowledged");
    let may_be_lost = |at: Instant| killed_at.is_some_and(|k| at <= k && k.duration_since(at) <= LOG_LOSS_WINDOW);
    let waited = Instant::now();
    let (mails, logged) = loop {
        let mails = delivered_mails(&c);
        let logged = tokio::task::block_in_place(|| logged_logins(&c));
        let mails_in = acked_mails.iter().all(|(to, _)| mails.contains_key(to));
        let logs_in = acked_logins.iter().all(|(agent, _, at)| logged.contains(agent) || may_be_lost(*at));
        let logs_waited = waited.elapsed() > LOG_LOSS_WINDOW;
        if (mails_in && logs_in && logs_waited) || waited.elapsed() > MAIL_BOUND {
            break (mails, logged);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let mut durable = vec![Durable::default(); PHASES.len()];
    for (to, phase) in &acked_mails {
        let d = &mut durable[*phase];
        let n = mails.get(to).copied().unwrap_or(0);
        d.mails_acked += 1;
        d.mails_delivered += usize::from(n > 0);
        d.mails_duplicated += usize::from(n > 1);
    }
    let mut lost_outside_window = Vec::new();
    for (agent, phase, at) in &acked_logins {
        let d = &mut durable[*phase];
        d.logins_acked += 1;
        if !logged.contains(agent) {
            d.events_lost += 1;
            if !may_be_lost(*at) {
                lost_outside_window.push(format!("{agent} ({})", PHASES[*phase]));
            }
        }
    }
    // Every duplicate anywhere, not only among the acknowledged.
    let duplicated_mails: Vec<&String> = mails.iter().filter(|(_, n)| **n > 1).map(|(to, _)| to).collect();

    let mut table = report(&figures, &durable, &shape);
    if let Some(f) = failover {
        table.push_str(&format!(
            "\nSentinel failover (primary killed → replica named primary): {:.2} s, with down-after-milliseconds 1000.\n",
            f.as_secs_f64()
        ));
    }
    println!(
        "fault harness ({:.0} s to start the cluster, {:.0} s in all):\n{table}",
        setup.as_secs_f64(),
        started.elapsed().as_secs_f64()
    );
    if let Some(path) = std::env::var_os("GATEHOUSE_FAULTS_RESULTS") {
        std::fs::write(&path, &table).expect("writing the results");
    }
    for (name, f) in PHASES.iter().zip(&figures) {
        let t = &f.tally;
        assert!(f.lost.is_empty(), "{name}: acknowledged users lost: {:?}\n{table}", f.lost);
        assert!(f.duplicated.is_empty(), "{name}: users created twice: {:?}\n{table}", f.duplicated);
        assert!(f.forked.is_empty(), "{name}: refresh-token families forked: {:?}\n{table}", f.forked);
        assert!(t.ok > 0, "{name}: nothing succeeded\n{table}");
        let judged = t.ok + t.clean_status + t.clean_closed + t.hangs + t.wrong + t.states_lost_in_failover;
        assert_eq!(judged, t.requests, "{name}: a request without a verdict\n{table}");
        assert_eq!(t.wrong, 0, "{name}: wrong answers {:?}\n{table}", t.wrong_examples);
        assert_eq!(t.hangs, 0, "{name}: requests hung\n{table}");
        if let Some(r) = f.recovery {
            assert!(r <= RECOVERY_BOUND, "{name}: serving normally only after {r:?}\n{table}");
        }
    }
    for (name, d) in PHASES.iter().zip(&durable) {
        assert_eq!(d.mails_delivered, d.mails_acked, "{name}: acknowledged reset mails not delivered\n{table}");
    }
    assert!(
        duplicated_mails.len() <= MAIL_CLAIM_BATCH,
        "more mails delivered twice than one claim holds: {duplicated_mails:?}\n{table}"
    );
    assert!(lost_outside_window.is_empty(), "log events lost that no crash explains: {lost_outside_window:?}\n{table}");
    let steady = &figures[0].tally;
    assert_eq!(steady.ok, steady.requests, "errors without a fault\n{table}");
    drop(c);
}
