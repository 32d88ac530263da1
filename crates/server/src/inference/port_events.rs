//! Re-encodes the gateway's own OpenAI chunk stream as the Port invoke protocol
//! (port-llm-providers §6.3): `event: execution` with the answer's text as plain data,
//! then a terminal `event: done` with the usage payload, or `event: error` with a JSON
//! body when the answer failed or ended early.

use bytes::{Bytes, BytesMut};
use serde_json::json;
use switchboard_protocols::ir::StreamEvent;
use switchboard_protocols::openai;
use switchboard_protocols::sse::SseParser;

/// The error name of an answer that stopped without its terminator.
const INCOMPLETE: &str = "upstream_incomplete";

#[derive(Default)]
pub struct PortEvents {
    parser: SseParser,
    decoder: openai::StreamDecoder,
    events: Vec<StreamEvent>,
    /// The OpenAI stream's `[DONE]` arrived.
    done: bool,
    /// A terminal event (error) was written: nothing may follow.
    closed: bool,
}

impl PortEvents {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds a chunk of the OpenAI stream; returns the Port events it completes.
    pub fn push(&mut self, chunk: &[u8]) -> Bytes {
        let mut out = BytesMut::new();
        if self.closed {
            return out.freeze();
        }
        self.parser.push(chunk);
        loop {
            match self.parser.next_event() {
                Ok(Some(event)) => {
                    if let Err(error) = self.decoder.push(&event, &mut self.events) {
                        tracing::debug!(%error, "undecodable chunk on the invoke stream");
                    }
                }
                Ok(None) => break,
                Err(error) => {
                    self.fail(&mut out, "upstream_invalid_response", &error.to_string());
                    return out.freeze();
                }
            }
        }
        for event in std::mem::take(&mut self.events) {
            self.write(&mut out, event);
        }
        out.freeze()
    }

    fn write(&mut self, out: &mut BytesMut, event: StreamEvent) {
        if self.closed {
            return;
        }
        match event {
            StreamEvent::TextDelta { text } | StreamEvent::RefusalDelta { text } => {
                write_execution(out, &text)
            }
            StreamEvent::Done => self.done = true,
            StreamEvent::Error { kind, message } => self.fail(out, kind.anthropic_type(), &message),
            _ => {}
        }
    }

    /// The stream ended: `done` with `usage` after a complete answer, else an error.
    pub fn finish(&mut self, usage: &serde_json::Value) -> Bytes {
        let mut out = BytesMut::new();
        if self.closed {
            return out.freeze();
        }
        if self.done {
            write_event(&mut out, "done", &usage.to_string());
            self.closed = true;
        } else {
            self.fail(
                &mut out,
                INCOMPLETE,
                "the answer ended before it was complete",
            );
        }
        out.freeze()
    }

    /// Writes the terminal error event.
    pub fn fail(&mut self, out: &mut BytesMut, name: &str, message: &str) {
        if self.closed {
            return;
        }
        let body = json!({ "error": name, "message": message });
        write_event(out, "error", &body.to_string());
        self.closed = true;
    }
}

/// Plain text as SSE data: one `data:` line per line of text (a client joins them with
/// `\n`), so text containing line breaks survives intact.
fn write_execution(out: &mut BytesMut, text: &str) {
    if text.is_empty() {
        return;
    }
    let text = text.replace("\r\n", "\n").replace('\r', "\n");
    out.extend_from_slice(b"event: execution\n");
    for line in text.split('\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.as_bytes());
        out.extend_from_slice(b"\n");
    }
    out.extend_from_slice(b"\n");
}

fn write_event(out: &mut BytesMut, name: &str, data: &str) {
    out.extend_from_slice(b"event: ");
    out.extend_from_slice(name.as_bytes());
    out.extend_from_slice(b"\ndata: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNKS: &str = "data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"role\":\"assistant\",\"content\":\"Hel\"},\"finish_reason\":null}]}\n\n\
data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"created\":1,\"model\":\"m\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"lo\\nworld\"},\"finish_reason\":\"stop\"}]}\n\n\
data: [DONE]\n\n";

    #[test]
    fn text_becomes_execution_events_then_done() {
        let mut events = PortEvents::new();
        let (head, tail) = CHUNKS.split_at(50);
        let mut out = events.push(head.as_bytes()).to_vec();
        out.extend_from_slice(&events.push(tail.as_bytes()));
        out.extend_from_slice(&events.finish(&json!({"x": 1})));
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "event: execution\ndata: Hel\n\n\
             event: execution\ndata: lo\ndata: world\n\n\
             event: done\ndata: {\"x\":1}\n\n"
        );
    }

    #[test]
    fn a_truncated_or_failed_answer_ends_with_one_error_event() {
        let mut events = PortEvents::new();
        let cut = &CHUNKS[..CHUNKS.find("data: [DONE]").unwrap()];
        events.push(cut.as_bytes());
        let end = String::from_utf8(events.finish(&json!({})).to_vec()).unwrap();
        assert!(end.starts_with("event: error\ndata: {\"error\":\"upstream_incomplete\""));
        assert!(events.finish(&json!({})).is_empty());

        let mut events = PortEvents::new();
        let failed = events.push(
            b"data: {\"error\":{\"message\":\"boom\",\"type\":\"server_error\",\"param\":null,\"code\":null}}\n\n",
        );
        let failed = String::from_utf8(failed.to_vec()).unwrap();
        assert!(failed.starts_with("event: error\n"), "{failed}");
        assert!(failed.contains("boom"));
        assert!(events.finish(&json!({})).is_empty());
    }
}
