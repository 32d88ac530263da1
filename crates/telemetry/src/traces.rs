//! OpenTelemetry traces over OTLP, configured by the standard `OTEL_*` variables.
//!
//! Tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
//! is set (and `OTEL_SDK_DISABLED` is not `true`); `OTEL_EXPORTER_OTLP_PROTOCOL` (or its
//! `_TRACES_` form) picks `http/protobuf` (the default) or `grpc`; the sampler, the batch
//! processor, the service name and resource attributes follow their `OTEL_*` variables as
//! the SDK reads them. Off, [`Tracing::start`] returns an empty [`RequestSpan`] and every
//! call on it is a no-op.
//!
//! Each inference request is one `SERVER` span named `{operation} {model}` with the GenAI
//! semantic-convention attributes, a child of the caller's W3C `traceparent` when it sent
//! one; the upstream call and the wait for the invocation record are its children. Prompt
//! and answer text are attached only when the operator opts in *and* the organization keeps
//! content ([`Tracing::captures_content`]).

use std::time::{Duration, SystemTime};

use opentelemetry::propagation::{Extractor, TextMapPropagator};
use opentelemetry::trace::{Span as _, SpanKind, Status, TraceContextExt, Tracer as _};
use opentelemetry::{Context, KeyValue};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::propagation::TraceContextPropagator;
use opentelemetry_sdk::trace::{SdkTracer, SdkTracerProvider, Span};

/// Why tracing could not start.
#[derive(Debug, thiserror::Error)]
pub enum TracingError {
    #[error("unsupported OTLP protocol '{0}' (use http/protobuf or grpc)")]
    Protocol(String),
    #[error("cannot build the OTLP exporter: {0}")]
    Exporter(#[from] opentelemetry_otlp::ExporterBuildError),
}

/// The process's tracer, when tracing is on.
pub struct Tracing {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    propagator: TraceContextPropagator,
    capture_content: bool,
}

impl Tracing {
    /// Tracing as the environment configures it: `Ok(None)` when it is off. Call inside the
    /// Tokio runtime (the gRPC exporter's channel lives on it).
    pub fn from_env(capture_content: bool) -> Result<Option<Self>, TracingError> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.trim().is_empty());
        if var("OTEL_SDK_DISABLED").is_some_and(|v| v.eq_ignore_ascii_case("true")) {
            return Ok(None);
        }
        if var("OTEL_EXPORTER_OTLP_ENDPOINT").is_none()
            && var("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT").is_none()
        {
            return Ok(None);
        }
        let protocol = var("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL")
            .or_else(|| var("OTEL_EXPORTER_OTLP_PROTOCOL"))
            .unwrap_or_else(|| "http/protobuf".to_owned());
        let exporter = match protocol.as_str() {
            "http/protobuf" => opentelemetry_otlp::SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .build()?,
            "grpc" => opentelemetry_otlp::SpanExporter::builder()
                .with_tonic()
                .build()?,
            other => return Err(TracingError::Protocol(other.to_owned())),
        };
        let mut resource = Resource::builder();
        if var("OTEL_SERVICE_NAME").is_none() {
            resource = resource.with_service_name("switchboard");
        }
        let provider = SdkTracerProvider::builder()
            .with_batch_exporter(exporter)
            .with_resource(resource.build())
            .build();
        let tracer = opentelemetry::trace::TracerProvider::tracer(&provider, "switchboard");
        Ok(Some(Self {
            provider,
            tracer,
            propagator: TraceContextPropagator::new(),
            capture_content,
        }))
    }

    /// Starts a request's server span, continuing the caller's trace when its headers carry
    /// a valid `traceparent`.
    pub fn start(&self, headers: &http::HeaderMap, operation: &'static str) -> RequestSpan {
        let parent = self.propagator.extract(&HeaderExtractor(headers));
        let span = self
            .tracer
            .span_builder(operation)
            .with_kind(SpanKind::Server)
            .with_attributes([KeyValue::new("gen_ai.operation.name", operation)])
            .start_with_context(&self.tracer, &parent);
        RequestSpan {
            inner: Some(Box::new(Active {
                span,
                tracer: self.tracer.clone(),
                operation,
            })),
        }
    }

    /// Whether prompt and answer text may go into spans (the organization must keep content
    /// too).
    pub fn captures_content(&self) -> bool {
        self.capture_content
    }

    /// Exports what is buffered and stops (at shutdown).
    pub fn shutdown(&self) {
        if let Err(error) = self.provider.shutdown_with_timeout(Duration::from_secs(5)) {
            tracing::warn!(%error, "could not flush traces at shutdown");
        }
    }
}

/// One request's span; empty when tracing is off.
#[derive(Default)]
pub struct RequestSpan {
    inner: Option<Box<Active>>,
}

struct Active {
    span: Span,
    tracer: SdkTracer,
    operation: &'static str,
}

/// How a traced request ended.
#[derive(Clone, Copy, Debug, Default)]
pub struct SpanEnd<'a> {
    /// The error name, `None` when it succeeded.
    pub error: Option<&'a str>,
    pub response_model: Option<&'a str>,
    pub finish_reason: Option<&'a str>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub reasoning_tokens: u64,
    /// Prompt and answer text; pass them only when [`Tracing::captures_content`] and the
    /// organization keeps content.
    pub content: Option<(&'a str, Option<&'a str>)>,
}

impl RequestSpan {
    pub fn is_recording(&self) -> bool {
        self.inner.is_some()
    }

    /// The id of the trace this request belongs to (hex), when traced.
    pub fn trace_id(&self) -> Option<String> {
        let active = self.inner.as_ref()?;
        Some(active.span.span_context().trace_id().to_string())
    }

    /// Resolution chose provider and model: the span is renamed `{operation} {model}`.
    pub fn resolved(&mut self, provider: &'static str, model: &str, request_id: Option<&str>) {
        let Some(active) = self.inner.as_mut() else {
            return;
        };
        active
            .span
            .update_name(format!("{} {model}", active.operation));
        active
            .span
            .set_attribute(KeyValue::new("gen_ai.provider.name", provider));
        active
            .span
            .set_attribute(KeyValue::new("gen_ai.request.model", model.to_owned()));
        if let Some(id) = request_id {
            active
                .span
                .set_attribute(KeyValue::new("switchboard.request_id", id.to_owned()));
        }
    }

    /// A finished child span (the upstream call, the record write) over `[start, start + took]`.
    pub fn child(
        &self,
        name: &'static str,
        kind: SpanKind,
        start: SystemTime,
        took: Duration,
        attributes: Vec<KeyValue>,
    ) {
        let Some(active) = self.inner.as_ref() else {
            return;
        };
        let parent = Context::new().with_remote_span_context(active.span.span_context().clone());
        let mut child = active
            .tracer
            .span_builder(name)
            .with_kind(kind)
            .with_start_time(start)
            .with_attributes(attributes)
            .start_with_context(&active.tracer, &parent);
        child.end_with_timestamp(start + took);
    }

    /// Gives the span the request's outcome (it ends when dropped).
    pub fn outcome(&mut self, end: &SpanEnd<'_>) {
        let Some(active) = self.inner.as_mut() else {
            return;
        };
        let span = &mut active.span;
        let usage = [
            ("gen_ai.usage.input_tokens", end.input_tokens),
            ("gen_ai.usage.output_tokens", end.output_tokens),
            (
                "gen_ai.usage.cache_read.input_tokens",
                end.cached_input_tokens,
            ),
            ("gen_ai.usage.reasoning.output_tokens", end.reasoning_tokens),
        ];
        for (key, value) in usage {
            span.set_attribute(KeyValue::new(key, i64::try_from(value).unwrap_or(i64::MAX)));
        }
        if let Some(model) = end.response_model {
            span.set_attribute(KeyValue::new("gen_ai.response.model", model.to_owned()));
        }
        if let Some(reason) = end.finish_reason {
            let reasons = opentelemetry::Array::String(vec![reason.to_owned().into()]);
            span.set_attribute(KeyValue::new(
                "gen_ai.response.finish_reasons",
                opentelemetry::Value::Array(reasons),
            ));
        }
        if let Some((prompt, answer)) = end.content {
            span.set_attribute(KeyValue::new("gen_ai.input.messages", prompt.to_owned()));
            if let Some(answer) = answer {
                span.set_attribute(KeyValue::new("gen_ai.output.messages", answer.to_owned()));
            }
        }
        match end.error {
            Some(error) => {
                span.set_attribute(KeyValue::new("error.type", error.to_owned()));
                span.set_status(Status::error(error.to_owned()));
            }
            None => span.set_status(Status::Ok),
        }
    }
}

impl Drop for RequestSpan {
    /// The request is over: the span ends.
    fn drop(&mut self) {
        if let Some(mut active) = self.inner.take() {
            active.span.end();
        }
    }
}

/// Reads W3C trace-context headers from an HTTP header map.
struct HeaderExtractor<'a>(&'a http::HeaderMap);

impl Extractor for HeaderExtractor<'_> {
    fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).and_then(|v| v.to_str().ok())
    }

    fn keys(&self) -> Vec<&str> {
        self.0.keys().map(http::HeaderName::as_str).collect()
    }
}
