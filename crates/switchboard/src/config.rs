//! Resolves process settings: flag or environment variable first, then the TOML file named
//! by `SWITCHBOARD_CONFIG`, then the built-in default.

use std::net::SocketAddr;
use std::path::PathBuf;

use anyhow::{Context, Result, bail};
use serde::Deserialize;
use switchboard_core::catalog::CLAUDE_HAIKU_4_5;
use switchboard_core::egress::EgressPolicy;
use switchboard_core::{ProviderType, SecretValue};
use switchboard_providers::{Timeouts, UpstreamSettings};
use switchboard_server::Settings;

use crate::cli::SettingArgs;

pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";
pub const DEFAULT_DATABASE_URL: &str = "sqlite://switchboard-data/switchboard.db";
pub const DEFAULT_MASTER_KEY_FILE: &str = "switchboard-data/master.key";
const DEFAULT_MAX_BODY_BYTES: usize = 32 * 1024 * 1024;
const DEFAULT_RETENTION_DAYS: u32 = 30;

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
}

/// Every setting with its final value.
pub struct Resolved {
    pub database_url: String,
    pub master_key: Option<String>,
    pub master_key_file: PathBuf,
    pub log: Option<String>,
    pub server: Settings,
}

pub fn resolve(args: SettingArgs) -> Result<Resolved> {
    let file = match &args.config {
        Some(path) => read_file(path)?,
        None => FileSettings::default(),
    };
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
    };
    // Bedrock, STS, Vertex and Google token endpoints are accepted now and take effect
    // with the native Bedrock and Vertex adapters.
    let _ = (
        args.bedrock_endpoint.or(file.bedrock_endpoint),
        args.sts_endpoint.or(file.sts_endpoint),
        args.vertex_endpoint.or(file.vertex_endpoint),
        args.google_token_url.or(file.google_token_url),
    );
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
            timeouts: Timeouts::default(),
        },
    })
}

fn read_file(path: &str) -> Result<FileSettings> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read SWITCHBOARD_CONFIG file {path}"))?;
    toml::from_str(&text).with_context(|| format!("{path} is not a valid settings file"))
}
