//! AI interactions: every inference request becomes an invocation record.
//!
//! The request path calls [`Interactions::begin`] once the caller is known (this reserves
//! the record's places in the recorder queue, so a full queue pushes back with a 503 before
//! any work is done rather than dropping a record later, and queues the invocation's
//! running row, written while the upstream call runs), tells the [`Recording`] what
//! resolution chose and asks it to [`Recording::admit`] the call (the managed provider's
//! limits), and ends it with an [`Outcome`]. A recording dropped unfinished (the client
//! went away) is recorded as failed.
//!
//! With durable recording ([`RecordingMode::Durable`]) the request path waits, before it
//! lets the caller see the end of an answer, until the final record is committed
//! ([`Recording::settle`]); before it sends a stream's response head, until the running
//! row is ([`Recording::begun`]). A process that dies leaves running rows behind; any
//! replica turns them into `Failed` / `interrupted` records ([`liveness`]).
//!
//! Parts: [`recorder`] (bounded queue and writer task), [`limits`] (managed-provider rate
//! limits and monthly quota), [`inflight`] (what polling sees before a record is stored),
//! [`purge`] (expired content) and [`view`] (the API's JSON of a record).

pub mod inflight;
pub mod limits;
pub mod liveness;
pub mod purge;
pub mod recorder;
pub mod view;

use std::sync::{Arc, Mutex, PoisonError};
use std::time::{Duration, Instant};

use serde_json::{Map, Value};
use switchboard_core::records::Timestamp;
use switchboard_core::resolve::Resolved;
use switchboard_core::{ErrorName, OrgId, ProviderType, UserId};
use switchboard_store::{
    InvocationContent, InvocationRecord, InvocationStatus, RunningInvocation, Store,
};
use time::OffsetDateTime;
use tokio::task::JoinHandle;

use switchboard_telemetry::gen_ai::{self, Call, GenAiMetrics, OpenStream, SeriesPolicy, Target};
use switchboard_telemetry::{KeyValue, RequestSpan, SpanEnd, SpanKind};

use crate::inference::SurfaceError;
use inflight::{InFlight, Pending, Progress};
use limits::{
    LimitError, LimitSettings, LimitStoreError, LimitStoreSettings, Limits, MonthlyQuotaUsage,
    RateLimitUsage, Reservation,
};
use recorder::{Commit, Entry, NotRecorded, QueueError, Recorder, Slot};

/// The error name recorded for an invocation whose caller went away before it ended.
pub const CLIENT_CLOSED: &str = "client_closed_request";
/// `Retry-After` seconds when the recorder queue is full.
const QUEUE_RETRY_AFTER: u64 = 1;

/// When an answer's end may reach its caller (`SWITCHBOARD_RECORDING`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum RecordingMode {
    /// Only after its invocation record is committed.
    #[default]
    Durable,
    /// At once; the record follows (lost if the process dies in between).
    Async,
}

/// Operator settings of the interaction subsystem.
#[derive(Clone, Debug)]
pub struct InteractionSettings {
    pub limits: LimitSettings,
    /// Where the limit counters live (Redis, PostgreSQL or this process) and their lease.
    pub limit_store: LimitStoreSettings,
    pub recording: RecordingMode,
    /// Invocations in flight or waiting to be written, at most.
    pub queue_capacity: usize,
    /// Bytes of content waiting to be written, at most (beyond: 503 for new invocations).
    pub queue_bytes: usize,
    /// How long a durable answer waits for its record before the caller is told it could
    /// not be recorded (the database deadline).
    pub commit_patience: Duration,
    /// How often expired content is purged.
    pub purge_interval: Duration,
    pub liveness: liveness::LivenessSettings,
}

impl Default for InteractionSettings {
    fn default() -> Self {
        Self {
            limits: LimitSettings::default(),
            limit_store: LimitStoreSettings::default(),
            recording: RecordingMode::Durable,
            queue_capacity: 10_000,
            queue_bytes: 256 * 1024 * 1024,
            commit_patience: Duration::from_secs(5),
            purge_interval: Duration::from_secs(3600),
            liveness: liveness::LivenessSettings::default(),
        }
    }
}

/// The interaction subsystem held in the server state.
pub struct Interactions {
    shared: Arc<Shared>,
    background: Mutex<Vec<JoinHandle<()>>>,
}

/// What recordings share with the subsystem.
struct Shared {
    limits: Limits,
    inflight: Arc<InFlight>,
    recorder: Recorder,
    /// This process's id in the running rows it writes (see [`liveness`]).
    instance: String,
    mode: RecordingMode,
    patience: Duration,
    /// The data plane's per-model series, counted when an invocation ends.
    metrics: GenAiMetrics,
}

/// What is known when an invocation starts.
#[derive(Clone, Debug)]
pub struct Invocation {
    pub id: String,
    pub org_id: OrgId,
    pub user_id: UserId,
    /// `openai`, `anthropic` or `invoke`.
    pub surface: &'static str,
    pub labels: Map<String, Value>,
    /// The prompt content (kept only if the organization stores interaction data).
    pub prompt: String,
    /// Whether the organization keeps content (then an async poll shows the answer).
    pub keep_content: bool,
    /// Input tokens reserved against the managed limits before the call (from the request
    /// itself, whatever the organization keeps).
    pub estimated_tokens: u64,
    pub request_id: Option<String>,
    pub created_at: Timestamp,
}

/// How an invocation ended.
#[derive(Clone, Debug, Default)]
pub struct Outcome {
    /// `Some((status, error name))` when it failed.
    pub error: Option<(u16, String)>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Of `input_tokens`, read from the provider's prompt cache.
    pub cached_input_tokens: u64,
    /// Of `output_tokens`, spent reasoning.
    pub reasoning_tokens: u64,
    /// Why generation stopped ([`switchboard_protocols::ir::StopReason::name`]), when known.
    pub finish_reason: Option<&'static str>,
    /// The answer's text content.
    pub response: Option<String>,
}

/// Managed-provider usage as the invoke API's `done` event reports it.
#[derive(Clone, Debug, serde::Serialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageReport {
    pub rate_limit_usage: RateLimitUsage,
    pub monthly_quota_usage: MonthlyQuotaUsage,
}

impl Interactions {
    /// Starts the recorder's writer and opens the limit store (call inside the runtime;
    /// fails only on a malformed `SWITCHBOARD_REDIS_URL`).
    pub fn new(
        store: Arc<dyn Store>,
        settings: &InteractionSettings,
        series: SeriesPolicy,
    ) -> Result<Self, LimitStoreError> {
        let limit_store = limits::open_store(&settings.limit_store, store.clone())?;
        tracing::info!(counters = limit_store.name(), "managed-provider limits");
        let limits = Limits::new(settings.limits, settings.limit_store.lease, limit_store);
        let inflight = Arc::new(InFlight::default());
        let recorder = Recorder::start(
            store,
            settings.queue_capacity,
            settings.queue_bytes,
            inflight.clone(),
        );
        Ok(Self {
            shared: Arc::new(Shared {
                limits,
                inflight,
                recorder,
                instance: uuid::Uuid::now_v7().to_string(),
                mode: settings.recording,
                patience: settings.commit_patience,
                metrics: GenAiMetrics::new(series),
            }),
            background: Mutex::new(Vec::new()),
        })
    }

    /// This process's instance id.
    pub fn instance(&self) -> &str {
        &self.shared.instance
    }

    /// Restores the limit counters from stored records (after a restart) and starts the
    /// background purge.
    pub async fn start(
        &self,
        store: Arc<dyn Store>,
        settings: &InteractionSettings,
        max_retention_days: u32,
    ) -> Result<(), switchboard_store::StoreError> {
        let now = OffsetDateTime::now_utc();
        let month = store
            .managed_usage(Timestamp::from_datetime(limits::month_start(now)))
            .await?;
        let hour = store
            .managed_usage(Timestamp::from_datetime(now - time::Duration::hours(1)))
            .await?;
        let restored = self
            .shared
            .limits
            .store()
            .restore(&month, &hour, limits::unix_ms(now), &limits::month_of(now))
            .await;
        if let Err(error) = restored {
            // Shared counters keep their own counts; only the upgrade seed is missed.
            tracing::warn!(%error, "cannot seed the limit counters from the records");
        }
        let liveness =
            liveness::start(store.clone(), &self.shared.instance, settings.liveness).await?;
        let purger = purge::spawn(store, settings.purge_interval, max_retention_days);
        self.background
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .extend([liveness, purger]);
        Ok(())
    }

    /// Graceful shutdown: stops the purge, then writes every queued record.
    pub async fn shutdown(&self) {
        let background = std::mem::take(
            &mut *self
                .background
                .lock()
                .unwrap_or_else(PoisonError::into_inner),
        );
        for task in background {
            task.abort();
        }
        self.shared.recorder.close().await;
    }

    /// Starts recording an invocation: reserves its queue slot (503 when the queue is
    /// full) and registers it for polling (409 when its id is already in flight).
    pub fn begin(&self, invocation: Invocation) -> Result<Recording, SurfaceError> {
        let places = self.shared.recorder.reserve().map_err(queue_error)?;
        let (org, id) = (invocation.org_id, invocation.id.as_str());
        if !self.shared.inflight.start(org, id, invocation.user_id) {
            return Err(SurfaceError::new(
                409,
                ErrorName::Conflict.as_str(),
                format!("An invocation with the identifier '{id}' already exists"),
            ));
        }
        let begun = Arc::new(Commit::default());
        let running = RunningInvocation {
            id: invocation.id.clone(),
            org_id: invocation.org_id,
            user_id: invocation.user_id,
            surface: invocation.surface.to_owned(),
            request_id: invocation.request_id.clone(),
            labels: invocation.labels.clone(),
            created_at: invocation.created_at,
            instance_id: self.shared.instance.clone(),
        };
        places.begun.send(Entry::Begun(running, begun.clone()));
        Ok(Recording {
            shared: self.shared.clone(),
            invocation,
            tools: Vec::new(),
            resolved: None,
            reservation: None,
            started: Instant::now(),
            first_token: None,
            slot: Some(places.ended),
            begun,
            span: RequestSpan::default(),
            capture_content: false,
            upstream: None,
            open_stream: None,
        })
    }

    /// An invocation not yet in the database (running, or queued for writing).
    pub fn pending(&self, org: OrgId, id: &str) -> Option<Pending> {
        self.shared.inflight.get(org, id)
    }

    /// The organization's managed-provider usage now.
    pub async fn usage(&self, org: OrgId) -> Result<UsageReport, LimitStoreError> {
        let (rate, monthly) = self
            .shared
            .limits
            .usage(org, OffsetDateTime::now_utc())
            .await?;
        Ok(UsageReport {
            rate_limit_usage: rate,
            monthly_quota_usage: monthly,
        })
    }

    /// Queue places in use (reserved by invocations in flight or waiting to be written).
    pub fn queue_depth(&self) -> usize {
        self.shared.recorder.places_in_use()
    }

    pub async fn monthly_usage(&self, org: OrgId) -> Result<MonthlyQuotaUsage, LimitStoreError> {
        Ok(self.usage(org).await?.monthly_quota_usage)
    }
}

fn queue_error(error: QueueError) -> SurfaceError {
    let mut surface = SurfaceError::new(
        503,
        ErrorName::Unavailable.as_str(),
        format!("{error}; retry shortly"),
    );
    surface.retry_after = Some(QUEUE_RETRY_AFTER);
    surface
}

/// A limit refusal as the surfaces report it: 429 with the Port name and `Retry-After`.
pub fn limit_error(error: &LimitError) -> SurfaceError {
    let (name, retry_after) = match error {
        LimitError::RateLimited { retry_after_secs } => (ErrorName::RateLimit, *retry_after_secs),
        LimitError::QuotaExceeded {
            retry_after_secs, ..
        } => (ErrorName::Quota, *retry_after_secs),
        LimitError::Unavailable => {
            let mut surface = SurfaceError::new(
                503,
                ErrorName::Unavailable.as_str(),
                format!("{error}; retry shortly"),
            );
            surface.retry_after = Some(QUEUE_RETRY_AFTER);
            return surface;
        }
    };
    gen_ai::limit_refused(match name {
        ErrorName::RateLimit => "rate",
        _ => "quota",
    });
    let mut surface = SurfaceError::new(429, name.as_str(), error.to_string());
    surface.retry_after = Some(retry_after);
    surface
}

/// An invocation in flight.
pub struct Recording {
    shared: Arc<Shared>,
    invocation: Invocation,
    tools: Vec<String>,
    resolved: Option<Resolved>,
    reservation: Option<Reservation>,
    started: Instant,
    first_token: Option<Duration>,
    /// Taken when the record is queued; `None` means finished.
    slot: Option<Slot>,
    /// The running row's write.
    begun: Arc<Commit>,
    /// The request's trace span (empty when tracing is off).
    span: RequestSpan,
    /// Whether prompt and answer text may go into the span (operator opt-in and the
    /// organization keeps content).
    capture_content: bool,
    /// From sending the upstream request to its response head.
    upstream: Option<Duration>,
    /// Counted in the open-streams gauge while the answer streams.
    open_stream: Option<OpenStream>,
}

/// The caller is told its answer could not be recorded: 503, retry shortly.
fn not_recorded(error: NotRecorded) -> SurfaceError {
    let mut surface = SurfaceError::new(
        503,
        recorder::RECORDING_UNAVAILABLE,
        format!("{error}; the answer is withheld, retry shortly"),
    );
    surface.retry_after = Some(QUEUE_RETRY_AFTER);
    surface
}

impl Recording {
    pub fn id(&self) -> &str {
        &self.invocation.id
    }

    /// The invoke API's tool selectors, recorded as given.
    pub fn set_tools(&mut self, tools: Vec<String>) {
        self.tools = tools;
    }

    /// Resolution chose who serves the request.
    pub fn resolved(&mut self, resolved: &Resolved) {
        self.span.resolved(
            resolved.provider.as_str(),
            &resolved.model,
            self.invocation.request_id.as_deref(),
        );
        self.resolved = Some(resolved.clone());
    }

    /// Attaches the request's trace span; `capture_content` lets prompt and answer text
    /// into it when the organization keeps content.
    pub fn trace(&mut self, span: RequestSpan, capture_content: bool) {
        self.span = span;
        self.capture_content = capture_content && self.invocation.keep_content;
    }

    /// The upstream answered with its response head (`status`) after `took`.
    pub fn upstream_answered(
        &mut self,
        sent_at: std::time::SystemTime,
        took: Duration,
        status: u16,
    ) {
        self.upstream = Some(took);
        self.span.child(
            "upstream",
            SpanKind::Client,
            sent_at,
            took,
            vec![KeyValue::new(
                "http.response.status_code",
                i64::from(status),
            )],
        );
    }

    /// The answer is a stream (counted as open until the invocation ends).
    pub fn streaming(&mut self) {
        if self.open_stream.is_none() {
            self.open_stream = Some(OpenStream::start(self.invocation.surface));
        }
    }

    /// Applies the organization's limits to the resolved call: only the managed provider is
    /// limited. Reserves a request, a token estimate and a monthly unit.
    pub async fn admit(&mut self) -> Result<(), SurfaceError> {
        let managed = self
            .resolved
            .as_ref()
            .is_some_and(|r| r.provider == ProviderType::Managed);
        if !managed || self.reservation.is_some() {
            return Ok(());
        }
        let estimate = self.invocation.estimated_tokens;
        let reservation = self
            .shared
            .limits
            .admit(self.invocation.org_id, estimate, OffsetDateTime::now_utc())
            .await
            .map_err(|e| limit_error(&e))?;
        self.reservation = Some(reservation);
        Ok(())
    }

    /// The first token reached the caller.
    pub fn first_token(&mut self) {
        if self.first_token.is_none() {
            self.first_token = Some(self.started.elapsed());
        }
    }

    /// Whether the end of an answer waits for its record.
    pub fn is_durable(&self) -> bool {
        self.shared.mode == RecordingMode::Durable
    }

    /// Durable recording: waits until the running row is committed, so that once the caller
    /// sees a response head the invocation survives a crash (as `interrupted` at worst).
    /// It was queued when the invocation began, so this costs nothing when the upstream
    /// took longer than the commit.
    pub async fn begun(&self) -> Result<(), SurfaceError> {
        if !self.is_durable() {
            return Ok(());
        }
        self.begun
            .wait(self.shared.patience)
            .await
            .map_err(not_recorded)
    }

    /// Ends the invocation with `outcome`; durable recording waits until its record is
    /// committed. `Err` (503 `recording_unavailable`) means the caller must not be given the
    /// answer's end: the record then says so too.
    pub async fn settle(mut self, outcome: Outcome) -> Result<(), SurfaceError> {
        let (commit, charge) = self.complete(outcome);
        // The span ends after the record's commit, with the wait as its last child.
        let span = std::mem::take(&mut self.span);
        // Settled before the end reaches the caller (so its usage report includes this
        // call), while the record commits: the two round trips overlap.
        let charged = async {
            if let Some(charge) = charge {
                charge.apply(&self.shared.limits).await;
            }
        };
        let recorded = async {
            match commit {
                Some(commit) if self.is_durable() => {
                    let (at, started) = (std::time::SystemTime::now(), Instant::now());
                    let waited = commit.wait(self.shared.patience).await;
                    let took = started.elapsed();
                    span.child(
                        "record invocation",
                        SpanKind::Internal,
                        at,
                        took,
                        Vec::new(),
                    );
                    waited.map_err(not_recorded)
                }
                _ => Ok(()),
            }
        };
        let ((), recorded) = tokio::join!(charged, recorded);
        recorded
    }

    /// Ends the invocation without waiting for its record (errors the caller already has).
    pub fn finish(mut self, outcome: Outcome) {
        let (_, charge) = self.complete(outcome);
        self.charge_later(charge);
    }

    /// Settles the limits off the request path (the caller is gone or already answered).
    fn charge_later(&self, charge: Option<Charge>) {
        let Some(charge) = charge else { return };
        let shared = self.shared.clone();
        match tokio::runtime::Handle::try_current() {
            Ok(runtime) => {
                runtime.spawn(async move { charge.apply(&shared.limits).await });
            }
            // Outside a runtime (shutdown): the lease releases the reservation.
            Err(_) => tracing::debug!("reservation left to its lease"),
        }
    }

    /// Marks the invocation finished for polling and queues its record into the place
    /// reserved at the start (never blocks, never fails); returns the commit to wait for and
    /// what the limits must be charged.
    fn complete(&mut self, outcome: Outcome) -> (Option<Arc<Commit>>, Option<Charge>) {
        let Some(slot) = self.slot.take() else {
            return (None, None);
        };
        let charge = self.reservation.as_ref().map(|reservation| Charge {
            tokens: charged_tokens(&outcome, self.invocation.estimated_tokens),
            reservation: reservation.clone(),
        });
        self.observe(&outcome);
        // Async recording: polling shows the answer before its record is written.
        let message = (!self.is_durable() && self.invocation.keep_content)
            .then(|| outcome.response.clone())
            .flatten();
        let record = self.record(outcome);
        let progress = Progress::Finished {
            status: record.status,
            error_name: record.error_name.clone(),
            message,
        };
        self.shared
            .inflight
            .finish(record.org_id, &record.id, progress);
        tracing::debug!(
            invocation = %record.id,
            failed = record.error_name.is_some(),
            total_ms = record.total_ms,
            "invocation finished"
        );
        (Some(self.shared.recorder.send_ended(slot, record)), charge)
    }

    /// Counts the ended invocation in its per-model series and gives its span the outcome.
    fn observe(&mut self, outcome: &Outcome) {
        self.open_stream = None;
        let error = outcome.error.as_ref().map(|(_, name)| name.as_str());
        let (provider, model) = match &self.resolved {
            Some(resolved) => (resolved.provider.as_str(), resolved.model.as_str()),
            None => (gen_ai::UNRESOLVED, gen_ai::UNRESOLVED),
        };
        let target = Target {
            org: &self.invocation.org_id,
            surface: self.invocation.surface,
            provider,
            model,
        };
        let call = Call {
            error,
            input_tokens: outcome.input_tokens,
            output_tokens: outcome.output_tokens,
            cached_input_tokens: outcome.cached_input_tokens,
            reasoning_tokens: outcome.reasoning_tokens,
            first_token: self.first_token,
            duration: self.started.elapsed(),
            upstream: self.upstream,
        };
        self.shared.metrics.record(target, &call);
        if self.span.is_recording() {
            let content = self
                .capture_content
                .then_some((self.invocation.prompt.as_str(), outcome.response.as_deref()));
            self.span.outcome(&SpanEnd {
                error,
                response_model: self.resolved.as_ref().map(|r| r.model.as_str()),
                finish_reason: outcome.finish_reason,
                input_tokens: outcome.input_tokens,
                output_tokens: outcome.output_tokens,
                cached_input_tokens: outcome.cached_input_tokens,
                reasoning_tokens: outcome.reasoning_tokens,
                content,
            });
        }
    }

    fn record(&self, outcome: Outcome) -> InvocationRecord {
        let invocation = &self.invocation;
        let millis = |d: Duration| u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
        let status = match outcome.error {
            None => InvocationStatus::Completed,
            Some(_) => InvocationStatus::Failed,
        };
        InvocationRecord {
            id: invocation.id.clone(),
            org_id: invocation.org_id,
            user_id: invocation.user_id,
            surface: invocation.surface.to_owned(),
            provider: self.resolved.as_ref().map(|r| r.provider),
            model: self.resolved.as_ref().map(|r| r.model.clone()),
            status,
            error_name: outcome.error.map(|(_, name)| name),
            request_id: invocation.request_id.clone(),
            labels: invocation.labels.clone(),
            tools: self.tools.clone(),
            metered: self.reservation.is_some(),
            input_tokens: outcome.input_tokens,
            output_tokens: outcome.output_tokens,
            first_token_ms: self.first_token.map(millis),
            total_ms: millis(self.started.elapsed()),
            created_at: invocation.created_at,
            finished_at: Timestamp::now(),
            // Whether it is kept is decided by the store, at write time.
            content: Some(InvocationContent {
                prompt: invocation.prompt.clone(),
                response: outcome.response,
            }),
        }
    }
}

impl Drop for Recording {
    /// The caller went away (or the request path forgot to finish): still recorded.
    fn drop(&mut self) {
        if self.slot.is_some() {
            tracing::debug!(invocation = %self.invocation.id, "invocation abandoned by the client");
            let (_, charge) = self.complete(Outcome {
                error: Some((499, CLIENT_CLOSED.to_owned())),
                ..Outcome::default()
            });
            self.charge_later(charge);
        }
    }
}

/// What an ended invocation costs against the managed limits.
struct Charge {
    reservation: Reservation,
    tokens: u64,
}

impl Charge {
    async fn apply(self, limits: &Limits) {
        limits
            .settle(&self.reservation, self.tokens, OffsetDateTime::now_utc())
            .await;
    }
}

/// The tokens an ended invocation costs against the managed limits: what the upstream
/// reported, but never less than the reserved estimate when the caller went away — the
/// upstream's work is not undone by disconnecting (and its usage report usually comes last),
/// so leaving just before the end must not make a request free.
fn charged_tokens(outcome: &Outcome, estimate: u64) -> u64 {
    let reported = outcome.input_tokens + outcome.output_tokens;
    let abandoned = outcome
        .error
        .as_ref()
        .is_some_and(|(_, name)| name == CLIENT_CLOSED);
    if abandoned {
        reported.max(estimate)
    } else {
        reported
    }
}

/// A deliberately rough input-token estimate (4 bytes per token) of a request body,
/// reserved before the call; the real usage replaces it when the call ends.
pub fn estimate_tokens(request: &[u8]) -> u64 {
    u64::try_from(request.len() / 4 + 1).unwrap_or(u64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_caller_that_goes_away_is_charged_at_least_the_estimate() {
        let closed = Outcome {
            error: Some((499, CLIENT_CLOSED.to_owned())),
            ..Outcome::default()
        };
        assert_eq!(charged_tokens(&closed, 400), 400);
        let reported = Outcome {
            input_tokens: 300,
            output_tokens: 500,
            ..closed
        };
        assert_eq!(charged_tokens(&reported, 400), 800);
        let refused = Outcome {
            error: Some((400, "invalid_request_error".to_owned())),
            ..Outcome::default()
        };
        assert_eq!(
            charged_tokens(&refused, 400),
            0,
            "an answer that failed costs its usage"
        );
    }
}
