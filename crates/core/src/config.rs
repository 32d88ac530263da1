//! Provider configuration rules and the model computations built on them.
//!
//! Each provider type has a strict schema (spec §2): known keys only at every level, typed
//! values, charset allowlists on every value that ends up in a URL, a header or a host name,
//! and "exactly one of" rules for the types with alternative auth modes or shapes. The rules
//! are data ([`Schema`]) checked by small generic functions, so that adding a field is a
//! one-line change and every type gets the same error wording.
//!
//! Errors are `LLMProviderInvalidConfigError` with a caller-facing message and
//! `details.field` naming the offending path (`models[2].supportedFeatures.caching`).
//! Messages never echo a *value*: a user who pastes an API key into `apiKeySecretName`, or
//! a token into a custom header, must not see it reflected into logs or responses.
//!
//! Decisions (documented here because the spec leaves them open):
//! - `CustomModel.name` is 1..=200 characters (the docs' "≥3" is not enforced: a one-letter
//!   alias served by a proxy is legitimate). Names are visible ASCII without spaces because they
//!   travel in the `x-switchboard-model` header; for `vertex-*` they are further limited to
//!   `[A-Za-z0-9._@-]` because they are spliced into the Vertex URL path. Names are unique
//!   within the list, compared exactly (routing is case-sensitive).
//! - `contextWindow` is an integer in 1..=1_000_000_000 (a sanity bound).
//! - Bedrock `guardrailIdentifier` and `guardrailVersion` are both or neither: AWS needs both
//!   to apply a guardrail. The identifier is an id or ARN (`[A-Za-z0-9:/._-]`, ≤ 2048), the
//!   version `DRAFT` or a number, because both may travel in request headers.
//! - Azure `deployment`/`deploymentId` may not be `.` or `..` (they are URL path segments).
//! - `endpoint`/`baseUrl` pass the egress policy and must not carry a query: paths are
//!   appended to them.
//! - `customHeaders` names are compared case-insensitively with `_` treated as `-`, because
//!   some proxies translate underscores; values are printable ASCII (plus tab), ≤ 8 KiB.
//! - `managed` takes no configuration at all.

use crate::catalog::builtin_models;
use crate::egress::EgressPolicy;
use crate::error::PortError;
use crate::provider::ProviderType;
use crate::records::Overrides;
use serde_json::{Map, Value};

/// Keys of a `CustomModel.supportedFeatures` object; each value is a boolean.
pub const SUPPORTED_FEATURES: &[&str] = &[
    "temperature",
    "caching",
    "guardrails",
    "reasoningEffort",
    "nativeStructuredOutput",
    "extendedThinking",
    "adaptiveThinking",
    "supportsStructuredOutputs",
];

/// Config keys that hold upstream URLs and therefore pass the egress policy.
pub const URL_KEYS: &[&str] = &["endpoint", "baseUrl"];

pub const MAX_MODELS: usize = 256;
pub const MAX_MODEL_NAME_LEN: usize = 200;
pub const MAX_CONTEXT_WINDOW: u64 = 1_000_000_000;
pub const MAX_CUSTOM_HEADERS: usize = 32;
const MAX_HEADER_NAME_LEN: usize = 128;
const MAX_HEADER_VALUE_LEN: usize = 8192;
const MAX_SECRET_NAME_LEN: usize = 100;

/// Header names `customHeaders` can never set: credentials (they would override or leak
/// the provider credential), routing/framing and hop-by-hop headers (request smuggling),
/// and cloud-metadata headers (SSRF helpers).
const FORBIDDEN_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "x-api-key",
    "api-key",
    "x-goog-api-key",
    "cookie",
    "host",
    "content-length",
    "transfer-encoding",
    "connection",
    "keep-alive",
    "te",
    "trailer",
    "upgrade",
    "proxy-connection",
    "expect",
    "metadata-flavor",
    "metadata",
];

/// Prefixes of forbidden header names: AWS signing headers, EC2 metadata tokens and HTTP/2
/// pseudo-headers.
const FORBIDDEN_HEADER_PREFIXES: &[&str] = &["x-amz-", "x-aws-ec2-metadata", ":"];

/// What a config value must be.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    SecretName,
    AzureResourceName,
    AzureDeployment,
    AzureApiVersion,
    AwsRegion,
    AwsRoleArn,
    GuardrailId,
    GuardrailVersion,
    GcpProject,
    GcpLocation,
    Url,
    Bool,
    Models,
    Headers,
}

#[derive(Clone, Copy, Debug)]
struct Field {
    key: &'static str,
    kind: Kind,
}

const fn f(key: &'static str, kind: Kind) -> Field {
    Field { key, kind }
}

/// One of several mutually exclusive shapes: `keys` belong to the mode, `required` must all
/// be present once any of its keys is.
#[derive(Clone, Copy, Debug)]
struct Mode {
    keys: &'static [&'static str],
    required: &'static [&'static str],
}

/// A provider type's configuration rules.
#[derive(Clone, Copy, Debug)]
struct Schema {
    fields: &'static [Field],
    required: &'static [&'static str],
    /// When non-empty, exactly one mode must be used.
    modes: &'static [Mode],
    /// Keys that must be given together or not at all.
    pairs: &'static [(&'static str, &'static str)],
}

const API_KEY_ONLY: Schema = Schema {
    fields: &[f("apiKeySecretName", Kind::SecretName)],
    required: &["apiKeySecretName"],
    modes: &[],
    pairs: &[],
};

const AZURE_OPENAI: Schema = Schema {
    fields: &[
        f("apiKeySecretName", Kind::SecretName),
        f("resourceName", Kind::AzureResourceName),
        f("deploymentId", Kind::AzureDeployment),
        f("endpoint", Kind::Url),
        f("deployment", Kind::AzureDeployment),
        f("apiVersion", Kind::AzureApiVersion),
    ],
    required: &["apiKeySecretName"],
    modes: &[
        Mode {
            keys: &["endpoint", "deployment"],
            required: &["endpoint", "deployment"],
        },
        Mode {
            keys: &["resourceName", "deploymentId"],
            required: &["resourceName", "deploymentId"],
        },
    ],
    pairs: &[],
};

const AZURE_ANTHROPIC: Schema = Schema {
    fields: &[
        f("apiKeySecretName", Kind::SecretName),
        f("endpoint", Kind::Url),
    ],
    required: &["apiKeySecretName", "endpoint"],
    modes: &[],
    pairs: &[],
};

const BEDROCK: Schema = Schema {
    fields: &[
        f("accessKeyIdSecretName", Kind::SecretName),
        f("secretAccessKeySecretName", Kind::SecretName),
        f("roleArn", Kind::AwsRoleArn),
        f("externalIdSecretName", Kind::SecretName),
        f("apiKeySecretName", Kind::SecretName),
        f("region", Kind::AwsRegion),
        f("guardrailIdentifier", Kind::GuardrailId),
        f("guardrailVersion", Kind::GuardrailVersion),
    ],
    required: &["region"],
    modes: &[
        Mode {
            keys: &["roleArn", "externalIdSecretName"],
            required: &["roleArn"],
        },
        Mode {
            keys: &["accessKeyIdSecretName", "secretAccessKeySecretName"],
            required: &["accessKeyIdSecretName", "secretAccessKeySecretName"],
        },
        // A Bedrock API key (bearer token, no SigV4).
        Mode {
            keys: &["apiKeySecretName"],
            required: &["apiKeySecretName"],
        },
    ],
    pairs: &[("guardrailIdentifier", "guardrailVersion")],
};

const SERVICE_ACCOUNT_KEYS: &[&str] = &[
    "clientEmailSecretName",
    "privateKeySecretName",
    "project",
    "location",
];

const VERTEX_GEMINI: Schema = Schema {
    fields: &[
        f("clientEmailSecretName", Kind::SecretName),
        f("privateKeySecretName", Kind::SecretName),
        f("project", Kind::GcpProject),
        f("location", Kind::GcpLocation),
        f("apiKeySecretName", Kind::SecretName),
        f("models", Kind::Models),
    ],
    required: &["models"],
    modes: &[
        Mode {
            keys: SERVICE_ACCOUNT_KEYS,
            required: SERVICE_ACCOUNT_KEYS,
        },
        Mode {
            keys: &["apiKeySecretName"],
            required: &["apiKeySecretName"],
        },
    ],
    pairs: &[],
};

const VERTEX_ANTHROPIC: Schema = Schema {
    fields: &[
        f("clientEmailSecretName", Kind::SecretName),
        f("privateKeySecretName", Kind::SecretName),
        f("project", Kind::GcpProject),
        f("location", Kind::GcpLocation),
        f("models", Kind::Models),
    ],
    required: &[
        "clientEmailSecretName",
        "privateKeySecretName",
        "project",
        "location",
        "models",
    ],
    modes: &[],
    pairs: &[],
};

const OPENAI_COMPATIBLE: Schema = Schema {
    fields: &[
        f("baseUrl", Kind::Url),
        f("apiKeySecretName", Kind::SecretName),
        f("customHeaders", Kind::Headers),
        f("models", Kind::Models),
        f("supportsStructuredOutputs", Kind::Bool),
    ],
    required: &["baseUrl", "models"],
    modes: &[],
    pairs: &[],
};

const ANTHROPIC_COMPATIBLE: Schema = Schema {
    fields: &[
        f("baseUrl", Kind::Url),
        f("apiKeySecretName", Kind::SecretName),
        f("authTokenSecretName", Kind::SecretName),
        f("customHeaders", Kind::Headers),
        f("models", Kind::Models),
    ],
    required: &["baseUrl", "models"],
    modes: &[
        Mode {
            keys: &["apiKeySecretName"],
            required: &["apiKeySecretName"],
        },
        Mode {
            keys: &["authTokenSecretName"],
            required: &["authTokenSecretName"],
        },
    ],
    pairs: &[],
};

const MANAGED: Schema = Schema {
    fields: &[],
    required: &[],
    modes: &[],
    pairs: &[],
};

fn schema(provider: ProviderType) -> &'static Schema {
    match provider {
        ProviderType::OpenAi | ProviderType::Anthropic => &API_KEY_ONLY,
        ProviderType::AzureOpenAi => &AZURE_OPENAI,
        ProviderType::AzureAnthropic => &AZURE_ANTHROPIC,
        ProviderType::Bedrock => &BEDROCK,
        ProviderType::VertexGemini => &VERTEX_GEMINI,
        ProviderType::VertexAnthropic => &VERTEX_ANTHROPIC,
        ProviderType::OpenAiCompatible => &OPENAI_COMPATIBLE,
        ProviderType::AnthropicCompatible => &ANTHROPIC_COMPATIBLE,
        ProviderType::Managed => &MANAGED,
    }
}

impl Schema {
    fn kind(&self, key: &str) -> Option<Kind> {
        self.fields.iter().find(|f| f.key == key).map(|f| f.kind)
    }
}

/// Validates a complete provider configuration (after any PUT merge) against its type's
/// schema. URL fields are checked against `egress` here, at save time; the outbound client
/// checks them again at connect time.
pub fn validate_config(
    provider: ProviderType,
    config: &Map<String, Value>,
    egress: &EgressPolicy,
) -> Result<(), PortError> {
    if provider == ProviderType::Managed && !config.is_empty() {
        return Err(invalid(
            "config",
            "the managed provider takes no configuration; config must be {}",
        ));
    }
    let schema = schema(provider);
    let ctx = Ctx { provider, egress };
    for (key, value) in config {
        let kind = schema.kind(key).ok_or_else(|| unknown_key(&shown(key)))?;
        check_value(&ctx, key, kind, value)?;
    }
    check_required(schema.required, config)?;
    check_modes(schema.modes, config)?;
    check_pairs(schema.pairs, config)
}

/// What value checks need besides the value.
struct Ctx<'a> {
    provider: ProviderType,
    egress: &'a EgressPolicy,
}

fn check_value(ctx: &Ctx<'_>, key: &str, kind: Kind, value: &Value) -> Result<(), PortError> {
    match kind {
        Kind::Bool => expect_bool(key, value).map(drop),
        Kind::Models => check_models(ctx.provider, key, value),
        Kind::Headers => check_headers(key, value),
        Kind::Url => check_url(ctx.egress, key, value),
        _ => check_text(key, kind, expect_str(key, value)?),
    }
}

/// Checks a string field against its format rule.
fn check_text(key: &str, kind: Kind, text: &str) -> Result<(), PortError> {
    let (ok, rule) = match kind {
        Kind::SecretName => (
            is_secret_name(text),
            "1-100 characters of A-Z, a-z, 0-9, '_' or '-'",
        ),
        Kind::AzureResourceName => (
            is_azure_resource_name(text),
            "1-63 letters, digits or '-', starting with a letter or digit",
        ),
        Kind::AzureDeployment => (
            is_azure_deployment(text),
            "1-64 characters of A-Z, a-z, 0-9, '.', '_' or '-'",
        ),
        Kind::AzureApiVersion => (
            is_azure_api_version(text),
            "a date YYYY-MM-DD (optionally with -preview), 'v1' or 'latest'",
        ),
        Kind::AwsRegion => (is_aws_region(text), "an AWS region such as 'us-east-1'"),
        Kind::AwsRoleArn => (
            is_aws_role_arn(text),
            "an IAM role ARN such as 'arn:aws:iam::123456789012:role/name'",
        ),
        Kind::GuardrailId => (is_guardrail_id(text), "a guardrail id or ARN"),
        Kind::GuardrailVersion => (is_guardrail_version(text), "'DRAFT' or a version number"),
        Kind::GcpProject => (is_gcp_project(text), "a Google Cloud project id"),
        Kind::GcpLocation => (
            is_gcp_location(text),
            "a Google Cloud region such as 'us-east5', or 'global'",
        ),
        Kind::Url | Kind::Bool | Kind::Models | Kind::Headers => (true, ""),
    };
    match ok {
        true => Ok(()),
        false => Err(invalid(key, format!("{key} is invalid: it must be {rule}"))),
    }
}

fn check_url(egress: &EgressPolicy, key: &str, value: &Value) -> Result<(), PortError> {
    let raw = expect_str(key, value)?;
    let url = egress.check_url(raw).map_err(|e| {
        let err = invalid(key, format!("{key} is not allowed: {e}"));
        match e.block_reason() {
            Some(reason) => err.with_detail("reason", reason.as_str()),
            None => err,
        }
    })?;
    match url.query() {
        Some(_) => Err(invalid(
            key,
            format!("{key} must not contain a query string"),
        )),
        None => Ok(()),
    }
}

fn check_required(required: &[&str], config: &Map<String, Value>) -> Result<(), PortError> {
    match required.iter().find(|k| !config.contains_key(**k)) {
        Some(missing) => Err(required_error(missing)),
        None => Ok(()),
    }
}

/// Exactly one mode must be in use, and it must be complete.
fn check_modes(modes: &[Mode], config: &Map<String, Value>) -> Result<(), PortError> {
    if modes.is_empty() {
        return Ok(());
    }
    let used: Vec<&Mode> = modes
        .iter()
        .filter(|m| m.keys.iter().any(|k| config.contains_key(*k)))
        .collect();
    match used.as_slice() {
        [] => Err(no_mode_error(modes)),
        [mode] => check_required(mode.required, config),
        [first, second, ..] => Err(mixed_modes_error(first, second, config)),
    }
}

fn check_pairs(pairs: &[(&str, &str)], config: &Map<String, Value>) -> Result<(), PortError> {
    for (a, b) in pairs {
        match (config.contains_key(*a), config.contains_key(*b)) {
            (true, false) => return Err(pair_error(b, a)),
            (false, true) => return Err(pair_error(a, b)),
            _ => {}
        }
    }
    Ok(())
}

fn no_mode_error(modes: &[Mode]) -> PortError {
    let shapes: Vec<String> = modes.iter().map(|m| m.required.join(" + ")).collect();
    let first = modes
        .first()
        .and_then(|m| m.required.first())
        .copied()
        .unwrap_or("config");
    invalid(
        first,
        format!("{first} is required (one of: {})", shapes.join(" | ")),
    )
    .with_detail("oneOf", shapes)
}

fn mixed_modes_error(a: &Mode, b: &Mode, config: &Map<String, Value>) -> PortError {
    let present = |m: &Mode| {
        m.keys
            .iter()
            .filter(|k| config.contains_key(**k))
            .copied()
            .collect::<Vec<_>>()
            .join(", ")
    };
    let (pa, pb) = (present(a), present(b));
    let field = b
        .keys
        .iter()
        .find(|k| config.contains_key(**k))
        .copied()
        .unwrap_or("config");
    invalid(
        field,
        format!("config mixes {pa} with {pb}; use exactly one of these shapes"),
    )
}

fn pair_error(missing: &str, present: &str) -> PortError {
    invalid(
        missing,
        format!("{missing} is required when {present} is set"),
    )
}

fn required_error(field: &str) -> PortError {
    invalid(field, format!("{field} is required"))
}

// ---------------------------------------------------------------------------------------
// models

fn check_models(provider: ProviderType, key: &str, value: &Value) -> Result<(), PortError> {
    let list = value.as_array().ok_or_else(|| type_error(key, "array"))?;
    if list.is_empty() || list.len() > MAX_MODELS {
        return Err(invalid(
            key,
            format!("{key} must list between 1 and {MAX_MODELS} models"),
        ));
    }
    let mut seen: Vec<&str> = Vec::with_capacity(list.len());
    for (i, item) in list.iter().enumerate() {
        let path = format!("{key}[{i}]");
        let name = check_model(provider, &path, item)?;
        if seen.contains(&name) {
            return Err(invalid(
                &format!("{path}.name"),
                format!("duplicate model name '{name}'"),
            )
            .with_detail("model", name));
        }
        seen.push(name);
    }
    Ok(())
}

/// Checks one CustomModel and returns its name.
fn check_model<'v>(
    provider: ProviderType,
    path: &str,
    item: &'v Value,
) -> Result<&'v str, PortError> {
    let obj = item.as_object().ok_or_else(|| type_error(path, "object"))?;
    for (key, value) in obj {
        let field = format!("{path}.{key}");
        match key.as_str() {
            "name" => check_model_name(provider, &field, value)?,
            "displayName" => check_display_name(&field, value)?,
            "contextWindow" => check_context_window(&field, value)?,
            "supportedFeatures" => check_features(&field, value)?,
            _ => return Err(unknown_key(&format!("{path}.{}", shown(key)))),
        }
    }
    match obj.get("name").and_then(Value::as_str) {
        Some(name) => Ok(name),
        None => Err(required_error(&format!("{path}.name"))),
    }
}

fn check_model_name(provider: ProviderType, field: &str, value: &Value) -> Result<(), PortError> {
    let name = expect_str(field, value)?;
    let vertex = matches!(
        provider,
        ProviderType::VertexGemini | ProviderType::VertexAnthropic
    );
    let ok = match vertex {
        true => is_vertex_model_name(name),
        false => is_model_name(name),
    };
    let rule = match vertex {
        true => "1-200 characters of A-Z, a-z, 0-9, '.', '_', '@' or '-'",
        false => "1-200 visible ASCII characters without spaces",
    };
    match ok {
        true => Ok(()),
        false => Err(invalid(
            field,
            format!("{field} is invalid: it must be {rule}"),
        )),
    }
}

fn check_display_name(field: &str, value: &Value) -> Result<(), PortError> {
    let text = expect_str(field, value)?;
    let ok = (1..=MAX_MODEL_NAME_LEN).contains(&text.chars().count())
        && !text.chars().any(char::is_control);
    match ok {
        true => Ok(()),
        false => Err(invalid(
            field,
            format!("{field} must be 1-200 characters without control characters"),
        )),
    }
}

fn check_context_window(field: &str, value: &Value) -> Result<(), PortError> {
    match value.as_u64() {
        Some(n) if (1..=MAX_CONTEXT_WINDOW).contains(&n) => Ok(()),
        _ => Err(invalid(
            field,
            format!("{field} must be a positive integer (at most {MAX_CONTEXT_WINDOW})"),
        )),
    }
}

fn check_features(field: &str, value: &Value) -> Result<(), PortError> {
    let obj = value
        .as_object()
        .ok_or_else(|| type_error(field, "object"))?;
    for (key, flag) in obj {
        if !SUPPORTED_FEATURES.contains(&key.as_str()) {
            return Err(unknown_key(&format!("{field}.{}", shown(key))));
        }
        expect_bool(&format!("{field}.{key}"), flag)?;
    }
    Ok(())
}

// ---------------------------------------------------------------------------------------
// custom headers

fn check_headers(key: &str, value: &Value) -> Result<(), PortError> {
    let obj = value.as_object().ok_or_else(|| type_error(key, "object"))?;
    if obj.len() > MAX_CUSTOM_HEADERS {
        return Err(invalid(
            key,
            format!("{key} may hold at most {MAX_CUSTOM_HEADERS} headers"),
        ));
    }
    let mut seen: Vec<String> = Vec::with_capacity(obj.len());
    for (name, header_value) in obj {
        let canonical = check_header_name(key, name)?;
        if seen.contains(&canonical) {
            return Err(invalid(key, format!("{key} sets '{name}' more than once")));
        }
        seen.push(canonical);
        check_header_value(key, name, header_value)?;
    }
    Ok(())
}

/// Returns the comparison form of a permitted header name: lower-case, `_` as `-`.
fn check_header_name(key: &str, name: &str) -> Result<String, PortError> {
    let canonical = name.to_ascii_lowercase().replace('_', "-");
    if is_forbidden_header(&canonical) {
        return Err(invalid(
            key,
            format!(
                "{key} may not set '{}': authentication, host, length, hop-by-hop and metadata headers are reserved",
                shown(name)
            ),
        )
        .with_detail("header", shown(name)));
    }
    if !is_header_token(name) {
        return Err(invalid(
            key,
            format!("{key} contains an invalid header name: names are 1-128 HTTP token characters"),
        ));
    }
    Ok(canonical)
}

fn is_forbidden_header(canonical: &str) -> bool {
    FORBIDDEN_HEADERS.contains(&canonical)
        || FORBIDDEN_HEADER_PREFIXES
            .iter()
            .any(|p| canonical.starts_with(p))
}

fn check_header_value(key: &str, name: &str, value: &Value) -> Result<(), PortError> {
    let field = format!("{key}.{name}");
    let text = expect_str(&field, value)?;
    let ok = text.len() <= MAX_HEADER_VALUE_LEN
        && text
            .bytes()
            .all(|b| b == b'\t' || (0x20..0x7f).contains(&b));
    match ok {
        true => Ok(()),
        false => Err(invalid(
            key,
            format!(
                "{key} value for '{name}' is invalid: printable ASCII only (no CR, LF or NUL), at most {MAX_HEADER_VALUE_LEN} bytes"
            ),
        )),
    }
}

// ---------------------------------------------------------------------------------------
// overrides and models

/// Checks `overrides.models`: every key names a model of this provider (built-in catalog, or
/// `config.models` for the custom-catalog types) and every value is exactly
/// `{"enabled": <bool>}`. Partial maps are fine: unlisted models stay enabled.
pub fn validate_overrides(
    provider: ProviderType,
    config: &Map<String, Value>,
    overrides: &Overrides,
) -> Result<(), PortError> {
    let known = catalog_models(provider, config);
    for (model, toggle) in &overrides.models {
        let field = format!("overrides.models.{}", shown(model));
        if !known.iter().any(|m| m == model) {
            return Err(invalid(
                &field,
                format!("unknown model '{}' for provider '{provider}'", shown(model)),
            )
            .with_detail("model", shown(model)));
        }
        check_toggle(&field, toggle)?;
    }
    Ok(())
}

fn check_toggle(field: &str, toggle: &Value) -> Result<(), PortError> {
    let ok = toggle
        .as_object()
        .is_some_and(|o| o.len() == 1 && o.get("enabled").is_some_and(Value::is_boolean));
    match ok {
        true => Ok(()),
        false => Err(invalid(
            field,
            format!("{field} must be exactly {{\"enabled\": true|false}}"),
        )),
    }
}

/// The provider's models in catalog order: the built-in catalog, or the names of
/// `config.models` for the custom-catalog types. Tolerates an unvalidated config by
/// skipping entries without a string name.
pub fn catalog_models(provider: ProviderType, config: &Map<String, Value>) -> Vec<String> {
    if !provider.has_custom_catalog() {
        return builtin_models(provider)
            .iter()
            .map(|m| (*m).to_owned())
            .collect();
    }
    let mut names: Vec<String> = Vec::new();
    let items = config.get("models").and_then(Value::as_array);
    for name in items
        .into_iter()
        .flatten()
        .filter_map(|m| m.get("name")?.as_str())
    {
        if !names.iter().any(|n| n == name) {
            names.push(name.to_owned());
        }
    }
    names
}

fn is_enabled(overrides: &Overrides, model: &str) -> bool {
    overrides
        .models
        .get(model)
        .and_then(|t| t.get("enabled"))
        .and_then(Value::as_bool)
        .unwrap_or(true)
}

/// `effectiveModels`: every catalog model, in catalog order, as `{"enabled": bool}`;
/// enabled unless an override says otherwise. Overrides of models no longer in the catalog
/// are ignored.
pub fn effective_models(
    provider: ProviderType,
    config: &Map<String, Value>,
    overrides: &Overrides,
) -> Map<String, Value> {
    catalog_models(provider, config)
        .into_iter()
        .map(|m| {
            let enabled = is_enabled(overrides, &m);
            (m, serde_json::json!({ "enabled": enabled }))
        })
        .collect()
}

/// The enabled models in catalog order.
pub fn enabled_models(
    provider: ProviderType,
    config: &Map<String, Value>,
    overrides: &Overrides,
) -> Vec<String> {
    catalog_models(provider, config)
        .into_iter()
        .filter(|m| is_enabled(overrides, m))
        .collect()
}

/// Drops overrides of models that are not in the catalog any more, e.g. after a PUT removed
/// a custom model. The server may call this before [`validate_overrides`] so that shrinking
/// `config.models` does not also require nulling its overrides.
pub fn prune_overrides(
    provider: ProviderType,
    config: &Map<String, Value>,
    overrides: &mut Overrides,
) {
    let known = catalog_models(provider, config);
    overrides.models.retain(|m, _| known.iter().any(|k| k == m));
}

// ---------------------------------------------------------------------------------------
// merging and introspection

/// PUT semantics for `config`: key by key; a key set to `null` is removed, any other value
/// replaces the old one whole (nested `models` and `customHeaders` are not deep-merged).
/// Keys keep their position; new keys go last.
pub fn merge_config(base: &mut Map<String, Value>, patch: &Map<String, Value>) {
    for (key, value) in patch {
        match value {
            Value::Null => {
                base.shift_remove(key);
            }
            _ => {
                base.insert(key.clone(), value.clone());
            }
        }
    }
}

/// PUT semantics for `overrides.models`: per model; a model set to `null` loses its
/// override (back to the default, enabled).
pub fn merge_overrides(base: &mut Overrides, patch: &Overrides) {
    merge_config(&mut base.models, &patch.models);
}

/// The org secret names a config refers to, in schema order, without duplicates. Used to
/// resolve credentials and to refuse deleting a secret in use.
pub fn referenced_secrets(provider: ProviderType, config: &Map<String, Value>) -> Vec<String> {
    let mut names: Vec<String> = Vec::new();
    let secret_fields = schema(provider)
        .fields
        .iter()
        .filter(|f| f.kind == Kind::SecretName);
    for field in secret_fields {
        if let Some(name) = config.get(field.key).and_then(Value::as_str)
            && !names.iter().any(|n| n == name)
        {
            names.push(name.to_owned());
        }
    }
    names
}

/// The URL values of a config that must pass the egress policy (`endpoint`, `baseUrl`), as
/// `(key, url)`. The Azure endpoint derived from `resourceName` is not listed: see
/// [`azure_openai_endpoint`].
pub fn url_fields(config: &Map<String, Value>) -> Vec<(&'static str, String)> {
    URL_KEYS
        .iter()
        .filter_map(|k| Some((*k, config.get(*k)?.as_str()?.to_owned())))
        .collect()
}

/// The Azure OpenAI endpoint of a config: `endpoint` as given, or
/// `https://{resourceName}.openai.azure.com` for the older shape (safe to build because
/// `resourceName` is charset-checked).
pub fn azure_openai_endpoint(config: &Map<String, Value>) -> Option<String> {
    if let Some(endpoint) = config.get("endpoint").and_then(Value::as_str) {
        return Some(endpoint.to_owned());
    }
    let name = config.get("resourceName").and_then(Value::as_str)?;
    is_azure_resource_name(name).then(|| format!("https://{name}.openai.azure.com"))
}

/// The Azure deployment of a config, from either shape.
pub fn azure_openai_deployment(config: &Map<String, Value>) -> Option<&str> {
    config
        .get("deployment")
        .or_else(|| config.get("deploymentId"))
        .and_then(Value::as_str)
}

// ---------------------------------------------------------------------------------------
// errors and value helpers

fn invalid(field: &str, message: impl Into<String>) -> PortError {
    PortError::invalid_config(message).with_detail("field", field)
}

fn unknown_key(path: &str) -> PortError {
    invalid(path, format!("unknown config key '{path}'"))
}

fn type_error(field: &str, expected: &'static str) -> PortError {
    let article = match expected.starts_with(['a', 'o']) {
        true => "an",
        false => "a",
    };
    invalid(field, format!("{field} must be {article} {expected}"))
        .with_detail("expected", expected)
}

fn expect_str<'v>(field: &str, value: &'v Value) -> Result<&'v str, PortError> {
    value.as_str().ok_or_else(|| type_error(field, "string"))
}

fn expect_bool(field: &str, value: &Value) -> Result<bool, PortError> {
    value.as_bool().ok_or_else(|| type_error(field, "boolean"))
}

/// A caller-supplied key made safe to show: at most 64 characters, control characters
/// replaced. Keys are not secret, but they are untrusted text.
fn shown(key: &str) -> String {
    key.chars()
        .take(64)
        .map(|c| if c.is_control() { '?' } else { c })
        .collect()
}

// ---------------------------------------------------------------------------------------
// hand-written matchers (no regex crate in core)

fn all_bytes(text: &str, ok: impl Fn(u8) -> bool) -> bool {
    text.bytes().all(ok)
}

fn len_in(text: &str, min: usize, max: usize) -> bool {
    (min..=max).contains(&text.len())
}

/// `^[A-Za-z0-9_-]{1,100}$`
pub fn is_secret_name(text: &str) -> bool {
    len_in(text, 1, MAX_SECRET_NAME_LEN)
        && all_bytes(text, |b| {
            b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
        })
}

/// `^[a-zA-Z0-9][a-zA-Z0-9-]{0,62}$`
fn is_azure_resource_name(text: &str) -> bool {
    len_in(text, 1, 63)
        && text.as_bytes()[0].is_ascii_alphanumeric()
        && all_bytes(text, |b| b.is_ascii_alphanumeric() || b == b'-')
}

/// `^[A-Za-z0-9._-]{1,64}$`, excluding the path segments `.` and `..`.
fn is_azure_deployment(text: &str) -> bool {
    len_in(text, 1, 64)
        && !text.bytes().all(|b| b == b'.')
        && all_bytes(text, |b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
}

/// `YYYY-MM-DD`, `YYYY-MM-DD-preview`, `v1` or `latest`.
fn is_azure_api_version(text: &str) -> bool {
    if text == "v1" || text == "latest" {
        return true;
    }
    let date = text.strip_suffix("-preview").unwrap_or(text);
    is_date(date)
}

fn is_date(text: &str) -> bool {
    let parts: Vec<&str> = text.split('-').collect();
    let number = |s: &str, len: usize| {
        (s.len() == len && all_bytes(s, |b| b.is_ascii_digit())).then(|| s.parse::<u32>().ok())
    };
    match parts.as_slice() {
        [y, m, d] => matches!(
            (number(y, 4), number(m, 2), number(d, 2)),
            (Some(Some(_)), Some(Some(1..=12)), Some(Some(1..=31)))
        ),
        _ => false,
    }
}

/// `^[a-z]{2}-[a-z]+-\d{1}$` (the `[a-z]+` part capped at 20 letters).
fn is_aws_region(text: &str) -> bool {
    let lower = |s: &str| all_bytes(s, |b| b.is_ascii_lowercase());
    match text.split('-').collect::<Vec<_>>().as_slice() {
        [geo, area, n] => {
            geo.len() == 2
                && lower(geo)
                && len_in(area, 1, 20)
                && lower(area)
                && n.len() == 1
                && all_digits(n)
        }
        _ => false,
    }
}

fn all_digits(s: &str) -> bool {
    all_bytes(s, |b| b.is_ascii_digit())
}

/// `^arn:aws:iam::\d{12}:role/[\w+=,.@-]+$` (the role part capped at 512 characters).
fn is_aws_role_arn(text: &str) -> bool {
    let Some(rest) = text.strip_prefix("arn:aws:iam::") else {
        return false;
    };
    let Some((account, role)) = rest.split_once(":role/") else {
        return false;
    };
    account.len() == 12
        && all_digits(account)
        && len_in(role, 1, 512)
        && all_bytes(role, |b| {
            b.is_ascii_alphanumeric() || b"_+=,.@-".contains(&b)
        })
}

/// A guardrail id (`[a-z0-9]+`) or ARN: `[A-Za-z0-9:/._-]`, at most 2048 characters.
fn is_guardrail_id(text: &str) -> bool {
    len_in(text, 1, 2048) && all_bytes(text, |b| b.is_ascii_alphanumeric() || b":/._-".contains(&b))
}

/// `DRAFT` or `^[1-9][0-9]{0,7}$`.
fn is_guardrail_version(text: &str) -> bool {
    text == "DRAFT" || (len_in(text, 1, 8) && all_digits(text) && !text.starts_with('0'))
}

/// `^[a-z][a-z0-9-]{4,28}[a-z0-9]$`
fn is_gcp_project(text: &str) -> bool {
    let bytes = text.as_bytes();
    len_in(text, 6, 30)
        && bytes[0].is_ascii_lowercase()
        && bytes[bytes.len() - 1] != b'-'
        && all_bytes(text, |b| {
            b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-'
        })
}

/// `^[a-z]+-[a-z]+[0-9]+$` or `global` (at most 40 characters). The location is spliced
/// into the Vertex host name, so nothing else may pass.
fn is_gcp_location(text: &str) -> bool {
    if text == "global" {
        return true;
    }
    let Some((geo, rest)) = text.split_once('-') else {
        return false;
    };
    let letters = rest.trim_end_matches(|c: char| c.is_ascii_digit());
    len_in(text, 1, 40)
        && !geo.is_empty()
        && all_bytes(geo, |b| b.is_ascii_lowercase())
        && !letters.is_empty()
        && letters.len() < rest.len()
        && all_bytes(letters, |b| b.is_ascii_lowercase())
}

/// 1-200 visible ASCII characters (no spaces or controls): names travel in headers.
fn is_model_name(text: &str) -> bool {
    len_in(text, 1, MAX_MODEL_NAME_LEN) && all_bytes(text, |b| b.is_ascii_graphic())
}

/// Vertex model ids: `[A-Za-z0-9._@-]`, not `.`/`..`; they are URL path segments.
fn is_vertex_model_name(text: &str) -> bool {
    len_in(text, 1, MAX_MODEL_NAME_LEN)
        && !text.bytes().all(|b| b == b'.')
        && all_bytes(text, |b| b.is_ascii_alphanumeric() || b"._@-".contains(&b))
}

/// An RFC 9110 token: 1-128 of `!#$%&'*+-.^_`|~`, letters and digits.
fn is_header_token(text: &str) -> bool {
    len_in(text, 1, MAX_HEADER_NAME_LEN)
        && all_bytes(text, |b| {
            b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matchers() {
        assert!(is_secret_name("openai-api-key") && is_secret_name("A_b-9"));
        assert!(!is_secret_name("") && !is_secret_name("a b") && !is_secret_name(&"a".repeat(101)));
        assert!(is_azure_resource_name("my-res1") && !is_azure_resource_name("-x"));
        assert!(!is_azure_resource_name("evil.org#") && !is_azure_resource_name(&"a".repeat(64)));
        assert!(
            is_azure_deployment("gpt-5.chat_1")
                && !is_azure_deployment("..")
                && !is_azure_deployment("a/b")
        );
        for v in ["2024-10-21", "2025-04-01-preview", "v1", "latest"] {
            assert!(is_azure_api_version(v), "{v}");
        }
        for v in [
            "2024-13-01",
            "2024-1-01",
            "24-10-21",
            "2024-10-21-beta",
            "v2",
            "",
            "2024-10-00",
        ] {
            assert!(!is_azure_api_version(v), "{v}");
        }
        for r in ["us-east-1", "eu-central-1", "ap-southeast-2"] {
            assert!(is_aws_region(r), "{r}");
        }
        for r in [
            "us-east-10",
            "useast-1",
            "US-east-1",
            "us-gov-west-1",
            "us--1",
            "us-east-",
        ] {
            assert!(!is_aws_region(r), "{r}");
        }
        assert!(is_aws_role_arn(
            "arn:aws:iam::123456789012:role/Bedrock_Role+=,.@-1"
        ));
        for a in [
            "arn:aws:iam::12345678901:role/x",
            "arn:aws:iam::123456789012:user/x",
            "arn:aws:iam::123456789012:role/",
            "arn:aws:iam::123456789012:role/a/b",
            "arn:aws-cn:iam::123456789012:role/x",
        ] {
            assert!(!is_aws_role_arn(a), "{a}");
        }
        assert!(
            is_guardrail_version("DRAFT")
                && is_guardrail_version("12")
                && !is_guardrail_version("01")
        );
        assert!(
            is_guardrail_id("abc123")
                && is_guardrail_id("arn:aws:bedrock:us-east-1:123456789012:guardrail/abc")
        );
        assert!(!is_guardrail_id("a b") && !is_guardrail_id("a\r\nb"));
        assert!(
            is_gcp_project("my-project-1")
                && !is_gcp_project("1project")
                && !is_gcp_project("proj-")
                && !is_gcp_project("short")
        );
        for l in [
            "us-east5",
            "europe-west1",
            "global",
            "northamerica-northeast1",
        ] {
            assert!(is_gcp_location(l), "{l}");
        }
        for l in [
            "us-east",
            "us5",
            "US-east5",
            "us-east5.evil.com",
            "-east5",
            "us-5",
            "",
        ] {
            assert!(!is_gcp_location(l), "{l}");
        }
        assert!(
            is_header_token("X-Custom_1") && !is_header_token("a b") && !is_header_token(":path")
        );
    }
}
