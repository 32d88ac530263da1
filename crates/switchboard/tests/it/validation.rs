//! `?validate_connection=true`: every enabled model is tested with a real call through the
//! simulator; any failure saves nothing and explains itself per model.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_sim::SimConfig;

use crate::gateway::Gateway;
use crate::harness::{Backend, backends};

async fn save(
    gateway: &Gateway,
    method: Method,
    path: &str,
    body: Value,
) -> crate::harness::Response {
    let path = format!("{path}?validate_connection=true");
    gateway
        .server
        .call(method, &path, Some(&gateway.org.admin), Some(&body))
        .await
}

#[tokio::test]
async fn a_working_provider_is_tested_then_saved() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        gateway
            .server
            .delete("/v1/llm-providers/openai", &gateway.org.admin)
            .await
            .expect(204);
        gateway.sim.handle.clear();
        save(
            &gateway,
            Method::POST,
            "/v1/llm-providers",
            json!({ "provider": "openai", "config": { "apiKeySecretName": "openai-key" } }),
        )
        .await
        .expect(201);
        let probe = gateway
            .sim
            .handle
            .last_request()
            .expect("the model was tested");
        assert_eq!(probe.path_only(), "/v1/chat/completions");
        assert_eq!(probe.json().unwrap()["model"], "gpt-5");
        // Every enabled model of a catalog provider is tested.
        gateway.sim.handle.clear();
        save(
            &gateway,
            Method::PUT,
            "/v1/llm-providers/anthropic",
            json!({ "enabled": true }),
        )
        .await
        .expect(200);
        let tested: Vec<String> = gateway
            .sim
            .handle
            .requests()
            .iter()
            .map(|r| r.json().unwrap()["model"].as_str().unwrap().to_owned())
            .collect();
        assert_eq!(tested.len(), 5, "{tested:?}");
        gateway.server.stop();
    }
}

#[tokio::test]
async fn failures_save_nothing_and_say_why_per_model() {
    let sim = SimConfig {
        openai_key: Some("sk-only-this-one".into()),
        ..SimConfig::default()
    };
    let gateway = Gateway::start_with(Backend::Sqlite, sim, Vec::new()).await;
    gateway
        .server
        .delete("/v1/llm-providers/openai", &gateway.org.admin)
        .await
        .expect(204);
    // A key the provider refuses.
    let refused = save(
        &gateway,
        Method::POST,
        "/v1/llm-providers",
        json!({ "provider": "openai", "config": { "apiKeySecretName": "openai-key" } }),
    )
    .await
    .expect_error(400, "LLMProviderModelTestError");
    assert_eq!(
        refused.json["message"],
        "Connection test failed for provider 'openai'"
    );
    assert_eq!(
        refused.json["details"]["testedModels"]["gpt-5"],
        json!({ "isValid": false, "message": "Invalid API key" })
    );
    gateway
        .server
        .get("/v1/llm-providers/openai", &gateway.org.admin)
        .await
        .expect_error(404, "LLMProviderNotFoundError");

    // One model of two missing upstream: both results reported, nothing saved. (This
    // simulator takes one OpenAI key, so the compatible endpoint's secret becomes it.)
    gateway
        .server
        .patch(
            "/v1/organization/secrets/compat-token",
            &gateway.org.admin,
            json!({ "secretValue": "sk-only-this-one" }),
        )
        .await
        .expect(200);
    let base = gateway.sim.url();
    let mixed = save(
        &gateway,
        Method::PUT,
        "/v1/llm-providers/openai-compatible",
        json!({ "config": {
        "models": [{ "name": "compat-model" }, { "name": "missing-model" }] } }),
    )
    .await
    .expect_error(400, "LLMProviderModelTestError");
    let tested = &mixed.json["details"]["testedModels"];
    assert_eq!(tested["compat-model"]["isValid"], true, "{tested}");
    assert_eq!(
        tested["missing-model"],
        json!({ "isValid": false, "message": "Model or deployment not found" })
    );
    let stored = gateway
        .server
        .get("/v1/llm-providers/openai-compatible", &gateway.org.admin)
        .await
        .expect(200);
    assert_eq!(
        stored.result()["config"]["models"],
        json!([{ "name": "compat-model" }])
    );
    let _ = base;

    // Unreachable and missing-secret cases.
    let unreachable = save(
        &gateway,
        Method::PUT,
        "/v1/llm-providers/anthropic-compatible",
        json!({ "config": { "baseUrl": "http://127.0.0.1:1/v1" } }),
    )
    .await
    .expect_error(400, "LLMProviderModelTestError");
    assert_eq!(
        unreachable.json["details"]["testedModels"]["claude-compat"]["message"],
        "The provider could not be reached"
    );
    let missing = save(
        &gateway,
        Method::PUT,
        "/v1/llm-providers/anthropic",
        json!({ "config": { "apiKeySecretName": "no-such-secret" } }),
    )
    .await
    .expect_error(400, "LLMProviderModelTestError");
    let message = missing.json["details"]["testedModels"]["claude-opus-4-6"]["message"]
        .as_str()
        .unwrap()
        .to_owned();
    assert!(
        message.contains("no-such-secret") && message.contains("does not exist"),
        "{message}"
    );
    gateway.server.stop();
}
