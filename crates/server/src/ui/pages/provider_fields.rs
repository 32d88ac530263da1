//! Which form fields each provider type has, and how a posted form becomes a config patch.
//!
//! The rules themselves stay in `switchboard_core::config`: this table only says how to
//! *ask* for each key (label, control, help). Keys the table does not know are left as
//! stored, so a config written through the API never loses a field by a UI save.

use serde_json::{Map, Value, json};
use switchboard_core::ProviderType;

use crate::ui::forms::Fields;
use crate::ui::render::FormError;

/// How a config key is entered.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Control {
    /// A select of the organization's secret names.
    Secret,
    Text,
    Url,
    /// One model name per line (custom-catalog types).
    Models,
    /// `Name: value` per line.
    Headers,
    /// A checkbox.
    Flag,
}

pub struct Spec {
    pub key: &'static str,
    pub label: &'static str,
    pub control: Control,
    pub help: &'static str,
}

const fn s(key: &'static str, label: &'static str, control: Control, help: &'static str) -> Spec {
    Spec {
        key,
        label,
        control,
        help,
    }
}

use Control::{Flag, Headers, Models, Secret, Text, Url};

const API_KEY: Spec = s(
    "apiKeySecretName",
    "API key",
    Secret,
    "The secret holding the API key.",
);
const MODELS: Spec = s(
    "models",
    "Models",
    Models,
    "One model name per line, as the upstream expects it.",
);
const HEADERS: Spec = s(
    "customHeaders",
    "Custom headers",
    Headers,
    "Optional. One header per line as Name: value. Authentication headers are reserved.",
);

const OPENAI: &[Spec] = &[API_KEY];
const AZURE_OPENAI: &[Spec] = &[
    API_KEY,
    s(
        "endpoint",
        "Endpoint",
        Url,
        "Either endpoint + deployment, or resource name + deployment id.",
    ),
    s("deployment", "Deployment", Text, "Used with the endpoint."),
    s(
        "resourceName",
        "Resource name",
        Text,
        "Used with the deployment id (older shape).",
    ),
    s(
        "deploymentId",
        "Deployment id",
        Text,
        "Used with the resource name.",
    ),
    s(
        "apiVersion",
        "API version",
        Text,
        "Optional, e.g. 2024-10-21, v1 or latest.",
    ),
];
const AZURE_ANTHROPIC: &[Spec] = &[
    API_KEY,
    s(
        "endpoint",
        "Endpoint",
        Url,
        "The Azure AI Foundry endpoint.",
    ),
];
const BEDROCK: &[Spec] = &[
    s("region", "Region", Text, "An AWS region such as us-east-1."),
    s(
        "accessKeyIdSecretName",
        "Access key id",
        Secret,
        "One of: access keys, a role to assume, or a Bedrock API key.",
    ),
    s(
        "secretAccessKeySecretName",
        "Secret access key",
        Secret,
        "Used with the access key id.",
    ),
    s(
        "roleArn",
        "Role ARN",
        Text,
        "A role to assume instead of access keys.",
    ),
    s(
        "externalIdSecretName",
        "External id",
        Secret,
        "Optional, with the role.",
    ),
    s(
        "apiKeySecretName",
        "Bedrock API key",
        Secret,
        "Instead of access keys or a role: sent as a bearer token, no signing.",
    ),
    s(
        "guardrailIdentifier",
        "Guardrail id",
        Text,
        "Optional; with the guardrail version.",
    ),
    s(
        "guardrailVersion",
        "Guardrail version",
        Text,
        "DRAFT or a version number.",
    ),
];
const VERTEX_GEMINI: &[Spec] = &[
    s(
        "project",
        "Project",
        Text,
        "Service-account shape: project, location and both secrets.",
    ),
    s(
        "location",
        "Location",
        Text,
        "A region such as us-east5, or global.",
    ),
    s(
        "clientEmailSecretName",
        "Client email",
        Secret,
        "The service account's email.",
    ),
    s(
        "privateKeySecretName",
        "Private key",
        Secret,
        "The service account's private key.",
    ),
    s(
        "apiKeySecretName",
        "API key",
        Secret,
        "Or an API key instead of the service account.",
    ),
    MODELS,
];
const VERTEX_ANTHROPIC: &[Spec] = &[
    s("project", "Project", Text, "The Google Cloud project id."),
    s(
        "location",
        "Location",
        Text,
        "A region such as us-east5, or global.",
    ),
    s(
        "clientEmailSecretName",
        "Client email",
        Secret,
        "The service account's email.",
    ),
    s(
        "privateKeySecretName",
        "Private key",
        Secret,
        "The service account's private key.",
    ),
    MODELS,
];
const OPENAI_COMPATIBLE: &[Spec] = &[
    s(
        "baseUrl",
        "Base URL",
        Url,
        "The https URL requests go to, e.g. https://llm.example.com/v1.",
    ),
    s("apiKeySecretName", "API key", Secret, "Optional."),
    HEADERS,
    MODELS,
    s(
        "supportsStructuredOutputs",
        "Supports structured outputs",
        Flag,
        "The upstream accepts response_format json_schema.",
    ),
];
const ANTHROPIC_COMPATIBLE: &[Spec] = &[
    s("baseUrl", "Base URL", Url, "The https URL requests go to."),
    s(
        "apiKeySecretName",
        "API key",
        Secret,
        "Either an API key or an auth token.",
    ),
    s(
        "authTokenSecretName",
        "Auth token",
        Secret,
        "Sent as a bearer token instead of an API key.",
    ),
    HEADERS,
    MODELS,
];

pub fn specs(provider: ProviderType) -> &'static [Spec] {
    match provider {
        ProviderType::OpenAi | ProviderType::Anthropic => OPENAI,
        ProviderType::AzureOpenAi => AZURE_OPENAI,
        ProviderType::AzureAnthropic => AZURE_ANTHROPIC,
        ProviderType::Bedrock => BEDROCK,
        ProviderType::VertexGemini => VERTEX_GEMINI,
        ProviderType::VertexAnthropic => VERTEX_ANTHROPIC,
        ProviderType::OpenAiCompatible => OPENAI_COMPATIBLE,
        ProviderType::AnthropicCompatible => ANTHROPIC_COMPATIBLE,
        ProviderType::Managed => &[],
    }
}

/// A stored config value as the form shows it.
pub fn shown_value(spec: &Spec, config: &Map<String, Value>) -> String {
    let Some(value) = config.get(spec.key) else {
        return String::new();
    };
    match spec.control {
        Models => value
            .as_array()
            .into_iter()
            .flatten()
            .filter_map(|m| m.get("name")?.as_str())
            .collect::<Vec<_>>()
            .join("\n"),
        Headers => value
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| format!("{k}: {}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join("\n"),
        Flag => String::new(),
        _ => value.as_str().unwrap_or("").to_owned(),
    }
}

/// The posted form as a config patch with the JSON API's PUT semantics: every key the
/// form shows is set, or `null` (removed) when left empty. Custom models keep the details
/// (display name, context window, features) stored for names that are still listed.
pub fn config_patch(
    provider: ProviderType,
    fields: &Fields,
    stored: &Map<String, Value>,
) -> Result<Map<String, Value>, FormError> {
    let mut patch = Map::new();
    for spec in specs(provider) {
        let value = match spec.control {
            Flag => fields.checked(spec.key).then_some(Value::Bool(true)),
            Models => models(fields.text(spec.key), stored.get(spec.key)),
            Headers => headers(fields.text(spec.key))?,
            Secret | Text | Url => Some(fields.text(spec.key))
                .filter(|t| !t.is_empty())
                .map(|t| json!(t)),
        };
        patch.insert(spec.key.to_owned(), value.unwrap_or(Value::Null));
    }
    Ok(patch)
}

/// The model names of the textarea, in order.
pub fn model_lines(text: &str) -> Vec<&str> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect()
}

fn models(text: &str, stored: Option<&Value>) -> Option<Value> {
    let stored: Vec<&Value> = stored
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .collect();
    let list: Vec<Value> = model_lines(text)
        .into_iter()
        .map(|name| {
            stored
                .iter()
                .find(|m| m.get("name").and_then(Value::as_str) == Some(name))
                .map(|m| (*m).clone())
                .unwrap_or_else(|| json!({ "name": name }))
        })
        .collect();
    (!list.is_empty()).then(|| Value::Array(list))
}

/// `Name: value` lines. A malformed line is reported by number, never echoed (it may hold a
/// credential pasted in the wrong place).
fn headers(text: &str) -> Result<Option<Value>, FormError> {
    let mut map = Map::new();
    for (i, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let Some((name, value)) = line.split_once(':') else {
            return Err(FormError::new(
                format!("customHeaders line {} must look like Name: value", i + 1),
                Some("customHeaders"),
            ));
        };
        map.insert(name.trim().to_owned(), json!(value.trim()));
    }
    Ok((!map.is_empty()).then_some(Value::Object(map)))
}

/// Removes the keys a patch clears, for connecting a provider (there is nothing to clear).
pub fn without_nulls(patch: Map<String, Value>) -> Map<String, Value> {
    patch.into_iter().filter(|(_, v)| !v.is_null()).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_but_managed_asks_for_something() {
        for p in ProviderType::ALL {
            assert_eq!(specs(p).is_empty(), p == ProviderType::Managed, "{p}");
        }
    }

    #[test]
    fn custom_models_keep_their_details() {
        let stored = json!({"models": [{"name": "a", "contextWindow": 8}]});
        let stored = stored.as_object().unwrap();
        let fields = Fields::parse(b"baseUrl=https%3A%2F%2Fx.example&models=a%0D%0Ab%0D%0A");
        let patch = config_patch(ProviderType::OpenAiCompatible, &fields, stored).unwrap();
        assert_eq!(
            patch["models"],
            json!([{"name": "a", "contextWindow": 8}, {"name": "b"}])
        );
        assert_eq!(patch["apiKeySecretName"], Value::Null);
        assert_eq!(patch["supportsStructuredOutputs"], Value::Null);
    }

    #[test]
    fn header_lines_parse_and_bad_lines_are_not_echoed() {
        let fields = Fields::parse(b"customHeaders=X-Team%3A+blue%0Asecret-token-here");
        let err = config_patch(ProviderType::OpenAiCompatible, &fields, &Map::new()).unwrap_err();
        assert!(err.message.contains("line 2"));
        assert!(!err.message.contains("secret-token"));
        let ok = Fields::parse(b"customHeaders=X-Team%3A+blue");
        let patch = config_patch(ProviderType::OpenAiCompatible, &ok, &Map::new()).unwrap();
        assert_eq!(patch["customHeaders"], json!({"X-Team": "blue"}));
    }
}
