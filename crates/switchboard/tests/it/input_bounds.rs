//! Hostile inputs on the inference surfaces (catalogue items 28 and 29, and the body budget
//! of item 2): each is refused in the caller's own error shape, before anything is sent
//! upstream (the simulator records every request it gets).

use serde_json::{Value, json};

use crate::gateway::Gateway;
use crate::harness::backends;

/// Posts raw `body` to `path`; returns status, `Retry-After`, and the error's name
/// (`error.code` on OpenAI's surface, `error.type` on Anthropic's).
async fn post_raw(gateway: &Gateway, path: &str, body: String) -> (u16, Option<String>, String) {
    let response = reqwest::Client::new()
        .post(gateway.url(path))
        .bearer_auth(&gateway.org.member)
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .expect("gateway request");
    let status = response.status().as_u16();
    let retry_after = response
        .headers()
        .get("retry-after")
        .map(|v| v.to_str().unwrap().to_owned());
    let error: Value = response.json().await.expect("a JSON error body");
    let name = match path {
        "/v1/messages" => &error["error"]["type"],
        _ => &error["error"]["code"],
    };
    (
        status,
        retry_after,
        name.as_str().unwrap_or_default().to_owned(),
    )
}

fn with_messages(extra: &str) -> String {
    format!(
        r#"{{"provider":"openai","model":"gpt-5","max_tokens":16,"messages":[{{"role":"user","content":"hi"}}]{extra}}}"#
    )
}

#[tokio::test]
async fn json_bombs_and_absurd_counts_are_400s_that_never_reach_the_upstream() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let deep = format!(
            r#"{{"model":"gpt-5","messages":{}{}}}"#,
            "[".repeat(100_000),
            "]".repeat(100_000)
        );
        let huge_array = format!(
            r#"{{"model":"gpt-5","messages":[{}]}}"#,
            vec!["1"; 1_000_000].join(",")
        );
        let mut many_keys: String = (0..100_000).map(|i| format!(r#""k{i}":0,"#)).collect();
        many_keys.push_str(r#""k0":1"#);
        let duplicate_keys = format!(r#"{{"model":"gpt-5",{many_keys}}}"#);
        let bombs = [
            ("100k-deep nesting", deep),
            ("a million-item array", huge_array),
            ("100k keys, one repeated", duplicate_keys),
            ("1e999999", with_messages(r#","temperature":1e999999"#)),
            ("n = 10^6", with_messages(r#","n":1000000"#)),
            (
                "max_tokens = 10^12",
                with_messages(r#","max_completion_tokens":1000000000000"#),
            ),
            (
                "17 stop sequences",
                with_messages(&format!(r#","stop":[{}]"#, vec!["\"x\""; 17].join(","))),
            ),
            (
                "513 tools",
                with_messages(&format!(
                    r#","tools":[{}]"#,
                    vec![r#"{"type":"function","function":{"name":"f"}}"#; 513].join(",")
                )),
            ),
        ];
        for path in ["/v1/chat/completions", "/v1/messages"] {
            for (what, body) in &bombs {
                let (status, _, name) = post_raw(&gateway, path, body.clone()).await;
                assert_eq!(status, 400, "{what} on {path}");
                assert_eq!(name, "invalid_request", "{what} on {path}");
            }
        }
        let too_many = format!(
            r#"{{"provider":"openai","model":"gpt-5","messages":[{}]}}"#,
            vec![r#"{"role":"user","content":"hi"}"#; 10_001].join(",")
        );
        assert_eq!(
            post_raw(&gateway, "/v1/chat/completions", too_many).await.0,
            400
        );
        assert!(
            gateway.sim.handle.requests().is_empty(),
            "nothing reached the upstream"
        );
        // The server is still well and answers an ordinary request.
        let ordinary = json!({ "provider": "openai", "model": "gpt-5",
            "messages": [{ "role": "user", "content": "hi" }] });
        assert_eq!(
            gateway
                .post("/v1/chat/completions", &ordinary)
                .await
                .status(),
            200
        );
        gateway.server.stop();
    }
}

/// Bodies being read share one byte budget: a body its remainder cannot cover is answered
/// 503 with `Retry-After` (in the caller's shape) before it is read; the budget comes back.
#[tokio::test]
async fn a_body_over_the_shared_budget_is_a_503_with_retry_after() {
    let budget = vec![(
        "SWITCHBOARD_BODY_BUDGET_BYTES".to_owned(),
        "1048576".to_owned(),
    )];
    let gateway =
        Gateway::start_with(crate::harness::Backend::Sqlite, Default::default(), budget).await;
    let big = with_messages(&format!(
        r#","metadata":{{"pad":"{}"}}"#,
        "x".repeat(2 * 1024 * 1024)
    ));
    for path in ["/v1/chat/completions", "/v1/messages"] {
        let (status, retry_after, name) = post_raw(&gateway, path, big.clone()).await;
        assert_eq!(status, 503, "{path}");
        assert_eq!(retry_after.as_deref(), Some("1"), "{path}");
        assert_eq!(name, "service_unavailable", "{path}");
    }
    assert!(gateway.sim.handle.requests().is_empty());
    // Bodies within the budget, one after another, are served: it was given back.
    let small = with_messages(&format!(
        r#","metadata":{{"pad":"{}"}}"#,
        "x".repeat(600 * 1024)
    ));
    for _ in 0..4 {
        let (status, ..) = post_raw(&gateway, "/v1/chat/completions", small.clone()).await;
        assert_ne!(status, 503);
    }
    gateway.server.stop();
}

/// Catalogue item 26 on the management API: a user's email is NFC-normalized (its NFD twin
/// is the same user), and look-alike, invisible, over-long and blank ones are refused.
#[tokio::test]
async fn unicode_names_are_normalized_and_look_alikes_are_refused() {
    for backend in backends() {
        let server = crate::harness::Server::start(backend).await;
        let org = server.org("acme");
        let create = |email: String| {
            let server = &server;
            let admin = org.admin.clone();
            async move {
                server
                    .post(
                        "/v1/users",
                        &admin,
                        json!({ "email": email, "role": "member" }),
                    )
                    .await
            }
        };
        let created = create("Jos\u{e9}@acme.test".to_owned()).await.expect(201);
        assert_eq!(created.json["user"]["email"], "jos\u{e9}@acme.test");
        // The NFD spelling is the same address.
        create("Jose\u{301}@acme.test".to_owned()).await.expect(409);
        for (what, email) in [
            (
                "Cyrillic А in a Latin word",
                "\u{410}dmin@acme.test".to_owned(),
            ),
            (
                "right-to-left override",
                "admin\u{202E}@acme.test".to_owned(),
            ),
            ("zero-width space", "ad\u{200B}min@acme.test".to_owned()),
            ("over 255 bytes", format!("{}@acme.test", "a".repeat(250))),
            ("only whitespace", " \u{3000} ".to_owned()),
        ] {
            let response = create(email).await;
            assert_eq!(response.status.as_u16(), 400, "{what}: {}", response.json);
        }
        server.stop();
    }
}
