//! InvokeModelWithResponseStream with an Anthropic body: event-stream `chunk` frames whose
//! payload `{"bytes":"<base64>"}` is one Anthropic Messages stream event.

use base64::Engine as _;
use serde_json::Value;

use super::frames::Frames;
use super::response::error_kind;
use crate::anthropic;
use crate::error::{ErrorKind, ProtocolError};
use crate::eventstream::Frame;
use crate::ir::StreamEvent;
use crate::sse::SseEvent;

/// Decodes an InvokeModelWithResponseStream body (Anthropic model) into IR events: each
/// `chunk` frame is unwrapped and fed to the Anthropic stream decoder; exception frames
/// become a terminal `Error`, as in ConverseStream.
#[derive(Debug, Default)]
pub struct InvokeStreamDecoder {
    frames: Frames,
    inner: anthropic::StreamDecoder,
}

impl InvokeStreamDecoder {
    /// A decoder at the start of a body.
    pub fn new() -> Self {
        Self::default()
    }

    /// Decodes the frames `bytes` complete.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<StreamEvent>) -> Result<(), ProtocolError> {
        let mut frames = std::mem::take(&mut self.frames);
        let result = frames.push(bytes, |frame| self.push_frame(frame, out));
        self.frames = frames;
        result
    }

    /// At the end of the body: a body cut inside a frame is an error.
    pub fn finish(&self) -> Result<(), ProtocolError> {
        self.frames.finish()
    }

    fn push_frame(
        &mut self,
        frame: &Frame,
        out: &mut Vec<StreamEvent>,
    ) -> Result<(), ProtocolError> {
        if frame.message_type() != "event" {
            let name = frame.header_str(":exception-type").unwrap_or_default();
            let message = serde_json::from_slice::<Value>(frame.payload())
                .ok()
                .and_then(|v| v.get("message").and_then(Value::as_str).map(str::to_owned))
                .unwrap_or_else(|| format!("the upstream stream failed ({name})"));
            out.push(StreamEvent::Error {
                kind: error_kind(name).unwrap_or(ErrorKind::Server),
                message,
            });
            return Ok(());
        }
        if frame.header_str(":event-type") != Some("chunk") {
            return Ok(());
        }
        let data = chunk_json(frame.payload())?;
        self.inner.push(
            &SseEvent {
                event: "",
                data: &data,
            },
            out,
        )
    }
}

/// The Anthropic event JSON inside a `chunk` payload.
pub fn chunk_json(payload: &[u8]) -> Result<String, ProtocolError> {
    let v: Value = serde_json::from_slice(payload).map_err(|e| ProtocolError::upstream_json(&e))?;
    let b64 = v
        .get("bytes")
        .and_then(Value::as_str)
        .ok_or_else(|| ProtocolError::MalformedUpstream("chunk without bytes".into()))?;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64)
        .map_err(|_| ProtocolError::MalformedUpstream("chunk bytes are not base64".into()))?;
    String::from_utf8(bytes)
        .map_err(|_| ProtocolError::MalformedUpstream("chunk bytes are not UTF-8".into()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use aws_smithy_eventstream::frame::write_message_to;
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};

    fn frame(message_type: &str, kind: (&'static str, &str), payload: &str) -> Vec<u8> {
        let message = Message::new(payload.as_bytes().to_vec())
            .add_header(Header::new(
                kind.0,
                HeaderValue::String(kind.1.to_owned().into()),
            ))
            .add_header(Header::new(
                ":message-type",
                HeaderValue::String(message_type.to_owned().into()),
            ));
        let mut out = Vec::new();
        write_message_to(&message, &mut out).unwrap();
        out
    }

    fn chunk(event: &str) -> Vec<u8> {
        let b64 = base64::engine::general_purpose::STANDARD.encode(event);
        frame(
            "event",
            (":event-type", "chunk"),
            &format!(r#"{{"bytes":"{b64}"}}"#),
        )
    }

    #[test]
    fn chunks_unwrap_to_anthropic_events_and_exceptions_end_the_stream() {
        let mut body = chunk(
            r#"{"type":"message_start","message":{"id":"msg_1","model":"claude","usage":{"input_tokens":3,"output_tokens":1}}}"#,
        );
        body.extend(chunk(
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hi"}}"#,
        ));
        body.extend(frame(
            "exception",
            (":exception-type", "throttlingException"),
            r#"{"message":"Rate exceeded"}"#,
        ));
        let mut d = InvokeStreamDecoder::new();
        let mut events = Vec::new();
        for b in body.chunks(7) {
            d.push(b, &mut events).unwrap();
        }
        d.finish().unwrap();
        assert!(events.contains(&StreamEvent::TextDelta { text: "Hi".into() }));
        assert_eq!(
            events.last(),
            Some(&StreamEvent::Error {
                kind: ErrorKind::RateLimit,
                message: "Rate exceeded".into()
            })
        );
    }
}
