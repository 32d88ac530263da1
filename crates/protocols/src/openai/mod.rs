//! The OpenAI Chat Completions protocol (also Azure OpenAI and OpenAI-compatible servers).

mod request;
mod response;
mod stream;

pub use request::{decode_request, encode_request};
pub use response::{
    decode_response, encode_response, error_body, error_response, finish_from_stop,
    new_completion_id, stop_from_finish,
};
pub use stream::{StreamDecoder, StreamEncoder};

pub(crate) use request::joined_text;
