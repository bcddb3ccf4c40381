//! Log streams (Auth0's `http` type): each active stream's events are pushed to its endpoint by
//! a background task, never on a request's path.
//!
//! - **At least once, in order**: a stream's cursor (the log position of the last event it
//!   delivered or its filters skipped: positions follow the order writes committed, which
//!   `log_id`s from several nodes do not) is in the store and moves only after the endpoint answered 2xx, so a
//!   restart, a failure or a resumed stream starts again after the last confirmed batch; a batch
//!   that landed but was not confirmed is sent again (a duplicate, never a loss). One stream is
//!   delivered by one task at a time, oldest event first.
//! - **Batches** of up to [`BATCH`] events, as the stream's format says: `JSONLINES` (one JSON
//!   document a line), `JSONARRAY` (one array), `JSONOBJECT` (one request per event). Each
//!   element is Auth0's `{"log_id", "data"}` with the event as `GET /api/v2/logs` shows it.
//! - **Failures**: a refused or unanswered request (no 2xx within [`REQUEST_TIMEOUT`]) is retried
//!   after a backoff doubling from 1 s to [`MAX_BACKOFF`]; after failing without a success for
//!   `StreamSettings::suspend_after` the stream is `suspended` and left alone until an admin
//!   sets it `active` again, which delivers what was kept from its cursor on (as long as the
//!   retention keeps it).
//! - **Several nodes**: one node at a time delivers a stream, under a lease in the store
//!   ([`StreamSettings::lease`], 30 s by default) that it renews while it delivers (before a
//!   request once half of it has passed, so it outlasts the request's [`REQUEST_TIMEOUT`]) and
//!   at each poll. A node that stops or dies stops renewing; once its lease ends another node
//!   claims the stream (one conditional `UPDATE`: of nodes claiming at once one wins) and goes
//!   on from the stored cursor. The cursor moves only under the lease, so a node that lost it
//!   can neither move it back nor deliver behind the new holder past the batch it was sending;
//!   that batch may arrive twice (at least once), nothing is lost. Leases are dated by each
//!   node's clock: clocks apart by more than the lease only cause such duplicates.
//!
//! The authorization header is sealed at rest ([`crate::secrets`]) and opened only to send it.

use crate::config::StreamSettings;
use crate::secrets::SecretBox;
use serde_json::{Value, json};
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use store::{LogEvent, LogStream, Store};
use tokio::sync::oneshot;

/// Events per request (per read of the log), at most.
pub const BATCH: u32 = 100;
/// Batches one run delivers before the stream's status is read again.
const BATCHES_PER_RUN: usize = 50;
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
pub const MAX_BACKOFF: Duration = Duration::from_secs(30);

/// Auth0's content formats.
pub const FORMATS: [&str; 3] = ["JSONLINES", "JSONARRAY", "JSONOBJECT"];

/// Auth0's filter categories (`filters: [{"type": "category", "name": …}]`).
pub const CATEGORIES: [&str; 22] = [
    "auth.ancillary.fail",
    "auth.ancillary.success",
    "auth.login.fail",
    "auth.login.notification",
    "auth.login.success",
    "auth.logout.fail",
    "auth.logout.success",
    "auth.signup.fail",
    "auth.signup.success",
    "auth.silent_auth.fail",
    "auth.silent_auth.success",
    "auth.token_exchange.fail",
    "auth.token_exchange.success",
    "management.fail",
    "management.success",
    "system.notification",
    "user.fail",
    "user.notification",
    "user.success",
    "actions",
    "scim.event",
    "other",
];

/// The filter category an event type falls in, as Auth0's "Log Stream Filters" page groups the
/// codes this idp records; others are `other`.
pub fn category(code: &str) -> &'static str {
    match code {
        "f" | "fp" | "fu" | "fc" | "fco" | "fcoa" | "fens" => "auth.login.fail",
        "s" => "auth.login.success",
        "w" => "auth.login.notification",
        "flo" => "auth.logout.fail",
        "slo" => "auth.logout.success",
        "fs" => "auth.signup.fail",
        "ss" => "auth.signup.success",
        "fsa" => "auth.silent_auth.fail",
        "ssa" => "auth.silent_auth.success",
        "feacft" | "feccft" | "fepft" | "fertft" => "auth.token_exchange.fail",
        "seacft" | "seccft" | "sepft" | "sertft" => "auth.token_exchange.success",
        "fapi" => "management.fail",
        "sapi" => "management.success",
        "fcp" | "fcpr" | "fdu" => "user.fail",
        "scp" | "scpr" | "sdu" | "du" => "user.success",
        "limit_wc" | "limit_mu" => "user.notification",
        "api_limit" => "system.notification",
        "actions_execution_failed" => "actions",
        _ => "other",
    }
}

/// Why an endpoint is refused: not a URL, or plain `http` to anything but this machine.
pub fn check_endpoint(endpoint: &str) -> Result<(), String> {
    let url = url::Url::parse(endpoint).map_err(|_| format!("httpEndpoint is not a URL: {endpoint:?}"))?;
    let loopback = match url.host() {
        Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        None => false,
    };
    match url.scheme() {
        "https" if url.host().is_some() => Ok(()),
        "http" if loopback => Ok(()),
        _ => Err("httpEndpoint must be an https URL (plain http only to a loopback address)".into()),
    }
}

/// The request bodies for `events` in `format` (one per event for `JSONOBJECT`).
pub fn bodies(format: &str, events: &[&LogEvent]) -> Vec<Vec<u8>> {
    let element = |e: &LogEvent| json!({ "log_id": e.log_id, "data": super::to_json(e) });
    match format {
        "JSONARRAY" => vec![Value::Array(events.iter().map(|e| element(e)).collect()).to_string().into_bytes()],
        "JSONOBJECT" => events.iter().map(|e| element(e).to_string().into_bytes()).collect(),
        _ => {
            let lines: Vec<String> = events.iter().map(|e| element(e).to_string()).collect();
            vec![lines.join("\n").into_bytes()]
        }
    }
}

/// The sealing context of a stream's authorization: bound to the stream.
pub fn authorization_context(stream_id: &str) -> String {
    format!("log_stream:{stream_id}:authorization")
}

/// Runs the delivery until dropped (with the idp).
pub struct Delivery {
    node: String,
    _stop: Option<oneshot::Sender<()>>,
}

impl Delivery {
    pub fn start(store: Arc<dyn Store>, secrets: Arc<SecretBox>, settings: StreamSettings) -> Delivery {
        let node = format!("node_{}", crate::util::random_alnum(16));
        let client =
            reqwest::Client::builder().timeout(REQUEST_TIMEOUT).redirect(reqwest::redirect::Policy::none()).build();
        let client = match client {
            Ok(c) => c,
            Err(e) => {
                tracing::error!(error = %e, "log streams: no HTTP client; nothing will be delivered");
                return Delivery { node, _stop: None };
            }
        };
        let (stop, stopped) = oneshot::channel();
        let ctx = Arc::new(Context {
            store,
            secrets,
            settings,
            client,
            node: node.clone(),
            retries: Mutex::new(HashMap::new()),
        });
        tokio::spawn(manage(ctx, stopped));
        Delivery { node, _stop: Some(stop) }
    }

    /// This node's name as a lease holder (`lease_owner`), new each start.
    pub fn node(&self) -> &str {
        &self.node
    }
}

struct Context {
    store: Arc<dyn Store>,
    secrets: Arc<SecretBox>,
    settings: StreamSettings,
    client: reqwest::Client,
    /// The lease holder's name.
    node: String,
    /// Streams waiting out a backoff: when to try again, the next wait, and the stream's
    /// `updated_at` then (an edit, such as a resume, cancels the wait).
    retries: Mutex<HashMap<String, Retry>>,
}

#[derive(Clone, Copy)]
struct Retry {
    at: Instant,
    wait: Duration,
    updated_at: store::Millis,
}

impl Context {
    fn retries(&self) -> std::sync::MutexGuard<'_, HashMap<String, Retry>> {
        self.retries.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn lease_ms(&self) -> i64 {
        self.settings.lease.as_millis() as i64
    }

    /// Takes or renews `id`'s lease for [`StreamSettings::lease`] from now.
    async fn claim(&self, id: &str) -> bool {
        let now = crate::util::now_ms();
        match self.store.logs().claim_log_stream(id, &self.node, now, now + self.lease_ms()).await {
            Ok(granted) => granted,
            Err(e) => {
                tracing::warn!(stream = %id, error = %e, "log stream: claiming its lease failed");
                false
            }
        }
    }
}

/// Every `poll`: starts a run for each active stream that has none here, is not waiting out a
/// backoff, and whose lease is not another node's; keeps the lease of a stream waiting out a
/// backoff here, so the backoff is not lost to another node. Stopped, it ends its runs too.
async fn manage(ctx: Arc<Context>, mut stopped: oneshot::Receiver<()>) {
    let mut running: HashMap<String, tokio::task::JoinHandle<()>> = HashMap::new();
    loop {
        tokio::select! {
            _ = &mut stopped => break,
            _ = tokio::time::sleep(ctx.settings.poll) => {}
        }
        let streams = match ctx.store.logs().log_streams().await {
            Ok(s) => s,
            Err(e) => {
                tracing::warn!(error = %e, "log streams: reading the streams failed");
                continue;
            }
        };
        running.retain(|_, run| !run.is_finished());
        let now = crate::util::now_ms();
        for stream in streams {
            if stream.status != "active" || running.contains_key(&stream.id) {
                continue;
            }
            let mine = stream.lease_owner.as_deref() == Some(ctx.node.as_str());
            let left = stream.lease_until.unwrap_or(0) - now;
            if !mine && left > 0 && stream.lease_owner.is_some() {
                continue; // another node's (the claim decides; this only saves it)
            }
            let waiting = ctx
                .retries()
                .get(&stream.id)
                .is_some_and(|r| r.updated_at == stream.updated_at && r.at > Instant::now());
            if waiting {
                if mine && left < ctx.lease_ms() / 2 {
                    ctx.claim(&stream.id).await;
                }
                continue;
            }
            let id = stream.id.clone();
            running.insert(id.clone(), tokio::spawn(run(ctx.clone(), id)));
        }
    }
    for run in running.values() {
        run.abort();
    }
}

/// A held lease, renewed once half of it has passed.
struct Lease<'a> {
    ctx: &'a Context,
    id: &'a str,
    renew_at: Instant,
}

impl Lease<'_> {
    /// `false` when the lease was lost (another node took the stream over).
    async fn keep(&mut self) -> bool {
        if Instant::now() < self.renew_at {
            return true;
        }
        let asked = Instant::now();
        let kept = self.ctx.claim(self.id).await;
        self.renew_at = asked + self.ctx.settings.lease / 2;
        kept
    }
}

/// What became of a batch.
enum Sent {
    Delivered,
    Failed,
    /// The lease was lost before the batch was all sent: the new holder sends it.
    LeaseLost,
}

/// Under the stream's lease, delivers its events from its stored cursor on, until it is caught
/// up, fails, is no longer active, or the lease is lost.
async fn run(ctx: Arc<Context>, id: String) {
    let logs = ctx.store.logs();
    let asked = Instant::now();
    if !ctx.claim(&id).await {
        return;
    }
    let mut lease = Lease { ctx: &ctx, id: &id, renew_at: asked + ctx.settings.lease / 2 };
    // Read after the claim: the cursor is where the last holder left it.
    let stream = match logs.log_stream(&id).await {
        Ok(Some(s)) if s.status == "active" && s.lease_owner.as_deref() == Some(ctx.node.as_str()) => s,
        Ok(_) => return,
        Err(e) => {
            tracing::warn!(stream = %id, error = %e, "log stream: reading it failed");
            return;
        }
    };
    let mut cursor = stream.cursor;
    let mut failing_since = stream.failing_since;
    let authorization = match &stream.authorization_sealed {
        Some(sealed) => match ctx.secrets.open(&authorization_context(&stream.id), sealed) {
            Ok(a) => Some(a),
            Err(e) => {
                tracing::error!(stream = %stream.id, error = %e, "log stream: its authorization cannot be opened");
                return failed(&ctx, &stream, cursor, failing_since).await;
            }
        },
        None => None,
    };
    for _ in 0..BATCHES_PER_RUN {
        // By position (commit order), not `log_id`: two nodes' ids interleave by their clocks
        // and their writes commit in any order, so an event can land with a smaller id than one
        // already delivered; a cursor on ids would skip it for good.
        let page = match logs.logs_after(cursor, BATCH).await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(stream = %stream.id, error = %e, "log stream: reading the log failed");
                return;
            }
        };
        let Some(&(last, _)) = page.last() else { break };
        let filters = &stream.config.filters;
        let chosen: Vec<&LogEvent> = page
            .iter()
            .map(|(_, e)| e)
            .filter(|e| filters.is_empty() || filters.iter().any(|f| f == category(&e.event_type)))
            .collect();
        if !chosen.is_empty() {
            match send(&ctx, &stream, authorization.as_deref(), &chosen, &mut lease).await {
                Sent::Delivered => {}
                Sent::Failed => return failed(&ctx, &stream, cursor, failing_since).await,
                Sent::LeaseLost => return lost(&stream),
            }
        }
        cursor = last;
        failing_since = None;
        match logs.log_stream_progress(&stream.id, &ctx.node, cursor, None, false).await {
            Ok(true) => {}
            Ok(false) => return lost(&stream),
            Err(e) => {
                tracing::warn!(stream = %stream.id, error = %e, "log stream: saving its cursor failed");
                return;
            }
        }
        ctx.retries().remove(&stream.id);
        // Paused, suspended, edited or deleted meanwhile: the next poll takes it from here.
        match logs.log_stream(&stream.id).await {
            Ok(Some(now)) if now.status == "active" && now.updated_at == stream.updated_at => {}
            _ => return,
        }
    }
    if failing_since.is_some() {
        let _ = logs.log_stream_progress(&stream.id, &ctx.node, cursor, None, false).await;
    }
}

fn lost(stream: &LogStream) {
    tracing::info!(stream = %stream.id, "log stream: another node took it over");
}

/// Posts `events`, each request under a lease kept long enough for it.
async fn send(
    ctx: &Context,
    stream: &LogStream,
    authorization: Option<&str>,
    events: &[&LogEvent],
    lease: &mut Lease<'_>,
) -> Sent {
    for body in bodies(&stream.config.content_format, events) {
        if !lease.keep().await {
            return Sent::LeaseLost;
        }
        let mut req = ctx
            .client
            .post(&stream.config.endpoint)
            .header(reqwest::header::CONTENT_TYPE, &stream.config.content_type)
            .body(body);
        if let Some(a) = authorization {
            req = req.header(reqwest::header::AUTHORIZATION, a);
        }
        match req.send().await {
            Ok(res) if res.status().is_success() => {}
            Ok(res) => {
                tracing::warn!(stream = %stream.id, status = res.status().as_u16(), "log stream: the endpoint refused a batch");
                return Sent::Failed;
            }
            Err(e) => {
                // Without the URL: it may carry credentials in its query.
                tracing::warn!(stream = %stream.id, error = %e.without_url(), "log stream: the endpoint is unreachable");
                return Sent::Failed;
            }
        }
    }
    Sent::Delivered
}

/// Records a failure (while this node holds the lease): the backoff grows, and a stream
/// failing for longer than the bound is suspended.
async fn failed(ctx: &Context, stream: &LogStream, cursor: i64, failing_since: Option<store::Millis>) {
    let now = crate::util::now_ms();
    let since = failing_since.unwrap_or(now);
    let suspend = now - since >= ctx.settings.suspend_after.as_millis() as i64;
    match ctx.store.logs().log_stream_progress(&stream.id, &ctx.node, cursor, Some(since), suspend).await {
        Ok(true) => {}
        Ok(false) => return lost(stream),
        Err(e) => tracing::warn!(stream = %stream.id, error = %e, "log stream: saving its state failed"),
    }
    if suspend {
        tracing::warn!(stream = %stream.id, "log stream suspended: its endpoint failed for too long");
    }
    let mut retries = ctx.retries();
    let wait = match retries.get(&stream.id) {
        Some(r) if r.updated_at == stream.updated_at => (r.wait * 2).min(MAX_BACKOFF),
        _ => Duration::from_secs(1),
    };
    retries.insert(stream.id.clone(), Retry { at: Instant::now() + wait, wait, updated_at: stream.updated_at });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoints_are_https_or_loopback() {
        assert!(check_endpoint("https://logs.example.com/in").is_ok());
        assert!(check_endpoint("http://127.0.0.1:9000/in").is_ok());
        assert!(check_endpoint("http://[::1]:9000/in").is_ok());
        assert!(check_endpoint("http://localhost/in").is_ok());
        assert!(check_endpoint("http://logs.example.com/in").is_err());
        assert!(check_endpoint("http://10.0.0.1/in").is_err());
        assert!(check_endpoint("ftp://127.0.0.1/in").is_err());
        assert!(check_endpoint("not a url").is_err());
    }

    #[test]
    fn formats_and_categories() {
        let a = LogEvent { log_id: "1".into(), event_type: "fp".into(), ..Default::default() };
        let b = LogEvent { log_id: "2".into(), event_type: "sapi".into(), ..Default::default() };
        let lines = String::from_utf8(bodies("JSONLINES", &[&a, &b]).remove(0)).unwrap();
        let parsed: Vec<Value> = lines.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!((parsed[0]["log_id"].as_str(), parsed[1]["data"]["type"].as_str()), (Some("1"), Some("sapi")));
        let array: Value = serde_json::from_slice(&bodies("JSONARRAY", &[&a, &b])[0]).unwrap();
        assert_eq!(array.as_array().unwrap().len(), 2);
        assert_eq!(bodies("JSONOBJECT", &[&a, &b]).len(), 2);
        assert_eq!(category("fp"), "auth.login.fail");
        assert_eq!(category("seccft"), "auth.token_exchange.success");
        assert_eq!(category("sapi"), "management.success");
        assert_eq!(category("nope"), "other");
        assert!(
            ["fp", "s", "slo", "seccft", "fapi", "scp", "api_limit", "actions_execution_failed"]
                .iter()
                .all(|c| CATEGORIES.contains(&category(c)))
        );
    }
}
