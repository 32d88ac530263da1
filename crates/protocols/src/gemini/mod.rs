//! Google Gemini `generateContent` / `streamGenerateContent` (Vertex AI and the Gemini
//! Developer API share the body format; only URLs and auth differ).

mod request;
mod response;
mod stream;

pub use request::encode_request;
pub use response::{classify_error, decode_response, new_call_id, status_kind, stop_from_gemini};
pub use stream::StreamDecoder;
