//! One JSON object per line on stdout in the original's format (pino-style, as Mia's glogger
//! writes it): `level` as a number (trace 10 … panic 70), `time` in epoch milliseconds, `msg`,
//! `reqId` inside a request, then the event's fields. No HTML escaping.
//!
//! `tracing` events go through [`JsonLayer`]; the per-request lines (`incoming request` at
//! trace, `request completed` at info, with glogger's nested `http`/`url`/`host` objects) are
//! written by [`request_log`].

use crate::config::LogLevel;
use axum::extract::{Request, State};
use axum::http::HeaderMap;
use axum::middleware::Next;
use axum::response::Response;
use serde_json::{Map, Value, json};
use std::io::Write;
use std::sync::Arc;
use std::sync::{Mutex, OnceLock};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::Layer;
use tracing_subscriber::layer::Context;
use tracing_subscriber::registry::LookupSpan;

static LEVEL: OnceLock<LogLevel> = OnceLock::new();

/// The configured level (info until [`init`] runs).
pub fn level() -> LogLevel {
    *LEVEL.get().unwrap_or(&LogLevel::Info)
}

pub fn enabled(l: LogLevel) -> bool {
    l >= level()
}

fn now_ms() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as i64).unwrap_or(0)
}

/// Writes one line: `{"level":…,"time":…,<fields>,"msg":…}`.
pub fn write(level: LogLevel, msg: &str, fields: Map<String, Value>) {
    if !enabled(level) {
        return;
    }
    let mut line = Map::with_capacity(fields.len() + 3);
    line.insert("level".into(), json!(level as u8));
    line.insert("time".into(), json!(now_ms()));
    for (k, v) in fields {
        line.insert(k, v);
    }
    line.insert("msg".into(), json!(msg));
    let mut bytes = serde_json::to_vec(&Value::Object(line)).unwrap_or_default();
    bytes.push(b'\n');
    emit(&bytes, level >= LogLevel::Error);
}

/// Lines waiting for the writer thread: one `write` per batch instead of one per request (the
/// request log is on the hot path). Errors and worse are written at once.
static BUFFER: Mutex<Vec<u8>> = Mutex::new(Vec::new());
static WRITER: OnceLock<()> = OnceLock::new();
const FLUSH_EVERY: Duration = Duration::from_millis(50);
const FLUSH_AT: usize = 64 * 1024;

/// Queues one whole line for the writer thread; an urgent one is written at once, with all the
/// lines before it. Public so that a process hosting this service (`gatehouse up`) writes its
/// own log through the same batch: one writer, lines in order.
pub fn emit(line: &[u8], urgent: bool) {
    WRITER.get_or_init(|| {
        let _ = std::thread::Builder::new().name("log-writer".into()).spawn(|| {
            loop {
                std::thread::sleep(FLUSH_EVERY);
                flush();
            }
        });
    });
    let full = {
        let mut b = BUFFER.lock().unwrap_or_else(|e| e.into_inner());
        b.extend_from_slice(line);
        b.len() >= FLUSH_AT
    };
    if urgent || full {
        flush();
    }
}

/// Writes out every buffered line (also called at exit).
pub fn flush() {
    let pending = std::mem::take(&mut *BUFFER.lock().unwrap_or_else(|e| e.into_inner()));
    if !pending.is_empty() {
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(&pending);
        let _ = out.flush();
    }
}

/// Installs the JSON layer as the global `tracing` subscriber (once; later calls do nothing).
/// With the `OTEL_*` variables asking for traces, the trace layer (crate `telemetry`) goes
/// beside it, the JSON layer then filtered on its own so it never disables the spans.
pub fn init(level: LogLevel) {
    let _ = LEVEL.set(level);
    use tracing_subscriber::layer::SubscriberExt;
    let Some(traces) = telemetry::layer("auth0-client") else {
        let subscriber = tracing_subscriber::registry().with(JsonLayer);
        let _ = tracing::subscriber::set_global_default(subscriber);
        return;
    };
    let log = JsonLayer.with_filter(tracing_subscriber::filter::filter_fn(|m| enabled(tracing_level(m.level()))));
    let subscriber = tracing_subscriber::registry().with(log).with(traces);
    let _ = tracing::subscriber::set_global_default(subscriber);
}

fn tracing_level(l: &tracing::Level) -> LogLevel {
    match *l {
        tracing::Level::TRACE => LogLevel::Trace,
        tracing::Level::DEBUG => LogLevel::Debug,
        tracing::Level::INFO => LogLevel::Info,
        tracing::Level::WARN => LogLevel::Warn,
        tracing::Level::ERROR => LogLevel::Error,
    }
}

tokio::task_local! {
    /// The request id of the request being served, for every line logged while serving it.
    static REQ_ID: Arc<str>;
}

struct Collect<'a>(&'a mut Map<String, Value>, Option<&'a mut String>);

impl Visit for Collect<'_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message"
            && let Some(m) = self.1.as_deref_mut()
        {
            *m = value.to_string();
            return;
        }
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        self.0.insert(field.name().to_string(), json!(value));
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        self.record_str(field, &format!("{value:?}"));
    }
}

/// The `tracing` side: events become pino-style lines, with their spans' fields (`reqId`).
pub struct JsonLayer;

impl<S: Subscriber + for<'a> LookupSpan<'a>> Layer<S> for JsonLayer {
    fn enabled(&self, metadata: &tracing::Metadata<'_>, _: Context<'_, S>) -> bool {
        enabled(tracing_level(metadata.level()))
    }

    fn on_event(&self, event: &Event<'_>, _: Context<'_, S>) {
        let level = tracing_level(event.metadata().level());
        let mut fields = Map::new();
        if let Ok(id) = REQ_ID.try_with(|id| id.clone()) {
            fields.insert("reqId".into(), json!(&*id));
        }
        let mut msg = String::new();
        event.record(&mut Collect(&mut fields, Some(&mut msg)));
        write(level, &msg, fields);
    }
}

fn header<'a>(h: &'a HeaderMap, name: &str) -> &'a str {
    h.get(name).and_then(|v| v.to_str().ok()).unwrap_or("")
}

/// A JSON string literal (serde_json's escaping: no HTML escaping).
fn push_str(out: &mut String, s: &str) {
    match serde_json::to_string(s) {
        Ok(q) => out.push_str(&q),
        Err(_) => out.push_str("\"\""),
    }
}

/// Per-request logging (status routes are left out, as the original allows), and the request
/// id: `x-request-id` when sent, else a fresh UUID, kept in a task-local so handlers' own log
/// lines carry it too. Lines follow glogger's nested `http`/`url`/`host` layout.
pub async fn request_log(State(prefix): State<std::sync::Arc<str>>, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    if path.strip_prefix(&*prefix).unwrap_or(path).starts_with("/-/") {
        return next.run(req).await;
    }
    let started = Instant::now();
    let headers = req.headers();
    let req_id: Arc<str> = match header(headers, "x-request-id") {
        "" => crate::util::uuid_v4().into(),
        id => id.chars().take(128).collect::<String>().into(),
    };
    let info = enabled(LogLevel::Info);
    // `"reqId":…,"host":{…},"url":{…},"http":{"request":{…}` — shared by both lines.
    let mut common = String::new();
    if info || enabled(LogLevel::Trace) {
        common.reserve(256);
        common.push_str("\"reqId\":");
        push_str(&mut common, &req_id);
        common.push_str(",\"host\":{\"hostname\":");
        push_str(&mut common, header(headers, "host"));
        common.push_str(",\"forwardedHost\":");
        push_str(&mut common, header(headers, "x-forwarded-host"));
        common.push_str(",\"ip\":");
        push_str(&mut common, header(headers, "x-forwarded-for"));
        common.push_str("},\"url\":{\"path\":");
        push_str(&mut common, path);
        common.push_str("},\"http\":{\"request\":{\"method\":");
        push_str(&mut common, req.method().as_str());
        common.push_str(",\"userAgent\":{\"original\":");
        push_str(&mut common, header(headers, "user-agent"));
        common.push_str("}}");
    }
    if enabled(LogLevel::Trace) {
        let line = format!("{{\"level\":10,\"time\":{},{common}}},\"msg\":\"incoming request\"}}\n", now_ms());
        emit(line.as_bytes(), false);
    }
    // The request's span in traces (crate `telemetry`): never enabled with traces off.
    let span = tracing::trace_span!(target: telemetry::TARGET, "request",
        otel.name = format!("{} {path}", req.method()), otel.kind = "server",
        http.request.method = req.method().as_str(), http.response.status_code = tracing::field::Empty);
    telemetry::adopt(&span, req.headers());
    let res = tracing::Instrument::instrument(REQ_ID.scope(req_id, next.run(req)), span.clone()).await;
    span.record("http.response.status_code", res.status().as_u16());
    if info {
        let bytes = res
            .headers()
            .get(axum::http::header::CONTENT_LENGTH)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.parse::<u64>().ok())
            .or_else(|| axum::body::HttpBody::size_hint(res.body()).exact())
            .unwrap_or(0);
        let line = format!(
            "{{\"level\":30,\"time\":{},{common},\"response\":{{\"statusCode\":{},\"body\":{{\"bytes\":{bytes}}}}}}},\"responseTime\":{},\"msg\":\"request completed\"}}\n",
            now_ms(),
            res.status().as_u16(),
            started.elapsed().as_secs_f64() * 1000.0
        );
        emit(line.as_bytes(), false);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pending() -> usize {
        BUFFER.lock().unwrap().len()
    }

    // One test: the buffer is process-wide, so parallel tests would see each other's lines.
    #[test]
    fn lines_wait_for_the_batch_and_urgent_ones_do_not() {
        flush();
        emit(b"{\"line\":1}\n", false);
        // Pending, unless the writer thread's 50 ms tick came in between.
        assert!(pending() == 11 || pending() == 0);
        emit(b"{\"line\":2}\n", true);
        assert_eq!(pending(), 0, "an urgent line flushes what came before it");
    }
}
