//! OpenTelemetry traces: the real binary exports over OTLP/HTTP to a receiver here that
//! decodes the official protobuf definitions (`opentelemetry-proto`). One server span per
//! inference request with the GenAI attributes, the caller's trace continued, children for
//! the upstream call and the record, and no prompt text.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::routing::post;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::any_value::Value as AnyValue;
use opentelemetry_proto::tonic::trace::v1::Span;
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use prost::Message;
use serde_json::json;
use switchboard_sim::SimConfig;

use crate::gateway::Gateway;
use crate::harness::Backend;

const PROMPT_CANARY: &str = "prompt-canary-7f3a";
const TRACE_ID: &str = "4bf92f3577b34da6a3ce929d0e0e4736";
const PARENT_SPAN: &str = "00f067aa0ba902b7";

/// An OTLP/HTTP trace receiver on a free port; collects every span it is sent.
async fn receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let sink = spans.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: Bytes| {
            let sink = sink.clone();
            async move {
                let request = ExportTraceServiceRequest::decode(body).expect("OTLP protobuf");
                let mut sink = sink.lock().unwrap();
                for resource in request.resource_spans {
                    for scope in resource.scope_spans {
                        sink.extend(scope.spans);
                    }
                }
                ExportTraceServiceResponse::default().encode_to_vec()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, spans)
}

fn attribute<'a>(span: &'a Span, key: &str) -> Option<&'a AnyValue> {
    span.attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref()?.value.as_ref())
}

fn text(span: &Span, key: &str) -> Option<String> {
    match attribute(span, key)? {
        AnyValue::StringValue(s) => Some(s.clone()),
        _ => None,
    }
}

fn int(span: &Span, key: &str) -> Option<i64> {
    match attribute(span, key)? {
        AnyValue::IntValue(i) => Some(*i),
        _ => None,
    }
}

/// An OTLP/gRPC trace receiver (the official `TraceService`) on a free port.
async fn grpc_receiver() -> (String, Arc<Mutex<Vec<Span>>>) {
    use opentelemetry_proto::tonic::collector::trace::v1::trace_service_server::{
        TraceService, TraceServiceServer,
    };
    struct Collector(Arc<Mutex<Vec<Span>>>);
    #[tonic::async_trait]
    impl TraceService for Collector {
        async fn export(
            &self,
            request: tonic::Request<ExportTraceServiceRequest>,
        ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
            let mut sink = self.0.lock().unwrap();
            for resource in request.into_inner().resource_spans {
                for scope in resource.scope_spans {
                    sink.extend(scope.spans);
                }
            }
            Ok(tonic::Response::new(ExportTraceServiceResponse::default()))
        }
    }
    let spans: Arc<Mutex<Vec<Span>>> = Arc::default();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let service = TraceServiceServer::new(Collector(spans.clone()));
    tokio::spawn(async move {
        tonic::transport::Server::builder()
            .add_service(service)
            .serve_with_incoming(tonic::transport::server::TcpIncoming::from(listener))
            .await
            .unwrap()
    });
    (url, spans)
}

/// Waits until `done` holds for the spans received (the exporter batches).
async fn spans_until(spans: &Mutex<Vec<Span>>, done: impl Fn(&[Span]) -> bool) -> Vec<Span> {
    for _ in 0..200 {
        {
            let spans = spans.lock().unwrap();
            if done(&spans) {
                return spans.clone();
            }
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("spans did not arrive: {:#?}", spans.lock().unwrap());
}

fn server_spans(spans: &[Span]) -> Vec<&Span> {
    spans
        .iter()
        .filter(|s| s.kind == SpanKind::Server as i32)
        .collect()
}

#[tokio::test]
async fn each_request_is_one_gen_ai_span_continuing_the_callers_trace() {
    let (endpoint, spans) = receiver().await;
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
    ];
    let gateway = Gateway::start_with(Backend::Sqlite, SimConfig::default(), env).await;
    let traced = reqwest::Client::new()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(&gateway.org.member)
        .header("traceparent", format!("00-{TRACE_ID}-{PARENT_SPAN}-01"))
        .json(&json!({
            "provider": "anthropic",
            "model": "claude-sonnet-4-5-20250929",
            "messages": [{ "role": "user", "content": format!("hello {PROMPT_CANARY}") }],
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(traced.status(), 200);
    let streamed = gateway
        .post(
            "/v1/messages",
            &json!({
                "provider": "openai", "model": "gpt-5", "max_tokens": 64, "stream": true,
                "messages": [{ "role": "user", "content": "stream please" }],
            }),
        )
        .await;
    assert_eq!(streamed.status(), 200);
    streamed.bytes().await.unwrap();
    let failed = gateway
        .post(
            "/v1/chat/completions",
            &json!({
                "provider": "openai", "model": "gpt-5",
                "messages": [{ "role": "user", "content": "[[sim:status=429 retry_after=30]]" }],
            }),
        )
        .await;
    assert_eq!(failed.status(), 429);

    let spans = spans_until(&spans, |s| server_spans(s).len() >= 3).await;
    let servers = server_spans(&spans);
    assert_eq!(
        servers.len(),
        3,
        "one server span per request: {servers:#?}"
    );

    let first = servers
        .iter()
        .find(|s| hex(&s.trace_id) == TRACE_ID)
        .expect("the caller's trace id is continued");
    assert_eq!(hex(&first.parent_span_id), PARENT_SPAN);
    assert_eq!(first.name, "chat claude-sonnet-4-5-20250929");
    assert_eq!(
        text(first, "gen_ai.operation.name").as_deref(),
        Some("chat")
    );
    assert_eq!(
        text(first, "gen_ai.provider.name").as_deref(),
        Some("anthropic")
    );
    assert_eq!(
        text(first, "gen_ai.request.model").as_deref(),
        Some("claude-sonnet-4-5-20250929")
    );
    assert!(int(first, "gen_ai.usage.input_tokens").unwrap() > 0);
    assert!(int(first, "gen_ai.usage.output_tokens").unwrap() > 0);
    assert!(int(first, "gen_ai.usage.cache_read.input_tokens").is_some());
    assert!(attribute(first, "gen_ai.response.finish_reasons").is_some());
    assert!(attribute(first, "error.type").is_none());

    let children: Vec<&Span> = spans
        .iter()
        .filter(|s| s.parent_span_id == first.span_id)
        .collect();
    let names: Vec<&str> = children.iter().map(|s| s.name.as_str()).collect();
    assert!(names.contains(&"upstream"), "{names:?}");
    assert!(names.contains(&"record invocation"), "{names:?}");
    let upstream = children.iter().find(|s| s.name == "upstream").unwrap();
    assert_eq!(upstream.kind, SpanKind::Client as i32);
    assert_eq!(int(upstream, "http.response.status_code"), Some(200));
    assert!(children.iter().all(|s| s.trace_id == first.trace_id));

    let stream = servers
        .iter()
        .find(|s| {
            text(s, "gen_ai.provider.name").as_deref() == Some("openai")
                && attribute(s, "error.type").is_none()
        })
        .expect("the stream's span");
    assert!(
        stream.parent_span_id.is_empty(),
        "no traceparent: a new trace"
    );
    assert!(int(stream, "gen_ai.usage.output_tokens").unwrap() > 0);

    let refused = servers
        .iter()
        .find(|s| attribute(s, "error.type").is_some())
        .expect("the refused request's span");
    assert_eq!(
        text(refused, "error.type").as_deref(),
        Some("rate_limit_exceeded")
    );

    let everything = format!("{spans:?}");
    assert!(
        !everything.contains(PROMPT_CANARY),
        "prompt text reached a span without the operator's opt-in"
    );
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn content_reaches_spans_only_with_the_opt_in_and_an_organization_that_keeps_it() {
    let (endpoint, spans) = receiver().await;
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
        (
            "SWITCHBOARD_OTEL_CAPTURE_CONTENT".to_owned(),
            "true".to_owned(),
        ),
    ];
    let gateway = Gateway::start_with(Backend::Sqlite, SimConfig::default(), env).await;
    let ask = |word: &str| {
        json!({
            "provider": "openai", "model": "gpt-5",
            "messages": [{ "role": "user", "content": format!("say {word}") }],
        })
    };
    let kept = gateway
        .post("/v1/chat/completions", &ask("kept-canary-1"))
        .await;
    assert_eq!(kept.status(), 200);
    let spans_now = spans_until(&spans, |s| !server_spans(s).is_empty()).await;
    let first = server_spans(&spans_now)[0];
    let input = text(first, "gen_ai.input.messages").expect("content kept: prompt in the span");
    assert!(input.contains("kept-canary-1"), "{input}");
    assert!(text(first, "gen_ai.output.messages").is_some());

    gateway.keep_no_content().await;
    let dropped = gateway
        .post("/v1/chat/completions", &ask("dropped-canary-2"))
        .await;
    assert_eq!(dropped.status(), 200);
    let spans_now = spans_until(&spans, |s| server_spans(s).len() >= 2).await;
    assert!(!format!("{spans_now:?}").contains("dropped-canary-2"));
}

#[tokio::test]
async fn spans_are_exported_over_grpc_too() {
    let (endpoint, spans) = grpc_receiver().await;
    let env = vec![
        ("OTEL_EXPORTER_OTLP_ENDPOINT".to_owned(), endpoint),
        ("OTEL_EXPORTER_OTLP_PROTOCOL".to_owned(), "grpc".to_owned()),
        ("OTEL_BSP_SCHEDULE_DELAY".to_owned(), "100".to_owned()),
    ];
    let gateway = Gateway::start_with(Backend::Sqlite, SimConfig::default(), env).await;
    let answer = gateway
        .post(
            "/v1/messages",
            &json!({
                "provider": "anthropic", "model": "claude-sonnet-4-5-20250929", "max_tokens": 32,
                "messages": [{ "role": "user", "content": "over grpc" }],
            }),
        )
        .await;
    assert_eq!(answer.status(), 200);
    let spans = spans_until(&spans, |s| !server_spans(s).is_empty()).await;
    let server = server_spans(&spans)[0];
    assert_eq!(server.name, "chat claude-sonnet-4-5-20250929");
    assert_eq!(
        text(server, "gen_ai.provider.name").as_deref(),
        Some("anthropic")
    );
}

#[tokio::test]
async fn an_unknown_otlp_protocol_stops_the_server_with_a_clear_message() {
    let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
        .arg("serve")
        .env(
            "SWITCHBOARD_DATABASE_URL",
            format!(
                "sqlite://{}/never-created/x.db",
                std::env::temp_dir().display()
            ),
        )
        .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
        .env("SWITCHBOARD_MASTER_KEY", crate::harness::TEST_MASTER_KEY)
        .env("OTEL_EXPORTER_OTLP_ENDPOINT", "http://127.0.0.1:4318")
        .env("OTEL_EXPORTER_OTLP_PROTOCOL", "http/carrier-pigeon")
        .output()
        .unwrap();
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("unsupported OTLP protocol 'http/carrier-pigeon'"),
        "{stderr}"
    );
}
