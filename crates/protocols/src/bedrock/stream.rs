//! Bedrock ConverseStream bodies (AWS event stream) → [`StreamEvent`]s.

use serde::Deserialize;
use serde_json::Value;

use super::frames::Frames;
use super::response::{WireUsage, error_kind, new_response_id, stop_from_bedrock};
use crate::error::{ErrorKind, ProtocolError};
use crate::eventstream::Frame;
use crate::ir::StreamEvent;

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockStart {
    content_block_index: u32,
    #[serde(default)]
    start: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct BlockDelta {
    content_block_index: u32,
    #[serde(default)]
    delta: Value,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct MessageStop {
    stop_reason: Option<String>,
}

#[derive(Deserialize)]
struct Metadata {
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ExceptionPayload {
    message: Option<String>,
    #[serde(rename = "Message")]
    message_upper: Option<String>,
}

/// Decodes a ConverseStream body into IR events.
///
/// Feed raw body bytes with [`push`](Self::push) (frames are CRC-checked and reassembled
/// across chunk boundaries), then call [`finish`](Self::finish) at the end of the body.
/// Event mapping (provider reference, sections 4.3 and 7):
/// - `messageStart` → `Start` (with a generated id: Bedrock sends none);
/// - `contentBlockStart{toolUse}` → `ToolCallStart`, numbering client tool calls into
///   ordinals (block indexes count text and reasoning blocks too); server-side tool blocks
///   (`type: server_tool_use`) and their results are skipped;
/// - `contentBlockDelta` → `TextDelta` (empty ones dropped), `ToolCallDelta` (each
///   `toolUse.input` fragment as it arrives), `ThinkingDelta`, `ThinkingSignature`,
///   `RedactedThinking`;
/// - `messageStop` → `Stop`; the usage comes after it in `metadata` → `Usage`, then `Done`;
///   a stream that ends after `messageStop` without `metadata` still ends cleanly;
/// - `:message-type: exception` (e.g. `modelStreamErrorException`) and `error` frames →
///   a terminal `Error`. Unknown events are ignored; the `p` padding field is ignored.
#[derive(Debug)]
pub struct StreamDecoder {
    frames: Frames,
    model: String,
    /// (content-block index, tool ordinal) of every client tool-use block so far.
    tool_blocks: Vec<(u32, u32)>,
    stopped: bool,
    done: bool,
}

impl StreamDecoder {
    /// A decoder for a stream from `model` (reported in `Start`).
    pub fn new(model: impl Into<String>) -> Self {
        Self {
            frames: Frames::default(),
            model: model.into(),
            tool_blocks: Vec::new(),
            stopped: false,
            done: false,
        }
    }

    /// Decodes the frames `bytes` complete. A broken frame (bad CRC, bad length) is a
    /// [`ProtocolError::MalformedUpstream`]; the stream cannot continue after it.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProtocolError> {
        let mut frames = std::mem::take(&mut self.frames);
        let result = frames.push(bytes, |frame| self.push_frame(frame, out));
        self.frames = frames;
        result
    }

    /// At the end of the body: emits `Done` when the message stopped but no `metadata`
    /// followed; a body cut inside a frame is an error.
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) -> Result<(), ProtocolError> {
        self.frames.finish()?;
        if self.stopped && !self.done {
            self.done = true;
            out.push(StreamEvent::Done);
        }
        Ok(())
    }

    /// Decodes one already-framed message.
    pub fn push_frame(
        &mut self,
        frame: &Frame,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProtocolError> {
        match frame.message_type() {
            "event" => {}
            "exception" => {
                out.push(exception_event(frame));
                return Ok(());
            }
            _ => {
                let message = frame
                    .header_str(":error-message")
                    .unwrap_or("the upstream event stream reported an error");
                out.push(StreamEvent::Error {
                    kind: ErrorKind::BadGateway,
                    message: message.to_owned(),
                });
                return Ok(());
            }
        }
        let payload = frame.payload();
        match frame.header_str(":event-type").unwrap_or_default() {
            "messageStart" => out.push(StreamEvent::Start {
                id: new_response_id(),
                model: self.model.clone(),
            }),
            "contentBlockStart" => self.block_start(parse(payload)?, out),
            "contentBlockDelta" => self.block_delta(parse(payload)?, out),
            "messageStop" => {
                let stop: MessageStop = parse(payload)?;
                if !self.stopped {
                    self.stopped = true;
                    out.push(StreamEvent::Stop {
                        reason: stop_from_bedrock(
                            stop.stop_reason.as_deref().unwrap_or("end_turn"),
                        ),
                    });
                }
            }
            "metadata" => {
                let meta: Metadata = parse(payload)?;
                if let Some(u) = meta.usage {
                    out.push(StreamEvent::Usage(u.to_ir()));
                }
                if self.stopped && !self.done {
                    self.done = true;
                    out.push(StreamEvent::Done);
                }
            }
            _ => {}
        }
        Ok(())
    }

    fn block_start(&mut self, start: BlockStart, out: &mut Vec<StreamEvent>) {
        let Some(tool) = start.start.get("toolUse") else {
            return;
        };
        if tool.get("type").and_then(Value::as_str) == Some("server_tool_use") {
            return;
        }
        let text = |k: &str| {
            tool.get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        let ordinal = self.tool_blocks.len() as u32;
        self.tool_blocks.push((start.content_block_index, ordinal));
        out.push(StreamEvent::ToolCallStart {
            ordinal,
            id: text("toolUseId"),
            name: text("name"),
        });
    }

    fn block_delta(&mut self, delta: BlockDelta, out: &mut Vec<StreamEvent>) {
        let d = &delta.delta;
        let str_at = |v: &Value, k: &str| v.get(k).and_then(Value::as_str).map(str::to_owned);
        if let Some(text) = str_at(d, "text") {
            if !text.is_empty() {
                out.push(StreamEvent::TextDelta { text });
            }
        } else if let Some(tool) = d.get("toolUse") {
            let ordinal = self
                .tool_blocks
                .iter()
                .find(|(i, _)| *i == delta.content_block_index)
                .map(|&(_, o)| o);
            if let (Some(ordinal), Some(arguments)) = (ordinal, str_at(tool, "input"))
                && !arguments.is_empty()
            {
                out.push(StreamEvent::ToolCallDelta { ordinal, arguments });
            }
        } else if let Some(r) = d.get("reasoningContent") {
            if let Some(text) = str_at(r, "text") {
                out.push(StreamEvent::ThinkingDelta { text });
            } else if let Some(signature) = str_at(r, "signature") {
                out.push(StreamEvent::ThinkingSignature { signature });
            } else if let Some(data) = str_at(r, "redactedContent") {
                out.push(StreamEvent::RedactedThinking { data });
            }
        }
    }
}

fn parse<T: serde::de::DeserializeOwned>(payload: &[u8]) -> Result<T, ProtocolError> {
    serde_json::from_slice(payload).map_err(|e| ProtocolError::upstream_json(&e))
}

/// An exception frame as a terminal error event.
fn exception_event(frame: &Frame) -> StreamEvent {
    let name = frame.header_str(":exception-type").unwrap_or_default();
    let payload: Option<ExceptionPayload> = serde_json::from_slice(frame.payload()).ok();
    let message = payload
        .and_then(|p| p.message.or(p.message_upper))
        .unwrap_or_else(|| format!("the upstream stream failed ({name})"));
    StreamEvent::Error {
        kind: error_kind(name).unwrap_or(ErrorKind::Server),
        message,
    }
}
