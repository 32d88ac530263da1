//! One function per fuzz target. Each takes arbitrary bytes, must never panic, and checks
//! the properties its input should keep (the same parse however the bytes are split; an
//! edited body parses again). `fuzz/` runs them under libFuzzer (`cargo fuzz`); the
//! ordinary test suite runs them over the kept corpus and mutations of it.

use bytes::Bytes;
use switchboard_protocols::eventstream::EventStreamDecoder;
use switchboard_protocols::framing::{EventFramer, Terminator};
use switchboard_protocols::ir::StreamEvent;
use switchboard_protocols::sse::SseParser;
use switchboard_protocols::{anthropic, bedrock, gemini, openai};
use switchboard_server::inference::raw_json::{Edit, RawObject};

/// A fuzz target's body.
pub type Target = fn(&[u8]);

/// Every target, by the name of its `fuzz/fuzz_targets/` file and corpus folder.
pub const TARGETS: &[(&str, Target)] = &[
    ("raw_json", raw_json),
    ("sse", sse),
    ("event_stream", event_stream),
    ("framing", framing),
    ("requests", requests),
    ("responses", responses),
    ("streams", streams),
];

/// A split point taken from the input itself, so the fuzzer explores splits too.
fn split_point(data: &[u8]) -> usize {
    match data.first() {
        Some(&b) if !data.is_empty() => (b as usize * 7919) % (data.len() + 1),
        _ => 0,
    }
}

/// The raw-JSON reader: a body it accepts, edited, is accepted again with the edit in place.
pub fn raw_json(data: &[u8]) {
    let Ok(object) = RawObject::parse(data) else {
        return;
    };
    let _ = (object.str("model"), object.bool("stream"));
    let edited = object.rewrite(&[
        ("model", Edit::Set("\"m\"".into())),
        ("provider", Edit::Remove),
    ]);
    let again = RawObject::parse(&edited).expect("an edited body parses again");
    assert_eq!(again.str("model").ok().flatten().as_deref(), Some("m"));
    assert!(again.get("provider").is_none());
}

fn sse_events(chunks: &[&[u8]]) -> Result<Vec<(String, String)>, ()> {
    let mut parser = SseParser::new();
    let mut events = Vec::new();
    for chunk in chunks {
        parser.push(chunk);
        while let Some(event) = parser.next_event().map_err(|_| ())? {
            events.push((event.event.to_owned(), event.data.to_owned()));
        }
    }
    if let Some(event) = parser.finish().map_err(|_| ())? {
        events.push((event.event.to_owned(), event.data.to_owned()));
    }
    Ok(events)
}

/// The SSE parser: one read or two, split anywhere, give the same events.
pub fn sse(data: &[u8]) {
    let whole = sse_events(&[data]);
    let (a, b) = data.split_at(split_point(data));
    let split = sse_events(&[a, b]);
    // An invalid line is an error either way; valid input parses identically.
    if let (Ok(whole), Ok(split)) = (&whole, &split) {
        assert_eq!(whole, split);
    }
    assert_eq!(whole.is_ok(), split.is_ok());
}

/// The AWS event-stream decoder: whole or split, the same frames (or an error).
pub fn event_stream(data: &[u8]) {
    let decode = |chunks: &[&[u8]]| {
        let mut decoder = EventStreamDecoder::new();
        let mut frames = Vec::new();
        for chunk in chunks {
            decoder.push(chunk, &mut frames).map_err(|_| ())?;
        }
        decoder.finish().map_err(|_| ())?;
        Ok::<_, ()>(
            frames
                .iter()
                .map(|f| f.payload().to_vec())
                .collect::<Vec<_>>(),
        )
    };
    let whole = decode(&[data]);
    let (a, b) = data.split_at(split_point(data));
    assert_eq!(whole, decode(&[a, b]));
}

/// The pass-through framer: forwards every byte of whole events, however split.
pub fn framing(data: &[u8]) {
    let (a, b) = data.split_at(split_point(data));
    let mut framer = EventFramer::new();
    let mut out = framer.push(Bytes::copy_from_slice(a)).to_vec();
    out.extend_from_slice(&framer.push(Bytes::copy_from_slice(b)));
    let held = framer.pending();
    out.extend_from_slice(&framer.finish());
    assert!(data.starts_with(&out), "only whole events, in order");
    assert!(out.len() + held >= data.len());
    let _ = (
        Terminator::OpenAi.find(&out),
        Terminator::Anthropic.find(&out),
    );
}

/// Both request decoders, and every encoder on what they accept.
pub fn requests(data: &[u8]) {
    for decoded in [
        openai::decode_request(data),
        anthropic::decode_request(data),
    ] {
        let Ok(request) = decoded else { continue };
        let _ = openai::encode_request(&request, "m");
        let _ = anthropic::encode_request(&request, "m", 1024);
        let _ = gemini::encode_request(&request);
        let _ = bedrock::encode_request(&request, "m", &bedrock::EncodeOptions::default());
    }
}

/// Every whole-response decoder, and the caller-side encoders on what they accept.
pub fn responses(data: &[u8]) {
    let decoded = [
        openai::decode_response(data),
        anthropic::decode_response(data),
        gemini::decode_response(data),
        bedrock::decode_response(data, "m"),
    ];
    for response in decoded.into_iter().flatten() {
        let _ = openai::encode_response(&response, "m");
        let _ = anthropic::encode_response(&response, "m");
    }
    let _ = switchboard_protocols::classify_upstream_error(502, data);
}

/// Every stream decoder: SSE events for the JSON protocols, frames for Bedrock's.
pub fn streams(data: &[u8]) {
    let mut out: Vec<StreamEvent> = Vec::new();
    let mut parser = SseParser::new();
    parser.push(data);
    let (mut o, mut a, mut g) = (
        openai::StreamDecoder::new(),
        anthropic::StreamDecoder::new(),
        gemini::StreamDecoder::new(),
    );
    while let Ok(Some(event)) = parser.next_event() {
        let _ = o.push(&event, &mut out);
        let _ = a.push(&event, &mut out);
        let _ = g.push(&event, &mut out);
    }
    g.finish(&mut out);
    let mut converse = bedrock::StreamDecoder::new("m");
    let _ = converse.push(data, &mut out);
    let _ = converse.finish(&mut out);
    let mut invoke = bedrock::InvokeStreamDecoder::new();
    let _ = invoke.push(data, &mut out);
    let _ = invoke.finish();
}
