//! Gemini `streamGenerateContent?alt=sse` streams → [`StreamEvent`]s.

use super::response::{
    DecodedPart, WireResponse, decode_part, new_call_id, status_kind, stop_from_gemini,
};
use crate::error::ErrorKind;
use crate::error::ProtocolError;
use crate::ir::StreamEvent;
use crate::sse::SseEvent;

/// Decodes a Gemini SSE stream (events separated by `\r\n\r\n`, no `event:` lines, no
/// terminator), one SSE event at a time.
///
/// An `{"error":…}` event (a failure after HTTP 200) becomes a terminal `Error`.
/// Every event is a whole `GenerateContentResponse`: text parts are deltas, `functionCall`
/// parts arrive whole (→ `ToolCallStart` with a synthesized id when Gemini gave none, then
/// one `ToolCallDelta` with the compact JSON arguments), `usageMetadata` is cumulative
/// (→ `Usage`, last wins), and the last event carries `finishReason` (→ `Stop`; `STOP`
/// after a function call means tool use). Gemini has no end marker: call
/// [`finish`](Self::finish) at the end of the body to get `Done` after a stop.
#[derive(Debug, Default)]
pub struct StreamDecoder {
    started: bool,
    tool_calls: u32,
    stopped: bool,
    done: bool,
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
        let chunk: WireResponse =
            serde_json::from_str(event.data).map_err(|e| ProtocolError::upstream_json(&e))?;
        if let Some(error) = chunk.error {
            out.push(StreamEvent::Error {
                kind: error
                    .status
                    .as_deref()
                    .and_then(status_kind)
                    .or(error.code.map(ErrorKind::from_status))
                    .unwrap_or(ErrorKind::Server),
                message: error
                    .message
                    .unwrap_or_else(|| "the upstream stream failed".into()),
            });
            return Ok(());
        }
        if !self.started {
            self.started = true;
            out.push(StreamEvent::Start {
                id: chunk.response_id.clone().unwrap_or_default(),
                model: chunk.model_version.clone().unwrap_or_default(),
            });
        }
        let candidate = chunk.candidates.into_iter().next().unwrap_or_default();
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            self.part(&part, out);
        }
        if let Some(usage) = chunk.usage_metadata {
            out.push(StreamEvent::Usage(usage.to_ir()));
        }
        let blocked = chunk.prompt_feedback.is_some() && candidate.finish_reason.is_none();
        let reason = match (candidate.finish_reason, blocked) {
            (Some(r), _) => Some(stop_from_gemini(&r, self.tool_calls > 0)),
            (None, true) => Some(crate::ir::StopReason::ContentFilter),
            (None, false) => None,
        };
        if let Some(reason) = reason.filter(|_| !self.stopped) {
            self.stopped = true;
            out.push(StreamEvent::Stop { reason });
        }
        Ok(())
    }

    /// At the end of the body: `Done` if the answer stopped (a stream cut before its
    /// `finishReason` gets nothing, so the encoder reports it as incomplete).
    pub fn finish(&mut self, out: &mut Vec<StreamEvent>) {
        if self.stopped && !self.done {
            self.done = true;
            out.push(StreamEvent::Done);
        }
    }

    fn part(&mut self, part: &serde_json::Value, out: &mut Vec<StreamEvent>) {
        let (decoded, signature) = decode_part(part);
        if let Some(signature) = signature {
            out.push(StreamEvent::ThinkingSignature { signature });
        }
        match decoded {
            DecodedPart::Text(text) if !text.is_empty() => {
                out.push(StreamEvent::TextDelta { text })
            }
            DecodedPart::Thought(text) => out.push(StreamEvent::ThinkingDelta { text }),
            DecodedPart::Call { id, name, args } => {
                let ordinal = self.tool_calls;
                self.tool_calls += 1;
                out.push(StreamEvent::ToolCallStart {
                    ordinal,
                    id: id.unwrap_or_else(new_call_id),
                    name,
                });
                out.push(StreamEvent::ToolCallDelta {
                    ordinal,
                    arguments: args,
                });
            }
            DecodedPart::Text(_) | DecodedPart::Skip => {}
        }
    }
}
