//! The shipped Grafana dashboard and Prometheus alert rules name only metrics the gateway
//! exports (a renamed metric must not leave a dashboard silently empty).

use std::collections::BTreeSet;
use std::path::Path;

use switchboard_telemetry::names;

/// Every `switchboard_…` identifier in `text`, histogram suffixes removed.
fn metric_names(text: &str) -> BTreeSet<String> {
    let mut found = BTreeSet::new();
    let mut rest = text;
    while let Some(start) = rest.find("switchboard_") {
        let tail = &rest[start..];
        let end = tail
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(tail.len());
        let name = &tail[..end];
        let base = ["_bucket", "_sum", "_count"]
            .iter()
            .find_map(|suffix| name.strip_suffix(suffix))
            .unwrap_or(name);
        found.insert(base.to_owned());
        rest = &tail[end..];
    }
    found
}

fn check(file: &str) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy")
        .join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let used = metric_names(&text);
    assert!(used.len() >= 5, "{file} names metrics: {used:?}");
    for name in &used {
        assert!(
            names::ALL.contains(&name.as_str()),
            "{file} uses unknown metric {name}"
        );
    }
}

#[test]
fn the_grafana_dashboard_uses_exported_metrics() {
    check("grafana/switchboard-dashboard.json");
}

#[test]
fn the_alert_rules_use_exported_metrics() {
    check("prometheus/alerts.yml");
}

#[test]
fn the_dashboard_is_grafana_json_with_queries() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../../deploy/grafana/switchboard-dashboard.json");
    let dashboard: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap();
    let panels = dashboard["panels"].as_array().expect("panels");
    assert!(panels.len() >= 8);
    for panel in panels {
        let targets = panel["targets"].as_array().expect("targets");
        assert!(targets.iter().all(|t| {
            t["expr"]
                .as_str()
                .is_some_and(|e| e.contains("switchboard_"))
        }));
    }
}
