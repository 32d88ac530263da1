//! Resolves process settings: flag or environment variable first, then the TOML file named
//! by `SWITCHBOARD_CONFIG`, then the built-in default.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use std::time::Duration;
use switchboard_core::catalog::CLAUDE_HAIKU_4_5;
use switchboard_core::egress::EgressPolicy;
use switchboard_core::{ProviderType, SecretValue};
use switchboard_providers::{AwsKeys, Timeouts, UpstreamSettings};
use switchboard_server::interactions::limits::{LimitSettings, LimitStoreSettings};
use switchboard_server::interactions::liveness::LivenessSettings;
use switchboard_server::interactions::{InteractionSettings, RecordingMode};
use switchboard_server::listener::ConnectionLimits;
use switchboard_server::listener::limits::MIN_HEADER_BYTES;
use switchboard_server::shutdown::ShutdownSettings;
use switchboard_server::{DEFAULT_BODY_BUDGET_BYTES, Settings, TelemetrySettings, UpstreamCaps};

use crate::cli::SettingArgs;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://switchboard-data/switchboard.db";
pub const DEFAULT_MASTER_KEY_FILE: &str = "switchboard-data/master.key";
const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
const DEFAULT_RETENTION_DAYS: u32 = 30;
const DEFAULT_CONFIG_POLL: Duration = Duration::from_millis(500);

/// The TOML file's keys: the variable names without `SWITCHBOARD_`, lowercased.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct FileSettings {
    listen: Option<String>,
    database_url: Option<String>,
    master_key: Option<String>,
    master_key_file: Option<String>,
    egress_allow: Option<String>,
    egress_allow_http: Option<bool>,
    system_default_provider: Option<String>,
    system_default_model: Option<String>,
    retention_days: Option<u32>,
    log: Option<String>,
    max_body_bytes: Option<usize>,
    openai_base_url: Option<String>,
    anthropic_base_url: Option<String>,
    bedrock_endpoint: Option<String>,
    sts_endpoint: Option<String>,
    vertex_endpoint: Option<String>,
    google_token_url: Option<String>,
    managed_openai_api_key: Option<String>,
    managed_anthropic_api_key: Option<String>,
    managed_requests_per_hour: Option<u64>,
    managed_tokens_per_hour: Option<u64>,
    managed_monthly_invocations: Option<u64>,
    recorder_queue: Option<usize>,
    purge_interval_seconds: Option<u64>,
    recording: Option<String>,
    config_poll_ms: Option<u64>,
    redis_url: Option<String>,
    redis_timeout_ms: Option<u64>,
    limit_lease_seconds: Option<u64>,
    recorder_queue_bytes: Option<usize>,
    database_timeout_seconds: Option<u64>,
    instance_stale_seconds: Option<u64>,
    upstream_first_byte_timeout_seconds: Option<u64>,
    stream_idle_timeout_seconds: Option<u64>,
    metrics_org_label: Option<bool>,
    otel_capture_content: Option<bool>,
    upstream_max_body_bytes: Option<usize>,
    stream_max_bytes: Option<u64>,
    stream_max_seconds: Option<u64>,
    body_budget_bytes: Option<usize>,
    aws_access_key_id: Option<String>,
    aws_secret_access_key: Option<String>,
    aws_session_token: Option<String>,
    header_timeout_seconds: Option<u64>,
    body_timeout_seconds: Option<u64>,
    idle_timeout_seconds: Option<u64>,
    max_connections: Option<usize>,
    max_headers: Option<usize>,
    max_header_bytes: Option<usize>,
    http2_max_streams: Option<u32>,
    shutdown_drain_seconds: Option<u64>,
    shutdown_grace_seconds: Option<u64>,
    ops_listen: Option<String>,
}

/// Every setting with its final value.
pub struct Resolved {
    pub database_url: String,
    pub master_key: Option<String>,
    pub master_key_file: PathBuf,
    pub log: Option<String>,
    /// The deadline of store calls made while serving.
    pub database_timeout: Duration,
    /// How often configuration changes are polled (the backstop of PostgreSQL's
    /// notifications; SQLite's only feed of the CLI's writes).
    pub config_poll: Duration,
    pub server: Settings,
}

pub fn resolve(args: SettingArgs) -> Result<Resolved> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileSettings::default(),
    };
    let interactions = interaction_settings(&args, &file)?;
    let connections = connection_limits(&args, &file)?;
    let shutdown = shutdown_settings(&args, &file)?;
    let ops_listen = args
        .ops_listen
        .clone()
        .or(file.ops_listen.clone())
        .map(|addr| addr.parse::<SocketAddr>())
        .transpose()
        .context("SWITCHBOARD_OPS_LISTEN must be an address like 0.0.0.0:9091")?;
    let (timeouts, stream_idle_timeout) = upstream_timeouts(&args, &file)?;
    let upstream_caps = upstream_caps(&args, &file)?;
    let body_budget_bytes = positive(
        "SWITCHBOARD_BODY_BUDGET_BYTES",
        args.body_budget_bytes.or(file.body_budget_bytes),
        DEFAULT_BODY_BUDGET_BYTES,
    )?;
    let listen = args.listen.or(file.listen);
    let listen: SocketAddr = listen
        .as_deref()
        .unwrap_or(DEFAULT_LISTEN)
        .parse()
        .context("SWITCHBOARD_LISTEN must be an address like 127.0.0.1:8080")?;
    let egress = EgressPolicy::from_env_values(
        args.egress_allow
            .or(file.egress_allow)
            .as_deref()
            .unwrap_or(""),
        args.egress_allow_http
            .or(file.egress_allow_http)
            .unwrap_or(false),
    )
    .context("SWITCHBOARD_EGRESS_ALLOW is invalid")?;
    let system_default_provider: ProviderType = args
        .system_default_provider
        .or(file.system_default_provider)
        .as_deref()
        .unwrap_or("managed")
        .parse()
        .context("SWITCHBOARD_SYSTEM_DEFAULT_PROVIDER is not a provider type")?;
    let max_retention_days = args
        .retention_days
        .or(file.retention_days)
        .unwrap_or(DEFAULT_RETENTION_DAYS);
    if !(1..=DEFAULT_RETENTION_DAYS).contains(&max_retention_days) {
        bail!("SWITCHBOARD_RETENTION_DAYS must be between 1 and 30");
    }
    let defaults = UpstreamSettings::default();
    let upstream = UpstreamSettings {
        openai_base_url: args
            .openai_base_url
            .or(file.openai_base_url)
            .unwrap_or(defaults.openai_base_url),
        anthropic_base_url: args
            .anthropic_base_url
            .or(file.anthropic_base_url)
            .unwrap_or(defaults.anthropic_base_url),
        managed_openai_key: args
            .managed_openai_api_key
            .or(file.managed_openai_api_key)
            .filter(|k| !k.is_empty())
            .map(SecretValue::new),
        managed_anthropic_key: args
            .managed_anthropic_api_key
            .or(file.managed_anthropic_api_key)
            .filter(|k| !k.is_empty())
            .map(SecretValue::new),
        bedrock_endpoint: args
            .bedrock_endpoint
            .or(file.bedrock_endpoint)
            .unwrap_or(defaults.bedrock_endpoint),
        sts_endpoint: args
            .sts_endpoint
            .or(file.sts_endpoint)
            .unwrap_or(defaults.sts_endpoint),
        vertex_endpoint: args
            .vertex_endpoint
            .or(file.vertex_endpoint)
            .unwrap_or(defaults.vertex_endpoint),
        google_token_url: args
            .google_token_url
            .or(file.google_token_url)
            .unwrap_or(defaults.google_token_url),
        aws_base_credentials: aws_base_credentials(
            args.aws_access_key_id.or(file.aws_access_key_id),
            args.aws_secret_access_key.or(file.aws_secret_access_key),
            args.aws_session_token.or(file.aws_session_token),
        ),
        aws_role_session_name: defaults.aws_role_session_name,
    };
    Ok(Resolved {
        database_url: args
            .database_url
            .or(file.database_url)
            .unwrap_or_else(|| DEFAULT_DATABASE_URL.to_owned()),
        master_key: args.master_key.or(file.master_key),
        master_key_file: PathBuf::from(
            args.master_key_file
                .or(file.master_key_file)
                .unwrap_or_else(|| DEFAULT_MASTER_KEY_FILE.to_owned()),
        ),
        log: args.log.or(file.log),
        database_timeout: interactions.commit_patience,
        config_poll: args
            .config_poll_ms
            .or(file.config_poll_ms)
            .filter(|ms| *ms > 0)
            .map_or(DEFAULT_CONFIG_POLL, Duration::from_millis),
        server: Settings {
            listen,
            system_default_provider,
            system_default_model: args
                .system_default_model
                .or(file.system_default_model)
                .unwrap_or_else(|| CLAUDE_HAIKU_4_5.to_owned()),
            max_retention_days,
            max_body_bytes: args
                .max_body_bytes
                .or(file.max_body_bytes)
                .unwrap_or(DEFAULT_MAX_BODY_BYTES),
            egress,
            upstream,
            timeouts,
            stream_idle_timeout,
            upstream_caps,
            body_budget_bytes,
            interactions,
            telemetry: TelemetrySettings {
                org_label: args
                    .metrics_org_label
                    .or(file.metrics_org_label)
                    .unwrap_or(false),
                capture_content: args
                    .otel_capture_content
                    .or(file.otel_capture_content)
                    .unwrap_or(false),
            },
            connections,
            shutdown,
            ops_listen,
        },
    })
}

/// Inbound connection limits: header, body and idle timeouts, the connection cap, header
/// size and count, HTTP/2 streams.
fn connection_limits(args: &SettingArgs, file: &FileSettings) -> Result<ConnectionLimits> {
    let defaults = ConnectionLimits::default();
    let positive = |name: &str, value: Option<usize>, default: usize| match value {
        Some(0) => bail!("{name} must be at least 1"),
        value => Ok(value.unwrap_or(default)),
    };
    let max_header_bytes = positive(
        "SWITCHBOARD_MAX_HEADER_BYTES",
        args.max_header_bytes.or(file.max_header_bytes),
        defaults.max_header_bytes,
    )?;
    if max_header_bytes < MIN_HEADER_BYTES {
        bail!("SWITCHBOARD_MAX_HEADER_BYTES must be at least {MIN_HEADER_BYTES}");
    }
    Ok(ConnectionLimits {
        header_timeout: seconds(
            "SWITCHBOARD_HEADER_TIMEOUT_SECONDS",
            args.header_timeout_seconds.or(file.header_timeout_seconds),
            defaults.header_timeout,
        )?,
        body_timeout: seconds(
            "SWITCHBOARD_BODY_TIMEOUT_SECONDS",
            args.body_timeout_seconds.or(file.body_timeout_seconds),
            defaults.body_timeout,
        )?,
        idle_timeout: seconds(
            "SWITCHBOARD_IDLE_TIMEOUT_SECONDS",
            args.idle_timeout_seconds.or(file.idle_timeout_seconds),
            defaults.idle_timeout,
        )?,
        max_connections: positive(
            "SWITCHBOARD_MAX_CONNECTIONS",
            args.max_connections.or(file.max_connections),
            defaults.max_connections,
        )?,
        max_headers: positive(
            "SWITCHBOARD_MAX_HEADERS",
            args.max_headers.or(file.max_headers),
            defaults.max_headers,
        )?,
        max_header_bytes,
        http2_max_streams: match args.http2_max_streams.or(file.http2_max_streams) {
            Some(0) => bail!("SWITCHBOARD_HTTP2_MAX_STREAMS must be at least 1"),
            value => value.unwrap_or(defaults.http2_max_streams),
        },
    })
}

/// The drain (0 allowed: close the listener at once) and grace periods of a shutdown.
fn shutdown_settings(args: &SettingArgs, file: &FileSettings) -> Result<ShutdownSettings> {
    let defaults = ShutdownSettings::default();
    Ok(ShutdownSettings {
        drain: args
            .shutdown_drain_seconds
            .or(file.shutdown_drain_seconds)
            .map_or(defaults.drain, Duration::from_secs),
        grace: seconds(
            "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS",
            args.shutdown_grace_seconds.or(file.shutdown_grace_seconds),
            defaults.grace,
        )?,
    })
}

/// The recorder queue, the managed provider's limits and the purge interval.
fn interaction_settings(args: &SettingArgs, file: &FileSettings) -> Result<InteractionSettings> {
    let defaults = InteractionSettings::default();
    let limits = LimitSettings {
        requests_per_hour: args
            .managed_requests_per_hour
            .or(file.managed_requests_per_hour)
            .unwrap_or(defaults.limits.requests_per_hour),
        tokens_per_hour: args
            .managed_tokens_per_hour
            .or(file.managed_tokens_per_hour)
            .unwrap_or(defaults.limits.tokens_per_hour),
        monthly_invocations: args
            .managed_monthly_invocations
            .or(file.managed_monthly_invocations)
            .unwrap_or(defaults.limits.monthly_invocations),
    };
    let queue_capacity = args
        .recorder_queue
        .or(file.recorder_queue)
        .unwrap_or(defaults.queue_capacity);
    if queue_capacity == 0 {
        bail!("SWITCHBOARD_RECORDER_QUEUE must be at least 1");
    }
    let purge_interval = args
        .purge_interval_seconds
        .or(file.purge_interval_seconds)
        .map_or(defaults.purge_interval, std::time::Duration::from_secs);
    if purge_interval.is_zero() {
        bail!("SWITCHBOARD_PURGE_INTERVAL_SECONDS must be at least 1");
    }
    let recording = match args.recording.as_deref().or(file.recording.as_deref()) {
        None | Some("durable") => RecordingMode::Durable,
        Some("async") => RecordingMode::Async,
        Some(other) => bail!("SWITCHBOARD_RECORDING must be durable or async, not {other:?}"),
    };
    let commit_patience = seconds(
        "SWITCHBOARD_DATABASE_TIMEOUT_SECONDS",
        args.database_timeout_seconds
            .or(file.database_timeout_seconds),
        defaults.commit_patience,
    )?;
    let stale_after = seconds(
        "SWITCHBOARD_INSTANCE_STALE_SECONDS",
        args.instance_stale_seconds.or(file.instance_stale_seconds),
        defaults.liveness.stale_after,
    )?;
    Ok(InteractionSettings {
        limits,
        limit_store: limit_store_settings(args, file)?,
        recording,
        queue_capacity,
        queue_bytes: args
            .recorder_queue_bytes
            .or(file.recorder_queue_bytes)
            .unwrap_or(defaults.queue_bytes),
        commit_patience,
        purge_interval,
        liveness: LivenessSettings {
            // Several heartbeats fit in the stale bound, so one slow write is not death.
            heartbeat: (stale_after / 5).max(Duration::from_millis(100)),
            stale_after,
        },
    })
}

/// Where the limit counters live: Redis when a URL is given (else PostgreSQL or this
/// process), how long Redis may take, and how long a running reservation holds.
fn limit_store_settings(args: &SettingArgs, file: &FileSettings) -> Result<LimitStoreSettings> {
    let defaults = LimitStoreSettings::default();
    let redis_url = args
        .redis_url
        .clone()
        .or_else(|| file.redis_url.clone())
        .filter(|url| !url.trim().is_empty());
    if let Some(url) = &redis_url
        && !(url.starts_with("redis://")
            || url.starts_with("rediss://")
            || url.starts_with("unix://"))
    {
        bail!("SWITCHBOARD_REDIS_URL must be a redis://, rediss:// or unix:// URL");
    }
    let redis_timeout = match args.redis_timeout_ms.or(file.redis_timeout_ms) {
        None => defaults.redis_timeout,
        Some(0) => bail!("SWITCHBOARD_REDIS_TIMEOUT_MS must be at least 1"),
        Some(ms) => Duration::from_millis(ms),
    };
    let lease = seconds(
        "SWITCHBOARD_LIMIT_LEASE_SECONDS",
        args.limit_lease_seconds.or(file.limit_lease_seconds),
        defaults.lease,
    )?;
    Ok(LimitStoreSettings {
        redis_url,
        redis_timeout,
        lease,
    })
}

/// Outbound timeouts: the response head's and a silent stream's (the body read timeout
/// sits just above the latter, so the gateway's own, better-worded error fires first).
fn upstream_timeouts(args: &SettingArgs, file: &FileSettings) -> Result<(Timeouts, Duration)> {
    let defaults = Timeouts::default();
    let first_byte = seconds(
        "SWITCHBOARD_UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS",
        args.upstream_first_byte_timeout_seconds
            .or(file.upstream_first_byte_timeout_seconds),
        defaults.first_byte,
    )?;
    let stream_idle = seconds(
        "SWITCHBOARD_STREAM_IDLE_TIMEOUT_SECONDS",
        args.stream_idle_timeout_seconds
            .or(file.stream_idle_timeout_seconds),
        Duration::from_secs(60),
    )?;
    let timeouts = Timeouts {
        first_byte,
        idle: stream_idle + Duration::from_secs(1),
        ..defaults
    };
    Ok((timeouts, stream_idle))
}

/// What an upstream may send at most (a whole body, a stream's bytes and duration).
fn upstream_caps(args: &SettingArgs, file: &FileSettings) -> Result<UpstreamCaps> {
    let defaults = UpstreamCaps::default();
    Ok(UpstreamCaps {
        max_body_bytes: positive(
            "SWITCHBOARD_UPSTREAM_MAX_BODY_BYTES",
            args.upstream_max_body_bytes
                .or(file.upstream_max_body_bytes),
            defaults.max_body_bytes,
        )?,
        stream_max_bytes: positive(
            "SWITCHBOARD_STREAM_MAX_BYTES",
            args.stream_max_bytes.or(file.stream_max_bytes),
            defaults.stream_max_bytes,
        )?,
        stream_max_duration: seconds(
            "SWITCHBOARD_STREAM_MAX_SECONDS",
            args.stream_max_seconds.or(file.stream_max_seconds),
            defaults.stream_max_duration,
        )?,
    })
}

/// A positive count, or the default.
fn positive<T: PartialEq + Default>(name: &str, value: Option<T>, default: T) -> Result<T> {
    match value {
        None => Ok(default),
        Some(v) if v == T::default() => bail!("{name} must be at least 1"),
        Some(v) => Ok(v),
    }
}

/// A positive number of seconds, or the default.
fn seconds(name: &str, value: Option<u64>, default: Duration) -> Result<Duration> {
    match value {
        None => Ok(default),
        Some(0) => bail!("{name} must be at least 1"),
        Some(n) => Ok(Duration::from_secs(n)),
    }
}

/// The platform's own AWS keys (to assume customers' Bedrock roles), when both parts are set.
fn aws_base_credentials(
    key_id: Option<String>,
    secret: Option<String>,
    session_token: Option<String>,
) -> Option<AwsKeys> {
    AwsKeys::from_vars(|name| match name {
        switchboard_providers::aws::ENV_ACCESS_KEY_ID => key_id.clone(),
        switchboard_providers::aws::ENV_SECRET_ACCESS_KEY => secret.clone(),
        switchboard_providers::aws::ENV_SESSION_TOKEN => session_token.clone(),
        _ => None,
    })
}

fn read_file(path: &str) -> Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read SWITCHBOARD_CONFIG file {path}"))?;
    toml::from_str(&text).with_context(|| format!("{path} is not a valid settings file"))
}
