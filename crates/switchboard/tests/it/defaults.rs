use serde_json::json;

use crate::harness::{Server, backends};

#[tokio::test]
async fn defaults_follow_the_organization_then_fall_back_to_the_system() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        // Nothing chosen yet: the system default is in force.
        let initial = server
            .get("/v1/llm-providers/defaults", &org.member)
            .await
            .expect(200);
        assert_eq!(initial.result()["provider"], "managed");
        assert_eq!(initial.result()["model"], "claude-haiku-4-5-20251001");
        assert_eq!(initial.result()["source"], "system");

        server
            .post(
                "/v1/llm-providers",
                &org.admin,
                json!({ "provider": "openai", "config": { "apiKeySecretName": "k" } }),
            )
            .await
            .expect(201);
        let set = server
            .put(
                "/v1/llm-providers/defaults",
                &org.admin,
                json!({ "provider": "openai", "model": "gpt-5" }),
            )
            .await
            .expect(200);
        assert_eq!(set.result()["provider"], "openai");
        assert_eq!(set.result()["model"], "gpt-5");
        assert_eq!(set.result()["source"], "organization");
        assert_eq!(set.result()["updatedBy"], "admin@acme.test");
        let read = server
            .get("/v1/llm-providers/defaults", &org.member)
            .await
            .expect(200);
        assert_eq!(read.result()["source"], "organization");

        // Disabling the provider puts the system default in force and says why.
        server
            .put(
                "/v1/llm-providers/openai",
                &org.admin,
                json!({ "enabled": false }),
            )
            .await
            .expect(200);
        let fallback = server
            .get("/v1/llm-providers/defaults", &org.member)
            .await
            .expect(200);
        assert_eq!(fallback.result()["source"], "system");
        assert_eq!(fallback.result()["provider"], "managed");
        assert_eq!(
            fallback.result()["organizationDefault"]["provider"],
            "openai"
        );
        assert_eq!(
            fallback.result()["organizationDefault"]["notInForceBecause"],
            "provider_disabled"
        );

        // Re-enabling restores it; deleting falls back again.
        server
            .put(
                "/v1/llm-providers/openai",
                &org.admin,
                json!({ "enabled": true }),
            )
            .await
            .expect(200);
        let restored = server
            .get("/v1/llm-providers/defaults", &org.member)
            .await
            .expect(200);
        assert_eq!(restored.result()["source"], "organization");
        server
            .delete("/v1/llm-providers/openai", &org.admin)
            .await
            .expect(204);
        let deleted = server
            .get("/v1/llm-providers/defaults", &org.member)
            .await
            .expect(200);
        assert_eq!(deleted.result()["source"], "system");
        assert_eq!(
            deleted.result()["organizationDefault"]["notInForceBecause"],
            "provider_deleted"
        );
        server.stop();
    }
}

#[tokio::test]
async fn defaults_are_checked_against_the_providers_effective_models() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let put = |body| server.put("/v1/llm-providers/defaults", &org.admin, body);
        put(json!({ "provider": "openai", "model": "gpt-5" }))
            .await
            .expect_error(404, "LLMProviderNotFoundError");
        put(json!({ "provider": "managed", "model": "gpt-4o" }))
            .await
            .expect_error(400, "LLMProviderModelNotEnabledError");
        server
            .put(
                "/v1/llm-providers/managed",
                &org.admin,
                json!({ "overrides": { "models": { "gpt-5": { "enabled": false } } } }),
            )
            .await
            .expect(200);
        put(json!({ "provider": "managed", "model": "gpt-5" }))
            .await
            .expect_error(400, "LLMProviderModelNotEnabledError");
        put(json!({ "provider": "managed", "model": "claude-sonnet-4-5-20250929" }))
            .await
            .expect(200);
        server
            .put(
                "/v1/llm-providers/managed",
                &org.admin,
                json!({ "enabled": false }),
            )
            .await
            .expect(200);
        put(json!({ "provider": "managed", "model": "claude-sonnet-4-5-20250929" }))
            .await
            .expect_error(400, "LLMProviderDisabledError");
        put(json!({ "provider": "managed" }))
            .await
            .expect_error(400, "invalid_request");
        put(json!({ "provider": "managed", "model": "x", "extra": 1 }))
            .await
            .expect_error(400, "invalid_request");
        server.stop();
    }
}
