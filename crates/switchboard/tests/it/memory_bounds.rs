//! Memory under hostile load (issue 12, item 2): the server process's resident memory,
//! read from `/proc`, judged by ratios to its own idle level. Twenty concurrent 30 MiB
//! bodies and two hundred stalled stream readers raise it by a bounded amount, and 15 s
//! after the load it is back within 10 % of where it was before.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use serde_json::json;
use tokio::io::AsyncWriteExt;

use crate::gateway::Gateway;
use crate::harness::Backend;

const MIB: u64 = 1024 * 1024;

/// Resident memory of `pid`, in bytes.
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("proc status");
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS");
    kib * 1024
}

/// Samples the peak RSS of `pid` until stopped.
struct PeakSampler {
    peak: Arc<AtomicU64>,
    stop: Arc<AtomicBool>,
}

impl PeakSampler {
    fn start(pid: u32) -> Self {
        let peak = Arc::new(AtomicU64::new(rss(pid)));
        let stop = Arc::new(AtomicBool::new(false));
        let (p, s) = (peak.clone(), stop.clone());
        tokio::spawn(async move {
            while !s.load(Ordering::Relaxed) {
                p.fetch_max(rss(pid), Ordering::Relaxed);
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        });
        Self { peak, stop }
    }

    fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        self.peak.load(Ordering::Relaxed)
    }
}

/// Ordinary requests, one at a time and a burst of fifty at once, so that pools, caches
/// and the recorder are at their working size: the idle level afterwards is what the
/// process returns to.
async fn warm_up(gateway: &Gateway) -> u64 {
    let body = |stream: bool| {
        json!({ "provider": "openai", "model": "gpt-5", "stream": stream,
            "messages": [{ "role": "user", "content": "x ".repeat(100_000) }] })
    };
    for stream in [false, true, false, true] {
        let response = gateway.post("/v1/chat/completions", &body(stream)).await;
        assert_eq!(response.status(), 200);
        response.bytes().await.unwrap();
    }
    let burst: Vec<_> = (0..50)
        .map(|_| {
            let request = reqwest::Client::new()
                .post(gateway.url("/v1/chat/completions"))
                .bearer_auth(&gateway.org.member)
                .json(&body(true));
            tokio::spawn(async move { request.send().await.unwrap().bytes().await.unwrap() })
        })
        .collect();
    for task in burst {
        task.await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    rss(gateway.server.pid())
}

/// Memory 15 s after the load, against the level before it.
async fn assert_returns(gateway: &Gateway, before: u64, peak: u64, what: &str) {
    tokio::time::sleep(Duration::from_secs(15)).await;
    let after = rss(gateway.server.pid());
    eprintln!(
        "{what}: idle {} MiB, peak {} MiB, 15 s after {} MiB",
        before / MIB,
        peak / MIB,
        after / MIB
    );
    assert!(
        after * 10 <= before * 11,
        "{what}: RSS {} MiB 15 s after the load, {} MiB before it (peak {} MiB)",
        after / MIB,
        before / MIB,
        peak / MIB
    );
}

/// Twenty callers post 30 MiB bodies at once. The bodies are read whole (and refused
/// afterwards for their `n`, so that the upstream's cost does not slow the test down): the
/// shared budget admits some and answers the rest 503 before reading them.
#[tokio::test]
async fn memory_comes_back_after_twenty_concurrent_30_mib_bodies() {
    let gateway = Gateway::start(Backend::Sqlite).await;
    // Kept prompts are the recorder's memory (bounded by its own byte budget, and written
    // to the database after the answer): this test is about the bodies.
    gateway.keep_no_content().await;
    let before = warm_up(&gateway).await;
    let sampler = PeakSampler::start(gateway.server.pid());
    // One copy for all twenty requests (a static body is sent without copying).
    let body: &'static str = Box::leak(
        json!({ "provider": "openai", "model": "gpt-5", "n": 1000,
            "messages": [{ "role": "user", "content": "x ".repeat(15 * MIB as usize) }] })
        .to_string()
        .into_boxed_str(),
    );
    let tasks: Vec<_> = (0..20)
        .map(|_| {
            let request = reqwest::Client::new()
                .post(gateway.url("/v1/chat/completions"))
                .bearer_auth(&gateway.org.member)
                .header("content-type", "application/json")
                .body(body);
            tokio::spawn(async move {
                let response = request.send().await.expect("response");
                let status = response.status().as_u16();
                response.bytes().await.unwrap();
                status
            })
        })
        .collect();
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    let peak = sampler.finish();
    assert!(
        statuses.iter().all(|s| matches!(s, 400 | 503)),
        "{statuses:?}"
    );
    let read = statuses.iter().filter(|s| **s == 400).count();
    eprintln!(
        "20 x 30 MiB bodies: {read} read whole, {} refused for the budget (503)",
        20 - read
    );
    assert!(read > 0, "{statuses:?}");
    // The 256 MiB body budget bounds what bodies take at once (copies included).
    assert!(
        peak <= before + 1024 * MIB,
        "peak {} MiB from {} MiB idle",
        peak / MIB,
        before / MIB
    );
    assert_returns(&gateway, before, peak, "20 x 30 MiB bodies").await;
    gateway.server.stop();
}

#[tokio::test]
async fn two_hundred_stalled_stream_readers_cost_a_small_buffer_each_and_memory_comes_back() {
    let gateway = Gateway::start(Backend::Sqlite).await;
    let before = warm_up(&gateway).await;
    let sampler = PeakSampler::start(gateway.server.pid());
    let upstream_before = gateway.sim.handle.requests().len();
    let addr = gateway
        .server
        .base_url
        .trim_start_matches("http://")
        .to_owned();
    // A long answer (20,000 chunks, several MiB) that the callers never read.
    let body = json!({ "provider": "openai", "model": "gpt-5", "stream": true,
        "messages": [{ "role": "user", "content": "tell me [[sim:chunks=100000]]" }] })
    .to_string();
    let request = format!(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {}\r\n\
         content-type: application/json\r\ncontent-length: {}\r\n\r\n{body}",
        gateway.org.member,
        body.len()
    );
    let mut readers = Vec::new();
    for _ in 0..200 {
        let mut socket = tokio::net::TcpStream::connect(&addr)
            .await
            .expect("connect");
        socket.write_all(request.as_bytes()).await.unwrap();
        readers.push(socket);
    }
    // Every stream runs until back-pressure stops it; after that nothing grows: there is
    // no queue between the upstream and the caller. Stalled: every request reached the
    // upstream and memory stopped rising (within 2 % over a second, 30 s at most).
    while gateway.sim.handle.requests().len() < upstream_before + 200 {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let mut stalled = rss(gateway.server.pid());
    for _ in 0..30 {
        tokio::time::sleep(Duration::from_secs(1)).await;
        let now = rss(gateway.server.pid());
        let settled = now <= stalled + stalled / 50;
        stalled = now;
        if settled {
            break;
        }
    }
    tokio::time::sleep(Duration::from_secs(5)).await;
    let later = rss(gateway.server.pid());
    let peak = sampler.finish();
    assert!(
        later <= stalled + stalled / 20 + 4 * MIB,
        "memory grew while the readers stalled: {} MiB, then {} MiB",
        stalled / MIB,
        later / MIB
    );
    // A fixed cost per stalled stream: the connections' I/O buffers (hyper's, on the
    // caller's side and the upstream's), not the answer.
    let per_stream = peak.saturating_sub(before) / 200;
    eprintln!("{} KiB per stalled stream", per_stream / 1024);
    assert!(
        per_stream <= 1024 * 1024,
        "{} KiB per stalled stream (idle {} MiB, peak {} MiB)",
        per_stream / 1024,
        before / MIB,
        peak / MIB
    );
    drop(readers);
    assert_returns(&gateway, before, peak, "200 stalled readers").await;
    gateway.server.stop();
}
