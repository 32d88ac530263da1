//! Every metric name the gateway exports, in one place: the recording code, the `/metrics`
//! descriptions and the dashboard test (every name a dashboard or alert rule uses must be
//! one of [`ALL`]) read them from here.

/// Inference requests by surface, provider, model, outcome and error name.
pub const GEN_AI_REQUESTS: &str = "switchboard_gen_ai_requests_total";
/// Tokens by surface, provider, model and type (`input`, `output`, `cached_input`, `reasoning`).
pub const GEN_AI_TOKENS: &str = "switchboard_gen_ai_tokens_total";
/// From the request's arrival to the first token sent to the caller.
pub const GEN_AI_TIME_TO_FIRST_TOKEN: &str = "switchboard_gen_ai_time_to_first_token_seconds";
/// From the request's arrival to its end (the last byte of the answer or stream).
pub const GEN_AI_REQUEST_DURATION: &str = "switchboard_gen_ai_request_duration_seconds";
/// From sending the upstream request to its response head.
pub const GEN_AI_UPSTREAM_LATENCY: &str = "switchboard_gen_ai_upstream_latency_seconds";
/// Streams being relayed now, by surface.
pub const GEN_AI_OPEN_STREAMS: &str = "switchboard_gen_ai_open_streams";
/// Requests refused by the managed provider's limits, by limit (`rate`, `quota`).
pub const LIMIT_REFUSALS: &str = "switchboard_limit_refusals_total";
/// Invocation records waiting to be written.
pub const RECORDER_QUEUE_DEPTH: &str = "switchboard_recorder_queue_depth";
/// One recorder transaction (a group commit), by result.
pub const RECORDER_WRITE: &str = "switchboard_recorder_write_seconds";
/// From a change's commit on any replica to this replica applying it.
pub const FANOUT_LAG: &str = "switchboard_fanout_lag_seconds";
/// One store call, by operation and result (`ok`, `error`, `timeout`).
pub const STORE_CALL: &str = "switchboard_store_call_seconds";
/// HTTP requests by method, route template and status.
pub const HTTP_REQUESTS: &str = "switchboard_http_requests_total";
/// Time to the response head, by method, route template and status.
pub const HTTP_DURATION: &str = "switchboard_http_request_duration_seconds";
/// Request handlers that panicked (each answered 500).
pub const HTTP_PANICS: &str = "switchboard_http_panics_total";
/// Open client connections.
pub const CONNECTIONS_OPEN: &str = "switchboard_connections_open";
/// Connections closed at once because the connection cap was reached.
pub const CONNECTIONS_REFUSED: &str = "switchboard_connections_refused_total";
/// Connections closed for overstaying the header or idle timeout.
pub const CONNECTIONS_TIMED_OUT: &str = "switchboard_connections_timed_out_total";
/// Seconds since the process started.
pub const UPTIME: &str = "switchboard_uptime_seconds";

/// Every exported name (histograms without their `_bucket`/`_sum`/`_count` suffixes).
pub const ALL: &[&str] = &[
    GEN_AI_REQUESTS,
    GEN_AI_TOKENS,
    GEN_AI_TIME_TO_FIRST_TOKEN,
    GEN_AI_REQUEST_DURATION,
    GEN_AI_UPSTREAM_LATENCY,
    GEN_AI_OPEN_STREAMS,
    LIMIT_REFUSALS,
    RECORDER_QUEUE_DEPTH,
    RECORDER_WRITE,
    FANOUT_LAG,
    STORE_CALL,
    HTTP_REQUESTS,
    HTTP_DURATION,
    HTTP_PANICS,
    CONNECTIONS_OPEN,
    CONNECTIONS_REFUSED,
    CONNECTIONS_TIMED_OUT,
    UPTIME,
];
