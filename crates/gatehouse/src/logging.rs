//! The log: one JSON object per line on stdout, `RUST_LOG` filtering (default `info`).
//!
//! A line per request is on every hot path, and tracing-subscriber's JSON formatter plus a
//! `write` per line took a quarter of the idp's JWKS throughput. So [`JsonLines`] formats an
//! event straight into the line (same shape: `timestamp`, `level`, `fields`, `target`), and
//! [`BatchedStdout`] hands the lines to auth0-client's batch, which a thread writes every 50 ms
//! (or at 64 KB), one `write` per batch. Warnings and errors are written at once, with whatever
//! came before them.

use std::io::Write;
use std::time::{SystemTime, UNIX_EPOCH};
use tracing::field::{Field, Visit};
use tracing::{Event, Level, Metadata, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, MakeWriter};
use tracing_subscriber::registry::LookupSpan;

/// The log, and traces when the `OTEL_*` variables ask for them (crate `telemetry`); `service`
/// names this process in its traces.
pub fn init(service: &str) {
    use tracing_subscriber::layer::SubscriberExt;
    use tracing_subscriber::util::SubscriberInitExt;
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    match telemetry::layer(service) {
        // Traces off: the log alone, its filter global, so span sites for traces are never
        // enabled and cost nothing.
        None => {
            tracing_subscriber::fmt().event_format(JsonLines).with_env_filter(filter).with_writer(BatchedStdout).init()
        }
        // Traces on: the log's filter applies to the log only, and the trace layer sees its spans.
        Some(traces) => {
            let log = tracing_subscriber::fmt::layer().event_format(JsonLines).with_writer(BatchedStdout);
            tracing_subscriber::registry().with(tracing_subscriber::Layer::with_filter(log, filter)).with(traces).init()
        }
    }
}

/// `{"timestamp":"2026-11-27T03:50:18.000624Z","level":"INFO","fields":{…},"target":"…"}`.
pub struct JsonLines;

impl<S, N> FormatEvent<S, N> for JsonLines
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(&self, _: &FmtContext<'_, S, N>, mut w: Writer<'_>, event: &Event<'_>) -> std::fmt::Result {
        let meta = event.metadata();
        w.write_str("{\"timestamp\":\"")?;
        write_timestamp(&mut w, SystemTime::now())?;
        write!(w, "\",\"level\":\"{}\",\"fields\":{{", meta.level())?;
        let mut fields = Fields { w: &mut w, first: true, result: Ok(()) };
        event.record(&mut fields);
        fields.result?;
        w.write_str("},\"target\":")?;
        write_json_str(&mut w, meta.target())?;
        w.write_str("}\n")
    }
}

struct Fields<'a, 'w> {
    w: &'a mut Writer<'w>,
    first: bool,
    result: std::fmt::Result,
}

impl Fields<'_, '_> {
    fn field(&mut self, field: &Field, value: impl FnOnce(&mut Writer<'_>) -> std::fmt::Result) {
        if self.result.is_err() {
            return;
        }
        let sep = if std::mem::take(&mut self.first) { "" } else { "," };
        self.result = self
            .w
            .write_str(sep)
            .and_then(|()| write_json_str(self.w, field.name()))
            .and_then(|()| self.w.write_char(':'))
            .and_then(|()| value(self.w));
    }
}

impl Visit for Fields<'_, '_> {
    fn record_str(&mut self, field: &Field, value: &str) {
        self.field(field, |w| write_json_str(w, value));
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.field(field, |w| write!(w, "{value}"));
    }
    fn record_f64(&mut self, field: &Field, value: f64) {
        if value.is_finite() {
            self.field(field, |w| write!(w, "{value}"));
        } else {
            self.field(field, |w| write_json_str(w, &value.to_string()));
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        // `%value` fields (Display) arrive here too, already wrapped. Escaped as they are
        // written, so a field costs no string of its own.
        self.field(field, |w| {
            w.write_char('"')?;
            std::fmt::Write::write_fmt(&mut JsonEscaped(w), format_args!("{value:?}"))?;
            w.write_char('"')
        });
    }
}

/// Writes what it is given JSON-escaped (the inside of a JSON string).
struct JsonEscaped<'a, W>(&'a mut W);

impl<W: std::fmt::Write> std::fmt::Write for JsonEscaped<'_, W> {
    fn write_str(&mut self, s: &str) -> std::fmt::Result {
        write_json_str_body(self.0, s)
    }
}

/// A JSON string: quotes, backslashes and control characters escaped, the rest as it is.
fn write_json_str(w: &mut impl std::fmt::Write, s: &str) -> std::fmt::Result {
    w.write_char('"')?;
    write_json_str_body(w, s)?;
    w.write_char('"')
}

/// [`write_json_str`] without the quotes.
fn write_json_str_body(w: &mut impl std::fmt::Write, s: &str) -> std::fmt::Result {
    let mut start = 0;
    for (i, c) in s.char_indices() {
        let escape = match c {
            '"' => "\\\"",
            '\\' => "\\\\",
            '\n' => "\\n",
            '\r' => "\\r",
            '\t' => "\\t",
            c if (c as u32) < 0x20 => "",
            _ => continue,
        };
        w.write_str(&s[start..i])?;
        if escape.is_empty() {
            write!(w, "\\u{:04x}", c as u32)?;
        } else {
            w.write_str(escape)?;
        }
        start = i + c.len_utf8();
    }
    w.write_str(&s[start..])
}

/// RFC 3339 in UTC with microseconds.
fn write_timestamp(w: &mut impl std::fmt::Write, now: SystemTime) -> std::fmt::Result {
    let since = now.duration_since(UNIX_EPOCH).unwrap_or_default();
    let secs = since.as_secs();
    let (days, rem) = ((secs / 86_400) as i64, secs % 86_400);
    let (year, month, day) = idp::util::civil_from_days(days);
    write!(
        w,
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}.{:06}Z",
        rem / 3600,
        rem / 60 % 60,
        rem % 60,
        since.subsec_micros()
    )
}

/// The `MakeWriter` for `tracing_subscriber::fmt`: lines go into auth0-client's batch, so a
/// process running both (`gatehouse up`) has one log writer and its lines stay in order.
pub struct BatchedStdout;

/// One event's writer: the formatter hands it the whole line in one `write`.
pub struct Line {
    urgent: bool,
}

impl<'a> MakeWriter<'a> for BatchedStdout {
    type Writer = Line;

    fn make_writer(&'a self) -> Line {
        Line { urgent: false }
    }

    fn make_writer_for(&'a self, meta: &Metadata<'_>) -> Line {
        // In tracing's order the more verbose levels are the greater ones.
        Line { urgent: *meta.level() <= Level::WARN }
    }
}

impl Write for Line {
    fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
        auth0_client::logging::emit(bytes, self.urgent);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes out every line still waiting (at exit).
pub fn flush() {
    auth0_client::logging::flush();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;
    use std::time::Duration;

    #[test]
    fn timestamps_are_rfc3339_utc() {
        let at = |secs: u64, micros: u64| {
            let mut s = String::new();
            write_timestamp(&mut s, UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_micros(micros)).unwrap();
            s
        };
        assert_eq!(at(0, 0), "1970-01-01T00:00:00.000000Z");
        assert_eq!(at(951_782_400, 7), "2000-02-29T00:00:00.000007Z");
        assert_eq!(at(1_795_749_722, 208_000), "2026-11-27T03:22:02.208000Z");
        assert_eq!(at(4_107_542_399, 999_999), "2100-02-28T23:59:59.999999Z");
    }

    #[test]
    fn strings_are_escaped_as_json() {
        let mut s = String::new();
        write_json_str(&mut s, "a\"b\\c\nd\u{1}é").unwrap();
        assert_eq!(s, r#""a\"b\\c\nd\u0001é""#);
        assert_eq!(serde_json::from_str::<String>(&s).unwrap(), "a\"b\\c\nd\u{1}é");
    }

    #[test]
    fn events_become_one_json_object_per_line() {
        #[derive(Clone, Default)]
        struct Capture(std::sync::Arc<Mutex<Vec<u8>>>);
        impl Write for Capture {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(b);
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let capture = Capture::default();
        let sink = capture.clone();
        let subscriber = tracing_subscriber::fmt().event_format(JsonLines).with_writer(move || sink.clone()).finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::info!(target: "gatehouse::http", route = "/x", status = 200u16, latency_ms = 1.5, ok = true, "request");
            tracing::warn!(error = %"bad \"thing\"\n\u{1}", detail = ?["a\\b"], "failed");
        });
        let text = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
        let lines: Vec<serde_json::Value> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert_eq!(lines[0]["level"], "INFO");
        assert_eq!(lines[0]["target"], "gatehouse::http");
        assert_eq!(
            lines[0]["fields"],
            serde_json::json!({ "message": "request", "route": "/x", "status": 200, "latency_ms": 1.5, "ok": true })
        );
        assert_eq!(lines[1]["fields"]["error"], "bad \"thing\"\n\u{1}");
        assert_eq!(lines[1]["fields"]["detail"], r#"["a\\b"]"#, "Debug output, escaped");
        assert!(lines[0]["timestamp"].as_str().unwrap().ends_with('Z'));
    }
}
