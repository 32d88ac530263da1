//! The process's metrics recorder and the `/metrics` text.
//!
//! One recorder per process, installed on first use (the `metrics` facade is global by
//! design: every crate records through it without being handed a registry). Histograms get
//! explicit buckets, so Prometheus can aggregate them across replicas (summaries cannot be).

use std::sync::OnceLock;
use std::time::Duration;

use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::names;

/// Latency buckets, in seconds: 250 µs to 2 minutes (a long generation).
const LATENCY_BUCKETS: &[f64] = &[
    0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
    30.0, 60.0, 120.0,
];

/// How often histogram samples are folded into their buckets when nobody scrapes (bounds the
/// memory a never-scraped process spends on samples).
pub const UPKEEP_INTERVAL: Duration = Duration::from_secs(5);

static HANDLE: OnceLock<PrometheusHandle> = OnceLock::new();

/// The installed recorder's handle (installing it on the first call).
pub fn handle() -> &'static PrometheusHandle {
    HANDLE.get_or_init(install)
}

fn install() -> PrometheusHandle {
    let recorder = PrometheusBuilder::new()
        .set_buckets_for_metric(Matcher::Suffix("_seconds".to_owned()), LATENCY_BUCKETS)
        .expect("the bucket list is not empty")
        .build_recorder();
    let handle = recorder.handle();
    if let Err(error) = metrics::set_global_recorder(recorder) {
        // Only this function installs one; a second would be a wiring bug, and metrics
        // are not worth refusing to start for.
        tracing::error!(%error, "could not install the metrics recorder");
    }
    describe();
    handle
}

/// Renders the Prometheus text exposition format (folding pending histogram samples first).
pub fn render() -> String {
    handle().render()
}

/// Folds histogram samples into buckets; call every [`UPKEEP_INTERVAL`].
pub fn run_upkeep() {
    handle().run_upkeep();
}

fn describe() {
    describe_counter!(
        names::GEN_AI_REQUESTS,
        "Inference requests by surface, provider, model, outcome and error name."
    );
    describe_counter!(
        names::GEN_AI_TOKENS,
        "Tokens by surface, provider, model and type (input, output, cached_input, reasoning)."
    );
    describe_histogram!(
        names::GEN_AI_TIME_TO_FIRST_TOKEN,
        Unit::Seconds,
        "From the request's arrival to the first token sent to the caller."
    );
    describe_histogram!(
        names::GEN_AI_REQUEST_DURATION,
        Unit::Seconds,
        "From the request's arrival to the end of its answer."
    );
    describe_histogram!(
        names::GEN_AI_UPSTREAM_LATENCY,
        Unit::Seconds,
        "From sending the upstream request to its response head."
    );
    describe_gauge!(
        names::GEN_AI_OPEN_STREAMS,
        "Streams being relayed now, by surface."
    );
    describe_counter!(
        names::LIMIT_REFUSALS,
        "Requests refused by the managed provider's limits, by limit."
    );
    describe_gauge!(
        names::RECORDER_QUEUE_DEPTH,
        "Invocation records waiting to be written."
    );
    describe_histogram!(
        names::RECORDER_WRITE,
        Unit::Seconds,
        "One recorder transaction (group commit), by result."
    );
    describe_histogram!(
        names::FANOUT_LAG,
        Unit::Seconds,
        "From a change's commit on any replica to this replica applying it."
    );
    describe_counter!(
        names::HTTP_REQUESTS,
        "HTTP requests by method, route template and status."
    );
    describe_histogram!(
        names::HTTP_DURATION,
        Unit::Seconds,
        "Time to the response head, by method, route template and status."
    );
    describe_counter!(
        names::HTTP_PANICS,
        "Request handlers that panicked (answered 500)."
    );
    describe_gauge!(names::CONNECTIONS_OPEN, "Open client connections.");
    describe_counter!(
        names::CONNECTIONS_REFUSED,
        "Connections closed at once because the connection cap was reached."
    );
    describe_counter!(
        names::CONNECTIONS_TIMED_OUT,
        "Connections closed for overstaying the header or idle timeout."
    );
    describe_gauge!(
        names::UPTIME,
        Unit::Seconds,
        "Seconds since the process started."
    );
}
