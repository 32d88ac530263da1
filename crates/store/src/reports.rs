//! Read models for the web UI beyond plain records: each provider's last connection
//! validation, and usage per provider and model over a window.

use std::collections::BTreeMap;

use serde_json::Value;
use switchboard_core::ProviderType;
use switchboard_core::records::Timestamp;

/// The newest connection validation of one provider, pass or fail.
#[derive(Clone, Debug, PartialEq)]
pub struct ValidationRecord {
    pub provider: ProviderType,
    /// True when every tested model answered.
    pub valid: bool,
    /// As produced by the server: `{"models": {model: {"isValid", "message"}}}`. Only
    /// verdicts and user-facing messages; never a secret value.
    pub result: Value,
    pub at: Timestamp,
}

/// Usage of one provider and model: what the usage view draws.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct UsageRow {
    /// As recorded; `None` when requests failed before a provider was chosen.
    pub provider: Option<String>,
    pub model: Option<String>,
    pub requests: u64,
    pub errors: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Nearest-rank percentiles of the total time, in milliseconds.
    pub p50_ms: u64,
    pub p95_ms: u64,
}

/// Folds invocation rows into [`UsageRow`]s. Percentiles need every latency, which no
/// portable SQL aggregate gives on both back ends, so the store streams the few columns it
/// needs and folds them here.
#[derive(Default)]
pub(crate) struct UsageFold {
    groups: BTreeMap<GroupKey, (UsageRow, Vec<u64>)>,
}

/// `(provider, model)` as recorded.
type GroupKey = (Option<String>, Option<String>);

/// One invocation as the fold sees it.
pub(crate) struct UsageSample {
    pub provider: Option<String>,
    pub model: Option<String>,
    pub failed: bool,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub total_ms: u64,
}

impl UsageFold {
    pub fn add(&mut self, sample: UsageSample) {
        let key = (sample.provider.clone(), sample.model.clone());
        let (row, latencies) = self.groups.entry(key).or_insert_with(|| {
            let row = UsageRow {
                provider: sample.provider,
                model: sample.model,
                ..UsageRow::default()
            };
            (row, Vec::new())
        });
        row.requests += 1;
        row.errors += u64::from(sample.failed);
        row.input_tokens += sample.input_tokens;
        row.output_tokens += sample.output_tokens;
        latencies.push(sample.total_ms);
    }

    /// The rows, busiest first (then by provider and model, for a stable order).
    pub fn finish(self) -> Vec<UsageRow> {
        let mut rows: Vec<UsageRow> = self
            .groups
            .into_values()
            .map(|(mut row, mut latencies)| {
                latencies.sort_unstable();
                row.p50_ms = percentile(&latencies, 50);
                row.p95_ms = percentile(&latencies, 95);
                row
            })
            .collect();
        rows.sort_by_key(|row| std::cmp::Reverse(row.requests));
        rows
    }
}

/// The nearest-rank percentile of sorted values (0 for none).
fn percentile(sorted: &[u64], p: usize) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (p * sorted.len()).div_ceil(100).max(1);
    sorted[rank.min(sorted.len()) - 1]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        assert_eq!(percentile(&[], 50), 0);
        assert_eq!(percentile(&[7], 95), 7);
        let values: Vec<u64> = (1..=100).collect();
        assert_eq!(percentile(&values, 50), 50);
        assert_eq!(percentile(&values, 95), 95);
        assert_eq!(percentile(&[1, 2, 3, 4], 50), 2);
        assert_eq!(percentile(&[1, 2, 3, 4], 95), 4);
    }

    #[test]
    fn folds_group_by_provider_and_model() {
        let mut fold = UsageFold::default();
        for (model, failed, ms) in [("a", false, 10), ("a", true, 30), ("b", false, 5)] {
            fold.add(UsageSample {
                provider: Some("openai".into()),
                model: Some(model.into()),
                failed,
                input_tokens: 2,
                output_tokens: 3,
                total_ms: ms,
            });
        }
        let rows = fold.finish();
        assert_eq!(rows.len(), 2);
        assert_eq!(rows[0].model.as_deref(), Some("a"));
        assert_eq!((rows[0].requests, rows[0].errors), (2, 1));
        assert_eq!((rows[0].input_tokens, rows[0].output_tokens), (4, 6));
        assert_eq!((rows[0].p50_ms, rows[0].p95_ms), (10, 30));
    }
}
