//! The Anthropic Messages protocol (also Anthropic on Microsoft Foundry, and the body of
//! Anthropic models on Bedrock InvokeModel and Vertex rawPredict).

mod request;
mod response;
mod stream;

pub use request::{decode_request, encode_request};
pub use response::{
    decode_response, encode_response, error_body, error_response, new_message_id,
    stop_from_anthropic, stop_to_anthropic,
};
pub use stream::{StreamDecoder, StreamEncoder};

/// The `anthropic_version` Vertex AI's rawPredict requires in Anthropic bodies.
pub const VERTEX_ANTHROPIC_VERSION: &str = "vertex-2023-10-16";

/// Turns an Anthropic Messages body (translated or passed through) into a Vertex
/// `rawPredict`/`streamRawPredict` body: `model` removed (Vertex takes it from the URL and
/// rejects it in the body) and `anthropic_version` set to [`VERTEX_ANTHROPIC_VERSION`].
/// `stream` stays: streamRawPredict needs `"stream": true`.
pub fn vertex_body(body: &[u8]) -> Result<Vec<u8>, crate::ProtocolError> {
    let mut v: serde_json::Value =
        serde_json::from_slice(body).map_err(|e| crate::ProtocolError::request_json(&e))?;
    let Some(object) = v.as_object_mut() else {
        return Err(crate::ProtocolError::InvalidJson(
            "the body must be a JSON object".into(),
        ));
    };
    object.remove("model");
    object.insert("anthropic_version".into(), VERTEX_ANTHROPIC_VERSION.into());
    Ok(serde_json::to_vec(&v).unwrap_or_default())
}

#[cfg(test)]
mod vertex_tests {
    #[test]
    fn vertex_body_removes_model_and_sets_version() {
        let body =
            super::vertex_body(br#"{"model":"claude","max_tokens":1,"stream":true,"messages":[]}"#)
                .unwrap();
        let v: serde_json::Value = serde_json::from_slice(&body).unwrap();
        assert!(v.get("model").is_none());
        assert_eq!(v["anthropic_version"], "vertex-2023-10-16");
        assert_eq!(v["stream"], true);
    }
}
