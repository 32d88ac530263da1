//! A small Prometheus registry for the control plane: request counts and latency by route.
//!
//! The management API is low-volume, so one mutex around a map is simpler than a metrics
//! framework and costs nothing measurable.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

impl ConnectionCounts {
    fn render(&self, out: &mut String) {
        let rows = [
            (
                "switchboard_connections_open",
                "gauge",
                "Open client connections.",
                &self.open,
            ),
            (
                "switchboard_connections_refused_total",
                "counter",
                "Connections closed at once because the connection cap was reached.",
                &self.refused,
            ),
            (
                "switchboard_connections_timed_out_total",
                "counter",
                "Connections closed for overstaying the header or idle timeout.",
                &self.timed_out,
            ),
        ];
        for (name, kind, help, value) in rows {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} {kind}");
            let _ = writeln!(out, "{name} {}", value.load(Ordering::Relaxed));
        }
    }
}

/// Latency bucket bounds, in seconds.
const BUCKETS: [f64; 10] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.5,
];

#[derive(Default)]
pub struct Metrics {
    routes: Mutex<BTreeMap<RouteKey, RouteStats>>,
    /// Handlers that panicked (each answered 500 by [`crate::panics`]).
    panics: AtomicU64,
    pub connections: ConnectionCounts,
}

/// Client connections, as the accept loop sees them (see [`crate::listener`]).
#[derive(Default)]
pub struct ConnectionCounts {
    /// Open now.
    pub open: AtomicU64,
    /// Closed at once because the connection cap was reached.
    pub refused: AtomicU64,
    /// Closed for overstaying the header or idle timeout.
    pub timed_out: AtomicU64,
}

#[derive(Clone, PartialEq, Eq, PartialOrd, Ord)]
struct RouteKey {
    method: String,
    route: String,
    status: u16,
}

#[derive(Default)]
struct RouteStats {
    count: u64,
    seconds_sum: f64,
    buckets: [u64; BUCKETS.len()],
}

impl Metrics {
    pub fn observe(&self, method: &str, route: &str, status: u16, elapsed: Duration) {
        let key = RouteKey {
            method: method.to_owned(),
            route: route.to_owned(),
            status,
        };
        let seconds = elapsed.as_secs_f64();
        let mut routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let stats = routes.entry(key).or_default();
        stats.count += 1;
        stats.seconds_sum += seconds;
        for (bound, slot) in BUCKETS.iter().zip(stats.buckets.iter_mut()) {
            if seconds <= *bound {
                *slot += 1;
            }
        }
    }

    /// Counts a handler that panicked.
    pub fn record_panic(&self) {
        self.panics.fetch_add(1, Ordering::Relaxed);
    }

    /// The Prometheus text exposition format.
    pub fn render(&self, uptime: Duration) -> String {
        let mut out = String::new();
        let _ = writeln!(
            out,
            "# HELP switchboard_uptime_seconds Seconds since start."
        );
        let _ = writeln!(out, "# TYPE switchboard_uptime_seconds gauge");
        let _ = writeln!(out, "switchboard_uptime_seconds {}", uptime.as_secs_f64());
        let _ = writeln!(
            out,
            "# HELP switchboard_http_panics_total Request handlers that panicked (answered 500)."
        );
        let _ = writeln!(out, "# TYPE switchboard_http_panics_total counter");
        let panics = self.panics.load(Ordering::Relaxed);
        let _ = writeln!(out, "switchboard_http_panics_total {panics}");
        self.connections.render(&mut out);
        let routes = self.routes.lock().unwrap_or_else(|p| p.into_inner());
        let _ = writeln!(
            out,
            "# HELP switchboard_http_requests_total HTTP requests by route and status."
        );
        let _ = writeln!(out, "# TYPE switchboard_http_requests_total counter");
        for (key, stats) in routes.iter() {
            let _ = writeln!(
                out,
                "switchboard_http_requests_total{{{}}} {}",
                labels(key),
                stats.count
            );
        }
        let _ = writeln!(
            out,
            "# HELP switchboard_http_request_duration_seconds Time to the response head."
        );
        let _ = writeln!(
            out,
            "# TYPE switchboard_http_request_duration_seconds histogram"
        );
        for (key, stats) in routes.iter() {
            let labels = labels(key);
            for (bound, count) in BUCKETS.iter().zip(stats.buckets.iter()) {
                let _ = writeln!(
                    out,
                    "switchboard_http_request_duration_seconds_bucket{{{labels},le=\"{bound}\"}} {count}"
                );
            }
            let _ = writeln!(
                out,
                "switchboard_http_request_duration_seconds_bucket{{{labels},le=\"+Inf\"}} {}",
                stats.count
            );
            let _ = writeln!(
                out,
                "switchboard_http_request_duration_seconds_sum{{{labels}}} {}",
                stats.seconds_sum
            );
            let _ = writeln!(
                out,
                "switchboard_http_request_duration_seconds_count{{{labels}}} {}",
                stats.count
            );
        }
        out
    }
}

fn labels(key: &RouteKey) -> String {
    format!(
        "method=\"{}\",route=\"{}\",status=\"{}\"",
        key.method, key.route, key.status
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_counts_and_cumulative_buckets() {
        let m = Metrics::default();
        m.observe("GET", "/healthz", 200, Duration::from_micros(300));
        m.observe("GET", "/healthz", 200, Duration::from_millis(3));
        let text = m.render(Duration::from_secs(1));
        assert!(text.contains(
            "switchboard_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 2"
        ));
        assert!(text.contains("le=\"0.0005\"} 1"));
        assert!(text.contains("le=\"0.005\"} 2"));
        assert!(text.contains("le=\"+Inf\"} 2"));
        assert!(text.contains("switchboard_http_panics_total 0"));
        m.record_panic();
        let text = m.render(Duration::from_secs(1));
        assert!(text.contains("switchboard_http_panics_total 1"));
    }
}
