//! Switchboard provider simulator.
//!
//! One HTTP listener that speaks the real wire protocols of the upstream providers the gateway
//! talks to, so gateway tests, benchmarks and `switchboard mock`/`switchboard demo` can run
//! without network access or real keys. Test and tooling code only: production crates must not
//! depend on this one.
//!
//! # Endpoints
//!
//! | Protocol | Routes | Credentials |
//! |---|---|---|
//! | OpenAI | `POST /v1/chat/completions`, `GET /v1/models` | `Authorization: Bearer` (`openai_key`) |
//! | Anthropic | `POST /v1/messages` (also `?beta=true`) | `x-api-key` or Bearer (`anthropic_key`), `anthropic-version` required |
//! | Azure OpenAI | `POST /openai/deployments/{d}/chat/completions?api-version=…`, `POST /openai/v1/chat/completions`, `GET /openai/v1/models` | `api-key` or Bearer (`azure_key`) |
//! | Azure Anthropic | `POST /anthropic/v1/messages` | `x-api-key`, `api-key` or Bearer (`azure_key`) |
//! | Bedrock | `POST /model/{id}/converse`, `POST /model/{id}/converse-stream` (AWS event stream), `POST /model/{id}/invoke`, `POST /model/{id}/invoke-with-response-stream` (Anthropic body, `chunk{bytes}` frames) | SigV4, service `bedrock` (`aws_access_key_id`/`aws_secret_access_key`, or keys from the simulated STS), or a Bedrock API key as Bearer (`bedrock_api_key`) |
//! | STS | `POST /` `Action=AssumeRole` (XML answer) | SigV4, service `sts`; `sts_external_id` |
//! | Google OAuth | `POST /token` (JWT-bearer grant) | RS256 assertion verified with `google_service_account_public_key_pem`, audience = this URL |
//! | Vertex Gemini | `POST /v1/projects/{p}/locations/{l}/publishers/google/models/{m}:generateContent`, `:streamGenerateContent?alt=sse`; Express Mode `POST /v1/publishers/google/models/{m}:…` | Bearer from `/token`; Express: `x-goog-api-key` (`google_api_key`) |
//! | Vertex Anthropic | `POST /v1/projects/{p}/locations/{l}/publishers/anthropic/models/{m}:rawPredict`, `:streamRawPredict` | Bearer from `/token`; body needs `anthropic_version: vertex-2023-10-16` and no `model` |
//! | Simulator | `GET /_sim/requests` (JSON list of recorded requests), `DELETE /_sim/requests` | none |
//!
//! Without a configured key any non-empty key is accepted. A wrong key is answered with the
//! provider's own 401 body; OpenAI's message masks the key the way OpenAI does.
//!
//! # Deterministic answers
//!
//! * Text: `Echo: <last user message text>`, whitespace-normalised and truncated to 200 words.
//!   Streams send one content chunk per word (later words carry their leading space), or exactly
//!   `chunks` pieces when forced; the answer is padded with filler words when it is shorter.
//! * Usage: input tokens = whitespace-separated words across all message (and system) text as
//!   sent, plus 3 per message; output tokens = words in the answer (argument fragments for a
//!   tool call).
//! * `max_tokens`/`max_completion_tokens` cut the text answer after that many words and finish
//!   with `length` (OpenAI/Azure) or `max_tokens` (Anthropic).
//! * Tools: when the request has tools, `tool_choice` is not `none` and the last message is a
//!   user message, the answer is one call of the forced tool (or the first tool) with arguments
//!   `{"<first schema property or input>":"<last user text>"}`, streamed in 8-character
//!   argument fragments (OpenAI: first delta has id/type/name and `arguments:""`; Anthropic:
//!   `content_block_start` with `input:{}` then `input_json_delta`, the first one empty).
//!   When the last message is a tool result the answer is `Tool result: <result text>`.
//! * Model names `does-not-exist` or `missing-*` are unknown (404); any other name is accepted.
//!   OpenAI and Anthropic echo the requested model; Azure reports [`SimConfig::azure_model`].
//!
//! # Fault knobs
//!
//! Directives inside the text of the last user message (or tool result), so they travel through
//! a gateway unchanged. Several `key=value` items may share one directive; directives are
//! stripped from the echoed text. They override [`SimConfig`] for that request.
//!
//! * `[[sim:status=429 retry_after=2]]`: answer that status with the protocol's error body
//!   (Anthropic 529 = `overloaded_error`) and `retry-after` when given.
//! * `[[sim:hang]]`: never send the response head.
//! * `[[sim:latency_ms=100]]`: wait before the response head.
//! * `[[sim:delay_ms=50]]`: wait between stream chunks.
//! * `[[sim:chunks=64]]`: exactly this many content chunks (text words or argument fragments).
//! * `[[sim:cut_after=3]]`: stream 3 content chunks, then abort the connection without a
//!   terminator (the client sees a body error, not a clean end).
//! * `[[sim:error_event]]`: after 2 content chunks send the protocol's mid-stream error
//!   (`data: {"error":…}` / `event: error` overloaded) and end the body.
//! * `[[sim:stall_after=1]]`: stream 1 content chunk, then go silent without closing.
//! * `[[sim:cut_mid_event=2]]`: stream 2 content chunks, then half of the next event, then
//!   abort the connection.
//! * `[[sim:no_terminator]]`: the whole answer but its last frame (`[DONE]`, `message_stop`,
//!   Bedrock's `metadata`), then a clean end of the body.
//!
//! * `[[sim:echo_key]]`, `[[sim:huge_body=N]]`, `[[sim:endless]]`: an abusive upstream (an
//!   error quoting the key it got, a huge whole answer, a stream without end); see the
//!   `abuse` module.
//!
//! Streams are generated lazily frame by frame, so a slow reader back-pressures the simulator.

mod abuse;
mod answer;
mod anthropic;
mod auth;
mod aws_sig;
mod azure;
mod bedrock;
mod bedrock_invoke;
mod cloud;
mod faults;
mod google_token;
mod ids;
mod openai;
mod record;
mod reply;
mod sse;
mod sts;
mod vertex;

use std::fmt;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::DefaultBodyLimit;
use axum::routing::{get, post};
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

pub use record::{RecordedRequest, SimHandle};

/// Simulator settings. `Default` accepts any non-empty key and answers immediately.
#[derive(Clone)]
pub struct SimConfig {
    /// Required OpenAI key; `None` accepts any non-empty key.
    pub openai_key: Option<String>,
    /// Required Anthropic key; `None` accepts any non-empty key.
    pub anthropic_key: Option<String>,
    /// Required Azure key (Azure OpenAI and Azure Anthropic); `None` accepts any non-empty key.
    pub azure_key: Option<String>,
    /// Delay before the response head of every model call.
    pub latency: Duration,
    /// Delay between stream chunks.
    pub chunk_delay: Duration,
    /// Force this many content chunks per answer.
    pub chunks: Option<usize>,
    /// Models listed by the `models` endpoints.
    pub models: Vec<String>,
    /// Model version Azure reports in responses (the deployment name is not a model).
    pub azure_model: String,
    /// Largest request body accepted (413 above it).
    pub max_body_bytes: usize,
    /// AWS access key id whose SigV4 signatures Bedrock and STS verify; with neither this
    /// nor the secret set, any well-formed signature is accepted (keys issued by the
    /// simulated STS are always verified).
    pub aws_access_key_id: Option<String>,
    /// The secret of [`Self::aws_access_key_id`].
    pub aws_secret_access_key: Option<String>,
    /// The Bedrock API key accepted as `Authorization: Bearer` instead of a SigV4 signature;
    /// `None` accepts any non-empty key.
    pub bedrock_api_key: Option<String>,
    /// `ExternalId` AssumeRole must carry; `None` accepts any (or none).
    pub sts_external_id: Option<String>,
    /// Lifetime of the credentials the simulated STS issues.
    pub sts_credentials_ttl: Duration,
    /// PEM (SPKI) RSA public key the token endpoint verifies service-account JWTs with;
    /// `None` accepts any well-formed RS256 JWT with the right audience and times.
    pub google_service_account_public_key_pem: Option<String>,
    /// Lifetime (`expires_in`) of the access tokens the token endpoint issues.
    pub google_token_ttl: Duration,
    /// Vertex Express Mode key (`x-goog-api-key`); `None` accepts any non-empty key.
    pub google_api_key: Option<String>,
}

impl Default for SimConfig {
    fn default() -> Self {
        Self {
            openai_key: None,
            anthropic_key: None,
            azure_key: None,
            latency: Duration::ZERO,
            chunk_delay: Duration::ZERO,
            chunks: None,
            models: [
                "gpt-4o",
                "gpt-4o-mini",
                "gpt-5",
                "claude-sonnet-4-5",
                "claude-haiku-4-5",
            ]
            .map(String::from)
            .to_vec(),
            azure_model: "gpt-5-2025-08-07".to_owned(),
            max_body_bytes: 32 * 1024 * 1024,
            aws_access_key_id: None,
            aws_secret_access_key: None,
            bedrock_api_key: None,
            sts_external_id: None,
            sts_credentials_ttl: Duration::from_secs(3600),
            google_service_account_public_key_pem: None,
            google_token_ttl: Duration::from_secs(3599),
            google_api_key: None,
        }
    }
}

/// Keys are redacted so a config can be logged safely.
impl fmt::Debug for SimConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let redact = |k: &Option<String>| k.as_ref().map(|_| "<redacted>");
        f.debug_struct("SimConfig")
            .field("openai_key", &redact(&self.openai_key))
            .field("anthropic_key", &redact(&self.anthropic_key))
            .field("azure_key", &redact(&self.azure_key))
            .field("latency", &self.latency)
            .field("chunk_delay", &self.chunk_delay)
            .field("chunks", &self.chunks)
            .field("models", &self.models)
            .field("azure_model", &self.azure_model)
            .field("max_body_bytes", &self.max_body_bytes)
            .field("aws_access_key_id", &redact(&self.aws_access_key_id))
            .field(
                "aws_secret_access_key",
                &redact(&self.aws_secret_access_key),
            )
            .field("bedrock_api_key", &redact(&self.bedrock_api_key))
            .field("sts_external_id", &redact(&self.sts_external_id))
            .field("sts_credentials_ttl", &self.sts_credentials_ttl)
            .field(
                "google_service_account_public_key_pem",
                &self.google_service_account_public_key_pem.is_some(),
            )
            .field("google_token_ttl", &self.google_token_ttl)
            .field("google_api_key", &redact(&self.google_api_key))
            .finish()
    }
}

/// Shared state of every handler.
#[derive(Clone)]
pub(crate) struct Sim {
    pub(crate) config: Arc<SimConfig>,
    pub(crate) handle: SimHandle,
    /// Credentials issued by the simulated STS and Google token endpoint.
    pub(crate) cloud: Arc<cloud::CloudState>,
}

/// Builds the simulator's router (state already applied) and the handle to its recordings.
pub fn router(config: SimConfig) -> (Router, SimHandle) {
    let handle = SimHandle::default();
    let limit = config.max_body_bytes;
    let sim = Sim {
        config: Arc::new(config),
        handle: handle.clone(),
        cloud: Arc::default(),
    };
    let router = Router::new()
        .route("/v1/chat/completions", post(openai::chat))
        .route("/v1/models", get(openai::models))
        .route("/v1/messages", post(anthropic::messages))
        .route(
            "/openai/deployments/{deployment}/chat/completions",
            post(azure::deployment_chat),
        )
        .route("/openai/v1/chat/completions", post(azure::v1_chat))
        .route("/openai/v1/models", get(azure::models))
        .route("/anthropic/v1/messages", post(anthropic::azure_messages))
        .route("/model/{model}/converse", post(bedrock::converse))
        .route(
            "/model/{model}/converse-stream",
            post(bedrock::converse_stream),
        )
        .route("/model/{model}/invoke", post(bedrock_invoke::invoke))
        .route(
            "/model/{model}/invoke-with-response-stream",
            post(bedrock_invoke::invoke_stream),
        )
        .route("/", post(sts::handle))
        .route("/token", post(google_token::token))
        .route(
            "/v1/projects/{project}/locations/{location}/publishers/{publisher}/models/{tail}",
            post(vertex::project_model),
        )
        .route(
            "/v1/publishers/google/models/{tail}",
            post(vertex::express_model),
        )
        .route(
            "/_sim/requests",
            get(record::list).delete(record::clear_all),
        )
        .fallback(reply::unknown_route)
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            abuse::abuse,
        ))
        .layer(axum::middleware::from_fn_with_state(
            sim.clone(),
            record::record,
        ))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(sim);
    (router, handle)
}

/// A simulator serving in a background task. Dropping it stops accepting connections.
pub struct RunningSim {
    /// The bound address (useful with port 0).
    pub addr: SocketAddr,
    /// Recorded requests.
    pub handle: SimHandle,
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl RunningSim {
    /// Base URL such as `http://127.0.0.1:4321`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Stops the server, giving in-flight responses a moment to finish.
    pub async fn shutdown(mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(Duration::from_secs(1), task)
                .await
                .is_err()
            {
                abort.abort();
            }
        }
    }

    fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

impl Drop for RunningSim {
    fn drop(&mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            task.abort();
        }
    }
}

/// Binds `addr` (port 0 picks a free port) and serves the simulator in a background task.
pub async fn start(config: SimConfig, addr: SocketAddr) -> std::io::Result<RunningSim> {
    let listener = tokio::net::TcpListener::bind(addr).await?;
    let addr = listener.local_addr()?;
    let (router, handle) = router(config);
    let (stop, stopped) = oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let serve =
            axum::serve(listener, router.into_make_service()).with_graceful_shutdown(async {
                let _ = stopped.await;
            });
        if let Err(err) = serve.await {
            tracing::warn!(%err, "provider simulator stopped with an error");
        }
    });
    Ok(RunningSim {
        addr,
        handle,
        stop: Some(stop),
        task: Some(task),
    })
}
