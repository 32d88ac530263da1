//! The inference surfaces against the simulator: the cross-protocol matrix, per-request
//! selection, errors in each surface's own shape, and streams that tell the truth.

use serde_json::{Value, json};

use crate::gateway::{
    Answer, Gateway, anthropic_answer, anthropic_stream_answer, cases, openai_answer,
    openai_stream_answer,
};
use crate::harness::{Backend, backends};

#[derive(Clone, Copy, Debug, PartialEq)]
enum Surface {
    OpenAi,
    Anthropic,
}

const PROMPT: &str = "hello gateway";

fn weather_tool_openai() -> Value {
    json!([{ "type": "function", "function": { "name": "get_weather", "description": "Weather for a city",
        "parameters": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } } }])
}

fn weather_tool_anthropic() -> Value {
    json!([{ "name": "get_weather", "description": "Weather for a city",
        "input_schema": { "type": "object", "properties": { "city": { "type": "string" } }, "required": ["city"] } }])
}

fn request(
    surface: Surface,
    provider: &str,
    model: &str,
    stream: bool,
    tools: bool,
) -> (&'static str, Value) {
    match surface {
        Surface::OpenAi => {
            let mut body = json!({ "provider": provider, "model": model, "stream": stream,
                "messages": [{ "role": "system", "content": "Be brief." }, { "role": "user", "content": PROMPT }] });
            if stream {
                body["stream_options"] = json!({ "include_usage": true });
            }
            if tools {
                body["tools"] = weather_tool_openai();
            }
            ("/v1/chat/completions", body)
        }
        Surface::Anthropic => {
            let mut body = json!({ "provider": provider, "model": model, "stream": stream, "max_tokens": 256,
                "system": "Be brief.", "messages": [{ "role": "user", "content": PROMPT }] });
            if tools {
                body["tools"] = weather_tool_anthropic();
            }
            ("/v1/messages", body)
        }
    }
}

async fn answer(response: reqwest::Response, surface: Surface, stream: bool) -> Answer {
    let text = response.text().await.unwrap();
    assert!(!text.contains(crate::harness::CANARY), "canary leaked");
    match (surface, stream) {
        (Surface::OpenAi, false) => openai_answer(&serde_json::from_str(&text).unwrap()),
        (Surface::Anthropic, false) => anthropic_answer(&serde_json::from_str(&text).unwrap()),
        (Surface::OpenAi, true) => openai_stream_answer(&text),
        (Surface::Anthropic, true) => anthropic_stream_answer(&text),
    }
}

/// 2 surfaces × every provider protocol (OpenAI, Azure OpenAI, OpenAI-compatible,
/// Anthropic, Azure Anthropic, Anthropic-compatible, Bedrock Converse, Vertex Gemini, Vertex
/// Anthropic, plus both managed families) × stream or not × text or tools.
#[tokio::test]
async fn cross_protocol_matrix() {
    let gateway = Gateway::start(Backend::Sqlite).await;
    for case in cases() {
        for surface in [Surface::OpenAi, Surface::Anthropic] {
            for stream in [false, true] {
                for tools in [false, true] {
                    let label = format!(
                        "{surface:?} → {} {} stream={stream} tools={tools}",
                        case.provider, case.model
                    );
                    gateway.sim.handle.clear();
                    let (path, body) = request(surface, case.provider, case.model, stream, tools);
                    let response = gateway.post(path, &body).await;
                    let headers = response.headers().clone();
                    if response.status() != 200 {
                        panic!(
                            "{label}: {} {}",
                            response.status(),
                            response.text().await.unwrap()
                        );
                    }
                    assert_eq!(headers["x-switchboard-provider"], case.provider, "{label}");
                    assert_eq!(headers["x-switchboard-model"], case.model, "{label}");
                    assert!(
                        headers.contains_key("x-switchboard-invocation-id"),
                        "{label}"
                    );
                    let got = answer(response, surface, stream).await;
                    assert!(got.terminated, "{label}: no clean terminator: {got:?}");
                    assert!(got.error.is_none(), "{label}: {got:?}");
                    assert!(
                        got.input_tokens > 0 && got.output_tokens > 0,
                        "{label}: usage {got:?}"
                    );
                    if tools {
                        assert_eq!(got.tool_calls.len(), 1, "{label}: {got:?}");
                        assert_eq!(got.tool_calls[0].0, "get_weather", "{label}");
                        let args: Value = serde_json::from_str(&got.tool_calls[0].1).unwrap();
                        assert_eq!(args, json!({ "city": PROMPT }), "{label}");
                        let expected_stop = if surface == Surface::OpenAi {
                            "tool_calls"
                        } else {
                            "tool_use"
                        };
                        assert_eq!(got.stop, expected_stop, "{label}");
                    } else {
                        assert!(got.text.contains(PROMPT), "{label}: {got:?}");
                        let expected_stop = if surface == Surface::OpenAi {
                            "stop"
                        } else {
                            "end_turn"
                        };
                        assert_eq!(got.stop, expected_stop, "{label}");
                    }
                    let upstream = gateway
                        .sim
                        .handle
                        .last_request()
                        .expect("upstream was called");
                    assert!(
                        upstream.path_only().starts_with(case.expect_path),
                        "{label}: {}",
                        upstream.path_only()
                    );
                    let auth = upstream.header(case.expect_auth.0).unwrap_or_default();
                    assert!(
                        auth.starts_with(&case.expect_auth.1),
                        "{label}: {} = {auth}",
                        case.expect_auth.0
                    );
                    assert!(
                        upstream
                            .headers
                            .iter()
                            .all(|(_, v)| !v.contains(&gateway.org.member)),
                        "{label}: the caller's token was forwarded"
                    );
                    let sent = upstream.json().unwrap();
                    assert!(
                        sent.get("provider").is_none(),
                        "{label}: provider field forwarded"
                    );
                    if let Some(model) = case.expect_upstream_model {
                        assert_eq!(sent["model"], model, "{label}");
                    }
                }
            }
        }
    }
    gateway.server.stop();
}

async fn chat(gateway: &Gateway, body: Value) -> (u16, Option<String>, Option<String>) {
    let response = gateway.post("/v1/chat/completions", &body).await;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_owned())
    };
    (
        response.status().as_u16(),
        header("x-switchboard-provider"),
        header("x-switchboard-model"),
    )
}

#[tokio::test]
async fn selection_follows_request_then_organization_then_system_defaults() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let messages = json!([{ "role": "user", "content": "hi" }]);
        // System default: managed / claude-haiku.
        let got = chat(&gateway, json!({ "messages": messages })).await;
        assert_eq!(
            got,
            (
                200,
                Some("managed".into()),
                Some("claude-haiku-4-5-20251001".into())
            )
        );
        // `provider/model` in the model string.
        let got = chat(
            &gateway,
            json!({ "model": "anthropic/claude-opus-4-6", "messages": messages }),
        )
        .await;
        assert_eq!(
            got,
            (
                200,
                Some("anthropic".into()),
                Some("claude-opus-4-6".into())
            )
        );
        // Only a provider: its first enabled model.
        let got = chat(
            &gateway,
            json!({ "provider": "openai-compatible", "messages": messages }),
        )
        .await;
        assert_eq!(
            got,
            (
                200,
                Some("openai-compatible".into()),
                Some("compat-model".into())
            )
        );
        // Only a model the default provider lacks: the first provider offering it.
        let got = chat(
            &gateway,
            json!({ "model": "claude-compat", "messages": messages }),
        )
        .await;
        assert_eq!(
            got,
            (
                200,
                Some("anthropic-compatible".into()),
                Some("claude-compat".into())
            )
        );
        // The organization default applies at once after it changes.
        gateway
            .server
            .put(
                "/v1/llm-providers/defaults",
                &gateway.org.admin,
                json!({ "provider": "anthropic", "model": "claude-sonnet-4-20250514" }),
            )
            .await
            .expect(200);
        let got = chat(&gateway, json!({ "messages": messages })).await;
        assert_eq!(
            got,
            (
                200,
                Some("anthropic".into()),
                Some("claude-sonnet-4-20250514".into())
            )
        );
        // Disabling it falls back to the system default.
        gateway
            .server
            .put(
                "/v1/llm-providers/anthropic",
                &gateway.org.admin,
                json!({ "enabled": false }),
            )
            .await
            .expect(200);
        let got = chat(&gateway, json!({ "messages": messages })).await;
        assert_eq!(
            got,
            (
                200,
                Some("managed".into()),
                Some("claude-haiku-4-5-20251001".into())
            )
        );
        gateway.server.stop();
    }
}

#[tokio::test]
async fn validation_errors_use_each_surfaces_shape_with_the_port_name() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        gateway
            .server
            .put(
                "/v1/llm-providers/anthropic",
                &gateway.org.admin,
                json!({ "enabled": false }),
            )
            .await
            .expect(200);
        gateway
            .server
            .put(
                "/v1/llm-providers/openai",
                &gateway.org.admin,
                json!({ "overrides": { "models": { "gpt-5": { "enabled": false } } } }),
            )
            .await
            .expect(200);
        let cases = [
            (
                json!({ "provider": "port", "model": "claude-opus-4-6" }),
                404,
                "LLMProviderNotFoundError",
            ),
            (
                json!({ "provider": "anthropic", "model": "claude-opus-4-6" }),
                400,
                "LLMProviderDisabledError",
            ),
            (
                json!({ "provider": "openai", "model": "gpt-5" }),
                400,
                "LLMProviderModelNotEnabledError",
            ),
            (
                json!({ "provider": "managed", "model": "gpt-4o" }),
                400,
                "LLMProviderModelNotEnabledError",
            ),
        ];
        for (selection, status, name) in cases {
            let mut openai = json!({ "messages": [{ "role": "user", "content": "hi" }] });
            let mut anthropic =
                json!({ "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
            for body in [&mut openai, &mut anthropic] {
                body["provider"] = selection["provider"].clone();
                body["model"] = selection["model"].clone();
            }
            let response = gateway.post("/v1/chat/completions", &openai).await;
            assert_eq!(response.status().as_u16(), status, "{selection}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], name, "{body}");
            assert!(body["error"]["message"].is_string());
            let response = gateway.post("/v1/messages", &anthropic).await;
            assert_eq!(response.status().as_u16(), status, "{selection}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["type"], "error");
            assert_eq!(body["error"]["type"], name, "{body}");
        }
        // Malformed bodies: clear 400s in the caller's shape.
        let client = reqwest::Client::new();
        let deep = format!(r#"{{"messages":{}{}}}"#, "[".repeat(200), "]".repeat(200));
        for raw in ["{", "[1]", r#"{"model":"a","model":"b"}"#, deep.as_str()] {
            let response = client
                .post(gateway.url("/v1/chat/completions"))
                .bearer_auth(&gateway.org.member)
                .body(raw.to_owned())
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 400, "{raw}");
            let body: Value = response.json().await.unwrap();
            assert_eq!(body["error"]["code"], "invalid_request", "{raw}");
        }
        gateway.server.stop();
    }
}

#[tokio::test]
async fn authentication_on_both_surfaces() {
    let gateway = Gateway::start(Backend::Sqlite).await;
    let client = reqwest::Client::new();
    let body = json!({ "max_tokens": 10, "messages": [{ "role": "user", "content": "hi" }] });
    let response = client
        .post(gateway.url("/v1/messages"))
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["type"], "unauthorized");
    let response = client
        .post(gateway.url("/v1/messages"))
        .header("x-api-key", &gateway.org.member)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    let response = client
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth("sb_bad_token")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 401);
    let error: Value = response.json().await.unwrap();
    assert_eq!(error["error"]["code"], "unauthorized");
    let models = client
        .get(gateway.url("/v1/models"))
        .bearer_auth(&gateway.org.member)
        .send()
        .await
        .unwrap();
    let models: Value = models.json().await.unwrap();
    assert_eq!(models["object"], "list");
    let pairs: Vec<(String, String)> = models["data"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            (
                m["provider"].as_str().unwrap().to_owned(),
                m["id"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(pairs.contains(&("openai".into(), "gpt-5".into())));
    assert!(pairs.contains(&("openai-compatible".into(), "compat-model".into())));
    assert!(pairs.contains(&("managed".into(), "claude-sonnet-4-5-20250929".into())));
    gateway.server.stop();
}

#[tokio::test]
async fn managed_models_without_a_platform_key_are_unavailable_not_broken() {
    let gateway = Gateway::start_with(
        Backend::Sqlite,
        Default::default(),
        vec![("SWITCHBOARD_MANAGED_OPENAI_API_KEY".into(), String::new())],
    )
    .await;
    let response = gateway
        .post(
            "/v1/chat/completions",
            &json!({ "provider": "managed", "model": "gpt-5",
        "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(response.status(), 503);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "service_unavailable");
    let models: Value = reqwest::Client::new()
        .get(gateway.url("/v1/models"))
        .bearer_auth(&gateway.org.member)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert!(
        !models["data"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["provider"] == "managed" && m["id"] == "gpt-5")
    );
    assert!(
        gateway.sim.handle.requests().is_empty(),
        "nothing was sent upstream"
    );
    gateway.server.stop();
}

#[tokio::test]
async fn upstream_failures_reach_the_caller_honestly() {
    let gateway = Gateway::start(Backend::Sqlite).await;
    for (provider, model) in [("openai", "gpt-5"), ("anthropic", "claude-opus-4-6")] {
        for surface in [Surface::OpenAi, Surface::Anthropic] {
            let label = format!("{surface:?} → {provider}");
            // A long Retry-After is passed on, not waited out.
            let (path, mut body) = request(surface, provider, model, false, false);
            body["messages"][if surface == Surface::OpenAi { 1 } else { 0 }]["content"] =
                json!("hi [[sim:status=429 retry_after=30]]");
            gateway.sim.handle.clear();
            let response = gateway.post(path, &body).await;
            assert_eq!(response.status(), 429, "{label}");
            assert_eq!(response.headers()["retry-after"], "30", "{label}");
            assert_eq!(
                gateway.sim.handle.requests().len(),
                1,
                "{label}: no retry for a long wait"
            );
            // A short one is retried once before anything reached the caller.
            body["messages"][if surface == Surface::OpenAi { 1 } else { 0 }]["content"] =
                json!("hi [[sim:status=503 retry_after=1]]");
            gateway.sim.handle.clear();
            let response = gateway.post(path, &body).await;
            assert_eq!(
                gateway.sim.handle.requests().len(),
                2,
                "{label}: retried once"
            );
            assert!(response.status().is_server_error(), "{label}");

            // A stream cut mid-way ends with an error event, never a clean terminator.
            for knob in ["[[sim:cut_after=3]]", "[[sim:error_event]]"] {
                let (path, mut body) = request(surface, provider, model, true, false);
                body["messages"][if surface == Surface::OpenAi { 1 } else { 0 }]["content"] =
                    json!(format!("one two three four five six {knob}"));
                let response = gateway.post(path, &body).await;
                assert_eq!(response.status(), 200, "{label} {knob}");
                let got = answer(response, surface, true).await;
                assert!(
                    !got.terminated,
                    "{label} {knob}: a broken stream must not end cleanly: {got:?}"
                );
                assert!(
                    got.error.is_some(),
                    "{label} {knob}: an error event is expected: {got:?}"
                );
            }
        }
    }
    gateway.server.stop();
}

#[tokio::test]
async fn rejected_upstream_credentials_are_a_configuration_error_not_the_callers() {
    let sim = switchboard_sim::SimConfig {
        openai_key: Some("sk-the-right-one".into()),
        ..Default::default()
    };
    let gateway = Gateway::start_with(Backend::Sqlite, sim, Vec::new()).await;
    let response = gateway
        .post(
            "/v1/chat/completions",
            &json!({ "provider": "openai", "model": "gpt-5",
        "messages": [{ "role": "user", "content": "hi" }] }),
        )
        .await;
    assert_eq!(response.status(), 502);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["error"]["code"], "upstream_authentication_error");
    assert!(!body.to_string().contains(crate::harness::CANARY));
    gateway.server.stop();
}

#[tokio::test]
async fn egress_policy_is_enforced_at_connect_time() {
    // A listener on a loopback address outside the allowance (127.0.0.1/32): it must never
    // see a connection, whichever spelling points at it.
    let trap = tokio::net::TcpListener::bind("127.0.0.2:0").await.unwrap();
    let port = trap.local_addr().unwrap().port();
    let bases = [
        format!("http://127.0.0.2:{port}"),
        format!("http://localhost:{port}"),
        format!("http://[::ffff:127.0.0.2]:{port}"),
        format!("http://2130706434:{port}"),
        format!("http://0x7f000002:{port}"),
        "http://169.254.169.254".to_owned(),
        "http://10.0.0.1".to_owned(),
        "http://100.64.0.1".to_owned(),
        "http://[fd00::1]".to_owned(),
        "http://0.0.0.0".to_owned(),
    ];
    for base in bases {
        let gateway = Gateway::start_with(
            Backend::Sqlite,
            Default::default(),
            vec![("SWITCHBOARD_OPENAI_BASE_URL".into(), format!("{base}/v1"))],
        )
        .await;
        let response = gateway
            .post(
                "/v1/chat/completions",
                &json!({ "provider": "openai", "model": "gpt-5",
            "messages": [{ "role": "user", "content": "hi" }] }),
            )
            .await;
        assert_eq!(response.status(), 502, "{base}");
        let body: Value = response.json().await.unwrap();
        assert_eq!(body["error"]["code"], "upstream_blocked", "{base}: {body}");
        gateway.server.stop();
    }
    let accepted = tokio::time::timeout(std::time::Duration::from_millis(100), trap.accept()).await;
    assert!(
        accepted.is_err(),
        "a connection reached the blocked address"
    );
}

/// Anthropic callers asking for beta features of a Claude model on Bedrock go through
/// InvokeModel with an Anthropic body (Converse cannot carry betas), streaming and not.
#[tokio::test]
async fn anthropic_betas_on_bedrock_use_invoke_model() {
    let gateway = Gateway::start(Backend::Sqlite).await;
    let client = reqwest::Client::new();
    for stream in [false, true] {
        gateway.sim.handle.clear();
        let response = client
            .post(gateway.url("/v1/messages"))
            .header("x-api-key", &gateway.org.member)
            .header("anthropic-version", "2023-06-01")
            .header("anthropic-beta", "context-1m-2025-08-07, interleaved-thinking-2025-05-14")
            .json(&json!({ "provider": "bedrock", "model": "claude-sonnet-4-20250514", "max_tokens": 64,
                "stream": stream, "messages": [{ "role": "user", "content": PROMPT }] }))
            .send()
            .await
            .unwrap();
        if response.status() != 200 {
            let paths: Vec<String> = gateway
                .sim
                .handle
                .requests()
                .iter()
                .map(|r| r.path.clone())
                .collect();
            std::thread::sleep(std::time::Duration::from_millis(300));
            let log: Vec<String> = gateway
                .server
                .log_text()
                .lines()
                .filter(|l| l.contains("upstream") || l.contains("sent"))
                .map(str::to_owned)
                .collect();
            panic!(
                "stream={stream}: {} {} {paths:?} {log:?}",
                response.status(),
                response.text().await.unwrap()
            );
        }
        assert_eq!(response.headers()["x-switchboard-provider"], "bedrock");
        let got = answer(response, Surface::Anthropic, stream).await;
        assert!(
            got.terminated && got.error.is_none(),
            "stream={stream}: {got:?}"
        );
        assert!(got.text.contains(PROMPT), "stream={stream}: {got:?}");
        let upstream = gateway.sim.handle.last_request().unwrap();
        let operation = if stream {
            "/invoke-with-response-stream"
        } else {
            "/invoke"
        };
        assert!(
            upstream.path_only().ends_with(operation),
            "{}",
            upstream.path_only()
        );
        let sent = upstream.json().unwrap();
        assert_eq!(sent["anthropic_version"], "bedrock-2023-05-31");
        assert_eq!(
            sent["anthropic_beta"],
            json!(["context-1m-2025-08-07", "interleaved-thinking-2025-05-14"])
        );
        assert!(sent.get("model").is_none() && sent.get("provider").is_none());
    }
    gateway.server.stop();
}

/// Organizations that keep no interaction content get raw pass-through streams watched by a
/// cheap tap: answers arrive intact with usage, broken streams still end with an error event.
#[tokio::test]
async fn pass_through_streams_without_kept_content_tell_the_truth() {
    let gateway = Gateway::start(Backend::Sqlite).await;
    gateway.keep_no_content().await;
    for (surface, provider, model) in [
        (Surface::OpenAi, "openai", "gpt-5"),
        (Surface::Anthropic, "anthropic", "claude-opus-4-6"),
    ] {
        let (path, body) = request(surface, provider, model, true, false);
        let got = answer(gateway.post(path, &body).await, surface, true).await;
        assert!(
            got.terminated && got.error.is_none(),
            "{surface:?}: {got:?}"
        );
        assert!(
            got.text.contains(PROMPT) && got.output_tokens > 0,
            "{surface:?}: {got:?}"
        );
        for knob in ["[[sim:cut_after=3]]", "[[sim:error_event]]"] {
            let (path, mut body) = request(surface, provider, model, true, false);
            let index = if surface == Surface::OpenAi { 1 } else { 0 };
            body["messages"][index]["content"] = json!(format!("one two three four five {knob}"));
            let got = answer(gateway.post(path, &body).await, surface, true).await;
            assert!(!got.terminated, "{surface:?} {knob}: {got:?}");
            assert!(got.error.is_some(), "{surface:?} {knob}: {got:?}");
        }
    }
    gateway.server.stop();
}

/// Upstream targets are prepared once per configuration snapshot (secret decrypted, URL
/// checked); a changed secret or configuration must reach the very next request.
#[tokio::test]
async fn prepared_targets_follow_secret_and_configuration_changes() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let hello = json!({ "provider": "openai-compatible", "model": "compat-model",
            "messages": [{ "role": "user", "content": "hi" }] });
        let last_upstream = || {
            let requests = gateway.sim.handle.requests();
            let last = requests.last().expect("the upstream saw a request").clone();
            (
                last.header("authorization").unwrap_or_default().to_owned(),
                last.header("x-team").unwrap_or_default().to_owned(),
            )
        };
        assert_eq!(chat(&gateway, hello.clone()).await.0, 200);
        assert_eq!(
            last_upstream(),
            (
                format!("Bearer {}", crate::gateway::COMPAT_TOKEN),
                "ml".to_owned()
            )
        );

        gateway
            .server
            .patch(
                "/v1/organization/secrets/compat-token",
                &gateway.org.admin,
                json!({ "secretValue": "compat-token-v2" }),
            )
            .await
            .expect(200);
        assert_eq!(chat(&gateway, hello.clone()).await.0, 200);
        assert_eq!(last_upstream().0, "Bearer compat-token-v2");

        gateway
            .server
            .put(
                "/v1/llm-providers/openai-compatible",
                &gateway.org.admin,
                json!({ "config": { "customHeaders": { "x-team": "research" } } }),
            )
            .await
            .expect(200);
        assert_eq!(chat(&gateway, hello).await.0, 200);
        assert_eq!(
            last_upstream(),
            ("Bearer compat-token-v2".to_owned(), "research".to_owned())
        );
        gateway.server.stop();
    }
}

/// A Bedrock API key, the third credential form of `bedrock`, reaches Bedrock as
/// `Authorization: Bearer` with no SigV4 signature, on both surfaces, streaming and not; a
/// key Bedrock refuses is the organization's configuration error, and the key (the canary
/// here) is never echoed or logged (issue 19, item 7).
#[tokio::test]
async fn bedrock_api_keys_are_sent_as_bearer_without_signing() {
    use crate::harness::CANARY;
    for backend in backends() {
        let sim = switchboard_sim::SimConfig {
            bedrock_api_key: Some(CANARY.into()),
            ..Default::default()
        };
        let gateway = Gateway::start_with(backend, sim, Vec::new()).await;
        gateway.secret("bedrock-api-key", CANARY).await;
        let config = json!({ "apiKeySecretName": "bedrock-api-key", "region": "us-east-1" });
        gateway
            .server
            .post(
                "/v1/llm-providers",
                &gateway.org.admin,
                json!({ "provider": "bedrock", "config": config }),
            )
            .await
            .expect(200);
        for surface in [Surface::OpenAi, Surface::Anthropic] {
            for stream in [false, true] {
                let label = format!("{backend:?} {surface:?} stream={stream}");
                let (path, body) = request(
                    surface,
                    "bedrock",
                    "claude-sonnet-4-20250514",
                    stream,
                    false,
                );
                let response = gateway.post(path, &body).await;
                assert_eq!(response.status(), 200, "{label}");
                let got = answer(response, surface, stream).await;
                assert!(got.text.contains(PROMPT), "{label}: {got:?}");
                assert!(got.error.is_none(), "{label}: {got:?}");
                let upstream = gateway.sim.handle.last_request().unwrap();
                let operation = if stream {
                    "/converse-stream"
                } else {
                    "/converse"
                };
                assert!(upstream.path_only().ends_with(operation), "{label}");
                let bearer = format!("Bearer {CANARY}");
                assert_eq!(upstream.header("authorization"), Some(bearer.as_str()));
                assert!(upstream.header("x-amz-date").is_none(), "{label}: signed");
            }
        }
        // A key Bedrock refuses: the caller's token was fine, the configuration is not.
        gateway
            .server
            .patch(
                "/v1/organization/secrets/bedrock-api-key",
                &gateway.org.admin,
                json!({ "secretValue": "ABSK-revoked-key" }),
            )
            .await
            .expect(200);
        let (path, body) = request(
            Surface::OpenAi,
            "bedrock",
            "claude-sonnet-4-20250514",
            false,
            false,
        );
        let response = gateway.post(path, &body).await;
        let status = response.status();
        let refused: Value = response.json().await.unwrap();
        assert_eq!(status, 502, "{refused}");
        assert_eq!(refused["error"]["code"], "upstream_authentication_error");
        gateway.server.stop();
    }
}
