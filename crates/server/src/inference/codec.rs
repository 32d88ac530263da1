//! Which codec speaks to an upstream: one place maps the provider's wire protocol to the
//! request encoder, the response decoder and the error classifier of
//! `switchboard-protocols`.

use switchboard_protocols::error::{ErrorKind, UpstreamError, classify_upstream_error};
use switchboard_protocols::ir::{ChatRequest, ChatResponse};
use switchboard_protocols::{ProtocolError, anthropic, bedrock, gemini, openai};
use switchboard_providers::{UpstreamTarget, WireProtocol};

use super::errors::Surface;

/// `max_tokens` sent to upstreams that require one when the caller set none.
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// The family of an upstream's answers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Codec {
    OpenAi,
    /// Anthropic Messages, including Vertex rawPredict (native Anthropic answers).
    Anthropic,
    /// Converse JSON, ConverseStream AWS event stream.
    Bedrock,
    /// generateContent JSON, streamGenerateContent SSE.
    Gemini,
    /// Bedrock InvokeModel with an Anthropic body: Anthropic JSON answers, streams as
    /// event-stream `chunk` frames wrapping Anthropic events.
    BedrockInvoke,
}

impl Codec {
    pub fn of(protocol: WireProtocol) -> Self {
        match protocol {
            WireProtocol::OpenAiChat => Codec::OpenAi,
            WireProtocol::AnthropicMessages | WireProtocol::VertexAnthropic => Codec::Anthropic,
            WireProtocol::BedrockConverse => Codec::Bedrock,
            WireProtocol::Gemini => Codec::Gemini,
        }
    }

    /// Whether answers can pass to callers of `surface` unchanged (whole answers of
    /// InvokeModel are Anthropic's own; its streams are re-framed by the relay).
    pub fn matches(self, surface: Surface) -> bool {
        matches!(
            (self, surface),
            (Codec::OpenAi, Surface::OpenAi) | (Codec::Anthropic, Surface::Anthropic)
        )
    }
}

/// Encodes `request` in the target's protocol.
pub fn encode_request(
    target: &UpstreamTarget,
    request: &ChatRequest,
    stream: bool,
) -> Result<Vec<u8>, ProtocolError> {
    let model = &target.upstream_model;
    match target.protocol {
        WireProtocol::OpenAiChat => Ok(openai::encode_request(request, model)),
        WireProtocol::AnthropicMessages => {
            anthropic::encode_request(request, model, DEFAULT_MAX_TOKENS)
        }
        WireProtocol::VertexAnthropic => anthropic::vertex_body(&anthropic::encode_request(
            request,
            model,
            DEFAULT_MAX_TOKENS,
        )?),
        WireProtocol::BedrockConverse => bedrock::encode_request(
            request,
            model,
            &bedrock::EncodeOptions {
                default_max_tokens: Some(DEFAULT_MAX_TOKENS),
                guardrail: target.guardrail.clone(),
                stream,
            },
        ),
        WireProtocol::Gemini => gemini::encode_request(request),
    }
}

/// Decodes a whole (non-streaming) answer.
pub fn decode_response(
    codec: Codec,
    target: &UpstreamTarget,
    body: &[u8],
) -> Result<ChatResponse, ProtocolError> {
    match codec {
        Codec::OpenAi => openai::decode_response(body),
        Codec::Anthropic | Codec::BedrockInvoke => anthropic::decode_response(body),
        Codec::Bedrock => bedrock::decode_response(body, &target.upstream_model),
        Codec::Gemini => gemini::decode_response(body),
    }
}

/// Classifies an upstream error answer.
pub fn classify_error(
    target: &UpstreamTarget,
    status: u16,
    headers: &reqwest::header::HeaderMap,
    body: &[u8],
) -> UpstreamError {
    let mut error = match target.protocol {
        WireProtocol::BedrockConverse => {
            let kind = headers
                .get("x-amzn-errortype")
                .and_then(|v| v.to_str().ok());
            bedrock::classify_error(status, kind, body)
        }
        WireProtocol::Gemini => gemini::classify_error(status, body),
        WireProtocol::OpenAiChat
        | WireProtocol::AnthropicMessages
        | WireProtocol::VertexAnthropic => classify_upstream_error(status, body),
    };
    // OpenAI labels even a missing key `invalid_request_error`: a generic type must not
    // override a more specific status.
    if error.kind == ErrorKind::InvalidRequest && status != 400 {
        error.kind = ErrorKind::from_status(status);
    }
    error
}

/// The usage of a whole answer read without decoding the answer itself (pass-through of an
/// organization that keeps no content): serde skips everything but `usage`.
pub fn usage_outcome(codec: Codec, body: &[u8]) -> crate::interactions::Outcome {
    #[derive(serde::Deserialize, Default)]
    struct Details {
        #[serde(default)]
        cached_tokens: u64,
        #[serde(default)]
        reasoning_tokens: u64,
    }
    #[derive(serde::Deserialize, Default)]
    struct Usage {
        #[serde(default)]
        prompt_tokens: u64,
        #[serde(default)]
        completion_tokens: u64,
        #[serde(default)]
        prompt_tokens_details: Option<Details>,
        #[serde(default)]
        completion_tokens_details: Option<Details>,
        #[serde(default)]
        input_tokens: u64,
        #[serde(default)]
        output_tokens: u64,
        #[serde(default)]
        cache_creation_input_tokens: u64,
        #[serde(default)]
        cache_read_input_tokens: u64,
    }
    #[derive(serde::Deserialize)]
    struct Answer {
        #[serde(default)]
        usage: Option<Usage>,
    }
    let usage = serde_json::from_slice::<Answer>(body)
        .ok()
        .and_then(|a| a.usage)
        .unwrap_or_default();
    let detail = |d: &Option<Details>, pick: fn(&Details) -> u64| d.as_ref().map_or(0, pick);
    let (input, output, cached, reasoning) = match codec {
        Codec::OpenAi => (
            usage.prompt_tokens,
            usage.completion_tokens,
            detail(&usage.prompt_tokens_details, |d| d.cached_tokens),
            detail(&usage.completion_tokens_details, |d| d.reasoning_tokens),
        ),
        // Anthropic counts cache reads and writes apart from `input_tokens`.
        _ => (
            usage.input_tokens + usage.cache_creation_input_tokens + usage.cache_read_input_tokens,
            usage.output_tokens,
            usage.cache_read_input_tokens,
            0,
        ),
    };
    crate::interactions::Outcome {
        input_tokens: input,
        output_tokens: output,
        cached_input_tokens: cached,
        reasoning_tokens: reasoning,
        ..Default::default()
    }
}
