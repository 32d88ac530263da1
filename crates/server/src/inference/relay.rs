//! Turns an upstream event stream into the caller's, chunk by chunk, without buffering
//! beyond one incomplete SSE event.
//!
//! - Same protocol on both sides: the upstream bytes are forwarded as they arrive; a tap
//!   decodes them alongside only to learn usage, the stop reason and whether the upstream
//!   finished cleanly. The one edit: an OpenAI usage chunk the caller did not ask for (the
//!   gateway always asks, to account usage) is dropped, which needs event-level framing.
//! - Different protocols: decode upstream events to the IR and encode them for the caller.
//!
//! Either way the stream ends with the caller's protocol terminator only after a complete
//! upstream answer; otherwise with an explicit error event, and the outcome says why
//! ([`StreamFailure`]): the record never says `Completed` for an answer the caller did not
//! get whole. (Pass-through bytes reach the relay as whole events only — see
//! `switchboard_protocols::framing` — so an error event is never glued to half an event.)

use bytes::{Bytes, BytesMut};
use switchboard_protocols::error::ErrorKind;
use switchboard_protocols::framing::Terminator;
use switchboard_protocols::ir::{StopReason, StreamAccumulator, StreamEvent};
use switchboard_protocols::sse::SseParser;
use switchboard_protocols::tap::{Protocol as TapProtocol, StreamTap};
use switchboard_protocols::{anthropic, bedrock, gemini, openai};

use super::codec::Codec;
use super::errors::Surface;

/// Decodes one upstream protocol's events. Bedrock frames its stream as AWS event-stream
/// messages, the others as SSE.
enum Decoder {
    OpenAi(openai::StreamDecoder),
    Anthropic(anthropic::StreamDecoder),
    Gemini(gemini::StreamDecoder),
    Bedrock(bedrock::StreamDecoder),
    BedrockInvoke(bedrock::InvokeStreamDecoder),
}

/// Encodes the caller's protocol.
enum Encoder {
    OpenAi(openai::StreamEncoder),
    Anthropic(anthropic::StreamEncoder),
}

enum Mode {
    /// Forward upstream bytes; `reframe` when events must be filtered.
    PassThrough {
        reframe: bool,
    },
    Translate(Encoder),
}

/// Why the relay itself ended a stream with an error event.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct StreamFailure {
    pub status: u16,
    pub name: &'static str,
    kind: ErrorKind,
}

impl StreamFailure {
    /// The upstream stopped (closed, cut, or sent no terminator) before the answer was whole.
    pub const INCOMPLETE: Self = Self {
        status: 502,
        name: "upstream_incomplete",
        kind: ErrorKind::BadGateway,
    };
    /// The upstream stream went past its size cap (`SWITCHBOARD_STREAM_MAX_BYTES`).
    pub const TOO_LARGE: Self = Self {
        status: 502,
        name: "upstream_too_large",
        kind: ErrorKind::BadGateway,
    };
    /// The upstream stream ran past its duration cap (`SWITCHBOARD_STREAM_MAX_SECONDS`).
    pub const TOO_LONG: Self = Self {
        status: 504,
        name: "upstream_too_long",
        kind: ErrorKind::Timeout,
    };
    /// The upstream went silent for longer than the stream idle timeout.
    pub const TIMEOUT: Self = Self {
        status: 504,
        name: "upstream_timeout",
        kind: ErrorKind::Timeout,
    };
    /// The server shut down and the stream outlived the grace period.
    pub const SHUTDOWN: Self = Self {
        status: 503,
        name: "shutting_down",
        kind: ErrorKind::Overloaded,
    };
}

/// The message of an answer that stopped early.
const INCOMPLETE_MESSAGE: &str = "the upstream stream ended before the answer was complete";

pub struct Relay {
    parser: SseParser,
    /// Set when the relay wrote its own error event.
    failure: Option<StreamFailure>,
    decoder: Decoder,
    mode: Mode,
    surface: Surface,
    events: Vec<StreamEvent>,
    /// What the answer amounted to, for accounting.
    pub summary: StreamAccumulator,
    /// Raw pass-through for an organization that keeps no content: only the events that
    /// carry usage, the stop and the end are decoded (found by a byte search).
    tap: Option<StreamTap>,
}

/// How a relay is set up.
pub struct RelaySpec {
    pub surface: Surface,
    pub upstream: Codec,
    pub client_wants_usage: bool,
    /// Whether the answer's text is kept (for the invocation record).
    pub keep_content: bool,
    /// Id and model to report when translating.
    pub id: String,
    pub model: String,
}

impl Relay {
    pub fn new(spec: RelaySpec) -> Self {
        let decoder = match spec.upstream {
            Codec::OpenAi => Decoder::OpenAi(openai::StreamDecoder::new()),
            Codec::Anthropic => Decoder::Anthropic(anthropic::StreamDecoder::new()),
            Codec::Gemini => Decoder::Gemini(gemini::StreamDecoder::new()),
            Codec::Bedrock => Decoder::Bedrock(bedrock::StreamDecoder::new(spec.model.clone())),
            Codec::BedrockInvoke => Decoder::BedrockInvoke(bedrock::InvokeStreamDecoder::new()),
        };
        let pass_through = spec.upstream.matches(spec.surface);
        // An OpenAI caller that did not ask for usage gets the stream re-framed without it.
        let reframe = spec.surface == Surface::OpenAi && !spec.client_wants_usage;
        let tap = (pass_through && !reframe && !spec.keep_content).then(|| {
            StreamTap::new(match spec.surface {
                Surface::OpenAi => TapProtocol::OpenAi,
                Surface::Anthropic => TapProtocol::Anthropic,
            })
        });
        let mode = if pass_through {
            Mode::PassThrough { reframe }
        } else {
            Mode::Translate(match spec.surface {
                Surface::OpenAi => Encoder::OpenAi(openai::StreamEncoder::new(
                    spec.id,
                    spec.model,
                    spec.client_wants_usage,
                )),
                Surface::Anthropic => {
                    Encoder::Anthropic(anthropic::StreamEncoder::new(spec.id, spec.model))
                }
            })
        };
        Self {
            parser: SseParser::new(),
            failure: None,
            decoder,
            mode,
            surface: spec.surface,
            events: Vec::new(),
            summary: StreamAccumulator::new(),
            tap,
        }
    }

    /// Whether [`Self::push`] hands the upstream bytes back unchanged (same protocol, no
    /// re-framing). The caller can then forward a chunk first and push it afterwards, so that
    /// decoding a large chunk (an instant upstream sends the whole answer in one read) does
    /// not delay its first token.
    pub fn forwards_raw(&self) -> bool {
        self.tap.is_some() || matches!(self.mode, Mode::PassThrough { reframe: false })
    }

    /// Feeds one upstream chunk; returns the bytes for the caller (possibly empty).
    pub fn push(&mut self, chunk: Bytes) -> Bytes {
        if let Some(tap) = &mut self.tap {
            tap.feed(&chunk);
            return chunk;
        }
        let mut out = BytesMut::new();
        let framed = match &mut self.decoder {
            Decoder::Bedrock(decoder) => Some(decoder.push(&chunk, &mut self.events)),
            Decoder::BedrockInvoke(decoder) => Some(decoder.push(&chunk, &mut self.events)),
            _ => None,
        };
        if let Some(result) = framed {
            if let Err(error) = result {
                self.events.push(malformed(&error));
            }
            self.drain_events(&mut out);
            return out.freeze();
        }
        self.parser.push(&chunk);
        let forward_raw = matches!(self.mode, Mode::PassThrough { reframe: false });
        loop {
            let event = match self.parser.next_event() {
                Ok(Some(event)) => event,
                Ok(None) => break,
                Err(error) => {
                    self.events.push(StreamEvent::Error {
                        kind: ErrorKind::BadGateway,
                        message: format!("the upstream stream is malformed: {error}"),
                    });
                    break;
                }
            };
            let start = self.events.len();
            let decoded = match &mut self.decoder {
                Decoder::OpenAi(d) => d.push(&event, &mut self.events),
                Decoder::Anthropic(d) => d.push(&event, &mut self.events),
                Decoder::Gemini(d) => d.push(&event, &mut self.events),
                Decoder::Bedrock(_) | Decoder::BedrockInvoke(_) => Ok(()),
            };
            if let Err(error) = decoded {
                // An event that is not the protocol's (non-JSON data, a wrong shape) means
                // the answer cannot be trusted whole: the caller gets an error, not a gap.
                tracing::debug!(%error, "undecodable upstream event");
                self.events.push(malformed(&error));
                break;
            }
            if let Mode::PassThrough { reframe: true } = self.mode {
                let usage_only = self.events[start..]
                    .iter()
                    .all(|e| matches!(e, StreamEvent::Usage(_)))
                    && self.events.len() > start;
                if !usage_only {
                    write_openai_event(&mut out, event.data);
                }
            }
        }
        self.drain_events(&mut out);
        if forward_raw { chunk } else { out.freeze() }
    }

    /// Folds decoded events into the summary and, when translating, the caller's stream.
    fn drain_events(&mut self, out: &mut BytesMut) {
        for event in self.events.drain(..) {
            self.summary.push(&event);
            if let Mode::Translate(encoder) = &mut self.mode {
                match encoder {
                    Encoder::OpenAi(e) => e.encode(&event, out),
                    Encoder::Anthropic(e) => e.encode(&event, out),
                }
            }
        }
    }

    /// Lets decoders that hold the last event until the end (Gemini's final chunk,
    /// Bedrock's metadata after messageStop) emit it.
    fn flush_decoder(&mut self, out: &mut BytesMut) {
        let flushed = match &mut self.decoder {
            Decoder::Bedrock(d) => d.finish(&mut self.events),
            Decoder::Gemini(d) => {
                d.finish(&mut self.events);
                Ok(())
            }
            Decoder::BedrockInvoke(d) => d.finish(),
            Decoder::OpenAi(_) | Decoder::Anthropic(_) => Ok(()),
        };
        if let Err(error) = flushed {
            self.events.push(malformed(&error));
        }
        self.drain_events(out);
    }

    /// The caller protocol's terminator event.
    pub fn terminator(&self) -> Terminator {
        match self.surface {
            Surface::OpenAi => Terminator::OpenAi,
            Surface::Anthropic => Terminator::Anthropic,
        }
    }

    /// The upstream body ended before the caller's terminator went out. Returns the
    /// caller's closing bytes: the terminator when a translating decoder completes the answer
    /// only at the end (Gemini), nothing more after an upstream error event the caller
    /// already has, an error event otherwise — an answer whose upstream never sent its own
    /// terminator is incomplete, whatever its last event said.
    pub fn finish(&mut self) -> Bytes {
        let mut out = BytesMut::new();
        match &mut self.tap {
            Some(tap) => tap.finish(),
            None => self.flush_decoder(&mut out),
        }
        let translated_end =
            matches!(self.mode, Mode::Translate(_)) && self.terminator().find(&out).is_some();
        if !translated_end && self.upstream_error().is_none() {
            self.fail_into(&mut out, StreamFailure::INCOMPLETE, INCOMPLETE_MESSAGE);
        }
        out.freeze()
    }

    /// The upstream connection broke or went silent: the stream ends with an error event.
    pub fn fail(&mut self, failure: StreamFailure, message: &str) -> Bytes {
        let mut out = BytesMut::new();
        self.fail_into(&mut out, failure, message);
        out.freeze()
    }

    fn fail_into(&mut self, out: &mut BytesMut, failure: StreamFailure, message: &str) {
        self.failure = Some(failure);
        // A translating encoder that already closed the stream (with an error) writes
        // nothing more: one terminal event only.
        match &mut self.mode {
            Mode::Translate(Encoder::OpenAi(e)) => e.finish_with_error(failure.kind, message, out),
            Mode::Translate(Encoder::Anthropic(e)) => {
                e.finish_with_error(failure.kind, message, out)
            }
            Mode::PassThrough { .. } => self.write_error(out, failure.kind, message),
        }
    }

    /// An error event in the caller's protocol, written in place of a terminator that may
    /// not go out (the answer could not be recorded).
    pub fn withheld_end(&self, message: &str) -> Bytes {
        let mut out = BytesMut::new();
        self.write_error(&mut out, ErrorKind::Overloaded, message);
        out.freeze()
    }

    /// An error the upstream itself reported in the stream.
    fn upstream_error(&self) -> Option<ErrorKind> {
        self.summary
            .error()
            .map(|(kind, _)| *kind)
            .or_else(|| self.tap.as_ref()?.error().map(|(kind, _)| *kind))
    }

    /// What the stream amounted to, for its invocation record.
    pub fn outcome(&self) -> crate::interactions::Outcome {
        let error = match self.failure {
            Some(failure) => Some((failure.status, failure.name.to_owned())),
            None => self
                .upstream_error()
                .map(|kind| (kind.openai_status(), kind.anthropic_type().to_owned())),
        };
        let usage = match &self.tap {
            Some(tap) => tap.usage(),
            None => *self.summary.usage(),
        };
        let finish_reason = match &self.tap {
            Some(tap) => tap.stop_reason(),
            None => self.summary.stop_reason(),
        };
        crate::interactions::Outcome {
            error,
            input_tokens: usage.input_tokens,
            output_tokens: usage.output_tokens,
            cached_input_tokens: usage.cached_input_tokens,
            reasoning_tokens: usage.reasoning_tokens,
            finish_reason: finish_reason.map(StopReason::name),
            response: self.tap.is_none().then(|| self.summary.text()),
        }
    }

    /// A terminal error event in the caller's protocol, written by the relay itself.
    fn write_error(&self, out: &mut BytesMut, kind: ErrorKind, message: &str) {
        match self.surface {
            Surface::OpenAi => {
                let (kind_name, code) = kind.openai_type_code();
                let body = serde_json::json!({
                    "error": { "message": message, "type": kind_name, "param": null, "code": code }
                });
                write_openai_event(out, &body.to_string());
            }
            Surface::Anthropic => {
                let body = serde_json::json!({
                    "type": "error",
                    "error": { "type": kind.anthropic_type(), "message": message }
                });
                out.extend_from_slice(b"event: error\ndata: ");
                out.extend_from_slice(body.to_string().as_bytes());
                out.extend_from_slice(b"\n\n");
            }
        }
    }
}

fn malformed(error: &switchboard_protocols::ProtocolError) -> StreamEvent {
    StreamEvent::Error {
        kind: ErrorKind::BadGateway,
        message: format!("the upstream stream is malformed: {error}"),
    }
}

fn write_openai_event(out: &mut BytesMut, data: &str) {
    out.extend_from_slice(b"data: ");
    out.extend_from_slice(data.as_bytes());
    out.extend_from_slice(b"\n\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn translating() -> Relay {
        Relay::new(RelaySpec {
            surface: Surface::Anthropic,
            upstream: Codec::OpenAi,
            client_wants_usage: false,
            keep_content: true,
            id: "msg_1".into(),
            model: "m".into(),
        })
    }

    /// Catalogue item 32: non-JSON data in an upstream event ends the caller's stream with
    /// an error event, even when the upstream goes on to its terminator.
    #[test]
    fn an_undecodable_upstream_event_is_an_in_band_error() {
        let mut relay = translating();
        let mut out = relay.push(Bytes::from_static(
            b"data: {\"id\":\"c\",\"object\":\"chat.completion.chunk\",\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\n",
        )).to_vec();
        out.extend_from_slice(
            &relay.push(Bytes::from_static(b"data: not json\n\ndata: [DONE]\n\n")),
        );
        out.extend_from_slice(&relay.finish());
        let text = String::from_utf8(out).unwrap();
        assert!(text.contains("event: error"), "{text}");
        assert!(!text.contains("message_stop"), "{text}");
        assert!(relay.outcome().error.is_some());
    }
}
