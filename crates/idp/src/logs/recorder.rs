//! The recorder: events go into a bounded in-memory queue and one background task writes them
//! to the store in batches, so a login never waits for its log line.
//!
//! - **Batches**: from the first event of a batch the task gathers more for at most [`LINGER`]
//!   (or until [`BATCH`] are queued) and writes them in one transaction, so the number of
//!   writes does not grow with the number of requests: at most one a second when quiet, one per
//!   [`BATCH`] events under load. An event is in the store within about a second.
//! - **Full queue**: past [`CAPACITY`] waiting events (the store is down or far too slow), new
//!   events are dropped, counted in `gatehouse_log_events_dropped_total` and warned about; a
//!   login is never slowed or failed for its log line.
//! - **Store failures**: a batch is retried three times (backoff 0.2 s, 1 s, 5 s; the same
//!   `log_id`s, so a write that did land is not duplicated), then dropped and counted.
//! - **Clean stop**: [`Recorder::flush`] waits until everything queued before it is written.
//!   A crash loses what was queued and not yet written.
//! - **Order**: `log_id`s are given when a batch is written: the node's clock, then a per-node
//!   sequence, then a per-node random part, all digits, so ids sort as they were written on
//!   each node (what a checkpoint reader relies on) and never collide across nodes.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use store::Millis;
use store::{LogEvent, Store};
use tokio::sync::{mpsc, oneshot};

/// Events waiting to be written, at most.
pub const CAPACITY: usize = 16_384;
/// Events per write, at most.
pub const BATCH: usize = 500;
/// How long the first event of a batch waits for company.
pub const LINGER: Duration = Duration::from_secs(1);
const RETRIES: [Duration; 3] = [Duration::from_millis(200), Duration::from_secs(1), Duration::from_secs(5)];

enum Msg {
    /// Boxed: the queue's slots stay small while events are a few hundred bytes.
    Event(Box<LogEvent>),
    Flush(oneshot::Sender<()>),
}

/// Hands events to the writer task. Dropping it (with the idp) ends the task once the queue is
/// written.
pub struct Recorder {
    tx: Option<mpsc::Sender<Msg>>,
    dropped: AtomicU64,
}

impl Recorder {
    /// A recorder writing into `store`'s log; `enabled: false` records nothing.
    pub fn start(store: Arc<dyn Store>, enabled: bool) -> Recorder {
        if !enabled {
            return Recorder { tx: None, dropped: AtomicU64::new(0) };
        }
        let (tx, rx) = mpsc::channel(CAPACITY);
        tokio::spawn(write_batches(store, rx));
        Recorder { tx: Some(tx), dropped: AtomicU64::new(0) }
    }

    /// Queues an event without waiting; when the queue is full it is dropped and counted.
    pub fn record(&self, event: LogEvent) {
        let Some(tx) = &self.tx else { return };
        if let Err(mpsc::error::TrySendError::Full(_)) = tx.try_send(Msg::Event(Box::new(event))) {
            let dropped = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            metrics::counter!("gatehouse_log_events_dropped_total").increment(1);
            // The first, then every thousandth: a warning per dropped event would flood the log
            // exactly when the store is struggling.
            if dropped % 1000 == 1 {
                tracing::warn!(dropped, "tenant log queue full: events dropped");
            }
        }
    }

    /// Waits (at most `timeout`) until every event queued before this call is in the store.
    /// `false` when the time ran out or the writer is gone.
    pub async fn flush(&self, timeout: Duration) -> bool {
        let Some(tx) = &self.tx else { return true };
        let (done, written) = oneshot::channel();
        let flushed = async { tx.send(Msg::Flush(done)).await.is_ok() && written.await.is_ok() };
        tokio::time::timeout(timeout, flushed).await.unwrap_or(false)
    }
}

async fn write_batches(store: Arc<dyn Store>, mut rx: mpsc::Receiver<Msg>) {
    let mut ids = LogIds::new();
    let mut msgs = Vec::with_capacity(BATCH);
    let mut events = Vec::with_capacity(BATCH);
    while rx.recv_many(&mut msgs, BATCH).await > 0 {
        let deadline = tokio::time::Instant::now() + LINGER;
        while msgs.len() < BATCH && !msgs.iter().any(|m| matches!(m, Msg::Flush(_))) {
            let room = BATCH - msgs.len();
            match tokio::time::timeout_at(deadline, rx.recv_many(&mut msgs, room)).await {
                Ok(n) if n > 0 => {}
                // The time is up, or every sender is gone (what was gathered is still written).
                _ => break,
            }
        }
        for msg in msgs.drain(..) {
            match msg {
                Msg::Event(e) => events.push(*e),
                Msg::Flush(done) => {
                    write(&*store, &mut ids, &mut events).await;
                    let _ = done.send(());
                }
            }
        }
        write(&*store, &mut ids, &mut events).await;
    }
}

async fn write(store: &dyn Store, ids: &mut LogIds, events: &mut Vec<LogEvent>) {
    if events.is_empty() {
        return;
    }
    let now = crate::util::now_ms();
    for e in events.iter_mut() {
        e.log_id = ids.next(now);
    }
    let mut result = store.logs().append_logs(events).await;
    for wait in RETRIES {
        if result.is_ok() {
            break;
        }
        tokio::time::sleep(wait).await;
        result = store.logs().append_logs(events).await;
    }
    if let Err(e) = result {
        tracing::error!(error = %e, lost = events.len(), "writing tenant log events failed; batch dropped");
        metrics::counter!("gatehouse_log_events_dropped_total").increment(events.len() as u64);
    }
    events.clear();
}

/// `log_id`s: 56 digits, Auth0's length; they sort by the writing node's clock.
struct LogIds {
    node: u64,
    seq: u64,
}

impl LogIds {
    fn new() -> Self {
        let r = crate::util::random_bytes::<8>();
        LogIds { node: u64::from_be_bytes(r) % 10u64.pow(16), seq: 0 }
    }

    fn next(&mut self, now: Millis) -> String {
        self.seq = (self.seq + 1) % 10u64.pow(17);
        format!("900{:020}{:017}{:016}", now.max(0), self.seq, self.node)
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
        assert_eq!(a.len(), 56);
        assert!(a.bytes().all(|b| b.is_ascii_digit()));
        assert!(a < b && b < c);
    }
}
