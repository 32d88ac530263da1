//! The HTTP surface's metrics (requests and latency by route) and the `/metrics` text.
//!
//! Everything is recorded through the `metrics` facade into the process's Prometheus
//! recorder (`switchboard_telemetry::prometheus`), together with the data plane's per-model
//! series (`switchboard_telemetry::gen_ai`), so one scrape shows both. A route's handles
//! are registered the first time its (method, status) is seen and kept in a copy-on-write
//! map, so a request bumps atomics without a lock.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use arc_swap::ArcSwap;
use metrics::{Counter, Histogram};
use switchboard_telemetry::names;

#[derive(Default)]
pub struct Metrics {
    pub connections: ConnectionCounts,
    /// Handles by route template, then (method, status): a handful per route.
    routes: ArcSwap<HashMap<String, Vec<Arc<RouteSeries>>>>,
    adding: Mutex<()>,
}

/// One (method, route, status) label set's handles.
struct RouteSeries {
    method: String,
    status: u16,
    requests: Counter,
    duration: Histogram,
}

/// Client connections, as the accept loop sees them (see [`crate::listener`]): plain
/// atomics on the accept path, published to the recorder at scrape time.
#[derive(Default)]
pub struct ConnectionCounts {
    /// Open now.
    pub open: AtomicU64,
    /// Closed at once because the connection cap was reached.
    pub refused: AtomicU64,
    /// Closed for overstaying the header or idle timeout.
    pub timed_out: AtomicU64,
}

impl ConnectionCounts {
    fn publish(&self) {
        let read = |n: &AtomicU64| n.load(Ordering::Relaxed);
        metrics::gauge!(names::CONNECTIONS_OPEN).set(read(&self.open) as f64);
        metrics::counter!(names::CONNECTIONS_REFUSED).absolute(read(&self.refused));
        metrics::counter!(names::CONNECTIONS_TIMED_OUT).absolute(read(&self.timed_out));
    }
}

impl Metrics {
    /// Counts a request by method, route template and status. The route template comes
    /// from the router (a bounded set); unmatched paths share one series.
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let series = match self.find(method, route, status) {
            Some(found) => found,
            None => self.add(method, route, status),
        };
        series.requests.increment(1);
        series.duration.record(elapsed.as_secs_f64());
    }

    fn find(&self, method: &str, route: &str, status: u16) -> Option<Arc<RouteSeries>> {
        let routes = self.routes.load();
        let found = routes
            .get(route)?
            .iter()
            .find(|s| s.status == status && s.method == method);
        found.cloned()
    }

    fn add(&self, method: &str, route: &str, status: u16) -> Arc<RouteSeries> {
        let _adding = self.adding.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(found) = self.find(method, route, status) {
            return found;
        }
        let labels = [
            ("method", method.to_owned()),
            ("route", route.to_owned()),
            ("status", status.to_string()),
        ];
        let series = Arc::new(RouteSeries {
            method: method.to_owned(),
            status,
            requests: metrics::counter!(names::HTTP_REQUESTS, &labels),
            duration: metrics::histogram!(names::HTTP_DURATION, &labels),
        });
        let mut routes = HashMap::clone(&self.routes.load());
        routes
            .entry(route.to_owned())
            .or_default()
            .push(series.clone());
        self.routes.store(Arc::new(routes));
        series
    }

    /// Counts a handler that panicked.
    pub fn record_panic(&self) {
        metrics::counter!(names::HTTP_PANICS).increment(1);
    }

    /// The Prometheus text exposition format, with the gauges read at scrape time.
    pub fn render(&self, uptime: Duration, recorder_queue_depth: usize) -> String {
        metrics::gauge!(names::UPTIME).set(uptime.as_secs_f64());
        metrics::gauge!(names::RECORDER_QUEUE_DEPTH).set(recorder_queue_depth as f64);
        metrics::counter!(names::HTTP_PANICS).increment(0);
        self.connections.publish();
        switchboard_telemetry::prometheus::render()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        switchboard_telemetry::prometheus::handle();
        m.observe("GET", "/test-route", 200, Duration::from_micros(300));
        m.observe("GET", "/test-route", 200, Duration::from_millis(3));
        let text = m.render(Duration::from_secs(1), 0);
        let labels = "method=\"GET\",route=\"/test-route\",status=\"200\"";
        assert!(
            text.contains(&format!("switchboard_http_requests_total{{{labels}}} 2")),
            "{text}"
        );
        assert!(text.contains(&format!(
            "switchboard_http_request_duration_seconds_bucket{{{labels},le=\"0.0005\"}} 1"
        )));
        assert!(text.contains(&format!(
            "switchboard_http_request_duration_seconds_bucket{{{labels},le=\"0.005\"}} 2"
        )));
        assert!(text.contains(&format!(
            "switchboard_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} 2"
        )));
        assert!(text.contains("switchboard_http_panics_total"));
        assert!(text.contains("switchboard_uptime_seconds 1"));
    }
}
