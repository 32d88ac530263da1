//! OpenAI `chat.completion.chunk` streams ⇄ [`StreamEvent`]s.

use bytes::BytesMut;
use serde::{Deserialize, Serialize};

use super::response::{OutUsage, WireUsage, finish_from_stop, stop_from_finish, unix_now};
use crate::error::{ErrorKind, ProtocolError};
use crate::ir::{StopReason, StreamEvent, Usage};
use crate::sse::{SseEvent, write_data};

#[derive(Deserialize)]
struct WireChunk {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    choices: Vec<WireChunkChoice>,
    usage: Option<WireUsage>,
    error: Option<WireStreamError>,
}

#[derive(Deserialize)]
struct WireChunkChoice {
    #[serde(default)]
    index: u32,
    delta: Option<WireDelta>,
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireDelta {
    content: Option<String>,
    refusal: Option<String>,
    /// Non-standard reasoning fields of OpenAI-compatible servers.
    reasoning_content: Option<String>,
    reasoning: Option<String>,
    tool_calls: Option<Vec<WireToolCallDelta>>,
}

#[derive(Deserialize)]
struct WireToolCallDelta {
    index: Option<u32>,
    id: Option<String>,
    function: Option<WireFunctionDelta>,
}

#[derive(Deserialize)]
struct WireFunctionDelta {
    name: Option<String>,
    arguments: Option<String>,
}

#[derive(Deserialize)]
struct WireStreamError {
    message: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    code: Option<serde_json::Value>,
}

/// Decodes an OpenAI chunk stream into IR events, one SSE event at a time.
///
/// Tolerates what real upstreams send: the Azure filter preamble (empty `id`, `choices:[]`),
/// the usage-only chunk, `"usage":null` on every chunk, `obfuscation` padding, and
/// `data: {"error":…}` mid-stream (→ [`StreamEvent::Error`]). Only choice 0 is followed.
/// OpenAI's `tool_calls[].index` already is the tool ordinal, so it passes through.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    stopped: bool,
    /// Tool ordinals whose start was emitted.
    tools_started: Vec<bool>,
    /// The ordinal of the last tool delta, for servers that omit `index` after the first.
    last_ordinal: u32,
}

impl StreamDecoder {
    /// A decoder at the start of a stream.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes one SSE event, appending IR events to `out`.
    pub fn push(
        &mut self,
        event: &SseEvent<'_>,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProtocolError> {
        let data = event.data.trim();
        if data == "[DONE]" {
            out.push(StreamEvent::Done);
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: WireChunk =
            serde_json::from_str(data).map_err(|e| ProtocolError::upstream_json(&e))?;
        if let Some(err) = chunk.error {
            out.push(stream_error(err));
            return Ok(());
        }
        if !self.started && !chunk.id.is_empty() {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.id,
                model: chunk.model,
            });
        }
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            self.choice(choice, out);
        }
        if let Some(u) = chunk.usage {
            out.push(StreamEvent::Usage(u.to_ir()));
        }
        Ok(())
    }

    fn choice(&mut self, choice: WireChunkChoice, out: &mut Vec<StreamEvent>) {
        if let Some(d) = choice.delta {
            let reasoning = d.reasoning_content.or(d.reasoning);
            push_text(out, reasoning, |text| StreamEvent::ThinkingDelta { text });
            push_text(out, d.content, |text| StreamEvent::TextDelta { text });
            push_text(out, d.refusal, |text| StreamEvent::RefusalDelta { text });
            for call in d.tool_calls.unwrap_or_default() {
                self.tool_delta(call, out);
            }
        }
        if let Some(reason) = choice.finish_reason
            && !self.stopped
        {
            self.stopped = true;
            out.push(StreamEvent::Stop {
                reason: stop_from_finish(&reason),
            });
        }
    }

    fn tool_delta(&mut self, call: WireToolCallDelta, out: &mut Vec<StreamEvent>) {
        let ordinal = call.index.unwrap_or(self.last_ordinal);
        self.last_ordinal = ordinal;
        let slot = ordinal as usize;
        if self.tools_started.len() <= slot {
            self.tools_started.resize(slot + 1, false);
        }
        let (name, arguments) = match call.function {
            Some(f) => (f.name, f.arguments),
            None => (None, None),
        };
        if !self.tools_started[slot] && (call.id.is_some() || name.is_some()) {
            self.tools_started[slot] = true;
            out.push(StreamEvent::ToolCallStart {
                ordinal,
                id: call.id.unwrap_or_default(),
                name: name.unwrap_or_default(),
            });
        }
        if let Some(arguments) = arguments.filter(|a| !a.is_empty()) {
            out.push(StreamEvent::ToolCallDelta { ordinal, arguments });
        }
    }
}

fn push_text(out: &mut Vec<StreamEvent>, text: Option<String>, make: fn(String) -> StreamEvent) {
    if let Some(t) = text.filter(|t| !t.is_empty()) {
        out.push(make(t));
    }
}

fn stream_error(err: WireStreamError) -> StreamEvent {
    let code = match err.code {
        Some(serde_json::Value::String(s)) => Some(s),
        Some(serde_json::Value::Number(n)) => Some(n.to_string()),
        _ => None,
    };
    let kind = [code.as_deref(), err.kind.as_deref()]
        .into_iter()
        .flatten()
        .find_map(ErrorKind::from_type_or_code)
        .unwrap_or(ErrorKind::Server);
    StreamEvent::Error {
        kind,
        message: err
            .message
            .unwrap_or_else(|| "the upstream stream failed".into()),
    }
}

#[derive(Serialize)]
struct OutChunk<'a> {
    id: &'a str,
    object: &'static str,
    created: u64,
    model: &'a str,
    choices: &'a [OutChoice<'a>],
    #[serde(skip_serializing_if = "Option::is_none")]
    usage: Option<OutUsage>,
}

#[derive(Serialize)]
struct OutChoice<'a> {
    index: u32,
    delta: OutDelta<'a>,
    logprobs: Option<()>,
    finish_reason: Option<&'static str>,
}

#[derive(Serialize, Default)]
struct OutDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    role: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    refusal: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    reasoning_content: Option<&'a str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    tool_calls: Option<[OutToolDelta<'a>; 1]>,
}

#[derive(Serialize)]
struct OutToolDelta<'a> {
    index: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    id: Option<&'a str>,
    #[serde(rename = "type", skip_serializing_if = "Option::is_none")]
    kind: Option<&'static str>,
    function: OutFunctionDelta<'a>,
}

#[derive(Serialize)]
struct OutFunctionDelta<'a> {
    #[serde(skip_serializing_if = "Option::is_none")]
    name: Option<&'a str>,
    arguments: &'a str,
}

#[derive(Serialize)]
struct OutError<'a> {
    error: super::response::ErrorObject<'a>,
}

/// Where an encoder is in its stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing written yet.
    Idle,
    /// The role chunk is out.
    Open,
    /// The finish chunk is out; waiting for usage and the terminator.
    Stopped,
    /// `[DONE]` or an error is out; everything else is ignored.
    Closed,
}

/// Encodes IR events as an OpenAI chunk stream for a caller.
///
/// Framing rules:
/// - the first event of any kind writes the role chunk
///   `delta:{"role":"assistant","content":""}`;
/// - text → `delta.content`, refusal → `delta.refusal`, tool calls → `delta.tool_calls` with
///   `index` = tool ordinal and `id`/`type`/`function.name` only in the first delta;
///   thinking is dropped unless [`with_reasoning`](Self::with_reasoning) asks for the
///   non-standard `delta.reasoning_content`;
/// - `Stop` writes the finish chunk (`delta:{}` + `finish_reason`);
/// - usage is remembered (last snapshot wins) and written as the `choices:[]` usage chunk only
///   when the caller asked for `include_usage`, right before `data: [DONE]`;
/// - `Done` writes the terminator only if a `Stop` was seen; otherwise the stream ends with
///   an error frame, because a clean `[DONE]` would tell the caller a truncated answer is
///   complete. [`finish`](Self::finish) applies the same rule at upstream EOF.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    created: u64,
    include_usage: bool,
    reasoning: bool,
    phase: Phase,
    usage: Usage,
    tools_started: Vec<bool>,
}

impl StreamEncoder {
    /// An encoder reporting `id` and `model` in every chunk.
    pub fn new(id: impl Into<String>, model: impl Into<String>, include_usage: bool) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            created: unix_now(),
            include_usage,
            reasoning: false,
            phase: Phase::Idle,
            usage: Usage::default(),
            tools_started: Vec::new(),
        }
    }

    /// Fixes `created` (for reproducible output).
    pub fn with_created(mut self, created: u64) -> Self {
        self.created = created;
        self
    }

    /// Also emit thinking as the non-standard `delta.reasoning_content`.
    pub fn with_reasoning(mut self, yes: bool) -> Self {
        self.reasoning = yes;
        self
    }

    /// Whether a terminator (clean or error) has been written.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Writes the wire bytes for one event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        if self.phase == Phase::Closed {
            return;
        }
        match event {
            StreamEvent::Error { kind, message } => {
                return self.finish_with_error(*kind, message, out);
            }
            StreamEvent::Usage(u) => return self.usage = *u,
            StreamEvent::Done => return self.finish(out),
            _ => self.open(out),
        }
        match event {
            StreamEvent::Start { .. }
            | StreamEvent::Error { .. }
            | StreamEvent::Usage(_)
            | StreamEvent::Done => {}
            StreamEvent::TextDelta { text } => self.delta(out, |d| d.content = Some(text.as_str())),
            StreamEvent::RefusalDelta { text } => {
                self.delta(out, |d| d.refusal = Some(text.as_str()))
            }
            StreamEvent::ThinkingDelta { text } if self.reasoning => {
                self.delta(out, |d| d.reasoning_content = Some(text.as_str()))
            }
            StreamEvent::ThinkingDelta { .. }
            | StreamEvent::ThinkingSignature { .. }
            | StreamEvent::RedactedThinking { .. } => {}
            StreamEvent::ToolCallStart { ordinal, id, name } => {
                self.tool_start(*ordinal, id, name, out)
            }
            StreamEvent::ToolCallDelta { ordinal, arguments } => {
                self.tool_arguments(*ordinal, arguments, out)
            }
            StreamEvent::Stop { reason } => self.stop(reason, out),
        }
    }

    /// Ends the stream at upstream EOF: the clean terminator if a `Stop` was seen, an error
    /// frame otherwise. Does nothing if already closed.
    pub fn finish(&mut self, out: &mut BytesMut) {
        match self.phase {
            Phase::Closed => {}
            Phase::Stopped => {
                if self.include_usage {
                    let usage = OutUsage::from_ir(&self.usage);
                    self.write(out, &[], Some(usage));
                }
                out.extend_from_slice(b"data: [DONE]\n\n");
                self.phase = Phase::Closed;
            }
            Phase::Idle | Phase::Open => self.finish_with_error(
                ErrorKind::BadGateway,
                "the upstream stream ended before the answer was complete",
                out,
            ),
        }
    }

    /// Ends the stream with OpenAI's mid-stream error frame `data: {"error":{…}}` and no
    /// `[DONE]`, which the OpenAI SDKs raise as an `APIError`.
    pub fn finish_with_error(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        if self.phase == Phase::Closed {
            return;
        }
        let (kind_name, code) = kind.openai_type_code();
        write_data(
            out,
            &OutError {
                error: super::response::ErrorObject {
                    message,
                    kind: kind_name,
                    param: None,
                    code,
                },
            },
        );
        self.phase = Phase::Closed;
    }

    fn open(&mut self, out: &mut BytesMut) {
        if self.phase == Phase::Idle {
            self.phase = Phase::Open;
            self.delta(out, |d| {
                d.role = Some("assistant");
                d.content = Some("");
            });
        }
    }

    fn tool_start(&mut self, ordinal: u32, id: &str, name: &str, out: &mut BytesMut) {
        let slot = ordinal as usize;
        if self.tools_started.len() <= slot {
            self.tools_started.resize(slot + 1, false);
        }
        self.tools_started[slot] = true;
        self.delta(out, |d| {
            d.tool_calls = Some([OutToolDelta {
                index: ordinal,
                id: Some(id),
                kind: Some("function"),
                function: OutFunctionDelta {
                    name: Some(name),
                    arguments: "",
                },
            }])
        });
    }

    fn tool_arguments(&mut self, ordinal: u32, arguments: &str, out: &mut BytesMut) {
        if arguments.is_empty() {
            return;
        }
        self.delta(out, |d| {
            d.tool_calls = Some([OutToolDelta {
                index: ordinal,
                id: None,
                kind: None,
                function: OutFunctionDelta {
                    name: None,
                    arguments,
                },
            }])
        });
    }

    fn stop(&mut self, reason: &StopReason, out: &mut BytesMut) {
        if self.phase != Phase::Open {
            return;
        }
        let choices = [OutChoice {
            index: 0,
            delta: OutDelta::default(),
            logprobs: None,
            finish_reason: Some(finish_from_stop(reason)),
        }];
        self.write(out, &choices, None);
        self.phase = Phase::Stopped;
    }

    fn delta<'a>(&self, out: &mut BytesMut, fill: impl FnOnce(&mut OutDelta<'a>)) {
        if self.phase != Phase::Open {
            return;
        }
        let mut delta = OutDelta::default();
        fill(&mut delta);
        let choices = [OutChoice {
            index: 0,
            delta,
            logprobs: None,
            finish_reason: None,
        }];
        self.write(out, &choices, None);
    }

    fn write(&self, out: &mut BytesMut, choices: &[OutChoice<'_>], usage: Option<OutUsage>) {
        write_data(
            out,
            &OutChunk {
                id: &self.id,
                object: "chat.completion.chunk",
                created: self.created,
                model: &self.model,
                choices,
                usage,
            },
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode(data: &str) -> Vec<StreamEvent> {
        let mut d = StreamDecoder::new();
        let mut out = Vec::new();
        d.push(&SseEvent { event: "", data }, &mut out).unwrap();
        out
    }

    #[test]
    fn azure_preamble_and_empty_choices_decode_to_nothing() {
        assert!(
            decode(r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[]}"#)
                .is_empty()
        );
    }

    #[test]
    fn mid_stream_errors_become_error_events() {
        let out = decode(r#"{"error":{"message":"boom","type":"server_error","code":null}}"#);
        assert_eq!(
            out,
            vec![StreamEvent::Error {
                kind: ErrorKind::Server,
                message: "boom".into()
            }]
        );
    }

    #[test]
    fn done_without_stop_is_an_error_not_a_clean_end() {
        let mut e = StreamEncoder::new("id", "m", true);
        let mut out = BytesMut::new();
        e.encode(&StreamEvent::TextDelta { text: "x".into() }, &mut out);
        e.encode(&StreamEvent::Done, &mut out);
        let s = std::str::from_utf8(&out).unwrap();
        assert!(s.contains(r#"data: {"error":"#), "{s}");
        assert!(!s.contains("[DONE]"));
        assert!(e.is_closed());
    }

    #[test]
    fn usage_chunk_only_when_asked() {
        for include in [false, true] {
            let mut e = StreamEncoder::new("id", "m", include).with_created(1);
            let mut out = BytesMut::new();
            for ev in [
                StreamEvent::TextDelta { text: "x".into() },
                StreamEvent::Stop {
                    reason: StopReason::EndTurn,
                },
                StreamEvent::Usage(Usage {
                    input_tokens: 1,
                    output_tokens: 2,
                    ..Usage::default()
                }),
                StreamEvent::Done,
            ] {
                e.encode(&ev, &mut out);
            }
            let s = std::str::from_utf8(&out).unwrap();
            assert_eq!(s.contains(r#""choices":[],"usage""#), include, "{s}");
            assert!(s.ends_with("data: [DONE]\n\n"));
            assert!(s.starts_with(r#"data: {"id":"id","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"role":"assistant","content":""},"logprobs":null,"finish_reason":null}]}"#), "{s}");
        }
    }
}
