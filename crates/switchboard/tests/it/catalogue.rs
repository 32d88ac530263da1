//! Security catalogue items without a home elsewhere: client overrides of the upstream
//! (item 8), mass assignment and privilege widening (21), SQL metacharacters (23),
//! template and shell syntax (24) and control characters reaching the log (25).

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_sim::SimConfig;

use crate::gateway::Gateway;
use crate::harness::{Backend, Server, backends};

#[tokio::test]
async fn client_overrides_of_the_upstream_are_refused_and_never_used() {
    let gateway = Gateway::start(Backend::Sqlite).await;
    let surfaces = [
        (
            "/v1/chat/completions",
            json!({"provider": "openai", "model": "gpt-5",
            "messages": [{"role": "user", "content": "hi"}]}),
        ),
        (
            "/v1/messages",
            json!({"provider": "anthropic", "model": "claude-sonnet-4-5-20250929",
            "max_tokens": 16, "messages": [{"role": "user", "content": "hi"}]}),
        ),
    ];
    for (path, body) in surfaces {
        for member in ["api_base", "base_url", "api_key", "custom_llm_provider"] {
            gateway.sim.handle.clear();
            let mut body = body.clone();
            body[member] = json!("http://169.254.169.254/latest/meta-data/");
            let answer = gateway.post(path, &body).await;
            assert_eq!(answer.status(), 400, "{path} {member}");
            let error: Value = answer.json().await.unwrap();
            assert!(error.to_string().contains(member), "{error}");
            assert!(
                gateway.sim.handle.requests().is_empty(),
                "nothing sent upstream"
            );
        }
        // Custom-host headers (Portkey's, LiteLLM's) are not honoured either: the call goes
        // to the configured provider, without them.
        gateway.sim.handle.clear();
        let answer = reqwest::Client::new()
            .post(gateway.url(path))
            .bearer_auth(&gateway.org.member)
            .header("x-portkey-custom-host", "http://127.0.0.1:1/")
            .header("x-litellm-api-base", "http://127.0.0.1:1/")
            .json(&body)
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200, "{path}");
        let sent = gateway
            .sim
            .handle
            .last_request()
            .expect("the configured upstream");
        assert!(sent.header("x-portkey-custom-host").is_none());
        assert!(sent.header("x-litellm-api-base").is_none());
    }
}

#[tokio::test]
async fn mass_assignment_and_wider_grants_are_refused() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let other = server.org("other");
        // Fields a caller must not choose are unknown fields: 400, nothing written.
        server
            .post(
                "/v1/organization/secrets",
                &org.admin,
                json!({"secretName": "k", "secretValue": "v", "orgId": "someone-else"}),
            )
            .await
            .expect_error(400, "invalid_request");
        server
            .post(
                "/v1/tokens",
                &org.member,
                json!({"name": "t", "role": "admin"}),
            )
            .await
            .expect(400);
        server
            .post(
                "/v1/users",
                &org.admin,
                json!({"email": "x@acme.test", "role": "member", "createdBy": "root"}),
            )
            .await
            .expect(400);
        // A member cannot mint a token for someone else, nor change roles (their own included).
        let users = server.get("/v1/users", &org.admin).await.expect(200);
        let admin_id = users
            .result()
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["role"] == "admin")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        let member_id = users
            .result()
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["role"] == "member")
            .unwrap()["id"]
            .as_str()
            .unwrap()
            .to_owned();
        // (A token is always its creator's: naming another user cannot even be expressed.)
        server
            .post(
                "/v1/tokens",
                &org.member,
                json!({"name": "t", "userId": admin_id}),
            )
            .await
            .expect_error(400, "invalid_request");
        server
            .patch(
                &format!("/v1/users/{member_id}"),
                &org.member,
                json!({"role": "admin"}),
            )
            .await
            .expect(403);
        // An admin of another organization cannot reach this one's users at all.
        server
            .patch(
                &format!("/v1/users/{member_id}"),
                &other.admin,
                json!({"role": "admin"}),
            )
            .await
            .expect(404);
        let after = server
            .get(&format!("/v1/users/{member_id}"), &org.admin)
            .await
            .expect(200);
        assert_eq!(after.result()["role"], "member");
        server.stop();
    }
}

#[tokio::test]
async fn sql_metacharacters_are_plain_input() {
    for backend in backends() {
        let server = Server::start(backend).await;
        let org = server.org("acme");
        let injections = [
            "' OR '1'='1",
            "x'; DROP TABLE audit_log; --",
            "1; SELECT pg_sleep(5)",
            "\") OR 1=1 --",
        ];
        for bad in injections {
            // As a bearer token: a plain 401.
            server
                .call(Method::GET, "/v1/llm-providers", Some(bad), None)
                .await
                .expect(401);
            // As a name: the name rules refuse it (400), nothing is created.
            server
                .post(
                    "/v1/organization/secrets",
                    &org.admin,
                    json!({"secretName": bad, "secretValue": "v"}),
                )
                .await
                .expect(400);
            // As a filter, cursor or path segment: 400 or 404, never a 500 or a match.
            let encoded: String = url_escape(bad);
            for path in [
                format!("/v1/ai/invocations?cursor={encoded}"),
                format!("/v1/audit-log?cursor={encoded}"),
                format!("/v1/organization/secrets/{encoded}"),
                format!("/v1/ai/invoke/{encoded}"),
            ] {
                let status = server.get(&path, &org.admin).await.status.as_u16();
                assert!(matches!(status, 400 | 404), "{path}: {status}");
            }
        }
        // Everything still works and the audit log is intact.
        server.get("/v1/audit-log", &org.admin).await.expect(200);
        let verify = server.cli(&["audit", "verify"]);
        assert!(
            verify.status.success(),
            "{}",
            String::from_utf8_lossy(&verify.stdout)
        );
        server.stop();
    }
}

#[tokio::test]
async fn template_and_shell_syntax_is_stored_verbatim_and_never_evaluated() {
    let gateway = Gateway::start_with(Backend::Sqlite, SimConfig::default(), Vec::new()).await;
    let payloads = [
        "{{7*7}}",
        "${jndi:ldap://127.0.0.1:1/a}",
        "$(id)",
        "`id`",
        "<%= 7*7 %>",
    ];
    for payload in payloads {
        let server = &gateway.server;
        let created = server
            .post(
                "/v1/organization/secrets",
                &gateway.org.admin,
                json!({"secretName": "tpl", "secretValue": "v", "description": payload}),
            )
            .await;
        let created = match created.status.as_u16() {
            201 => created,
            _ => server
                .patch(
                    "/v1/organization/secrets/tpl",
                    &gateway.org.admin,
                    json!({"description": payload}),
                )
                .await
                .expect(200),
        };
        assert_eq!(created.result()["description"], payload);
        let read = server
            .get("/v1/organization/secrets/tpl", &gateway.org.admin)
            .await
            .expect(200);
        assert_eq!(read.result()["description"], payload, "stored verbatim");
        // In a prompt it reaches the provider unchanged.
        gateway.sim.handle.clear();
        let answer = gateway
            .post(
                "/v1/chat/completions",
                &json!({"provider": "openai", "model": "gpt-5",
                "messages": [{"role": "user", "content": payload}]}),
            )
            .await;
        assert_eq!(answer.status(), 200);
        let sent = gateway.sim.handle.last_request().unwrap().json().unwrap();
        assert_eq!(sent["messages"][0]["content"], payload);
    }
}

/// Names never go into the log by design; what this guards is the log's shape: CR/LF and
/// ANSI escapes sent in names (and anything a future log line might quote) cannot split a
/// line or forge one, and no raw escape byte reaches it.
#[tokio::test]
async fn log_lines_stay_single_json_objects_whatever_names_hold() {
    let server = Server::start(Backend::Sqlite).await;
    let org = server.org("acme");
    let hostile = "evil\r\n{\"level\":\"ERROR\",\"msg\":\"forged\"}\u{1b}[31mred\u{1b}[0m";
    server
        .post("/v1/tokens", &org.admin, json!({"name": hostile}))
        .await;
    server
        .post(
            "/v1/users",
            &org.admin,
            json!({"email": hostile, "role": "member"}),
        )
        .await;
    server
        .post(
            "/v1/organization/secrets",
            &org.admin,
            json!({"secretName": "ok", "secretValue": "v", "description": hostile}),
        )
        .await;
    let log = server.stop();
    for line in log.lines().filter(|l| !l.trim().is_empty()) {
        let parsed: Result<Value, _> = serde_json::from_str(line);
        assert!(
            parsed.is_ok(),
            "every log line is one JSON object: {line:?}"
        );
        assert!(
            !line.contains('\u{1b}'),
            "a raw escape reached the log: {line:?}"
        );
    }
    assert!(!log.contains("\"msg\":\"forged\"}"), "a forged line");
}

fn url_escape(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `SECURITY.md` maps all 47 catalogue items, and every test it names exists (a renamed or
/// deleted test must not leave the map pointing at nothing).
#[test]
fn the_security_map_covers_every_item_with_tests_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let map = std::fs::read_to_string(root.join("SECURITY.md")).unwrap();
    let items: Vec<u32> = map
        .lines()
        .filter_map(|l| l.strip_prefix("| ")?.split(' ').next()?.parse().ok())
        .collect();
    assert_eq!(
        items,
        (1..=47).collect::<Vec<_>>(),
        "every item, once, in order"
    );
    let mut sources = String::new();
    collect_sources(&root.join("crates"), &mut sources);
    collect_sources(&root.join("sdk-tests"), &mut sources);
    let named = map.split('`').filter_map(|code| {
        let name = code.rsplit("::").next()?;
        let is_test_name = code.contains("::")
            && name.len() > 8
            && name
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        is_test_name.then_some(name)
    });
    for name in named {
        let defined =
            sources.contains(&format!("fn {name}(")) || sources.contains(&format!("def {name}("));
        assert!(
            defined,
            "SECURITY.md names a test that does not exist: {name}"
        );
    }
}

fn collect_sources(dir: &std::path::Path, into: &mut String) {
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_sources(&path, into);
        } else if path.extension().is_some_and(|e| e == "rs" || e == "py") {
            into.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
        }
    }
}
