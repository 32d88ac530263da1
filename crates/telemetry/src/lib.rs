//! Observability for the gateway: Prometheus metrics and OpenTelemetry traces.
//!
//! - [`prometheus`] installs the process's metrics recorder (the `metrics` facade with its
//!   Prometheus exporter) and renders `/metrics`; every other crate records through the
//!   facade.
//! - [`gen_ai`] holds the per-provider, per-model series of the data plane. Their handles
//!   are registered once per (surface, provider, model) and cached in a copy-on-write map,
//!   so the request path updates atomics without taking a lock or allocating.
//! - [`traces`] exports one server span per inference request over OTLP, with the
//!   OpenTelemetry GenAI attributes, when the standard `OTEL_*` variables ask for it; off,
//!   a request pays one `Option` check.

pub mod gen_ai;
pub mod names;
pub mod prometheus;
pub mod traces;

pub use gen_ai::{Call, GenAiMetrics, OpenStream, SeriesPolicy, Target};
pub use opentelemetry::KeyValue;
pub use opentelemetry::trace::SpanKind;
pub use traces::{RequestSpan, SpanEnd, Tracing, TracingError};
