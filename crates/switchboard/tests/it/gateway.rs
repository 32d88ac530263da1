//! A gateway wired to the provider simulator on loopback, with one organization whose
//! providers cover every protocol the gateway speaks.

use reqwest::Method;
use serde_json::{Value, json};
use switchboard_sim::{RunningSim, SimConfig};

use crate::harness::{Backend, CANARY, KeySource, Server, TEST_MASTER_KEY, TestOrg};

pub const ANTHROPIC_KEY: &str = "sk-ant-org-key";
pub const AZURE_KEY: &str = "azure-org-key";
pub const COMPAT_TOKEN: &str = "compat-bearer-token";
pub const MANAGED_OPENAI_KEY: &str = "sk-platform-openai";
pub const MANAGED_ANTHROPIC_KEY: &str = "sk-ant-platform";

/// The organization's OpenAI key is the canary: it must reach the upstream and nothing
/// else.
pub const OPENAI_KEY: &str = CANARY;
/// Test-only AWS keys (the simulator verifies SigV4 with them).
pub const AWS_KEY_ID: &str = "SBTESTKEYID000000001";
pub const AWS_SECRET: &str = "sb-test-secret-access-key-not-real";
pub const VERTEX_EXPRESS_KEY: &str = "vertex-express-test-key";
pub const SA_EMAIL: &str = "gateway-test@my-project-1.iam.gserviceaccount.com";

/// A test-only RSA key pair for the Vertex service account (never a real credential).
fn service_account_pem(name: &str) -> String {
    let path = format!(
        "{}/../providers/tests/testdata/{name}",
        env!("CARGO_MANIFEST_DIR")
    );
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

pub struct Gateway {
    pub server: Server,
    pub sim: RunningSim,
    pub org: TestOrg,
}

/// A provider under test: its type, the catalog model to ask for, the credential header
/// the upstream must see (a prefix of its value), and the upstream path (a prefix: streaming
/// paths differ for Bedrock and Vertex).
pub struct Case {
    pub provider: &'static str,
    pub model: &'static str,
    pub expect_auth: (&'static str, String),
    pub expect_path: &'static str,
    pub expect_upstream_model: Option<&'static str>,
}

pub fn cases() -> Vec<Case> {
    vec![
        Case {
            provider: "openai",
            model: "gpt-5",
            expect_auth: ("authorization", format!("Bearer {OPENAI_KEY}")),
            expect_path: "/v1/chat/completions",
            expect_upstream_model: Some("gpt-5"),
        },
        Case {
            provider: "azure-openai",
            model: "gpt-5",
            expect_auth: ("api-key", AZURE_KEY.into()),
            expect_path: "/openai/deployments/gpt5-deploy/chat/completions",
            expect_upstream_model: None,
        },
        Case {
            provider: "openai-compatible",
            model: "compat-model",
            expect_auth: ("x-team", "ml".into()),
            expect_path: "/v1/chat/completions",
            expect_upstream_model: Some("compat-model"),
        },
        Case {
            provider: "anthropic",
            model: "claude-sonnet-4-5-20250929",
            expect_auth: ("x-api-key", ANTHROPIC_KEY.into()),
            expect_path: "/v1/messages",
            expect_upstream_model: Some("claude-sonnet-4-5-20250929"),
        },
        Case {
            provider: "azure-anthropic",
            model: "claude-opus-4-6",
            expect_auth: ("x-api-key", AZURE_KEY.into()),
            expect_path: "/anthropic/v1/messages",
            expect_upstream_model: Some("claude-opus-4-6"),
        },
        Case {
            provider: "anthropic-compatible",
            model: "claude-compat",
            expect_auth: ("authorization", format!("Bearer {COMPAT_TOKEN}")),
            expect_path: "/v1/messages",
            expect_upstream_model: Some("claude-compat"),
        },
        Case {
            provider: "managed",
            model: "gpt-5",
            expect_auth: ("authorization", format!("Bearer {MANAGED_OPENAI_KEY}")),
            expect_path: "/v1/chat/completions",
            expect_upstream_model: Some("gpt-5"),
        },
        Case {
            provider: "managed",
            model: "claude-haiku-4-5-20251001",
            expect_auth: ("x-api-key", MANAGED_ANTHROPIC_KEY.into()),
            expect_path: "/v1/messages",
            expect_upstream_model: Some("claude-haiku-4-5-20251001"),
        },
        Case {
            provider: "bedrock",
            model: "claude-haiku-4-5-20251001",
            expect_auth: (
                "authorization",
                format!("AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/"),
            ),
            expect_path: "/model/us.anthropic.claude-haiku-4-5-20251001-v1",
            expect_upstream_model: None,
        },
        Case {
            provider: "vertex-gemini",
            model: "gemini-2.5-flash",
            expect_auth: ("x-goog-api-key", VERTEX_EXPRESS_KEY.into()),
            expect_path: "/v1/publishers/google/models/gemini-2.5-flash:",
            expect_upstream_model: None,
        },
        Case {
            provider: "vertex-anthropic",
            model: "claude-sonnet-4-5@20250929",
            expect_auth: ("authorization", "Bearer ".into()),
            expect_path: "/v1/projects/my-project-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5%4020250929:",
            expect_upstream_model: None,
        },
    ]
}

impl Gateway {
    pub async fn start(backend: Backend) -> Gateway {
        Self::start_with(backend, SimConfig::default(), Vec::new()).await
    }

    pub async fn start_with(
        backend: Backend,
        sim: SimConfig,
        extra: Vec<(String, String)>,
    ) -> Gateway {
        // The simulator checks cloud credentials like the real services do.
        let sim = SimConfig {
            aws_access_key_id: sim.aws_access_key_id.or(Some(AWS_KEY_ID.into())),
            aws_secret_access_key: sim.aws_secret_access_key.or(Some(AWS_SECRET.into())),
            google_service_account_public_key_pem: sim.google_service_account_public_key_pem.or(
                Some(service_account_pem("test-only-service-account.pub.pem")),
            ),
            google_api_key: sim.google_api_key.or(Some(VERTEX_EXPRESS_KEY.into())),
            ..sim
        };
        let sim = switchboard_sim::start(sim, "127.0.0.1:0".parse().unwrap())
            .await
            .expect("start the simulator");
        let base = sim.url();
        let mut env = vec![
            (
                "SWITCHBOARD_EGRESS_ALLOW".to_owned(),
                "127.0.0.1/32".to_owned(),
            ),
            (
                "SWITCHBOARD_EGRESS_ALLOW_HTTP".to_owned(),
                "true".to_owned(),
            ),
            (
                "SWITCHBOARD_OPENAI_BASE_URL".to_owned(),
                format!("{base}/v1"),
            ),
            ("SWITCHBOARD_ANTHROPIC_BASE_URL".to_owned(), base.clone()),
            (
                "SWITCHBOARD_MANAGED_OPENAI_API_KEY".to_owned(),
                MANAGED_OPENAI_KEY.to_owned(),
            ),
            (
                "SWITCHBOARD_MANAGED_ANTHROPIC_API_KEY".to_owned(),
                MANAGED_ANTHROPIC_KEY.to_owned(),
            ),
            ("SWITCHBOARD_BEDROCK_ENDPOINT".to_owned(), base.clone()),
            ("SWITCHBOARD_STS_ENDPOINT".to_owned(), base.clone()),
            ("SWITCHBOARD_VERTEX_ENDPOINT".to_owned(), base.clone()),
            (
                "SWITCHBOARD_GOOGLE_TOKEN_URL".to_owned(),
                format!("{base}/token"),
            ),
        ];
        env.extend(extra);
        let server = Server::start_opts(backend, KeySource::Env(TEST_MASTER_KEY.into()), env).await;
        let org = server.org("acme");
        let gateway = Gateway { server, sim, org };
        gateway.connect_all().await;
        gateway
    }

    pub async fn secret(&self, name: &str, value: &str) {
        self.server
            .post(
                "/v1/organization/secrets",
                &self.org.admin,
                json!({ "secretName": name, "secretValue": value }),
            )
            .await
            .expect(201);
    }

    pub async fn connect(&self, provider: &str, config: Value) {
        self.server
            .post(
                "/v1/llm-providers",
                &self.org.admin,
                json!({ "provider": provider, "config": config }),
            )
            .await
            .expect(201);
    }

    async fn connect_all(&self) {
        let base = self.sim.url();
        self.secret("openai-key", OPENAI_KEY).await;
        self.secret("anthropic-key", ANTHROPIC_KEY).await;
        self.secret("azure-key", AZURE_KEY).await;
        self.secret("compat-token", COMPAT_TOKEN).await;
        self.connect("openai", json!({ "apiKeySecretName": "openai-key" }))
            .await;
        self.connect("anthropic", json!({ "apiKeySecretName": "anthropic-key" }))
            .await;
        self.connect("azure-openai", json!({ "apiKeySecretName": "azure-key", "endpoint": base, "deployment": "gpt5-deploy" })).await;
        self.connect(
            "azure-anthropic",
            json!({ "apiKeySecretName": "azure-key", "endpoint": format!("{base}/anthropic") }),
        )
        .await;
        self.connect("openai-compatible", json!({ "baseUrl": format!("{base}/v1"), "apiKeySecretName": "compat-token", "customHeaders": { "x-team": "ml" }, "models": [{ "name": "compat-model" }] })).await;
        self.connect("anthropic-compatible", json!({ "baseUrl": format!("{base}/v1"), "authTokenSecretName": "compat-token", "models": [{ "name": "claude-compat" }] })).await;
        self.secret("aws-key-id", AWS_KEY_ID).await;
        self.secret("aws-secret", AWS_SECRET).await;
        self.secret("vertex-express-key", VERTEX_EXPRESS_KEY).await;
        self.secret("sa-email", SA_EMAIL).await;
        self.secret(
            "sa-key",
            &service_account_pem("test-only-service-account.key.pem"),
        )
        .await;
        self.connect("bedrock", json!({ "accessKeyIdSecretName": "aws-key-id", "secretAccessKeySecretName": "aws-secret", "region": "us-east-1" })).await;
        self.connect("vertex-gemini", json!({ "apiKeySecretName": "vertex-express-key", "models": [{ "name": "gemini-2.5-flash" }] })).await;
        self.connect("vertex-anthropic", json!({ "clientEmailSecretName": "sa-email", "privateKeySecretName": "sa-key",
            "project": "my-project-1", "location": "us-east5", "models": [{ "name": "claude-sonnet-4-5@20250929" }] })).await;
    }

    /// Switches the organization to keeping no interaction content.
    pub async fn keep_no_content(&self) {
        self.server
            .put(
                "/v1/organization/ai-settings",
                &self.org.admin,
                json!({ "storeInteractionData": false }),
            )
            .await
            .expect(200);
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.server.base_url)
    }

    /// Posts to a surface with the member's token; returns the raw response.
    pub async fn post(&self, path: &str, body: &Value) -> reqwest::Response {
        reqwest::Client::new()
            .request(Method::POST, self.url(path))
            .bearer_auth(&self.org.member)
            .json(body)
            .send()
            .await
            .expect("gateway request")
    }
}

/// Text, tool calls, stop reason and usage of an answer, whichever protocol carried it.
#[derive(Debug, Default, PartialEq)]
pub struct Answer {
    pub text: String,
    pub tool_calls: Vec<(String, String)>,
    pub stop: String,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// Streams: whether the protocol's clean terminator arrived.
    pub terminated: bool,
    /// Streams: an in-stream error event's payload.
    pub error: Option<Value>,
}

pub fn openai_answer(body: &Value) -> Answer {
    let message = &body["choices"][0]["message"];
    Answer {
        text: message["content"].as_str().unwrap_or_default().to_owned(),
        tool_calls: message["tool_calls"]
            .as_array()
            .map(|calls| {
                calls
                    .iter()
                    .map(|c| {
                        (
                            c["function"]["name"].as_str().unwrap().to_owned(),
                            c["function"]["arguments"].as_str().unwrap().to_owned(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default(),
        stop: body["choices"][0]["finish_reason"]
            .as_str()
            .unwrap_or_default()
            .to_owned(),
        input_tokens: body["usage"]["prompt_tokens"].as_u64().unwrap_or(0),
        output_tokens: body["usage"]["completion_tokens"].as_u64().unwrap_or(0),
        terminated: true,
        error: None,
    }
}

pub fn anthropic_answer(body: &Value) -> Answer {
    let mut answer = Answer {
        terminated: true,
        ..Answer::default()
    };
    for block in body["content"].as_array().unwrap() {
        match block["type"].as_str().unwrap() {
            "text" => answer.text.push_str(block["text"].as_str().unwrap()),
            "tool_use" => answer.tool_calls.push((
                block["name"].as_str().unwrap().to_owned(),
                block["input"].to_string(),
            )),
            _ => {}
        }
    }
    answer.stop = body["stop_reason"].as_str().unwrap_or_default().to_owned();
    answer.input_tokens = body["usage"]["input_tokens"].as_u64().unwrap_or(0);
    answer.output_tokens = body["usage"]["output_tokens"].as_u64().unwrap_or(0);
    answer
}

/// `(event name, data)` pairs of an SSE body, parsed independently of the gateway's code.
pub fn sse_events(text: &str) -> Vec<(String, String)> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let mut event = String::new();
            let mut data = Vec::new();
            for line in block.lines() {
                if let Some(v) = line.strip_prefix("event:") {
                    event = v.trim().to_owned();
                } else if let Some(v) = line.strip_prefix("data:") {
                    data.push(v.strip_prefix(' ').unwrap_or(v).to_owned());
                }
            }
            (event, data.join("\n"))
        })
        .collect()
}

pub fn openai_stream_answer(text: &str) -> Answer {
    let mut answer = Answer::default();
    let mut tools: Vec<(String, String)> = Vec::new();
    for (_, data) in sse_events(text) {
        if data == "[DONE]" {
            answer.terminated = true;
            continue;
        }
        let chunk: Value = serde_json::from_str(&data).expect("chunk is JSON");
        if chunk.get("error").is_some() {
            answer.error = Some(chunk["error"].clone());
            continue;
        }
        if let Some(usage) = chunk.get("usage").filter(|u| u.is_object()) {
            answer.input_tokens = usage["prompt_tokens"].as_u64().unwrap_or(0);
            answer.output_tokens = usage["completion_tokens"].as_u64().unwrap_or(0);
        }
        let Some(choice) = chunk["choices"].get(0) else {
            continue;
        };
        if let Some(text) = choice["delta"]["content"].as_str() {
            answer.text.push_str(text);
        }
        for call in choice["delta"]["tool_calls"]
            .as_array()
            .into_iter()
            .flatten()
        {
            let index = call["index"].as_u64().unwrap() as usize;
            if tools.len() <= index {
                tools.resize(index + 1, (String::new(), String::new()));
            }
            if let Some(name) = call["function"]["name"].as_str() {
                tools[index].0.push_str(name);
            }
            if let Some(args) = call["function"]["arguments"].as_str() {
                tools[index].1.push_str(args);
            }
        }
        if let Some(reason) = choice["finish_reason"].as_str() {
            answer.stop = reason.to_owned();
        }
    }
    answer.tool_calls = tools;
    answer
}

pub fn anthropic_stream_answer(text: &str) -> Answer {
    let mut answer = Answer::default();
    let mut tools: Vec<(String, String)> = Vec::new();
    let events = sse_events(text);
    assert_eq!(
        events.first().map(|e| e.0.as_str()),
        Some("message_start"),
        "{text}"
    );
    for (event, data) in events {
        let payload: Value = serde_json::from_str(&data).expect("event is JSON");
        assert_eq!(
            payload["type"],
            event.as_str(),
            "event name matches its type"
        );
        match event.as_str() {
            "message_start" => {
                answer.input_tokens = payload["message"]["usage"]["input_tokens"]
                    .as_u64()
                    .unwrap_or(0)
            }
            "content_block_start" if payload["content_block"]["type"] == "tool_use" => {
                tools.push((
                    payload["content_block"]["name"]
                        .as_str()
                        .unwrap()
                        .to_owned(),
                    String::new(),
                ));
            }
            "content_block_delta" => match payload["delta"]["type"].as_str().unwrap() {
                "text_delta" => answer
                    .text
                    .push_str(payload["delta"]["text"].as_str().unwrap()),
                "input_json_delta" => tools
                    .last_mut()
                    .unwrap()
                    .1
                    .push_str(payload["delta"]["partial_json"].as_str().unwrap()),
                _ => {}
            },
            "message_delta" => {
                answer.stop = payload["delta"]["stop_reason"]
                    .as_str()
                    .unwrap_or_default()
                    .to_owned();
                answer.output_tokens = payload["usage"]["output_tokens"].as_u64().unwrap_or(0);
                // Translated streams learn input tokens only at the end; Anthropic's own
                // recent streams repeat them here too.
                if let Some(input) = payload["usage"]["input_tokens"].as_u64() {
                    answer.input_tokens = answer.input_tokens.max(input);
                }
            }
            "message_stop" => answer.terminated = true,
            "error" => answer.error = Some(payload["error"].clone()),
            _ => {}
        }
    }
    answer.tool_calls = tools;
    answer
}
