//! Which default provider and model are in force for an organization.
//!
//! The organization's stored default wins while it still points at an enabled provider
//! offering that model; otherwise the operator's system default applies. Deleting or
//! disabling a provider therefore never leaves an organization without a working default,
//! and the stored choice comes back into force if the provider is re-enabled.

use crate::provider::ProviderType;

/// Where the default in force comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DefaultSource {
    Organization,
    System,
}

impl DefaultSource {
    pub fn as_str(self) -> &'static str {
        match self {
            DefaultSource::Organization => "organization",
            DefaultSource::System => "system",
        }
    }
}

/// Why a stored organization default is not in force.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Fallback {
    /// The organization never chose a default.
    NotSet,
    ProviderMissing,
    ProviderDisabled,
    ModelNotEnabled,
}

impl Fallback {
    pub fn as_str(self) -> &'static str {
        match self {
            Fallback::NotSet => "not_set",
            Fallback::ProviderMissing => "provider_deleted",
            Fallback::ProviderDisabled => "provider_disabled",
            Fallback::ModelNotEnabled => "model_not_enabled",
        }
    }
}

/// What a provider currently offers, as far as default selection cares.
pub trait ProviderView {
    fn enabled(&self) -> bool;
    fn offers(&self, model: &str) -> bool;
}

/// Decides whether the stored default (if any) is usable; `Err` says why not, in which case
/// the system default is in force.
pub fn check_stored_default<P: ProviderView>(
    stored: Option<(ProviderType, &str)>,
    lookup: impl Fn(ProviderType) -> Option<P>,
) -> Result<(), Fallback> {
    let (provider, model) = stored.ok_or(Fallback::NotSet)?;
    let view = lookup(provider).ok_or(Fallback::ProviderMissing)?;
    if !view.enabled() {
        return Err(Fallback::ProviderDisabled);
    }
    if !view.offers(model) {
        return Err(Fallback::ModelNotEnabled);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    struct View {
        enabled: bool,
        models: &'static [&'static str],
    }

    impl ProviderView for &View {
        fn enabled(&self) -> bool {
            self.enabled
        }
        fn offers(&self, model: &str) -> bool {
            self.models.contains(&model)
        }
    }

    const OPENAI: View = View {
        enabled: true,
        models: &["gpt-5"],
    };
    const OPENAI_OFF: View = View {
        enabled: false,
        models: &["gpt-5"],
    };

    fn lookup(view: &'static View) -> impl Fn(ProviderType) -> Option<&'static View> {
        move |p| (p == ProviderType::OpenAi).then_some(view)
    }

    #[test]
    fn stored_default_in_force_when_usable() {
        let stored = Some((ProviderType::OpenAi, "gpt-5"));
        assert_eq!(check_stored_default(stored, lookup(&OPENAI)), Ok(()));
    }

    #[test]
    fn each_reason_to_fall_back() {
        assert_eq!(
            check_stored_default(None, lookup(&OPENAI)),
            Err(Fallback::NotSet)
        );
        assert_eq!(
            check_stored_default(Some((ProviderType::Anthropic, "x")), lookup(&OPENAI)),
            Err(Fallback::ProviderMissing)
        );
        assert_eq!(
            check_stored_default(Some((ProviderType::OpenAi, "gpt-5")), lookup(&OPENAI_OFF)),
            Err(Fallback::ProviderDisabled)
        );
        assert_eq!(
            check_stored_default(Some((ProviderType::OpenAi, "gpt-4")), lookup(&OPENAI)),
            Err(Fallback::ModelNotEnabled)
        );
    }
}
