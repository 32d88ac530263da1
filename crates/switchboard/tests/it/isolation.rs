//! Two organizations: every object endpoint, addressed with the other organization's
//! identifiers, answers exactly as if the object did not exist.

use reqwest::Method;
use serde_json::json;

use crate::harness::{Server, backends};

#[tokio::test]
async fn another_organizations_objects_are_invisible() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let a = server.org("alpha");
        let b = server.org("beta");
        server
            .post(
                "/v1/llm-providers",
                &a.admin,
                json!({ "provider": "openai", "config": { "apiKeySecretName": "alpha-key" } }),
            )
            .await
            .expect(201);
        server
            .post(
                "/v1/organization/secrets",
                &a.admin,
                json!({ "secretName": "alpha-key", "secretValue": "v" }),
            )
            .await
            .expect(201);
        server
            .put(
                "/v1/llm-providers/defaults",
                &a.admin,
                json!({ "provider": "managed", "model": "gpt-5" }),
            )
            .await
            .expect(200);
        server
            .put(
                "/v1/organization/ai-settings",
                &a.admin,
                json!({ "retentionDays": 3 }),
            )
            .await
            .expect(200);

        // B's admin, on A's objects: 404 everywhere, nothing touched.
        let not_found = [
            (Method::GET, "/v1/llm-providers/openai", None),
            (
                Method::PUT,
                "/v1/llm-providers/openai",
                Some(json!({ "enabled": false })),
            ),
            (Method::DELETE, "/v1/llm-providers/openai", None),
            (Method::GET, "/v1/organization/secrets/alpha-key", None),
            (
                Method::PATCH,
                "/v1/organization/secrets/alpha-key",
                Some(json!({ "secretValue": "stolen" })),
            ),
            (Method::DELETE, "/v1/organization/secrets/alpha-key", None),
        ];
        for (method, path, body) in not_found {
            let response = server
                .call(method.clone(), path, Some(&b.admin), body.as_ref())
                .await;
            assert_eq!(
                response.status.as_u16(),
                404,
                "{method} {path}: {}",
                response.json
            );
        }
        // B cannot point its default at A's provider.
        server
            .put(
                "/v1/llm-providers/defaults",
                &b.admin,
                json!({ "provider": "openai", "model": "gpt-5" }),
            )
            .await
            .expect_error(404, "LLMProviderNotFoundError");
        // B's lists and settings show only its own.
        let providers = server.get("/v1/llm-providers", &b.admin).await.expect(200);
        assert_eq!(providers.result().as_array().unwrap().len(), 1);
        let secrets = server
            .get("/v1/organization/secrets", &b.admin)
            .await
            .expect(200);
        assert_eq!(secrets.result(), &json!([]));
        let defaults = server
            .get("/v1/llm-providers/defaults", &b.admin)
            .await
            .expect(200);
        assert_eq!(defaults.result()["source"], "system");
        let settings = server
            .get("/v1/organization/ai-settings", &b.admin)
            .await
            .expect(200);
        assert_eq!(settings.result()["retentionDays"], 30);
        let audit = server
            .get("/v1/audit-log?limit=200", &b.admin)
            .await
            .expect(200);
        assert!(
            audit
                .result()
                .as_array()
                .unwrap()
                .iter()
                .all(|e| !e["resource"].as_str().unwrap().contains("alpha"))
        );

        // A's objects are intact.
        let openai = server
            .get("/v1/llm-providers/openai", &a.admin)
            .await
            .expect(200);
        assert_eq!(openai.result()["enabled"], true);
        server
            .get("/v1/organization/secrets/alpha-key", &a.admin)
            .await
            .expect(200);
        server.stop();
    }
}
