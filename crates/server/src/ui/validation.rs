//! Connection-validation results as the pages show them: the AI tab's summary cell, the
//! provider page's last result, and the per-model verdicts of a refused "Validate and
//! save". One shape for both sources (the stored record and the API error's
//! `details.testedModels`), so they always read the same.

use serde_json::Value;
use switchboard_core::PortError;
use switchboard_store::ValidationRecord;

use crate::ui::render::shown_time;

/// One provider's validation, ready to render.
#[derive(Clone, Debug)]
pub struct ValidationView {
    pub passed: bool,
    /// When it ran (empty for the result of the request being answered), exact and shown.
    pub at: String,
    pub at_shown: String,
    pub models: Vec<ModelResult>,
}

/// One tested model: its name, verdict and our own message (never an upstream body).
#[derive(Clone, Debug)]
pub struct ModelResult {
    pub name: String,
    pub valid: bool,
    pub message: String,
}

impl ValidationView {
    pub fn of(record: &ValidationRecord) -> Self {
        Self {
            passed: record.valid,
            at: record.at.to_string(),
            at_shown: shown_time(&record.at.to_string()),
            models: model_results(&record.result["models"]),
        }
    }

    /// The per-model results of a refused connection test, when `error` is one.
    pub fn from_error(error: &PortError) -> Option<Self> {
        let tested = error.details.get("testedModels")?;
        let models = model_results(tested);
        Some(Self {
            passed: models.iter().all(|m| m.valid),
            at: String::new(),
            at_shown: String::new(),
            models,
        })
    }

    /// `passed`, or `failed: 1 of 2 models`: the table cell's short text.
    pub fn summary(&self) -> String {
        if self.passed {
            return "passed".to_owned();
        }
        let failed = self.models.iter().filter(|m| !m.valid).count();
        format!("failed: {failed} of {} models", self.models.len())
    }

    /// The models that failed (the AI tab lists only those).
    pub fn failures(&self) -> impl Iterator<Item = &ModelResult> {
        self.models.iter().filter(|m| !m.valid)
    }
}

/// `{model: {"isValid", "message"}}` in model-name order.
fn model_results(tested: &Value) -> Vec<ModelResult> {
    let Some(map) = tested.as_object() else {
        return Vec::new();
    };
    let mut models: Vec<ModelResult> = map
        .iter()
        .map(|(name, result)| ModelResult {
            name: name.clone(),
            valid: result["isValid"].as_bool().unwrap_or(false),
            message: result["message"].as_str().unwrap_or("").to_owned(),
        })
        .collect();
    models.sort_by(|a, b| a.name.cmp(&b.name));
    models
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use switchboard_core::ErrorName;

    #[test]
    fn refused_tests_read_per_model() {
        let error = PortError::new(ErrorName::ModelTest, "failed").with_detail(
            "testedModels",
            json!({
                "b": { "isValid": true, "message": "OK" },
                "a": { "isValid": false, "message": "Invalid API key" },
            }),
        );
        let view = ValidationView::from_error(&error).unwrap();
        assert!(!view.passed);
        assert_eq!(view.models[0].name, "a");
        assert_eq!(view.summary(), "failed: 1 of 2 models");
        assert_eq!(view.failures().count(), 1);
        assert!(ValidationView::from_error(&PortError::invalid_request("x")).is_none());
    }
}
