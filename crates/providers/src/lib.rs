//! Everything that talks to providers: the egress client every outbound call goes through,
//! and per-provider-type targets (URL, authentication, model mapping, wire protocol).
//! Protocol encoding and translation live in `switchboard-protocols`; this crate knows
//! nothing about the store or HTTP routing.
//!
//! # Calling an upstream (integration API)
//!
//! ```text
//! // once, at startup (AppState):
//! let cache = CredentialCache::new();
//! let settings = UpstreamSettings {
//!     bedrock_endpoint, sts_endpoint, vertex_endpoint, google_token_url,   // templates
//!     aws_base_credentials: AwsKeys::from_vars(|n| std::env::var(n).ok()),
//!     ..UpstreamSettings::default()
//! };
//!
//! // per request:
//! let target = build_target(provider, &config, model, &settings, &secrets)?;
//! let body = match target.protocol {
//!     WireProtocol::OpenAiChat => openai::encode_request(&req, &target.upstream_model),
//!     WireProtocol::AnthropicMessages => anthropic::encode_request(&req, model, max)?,
//!     WireProtocol::VertexAnthropic =>                       // translated or passed through
//!         anthropic::vertex_body(&anthropic::encode_request(&req, model, max)?)?,
//!     WireProtocol::BedrockConverse => bedrock::encode_request(&req, &target.upstream_model,
//!         &bedrock::EncodeOptions { default_max_tokens: Some(max),
//!             guardrail: target.guardrail.clone(), stream })?,
//!     WireProtocol::Gemini => gemini::encode_request(&req)?,
//! };
//! let url = target.url_for(stream);
//! let mut headers = target.headers.clone();
//! headers.insert(CONTENT_TYPE, "application/json");             // before authorize: signed
//! authorize(&target, &egress, &cache, &Method::POST, url, &mut headers, &body).await?;
//! let response = egress.send(egress.request(Method::POST, url)?.headers(headers).body(body)).await?;
//! ```
//!
//! Answers: `bedrock::decode_response(&bytes, &target.upstream_model)` /
//! `bedrock::StreamDecoder::push(&raw_bytes, &mut events)` + `finish`;
//! `gemini::decode_response` / `gemini::StreamDecoder::push(&sse_event, …)` + `finish`;
//! Vertex Anthropic answers with the Anthropic codecs. Errors:
//! `bedrock::classify_error(status, x-amzn-ErrorType header, body)`,
//! `gemini::classify_error(status, body)` (also for Google front-end errors of Vertex
//! Anthropic). [`AuthError`] is a configuration problem unless
//! [`AuthError::is_transient`].

pub mod auth;
pub mod aws;
pub mod cloud;
pub mod egress;
pub mod google;
pub mod target;

pub use auth::{
    AuthError, AwsCredentialSource, CredentialCache, SigV4Auth, UpstreamAuth, authorize,
};
pub use aws::AwsKeys;
pub use cloud::{bedrock_invoke_url, bedrock_model_id, inference_geography, vertex_base};
pub use egress::{EgressClient, EgressFailure, NameLookup, PreparedTarget, Timeouts};
pub use google::ServiceAccount;
pub use target::{
    SecretSource, TargetError, UpstreamSettings, UpstreamTarget, WireProtocol, build_target,
};
