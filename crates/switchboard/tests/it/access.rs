use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Server, backends};

/// Every management write, as (method, path, body).
pub fn writes() -> Vec<(Method, &'static str, Value)> {
    vec![
        (
            Method::POST,
            "/v1/llm-providers",
            json!({ "provider": "openai", "config": { "apiKeySecretName": "k" } }),
        ),
        (
            Method::PUT,
            "/v1/llm-providers/openai",
            json!({ "enabled": false }),
        ),
        (Method::DELETE, "/v1/llm-providers/openai", Value::Null),
        (
            Method::PUT,
            "/v1/llm-providers/defaults",
            json!({ "provider": "managed", "model": "gpt-5" }),
        ),
        (
            Method::POST,
            "/v1/organization/secrets",
            json!({ "secretName": "s2", "secretValue": "v" }),
        ),
        (
            Method::PATCH,
            "/v1/organization/secrets/s1",
            json!({ "secretValue": "v2" }),
        ),
        (Method::DELETE, "/v1/organization/secrets/s1", Value::Null),
        (
            Method::PUT,
            "/v1/organization/ai-settings",
            json!({ "retentionDays": 7 }),
        ),
        (
            Method::POST,
            "/v1/users",
            json!({ "email": "new@acme.test", "role": "admin" }),
        ),
    ]
}

async fn seed(server: &Server, admin: &str) {
    server
        .post(
            "/v1/llm-providers",
            admin,
            json!({ "provider": "openai", "config": { "apiKeySecretName": "k" } }),
        )
        .await
        .expect(201);
    server
        .post(
            "/v1/organization/secrets",
            admin,
            json!({ "secretName": "s1", "secretValue": "v" }),
        )
        .await
        .expect(201);
}

fn body_of(body: &Value) -> Option<&Value> {
    (!body.is_null()).then_some(body)
}

#[tokio::test]
async fn members_read_but_every_write_is_forbidden_and_audited() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        seed(&server, &org.admin).await;
        for (method, path, body) in writes() {
            server
                .call(method.clone(), path, Some(&org.member), body_of(&body))
                .await
                .expect_error(403, "llm_provider_manage_forbidden");
        }
        // Nothing changed.
        let openai = server
            .get("/v1/llm-providers/openai", &org.member)
            .await
            .expect(200);
        assert_eq!(openai.result()["enabled"], true);
        server
            .get("/v1/llm-providers", &org.member)
            .await
            .expect(200);
        server
            .get("/v1/llm-providers/defaults", &org.member)
            .await
            .expect(200);
        server
            .get("/v1/organization/ai-settings", &org.member)
            .await
            .expect(200);
        // Each denial is in the audit log.
        let audit = server
            .get("/v1/audit-log?limit=200", &org.admin)
            .await
            .expect(200);
        let denied = audit
            .result()
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["status"] == "denied")
            .count();
        assert_eq!(denied, writes().len());
        // The admin can do every one of them.
        for (method, path, body) in writes() {
            let response = server
                .call(method.clone(), path, Some(&org.admin), body_of(&body))
                .await;
            assert!(
                response.status.is_success(),
                "{method} {path}: {}",
                response.json
            );
        }
        server.stop();
    }
}

#[tokio::test]
async fn unauthenticated_and_bad_tokens_get_401() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        server
            .call(Method::GET, "/v1/llm-providers", None, None)
            .await
            .expect_error(401, "unauthorized");
        server
            .get("/v1/llm-providers", "sb_nope_nope")
            .await
            .expect_error(401, "unauthorized");
        let forged = format!("{}x", org.admin);
        server
            .get("/v1/llm-providers", &forged)
            .await
            .expect_error(401, "unauthorized");
        for (method, path, body) in writes() {
            server
                .call(method, path, None, body_of(&body))
                .await
                .expect_error(401, "unauthorized");
        }
        server.stop();
    }
}

#[tokio::test]
async fn first_start_prints_a_working_admin_token() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let token = server.first_start_token();
        let list = server.get("/v1/llm-providers", &token).await.expect(200);
        assert_eq!(list.result()[0]["provider"], "managed");
        // The token is on stdout once, never in the log.
        let log = server.stop();
        assert!(!log.contains(&token));
    }
}

#[tokio::test]
async fn admins_create_users_and_client_credentials_yield_access_tokens() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let created = server
            .post(
                "/v1/users",
                &org.admin,
                json!({ "email": "Dev@Acme.test", "role": "member" }),
            )
            .await
            .expect(201);
        assert_eq!(created.json["ok"], true);
        assert_eq!(created.json["user"]["email"], "dev@acme.test");
        assert_eq!(created.json["user"]["role"], "member");
        let token = created.json["token"].as_str().unwrap().to_owned();
        server.get("/v1/llm-providers", &token).await.expect(200);
        server
            .put(
                "/v1/llm-providers/managed",
                &token,
                json!({ "enabled": false }),
            )
            .await
            .expect_error(403, "llm_provider_manage_forbidden");
        // Emails are unique across the instance.
        server
            .post(
                "/v1/users",
                &org.admin,
                json!({ "email": "dev@acme.test", "role": "admin" }),
            )
            .await
            .expect_error(409, "conflict");
        server
            .post(
                "/v1/users",
                &org.admin,
                json!({ "email": "x@acme.test", "role": "owner" }),
            )
            .await
            .expect_error(400, "invalid_request");

        let exchanged = server
            .call(Method::POST, "/v1/auth/access_token", None,
                  Some(&json!({ "clientId": org.member_client_id, "clientSecret": org.member_client_secret })))
            .await
            .expect(200);
        assert_eq!(exchanged.json["ok"], true);
        assert_eq!(exchanged.json["tokenType"], "Bearer");
        assert_eq!(exchanged.json["expiresIn"], 3600);
        let access = exchanged.json["accessToken"].as_str().unwrap();
        let me = server
            .get("/v1/llm-providers/defaults", access)
            .await
            .expect(200);
        assert_eq!(me.json["ok"], true);
        server
            .call(
                Method::POST,
                "/v1/auth/access_token",
                None,
                Some(&json!({ "clientId": org.member_client_id, "clientSecret": "wrong" })),
            )
            .await
            .expect_error(401, "unauthorized");
        server.stop();
    }
}

#[tokio::test]
async fn cli_token_create_issues_a_working_token() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let issued = server.cli_json(&[
            "token",
            "create",
            "--org",
            &org.name,
            "--email",
            "member@acme.test",
        ]);
        let token = issued["token"].as_str().unwrap();
        server.get("/v1/llm-providers", token).await.expect(200);
        let missing = server.cli(&[
            "token",
            "create",
            "--org",
            "acme",
            "--email",
            "nobody@acme.test",
        ]);
        assert!(!missing.status.success());
        server.stop();
    }
}
