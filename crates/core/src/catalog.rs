//! The built-in model catalog for the provider types that have one.

use crate::provider::ProviderType;

pub const GPT_5: &str = "gpt-5";
pub const CLAUDE_SONNET_4: &str = "claude-sonnet-4-20250514";
pub const CLAUDE_HAIKU_4_5: &str = "claude-haiku-4-5-20251001";
pub const CLAUDE_SONNET_4_5: &str = "claude-sonnet-4-5-20250929";
pub const CLAUDE_OPUS_4_5: &str = "claude-opus-4-5-20251101";
pub const CLAUDE_OPUS_4_6: &str = "claude-opus-4-6";

const OPENAI_MODELS: &[&str] = &[GPT_5];
const CLAUDE_MODELS: &[&str] = &[
    CLAUDE_SONNET_4,
    CLAUDE_HAIKU_4_5,
    CLAUDE_SONNET_4_5,
    CLAUDE_OPUS_4_5,
    CLAUDE_OPUS_4_6,
];
const MANAGED_MODELS: &[&str] = &[GPT_5, CLAUDE_HAIKU_4_5, CLAUDE_SONNET_4, CLAUDE_SONNET_4_5];

/// The built-in models of a provider type, in catalog order; empty for the types whose
/// models come from the organization's own `config.models`.
pub fn builtin_models(provider: ProviderType) -> &'static [&'static str] {
    match provider {
        ProviderType::OpenAi | ProviderType::AzureOpenAi => OPENAI_MODELS,
        ProviderType::Anthropic | ProviderType::AzureAnthropic | ProviderType::Bedrock => {
            CLAUDE_MODELS
        }
        ProviderType::Managed => MANAGED_MODELS,
        ProviderType::VertexGemini
        | ProviderType::VertexAnthropic
        | ProviderType::OpenAiCompatible
        | ProviderType::AnthropicCompatible => &[],
    }
}

/// Which upstream family serves a managed model. Managed models are the platform's own
/// keys behind OpenAI's or Anthropic's API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ManagedUpstream {
    OpenAi,
    Anthropic,
}

pub fn managed_upstream(model: &str) -> Option<ManagedUpstream> {
    match model {
        GPT_5 => Some(ManagedUpstream::OpenAi),
        m if MANAGED_MODELS.contains(&m) => Some(ManagedUpstream::Anthropic),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn catalog_types_have_models_and_custom_types_do_not() {
        for p in ProviderType::ALL {
            assert_eq!(builtin_models(p).is_empty(), p.has_custom_catalog(), "{p}");
        }
    }

    #[test]
    fn managed_catalog_matches_the_contract() {
        assert_eq!(
            builtin_models(ProviderType::Managed),
            &[GPT_5, CLAUDE_HAIKU_4_5, CLAUDE_SONNET_4, CLAUDE_SONNET_4_5]
        );
        assert_eq!(managed_upstream(GPT_5), Some(ManagedUpstream::OpenAi));
        assert_eq!(
            managed_upstream(CLAUDE_SONNET_4_5),
            Some(ManagedUpstream::Anthropic)
        );
        assert_eq!(managed_upstream(CLAUDE_OPUS_4_6), None);
    }
}
