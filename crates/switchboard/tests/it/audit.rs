use serde_json::{Value, json};
use sqlx::Connection;

use crate::harness::{Backend, CANARY, Server, backends};

async fn entries(server: &Server, token: &str) -> Vec<Value> {
    let page = server
        .get("/v1/audit-log?limit=200", token)
        .await
        .expect(200);
    page.result().as_array().unwrap().clone()
}

#[tokio::test]
async fn every_write_is_audited_newest_first_without_secret_values() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        server
            .post(
                "/v1/organization/secrets",
                &org.admin,
                json!({ "secretName": "k", "secretValue": CANARY }),
            )
            .await
            .expect(201);
        server
            .patch(
                "/v1/organization/secrets/k",
                &org.admin,
                json!({ "secretValue": CANARY }),
            )
            .await
            .expect(200);
        server
            .post(
                "/v1/llm-providers",
                &org.admin,
                json!({ "provider": "openai", "config": { "apiKeySecretName": "k" } }),
            )
            .await
            .expect(201);
        server
            .put(
                "/v1/llm-providers/openai",
                &org.admin,
                json!({ "enabled": false }),
            )
            .await
            .expect(200);
        server
            .put(
                "/v1/llm-providers/defaults",
                &org.admin,
                json!({ "provider": "managed", "model": "gpt-5" }),
            )
            .await
            .expect(200);
        server
            .put(
                "/v1/organization/ai-settings",
                &org.admin,
                json!({ "storeInteractionData": false }),
            )
            .await
            .expect(200);
        server
            .delete("/v1/llm-providers/openai", &org.admin)
            .await
            .expect(204);

        let all = entries(&server, &org.admin).await;
        let actions: Vec<&str> = all.iter().map(|e| e["action"].as_str().unwrap()).collect();
        for expected in [
            "secret.create",
            "secret.update",
            "provider.create",
            "provider.update",
            "defaults.update",
            "ai_settings.update",
            "provider.delete",
            "user.create",
            "token.create",
        ] {
            assert!(
                actions.contains(&expected),
                "{expected} missing from {actions:?}"
            );
        }
        // Newest first, contiguous sequence, chained hashes.
        let seqs: Vec<i64> = all.iter().map(|e| e["seq"].as_i64().unwrap()).collect();
        assert!(seqs.windows(2).all(|w| w[0] == w[1] + 1), "{seqs:?}");
        for pair in all.windows(2) {
            assert_eq!(pair[0]["prevHash"], pair[1]["hash"]);
        }
        let update = all
            .iter()
            .find(|e| e["action"] == "provider.update")
            .unwrap();
        assert_eq!(update["actor"], "admin@acme.test");
        assert_eq!(update["status"], "success");
        assert_eq!(update["details"]["before"]["enabled"], true);
        assert_eq!(update["details"]["after"]["enabled"], false);
        // The canary was a secret value: it is in no entry (the harness also checked the body).
        assert!(!serde_json::to_string(&all).unwrap().contains(CANARY));

        // Cursor paging walks the same entries.
        let first = server
            .get("/v1/audit-log?limit=3", &org.admin)
            .await
            .expect(200);
        assert_eq!(first.result().as_array().unwrap().len(), 3);
        let cursor = first.json["nextCursor"].as_str().unwrap().to_owned();
        let second = server
            .get(
                &format!("/v1/audit-log?limit=3&cursor={cursor}"),
                &org.admin,
            )
            .await
            .expect(200);
        assert_eq!(second.result()[0]["seq"], all[3]["seq"]);
        server
            .get("/v1/audit-log", &org.member)
            .await
            .expect_error(403, "llm_provider_manage_forbidden");
        server.stop();
    }
}

/// An edit by someone with the schema owner's rights: the append-only triggers lifted, one
/// entry changed.
async fn tamper(server: &Server, entry_id: &str) {
    let sql = "UPDATE audit_log SET details = '{\"tampered\":true}' WHERE id = $1";
    match server.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&server.database_url)
                .await
                .unwrap();
            sqlx::query("DROP TRIGGER audit_log_no_update")
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query(sql)
                .bind(entry_id)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&server.database_url)
                .await
                .unwrap();
            sqlx::query("ALTER TABLE audit_log DISABLE TRIGGER USER")
                .execute(&mut conn)
                .await
                .unwrap();
            sqlx::query(sql)
                .bind(entry_id)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn audit_verify_names_the_first_tampered_entry() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        server.org("other");
        server
            .post(
                "/v1/llm-providers",
                &org.admin,
                json!({ "provider": "openai", "config": { "apiKeySecretName": "k" } }),
            )
            .await
            .expect(201);
        server
            .put(
                "/v1/llm-providers/openai",
                &org.admin,
                json!({ "enabled": false }),
            )
            .await
            .expect(200);
        let ok = server.cli(&["audit", "verify"]);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stdout)
        );

        let all = entries(&server, &org.admin).await;
        let victim = all
            .iter()
            .find(|e| e["action"] == "provider.create")
            .unwrap();
        let victim_id = victim["id"].as_str().unwrap();
        tamper(&server, victim_id).await;

        let broken = server.cli(&["audit", "verify"]);
        assert_eq!(broken.status.code(), Some(1));
        let stdout = String::from_utf8_lossy(&broken.stdout);
        assert!(stdout.contains(victim_id), "{stdout}");
        let json = server.cli(&["audit", "verify", "--org", "acme", "--json"]);
        let report: Value = serde_json::from_slice(&json.stdout).unwrap();
        assert_eq!(report["brokenEntry"], victim_id);
        // The other organization's chain still verifies on its own.
        assert!(
            server
                .cli(&["audit", "verify", "--org", "other"])
                .status
                .success()
        );
        server.stop();
    }
}
