//! AWS Bedrock Runtime: the Converse / ConverseStream protocol, and the Anthropic body used
//! with InvokeModel.
//!
//! Converse is the default for every model, Claude included: it carries text, images,
//! tools, reasoning (Claude `thinking` through `additionalModelRequestFields`), guardrails and
//! structured output. InvokeModel with an Anthropic body ([`invoke_body`]) is for what
//! Converse cannot express: Anthropic beta features (`anthropic_beta`, e.g. interleaved
//! thinking, context management, 1M context), prompt-caching `cache_control` placement on
//! arbitrary blocks, and Anthropic server tools; its responses and streams (`chunk{bytes}`
//! frames, see [`InvokeStreamDecoder`]) are Anthropic-native.

mod frames;
mod invoke;
mod request;
mod response;
mod stream;

pub use invoke::InvokeStreamDecoder;

pub use request::{EncodeOptions, encode_request, is_anthropic_model};
pub use response::{
    classify_error, decode_response, error_kind, new_response_id, stop_from_bedrock,
};
pub use stream::StreamDecoder;

use serde_json::Value;

use crate::error::ProtocolError;

/// The `anthropic_version` Bedrock's InvokeModel requires in Anthropic bodies.
pub const INVOKE_ANTHROPIC_VERSION: &str = "bedrock-2023-05-31";

/// Turns an Anthropic Messages body into an InvokeModel body: `model` and `stream` removed
/// (the model is in the URL, streaming is the operation), `anthropic_version` set, and
/// `betas` (header values) moved into the body as `anthropic_beta`.
pub fn invoke_body(anthropic_body: &[u8], betas: &[String]) -> Result<Vec<u8>, ProtocolError> {
    let mut v: Value =
        serde_json::from_slice(anthropic_body).map_err(|e| ProtocolError::request_json(&e))?;
    let Some(object) = v.as_object_mut() else {
        return Err(ProtocolError::InvalidJson(
            "the body must be a JSON object".into(),
        ));
    };
    object.remove("model");
    object.remove("stream");
    object.insert("anthropic_version".into(), INVOKE_ANTHROPIC_VERSION.into());
    if !betas.is_empty() {
        object.insert("anthropic_beta".into(), betas.into());
    }
    Ok(serde_json::to_vec(&v).unwrap_or_default())
}

/// The Anthropic event JSON inside an InvokeModelWithResponseStream `chunk` frame payload
/// (`{"bytes":"<base64>"}`), ready for `anthropic::StreamDecoder` as an SSE `data` field.
pub fn decode_invoke_chunk(payload: &[u8]) -> Result<String, ProtocolError> {
    invoke::chunk_json(payload)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invoke_body_drops_model_and_stream_and_sets_version() {
        let body = invoke_body(
            br#"{"model":"claude","stream":true,"max_tokens":5,"messages":[]}"#,
            &["interleaved-thinking-2025-05-14".into()],
        )
        .unwrap();
        let v: Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("model").is_none() && v.get("stream").is_none());
        assert_eq!(v["anthropic_version"], INVOKE_ANTHROPIC_VERSION);
        assert_eq!(v["anthropic_beta"][0], "interleaved-thinking-2025-05-14");
        let chunk = br#"{"bytes":"eyJ0eXBlIjoibWVzc2FnZV9zdG9wIn0="}"#;
        assert_eq!(
            decode_invoke_chunk(chunk).unwrap(),
            r#"{"type":"message_stop"}"#
        );
    }
}
