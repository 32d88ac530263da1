//! Where and how to call a provider: the upstream URL, its authentication headers, the
//! model name the upstream expects, and the wire protocol it speaks. One function per
//! provider type; they differ only in these details, never in the request path's logic.

use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::{Map, Value};
use switchboard_core::catalog::{ManagedUpstream, managed_upstream};
use switchboard_core::config::{azure_openai_deployment, azure_openai_endpoint};
use switchboard_core::{ProviderType, SecretValue};

use crate::auth::UpstreamAuth;

/// The wire protocol an upstream speaks.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WireProtocol {
    /// OpenAI Chat Completions (OpenAI, Azure OpenAI, OpenAI-compatible).
    OpenAiChat,
    /// Anthropic Messages (Anthropic, Azure Anthropic, Anthropic-compatible).
    AnthropicMessages,
    /// Bedrock Converse (`url`) / ConverseStream (`stream_url`): JSON in, JSON or an AWS
    /// event stream out (`switchboard_protocols::bedrock`).
    BedrockConverse,
    /// Gemini generateContent / streamGenerateContent SSE (`switchboard_protocols::gemini`).
    Gemini,
    /// Anthropic Messages on Vertex rawPredict / streamRawPredict: the Anthropic body
    /// without `model` and with the Vertex `anthropic_version`
    /// (`switchboard_protocols::anthropic::vertex_body`); answers are Anthropic-native.
    VertexAnthropic,
}

impl WireProtocol {
    /// Whether streamed answers are AWS event-stream frames (decode raw body bytes with
    /// `bedrock::StreamDecoder`) rather than SSE.
    pub fn streams_event_stream(self) -> bool {
        self == Self::BedrockConverse
    }

    /// Whether answers (whole and streamed) are Anthropic Messages: Anthropic callers can be
    /// passed through (for Vertex after `anthropic::vertex_body`).
    pub fn answers_anthropic(self) -> bool {
        matches!(self, Self::AnthropicMessages | Self::VertexAnthropic)
    }
}

/// The Anthropic API version sent when the caller did not choose one.
pub const ANTHROPIC_VERSION: &str = "2023-06-01";
/// The dated Azure OpenAI API version used when a config names none.
pub const AZURE_DEFAULT_API_VERSION: &str = "2024-10-21";

/// Operator-level upstream settings.
#[derive(Clone, Debug)]
pub struct UpstreamSettings {
    /// Base of the OpenAI API, including `/v1`.
    pub openai_base_url: String,
    /// Base of the Anthropic API, without `/v1`.
    pub anthropic_base_url: String,
    pub managed_openai_key: Option<SecretValue>,
    pub managed_anthropic_key: Option<SecretValue>,
    /// Bedrock Runtime endpoint template (`SWITCHBOARD_BEDROCK_ENDPOINT`); `{region}` is
    /// replaced by the configuration's region.
    pub bedrock_endpoint: String,
    /// STS endpoint template (`SWITCHBOARD_STS_ENDPOINT`), `{region}` likewise.
    pub sts_endpoint: String,
    /// Vertex AI endpoint template (`SWITCHBOARD_VERTEX_ENDPOINT`); `{location}` is the
    /// configuration's location, and `{location}-` is dropped for `global`.
    pub vertex_endpoint: String,
    /// Google OAuth token endpoint (`SWITCHBOARD_GOOGLE_TOKEN_URL`), also the JWT audience.
    pub google_token_url: String,
    /// The platform's base AWS credentials, which sign STS AssumeRole for `roleArn`
    /// configurations (`SWITCHBOARD_AWS_ACCESS_KEY_ID`, `…_SECRET_ACCESS_KEY`,
    /// `…_SESSION_TOKEN`; see [`crate::aws::AwsKeys::from_vars`]).
    pub aws_base_credentials: Option<crate::aws::AwsKeys>,
    /// `RoleSessionName` used when assuming customer roles (shows in their CloudTrail).
    pub aws_role_session_name: String,
}

/// Default of [`UpstreamSettings::bedrock_endpoint`].
pub const DEFAULT_BEDROCK_ENDPOINT: &str = "https://bedrock-runtime.{region}.amazonaws.com";
/// Default of [`UpstreamSettings::sts_endpoint`].
pub const DEFAULT_STS_ENDPOINT: &str = "https://sts.{region}.amazonaws.com";
/// Default of [`UpstreamSettings::vertex_endpoint`].
pub const DEFAULT_VERTEX_ENDPOINT: &str = "https://{location}-aiplatform.googleapis.com";
/// Default of [`UpstreamSettings::google_token_url`].
pub const DEFAULT_GOOGLE_TOKEN_URL: &str = "https://oauth2.googleapis.com/token";

impl Default for UpstreamSettings {
    fn default() -> Self {
        Self {
            openai_base_url: "https://api.openai.com/v1".into(),
            anthropic_base_url: "https://api.anthropic.com".into(),
            managed_openai_key: None,
            managed_anthropic_key: None,
            bedrock_endpoint: DEFAULT_BEDROCK_ENDPOINT.into(),
            sts_endpoint: DEFAULT_STS_ENDPOINT.into(),
            vertex_endpoint: DEFAULT_VERTEX_ENDPOINT.into(),
            google_token_url: DEFAULT_GOOGLE_TOKEN_URL.into(),
            aws_base_credentials: None,
            aws_role_session_name: "switchboard".into(),
        }
    }
}

/// A call ready to be made, minus the body.
#[derive(Clone, Debug)]
pub struct UpstreamTarget {
    pub protocol: WireProtocol,
    /// The full URL of the generation endpoint.
    pub url: String,
    /// The URL to use when streaming (differs from `url` for Bedrock and Vertex).
    pub stream_url: String,
    /// Authentication and provider-specific headers (values marked sensitive).
    pub headers: HeaderMap,
    /// What [`crate::authorize`] must do per request (sign, add a token) beyond `headers`.
    pub auth: UpstreamAuth,
    /// The model name to put in the upstream body (Bedrock and Vertex take it from the URL;
    /// it is still the name the upstream knows the model by).
    pub upstream_model: String,
    /// Bedrock guardrail `(identifier, version)` to put in the Converse body.
    pub guardrail: Option<(String, String)>,
}

impl UpstreamTarget {
    /// A target with static headers whose stream URL is its URL.
    pub(crate) fn simple(
        protocol: WireProtocol,
        url: String,
        headers: HeaderMap,
        upstream_model: String,
    ) -> Self {
        Self {
            protocol,
            stream_url: url.clone(),
            url,
            headers,
            auth: UpstreamAuth::Static,
            upstream_model,
            guardrail: None,
        }
    }

    /// The URL for a streaming or a whole answer.
    pub fn url_for(&self, stream: bool) -> &str {
        if stream { &self.stream_url } else { &self.url }
    }
}

/// Why a target could not be built. Messages are safe to show the caller.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum TargetError {
    #[error("secret '{0}' referenced by the provider configuration does not exist")]
    MissingSecret(String),
    #[error("managed model '{0}' is unavailable: the platform has no key configured for it")]
    ManagedUnavailable(String),
    #[error("the provider configuration is incomplete: {0}")]
    Config(&'static str),
    #[error("provider type '{0}' is not supported by the gateway yet")]
    Unsupported(ProviderType),
}

/// Looks up a secret value by name for the organization being served.
pub trait SecretSource {
    fn secret(&self, name: &str) -> Option<SecretValue>;
}

/// Builds the upstream target for `model` on `provider` with `config`.
pub fn build_target(
    provider: ProviderType,
    config: &Map<String, Value>,
    model: &str,
    settings: &UpstreamSettings,
    secrets: &dyn SecretSource,
) -> Result<UpstreamTarget, TargetError> {
    let cx = Cx { config, secrets };
    match provider {
        ProviderType::OpenAi => openai(
            &settings.openai_base_url,
            cx.secret("apiKeySecretName")?,
            model,
        ),
        ProviderType::Anthropic => anthropic(
            &settings.anthropic_base_url,
            cx.secret("apiKeySecretName")?,
            model,
        ),
        ProviderType::AzureOpenAi => azure_openai(&cx, model),
        ProviderType::AzureAnthropic => azure_anthropic(&cx, model),
        ProviderType::OpenAiCompatible => openai_compatible(&cx, model),
        ProviderType::AnthropicCompatible => anthropic_compatible(&cx, model),
        ProviderType::Managed => managed(settings, model),
        ProviderType::Bedrock => crate::cloud::bedrock(&cx, model, settings),
        ProviderType::VertexGemini => crate::cloud::vertex_gemini(&cx, model, settings),
        ProviderType::VertexAnthropic => crate::cloud::vertex_anthropic(&cx, model, settings),
    }
}

pub(crate) struct Cx<'a> {
    config: &'a Map<String, Value>,
    secrets: &'a dyn SecretSource,
}

impl Cx<'_> {
    pub(crate) fn str(&self, key: &'static str) -> Option<&str> {
        self.config.get(key).and_then(Value::as_str)
    }

    pub(crate) fn required(&self, key: &'static str) -> Result<&str, TargetError> {
        self.str(key).ok_or(TargetError::Config(key))
    }

    /// The value of the secret named by config key `key`.
    pub(crate) fn secret(&self, key: &'static str) -> Result<SecretValue, TargetError> {
        let name = self.required(key)?;
        self.secrets
            .secret(name)
            .ok_or_else(|| TargetError::MissingSecret(name.to_owned()))
    }

    pub(crate) fn optional_secret(
        &self,
        key: &'static str,
    ) -> Result<Option<SecretValue>, TargetError> {
        match self.str(key) {
            Some(_) => self.secret(key).map(Some),
            None => Ok(None),
        }
    }

    /// `customHeaders` (already validated at save time never to touch auth, host, length
    /// or hop-by-hop headers).
    fn custom_headers(&self, headers: &mut HeaderMap) {
        let Some(custom) = self.config.get("customHeaders").and_then(Value::as_object) else {
            return;
        };
        for (name, value) in custom {
            let (Ok(name), Some(Ok(value))) = (
                HeaderName::from_bytes(name.as_bytes()),
                value.as_str().map(HeaderValue::from_str),
            ) else {
                continue;
            };
            headers.insert(name, value);
        }
    }
}

fn join(base: &str, path: &str) -> String {
    format!(
        "{}/{}",
        base.trim_end_matches('/'),
        path.trim_start_matches('/')
    )
}

pub(crate) fn sensitive(value: &SecretValue) -> Result<HeaderValue, TargetError> {
    let mut header =
        HeaderValue::from_str(value.expose()).map_err(|_| TargetError::Config("secret value"))?;
    header.set_sensitive(true);
    Ok(header)
}

pub(crate) fn bearer(value: &SecretValue) -> Result<HeaderValue, TargetError> {
    sensitive(&SecretValue::new(format!("Bearer {}", value.expose())))
}

fn openai(base: &str, key: SecretValue, model: &str) -> Result<UpstreamTarget, TargetError> {
    let mut headers = HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, bearer(&key)?);
    Ok(UpstreamTarget::simple(
        WireProtocol::OpenAiChat,
        join(base, "chat/completions"),
        headers,
        model.to_owned(),
    ))
}

fn anthropic_headers(key_header: (&'static str, HeaderValue)) -> HeaderMap {
    let mut headers = HeaderMap::new();
    headers.insert(key_header.0, key_header.1);
    headers.insert(
        "anthropic-version",
        HeaderValue::from_static(ANTHROPIC_VERSION),
    );
    headers
}

fn anthropic(base: &str, key: SecretValue, model: &str) -> Result<UpstreamTarget, TargetError> {
    Ok(UpstreamTarget::simple(
        WireProtocol::AnthropicMessages,
        join(base, "v1/messages"),
        anthropic_headers(("x-api-key", sensitive(&key)?)),
        model.to_owned(),
    ))
}

/// Dated deployment URLs (`/openai/deployments/{d}/chat/completions?api-version=…`), or the
/// v1 path (`/openai/v1/chat/completions`, body model = deployment) when `apiVersion` is
/// `v1`/`latest`. Either way the deployment picks the model.
fn azure_openai(cx: &Cx<'_>, _model: &str) -> Result<UpstreamTarget, TargetError> {
    let endpoint = azure_openai_endpoint(cx.config).ok_or(TargetError::Config("endpoint"))?;
    let deployment = azure_openai_deployment(cx.config).ok_or(TargetError::Config("deployment"))?;
    let version = cx.str("apiVersion").unwrap_or(AZURE_DEFAULT_API_VERSION);
    let url = if matches!(version, "v1" | "latest") {
        join(&endpoint, "openai/v1/chat/completions")
    } else {
        join(
            &endpoint,
            &format!("openai/deployments/{deployment}/chat/completions?api-version={version}"),
        )
    };
    let mut headers = HeaderMap::new();
    headers.insert("api-key", sensitive(&cx.secret("apiKeySecretName")?)?);
    Ok(UpstreamTarget::simple(
        WireProtocol::OpenAiChat,
        url,
        headers,
        deployment.to_owned(),
    ))
}

/// Microsoft Foundry's Anthropic endpoint: `{endpoint}/v1/messages`, where the endpoint
/// normally ends in `/anthropic`.
fn azure_anthropic(cx: &Cx<'_>, model: &str) -> Result<UpstreamTarget, TargetError> {
    let endpoint = cx.required("endpoint")?;
    let key = cx.secret("apiKeySecretName")?;
    Ok(UpstreamTarget::simple(
        WireProtocol::AnthropicMessages,
        join(endpoint, "v1/messages"),
        anthropic_headers(("x-api-key", sensitive(&key)?)),
        model.to_owned(),
    ))
}

fn openai_compatible(cx: &Cx<'_>, model: &str) -> Result<UpstreamTarget, TargetError> {
    let mut headers = HeaderMap::new();
    cx.custom_headers(&mut headers);
    if let Some(key) = cx.optional_secret("apiKeySecretName")? {
        headers.insert(http::header::AUTHORIZATION, bearer(&key)?);
    }
    Ok(UpstreamTarget::simple(
        WireProtocol::OpenAiChat,
        join(cx.required("baseUrl")?, "chat/completions"),
        headers,
        model.to_owned(),
    ))
}

/// `baseUrl` is the prefix before `/messages`; the key goes as `x-api-key`, a token as a
/// bearer.
fn anthropic_compatible(cx: &Cx<'_>, model: &str) -> Result<UpstreamTarget, TargetError> {
    let auth = match cx.optional_secret("apiKeySecretName")? {
        Some(key) => ("x-api-key", sensitive(&key)?),
        None => ("authorization", bearer(&cx.secret("authTokenSecretName")?)?),
    };
    let mut headers = anthropic_headers(auth);
    cx.custom_headers(&mut headers);
    Ok(UpstreamTarget::simple(
        WireProtocol::AnthropicMessages,
        join(cx.required("baseUrl")?, "messages"),
        headers,
        model.to_owned(),
    ))
}

/// The platform's own keys: GPT models via OpenAI, Claude models via Anthropic.
fn managed(settings: &UpstreamSettings, model: &str) -> Result<UpstreamTarget, TargetError> {
    let unavailable = || TargetError::ManagedUnavailable(model.to_owned());
    match managed_upstream(model).ok_or_else(unavailable)? {
        ManagedUpstream::OpenAi => {
            let key = settings
                .managed_openai_key
                .clone()
                .ok_or_else(unavailable)?;
            openai(&settings.openai_base_url, key, model)
        }
        ManagedUpstream::Anthropic => {
            let key = settings
                .managed_anthropic_key
                .clone()
                .ok_or_else(unavailable)?;
            anthropic(&settings.anthropic_base_url, key, model)
        }
    }
}

/// Whether a managed model can be served with the operator's configured keys.
pub fn managed_available(settings: &UpstreamSettings, model: &str) -> bool {
    match managed_upstream(model) {
        Some(ManagedUpstream::OpenAi) => settings.managed_openai_key.is_some(),
        Some(ManagedUpstream::Anthropic) => settings.managed_anthropic_key.is_some(),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::collections::HashMap;

    struct Secrets(HashMap<&'static str, &'static str>);

    impl SecretSource for Secrets {
        fn secret(&self, name: &str) -> Option<SecretValue> {
            self.0.get(name).map(|v| SecretValue::new((*v).to_owned()))
        }
    }

    fn secrets() -> Secrets {
        Secrets(HashMap::from([("k", "sk-test"), ("t", "tok-test")]))
    }

    fn target(
        provider: ProviderType,
        config: Value,
        model: &str,
    ) -> Result<UpstreamTarget, TargetError> {
        let config = config.as_object().unwrap().clone();
        let settings = UpstreamSettings {
            managed_anthropic_key: Some(SecretValue::new("sk-ant-platform".into())),
            ..UpstreamSettings::default()
        };
        build_target(provider, &config, model, &settings, &secrets())
    }

    fn header<'a>(t: &'a UpstreamTarget, name: &str) -> Option<&'a str> {
        t.headers.get(name).and_then(|v| v.to_str().ok())
    }

    #[test]
    fn openai_and_anthropic_use_operator_base_urls_and_their_auth() {
        let t = target(
            ProviderType::OpenAi,
            json!({"apiKeySecretName":"k"}),
            "gpt-5",
        )
        .unwrap();
        assert_eq!(t.url, "https://api.openai.com/v1/chat/completions");
        assert_eq!(header(&t, "authorization"), Some("Bearer sk-test"));
        assert!(t.headers.get("authorization").unwrap().is_sensitive());
        let t = target(
            ProviderType::Anthropic,
            json!({"apiKeySecretName":"k"}),
            "claude-opus-4-6",
        )
        .unwrap();
        assert_eq!(t.url, "https://api.anthropic.com/v1/messages");
        assert_eq!(header(&t, "x-api-key"), Some("sk-test"));
        assert_eq!(header(&t, "anthropic-version"), Some(ANTHROPIC_VERSION));
    }

    #[test]
    fn azure_openai_dated_and_v1_paths() {
        let dated = target(
            ProviderType::AzureOpenAi,
            json!({"apiKeySecretName":"k","resourceName":"acme","deploymentId":"gpt5-prod"}),
            "gpt-5",
        )
        .unwrap();
        assert_eq!(
            dated.url,
            "https://acme.openai.azure.com/openai/deployments/gpt5-prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(dated.upstream_model, "gpt5-prod");
        assert_eq!(header(&dated, "api-key"), Some("sk-test"));
        let v1 = target(
            ProviderType::AzureOpenAi,
            json!({"apiKeySecretName":"k","endpoint":"https://acme.openai.azure.com/","deployment":"d1","apiVersion":"v1"}),
            "gpt-5",
        )
        .unwrap();
        assert_eq!(
            v1.url,
            "https://acme.openai.azure.com/openai/v1/chat/completions"
        );
        assert_eq!(v1.upstream_model, "d1");
    }

    #[test]
    fn compatible_endpoints_use_base_url_custom_headers_and_chosen_auth() {
        let t = target(
            ProviderType::OpenAiCompatible,
            json!({"baseUrl":"https://llm.example.com/v1","customHeaders":{"x-team":"ml"},"models":[{"name":"m"}]}),
            "m",
        )
        .unwrap();
        assert_eq!(t.url, "https://llm.example.com/v1/chat/completions");
        assert_eq!(header(&t, "x-team"), Some("ml"));
        assert!(t.headers.get("authorization").is_none());
        let t = target(
            ProviderType::AnthropicCompatible,
            json!({"baseUrl":"https://a.example.com/v1","authTokenSecretName":"t","models":[{"name":"m"}]}),
            "m",
        )
        .unwrap();
        assert_eq!(t.url, "https://a.example.com/v1/messages");
        assert_eq!(header(&t, "authorization"), Some("Bearer tok-test"));
        assert!(t.headers.get("x-api-key").is_none());
    }

    #[test]
    fn azure_anthropic_appends_v1_messages() {
        let t = target(
            ProviderType::AzureAnthropic,
            json!({"apiKeySecretName":"k","endpoint":"https://acme.services.ai.azure.com/anthropic"}),
            "claude-sonnet-4-5-20250929",
        )
        .unwrap();
        assert_eq!(
            t.url,
            "https://acme.services.ai.azure.com/anthropic/v1/messages"
        );
        assert_eq!(t.protocol, WireProtocol::AnthropicMessages);
    }

    #[test]
    fn missing_secrets_and_managed_keys_are_reported_not_sent_empty() {
        assert_eq!(
            target(
                ProviderType::OpenAi,
                json!({"apiKeySecretName":"nope"}),
                "gpt-5"
            )
            .unwrap_err(),
            TargetError::MissingSecret("nope".into())
        );
        assert_eq!(
            target(ProviderType::Managed, json!({}), "gpt-5").unwrap_err(),
            TargetError::ManagedUnavailable("gpt-5".into())
        );
        let t = target(
            ProviderType::Managed,
            json!({}),
            "claude-haiku-4-5-20251001",
        )
        .unwrap();
        assert_eq!(header(&t, "x-api-key"), Some("sk-ant-platform"));
    }

    #[test]
    fn cloud_targets_need_their_secrets_and_the_platform_base_credentials() {
        let role = json!({"roleArn":"arn:aws:iam::123456789012:role/r","region":"eu-central-1"});
        assert_eq!(
            target(ProviderType::Bedrock, role, "claude-sonnet-4-20250514").unwrap_err(),
            TargetError::Config("SWITCHBOARD_AWS_ACCESS_KEY_ID")
        );
        let keys = json!({"accessKeyIdSecretName":"k","secretAccessKeySecretName":"nope","region":"eu-central-1"});
        assert_eq!(
            target(ProviderType::Bedrock, keys, "claude-sonnet-4-20250514").unwrap_err(),
            TargetError::MissingSecret("nope".into())
        );
        let keys = json!({"accessKeyIdSecretName":"k","secretAccessKeySecretName":"t","region":"eu-central-1"});
        let t = target(ProviderType::Bedrock, keys, "claude-sonnet-4-20250514").unwrap();
        assert_eq!(
            t.stream_url,
            "https://bedrock-runtime.eu-central-1.amazonaws.com/model/eu.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream"
        );
        assert!(t.protocol.streams_event_stream() && t.guardrail.is_none());
        assert!(
            matches!(t.auth, UpstreamAuth::SigV4(ref s) if s.service == "bedrock" && s.region == "eu-central-1")
        );
        assert_eq!(header(&t, "authorization"), None, "SigV4 signs per request");
        // A Bedrock API key: a bearer header, nothing to sign.
        let api_key = json!({"apiKeySecretName":"k","region":"eu-central-1"});
        let t = target(ProviderType::Bedrock, api_key, "claude-sonnet-4-20250514").unwrap();
        assert!(matches!(t.auth, UpstreamAuth::Static));
        assert_eq!(header(&t, "authorization"), Some("Bearer sk-test"));
        assert!(t.headers["authorization"].is_sensitive());
        assert!(t.url.ends_with("/converse"));
        let missing = json!({"apiKeySecretName":"nope","region":"eu-central-1"});
        assert_eq!(
            target(ProviderType::Bedrock, missing, "claude-sonnet-4-20250514").unwrap_err(),
            TargetError::MissingSecret("nope".into())
        );
        let sa = json!({"clientEmailSecretName":"k","privateKeySecretName":"t","project":"p-123456","location":"global","models":[{"name":"gemini-2.5-pro"}]});
        let t = target(ProviderType::VertexGemini, sa, "gemini-2.5-pro").unwrap();
        assert_eq!(
            t.url,
            "https://aiplatform.googleapis.com/v1/projects/p-123456/locations/global/publishers/google/models/gemini-2.5-pro:generateContent"
        );
        assert!(matches!(t.auth, UpstreamAuth::GoogleServiceAccount(_)));
        assert!(t.headers.is_empty());
    }
}
