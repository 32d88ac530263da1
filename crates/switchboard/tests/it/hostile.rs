//! Hostile clients against the real binary, on raw TCP sockets where HTTP clients would be
//! too polite: slowloris heads, slow bodies, the connection cap, idle keep-alive, request
//! smuggling framings, forged request ids, and the SIGTERM sequence.
//!
//! Every bound below is generous (several times the configured timeout): the tests judge
//! that a connection was closed by a timeout and not by the test's own patience, never how
//! fast.

use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_sim::SimConfig;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::gateway::{Gateway, sse_events};
use crate::harness::{Backend, KeySource, Server, TEST_MASTER_KEY, backends};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

async fn server(pairs: &[(&str, &str)]) -> Server {
    Server::start_opts(
        Backend::Sqlite,
        KeySource::Env(TEST_MASTER_KEY.into()),
        env(pairs),
    )
    .await
}

fn host(base_url: &str) -> &str {
    base_url.trim_start_matches("http://")
}

async fn connect(base_url: &str) -> TcpStream {
    TcpStream::connect(host(base_url))
        .await
        .expect("connect to the server")
}

/// Reads until the server closes the connection (EOF or reset) or `limit` passes; returns
/// what was read and whether the server closed it.
async fn read_to_close(stream: &mut TcpStream, limit: Duration) -> (Vec<u8>, bool) {
    let deadline = tokio::time::Instant::now() + limit;
    let mut seen = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return (seen, false),
            Ok(Ok(0)) | Ok(Err(_)) => return (seen, true),
            Ok(Ok(n)) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

/// The status codes of every response in a raw HTTP/1 byte stream.
fn statuses(raw: &[u8]) -> Vec<u16> {
    let text = String::from_utf8_lossy(raw);
    text.match_indices("HTTP/1.1 ")
        .filter_map(|(at, _)| text[at + 9..].get(..3)?.parse().ok())
        .collect()
}

/// One Prometheus sample of `/metrics` at `base_url`.
async fn metric(base_url: &str, name: &str) -> u64 {
    let text = reqwest::get(format!("{base_url}/metrics"))
        .await
        .expect("metrics")
        .text()
        .await
        .expect("metrics body");
    text.lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

#[tokio::test]
async fn slowloris_heads_are_closed_within_the_header_timeout_while_others_are_served() {
    let server = server(&[
        ("SWITCHBOARD_HEADER_TIMEOUT_SECONDS", "1"),
        ("SWITCHBOARD_IDLE_TIMEOUT_SECONDS", "60"),
    ])
    .await;
    const SLOW: usize = 60;
    let started = Instant::now();
    let mut drips = Vec::new();
    for n in 0..SLOW {
        let mut stream = connect(&server.base_url).await;
        drips.push(tokio::spawn(async move {
            // A head that never ends: one header byte every 100 ms for up to 30 s.
            let _ = stream
                .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
                .await;
            for _ in 0..300 {
                if stream
                    .write_all(if n % 2 == 0 { b"X" } else { b"y" })
                    .await
                    .is_err()
                {
                    return true;
                }
                let mut byte = [0u8; 1];
                match tokio::time::timeout(Duration::from_millis(100), stream.read(&mut byte)).await
                {
                    Ok(Ok(0)) | Ok(Err(_)) => return true,
                    _ => {}
                }
            }
            false
        }));
    }
    // A silent connection (nothing sent at all) is closed too.
    let mut silent = connect(&server.base_url).await;
    // Others are served meanwhile.
    for _ in 0..5 {
        let status = reqwest::get(format!("{}/healthz", server.base_url))
            .await
            .expect("a normal request during the slowloris")
            .status();
        assert_eq!(status, 200);
    }
    let mut closed = 0;
    for drip in drips {
        closed += usize::from(drip.await.unwrap());
    }
    assert_eq!(closed, SLOW, "every slowloris connection is closed");
    assert!(
        started.elapsed() < Duration::from_secs(20),
        "closed by the 1 s header timeout, not after the 30 s drip"
    );
    let (_, silent_closed) = read_to_close(&mut silent, Duration::from_secs(10)).await;
    assert!(silent_closed, "a connection that sends nothing is closed");
    let timed_out = metric(&server.base_url, "switchboard_connections_timed_out_total").await;
    assert!(timed_out > SLOW as u64, "{timed_out}");
}

#[tokio::test]
async fn a_slow_body_is_answered_408_in_the_callers_format_and_the_connection_closed() {
    let server = server(&[("SWITCHBOARD_BODY_TIMEOUT_SECONDS", "1")]).await;
    let org = server.org("acme");
    let cases = [
        ("/v1/chat/completions", "openai"),
        ("/v1/messages", "anthropic"),
        ("/v1/organization/secrets", "port"),
    ];
    for (path, format) in cases {
        let mut stream = connect(&server.base_url).await;
        let head = format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             anthropic-version: 2023-06-01\r\ncontent-type: application/json\r\n\
             Content-Length: 1000\r\n\r\n{{\"messages\":",
            org.admin
        );
        stream.write_all(head.as_bytes()).await.unwrap();
        // The rest never comes.
        let (raw, closed) = read_to_close(&mut stream, Duration::from_secs(15)).await;
        assert!(closed, "{path}: the connection is closed after the 408");
        assert_eq!(
            statuses(&raw),
            vec![408],
            "{path}: {}",
            String::from_utf8_lossy(&raw)
        );
        let text = String::from_utf8_lossy(&raw);
        let body: Value = serde_json::from_str(&text[text.find("\r\n\r\n").unwrap() + 4..])
            .unwrap_or_else(|_| panic!("{path}: a JSON error body: {text}"));
        let name = match format {
            "openai" => &body["error"]["code"],
            "anthropic" => &body["error"]["type"],
            _ => &body["error"],
        };
        assert_eq!(name, "request_timeout", "{path}: {body}");
    }
    // A whole body sent in time is served as usual.
    server
        .post(
            "/v1/organization/secrets",
            &org.admin,
            json!({ "secretName": "in-time", "secretValue": "v" }),
        )
        .await
        .expect(201);
}

#[tokio::test]
async fn the_connection_cap_refuses_at_once_keeps_probes_reachable_and_recovers() {
    const CAP: usize = 256;
    let server = server(&[
        ("SWITCHBOARD_MAX_CONNECTIONS", "256"),
        ("SWITCHBOARD_HEADER_TIMEOUT_SECONDS", "60"),
        ("SWITCHBOARD_OPS_LISTEN", "127.0.0.1:0"),
    ])
    .await;
    let ops = server.ops_url().expect("the operations listener's address");
    let mut held = Vec::new();
    for _ in 0..CAP {
        held.push(connect(&server.base_url).await);
    }
    let open = async {
        for _ in 0..200 {
            if metric(&ops, "switchboard_connections_open").await >= CAP as u64 {
                return true;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        false
    };
    assert!(open.await, "the held connections are open");
    // Beyond the cap: accepted and closed at once (well before the 60 s header timeout).
    for _ in 0..50 {
        let mut extra = connect(&server.base_url).await;
        let _ = extra
            .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            .await;
        let (raw, closed) = read_to_close(&mut extra, Duration::from_secs(10)).await;
        assert!(
            closed && statuses(&raw).is_empty(),
            "refused without an answer"
        );
    }
    assert!(metric(&ops, "switchboard_connections_refused_total").await >= 50);
    // Still at the cap: the held connections were not dropped to make room.
    assert!(metric(&ops, "switchboard_connections_open").await >= CAP as u64);
    // Probes on the operations listener still get in.
    let ready = reqwest::get(format!("{ops}/readyz")).await.unwrap();
    assert_eq!(ready.status(), 200);
    let other = reqwest::get(format!("{ops}/v1/llm-providers"))
        .await
        .unwrap();
    assert_eq!(
        other.status(),
        404,
        "the operations listener serves only operations"
    );
    // Once connections close, new ones are served again.
    drop(held);
    let mut recovered = false;
    for _ in 0..200 {
        if let Ok(response) = reqwest::get(format!("{}/healthz", server.base_url)).await {
            recovered = response.status() == 200;
            break;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    assert!(recovered, "the main listener serves again below the cap");
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_but_a_busy_one_is_not() {
    let gateway = Gateway::start_with(
        Backend::Sqlite,
        SimConfig::default(),
        env(&[
            ("SWITCHBOARD_IDLE_TIMEOUT_SECONDS", "1"),
            ("SWITCHBOARD_HEADER_TIMEOUT_SECONDS", "30"),
        ]),
    )
    .await;
    let base = &gateway.server.base_url;
    let mut stream = connect(base).await;
    stream
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let started = Instant::now();
    let (raw, closed) = read_to_close(&mut stream, Duration::from_secs(20)).await;
    assert_eq!(statuses(&raw), vec![200]);
    assert!(closed, "the idle keep-alive connection is closed");
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "by the 1 s idle timeout, not the 30 s header timeout"
    );
    // A stream that lasts longer than the idle timeout is not cut.
    let body = json!({ "model": "gpt-5", "provider": "openai", "stream": true,
        "messages": [{ "role": "user", "content": "[[sim:delay_ms=300 chunks=10]] slow" }] });
    let text = gateway
        .post("/v1/chat/completions", &body)
        .await
        .text()
        .await
        .unwrap();
    assert!(text.trim_end().ends_with("data: [DONE]"), "{text}");
    // An idle HTTP/2 connection is closed too (sent GOAWAY): counted once its client keeps
    // it open past the idle timeout. (Metrics are read on connections the client closes.)
    tokio::time::sleep(Duration::from_secs(3)).await;
    let before = metric_once(base, "switchboard_connections_timed_out_total").await;
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2.get(format!("{base}/healthz")).send().await.unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    let mut closed = false;
    for _ in 0..100 {
        tokio::time::sleep(Duration::from_millis(100)).await;
        if metric_once(base, "switchboard_connections_timed_out_total").await > before {
            closed = true;
            break;
        }
    }
    assert!(closed, "the idle HTTP/2 connection is closed");
}

/// One `/metrics` sample, read on a connection this side closes (so it is never counted as
/// timed out itself).
async fn metric_once(base_url: &str, name: &str) -> u64 {
    let mut stream = connect(base_url).await;
    stream
        .write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .unwrap();
    let (raw, _) = read_to_close(&mut stream, Duration::from_secs(10)).await;
    String::from_utf8_lossy(&raw)
        .lines()
        .find_map(|line| line.strip_prefix(name)?.strip_prefix(' ')?.parse().ok())
        .unwrap_or_else(|| panic!("{name} missing from /metrics"))
}

/// Catalogue 27: a body over the limit is refused (413) once the limit is passed, whether it
/// declares its length, is chunked, or lies about it; the rest is never read.
#[tokio::test]
async fn oversized_bodies_are_refused_without_being_read_whole() {
    let server = server(&[("SWITCHBOARD_MAX_BODY_BYTES", "4096")]).await;
    let org = server.org("acme");
    let head = |framing: &str| {
        format!(
            "POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
             content-type: application/json\r\n{framing}\r\n",
            org.member
        )
    };
    // A declared 100 MB body: refused after the first few KiB, the rest never sent.
    let mut declared = connect(&server.base_url).await;
    declared
        .write_all(head("Content-Length: 100000000\r\n").as_bytes())
        .await
        .unwrap();
    let _ = declared.write_all(&[b' '; 8192]).await;
    let (raw, closed) = read_to_close(&mut declared, Duration::from_secs(10)).await;
    assert_eq!(
        statuses(&raw),
        vec![413],
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        closed,
        "the connection is closed instead of draining 100 MB"
    );
    // Chunked, over the limit.
    let mut chunked = connect(&server.base_url).await;
    let mut request = head("Transfer-Encoding: chunked\r\n").into_bytes();
    for _ in 0..4 {
        request.extend_from_slice(format!("{:x}\r\n", 2048).as_bytes());
        request.extend_from_slice(&[b' '; 2048]);
        request.extend_from_slice(b"\r\n");
    }
    let _ = chunked.write_all(&request).await;
    let (raw, closed) = read_to_close(&mut chunked, Duration::from_secs(10)).await;
    assert_eq!(
        statuses(&raw),
        vec![413],
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(closed);
    // A lying Content-Length (2 bytes declared, 1 MiB sent): only the declared bytes are the
    // body; the rest is read as a request head, refused, and the connection closed.
    let mut lying = connect(&server.base_url).await;
    let mut request = head("Content-Length: 2\r\n").into_bytes();
    request.extend_from_slice(b"{}");
    request.extend_from_slice(&[b'x'; 1024 * 1024]);
    let _ = lying.write_all(&request).await;
    let (raw, closed) = read_to_close(&mut lying, Duration::from_secs(10)).await;
    let seen = statuses(&raw);
    assert!(closed, "{seen:?}");
    // The 2-byte body is answered as what it is (no provider configured here: 503), then the
    // megabyte after it is a head too large and the connection closes.
    assert!(
        !seen.is_empty() && seen.len() <= 2,
        "{}",
        String::from_utf8_lossy(&raw)
    );
    assert!(
        seen.iter().all(|s| *s >= 400),
        "nothing else is served: {seen:?}"
    );
}

/// Catalogue 13: path and host spellings that try to reach an admin route around its
/// authorization, on a raw socket (HTTP clients normalize them away). A member never gets
/// the admin list, and no header rewrites which route answers.
#[tokio::test]
async fn path_and_host_spellings_never_bypass_authorization() {
    let server = server(&[]).await;
    let org = server.org("acme");
    let admin_list = |raw: &[u8]| String::from_utf8_lossy(raw).contains("admin@acme.test");
    let targets = [
        "/v1/users",
        "//v1/users",
        "/v1//users",
        "/v1/../v1/users",
        "/v1/./users",
        "/v1/%2e%2e/v1/users",
        "/v1/%2E%2E/v1/users",
        "/V1/USERS",
        "/v1/users/",
        "/v1/users?",
        "/v1/users%2f",
        "/v1/users;x",
        "http://x/v1/users",
    ];
    for target in targets {
        for host in ["x", "x/?", "localhost:1/admin"] {
            let mut stream = connect(&server.base_url).await;
            let request = format!(
                "GET {target} HTTP/1.1\r\nHost: {host}\r\nAuthorization: Bearer {}\r\n\
                 X-Forwarded-For: 127.0.0.1\r\nX-Forwarded-Host: admin\r\n\
                 X-Original-URL: /v1/users\r\nConnection: close\r\n\r\n",
                org.member
            );
            stream.write_all(request.as_bytes()).await.unwrap();
            let (raw, _) = read_to_close(&mut stream, Duration::from_secs(10)).await;
            let seen = statuses(&raw);
            assert_eq!(
                seen.len(),
                1,
                "{target} {host}: {}",
                String::from_utf8_lossy(&raw)
            );
            assert!(
                seen[0] >= 400 && !admin_list(&raw),
                "{target} with Host {host}: a member reached the admin list: {seen:?}"
            );
        }
    }
    // A rewrite header never changes which route answers.
    let mut stream = connect(&server.base_url).await;
    let request = format!(
        "GET /healthz HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {}\r\n\
         X-Original-URL: /v1/users\r\nX-Rewrite-URL: /v1/users\r\nConnection: close\r\n\r\n",
        org.admin
    );
    stream.write_all(request.as_bytes()).await.unwrap();
    let (raw, _) = read_to_close(&mut stream, Duration::from_secs(10)).await;
    assert_eq!(statuses(&raw), vec![200]);
    assert!(!admin_list(&raw), "{}", String::from_utf8_lossy(&raw));
    // The admin does reach it (the spelling the router knows).
    server.get("/v1/users", &org.admin).await.expect(200);
}

/// Raw framings that smuggle or confuse: none may reach a route.
#[tokio::test]
async fn smuggling_framings_are_refused_on_raw_sockets() {
    let server = server(&[]).await;
    let refused: [(&str, &[u8]); 8] = [
        (
            "two different Content-Lengths",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nContent-Length: 5\r\n\r\nabcde",
        ),
        (
            "a Content-Length with garbage",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4x\r\n\r\nabcd",
        ),
        (
            "a negative Content-Length",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: -1\r\n\r\n",
        ),
        (
            "a Content-Length list",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nContent-Length: 4, 5\r\n\r\nabcd",
        ),
        (
            "an obs-folded header",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n  b\r\n\r\n",
        ),
        (
            "a space before the colon",
            b"GET /healthz HTTP/1.1\r\nHost: x\r\nContent-Length : 0\r\n\r\n",
        ),
        (
            "a Transfer-Encoding other than chunked",
            b"POST /healthz HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip\r\n\r\n",
        ),
        (
            "Transfer-Encoding on HTTP/1.0",
            b"POST /healthz HTTP/1.0\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        ),
    ];
    for (case, bytes) in refused {
        let mut stream = connect(&server.base_url).await;
        stream.write_all(bytes).await.unwrap();
        let (raw, closed) = read_to_close(&mut stream, Duration::from_secs(10)).await;
        let seen = statuses(&raw);
        assert!(closed, "{case}: the connection is closed");
        assert!(
            seen.is_empty() || seen == [400],
            "{case}: answered {seen:?}, never routed: {}",
            String::from_utf8_lossy(&raw)
        );
    }
    // Content-Length and Transfer-Encoding together, in either order: hyper frames the body
    // by the chunked encoding (RFC 9112 §6.1) and closes the connection after the answer, so
    // what a Content-Length-framing proxy would see as a second request is never read.
    let conflicting: [&[u8]; 2] = [
        b"POST /v1/organization/secrets HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\
          Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
        b"POST /v1/organization/secrets HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\
          Content-Length: 60\r\n\r\n0\r\n\r\nGET /healthz HTTP/1.1\r\nHost: x\r\n\r\n",
    ];
    for bytes in conflicting {
        let mut stream = connect(&server.base_url).await;
        stream.write_all(bytes).await.unwrap();
        let (raw, closed) = read_to_close(&mut stream, Duration::from_secs(10)).await;
        assert!(closed, "the connection is closed after the first answer");
        let seen = statuses(&raw);
        assert_eq!(
            seen.len(),
            1,
            "the smuggled request is never answered: {seen:?}"
        );
        assert_ne!(seen[0], 200, "{}", String::from_utf8_lossy(&raw));
    }
    // Header count and size limits: 431.
    let many = (0..150)
        .map(|n| format!("X-H{n}: v\r\n"))
        .collect::<String>();
    let huge = format!("X-Big: {}\r\n", "a".repeat(80 * 1024));
    for extra in [many, huge] {
        let mut stream = connect(&server.base_url).await;
        let request = format!("GET /healthz HTTP/1.1\r\nHost: x\r\n{extra}\r\n");
        let _ = stream.write_all(request.as_bytes()).await;
        let (raw, _) = read_to_close(&mut stream, Duration::from_secs(10)).await;
        assert_eq!(
            statuses(&raw),
            vec![431],
            "{}",
            String::from_utf8_lossy(&raw)
        );
    }
    // HTTP/2 with prior knowledge is served on the same port.
    let h2 = reqwest::Client::builder()
        .http2_prior_knowledge()
        .build()
        .unwrap();
    let response = h2
        .get(format!("{}/healthz", server.base_url))
        .send()
        .await
        .unwrap();
    assert_eq!(response.version(), reqwest::Version::HTTP_2);
    assert_eq!(response.status(), 200);
}

#[tokio::test]
async fn forged_request_ids_are_replaced_before_they_are_logged_or_stored() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let forged = [
            "a".repeat(200),
            "has spaces and \"quotes\"".to_owned(),
            "semi;colon<script>".to_owned(),
            "slash/../x".to_owned(),
        ];
        for id in &forged {
            let response = reqwest::Client::new()
                .post(gateway.url("/v1/chat/completions"))
                .bearer_auth(&gateway.org.member)
                .header("x-request-id", id)
                .json(&json!({ "model": "gpt-5", "provider": "openai",
                    "messages": [{ "role": "user", "content": "hi" }] }))
                .send()
                .await
                .unwrap();
            assert_eq!(response.status(), 200);
            let replaced = response.headers()["x-request-id"]
                .to_str()
                .unwrap()
                .to_owned();
            assert_ne!(&replaced, id);
            assert!(uuid::Uuid::parse_str(&replaced).is_ok(), "{replaced}");
            let invocation = response.headers()["x-switchboard-invocation-id"]
                .to_str()
                .unwrap()
                .to_owned();
            let record = gateway
                .server
                .get(
                    &format!("/v1/ai/invocations/{invocation}"),
                    &gateway.org.member,
                )
                .await
                .expect(200);
            assert_eq!(record.result()["requestId"], replaced.as_str());
            // The log is written in batches: wait for the access line.
            let line = format!("\"request_id\":\"{replaced}\"");
            let mut logged = false;
            for _ in 0..100 {
                logged = gateway.server.log_text().contains(&line);
                if logged {
                    break;
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
            assert!(logged, "the access line carries the replacement id");
            let log = gateway.server.log_text();
            assert!(!log.contains(id.as_str()), "a forged id reached the log");
        }
        // CR inside a value and non-ASCII bytes, on a raw socket.
        let raw_ids: [&[u8]; 2] = [b"abc\rinjected", b"caf\xc3\xa9-id"];
        for id in raw_ids {
            let mut stream = connect(&gateway.server.base_url).await;
            let mut request =
                b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\nx-request-id: ".to_vec();
            request.extend_from_slice(id);
            request.extend_from_slice(b"\r\n\r\n");
            stream.write_all(&request).await.unwrap();
            let (raw, _) = read_to_close(&mut stream, Duration::from_secs(10)).await;
            let text = String::from_utf8_lossy(&raw);
            let seen = statuses(&raw);
            assert!(seen == [400] || seen == [200], "{text}");
            assert!(!raw.windows(id.len()).any(|w| w == id), "echoed: {text}");
        }
        // A plain id is kept.
        let response = reqwest::Client::new()
            .get(gateway.url("/healthz"))
            .header("x-request-id", "trace-42.a_b:c")
            .send()
            .await
            .unwrap();
        assert_eq!(response.headers()["x-request-id"], "trace-42.a_b:c");
    }
}

/// What one stream of the SIGTERM test saw.
struct Seen {
    invocation: String,
    text: String,
}

async fn stream(gateway: &Gateway, path: &str, body: Value) -> Seen {
    let response = reqwest::Client::new()
        .post(gateway.url(path))
        .bearer_auth(&gateway.org.member)
        .header("anthropic-version", "2023-06-01")
        .json(&body)
        .send()
        .await
        .expect("stream request");
    assert_eq!(response.status(), 200, "{path}");
    let invocation = response.headers()["x-switchboard-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response.text().await.unwrap_or_default();
    Seen { invocation, text }
}

fn chat(prompt: &str) -> Value {
    json!({ "model": "gpt-5", "provider": "openai", "stream": true,
        "messages": [{ "role": "user", "content": prompt }] })
}

#[tokio::test]
async fn sigterm_fails_readiness_drains_ends_late_streams_with_errors_and_keeps_every_record() {
    for backend in backends() {
        let mut gateway = Gateway::start_with(
            backend,
            SimConfig::default(),
            env(&[
                ("SWITCHBOARD_SHUTDOWN_DRAIN_SECONDS", "2"),
                ("SWITCHBOARD_SHUTDOWN_GRACE_SECONDS", "3"),
            ]),
        )
        .await;
        let stalled = "[[sim:stall_after=1]] never ends";
        let anthropic = json!({ "model": "claude-sonnet-4-5-20250929", "provider": "anthropic",
            "max_tokens": 100, "stream": true,
            "messages": [{ "role": "user", "content": stalled }] });
        let invoke = json!({ "userPrompt": stalled, "provider": "openai", "model": "gpt-5" });
        let streams = async {
            tokio::join!(
                stream(
                    &gateway,
                    "/v1/chat/completions",
                    chat("[[sim:delay_ms=100 chunks=8]] short")
                ),
                stream(&gateway, "/v1/chat/completions", chat(stalled)),
                stream(&gateway, "/v1/messages", anthropic),
                stream(&gateway, "/v1/ai/invoke", invoke),
            )
        };
        let sequence = async {
            // Let every stream start before the signal.
            tokio::time::sleep(Duration::from_millis(500)).await;
            gateway.server.sigterm();
            let ready = reqwest::get(gateway.url("/readyz")).await.unwrap();
            assert_eq!(ready.status(), 503, "readiness fails at once");
            let health = reqwest::get(gateway.url("/healthz")).await.unwrap();
            assert_eq!(health.status(), 200, "still serving during the drain");
            for _ in 0..100 {
                if TcpStream::connect(host(&gateway.server.base_url))
                    .await
                    .is_err()
                {
                    return true;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            false
        };
        let ((short, openai, anthropic, invoke), refused) = tokio::join!(streams, sequence);
        assert!(refused, "new connections are refused after the drain");
        assert!(
            short.text.trim_end().ends_with("data: [DONE]"),
            "a short stream finishes normally: {}",
            short.text
        );
        let late_streams = [
            ("/v1/chat/completions", openai),
            ("/v1/messages", anthropic),
            ("/v1/ai/invoke", invoke),
        ];
        let mut failed = Vec::new();
        for (path, seen) in late_streams {
            let events = sse_events(&seen.text);
            let (event, data) = events.last().expect("a last event").clone();
            let data: Value = serde_json::from_str(&data)
                .unwrap_or_else(|_| panic!("{path}: a parseable error event: {}", seen.text));
            match path {
                "/v1/chat/completions" => {
                    assert!(data["error"]["message"].is_string(), "{path}: {data}");
                    assert!(!seen.text.contains("[DONE]"));
                }
                "/v1/messages" => {
                    assert_eq!(event, "error", "{path}");
                    assert_eq!(data["type"], "error");
                    assert!(!seen.text.contains("message_stop"));
                }
                _ => {
                    assert_eq!(event, "error", "{path}: {}", seen.text);
                    assert!(data["message"].is_string(), "{path}: {data}");
                }
            }
            failed.push(seen.invocation);
        }
        let status = gateway
            .server
            .wait_exit(Duration::from_secs(30))
            .expect("the server exits after the grace period");
        assert!(status.success(), "exit status {status:?}");
        // Every invocation's record is there, as it ended.
        let Gateway { server, org, .. } = gateway;
        let server = server.restart();
        let record = async |id: &str| {
            server
                .get(&format!("/v1/ai/invocations/{id}"), &org.member)
                .await
                .expect(200)
                .result()
                .clone()
        };
        let short_record = record(&short.invocation).await;
        assert_eq!(short_record["status"], "Completed", "{short_record}");
        for id in failed {
            let late_record = record(&id).await;
            assert_eq!(late_record["status"], "Failed", "{late_record}");
            assert_eq!(late_record["errorName"], "shutting_down", "{late_record}");
        }
    }
}
