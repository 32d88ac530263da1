//! The data plane's per-provider, per-model series.
//!
//! Label sets are `surface`, `provider` and `model` (and `org` when the operator asks for
//! it, see [`SeriesPolicy`]). A label set's handles are registered with the recorder the
//! first time it is seen and kept in a copy-on-write map ([`ArcSwap`]): the request path
//! loads the map, finds its [`Series`] and bumps atomics — no lock, no allocation. New label
//! sets (rare: a model seen for the first time) copy the map under a mutex.
//!
//! Cardinality is bounded: beyond [`SeriesPolicy::max_series`] label sets, further models
//! are counted under `model="other"` (a provider that accepts any model name cannot grow the
//! registry without bound).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics::{Counter, Histogram, Label, Level, Metadata};

use crate::names;

/// The `model` label of series beyond the cap.
pub const OTHER_MODEL: &str = "other";
/// The `provider` and `model` labels of requests refused before resolution chose one.
pub const UNRESOLVED: &str = "none";

/// Which label sets exist.
#[derive(Clone, Copy, Debug)]
pub struct SeriesPolicy {
    /// Label series by organization too (`SWITCHBOARD_METRICS_ORG_LABEL`): one series per
    /// organization × provider × model × surface, so only for a modest number of
    /// organizations.
    pub org_label: bool,
    /// Label sets at most; further models are counted as [`OTHER_MODEL`].
    pub max_series: usize,
}

impl Default for SeriesPolicy {
    fn default() -> Self {
        Self {
            org_label: false,
            max_series: 2_000,
        }
    }
}

/// How one inference request ended, as the metrics see it.
#[derive(Clone, Copy, Debug, Default)]
pub struct Call<'a> {
    /// The error name (Port's or the provider's), `None` when it succeeded.
    pub error: Option<&'a str>,
    pub input_tokens: u64,
    pub output_tokens: u64,
    pub cached_input_tokens: u64,
    pub reasoning_tokens: u64,
    /// From arrival to the first token sent, when one was.
    pub first_token: Option<Duration>,
    /// From arrival to the end.
    pub duration: Duration,
    /// From sending the upstream request to its response head, when one was sent.
    pub upstream: Option<Duration>,
}

/// Who served a request: the label values of its series.
#[derive(Clone, Copy)]
pub struct Target<'a> {
    /// The organization, rendered only under [`SeriesPolicy::org_label`].
    pub org: &'a dyn std::fmt::Display,
    pub surface: &'static str,
    pub provider: &'static str,
    pub model: &'a str,
}

/// The registered handles of one label set.
pub struct Series {
    labels: Vec<Label>,
    succeeded: Counter,
    input_tokens: Counter,
    output_tokens: Counter,
    cached_input_tokens: Counter,
    reasoning_tokens: Counter,
    first_token: Histogram,
    duration: Histogram,
    upstream: Histogram,
}

impl Series {
    fn register(labels: Vec<Label>) -> Self {
        let with = |extra: &[(&'static str, &'static str)]| {
            let mut all = labels.clone();
            all.extend(extra.iter().map(|(k, v)| Label::from_static_parts(k, v)));
            all
        };
        let tokens = |kind| counter(names::GEN_AI_TOKENS, with(&[("type", kind)]));
        Self {
            succeeded: counter(
                names::GEN_AI_REQUESTS,
                with(&[("outcome", "success"), ("error", "")]),
            ),
            input_tokens: tokens("input"),
            output_tokens: tokens("output"),
            cached_input_tokens: tokens("cached_input"),
            reasoning_tokens: tokens("reasoning"),
            first_token: histogram(names::GEN_AI_TIME_TO_FIRST_TOKEN, labels.clone()),
            duration: histogram(names::GEN_AI_REQUEST_DURATION, labels.clone()),
            upstream: histogram(names::GEN_AI_UPSTREAM_LATENCY, labels.clone()),
            labels,
        }
    }

    fn record(&self, call: &Call<'_>) {
        match call.error {
            None => self.succeeded.increment(1),
            // Failures are the rarer path: their series is looked up by error name.
            Some(error) => {
                let mut labels = self.labels.clone();
                labels.push(Label::from_static_parts("outcome", "error"));
                labels.push(Label::new("error", error.to_owned()));
                counter(names::GEN_AI_REQUESTS, labels).increment(1);
            }
        }
        self.input_tokens.increment(call.input_tokens);
        self.output_tokens.increment(call.output_tokens);
        self.cached_input_tokens.increment(call.cached_input_tokens);
        self.reasoning_tokens.increment(call.reasoning_tokens);
        if let Some(first) = call.first_token {
            self.first_token.record(first.as_secs_f64());
        }
        self.duration.record(call.duration.as_secs_f64());
        if let Some(upstream) = call.upstream {
            self.upstream.record(upstream.as_secs_f64());
        }
    }
}

type ByModel = HashMap<Box<str>, Arc<Series>>;

/// The outer key: everything but the model (which is looked up by `&str`).
#[derive(Clone, PartialEq, Eq, Hash)]
struct Scope {
    org: Option<Box<str>>,
    surface: &'static str,
    provider: &'static str,
}

/// The data plane's series.
pub struct GenAiMetrics {
    policy: SeriesPolicy,
    series: ArcSwap<HashMap<Scope, ByModel>>,
    /// Serializes the (rare) registration of new label sets.
    adding: Mutex<usize>,
}

impl GenAiMetrics {
    pub fn new(policy: SeriesPolicy) -> Self {
        crate::prometheus::handle();
        Self {
            policy,
            series: ArcSwap::default(),
            adding: Mutex::new(0),
        }
    }

    /// Counts one ended request.
    pub fn record(&self, target: Target<'_>, call: &Call<'_>) {
        self.series(target).record(call);
    }

    /// The handles of `target`'s label set, registered on first sight.
    pub fn series(&self, target: Target<'_>) -> Arc<Series> {
        let org = self.policy.org_label.then(|| target.org.to_string());
        let org = org.as_deref();
        if let Some(found) = self.find(org, target) {
            return found;
        }
        self.add(org, target)
    }

    fn find(&self, org: Option<&str>, target: Target<'_>) -> Option<Arc<Series>> {
        let map = self.series.load();
        let scope = Scope {
            org: org.map(Into::into),
            surface: target.surface,
            provider: target.provider,
        };
        // Without the org label (the default) the scope owns nothing: no allocation.
        map.get(&scope)?.get(target.model).cloned()
    }

    fn add(&self, org: Option<&str>, target: Target<'_>) -> Arc<Series> {
        let mut count = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = self.find(org, target) {
            return found;
        }
        let model = if *count < self.policy.max_series {
            target.model
        } else {
            OTHER_MODEL
        };
        if let Some(found) = self.find(org, Target { model, ..target }) {
            return found;
        }
        let mut labels = Vec::with_capacity(4);
        if let Some(org) = org {
            labels.push(Label::new("org", org.to_owned()));
        }
        labels.push(Label::from_static_parts("surface", target.surface));
        labels.push(Label::from_static_parts("provider", target.provider));
        labels.push(Label::new("model", model.to_owned()));
        let series = Arc::new(Series::register(labels));
        let scope = Scope {
            org: org.map(Into::into),
            surface: target.surface,
            provider: target.provider,
        };
        let mut map = HashMap::clone(&self.series.load());
        map.entry(scope)
            .or_default()
            .insert(model.into(), series.clone());
        self.series.store(Arc::new(map));
        *count += 1;
        series
    }
}

/// A relayed stream, counted in [`names::GEN_AI_OPEN_STREAMS`] until dropped.
pub struct OpenStream(metrics::Gauge);

impl OpenStream {
    pub fn start(surface: &'static str) -> Self {
        let gauge = metrics::gauge!(names::GEN_AI_OPEN_STREAMS, "surface" => surface);
        gauge.increment(1.0);
        Self(gauge)
    }
}

impl Drop for OpenStream {
    fn drop(&mut self) {
        self.0.decrement(1.0);
    }
}

/// Counts a request refused by a managed limit (`rate` or `quota`).
pub fn limit_refused(limit: &'static str) {
    metrics::counter!(names::LIMIT_REFUSALS, "limit" => limit).increment(1);
}

static METADATA: Metadata<'static> = Metadata::new(module_path!(), Level::INFO, None);

fn counter(name: &'static str, labels: Vec<Label>) -> Counter {
    metrics::with_recorder(|recorder| {
        recorder.register_counter(&metrics::Key::from_parts(name, labels), &METADATA)
    })
}

fn histogram(name: &'static str, labels: Vec<Label>) -> Histogram {
    metrics::with_recorder(|recorder| {
        recorder.register_histogram(&metrics::Key::from_parts(name, labels), &METADATA)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(model: &str) -> Target<'_> {
        Target {
            org: &"org",
            surface: "openai",
            provider: "openai",
            model,
        }
    }

    #[test]
    fn a_label_set_is_registered_once_and_counted() {
        let metrics = GenAiMetrics::new(SeriesPolicy::default());
        let first = metrics.series(target("gpt-test-once"));
        let again = metrics.series(target("gpt-test-once"));
        assert!(Arc::ptr_eq(&first, &again));
        let call = Call {
            input_tokens: 7,
            output_tokens: 3,
            duration: Duration::from_millis(5),
            ..Call::default()
        };
        metrics.record(target("gpt-test-once"), &call);
        metrics.record(
            target("gpt-test-once"),
            &Call {
                error: Some("rate_limit_error"),
                ..call
            },
        );
        let text = crate::prometheus::render();
        let series = |rest: &str| {
            format!(
                "{}{{surface=\"openai\",provider=\"openai\",model=\"gpt-test-once\",{rest}",
                names::GEN_AI_REQUESTS
            )
        };
        assert!(
            text.contains(&(series("outcome=\"success\",error=\"\"} 1"))),
            "{text}"
        );
        assert!(
            text.contains(&series("outcome=\"error\",error=\"rate_limit_error\"} 1")),
            "{text}"
        );
        assert!(text.contains(
            "switchboard_gen_ai_tokens_total{surface=\"openai\",provider=\"openai\",model=\"gpt-test-once\",type=\"input\"} 14"
        ), "{text}");
    }

    #[test]
    fn models_beyond_the_cap_share_one_series() {
        let metrics = GenAiMetrics::new(SeriesPolicy {
            org_label: false,
            max_series: 2,
        });
        metrics.series(target("cap-a"));
        metrics.series(target("cap-b"));
        let third = metrics.series(target("cap-c"));
        let fourth = metrics.series(target("cap-d"));
        assert!(Arc::ptr_eq(&third, &fourth), "both counted as `other`");
        assert!(Arc::ptr_eq(&third, &metrics.series(target(OTHER_MODEL))));
    }
}
