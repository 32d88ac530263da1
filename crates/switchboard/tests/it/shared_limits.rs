//! The managed provider's limits across replicas on one PostgreSQL database, with and
//! without Redis (each Redis test starts its own `redis-server` on a free port, so it can
//! kill it): concurrent admissions never pass a limit together, cancelled requests stay
//! charged, a restart keeps the counts, and a Redis outage neither hangs a request nor
//! lets the limits go.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_sim::SimConfig;

use crate::gateway::Gateway;
use crate::harness::{Backend, Server, backends};

/// A `redis-server` of this test's own, without persistence.
pub struct RedisServer {
    pub port: u16,
    child: Child,
}

impl RedisServer {
    /// `None` (with a line saying why) when `redis-server` is not installed.
    pub fn start() -> Option<Self> {
        let port = free_port();
        Self::start_on(port)
    }

    fn start_on(port: u16) -> Option<Self> {
        let child = Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn();
        let Ok(child) = child else {
            let why = "redis-server is not installed (apt-get install -y redis-server)";
            assert!(
                std::env::var("SWITCHBOARD_REQUIRE_REDIS").as_deref() != Ok("1"),
                "SWITCHBOARD_REQUIRE_REDIS=1 but {why}"
            );
            eprintln!("skipping the Redis case: {why}");
            return None;
        };
        let started = Instant::now();
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                started.elapsed() < Duration::from_secs(10),
                "redis-server did not start"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        Some(Self { port, child })
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}/", self.port)
    }

    /// `kill -9`: Redis gone at once, its data with it.
    pub fn kill(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// A new, empty Redis on the same port.
    pub fn restart(&mut self) {
        self.kill();
        let fresh = Self::start_on(self.port).expect("redis-server ran before");
        *self = fresh;
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        self.kill();
    }
}

fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn env(pairs: &[(&str, String)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| ((*k).to_owned(), v.clone()))
        .collect()
}

/// Replicas of one gateway on PostgreSQL (the first is the gateway's own server).
struct Cluster {
    gateway: Gateway,
    others: Vec<Server>,
}

impl Cluster {
    async fn start(replicas: usize, extra: Vec<(String, String)>) -> Cluster {
        let gateway = Gateway::start_with(Backend::Postgres, SimConfig::default(), extra).await;
        let others = (1..replicas).map(|_| gateway.server.replica()).collect();
        Cluster { gateway, others }
    }

    fn replica(&self, n: usize) -> &Server {
        match n % (self.others.len() + 1) {
            0 => &self.gateway.server,
            k => &self.others[k - 1],
        }
    }

    fn all(&self) -> impl Iterator<Item = &Server> {
        std::iter::once(&self.gateway.server).chain(&self.others)
    }

    fn member(&self) -> String {
        self.gateway.org.member.clone()
    }

    /// `remainingQuota` as every replica reports it.
    async fn remaining_quota(&self) -> Vec<u64> {
        let mut all = Vec::new();
        for server in self.all() {
            let answer = server
                .get("/v1/quota/ai-invocations", &self.member())
                .await
                .expect(200);
            all.push(
                answer.json["monthlyQuotaUsage"]["remainingQuota"]
                    .as_u64()
                    .unwrap(),
            );
        }
        all
    }
}

fn managed_chat(content: &str, stream: bool) -> Value {
    json!({ "provider": "managed", "model": "gpt-5", "stream": stream,
            "messages": [{ "role": "user", "content": content }] })
}

/// Sends `count` managed requests at once, round robin over the replicas; their statuses.
async fn burst(cluster: &Cluster, count: usize) -> Vec<u16> {
    let mut tasks = Vec::new();
    for n in 0..count {
        let request = reqwest::Client::new()
            .post(format!(
                "{}/v1/chat/completions",
                cluster.replica(n).base_url
            ))
            .bearer_auth(cluster.member())
            .json(&managed_chat("hi [[sim:latency_ms=50]]", false));
        tasks.push(tokio::spawn(async move {
            request.send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for task in tasks {
        statuses.push(task.await.unwrap());
    }
    statuses
}

fn count(statuses: &[u16], status: u16) -> usize {
    statuses.iter().filter(|s| **s == status).count()
}

/// 64 concurrent requests over the replicas against an hourly limit of 40: exactly 40 pass
/// (the reservation is atomic wherever the counters are); every replica then reports the
/// same quota, and a restarted replica still does.
async fn limits_hold(replicas: usize, redis: Option<&RedisServer>) {
    let mut vars = vec![
        ("SWITCHBOARD_MANAGED_REQUESTS_PER_HOUR", "40".to_owned()),
        ("SWITCHBOARD_MANAGED_MONTHLY_INVOCATIONS", "100".to_owned()),
    ];
    if let Some(redis) = redis {
        vars.push(("SWITCHBOARD_REDIS_URL", redis.url()));
    }
    let mut cluster = Cluster::start(replicas, env(&vars)).await;
    let statuses = burst(&cluster, 64).await;
    assert_eq!(count(&statuses, 200), 40, "{statuses:?}");
    assert_eq!(count(&statuses, 429), 24, "{statuses:?}");
    assert_eq!(cluster.remaining_quota().await, vec![60; replicas]);

    // A replica restart keeps the counts (they are not in its memory).
    let restarted = cluster.others.pop().expect("a second replica").restart();
    cluster.others.push(restarted);
    assert_eq!(cluster.remaining_quota().await, vec![60; replicas]);
    let statuses = burst(&cluster, 4).await;
    assert_eq!(
        count(&statuses, 429),
        4,
        "the hour is still full: {statuses:?}"
    );
    if redis.is_some() {
        for server in cluster.all() {
            assert!(!server.log_text().contains("redis is unreachable"));
        }
    }
}

#[tokio::test]
async fn limits_hold_across_two_and_three_replicas_on_postgres() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipping: replicas share a PostgreSQL database");
        return;
    }
    limits_hold(2, None).await;
    limits_hold(3, None).await;
}

#[tokio::test]
async fn limits_hold_across_two_and_three_replicas_with_redis() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipping: replicas share a PostgreSQL database");
        return;
    }
    let Some(redis) = RedisServer::start() else {
        return;
    };
    limits_hold(2, Some(&redis)).await;
    limits_hold(3, Some(&redis)).await;
}

/// 100 streams whose clients go away after the first chunk, over the replicas: each
/// admitted one stays charged, so the remaining quota is the limit minus the admitted.
async fn cancelled_requests_stay_charged(redis: Option<&RedisServer>) {
    let mut vars = vec![("SWITCHBOARD_MANAGED_MONTHLY_INVOCATIONS", "500".to_owned())];
    if let Some(redis) = redis {
        vars.push(("SWITCHBOARD_REDIS_URL", redis.url()));
    }
    let cluster = Cluster::start(2, env(&vars)).await;
    let body = managed_chat("cancel me [[sim:delay_ms=200 chunks=20]]", true);
    let mut tasks = Vec::new();
    for n in 0..100 {
        let request = reqwest::Client::new()
            .post(format!(
                "{}/v1/chat/completions",
                cluster.replica(n).base_url
            ))
            .bearer_auth(cluster.member())
            .json(&body);
        tasks.push(tokio::spawn(async move {
            let mut response = request.send().await.unwrap();
            let admitted = response.status() == 200;
            if admitted {
                assert!(response.chunk().await.unwrap().is_some());
            }
            admitted // dropped here: the client goes away mid-stream
        }));
    }
    let mut admitted = 0;
    for task in tasks {
        admitted += u64::from(task.await.unwrap());
    }
    assert_eq!(admitted, 100, "nothing was over a limit");
    // Every cancellation settles (charged), and nothing is released or refunded.
    tokio::time::sleep(Duration::from_secs(1)).await;
    assert_eq!(cluster.remaining_quota().await, vec![500 - admitted; 2]);
}

#[tokio::test]
async fn requests_cancelled_mid_flight_stay_charged() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipping: replicas share a PostgreSQL database");
        return;
    }
    cancelled_requests_stay_charged(None).await;
    if let Some(redis) = RedisServer::start() {
        cancelled_requests_stay_charged(Some(&redis)).await;
    }
}

/// A replica killed with requests in flight leaves reservations no one settles: once their
/// lease has passed they stop counting (no phantom 429).
async fn released_after_their_lease(redis: Option<&RedisServer>) {
    let mut vars = vec![
        ("SWITCHBOARD_MANAGED_REQUESTS_PER_HOUR", "5".to_owned()),
        ("SWITCHBOARD_LIMIT_LEASE_SECONDS", "2".to_owned()),
    ];
    if let Some(redis) = redis {
        vars.push(("SWITCHBOARD_REDIS_URL", redis.url()));
    }
    let mut cluster = Cluster::start(2, env(&vars)).await;
    let victim = cluster.others[0].base_url.clone();
    let mut hung = Vec::new();
    for _ in 0..5 {
        let request = reqwest::Client::new()
            .post(format!("{victim}/v1/chat/completions"))
            .bearer_auth(cluster.member())
            .json(&managed_chat("hold [[sim:hang]]", false));
        hung.push(tokio::spawn(async move {
            request.send().await.map(|r| r.status())
        }));
    }
    // Wait until the five hold the whole hour, then kill their replica.
    let started = Instant::now();
    while burst_one(&cluster.gateway.server, &cluster.member()).await != 429 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the five never filled the hour"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    cluster.others[0].crash_and_restart();
    for task in hung {
        let _ = task.await;
    }
    let started = Instant::now();
    while burst_one(&cluster.gateway.server, &cluster.member()).await != 200 {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "the dead replica's reservations were never released"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test]
async fn reservations_of_a_killed_replica_are_released_after_their_lease() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipping: replicas share a PostgreSQL database");
        return;
    }
    released_after_their_lease(None).await;
    if let Some(redis) = RedisServer::start() {
        released_after_their_lease(Some(&redis)).await;
    }
}

async fn burst_one(server: &Server, token: &str) -> u16 {
    reqwest::Client::new()
        .post(format!("{}/v1/chat/completions", server.base_url))
        .bearer_auth(token)
        .json(&managed_chat("probe", false))
        .send()
        .await
        .unwrap()
        .status()
        .as_u16()
}

/// Redis killed while requests run: none waits more than a few seconds, the replicas fall
/// back to PostgreSQL's counters (saying so once per outage), and use Redis again once it
/// is back.
#[tokio::test]
async fn a_redis_outage_falls_back_to_postgres_without_hanging() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipping: replicas share a PostgreSQL database");
        return;
    }
    let Some(mut redis) = RedisServer::start() else {
        return;
    };
    let vars = [
        ("SWITCHBOARD_REDIS_URL", redis.url()),
        ("SWITCHBOARD_MANAGED_MONTHLY_INVOCATIONS", "1000".to_owned()),
    ];
    let cluster = Cluster::start(2, env(&vars)).await;
    let mut slowest = Duration::ZERO;
    let mut statuses = Vec::new();
    for round in 0..12 {
        if round == 4 {
            redis.kill();
        }
        let started = Instant::now();
        statuses.extend(burst(&cluster, 8).await);
        slowest = slowest.max(started.elapsed());
    }
    assert_eq!(count(&statuses, 200), statuses.len(), "{statuses:?}");
    assert!(
        slowest < Duration::from_secs(10),
        "a round took {slowest:?}"
    );
    for server in cluster.all() {
        let log = server.log_text();
        assert_eq!(
            log.matches("redis is unreachable").count(),
            1,
            "one line per outage"
        );
    }
    // The fallback counted every request since the outage began (its month was seeded
    // from the records): the quota reads the same on both replicas.
    let quota = cluster.remaining_quota().await;
    assert!(quota[0] == quota[1] && quota[0] <= 1000 - 64, "{quota:?}");

    redis.restart();
    let started = Instant::now();
    loop {
        let recovered = cluster
            .all()
            .all(|s| s.log_text().contains("redis answers again"));
        if recovered {
            break;
        }
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "never went back to Redis"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Back on Redis, seeded from the records: the month is not forgotten.
    let statuses = burst(&cluster, 4).await;
    assert_eq!(count(&statuses, 200), 4);
    assert_eq!(cluster.remaining_quota().await, vec![1000 - 100; 2]);
}
