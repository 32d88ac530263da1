//! Upstreams that abuse the gateway (catalogue items 14 and 37): one that quotes the key it
//! was given in its error, one that answers a huge whole body, one whose stream never ends.
//! The key never reaches the caller, the log or the record; the caps end the exchange with
//! an error in the caller's protocol, close the upstream connection, and the record says why.

use std::time::Duration;

use serde_json::{Value, json};

use crate::gateway::{ANTHROPIC_KEY, AZURE_KEY, Gateway, sse_events};
use crate::harness::{Backend, CANARY, backends};
use crate::interactions::stored_record;

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

fn invocation_id(response: &reqwest::Response) -> String {
    response.headers()["x-switchboard-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// A chat request on `path` (OpenAI's or Anthropic's surface) to `provider`.
fn chat_body(path: &str, provider: &str, model: &str, prompt: &str, stream: bool) -> Value {
    let mut body = json!({ "provider": provider, "model": model, "stream": stream,
        "messages": [{ "role": "user", "content": prompt }] });
    if path == "/v1/messages" {
        body["max_tokens"] = json!(64);
    }
    body
}

#[tokio::test]
async fn an_upstream_that_echoes_the_key_never_reaches_the_caller_the_log_or_the_record() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let cases = [
            ("/v1/chat/completions", "openai", "gpt-5", CANARY),
            ("/v1/messages", "openai", "gpt-5", CANARY),
            (
                "/v1/messages",
                "anthropic",
                "claude-sonnet-4-5-20250929",
                ANTHROPIC_KEY,
            ),
            ("/v1/chat/completions", "azure-openai", "gpt-5", AZURE_KEY),
        ];
        for (path, provider, model, key) in cases {
            let body = chat_body(path, provider, model, "hello [[sim:echo_key]]", false);
            let response = gateway.post(path, &body).await;
            let status = response.status().as_u16();
            let id = invocation_id(&response);
            let text = response.text().await.unwrap();
            assert_eq!(status, 400, "{provider} via {path}: {text}");
            assert!(
                !text.contains(key),
                "{provider} via {path}: the key reached the caller: {text}"
            );
            assert!(text.contains("[redacted]"), "{provider} via {path}: {text}");
            assert!(
                text.contains("may not be used"),
                "the provider's message is kept: {text}"
            );
            // Every response the harness reads is checked for the canary, the record too.
            let record = stored_record(&gateway.server, &gateway.org.admin, &id).await;
            assert!(!record.to_string().contains(key), "{record}");
            assert_eq!(record["status"], "Failed", "{record}");
        }
        let log = gateway.server.stop();
        for key in [ANTHROPIC_KEY, AZURE_KEY] {
            assert!(!log.contains(key), "a provider key reached the server log");
        }
    }
}

/// The same upstream, streaming: its error event (passed through, or translated) is
/// scrubbed too.
#[tokio::test]
async fn an_upstream_error_event_that_echoes_the_key_is_scrubbed() {
    let gateway = Gateway::start(Backend::Sqlite).await;
    let cases = [
        ("/v1/chat/completions", "openai", "gpt-5", CANARY),
        ("/v1/messages", "openai", "gpt-5", CANARY),
        (
            "/v1/messages",
            "anthropic",
            "claude-sonnet-4-5-20250929",
            ANTHROPIC_KEY,
        ),
        (
            "/v1/chat/completions",
            "anthropic",
            "claude-sonnet-4-5-20250929",
            ANTHROPIC_KEY,
        ),
    ];
    for (path, provider, model, key) in cases {
        let body = chat_body(path, provider, model, "hello [[sim:echo_key]]", true);
        let response = gateway.post(path, &body).await;
        assert_eq!(response.status(), 200);
        let id = invocation_id(&response);
        let text = response.text().await.unwrap();
        assert!(
            !text.contains(key),
            "{provider} via {path}: the key reached the caller: {text}"
        );
        assert!(text.contains("[redacted]"), "{provider} via {path}: {text}");
        let record = stored_record(&gateway.server, &gateway.org.admin, &id).await;
        assert!(!record.to_string().contains(key), "{record}");
        assert_eq!(record["status"], "Failed", "{record}");
    }
    let log = gateway.server.stop();
    assert!(
        !log.contains(ANTHROPIC_KEY),
        "a provider key reached the server log"
    );
}

#[tokio::test]
async fn a_huge_whole_upstream_answer_is_refused_at_the_cap() {
    for backend in backends() {
        let caps = env(&[("SWITCHBOARD_UPSTREAM_MAX_BODY_BYTES", "1048576")]);
        let gateway = Gateway::start_with(backend, Default::default(), caps).await;
        for path in ["/v1/chat/completions", "/v1/messages"] {
            let prompt = "hi [[sim:huge_body=67108864]]";
            let body = chat_body(path, "openai", "gpt-5", prompt, false);
            let response = gateway.post(path, &body).await;
            assert_eq!(response.status(), 502);
            let id = invocation_id(&response);
            let error: Value = response.json().await.unwrap();
            let name = match path {
                "/v1/messages" => &error["error"]["type"],
                _ => &error["error"]["code"],
            };
            assert_eq!(name, "upstream_too_large", "{error}");
            let record = stored_record(&gateway.server, &gateway.org.admin, &id).await;
            assert_eq!(record["errorName"], "upstream_too_large", "{record}");
        }
        // An answer under the cap is unaffected.
        let body = chat_body("/v1/chat/completions", "openai", "gpt-5", "hi", false);
        assert_eq!(
            gateway.post("/v1/chat/completions", &body).await.status(),
            200
        );
        gateway.server.stop();
    }
}

/// Waits (bounded) until the simulator has no endless stream left open: the gateway
/// dropped the upstream connection.
async fn upstream_closed(gateway: &Gateway) {
    for _ in 0..100 {
        if gateway.sim.handle.open_endless_streams() == 0 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the upstream stream was never closed");
}

/// The caller's stream (read to its end): its last event, and the invocation id.
async fn endless_stream(
    gateway: &Gateway,
    path: &str,
    provider: &str,
    model: &str,
    prompt: &str,
) -> (Value, String) {
    let body = chat_body(path, provider, model, prompt, true);
    let response = gateway.post(path, &body).await;
    assert_eq!(response.status(), 200);
    let id = invocation_id(&response);
    let text = response.text().await.unwrap();
    assert!(
        !text.contains("[DONE]") && !text.contains("message_stop"),
        "no clean end"
    );
    let (_, data) = sse_events(&text).pop().expect("events");
    (serde_json::from_str(&data).unwrap(), id)
}

#[tokio::test]
async fn an_endless_stream_is_ended_at_the_byte_cap_and_the_upstream_closed() {
    for backend in backends() {
        let caps = env(&[("SWITCHBOARD_STREAM_MAX_BYTES", "262144")]);
        let gateway = Gateway::start_with(backend, Default::default(), caps).await;
        let cases = [
            ("/v1/chat/completions", "openai", "gpt-5"),
            ("/v1/messages", "anthropic", "claude-sonnet-4-5-20250929"),
            ("/v1/messages", "openai", "gpt-5"),
        ];
        for (path, provider, model) in cases {
            let (last, id) =
                endless_stream(&gateway, path, provider, model, "go [[sim:endless]]").await;
            let message = last["error"]["message"].as_str().unwrap_or_default();
            assert!(
                message.contains("262144 bytes"),
                "{path} {provider}: {last}"
            );
            upstream_closed(&gateway).await;
            let record = stored_record(&gateway.server, &gateway.org.admin, &id).await;
            assert_eq!(record["errorName"], "upstream_too_large", "{record}");
        }
        gateway.server.stop();
    }
}

#[tokio::test]
async fn an_endless_stream_is_ended_at_the_duration_cap_and_the_upstream_closed() {
    let caps = env(&[("SWITCHBOARD_STREAM_MAX_SECONDS", "2")]);
    let gateway = Gateway::start_with(Backend::Sqlite, Default::default(), caps).await;
    let prompt = "go [[sim:endless delay_ms=20]]";
    let (last, id) =
        endless_stream(&gateway, "/v1/chat/completions", "openai", "gpt-5", prompt).await;
    let message = last["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("limit of 2 s"), "{last}");
    upstream_closed(&gateway).await;
    let record = stored_record(&gateway.server, &gateway.org.admin, &id).await;
    assert_eq!(record["errorName"], "upstream_too_long", "{record}");
    gateway.server.stop();
}
