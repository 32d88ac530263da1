//! Every interaction recorded, truthfully, before it is acknowledged: `kill -9` under load on
//! every inference surface, read after write on one replica and across two, streams the
//! upstream breaks, and a database that refuses, freezes or stays locked.
//!
//! `SWITCHBOARD_KILL_CYCLES` sets how many crash cycles run per back end (20 by default;
//! more for a long run by hand).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_sim::SimConfig;

use crate::gateway::{Gateway, sse_events};
use crate::harness::{Backend, Server, backends};

fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect()
}

/// One kind of request the crash load sends.
#[derive(Clone, Copy, Debug)]
enum Call {
    ChatStream,
    Chat,
    MessagesStream,
    Messages,
    Invoke,
}

const CALLS: [Call; 5] = [
    Call::ChatStream,
    Call::Chat,
    Call::MessagesStream,
    Call::Messages,
    Call::Invoke,
];

impl Call {
    /// Path and body; `translate` sends it to the other protocol's provider.
    fn request(self, n: usize, translate: bool) -> (&'static str, Value) {
        let prompt = format!("crash load {n} [[sim:delay_ms=4 chunks=12]]");
        let messages = json!([{ "role": "user", "content": prompt }]);
        let (openai, anthropic) = if translate {
            ("anthropic", "openai")
        } else {
            ("openai", "anthropic")
        };
        let model_for = |provider: &str| {
            if provider == "openai" {
                "gpt-5"
            } else {
                "claude-sonnet-4-5-20250929"
            }
        };
        match self {
            Call::ChatStream | Call::Chat => (
                "/v1/chat/completions",
                json!({ "provider": openai, "model": model_for(openai), "messages": messages,
                        "stream": matches!(self, Call::ChatStream) }),
            ),
            Call::MessagesStream | Call::Messages => (
                "/v1/messages",
                json!({ "provider": anthropic, "model": model_for(anthropic), "max_tokens": 64,
                        "messages": messages, "stream": matches!(self, Call::MessagesStream) }),
            ),
            Call::Invoke => (
                "/v1/ai/invoke",
                json!({ "provider": openai, "model": model_for(openai), "userPrompt": prompt }),
            ),
        }
    }

    /// Whether `body` is the whole answer: the protocol's end arrived.
    fn ended(self, body: &str) -> bool {
        match self {
            Call::ChatStream => body.contains("data: [DONE]"),
            Call::MessagesStream => body.contains("event: message_stop"),
            Call::Invoke => body.contains("event: done"),
            Call::Chat | Call::Messages => serde_json::from_str::<Value>(body).is_ok(),
        }
    }
}

/// What one client saw of one request.
enum Seen {
    /// The answer's end reached the client.
    Acknowledged(String),
    /// The response head (and its invocation id) arrived, the end did not.
    InFlight(String),
    /// Nothing useful arrived (connection refused or cut before the head).
    Nothing,
}

async fn send(client: &reqwest::Client, base: &str, token: &str, call: Call, n: usize) -> Seen {
    let (path, body) = call.request(n, n % 2 == 1);
    let Ok(response) = client
        .post(format!("{base}{path}"))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
    else {
        return Seen::Nothing;
    };
    let id = response
        .headers()
        .get("x-switchboard-invocation-id")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let (Some(id), true) = (id, response.status().is_success()) else {
        return Seen::Nothing;
    };
    match response.text().await {
        Ok(text) if call.ended(&text) => Seen::Acknowledged(id),
        _ => Seen::InFlight(id),
    }
}

/// Clients sending every kind of request until `stop`; what each saw.
async fn load(base: String, token: String, stop: Arc<AtomicBool>, client_no: usize) -> Vec<Seen> {
    let client = reqwest::Client::new();
    let mut seen = Vec::new();
    let mut n = client_no * 100_000;
    while !stop.load(Ordering::Relaxed) {
        let call = CALLS[n % CALLS.len()];
        seen.push(send(&client, &base, &token, call, n).await);
        n += 1;
    }
    seen
}

/// A record as the API shows it, waiting up to `patience` for it to appear.
async fn record(server: &Server, token: &str, id: &str, patience: Duration) -> Option<Value> {
    let deadline = Instant::now() + patience;
    loop {
        let response = server.get(&format!("/v1/ai/invocations/{id}"), token).await;
        if response.status == 200 {
            return Some(response.json["result"].clone());
        }
        if Instant::now() >= deadline {
            return None;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

fn kill_cycles() -> usize {
    std::env::var("SWITCHBOARD_KILL_CYCLES")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(20)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn kill_nine_under_load_loses_no_acknowledged_invocation() {
    for backend in backends() {
        let mut gateway = Gateway::start_with(
            backend,
            SimConfig::default(),
            env(&[("SWITCHBOARD_INSTANCE_STALE_SECONDS", "1")]),
        )
        .await;
        let (mut acknowledged, mut in_flight) = (0, 0);
        for cycle in 0..kill_cycles() {
            let stop = Arc::new(AtomicBool::new(false));
            let clients: Vec<_> = (0..6)
                .map(|c| {
                    let base = gateway.server.base_url.clone();
                    let token = gateway.org.member.clone();
                    tokio::spawn(load(base, token, stop.clone(), c))
                })
                .collect();
            tokio::time::sleep(Duration::from_millis(250 + 37 * (cycle as u64 % 7))).await;
            gateway.server.crash_and_restart();
            stop.store(true, Ordering::Relaxed);
            let mut seen = Vec::new();
            for client in clients {
                seen.extend(client.await.unwrap());
            }
            let admin = gateway.org.admin.clone();
            for outcome in &seen {
                match outcome {
                    Seen::Acknowledged(id) => {
                        acknowledged += 1;
                        // Durable: there at once, on the restarted process.
                        let found = record(&gateway.server, &admin, id, Duration::ZERO).await;
                        let found = found.unwrap_or_else(|| {
                            panic!("{backend:?} cycle {cycle}: acknowledged {id} is missing")
                        });
                        assert_eq!(found["status"], "Completed", "{found}");
                    }
                    Seen::InFlight(id) => {
                        in_flight += 1;
                        let found = record(&gateway.server, &admin, id, Duration::from_secs(20))
                            .await
                            .unwrap_or_else(|| {
                                panic!("{backend:?} cycle {cycle}: in-flight {id} is missing")
                            });
                        let interrupted =
                            found["status"] == "Failed" && found["errorName"] == "interrupted";
                        assert!(
                            found["status"] == "Completed" || interrupted,
                            "{backend:?}: {found}"
                        );
                    }
                    Seen::Nothing => {}
                }
            }
        }
        assert!(
            acknowledged > 0 && in_flight > 0,
            "{acknowledged} / {in_flight}"
        );
        let verify = gateway.server.cli(&["audit", "verify"]);
        assert!(
            verify.status.success(),
            "{backend:?}: audit verify failed: {}{}",
            String::from_utf8_lossy(&verify.stdout),
            String::from_utf8_lossy(&verify.stderr)
        );
        eprintln!("{backend:?}: {acknowledged} acknowledged, {in_flight} in flight at a crash");
    }
}

/// Invoke, then at once poll and list: the final record with its message, every time.
async fn invoke_poll_list(
    writer: &Server,
    reader: &Server,
    token: &str,
    n: usize,
) -> Result<(), String> {
    let id = format!("raw-{n}");
    let response = reqwest::Client::new()
        .post(format!(
            "{}/v1/ai/invoke?invocation_identifier={id}",
            writer.base_url
        ))
        .bearer_auth(token)
        .json(&json!({ "provider": "openai", "model": "gpt-5", "userPrompt": format!("poll {n}") }))
        .send()
        .await
        .map_err(|e| e.to_string())?;
    let text = response.text().await.map_err(|e| e.to_string())?;
    if !text.contains("event: done") {
        return Err(format!("no done event: {text}"));
    }
    let poll = reader.get(&format!("/v1/ai/invoke/{id}"), token).await;
    let result = poll.result();
    if result["status"] != "Completed" || result["message"] != format!("Echo: poll {n}") {
        return Err(format!("poll {n}: {}", poll.json));
    }
    let list = reader.get("/v1/ai/invocations?limit=5", token).await;
    let listed = list.result().as_array().is_some_and(|items| {
        items
            .iter()
            .any(|r| r["id"] == id && r["content"]["response"] == format!("Echo: poll {n}"))
    });
    if !listed {
        return Err(format!("list {n}: {}", list.json));
    }
    Ok(())
}

#[tokio::test]
async fn read_after_write_on_one_replica_and_across_two() {
    for backend in backends() {
        let gateway = Gateway::start(backend).await;
        let token = gateway.org.member.clone();
        for n in 0..100 {
            invoke_poll_list(&gateway.server, &gateway.server, &token, n)
                .await
                .unwrap_or_else(|e| panic!("{backend:?}: {e}"));
        }
        if backend == Backend::Postgres {
            let other = gateway.server.replica();
            for n in 100..200 {
                invoke_poll_list(&gateway.server, &other, &token, n)
                    .await
                    .unwrap_or_else(|e| panic!("across replicas: {e}"));
            }
            in_flight_is_in_progress_on_the_other_replica(&gateway, &other).await;
        }
    }
}

/// An invocation still streaming on A answers `In Progress` on B.
async fn in_flight_is_in_progress_on_the_other_replica(gateway: &Gateway, other: &Server) {
    let token = &gateway.org.member;
    let mut response = reqwest::Client::new()
        .post(gateway.url("/v1/ai/invoke?invocation_identifier=slow-1"))
        .bearer_auth(token)
        .json(&json!({ "provider": "openai", "model": "gpt-5",
                       "userPrompt": "slow [[sim:delay_ms=300 chunks=8]]" }))
        .send()
        .await
        .unwrap();
    let first = response.chunk().await.unwrap().unwrap();
    assert!(!first.is_empty());
    let poll = other.get("/v1/ai/invoke/slow-1", token).await.expect(200);
    assert_eq!(poll.result()["status"], "In Progress", "{}", poll.json);
    // Admins see every invocation of their organization, running or not.
    let foreign = other.get("/v1/ai/invoke/slow-1", &gateway.org.admin).await;
    assert_eq!(foreign.status, 200, "admins see every invocation");
    while response.chunk().await.unwrap().is_some() {}
    let poll = other.get("/v1/ai/invoke/slow-1", token).await.expect(200);
    assert_eq!(poll.result()["status"], "Completed", "{}", poll.json);
}

/// A faulted stream: what the caller got and what was recorded.
struct Faulted {
    events: Vec<(String, String)>,
    record: Value,
}

async fn faulted(gateway: &Gateway, path: &str, provider: &str, fault: &str) -> Faulted {
    let model = match provider {
        "openai" => "gpt-5",
        _ => "claude-sonnet-4-5-20250929",
    };
    let prompt = format!("fault [[sim:chunks=6 {fault}]]");
    let body = json!({ "provider": provider, "model": model, "max_tokens": 64, "stream": true,
                       "messages": [{ "role": "user", "content": prompt }] });
    let response = gateway.post(path, &body).await;
    assert_eq!(response.status(), 200);
    let id = response.headers()["x-switchboard-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let text = response
        .text()
        .await
        .expect("the gateway ends the stream cleanly");
    let record = record(
        &gateway.server,
        &gateway.org.admin,
        &id,
        Duration::from_secs(5),
    )
    .await
    .expect("recorded");
    Faulted {
        events: sse_events(&text),
        record,
    }
}

#[tokio::test]
async fn broken_upstream_streams_end_with_a_parseable_error_and_a_failed_record() {
    for backend in backends() {
        let gateway = Gateway::start_with(
            backend,
            SimConfig::default(),
            env(&[("SWITCHBOARD_STREAM_IDLE_TIMEOUT_SECONDS", "1")]),
        )
        .await;
        let faults = [
            ("cut_mid_event=2", "upstream_incomplete"),
            ("no_terminator", "upstream_incomplete"),
            ("stall_after=1", "upstream_timeout"),
        ];
        // Pass-through and translated, on both surfaces.
        let routes = [
            ("/v1/chat/completions", "openai"),
            ("/v1/chat/completions", "anthropic"),
            ("/v1/messages", "anthropic"),
            ("/v1/messages", "openai"),
        ];
        for (path, provider) in routes {
            for (fault, name) in faults {
                let seen = faulted(&gateway, path, provider, fault).await;
                let context = format!("{backend:?} {path} via {provider}, {fault}");
                assert!(!seen.events.is_empty(), "{context}");
                for (event, data) in &seen.events {
                    assert_ne!(data, "[DONE]", "{context}: terminator after a fault");
                    assert_ne!(event, "message_stop", "{context}: terminator after a fault");
                    let parsed = serde_json::from_str::<Value>(data);
                    assert!(parsed.is_ok(), "{context}: unparseable event {data:?}");
                }
                let (event, data) = seen.events.last().unwrap();
                let last: Value = serde_json::from_str(data).unwrap();
                let is_error = event == "error" || last.get("error").is_some();
                assert!(is_error, "{context}: last event {event} {data}");
                assert_eq!(
                    seen.record["status"], "Failed",
                    "{context}: {}",
                    seen.record
                );
                assert_eq!(seen.record["errorName"], name, "{context}: {}", seen.record);
            }
        }
    }
}

/// A TCP relay to PostgreSQL that can stop forwarding (a frozen database), or cut every
/// connection and refuse new ones (a database that is down), and resume.
struct Relay {
    addr: std::net::SocketAddr,
    frozen: Arc<AtomicBool>,
    refusing: Arc<AtomicBool>,
    cut: Arc<tokio::sync::Notify>,
}

impl Relay {
    async fn start(upstream: std::net::SocketAddr) -> Relay {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let relay = Relay {
            addr: listener.local_addr().unwrap(),
            frozen: Arc::new(AtomicBool::new(false)),
            refusing: Arc::new(AtomicBool::new(false)),
            cut: Arc::new(tokio::sync::Notify::new()),
        };
        let (frozen, refusing, cut) = (
            relay.frozen.clone(),
            relay.refusing.clone(),
            relay.cut.clone(),
        );
        tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                if refusing.load(Ordering::SeqCst) {
                    drop(client);
                    continue;
                }
                let (frozen, cut) = (frozen.clone(), cut.clone());
                tokio::spawn(async move {
                    let Ok(server) = tokio::net::TcpStream::connect(upstream).await else {
                        return;
                    };
                    let (cr, cw) = client.into_split();
                    let (sr, sw) = server.into_split();
                    tokio::select! {
                        _ = async { tokio::join!(pump(cr, sw, frozen.clone()), pump(sr, cw, frozen)) } => {}
                        _ = cut.notified() => {}
                    }
                });
            }
        });
        relay
    }

    fn freeze(&self, frozen: bool) {
        self.frozen.store(frozen, Ordering::SeqCst);
    }

    /// Cuts every open connection and refuses new ones (or accepts them again).
    fn refuse(&self, refusing: bool) {
        self.refusing.store(refusing, Ordering::SeqCst);
        if refusing {
            self.cut.notify_waiters();
        }
    }
}

/// Copies bytes while not frozen; a frozen relay holds them (the peer sees silence).
async fn pump(
    mut from: tokio::net::tcp::OwnedReadHalf,
    mut to: tokio::net::tcp::OwnedWriteHalf,
    frozen: Arc<AtomicBool>,
) {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let Ok(n) = from.read(&mut buf).await else {
            return;
        };
        if n == 0 {
            return;
        }
        while frozen.load(Ordering::SeqCst) {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        if to.write_all(&buf[..n]).await.is_err() {
            return;
        }
    }
}

/// Status and how long it took.
async fn timed(server: &Server, path: &str, token: &str) -> (u16, Duration) {
    let started = Instant::now();
    let response = server
        .request(reqwest::Method::GET, path)
        .bearer_auth(token)
        .timeout(Duration::from_secs(30))
        .send()
        .await;
    let status = response.map(|r| r.status().as_u16()).unwrap_or(0);
    (status, started.elapsed())
}

async fn chat_status(gateway: &Gateway, stream: bool) -> (u16, Duration) {
    let started = Instant::now();
    let body = json!({ "provider": "openai", "model": "gpt-5", "stream": stream,
                       "messages": [{ "role": "user", "content": "db fault" }] });
    let response = gateway.post("/v1/chat/completions", &body).await;
    let status = response.status().as_u16();
    let _ = response.text().await;
    (status, started.elapsed())
}

// Multi-threaded: the relay keeps forwarding while the test blocks on a process start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_frozen_or_refusing_postgresql_gets_deadlines_and_everything_recovers() {
    if !backends().contains(&Backend::Postgres) {
        return;
    }
    // The gateway's database URL points at the relay in front of a fresh database.
    let direct = Gateway::start(Backend::Postgres).await;
    let url = direct.server.database_url.clone();
    let (prefix, rest) = url
        .split_once("@127.0.0.1:5432")
        .expect("local PostgreSQL URL");
    let target: std::net::SocketAddr = "127.0.0.1:5432".parse().unwrap();
    let relay = Relay::start(target).await;
    let relayed = format!("{prefix}@{}{rest}", relay.addr);
    let mut server = direct.server.replica();
    server.set_env("SWITCHBOARD_DATABASE_URL", &relayed);
    server.set_env("SWITCHBOARD_DATABASE_TIMEOUT_SECONDS", "2");
    server.crash_and_restart();
    let gateway = Gateway {
        server,
        sim: direct.sim,
        org: direct.org,
    };
    let admin = gateway.org.admin.clone();
    assert_eq!(chat_status(&gateway, false).await.0, 200);
    for fault in ["frozen", "refusing"] {
        match fault {
            "frozen" => relay.freeze(true),
            _ => relay.refuse(true),
        }
        let (ready, took) = timed(&gateway.server, "/readyz", &admin).await;
        assert_eq!(ready, 503, "{fault}");
        assert!(
            took < Duration::from_millis(1500),
            "{fault}: readyz took {took:?}"
        );
        let (status, took) = timed(&gateway.server, "/v1/audit-log", &admin).await;
        assert_eq!(status, 503, "{fault}: a management read past its deadline");
        assert!(took < Duration::from_secs(6), "{fault}: took {took:?}");
        for stream in [false, true] {
            let (status, took) = chat_status(&gateway, stream).await;
            assert_eq!(
                status, 503,
                "{fault}: durable recording without the database"
            );
            assert!(took < Duration::from_secs(10), "{fault}: took {took:?}");
        }
        relay.freeze(false);
        relay.refuse(false);
        wait_ready(&gateway.server).await;
        assert_eq!(chat_status(&gateway, false).await.0, 200, "{fault}");
        assert_eq!(chat_status(&gateway, true).await.0, 200, "{fault}");
    }
    let verify = gateway.server.cli(&["audit", "verify"]);
    assert!(verify.status.success());
    drop(direct.server);
}

async fn wait_ready(server: &Server) {
    for _ in 0..100 {
        if server
            .call(reqwest::Method::GET, "/readyz", None, None)
            .await
            .status
            == 200
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("never ready again");
}

#[tokio::test]
async fn a_locked_sqlite_gets_deadlines_and_everything_recovers() {
    use sqlx::Connection;
    let gateway = Gateway::start_with(
        Backend::Sqlite,
        SimConfig::default(),
        env(&[("SWITCHBOARD_DATABASE_TIMEOUT_SECONDS", "2")]),
    )
    .await;
    let admin = gateway.org.admin.clone();
    let acknowledged = reqwest::Client::new()
        .post(gateway.url("/v1/chat/completions"))
        .bearer_auth(&gateway.org.member)
        .json(&json!({ "provider": "openai", "model": "gpt-5",
                       "messages": [{ "role": "user", "content": "before the lock" }] }))
        .send()
        .await
        .unwrap();
    assert_eq!(acknowledged.status(), 200);
    let before = acknowledged.headers()["x-switchboard-invocation-id"]
        .to_str()
        .unwrap()
        .to_owned();
    let mut lock = sqlx::SqliteConnection::connect(&gateway.server.database_url)
        .await
        .unwrap();
    sqlx::query("BEGIN EXCLUSIVE")
        .execute(&mut lock)
        .await
        .unwrap();
    let (ready, took) = timed(&gateway.server, "/readyz", &admin).await;
    assert_eq!(ready, 503, "a write-locked SQLite is not ready");
    assert!(took < Duration::from_millis(1500), "readyz took {took:?}");
    let started = Instant::now();
    let write = gateway
        .server
        .put(
            "/v1/organization/ai-settings",
            &admin,
            json!({ "retentionDays": 7 }),
        )
        .await;
    assert_eq!(write.status, 503, "{}", write.json);
    assert!(write.headers.contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_secs(6));
    let mut refused = BTreeMap::new();
    for stream in [false, true] {
        let (status, took) = chat_status(&gateway, stream).await;
        refused.insert(stream, status);
        assert!(took < Duration::from_secs(10), "took {took:?}");
    }
    assert_eq!(refused.values().copied().collect::<Vec<_>>(), [503, 503]);
    sqlx::query("ROLLBACK").execute(&mut lock).await.unwrap();
    drop(lock);
    wait_ready(&gateway.server).await;
    assert_eq!(chat_status(&gateway, false).await.0, 200);
    let found = record(&gateway.server, &admin, &before, Duration::ZERO).await;
    assert_eq!(
        found.expect("acknowledged before the lock")["status"],
        "Completed"
    );
    // What the caller was refused is recorded as exactly that.
    let list = gateway
        .server
        .get("/v1/ai/invocations?limit=20", &admin)
        .await;
    let unavailable = list
        .result()
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["errorName"] == "recording_unavailable")
        .count();
    assert!(unavailable >= 1, "{}", list.json);
    let verify = gateway.server.cli(&["audit", "verify"]);
    assert!(verify.status.success());
}
