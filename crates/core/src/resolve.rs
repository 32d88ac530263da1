//! Which provider and model serve a request, and whether the caller may use them.
//!
//! Order: what the request names → the organization's default (while it is in force) → the
//! operator's system default. Then four checks, in order, each with its Port error name:
//! the provider exists for the organization, it is enabled, the model is enabled on it, and
//! the caller may use it. A pure function of (caller, request, organization view), so every
//! path is unit-tested below.

use crate::error::PortError;
use crate::ids::OrgId;
use crate::principal::Principal;
use crate::provider::ProviderType;

/// One provider as the data plane sees it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ProviderState {
    pub provider: ProviderType,
    pub enabled: bool,
    /// Enabled models in catalog order.
    pub enabled_models: Vec<String>,
}

impl ProviderState {
    fn offers(&self, model: &str) -> bool {
        self.enabled_models.iter().any(|m| m == model)
    }
}

/// What resolution needs to know about an organization.
#[derive(Clone, Debug)]
pub struct OrgView<'a> {
    pub org_id: OrgId,
    /// Providers in the contract's type order.
    pub providers: &'a [ProviderState],
    /// The stored organization default, whether or not it is in force.
    pub org_default: Option<(ProviderType, &'a str)>,
    pub system_default: (ProviderType, &'a str),
}

impl OrgView<'_> {
    fn find(&self, provider: ProviderType) -> Option<&ProviderState> {
        self.providers.iter().find(|p| p.provider == provider)
    }

    /// The organization default when its provider is enabled and offers its model, else
    /// the system default (the same rule `GET /v1/llm-providers/defaults` reports).
    pub fn default_in_force(&self) -> (ProviderType, &str) {
        match self.org_default {
            Some((provider, model))
                if self
                    .find(provider)
                    .is_some_and(|p| p.enabled && p.offers(model)) =>
            {
                (provider, model)
            }
            _ => self.system_default,
        }
    }
}

/// The provider and model a request asked for (both optional).
#[derive(Clone, Copy, Debug, Default)]
pub struct Selection<'a> {
    pub provider: Option<&'a str>,
    pub model: Option<&'a str>,
}

/// The outcome: who serves the request.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Resolved {
    pub provider: ProviderType,
    pub model: String,
}

/// Resolves and checks. Errors carry the Port names the surfaces translate into their own
/// shapes.
pub fn resolve(
    caller: &Principal,
    selection: Selection<'_>,
    org: &OrgView<'_>,
) -> Result<Resolved, PortError> {
    let (provider, model) = choose(selection, org)?;
    check(caller, org, provider, &model)?;
    Ok(Resolved { provider, model })
}

/// Step one: the candidate provider and model, before the checks.
fn choose(
    selection: Selection<'_>,
    org: &OrgView<'_>,
) -> Result<(ProviderType, String), PortError> {
    match (selection.provider, selection.model) {
        (Some(name), model) => {
            let provider = parse_provider(name)?;
            let model = match model.map(|m| strip_prefix(provider, m)) {
                Some(model) => model.to_owned(),
                None => model_for_provider(provider, org),
            };
            Ok((provider, model))
        }
        (None, Some(model)) => Ok(provider_for_model(model, org)),
        (None, None) => {
            let (provider, model) = org.default_in_force();
            Ok((provider, model.to_owned()))
        }
    }
}

fn parse_provider(name: &str) -> Result<ProviderType, PortError> {
    name.parse()
        .map_err(|_| PortError::provider_not_found(name))
}

/// `openai/gpt-5` with provider `openai` means model `gpt-5`.
fn strip_prefix(provider: ProviderType, model: &str) -> &str {
    model
        .strip_prefix(provider.as_str())
        .and_then(|rest| rest.strip_prefix('/'))
        .unwrap_or(model)
}

/// Only a provider named: the default model if it is the default provider, else its first
/// enabled model. An empty string when it has none, so the model check reports it.
fn model_for_provider(provider: ProviderType, org: &OrgView<'_>) -> String {
    let (default_provider, default_model) = org.default_in_force();
    if default_provider == provider {
        return default_model.to_owned();
    }
    org.find(provider)
        .and_then(|p| p.enabled_models.first())
        .cloned()
        .unwrap_or_default()
}

/// Only a model named: `type/model` selects both; otherwise the default provider if it
/// offers the model, else the first enabled provider that does (contract type order), else
/// the default provider (whose model check then fails with a clear error).
fn provider_for_model(model: &str, org: &OrgView<'_>) -> (ProviderType, String) {
    if let Some((provider, rest)) = model
        .split_once('/')
        .and_then(|(prefix, rest)| Some((prefix.parse::<ProviderType>().ok()?, rest)))
    {
        return (provider, rest.to_owned());
    }
    let (default_provider, _) = org.default_in_force();
    let offered_by_default = org
        .find(default_provider)
        .is_some_and(|p| p.enabled && p.offers(model));
    let provider = if offered_by_default {
        default_provider
    } else {
        org.providers
            .iter()
            .find(|p| p.enabled && p.offers(model))
            .map_or(default_provider, |p| p.provider)
    };
    (provider, model.to_owned())
}

/// Step two: the four checks, in the documented order.
fn check(
    caller: &Principal,
    org: &OrgView<'_>,
    provider: ProviderType,
    model: &str,
) -> Result<(), PortError> {
    let state = org
        .find(provider)
        .ok_or_else(|| PortError::provider_not_found(provider.as_str()))?;
    if !state.enabled {
        return Err(PortError::provider_disabled(provider.as_str()));
    }
    if !state.offers(model) {
        return Err(PortError::model_not_enabled(model, provider.as_str()));
    }
    may_use(caller, org)
}

/// Every user of an organization may use its enabled providers (Port documents no
/// per-provider ACL). The check still guards the invariant that a principal is only ever
/// resolved against its own organization's view.
fn may_use(caller: &Principal, org: &OrgView<'_>) -> Result<(), PortError> {
    if caller.org_id == org.org_id {
        Ok(())
    } else {
        Err(PortError::new(
            crate::error::ErrorName::Forbidden,
            "You do not have access to use this provider",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorName;
    use crate::ids::UserId;
    use crate::principal::Role;

    fn state(provider: ProviderType, enabled: bool, models: &[&str]) -> ProviderState {
        ProviderState {
            provider,
            enabled,
            enabled_models: models.iter().map(|m| m.to_string()).collect(),
        }
    }

    fn providers() -> Vec<ProviderState> {
        vec![
            state(ProviderType::OpenAi, true, &["gpt-5"]),
            state(
                ProviderType::Anthropic,
                true,
                &["claude-sonnet-4-20250514", "claude-opus-4-6"],
            ),
            state(ProviderType::AzureOpenAi, false, &["gpt-5"]),
            state(ProviderType::OpenAiCompatible, true, &["llama-3", "gpt-5"]),
            state(
                ProviderType::Managed,
                true,
                &[
                    "gpt-5",
                    "claude-haiku-4-5-20251001",
                    "claude-sonnet-4-20250514",
                ],
            ),
        ]
    }

    fn caller(org: OrgId) -> Principal {
        Principal {
            org_id: org,
            user_id: UserId::new(),
            email: "dev@acme.test".into(),
            role: Role::Member,
        }
    }

    struct Case {
        provider: Option<&'static str>,
        model: Option<&'static str>,
        org_default: Option<(ProviderType, &'static str)>,
        expect: Result<(ProviderType, &'static str), ErrorName>,
    }

    fn run(case: &Case) {
        let org_id = OrgId::new();
        let providers = providers();
        let view = OrgView {
            org_id,
            providers: &providers,
            org_default: case.org_default,
            system_default: (ProviderType::Managed, "claude-haiku-4-5-20251001"),
        };
        let selection = Selection {
            provider: case.provider,
            model: case.model,
        };
        let got = resolve(&caller(org_id), selection, &view)
            .map(|r| (r.provider, r.model))
            .map_err(|e| e.name);
        let want = case.expect.map(|(p, m)| (p, m.to_owned()));
        assert_eq!(
            got, want,
            "provider={:?} model={:?}",
            case.provider, case.model
        );
    }

    use ProviderType::*;

    #[test]
    fn nothing_named_uses_the_default_in_force() {
        for case in [
            Case {
                provider: None,
                model: None,
                org_default: None,
                expect: Ok((Managed, "claude-haiku-4-5-20251001")),
            },
            Case {
                provider: None,
                model: None,
                org_default: Some((OpenAi, "gpt-5")),
                expect: Ok((OpenAi, "gpt-5")),
            },
            // A default on a disabled provider is not in force.
            Case {
                provider: None,
                model: None,
                org_default: Some((AzureOpenAi, "gpt-5")),
                expect: Ok((Managed, "claude-haiku-4-5-20251001")),
            },
            // A default on a deleted provider is not in force.
            Case {
                provider: None,
                model: None,
                org_default: Some((Bedrock, "claude-opus-4-6")),
                expect: Ok((Managed, "claude-haiku-4-5-20251001")),
            },
            // A default whose model was disabled is not in force.
            Case {
                provider: None,
                model: None,
                org_default: Some((OpenAi, "gpt-4")),
                expect: Ok((Managed, "claude-haiku-4-5-20251001")),
            },
        ] {
            run(&case);
        }
    }

    #[test]
    fn provider_and_model_named() {
        for case in [
            Case {
                provider: Some("openai"),
                model: Some("gpt-5"),
                org_default: None,
                expect: Ok((OpenAi, "gpt-5")),
            },
            Case {
                provider: Some("openai"),
                model: Some("openai/gpt-5"),
                org_default: None,
                expect: Ok((OpenAi, "gpt-5")),
            },
            Case {
                provider: Some("anthropic"),
                model: Some("gpt-5"),
                org_default: None,
                expect: Err(ErrorName::ModelNotEnabled),
            },
            Case {
                provider: Some("azure-openai"),
                model: Some("gpt-5"),
                org_default: None,
                expect: Err(ErrorName::ProviderDisabled),
            },
            Case {
                provider: Some("bedrock"),
                model: Some("claude-opus-4-6"),
                org_default: None,
                expect: Err(ErrorName::ProviderNotFound),
            },
            Case {
                provider: Some("port"),
                model: Some("gpt-5"),
                org_default: None,
                expect: Err(ErrorName::ProviderNotFound),
            },
        ] {
            run(&case);
        }
    }

    #[test]
    fn only_provider_named() {
        for case in [
            // Not the default provider: its first enabled model.
            Case {
                provider: Some("anthropic"),
                model: None,
                org_default: None,
                expect: Ok((Anthropic, "claude-sonnet-4-20250514")),
            },
            // The default provider: the default model.
            Case {
                provider: Some("anthropic"),
                model: None,
                org_default: Some((Anthropic, "claude-opus-4-6")),
                expect: Ok((Anthropic, "claude-opus-4-6")),
            },
            Case {
                provider: Some("managed"),
                model: None,
                org_default: None,
                expect: Ok((Managed, "claude-haiku-4-5-20251001")),
            },
            Case {
                provider: Some("azure-openai"),
                model: None,
                org_default: None,
                expect: Err(ErrorName::ProviderDisabled),
            },
            Case {
                provider: Some("vertex-gemini"),
                model: None,
                org_default: None,
                expect: Err(ErrorName::ProviderNotFound),
            },
        ] {
            run(&case);
        }
    }

    #[test]
    fn only_model_named() {
        for case in [
            // Offered by the default provider: stays there.
            Case {
                provider: None,
                model: Some("gpt-5"),
                org_default: None,
                expect: Ok((Managed, "gpt-5")),
            },
            Case {
                provider: None,
                model: Some("gpt-5"),
                org_default: Some((OpenAiCompatible, "llama-3")),
                expect: Ok((OpenAiCompatible, "gpt-5")),
            },
            // Not offered by the default: the first enabled provider in type order that does.
            Case {
                provider: None,
                model: Some("claude-opus-4-6"),
                org_default: None,
                expect: Ok((Anthropic, "claude-opus-4-6")),
            },
            Case {
                provider: None,
                model: Some("llama-3"),
                org_default: None,
                expect: Ok((OpenAiCompatible, "llama-3")),
            },
            // `type/model` selects both.
            Case {
                provider: None,
                model: Some("openai/gpt-5"),
                org_default: None,
                expect: Ok((OpenAi, "gpt-5")),
            },
            Case {
                provider: None,
                model: Some("azure-openai/gpt-5"),
                org_default: None,
                expect: Err(ErrorName::ProviderDisabled),
            },
            Case {
                provider: None,
                model: Some("bedrock/claude-opus-4-6"),
                org_default: None,
                expect: Err(ErrorName::ProviderNotFound),
            },
            // Nobody offers it: the default provider's model check names it.
            Case {
                provider: None,
                model: Some("gpt-9"),
                org_default: None,
                expect: Err(ErrorName::ModelNotEnabled),
            },
            // A slash that is not a provider prefix is part of the model name.
            Case {
                provider: None,
                model: Some("meta/llama"),
                org_default: None,
                expect: Err(ErrorName::ModelNotEnabled),
            },
        ] {
            run(&case);
        }
    }

    #[test]
    fn a_principal_is_never_resolved_against_another_organization() {
        let providers = providers();
        let view = OrgView {
            org_id: OrgId::new(),
            providers: &providers,
            org_default: None,
            system_default: (Managed, "gpt-5"),
        };
        let err = resolve(&caller(OrgId::new()), Selection::default(), &view).unwrap_err();
        assert_eq!(err.name, ErrorName::Forbidden);
    }

    #[test]
    fn a_disabled_managed_provider_with_no_other_default_is_reported() {
        let providers = vec![state(Managed, false, &["gpt-5"])];
        let org_id = OrgId::new();
        let view = OrgView {
            org_id,
            providers: &providers,
            org_default: None,
            system_default: (Managed, "gpt-5"),
        };
        let err = resolve(&caller(org_id), Selection::default(), &view).unwrap_err();
        assert_eq!(err.name, ErrorName::ProviderDisabled);
    }
}
