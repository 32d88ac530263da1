//! The reference deployment (`deploy/haproxy.cfg`): two replicas on PostgreSQL behind
//! HAProxy. A client that knows only the balancer's address sees one product: it creates a
//! provider, changes the default, invokes, polls and lists, and every answer agrees with
//! the last write, whichever replica serves it.
//!
//! Needs Debian's haproxy (`scripts/ensure-haproxy`, run by `scripts/test`); without it the
//! test says so and passes, unless `SWITCHBOARD_REQUIRE_HAPROXY=1` (CI), where it fails.

use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use switchboard_sim::SimConfig;

use crate::gateway::{Gateway, OPENAI_KEY};
use crate::harness::{Backend, Server, backends};

/// A running HAProxy with the reference configuration in front of `replicas`.
pub struct Balancer {
    pub url: String,
    child: Child,
    _dir: TempDir,
}

struct TempDir(std::path::PathBuf);

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

impl Drop for Balancer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// HAProxy's path, or `None` with a line saying why (a failure when it is required).
pub fn haproxy() -> Option<String> {
    let found = ["/usr/sbin/haproxy", "/usr/bin/haproxy"]
        .into_iter()
        .find(|p| std::path::Path::new(p).exists());
    if found.is_none() {
        let why = "haproxy is not installed (scripts/ensure-haproxy installs Debian's package)";
        assert!(
            std::env::var("SWITCHBOARD_REQUIRE_HAPROXY").as_deref() != Ok("1"),
            "SWITCHBOARD_REQUIRE_HAPROXY=1 but {why}"
        );
        eprintln!("skipping the load-balancer test: {why}");
    }
    found.map(str::to_owned)
}

impl Balancer {
    /// Starts HAProxy on a free port with `deploy/haproxy.cfg` and one `server` line per
    /// replica (as `deploy/up` writes them), and waits until every replica is in service.
    pub fn start(haproxy: &str, replicas: &[&str]) -> Balancer {
        let dir = std::env::temp_dir().join(format!("sbt-lb-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let template = format!("{}/../../deploy/haproxy.cfg", env!("CARGO_MANIFEST_DIR"));
        let mut config = std::fs::read_to_string(&template).expect("deploy/haproxy.cfg");
        for (n, base_url) in replicas.iter().enumerate() {
            let addr = base_url.trim_start_matches("http://");
            config.push_str(&format!("    server r{n} {addr} check\n"));
        }
        let path = dir.join("haproxy.cfg");
        std::fs::write(&path, config).expect("write haproxy.cfg");
        let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
        let addr = listener.local_addr().expect("addr");
        drop(listener);
        let log = std::fs::File::create(dir.join("haproxy.log")).expect("haproxy log");
        let child = Command::new(haproxy)
            .arg("-f")
            .arg(&path)
            .arg("-db")
            .env("LB_LISTEN", addr.to_string())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .expect("start haproxy");
        Balancer {
            url: format!("http://{addr}"),
            child,
            _dir: TempDir(dir),
        }
    }

    /// Waits until `count` answers in a row are 200 (every replica passed its checks).
    pub async fn wait_ready(&self, count: usize) {
        let client = reqwest::Client::new();
        let started = Instant::now();
        let mut in_a_row = 0;
        while in_a_row < count {
            assert!(
                started.elapsed() < Duration::from_secs(20),
                "the balancer never became ready"
            );
            let ok = client
                .get(format!("{}/readyz", self.url))
                .send()
                .await
                .is_ok_and(|r| r.status() == 200);
            in_a_row = if ok { in_a_row + 1 } else { 0 };
            if !ok {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

async fn call(
    method: reqwest::Method,
    url: String,
    token: &str,
    body: Option<Value>,
) -> (u16, Value) {
    let mut request = reqwest::Client::new()
        .request(method, url)
        .bearer_auth(token);
    if let Some(body) = body {
        request = request.json(&body);
    }
    let response = request.send().await.expect("through the balancer");
    let status = response.status().as_u16();
    let text = response.text().await.expect("body");
    (
        status,
        serde_json::from_str(&text).unwrap_or(Value::String(text)),
    )
}

/// How many API requests a replica's access log shows for `route`.
fn served(server: &Server, route: &str) -> usize {
    server
        .log_text()
        .lines()
        .filter(|line| line.contains("switchboard::access") && line.contains(route))
        .count()
}

#[tokio::test]
async fn one_consistent_product_behind_the_balancer() {
    if !backends().contains(&Backend::Postgres) {
        eprintln!("skipping: replicas share a PostgreSQL database");
        return;
    }
    let Some(haproxy) = haproxy() else { return };
    let gateway = Gateway::start_with(Backend::Postgres, SimConfig::default(), Vec::new()).await;
    let other = gateway.server.replica();
    let lb = Balancer::start(&haproxy, &[&gateway.server.base_url, &other.base_url]);
    lb.wait_ready(4).await;
    // A fresh organization: everything it has, it makes through the balancer.
    let org = gateway.server.org("balanced");
    let admin = org.admin.as_str();
    let at = |path: &str| format!("{}{path}", lb.url);
    use reqwest::Method;

    let secret = json!({ "secretName": "key", "secretValue": OPENAI_KEY });
    let (status, _) = call(
        Method::POST,
        at("/v1/organization/secrets"),
        admin,
        Some(secret),
    )
    .await;
    assert_eq!(status, 201);
    let provider = json!({ "provider": "openai", "config": { "apiKeySecretName": "key" } });
    let (status, body) = call(Method::POST, at("/v1/llm-providers"), admin, Some(provider)).await;
    assert_eq!(status, 201, "{body}");
    for _ in 0..6 {
        let (status, _) = call(Method::GET, at("/v1/llm-providers/openai"), admin, None).await;
        assert_eq!(status, 200, "every replica knows the new provider at once");
    }

    let default = json!({ "provider": "openai", "model": "gpt-5" });
    let (status, body) = call(
        Method::PUT,
        at("/v1/llm-providers/defaults"),
        admin,
        Some(default),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    for _ in 0..6 {
        let (_, body) = call(Method::GET, at("/v1/llm-providers/defaults"), admin, None).await;
        assert_eq!(body["result"]["provider"], "openai", "{body}");
        assert_eq!(body["result"]["source"], "organization", "{body}");
    }

    // Invoke without naming a provider: the default serves it, on whichever replica.
    let mut ids = Vec::new();
    for n in 0..4 {
        let id = format!("balanced-{n}");
        let response = reqwest::Client::new()
            .post(at(&format!("/v1/ai/invoke?invocation_identifier={id}")))
            .bearer_auth(admin)
            .json(&json!({ "userPrompt": format!("hello {n}") }))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        assert_eq!(response.headers()["x-switchboard-provider"], "openai");
        let text = response.text().await.unwrap();
        assert!(text.contains("event: done"), "{text}");
        ids.push(id);
    }
    for id in &ids {
        for _ in 0..4 {
            let (status, body) =
                call(Method::GET, at(&format!("/v1/ai/invoke/{id}")), admin, None).await;
            assert_eq!(status, 200);
            assert_eq!(body["result"]["status"], "Completed", "{body}");
        }
    }
    let mut listings = Vec::new();
    for _ in 0..4 {
        let (status, body) =
            call(Method::GET, at("/v1/ai/invocations?limit=10"), admin, None).await;
        assert_eq!(status, 200);
        let listed: Vec<String> = body["result"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["id"].as_str().unwrap().to_owned())
            .collect();
        listings.push(listed);
    }
    let expected: Vec<String> = ids.iter().rev().cloned().collect();
    assert!(listings.iter().all(|l| *l == expected), "{listings:?}");

    // Round robin really spread the work: both replicas served polls.
    for server in [&gateway.server, &other] {
        assert!(
            served(server, "/v1/ai/invoke/{id}") > 0,
            "a replica served no poll"
        );
    }
    drop(lb);
    other.stop();
}
