//! A read-only observer for same-protocol pass-through streams.
//!
//! When caller and upstream speak the same protocol the gateway forwards the upstream's
//! bytes untouched (padding, extra fields and all). It still needs usage for metering, the
//! stop reason for logs, and to know whether the stream ended properly. The tap parses the
//! SSE framing of a copy of the bytes and fully decodes only the few events that can carry
//! those facts, found by a cheap substring check; it never re-serializes anything.

use memchr::memmem;

use crate::error::ErrorKind;
use crate::ir::{StopReason, StreamEvent, Usage};
use crate::sse::{SseError, SseEvent, SseParser};
use crate::{anthropic, openai};

/// Which protocol a stream speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// OpenAI Chat Completions chunks.
    OpenAi,
    /// Anthropic Messages events.
    Anthropic,
}

/// Observes a pass-through stream.
#[derive(Debug)]
pub struct StreamTap {
    parser: SseParser,
    decoder: Decoder,
    scratch: Vec<StreamEvent>,
    usage: Usage,
    stop: Option<StopReason>,
    terminated: bool,
    error: Option<(ErrorKind, String)>,
    framing_error: Option<SseError>,
    malformed_events: u64,
}

#[derive(Debug)]
enum Decoder {
    OpenAi(openai::StreamDecoder),
    Anthropic(anthropic::StreamDecoder),
}

impl StreamTap {
    /// A tap for a stream of `protocol`.
    pub fn new(protocol: Protocol) -> Self {
        Self {
            parser: SseParser::new(),
            decoder: match protocol {
                Protocol::OpenAi => Decoder::OpenAi(openai::StreamDecoder::new()),
                Protocol::Anthropic => Decoder::Anthropic(anthropic::StreamDecoder::new()),
            },
            scratch: Vec::new(),
            usage: Usage::default(),
            stop: None,
            terminated: false,
            error: None,
            framing_error: None,
            malformed_events: 0,
        }
    }

    /// Observes the next bytes forwarded to the caller. Never fails: a framing error stops
    /// the observation (see [`framing_error`](Self::framing_error)), not the forwarding.
    pub fn feed(&mut self, bytes: &[u8]) {
        if self.framing_error.is_some() {
            return;
        }
        self.parser.push(bytes);
        loop {
            match self.parser.next_event() {
                Ok(Some(event)) => observe(
                    &mut self.decoder,
                    &event,
                    &mut self.scratch,
                    &mut self.malformed_events,
                ),
                Ok(None) => break,
                Err(e) => {
                    self.framing_error = Some(e);
                    break;
                }
            }
            self.absorb();
        }
    }

    /// Observes the end of the upstream body (an unterminated last event counts).
    pub fn finish(&mut self) {
        if self.framing_error.is_some() {
            return;
        }
        match self.parser.finish() {
            Ok(Some(event)) => observe(
                &mut self.decoder,
                &event,
                &mut self.scratch,
                &mut self.malformed_events,
            ),
            Ok(None) => {}
            Err(e) => self.framing_error = Some(e),
        }
        self.absorb();
    }

    fn absorb(&mut self) {
        for event in self.scratch.drain(..) {
            match event {
                StreamEvent::Usage(u) => self.usage = u,
                StreamEvent::Stop { reason } => self.stop = Some(reason),
                StreamEvent::Done => self.terminated = true,
                StreamEvent::Error { kind, message } => self.error = Some((kind, message)),
                _ => {}
            }
        }
    }

    /// The latest cumulative usage seen.
    pub fn usage(&self) -> Usage {
        self.usage
    }

    /// The stop reason, if one was seen.
    pub fn stop_reason(&self) -> Option<&StopReason> {
        self.stop.as_ref()
    }

    /// Whether the protocol's clean terminator (`[DONE]`, `message_stop`) was seen.
    pub fn saw_terminator(&self) -> bool {
        self.terminated
    }

    /// Whether the stream completed properly: a terminator and no in-stream error.
    pub fn completed(&self) -> bool {
        self.terminated && self.error.is_none() && self.framing_error.is_none()
    }

    /// The in-stream error the upstream reported, if any.
    pub fn error(&self) -> Option<&(ErrorKind, String)> {
        self.error.as_ref()
    }

    /// The SSE framing error that stopped observation, if any.
    pub fn framing_error(&self) -> Option<&SseError> {
        self.framing_error.as_ref()
    }

    /// How many interesting-looking events failed to decode.
    pub fn malformed_events(&self) -> u64 {
        self.malformed_events
    }
}

fn observe(decoder: &mut Decoder, event: &SseEvent<'_>, out: &mut Vec<StreamEvent>, bad: &mut u64) {
    let result = match decoder {
        Decoder::OpenAi(d) if openai_is_interesting(event.data) => d.push(event, out),
        Decoder::Anthropic(d) if anthropic_is_interesting(event) => d.push(event, out),
        _ => Ok(()),
    };
    if result.is_err() {
        *bad += 1;
    }
}

/// `[DONE]`, or a chunk with a non-null `usage`, `finish_reason` or `error`.
fn openai_is_interesting(data: &str) -> bool {
    let data = data.as_bytes();
    data.starts_with(b"[DONE]")
        || has_non_null(data, b"\"usage\"")
        || has_non_null(data, b"\"finish_reason\"")
        || has_non_null(data, b"\"error\"")
}

fn anthropic_is_interesting(event: &SseEvent<'_>) -> bool {
    const NAMES: [&str; 4] = ["message_start", "message_delta", "message_stop", "error"];
    if !event.event.is_empty() {
        return NAMES.contains(&event.event);
    }
    // No `event:` line (some proxies drop it): look for the type in the JSON.
    NAMES
        .iter()
        .any(|n| memmem::find(event.data.as_bytes(), format!("\"{n}\"").as_bytes()).is_some())
}

/// Whether some occurrence of `key` is followed by `:` and a value other than `null`.
fn has_non_null(data: &[u8], key: &[u8]) -> bool {
    memmem::find_iter(data, key).any(|at| {
        let rest = &data[at + key.len()..];
        let rest = trim_start(rest);
        match rest.split_first() {
            Some((b':', value)) => !trim_start(value).starts_with(b"null"),
            _ => false,
        }
    })
}

fn trim_start(b: &[u8]) -> &[u8] {
    let n = b.iter().take_while(|c| c.is_ascii_whitespace()).count();
    &b[n..]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_non_null_keys_only() {
        assert!(!has_non_null(
            br#"{"usage":null,"finish_reason": null}"#,
            b"\"usage\""
        ));
        assert!(has_non_null(
            br#"{"usage": {"prompt_tokens":1}}"#,
            b"\"usage\""
        ));
        assert!(has_non_null(
            br#"{"finish_reason":"stop"}"#,
            b"\"finish_reason\""
        ));
        assert!(!has_non_null(br#"{"text":"\"usage\""}"#, b"\"usage\""));
    }

    #[test]
    fn a_stream_without_terminator_is_not_completed() {
        let mut t = StreamTap::new(Protocol::OpenAi);
        t.feed(b"data: {\"id\":\"x\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"},\"finish_reason\":null}]}\n\n");
        t.finish();
        assert!(!t.completed());
        assert_eq!(t.stop_reason(), None);
    }
}
