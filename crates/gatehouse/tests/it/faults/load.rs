//! The mixed load the fault tests run, and how each answer is judged. Workers loop over what
//! production traffic does: password logins that start refresh-token families, rotations of
//! those tokens, client-credentials grants, Management API user creates, `/userinfo` through
//! auth0-client with a session made before the load, and whole browser logins through
//! auth0-client (its `/authorize`, the idp's login page, the code exchange). Every request opens
//! its own connection, so the balancer spreads them over the nodes. After each user create, a
//! password-reset mail for that user (`/dbconnections/change_password`), whose acknowledgement
//! promises a queued mail; each password login and refresh rotation carries a User-Agent of
//! its own, so its `sepft` or `sertft` event can be found in the tenant log afterwards.
//!
//! An answer is *ok* (the expected status and a body that checks out: the right user, a new
//! refresh token), a *clean error* (a 5xx in the API's own error shape, or a connection the
//! balancer or a dying node closed), a *hang* (no answer within [`CLIENT_TIMEOUT`]) or a
//! *wrong answer* (anything else: a 4xx for a request that should pass, a 200 for another user,
//! an old refresh token accepted). The ledger keeps what must be in the database afterwards.

use base64::Engine;
use serde_json::{Value, json};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Longer than the idp's request timeout in these tests (10 s), so a hang is the client's, not
/// the edge's answer.
pub const CLIENT_TIMEOUT: Duration = Duration::from_secs(15);

#[derive(Clone)]
pub struct Account {
    pub email: String,
    pub password: String,
    pub user_id: String,
}

/// What the load runs against.
pub struct Target {
    /// The idp nodes' balancer (their public URL, without the trailing slash).
    pub idp: String,
    /// The auth0-client instances' balancer.
    pub client: String,
    pub accounts: Vec<Account>,
    /// A Management API token (client credentials), valid for the whole run.
    pub management_token: String,
    /// Sessions made through auth0-client before the load: `sid` and the user's id.
    pub sessions: Vec<(String, String)>,
    /// Prefixes the emails of the users this run creates.
    pub run: String,
}

#[derive(Default, Clone, Debug)]
pub struct Tally {
    pub requests: u64,
    pub ok: u64,
    /// 5xx in the API's own shape.
    pub clean_status: u64,
    /// Connections closed or refused (the balancer found no node, or the node died mid-request).
    pub clean_closed: u64,
    pub hangs: u64,
    pub wrong: u64,
    /// The first wrong answers, for the failure message.
    pub wrong_examples: Vec<String>,
    /// Refresh families revoked by the reuse rule after a rotation whose answer was lost.
    pub families_revoked: u64,
    /// Browser logins whose auth0-client state (written to the Redis primary just before it
    /// was killed) did not reach the replica: Redis replicates asynchronously, so a failover
    /// may lose the last writes. auth0-client then answers 401 and the user logs in again.
    pub states_lost_in_failover: u64,
}

#[derive(Default)]
pub struct Ledger {
    /// Users whose create was answered 201 (or 409 after an attempt whose answer was lost).
    pub acked_users: BTreeSet<String>,
    /// Users whose create got no answer and was not retried to an answer yet.
    pub unsure_users: BTreeSet<String>,
    /// Refresh tokens that were rotated (answered 200 with a successor): never valid again.
    pub retired_tokens: Vec<String>,
    /// Reset mails answered 200: the address (one per user, so one mail each) and the phase.
    pub acked_mails: Vec<(String, usize)>,
    /// Password logins and rotations answered 200: their User-Agent, the phase, and when the
    /// answer came.
    pub acked_logins: Vec<(String, usize, Instant)>,
}

/// The shared state of one run: which phase answers count for, the tallies, the ledger.
pub struct Load {
    pub target: Target,
    pub phase: AtomicUsize,
    /// The phase in which the Redis primary is killed, if any.
    pub redis_failover_phase: Option<usize>,
    pub tallies: Mutex<Vec<Tally>>,
    pub ledger: Mutex<Ledger>,
    stop: AtomicBool,
}

enum Reply {
    Answer { status: u16, location: String, set_cookie: Vec<String>, body: String },
    Closed,
    Hang,
}

#[derive(Clone, Copy)]
enum Api {
    /// The Authentication API: `{"error", "error_description"}`.
    OAuth,
    /// The Management API: `{"statusCode", "error", "message"}`.
    Management,
    /// auth0-client: Mia's `{"statusCode", "error", "message"}`.
    Mia,
    /// The idp's login pages: an HTML page.
    Page,
}

impl Load {
    pub fn new(target: Target, phases: usize, redis_failover_phase: Option<usize>) -> Arc<Load> {
        Arc::new(Load {
            target,
            phase: AtomicUsize::new(0),
            redis_failover_phase,
            tallies: Mutex::new(vec![Tally::default(); phases]),
            ledger: Mutex::new(Ledger::default()),
            stop: AtomicBool::new(false),
        })
    }

    pub fn stop(&self) {
        self.stop.store(true, Ordering::SeqCst);
    }

    fn tally(&self, f: impl FnOnce(&mut Tally)) {
        let phase = self.phase.load(Ordering::SeqCst);
        f(&mut self.tallies.lock().unwrap()[phase]);
    }

    fn wrong(&self, what: String) {
        self.tally(|t| {
            t.requests += 1;
            t.wrong += 1;
            if t.wrong_examples.len() < 10 {
                t.wrong_examples.push(what);
            }
        });
    }

    /// Sends one request. Each is counted once its outcome is known, in the phase of that
    /// moment, so a phase's requests are exactly its ok, clean, hung and wrong answers.
    async fn send(&self, req: reqwest::RequestBuilder) -> Reply {
        let reply = match req.send().await {
            Ok(res) => {
                let status = res.status().as_u16();
                let header = |name: &str| {
                    res.headers().get_all(name).iter().filter_map(|v| v.to_str().ok().map(str::to_owned)).collect()
                };
                let location: Vec<String> = header("location");
                let set_cookie = header("set-cookie");
                match res.text().await {
                    Ok(body) => Reply::Answer { status, location: location.concat(), set_cookie, body },
                    Err(e) if e.is_timeout() => Reply::Hang,
                    Err(_) => Reply::Closed,
                }
            }
            Err(e) if e.is_timeout() => Reply::Hang,
            Err(_) => Reply::Closed,
        };
        match reply {
            Reply::Closed => self.tally(|t| {
                t.requests += 1;
                t.clean_closed += 1;
            }),
            Reply::Hang => self.tally(|t| {
                t.requests += 1;
                t.hangs += 1;
            }),
            Reply::Answer { .. } => {}
        }
        reply
    }

    /// Counts a failed answer: clean when it is a 5xx in `api`'s shape, wrong otherwise.
    /// `Closed` and `Hang` were counted by `send`.
    fn failed(&self, what: &str, api: Api, reply: &Reply) {
        let Reply::Answer { status, body, .. } = reply else { return };
        let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let shaped = match api {
            Api::OAuth => json["error"].is_string(),
            Api::Management | Api::Mia => {
                json["statusCode"].as_u64() == Some(u64::from(*status)) && json["message"].is_string()
            }
            Api::Page => !body.is_empty(),
        };
        if *status >= 500 && shaped {
            self.tally(|t| {
                t.requests += 1;
                t.clean_status += 1;
            });
        } else {
            let body: String = body.chars().take(200).collect();
            self.wrong(format!("{what}: {status} {body}"));
        }
    }

    fn ok(&self) {
        self.tally(|t| {
            t.requests += 1;
            t.ok += 1;
        });
    }
}

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .pool_max_idle_per_host(0)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .timeout(CLIENT_TIMEOUT)
        .pool_max_idle_per_host(0)
        .cookie_store(true)
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// The `sub` of a JWT, unverified (the test checks which user, not the signature).
fn subject(jwt: &str) -> Option<String> {
    let payload = jwt.split('.').nth(1)?;
    let bytes = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(payload).ok()?;
    let claims: Value = serde_json::from_slice(&bytes).ok()?;
    claims["sub"].as_str().map(str::to_owned)
}

fn hidden(html: &str, name: &str) -> Option<String> {
    let marker = format!("name=\"{name}\" value=\"");
    let start = html.find(&marker)? + marker.len();
    let end = html[start..].find('"')?;
    Some(html[start..start + end].replace("&amp;", "&"))
}

fn param(url: &str, name: &str) -> Option<String> {
    let url = url::Url::parse(url).ok()?;
    url.query_pairs().find(|(k, _)| k == name).map(|(_, v)| v.into_owned())
}

/// A refresh-token family a worker holds: its newest token, and whether a rotation's answer
/// was lost (then the token may be retired already, and its use revokes the family).
struct Family {
    token: String,
    unsure: bool,
}

/// One worker: runs the mix until the load stops.
pub async fn worker(load: Arc<Load>, n: usize) {
    let mut family: Option<Family> = None;
    let mut pending_user: Option<(String, bool)> = None;
    let mut created = 0usize;
    let mut round = 0usize;
    while !load.stop.load(Ordering::SeqCst) {
        let account = load.target.accounts[(n + round) % load.target.accounts.len()].clone();
        match &mut family {
            None => family = password_login(&load, &account).await.map(|token| Family { token, unsure: false }),
            Some(f) => {
                if !rotate(&load, f).await {
                    family = None;
                }
            }
        }
        client_credentials(&load).await;
        let (email, retried) = pending_user.take().unwrap_or_else(|| {
            created += 1;
            (format!("{}-{n}-{created}@faults.example.test", load.target.run), false)
        });
        if create_user(&load, &email, retried).await {
            reset_mail(&load, &email, n, created).await;
        } else {
            pending_user = Some((email, true));
        }
        let (sid, user_id) = &load.target.sessions[(n + round) % load.target.sessions.len()];
        userinfo(&load, sid, user_id).await;
        if round.is_multiple_of(3) {
            browser_login(&load, &account).await;
        }
        round += 1;
    }
}

/// A password-realm login asking for a refresh token; its refresh token on success.
pub async fn password_login(load: &Load, account: &Account) -> Option<String> {
    let form = [
        ("grant_type", "http://auth0.com/oauth/grant-type/password-realm"),
        ("realm", "dev-users"),
        ("username", &account.email),
        ("password", &account.password),
        ("client_id", &crate::support::dev_env("CMS_CLIENT_ID")),
        ("client_secret", &crate::support::dev_env("CMS_CLIENT_SECRET")),
        ("scope", "openid offline_access"),
        ("audience", "http://localhost:8080/"),
    ];
    let agent = login_agent();
    let req = client().post(format!("{}/oauth/token", load.target.idp)).header("user-agent", &agent).form(&form);
    let reply = load.send(req).await;
    if let Reply::Answer { status: 200, body, .. } = &reply {
        let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        let sub = json["id_token"].as_str().and_then(subject);
        match (sub, json["refresh_token"].as_str(), json["access_token"].as_str()) {
            (Some(sub), Some(refresh), Some(_)) if sub == account.user_id => {
                load.ok();
                let phase = load.phase.load(Ordering::SeqCst);
                load.ledger.lock().unwrap().acked_logins.push((agent, phase, Instant::now()));
                return Some(refresh.to_owned());
            }
            _ => load.wrong(format!("password login for {}: {body}", account.email)),
        }
        return None;
    }
    load.failed("password login", Api::OAuth, &reply);
    None
}

/// Rotates the family's token; `false` when the family is over (revoked after a lost answer).
async fn rotate(load: &Load, family: &mut Family) -> bool {
    let form = [
        ("grant_type", "refresh_token"),
        ("refresh_token", family.token.as_str()),
        ("client_id", &crate::support::dev_env("CMS_CLIENT_ID")),
        ("client_secret", &crate::support::dev_env("CMS_CLIENT_SECRET")),
    ];
    let agent = login_agent();
    let req = client().post(format!("{}/oauth/token", load.target.idp)).header("user-agent", &agent).form(&form);
    let reply = load.send(req).await;
    match &reply {
        Reply::Answer { status: 200, body, .. } => {
            let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            match json["refresh_token"].as_str() {
                Some(next) if next != family.token && json["access_token"].is_string() => {
                    load.ok();
                    let phase = load.phase.load(Ordering::SeqCst);
                    load.ledger.lock().unwrap().acked_logins.push((agent, phase, Instant::now()));
                    let old = std::mem::replace(&mut family.token, next.to_owned());
                    load.ledger.lock().unwrap().retired_tokens.push(old);
                    family.unsure = false;
                }
                _ => load.wrong(format!("rotation: {body}")),
            }
            true
        }
        Reply::Answer { status: 403, body, .. } if family.unsure && body.contains("invalid_grant") => {
            // The lost answer had rotated the token: presenting it again revoked the family,
            // as the reuse rule says (leeway 0). Intact or revoked, never forked.
            load.ok();
            load.tally(|t| t.families_revoked += 1);
            false
        }
        Reply::Answer { .. } => {
            load.failed("rotation", Api::OAuth, &reply);
            family.unsure = true;
            true
        }
        Reply::Closed | Reply::Hang => {
            family.unsure = true;
            true
        }
    }
}

async fn client_credentials(load: &Load) {
    let form = [
        ("grant_type", "client_credentials"),
        ("client_id", &crate::support::dev_env("MGMT_CLIENT_ID")),
        ("client_secret", &crate::support::dev_env("MGMT_CLIENT_SECRET")),
        ("audience", &management_audience(&load.target.idp)),
    ];
    let reply = load.send(client().post(format!("{}/oauth/token", load.target.idp)).form(&form)).await;
    if let Reply::Answer { status: 200, body, .. } = &reply {
        let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        if json["access_token"].is_string() && json["token_type"] == "Bearer" {
            load.ok();
        } else {
            load.wrong(format!("client credentials: {body}"));
        }
        return;
    }
    load.failed("client credentials", Api::OAuth, &reply);
}

/// The Management API's audience for an idp at `base`: Auth0's `https://DOMAIN/api/v2/`.
pub fn management_audience(base: &str) -> String {
    let url = url::Url::parse(base).unwrap();
    format!("https://{}:{}/api/v2/", url.host_str().unwrap(), url.port().unwrap())
}

/// Creates a user; `false` when no answer said whether it exists (the caller retries with the
/// same email). `retried`: an earlier attempt's answer was lost, so a 409 means it worked.
async fn create_user(load: &Load, email: &str, retried: bool) -> bool {
    let body = json!({
        "connection": "dev-users",
        "email": email,
        "password": "Fault-Passw0rd!",
        "email_verified": true,
    });
    let req = client()
        .post(format!("{}/api/v2/users", load.target.idp))
        .bearer_auth(&load.target.management_token)
        .json(&body);
    let reply = load.send(req).await;
    let settled = |load: &Load| {
        let mut ledger = load.ledger.lock().unwrap();
        ledger.unsure_users.remove(email);
        ledger.acked_users.insert(email.to_owned());
    };
    match &reply {
        Reply::Answer { status: 201, body, .. } => {
            let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
            if json["email"] == email && json["user_id"].is_string() {
                load.ok();
                settled(load);
            } else {
                load.wrong(format!("user create: {body}"));
            }
            true
        }
        Reply::Answer { status: 409, .. } if retried => {
            load.ok();
            settled(load);
            true
        }
        _ => {
            load.failed("user create", Api::Management, &reply);
            load.ledger.lock().unwrap().unsure_users.insert(email.to_owned());
            false
        }
    }
}

/// The User-Agent that marks a password login or rotation of the load: its `sepft` or
/// `sertft` event carries it.
pub fn login_agent() -> String {
    format!("{LOGIN_AGENT}{}", rand_suffix())
}

pub const LOGIN_AGENT: &str = "faults-login-";

/// Asks for a password-reset mail for `email` (a user this run created, so exactly one mail
/// each). From an address of its own (`X-Forwarded-For`, the nodes trust the balancer): the
/// idp allows 10 reset requests an hour per address.
async fn reset_mail(load: &Load, email: &str, worker: usize, n: usize) {
    let body = json!({
        "client_id": crate::support::dev_env("CMS_CLIENT_ID"),
        "email": email,
        "connection": "dev-users",
    });
    let ip = format!("10.{}.{}.{}", worker % 256, (n / 256) % 256, n % 256);
    let req = client()
        .post(format!("{}/dbconnections/change_password", load.target.idp))
        .header("x-forwarded-for", ip)
        .json(&body);
    let reply = load.send(req).await;
    match &reply {
        Reply::Answer { status: 200, body, .. } if body.contains("sent you an email") => {
            load.ok();
            let phase = load.phase.load(Ordering::SeqCst);
            load.ledger.lock().unwrap().acked_mails.push((email.to_owned(), phase));
        }
        Reply::Answer { status: 200, body, .. } => load.wrong(format!("reset mail for {email}: {body}")),
        _ => load.failed("reset mail", Api::OAuth, &reply),
    }
}

async fn userinfo(load: &Load, sid: &str, user_id: &str) {
    let req = client().get(format!("{}/userinfo", load.target.client)).header("cookie", format!("sid={sid}"));
    let reply = load.send(req).await;
    if let Reply::Answer { status: 200, body, .. } = &reply {
        let json: Value = serde_json::from_str(body).unwrap_or(Value::Null);
        if json["sub"] == user_id {
            load.ok();
        } else {
            load.wrong(format!("userinfo for {user_id}: {body}"));
        }
        return;
    }
    load.failed("userinfo", Api::Mia, &reply);
}

/// A whole website login through auth0-client, as the login site and a browser do it; the
/// `sid` on success. Each step that fails ends the login (the user would retry).
pub async fn browser_login(load: &Load, account: &Account) -> Option<String> {
    let b = browser();
    let state = format!("st{}", rand_suffix());
    let step = |load: &Load, what: &str, api: Api, reply: &Reply, want: u16| -> bool {
        match reply {
            Reply::Answer { status, .. } if *status == want => {
                load.ok();
                true
            }
            _ => {
                load.failed(what, api, reply);
                false
            }
        }
    };
    let authorize = b
        .get(format!("{}/authorize?redirect=/backoffice&state={state}", load.target.client))
        .header("client-type", "cms");
    let reply = load.send(authorize).await;
    if !step(load, "auth0-client /authorize", Api::Mia, &reply, 302) {
        return None;
    }
    let Reply::Answer { location, .. } = reply else { return None };
    let reply = load.send(b.get(&location)).await;
    if !step(load, "idp /authorize", Api::Page, &reply, 302) {
        return None;
    }
    let Reply::Answer { location, .. } = reply else { return None };
    let page = if location.starts_with('/') { format!("{}{location}", load.target.idp) } else { location };
    let reply = load.send(b.get(&page)).await;
    if !step(load, "login page", Api::Page, &reply, 200) {
        return None;
    }
    let Reply::Answer { body: html, .. } = reply else { return None };
    let (Some(form_state), Some(csrf)) = (hidden(&html, "state"), hidden(&html, "csrf")) else {
        load.wrong(format!("login page without its form: {}", html.chars().take(200).collect::<String>()));
        return None;
    };
    let form = [
        ("state", form_state),
        ("csrf", csrf),
        ("connection", "dev-users".to_owned()),
        ("username", account.email.clone()),
        ("password", account.password.clone()),
    ];
    let reply = load.send(b.post(&page).form(&form)).await;
    if !step(load, "login form", Api::Page, &reply, 302) {
        return None;
    }
    let Reply::Answer { location: callback, .. } = reply else { return None };
    let (Some(code), Some(back)) = (param(&callback, "code"), param(&callback, "state")) else {
        load.wrong(format!("login form redirected to {callback}"));
        return None;
    };
    if back != state {
        load.wrong(format!("state {back} came back for {state}"));
        return None;
    }
    let exchange = client()
        .post(format!("{}/oauth/token?code={code}&state={state}", load.target.client))
        .header("client-type", "cms");
    let reply = load.send(exchange).await;
    let in_failover = load.redis_failover_phase == Some(load.phase.load(Ordering::SeqCst));
    if let Reply::Answer { status: 401, .. } = &reply
        && in_failover
    {
        load.tally(|t| {
            t.requests += 1;
            t.states_lost_in_failover += 1;
        });
        return None;
    }
    if !step(load, "auth0-client /oauth/token", Api::Mia, &reply, 200) {
        return None;
    }
    let Reply::Answer { set_cookie, .. } = reply else { return None };
    let sid = set_cookie.iter().find_map(|c| {
        let value = c.strip_prefix("sid=")?.split(';').next()?;
        (!value.is_empty()).then(|| value.to_owned())
    });
    if sid.is_none() {
        // The exchange's answer was counted ok by `step`: it is a wrong one after all.
        load.tally(|t| {
            t.ok -= 1;
            t.requests -= 1;
        });
        load.wrong("auth0-client /oauth/token set no sid".into());
    }
    sid
}

fn rand_suffix() -> String {
    use std::sync::atomic::AtomicU64;
    static N: AtomicU64 = AtomicU64::new(0);
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().subsec_nanos();
    format!("{nanos}x{}", N.fetch_add(1, Ordering::Relaxed))
}
