//! Command-line definitions. Every process setting is a flag, an environment variable and a
//! key of the optional TOML file named by `SWITCHBOARD_CONFIG`.

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "switchboard",
    version,
    about = "Self-hosted LLM provider management and gateway"
)]
pub struct Cli {
    #[command(flatten)]
    pub settings: SettingArgs,
    #[command(subcommand)]
    pub command: Command,
}

/// Process settings. `None` here means "not given as a flag or variable": the TOML file and
/// then the built-in default decide.
#[derive(Args, Default, Clone)]
pub struct SettingArgs {
    /// TOML file with any of the settings below (keys are the variable names without the
    /// `SWITCHBOARD_` prefix, lowercased).
    #[arg(long, env = "SWITCHBOARD_CONFIG", global = true)]
    pub config: Option<String>,
    #[arg(long, env = "SWITCHBOARD_LISTEN", global = true)]
    pub listen: Option<String>,
    #[arg(long, env = "SWITCHBOARD_DATABASE_URL", global = true)]
    pub database_url: Option<String>,
    /// base64 of 32 bytes, or `version:base64` entries separated by commas.
    #[arg(
        long,
        env = "SWITCHBOARD_MASTER_KEY",
        global = true,
        hide_env_values = true
    )]
    pub master_key: Option<String>,
    #[arg(long, env = "SWITCHBOARD_MASTER_KEY_FILE", global = true)]
    pub master_key_file: Option<String>,
    #[arg(long, env = "SWITCHBOARD_EGRESS_ALLOW", global = true)]
    pub egress_allow: Option<String>,
    #[arg(long, env = "SWITCHBOARD_EGRESS_ALLOW_HTTP", global = true)]
    pub egress_allow_http: Option<bool>,
    #[arg(long, env = "SWITCHBOARD_SYSTEM_DEFAULT_PROVIDER", global = true)]
    pub system_default_provider: Option<String>,
    #[arg(long, env = "SWITCHBOARD_SYSTEM_DEFAULT_MODEL", global = true)]
    pub system_default_model: Option<String>,
    #[arg(long, env = "SWITCHBOARD_RETENTION_DAYS", global = true)]
    pub retention_days: Option<u32>,
    #[arg(long, env = "SWITCHBOARD_LOG", global = true)]
    pub log: Option<String>,
    #[arg(long, env = "SWITCHBOARD_MAX_BODY_BYTES", global = true)]
    pub max_body_bytes: Option<usize>,
    #[arg(long, env = "SWITCHBOARD_OPENAI_BASE_URL", global = true)]
    pub openai_base_url: Option<String>,
    #[arg(long, env = "SWITCHBOARD_ANTHROPIC_BASE_URL", global = true)]
    pub anthropic_base_url: Option<String>,
    #[arg(long, env = "SWITCHBOARD_BEDROCK_ENDPOINT", global = true)]
    pub bedrock_endpoint: Option<String>,
    #[arg(long, env = "SWITCHBOARD_STS_ENDPOINT", global = true)]
    pub sts_endpoint: Option<String>,
    #[arg(long, env = "SWITCHBOARD_VERTEX_ENDPOINT", global = true)]
    pub vertex_endpoint: Option<String>,
    #[arg(long, env = "SWITCHBOARD_GOOGLE_TOKEN_URL", global = true)]
    pub google_token_url: Option<String>,
    #[arg(
        long,
        env = "SWITCHBOARD_MANAGED_OPENAI_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub managed_openai_api_key: Option<String>,
    /// Managed provider: requests per organization per rolling hour.
    #[arg(long, env = "SWITCHBOARD_MANAGED_REQUESTS_PER_HOUR", global = true)]
    pub managed_requests_per_hour: Option<u64>,
    /// Managed provider: tokens (input + output) per organization per rolling hour.
    #[arg(long, env = "SWITCHBOARD_MANAGED_TOKENS_PER_HOUR", global = true)]
    pub managed_tokens_per_hour: Option<u64>,
    /// Managed provider: invocations per organization per calendar month (UTC).
    #[arg(long, env = "SWITCHBOARD_MANAGED_MONTHLY_INVOCATIONS", global = true)]
    pub managed_monthly_invocations: Option<u64>,
    /// Invocations in flight or waiting to be recorded, at most; beyond it requests get
    /// 503 with Retry-After.
    #[arg(long, env = "SWITCHBOARD_RECORDER_QUEUE", global = true)]
    pub recorder_queue: Option<usize>,
    /// How often expired interaction content is purged, in seconds.
    #[arg(long, env = "SWITCHBOARD_PURGE_INTERVAL_SECONDS", global = true)]
    pub purge_interval_seconds: Option<u64>,
    /// How often configuration changes are polled, in milliseconds (the backstop of
    /// PostgreSQL's change notifications).
    #[arg(long, env = "SWITCHBOARD_CONFIG_POLL_MS", global = true)]
    pub config_poll_ms: Option<u64>,
    /// Redis for the managed-provider limits shared by every replica (`redis://…`).
    #[arg(
        long,
        env = "SWITCHBOARD_REDIS_URL",
        global = true,
        hide_env_values = true
    )]
    pub redis_url: Option<String>,
    /// The longest a Redis call may take before the fallback counters answer (ms).
    #[arg(long, env = "SWITCHBOARD_REDIS_TIMEOUT_MS", global = true)]
    pub redis_timeout_ms: Option<u64>,
    /// A limit reservation not settled within this is released: its process died (s).
    #[arg(long, env = "SWITCHBOARD_LIMIT_LEASE_SECONDS", global = true)]
    pub limit_lease_seconds: Option<u64>,
    /// `durable` (the end of an answer waits for its record) or `async`.
    #[arg(long, env = "SWITCHBOARD_RECORDING", global = true)]
    pub recording: Option<String>,
    /// Bytes of interaction content waiting to be recorded, at most.
    #[arg(long, env = "SWITCHBOARD_RECORDER_QUEUE_BYTES", global = true)]
    pub recorder_queue_bytes: Option<usize>,
    /// The deadline of every database call made while serving a request, in seconds.
    #[arg(long, env = "SWITCHBOARD_DATABASE_TIMEOUT_SECONDS", global = true)]
    pub database_timeout_seconds: Option<u64>,
    /// A process whose heartbeat is older than this is dead; its running invocations are
    /// recorded as interrupted (seconds).
    #[arg(long, env = "SWITCHBOARD_INSTANCE_STALE_SECONDS", global = true)]
    pub instance_stale_seconds: Option<u64>,
    /// An upstream that sends no response head within this: 504 `upstream_timeout`.
    #[arg(
        long,
        env = "SWITCHBOARD_UPSTREAM_FIRST_BYTE_TIMEOUT_SECONDS",
        global = true
    )]
    pub upstream_first_byte_timeout_seconds: Option<u64>,
    /// An upstream stream silent this long is ended with an error event.
    #[arg(long, env = "SWITCHBOARD_STREAM_IDLE_TIMEOUT_SECONDS", global = true)]
    pub stream_idle_timeout_seconds: Option<u64>,
    /// Label the data plane's metrics by organization too (one series per organization).
    #[arg(long, env = "SWITCHBOARD_METRICS_ORG_LABEL", global = true)]
    pub metrics_org_label: Option<bool>,
    /// Put prompt and answer text into trace spans (only of organizations that keep content).
    #[arg(long, env = "SWITCHBOARD_OTEL_CAPTURE_CONTENT", global = true)]
    pub otel_capture_content: Option<bool>,
    /// A whole (non-streaming) upstream answer larger than this many bytes: 502.
    #[arg(long, env = "SWITCHBOARD_UPSTREAM_MAX_BODY_BYTES", global = true)]
    pub upstream_max_body_bytes: Option<usize>,
    /// An upstream stream longer than this many bytes in total ends with an error event.
    #[arg(long, env = "SWITCHBOARD_STREAM_MAX_BYTES", global = true)]
    pub stream_max_bytes: Option<u64>,
    /// An upstream stream still running after this many seconds ends with an error event.
    #[arg(long, env = "SWITCHBOARD_STREAM_MAX_SECONDS", global = true)]
    pub stream_max_seconds: Option<u64>,
    /// Inference request bodies being read at once share this many bytes; beyond it: 503.
    #[arg(long, env = "SWITCHBOARD_BODY_BUDGET_BYTES", global = true)]
    pub body_budget_bytes: Option<usize>,
    #[arg(
        long,
        env = "SWITCHBOARD_MANAGED_ANTHROPIC_API_KEY",
        global = true,
        hide_env_values = true
    )]
    pub managed_anthropic_api_key: Option<String>,
    /// A connection that has not sent its request head within this is closed (seconds).
    #[arg(long, env = "SWITCHBOARD_HEADER_TIMEOUT_SECONDS", global = true)]
    pub header_timeout_seconds: Option<u64>,
    /// A request body not fully received within this is answered 408 (seconds).
    #[arg(long, env = "SWITCHBOARD_BODY_TIMEOUT_SECONDS", global = true)]
    pub body_timeout_seconds: Option<u64>,
    /// An idle keep-alive connection is closed after this (seconds).
    #[arg(long, env = "SWITCHBOARD_IDLE_TIMEOUT_SECONDS", global = true)]
    pub idle_timeout_seconds: Option<u64>,
    /// Open client connections at most; beyond it new ones are closed at once.
    #[arg(long, env = "SWITCHBOARD_MAX_CONNECTIONS", global = true)]
    pub max_connections: Option<usize>,
    /// Request header fields at most (more: 431).
    #[arg(long, env = "SWITCHBOARD_MAX_HEADERS", global = true)]
    pub max_headers: Option<usize>,
    /// Bytes of a request head at most (more: 431).
    #[arg(long, env = "SWITCHBOARD_MAX_HEADER_BYTES", global = true)]
    pub max_header_bytes: Option<usize>,
    /// Concurrent streams per HTTP/2 connection.
    #[arg(long, env = "SWITCHBOARD_HTTP2_MAX_STREAMS", global = true)]
    pub http2_max_streams: Option<u32>,
    /// On SIGTERM: seconds between readiness failing and the listener closing.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_DRAIN_SECONDS", global = true)]
    pub shutdown_drain_seconds: Option<u64>,
    /// On SIGTERM: seconds in-flight requests get once the listener is closed.
    #[arg(long, env = "SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", global = true)]
    pub shutdown_grace_seconds: Option<u64>,
    /// Also serve /healthz, /readyz and /metrics here, on connections of their own.
    #[arg(long, env = "SWITCHBOARD_OPS_LISTEN", global = true)]
    pub ops_listen: Option<String>,
    /// The platform's AWS identity that assumes customers' Bedrock roles.
    #[arg(long, env = "SWITCHBOARD_AWS_ACCESS_KEY_ID", global = true)]
    pub aws_access_key_id: Option<String>,
    #[arg(
        long,
        env = "SWITCHBOARD_AWS_SECRET_ACCESS_KEY",
        global = true,
        hide_env_values = true
    )]
    pub aws_secret_access_key: Option<String>,
    #[arg(
        long,
        env = "SWITCHBOARD_AWS_SESSION_TOKEN",
        global = true,
        hide_env_values = true
    )]
    pub aws_session_token: Option<String>,
}

#[derive(Subcommand)]
pub enum Command {
    /// Run the server.
    Serve,
    /// Run the server together with the built-in provider simulator.
    Demo,
    /// Apply schema migrations and exit.
    Migrate,
    /// Organizations.
    #[command(subcommand)]
    Org(OrgCommand),
    /// Users.
    #[command(subcommand)]
    User(UserCommand),
    /// API tokens.
    #[command(subcommand)]
    Token(TokenCommand),
    /// The audit log.
    #[command(subcommand)]
    Audit(AuditCommand),
    /// Master and data keys.
    #[command(subcommand)]
    Keys(KeysCommand),
    /// Print the OpenAPI document of the HTTP API.
    Openapi,
    /// Run the provider simulator alone (for tests, demos and benchmarks).
    Mock(MockArgs),
}

#[derive(Args)]
pub struct MockArgs {
    #[arg(long, default_value = "127.0.0.1:9090")]
    pub listen: String,
    /// Only this OpenAI key is accepted (default: any non-empty key).
    #[arg(long)]
    pub openai_key: Option<String>,
    #[arg(long)]
    pub anthropic_key: Option<String>,
    #[arg(long)]
    pub azure_key: Option<String>,
    #[arg(long)]
    pub aws_access_key_id: Option<String>,
    #[arg(long)]
    pub aws_secret_access_key: Option<String>,
    /// The only Bedrock API key (Bearer) accepted; without it any non-empty key is.
    #[arg(long)]
    pub bedrock_api_key: Option<String>,
    /// PEM file with the public key that Google token requests must be signed for.
    #[arg(long)]
    pub google_public_key_file: Option<std::path::PathBuf>,
    /// The only Vertex Express Mode key accepted.
    #[arg(long)]
    pub google_api_key: Option<String>,
    /// Delay before each response head, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub latency_ms: u64,
    /// Delay between stream chunks, in milliseconds.
    #[arg(long, default_value_t = 0)]
    pub chunk_delay_ms: u64,
    /// Exact number of content chunks per streamed answer.
    #[arg(long)]
    pub chunks: Option<usize>,
}

#[derive(Subcommand)]
pub enum OrgCommand {
    /// Create an organization and its first admin.
    Create {
        name: String,
        #[arg(long)]
        admin_email: String,
        #[arg(long)]
        admin_password: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum UserCommand {
    /// Create a user in an organization.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: String,
        #[arg(long)]
        password: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Change a user's role or disable / enable them (the organization's last active admin
    /// cannot be demoted or disabled).
    Update {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        #[arg(long)]
        role: Option<String>,
        #[arg(long, action = clap::ArgAction::Set)]
        disabled: Option<bool>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum TokenCommand {
    /// Issue a new API token for a user.
    Create {
        #[arg(long)]
        org: String,
        #[arg(long)]
        email: String,
        /// A label to recognise the token by.
        #[arg(long)]
        name: Option<String>,
        /// The token stops working after this many days (1-365); without it, when revoked.
        #[arg(long)]
        expires_in_days: Option<u32>,
        #[arg(long)]
        json: bool,
    },
    /// Revoke one token (its id is in `GET /v1/tokens` and in the audit log).
    Revoke {
        #[arg(long)]
        org: String,
        #[arg(long)]
        id: String,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum AuditCommand {
    /// Recompute every organization's audit hash chain.
    Verify {
        #[arg(long)]
        org: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

#[derive(Subcommand)]
pub enum KeysCommand {
    /// Add a master-key version (key file) and re-wrap every data key under the newest
    /// version. Safe to interrupt and run again.
    Rotate {
        /// Re-wrap under the newest version already configured instead of adding one.
        #[arg(long)]
        no_new_version: bool,
        #[arg(long, default_value_t = 100)]
        batch: u32,
        #[arg(long)]
        json: bool,
    },
}
