//! OpenTelemetry traces over OTLP/HTTP, off unless the standard variables ask for them:
//! `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` or `OTEL_EXPORTER_OTLP_ENDPOINT` set, and neither
//! `OTEL_SDK_DISABLED=true` nor `OTEL_TRACES_EXPORTER=none`. The exporter reads the rest itself
//! (`OTEL_EXPORTER_OTLP_PROTOCOL` `http/protobuf` or `http/json`, `…_HEADERS`, `…_TIMEOUT`);
//! `OTEL_SERVICE_NAME` and `OTEL_RESOURCE_ATTRIBUTES` describe the service.
//!
//! The spans are `tracing` spans at TRACE level with the target [`TARGET`]. The log never
//! enables TRACE by default, so with traces off no layer wants them: each span site costs one
//! check of a cached "never" and its fields are not even evaluated. With traces on, only the
//! OpenTelemetry layer sees them (log lines are not exported).
//!
//! W3C trace context: [`headers`] gives the `traceparent` of the current span for an outgoing
//! request; [`adopt`] makes an incoming request's span the caller's child.
//!
//! Crates: `opentelemetry`, `opentelemetry_sdk` and `opentelemetry-otlp` are the project's own
//! Rust implementation (the OTLP exporter over the reqwest blocking client the SDK's batch
//! thread needs, HTTP only: no gRPC stack), and `tracing-opentelemetry` (the `tokio-rs`
//! organisation's) turns the `tracing` spans the code already speaks into OpenTelemetry spans.

use opentelemetry::propagation::TextMapPropagator;
use opentelemetry::trace::TracerProvider as _;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::SdkTracerProvider;
use std::sync::OnceLock;
use tracing::Subscriber;
use tracing_opentelemetry::OpenTelemetrySpanExt;
use tracing_subscriber::Layer;
use tracing_subscriber::registry::LookupSpan;

/// The target of every span meant for traces. Crates that do not link this one (the store)
/// spell it out.
pub const TARGET: &str = "gatehouse::trace";

static PROVIDER: OnceLock<SdkTracerProvider> = OnceLock::new();

/// Whether the environment asks for traces.
pub fn wanted() -> bool {
    let var = |k: &str| std::env::var(k).ok().filter(|v| !v.trim().is_empty());
    let endpoint = var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").or_else(|| var("OTEL_EXPORTER_OTLP_ENDPOINT"));
    let disabled = var("OTEL_SDK_DISABLED").is_some_and(|v| v.trim().eq_ignore_ascii_case("true"));
    let none = var("OTEL_TRACES_EXPORTER").is_some_and(|v| v.trim().eq_ignore_ascii_case("none"));
    endpoint.is_some() && !disabled && !none
}

/// The layer that exports this process's spans, when the environment asks for traces (see the
/// crate's doc); `service` names the service unless `OTEL_SERVICE_NAME` does. Call once.
pub fn layer<S>(service: &str) -> Option<Box<dyn Layer<S> + Send + Sync>>
where
    S: Subscriber + for<'a> LookupSpan<'a> + Send + Sync,
{
    if !wanted() {
        return None;
    }
    let exporter = match opentelemetry_otlp::SpanExporter::builder().with_http().build() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("traces off: the OTLP exporter could not be built: {e}");
            return None;
        }
    };
    let mut resource = opentelemetry_sdk::Resource::builder();
    if std::env::var_os("OTEL_SERVICE_NAME").is_none() {
        resource = resource.with_service_name(service.to_owned());
    }
    let provider = SdkTracerProvider::builder().with_batch_exporter(exporter).with_resource(resource.build()).build();
    let tracer = provider.tracer("gatehouse");
    let _ = PROVIDER.set(provider);
    let only_ours = tracing_subscriber::filter::filter_fn(|meta| meta.target() == TARGET);
    Some(Box::new(tracing_opentelemetry::layer().with_tracer(tracer).with_filter(only_ours)))
}

/// Sends what is buffered and stops the exporter (at exit).
pub fn shutdown() {
    if let Some(provider) = PROVIDER.get() {
        let _ = provider.shutdown();
    }
}

fn on() -> bool {
    PROVIDER.get().is_some()
}

/// The W3C trace-context headers (`traceparent`) of the current span, for an outgoing
/// request; empty with traces off.
pub fn headers() -> http::HeaderMap {
    let mut headers = http::HeaderMap::new();
    if on() {
        let cx = tracing::Span::current().context();
        TraceContextPropagator::new().inject_context(&cx, &mut opentelemetry_http::HeaderInjector(&mut headers));
    }
    headers
}

/// Makes `span` a child of the trace an incoming request's `traceparent` names, if any.
pub fn adopt(span: &tracing::Span, headers: &http::HeaderMap) {
    if !on() || span.is_disabled() || !headers.contains_key("traceparent") {
        return;
    }
    let cx = TraceContextPropagator::new().extract(&opentelemetry_http::HeaderExtractor(headers));
    let _ = span.set_parent(cx);
}
