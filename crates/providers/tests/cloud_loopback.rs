//! Bedrock, Vertex Gemini and Vertex Anthropic end to end on loopback: targets built from
//! provider configurations, bodies encoded with the protocol codecs, credentials obtained
//! and requests signed by `authorize` (through the egress client), answered by the
//! simulator, which verifies SigV4 as AWS does and RS256 service-account assertions as
//! Google does, and decoded back.

use std::collections::HashMap;
use std::time::Duration;

use http::{HeaderValue, Method};
use serde_json::{Value, json};
use switchboard_core::egress::EgressPolicy;
use switchboard_core::{ProviderType, SecretValue};
use switchboard_protocols::ir::{
    ChatRequest, Message, Part, Role, StopReason, StreamAccumulator, StreamEvent, Tool,
};
use switchboard_protocols::{ErrorKind, SseParser, anthropic, bedrock, gemini};
use switchboard_providers::aws::AwsKeys;
use switchboard_providers::{
    AuthError, CredentialCache, EgressClient, SecretSource, Timeouts, UpstreamSettings,
    UpstreamTarget, WireProtocol, authorize, build_target,
};
use switchboard_sim::{RunningSim, SimConfig};

const AKID: &str = "SBTESTKEYID000000001";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY";
const SA_KEY: &str = include_str!("testdata/test-only-service-account.key.pem");
const SA_PUB: &str = include_str!("testdata/test-only-service-account.pub.pem");
const OTHER_KEY: &str = include_str!("testdata/test-only-other.key.pem");

struct Secrets(HashMap<&'static str, String>);

impl SecretSource for Secrets {
    fn secret(&self, name: &str) -> Option<SecretValue> {
        self.0.get(name).map(|v| SecretValue::new(v.clone()))
    }
}

/// The key as an administrator pastes it from the JSON key file: literal `\n` sequences.
fn pasted(pem: &str) -> String {
    pem.replace('\n', "\\n")
}

fn secrets() -> Secrets {
    Secrets(HashMap::from([
        ("aws-id", AKID.to_owned()),
        ("aws-secret", SECRET.to_owned()),
        ("aws-wrong-secret", "not-the-secret".to_owned()),
        ("ext-id", "external-123".to_owned()),
        ("wrong-ext-id", "external-999".to_owned()),
        (
            "sa-email",
            "gateway@demo-project.iam.gserviceaccount.com".to_owned(),
        ),
        ("sa-key", pasted(SA_KEY)),
        ("sa-other-key", pasted(OTHER_KEY)),
        ("express-key", "express-key-123".to_owned()),
    ]))
}

async fn sim(config: SimConfig) -> RunningSim {
    let config = SimConfig {
        aws_access_key_id: Some(AKID.into()),
        aws_secret_access_key: Some(SECRET.into()),
        sts_external_id: Some("external-123".into()),
        google_service_account_public_key_pem: Some(SA_PUB.into()),
        google_api_key: Some("express-key-123".into()),
        ..config
    };
    switchboard_sim::start(config, "127.0.0.1:0".parse().unwrap())
        .await
        .unwrap()
}

fn settings(sim: &RunningSim) -> UpstreamSettings {
    UpstreamSettings {
        bedrock_endpoint: sim.url(),
        sts_endpoint: sim.url(),
        vertex_endpoint: sim.url(),
        google_token_url: format!("{}/token", sim.url()),
        aws_base_credentials: Some(AwsKeys::new(AKID, SecretValue::new(SECRET.into()))),
        ..UpstreamSettings::default()
    }
}

fn egress() -> EgressClient {
    let policy = EgressPolicy::new(&["127.0.0.1/32".to_owned()], true).unwrap();
    EgressClient::new(policy, Timeouts::default()).unwrap()
}

fn target(sim: &RunningSim, provider: ProviderType, config: Value, model: &str) -> UpstreamTarget {
    let config = config.as_object().unwrap().clone();
    build_target(provider, &config, model, &settings(sim), &secrets()).unwrap()
}

fn user(text: &str) -> ChatRequest {
    ChatRequest {
        messages: vec![Message {
            role: Role::User,
            content: vec![Part::Text(text.into())],
        }],
        max_tokens: Some(64),
        ..ChatRequest::default()
    }
}

fn with_tool(mut req: ChatRequest) -> ChatRequest {
    req.tools = vec![Tool {
        name: "get_weather".into(),
        description: Some("Weather in a city".into()),
        parameters: json!({"type": "object", "properties": {"city": {"type": "string"}}}),
        strict: None,
    }];
    req
}

fn encode(target: &UpstreamTarget, req: &ChatRequest, stream: bool) -> Vec<u8> {
    let mut req = req.clone();
    req.stream = stream;
    match target.protocol {
        WireProtocol::BedrockConverse => {
            let options = bedrock::EncodeOptions {
                default_max_tokens: Some(1024),
                guardrail: target.guardrail.clone(),
                stream,
            };
            bedrock::encode_request(&req, &target.upstream_model, &options).unwrap()
        }
        WireProtocol::Gemini => gemini::encode_request(&req).unwrap(),
        WireProtocol::VertexAnthropic => anthropic::vertex_body(
            &anthropic::encode_request(&req, &target.upstream_model, 1024).unwrap(),
        )
        .unwrap(),
        other => panic!("not a cloud protocol: {other:?}"),
    }
}

async fn send(
    target: &UpstreamTarget,
    egress: &EgressClient,
    cache: &CredentialCache,
    body: Vec<u8>,
    stream: bool,
) -> Result<reqwest::Response, AuthError> {
    let url = target.url_for(stream).to_owned();
    let mut headers = target.headers.clone();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    authorize(
        target,
        egress,
        cache,
        &Method::POST,
        &url,
        &mut headers,
        &body,
    )
    .await?;
    let request = egress
        .request(Method::POST, &url)
        .unwrap()
        .headers(headers)
        .body(body);
    Ok(egress.send(request).await.unwrap())
}

/// Decodes a streamed answer chunk by chunk as it arrives.
async fn stream_events(
    protocol: WireProtocol,
    model: &str,
    mut response: reqwest::Response,
) -> Vec<StreamEvent> {
    assert_eq!(response.status(), 200);
    let mut events = Vec::new();
    let mut bedrock_decoder = bedrock::StreamDecoder::new(model);
    let mut sse = SseParser::new();
    let mut gemini_decoder = gemini::StreamDecoder::new();
    let mut anthropic_decoder = anthropic::StreamDecoder::new();
    while let Some(chunk) = response.chunk().await.unwrap() {
        match protocol {
            WireProtocol::BedrockConverse => bedrock_decoder.push(&chunk, &mut events).unwrap(),
            _ => {
                sse.push(&chunk);
                while let Some(event) = sse.next_event().unwrap() {
                    match protocol {
                        WireProtocol::Gemini => gemini_decoder.push(&event, &mut events).unwrap(),
                        _ => anthropic_decoder.push(&event, &mut events).unwrap(),
                    }
                }
            }
        }
    }
    match protocol {
        WireProtocol::BedrockConverse => bedrock_decoder.finish(&mut events).unwrap(),
        WireProtocol::Gemini => gemini_decoder.finish(&mut events),
        _ => {}
    }
    events
}

fn accumulate(events: &[StreamEvent]) -> switchboard_protocols::ChatResponse {
    let mut acc = StreamAccumulator::new();
    events.iter().for_each(|e| acc.push(e));
    acc.into_response()
}

fn bedrock_keys_config() -> Value {
    json!({"accessKeyIdSecretName": "aws-id", "secretAccessKeySecretName": "aws-secret",
        "region": "eu-west-1", "guardrailIdentifier": "gr-123", "guardrailVersion": "1"})
}

#[tokio::test]
async fn bedrock_with_access_keys_converses_and_streams_tools_incrementally() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let t = target(
        &sim,
        ProviderType::Bedrock,
        bedrock_keys_config(),
        "claude-sonnet-4-20250514",
    );
    assert_eq!(
        t.upstream_model,
        "eu.anthropic.claude-sonnet-4-20250514-v1:0"
    );
    assert!(
        t.url
            .ends_with("/model/eu.anthropic.claude-sonnet-4-20250514-v1%3A0/converse")
    );

    let response = send(
        &t,
        &egress,
        &cache,
        encode(&t, &user("hello world"), false),
        false,
    )
    .await
    .unwrap();
    assert_eq!(response.status(), 200);
    let answer =
        bedrock::decode_response(&response.bytes().await.unwrap(), &t.upstream_model).unwrap();
    assert_eq!(answer.content, vec![Part::Text("Echo: hello world".into())]);
    assert_eq!(answer.stop_reason, StopReason::EndTurn);
    let recorded = sim.handle.last_request().unwrap();
    assert!(
        recorded.path.contains("-v1%3A0/converse"),
        "{}",
        recorded.path
    );
    assert_eq!(
        recorded.json().unwrap()["guardrailConfig"]["guardrailIdentifier"],
        "gr-123"
    );

    let body = encode(&t, &with_tool(user("Paris [[sim:chunks=4]]")), true);
    let response = send(&t, &egress, &cache, body, true).await.unwrap();
    assert_eq!(
        response.headers()["content-type"],
        "application/vnd.amazon.eventstream"
    );
    let events = stream_events(t.protocol, &t.upstream_model, response).await;
    let deltas = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::ToolCallDelta { .. }))
        .count();
    assert_eq!(deltas, 4, "arguments streamed as the simulator sent them");
    let answer = accumulate(&events);
    assert!(
        matches!(&answer.content[0], Part::ToolCall { name, arguments, .. }
        if name == "get_weather" && arguments == r#"{"city":"Paris"}"#)
    );
    assert_eq!(answer.stop_reason, StopReason::ToolUse);
    assert!(
        answer.usage.output_tokens > 0,
        "usage from metadata after messageStop"
    );
    assert_eq!(events.last(), Some(&StreamEvent::Done));
}

#[tokio::test]
async fn bedrock_errors_exception_frames_and_bad_signatures_are_classified() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let t = target(
        &sim,
        ProviderType::Bedrock,
        bedrock_keys_config(),
        "claude-sonnet-4-20250514",
    );

    let response = send(
        &t,
        &egress,
        &cache,
        encode(&t, &user("hi [[sim:status=429]]"), false),
        false,
    )
    .await
    .unwrap();
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned());
    let e = bedrock::classify_error(
        status,
        error_type.as_deref(),
        &response.bytes().await.unwrap(),
    );
    assert_eq!((status, e.kind), (429, ErrorKind::RateLimit));
    assert!(e.kind.is_retryable());

    let body = encode(&t, &user("one two three four [[sim:error_event]]"), true);
    let events = stream_events(
        t.protocol,
        &t.upstream_model,
        send(&t, &egress, &cache, body, true).await.unwrap(),
    )
    .await;
    assert!(
        matches!(
            events.last(),
            Some(StreamEvent::Error {
                kind: ErrorKind::BadGateway,
                ..
            })
        ),
        "{events:?}"
    );

    let wrong = json!({"accessKeyIdSecretName": "aws-id", "secretAccessKeySecretName": "aws-wrong-secret", "region": "us-east-1"});
    let t = target(
        &sim,
        ProviderType::Bedrock,
        wrong,
        "claude-sonnet-4-20250514",
    );
    let response = send(&t, &egress, &cache, encode(&t, &user("hi"), false), false)
        .await
        .unwrap();
    let status = response.status().as_u16();
    let error_type = response
        .headers()
        .get("x-amzn-errortype")
        .map(|v| v.to_str().unwrap().to_owned());
    assert!(
        error_type
            .as_deref()
            .unwrap()
            .starts_with("InvalidSignatureException")
    );
    let e = bedrock::classify_error(
        status,
        error_type.as_deref(),
        &response.bytes().await.unwrap(),
    );
    assert_eq!((status, e.kind), (403, ErrorKind::Authentication));
}

fn role_config(external: &str) -> Value {
    json!({"roleArn": "arn:aws:iam::123456789012:role/BedrockAccess", "externalIdSecretName": external,
        "region": "us-east-1"})
}

fn sts_calls(sim: &RunningSim) -> usize {
    sim.handle
        .requests()
        .iter()
        .filter(|r| r.path == "/")
        .count()
}

#[tokio::test]
async fn bedrock_assume_role_is_single_flight_cached_and_signed_with_the_session_token() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let t = target(
        &sim,
        ProviderType::Bedrock,
        role_config("ext-id"),
        "claude-haiku-4-5-20251001",
    );
    assert_eq!(
        t.upstream_model,
        "us.anthropic.claude-haiku-4-5-20251001-v1:0"
    );
    let body = encode(&t, &user("ping"), false);
    let calls = (0..8).map(|_| send(&t, &egress, &cache, body.clone(), false));
    for response in futures_util::future::join_all(calls).await {
        assert_eq!(response.unwrap().status(), 200);
    }
    assert_eq!(
        sts_calls(&sim),
        1,
        "eight concurrent callers, one AssumeRole"
    );
    let converse = sim.handle.last_request().unwrap();
    assert!(converse.header("x-amz-security-token").is_some());
    assert!(
        converse
            .header("authorization")
            .unwrap()
            .contains("x-amz-security-token")
    );
    let sts = sim
        .handle
        .requests()
        .into_iter()
        .find(|r| r.path == "/")
        .unwrap();
    let form = String::from_utf8(sts.body.to_vec()).unwrap();
    assert!(
        form.contains("Action=AssumeRole") && form.contains("ExternalId=external-123"),
        "{form}"
    );
    assert!(
        sts.header("authorization")
            .unwrap()
            .contains("/us-east-1/sts/aws4_request")
    );

    let denied = target(
        &sim,
        ProviderType::Bedrock,
        role_config("wrong-ext-id"),
        "claude-haiku-4-5-20251001",
    );
    let err = send(&denied, &egress, &cache, body, false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("AccessDenied"), "{err}");
    assert!(!err.is_transient());
    // A failure is shared for a few seconds rather than retried by every waiting request.
    let before = sts_calls(&sim);
    let again = send(
        &denied,
        &egress,
        &cache,
        encode(&denied, &user("x"), false),
        false,
    )
    .await;
    assert!(again.unwrap_err().to_string().contains("AccessDenied"));
    assert_eq!(sts_calls(&sim), before);
}

#[tokio::test]
async fn assumed_credentials_are_refreshed_before_they_expire() {
    let sim = sim(SimConfig {
        sts_credentials_ttl: Duration::from_secs(4),
        ..SimConfig::default()
    })
    .await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let t = target(
        &sim,
        ProviderType::Bedrock,
        role_config("ext-id"),
        "claude-haiku-4-5-20251001",
    );
    let body = encode(&t, &user("ping"), false);
    send(&t, &egress, &cache, body.clone(), false)
        .await
        .unwrap();
    send(&t, &egress, &cache, body.clone(), false)
        .await
        .unwrap();
    assert_eq!(sts_calls(&sim), 1);
    // Refreshed once half the 4 s lifetime (the margin for short-lived keys) has passed.
    tokio::time::sleep(Duration::from_millis(2500)).await;
    assert_eq!(
        send(&t, &egress, &cache, body, false)
            .await
            .unwrap()
            .status(),
        200
    );
    assert_eq!(sts_calls(&sim), 2);
}

fn sa_config(key_secret: &str) -> Value {
    json!({"clientEmailSecretName": "sa-email", "privateKeySecretName": key_secret,
        "project": "demo-project", "location": "us-east5", "models": [{"name": "gemini-2.5-flash"}]})
}

fn token_calls(sim: &RunningSim) -> usize {
    sim.handle
        .requests()
        .iter()
        .filter(|r| r.path == "/token")
        .count()
}

#[tokio::test]
async fn vertex_gemini_with_a_service_account_generates_and_streams() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let t = target(
        &sim,
        ProviderType::VertexGemini,
        sa_config("sa-key"),
        "gemini-2.5-flash",
    );
    assert!(t.url.ends_with("/v1/projects/demo-project/locations/us-east5/publishers/google/models/gemini-2.5-flash:generateContent"));
    assert!(t.stream_url.ends_with(":streamGenerateContent?alt=sse"));

    let calls = (0..5).map(|_| {
        send(
            &t,
            &egress,
            &cache,
            encode(&t, &user("hello there"), false),
            false,
        )
    });
    for response in futures_util::future::join_all(calls).await {
        let response = response.unwrap();
        assert_eq!(response.status(), 200);
        let answer = gemini::decode_response(&response.bytes().await.unwrap()).unwrap();
        assert_eq!(answer.content, vec![Part::Text("Echo: hello there".into())]);
    }
    assert_eq!(
        token_calls(&sim),
        1,
        "five concurrent callers, one token exchange"
    );
    let token_request = sim
        .handle
        .requests()
        .into_iter()
        .find(|r| r.path == "/token")
        .unwrap();
    assert!(
        String::from_utf8_lossy(&token_request.body)
            .contains("grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer")
    );

    let body = encode(&t, &with_tool(user("Lyon")), true);
    let events = stream_events(
        t.protocol,
        &t.upstream_model,
        send(&t, &egress, &cache, body, true).await.unwrap(),
    )
    .await;
    let answer = accumulate(&events);
    assert!(
        matches!(&answer.content[0], Part::ToolCall { name, arguments, .. }
        if name == "get_weather" && arguments == r#"{"city":"Lyon"}"#)
    );
    assert_eq!(answer.stop_reason, StopReason::ToolUse);
    assert_eq!(events.last(), Some(&StreamEvent::Done));

    // The tool result goes back as a functionResponse named after the call.
    let Part::ToolCall { id, .. } = &answer.content[0] else {
        unreachable!()
    };
    let mut follow_up = with_tool(user("Lyon"));
    follow_up.messages.push(Message {
        role: Role::Assistant,
        content: answer.content.clone(),
    });
    follow_up.messages.push(Message {
        role: Role::Tool,
        content: vec![Part::ToolResult {
            call_id: id.clone(),
            content: vec![Part::Text("sunny".into())],
            is_error: false,
        }],
    });
    let response = send(&t, &egress, &cache, encode(&t, &follow_up, false), false)
        .await
        .unwrap();
    let answer = gemini::decode_response(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(
        answer.content,
        vec![Part::Text("Tool result: sunny".into())]
    );
}

#[tokio::test]
async fn vertex_token_endpoint_refuses_an_assertion_signed_with_another_key() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let t = target(
        &sim,
        ProviderType::VertexGemini,
        sa_config("sa-other-key"),
        "gemini-2.5-flash",
    );
    let err = send(&t, &egress, &cache, encode(&t, &user("hi"), false), false)
        .await
        .unwrap_err();
    assert!(err.to_string().contains("Invalid JWT Signature"), "{err}");
}

#[tokio::test]
async fn vertex_gemini_express_mode_sends_the_key_in_a_header_never_the_url() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let config =
        json!({"apiKeySecretName": "express-key", "models": [{"name": "gemini-2.5-flash"}]});
    let t = target(&sim, ProviderType::VertexGemini, config, "gemini-2.5-flash");
    assert_eq!(
        t.url,
        format!(
            "{}/v1/publishers/google/models/gemini-2.5-flash:generateContent",
            sim.url()
        )
    );
    assert!(t.headers["x-goog-api-key"].is_sensitive());
    let response = send(&t, &egress, &cache, encode(&t, &user("hi"), false), false)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let recorded = sim.handle.last_request().unwrap();
    assert!(!recorded.path.contains("express-key-123") && !recorded.path.contains("key="));
    assert_eq!(recorded.header("x-goog-api-key"), Some("express-key-123"));
    assert_eq!(token_calls(&sim), 0);

    let response = send(
        &t,
        &egress,
        &cache,
        encode(&t, &user("hi [[sim:status=429]]"), false),
        false,
    )
    .await
    .unwrap();
    let e = gemini::classify_error(response.status().as_u16(), &response.bytes().await.unwrap());
    assert_eq!(e.kind, ErrorKind::RateLimit);
}

#[tokio::test]
async fn vertex_anthropic_raw_predict_and_stream_raw_predict() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let t = target(
        &sim,
        ProviderType::VertexAnthropic,
        sa_config("sa-key"),
        "claude-opus-4@20250514",
    );
    assert!(
        t.url
            .ends_with("/publishers/anthropic/models/claude-opus-4%4020250514:rawPredict"),
        "{}",
        t.url
    );
    assert!(t.stream_url.ends_with(":streamRawPredict"));
    let response = send(&t, &egress, &cache, encode(&t, &user("ping"), false), false)
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let answer = anthropic::decode_response(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.content, vec![Part::Text("Echo: ping".into())]);
    let sent = sim.handle.last_request().unwrap().json().unwrap();
    assert!(sent.get("model").is_none());
    assert_eq!(sent["anthropic_version"], "vertex-2023-10-16");

    let events = stream_events(
        t.protocol,
        &t.upstream_model,
        send(&t, &egress, &cache, encode(&t, &user("a b c"), true), true)
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(
        accumulate(&events).content,
        vec![Part::Text("Echo: a b c".into())]
    );

    // A body with a model is refused, as Vertex does.
    let with_model = anthropic::encode_request(&user("x"), "claude", 16).unwrap();
    let response = send(&t, &egress, &cache, with_model, false).await.unwrap();
    assert_eq!(response.status(), 400);
}

#[tokio::test]
async fn one_token_connection_checks_work_for_every_cloud_protocol() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let ping = ChatRequest {
        max_tokens: Some(1),
        ..user("ping")
    };
    for (provider, config, model) in [
        (
            ProviderType::Bedrock,
            bedrock_keys_config(),
            "claude-sonnet-4-5-20250929",
        ),
        (
            ProviderType::Bedrock,
            role_config("ext-id"),
            "claude-opus-4-6",
        ),
        (
            ProviderType::VertexGemini,
            sa_config("sa-key"),
            "gemini-2.5-flash",
        ),
        (
            ProviderType::VertexAnthropic,
            sa_config("sa-key"),
            "claude-sonnet-4-5@20250929",
        ),
    ] {
        let t = target(&sim, provider, config, model);
        let response = send(&t, &egress, &cache, encode(&t, &ping, false), false)
            .await
            .unwrap();
        assert_eq!(response.status(), 200, "{provider:?} {model}");
    }
}

#[tokio::test]
async fn simulated_bedrock_is_faithful_frames_padding_and_validation() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let t = target(
        &sim,
        ProviderType::Bedrock,
        bedrock_keys_config(),
        "claude-sonnet-4-20250514",
    );
    let response = send(&t, &egress, &cache, encode(&t, &user("a b"), true), true)
        .await
        .unwrap();
    let bytes = response.bytes().await.unwrap();
    let mut frames = Vec::new();
    let mut decoder = switchboard_protocols::eventstream::EventStreamDecoder::new();
    decoder.push(&bytes, &mut frames).unwrap();
    decoder.finish().unwrap();
    let names: Vec<_> = frames
        .iter()
        .map(|f| f.header_str(":event-type").unwrap().to_owned())
        .collect();
    assert_eq!(names.first().map(String::as_str), Some("messageStart"));
    assert_eq!(&names[names.len() - 2..], ["messageStop", "metadata"]);
    for frame in &frames {
        let order: Vec<_> = frame
            .message()
            .headers()
            .iter()
            .map(|h| h.name().as_str().to_owned())
            .collect();
        assert_eq!(order, [":event-type", ":content-type", ":message-type"]);
        let payload: Value = serde_json::from_slice(frame.payload()).unwrap();
        assert!(
            payload["p"]
                .as_str()
                .is_some_and(|p| "abcdefghijklmnopqrstuvwxyz".starts_with(&p[..p.len().min(26)]))
        );
    }
    for (body, message) in [
        (
            json!({"messages": [{"role": "assistant", "content": [{"text": "x"}]}]}),
            "start with a user message",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"text": "a"}]}, {"role": "user", "content": [{"text": "b"}]}]}),
            "alternate",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"text": " "}]}]}),
            "is blank",
        ),
        (
            json!({"messages": [{"role": "user", "content": [{"toolResult": {"toolUseId": "t", "content": [{"text": "r"}]}}]}]}),
            "toolConfig",
        ),
    ] {
        let response = send(
            &t,
            &egress,
            &cache,
            serde_json::to_vec(&body).unwrap(),
            false,
        )
        .await
        .unwrap();
        assert_eq!(response.status(), 400);
        assert!(
            response.headers()["x-amzn-errortype"]
                .to_str()
                .unwrap()
                .starts_with("ValidationException")
        );
        let text = response.text().await.unwrap();
        assert!(text.contains(message), "{text}");
    }
}

#[tokio::test]
async fn bedrock_invoke_model_with_an_anthropic_body_whole_and_streamed() {
    let sim = sim(SimConfig::default()).await;
    let (egress, cache) = (egress(), CredentialCache::new());
    let t = target(
        &sim,
        ProviderType::Bedrock,
        bedrock_keys_config(),
        "claude-sonnet-4-20250514",
    );
    let body = |text: &str, stream: bool| {
        let mut req = user(text);
        req.stream = stream;
        let anthropic_body = anthropic::encode_request(&req, &t.upstream_model, 1024).unwrap();
        bedrock::invoke_body(&anthropic_body, &[]).unwrap()
    };
    let post = |url: String, body: Vec<u8>| {
        let (t, egress, cache) = (&t, &egress, &cache);
        async move {
            let mut headers = t.headers.clone();
            headers.insert(
                http::header::CONTENT_TYPE,
                HeaderValue::from_static("application/json"),
            );
            authorize(t, egress, cache, &Method::POST, &url, &mut headers, &body)
                .await
                .unwrap();
            egress
                .send(
                    egress
                        .request(Method::POST, &url)
                        .unwrap()
                        .headers(headers)
                        .body(body),
                )
                .await
                .unwrap()
        }
    };
    let url = switchboard_providers::bedrock_invoke_url(&t, false).unwrap();
    assert!(url.ends_with("-v1%3A0/invoke"));
    let response = post(url, body("hello", false)).await;
    assert_eq!(response.status(), 200);
    let answer = anthropic::decode_response(&response.bytes().await.unwrap()).unwrap();
    assert_eq!(answer.content, vec![Part::Text("Echo: hello".into())]);

    let url = switchboard_providers::bedrock_invoke_url(&t, true).unwrap();
    for (text, errors) in [("a b c", false), ("a b c d [[sim:error_event]]", true)] {
        let mut response = post(url.clone(), body(text, true)).await;
        assert_eq!(response.status(), 200);
        let mut decoder = bedrock::InvokeStreamDecoder::new();
        let mut events = Vec::new();
        while let Some(chunk) = response.chunk().await.unwrap() {
            decoder.push(&chunk, &mut events).unwrap();
        }
        decoder.finish().unwrap();
        let last = events.last().unwrap();
        if errors {
            assert!(
                matches!(
                    last,
                    StreamEvent::Error {
                        kind: ErrorKind::BadGateway,
                        ..
                    }
                ),
                "{events:?}"
            );
        } else {
            assert_eq!(last, &StreamEvent::Done);
            assert_eq!(
                accumulate(&events).content,
                vec![Part::Text("Echo: a b c".into())]
            );
        }
    }
}
