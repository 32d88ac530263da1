//! Conformance of the Bedrock and Gemini codecs on bytes no one here wrote (see
//! `tests/fixtures/README.md`): the aws-sdk-go event-stream codec vectors, every live
//! Bedrock ConverseStream body and every Gemini/Vertex SSE body from the pydantic-ai
//! cassettes, and the vercel/ai exception-frame reproductions.
//!
//! Live streams are decoded whole, byte by byte, and split at every single boundary, and
//! must reassemble to what an independent reading of the same bytes says they hold
//! (`expected-streams.json`, written by `expected-streams.py`) — text, tool calls with their
//! arguments, reasoning, stop reason and usage.

use std::path::{Path, PathBuf};

use aws_smithy_types::event_stream::HeaderValue;
use base64::Engine as _;
use serde_json::Value;
use switchboard_protocols::eventstream::{EventStreamDecoder, EventStreamError, Frame};
use switchboard_protocols::ir::{Part, StopReason, StreamAccumulator, StreamEvent};
use switchboard_protocols::{ErrorKind, SseParser, bedrock, gemini};

fn dir(sub: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(sub)
}

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn listing(sub: &str) -> Vec<(String, Vec<u8>)> {
    let mut out: Vec<_> = std::fs::read_dir(dir(sub))
        .expect("fixture folder exists")
        .map(|e| e.expect("entry").path())
        .filter(|p| p.is_file())
        .map(|p| {
            (
                p.file_name().unwrap().to_string_lossy().into_owned(),
                read(&p),
            )
        })
        .collect();
    out.sort();
    out
}

fn expected() -> Value {
    serde_json::from_slice(&read(&dir("expected-streams.json"))).expect("expected JSON")
}

fn b64(s: &str) -> Vec<u8> {
    base64::engine::general_purpose::STANDARD
        .decode(s)
        .expect("base64")
}

// ---------------------------------------------------------------------------------------
// aws-sdk-go event-stream vectors
// ---------------------------------------------------------------------------------------

fn decode_one(bytes: &[u8]) -> Result<Frame, EventStreamError> {
    let mut d = EventStreamDecoder::new();
    let mut out = Vec::new();
    d.push(bytes, &mut out)?;
    d.finish()?;
    assert_eq!(out.len(), 1, "one frame per vector");
    Ok(out.remove(0))
}

fn header_matches(value: &HeaderValue, kind: u64, expected: &Value) -> bool {
    match (kind, value) {
        (0, HeaderValue::Bool(true)) | (1, HeaderValue::Bool(false)) => true,
        (2, HeaderValue::Byte(v)) => expected.as_i64() == Some(i64::from(*v)),
        (3, HeaderValue::Int16(v)) => expected.as_i64() == Some(i64::from(*v)),
        (4, HeaderValue::Int32(v)) => expected.as_i64() == Some(i64::from(*v)),
        (5, HeaderValue::Int64(v)) => expected.as_i64() == Some(*v),
        (6, HeaderValue::ByteArray(v)) => b64(expected.as_str().unwrap()) == v.as_ref(),
        (7, HeaderValue::String(v)) => b64(expected.as_str().unwrap()) == v.as_str().as_bytes(),
        (8, HeaderValue::Timestamp(v)) => v.to_millis().ok() == expected.as_i64(),
        (9, HeaderValue::Uuid(v)) => b64(expected.as_str().unwrap()) == v.to_be_bytes(),
        _ => false,
    }
}

/// CRCs in the vectors are sometimes written as signed 32-bit integers.
fn crc(v: &Value) -> u32 {
    v.as_i64().expect("crc") as u32
}

#[test]
fn aws_sdk_go_positive_vectors_decode_to_the_documented_frames() {
    let positives = listing("aws-eventstream/encoded/positive");
    assert_eq!(positives.len(), 5);
    for (name, bytes) in positives {
        let want: Value =
            serde_json::from_slice(&read(&dir("aws-eventstream/decoded/positive").join(&name)))
                .unwrap();
        let frame = decode_one(&bytes).unwrap_or_else(|e| panic!("{name}: {e}"));
        assert_eq!(
            bytes.len() as u64,
            want["total_length"].as_u64().unwrap(),
            "{name}"
        );
        let headers_len = u32::from_be_bytes(bytes[4..8].try_into().unwrap());
        assert_eq!(
            u64::from(headers_len),
            want["headers_length"].as_u64().unwrap()
        );
        assert_eq!(
            u32::from_be_bytes(bytes[8..12].try_into().unwrap()),
            crc(&want["prelude_crc"])
        );
        let tail = u32::from_be_bytes(bytes[bytes.len() - 4..].try_into().unwrap());
        assert_eq!(tail, crc(&want["message_crc"]), "{name}");
        assert_eq!(
            frame.payload(),
            b64(want["payload"].as_str().unwrap()),
            "{name}"
        );
        let headers = frame.message().headers();
        let want_headers = want["headers"].as_array().unwrap();
        assert_eq!(headers.len(), want_headers.len(), "{name}");
        for (h, w) in headers.iter().zip(want_headers) {
            assert_eq!(h.name().as_str(), w["name"].as_str().unwrap(), "{name}");
            assert!(
                header_matches(h.value(), w["type"].as_u64().unwrap(), &w["value"]),
                "{name}: header {} is {:?}",
                h.name().as_str(),
                h.value()
            );
        }
    }
}

#[test]
fn aws_sdk_go_negative_vectors_are_rejected_with_the_documented_checksum_error() {
    let negatives = listing("aws-eventstream/encoded/negative");
    assert_eq!(negatives.len(), 4);
    for (name, bytes) in negatives {
        let want =
            String::from_utf8(read(&dir("aws-eventstream/decoded/negative").join(&name))).unwrap();
        let err = decode_one(&bytes).expect_err(&name);
        assert!(err.is_checksum(), "{name}: {err}");
        let prelude = want.trim() == "Prelude checksum mismatch";
        assert_eq!(
            err == EventStreamError::PreludeChecksum,
            prelude,
            "{name}: {err}"
        );
    }
}

#[test]
fn empty_message_vector_from_the_reference() {
    let bytes = [
        0, 0, 0, 0x10, 0, 0, 0, 0, 0x05, 0xc2, 0x48, 0xeb, 0x7d, 0x98, 0xc8, 0xff,
    ];
    let frame = decode_one(&bytes).unwrap();
    assert!(frame.payload().is_empty() && frame.message().headers().is_empty());
}

// ---------------------------------------------------------------------------------------
// Bedrock ConverseStream recordings
// ---------------------------------------------------------------------------------------

fn bedrock_events(chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut decoder = bedrock::StreamDecoder::new("recorded-model");
    let mut events = Vec::new();
    for chunk in chunks {
        decoder.push(chunk, &mut events).expect("valid stream");
    }
    decoder.finish(&mut events).expect("complete stream");
    events
}

struct Summary {
    text: String,
    thinking: String,
    signature: String,
    redacted: usize,
    tools: Vec<(String, String)>,
    stop: Option<StopReason>,
    usage: (u64, u64),
    done: bool,
    errors: usize,
}

fn summarize(events: &[StreamEvent]) -> Summary {
    let mut acc = StreamAccumulator::new();
    events.iter().for_each(|e| acc.push(e));
    let done = acc.is_done();
    let errors = events
        .iter()
        .filter(|e| matches!(e, StreamEvent::Error { .. }))
        .count();
    let stop = acc.stop_reason().cloned();
    let response = acc.into_response();
    let mut s = Summary {
        text: String::new(),
        thinking: String::new(),
        signature: String::new(),
        redacted: 0,
        tools: Vec::new(),
        stop,
        usage: (response.usage.input_tokens, response.usage.output_tokens),
        done,
        errors,
    };
    for part in response.content {
        match part {
            Part::Text(t) => s.text.push_str(&t),
            Part::Thinking { text, signature } => {
                s.thinking.push_str(&text);
                s.signature
                    .push_str(signature.as_deref().unwrap_or_default());
            }
            Part::RedactedThinking { .. } => s.redacted += 1,
            Part::ToolCall {
                name, arguments, ..
            } => s.tools.push((name, arguments)),
            _ => {}
        }
    }
    s
}

fn expected_tools(want: &Value) -> Vec<(String, String)> {
    want["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            (
                t[0].as_str().unwrap().to_owned(),
                t[1].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

fn check_bedrock(name: &str, s: &Summary, want: &Value) {
    assert_eq!(s.text, want["text"].as_str().unwrap(), "{name}");
    assert_eq!(s.thinking, want["thinking"].as_str().unwrap(), "{name}");
    assert_eq!(s.signature, want["signature"].as_str().unwrap(), "{name}");
    assert_eq!(
        s.redacted as u64,
        want["redacted"].as_u64().unwrap(),
        "{name}"
    );
    assert_eq!(s.tools, expected_tools(want), "{name}");
    let stop = bedrock::stop_from_bedrock(want["stop"].as_str().unwrap());
    assert_eq!(s.stop.as_ref(), Some(&stop), "{name}");
    let usage = &want["usage"];
    assert_eq!(
        s.usage,
        (usage[0].as_u64().unwrap(), usage[1].as_u64().unwrap()),
        "{name}"
    );
    assert!(s.done && s.errors == 0, "{name}");
}

#[test]
fn every_live_converse_stream_reassembles_whole_and_byte_by_byte() {
    let expected = expected();
    let streams = listing("bedrock/converse-stream");
    assert_eq!(streams.len(), 8, "all eight live ConverseStream bodies");
    for (name, bytes) in &streams {
        let want = &expected[name.as_str()];
        check_bedrock(name, &summarize(&bedrock_events(&[bytes])), want);
        let single: Vec<&[u8]> = bytes.chunks(1).collect();
        check_bedrock(name, &summarize(&bedrock_events(&single)), want);
    }
}

/// Every boundary: the frames must be exactly those of the whole body (the events are a
/// function of the frames alone); every 31st boundary: the whole decode is re-checked too.
#[test]
fn every_live_converse_stream_survives_a_split_at_every_boundary() {
    let expected = expected();
    for (name, bytes) in listing("bedrock/converse-stream") {
        let want = &expected[name.as_str()];
        let mut whole = Vec::new();
        EventStreamDecoder::new().push(&bytes, &mut whole).unwrap();
        for cut in 1..bytes.len() {
            let mut d = EventStreamDecoder::new();
            let mut frames = Vec::new();
            d.push(&bytes[..cut], &mut frames).unwrap();
            d.push(&bytes[cut..], &mut frames).unwrap();
            d.finish().unwrap();
            assert!(frames == whole, "{name} cut at {cut}");
            if cut % 31 == 0 {
                let events = bedrock_events(&[&bytes[..cut], &bytes[cut..]]);
                check_bedrock(&name, &summarize(&events), want);
            }
        }
    }
}

#[test]
fn recorded_tool_arguments_are_forwarded_fragment_by_fragment_as_they_arrive() {
    for (name, bytes) in listing("bedrock/converse-stream") {
        let mut frames = Vec::new();
        EventStreamDecoder::new().push(&bytes, &mut frames).unwrap();
        let upstream_fragments = frames
            .iter()
            .filter(|f| f.header_str(":event-type") == Some("contentBlockDelta"))
            .filter(|f| {
                let v: Value = serde_json::from_slice(f.payload()).unwrap();
                v.pointer("/delta/toolUse/input").is_some_and(|i| i != "")
            })
            .count();
        // Feeding frame by frame: each fragment is out before the next frame is read.
        let mut decoder = bedrock::StreamDecoder::new("m");
        let mut deltas = 0;
        let mut events = Vec::new();
        for frame in &frames {
            decoder.push_frame(frame, &mut events).unwrap();
            deltas += events
                .drain(..)
                .filter(|e| matches!(e, StreamEvent::ToolCallDelta { .. }))
                .count();
        }
        let server_side = name.contains("code_execution");
        let want = if server_side {
            upstream_fragments - 1
        } else {
            upstream_fragments
        };
        assert_eq!(deltas, want, "{name}");
    }
    // Stop comes with messageStop, the usage after it (metadata), then Done.
    let bytes = read(&dir(
        "bedrock/converse-stream/test_bedrock_model_iter_stream.0.eventstream",
    ));
    let events = bedrock_events(&[&bytes]);
    let tail: Vec<_> = events.iter().rev().take(3).collect();
    assert!(matches!(tail[0], StreamEvent::Done));
    assert!(matches!(tail[1], StreamEvent::Usage(_)));
    assert!(matches!(tail[2], StreamEvent::Stop { .. }));
}

#[test]
fn corrupting_any_recorded_frame_is_detected() {
    let bytes = read(&dir(
        "bedrock/converse-stream/test_bedrock_model_stream.0.eventstream",
    ));
    for at in [0, 9, 20, 60, bytes.len() / 2, bytes.len() - 1] {
        let mut bad = bytes.clone();
        bad[at] ^= 0x01;
        let mut d = bedrock::StreamDecoder::new("m");
        let result = d
            .push(&bad, &mut Vec::new())
            .and_then(|()| d.finish(&mut Vec::new()));
        assert!(result.is_err(), "flip at {at} went unnoticed");
    }
    let mut d = bedrock::StreamDecoder::new("m");
    d.push(&bytes[..bytes.len() - 3], &mut Vec::new()).unwrap();
    assert!(
        d.finish(&mut Vec::new()).is_err(),
        "truncation went unnoticed"
    );
}

#[test]
fn vercel_exception_frames_become_terminal_errors() {
    for (name, text) in listing("bedrock")
        .into_iter()
        .filter(|(n, _)| n.ends_with(".eventstream.base64.txt"))
    {
        let bytes = b64(String::from_utf8(text).unwrap().trim());
        let events = bedrock_events(&[&bytes]);
        let Some(StreamEvent::Error { kind, message }) = events.last() else {
            panic!("{name}: no error event in {events:?}");
        };
        assert_eq!(*kind, ErrorKind::BadGateway, "{name}");
        assert_eq!(message, "Model Stream Error", "{name}");
        assert!(
            !events.iter().any(|e| matches!(e, StreamEvent::Done)),
            "{name}"
        );
    }
}

// ---------------------------------------------------------------------------------------
// Gemini / Vertex SSE recordings
// ---------------------------------------------------------------------------------------

fn gemini_events(chunks: &[&[u8]]) -> Vec<StreamEvent> {
    let mut parser = SseParser::new();
    let mut decoder = gemini::StreamDecoder::new();
    let mut events = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(event) = parser.next_event().expect("valid SSE") {
            decoder.push(&event, &mut events).expect("valid chunk");
        }
    }
    decoder.finish(&mut events);
    events
}

fn check_gemini(name: &str, s: &Summary, want: &Value) {
    assert_eq!(s.text, want["text"].as_str().unwrap(), "{name}");
    assert_eq!(s.thinking, want["thinking"].as_str().unwrap(), "{name}");
    assert_eq!(s.tools, expected_tools(want), "{name}");
    let called = !s.tools.is_empty();
    let stop = gemini::stop_from_gemini(want["finish"].as_str().unwrap(), called);
    assert_eq!(s.stop.as_ref(), Some(&stop), "{name}");
    let usage = &want["usage"];
    assert_eq!(
        s.usage,
        (usage[0].as_u64().unwrap(), usage[1].as_u64().unwrap()),
        "{name}"
    );
    assert!(s.done && s.errors == 0, "{name}");
}

fn sse_data(chunks: &[&[u8]]) -> Vec<String> {
    let mut parser = SseParser::new();
    let mut out = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(event) = parser.next_event().expect("valid SSE") {
            out.push(event.data.to_owned());
        }
    }
    out
}

/// Every boundary (also inside a multi-byte character): the SSE events must be exactly
/// those of the whole body; every 31st boundary: the whole decode is re-checked too.
#[test]
fn every_gemini_stream_reassembles_at_every_split() {
    let expected = expected();
    let streams = listing("google/stream");
    assert_eq!(streams.len(), 9);
    for (name, bytes) in &streams {
        assert!(
            bytes.windows(4).any(|w| w == b"\r\n\r\n"),
            "{name}: CRLF separators"
        );
        let want = &expected[name.as_str()];
        check_gemini(name, &summarize(&gemini_events(&[bytes])), want);
        let whole = sse_data(&[bytes]);
        for cut in 1..bytes.len() {
            assert_eq!(
                sse_data(&[&bytes[..cut], &bytes[cut..]]),
                whole,
                "{name} cut at {cut}"
            );
            if cut % 31 == 0 {
                let s = summarize(&gemini_events(&[&bytes[..cut], &bytes[cut..]]));
                check_gemini(name, &s, want);
            }
        }
    }
}

#[test]
fn gemini_function_calls_arrive_whole_with_ids_and_tool_use_stop() {
    let bytes = read(&dir("google/stream/test_google_model_iter_stream.0.sse"));
    let events = gemini_events(&[&bytes]);
    let starts: Vec<_> = events
        .iter()
        .filter_map(|e| match e {
            StreamEvent::ToolCallStart { id, name, .. } => Some((id.clone(), name.clone())),
            _ => None,
        })
        .collect();
    assert_eq!(starts.len(), 1);
    assert!(starts[0].0.starts_with("call_") && starts[0].1 == "get_capital");
    assert!(events.contains(&StreamEvent::Stop {
        reason: StopReason::ToolUse
    }));
}

#[test]
fn gemini_thought_signatures_and_thought_tokens_are_kept() {
    let bytes = read(&dir(
        "google/stream/test_google_streaming_tool_call_thought_signature.0.sse",
    ));
    let events = gemini_events(&[&bytes]);
    let mut acc = StreamAccumulator::new();
    events.iter().for_each(|e| acc.push(e));
    let r = acc.into_response();
    assert!(
        matches!(&r.content[0], Part::Thinking { text, signature: Some(_) } if text.is_empty())
    );
    assert!(matches!(&r.content[1], Part::ToolCall { name, .. } if name == "get_country"));
    assert_eq!(r.usage.reasoning_tokens, 202);
    // Re-encoding the answer for Gemini puts the signature back on the call.
    let req = switchboard_protocols::ChatRequest {
        messages: vec![switchboard_protocols::Message {
            role: switchboard_protocols::Role::Assistant,
            content: r.content,
        }],
        ..Default::default()
    };
    let body: Value = serde_json::from_slice(&gemini::encode_request(&req).unwrap()).unwrap();
    let part = &body["contents"][0]["parts"][0];
    assert!(
        part["thoughtSignature"]
            .as_str()
            .unwrap()
            .starts_with("EpwICpkI")
    );
    assert_eq!(part["functionCall"]["name"], "get_country");
}

// ---------------------------------------------------------------------------------------
// Translation: recorded Bedrock and Gemini streams relayed to OpenAI and Anthropic callers
// ---------------------------------------------------------------------------------------

/// Encodes `events` as an OpenAI and as an Anthropic stream (as the relay does, `finish` at
/// upstream EOF), decodes both back and returns their summaries.
fn relayed(events: &[StreamEvent]) -> [Summary; 2] {
    use bytes::BytesMut;
    use switchboard_protocols::{anthropic, openai};
    let mut oa = openai::StreamEncoder::new("chatcmpl-1", "alias", true);
    let mut an = anthropic::StreamEncoder::new("msg_1", "alias");
    let (mut oa_out, mut an_out) = (BytesMut::new(), BytesMut::new());
    for e in events {
        oa.encode(e, &mut oa_out);
        an.encode(e, &mut an_out);
    }
    oa.finish(&mut oa_out);
    an.finish(&mut an_out);
    let mut back = [Vec::new(), Vec::new()];
    let mut oa_dec = openai::StreamDecoder::new();
    let mut an_dec = anthropic::StreamDecoder::new();
    for (i, bytes) in [&oa_out, &an_out].into_iter().enumerate() {
        let mut parser = SseParser::new();
        parser.push(bytes);
        while let Some(event) = parser.next_event().unwrap() {
            match i {
                0 => oa_dec.push(&event, &mut back[0]).unwrap(),
                _ => an_dec.push(&event, &mut back[1]).unwrap(),
            }
        }
    }
    [summarize(&back[0]), summarize(&back[1])]
}

fn same_answer(name: &str, via: &str, a: &Summary, b: &Summary) {
    assert_eq!(a.text, b.text, "{name} via {via}: text");
    assert_eq!(a.tools, b.tools, "{name} via {via}: tools");
    assert_eq!(a.usage, b.usage, "{name} via {via}: usage");
    assert!(b.done && b.errors == 0, "{name} via {via}: clean end");
}

#[test]
fn recorded_cloud_streams_translate_to_openai_and_anthropic_callers() {
    let mut streams: Vec<(String, Vec<StreamEvent>)> = Vec::new();
    for (name, bytes) in listing("bedrock/converse-stream") {
        streams.push((name, bedrock_events(&[&bytes])));
    }
    for (name, bytes) in listing("google/stream") {
        streams.push((name, gemini_events(&[&bytes])));
    }
    for (name, events) in streams {
        let original = summarize(&events);
        let [openai, anthropic] = relayed(&events);
        same_answer(&name, "openai", &original, &openai);
        same_answer(&name, "anthropic", &original, &anthropic);
        assert_eq!(
            openai.stop,
            original.stop.clone().map(|s| match s {
                StopReason::StopSequence => StopReason::EndTurn,
                other => other,
            }),
            "{name}: finish reason"
        );
        assert_eq!(anthropic.stop, original.stop, "{name}: stop reason");
    }
}

#[test]
fn a_bedrock_exception_frame_reaches_callers_as_their_mid_stream_error() {
    let (_, text) = listing("bedrock")
        .into_iter()
        .find(|(n, _)| n.ends_with("pr19124.eventstream.base64.txt"))
        .unwrap();
    let events = bedrock_events(&[&b64(String::from_utf8(text).unwrap().trim())]);
    let [openai, anthropic] = relayed(&events);
    assert_eq!(openai.text, "before error");
    assert!(
        openai.errors == 1 && !openai.done,
        "OpenAI caller sees an error, not [DONE]"
    );
    assert!(
        anthropic.errors == 1 && !anthropic.done,
        "Anthropic caller sees event: error"
    );
}
