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
