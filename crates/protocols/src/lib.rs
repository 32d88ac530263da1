//! Wire codecs for the LLM protocols Switchboard speaks, and translation between them
//! through one protocol-neutral IR. Pure: no I/O, no async, no HTTP client.
//!
//! # Shape
//!
//! ```text
//!  caller protocol                IR                      upstream protocol
//!  ───────────────                ──                      ─────────────────
//!  openai::decode_request   ─► ir::ChatRequest  ─► anthropic::encode_request
//!  anthropic::decode_request                       openai::encode_request
//!  openai::encode_response  ◄─ ir::ChatResponse ◄─ anthropic::decode_response / openai::…
//!  openai::StreamEncoder    ◄─ ir::StreamEvent  ◄─ anthropic::StreamDecoder ◄─ sse::SseParser
//!  anthropic::StreamEncoder                        openai::StreamDecoder
//! ```
//!
//! - [`ir`]: [`ChatRequest`], [`Message`], [`Part`], [`ChatResponse`], [`StopReason`],
//!   [`Usage`], [`StreamEvent`] and [`StreamAccumulator`] (events → response).
//! - [`sse`]: [`SseParser`], an incremental parser fed arbitrary byte chunks.
//! - [`openai`] and [`anthropic`], each with the same surface:
//!   `decode_request(&[u8]) -> Result<ChatRequest>`, `encode_request(&ChatRequest, model, …)`,
//!   `decode_response(&[u8]) -> Result<ChatResponse>`, `encode_response(&ChatResponse, model)`,
//!   `StreamDecoder::push(&SseEvent, &mut Vec<StreamEvent>)`,
//!   `StreamEncoder::{encode(&StreamEvent, &mut BytesMut), finish, finish_with_error}`,
//!   and `error_body(…)` / `error_response(ErrorKind, message) -> (status, body)`.
//! - [`bedrock`]: Bedrock Converse/ConverseStream (`encode_request(&ChatRequest, model_id,
//!   &EncodeOptions)`, `decode_response(&[u8], model)`, `StreamDecoder::push(&[u8] raw body
//!   bytes, &mut Vec<StreamEvent>)` + `finish`, `classify_error(status, x-amzn-ErrorType,
//!   body)`), and the InvokeModel Anthropic body helpers.
//! - [`gemini`]: Gemini generateContent/streamGenerateContent (`encode_request`,
//!   `decode_response`, `StreamDecoder::push(&SseEvent, …)` + `finish`, `classify_error`).
//! - [`eventstream`]: [`eventstream::EventStreamDecoder`], incremental, bounded, CRC-checked
//!   AWS event-stream framing on `aws-smithy-eventstream`.
//! - `anthropic::vertex_body`: an Anthropic body for Vertex rawPredict.
//! - [`tap`]: [`StreamTap`], which watches a same-protocol pass-through stream for usage,
//!   stop reason and a proper terminator without re-serializing it.
//! - [`error`]: [`ProtocolError`] (caller-safe messages), [`ErrorKind`] and
//!   [`classify_upstream_error`] for either protocol's error bodies.
//!
//! # Streaming rules (provider reference, section 7)
//!
//! Decoders turn each SSE event into zero or more [`StreamEvent`]s. Tool calls are keyed by
//! *tool ordinal*, not by Anthropic's content-block index. `Usage` events are cumulative
//! snapshots (last wins) and may arrive before content, with the stop, or after it.
//! Encoders hold the stop until the upstream terminator so the final usage can be written
//! where the caller's protocol wants it (OpenAI's usage chunk before `[DONE]`, Anthropic's
//! `message_delta`), and they never write a clean terminator without having seen a stop:
//! a truncated upstream becomes the protocol's mid-stream error instead.
//!
//! A typical translating stream loop:
//!
//! ```
//! use bytes::BytesMut;
//! use switchboard_protocols::{anthropic, openai, sse::SseParser};
//!
//! let upstream = b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_1\",\"model\":\"claude\",\"usage\":{\"input_tokens\":3,\"output_tokens\":1}}}\n\n\
//! event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n\
//! event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"Hi\"}}\n\n\
//! event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\"},\"usage\":{\"output_tokens\":2}}\n\n\
//! event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n";
//!
//! let mut parser = SseParser::new();
//! let mut decoder = anthropic::StreamDecoder::new();
//! let mut encoder = openai::StreamEncoder::new("chatcmpl-1", "my-alias", true);
//! let (mut events, mut out) = (Vec::new(), BytesMut::new());
//! parser.push(upstream); // in real use: each chunk as it arrives
//! while let Some(event) = parser.next_event()? {
//!     decoder.push(&event, &mut events)?;
//!     for e in events.drain(..) {
//!         encoder.encode(&e, &mut out);
//!     }
//! }
//! encoder.finish(&mut out); // at upstream EOF: no-op if already terminated
//! assert!(out.ends_with(b"data: [DONE]\n\n"));
//! # Ok::<(), switchboard_protocols::ProtocolError>(())
//! ```

pub mod anthropic;
pub mod bedrock;
pub mod error;
pub mod eventstream;
pub mod framing;
pub mod gemini;
pub mod ir;
pub mod openai;
pub mod sse;
pub mod tap;

pub use error::{ErrorKind, ProtocolError, UpstreamError, classify_upstream_error};
pub use ir::{
    ChatRequest, ChatResponse, Message, Part, Role, StopReason, StreamAccumulator, StreamEvent,
    Usage,
};
pub use sse::{SseEvent, SseParser};
pub use tap::{Protocol, StreamTap};
