//! Master-key rotation through the CLI, with the server's tokens surviving a restart under
//! the new key ring.

use serde_json::json;

use crate::harness::{Backend, KeySource, Server, TEST_MASTER_KEY, backends};

const SECOND_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";

#[tokio::test]
async fn rotation_with_a_key_file_adds_a_version_and_keeps_everything_working() {
    let server = Server::start_with(Backend::Sqlite, KeySource::File).await;
    let org = server.org("acme");
    server
        .post(
            "/v1/organization/secrets",
            &org.admin,
            json!({ "secretName": "k", "secretValue": "v" }),
        )
        .await
        .expect(201);
    let rotated = server.cli_json(&["keys", "rotate"]);
    assert_eq!(rotated["ok"], true);
    assert_eq!(rotated["currentVersion"], 2);
    assert!(rotated["rewrapped"].as_u64().unwrap() >= 2, "{rotated}");
    let again = server.cli_json(&["keys", "rotate", "--no-new-version"]);
    assert_eq!(again["rewrapped"], 0);

    let server = server.restart();
    server
        .get("/v1/organization/secrets/k", &org.admin)
        .await
        .expect(200);
    server
        .get("/v1/llm-providers", &org.member)
        .await
        .expect(200);
    server.stop();
}

#[tokio::test]
async fn rotation_with_an_environment_key_uses_the_versions_given() {
    for backend in backends() {
        let mut server =
            Server::start_with(backend, KeySource::Env(format!("1:{TEST_MASTER_KEY}"))).await;
        let org = server.org("acme");
        // The key lives in the environment: the CLI cannot add a version there itself.
        let refused = server.cli(&["keys", "rotate"]);
        assert!(!refused.status.success());
        assert!(String::from_utf8_lossy(&refused.stderr).contains("--no-new-version"));

        server.set_env(
            "SWITCHBOARD_MASTER_KEY",
            &format!("2:{SECOND_KEY},1:{TEST_MASTER_KEY}"),
        );
        let rotated = server.cli_json(&["keys", "rotate", "--no-new-version", "--batch", "1"]);
        assert_eq!(rotated["currentVersion"], 2);
        assert!(rotated["rewrapped"].as_u64().unwrap() >= 2, "{rotated}");

        // Version 1 is no longer needed.
        server.set_env("SWITCHBOARD_MASTER_KEY", &format!("2:{SECOND_KEY}"));
        let server = server.restart();
        server
            .get("/v1/llm-providers", &org.admin)
            .await
            .expect(200);
        server
            .post(
                "/v1/organization/secrets",
                &org.admin,
                json!({ "secretName": "k", "secretValue": "v" }),
            )
            .await
            .expect(201);
        server.stop();
    }
}
