//! Request translation in both directions, and a property-style check of the SSE parser on
//! generated streams.

use serde_json::{Value, json};
use switchboard_protocols::ir::{Reasoning, ReasoningEffort, ResponseFormat, ToolChoice};
use switchboard_protocols::{ErrorKind, Part, ProtocolError, Role, SseParser, anthropic, openai};

fn to_anthropic(openai_body: Value) -> Value {
    let req = openai::decode_request(&serde_json::to_vec(&openai_body).unwrap()).unwrap();
    let bytes = anthropic::encode_request(&req, "claude-up", 4096).unwrap();
    serde_json::from_slice(&bytes).unwrap()
}

fn to_openai(anthropic_body: Value) -> Value {
    let req = anthropic::decode_request(&serde_json::to_vec(&anthropic_body).unwrap()).unwrap();
    serde_json::from_slice(&openai::encode_request(&req, "gpt-up")).unwrap()
}

fn tool_loop() -> Value {
    json!({
        "model": "alias",
        "messages": [
            {"role": "developer", "content": "Be brief."},
            {"role": "user", "content": "Weather in Paris and Rome?"},
            {"role": "assistant", "content": null, "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}},
                {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "18C"},
            {"role": "tool", "tool_call_id": "call_2", "content": [{"type": "text", "text": "21C"}]},
            {"role": "system", "content": "Answer in French."},
            {"role": "user", "content": "Thanks"},
            {"role": "assistant", "content": ""}
        ],
        "tools": [{"type": "function", "function": {"name": "get_weather", "description": "d",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}}],
        "tool_choice": "required",
        "parallel_tool_calls": false,
        "temperature": 1.7,
        "stop": "END",
        "stream": true,
        "stream_options": {"include_usage": true}
    })
}

#[test]
fn openai_tool_loop_becomes_a_valid_anthropic_request() {
    let a = to_anthropic(tool_loop());
    assert_eq!(a["model"], "claude-up");
    assert_eq!(a["system"], "Be brief.\n\nAnswer in French.");
    assert_eq!(
        a["max_tokens"], 4096,
        "Anthropic requires max_tokens; the default is supplied"
    );
    assert_eq!(a["temperature"], 1.0, "clamped to Anthropic's range");
    assert_eq!(a["stop_sequences"], json!(["END"]));
    assert_eq!(a["stream"], true);
    assert_eq!(
        a["tool_choice"],
        json!({"type": "any", "disable_parallel_tool_use": true})
    );
    assert_eq!(a["tools"][0]["input_schema"]["type"], "object");
    let messages = a["messages"].as_array().unwrap();
    let roles: Vec<&str> = messages
        .iter()
        .map(|m| m["role"].as_str().unwrap())
        .collect();
    // Both tool results and the following user text merge into one user turn; the empty
    // trailing assistant message is dropped.
    assert_eq!(roles, ["user", "assistant", "user"]);
    assert_eq!(
        messages[1]["content"],
        json!([
            {"type": "tool_use", "id": "call_1", "name": "get_weather", "input": {"city": "Paris"}},
            {"type": "tool_use", "id": "call_2", "name": "get_weather", "input": {}}
        ])
    );
    assert_eq!(
        messages[2]["content"],
        json!([
            {"type": "tool_result", "tool_use_id": "call_1", "content": "18C"},
            {"type": "tool_result", "tool_use_id": "call_2", "content": "21C"},
            {"type": "text", "text": "Thanks"}
        ])
    );
}

#[test]
fn tool_choice_maps_both_ways() {
    let cases = [
        (json!("auto"), json!({"type": "auto"}), ToolChoice::Auto),
        (json!("none"), json!({"type": "none"}), ToolChoice::None),
        (
            json!("required"),
            json!({"type": "any"}),
            ToolChoice::Required,
        ),
        (
            json!({"type": "function", "function": {"name": "f"}}),
            json!({"type": "tool", "name": "f"}),
            ToolChoice::Named("f".into()),
        ),
    ];
    for (openai_choice, anthropic_choice, ir) in cases {
        let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
            "tools": [{"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}],
            "tool_choice": openai_choice});
        let req = openai::decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
        assert_eq!(req.tool_choice, Some(ir.clone()));
        let a = to_anthropic(body);
        assert_eq!(a["tool_choice"], anthropic_choice);
        let back = to_openai(a);
        assert_eq!(back["tool_choice"], openai_choice);
    }
}

#[test]
fn invalid_tool_arguments_are_a_client_error() {
    let mut body = tool_loop();
    body["messages"][2]["tool_calls"][0]["function"]["arguments"] = "{\"city\":".into();
    let req = openai::decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    let err = anthropic::encode_request(&req, "c", 4096).unwrap_err();
    assert!(matches!(err, ProtocolError::InvalidRequest { .. }), "{err}");
    assert_eq!(err.kind(), ErrorKind::InvalidRequest);
    assert!(err.to_string().contains("call_1"), "{err}");
    body["messages"][2]["tool_calls"][0]["function"]["arguments"] = "[1]".into();
    let req = openai::decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert!(
        anthropic::encode_request(&req, "c", 4096).is_err(),
        "arrays are not objects"
    );
}

#[test]
fn n_above_one_cannot_be_translated() {
    let body = json!({"model": "m", "messages": [], "n": 3});
    let req = openai::decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    let err = anthropic::encode_request(&req, "c", 4096).unwrap_err();
    assert!(err.to_string().contains("n > 1"), "{err}");
    // n = 1 is fine.
    let body = json!({"model": "m", "messages": [], "n": 1});
    let req = openai::decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert!(anthropic::encode_request(&req, "c", 4096).is_ok());
}

#[test]
fn anthropic_tool_results_become_openai_tool_messages() {
    let o = to_openai(json!({
        "model": "claude",
        "max_tokens": 1024,
        "system": [{"type": "text", "text": "S1"}, {"type": "text", "text": "S2", "cache_control": {"type": "ephemeral"}}],
        "messages": [
            {"role": "user", "content": "What is the weather in SF?"},
            {"role": "assistant", "content": [
                {"type": "thinking", "thinking": "hmm", "signature": "sig"},
                {"type": "text", "text": "Checking."},
                {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"location": "SF"}}
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "toolu_1", "content": "RuntimeError", "is_error": true},
                {"type": "text", "text": "Try again"}
            ]}
        ],
        "tools": [{"name": "get_weather", "input_schema": {"type": "object"}}],
        "tool_choice": {"type": "auto", "disable_parallel_tool_use": true},
        "thinking": {"type": "enabled", "budget_tokens": 2048},
        "metadata": {"user_id": "u-1"},
        "stream": true
    }));
    assert_eq!(o["model"], "gpt-up");
    assert_eq!(o["max_completion_tokens"], 1024);
    assert_eq!(o["reasoning_effort"], "low");
    assert_eq!(o["parallel_tool_calls"], false);
    assert_eq!(o["user"], "u-1");
    assert_eq!(o["stream_options"], json!({"include_usage": true}));
    let m = o["messages"].as_array().unwrap();
    assert_eq!(m[0], json!({"role": "system", "content": "S1\n\nS2"}));
    assert_eq!(
        m[1],
        json!({"role": "user", "content": "What is the weather in SF?"})
    );
    assert_eq!(
        m[2],
        json!({"role": "assistant", "content": "Checking.", "tool_calls": [
            {"id": "toolu_1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"location\":\"SF\"}"}}]})
    );
    assert_eq!(
        m[3],
        json!({"role": "tool", "tool_call_id": "toolu_1", "content": "RuntimeError"})
    );
    assert_eq!(m[4], json!({"role": "user", "content": "Try again"}));
}

#[test]
fn anthropic_requests_keep_thinking_signatures_and_tool_errors_in_the_ir() {
    let body = json!({"model": "c", "max_tokens": 2000, "messages": [
        {"role": "assistant", "content": [{"type": "thinking", "thinking": "t", "signature": "s"},
                                          {"type": "redacted_thinking", "data": "r"}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "x", "is_error": true,
            "content": [{"type": "text", "text": "boom"}]}]}]});
    let req = anthropic::decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(req.messages[0].role, Role::Assistant);
    assert_eq!(
        req.messages[0].content,
        vec![
            Part::Thinking {
                text: "t".into(),
                signature: Some("s".into())
            },
            Part::RedactedThinking { data: "r".into() }
        ]
    );
    assert!(matches!(
        &req.messages[1].content[0],
        Part::ToolResult { is_error: true, .. }
    ));
    let a: Value =
        serde_json::from_slice(&anthropic::encode_request(&req, "c", 1).unwrap()).unwrap();
    assert_eq!(a["messages"], body["messages"].clone().tap_result_string());
}

/// Test helper: Anthropic accepts a single-text tool result as a plain string, which is
/// how the encoder writes it.
trait TapResult {
    fn tap_result_string(self) -> Value;
}

impl TapResult for Value {
    fn tap_result_string(mut self) -> Value {
        self[1]["content"][0]["content"] = "boom".into();
        self
    }
}

#[test]
fn reasoning_and_formats_translate() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": "x"}],
        "reasoning_effort": "high", "max_completion_tokens": 30000,
        "response_format": {"type": "json_schema", "json_schema": {"name": "r", "schema": {"type": "object"}, "strict": true}}});
    let req = openai::decode_request(&serde_json::to_vec(&body).unwrap()).unwrap();
    assert_eq!(
        req.reasoning,
        Some(Reasoning::Effort(ReasoningEffort::High))
    );
    assert!(matches!(
        req.response_format,
        Some(ResponseFormat::JsonSchema { .. })
    ));
    let a = to_anthropic(body);
    assert_eq!(
        a["thinking"],
        json!({"type": "enabled", "budget_tokens": 16384})
    );
    assert_eq!(
        a["output_config"],
        json!({"format": {"type": "json_schema", "schema": {"type": "object"}}})
    );
    let back = to_openai(a);
    assert_eq!(back["reasoning_effort"], "high");
    assert_eq!(back["response_format"]["type"], "json_schema");
    assert_eq!(
        back["response_format"]["json_schema"]["schema"],
        json!({"type": "object"})
    );
}

#[test]
fn images_translate_both_ways() {
    let body = json!({"model": "m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "what?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBOR"}},
        {"type": "image_url", "image_url": {"url": "https://example.com/a.jpg"}}]}]});
    let a = to_anthropic(body);
    assert_eq!(
        a["messages"][0]["content"],
        json!([
            {"type": "text", "text": "what?"},
            {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBOR"}},
            {"type": "image", "source": {"type": "url", "url": "https://example.com/a.jpg"}}
        ])
    );
    let o = to_openai(a);
    assert_eq!(
        o["messages"][0]["content"][1]["image_url"]["url"],
        "data:image/png;base64,iVBOR"
    );
}

#[test]
fn callers_errors_do_not_echo_their_values() {
    let err = openai::decode_request(br#"{"model":"m","messages":[],"max_tokens":"sk-canary"}"#)
        .unwrap_err();
    assert!(!err.to_string().contains("canary"), "{err}");
    let err = anthropic::decode_request(
        br#"{"model":"m","messages":[{"role":"sk-canary","content":"x"}],"max_tokens":1}"#,
    )
    .unwrap_err();
    assert!(!err.to_string().contains("canary"), "{err}");
}

// ---------------------------------------------------------------------------------------
// SSE parser properties on generated streams
// ---------------------------------------------------------------------------------------

struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, n: u64) -> usize {
        (self.next() % n) as usize
    }
}

/// A random stream of events with random line endings, comments, unknown fields,
/// multi-line and multibyte data; returns the bytes and the events a correct parser yields.
fn generate(rng: &mut Rng) -> (Vec<u8>, Vec<(String, String)>) {
    const EOL: [&str; 3] = ["\n", "\r\n", "\r"];
    const WORDS: [&str; 6] = ["a", "{\"x\":1}", "°C", "ü ", "", "data: nested"];
    let mut bytes = String::new();
    let mut expected = Vec::new();
    for _ in 0..rng.below(8) + 1 {
        let eol = EOL[rng.below(3)];
        if rng.below(3) == 0 {
            bytes += &format!(": keep-alive{eol}");
        }
        let name = if rng.below(2) == 0 {
            ""
        } else {
            "message_delta"
        };
        if !name.is_empty() {
            bytes += &format!("event: {name}{eol}");
        }
        if rng.below(4) == 0 {
            bytes += &format!("id: 42{eol}retry: 10{eol}");
        }
        let lines: Vec<&str> = (0..rng.below(3) + 1).map(|_| WORDS[rng.below(6)]).collect();
        for l in &lines {
            let sep = if rng.below(2) == 0 { ": " } else { ":" };
            bytes += &format!("data{sep}{l}{eol}");
        }
        bytes += eol;
        expected.push((name.to_owned(), lines.join("\n")));
    }
    (bytes.into_bytes(), expected)
}

fn parse(chunks: &[&[u8]]) -> Vec<(String, String)> {
    let mut p = SseParser::new();
    let mut out = Vec::new();
    for c in chunks {
        p.push(c);
        while let Some(e) = p.next_event().unwrap() {
            out.push((e.event.to_owned(), e.data.to_owned()));
        }
    }
    if let Some(e) = p.finish().unwrap() {
        out.push((e.event.to_owned(), e.data.to_owned()));
    }
    out
}

#[test]
fn generated_streams_parse_the_same_however_they_are_split() {
    let mut rng = Rng(0x1234_5678_9abc_def1);
    for case in 0..300 {
        let (bytes, expected) = generate(&mut rng);
        assert_eq!(parse(&[&bytes]), expected, "case {case}");
        for i in 0..=bytes.len() {
            let (a, b) = bytes.split_at(i);
            assert_eq!(parse(&[a, b]), expected, "case {case} split {i}");
        }
        let mut chunks = Vec::new();
        let mut rest = bytes.as_slice();
        while !rest.is_empty() {
            let n = rng.below(5) + 1;
            let (a, b) = rest.split_at(n.min(rest.len()));
            chunks.push(a);
            rest = b;
        }
        assert_eq!(parse(&chunks), expected, "case {case} multi-split");
    }
}
