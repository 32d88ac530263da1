//! Drives the real `switchboard` binary: one server process per test and back end, its
//! stderr (the JSON log) captured so tests can prove what never reaches it.

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// A secret value that must never appear in any response, log line or audit entry.
pub const CANARY: &str = "sk-canary-7f3a9c2e1d4b8a6f0e5c3b2a1d9f8e7c";

/// A fixed test master key (base64 of 32 bytes).
pub const TEST_MASTER_KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

/// The back ends this run covers: SQLite always, PostgreSQL when
/// `SWITCHBOARD_TEST_POSTGRES_URL` is set (required when `SWITCHBOARD_REQUIRE_POSTGRES=1`).
pub fn backends() -> Vec<Backend> {
    let mut all = vec![Backend::Sqlite];
    if postgres_url().is_some() {
        all.push(Backend::Postgres);
    } else if std::env::var("SWITCHBOARD_REQUIRE_POSTGRES").as_deref() == Ok("1") {
        panic!("SWITCHBOARD_REQUIRE_POSTGRES=1 but SWITCHBOARD_TEST_POSTGRES_URL is not set");
    }
    all
}

fn postgres_url() -> Option<String> {
    std::env::var("SWITCHBOARD_TEST_POSTGRES_URL")
        .ok()
        .filter(|u| !u.is_empty())
}

/// A fresh, empty PostgreSQL database on the test server.
async fn fresh_postgres_database() -> String {
    use sqlx::Connection;
    let base = postgres_url().expect("postgres url");
    let name = format!("sbt_{}", uuid::Uuid::new_v4().simple());
    let mut conn = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to the test PostgreSQL server");
    sqlx::query(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut conn)
        .await
        .expect("create test database");
    let (prefix, _) = base.rsplit_once('/').expect("database url has a path");
    format!("{prefix}/{name}")
}

/// Where a test server's master key comes from.
#[derive(Clone, Debug)]
pub enum KeySource {
    /// `SWITCHBOARD_MASTER_KEY` with this value.
    Env(String),
    /// Only `SWITCHBOARD_MASTER_KEY_FILE` (generated on the first SQLite start).
    File,
}

pub struct Server {
    pub backend: Backend,
    pub base_url: String,
    pub database_url: String,
    dir: PathBuf,
    env: Vec<(String, String)>,
    child: Child,
    log: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
    client: reqwest::Client,
    /// Values (tokens shown once) that no later response, nor the log, may contain.
    never_shown: Arc<Mutex<Vec<String>>>,
}

impl Server {
    pub async fn start(backend: Backend) -> Server {
        Self::start_with(backend, KeySource::Env(TEST_MASTER_KEY.into())).await
    }

    pub async fn start_with(backend: Backend, keys: KeySource) -> Server {
        Self::start_opts(backend, keys, Vec::new()).await
    }

    /// Starts with extra environment variables (upstream URLs, egress allowances, …).
    pub async fn start_opts(
        backend: Backend,
        keys: KeySource,
        extra_env: Vec<(String, String)>,
    ) -> Server {
        let dir = std::env::temp_dir().join(format!("sbt-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let database_url = match backend {
            Backend::Sqlite => format!("sqlite://{}/switchboard.db", dir.display()),
            Backend::Postgres => fresh_postgres_database().await,
        };
        let mut env = base_env(&dir, &database_url, &keys);
        env.extend(extra_env);
        Self::spawn(backend, dir, database_url, env)
    }

    /// Starts another server process on the same database and key settings (the previous
    /// one must have been stopped).
    pub fn restart(mut self) -> Server {
        terminate(&mut self.child);
        std::thread::sleep(Duration::from_millis(100));
        assert!(
            !self.log_text().contains(CANARY),
            "canary leaked into the server log"
        );
        self.assert_never_shown(&self.log_text(), "the server log");
        let dir = std::mem::take(&mut self.dir);
        let env = std::mem::take(&mut self.env);
        let database_url = std::mem::take(&mut self.database_url);
        Self::spawn(self.backend, dir, database_url, env)
    }

    /// Replaces one environment variable for later CLI runs and restarts.
    pub fn set_env(&mut self, key: &str, value: &str) {
        self.env.retain(|(k, _)| k != key);
        self.env.push((key.to_owned(), value.to_owned()));
    }

    fn spawn(
        backend: Backend,
        dir: PathBuf,
        database_url: String,
        env: Vec<(String, String)>,
    ) -> Server {
        let process = Process::spawn(&env);
        Server {
            backend,
            base_url: process.base_url,
            database_url,
            dir,
            env,
            child: process.child,
            log: process.log,
            stdout: process.stdout,
            client: reqwest::Client::new(),
            never_shown: Arc::default(),
        }
    }

    /// Another server process on the same database and settings (a second replica), with
    /// its own listening port and scratch folder.
    pub fn replica(&self) -> Server {
        let dir = std::env::temp_dir().join(format!("sbt-{}", uuid::Uuid::new_v4().simple()));
        std::fs::create_dir_all(&dir).expect("temp dir");
        let mut replica = Self::spawn(
            self.backend,
            dir,
            self.database_url.clone(),
            self.env.clone(),
        );
        replica.never_shown = self.never_shown.clone();
        replica
    }

    /// From now on, no response (and not the log) may contain `value`: for tokens, which
    /// are shown once, in the response that created them.
    pub fn never_show(&self, value: &str) {
        self.never_shown.lock().unwrap().push(value.to_owned());
    }

    fn assert_never_shown(&self, text: &str, place: &str) {
        for value in self.never_shown.lock().unwrap().iter() {
            assert!(
                !text.contains(value.as_str()),
                "a token value reached {place}"
            );
        }
    }

    /// `kill -9`, then a new process on the same database and settings, in place.
    pub fn crash_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        assert!(
            !self.log_text().contains(CANARY),
            "canary leaked into the server log"
        );
        let process = Process::spawn(&self.env);
        self.base_url = process.base_url;
        self.child = process.child;
        self.log = process.log;
        self.stdout = process.stdout;
    }

    /// The admin token printed once on first start.
    pub fn first_start_token(&self) -> String {
        let out = self.stdout.lock().unwrap().clone();
        out.lines()
            .find_map(|l| l.strip_prefix("Admin API token (shown once): "))
            .map(str::to_owned)
            .unwrap_or_else(|| panic!("no token banner in stdout: {out}"))
    }

    /// The server process's id (to read its memory from `/proc`).
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    pub fn log_text(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// Runs a CLI command against this server's database (while the server runs).
    pub fn cli(&self, args: &[&str]) -> std::process::Output {
        Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .args(args)
            .envs(self.env.iter().cloned())
            .output()
            .expect("run switchboard cli")
    }

    /// Runs a CLI command that must succeed with `--json`, returning its JSON.
    pub fn cli_json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.cli(&all);
        assert!(
            out.status.success(),
            "{args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).expect("cli --json prints one JSON object")
    }

    /// Creates an organization with an admin and a member.
    pub fn org(&self, name: &str) -> TestOrg {
        let admin_email = format!("admin@{name}.test");
        let created = self.cli_json(&["org", "create", name, "--admin-email", &admin_email]);
        let member_email = format!("member@{name}.test");
        let member = self.cli_json(&[
            "user",
            "create",
            "--org",
            name,
            "--email",
            &member_email,
            "--role",
            "member",
        ]);
        TestOrg {
            name: name.to_owned(),
            admin: created["token"].as_str().expect("token").to_owned(),
            member: member["token"].as_str().expect("token").to_owned(),
            member_client_id: member["clientId"].as_str().expect("clientId").to_owned(),
            member_client_secret: member["clientSecret"].as_str().expect("secret").to_owned(),
        }
    }

    /// Sends a request and returns status, headers and JSON body (Null when empty). Every
    /// response body is checked for the canary.
    pub async fn call(
        &self,
        method: Method,
        path: &str,
        token: Option<&str>,
        body: Option<&Value>,
    ) -> Response {
        let mut request = self
            .client
            .request(method, format!("{}{path}", self.base_url));
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        if let Some(body) = body {
            request = request.json(body);
        }
        self.send(request).await
    }

    pub async fn send(&self, request: reqwest::RequestBuilder) -> Response {
        let response = request.send().await.expect("request");
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.expect("body");
        assert!(
            !text.contains(CANARY),
            "canary leaked in a response: {text}"
        );
        self.assert_never_shown(&text, "a response");
        let json = if text.is_empty() {
            Value::Null
        } else {
            serde_json::from_str(&text).unwrap_or(Value::String(text))
        };
        Response {
            status,
            headers,
            json,
        }
    }

    pub fn request(&self, method: Method, path: &str) -> reqwest::RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.base_url))
    }

    pub async fn get(&self, path: &str, token: &str) -> Response {
        self.call(Method::GET, path, Some(token), None).await
    }

    pub async fn post(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::POST, path, Some(token), Some(&body))
            .await
    }

    pub async fn put(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::PUT, path, Some(token), Some(&body)).await
    }

    pub async fn patch(&self, path: &str, token: &str, body: Value) -> Response {
        self.call(Method::PATCH, path, Some(token), Some(&body))
            .await
    }

    pub async fn delete(&self, path: &str, token: &str) -> Response {
        self.call(Method::DELETE, path, Some(token), None).await
    }

    /// Sends SIGTERM and returns at once (see [`Self::wait_exit`]).
    pub fn sigterm(&self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
    }

    /// The process's exit status, once it has exited within `limit`.
    pub fn wait_exit(&mut self, limit: Duration) -> Option<std::process::ExitStatus> {
        let deadline = std::time::Instant::now() + limit;
        while std::time::Instant::now() < deadline {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Some(status);
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        None
    }

    /// The operations listener's address, when `SWITCHBOARD_OPS_LISTEN` is set.
    pub fn ops_url(&self) -> Option<String> {
        self.log_text().lines().find_map(|line| {
            let value: Value = serde_json::from_str(line).ok()?;
            (value["message"] == "listening")
                .then(|| value["ops_addr"].as_str().map(|a| format!("http://{a}")))
                .flatten()
        })
    }

    /// Stops the server with SIGTERM, waits for it, and checks the whole log for the canary.
    pub fn stop(mut self) -> String {
        terminate(&mut self.child);
        std::thread::sleep(Duration::from_millis(100));
        let log = self.log_text();
        assert!(!log.contains(CANARY), "canary leaked into the server log");
        self.assert_never_shown(&log, "the server log");
        log
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if !self.dir.as_os_str().is_empty() {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}

/// One running `switchboard serve` and its captured output.
struct Process {
    child: Child,
    base_url: String,
    log: Arc<Mutex<String>>,
    stdout: Arc<Mutex<String>>,
}

impl Process {
    fn spawn(env: &[(String, String)]) -> Process {
        let mut command = Command::new(env!("CARGO_BIN_EXE_switchboard"));
        command
            .arg("serve")
            .envs(env.iter().cloned())
            .env("SWITCHBOARD_LISTEN", "127.0.0.1:0")
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().expect("spawn switchboard serve");
        let log = Arc::new(Mutex::new(String::new()));
        let stdout = Arc::new(Mutex::new(String::new()));
        let (addr_tx, addr_rx) = std::sync::mpsc::channel();
        collect_lines(
            child.stderr.take().expect("stderr"),
            log.clone(),
            Some(addr_tx),
        );
        collect_lines(child.stdout.take().expect("stdout"), stdout.clone(), None);
        let addr = addr_rx
            .recv_timeout(Duration::from_secs(60))
            .unwrap_or_else(|_| panic!("server did not start: {}", log.lock().unwrap()));
        Process {
            child,
            base_url: format!("http://{addr}"),
            log,
            stdout,
        }
    }
}

fn terminate(child: &mut Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    for _ in 0..100 {
        if let Ok(Some(_)) = child.try_wait() {
            return;
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    panic!("server did not stop within 5 s of SIGTERM");
}

fn base_env(dir: &std::path::Path, database_url: &str, keys: &KeySource) -> Vec<(String, String)> {
    let mut env = vec![
        ("SWITCHBOARD_DATABASE_URL".into(), database_url.into()),
        (
            "SWITCHBOARD_MASTER_KEY_FILE".into(),
            dir.join("master.key").display().to_string(),
        ),
        ("SWITCHBOARD_LOG".into(), "debug,sqlx=warn".into()),
        // No load balancer to wait for: SIGTERM closes the listener at once.
        ("SWITCHBOARD_SHUTDOWN_DRAIN_SECONDS".into(), "0".into()),
    ];
    if let KeySource::Env(value) = keys {
        env.push(("SWITCHBOARD_MASTER_KEY".into(), value.clone()));
    }
    env
}

/// Copies a child's output lines into `sink`; reports the listen address when seen.
fn collect_lines(
    stream: impl std::io::Read + Send + 'static,
    sink: Arc<Mutex<String>>,
    addr: Option<std::sync::mpsc::Sender<String>>,
) {
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines().map_while(Result::ok) {
            if let (Some(tx), Some(found)) = (&addr, listening_addr(&line)) {
                let _ = tx.send(found);
            }
            let mut sink = sink.lock().unwrap();
            sink.push_str(&line);
            sink.push('\n');
        }
    });
}

fn listening_addr(line: &str) -> Option<String> {
    let value: Value = serde_json::from_str(line).ok()?;
    (value["message"] == "listening")
        .then(|| value["addr"].as_str().map(str::to_owned))
        .flatten()
}

pub struct TestOrg {
    pub name: String,
    pub admin: String,
    pub member: String,
    pub member_client_id: String,
    pub member_client_secret: String,
}

#[derive(Debug)]
pub struct Response {
    pub status: StatusCode,
    pub headers: reqwest::header::HeaderMap,
    pub json: Value,
}

impl Response {
    /// Asserts the status, showing the body when it differs.
    pub fn expect(self, status: u16) -> Self {
        assert_eq!(
            self.status.as_u16(),
            status,
            "unexpected status; body: {}",
            self.json
        );
        self
    }

    /// Asserts a Port error envelope with this status and error name.
    pub fn expect_error(self, status: u16, name: &str) -> Self {
        let this = self.expect(status);
        assert_eq!(this.json["ok"], false, "{}", this.json);
        assert_eq!(this.json["error"], name, "{}", this.json);
        assert!(this.json["message"].is_string(), "{}", this.json);
        this
    }

    pub fn result(&self) -> &Value {
        &self.json["result"]
    }
}
