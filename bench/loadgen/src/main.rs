//! `sb-loadgen`: the load generator behind `bench/run`.
//!
//! One process, one JSON spec in (file path argument), one JSON result out (stdout). Every
//! connection is a raw hyper HTTP/1.1 client connection (no pool, no redirects, no TLS), so
//! the client adds a few microseconds at most and costs little CPU. Modes:
//!
//! - `latency`: non-streaming requests one at a time; rounds alternate the targets' order, so
//!   direct and gateway calls interleave in time. Per target: latency quantiles.
//! - `stream`: paced streaming requests one at a time, alternating targets per round; per
//!   target: time to first SSE event and the gaps between consecutive SSE events.
//! - `many`: `concurrency` paced streams held open at once (opened over `ramp_ms`) against each
//!   target in turn; gaps, stalls (gap > `stall_factor` × `pace_ms`), errors, and the RSS of the
//!   watched processes sampled every 20 ms (idle before, peak during, and after).
//! - `throughput`: `concurrency` closed-loop connections for `duration_s` per round against
//!   an instant upstream; requests/s, latency quantiles, and CPU time of the watched processes
//!   (from `/proc/<pid>/stat`) per request.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, anyhow, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1;
use hyper_util::rt::TokioIo;
use serde_json::{Value, json};
use tokio::net::TcpStream;

#[derive(Clone)]
struct Target {
    name: String,
    addr: String,
    path: String,
    headers: Vec<(String, String)>,
    body: Bytes,
    /// Processes whose CPU time and RSS are reported for this target, by label.
    watch: Vec<(String, u32)>,
}

struct Spec {
    mode: String,
    targets: Vec<Target>,
    rounds: usize,
    per_round: usize,
    warmup: usize,
    concurrency: usize,
    ramp_ms: u64,
    pace_ms: f64,
    stall_factor: f64,
    duration_s: f64,
    settle_ms: u64,
    threads: usize,
}

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: sb-loadgen SPEC.json | sb-loadgen relay LISTEN UPSTREAM")?;
    if path == "relay" {
        let mut args = std::env::args().skip(2);
        let (listen, upstream) = (
            args.next().context("LISTEN")?,
            args.next().context("UPSTREAM")?,
        );
        return tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
            .block_on(relay(listen, upstream));
    }
    let raw: Value = serde_json::from_slice(&std::fs::read(&path)?)?;
    let spec = parse_spec(&raw)?;
    let runtime = if spec.threads <= 1 {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?
    } else {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(spec.threads)
            .enable_all()
            .build()?
    };
    let out = runtime.block_on(run(spec))?;
    println!("{}", serde_json::to_string(&out)?);
    Ok(())
}

/// A byte relay (no HTTP parsing): the cost of one extra loopback hop on this machine, the
/// floor under any gateway's added latency.
async fn relay(listen: String, upstream: String) -> Result<()> {
    let listener = tokio::net::TcpListener::bind(&listen).await?;
    loop {
        let (mut inbound, _) = listener.accept().await?;
        inbound.set_nodelay(true)?;
        let upstream = upstream.clone();
        tokio::spawn(async move {
            if let Ok(mut outbound) = TcpStream::connect(&upstream).await {
                let _ = outbound.set_nodelay(true);
                let _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound).await;
            }
        });
    }
}

fn parse_spec(v: &Value) -> Result<Spec> {
    let num = |k: &str, d: f64| v.get(k).and_then(Value::as_f64).unwrap_or(d);
    let mut targets = Vec::new();
    for t in v["targets"].as_array().context("targets")? {
        let body = match (t.get("body"), t.get("body_file")) {
            (_, Some(Value::String(f))) => Bytes::from(std::fs::read(f).context("body_file")?),
            (Some(Value::String(s)), _) => Bytes::from(s.clone()),
            (Some(other), _) => Bytes::from(serde_json::to_vec(other)?),
            _ => bail!("target without body"),
        };
        let headers = t
            .get("headers")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .map(|(k, v)| (k.clone(), v.as_str().unwrap_or_default().to_owned()))
                    .collect()
            })
            .unwrap_or_default();
        let watch = t
            .get("watch")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| Some((k.clone(), v.as_u64()? as u32)))
                    .collect()
            })
            .unwrap_or_default();
        targets.push(Target {
            name: t["name"].as_str().context("name")?.to_owned(),
            addr: t["addr"].as_str().context("addr")?.to_owned(),
            path: t["path"]
                .as_str()
                .unwrap_or("/v1/chat/completions")
                .to_owned(),
            headers,
            body,
            watch,
        });
    }
    Ok(Spec {
        mode: v["mode"].as_str().context("mode")?.to_owned(),
        targets,
        rounds: num("rounds", 5.0) as usize,
        per_round: num("per_round", 100.0) as usize,
        warmup: num("warmup", 20.0) as usize,
        concurrency: num("concurrency", 1.0) as usize,
        ramp_ms: num("ramp_ms", 500.0) as u64,
        pace_ms: num("pace_ms", 20.0),
        stall_factor: num("stall_factor", 2.0),
        duration_s: num("duration_s", 3.0),
        settle_ms: num("settle_ms", 2000.0) as u64,
        threads: num("threads", 1.0) as usize,
    })
}

async fn run(spec: Spec) -> Result<Value> {
    match spec.mode.as_str() {
        "latency" => latency(&spec, false).await,
        "stream" => latency(&spec, true).await,
        "many" => many(&spec).await,
        "throughput" => throughput(&spec).await,
        other => Err(anyhow!("unknown mode {other}")),
    }
}

// ---------------------------------------------------------------------------------------------
// Connections and requests

type Sender = http1::SendRequest<Full<Bytes>>;

async fn connect(addr: &str) -> Result<Sender> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("connect {addr}"))?;
    stream.set_nodelay(true)?;
    let (sender, conn) = http1::handshake(TokioIo::new(stream)).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(sender)
}

fn request(t: &Target) -> Result<hyper::Request<Full<Bytes>>> {
    let mut b = hyper::Request::post(t.path.as_str()).header("host", t.addr.as_str());
    for (k, v) in &t.headers {
        b = b.header(k.as_str(), v.as_str());
    }
    Ok(b.body(Full::new(t.body.clone()))?)
}

/// Timings of one exchange, in nanoseconds from just before the request was handed to hyper.
struct Exchange {
    status: u16,
    total: u64,
    /// Arrival time of each complete SSE event (streams only).
    events: Vec<u64>,
    bytes: usize,
}

async fn exchange(sender: &mut Sender, t: &Target, streaming: bool) -> Result<Exchange> {
    let req = request(t)?;
    sender.ready().await?;
    let start = Instant::now();
    let resp = sender.send_request(req).await?;
    let status = resp.status().as_u16();
    let mut body = resp.into_body();
    let mut events = Vec::new();
    let mut bytes = 0usize;
    // Count "\n\n" event terminators across frame boundaries.
    let mut last_nl = false;
    while let Some(frame) = body.frame().await {
        let frame = frame?;
        if let Some(data) = frame.data_ref() {
            let now = start.elapsed().as_nanos() as u64;
            bytes += data.len();
            if streaming {
                for &b in data.iter() {
                    if b == b'\n' {
                        if last_nl {
                            events.push(now);
                        }
                        last_nl = true;
                    } else if b != b'\r' {
                        last_nl = false;
                    }
                }
            }
        }
    }
    Ok(Exchange {
        status,
        total: start.elapsed().as_nanos() as u64,
        events,
        bytes,
    })
}

// ---------------------------------------------------------------------------------------------
// Statistics

fn quantiles_us(samples: &mut [u64]) -> Value {
    if samples.is_empty() {
        return json!({ "n": 0 });
    }
    samples.sort_unstable();
    let q = |p: f64| {
        let rank = ((p * samples.len() as f64).ceil() as usize).clamp(1, samples.len());
        samples[rank - 1] as f64 / 1000.0
    };
    let mean = samples.iter().map(|&s| s as f64).sum::<f64>() / samples.len() as f64 / 1000.0;
    json!({
        "n": samples.len(),
        "min": q(0.0), "p50": q(0.5), "p90": q(0.9), "p99": q(0.99), "p999": q(0.999),
        "max": samples[samples.len() - 1] as f64 / 1000.0, "mean": mean,
    })
}

/// CPU ticks (utime + stime) of a process.
fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 2..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

fn self_cpu_ticks() -> u64 {
    cpu_ticks(std::process::id()).unwrap_or(0)
}

/// Resident set size in KiB.
fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()
}

fn ticks_per_sec() -> f64 {
    100.0 // USER_HZ on Linux
}

// ---------------------------------------------------------------------------------------------
// latency / stream: one request at a time, alternating targets per round

async fn latency(spec: &Spec, streaming: bool) -> Result<Value> {
    let n = spec.targets.len();
    let mut totals: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut firsts: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut gaps: Vec<Vec<u64>> = vec![Vec::new(); n];
    let mut errors = vec![0usize; n];
    let mut round_p50: Vec<Vec<f64>> = vec![Vec::new(); n];
    let mut statuses: Vec<BTreeMap<u16, usize>> = vec![BTreeMap::new(); n];
    let mut bytes = vec![0usize; n];
    for round in 0..spec.rounds {
        for k in 0..n {
            // Rotate the order each round so no target always goes first.
            let i = (k + round) % n;
            let t = &spec.targets[i];
            let mut sender = connect(&t.addr).await?;
            for _ in 0..spec.warmup {
                if exchange(&mut sender, t, streaming).await.is_err() {
                    sender = connect(&t.addr).await?;
                }
            }
            let mut this_round = Vec::with_capacity(spec.per_round);
            for _ in 0..spec.per_round {
                match exchange(&mut sender, t, streaming).await {
                    Ok(x) => {
                        *statuses[i].entry(x.status).or_default() += 1;
                        bytes[i] = x.bytes;
                        if x.status != 200 {
                            errors[i] += 1;
                            continue;
                        }
                        totals[i].push(x.total);
                        this_round.push(x.total);
                        if streaming {
                            if let Some(&f) = x.events.first() {
                                firsts[i].push(f);
                            }
                            for w in x.events.windows(2) {
                                gaps[i].push(w[1] - w[0]);
                            }
                        }
                    }
                    Err(_) => {
                        errors[i] += 1;
                        sender = connect(&t.addr).await?;
                    }
                }
            }
            this_round.sort_unstable();
            if !this_round.is_empty() {
                round_p50[i].push(this_round[this_round.len() / 2] as f64 / 1000.0);
            }
        }
    }
    let mut out = serde_json::Map::new();
    for (i, t) in spec.targets.iter().enumerate() {
        let mut o = json!({
            "total_us": quantiles_us(&mut totals[i]),
            "errors": errors[i],
            "statuses": statuses[i].iter().map(|(k, v)| (k.to_string(), json!(v))).collect::<serde_json::Map<_,_>>(),
            "round_p50_us": round_p50[i],
            "response_bytes": bytes[i],
        });
        if streaming {
            o["ttft_us"] = quantiles_us(&mut firsts[i]);
            o["gap_us"] = quantiles_us(&mut gaps[i]);
        }
        out.insert(t.name.clone(), o);
    }
    Ok(
        json!({ "mode": spec.mode, "rounds": spec.rounds, "per_round": spec.per_round, "targets": out }),
    )
}

// ---------------------------------------------------------------------------------------------
// many: concurrent paced streams

async fn many(spec: &Spec) -> Result<Value> {
    let mut out = serde_json::Map::new();
    for t in &spec.targets {
        out.insert(t.name.clone(), many_one(spec, t).await?);
        tokio::time::sleep(Duration::from_millis(spec.settle_ms)).await;
    }
    Ok(
        json!({ "mode": "many", "concurrency": spec.concurrency, "pace_ms": spec.pace_ms, "targets": out }),
    )
}

async fn many_one(spec: &Spec, t: &Target) -> Result<Value> {
    let c = spec.concurrency;
    let idle: BTreeMap<String, u64> = t
        .watch
        .iter()
        .filter_map(|(k, pid)| Some((k.clone(), rss_kib(*pid)?)))
        .collect();
    let cpu0: Vec<Option<u64>> = t.watch.iter().map(|(_, p)| cpu_ticks(*p)).collect();
    let open = Arc::new(AtomicUsize::new(0));
    let max_open = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    // RSS sampler.
    let sampler = {
        let watch = t.watch.clone();
        let done = done.clone();
        let open = open.clone();
        tokio::spawn(async move {
            let mut peak: BTreeMap<String, (u64, usize)> = BTreeMap::new();
            while !done.load(Ordering::Relaxed) {
                for (k, pid) in &watch {
                    if let Some(r) = rss_kib(*pid) {
                        let e = peak.entry(k.clone()).or_insert((0, 0));
                        if r > e.0 {
                            *e = (r, open.load(Ordering::Relaxed));
                        }
                    }
                }
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            peak
        })
    };
    let started = Instant::now();
    let mut tasks = Vec::with_capacity(c);
    for i in 0..c {
        let due = Duration::from_micros(spec.ramp_ms * 1000 * i as u64 / c.max(1) as u64);
        let t = t.clone();
        let open = open.clone();
        let max_open = max_open.clone();
        tasks.push(tokio::spawn(async move {
            let now = started.elapsed();
            if due > now {
                tokio::time::sleep(due - now).await;
            }
            let mut sender = connect(&t.addr).await?;
            let n = open.fetch_add(1, Ordering::Relaxed) + 1;
            max_open.fetch_max(n, Ordering::Relaxed);
            // Bounded: a peer that never finishes a stream must not hang the run.
            let r = tokio::time::timeout(Duration::from_secs(120), exchange(&mut sender, &t, true))
                .await
                .unwrap_or_else(|_| Err(anyhow!("stream timed out")));
            open.fetch_sub(1, Ordering::Relaxed);
            r
        }));
    }
    let mut gaps = Vec::new();
    let mut ttft = Vec::new();
    let mut errors = 0usize;
    let mut non200 = 0usize;
    let mut events_per_stream = Vec::new();
    for task in tasks {
        match task.await? {
            Ok(x) if x.status == 200 => {
                if let Some(&f) = x.events.first() {
                    ttft.push(f);
                }
                for w in x.events.windows(2) {
                    gaps.push(w[1] - w[0]);
                }
                events_per_stream.push(x.events.len());
            }
            Ok(_) => non200 += 1,
            Err(_) => errors += 1,
        }
    }
    let elapsed = started.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let peak = sampler.await?;
    let cpu: BTreeMap<String, f64> = t
        .watch
        .iter()
        .zip(cpu0)
        .filter_map(|((k, pid), c0)| {
            Some((k.clone(), (cpu_ticks(*pid)? - c0?) as f64 / ticks_per_sec()))
        })
        .collect();
    // Recovery: RSS after the streams closed, after settle_ms.
    tokio::time::sleep(Duration::from_millis(spec.settle_ms)).await;
    let after: BTreeMap<String, u64> = t
        .watch
        .iter()
        .filter_map(|(k, pid)| Some((k.clone(), rss_kib(*pid)?)))
        .collect();
    let stall_ns = (spec.pace_ms * spec.stall_factor * 1e6) as u64;
    let stalls = gaps.iter().filter(|&&g| g > stall_ns).count();
    let min_events = events_per_stream.iter().copied().min().unwrap_or(0);
    Ok(json!({
        "concurrency": c,
        "max_open": max_open.load(Ordering::Relaxed),
        "ok_streams": events_per_stream.len(),
        "errors": errors,
        "non200": non200,
        "min_events_per_stream": min_events,
        "stalls": stalls,
        "stall_threshold_ms": stall_ns as f64 / 1e6,
        "gap_us": quantiles_us(&mut gaps),
        "ttft_us": quantiles_us(&mut ttft),
        "elapsed_s": elapsed,
        "cpu_s": cpu,
        "rss_idle_kib": idle,
        "rss_peak_kib": peak.iter().map(|(k, (r, _))| (k.clone(), json!(r))).collect::<serde_json::Map<_,_>>(),
        "open_at_peak": peak.iter().map(|(k, (_, o))| (k.clone(), json!(o))).collect::<serde_json::Map<_,_>>(),
        "rss_after_kib": after,
        "loadgen_cpu_s": self_cpu_ticks() as f64 / ticks_per_sec(),
    }))
}

// ---------------------------------------------------------------------------------------------
// throughput: closed loop, instant upstream

async fn throughput(spec: &Spec) -> Result<Value> {
    let n = spec.targets.len();
    let mut res: Vec<Vec<Value>> = vec![Vec::new(); n];
    let mut lat: Vec<Vec<u64>> = vec![Vec::new(); n];
    for round in 0..spec.rounds {
        for k in 0..n {
            let i = (k + round) % n;
            let (summary, mut samples) = throughput_one(spec, &spec.targets[i]).await?;
            res[i].push(summary);
            lat[i].append(&mut samples);
        }
    }
    let mut out = serde_json::Map::new();
    for (i, t) in spec.targets.iter().enumerate() {
        let rps: Vec<f64> = res[i].iter().filter_map(|r| r["rps"].as_f64()).collect();
        let mut per_watch: BTreeMap<String, Vec<f64>> = BTreeMap::new();
        for r in &res[i] {
            if let Some(m) = r["cpu_us_per_req"].as_object() {
                for (k, v) in m {
                    per_watch
                        .entry(k.clone())
                        .or_default()
                        .push(v.as_f64().unwrap_or(0.0));
                }
            }
        }
        out.insert(
            t.name.clone(),
            json!({
                "rounds": res[i],
                "rps_median": median(&rps),
                "cpu_us_per_req_median": per_watch.iter().map(|(k, v)| (k.clone(), json!(median(v)))).collect::<serde_json::Map<_,_>>(),
                "latency_us": quantiles_us(&mut lat[i]),
            }),
        );
    }
    Ok(
        json!({ "mode": "throughput", "concurrency": spec.concurrency, "duration_s": spec.duration_s, "targets": out }),
    )
}

fn median(v: &[f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    let mut s = v.to_vec();
    s.sort_by(|a, b| a.partial_cmp(b).unwrap());
    s[s.len() / 2]
}

async fn throughput_one(spec: &Spec, t: &Target) -> Result<(Value, Vec<u64>)> {
    // Warm the connections first, then measure a fixed window.
    let stop = Arc::new(AtomicBool::new(false));
    let measuring = Arc::new(AtomicBool::new(false));
    let count = Arc::new(AtomicU64::new(0));
    let errs = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for _ in 0..spec.concurrency {
        let t = t.clone();
        let (stop, measuring, count, errs) =
            (stop.clone(), measuring.clone(), count.clone(), errs.clone());
        tasks.push(tokio::spawn(async move {
            let mut samples = Vec::new();
            let mut sender = match connect(&t.addr).await {
                Ok(s) => s,
                Err(_) => return samples,
            };
            while !stop.load(Ordering::Relaxed) {
                match exchange(&mut sender, &t, false).await {
                    Ok(x) if x.status == 200 => {
                        if measuring.load(Ordering::Relaxed) {
                            count.fetch_add(1, Ordering::Relaxed);
                            samples.push(x.total);
                        }
                    }
                    Ok(_) => {
                        errs.fetch_add(1, Ordering::Relaxed);
                    }
                    Err(_) => {
                        errs.fetch_add(1, Ordering::Relaxed);
                        match connect(&t.addr).await {
                            Ok(s) => sender = s,
                            Err(_) => return samples,
                        }
                    }
                }
            }
            samples
        }));
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    let cpu0: Vec<Option<u64>> = t.watch.iter().map(|(_, p)| cpu_ticks(*p)).collect();
    let self0 = self_cpu_ticks();
    let c0 = count.load(Ordering::Relaxed);
    measuring.store(true, Ordering::Relaxed);
    let start = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(spec.duration_s)).await;
    measuring.store(false, Ordering::Relaxed);
    let elapsed = start.elapsed().as_secs_f64();
    let done = count.load(Ordering::Relaxed) - c0;
    let cpu1: Vec<Option<u64>> = t.watch.iter().map(|(_, p)| cpu_ticks(*p)).collect();
    let self1 = self_cpu_ticks();
    stop.store(true, Ordering::Relaxed);
    let mut samples = Vec::new();
    for task in tasks {
        samples.append(&mut task.await?);
    }
    let mut cpu = serde_json::Map::new();
    let mut per_req = serde_json::Map::new();
    for (((k, _), a), b) in t.watch.iter().zip(&cpu0).zip(&cpu1) {
        if let (Some(a), Some(b)) = (a, b) {
            let secs = (b - a) as f64 / ticks_per_sec();
            cpu.insert(k.clone(), json!(secs));
            per_req.insert(k.clone(), json!(secs * 1e6 / done.max(1) as f64));
        }
    }
    let lg = (self1 - self0) as f64 / ticks_per_sec();
    per_req.insert("loadgen".into(), json!(lg * 1e6 / done.max(1) as f64));
    Ok((
        json!({
            "requests": done,
            "errors": errs.load(Ordering::Relaxed),
            "elapsed_s": elapsed,
            "rps": done as f64 / elapsed,
            "cpu_s": cpu,
            "cpu_us_per_req": per_req,
        }),
        samples,
    ))
}
