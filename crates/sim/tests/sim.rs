//! End-to-end tests of the provider simulator over real HTTP.

use std::time::{Duration, Instant};

use reqwest::{Client, Response, StatusCode};
use serde_json::{Value, json};
use switchboard_sim::{RunningSim, SimConfig, start};

async fn sim_with(config: SimConfig) -> RunningSim {
    start(config, "127.0.0.1:0".parse().expect("addr"))
        .await
        .expect("sim starts")
}

async fn sim() -> RunningSim {
    sim_with(SimConfig::default()).await
}

fn client() -> Client {
    Client::builder().build().expect("client")
}

async fn post(sim: &RunningSim, path: &str, headers: &[(&str, &str)], body: &Value) -> Response {
    let mut request = client().post(format!("{}{path}", sim.url())).json(body);
    for (name, value) in headers {
        request = request.header(*name, *value);
    }
    request.send().await.expect("request sent")
}

/// Request headers as `(name, value)` pairs.
type Headers<'a> = &'a [(&'a str, &'a str)];

const OPENAI: &[(&str, &str)] = &[("authorization", "Bearer sk-test-key-123456")];
const ANTHROPIC: &[(&str, &str)] = &[
    ("x-api-key", "sk-ant-test-123456"),
    ("anthropic-version", "2023-06-01"),
];
const AZURE: &[(&str, &str)] = &[("api-key", "azure-test-key-123456")];
const AZURE_CHAT: &str = "/openai/deployments/my-gpt/chat/completions?api-version=2024-10-21";

fn openai_body(text: &str) -> Value {
    json!({"model": "gpt-4o", "messages": [
        {"role": "system", "content": "be brief"},
        {"role": "user", "content": text},
    ]})
}

fn streaming(mut body: Value) -> Value {
    body["stream"] = json!(true);
    body
}

fn anthropic_body(text: &str) -> Value {
    json!({"model": "claude-sonnet-4-5", "max_tokens": 100, "messages": [
        {"role": "user", "content": text},
    ]})
}

fn weather_tool_openai() -> Value {
    json!([{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}, "units": {"type": "string"}},
    }}}])
}

/// Checks the OpenAI SSE grammar byte by byte and returns the JSON of each `data:` event
/// (without the `[DONE]` terminator, which must be last).
fn openai_events(text: &str) -> Vec<Value> {
    assert!(text.ends_with("data: [DONE]\n\n"), "missing [DONE]: {text}");
    let blocks: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(
        blocks.last(),
        Some(&""),
        "stream must end with a blank line"
    );
    let blocks = &blocks[..blocks.len() - 1];
    let (done, events) = blocks.split_last().expect("events");
    assert_eq!(*done, "data: [DONE]");
    events
        .iter()
        .map(|block| {
            assert!(!block.contains('\n'), "one line per event: {block:?}");
            let json = block.strip_prefix("data: ").expect("data: prefix");
            serde_json::from_str(json).expect("event is JSON")
        })
        .collect()
}

/// Checks the Anthropic `event:`/`data:` grammar and returns `(event name, json)` pairs.
fn anthropic_events(text: &str) -> Vec<(String, Value)> {
    assert!(text.ends_with("\n\n"), "stream must end with a blank line");
    text[..text.len() - 2]
        .split("\n\n")
        .map(|block| {
            let (event, data) = block.split_once('\n').expect("two lines");
            let name = event.strip_prefix("event: ").expect("event: prefix");
            let json = data.strip_prefix("data: ").expect("data: prefix");
            let value: Value = serde_json::from_str(json).expect("data is JSON");
            assert_eq!(value["type"], name, "type matches the event name");
            (name.to_owned(), value)
        })
        .collect()
}

fn content_of(events: &[Value]) -> String {
    events
        .iter()
        .filter_map(|e| {
            e.pointer("/choices/0/delta/content")
                .and_then(Value::as_str)
        })
        .collect()
}

fn header<'a>(response: &'a Response, name: &str) -> &'a str {
    response
        .headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_else(|| panic!("header {name} missing"))
}

/// Reads a body chunk by chunk until it ends or fails; returns the bytes and whether it failed.
async fn read_until_error(mut response: Response) -> (String, bool) {
    let mut bytes = Vec::new();
    loop {
        match response.chunk().await {
            Ok(Some(chunk)) => bytes.extend_from_slice(&chunk),
            Ok(None) => return (String::from_utf8_lossy(&bytes).into_owned(), false),
            Err(_) => return (String::from_utf8_lossy(&bytes).into_owned(), true),
        }
    }
}

// ---------------------------------------------------------------- OpenAI

#[tokio::test]
async fn openai_non_stream_echo_usage_and_headers() {
    let sim = sim().await;
    let response = post(
        &sim,
        "/v1/chat/completions",
        OPENAI,
        &openai_body("hello   big world"),
    )
    .await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "x-request-id").starts_with("req_"));
    assert_eq!(header(&response, "openai-version"), "2020-10-01");
    assert!(
        response
            .headers()
            .contains_key("x-ratelimit-remaining-requests")
    );
    assert_eq!(header(&response, "content-type"), "application/json");
    let text = response.text().await.expect("body");
    assert!(text.starts_with(r#"{"id":"chatcmpl-"#), "{text}");
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["object"], "chat.completion");
    assert_eq!(body["model"], "gpt-4o");
    assert_eq!(
        body["choices"][0]["message"]["content"],
        "Echo: hello big world"
    );
    assert_eq!(body["choices"][0]["message"]["refusal"], Value::Null);
    assert_eq!(body["choices"][0]["finish_reason"], "stop");
    // 2 + 3 words, + 3 per message; output = 4 words.
    assert_eq!(body["usage"]["prompt_tokens"], 11);
    assert_eq!(body["usage"]["completion_tokens"], 4);
    assert_eq!(body["usage"]["total_tokens"], 15);
}

#[tokio::test]
async fn openai_stream_framing_without_usage() {
    let sim = sim().await;
    let response = post(
        &sim,
        "/v1/chat/completions",
        OPENAI,
        &streaming(openai_body("hello world")),
    )
    .await;
    assert_eq!(
        header(&response, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    let text = response.text().await.expect("body");
    let first = text.split("\n\n").next().expect("first");
    assert!(first.starts_with(r#"data: {"id":"chatcmpl-"#), "{first}");
    assert!(first.contains(r#","object":"chat.completion.chunk","created":"#));
    assert!(first.contains(
        r#""choices":[{"index":0,"delta":{"role":"assistant","content":"","refusal":null},"logprobs":null,"finish_reason":null}]}"#
    ));
    assert!(
        text.contains(r#""delta":{"content":" world"},"logprobs":null,"finish_reason":null}]}"#)
    );
    assert!(
        text.contains(
            r#""choices":[{"index":0,"delta":{},"logprobs":null,"finish_reason":"stop"}]}"#
        )
    );
    let events = openai_events(&text);
    assert_eq!(events.len(), 5, "role + 3 words + finish");
    assert!(
        events.iter().all(|e| e["choices"] != json!([])),
        "no usage chunk"
    );
    assert!(events.iter().all(|e| e["id"] == events[0]["id"]));
    assert_eq!(content_of(&events), "Echo: hello world");
}

#[tokio::test]
async fn openai_stream_include_usage_adds_usage_chunk() {
    let sim = sim().await;
    let mut body = streaming(openai_body("hello world"));
    body["stream_options"] = json!({"include_usage": true});
    let text = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .text()
        .await
        .expect("body");
    let events = openai_events(&text);
    let last = events.last().expect("usage chunk");
    assert_eq!(last["choices"], json!([]));
    assert_eq!(last["usage"]["completion_tokens"], 3);
    assert_eq!(last["usage"]["prompt_tokens"], 10);
    assert_eq!(last["usage"]["total_tokens"], 13);
    assert_eq!(
        events[events.len() - 2]["choices"][0]["finish_reason"],
        "stop"
    );
}

#[tokio::test]
async fn openai_max_tokens_finishes_with_length() {
    let sim = sim().await;
    let mut body = openai_body("one two three four");
    body["max_completion_tokens"] = json!(2);
    let body: Value = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: one");
    assert_eq!(body["choices"][0]["finish_reason"], "length");
}

#[tokio::test]
async fn openai_auth_failures() {
    let sim = sim_with(SimConfig {
        openai_key: Some("sk-right-key-0000000000".into()),
        ..SimConfig::default()
    })
    .await;
    let body = openai_body("hi");
    let missing = post(&sim, "/v1/chat/completions", &[], &body).await;
    assert_eq!(missing.status(), StatusCode::UNAUTHORIZED);
    let missing: Value = missing.json().await.expect("json");
    assert_eq!(missing["error"]["code"], Value::Null);
    assert_eq!(missing["error"]["type"], "invalid_request_error");

    let wrong_key = "sk-wrong-key-1234567890abcd";
    let auth = format!("Bearer {wrong_key}");
    let wrong = post(
        &sim,
        "/v1/chat/completions",
        &[("authorization", &auth)],
        &body,
    )
    .await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let text = wrong.text().await.expect("body");
    assert!(!text.contains(wrong_key), "key must be masked: {text}");
    let wrong: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(wrong["error"]["code"], "invalid_api_key");
    assert_eq!(wrong["error"]["param"], Value::Null);
    let message = wrong["error"]["message"].as_str().expect("message");
    assert!(
        message.starts_with("Incorrect API key provided: sk-*"),
        "{message}"
    );
    assert!(message.contains("abcd"), "{message}");

    let right = [("authorization", "Bearer sk-right-key-0000000000")];
    assert_eq!(
        post(&sim, "/v1/chat/completions", &right, &body)
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn openai_unknown_model_and_models_list() {
    let sim = sim().await;
    let mut body = openai_body("hi");
    body["model"] = json!("missing-model");
    let response = post(&sim, "/v1/chat/completions", OPENAI, &body).await;
    assert_eq!(response.status(), StatusCode::NOT_FOUND);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["code"], "model_not_found");

    let list: Value = client()
        .get(format!("{}/v1/models", sim.url()))
        .bearer_auth("sk-x")
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(list["object"], "list");
    assert!(
        list["data"]
            .as_array()
            .is_some_and(|d| d.iter().any(|m| m["id"] == "gpt-4o"))
    );
}

#[tokio::test]
async fn openai_tool_call_stream_reassembles() {
    let sim = sim().await;
    let mut body = streaming(openai_body("Paris, France"));
    body["tools"] = weather_tool_openai();
    let text = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .text()
        .await
        .expect("body");
    let events = openai_events(&text);
    let first = &events[0]["choices"][0]["delta"];
    assert_eq!(first["role"], "assistant");
    assert_eq!(first["content"], Value::Null);
    let call = &first["tool_calls"][0];
    assert_eq!(call["index"], 0);
    assert_eq!(call["type"], "function");
    assert_eq!(call["function"]["name"], "get_weather");
    assert_eq!(call["function"]["arguments"], "");
    let id = call["id"].as_str().expect("id");
    assert!(id.starts_with("call_") && id.len() == 29, "{id}");
    let fragments: Vec<&str> = events[1..]
        .iter()
        .filter_map(|e| e.pointer("/choices/0/delta/tool_calls/0/function/arguments"))
        .filter_map(Value::as_str)
        .collect();
    assert!(fragments.len() > 2, "several fragments");
    let arguments: Value = serde_json::from_str(&fragments.concat()).expect("valid JSON");
    assert_eq!(arguments, json!({"city": "Paris, France"}));
    let finish = &events[events.len() - 1]["choices"][0];
    assert_eq!(finish["finish_reason"], "tool_calls");
    assert_eq!(finish["delta"], json!({}));
}

#[tokio::test]
async fn openai_forced_tool_and_tool_result() {
    let sim = sim().await;
    let mut body = openai_body("Oslo");
    body["tools"] = json!([
        {"type": "function", "function": {"name": "first", "parameters": {"properties": {"a": {}}}}},
        {"type": "function", "function": {"name": "second", "parameters": {}}},
    ]);
    body["tool_choice"] = json!({"type": "function", "function": {"name": "second"}});
    let answer: Value = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .json()
        .await
        .expect("json");
    let call = &answer["choices"][0]["message"]["tool_calls"][0];
    assert_eq!(call["function"]["name"], "second");
    assert_eq!(call["function"]["arguments"], r#"{"input":"Oslo"}"#);
    assert_eq!(answer["choices"][0]["finish_reason"], "tool_calls");

    body["tool_choice"] = json!("none");
    let answer: Value = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["choices"][0]["message"]["content"], "Echo: Oslo");

    body["messages"] = json!([
        {"role": "user", "content": "Oslo"},
        {"role": "assistant", "content": null, "tool_calls": [{"id": "call_1", "type": "function",
            "function": {"name": "first", "arguments": "{}"}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": "12 degrees"},
    ]);
    let answer: Value = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Tool result: 12 degrees"
    );
}

// ---------------------------------------------------------------- Anthropic

#[tokio::test]
async fn anthropic_non_stream_and_headers() {
    let sim = sim().await;
    let response = post(&sim, "/v1/messages", ANTHROPIC, &anthropic_body("hi there")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(header(&response, "request-id").starts_with("req_"));
    assert!(
        response
            .headers()
            .contains_key("anthropic-ratelimit-requests-remaining")
    );
    assert!(header(&response, "anthropic-ratelimit-tokens-reset").ends_with('Z'));
    let body: Value = response.json().await.expect("json");
    assert!(body["id"].as_str().is_some_and(|id| id.starts_with("msg_")));
    assert_eq!(body["type"], "message");
    assert_eq!(body["model"], "claude-sonnet-4-5");
    assert_eq!(
        body["content"],
        json!([{"type": "text", "text": "Echo: hi there"}])
    );
    assert_eq!(body["stop_reason"], "end_turn");
    assert_eq!(body["usage"]["input_tokens"], 5);
    assert_eq!(body["usage"]["output_tokens"], 3);
}

#[tokio::test]
async fn anthropic_stream_event_order_and_bytes() {
    let sim = sim().await;
    let response = post(
        &sim,
        "/v1/messages?beta=true",
        ANTHROPIC,
        &streaming(anthropic_body("a b")),
    )
    .await;
    assert_eq!(
        header(&response, "content-type"),
        "text/event-stream; charset=utf-8"
    );
    assert_eq!(header(&response, "cache-control"), "no-cache");
    let text = response.text().await.expect("body");
    assert!(
        text.contains("\n\nevent: ping\ndata: {\"type\": \"ping\"}\n\n"),
        "literal ping"
    );
    assert!(text.contains(
        "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n"
    ));
    assert!(text.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
    let events = anthropic_events(&text);
    let names: Vec<&str> = events.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(
        names,
        [
            "message_start",
            "content_block_start",
            "ping",
            "content_block_delta",
            "content_block_delta",
            "content_block_delta",
            "content_block_stop",
            "message_delta",
            "message_stop",
        ]
    );
    let start = &events[0].1["message"];
    assert_eq!(start["usage"]["output_tokens"], 1);
    assert_eq!(start["content"], json!([]));
    assert_eq!(start["stop_reason"], Value::Null);
    let text: String = events
        .iter()
        .filter_map(|(_, v)| v.pointer("/delta/text").and_then(Value::as_str))
        .collect();
    assert_eq!(text, "Echo: a b");
    let delta = &events[7].1;
    assert_eq!(delta["delta"]["stop_reason"], "end_turn");
    assert_eq!(delta["usage"]["output_tokens"], 3);
    assert_eq!(delta["usage"]["input_tokens"], 5);
}

#[tokio::test]
async fn anthropic_request_errors() {
    let sim = sim_with(SimConfig {
        anthropic_key: Some("sk-ant-right".into()),
        ..SimConfig::default()
    })
    .await;
    let right = [
        ("x-api-key", "sk-ant-right"),
        ("anthropic-version", "2023-06-01"),
    ];
    let cases: [(Headers, Value, u16, &str); 5] = [
        (
            &[("anthropic-version", "2023-06-01")],
            anthropic_body("x"),
            401,
            "authentication_error",
        ),
        (ANTHROPIC, anthropic_body("x"), 401, "authentication_error"),
        (
            &[("x-api-key", "sk-ant-right")],
            anthropic_body("x"),
            400,
            "invalid_request_error",
        ),
        (
            &right,
            json!({"model": "m", "messages": []}),
            400,
            "invalid_request_error",
        ),
        (
            &right,
            json!({"model": "does-not-exist", "max_tokens": 5, "messages": []}),
            404,
            "not_found_error",
        ),
    ];
    for (headers, body, status, kind) in cases {
        let response = post(&sim, "/v1/messages", headers, &body).await;
        assert_eq!(response.status().as_u16(), status, "{body}");
        let request_id = header(&response, "request-id").to_owned();
        assert!(response.headers().contains_key("x-should-retry"));
        let error: Value = response.json().await.expect("json");
        assert_eq!(error["type"], "error");
        assert_eq!(error["error"]["type"], kind);
        assert_eq!(error["request_id"], request_id.as_str());
    }
    let body = json!({"model": "m", "messages": []});
    let error: Value = post(&sim, "/v1/messages", &right, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(error["error"]["message"], "max_tokens: Field required");
    let bearer = [
        ("authorization", "Bearer sk-ant-right"),
        ("anthropic-version", "2023-06-01"),
    ];
    assert_eq!(
        post(&sim, "/v1/messages", &bearer, &anthropic_body("x"))
            .await
            .status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn anthropic_tool_use_stream_and_tool_result() {
    let sim = sim().await;
    let mut body = streaming(anthropic_body("Paris"));
    body["tools"] = json!([{"name": "get_weather", "input_schema": {"type": "object",
        "properties": {"location": {"type": "string"}}}}]);
    body["tool_choice"] = json!({"type": "any"});
    let text = post(&sim, "/v1/messages", ANTHROPIC, &body)
        .await
        .text()
        .await
        .expect("body");
    let events = anthropic_events(&text);
    let block = &events[1].1["content_block"];
    assert_eq!(block["type"], "tool_use");
    assert_eq!(block["input"], json!({}));
    assert!(
        block["id"]
            .as_str()
            .is_some_and(|id| id.starts_with("toolu_"))
    );
    assert_eq!(events[2].0, "ping");
    let parts: Vec<&str> = events
        .iter()
        .filter_map(|(_, v)| v.pointer("/delta/partial_json").and_then(Value::as_str))
        .collect();
    assert_eq!(parts[0], "", "first fragment is empty");
    assert!(parts.len() > 2);
    let input: Value = serde_json::from_str(&parts.concat()).expect("valid JSON");
    assert_eq!(input, json!({"location": "Paris"}));
    let delta = events
        .iter()
        .find(|(n, _)| n == "message_delta")
        .expect("message_delta");
    assert_eq!(delta.1["delta"]["stop_reason"], "tool_use");

    body["stream"] = json!(false);
    body["messages"] = json!([
        {"role": "user", "content": "Paris"},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1",
            "content": [{"type": "text", "text": "sunny"}]}]},
    ]);
    let answer: Value = post(&sim, "/v1/messages", ANTHROPIC, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["content"][0]["text"], "Tool result: sunny");
    assert_eq!(answer["stop_reason"], "end_turn");
}

#[tokio::test]
async fn anthropic_max_tokens_stop_reason() {
    let sim = sim().await;
    let mut body = anthropic_body("one two three");
    body["max_tokens"] = json!(2);
    let answer: Value = post(&sim, "/v1/messages", ANTHROPIC, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(answer["stop_reason"], "max_tokens");
    assert_eq!(answer["usage"]["output_tokens"], 2);
}

// ---------------------------------------------------------------- Azure

#[tokio::test]
async fn azure_non_stream_filters_and_model() {
    let sim = sim().await;
    let response = post(&sim, AZURE_CHAT, AZURE, &openai_body("hi")).await;
    assert_eq!(response.status(), StatusCode::OK);
    assert!(response.headers().contains_key("apim-request-id"));
    let text = response.text().await.expect("body");
    assert!(
        text.starts_with(
            r#"{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}"#
        ),
        "{text}"
    );
    let body: Value = serde_json::from_str(&text).expect("json");
    assert_eq!(body["model"], "gpt-5-2025-08-07");
    assert_eq!(body["prompt_filter_results"][0]["prompt_index"], 0);
    assert_eq!(
        body["prompt_filter_results"][0]["content_filter_results"]["jailbreak"]["detected"],
        false
    );
    assert_eq!(body["choices"][0]["message"]["content"], "Echo: hi");
    let keys: Vec<&String> = body.as_object().expect("object").keys().collect();
    let mut sorted = keys.clone();
    sorted.sort();
    assert_eq!(keys, sorted, "Azure keys are alphabetical");
}

#[tokio::test]
async fn azure_stream_starts_with_filter_preamble() {
    let sim = sim().await;
    let mut body = streaming(openai_body("hello world"));
    body["stream_options"] = json!({"include_usage": true});
    let text = post(&sim, AZURE_CHAT, AZURE, &body)
        .await
        .text()
        .await
        .expect("body");
    assert!(text.starts_with(
        r#"data: {"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"#
    ), "{text}");
    let events = openai_events(&text);
    assert_eq!(events[1]["choices"][0]["content_filter_results"], json!({}));
    assert_eq!(events[1]["choices"][0]["delta"]["role"], "assistant");
    assert_eq!(
        events[2]["choices"][0]["content_filter_results"]["violence"]["severity"],
        "safe"
    );
    assert_eq!(events[2]["model"], "gpt-5-2025-08-07");
    assert_eq!(content_of(&events), "Echo: hello world");
    assert_eq!(events.last().expect("usage")["choices"], json!([]));
}

#[tokio::test]
async fn azure_routing_and_auth() {
    let sim = sim_with(SimConfig {
        azure_key: Some("azure-test-key-123456".into()),
        ..SimConfig::default()
    })
    .await;
    let body = openai_body("hi");
    let no_version = post(
        &sim,
        "/openai/deployments/my-gpt/chat/completions",
        AZURE,
        &body,
    )
    .await;
    assert_eq!(no_version.status(), StatusCode::NOT_FOUND);

    let wrong = post(&sim, AZURE_CHAT, &[("api-key", "nope-nope-nope")], &body).await;
    assert_eq!(wrong.status(), StatusCode::UNAUTHORIZED);
    let wrong: Value = wrong.json().await.expect("json");
    assert_eq!(wrong["error"]["code"], "401");
    assert!(
        wrong["error"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("Access denied"))
    );

    let missing = "/openai/deployments/missing-dep/chat/completions?api-version=2024-10-21";
    let error: Value = post(&sim, missing, AZURE, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(error["error"]["code"], "DeploymentNotFound");

    let bearer = [("authorization", "Bearer azure-test-key-123456")];
    let v1 = post(&sim, "/openai/v1/chat/completions", &bearer, &body).await;
    assert_eq!(v1.status(), StatusCode::OK);
    let models = client()
        .get(format!("{}/openai/v1/models", sim.url()))
        .header("api-key", "azure-test-key-123456")
        .send()
        .await
        .expect("sent");
    assert_eq!(models.status(), StatusCode::OK);
}

#[tokio::test]
async fn azure_anthropic_accepts_azure_keys() {
    let sim = sim_with(SimConfig {
        azure_key: Some("azure-key".into()),
        ..SimConfig::default()
    })
    .await;
    let body = anthropic_body("hi");
    for key_header in ["x-api-key", "api-key"] {
        let headers = [
            (key_header, "azure-key"),
            ("anthropic-version", "2023-06-01"),
        ];
        let response = post(&sim, "/anthropic/v1/messages", &headers, &body).await;
        assert_eq!(response.status(), StatusCode::OK, "{key_header}");
    }
    let wrong = [("x-api-key", "other"), ("anthropic-version", "2023-06-01")];
    let response = post(&sim, "/anthropic/v1/messages", &wrong, &body).await;
    assert_eq!(response.status(), StatusCode::UNAUTHORIZED);
    let error: Value = response.json().await.expect("json");
    assert_eq!(error["error"]["type"], "authentication_error");
}

// ---------------------------------------------------------------- Faults

#[tokio::test]
async fn status_directive_per_protocol() {
    let sim = sim().await;
    let text = "hi [[sim:status=429 retry_after=2]]";
    let openai = post(&sim, "/v1/chat/completions", OPENAI, &openai_body(text)).await;
    assert_eq!(openai.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&openai, "retry-after"), "2");
    let error: Value = openai.json().await.expect("json");
    assert_eq!(error["error"]["code"], "rate_limit_exceeded");

    let anthropic = post(&sim, "/v1/messages", ANTHROPIC, &anthropic_body(text)).await;
    assert_eq!(anthropic.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&anthropic, "retry-after"), "2");
    assert_eq!(header(&anthropic, "x-should-retry"), "true");
    let error: Value = anthropic.json().await.expect("json");
    assert_eq!(error["error"]["type"], "rate_limit_error");

    let azure = post(&sim, AZURE_CHAT, AZURE, &openai_body(text)).await;
    assert_eq!(azure.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&azure, "retry-after"), "2");
    let error: Value = azure.json().await.expect("json");
    assert_eq!(error["error"]["code"], "429");
    assert!(
        error["error"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("retry after 2 seconds"))
    );

    let overloaded = post(
        &sim,
        "/v1/messages",
        ANTHROPIC,
        &anthropic_body("[[sim:status=529]]"),
    )
    .await;
    assert_eq!(overloaded.status().as_u16(), 529);
    let error: Value = overloaded.json().await.expect("json");
    assert_eq!(error["error"]["type"], "overloaded_error");

    let server = post(
        &sim,
        "/v1/chat/completions",
        OPENAI,
        &openai_body("[[sim:status=503]]"),
    )
    .await;
    assert_eq!(server.status(), StatusCode::SERVICE_UNAVAILABLE);
    let error: Value = server.json().await.expect("json");
    assert_eq!(error["error"]["type"], "server_error");
}

#[tokio::test]
async fn directives_are_stripped_from_the_echo() {
    let sim = sim().await;
    let body = openai_body("before [[sim:latency_ms=1]] after");
    let answer: Value = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .json()
        .await
        .expect("json");
    assert_eq!(
        answer["choices"][0]["message"]["content"],
        "Echo: before after"
    );
}

#[tokio::test]
async fn cut_after_breaks_the_body() {
    let sim = sim().await;
    let body = streaming(openai_body("a b c d e f g [[sim:cut_after=3]]"));
    let response = post(&sim, "/v1/chat/completions", OPENAI, &body).await;
    assert_eq!(response.status(), StatusCode::OK);
    let (text, failed) = read_until_error(response).await;
    assert!(failed, "the body must error, not end cleanly");
    assert!(!text.contains("[DONE]"));
    assert!(text.contains(r#""delta":{"role":"assistant""#));
    assert_eq!(
        text.matches(r#""delta":{"content":""#).count(),
        3,
        "exactly 3 content chunks"
    );

    let body = streaming(anthropic_body("a b c d e f g [[sim:cut_after=3]]"));
    let (text, failed) = read_until_error(post(&sim, "/v1/messages", ANTHROPIC, &body).await).await;
    assert!(failed);
    assert_eq!(text.matches("event: content_block_delta").count(), 3);
    assert!(!text.contains("message_stop"));
}

#[tokio::test]
async fn error_event_mid_stream() {
    let sim = sim().await;
    let body = streaming(openai_body("a b c d e [[sim:error_event]]"));
    let text = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .text()
        .await
        .expect("clean end");
    let last = text.trim_end().rsplit("\n\n").next().expect("last event");
    assert!(last.starts_with(r#"data: {"error":{"message":"#), "{text}");
    assert!(!text.contains("[DONE]"));
    assert_eq!(content_of(&openai_events_lenient(&text)), "Echo: a");

    let body = streaming(anthropic_body("a b c d e [[sim:error_event]]"));
    let text = post(&sim, "/v1/messages", ANTHROPIC, &body)
        .await
        .text()
        .await
        .expect("clean end");
    let events = anthropic_events(&text);
    let (name, error) = events.last().expect("error event");
    assert_eq!(name, "error");
    assert_eq!(error["error"]["type"], "overloaded_error");
    assert!(!events.iter().any(|(n, _)| n == "message_stop"));
}

/// Parses `data:` events of a stream that ends without `[DONE]`.
fn openai_events_lenient(text: &str) -> Vec<Value> {
    text.split("\n\n")
        .filter_map(|b| b.strip_prefix("data: "))
        .filter_map(|j| serde_json::from_str(j).ok())
        .collect()
}

#[tokio::test]
async fn hang_never_sends_a_head() {
    let sim = sim().await;
    let client = Client::builder()
        .timeout(Duration::from_millis(300))
        .build()
        .expect("client");
    let error = client
        .post(format!("{}/v1/chat/completions", sim.url()))
        .bearer_auth("sk-x")
        .json(&openai_body("wait [[sim:hang]]"))
        .send()
        .await
        .expect_err("must time out");
    assert!(error.is_timeout());
    assert_eq!(
        sim.handle.requests().len(),
        1,
        "hung request is still recorded"
    );
}

#[tokio::test]
async fn latency_delay_and_chunk_count() {
    let sim = sim().await;
    let started = Instant::now();
    let body = openai_body("x [[sim:latency_ms=150]]");
    let response = post(&sim, "/v1/chat/completions", OPENAI, &body).await;
    assert!(started.elapsed() >= Duration::from_millis(150));
    assert_eq!(response.status(), StatusCode::OK);

    let started = Instant::now();
    let body = streaming(openai_body("a b c [[sim:delay_ms=40]]"));
    let text = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .text()
        .await
        .expect("body");
    assert!(
        started.elapsed() >= Duration::from_millis(4 * 40),
        "4 gaps between 5+ frames"
    );
    assert_eq!(content_of(&openai_events(&text)), "Echo: a b c");

    let body = streaming(openai_body("short [[sim:chunks=64]]"));
    let text = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .text()
        .await
        .expect("body");
    let events = openai_events(&text);
    assert_eq!(events.len(), 64 + 2, "role + 64 content + finish");
    assert!(content_of(&events).starts_with("Echo: short lorem ipsum"));

    let body = streaming(anthropic_body("[[sim:chunks=2]] a b c d e"));
    let text = post(&sim, "/v1/messages", ANTHROPIC, &body)
        .await
        .text()
        .await
        .expect("body");
    assert_eq!(text.matches("event: content_block_delta").count(), 2);
}

#[tokio::test]
async fn global_config_knobs_apply_without_directives() {
    let sim = sim_with(SimConfig {
        chunks: Some(3),
        latency: Duration::from_millis(50),
        ..SimConfig::default()
    })
    .await;
    let started = Instant::now();
    let body = streaming(openai_body("one two three four five six seven"));
    let text = post(&sim, "/v1/chat/completions", OPENAI, &body)
        .await
        .text()
        .await
        .expect("body");
    assert!(started.elapsed() >= Duration::from_millis(50));
    let events = openai_events(&text);
    assert_eq!(events.len(), 3 + 2);
    assert_eq!(
        content_of(&events),
        "Echo: one two three four five six seven"
    );
}

#[tokio::test]
async fn long_stream_is_served_lazily() {
    let sim = sim().await;
    let body = streaming(openai_body("[[sim:chunks=20000]]"));
    let mut response = post(&sim, "/v1/chat/completions", OPENAI, &body).await;
    let first = response.chunk().await.expect("chunk").expect("some bytes");
    assert!(first.starts_with(b"data: "));
    drop(response);
    // A second request still works while the first stream is abandoned.
    let ok = post(&sim, "/v1/chat/completions", OPENAI, &openai_body("hi")).await;
    assert_eq!(ok.status(), StatusCode::OK);
}

// ---------------------------------------------------------------- Recording

#[tokio::test]
async fn requests_are_recorded() {
    let sim = sim().await;
    let headers = [("authorization", "Bearer sk-upstream"), ("x-custom", "yes")];
    post(&sim, "/v1/chat/completions", &headers, &openai_body("hi")).await;
    post(
        &sim,
        "/v1/messages?beta=true",
        ANTHROPIC,
        &anthropic_body("yo"),
    )
    .await;
    let requests = sim.handle.requests();
    assert_eq!(requests.len(), 2);
    let first = &requests[0];
    assert_eq!(first.method, "POST");
    assert_eq!(first.path, "/v1/chat/completions");
    assert_eq!(first.header("Authorization"), Some("Bearer sk-upstream"));
    assert_eq!(first.header("x-custom"), Some("yes"));
    assert_eq!(first.json().expect("json")["model"], "gpt-4o");
    assert_eq!(requests[1].path, "/v1/messages?beta=true");
    assert_eq!(requests[1].path_only(), "/v1/messages");

    let listed: Value = client()
        .get(format!("{}/_sim/requests", sim.url()))
        .send()
        .await
        .expect("sent")
        .json()
        .await
        .expect("json");
    assert_eq!(
        listed.as_array().map(Vec::len),
        Some(2),
        "/_sim calls are not recorded"
    );
    assert_eq!(listed[0]["json"]["model"], "gpt-4o");
    assert_eq!(listed[0]["headers"][0].as_array().map(Vec::len), Some(2));

    sim.handle.clear();
    assert!(sim.handle.requests().is_empty());
    post(&sim, "/v1/chat/completions", OPENAI, &openai_body("hi")).await;
    let status = client()
        .delete(format!("{}/_sim/requests", sim.url()))
        .send()
        .await
        .expect("sent")
        .status();
    assert_eq!(status, StatusCode::NO_CONTENT);
    assert!(sim.handle.requests().is_empty());
}

#[tokio::test]
async fn shutdown_stops_serving() {
    let sim = sim().await;
    let url = sim.url();
    sim.shutdown().await;
    let result = client().get(format!("{url}/v1/models")).send().await;
    assert!(result.is_err());
}

/// A Bedrock API key is a bearer token instead of a SigV4 signature: the configured key
/// passes on Converse, ConverseStream and InvokeModel, any other is AWS's 403.
#[tokio::test]
async fn bedrock_accepts_a_configured_api_key_as_bearer() {
    let sim = sim_with(SimConfig {
        bedrock_api_key: Some("ABSK-bedrock-test-key".into()),
        ..SimConfig::default()
    })
    .await;
    let model = "/model/anthropic.claude-sonnet-4-20250514-v1%3A0";
    let body = json!({"messages": [{"role": "user", "content": [{"text": "Hello"}]}]});
    let good = [("authorization", "Bearer ABSK-bedrock-test-key")];
    let answer = post(&sim, &format!("{model}/converse"), &good, &body).await;
    assert_eq!(answer.status(), StatusCode::OK);
    let answer: Value = answer.json().await.unwrap();
    assert_eq!(
        answer["output"]["message"]["content"][0]["text"],
        "Echo: Hello"
    );
    let stream = post(&sim, &format!("{model}/converse-stream"), &good, &body).await;
    assert_eq!(stream.status(), StatusCode::OK);
    assert_eq!(
        header(&stream, "content-type"),
        "application/vnd.amazon.eventstream"
    );
    let invoke = json!({"anthropic_version": "bedrock-2023-05-31", "max_tokens": 16,
                        "messages": [{"role": "user", "content": "Hello"}]});
    let invoked = post(&sim, &format!("{model}/invoke"), &good, &invoke).await;
    assert_eq!(invoked.status(), StatusCode::OK);
    for wrong in ["Bearer ABSK-other-key", "bearer ABSK-bedrock-test-key-2"] {
        let refused = post(
            &sim,
            &format!("{model}/converse"),
            &[("authorization", wrong)],
            &body,
        )
        .await;
        assert_eq!(refused.status(), StatusCode::FORBIDDEN, "{wrong}");
        assert!(header(&refused, "x-amzn-errortype").starts_with("AccessDeniedException"));
        let text = refused.text().await.unwrap();
        assert!(!text.contains("ABSK"), "the key is not echoed: {text}");
    }
}
