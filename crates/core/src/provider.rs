//! The provider types an organization can connect.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// A provider type. The type string is also the provider's identity inside an
/// organization: there is at most one provider of each type per organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub enum ProviderType {
    #[serde(rename = "openai")]
    OpenAi,
    #[serde(rename = "anthropic")]
    Anthropic,
    #[serde(rename = "azure-openai")]
    AzureOpenAi,
    #[serde(rename = "azure-anthropic")]
    AzureAnthropic,
    #[serde(rename = "bedrock")]
    Bedrock,
    #[serde(rename = "vertex-gemini")]
    VertexGemini,
    #[serde(rename = "vertex-anthropic")]
    VertexAnthropic,
    #[serde(rename = "openai-compatible")]
    OpenAiCompatible,
    #[serde(rename = "anthropic-compatible")]
    AnthropicCompatible,
    /// The platform's own infrastructure: built in, never deleted, may be disabled.
    #[serde(rename = "managed")]
    Managed,
}

impl ProviderType {
    /// Every type, in the contract's order. Model-only resolution walks this order.
    pub const ALL: [ProviderType; 10] = [
        ProviderType::OpenAi,
        ProviderType::Anthropic,
        ProviderType::AzureOpenAi,
        ProviderType::AzureAnthropic,
        ProviderType::Bedrock,
        ProviderType::VertexGemini,
        ProviderType::VertexAnthropic,
        ProviderType::OpenAiCompatible,
        ProviderType::AnthropicCompatible,
        ProviderType::Managed,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProviderType::OpenAi => "openai",
            ProviderType::Anthropic => "anthropic",
            ProviderType::AzureOpenAi => "azure-openai",
            ProviderType::AzureAnthropic => "azure-anthropic",
            ProviderType::Bedrock => "bedrock",
            ProviderType::VertexGemini => "vertex-gemini",
            ProviderType::VertexAnthropic => "vertex-anthropic",
            ProviderType::OpenAiCompatible => "openai-compatible",
            ProviderType::AnthropicCompatible => "anthropic-compatible",
            ProviderType::Managed => "managed",
        }
    }

    /// Types whose models come from the organization's own `config.models` catalog
    /// rather than the built-in one.
    pub fn has_custom_catalog(self) -> bool {
        matches!(
            self,
            ProviderType::VertexGemini
                | ProviderType::VertexAnthropic
                | ProviderType::OpenAiCompatible
                | ProviderType::AnthropicCompatible
        )
    }
}

impl fmt::Display for ProviderType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The string named no provider type.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown provider type '{0}'")]
pub struct UnknownProviderType(pub String);

impl FromStr for ProviderType {
    type Err = UnknownProviderType;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ProviderType::ALL
            .into_iter()
            .find(|p| p.as_str() == s)
            .ok_or_else(|| UnknownProviderType(s.to_owned()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_type_round_trips_through_its_wire_name() {
        for p in ProviderType::ALL {
            assert_eq!(p.as_str().parse::<ProviderType>(), Ok(p));
            let json = serde_json::to_string(&p).unwrap();
            assert_eq!(json, format!("\"{}\"", p.as_str()));
            assert_eq!(serde_json::from_str::<ProviderType>(&json).unwrap(), p);
        }
    }

    #[test]
    fn port_is_not_a_type_here() {
        assert!("port".parse::<ProviderType>().is_err());
    }
}
