use serde_json::{Value, json};

use crate::harness::{Server, backends};

/// A valid config for every connectable type, with the secrets they name.
pub fn valid_configs() -> Vec<(&'static str, Value)> {
    vec![
        ("openai", json!({ "apiKeySecretName": "openai-api-key" })),
        (
            "anthropic",
            json!({ "apiKeySecretName": "anthropic-api-key" }),
        ),
        (
            "azure-openai",
            json!({ "apiKeySecretName": "azure-key", "resourceName": "my-resource", "deploymentId": "gpt5-prod" }),
        ),
        (
            "azure-anthropic",
            json!({ "apiKeySecretName": "azure-key", "endpoint": "https://my-resource.services.ai.azure.com/anthropic" }),
        ),
        (
            "bedrock",
            json!({ "roleArn": "arn:aws:iam::123456789012:role/switchboard", "region": "eu-west-1" }),
        ),
        (
            "vertex-gemini",
            json!({ "apiKeySecretName": "vertex-key", "models": [{ "name": "gemini-2.5-pro" }] }),
        ),
        (
            "vertex-anthropic",
            json!({ "clientEmailSecretName": "sa-email", "privateKeySecretName": "sa-key",
                    "project": "my-project-1", "location": "us-east5",
                    "models": [{ "name": "claude-sonnet-4-5@20250929" }] }),
        ),
        (
            "openai-compatible",
            json!({ "baseUrl": "https://litellm.corp.example.com/v1", "apiKeySecretName": "litellm",
                    "customHeaders": { "x-team": "ml" }, "models": [{ "name": "my-litellm-model" }] }),
        ),
        (
            "anthropic-compatible",
            json!({ "baseUrl": "https://claude-proxy.example.com/v1", "authTokenSecretName": "proxy-token",
                    "models": [{ "name": "claude-proxy" }] }),
        ),
    ]
}

#[tokio::test]
async fn every_type_can_be_created_read_updated_listed_and_deleted() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        for (provider, config) in valid_configs() {
            let body = json!({ "provider": provider, "config": config });
            let created = server
                .post("/v1/llm-providers", &org.admin, body.clone())
                .await
                .expect(201);
            let record = created.result();
            assert_eq!(record["provider"], provider);
            assert_eq!(record["enabled"], true);
            assert_eq!(record["config"], config);
            assert_eq!(record["createdBy"], "admin@acme.test");
            assert!(
                record["effectiveModels"]
                    .as_object()
                    .is_some_and(|m| !m.is_empty())
            );
            // POST again connects (replaces): 200, same creation time.
            let again = server
                .post("/v1/llm-providers", &org.admin, body)
                .await
                .expect(200);
            assert_eq!(again.result()["createdAt"], record["createdAt"]);
            let got = server
                .get(&format!("/v1/llm-providers/{provider}"), &org.admin)
                .await
                .expect(200);
            assert_eq!(got.result()["config"], config);
        }
        let list = server
            .get("/v1/llm-providers", &org.member)
            .await
            .expect(200);
        let types: Vec<&str> = list
            .result()
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["provider"].as_str().unwrap())
            .collect();
        assert_eq!(
            types,
            [
                "openai",
                "anthropic",
                "azure-openai",
                "azure-anthropic",
                "bedrock",
                "vertex-gemini",
                "vertex-anthropic",
                "openai-compatible",
                "anthropic-compatible",
                "managed"
            ]
        );
        assert!(list.json["nextCursor"].is_null());
        for (provider, _) in valid_configs() {
            server
                .delete(&format!("/v1/llm-providers/{provider}"), &org.admin)
                .await
                .expect(204);
            server
                .get(&format!("/v1/llm-providers/{provider}"), &org.admin)
                .await
                .expect_error(404, "LLMProviderNotFoundError");
        }
        server.stop();
    }
}

#[tokio::test]
async fn managed_is_always_listed_may_be_disabled_and_never_deleted() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let list = server
            .get("/v1/llm-providers", &org.admin)
            .await
            .expect(200);
        let managed = &list.result()[0];
        assert_eq!(managed["provider"], "managed");
        assert_eq!(managed["config"], json!({}));
        assert_eq!(
            managed["effectiveModels"],
            json!({ "gpt-5": {"enabled": true}, "claude-haiku-4-5-20251001": {"enabled": true},
                    "claude-sonnet-4-20250514": {"enabled": true}, "claude-sonnet-4-5-20250929": {"enabled": true} })
        );
        let disabled = server
            .put(
                "/v1/llm-providers/managed",
                &org.admin,
                json!({ "enabled": false }),
            )
            .await
            .expect(200);
        assert_eq!(disabled.result()["enabled"], false);
        server
            .delete("/v1/llm-providers/managed", &org.admin)
            .await
            .expect_error(400, "invalid_request");
        server
            .put(
                "/v1/llm-providers/managed",
                &org.admin,
                json!({ "config": { "apiKeySecretName": "x" } }),
            )
            .await
            .expect_error(400, "LLMProviderInvalidConfigError");
        server.stop();
    }
}

#[tokio::test]
async fn put_merges_config_keys_and_model_overrides() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let body = json!({ "provider": "openai-compatible", "config": {
            "baseUrl": "https://llm.example.com/v1", "apiKeySecretName": "k",
            "customHeaders": { "x-team": "ml" },
            "models": [{ "name": "m-one" }, { "name": "m-two" }] } });
        server
            .post("/v1/llm-providers", &org.admin, body)
            .await
            .expect(201);
        let updated = server
            .put(
                "/v1/llm-providers/openai-compatible",
                &org.admin,
                json!({ "config": { "customHeaders": null, "apiKeySecretName": "k2" },
                        "overrides": { "models": { "m-two": { "enabled": false } } } }),
            )
            .await
            .expect(200);
        let record = updated.result();
        assert_eq!(record["config"]["baseUrl"], "https://llm.example.com/v1");
        assert_eq!(record["config"]["apiKeySecretName"], "k2");
        assert!(record["config"].get("customHeaders").is_none());
        assert_eq!(
            record["effectiveModels"],
            json!({ "m-one": { "enabled": true }, "m-two": { "enabled": false } })
        );
        // A second override merges with the first.
        let again = server
            .put(
                "/v1/llm-providers/openai-compatible",
                &org.admin,
                json!({ "overrides": { "models": { "m-one": { "enabled": false } } } }),
            )
            .await
            .expect(200);
        assert_eq!(
            again.result()["effectiveModels"],
            json!({ "m-one": { "enabled": false }, "m-two": { "enabled": false } })
        );
        // The merged result is validated as a whole: removing a required key fails and
        // changes nothing.
        server
            .put(
                "/v1/llm-providers/openai-compatible",
                &org.admin,
                json!({ "config": { "baseUrl": null } }),
            )
            .await
            .expect_error(400, "LLMProviderInvalidConfigError");
        let unchanged = server
            .get("/v1/llm-providers/openai-compatible", &org.admin)
            .await
            .expect(200);
        assert_eq!(
            unchanged.result()["config"]["baseUrl"],
            "https://llm.example.com/v1"
        );
        server
            .put(
                "/v1/llm-providers/openai",
                &org.admin,
                json!({ "enabled": false }),
            )
            .await
            .expect_error(404, "LLMProviderNotFoundError");
        server.stop();
    }
}

/// One broken rule per type, through the API; the full rule tables are unit-tested in core.
#[tokio::test]
async fn schema_rules_of_each_type_are_enforced() {
    let invalid = [
        json!({ "provider": "openai", "config": {} }),
        json!({ "provider": "openai", "config": { "apiKeySecretName": "k", "baseUrl": "https://x" } }),
        json!({ "provider": "anthropic", "config": { "apiKeySecretName": "" } }),
        json!({ "provider": "azure-openai", "config": { "apiKeySecretName": "k", "resourceName": "r", "deploymentId": "d", "endpoint": "https://r.openai.azure.com", "deployment": "d" } }),
        json!({ "provider": "azure-openai", "config": { "apiKeySecretName": "k", "resourceName": "evil.org#", "deploymentId": "d" } }),
        json!({ "provider": "azure-anthropic", "config": { "apiKeySecretName": "k", "endpoint": "http://169.254.169.254/latest" } }),
        json!({ "provider": "bedrock", "config": { "roleArn": "arn:aws:iam::123:role/x", "region": "eu-west-1" } }),
        json!({ "provider": "bedrock", "config": { "roleArn": "arn:aws:iam::123456789012:role/x", "region": "EU-WEST-1" } }),
        json!({ "provider": "bedrock", "config": { "roleArn": "arn:aws:iam::123456789012:role/x", "accessKeyIdSecretName": "a", "secretAccessKeySecretName": "b", "region": "eu-west-1" } }),
        json!({ "provider": "vertex-gemini", "config": { "apiKeySecretName": "k", "clientEmailSecretName": "e", "privateKeySecretName": "p", "project": "my-project-1", "location": "us-east5", "models": [{ "name": "gemini-2.5-pro" }] } }),
        json!({ "provider": "vertex-anthropic", "config": { "clientEmailSecretName": "e", "privateKeySecretName": "p", "project": "my-project-1", "location": "us-east5", "models": [] } }),
        json!({ "provider": "openai-compatible", "config": { "baseUrl": "https://127.0.0.1/v1", "models": [{ "name": "m" }] } }),
        json!({ "provider": "openai-compatible", "config": { "baseUrl": "https://llm.example.com/v1", "customHeaders": { "Authorization": "Bearer x" }, "models": [{ "name": "m" }] } }),
        json!({ "provider": "openai-compatible", "config": { "baseUrl": "https://llm.example.com/v1", "models": [{ "name": "m", "colour": "red" }] } }),
        json!({ "provider": "anthropic-compatible", "config": { "baseUrl": "https://a.example.com", "models": [{ "name": "m" }] } }),
        json!({ "provider": "anthropic-compatible", "config": { "baseUrl": "https://a.example.com", "apiKeySecretName": "a", "authTokenSecretName": "b", "models": [{ "name": "m" }] } }),
        json!({ "provider": "managed", "config": { "apiKeySecretName": "k" } }),
        json!({ "provider": "port", "config": {} }),
        json!({ "provider": "openai", "config": { "apiKeySecretName": "k" }, "overrides": { "models": { "gpt-4": { "enabled": true } } } }),
        json!({ "provider": "openai", "config": { "apiKeySecretName": "k" }, "overrides": { "models": { "gpt-5": { "enabled": true, "x": 1 } } } }),
    ];
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        for body in &invalid {
            let response = server
                .post("/v1/llm-providers", &org.admin, body.clone())
                .await;
            assert_eq!(
                response.status.as_u16(),
                400,
                "{body} was accepted: {}",
                response.json
            );
            assert!(
                response.json["error"] == "LLMProviderInvalidConfigError"
                    || response.json["error"] == "invalid_request",
                "{body}: {}",
                response.json
            );
        }
        // Unknown top-level keys are rejected too.
        server
            .post("/v1/llm-providers", &org.admin, json!({ "provider": "openai", "config": { "apiKeySecretName": "k" }, "extra": true }))
            .await
            .expect_error(400, "invalid_request");
        // Nothing was saved by any failed attempt.
        let list = server
            .get("/v1/llm-providers", &org.admin)
            .await
            .expect(200);
        assert_eq!(list.result().as_array().unwrap().len(), 1, "{}", list.json);
        server.stop();
    }
}

/// Sends every PUT at once; each must succeed.
async fn put_all_at_once(
    server: &Server,
    token: &str,
    path: &str,
    patches: impl Iterator<Item = Value>,
) {
    let puts = patches.map(|patch| async move {
        server.put(path, token, patch).await.expect(200);
    });
    futures_util::future::join_all(puts).await;
}

/// Concurrent partial PUTs each change a different model override; a read-merge-write that
/// is not atomic loses some of them (issue 19, item 1).
#[tokio::test]
async fn concurrent_partial_puts_all_survive() {
    const WRITERS: usize = 12;
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let models: Vec<Value> = (0..WRITERS)
            .map(|i| json!({ "name": format!("m-{i}") }))
            .collect();
        let body = json!({ "provider": "openai-compatible", "config": {
            "baseUrl": "https://llm.example.com/v1", "apiKeySecretName": "k", "models": models } });
        server
            .post("/v1/llm-providers", &org.admin, body)
            .await
            .expect(201);
        let patches = (0..WRITERS).map(
            |i| json!({ "overrides": { "models": { format!("m-{i}"): { "enabled": false } } } }),
        );
        let path = "/v1/llm-providers/openai-compatible";
        put_all_at_once(&server, &org.admin, path, patches).await;
        let stored = server
            .get("/v1/llm-providers/openai-compatible", &org.admin)
            .await
            .expect(200);
        let effective = &stored.result()["effectiveModels"];
        for i in 0..WRITERS {
            assert_eq!(
                effective[format!("m-{i}")],
                json!({ "enabled": false }),
                "{backend:?}: the PUT for m-{i} was lost: {effective}"
            );
        }
        server.stop();
    }
}

/// Concurrent partial PUTs of the data controls: the one that turns content off is never
/// undone by another that only changes the retention (issue 19, item 1).
#[tokio::test]
async fn concurrent_partial_ai_settings_puts_all_survive() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let patches = (0..12).map(|i| match i {
            5 => json!({ "storeInteractionData": false }),
            _ => json!({ "retentionDays": 3 }),
        });
        put_all_at_once(&server, &org.admin, "/v1/organization/ai-settings", patches).await;
        let stored = server
            .get("/v1/organization/ai-settings", &org.admin)
            .await
            .expect(200);
        assert_eq!(
            stored.result(),
            &json!({ "retentionDays": 3, "storeInteractionData": false }),
            "{backend:?}"
        );
        server.stop();
    }
}
