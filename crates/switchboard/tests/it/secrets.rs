use serde_json::json;

use crate::harness::{CANARY, Server, backends};

#[tokio::test]
async fn secrets_are_write_only() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let created = server
            .post("/v1/organization/secrets", &org.admin,
                  json!({ "secretName": "openai-api-key", "secretValue": CANARY, "description": "prod key" }))
            .await
            .expect(201);
        assert_eq!(created.result()["secretName"], "openai-api-key");
        assert_eq!(created.result()["description"], "prod key");
        assert!(created.result().get("secretValue").is_none());
        server
            .post(
                "/v1/organization/secrets",
                &org.admin,
                json!({ "secretName": "openai-api-key", "secretValue": "x" }),
            )
            .await
            .expect_error(409, "conflict");
        let list = server
            .get("/v1/organization/secrets", &org.admin)
            .await
            .expect(200);
        assert_eq!(list.result().as_array().unwrap().len(), 1);
        assert!(list.json["nextCursor"].is_null());
        let one = server
            .get("/v1/organization/secrets/openai-api-key", &org.admin)
            .await
            .expect(200);
        assert_eq!(one.result()["secretName"], "openai-api-key");
        let patched = server
            .patch(
                "/v1/organization/secrets/openai-api-key",
                &org.admin,
                json!({ "secretValue": format!("{CANARY}-v2"), "description": null }),
            )
            .await
            .expect(200);
        assert!(patched.result()["description"].is_null());
        server
            .patch(
                "/v1/organization/secrets/missing",
                &org.admin,
                json!({ "secretValue": "x" }),
            )
            .await
            .expect_error(404, "not_found");
        // A secret a provider names cannot be deleted from under it.
        server
            .post(
                "/v1/llm-providers",
                &org.admin,
                json!({ "provider": "openai", "config": { "apiKeySecretName": "openai-api-key" } }),
            )
            .await
            .expect(201);
        let refused = server
            .delete("/v1/organization/secrets/openai-api-key", &org.admin)
            .await
            .expect_error(409, "conflict");
        assert_eq!(refused.json["details"]["providers"], json!(["openai"]));
        server
            .delete("/v1/llm-providers/openai", &org.admin)
            .await
            .expect(204);
        server
            .delete("/v1/organization/secrets/openai-api-key", &org.admin)
            .await
            .expect(200);
        server
            .get("/v1/organization/secrets/openai-api-key", &org.admin)
            .await
            .expect_error(404, "not_found");
        server
            .delete("/v1/organization/secrets/openai-api-key", &org.admin)
            .await
            .expect_error(404, "not_found");
        server.stop();
    }
}

#[tokio::test]
async fn secret_input_is_validated_without_echoing_values() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let post = |body| server.post("/v1/organization/secrets", &org.admin, body);
        post(json!({ "secretName": "bad name!", "secretValue": CANARY }))
            .await
            .expect_error(400, "invalid_request");
        post(json!({ "secretName": "x".repeat(101), "secretValue": CANARY }))
            .await
            .expect_error(400, "invalid_request");
        post(json!({ "secretName": "ok", "secretValue": "" }))
            .await
            .expect_error(400, "invalid_request");
        post(json!({ "secretName": "ok", "secretValue": CANARY, "descripton": "typo" }))
            .await
            .expect_error(400, "invalid_request");
        // A value sent where a boolean or number belongs is not echoed in the error.
        post(json!({ "secretName": "ok", "secretValue": CANARY, "description": 5 }))
            .await
            .expect_error(400, "invalid_request");
        post(json!({ "secretName": CANARY, "secretValue": 5 }))
            .await
            .expect(400);
        server.stop();
    }
}
