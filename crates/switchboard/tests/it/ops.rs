use reqwest::Method;
use serde_json::{Value, json};

use crate::harness::{Server, backends};

#[tokio::test]
async fn health_readiness_metrics_and_request_ids() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let health = server
            .call(Method::GET, "/healthz", None, None)
            .await
            .expect(200);
        assert!(health.headers.contains_key("x-request-id"));
        let ready = server
            .call(Method::GET, "/readyz", None, None)
            .await
            .expect(200);
        let expected = match backend {
            crate::harness::Backend::Sqlite => "sqlite",
            crate::harness::Backend::Postgres => "postgres",
        };
        assert_eq!(ready.json["database"], expected);
        let metrics = server
            .send(server.request(Method::GET, "/metrics"))
            .await
            .expect(200);
        let text = metrics.json.as_str().unwrap();
        assert!(text.contains("switchboard_http_requests_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1"), "{text}");
        server
            .call(Method::GET, "/v1/nope", None, None)
            .await
            .expect_error(404, "not_found");
        let log = server.stop();
        assert!(
            log.lines()
                .any(|l| l.contains("\"route\":\"/healthz\"") && l.contains("request_id"))
        );
    }
}

#[tokio::test]
async fn openapi_describes_every_management_route() {
    let server = Server::start(crate::harness::Backend::Sqlite).await;
    let doc = server
        .call(Method::GET, "/openapi.json", None, None)
        .await
        .expect(200)
        .json;
    assert_eq!(doc["openapi"], "3.1.0");
    let expected = [
        ("/v1/llm-providers", vec!["get", "post"]),
        ("/v1/llm-providers/{provider}", vec!["get", "put", "delete"]),
        ("/v1/llm-providers/defaults", vec!["get", "put"]),
        ("/v1/organization/secrets", vec!["get", "post"]),
        (
            "/v1/organization/secrets/{name}",
            vec!["get", "patch", "delete"],
        ),
        ("/v1/organization/ai-settings", vec!["get", "put"]),
        ("/v1/audit-log", vec!["get"]),
        ("/v1/users", vec!["get", "post"]),
        ("/v1/users/{id}", vec!["get", "patch", "delete"]),
        ("/v1/tokens", vec!["get", "post"]),
        ("/v1/tokens/{id}", vec!["delete"]),
        ("/v1/auth/access_token", vec!["post"]),
        ("/healthz", vec!["get"]),
        ("/readyz", vec!["get"]),
        ("/metrics", vec!["get"]),
    ];
    for (path, methods) in expected {
        for method in methods {
            assert!(
                doc["paths"][path][method].is_object(),
                "{method} {path} missing from /openapi.json"
            );
        }
    }
    let printed = server.cli(&["openapi"]);
    let cli_doc: Value = serde_json::from_slice(&printed.stdout).unwrap();
    assert_eq!(cli_doc, doc);
    server.stop();
}

#[tokio::test]
async fn oversized_deep_and_malformed_bodies_are_clear_400s_and_413s() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let big = json!({ "secretName": "big", "secretValue": "x".repeat(1024 * 1024 + 1) });
        server
            .post("/v1/organization/secrets", &org.admin, big)
            .await
            .expect_error(413, "payload_too_large");
        let deep = format!(
            r#"{{"provider":"openai","config":{{"a":{}1{}}}}}"#,
            "[".repeat(200),
            "]".repeat(200)
        );
        let response = server
            .send(
                server
                    .request(Method::POST, "/v1/llm-providers")
                    .bearer_auth(&org.admin)
                    .header("content-type", "application/json")
                    .body(deep),
            )
            .await
            .expect_error(400, "invalid_request");
        assert!(
            response.json["message"]
                .as_str()
                .unwrap()
                .contains("too deep")
        );
        server
            .send(
                server
                    .request(Method::POST, "/v1/llm-providers")
                    .bearer_auth(&org.admin)
                    .body("{not json"),
            )
            .await
            .expect_error(400, "invalid_request");
        server.stop();
    }
}

#[tokio::test]
async fn ai_settings_round_trip_within_bounds() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let initial = server
            .get("/v1/organization/ai-settings", &org.member)
            .await
            .expect(200);
        assert_eq!(
            initial.result(),
            &json!({ "retentionDays": 30, "storeInteractionData": true })
        );
        let saved = server
            .put(
                "/v1/organization/ai-settings",
                &org.admin,
                json!({ "retentionDays": 7 }),
            )
            .await
            .expect(200);
        assert_eq!(
            saved.result(),
            &json!({ "retentionDays": 7, "storeInteractionData": true })
        );
        let off = server
            .put(
                "/v1/organization/ai-settings",
                &org.admin,
                json!({ "storeInteractionData": false }),
            )
            .await
            .expect(200);
        assert_eq!(
            off.result(),
            &json!({ "retentionDays": 7, "storeInteractionData": false })
        );
        for days in [0, 31, 365] {
            server
                .put(
                    "/v1/organization/ai-settings",
                    &org.admin,
                    json!({ "retentionDays": days }),
                )
                .await
                .expect_error(400, "invalid_request");
        }
        let after = server
            .get("/v1/organization/ai-settings", &org.admin)
            .await
            .expect(200);
        assert_eq!(after.result()["retentionDays"], 7);
        server.stop();
    }
}

/// A handler that panics answers 500 in its caller's error format (the connection stays
/// usable), is counted in `/metrics`, and its message, which here holds the canary, reaches
/// neither the response nor the log (issue 19, item 4). The panicking request exists only
/// in debug builds started with `SWITCHBOARD_TEST_PANICS=1`.
#[tokio::test]
async fn panics_answer_500_in_the_callers_format() {
    use crate::harness::{CANARY, KeySource, TEST_MASTER_KEY};
    let env = vec![("SWITCHBOARD_TEST_PANICS".to_owned(), "1".to_owned())];
    let backend = backends()[0];
    let server = Server::start_opts(backend, KeySource::Env(TEST_MASTER_KEY.into()), env).await;
    let panicking = |method: Method, path: &str| {
        server
            .request(method, path)
            .header("x-switchboard-test-panic", CANARY)
            .header("content-type", "application/json")
            .body("{}")
    };
    let openai = server
        .send(panicking(Method::POST, "/v1/chat/completions"))
        .await
        .expect(500);
    assert_eq!(
        openai.json["error"]["code"], "internal_error",
        "{}",
        openai.json
    );
    assert_eq!(openai.json["error"]["type"], "server_error");
    let anthropic = server
        .send(panicking(Method::POST, "/v1/messages"))
        .await
        .expect(500);
    assert_eq!(anthropic.json["type"], "error", "{}", anthropic.json);
    assert!(anthropic.json["error"]["type"].is_string());
    for (method, path) in [
        (Method::GET, "/v1/llm-providers"),
        (Method::POST, "/v1/ai/invoke"),
    ] {
        let port = server.send(panicking(method, path)).await.expect(500);
        assert_eq!(port.json["ok"], false, "{path}: {}", port.json);
    }
    // The process and its connections carry on.
    let metrics = server
        .send(server.request(Method::GET, "/metrics"))
        .await
        .expect(200);
    let text = metrics.json.as_str().unwrap();
    assert!(text.contains("switchboard_http_panics_total 4"), "{text}");
    assert!(
        text.contains(r#"route="/v1/messages",status="500""#),
        "{text}"
    );
    let log = server.stop();
    let panics = log
        .lines()
        .filter(|l| l.contains(r#""message":"panicked""#));
    let panics: Vec<&str> = panics.collect();
    assert_eq!(panics.len(), 4, "{log}");
    assert!(panics.iter().all(|l| l.contains("panics.rs")), "{log}");
}
