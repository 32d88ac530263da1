//! Several replicas on one PostgreSQL database: a change made through one is served by the
//! others at once, through the database's change notifications (the poll is set to ten
//! minutes here, so only the notifications can deliver it).

use std::time::{Duration, Instant};

use serde_json::json;
use switchboard_sim::SimConfig;

use crate::gateway::Gateway;
use crate::harness::{Backend, backends};

#[tokio::test]
async fn a_change_on_one_replica_is_served_by_the_other_without_waiting_for_the_poll() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    let poll = vec![("SWITCHBOARD_CONFIG_POLL_MS".to_owned(), "600000".to_owned())];
    let gateway = Gateway::start_with(Backend::Postgres, SimConfig::default(), poll).await;
    let other = gateway.server.replica();
    let body = json!({ "provider": "openai", "model": "gpt-5",
                       "messages": [{ "role": "user", "content": "fan-out" }] });
    let client = reqwest::Client::new();
    let status_on_other = || async {
        client
            .post(format!("{}/v1/chat/completions", other.base_url))
            .bearer_auth(&gateway.org.member)
            .json(&body)
            .send()
            .await
            .unwrap()
            .status()
            .as_u16()
    };
    assert_eq!(status_on_other().await, 200);
    let mut lags = Vec::new();
    for n in 0..20 {
        let enabled = n % 2 == 1;
        gateway
            .server
            .put(
                "/v1/llm-providers/openai",
                &gateway.org.admin,
                json!({ "enabled": enabled }),
            )
            .await
            .expect(200);
        let written = Instant::now();
        let expected = if enabled { 200 } else { 400 };
        while status_on_other().await != expected {
            assert!(
                written.elapsed() < Duration::from_secs(5),
                "change {n} never reached the other replica"
            );
        }
        lags.push(written.elapsed());
    }
    lags.sort();
    eprintln!(
        "fan-out lag over {} changes: p50 {:?}, max {:?}",
        lags.len(),
        lags[lags.len() / 2],
        lags[lags.len() - 1]
    );
}
