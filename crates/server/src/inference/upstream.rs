//! One exchange with the upstream: build the body (pass-through edits or translation),
//! send it through the egress client (retrying only before anything reached the caller),
//! and turn the answer into the caller's protocol.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use bytes::{Bytes, BytesMut};
use futures_util::StreamExt;
use switchboard_core::resolve::{Resolved, Selection};
use switchboard_core::{ErrorName, Principal, SecretValue};
use switchboard_protocols::error::ErrorKind;
use switchboard_protocols::framing::EventFramer;
use switchboard_protocols::{anthropic, openai};
use switchboard_providers::{
    AuthError, EgressFailure, PreparedTarget, SecretSource, TargetError, UpstreamTarget,
    WireProtocol, authorize, build_target,
};

use super::bounded::{self, StreamBounds, StreamOverrun, WholeBodyError};
use super::codec::{self, Codec};
use super::errors::{Surface, SurfaceError};
use super::raw_json::{Edit, RawObject, json_string};
use super::relay::{Relay, RelaySpec, StreamFailure};
use super::request_bounds;
use super::scrub::Scrubber;
use super::{Failure, Served, resolve_selection, set_selection_headers};
use crate::dataplane::OrgSnapshot;
use crate::interactions::{Outcome, Recording};
use crate::shutdown::{Phase, PhaseWatch};
use crate::state::AppState;

/// Longest `Retry-After` the gateway waits out itself before retrying once.
const MAX_RETRY_WAIT: Duration = Duration::from_secs(2);
/// Largest upstream error body read to classify it.
const MAX_ERROR_BODY: usize = 64 * 1024;
/// The most a pass-through stream holds of one unfinished event (the SSE parser's cap).
const MAX_EVENT_BYTES: usize = switchboard_protocols::sse::DEFAULT_MAX_EVENT_BYTES;

pub async fn call(
    state: &AppState,
    surface: Surface,
    caller: &Principal,
    snapshot: &Arc<OrgSnapshot>,
    headers: &HeaderMap,
    body: Bytes,
    recording: Recording,
) -> Result<Served, Failure> {
    let mut recording = Some(recording);
    let result = exchange(
        state,
        surface,
        caller,
        snapshot,
        headers,
        &body,
        &mut recording,
    )
    .await;
    // A whole answer (or an error) ends here: it reaches the caller once settled.
    let Some(recording) = recording else {
        return result;
    };
    let outcome = match &result {
        Ok(served) => served.outcome.clone(),
        Err(failure) => Outcome {
            error: Some((failure.error.status, failure.error.name.clone())),
            ..Outcome::default()
        },
    };
    match (recording.settle(outcome).await, result) {
        (Ok(()), result) => result,
        (Err(error), Ok(served)) => Err(Failure {
            error,
            resolved: served.resolved,
        }),
        (Err(_), Err(failure)) => Err(failure),
    }
}

async fn exchange(
    state: &AppState,
    surface: Surface,
    caller: &Principal,
    snapshot: &Arc<OrgSnapshot>,
    headers: &HeaderMap,
    body: &Bytes,
    recording: &mut Option<Recording>,
) -> Result<Served, Failure> {
    let raw = RawObject::parse(body).map_err(|e| SurfaceError::bad_request(e.to_string()))?;
    super::client_overrides::refuse(&raw)?;
    request_bounds::check(&raw).map_err(SurfaceError::bad_request)?;
    let provider = raw.str("provider").map_err(SurfaceError::bad_request)?;
    let model = raw.str("model").map_err(SurfaceError::bad_request)?;
    let selection = Selection {
        provider: provider.as_deref(),
        model: model.as_deref(),
    };
    let stream = raw
        .bool("stream")
        .map_err(SurfaceError::bad_request)?
        .unwrap_or(false);
    let resolved = resolve_selection(state, caller, snapshot, selection)?;
    let with_selection = |error| Failure {
        error,
        resolved: Some(resolved.clone()),
    };
    if let Some(recording) = recording.as_mut() {
        recording.resolved(&resolved);
        recording.admit().await.map_err(with_selection)?;
    }
    let exchange = Exchange {
        state,
        surface,
        snapshot,
        resolved: &resolved,
        stream,
    };
    exchange
        .run(&raw, headers, recording)
        .await
        .map_err(with_selection)
}

struct Exchange<'a> {
    state: &'a AppState,
    surface: Surface,
    snapshot: &'a Arc<OrgSnapshot>,
    resolved: &'a Resolved,
    stream: bool,
}

impl Exchange<'_> {
    async fn run(
        &self,
        raw: &RawObject<'_>,
        headers: &HeaderMap,
        recording: &mut Option<Recording>,
    ) -> Result<Served, SurfaceError> {
        let mut prepared = self.target()?;
        let betas = self.invoke_model_betas(&prepared.target, headers);
        let codec = if betas.is_some() {
            Codec::BedrockInvoke
        } else {
            Codec::of(prepared.target.protocol)
        };
        let same_protocol = codec.matches(self.surface);
        let client_wants_usage = self.surface == Surface::OpenAi && self.stream && wants_usage(raw);
        let upstream_body = match &betas {
            Some(betas) => {
                let (target, body) = self.invoke_model_call(raw, &prepared.target, betas)?;
                let target = self.state.egress.prepare(target).map_err(egress_error)?;
                prepared = Arc::new(target);
                body
            }
            None if same_protocol => self.pass_through_body(raw, &prepared.target),
            None => self.translated_body(raw, &prepared.target)?,
        };
        let (sent_at, started) = (std::time::SystemTime::now(), std::time::Instant::now());
        let response = self.send(&prepared, headers, upstream_body).await;
        if let Some(recording) = recording.as_mut() {
            let status = match &response {
                Ok((response, _)) => response.status().as_u16(),
                Err(error) => error.status,
            };
            recording.upstream_answered(sent_at, started.elapsed(), status);
        }
        let (response, sent) = response?;
        let (mut answer, outcome) = if self.stream {
            if let Some(recording) = recording.as_mut() {
                recording.streaming();
                recording.begun().await?;
            }
            let recording = recording.take();
            let scrub = ScrubSource {
                state: self.state.clone(),
                snapshot: self.snapshot.clone(),
                sent,
            };
            let answer = self.relay_stream(response, codec, client_wants_usage, recording, scrub);
            (answer, Outcome::default())
        } else {
            let whole_same = same_protocol || codec == Codec::BedrockInvoke;
            self.whole_answer(response, &prepared.target, codec, whole_same)
                .await?
        };
        set_selection_headers(answer.headers_mut(), self.resolved);
        Ok(Served {
            response: answer,
            outcome,
            resolved: Some(self.resolved.clone()),
        })
    }

    /// Anthropic callers that ask for beta features (`anthropic-beta`) of a Claude model on
    /// Bedrock get InvokeModel with an Anthropic body: Converse has no way to pass betas
    /// (nor `cache_control` placement or server tools). `Some` holds the betas.
    fn invoke_model_betas(
        &self,
        target: &UpstreamTarget,
        headers: &HeaderMap,
    ) -> Option<Vec<String>> {
        let betas = headers.get("anthropic-beta")?.to_str().ok()?;
        let applies = self.surface == Surface::Anthropic
            && target.protocol == WireProtocol::BedrockConverse
            && switchboard_protocols::bedrock::is_anthropic_model(&target.upstream_model);
        applies.then(|| {
            betas
                .split(',')
                .map(|b| b.trim().to_owned())
                .filter(|b| !b.is_empty())
                .collect()
        })
    }

    /// The target moved to the InvokeModel operation, and the caller's Anthropic body as
    /// an InvokeModel body.
    fn invoke_model_call(
        &self,
        raw: &RawObject<'_>,
        converse: &UpstreamTarget,
        betas: &[String],
    ) -> Result<(UpstreamTarget, Vec<u8>), SurfaceError> {
        let url = switchboard_providers::bedrock_invoke_url(converse, self.stream)
            .ok_or_else(SurfaceError::internal)?;
        let mut target = converse.clone();
        target.url.clone_from(&url);
        target.stream_url = url;
        let body = raw.rewrite(&[("provider", Edit::Remove)]);
        let body = switchboard_protocols::bedrock::invoke_body(&body, betas)
            .map_err(|e| SurfaceError::bad_request(e.to_string()))?;
        Ok((target, body))
    }

    /// Whether this organization keeps interaction content (else only metadata is read).
    fn stores_content(&self) -> bool {
        self.snapshot.config.settings.store_interaction_data
    }

    /// The upstream target, prepared once per snapshot, provider and model.
    fn target(&self) -> Result<Arc<PreparedTarget>, SurfaceError> {
        let Resolved {
            provider, model, ..
        } = self.resolved;
        self.snapshot.target(*provider, model, || {
            let record = self
                .snapshot
                .provider(*provider)
                .ok_or_else(SurfaceError::internal)?;
            let secrets = SnapshotSecrets {
                snapshot: self.snapshot,
                state: self.state,
            };
            let settings = &self.state.settings.upstream;
            let target = build_target(*provider, &record.config, model, settings, &secrets)
                .map_err(target_error)?;
            self.state.egress.prepare(target).map_err(egress_error)
        })
    }

    /// Same protocol: the caller's body with the model replaced by the upstream's name, the
    /// `provider` field removed and, for OpenAI streams, usage requested. Vertex's Anthropic
    /// endpoint takes the model from the URL and its own `anthropic_version` in the body.
    fn pass_through_body(&self, raw: &RawObject<'_>, target: &UpstreamTarget) -> Vec<u8> {
        let model = if target.protocol == WireProtocol::VertexAnthropic {
            Edit::Remove
        } else {
            Edit::Set(json_string(&target.upstream_model).into())
        };
        let mut edits = vec![("model", model), ("provider", Edit::Remove)];
        if target.protocol == WireProtocol::VertexAnthropic {
            let version = json_string(switchboard_protocols::anthropic::VERTEX_ANTHROPIC_VERSION);
            edits.push(("anthropic_version", Edit::Set(version.into())));
        }
        if self.stream && target.protocol == WireProtocol::OpenAiChat {
            edits.push(("stream_options", Edit::Set(stream_options(raw).into())));
        }
        raw.rewrite(&edits)
    }

    /// Different protocols: decode the caller's body (with the resolved model filled in,
    /// since the caller may have named none) and encode it for the upstream.
    fn translated_body(
        &self,
        raw: &RawObject<'_>,
        target: &UpstreamTarget,
    ) -> Result<Vec<u8>, SurfaceError> {
        let body = raw.rewrite(&[
            (
                "model",
                Edit::Set(json_string(&target.upstream_model).into()),
            ),
            ("provider", Edit::Remove),
        ]);
        let mut request = match self.surface {
            Surface::OpenAi => openai::decode_request(&body),
            Surface::Anthropic => anthropic::decode_request(&body),
        }
        .map_err(|e| SurfaceError::bad_request(e.to_string()))?;
        request.stream = self.stream;
        request.include_usage = true;
        codec::encode_request(target, &request, self.stream)
            .map_err(|e| SurfaceError::bad_request(e.to_string()))
    }

    /// Sends, retrying once when the upstream asks to wait briefly; only non-success
    /// answers are retried, so nothing has reached the caller yet.
    async fn send(
        &self,
        target: &PreparedTarget,
        caller_headers: &HeaderMap,
        body: Vec<u8>,
    ) -> Result<(reqwest::Response, HeaderMap), SurfaceError> {
        let body = Bytes::from(body);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let (request, sent) = self.request(target, caller_headers, body.clone()).await?;
            let response = self
                .state
                .egress
                .send(request)
                .await
                .map_err(egress_error)?;
            if response.status().is_success() {
                return Ok((response, sent));
            }
            let wait = retry_wait(&response);
            if attempt < 2 && is_retryable(response.status()) && wait.is_some() {
                tokio::time::sleep(wait.unwrap_or_default()).await;
                continue;
            }
            return Err(self.upstream_error(&target.target, response, &sent).await);
        }
    }

    /// The upstream request, signed or given a fresh token when the provider needs it (per
    /// attempt: SigV4 signatures carry the time), and the headers it carries (what an
    /// upstream error is scrubbed of).
    async fn request(
        &self,
        prepared: &PreparedTarget,
        caller_headers: &HeaderMap,
        body: Bytes,
    ) -> Result<(reqwest::RequestBuilder, HeaderMap), SurfaceError> {
        let target = &prepared.target;
        let mut headers = target.headers.clone();
        headers.insert(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        );
        if target.protocol == WireProtocol::AnthropicMessages && self.surface == Surface::Anthropic
        {
            for name in ["anthropic-version", "anthropic-beta"] {
                if let Some(value) = caller_headers.get(name) {
                    headers.insert(name, value.clone());
                }
            }
        }
        let url = target.url_for(self.stream);
        let egress = &self.state.egress;
        authorize(
            target,
            egress,
            &self.state.credentials,
            &reqwest::Method::POST,
            url,
            &mut headers,
            &body,
        )
        .await
        .map_err(auth_error)?;
        let request = egress.request_to(reqwest::Method::POST, prepared, self.stream);
        Ok((request.headers(headers.clone()).body(body), headers))
    }

    /// An upstream error in the caller's protocol: the provider's kind and the message of
    /// an allowlisted field, scrubbed of the organization's secrets and the credential
    /// `sent` (see [`Scrubber`]). Credentials the provider refused are the organization's
    /// configuration problem, not the caller's: they become a 502 that says so, never a 401
    /// that would blame the caller's gateway token.
    async fn upstream_error(
        &self,
        target: &UpstreamTarget,
        response: reqwest::Response,
        sent: &HeaderMap,
    ) -> SurfaceError {
        let status = response.status().as_u16();
        let retry_after = retry_after_seconds(response.headers());
        let headers = response.headers().clone();
        let body = bounded::read_prefix(response, MAX_ERROR_BODY).await;
        let classified = codec::classify_error(target, status, &headers, &body);
        let kind = classified.kind;
        let provider = self.resolved.provider.as_str();
        let mut error = match kind {
            ErrorKind::Authentication | ErrorKind::Permission => SurfaceError::new(
                502,
                "upstream_authentication_error",
                format!(
                    "Provider '{provider}' rejected the credentials configured for it; \
                     check the secret named in its configuration"
                ),
            ),
            kind => SurfaceError::new(
                self.status_for(kind),
                self.type_for(kind),
                format!(
                    "Provider '{provider}': {}",
                    Scrubber::for_upstream(self.state, self.snapshot, sent)
                        .scrub(&classified.message)
                ),
            ),
        };
        error.retry_after = retry_after;
        error
    }

    fn status_for(&self, kind: ErrorKind) -> u16 {
        match self.surface {
            Surface::OpenAi => kind.openai_status(),
            Surface::Anthropic => kind.anthropic_status(),
        }
    }

    fn type_for(&self, kind: ErrorKind) -> &'static str {
        match self.surface {
            Surface::OpenAi => {
                let (kind_name, code) = kind.openai_type_code();
                code.unwrap_or(kind_name)
            }
            Surface::Anthropic => kind.anthropic_type(),
        }
    }

    async fn whole_answer(
        &self,
        response: reqwest::Response,
        target: &UpstreamTarget,
        codec: Codec,
        same_protocol: bool,
    ) -> Result<(Response, Outcome), SurfaceError> {
        let total = self.state.egress.timeouts().total;
        let limit = self.state.settings.upstream_caps.max_body_bytes;
        let bytes = tokio::time::timeout(total, bounded::read_whole(response, limit))
            .await
            .map_err(|_| egress_error(EgressFailure::Timeout))?
            .map_err(|error| match error {
                WholeBodyError::TooLarge { limit } => SurfaceError::new(
                    502,
                    "upstream_too_large",
                    format!("The provider's answer is larger than the limit of {limit} bytes"),
                ),
                WholeBodyError::Broken => egress_error(EgressFailure::Unreachable),
            })?;
        let invalid = |e: switchboard_protocols::ProtocolError| {
            SurfaceError::new(502, "upstream_invalid_response", e.to_string())
        };
        // Passed through and no content to keep: only the usage is read, not the answer.
        if same_protocol && !self.stores_content() {
            let outcome = codec::usage_outcome(codec, &bytes);
            return Ok((json_response(bytes), outcome));
        }
        let decoded = codec::decode_response(codec, target, &bytes).map_err(invalid)?;
        let outcome = outcome_of(&decoded);
        let body = if same_protocol {
            bytes
        } else {
            let model = &self.resolved.model;
            Bytes::from(match self.surface {
                Surface::OpenAi => openai::encode_response(&decoded, model),
                Surface::Anthropic => anthropic::encode_response(&decoded, model).map_err(|e| {
                    SurfaceError::new(502, "upstream_invalid_response", e.to_string())
                })?,
            })
        };
        Ok((json_response(body), outcome))
    }

    /// Streams the answer through a [`Relay`]; the upstream read advances only as fast as
    /// the caller reads, and dropping the caller's connection drops the upstream request.
    fn relay_stream(
        &self,
        response: reqwest::Response,
        upstream: Codec,
        client_wants_usage: bool,
        recording: Option<Recording>,
        scrub: ScrubSource,
    ) -> Response {
        let relay = Relay::new(RelaySpec {
            surface: self.surface,
            upstream,
            client_wants_usage,
            keep_content: self.stores_content(),
            id: new_id(self.surface),
            model: self.resolved.model.clone(),
        });
        let state = StreamState {
            upstream: Some(response.bytes_stream()),
            bounds: StreamBounds::start(&self.state.settings.upstream_caps),
            framer: relay.forwards_raw().then(EventFramer::new),
            relay,
            recording,
            forwarded_unread: None,
            scrub,
            scrubber: None,
            idle: self.state.settings.stream_idle_timeout,
            shutdown: self.state.shutdown.subscribe(),
            ended: false,
        };
        let body = futures_util::stream::unfold(state, |mut state| async move {
            let out = state.next_chunk().await?;
            Some((Ok::<_, std::io::Error>(out), state))
        });
        (
            StatusCode::OK,
            [
                (
                    header::CONTENT_TYPE,
                    HeaderValue::from_static("text/event-stream; charset=utf-8"),
                ),
                (header::CACHE_CONTROL, HeaderValue::from_static("no-cache")),
            ],
            Body::from_stream(body),
        )
            .into_response()
    }
}

/// A relayed stream in flight: the upstream body, the relay, and the invocation it records
/// (settled when the stream ends; dropped unfinished if the caller goes away first).
struct StreamState<S> {
    /// Dropped (closing the upstream connection) as soon as the stream ends.
    upstream: Option<S>,
    /// The stream's size and duration caps.
    bounds: StreamBounds,
    relay: Relay,
    /// Pass-through: cuts the upstream bytes at event boundaries, so the caller only ever
    /// gets whole events.
    framer: Option<EventFramer>,
    recording: Option<Recording>,
    /// Whole events already given to the caller unchanged but not yet read by the relay:
    /// read on the next poll, once the caller has them (see [`Relay::forwards_raw`]).
    forwarded_unread: Option<Bytes>,
    /// Where the scrubber of error events comes from, and the scrubber once needed.
    scrub: ScrubSource,
    scrubber: Option<Scrubber>,
    /// An upstream silent this long is ended with `upstream_timeout`.
    idle: Duration,
    /// A stream that outlives the shutdown grace period is ended with `shutting_down`.
    shutdown: PhaseWatch,
    ended: bool,
}

/// What a stream's error events are scrubbed of, decrypted only when one appears.
struct ScrubSource {
    state: AppState,
    snapshot: Arc<OrgSnapshot>,
    /// The upstream request's headers (its credential).
    sent: HeaderMap,
}

impl<S> StreamState<S>
where
    S: futures_util::Stream<Item = reqwest::Result<Bytes>> + Unpin,
{
    /// The next bytes for the caller, or `None` once the stream is over. The terminator is
    /// the last thing sent, and only once the invocation is settled (recorded, with durable
    /// recording).
    async fn next_chunk(&mut self) -> Option<Bytes> {
        let out = self.next_raw_chunk().await?;
        Some(self.scrubbed(out))
    }

    /// Error events (the upstream's own, passed through or translated) are scrubbed of the
    /// organization's secrets and the credential sent, like whole error answers. An error
    /// event is found by the JSON text `"error"`, which the content of a JSON string can
    /// never contain (its quotes are escaped); other events go out untouched.
    fn scrubbed(&mut self, out: Bytes) -> Bytes {
        if memchr::memmem::find(&out, b"\"error\"").is_none() {
            return out;
        }
        let Ok(text) = std::str::from_utf8(&out) else {
            return out;
        };
        let source = &self.scrub;
        let scrubber = self.scrubber.get_or_insert_with(|| {
            Scrubber::for_upstream(&source.state, &source.snapshot, &source.sent)
        });
        Bytes::from(scrubber.scrub(text))
    }

    async fn next_raw_chunk(&mut self) -> Option<Bytes> {
        if self.ended {
            return None;
        }
        loop {
            self.catch_up();
            let upstream = self.upstream.as_mut()?;
            let wait = self.bounds.wait(self.idle);
            let next = tokio::select! {
                biased;
                () = self.shutdown.reached(Phase::Expired) => {
                    let message = "the server is shutting down; the answer is incomplete";
                    let out = self.close(|relay| relay.fail(StreamFailure::SHUTDOWN, message));
                    return Some(self.end(out).await);
                }
                next = tokio::time::timeout(wait, upstream.next()) => next,
            };
            let out = match next {
                Ok(Some(Ok(chunk))) => match self.bounded_chunk(chunk) {
                    Ok(out) => out,
                    Err(overrun) => return Some(self.overrun(overrun).await),
                },
                Ok(Some(Err(error))) => {
                    tracing::debug!(%error, "upstream stream broke");
                    let message = "the upstream connection broke before the answer was complete";
                    let out = self.close(|relay| relay.fail(StreamFailure::INCOMPLETE, message));
                    return Some(self.end(out).await);
                }
                Ok(None) => {
                    let out = self.close(Relay::finish);
                    return Some(self.end(out).await);
                }
                Err(_) if self.bounds.check_deadline().is_err() => {
                    let overrun = self.bounds.check_deadline().unwrap_err();
                    return Some(self.overrun(overrun).await);
                }
                Err(_) => {
                    let message = format!(
                        "the provider sent nothing for {} s; the answer is incomplete",
                        self.idle.as_secs()
                    );
                    let out = self.close(|relay| relay.fail(StreamFailure::TIMEOUT, &message));
                    return Some(self.end(out).await);
                }
            };
            if self.relay.terminator().find(&out).is_some() {
                self.catch_up();
                return Some(self.end(out).await);
            }
            if !out.is_empty() {
                if let Some(recording) = self.recording.as_mut() {
                    recording.first_token();
                }
                return Some(out);
            }
        }
    }

    /// [`Self::relay_chunk`] within the stream's caps: its byte count, and what the framer
    /// may hold of one unfinished event.
    fn bounded_chunk(&mut self, chunk: Bytes) -> Result<Bytes, StreamOverrun> {
        self.bounds.count(chunk.len())?;
        let out = self.relay_chunk(chunk);
        match &self.framer {
            Some(framer) if framer.pending() > MAX_EVENT_BYTES => {
                Err(StreamOverrun::Bytes(MAX_EVENT_BYTES as u64))
            }
            _ => Ok(out),
        }
    }

    /// The stream went past a cap: it ends with an error event, and the record says which.
    async fn overrun(&mut self, overrun: StreamOverrun) -> Bytes {
        let failure = match overrun {
            StreamOverrun::Bytes(_) => StreamFailure::TOO_LARGE,
            StreamOverrun::Duration(_) => StreamFailure::TOO_LONG,
        };
        tracing::warn!(name = failure.name, "an upstream stream went past its cap");
        let message = overrun.message();
        let out = self.close(|relay| relay.fail(failure, &message));
        self.end(out).await
    }

    /// The caller's bytes for one upstream chunk: its whole events as they are
    /// (pass-through; the relay reads them after they went out), or what the relay makes.
    fn relay_chunk(&mut self, chunk: Bytes) -> Bytes {
        match &mut self.framer {
            Some(framer) => {
                let whole = framer.push(chunk);
                if !whole.is_empty() {
                    self.forwarded_unread = Some(whole.clone());
                }
                whole
            }
            None => self.relay.push(chunk),
        }
    }

    /// Lets the relay read what was forwarded before it looked.
    fn catch_up(&mut self) {
        if let Some(chunk) = self.forwarded_unread.take() {
            self.relay.push(chunk);
        }
    }

    /// The upstream is done (or given up on): whatever whole event the framer still held,
    /// then the relay's closing bytes.
    fn close(&mut self, close: impl FnOnce(&mut Relay) -> Bytes) -> Bytes {
        self.catch_up();
        let tail = self.framer.as_mut().map(EventFramer::finish);
        match tail.filter(|t| !t.is_empty()) {
            Some(tail) => {
                self.relay.push(tail.clone());
                let closing = close(&mut self.relay);
                let mut out = BytesMut::from(&tail[..]);
                out.extend_from_slice(&closing);
                out.freeze()
            }
            None => close(&mut self.relay),
        }
    }

    /// The stream's last bytes (`out` ends with the terminator or an error event): the
    /// invocation is settled first; when it could not be recorded, the terminator is
    /// replaced by an error event saying so.
    async fn end(&mut self, out: Bytes) -> Bytes {
        self.ended = true;
        self.upstream = None;
        let Some(mut recording) = self.recording.take() else {
            return out;
        };
        recording.first_token();
        let outcome = self.relay.outcome();
        match recording.settle(outcome).await {
            Ok(()) => out,
            Err(error) => match self.relay.terminator().find(&out) {
                Some(start) => {
                    let mut bytes = BytesMut::from(&out[..start]);
                    bytes.extend_from_slice(&self.relay.withheld_end(&error.message));
                    bytes.freeze()
                }
                None => out,
            },
        }
    }
}

fn json_response(body: Bytes) -> Response {
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            HeaderValue::from_static("application/json"),
        )],
        body,
    )
        .into_response()
}

/// Usage and text of a whole answer, for its invocation record.
fn outcome_of(response: &switchboard_protocols::ir::ChatResponse) -> Outcome {
    Outcome {
        error: None,
        input_tokens: response.usage.input_tokens,
        output_tokens: response.usage.output_tokens,
        cached_input_tokens: response.usage.cached_input_tokens,
        reasoning_tokens: response.usage.reasoning_tokens,
        finish_reason: Some(response.stop_reason.name()),
        response: Some(switchboard_protocols::ir::visible_text(&response.content)),
    }
}

/// Secrets for one request, decrypted from the snapshot on demand.
struct SnapshotSecrets<'a> {
    snapshot: &'a OrgSnapshot,
    state: &'a AppState,
}

impl SecretSource for SnapshotSecrets<'_> {
    fn secret(&self, name: &str) -> Option<SecretValue> {
        self.snapshot.secret(self.state.store.as_ref(), name)
    }
}

fn wants_usage(raw: &RawObject<'_>) -> bool {
    raw.get("stream_options")
        .and_then(|v| serde_json::from_str::<serde_json::Value>(v.get()).ok())
        .and_then(|v| v.get("include_usage").and_then(serde_json::Value::as_bool))
        .unwrap_or(false)
}

/// The caller's `stream_options` with `include_usage` switched on.
fn stream_options(raw: &RawObject<'_>) -> String {
    let mut options = raw
        .get("stream_options")
        .and_then(|v| {
            serde_json::from_str::<serde_json::Map<String, serde_json::Value>>(v.get()).ok()
        })
        .unwrap_or_default();
    options.insert("include_usage".into(), true.into());
    serde_json::Value::Object(options).to_string()
}

fn new_id(surface: Surface) -> String {
    let id = uuid::Uuid::new_v4().simple().to_string();
    match surface {
        Surface::OpenAi => format!("chatcmpl-{id}"),
        Surface::Anthropic => format!("msg_{id}"),
    }
}

fn is_retryable(status: reqwest::StatusCode) -> bool {
    matches!(status.as_u16(), 408 | 429 | 500 | 502 | 503 | 504 | 529)
}

/// How long to wait before the one retry: the upstream's `Retry-After` when it is short
/// enough to wait out, a short pause when it gave none, `None` when it asked for longer
/// (then the caller gets the error and the hint).
fn retry_wait(response: &reqwest::Response) -> Option<Duration> {
    match retry_after_seconds(response.headers()) {
        Some(seconds) => {
            let wait = Duration::from_secs(seconds);
            (wait <= MAX_RETRY_WAIT).then_some(wait)
        }
        None => Some(Duration::from_millis(200)),
    }
}

fn retry_after_seconds(headers: &reqwest::header::HeaderMap) -> Option<u64> {
    headers
        .get(reqwest::header::RETRY_AFTER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
}

fn egress_error(failure: EgressFailure) -> SurfaceError {
    match failure {
        EgressFailure::Blocked(reason) => SurfaceError::new(
            502,
            "upstream_blocked",
            format!("The upstream address is not allowed by the egress policy: {reason}"),
        ),
        EgressFailure::Timeout => SurfaceError::new(
            504,
            "upstream_timeout",
            "The provider did not answer in time",
        ),
        EgressFailure::Unreachable => SurfaceError::new(
            502,
            "upstream_unreachable",
            "The provider could not be reached",
        ),
    }
}

/// Getting credentials for the upstream failed: the provider's or network's fault (retry
/// later) or the configuration's.
fn auth_error(error: AuthError) -> SurfaceError {
    if error.is_transient() {
        SurfaceError::new(502, "upstream_unreachable", error.to_string())
    } else {
        SurfaceError::new(400, ErrorName::InvalidConfig.as_str(), error.to_string())
    }
}

fn target_error(error: TargetError) -> SurfaceError {
    let message = error.to_string();
    match error {
        TargetError::MissingSecret(_) | TargetError::Config(_) => {
            SurfaceError::new(400, ErrorName::InvalidConfig.as_str(), message)
        }
        TargetError::ManagedUnavailable(_) => {
            SurfaceError::new(503, ErrorName::Unavailable.as_str(), message)
        }
        TargetError::Unsupported(_) => SurfaceError::bad_request(message),
    }
}
