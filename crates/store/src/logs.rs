//! Tenant log events (what Auth0 calls logs: `GET /api/v2/logs`): the typed record, the search
//! over them ([`query`]), and [`LogStore`], the port the idp writes and reads them through.
//!
//! Events are written in batches by the idp's recorder, never one statement per request, and
//! read by search: a query over the log's own fields, newest or oldest first by `log_id`
//! (which orders as `date` does), or from a checkpoint. Retention removes the oldest in bounded
//! batches ([`LogStore::purge_logs`]).
//!
//! Log streams ([`LogStream`], `/api/v2/log-streams`) live here too: each is a configuration
//! and a cursor, the `log_id` of the last event it delivered (or skipped), so a restarted node
//! resumes where the stream was.

pub mod query;

pub use query::{LogField, LogQuery, Match, parse_log_query};

use crate::{Millis, Result};
use async_trait::async_trait;
use serde::{Deserialize, Serialize};

/// One tenant log event, in Auth0's fields. `details` is JSON chosen by the idp; no field ever
/// holds a password, code, token or secret (the idp's builders never take one).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogEvent {
    /// Unique, and ordered as the events were recorded (see the idp's recorder).
    pub log_id: String,
    pub date: Millis,
    /// Auth0's event type code (`s`, `fp`, `seccft`, `sapi`, …).
    pub event_type: String,
    pub description: Option<String>,
    pub client_id: Option<String>,
    pub client_name: Option<String>,
    pub ip: Option<String>,
    pub user_agent: Option<String>,
    pub user_id: Option<String>,
    pub user_name: Option<String>,
    pub connection: Option<String>,
    pub connection_id: Option<String>,
    pub strategy: Option<String>,
    pub strategy_type: Option<String>,
    pub audience: Option<String>,
    pub scope: Option<String>,
    pub hostname: Option<String>,
    pub details: Option<serde_json::Value>,
}

/// How a search pages.
#[derive(Debug, Clone, PartialEq)]
pub enum LogPaging {
    /// Auth0's search criteria: `page` (0-based) of `per_page`, within the first
    /// [`MAX_SEARCH_RESULTS`]; `totals` also counts the matches (up to that bound).
    Page { page: u32, per_page: u32, totals: bool, newest_first: bool },
    /// Auth0's checkpoint: `take` events written after `from` (all when `None`), in the order
    /// they were committed (which, across nodes, is not always `log_id` order).
    From { from: Option<String>, take: u32 },
}

/// One search of the tenant log.
#[derive(Debug, Clone, PartialEq)]
pub struct LogSearch {
    pub query: LogQuery,
    pub paging: LogPaging,
}

/// A page of events and, when asked, how many matched (at most [`MAX_SEARCH_RESULTS`]).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct LogPage {
    pub events: Vec<LogEvent>,
    pub total: Option<u64>,
}

/// Auth0 pages through at most this many events of one search (checkpoints are unbounded).
pub const MAX_SEARCH_RESULTS: u64 = 1000;

/// A log stream: Auth0's `http` type, pushing events to an endpoint. What the Management API
/// reads and writes is [`LogStreamConfig`]; the rest is the delivery's bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct LogStream {
    /// `lst_…`.
    pub id: String,
    pub config: LogStreamConfig,
    /// `active`, `paused` or `suspended` (by the delivery, after failing for too long).
    pub status: String,
    /// The `Authorization` header value, sealed by the idp (never stored or shown in clear).
    pub authorization_sealed: Option<String>,
    /// The log position ([`LogStore::logs_after`]) of the last event delivered or skipped by
    /// the filters; the delivery resumes after it. Set to the end of the log when the stream is
    /// created.
    pub cursor: i64,
    /// When the delivery began failing without a success since; `None` while it succeeds.
    pub failing_since: Option<Millis>,
    pub created_at: Millis,
    pub updated_at: Millis,
    /// The delivery lease: the node delivering this stream, until when (its clock, ms). Only
    /// [`LogStore::claim_log_stream`] sets it; a stream is created without one.
    pub lease_owner: Option<String>,
    pub lease_until: Option<Millis>,
}

/// A log stream's settings, as Auth0's API names them (without the authorization).
#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
pub struct LogStreamConfig {
    pub name: String,
    #[serde(rename = "type")]
    pub stream_type: String,
    #[serde(rename = "httpEndpoint")]
    pub endpoint: String,
    /// `JSONLINES`, `JSONARRAY` or `JSONOBJECT`.
    #[serde(rename = "httpContentFormat")]
    pub content_format: String,
    #[serde(rename = "httpContentType")]
    pub content_type: String,
    /// Auth0's category filter names (`auth.login.fail`, …); empty: every event.
    #[serde(default)]
    pub filters: Vec<String>,
}

/// Where tenant log events are kept.
#[async_trait]
pub trait LogStore: Send + Sync {
    /// Adds events in one transaction; an event whose `log_id` is already stored is skipped,
    /// so a batch retried after an unclear failure does not duplicate anything.
    async fn append_logs(&self, events: &[LogEvent]) -> Result<()>;
    async fn log_event(&self, log_id: &str) -> Result<Option<LogEvent>>;
    async fn search_logs(&self, search: &LogSearch) -> Result<LogPage>;
    /// Deletes at most `limit` of the oldest events dated before `before`; returns how many.
    async fn purge_logs(&self, before: Millis, limit: u32) -> Result<u64>;
    /// Events in the order their writes committed, after `position` (0: from the first), each
    /// with its own position. Positions are given under a lock that `append_logs` holds until
    /// its commit, so an event never becomes visible behind one already read: a reader that
    /// goes on after the last position it read misses nothing, whatever the `log_id`s (which
    /// two nodes' clocks and writes can interleave).
    async fn logs_after(&self, position: i64, take: u32) -> Result<Vec<(i64, LogEvent)>>;
    /// The position of the end of the log (`after: None`), or one before every event whose
    /// `log_id` sorts after `after` (the end when there is none).
    async fn log_position(&self, after: Option<&str>) -> Result<i64>;

    /// Every log stream, oldest first.
    async fn log_streams(&self) -> Result<Vec<LogStream>>;
    async fn log_stream(&self, id: &str) -> Result<Option<LogStream>>;
    /// Adds a stream; `Conflict` when its id is taken.
    async fn create_log_stream(&self, stream: &LogStream) -> Result<()>;
    /// Replaces a stream's settings, status, authorization and `failing_since`, never its
    /// cursor (which only the delivery moves); `false` when there is no such stream.
    async fn update_log_stream(&self, stream: &LogStream) -> Result<bool>;
    async fn delete_log_stream(&self, id: &str) -> Result<bool>;
    /// Takes or renews the delivery lease of stream `id` for `owner` until `until`: granted
    /// when nobody holds it, `owner` already does, or the holder's lease ended by `now`. One
    /// conditional `UPDATE`, so of nodes claiming at once exactly one wins; `false` when not
    /// granted (or there is no such stream).
    async fn claim_log_stream(&self, id: &str, owner: &str, now: Millis, until: Millis) -> Result<bool>;
    /// The delivery's progress, written only while `owner` holds the lease (expired or not, as
    /// long as nobody took it over), so a node that lost the stream can neither move the cursor
    /// back nor record a failure over the new holder's work: the new cursor and failure start.
    /// With `suspend`, an active stream becomes `suspended` (a paused one stays paused).
    /// `false` when nothing was written (the lease is someone else's, or the stream is gone).
    async fn log_stream_progress(
        &self,
        id: &str,
        owner: &str,
        cursor: i64,
        failing_since: Option<Millis>,
        suspend: bool,
    ) -> Result<bool>;
}
