//! The recorder: events go into a bounded in-memory buffer and one background task writes them
//! to the store in batches, so a login never waits for its log line.
//!
//! - **The request path** only locks the buffer, pushes the event and unlocks. It wakes the
//!   writer twice per batch at most: when the buffer stops being empty (which starts the
//!   batch's [`LINGER`]) and when it holds [`BATCH`] events, so the writer does not run once
//!   per request as it did behind a channel. (What cost a third of the client-credentials
//!   throughput on one core was not this but the SQLite insert: see `SQLITE_INSERT_ROWS` in the
//!   store's `sql/logs.rs` and `bench/results/2026-12-07-logs-recorder.md`.)
//! - **Batches**: the writer takes everything buffered at once, [`LINGER`] after the first
//!   event or as soon as [`BATCH`] are waiting, and writes it in one transaction per [`BATCH`],
//!   so the number of writes does not grow with the number of requests. An event is in the
//!   store within about a second.
//! - **Full buffer**: past [`CAPACITY`] waiting events (the store is down or far too slow), new
//!   events are dropped, counted in `gatehouse_log_events_dropped_total` and warned about; a
//!   login is never slowed or failed for its log line.
//! - **Store failures**: a batch is retried until it is written (backoff 0.2 s, 1 s, then every
//!   5 s; the same `log_id`s, so a write that did land is not duplicated): a database restart
//!   or a frozen database loses no event. Meanwhile new events wait in the buffer, so what is
//!   held stays bounded by [`CAPACITY`] (plus the batch being retried), and past it they are
//!   dropped as above. Only once the recorder is closed (the idp is going away) is a batch
//!   that still fails after [`RETRIES`] dropped and counted, so a stop never hangs on it.
//! - **Clean stop**: [`Recorder::flush`] waits until everything recorded before it is written.
//!   A crash loses what was buffered and not yet written: at most the last [`LINGER`] and the
//!   batch being written (the fault harness, `crates/gatehouse/tests/it/faults`, checks it).
//! - **Order**: `log_id`s are given when a batch is written: the node's clock, then a per-node
//!   sequence, then a per-node random part, all digits, so ids sort as they were written on
//!   each node and never collide across nodes. Across nodes they interleave by clock, not by
//!   commit: log streams read by the store's commit-ordered position instead.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;
use store::Millis;
use store::{LogEvent, Store};
use tokio::sync::{Notify, oneshot};

/// Events waiting to be written, at most.
pub const CAPACITY: usize = 16_384;
/// Events per write, at most.
pub const BATCH: usize = 500;
/// How long the first event of a batch waits for company.
pub const LINGER: Duration = Duration::from_secs(1);
/// Waits between the attempts at a failing batch; the last repeats until it is written, or
/// until the recorder is closed.
const RETRIES: [Duration; 3] = [Duration::from_millis(200), Duration::from_secs(1), Duration::from_secs(5)];

/// What the request path and the writer share.
struct Shared {
    buffer: Mutex<Buffer>,
    /// Wakes the writer: a batch began or filled up, a flush was asked for, or the recorder
    /// is gone. A wake-up given while the writer is busy is kept for its next wait.
    wake: Notify,
    dropped: AtomicU64,
}

#[derive(Default)]
struct Buffer {
    events: Vec<LogEvent>,
    /// Flushes waiting for everything buffered before them to be written.
    flushes: Vec<oneshot::Sender<()>>,
    /// The recorder was dropped: write what is left and end.
    closed: bool,
}

impl Shared {
    fn buffer(&self) -> MutexGuard<'_, Buffer> {
        // A panic while holding this lock leaves a plain vector behind: still usable.
        self.buffer.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Hands events to the writer task. Dropping it (with the idp) ends the task once the buffer
/// is written.
pub struct Recorder {
    shared: Option<Arc<Shared>>,
}

impl Recorder {
    /// A recorder writing into `store`'s log; `enabled: false` records nothing.
    pub fn start(store: Arc<dyn Store>, enabled: bool) -> Recorder {
        if !enabled {
            return Recorder { shared: None };
        }
        let shared = Arc::new(Shared {
            buffer: Mutex::new(Buffer { events: Vec::with_capacity(BATCH), ..Buffer::default() }),
            wake: Notify::new(),
            dropped: AtomicU64::new(0),
        });
        tokio::spawn(write_batches(store, shared.clone()));
        Recorder { shared: Some(shared) }
    }

    /// Buffers an event without waiting; when the buffer is full it is dropped and counted.
    pub fn record(&self, event: LogEvent) {
        let Some(shared) = &self.shared else { return };
        let waiting = {
            let mut buffer = shared.buffer();
            if buffer.events.len() >= CAPACITY {
                None
            } else {
                buffer.events.push(event);
                Some(buffer.events.len())
            }
        };
        match waiting {
            Some(1 | BATCH) => shared.wake.notify_one(),
            Some(_) => {}
            None => {
                let dropped = shared.dropped.fetch_add(1, Ordering::Relaxed) + 1;
                metrics::counter!("gatehouse_log_events_dropped_total").increment(1);
                // The first, then every thousandth: a warning per dropped event would flood the
                // log exactly when the store is struggling.
                if dropped % 1000 == 1 {
                    tracing::warn!(dropped, "tenant log buffer full: events dropped");
                }
            }
        }
    }

    /// Waits (at most `timeout`) until every event recorded before this call is in the store.
    /// `false` when the time ran out or the writer is gone.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let Some(shared) = &self.shared else { return true };
        let (done, written) = oneshot::channel();
        shared.buffer().flushes.push(done);
        shared.wake.notify_one();
        tokio::time::timeout(timeout, written).await.is_ok_and(|r| r.is_ok())
    }
}

impl Drop for Recorder {
    fn drop(&mut self) {
        if let Some(shared) = &self.shared {
            shared.buffer().closed = true;
            shared.wake.notify_one();
        }
    }
}

async fn write_batches(store: Arc<dyn Store>, shared: Arc<Shared>) {
    let mut ids = LogIds::new();
    let mut events = Vec::with_capacity(BATCH);
    loop {
        shared.wake.notified().await;
        // A batch has begun: give it company for up to LINGER, unless it fills up, a flush is
        // asked for or the recorder goes first (each of which wakes us again).
        let urgent = |b: &Buffer| b.events.len() >= BATCH || !b.flushes.is_empty() || b.closed;
        if !urgent(&shared.buffer()) {
            let _ = tokio::time::timeout(LINGER, shared.wake.notified()).await;
        }
        let (flushes, closed) = {
            let mut buffer = shared.buffer();
            std::mem::swap(&mut buffer.events, &mut events);
            (std::mem::take(&mut buffer.flushes), buffer.closed)
        };
        for batch in events.chunks_mut(BATCH) {
            write(&*store, &shared, &mut ids, batch).await;
        }
        events.clear();
        for done in flushes {
            let _ = done.send(());
        }
        if closed {
            return;
        }
    }
}

async fn write(store: &dyn Store, shared: &Shared, ids: &mut LogIds, events: &mut [LogEvent]) {
    if events.is_empty() {
        return;
    }
    let now = crate::util::now_ms();
    for e in events.iter_mut() {
        e.log_id = ids.next(now);
    }
    let mut failures = 0usize;
    loop {
        let Err(e) = store.logs().append_logs(events).await else { return };
        failures += 1;
        if failures > RETRIES.len() && shared.buffer().closed {
            tracing::error!(error = %e, lost = events.len(), "writing tenant log events failed while stopping; batch dropped");
            metrics::counter!("gatehouse_log_events_dropped_total").increment(events.len() as u64);
            return;
        }
        // The first failure and then every tenth: an outage would otherwise log every 5 s.
        if failures % 10 == 1 {
            tracing::warn!(error = %e, waiting = events.len(), failures, "writing tenant log events failed; retrying");
        }
        tokio::time::sleep(RETRIES[(failures - 1).min(RETRIES.len() - 1)]).await;
    }
}

/// `log_id`s: 56 digits, Auth0's length; they sort by the writing node's clock, and never go
/// back when the clock does (a log stream's cursor would skip what sorts before it).
struct LogIds {
    node: u64,
    seq: u64,
    last: Millis,
}

impl LogIds {
    fn new() -> Self {
        let r = crate::util::random_bytes::<8>();
        LogIds { node: u64::from_be_bytes(r) % 10u64.pow(16), seq: 0, last: 0 }
    }

    fn next(&mut self, now: Millis) -> String {
        self.last = self.last.max(now);
        self.seq = (self.seq + 1) % 10u64.pow(17);
        format!("900{:020}{:017}{:016}", self.last, self.seq, self.node)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn log_ids_sort_as_they_are_given() {
        let mut ids = LogIds::new();
        let a = ids.next(1_700_000_000_000);
        let b = ids.next(1_700_000_000_000);
        let c = ids.next(1_700_000_000_001);
        let d = ids.next(1_699_999_999_000);
        assert_eq!(a.len(), 56);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert!(a < b && b < c && c < d, "a clock going back does not take ids with it");
    }
}
