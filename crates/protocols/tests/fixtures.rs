//! Conformance tests on recorded provider traffic (see `tests/fixtures/README.md`).
//!
//! Each recording is checked three ways: against the values its source documents, against
//! an independent naive reading of the same bytes (split on blank lines, `serde_json::Value`),
//! and against itself when the bytes arrive split at every byte boundary and at random
//! multi-split points. Then each stream is translated to the other protocol, decoded again,
//! and must say the same thing.

use std::path::{Path, PathBuf};

use bytes::BytesMut;
use serde_json::Value;
use switchboard_protocols::ir::{Part, StopReason, StreamAccumulator, StreamEvent, Usage};
use switchboard_protocols::{ErrorKind, Protocol, SseParser, StreamTap, anthropic, openai};

// ---------------------------------------------------------------------------------------
// Helpers
// ---------------------------------------------------------------------------------------

fn fixture_dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

fn files(sub: &str, suffix: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(fixture_dir(sub))
        .expect("fixture folder exists")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .map(|p| {
            let name = p.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&p).expect("fixture readable"))
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no fixtures in {sub}");
    out
}

#[derive(Clone, Copy, Debug)]
enum Wire {
    OpenAi,
    Anthropic,
}

enum AnyDecoder {
    OpenAi(openai::StreamDecoder),
    Anthropic(anthropic::StreamDecoder),
}

/// Decodes `bytes` delivered as the given chunks into IR events.
fn decode_chunks(wire: Wire, chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    let mut decoder = match wire {
        Wire::OpenAi => AnyDecoder::OpenAi(openai::StreamDecoder::new()),
        Wire::Anthropic => AnyDecoder::Anthropic(anthropic::StreamDecoder::new()),
    };
    let mut events = Vec::new();
    let mut push = |decoder: &mut AnyDecoder, e: &switchboard_protocols::SseEvent<'_>| match decoder
    {
        AnyDecoder::OpenAi(d) => d.push(e, &mut events).expect("decodes"),
        AnyDecoder::Anthropic(d) => d.push(e, &mut events).expect("decodes"),
    };
    for chunk in chunks {
        parser.push(chunk);
        while let Some(e) = parser.next_event().expect("valid SSE") {
            push(&mut decoder, &e);
        }
    }
    if let Some(e) = parser.finish().expect("valid SSE") {
        push(&mut decoder, &e);
    }
    events
}

fn decode(wire: Wire, bytes: &[u8]) -> Vec<StreamEvent> {
    decode_chunks(wire, &[bytes])
}

/// Raw SSE events (name, data) of `bytes` delivered as `chunks`.
fn sse_events(chunks: &[&[u8]]) -> Vec<(String, String)> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(e) = parser.next_event().expect("valid SSE") {
            out.push((e.event.to_owned(), e.data.to_owned()));
        }
    }
    if let Some(e) = parser.finish().expect("valid SSE") {
        out.push((e.event.to_owned(), e.data.to_owned()));
    }
    out
}

/// Checks split invariance.
///
/// Every byte boundary: a blank line resets the parser completely, so the stream is cut into
/// its blank-line-terminated segments and each segment is parsed split at each of its
/// boundaries, which must give that segment's events; together this covers every split of
/// the whole body in linear rather than quadratic time. The fully decoded IR is then
/// compared at a stride of whole-body split points and at pseudo-random multi-splits.
fn assert_split_invariant(wire: Wire, name: &str, bytes: &[u8]) {
    let mut covered = 0;
    for segment in segments(bytes) {
        let expected = sse_events(&[segment]);
        for i in 0..=segment.len() {
            let (a, b) = segment.split_at(i);
            assert_eq!(
                sse_events(&[a, b]),
                expected,
                "{name}: split at {}",
                covered + i
            );
        }
        covered += segment.len();
    }
    assert_eq!(covered, bytes.len());
    let whole = decode(wire, bytes);
    let stride = (bytes.len() / 97).max(1);
    for i in (0..=bytes.len()).step_by(stride) {
        let (a, b) = bytes.split_at(i);
        assert_eq!(
            decode_chunks(wire, &[a, b]),
            whole,
            "{name}: IR split at {i}"
        );
    }
    let mut seed = 0x2545_f491_4f6c_dd1d_u64 ^ bytes.len() as u64;
    for round in 0..12 {
        let chunks = random_chunks(bytes, &mut seed, 1 + round * 11);
        assert_eq!(
            decode_chunks(wire, &chunks),
            whole,
            "{name}: multi-split round {round}"
        );
    }
}

/// The body cut after each `\n\n` (the recordings use `\n` line endings).
fn segments(bytes: &[u8]) -> Vec<&[u8]> {
    let mut out = Vec::new();
    let mut start = 0;
    for i in 1..bytes.len() {
        if bytes[i] == b'\n' && bytes[i - 1] == b'\n' {
            out.push(&bytes[start..=i]);
            start = i + 1;
        }
    }
    if start < bytes.len() {
        out.push(&bytes[start..]);
    }
    out
}

fn random_chunks<'a>(bytes: &'a [u8], seed: &mut u64, max_len: usize) -> Vec<&'a [u8]> {
    let mut chunks = Vec::new();
    let mut rest = bytes;
    while !rest.is_empty() {
        *seed ^= *seed << 13;
        *seed ^= *seed >> 7;
        *seed ^= *seed << 17;
        let n = (*seed as usize % max_len) + 1;
        let (a, b) = rest.split_at(n.min(rest.len()));
        chunks.push(a);
        rest = b;
    }
    chunks
}

fn accumulate(events: &[StreamEvent]) -> (switchboard_protocols::ChatResponse, bool) {
    let mut acc = StreamAccumulator::new();
    for e in events {
        acc.push(e);
    }
    let done = acc.is_done();
    (acc.into_response(), done)
}

fn text_of(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Text(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn refusal_of(parts: &[Part]) -> String {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::Refusal(t) => Some(t.as_str()),
            _ => None,
        })
        .collect()
}

fn tool_calls(parts: &[Part]) -> Vec<(String, String, String)> {
    parts
        .iter()
        .filter_map(|p| match p {
            Part::ToolCall {
                id,
                name,
                arguments,
            } => Some((id.clone(), name.clone(), arguments.clone())),
            _ => None,
        })
        .collect()
}

fn json(s: &str) -> Value {
    serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"))
}

/// Naive reading of a recorded body: the JSON `data:` payloads, split on blank lines.
fn naive_payloads(body: &str) -> Vec<Value> {
    body.split("\n\n")
        .flat_map(|block| block.lines())
        .filter_map(|l| l.strip_prefix("data: "))
        .filter(|d| *d != "[DONE]")
        .map(json)
        .collect()
}

// ---------------------------------------------------------------------------------------
// OpenAI recorded streams
// ---------------------------------------------------------------------------------------

/// What an independent reading of an OpenAI stream says about choice 0.
#[derive(Debug, Default)]
struct OpenAiOracle {
    content: String,
    refusal: String,
    tools: Vec<(String, String, String)>,
    finish: Option<String>,
    usage: Option<(u64, u64)>,
    done: bool,
}

fn openai_oracle(body: &[u8]) -> OpenAiOracle {
    let body = std::str::from_utf8(body).unwrap();
    let mut o = OpenAiOracle {
        done: body.trim_end().ends_with("data: [DONE]"),
        ..OpenAiOracle::default()
    };
    for chunk in naive_payloads(body) {
        if let Some(u) = chunk.get("usage").filter(|u| !u.is_null()) {
            o.usage = Some((
                u["prompt_tokens"].as_u64().unwrap(),
                u["completion_tokens"].as_u64().unwrap(),
            ));
        }
        for c in chunk["choices"].as_array().unwrap() {
            if c["index"] != 0 {
                continue;
            }
            let d = &c["delta"];
            o.content += d["content"].as_str().unwrap_or("");
            o.refusal += d["refusal"].as_str().unwrap_or("");
            for t in d["tool_calls"].as_array().into_iter().flatten() {
                let i = t["index"].as_u64().unwrap() as usize;
                if o.tools.len() <= i {
                    o.tools.resize(i + 1, Default::default());
                }
                if let Some(id) = t["id"].as_str() {
                    o.tools[i].0 = id.into();
                    o.tools[i].1 = t["function"]["name"].as_str().unwrap().into();
                }
                o.tools[i].2 += t["function"]["arguments"].as_str().unwrap_or("");
            }
            if let Some(f) = c["finish_reason"].as_str() {
                o.finish = Some(f.into());
            }
        }
    }
    o
}

fn openai_stop(finish: &str) -> StopReason {
    openai::stop_from_finish(finish)
}

#[test]
fn openai_streams_match_the_naive_reading_and_split_anywhere() {
    for (name, bytes) in files("openai/chat-streams", ".sse.bin") {
        let oracle = openai_oracle(&bytes);
        let events = decode(Wire::OpenAi, &bytes);
        let (resp, done) = accumulate(&events);
        assert!(done && oracle.done, "{name}: [DONE] seen");
        assert!(resp.id.starts_with("chatcmpl-"), "{name}");
        assert_eq!(resp.model, "gpt-4o-2024-08-06", "{name}");
        assert_eq!(text_of(&resp.content), oracle.content, "{name}: content");
        assert_eq!(refusal_of(&resp.content), oracle.refusal, "{name}: refusal");
        assert_eq!(tool_calls(&resp.content), oracle.tools, "{name}: tools");
        for (_, _, args) in &oracle.tools {
            json(args);
        }
        let finish = oracle.finish.as_deref().expect("finish reason");
        assert_eq!(resp.stop_reason, openai_stop(finish), "{name}: finish");
        let (input, output) = oracle.usage.expect("usage chunk");
        assert_eq!(
            (resp.usage.input_tokens, resp.usage.output_tokens),
            (input, output),
            "{name}"
        );
        assert_split_invariant(Wire::OpenAi, &name, &bytes);
    }
}

fn openai_fixture(prefix: &str) -> (switchboard_protocols::ChatResponse, Vec<StreamEvent>) {
    let (_, bytes) = files("openai/chat-streams", ".sse.bin")
        .into_iter()
        .find(|(n, _)| n.starts_with(prefix))
        .unwrap_or_else(|| panic!("no fixture {prefix}"));
    let events = decode(Wire::OpenAi, &bytes);
    (accumulate(&events).0, events)
}

#[test]
fn openai_streams_say_what_their_source_documents() {
    let (r, _) = openai_fixture("parse_nothing.");
    assert_eq!(
        text_of(&r.content),
        "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend checking a reliable weather website or a weather app."
    );
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    assert_eq!(
        (
            r.usage.input_tokens,
            r.usage.output_tokens,
            r.usage.total_tokens()
        ),
        (14, 30, 44)
    );

    let (r, _) = openai_fixture("parse_pydantic_model.");
    assert_eq!(
        text_of(&r.content),
        r#"{"city":"San Francisco","temperature":61,"units":"f"}"#
    );

    // n=3: only choice 0 is followed.
    let (r, _) = openai_fixture("parse_pydantic_model_multiple_choices.");
    assert_eq!(json(&text_of(&r.content))["temperature"], 65);

    let (r, _) = openai_fixture("parse_max_tokens_reached.");
    assert_eq!(
        (text_of(&r.content).as_str(), r.stop_reason),
        ("{\"", StopReason::MaxTokens)
    );

    let (r, _) = openai_fixture("parse_pydantic_model_refusal.");
    assert_eq!(
        refusal_of(&r.content),
        "I'm sorry, I can't assist with that request."
    );
    assert_eq!(text_of(&r.content), "");

    let (r, _) = openai_fixture("content_logprobs_events.");
    assert_eq!(text_of(&r.content), "Foo!");

    let (r, _) = openai_fixture("refusal_logprobs_events.");
    assert_eq!(
        refusal_of(&r.content),
        "I'm very sorry, but I can't assist with that."
    );

    let (r, _) = openai_fixture("parse_pydantic_tool.");
    let calls = tool_calls(&r.content);
    assert_eq!(calls.len(), 1);
    assert_eq!(calls[0].1, "GetWeatherArgs");
    assert_eq!(
        json(&calls[0].2),
        json(r#"{"city":"Edinburgh","country":"UK","units":"c"}"#)
    );
    assert_eq!(r.stop_reason, StopReason::ToolUse);

    let (r, events) = openai_fixture("parse_multiple_pydantic_tools.");
    let calls = tool_calls(&r.content);
    assert_eq!(calls[0].1, "GetWeatherArgs");
    assert_eq!(
        calls[0].2,
        r#"{"city": "Edinburgh", "country": "GB", "units": "c"}"#
    );
    assert_eq!(calls[1].1, "get_stock_price");
    assert_eq!(calls[1].2, r#"{"ticker": "AAPL", "exchange": "NASDAQ"}"#);
    let ordinals: Vec<u32> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallStart { ordinal, .. } => Some(*ordinal),
            _ => None,
        })
        .collect();
    assert_eq!(ordinals, [0, 1]);

    let (r, _) = openai_fixture("parse_strict_tools.");
    let calls = tool_calls(&r.content);
    assert_eq!(
        (calls[0].1.as_str(), json(&calls[0].2)),
        (
            "get_weather",
            json(r#"{"city":"San Francisco","state":"CA"}"#)
        )
    );

    let (r, _) = openai_fixture("non_pydantic_response_format.");
    let text = text_of(&r.content);
    assert!(text.contains('°'));
    json(&text);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (19, 177));

    let (r, _) = openai_fixture("allows_non_strict_tools_but_no_parsing.");
    let calls = tool_calls(&r.content);
    assert_eq!(
        (calls[0].1.as_str(), json(&calls[0].2)),
        ("get_weather", json(r#"{"city":"New York City"}"#))
    );
}

#[test]
fn openai_stream_events_come_in_contract_order() {
    for (name, bytes) in files("openai/chat-streams", ".sse.bin") {
        let events = decode(Wire::OpenAi, &bytes);
        assert!(
            matches!(events.first(), Some(StreamEvent::Start { .. })),
            "{name}"
        );
        assert_eq!(events.last(), Some(&StreamEvent::Done), "{name}");
        let stop = events
            .iter()
            .position(|e| matches!(e, StreamEvent::Stop { .. }))
            .unwrap();
        let usage = events
            .iter()
            .position(|e| matches!(e, StreamEvent::Usage(_)))
            .unwrap();
        assert!(
            usage > stop,
            "{name}: OpenAI usage comes after the finish chunk"
        );
        assert_eq!(
            events
                .iter()
                .filter(|e| matches!(e, StreamEvent::Stop { .. }))
                .count(),
            1
        );
    }
}

// ---------------------------------------------------------------------------------------
// Anthropic recorded streams and exchanges
// ---------------------------------------------------------------------------------------

/// What an independent reading of an Anthropic stream says.
#[derive(Debug, Default)]
struct AnthropicOracle {
    id: String,
    text: String,
    /// Tool blocks in order: (id, name, concatenated partial_json).
    tools: Vec<(String, String, String)>,
    stop: Option<String>,
    input: u64,
    output: u64,
    cache_read: u64,
    cache_creation: u64,
    done: bool,
}

fn anthropic_oracle(body: &str) -> AnthropicOracle {
    let mut o = AnthropicOracle::default();
    let mut block_tool = std::collections::HashMap::new();
    let usage = |o: &mut AnthropicOracle, u: &Value| {
        let get = |k: &str| u.get(k).and_then(Value::as_u64);
        if let Some(v) = get("input_tokens") {
            o.input = v;
        }
        if let Some(v) = get("output_tokens") {
            o.output = v;
        }
        if let Some(v) = get("cache_read_input_tokens") {
            o.cache_read = v;
        }
        if let Some(v) = get("cache_creation_input_tokens") {
            o.cache_creation = v;
        }
    };
    for ev in naive_payloads(body) {
        match ev["type"].as_str().unwrap() {
            "message_start" => {
                o.id = ev["message"]["id"].as_str().unwrap().into();
                usage(&mut o, &ev["message"]["usage"]);
            }
            "content_block_start" if ev["content_block"]["type"] == "tool_use" => {
                block_tool.insert(ev["index"].as_u64().unwrap(), o.tools.len());
                let b = &ev["content_block"];
                o.tools.push((
                    b["id"].as_str().unwrap().into(),
                    b["name"].as_str().unwrap().into(),
                    String::new(),
                ));
            }
            "content_block_delta" => {
                let d = &ev["delta"];
                match d["type"].as_str().unwrap() {
                    "text_delta" => o.text += d["text"].as_str().unwrap(),
                    "input_json_delta" => {
                        let t = block_tool[&ev["index"].as_u64().unwrap()];
                        o.tools[t].2 += d["partial_json"].as_str().unwrap();
                    }
                    _ => {}
                }
            }
            "message_delta" => {
                o.stop = ev["delta"]["stop_reason"].as_str().map(Into::into);
                usage(&mut o, &ev["usage"]);
            }
            "message_stop" => o.done = true,
            _ => {}
        }
    }
    o
}

fn check_anthropic_stream(name: &str, body: &[u8]) -> switchboard_protocols::ChatResponse {
    let oracle = anthropic_oracle(std::str::from_utf8(body).unwrap());
    let events = decode(Wire::Anthropic, body);
    let (resp, done) = accumulate(&events);
    assert_eq!(done, oracle.done, "{name}: message_stop");
    assert_eq!(resp.id, oracle.id, "{name}");
    assert_eq!(text_of(&resp.content), oracle.text, "{name}: text");
    assert_eq!(tool_calls(&resp.content), oracle.tools, "{name}: tools");
    let stop = oracle.stop.as_deref().expect("stop reason");
    assert_eq!(
        resp.stop_reason,
        anthropic::stop_from_anthropic(stop),
        "{name}"
    );
    let expected = Usage {
        input_tokens: oracle.input + oracle.cache_read + oracle.cache_creation,
        output_tokens: oracle.output,
        cached_input_tokens: oracle.cache_read,
        cache_creation_input_tokens: oracle.cache_creation,
        reasoning_tokens: 0,
    };
    assert_eq!(resp.usage, expected, "{name}: usage");
    assert_split_invariant(Wire::Anthropic, name, body);
    resp
}

#[test]
fn anthropic_streams_match_the_naive_reading_and_split_anywhere() {
    for (name, bytes) in files("anthropic/streams", ".sse.txt") {
        let resp = check_anthropic_stream(&name, &bytes);
        for (_, _, args) in tool_calls(&resp.content) {
            let valid = serde_json::from_str::<Value>(&args).is_ok();
            // The truncated live recording's tool JSON is cut off by max_tokens.
            assert_eq!(
                valid,
                !name.starts_with("incomplete_partial_json"),
                "{name}: {args}"
            );
        }
    }
}

fn anthropic_stream(prefix: &str) -> switchboard_protocols::ChatResponse {
    let (_, bytes) = files("anthropic/streams", ".sse.txt")
        .into_iter()
        .find(|(n, _)| n.starts_with(prefix))
        .unwrap();
    accumulate(&decode(Wire::Anthropic, &bytes)).0
}

#[test]
fn anthropic_streams_say_what_their_source_documents() {
    let r = anthropic_stream("tool_use_response");
    assert_eq!(
        text_of(&r.content),
        "I'll check the current weather in Paris for you."
    );
    let calls = tool_calls(&r.content);
    assert_eq!(
        (calls[0].1.as_str(), calls[0].2.as_str()),
        ("get_weather", r#"{"location": "Paris"}"#)
    );
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (377, 65));

    let r = anthropic_stream("basic_response");
    assert_eq!(text_of(&r.content), "Hello there!");
    assert_eq!(r.stop_reason, StopReason::EndTurn);
    assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (11, 6));

    let r = anthropic_stream("refusal_response");
    assert_eq!(r.stop_reason, StopReason::ContentFilter);

    let r = anthropic_stream("incomplete_partial_json_response");
    assert_eq!(r.stop_reason, StopReason::MaxTokens);
    assert_eq!(tool_calls(&r.content)[0].1, "make_file");

    // Unknown block and delta types (compaction, fallback) are skipped without failing.
    for name in [
        "compaction_response",
        "fallback_response",
        "fallback_credit_response",
    ] {
        let r = anthropic_stream(name);
        assert_eq!(text_of(&r.content), "Hello there!", "{name}");
    }
}

fn exchanges() -> Vec<(String, Value)> {
    files("anthropic/exchanges", ".json")
        .into_iter()
        .map(|(n, b)| (n, serde_json::from_slice(&b).unwrap()))
        .collect()
}

#[test]
fn anthropic_exchange_responses_decode_and_classify() {
    let (mut streams, mut bodies, mut errors) = (0, 0, 0);
    for (name, file) in exchanges() {
        for (i, ex) in file.as_array().unwrap().iter().enumerate() {
            let name = format!("{name}#{i}");
            let resp = &ex["response"];
            let status = resp["status_code"].as_u64().unwrap() as u16;
            match (&resp["body"], status) {
                (Value::String(sse), 200) => {
                    streams += 1;
                    check_anthropic_stream(&name, sse.as_bytes());
                }
                (body, 200) => {
                    bodies += 1;
                    check_anthropic_body(&name, body);
                }
                (body, _) => {
                    errors += 1;
                    let raw = serde_json::to_vec(body).unwrap();
                    let e = switchboard_protocols::classify_upstream_error(status, &raw);
                    let expected = match status {
                        429 => ErrorKind::RateLimit,
                        400 => ErrorKind::InvalidRequest,
                        _ => unreachable!("{name}: unexpected status {status}"),
                    };
                    assert_eq!(e.kind, expected, "{name}");
                    assert_eq!(e.message, body["error"]["message"].as_str().unwrap());
                }
            }
        }
    }
    assert_eq!((streams, errors), (6, 5));
    assert!(bodies >= 15, "{bodies}");
}

fn check_anthropic_body(name: &str, body: &Value) {
    let r = anthropic::decode_response(&serde_json::to_vec(body).unwrap()).unwrap();
    assert_eq!(r.id, body["id"].as_str().unwrap(), "{name}");
    let blocks = body["content"].as_array().unwrap();
    let text: String = blocks
        .iter()
        .filter(|b| b["type"] == "text")
        .map(|b| b["text"].as_str().unwrap())
        .collect();
    assert_eq!(text_of(&r.content), text, "{name}");
    let tools: Vec<_> = blocks.iter().filter(|b| b["type"] == "tool_use").collect();
    let calls = tool_calls(&r.content);
    assert_eq!(calls.len(), tools.len(), "{name}");
    for (call, block) in calls.iter().zip(tools) {
        assert_eq!(call.0, block["id"].as_str().unwrap());
        assert_eq!(
            json(&call.2),
            block["input"],
            "{name}: arguments are the input as JSON text"
        );
    }
    let u = &body["usage"];
    let n = |k: &str| u[k].as_u64().unwrap_or(0);
    assert_eq!(
        r.usage.input_tokens,
        n("input_tokens") + n("cache_read_input_tokens") + n("cache_creation_input_tokens"),
        "{name}"
    );
    assert_eq!(r.usage.output_tokens, n("output_tokens"));
    assert_eq!(
        r.stop_reason,
        anthropic::stop_from_anthropic(body["stop_reason"].as_str().unwrap())
    );

    // Translated for an OpenAI caller, the same facts survive.
    let o: Value = serde_json::from_slice(&openai::encode_response(&r, "alias")).unwrap();
    let msg = &o["choices"][0]["message"];
    assert_eq!(msg["content"].as_str().unwrap_or(""), text, "{name}");
    assert_eq!(
        o["usage"]["prompt_tokens"].as_u64().unwrap(),
        r.usage.input_tokens
    );
    assert_eq!(
        msg["tool_calls"].as_array().map_or(0, Vec::len),
        calls.len()
    );
    let back = openai::decode_response(&serde_json::to_vec(&o).unwrap()).unwrap();
    assert_eq!(tool_calls(&back.content), calls, "{name}");
}

#[test]
fn anthropic_exchange_requests_translate_both_ways() {
    let (mut translated, mut refused) = (0, 0);
    for (name, file) in exchanges() {
        for (i, ex) in file.as_array().unwrap().iter().enumerate() {
            let name = format!("{name}#{i}");
            let body = serde_json::to_vec(&ex["request"]["body"]).unwrap();
            let req = match anthropic::decode_request(&body) {
                Ok(r) => r,
                Err(e) => {
                    // Server tools and server-side blocks have no IR equivalent.
                    assert_eq!(e.kind(), ErrorKind::InvalidRequest, "{name}: {e}");
                    refused += 1;
                    continue;
                }
            };
            translated += 1;
            let original: Value = ex["request"]["body"].clone();
            // Anthropic → IR → OpenAI → IR must keep the conversation.
            let o = openai::encode_request(&req, "gpt");
            let again = openai::decode_request(&o).unwrap();
            assert_eq!(again.system, req.system, "{name}");
            assert_eq!(again.tools, req.tools, "{name}");
            let calls = |r: &switchboard_protocols::ChatRequest| {
                r.messages
                    .iter()
                    .flat_map(|m| tool_calls(&m.content))
                    .collect::<Vec<_>>()
            };
            assert_eq!(calls(&again), calls(&req), "{name}");
            // Anthropic → IR → Anthropic keeps tool inputs and results.
            let a: Value =
                serde_json::from_slice(&anthropic::encode_request(&req, "claude", 4096).unwrap())
                    .unwrap();
            assert_eq!(a["max_tokens"], original["max_tokens"], "{name}");
            let inputs = |v: &Value| {
                v["messages"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .filter_map(|m| m["content"].as_array())
                    .flatten()
                    .filter(|b| b["type"] == "tool_use" || b["type"] == "tool_result")
                    .map(|b| {
                        (
                            b["type"].clone(),
                            b["input"].clone(),
                            b["is_error"].as_bool().unwrap_or(false),
                        )
                    })
                    .collect::<Vec<_>>()
            };
            assert_eq!(inputs(&a), inputs(&original), "{name}");
        }
    }
    assert!(
        translated >= 20 && refused >= 1,
        "{translated} translated, {refused} refused"
    );
}

// ---------------------------------------------------------------------------------------
// Cross-protocol stream round trips
// ---------------------------------------------------------------------------------------

fn encode_anthropic(events: &[StreamEvent]) -> Vec<u8> {
    let mut enc = anthropic::StreamEncoder::new("msg_gateway", "alias");
    let mut out = BytesMut::new();
    for e in events {
        enc.encode(e, &mut out);
    }
    enc.finish(&mut out);
    out.to_vec()
}

fn encode_openai(events: &[StreamEvent], include_usage: bool) -> Vec<u8> {
    let mut enc = openai::StreamEncoder::new("chatcmpl-gateway", "alias", include_usage);
    let mut out = BytesMut::new();
    for e in events {
        enc.encode(e, &mut out);
    }
    enc.finish(&mut out);
    out.to_vec()
}

/// Anthropic framing rules: event name = JSON type; blocks start and stop in order with
/// consecutive indexes; deltas target a started block; message_start first, message_stop last.
fn assert_anthropic_well_formed(name: &str, bytes: &[u8]) {
    let events = sse_events(&[bytes]);
    let mut open: Option<u64> = None;
    let mut next = 0;
    let mut started = Vec::new();
    for (i, (event, data)) in events.iter().enumerate() {
        let v = json(data);
        assert_eq!(v["type"].as_str(), Some(event.as_str()), "{name}");
        match event.as_str() {
            "message_start" => assert_eq!(i, 0, "{name}"),
            "content_block_start" => {
                assert!(open.is_none(), "{name}: nested block");
                assert_eq!(v["index"], next, "{name}");
                open = Some(next);
                started.push(next);
                next += 1;
            }
            "content_block_delta" => {
                assert!(started.contains(&v["index"].as_u64().unwrap()), "{name}")
            }
            "content_block_stop" => assert_eq!(open.take(), v["index"].as_u64(), "{name}"),
            "message_delta" => assert!(open.is_none(), "{name}: block left open"),
            "message_stop" => assert_eq!(i, events.len() - 1, "{name}"),
            other => panic!("{name}: unexpected event {other}"),
        }
    }
}

fn normalized(
    resp: &switchboard_protocols::ChatResponse,
) -> (String, Vec<(String, String, String)>) {
    // Refusals have no Anthropic equivalent and travel as text.
    (
        text_of(&resp.content) + &refusal_of(&resp.content),
        tool_calls(&resp.content),
    )
}

#[test]
fn openai_streams_survive_translation_to_anthropic() {
    for (name, bytes) in files("openai/chat-streams", ".sse.bin") {
        let events = decode(Wire::OpenAi, &bytes);
        let (direct, _) = accumulate(&events);
        let wire = encode_anthropic(&events);
        assert_anthropic_well_formed(&name, &wire);
        let (back, done) = accumulate(&decode(Wire::Anthropic, &wire));
        assert!(done, "{name}: message_stop written");
        assert_eq!(normalized(&back), normalized(&direct), "{name}");
        let expected_stop = match direct.stop_reason {
            StopReason::Other(_) => StopReason::EndTurn,
            ref s => s.clone(),
        };
        assert_eq!(back.stop_reason, expected_stop, "{name}");
        assert_eq!(
            back.usage, direct.usage,
            "{name}: usage after the finish chunk reaches message_delta"
        );
        assert_split_invariant(Wire::Anthropic, &name, &wire);
    }
}

#[test]
fn anthropic_streams_survive_translation_to_openai() {
    let mut bodies = files("anthropic/streams", ".sse.txt");
    for (name, file) in exchanges() {
        for ex in file.as_array().unwrap() {
            if let Value::String(s) = &ex["response"]["body"] {
                bodies.push((name.clone(), s.clone().into_bytes()));
            }
        }
    }
    for (name, bytes) in bodies {
        let events = decode(Wire::Anthropic, &bytes);
        let (direct, _) = accumulate(&events);
        for include_usage in [true, false] {
            let wire = encode_openai(&events, include_usage);
            let text = std::str::from_utf8(&wire).unwrap();
            assert!(text.ends_with("data: [DONE]\n\n"), "{name}");
            assert!(
                text.starts_with("data: {\"id\":\"chatcmpl-gateway\""),
                "{name}"
            );
            assert_eq!(
                text.contains("\"choices\":[],\"usage\""),
                include_usage,
                "{name}"
            );
            let (back, done) = accumulate(&decode(Wire::OpenAi, &wire));
            assert!(done, "{name}");
            assert_eq!(normalized(&back), normalized(&direct), "{name}");
            let expected_stop = match direct.stop_reason {
                StopReason::StopSequence | StopReason::Other(_) => StopReason::EndTurn,
                ref s => s.clone(),
            };
            assert_eq!(back.stop_reason, expected_stop, "{name}");
            if include_usage {
                assert_eq!(back.usage.input_tokens, direct.usage.input_tokens, "{name}");
                assert_eq!(
                    back.usage.output_tokens, direct.usage.output_tokens,
                    "{name}"
                );
                assert_eq!(
                    back.usage.cached_input_tokens,
                    direct.usage.cached_input_tokens
                );
            }
        }
    }
}

#[test]
fn truncated_upstreams_never_end_cleanly() {
    let (_, bytes) = files("openai/chat-streams", ".sse.bin")
        .into_iter()
        .find(|(n, _)| n.starts_with("parse_multiple_pydantic_tools"))
        .unwrap();
    // Cut before the finish chunk: every prefix without a stop must end in an error frame.
    let text = std::str::from_utf8(&bytes).unwrap();
    let cut = text.find("\"finish_reason\":\"tool_calls\"").unwrap();
    let cut = text[..cut].rfind("data: ").unwrap();
    let events = decode(Wire::OpenAi, &bytes[..cut]);
    let a = String::from_utf8(encode_anthropic(&events)).unwrap();
    assert!(a.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\",\"message\":\"the upstream stream ended before the answer was complete\"}}\n\n"), "{a}");
    assert!(!a.contains("message_stop"));
    let o = String::from_utf8(encode_openai(&events, true)).unwrap();
    assert!(
        o.ends_with("\"code\":null}}\n\n") && o.contains("data: {\"error\":{"),
        "{o}"
    );
    assert!(!o.contains("[DONE]"));

    // Cut after the finish chunk but before usage and [DONE]: the answer is complete.
    let after = text.find("\"choices\":[],\"usage\"").unwrap();
    let after = text[..after].rfind("data: ").unwrap();
    let events = decode(Wire::OpenAi, &bytes[..after]);
    let a = String::from_utf8(encode_anthropic(&events)).unwrap();
    assert!(
        a.ends_with("event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"),
        "{a}"
    );
}

#[test]
fn upstream_error_events_become_the_callers_error_frame() {
    let body = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"m\",\"model\":\"c\",\"usage\":{\"input_tokens\":1}}}\n\n\
event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"overloaded_error\",\"message\":\"Overloaded\"}}\n\n";
    let events = decode(Wire::Anthropic, body);
    assert_eq!(
        events.last(),
        Some(&StreamEvent::Error {
            kind: ErrorKind::Overloaded,
            message: "Overloaded".into()
        })
    );
    let o = String::from_utf8(encode_openai(&events, true)).unwrap();
    assert!(o.ends_with("data: {\"error\":{\"message\":\"Overloaded\",\"type\":\"server_error\",\"param\":null,\"code\":\"overloaded\"}}\n\n"), "{o}");

    let body = b"data: {\"id\":\"c\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\ndata: {\"error\":{\"message\":\"Rate limited\",\"type\":\"requests\",\"code\":\"rate_limit_exceeded\"}}\n\n";
    let events = decode(Wire::OpenAi, body);
    let a = String::from_utf8(encode_anthropic(&events)).unwrap();
    assert!(a.ends_with("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"rate_limit_error\",\"message\":\"Rate limited\"}}\n\n"), "{a}");
}

// ---------------------------------------------------------------------------------------
// Pass-through tap
// ---------------------------------------------------------------------------------------

#[test]
fn the_tap_sees_usage_stop_and_terminator_of_every_recording() {
    let mut cases: Vec<(Protocol, String, Vec<u8>)> = Vec::new();
    for (n, b) in files("openai/chat-streams", ".sse.bin") {
        cases.push((Protocol::OpenAi, n, b));
    }
    for (n, b) in files("anthropic/streams", ".sse.txt") {
        cases.push((Protocol::Anthropic, n, b));
    }
    for (protocol, name, bytes) in cases {
        let wire = match protocol {
            Protocol::OpenAi => Wire::OpenAi,
            Protocol::Anthropic => Wire::Anthropic,
        };
        let (full, done) = accumulate(&decode(wire, &bytes));
        let mut seed = 7_u64;
        for max in [1, 13, 4096] {
            let mut tap = StreamTap::new(protocol);
            for chunk in random_chunks(&bytes, &mut seed, max) {
                tap.feed(chunk);
            }
            tap.finish();
            assert_eq!(tap.usage(), full.usage, "{name}");
            assert_eq!(tap.stop_reason(), Some(&full.stop_reason), "{name}");
            assert_eq!(tap.saw_terminator(), done, "{name}");
            assert!(tap.completed(), "{name}");
            assert_eq!(tap.malformed_events(), 0, "{name}");
        }
        // Without its last event the stream is not complete.
        let cut = bytes.len() - 20;
        let mut tap = StreamTap::new(protocol);
        tap.feed(&bytes[..cut]);
        tap.finish();
        assert!(!tap.completed(), "{name}");
    }
}
