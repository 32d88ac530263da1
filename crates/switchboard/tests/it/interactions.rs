//! AI interactions over HTTP: the Port invoke API and its event stream, polling, invocation
//! records (visibility, paging, tenancy, continuity, opt-out), the ledger under `audit
//! verify`, the managed provider's limits under concurrency, and recorder back-pressure.

use std::time::Duration;

use reqwest::Method;
use serde_json::{Value, json};
use sqlx::Connection;

use crate::gateway::{Gateway, sse_events};
use crate::harness::{Backend, CANARY, Server, backends};

/// Sends `POST /v1/ai/invoke` with `token`.
async fn invoke(gateway: &Gateway, token: &str, query: &str, body: &Value) -> reqwest::Response {
    reqwest::Client::new()
        .request(Method::POST, gateway.url(&format!("/v1/ai/invoke{query}")))
        .bearer_auth(token)
        .json(body)
        .send()
        .await
        .expect("invoke request")
}

/// A chat completion with `token`; returns the invocation id.
pub(crate) async fn chat(gateway: &Gateway, token: &str, provider: &str, prompt: &str) -> String {
    let body = json!({ "provider": provider, "model": "gpt-5",
        "messages": [{ "role": "user", "content": prompt }] });
    let response = reqwest::Client::new()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 200);
    invocation_id(&response)
}

fn invocation_id(response: &reqwest::Response) -> String {
    response.headers()["x-switchboard-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned()
}

/// Waits until the recorder has written the record (it is written off the request path).
pub(crate) async fn stored_record(server: &Server, token: &str, id: &str) -> Value {
    for _ in 0..100 {
        let response = server.get(&format!("/v1/ai/invocations/{id}"), token).await;
        if response.status == 200 {
            return response.json["result"].clone();
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("invocation {id} was never recorded");
}

async fn list_ids(server: &Server, token: &str, query: &str) -> (Vec<String>, Value) {
    let response = server
        .get(&format!("/v1/ai/invocations{query}"), token)
        .await
        .expect(200);
    let ids = response.json["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap().to_owned())
        .collect();
    (ids, response.json["nextCursor"].clone())
}

/// Runs one statement against the server's database.
pub(crate) async fn raw_exec(server: &Server, sql: &'static str, bind: &str) -> u64 {
    match server.backend {
        Backend::Sqlite => {
            let mut conn = sqlx::SqliteConnection::connect(&server.database_url)
                .await
                .unwrap();
            let done = sqlx::query(sql).bind(bind).execute(&mut conn).await;
            done.unwrap().rows_affected()
        }
        Backend::Postgres => {
            let mut conn = sqlx::PgConnection::connect(&server.database_url)
                .await
                .unwrap();
            let done = sqlx::query(sql).bind(bind).execute(&mut conn).await;
            done.unwrap().rows_affected()
        }
    }
}

/// Whether `needle` appears anywhere in the database: the SQLite files (WAL included)
/// byte for byte, or every row of every PostgreSQL table as text.
pub(crate) async fn database_contains(server: &Server, needle: &str) -> bool {
    match server.backend {
        Backend::Sqlite => {
            let path = server.database_url.trim_start_matches("sqlite://");
            ["", "-wal"].iter().any(|suffix| {
                std::fs::read(format!("{path}{suffix}"))
                    .map(|bytes| bytes.windows(needle.len()).any(|w| w == needle.as_bytes()))
                    .unwrap_or(false)
            })
        }
        Backend::Postgres => {
            use sqlx::Row;
            let mut conn = sqlx::PgConnection::connect(&server.database_url)
                .await
                .unwrap();
            let tables = sqlx::query("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
                .fetch_all(&mut conn)
                .await
                .unwrap();
            for table in tables {
                let name: String = table.get(0);
                let sql = format!(
                    "SELECT COUNT(*) FROM {name} t WHERE position($1 in CAST(t AS TEXT)) > 0"
                );
                let row = sqlx::query(sqlx::AssertSqlSafe(sql))
                    .bind(needle)
                    .fetch_one(&mut conn)
                    .await
                    .unwrap();
                if row.get::<i64, _>(0) > 0 {
                    return true;
                }
            }
            false
        }
    }
}

#[tokio::test]
async fn invoke_streams_port_events_and_is_polled() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let member = gateway.org.member.clone();
        let body = json!({ "userPrompt": "tell me a story", "systemPrompt": "Be brief.",
            "provider": "openai", "model": "gpt-5", "labels": { "team": "ml" },
            "tools": ["^(list|get)_.*"], "executionMode": "Automatic" });
        let response = invoke(&gateway, &member, "?invocation_identifier=inv-1", &body).await;
        assert_eq!(response.status(), 200);
        assert_eq!(
            response.headers()["content-type"],
            "text/event-stream; charset=utf-8"
        );
        assert_eq!(response.headers()["x-switchboard-provider"], "openai");
        assert_eq!(invocation_id(&response), "inv-1");
        let text = response.text().await.unwrap();
        assert!(!text.contains(CANARY));
        let events = sse_events(&text);
        let (last, execution) = events.split_last().unwrap();
        assert!(!execution.is_empty(), "{text}");
        for (name, data) in execution {
            assert_eq!(name, "execution", "{text}");
            assert!(serde_json::from_str::<Value>(data).is_err() || data.is_empty());
        }
        let answer: String = execution.iter().map(|(_, d)| d.as_str()).collect();
        assert!(!answer.is_empty());
        assert_eq!(last.0, "done");
        let done: Value = serde_json::from_str(&last.1).unwrap();
        for key in [
            "maxRequests",
            "remainingRequests",
            "maxTokens",
            "remainingTokens",
            "remainingTimeMs",
        ] {
            assert!(done["rateLimitUsage"][key].is_u64(), "{key}: {done}");
        }
        for key in ["monthlyLimit", "remainingQuota", "remainingTimeMs"] {
            assert!(done["monthlyQuotaUsage"][key].is_u64(), "{key}: {done}");
        }
        let month = done["monthlyQuotaUsage"]["month"].as_str().unwrap();
        assert!(month.len() == 7 && month.as_bytes()[4] == b'-', "{month}");

        // The record: the invoke surface, who served it, labels, tools, content.
        let server = &gateway.server;
        let record = stored_record(server, &member, "inv-1").await;
        assert_eq!(record["surface"], "invoke");
        assert_eq!(record["provider"], "openai");
        assert_eq!(record["model"], "gpt-5");
        assert_eq!(record["status"], "Completed");
        assert!(record["errorName"].is_null());
        assert_eq!(record["labels"], json!({ "team": "ml" }));
        assert_eq!(record["tools"], json!(["^(list|get)_.*"]));
        assert_eq!(record["content"]["prompt"], "tell me a story");
        assert_eq!(record["content"]["response"], answer.as_str());
        assert!(record["usage"]["inputTokens"].as_u64().unwrap() > 0);
        assert!(record["timings"]["totalMs"].is_u64());
        assert!(record["timings"]["firstTokenMs"].is_u64());
        let polled = server.get("/v1/ai/invoke/inv-1", &member).await.expect(200);
        assert_eq!(polled.json["result"]["status"], "Completed");
        assert_eq!(polled.json["result"]["message"], answer.as_str());

        // The id is unique per organization.
        let again = invoke(&gateway, &member, "?invocation_identifier=inv-1", &body).await;
        assert_eq!(again.status(), 409);
        let again: Value = again.json().await.unwrap();
        assert_eq!(
            (again["ok"].clone(), again["error"].clone()),
            (json!(false), json!("conflict"))
        );

        // Polling shows "In Progress" while it runs; `prompt` is an alias of `userPrompt`.
        let slow = json!({ "prompt": "slowly [[sim:delay_ms=250 chunks=4]]", "provider": "anthropic",
            "model": "claude-sonnet-4-5-20250929" });
        let url = gateway.url("/v1/ai/invoke?invocation_identifier=slow-1");
        let request = reqwest::Client::new()
            .post(url)
            .bearer_auth(&member)
            .json(&slow);
        let running =
            tokio::spawn(async move { request.send().await.unwrap().text().await.unwrap() });
        tokio::time::sleep(Duration::from_millis(300)).await;
        let polled = server
            .get("/v1/ai/invoke/slow-1", &member)
            .await
            .expect(200);
        assert_eq!(polled.json["result"]["status"], "In Progress");
        let text = running.await.unwrap();
        assert_eq!(sse_events(&text).last().unwrap().0, "done", "{text}");
        let record = stored_record(server, &member, "slow-1").await;
        assert_eq!(record["provider"], "anthropic");
        assert_eq!(record["status"], "Completed");

        // Failures before the stream are Port envelopes ...
        for (body, status, name) in [
            (
                json!({ "userPrompt": "x", "provider": "port" }),
                404,
                "LLMProviderNotFoundError",
            ),
            (
                json!({ "userPrompt": "x", "provider": "openai", "model": "gpt-9" }),
                400,
                "LLMProviderModelNotEnabledError",
            ),
            (
                json!({ "systemPrompt": "no prompt" }),
                400,
                "invalid_request",
            ),
            (
                json!({ "userPrompt": "x", "unknown": 1 }),
                400,
                "invalid_request",
            ),
            (
                json!({ "userPrompt": "x", "executionMode": "Sometimes" }),
                400,
                "invalid_request",
            ),
        ] {
            let response = invoke(&gateway, &member, "", &body).await;
            assert_eq!(response.status(), status, "{body}");
            let json: Value = response.json().await.unwrap();
            assert_eq!(json["ok"], false);
            assert_eq!(json["error"], name, "{json}");
        }
        let bad_id = invoke(&gateway, &member, "?invocation_identifier=a%20b", &body).await;
        assert_eq!(bad_id.status(), 400);

        // ... and failures during it an `error` event with a JSON body; the record says so.
        let broken = json!({ "userPrompt": "one two three [[sim:error_event]]", "provider": "openai",
            "model": "gpt-5" });
        let response = invoke(
            &gateway,
            &member,
            "?invocation_identifier=broken-1",
            &broken,
        )
        .await;
        assert_eq!(response.status(), 200);
        let text = response.text().await.unwrap();
        let events = sse_events(&text);
        let (last, _) = events.split_last().unwrap();
        assert_eq!(last.0, "error", "{text}");
        let error: Value = serde_json::from_str(&last.1).unwrap();
        assert!(error["error"].is_string() && error["message"].is_string());
        assert!(!events.iter().any(|(name, _)| name == "done"));
        let record = stored_record(server, &member, "broken-1").await;
        assert_eq!(record["status"], "Failed");
        let polled = server
            .get("/v1/ai/invoke/broken-1", &member)
            .await
            .expect(200);
        assert_eq!(polled.json["result"]["status"], "Failed");
        server
            .get("/v1/ai/invoke/never-was", &member)
            .await
            .expect_error(404, "not_found");
        gateway.server.stop();
    }
}

#[tokio::test]
async fn invocations_list_by_visibility_pages_and_stay_in_their_organization() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let (admin, member) = (gateway.org.admin.clone(), gateway.org.member.clone());
        let mut member_ids = Vec::new();
        for n in 0..3 {
            member_ids.push(chat(&gateway, &member, "openai", &format!("member {n}")).await);
        }
        let admin_id = chat(&gateway, &admin, "openai", "admin").await;
        let body = json!({ "model": "claude-sonnet-4-5-20250929", "provider": "anthropic",
            "max_tokens": 64, "messages": [{ "role": "user", "content": "via messages" }] });
        let response = gateway.post("/v1/messages", &body).await;
        assert_eq!(response.status(), 200);
        member_ids.push(invocation_id(&response));

        // Records queued at shutdown are written before the process exits.
        let Gateway { server, sim, org } = gateway;
        let server = server.restart();
        let gateway = Gateway { server, sim, org };
        let server = &gateway.server;

        let (own, _) = list_ids(server, &member, "").await;
        let mut expected = member_ids.clone();
        expected.reverse();
        assert_eq!(own, expected, "a member sees only their own, newest first");
        let (all, _) = list_ids(server, &admin, "").await;
        assert_eq!(all.len(), 5);
        assert!(all.contains(&admin_id));
        let record = stored_record(server, &member, &member_ids[3]).await;
        assert_eq!(record["surface"], "anthropic");

        // Paging: the cursor continues exactly after the previous page.
        let (first, cursor) = list_ids(server, &admin, "?limit=2").await;
        let cursor = cursor.as_str().unwrap().to_owned();
        let (second, _) = list_ids(server, &admin, &format!("?limit=2&cursor={cursor}")).await;
        let (third, end) = list_ids(server, &admin, "?limit=2&cursor=").await;
        assert_eq!(first, all[..2]);
        assert_eq!(second, all[2..4]);
        assert_eq!(third, all[..2], "an empty cursor is the first page");
        let _ = end;
        server
            .get("/v1/ai/invocations?cursor=junk", &admin)
            .await
            .expect_error(400, "invalid_request");

        // Another member's record (and the admin's) is a 404 to a member; admins see all.
        server
            .get(&format!("/v1/ai/invocations/{admin_id}"), &member)
            .await
            .expect_error(404, "not_found");
        server
            .get(&format!("/v1/ai/invoke/{admin_id}"), &member)
            .await
            .expect_error(404, "not_found");
        server
            .get(&format!("/v1/ai/invocations/{}", member_ids[0]), &admin)
            .await
            .expect(200);

        // Another organization sees none of it.
        let other = server.org("other");
        for token in [&other.admin, &other.member] {
            let (ids, _) = list_ids(server, token, "").await;
            assert!(ids.is_empty());
            server
                .get(&format!("/v1/ai/invocations/{admin_id}"), token)
                .await
                .expect_error(404, "not_found");
        }
        let doc = server.get("/openapi.json", &member).await.expect(200).json;
        for (path, method) in [
            ("/v1/ai/invoke", "post"),
            ("/v1/ai/invoke/{id}", "get"),
            ("/v1/ai/invocations", "get"),
            ("/v1/ai/invocations/{id}", "get"),
            ("/v1/quota/ai-invocations", "get"),
        ] {
            assert!(doc["paths"][path][method].is_object(), "{method} {path}");
        }
        let quota = server
            .get("/v1/quota/ai-invocations", &member)
            .await
            .expect(200);
        assert_eq!(quota.json["ok"], true);
        assert_eq!(quota.json["monthlyQuotaUsage"]["monthlyLimit"], 500);
        // No response above carried the canary (the harness checks every body); nor does
        // the database hold the organization's secret in an invocation.
        assert!(!database_contains(server, CANARY).await);
        gateway.server.stop();
    }
}

#[tokio::test]
async fn switching_and_deleting_providers_leaves_records_identical() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let (admin, member) = (gateway.org.admin.clone(), gateway.org.member.clone());
        let server = &gateway.server;
        let id = chat(&gateway, &member, "openai", "before the switch").await;
        let before = stored_record(server, &member, &id).await.to_string();
        server
            .put(
                "/v1/llm-providers/defaults",
                &admin,
                json!({ "provider": "anthropic", "model": "claude-sonnet-4-5-20250929" }),
            )
            .await
            .expect(200);
        server
            .put(
                "/v1/llm-providers/openai",
                &admin,
                json!({ "enabled": false }),
            )
            .await
            .expect(200);
        assert_eq!(
            stored_record(server, &member, &id).await.to_string(),
            before
        );
        server
            .delete("/v1/llm-providers/openai", &admin)
            .await
            .expect(204);
        let after = stored_record(server, &member, &id).await;
        assert_eq!(after.to_string(), before, "byte-identical after the delete");
        assert_eq!(after["provider"], "openai");
        let (listed, _) = list_ids(server, &admin, "").await;
        assert_eq!(listed, vec![id]);
        gateway.server.stop();
    }
}

#[tokio::test]
async fn opting_out_stores_no_content() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let (admin, member) = (gateway.org.admin.clone(), gateway.org.member.clone());
        let server = &gateway.server;
        let kept = chat(&gateway, &member, "openai", "kept-prompt-4e1d").await;
        assert!(stored_record(server, &member, &kept).await["content"].is_object());
        gateway.keep_no_content().await;
        let marker = "optout-marker-9b2c7f";
        let id = chat(&gateway, &member, "openai", marker).await;
        let body = json!({ "userPrompt": marker, "provider": "managed", "model": "gpt-5" });
        let response = invoke(&gateway, &member, "?invocation_identifier=opted-out", &body).await;
        assert_eq!(response.status(), 200);
        response.text().await.unwrap();
        for id in [id.as_str(), "opted-out"] {
            let record = stored_record(server, &member, id).await;
            assert!(record["content"].is_null(), "{record}");
            assert_eq!(record["status"], "Completed");
        }
        let restarted = {
            let Gateway { server, sim, org } = gateway;
            Gateway {
                server: server.restart(),
                sim,
                org,
            }
        };
        assert!(!database_contains(&restarted.server, marker).await);
        assert!(
            !database_contains(&restarted.server, "kept-prompt-4e1d").await,
            "encrypted"
        );
        // The change itself is audited.
        let audit = restarted
            .server
            .get("/v1/audit-log", &admin)
            .await
            .expect(200);
        assert_eq!(audit.json["result"][0]["action"], "ai_settings.update");
        restarted.server.stop();
    }
}

#[tokio::test]
async fn audit_verify_covers_the_invocation_ledger() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let member = gateway.org.member.clone();
        let server = &gateway.server;
        let mut ids = Vec::new();
        for n in 0..3 {
            ids.push(chat(&gateway, &member, "openai", &format!("ledger {n}")).await);
        }
        for id in &ids {
            stored_record(server, &member, id).await;
        }
        let ok = server.cli(&["audit", "verify"]);
        assert!(
            ok.status.success(),
            "{}",
            String::from_utf8_lossy(&ok.stdout)
        );
        let changed = raw_exec(
            server,
            "UPDATE invocations SET model = 'forged' WHERE id = $1",
            &ids[1],
        )
        .await;
        assert_eq!(changed, 1);
        let broken = server.cli(&["audit", "verify"]);
        assert!(!broken.status.success());
        let out = String::from_utf8_lossy(&broken.stdout);
        assert!(out.contains(&ids[1]), "{out}");
        gateway.server.stop();
    }
}

fn limited(env: &[(&str, &str)]) -> Vec<(String, String)> {
    env.iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

#[tokio::test]
async fn managed_limits_hold_under_concurrency() {
    let env = limited(&[
        ("SWITCHBOARD_MANAGED_REQUESTS_PER_HOUR", "5"),
        ("SWITCHBOARD_MANAGED_MONTHLY_INVOCATIONS", "1000"),
    ]);
    let gateway = Gateway::start_with(Backend::Sqlite, Default::default(), env).await;
    let member = gateway.org.member.clone();
    let body = json!({ "provider": "managed", "model": "gpt-5",
        "messages": [{ "role": "user", "content": "hi" }] });
    let mut tasks = Vec::new();
    for _ in 0..24 {
        let request = reqwest::Client::new()
            .post(gateway.url("/v1/chat/completions"))
            .bearer_auth(&member)
            .json(&body);
        tasks.push(tokio::spawn(async move { request.send().await.unwrap() }));
    }
    let mut admitted = 0;
    for task in tasks {
        let response = task.await.unwrap();
        match response.status().as_u16() {
            200 => admitted += 1,
            429 => {
                assert!(response.headers().contains_key("retry-after"));
                let json: Value = response.json().await.unwrap();
                assert_eq!(json["error"]["code"], "RATE_LIMIT_ERROR", "{json}");
            }
            other => panic!("unexpected status {other}"),
        }
    }
    assert_eq!(admitted, 5, "never more than the limit");

    // Each surface refuses in its own shape; the invoke API with the documented fields.
    let anthropic = json!({ "provider": "managed", "model": "claude-haiku-4-5-20251001",
        "max_tokens": 16, "messages": [{ "role": "user", "content": "hi" }] });
    let response = gateway.post("/v1/messages", &anthropic).await;
    assert_eq!(response.status(), 429);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"]["type"], "RATE_LIMIT_ERROR");
    let invoke_body = json!({ "userPrompt": "hi", "provider": "managed", "model": "gpt-5" });
    let response = invoke(&gateway, &member, "", &invoke_body).await;
    assert_eq!(response.status(), 429);
    let retry_after: u64 = response.headers()["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!(retry_after > 0 && retry_after <= 3600);
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"], "RATE_LIMIT_ERROR");
    assert_eq!(json["type"], "RATE_LIMIT_ERROR");
    assert_eq!(json["retryAfter"], retry_after);
    assert_eq!(json["details"]["retryAfter"], retry_after);

    // The organization's own providers are not limited.
    chat(&gateway, &member, "openai", "own provider").await;
    gateway.server.stop();
}

#[tokio::test]
async fn the_monthly_quota_holds_under_concurrency_and_survives_a_restart() {
    let env = limited(&[
        ("SWITCHBOARD_MANAGED_REQUESTS_PER_HOUR", "1000"),
        ("SWITCHBOARD_MANAGED_MONTHLY_INVOCATIONS", "3"),
    ]);
    let gateway = Gateway::start_with(Backend::Sqlite, Default::default(), env).await;
    let member = gateway.org.member.clone();
    let body = json!({ "userPrompt": "hi", "provider": "managed", "model": "gpt-5" });
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let request = reqwest::Client::new()
            .post(gateway.url("/v1/ai/invoke"))
            .bearer_auth(&member)
            .json(&body);
        tasks.push(tokio::spawn(async move { request.send().await.unwrap() }));
    }
    let mut admitted = 0;
    for task in tasks {
        let response = task.await.unwrap();
        if response.status() == 200 {
            admitted += 1;
            let text = response.text().await.unwrap();
            let done = sse_events(&text).pop().unwrap();
            assert_eq!(done.0, "done");
        } else {
            assert_eq!(response.status(), 429);
            assert!(response.headers().contains_key("retry-after"));
            let json: Value = response.json().await.unwrap();
            assert_eq!(json["error"], "QUOTA_ERROR");
            assert_eq!(json["type"], "QUOTA_ERROR");
            assert!(
                json["resetDate"]
                    .as_str()
                    .unwrap()
                    .ends_with("-01T00:00:00.000Z")
            );
        }
    }
    assert_eq!(admitted, 3);
    let quota = gateway
        .server
        .get("/v1/quota/ai-invocations", &member)
        .await
        .expect(200);
    let usage = &quota.json["monthlyQuotaUsage"];
    assert_eq!(
        (
            usage["monthlyLimit"].clone(),
            usage["remainingQuota"].clone()
        ),
        (json!(3), json!(0))
    );

    let Gateway { server, sim, org } = gateway;
    let gateway = Gateway {
        server: server.restart(),
        sim,
        org,
    };
    let quota = gateway
        .server
        .get("/v1/quota/ai-invocations", &member)
        .await
        .expect(200);
    assert_eq!(
        quota.json["monthlyQuotaUsage"]["remainingQuota"], 0,
        "restored from records"
    );
    let response = invoke(&gateway, &member, "", &body).await;
    assert_eq!(response.status(), 429);
    gateway.server.stop();
}

#[tokio::test]
async fn a_full_recorder_queue_pushes_back_before_calling_upstream() {
    let env = limited(&[("SWITCHBOARD_RECORDER_QUEUE", "1")]);
    let gateway = Gateway::start_with(Backend::Sqlite, Default::default(), env).await;
    let member = gateway.org.member.clone();
    let hanging = json!({ "provider": "openai", "model": "gpt-5", "stream": true,
        "messages": [{ "role": "user", "content": "wait [[sim:hang]]" }] });
    let request = reqwest::Client::new()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(&member)
        .json(&hanging);
    let hung = tokio::spawn(async move { request.send().await });
    tokio::time::sleep(Duration::from_millis(500)).await;
    gateway.sim.handle.clear();

    let body = json!({ "provider": "openai", "model": "gpt-5",
        "messages": [{ "role": "user", "content": "hi" }] });
    let response = gateway.post("/v1/chat/completions", &body).await;
    assert_eq!(response.status(), 503);
    assert_eq!(response.headers()["retry-after"], "1");
    let json: Value = response.json().await.unwrap();
    assert_eq!(json["error"]["code"], "service_unavailable");
    let response = invoke(&gateway, &member, "", &json!({ "userPrompt": "hi" })).await;
    assert_eq!(response.status(), 503);
    assert!(response.headers().contains_key("retry-after"));
    assert!(
        gateway.sim.handle.requests().is_empty(),
        "refused before the upstream call"
    );

    // The caller gives up: its invocation is recorded as failed and the slot frees up.
    hung.abort();
    let _ = hung.await;
    let mut served = None;
    for _ in 0..100 {
        let response = gateway.post("/v1/chat/completions", &body).await;
        if response.status() == 200 {
            served = Some(invocation_id(&response));
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let served = served.expect("the queue frees up once the hung call is abandoned");
    stored_record(&gateway.server, &member, &served).await;
    let (ids, _) = list_ids(&gateway.server, &member, "").await;
    assert_eq!(ids.len(), 2, "the abandoned call is recorded too");
    let abandoned = stored_record(&gateway.server, &member, &ids[1]).await;
    assert_eq!(abandoned["status"], "Failed");
    assert_eq!(abandoned["errorName"], "client_closed_request");
    gateway.server.stop();
}

#[tokio::test]
async fn the_hourly_token_budget_counts_real_usage() {
    let env = limited(&[("SWITCHBOARD_MANAGED_TOKENS_PER_HOUR", "60")]);
    let gateway = Gateway::start_with(Backend::Sqlite, Default::default(), env).await;
    let member = gateway.org.member.clone();
    let body = json!({ "userPrompt": "count my tokens please", "provider": "managed",
        "model": "claude-haiku-4-5-20251001" });
    let mut remaining = Vec::new();
    let mut refused = None;
    for _ in 0..30 {
        let response = invoke(&gateway, &member, "", &body).await;
        if response.status() == 429 {
            refused = Some(response.json::<Value>().await.unwrap());
            break;
        }
        let text = response.text().await.unwrap();
        let done: Value = serde_json::from_str(&sse_events(&text).pop().unwrap().1).unwrap();
        remaining.push(done["rateLimitUsage"]["remainingTokens"].as_u64().unwrap());
    }
    let refused = refused.expect("the token budget runs out");
    assert_eq!(refused["error"], "RATE_LIMIT_ERROR");
    assert!(!remaining.is_empty());
    assert!(
        remaining.windows(2).all(|w| w[1] < w[0]),
        "each answer's real usage is counted: {remaining:?}"
    );
    gateway.server.stop();
}

/// The token estimate reserved before the call comes from the request itself, so an
/// organization that keeps no content cannot pass the hourly token budget with concurrent
/// requests (the estimate used to be taken from the kept prompt: 1 token each).
#[tokio::test]
async fn concurrent_requests_that_keep_no_content_cannot_pass_the_token_budget_together() {
    let env = limited(&[("SWITCHBOARD_MANAGED_TOKENS_PER_HOUR", "2000")]);
    let gateway = Gateway::start_with(Backend::Sqlite, Default::default(), env).await;
    gateway.keep_no_content().await;
    // ~1,600 bytes: an estimate of about 400 tokens each; all in flight at once.
    let prompt = format!("{} [[sim:latency_ms=300]]", "words ".repeat(270));
    let body = json!({ "provider": "managed", "model": "gpt-5",
        "messages": [{ "role": "user", "content": prompt }] });
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let request = reqwest::Client::new()
                .post(gateway.url("/v1/chat/completions"))
                .bearer_auth(&gateway.org.member)
                .json(&body);
            tokio::spawn(async move { request.send().await.unwrap().status().as_u16() })
        })
        .collect();
    let mut admitted = 0;
    for task in tasks {
        match task.await.unwrap() {
            200 => admitted += 1,
            429 => {}
            other => panic!("unexpected status {other}"),
        }
    }
    assert!(
        (1..=5).contains(&admitted),
        "{admitted} of 24 admitted against a 2,000-token budget"
    );
    gateway.server.stop();
}

/// A caller that disconnects before the end is charged at least the reserved estimate:
/// going away cannot be used to pass the managed token limit.
#[tokio::test]
async fn disconnecting_before_the_end_is_still_charged() {
    let env = limited(&[("SWITCHBOARD_MANAGED_TOKENS_PER_HOUR", "100000")]);
    let gateway = Gateway::start_with(Backend::Sqlite, Default::default(), env).await;
    let member = gateway.org.member.clone();
    let probe = json!({ "userPrompt": "probe", "provider": "managed", "model": "gpt-5" });
    let remaining = || async {
        let text = invoke(&gateway, &member, "", &probe)
            .await
            .text()
            .await
            .unwrap();
        let done: Value = serde_json::from_str(&sse_events(&text).pop().unwrap().1).unwrap();
        done["rateLimitUsage"]["remainingTokens"].as_u64().unwrap()
    };
    let before = remaining().await;
    // ~4,000 bytes each: an estimate of about 1,000 tokens.
    let prompt = format!("{} [[sim:delay_ms=100 chunks=50]]", "words ".repeat(660));
    let body = json!({ "provider": "managed", "model": "gpt-5", "stream": true,
        "messages": [{ "role": "user", "content": prompt }] });
    for _ in 0..3 {
        let mut response = gateway.post("/v1/chat/completions", &body).await;
        assert_eq!(response.status(), 200);
        assert!(response.chunk().await.unwrap().is_some());
        drop(response);
    }
    // The gateway notices each disconnect at its next write (100 ms later).
    tokio::time::sleep(Duration::from_millis(600)).await;
    let after = remaining().await;
    assert!(
        before - after >= 3 * 1000,
        "charged {} tokens for three abandoned ~1,000-token requests",
        before - after
    );
    gateway.server.stop();
}
