//! Anthropic Messages SSE streams ⇄ [`StreamEvent`]s.

use bytes::BytesMut;
use serde::{Deserialize, Serialize};
use serde_json::json;

use super::response::{
    ErrorEnvelope, OutUsage, RawUsage, WireUsage, stop_from_anthropic, stop_to_anthropic,
};
use crate::error::{ErrorKind, ProtocolError};
use crate::ir::{StopReason, StreamEvent, Usage};
use crate::sse::{SseEvent, write_event};

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireEvent {
    MessageStart {
        message: WireStartMessage,
    },
    ContentBlockStart {
        index: u32,
        content_block: WireStartBlock,
    },
    ContentBlockDelta {
        index: u32,
        delta: WireDelta,
    },
    MessageDelta {
        delta: WireMessageDelta,
        usage: Option<WireUsage>,
    },
    MessageStop,
    Error {
        error: WireError,
    },
    /// `ping`, `content_block_stop` and event types added later.
    #[serde(other)]
    Ignored,
}

#[derive(Deserialize)]
struct WireStartMessage {
    #[serde(default)]
    id: String,
    #[serde(default)]
    model: String,
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireStartBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
    },
    Thinking {
        #[serde(default)]
        thinking: String,
    },
    RedactedThinking {
        data: String,
    },
    /// Server tools, compaction, fallback markers, …
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum WireDelta {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    ThinkingDelta {
        thinking: String,
    },
    SignatureDelta {
        signature: String,
    },
    /// `citations_delta`, `compaction_delta`, …
    #[serde(other)]
    Other,
}

#[derive(Deserialize)]
struct WireMessageDelta {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct WireError {
    #[serde(rename = "type")]
    kind: Option<String>,
    message: Option<String>,
}

/// Decodes an Anthropic Messages stream into IR events, one SSE event at a time.
///
/// The event's JSON `type` decides (the `event:` line is redundant); whitespace padding,
/// `ping`, `content_block_stop` and unknown event, block and delta types are tolerated.
/// Content-block indexes count every block, so `tool_use` blocks are numbered into tool
/// ordinals here. Usage is merged across `message_start` and the cumulative
/// `message_delta`, and each `Usage` event carries the merged total.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    usage: RawUsage,
    /// (content-block index, tool ordinal) of every tool_use block so far.
    tool_blocks: Vec<(u32, u32)>,
    stopped: bool,
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
        if event.data.trim().is_empty() {
            return Ok(());
        }
        let wire: WireEvent =
            serde_json::from_str(event.data).map_err(|e| ProtocolError::upstream_json(&e))?;
        match wire {
            WireEvent::MessageStart { message } => {
                self.usage.merge(&message.usage);
                out.push(StreamEvent::Start {
                    id: message.id,
                    model: message.model,
                });
                out.push(StreamEvent::Usage(self.usage.to_ir()));
            }
            WireEvent::ContentBlockStart {
                index,
                content_block,
            } => self.block_start(index, content_block, out),
            WireEvent::ContentBlockDelta { index, delta } => self.block_delta(index, delta, out),
            WireEvent::MessageDelta { delta, usage } => self.message_delta(delta, usage, out),
            WireEvent::MessageStop => out.push(StreamEvent::Done),
            WireEvent::Error { error } => out.push(StreamEvent::Error {
                kind: error
                    .kind
                    .as_deref()
                    .and_then(ErrorKind::from_type_or_code)
                    .unwrap_or(ErrorKind::Server),
                message: error
                    .message
                    .unwrap_or_else(|| "the upstream stream failed".into()),
            }),
            WireEvent::Ignored => {}
        }
        Ok(())
    }

    fn block_start(&mut self, index: u32, block: WireStartBlock, out: &mut Vec<StreamEvent>) {
        match block {
            WireStartBlock::Text { text } if !text.is_empty() => {
                out.push(StreamEvent::TextDelta { text })
            }
            WireStartBlock::Thinking { thinking } if !thinking.is_empty() => {
                out.push(StreamEvent::ThinkingDelta { text: thinking })
            }
            WireStartBlock::ToolUse { id, name } => {
                let ordinal = self.tool_blocks.len() as u32;
                self.tool_blocks.push((index, ordinal));
                out.push(StreamEvent::ToolCallStart { ordinal, id, name });
            }
            WireStartBlock::RedactedThinking { data } => {
                out.push(StreamEvent::RedactedThinking { data })
            }
            _ => {}
        }
    }

    fn block_delta(&mut self, index: u32, delta: WireDelta, out: &mut Vec<StreamEvent>) {
        match delta {
            WireDelta::TextDelta { text } => out.push(StreamEvent::TextDelta { text }),
            WireDelta::ThinkingDelta { thinking } => {
                out.push(StreamEvent::ThinkingDelta { text: thinking })
            }
            WireDelta::SignatureDelta { signature } => {
                out.push(StreamEvent::ThinkingSignature { signature })
            }
            WireDelta::InputJsonDelta { partial_json } if !partial_json.is_empty() => {
                if let Some(&(_, ordinal)) = self.tool_blocks.iter().find(|(i, _)| *i == index) {
                    out.push(StreamEvent::ToolCallDelta {
                        ordinal,
                        arguments: partial_json,
                    });
                }
            }
            _ => {}
        }
    }

    fn message_delta(
        &mut self,
        delta: WireMessageDelta,
        usage: Option<WireUsage>,
        out: &mut Vec<StreamEvent>,
    ) {
        if let Some(u) = usage {
            self.usage.merge(&u);
            out.push(StreamEvent::Usage(self.usage.to_ir()));
        }
        if let Some(reason) = delta.stop_reason
            && !self.stopped
        {
            self.stopped = true;
            out.push(StreamEvent::Stop {
                reason: stop_from_anthropic(&reason),
            });
        }
    }
}

#[derive(Serialize)]
struct OutBlockDelta<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
    delta: OutDelta<'a>,
}

/// A `content_block_delta` payload; the variant names are the wire `type`s.
#[derive(Serialize)]
#[serde(tag = "type")]
enum OutDelta<'a> {
    #[serde(rename = "text_delta")]
    Text { text: &'a str },
    #[serde(rename = "input_json_delta")]
    InputJson { partial_json: &'a str },
    #[serde(rename = "thinking_delta")]
    Thinking { thinking: &'a str },
    #[serde(rename = "signature_delta")]
    Signature { signature: &'a str },
}

#[derive(Serialize)]
struct OutBlockStop {
    #[serde(rename = "type")]
    kind: &'static str,
    index: u32,
}

/// What kind of content block is open.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum BlockKind {
    Text,
    Thinking,
    Tool(u32),
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Phase {
    /// Nothing written yet; usage may still arrive for `message_start`.
    Idle,
    /// `message_start` is out.
    Open,
    /// The stop reason is known and blocks are closed; waiting for final usage and the
    /// upstream terminator before `message_delta` + `message_stop`.
    Stopped,
    /// A terminator (clean or error) is out.
    Closed,
}

/// Encodes IR events as an Anthropic Messages stream for a caller.
///
/// Framing and buffering rules:
/// - `message_start` is delayed until the first content, stop or terminator event, so usage
///   that arrives right after `Start` (Anthropic upstreams) is reported in it; with an OpenAI
///   upstream input usage is unknown then and reads 0;
/// - content blocks open and close as the kind of content changes (text, thinking, each tool
///   call); block indexes count all blocks; a tool fragment arriving after its block was
///   closed (tool calls interleaved by the upstream) is still sent with that block's index;
/// - `Stop` closes the open block and is *held*: Anthropic's `message_delta` carries both the
///   stop reason and the final usage, and OpenAI upstreams send usage after the finish chunk;
/// - `Done` (or [`finish`](Self::finish) at upstream EOF) then writes `message_delta` with the
///   cumulative usage (input and cache counters included) and `message_stop` — only if a
///   `Stop` was seen; otherwise it writes an `error` event, never a clean end.
#[derive(Debug)]
pub struct StreamEncoder {
    id: String,
    model: String,
    phase: Phase,
    open: Option<(u32, BlockKind)>,
    next_index: u32,
    /// (tool ordinal, block index).
    tool_blocks: Vec<(u32, u32)>,
    usage: Usage,
    stop: Option<StopReason>,
}

impl StreamEncoder {
    /// An encoder reporting `id` and `model` in `message_start`.
    pub fn new(id: impl Into<String>, model: impl Into<String>) -> Self {
        Self {
            id: id.into(),
            model: model.into(),
            phase: Phase::Idle,
            open: None,
            next_index: 0,
            tool_blocks: Vec::new(),
            usage: Usage::default(),
            stop: None,
        }
    }

    /// Whether a terminator (clean or error) has been written.
    pub fn is_closed(&self) -> bool {
        self.phase == Phase::Closed
    }

    /// Writes the wire bytes for one event.
    pub fn encode(&mut self, event: &StreamEvent, out: &mut BytesMut) {
        match event {
            _ if self.phase == Phase::Closed => {}
            StreamEvent::Start { .. } => {}
            StreamEvent::Usage(u) => self.usage = *u,
            StreamEvent::Error { kind, message } => self.finish_with_error(*kind, message, out),
            StreamEvent::Done => self.finish(out),
            StreamEvent::Stop { reason } => self.stop(reason, out),
            _ if self.phase == Phase::Stopped => {} // content after the stop is dropped
            StreamEvent::TextDelta { text } | StreamEvent::RefusalDelta { text } => {
                self.text(text, out)
            }
            StreamEvent::ThinkingDelta { text } => {
                self.ensure_block(BlockKind::Thinking, out);
                self.delta(OutDelta::Thinking { thinking: text }, out);
            }
            StreamEvent::ThinkingSignature { signature } => {
                self.ensure_block(BlockKind::Thinking, out);
                self.delta(OutDelta::Signature { signature }, out);
            }
            StreamEvent::RedactedThinking { data } => self.redacted(data, out),
            StreamEvent::ToolCallStart { ordinal, id, name } => {
                self.tool_start(*ordinal, id, name, out)
            }
            StreamEvent::ToolCallDelta { ordinal, arguments } => {
                self.tool_arguments(*ordinal, arguments, out)
            }
        }
    }

    /// Ends the stream at upstream EOF: `message_delta` + `message_stop` if a `Stop` was
    /// seen, an `error` event otherwise. Does nothing if already closed.
    pub fn finish(&mut self, out: &mut BytesMut) {
        match (self.phase, self.stop.take()) {
            (Phase::Closed, _) => {}
            (_, Some(reason)) => {
                let body = json!({
                    "type": "message_delta",
                    "delta": {"stop_reason": stop_to_anthropic(&reason), "stop_sequence": null},
                    "usage": OutUsage::from_ir(&self.usage),
                });
                write_event(out, "message_delta", &body);
                write_event(out, "message_stop", &json!({"type": "message_stop"}));
                self.phase = Phase::Closed;
            }
            (_, None) => self.finish_with_error(
                ErrorKind::BadGateway,
                "the upstream stream ended before the answer was complete",
                out,
            ),
        }
    }

    /// Ends the stream with Anthropic's mid-stream error event
    /// `event: error` / `{"type":"error","error":{…}}`, which the SDKs raise.
    pub fn finish_with_error(&mut self, kind: ErrorKind, message: &str, out: &mut BytesMut) {
        if self.phase == Phase::Closed {
            return;
        }
        write_event(
            out,
            "error",
            &ErrorEnvelope::new(kind.anthropic_type(), message),
        );
        self.phase = Phase::Closed;
    }

    fn start(&mut self, out: &mut BytesMut) {
        if self.phase != Phase::Idle {
            return;
        }
        let body = json!({
            "type": "message_start",
            "message": {
                "id": self.id, "type": "message", "role": "assistant", "model": self.model,
                "content": [], "stop_reason": null, "stop_sequence": null,
                "usage": OutUsage::from_ir(&self.usage),
            }
        });
        write_event(out, "message_start", &body);
        self.phase = Phase::Open;
    }

    fn stop(&mut self, reason: &StopReason, out: &mut BytesMut) {
        if self.stop.is_some() {
            return;
        }
        self.start(out);
        self.close_block(out);
        self.stop = Some(reason.clone());
        self.phase = Phase::Stopped;
    }

    fn text(&mut self, text: &str, out: &mut BytesMut) {
        if text.is_empty() {
            return;
        }
        self.ensure_block(BlockKind::Text, out);
        self.delta(OutDelta::Text { text }, out);
    }

    fn redacted(&mut self, data: &str, out: &mut BytesMut) {
        self.start(out);
        self.close_block(out);
        let index = self.take_index();
        let block = json!({"type": "redacted_thinking", "data": data});
        self.write_block_start(index, &block, out);
        write_event(out, "content_block_stop", &block_stop(index));
    }

    fn tool_start(&mut self, ordinal: u32, id: &str, name: &str, out: &mut BytesMut) {
        self.start(out);
        self.close_block(out);
        let index = self.take_index();
        self.tool_blocks.push((ordinal, index));
        let block = json!({"type": "tool_use", "id": id, "name": name, "input": {}});
        self.write_block_start(index, &block, out);
        self.open = Some((index, BlockKind::Tool(ordinal)));
    }

    fn tool_arguments(&mut self, ordinal: u32, arguments: &str, out: &mut BytesMut) {
        let Some(&(_, index)) = self.tool_blocks.iter().find(|(o, _)| *o == ordinal) else {
            return; // a fragment for a call that never started
        };
        if arguments.is_empty() {
            return;
        }
        let delta = OutBlockDelta {
            kind: "content_block_delta",
            index,
            delta: OutDelta::InputJson {
                partial_json: arguments,
            },
        };
        write_event(out, "content_block_delta", &delta);
    }

    /// Opens a block of `kind` unless one is already open.
    fn ensure_block(&mut self, kind: BlockKind, out: &mut BytesMut) {
        self.start(out);
        if matches!(self.open, Some((_, k)) if k == kind) {
            return;
        }
        self.close_block(out);
        let index = self.take_index();
        let block = match kind {
            BlockKind::Thinking => json!({"type": "thinking", "thinking": "", "signature": ""}),
            _ => json!({"type": "text", "text": ""}),
        };
        self.write_block_start(index, &block, out);
        self.open = Some((index, kind));
    }

    fn close_block(&mut self, out: &mut BytesMut) {
        if let Some((index, _)) = self.open.take() {
            write_event(out, "content_block_stop", &block_stop(index));
        }
    }

    fn take_index(&mut self) -> u32 {
        let index = self.next_index;
        self.next_index += 1;
        index
    }

    fn write_block_start(&self, index: u32, block: &serde_json::Value, out: &mut BytesMut) {
        let body = json!({"type": "content_block_start", "index": index, "content_block": block});
        write_event(out, "content_block_start", &body);
    }

    fn delta(&self, delta: OutDelta<'_>, out: &mut BytesMut) {
        if let Some((index, _)) = self.open {
            let body = OutBlockDelta {
                kind: "content_block_delta",
                index,
                delta,
            };
            write_event(out, "content_block_delta", &body);
        }
    }
}

fn block_stop(index: u32) -> OutBlockStop {
    OutBlockStop {
        kind: "content_block_stop",
        index,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode_all(events: &[StreamEvent]) -> String {
        let mut e = StreamEncoder::new("msg_1", "claude");
        let mut out = BytesMut::new();
        for ev in events {
            e.encode(ev, &mut out);
        }
        e.finish(&mut out);
        String::from_utf8(out.to_vec()).unwrap()
    }

    #[test]
    fn usage_after_stop_lands_in_message_delta() {
        let s = encode_all(&[
            StreamEvent::Start {
                id: "x".into(),
                model: "y".into(),
            },
            StreamEvent::TextDelta { text: "hi".into() },
            StreamEvent::Stop {
                reason: StopReason::EndTurn,
            },
            StreamEvent::Usage(Usage {
                input_tokens: 9,
                output_tokens: 4,
                ..Usage::default()
            }),
            StreamEvent::Done,
        ]);
        let names: Vec<&str> = s
            .lines()
            .filter_map(|l| l.strip_prefix("event: "))
            .collect();
        assert_eq!(
            names,
            [
                "message_start",
                "content_block_start",
                "content_block_delta",
                "content_block_stop",
                "message_delta",
                "message_stop"
            ]
        );
        assert!(s.contains(r#""usage":{"input_tokens":9,"cache_creation_input_tokens":0,"cache_read_input_tokens":0,"output_tokens":4}"#), "{s}");
    }

    #[test]
    fn no_stop_means_error_not_message_stop() {
        let s = encode_all(&[StreamEvent::TextDelta { text: "hi".into() }]);
        assert!(
            s.contains("event: error\ndata: {\"type\":\"error\",\"error\":{\"type\":\"api_error\""),
            "{s}"
        );
        assert!(!s.contains("message_stop"));
    }

    #[test]
    fn block_index_differs_from_tool_ordinal() {
        let s = encode_all(&[
            StreamEvent::TextDelta { text: "a".into() },
            StreamEvent::ToolCallStart {
                ordinal: 0,
                id: "call_1".into(),
                name: "f".into(),
            },
            StreamEvent::ToolCallDelta {
                ordinal: 0,
                arguments: "{}".into(),
            },
            StreamEvent::Stop {
                reason: StopReason::ToolUse,
            },
        ]);
        assert!(s.contains(r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{}"}}"#), "{s}");
        assert!(s.contains(r#""stop_reason":"tool_use""#));
    }
}
