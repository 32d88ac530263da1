//! Table-driven tests of the provider configuration rules (`switchboard_core::config`).

use serde_json::{Map, Value, json};
use switchboard_core::config::{
    azure_openai_deployment, azure_openai_endpoint, catalog_models, effective_models,
    enabled_models, merge_config, merge_overrides, prune_overrides, referenced_secrets, url_fields,
    validate_config, validate_overrides,
};
use switchboard_core::egress::EgressPolicy;
use switchboard_core::records::Overrides;
use switchboard_core::{ErrorName, PortError, ProviderType as P};

fn obj(v: Value) -> Map<String, Value> {
    match v {
        Value::Object(m) => m,
        other => panic!("not an object: {other}"),
    }
}

fn strict() -> EgressPolicy {
    EgressPolicy::default()
}

fn check(p: P, v: Value) -> Result<(), PortError> {
    validate_config(p, &obj(v), &strict())
}

fn err(p: P, v: Value) -> PortError {
    let e = check(p, v.clone()).expect_err(&format!("{p} accepted {v}"));
    assert_eq!(e.name, ErrorName::InvalidConfig);
    e
}

fn field(e: &PortError) -> &str {
    e.details.get("field").and_then(Value::as_str).unwrap_or("")
}

fn models() -> Value {
    json!([{"name": "my-model"}])
}

/// A valid config for every type.
fn happy(p: P) -> Value {
    match p {
        P::OpenAi | P::Anthropic => json!({"apiKeySecretName": "api-key"}),
        P::AzureOpenAi => {
            json!({"apiKeySecretName": "k", "endpoint": "https://r.openai.azure.com", "deployment": "gpt5"})
        }
        P::AzureAnthropic => {
            json!({"apiKeySecretName": "k", "endpoint": "https://r.services.ai.azure.com/anthropic"})
        }
        P::Bedrock => {
            json!({"accessKeyIdSecretName": "id", "secretAccessKeySecretName": "sk", "region": "eu-west-1"})
        }
        P::VertexGemini => {
            json!({"apiKeySecretName": "VERTEX_EXPRESS_API_KEY", "models": [{"name": "gemini-2.5-pro"}]})
        }
        P::VertexAnthropic => {
            json!({"clientEmailSecretName": "e", "privateKeySecretName": "p", "project": "my-project", "location": "us-east5", "models": [{"name": "claude-sonnet-4-5@20250929"}]})
        }
        P::OpenAiCompatible => {
            json!({"baseUrl": "https://litellm.corp.example.com/v1", "models": models()})
        }
        P::AnthropicCompatible => {
            json!({"baseUrl": "https://proxy.example.com/v1", "authTokenSecretName": "tok", "models": models()})
        }
        P::Managed => json!({}),
    }
}

fn with(p: P, key: &str, value: Value) -> Value {
    let mut m = obj(happy(p));
    m.insert(key.into(), value);
    Value::Object(m)
}

fn without(p: P, key: &str) -> Value {
    let mut m = obj(happy(p));
    m.shift_remove(key);
    Value::Object(m)
}

#[test]
fn every_type_accepts_its_happy_config() {
    for p in P::ALL {
        check(p, happy(p)).unwrap_or_else(|e| panic!("{p}: {e}"));
    }
}

#[test]
fn more_happy_configs() {
    let table = [
        (
            P::AzureOpenAi,
            json!({"apiKeySecretName": "k", "resourceName": "my-res", "deploymentId": "gpt-5"}),
        ),
        (
            P::AzureOpenAi,
            json!({"apiKeySecretName": "k", "resourceName": "my-res", "deploymentId": "gpt-5", "apiVersion": "2025-04-01-preview"}),
        ),
        (
            P::AzureOpenAi,
            json!({"apiKeySecretName": "k", "endpoint": "https://r.openai.azure.com/", "deployment": "d", "apiVersion": "v1"}),
        ),
        (
            P::Bedrock,
            json!({"roleArn": "arn:aws:iam::123456789012:role/port", "region": "us-east-1"}),
        ),
        (
            P::Bedrock,
            json!({"roleArn": "arn:aws:iam::123456789012:role/port", "externalIdSecretName": "BEDROCK_ROLE_EXTERNAL_ID", "region": "us-east-1", "guardrailIdentifier": "gr1", "guardrailVersion": "DRAFT"}),
        ),
        (
            P::Bedrock,
            json!({"apiKeySecretName": "BEDROCK_API_KEY", "region": "us-east-1", "guardrailIdentifier": "gr1", "guardrailVersion": "1"}),
        ),
        (
            P::VertexGemini,
            json!({"clientEmailSecretName": "VERTEX_SA_CLIENT_EMAIL", "privateKeySecretName": "VERTEX_SA_PRIVATE_KEY", "project": "my-proj-42", "location": "global", "models": [{"name": "gemini-2.5-flash"}]}),
        ),
        (
            P::OpenAiCompatible,
            json!({"baseUrl": "https://x.example.com/v1", "apiKeySecretName": "LITELLM_API_KEY", "supportsStructuredOutputs": true,
            "customHeaders": {"X-Team": "ml", "OpenAI-Organization": "org-1"},
            "models": [{"name": "my-litellm-model", "displayName": "My model", "contextWindow": 128000,
                        "supportedFeatures": {"temperature": true, "caching": false, "guardrails": false, "reasoningEffort": true,
                                              "nativeStructuredOutput": true, "extendedThinking": false, "adaptiveThinking": false,
                                              "supportsStructuredOutputs": true}},
                       {"name": "meta-llama/Llama-3-70B"}]}),
        ),
        (
            P::AnthropicCompatible,
            json!({"baseUrl": "https://x.example.com", "apiKeySecretName": "k", "models": models()}),
        ),
    ];
    for (p, v) in table {
        check(p, v.clone()).unwrap_or_else(|e| panic!("{p} {v}: {e}"));
    }
}

#[test]
fn missing_required_fields_are_named() {
    let table: &[(P, &str)] = &[
        (P::OpenAi, "apiKeySecretName"),
        (P::Anthropic, "apiKeySecretName"),
        (P::AzureOpenAi, "apiKeySecretName"),
        (P::AzureOpenAi, "endpoint"),
        (P::AzureOpenAi, "deployment"),
        (P::AzureAnthropic, "apiKeySecretName"),
        (P::AzureAnthropic, "endpoint"),
        (P::Bedrock, "region"),
        (P::Bedrock, "accessKeyIdSecretName"),
        (P::Bedrock, "secretAccessKeySecretName"),
        (P::VertexGemini, "models"),
        (P::VertexAnthropic, "clientEmailSecretName"),
        (P::VertexAnthropic, "privateKeySecretName"),
        (P::VertexAnthropic, "project"),
        (P::VertexAnthropic, "location"),
        (P::VertexAnthropic, "models"),
        (P::OpenAiCompatible, "baseUrl"),
        (P::OpenAiCompatible, "models"),
        (P::AnthropicCompatible, "baseUrl"),
        (P::AnthropicCompatible, "models"),
    ];
    for (p, key) in table {
        let e = err(*p, without(*p, key));
        assert_eq!(field(&e), *key, "{p}: {}", e.message);
        assert!(
            e.message.contains(key) && e.message.contains("required"),
            "{}",
            e.message
        );
    }
    let e = err(P::OpenAi, json!({}));
    assert_eq!(e.message, "apiKeySecretName is required");
}

#[test]
fn incomplete_auth_modes_name_the_missing_field() {
    let table = [
        (
            P::AzureOpenAi,
            json!({"apiKeySecretName": "k", "resourceName": "r"}),
            "deploymentId",
        ),
        (
            P::AzureOpenAi,
            json!({"apiKeySecretName": "k", "deploymentId": "d"}),
            "resourceName",
        ),
        (P::AzureOpenAi, json!({"apiKeySecretName": "k"}), "endpoint"),
        (P::Bedrock, json!({"region": "us-east-1"}), "roleArn"),
        (
            P::Bedrock,
            json!({"region": "us-east-1", "externalIdSecretName": "x"}),
            "roleArn",
        ),
        (
            P::Bedrock,
            json!({"region": "us-east-1", "accessKeyIdSecretName": "x"}),
            "secretAccessKeySecretName",
        ),
        (
            P::VertexGemini,
            json!({"models": models()}),
            "clientEmailSecretName",
        ),
        (
            P::VertexGemini,
            json!({"models": models(), "clientEmailSecretName": "e", "privateKeySecretName": "p", "project": "my-project"}),
            "location",
        ),
        (
            P::VertexGemini,
            json!({"models": models(), "project": "my-project"}),
            "clientEmailSecretName",
        ),
        (
            P::AnthropicCompatible,
            json!({"baseUrl": "https://x.example.com", "models": models()}),
            "apiKeySecretName",
        ),
    ];
    for (p, v, want) in table {
        let e = err(p, v);
        assert_eq!(field(&e), want, "{p}: {}", e.message);
    }
}

#[test]
fn mixed_auth_modes_are_rejected() {
    let table = [
        (
            P::AzureOpenAi,
            json!({"apiKeySecretName": "k", "resourceName": "r", "deploymentId": "d", "endpoint": "https://r.openai.azure.com", "deployment": "d"}),
        ),
        (
            P::AzureOpenAi,
            json!({"apiKeySecretName": "k", "resourceName": "r", "deployment": "d"}),
        ),
        (
            P::AzureOpenAi,
            json!({"apiKeySecretName": "k", "endpoint": "https://r.openai.azure.com", "deploymentId": "d"}),
        ),
        (
            P::Bedrock,
            json!({"region": "us-east-1", "roleArn": "arn:aws:iam::123456789012:role/x", "accessKeyIdSecretName": "a", "secretAccessKeySecretName": "b"}),
        ),
        (
            P::Bedrock,
            json!({"region": "us-east-1", "externalIdSecretName": "e", "accessKeyIdSecretName": "a", "secretAccessKeySecretName": "b"}),
        ),
        (
            P::Bedrock,
            json!({"region": "us-east-1", "apiKeySecretName": "k", "roleArn": "arn:aws:iam::123456789012:role/x"}),
        ),
        (
            P::Bedrock,
            json!({"region": "us-east-1", "apiKeySecretName": "k", "accessKeyIdSecretName": "a", "secretAccessKeySecretName": "b"}),
        ),
        (
            P::Bedrock,
            json!({"region": "us-east-1", "apiKeySecretName": "k", "externalIdSecretName": "e"}),
        ),
        (
            P::VertexGemini,
            json!({"models": models(), "apiKeySecretName": "k", "clientEmailSecretName": "e", "privateKeySecretName": "p", "project": "my-project", "location": "us-east5"}),
        ),
        (
            P::VertexGemini,
            json!({"models": models(), "apiKeySecretName": "k", "project": "my-project"}),
        ),
        (
            P::AnthropicCompatible,
            json!({"baseUrl": "https://x.example.com", "apiKeySecretName": "a", "authTokenSecretName": "b", "models": models()}),
        ),
    ];
    for (p, v) in table {
        let e = err(p, v);
        assert!(e.message.contains("mixes"), "{p}: {}", e.message);
    }
}

#[test]
fn vertex_anthropic_has_no_express_mode() {
    let e = err(
        P::VertexAnthropic,
        with(P::VertexAnthropic, "apiKeySecretName", json!("k")),
    );
    assert_eq!(e.message, "unknown config key 'apiKeySecretName'");
}

#[test]
fn unknown_keys_are_rejected_at_every_level() {
    for p in P::ALL.into_iter().filter(|p| *p != P::Managed) {
        let e = err(p, with(p, "foo", json!("x")));
        assert_eq!(e.message, "unknown config key 'foo'", "{p}");
        assert_eq!(field(&e), "foo");
    }
    let nested = [
        (json!([{"name": "m", "foo": 1}]), "models[0].foo"),
        (
            json!([{"name": "m"}, {"name": "n", "supportedFeatures": {"bar": true}}]),
            "models[1].supportedFeatures.bar",
        ),
    ];
    for p in [
        P::VertexGemini,
        P::VertexAnthropic,
        P::OpenAiCompatible,
        P::AnthropicCompatible,
    ] {
        for (m, path) in &nested {
            let e = err(p, with(p, "models", m.clone()));
            assert_eq!(e.message, format!("unknown config key '{path}'"), "{p}");
            assert_eq!(field(&e), *path);
        }
    }
    // Keys of other types are unknown too.
    let e = err(
        P::OpenAi,
        with(P::OpenAi, "baseUrl", json!("https://x.example.com")),
    );
    assert_eq!(field(&e), "baseUrl");
}

#[test]
fn types_are_checked() {
    let table = [
        (P::OpenAi, "apiKeySecretName", json!(1), "string"),
        (P::OpenAi, "apiKeySecretName", json!(null), "string"),
        (P::AzureOpenAi, "endpoint", json!(["https://x"]), "string"),
        (P::Bedrock, "region", json!(true), "string"),
        (
            P::OpenAiCompatible,
            "supportsStructuredOutputs",
            json!("true"),
            "boolean",
        ),
        (P::OpenAiCompatible, "models", json!({"name": "m"}), "array"),
        (P::OpenAiCompatible, "models", json!(["m"]), "object"),
        (
            P::OpenAiCompatible,
            "customHeaders",
            json!([["a", "b"]]),
            "object",
        ),
        (
            P::OpenAiCompatible,
            "customHeaders",
            json!({"X-A": 1}),
            "string",
        ),
        (
            P::OpenAiCompatible,
            "models",
            json!([{"name": 5}]),
            "string",
        ),
        (
            P::OpenAiCompatible,
            "models",
            json!([{"name": "m", "supportedFeatures": []}]),
            "object",
        ),
        (
            P::OpenAiCompatible,
            "models",
            json!([{"name": "m", "supportedFeatures": {"caching": "yes"}}]),
            "boolean",
        ),
        (
            P::OpenAiCompatible,
            "models",
            json!([{"name": "m", "displayName": 3}]),
            "string",
        ),
    ];
    for (p, key, value, expected) in table {
        let e = err(p, with(p, key, value.clone()));
        assert_eq!(
            e.details.get("expected").and_then(Value::as_str),
            Some(expected),
            "{p} {key}={value}: {}",
            e.message
        );
    }
}

#[test]
fn formats_are_checked_without_echoing_values() {
    let table = [
        (
            P::OpenAi,
            "apiKeySecretName",
            json!("sk-proj-SECRETVALUE with space"),
        ),
        (P::OpenAi, "apiKeySecretName", json!("")),
        (P::OpenAi, "apiKeySecretName", json!("a".repeat(101))),
        (P::OpenAi, "apiKeySecretName", json!("name.with.dots")),
        (P::AzureOpenAi, "deployment", json!("../admin")),
        (P::AzureOpenAi, "deployment", json!("..")),
        (P::AzureOpenAi, "deployment", json!("a".repeat(65))),
        (P::AzureOpenAi, "apiVersion", json!("2024-10-21&x=1")),
        (P::Bedrock, "region", json!("us-east-1.evil.com")),
        (
            P::Bedrock,
            "guardrailIdentifier",
            json!("g\r\nx-amz-evil: 1"),
        ),
        (P::VertexAnthropic, "project", json!("My_Project")),
        (P::VertexAnthropic, "location", json!("evil.com/x")),
    ];
    for (p, key, value) in table {
        let e = err(p, with(p, key, value.clone()));
        assert_eq!(field(&e), key, "{p} {key}: {}", e.message);
        assert!(!e.message.contains("SECRETVALUE"), "{}", e.message);
    }
    let old_shape =
        json!({"apiKeySecretName": "k", "resourceName": "evil.org#", "deploymentId": "d"});
    assert_eq!(field(&err(P::AzureOpenAi, old_shape)), "resourceName");
    let long =
        json!({"apiKeySecretName": "k", "resourceName": "a".repeat(64), "deploymentId": "d"});
    assert_eq!(field(&err(P::AzureOpenAi, long)), "resourceName");
}

/// The third Bedrock credential form names a secret like the others: a pasted key is refused
/// without being echoed, and the missing-credential message lists all three forms.
#[test]
fn bedrock_api_keys_are_a_secret_name() {
    let pasted = "ABSKQmVkcm9ja0FQSUtleS1+canary";
    let e = err(
        P::Bedrock,
        json!({"region": "us-east-1", "apiKeySecretName": pasted}),
    );
    assert_eq!(field(&e), "apiKeySecretName");
    assert!(!e.message.contains("canary"), "{}", e.message);
    let none = err(P::Bedrock, json!({"region": "us-east-1"}));
    assert!(
        none.message.contains("apiKeySecretName"),
        "{}",
        none.message
    );
    check(
        P::Bedrock,
        json!({"region": "eu-central-1", "apiKeySecretName": "bedrock-key"}),
    )
    .unwrap();
}

#[test]
fn bedrock_patterns_and_guardrail_pair() {
    for region in ["us-east-1", "eu-central-1", "ap-northeast-3"] {
        check(P::Bedrock, with(P::Bedrock, "region", json!(region))).unwrap();
    }
    for region in [
        "us-east-12",
        "useast-1",
        "US-EAST-1",
        "us-gov-west-1",
        "us-east",
    ] {
        assert_eq!(
            field(&err(P::Bedrock, with(P::Bedrock, "region", json!(region)))),
            "region",
            "{region}"
        );
    }
    let base = json!({"roleArn": "", "region": "us-east-1"});
    for arn in [
        "arn:aws:iam::123:role/x",
        "arn:aws:iam::123456789012:role/a b",
        "arn:aws:sts::123456789012:role/x",
        "arn:aws:iam::123456789012:role/",
    ] {
        let mut v = obj(base.clone());
        v.insert("roleArn".into(), json!(arn));
        assert_eq!(
            field(&err(P::Bedrock, Value::Object(v))),
            "roleArn",
            "{arn}"
        );
    }
    let e = err(
        P::Bedrock,
        with(P::Bedrock, "guardrailIdentifier", json!("gr1")),
    );
    assert_eq!(field(&e), "guardrailVersion");
    let e = err(P::Bedrock, with(P::Bedrock, "guardrailVersion", json!("1")));
    assert_eq!(field(&e), "guardrailIdentifier");
    assert_eq!(
        field(&err(
            P::Bedrock,
            with(P::Bedrock, "guardrailVersion", json!("latest"))
        )),
        "guardrailVersion"
    );
}

#[test]
fn custom_models_rules() {
    let bad = [
        json!([]),
        json!([{"displayName": "x"}]),
        json!([{"name": ""}]),
        json!([{"name": "a".repeat(201)}]),
        json!([{"name": "has space"}]),
        json!([{"name": "m\r\nx: y"}]),
        json!([{"name": "m"}, {"name": "m"}]),
        json!([{"name": "m", "contextWindow": 0}]),
        json!([{"name": "m", "contextWindow": -5}]),
        json!([{"name": "m", "contextWindow": 1.5}]),
        json!([{"name": "m", "contextWindow": "8000"}]),
        json!([{"name": "m", "contextWindow": 10_000_000_000u64}]),
        json!([{"name": "m", "displayName": ""}]),
        json!([{"name": "m", "displayName": "a\nb"}]),
    ];
    for m in bad {
        err(P::OpenAiCompatible, with(P::OpenAiCompatible, "models", m));
    }
    let too_many: Vec<Value> = (0..257).map(|i| json!({"name": format!("m{i}")})).collect();
    err(
        P::OpenAiCompatible,
        with(P::OpenAiCompatible, "models", json!(too_many)),
    );
    check(
        P::OpenAiCompatible,
        with(
            P::OpenAiCompatible,
            "models",
            json!([{"name": "x"}, {"name": "X"}]),
        ),
    )
    .unwrap();
    let e = err(
        P::OpenAiCompatible,
        with(
            P::OpenAiCompatible,
            "models",
            json!([{"name": "m"}, {"name": "m"}]),
        ),
    );
    assert_eq!(field(&e), "models[1].name");
    // Vertex names are URL path segments.
    for name in ["publishers/google/models/x", "..", "a?b", "a#b"] {
        err(
            P::VertexGemini,
            with(P::VertexGemini, "models", json!([{"name": name}])),
        );
    }
    check(
        P::OpenAiCompatible,
        with(
            P::OpenAiCompatible,
            "models",
            json!([{"name": "org/model:tag"}]),
        ),
    )
    .unwrap();
}

#[test]
fn every_forbidden_custom_header_is_rejected() {
    let names = [
        "authorization",
        "Authorization",
        "AUTHORIZATION",
        "proxy-authorization",
        "x-api-key",
        "X-Api-Key",
        "x_api_key",
        "api-key",
        "api_key",
        "x-goog-api-key",
        "cookie",
        "host",
        "Host",
        "content-length",
        "content_length",
        "transfer-encoding",
        "connection",
        "keep-alive",
        "te",
        "TE",
        "trailer",
        "upgrade",
        "proxy-connection",
        "expect",
        "x-amz-date",
        "X-Amz-Security-Token",
        "x-amz-content-sha256",
        "x_amz_target",
        ":authority",
        ":path",
        "Metadata-Flavor",
        "X-aws-ec2-metadata-token",
        "metadata",
    ];
    for p in [P::OpenAiCompatible, P::AnthropicCompatible] {
        for name in names {
            let e = err(p, with(p, "customHeaders", json!({ name: "v" })));
            assert_eq!(field(&e), "customHeaders", "{name}");
            assert!(e.message.contains("may not set"), "{name}: {}", e.message);
        }
    }
}

#[test]
fn custom_header_names_and_values_are_checked() {
    let p = P::OpenAiCompatible;
    let bad = [
        json!({"X-A": "v\r\nHost: evil"}),
        json!({"X-A": "v\nx"}),
        json!({"X-A": "v\rx"}),
        json!({"X-A": "v\u{0}x"}),
        json!({"X-A": "caf\u{e9}"}),
        json!({"X-A": "a".repeat(8193)}),
        json!({"X A": "v"}),
        json!({"X-A\r\nB": "v"}),
        json!({"": "v"}),
        json!({"X-(A)": "v"}),
        json!({"X-A": "1", "x-a": "2"}),
        json!({"X-A": "1", "X_A": "2"}),
    ];
    for h in bad {
        let e = err(p, with(p, "customHeaders", h.clone()));
        assert_eq!(field(&e), "customHeaders", "{h}: {}", e.message);
        assert!(!e.message.contains("evil"), "{}", e.message);
    }
    let many: Map<String, Value> = (0..33).map(|i| (format!("X-H{i}"), json!("v"))).collect();
    err(p, with(p, "customHeaders", Value::Object(many)));
    let ok: Map<String, Value> = (0..32)
        .map(|i| (format!("X-H{i}"), json!("v\twith tab")))
        .collect();
    check(p, with(p, "customHeaders", Value::Object(ok))).unwrap();
    check(p, with(p, "customHeaders", json!({}))).unwrap();
}

#[test]
fn egress_blocked_urls_are_rejected_unless_allowed() {
    let blocked = [
        "http://127.0.0.1:8080/v1",
        "https://127.0.0.1/v1",
        "https://169.254.169.254/latest",
        "https://10.0.0.1/v1",
        "https://[::1]/v1",
        "https://[::ffff:10.0.0.1]/",
        "https://2130706433/",
        "https://localhost/v1",
        "https://metadata.google.internal/",
        "https://evil.org#.openai.azure.com",
        "https://user@api.example.com/",
        "ftp://example.com/",
        "https://example.com/v1?api-key=1",
    ];
    let cases = [
        (P::OpenAiCompatible, "baseUrl"),
        (P::AnthropicCompatible, "baseUrl"),
        (P::AzureOpenAi, "endpoint"),
        (P::AzureAnthropic, "endpoint"),
    ];
    for (p, key) in cases {
        for url in blocked {
            let e = err(p, with(p, key, json!(url)));
            assert_eq!(field(&e), key, "{p} {url}: {}", e.message);
        }
    }
    let e = err(
        P::OpenAiCompatible,
        with(
            P::OpenAiCompatible,
            "baseUrl",
            json!("https://169.254.169.254/"),
        ),
    );
    assert_eq!(e.details.get("reason"), Some(&json!("metadata")));

    let policy = EgressPolicy::from_env_values("127.0.0.1/32,10.0.0.0/8", true).unwrap();
    for url in ["http://127.0.0.1:8080/v1", "https://10.0.0.1/v1"] {
        for (p, key) in cases {
            let cfg = obj(with(p, key, json!(url)));
            validate_config(p, &cfg, &policy).unwrap_or_else(|e| panic!("{p} {url}: {e}"));
        }
    }
    let cfg = obj(with(
        P::OpenAiCompatible,
        "baseUrl",
        json!("https://169.254.169.254/"),
    ));
    assert!(validate_config(P::OpenAiCompatible, &cfg, &policy).is_err());
}

#[test]
fn managed_takes_no_config() {
    check(P::Managed, json!({})).unwrap();
    let e = err(P::Managed, json!({"apiKeySecretName": "k"}));
    assert_eq!(field(&e), "config");
}

fn overrides(v: Value) -> Overrides {
    serde_json::from_value(json!({ "models": v })).unwrap()
}

#[test]
fn overrides_are_checked_against_the_catalog() {
    let empty = Map::new();
    validate_overrides(
        P::Anthropic,
        &empty,
        &overrides(json!({"claude-opus-4-6": {"enabled": false}})),
    )
    .unwrap();
    validate_overrides(
        P::Managed,
        &empty,
        &overrides(json!({"gpt-5": {"enabled": true}})),
    )
    .unwrap();
    validate_overrides(P::OpenAi, &empty, &Overrides::default()).unwrap();
    let e = validate_overrides(
        P::OpenAi,
        &empty,
        &overrides(json!({"gpt-4o": {"enabled": true}})),
    )
    .unwrap_err();
    assert_eq!(e.name, ErrorName::InvalidConfig);
    assert!(e.message.contains("gpt-4o"), "{}", e.message);
    assert_eq!(e.details.get("model"), Some(&json!("gpt-4o")));
    // Managed does not offer opus.
    assert!(
        validate_overrides(
            P::Managed,
            &empty,
            &overrides(json!({"claude-opus-4-6": {"enabled": true}}))
        )
        .is_err()
    );

    let bad_toggles = [
        json!({}),
        json!({"enabled": "no"}),
        json!({"enabled": true, "x": 1}),
        json!(true),
        json!(null),
    ];
    for t in bad_toggles {
        let e = validate_overrides(P::OpenAi, &empty, &overrides(json!({"gpt-5": t.clone()})))
            .unwrap_err();
        assert_eq!(field(&e), "overrides.models.gpt-5", "{t}");
    }

    let cfg = obj(happy(P::OpenAiCompatible));
    validate_overrides(
        P::OpenAiCompatible,
        &cfg,
        &overrides(json!({"my-model": {"enabled": false}})),
    )
    .unwrap();
    assert!(
        validate_overrides(
            P::OpenAiCompatible,
            &cfg,
            &overrides(json!({"gpt-5": {"enabled": false}}))
        )
        .is_err()
    );
}

#[test]
fn effective_and_enabled_models() {
    let empty = Map::new();
    let ov = overrides(json!({"claude-haiku-4-5-20251001": {"enabled": false}}));
    let eff = effective_models(P::Anthropic, &empty, &ov);
    let keys: Vec<&String> = eff.keys().collect();
    assert_eq!(
        keys,
        catalog_models(P::Anthropic, &empty)
            .iter()
            .collect::<Vec<_>>()
    );
    assert_eq!(eff["claude-haiku-4-5-20251001"], json!({"enabled": false}));
    assert_eq!(eff["claude-sonnet-4-20250514"], json!({"enabled": true}));
    assert_eq!(
        enabled_models(P::Anthropic, &empty, &ov),
        [
            "claude-sonnet-4-20250514",
            "claude-sonnet-4-5-20250929",
            "claude-opus-4-5-20251101",
            "claude-opus-4-6"
        ]
    );
    assert_eq!(
        serde_json::to_value(effective_models(P::Managed, &empty, &Overrides::default())).unwrap(),
        json!({"gpt-5": {"enabled": true}, "claude-haiku-4-5-20251001": {"enabled": true},
               "claude-sonnet-4-20250514": {"enabled": true}, "claude-sonnet-4-5-20250929": {"enabled": true}})
    );

    let cfg = obj(
        json!({"baseUrl": "https://x.example.com", "models": [{"name": "b"}, {"name": "a"}, {"name": "c"}]}),
    );
    assert_eq!(catalog_models(P::OpenAiCompatible, &cfg), ["b", "a", "c"]);
    let ov = overrides(json!({"a": {"enabled": false}, "gone": {"enabled": true}}));
    let eff = effective_models(P::OpenAiCompatible, &cfg, &ov);
    assert_eq!(
        serde_json::to_string(&eff).unwrap(),
        r#"{"b":{"enabled":true},"a":{"enabled":false},"c":{"enabled":true}}"#
    );
    assert_eq!(enabled_models(P::OpenAiCompatible, &cfg, &ov), ["b", "c"]);
    assert!(catalog_models(P::VertexGemini, &Map::new()).is_empty());

    let mut ov = ov;
    prune_overrides(P::OpenAiCompatible, &cfg, &mut ov);
    assert_eq!(ov, overrides(json!({"a": {"enabled": false}})));
}

#[test]
fn merge_config_replaces_adds_and_removes_keys() {
    let mut base = obj(
        json!({"roleArn": "arn:aws:iam::123456789012:role/a", "externalIdSecretName": "x", "region": "us-east-1"}),
    );
    merge_config(
        &mut base,
        &obj(
            json!({"externalIdSecretName": null, "region": "eu-west-1", "guardrailIdentifier": "g", "absent": null}),
        ),
    );
    assert_eq!(
        serde_json::to_string(&base).unwrap(),
        r#"{"roleArn":"arn:aws:iam::123456789012:role/a","region":"eu-west-1","guardrailIdentifier":"g"}"#
    );
    // Switching Azure shapes needs the old keys nulled; otherwise the merged whole is mixed.
    let mut azure = obj(json!({"apiKeySecretName": "k", "resourceName": "r", "deploymentId": "d"}));
    let mut mixed = azure.clone();
    merge_config(
        &mut mixed,
        &obj(json!({"endpoint": "https://r.openai.azure.com", "deployment": "d"})),
    );
    assert!(validate_config(P::AzureOpenAi, &mixed, &strict()).is_err());
    merge_config(
        &mut azure,
        &obj(
            json!({"endpoint": "https://r.openai.azure.com", "deployment": "d", "resourceName": null, "deploymentId": null}),
        ),
    );
    validate_config(P::AzureOpenAi, &azure, &strict()).unwrap();
    // Nested values are replaced whole.
    let mut cfg = obj(happy(P::OpenAiCompatible));
    merge_config(&mut cfg, &obj(json!({"models": [{"name": "z"}]})));
    assert_eq!(catalog_models(P::OpenAiCompatible, &cfg), ["z"]);
}

#[test]
fn merge_overrides_is_per_model() {
    let mut base = overrides(json!({"gpt-5": {"enabled": false}, "a": {"enabled": true}}));
    merge_overrides(
        &mut base,
        &overrides(json!({"a": null, "b": {"enabled": false}})),
    );
    assert_eq!(
        base,
        overrides(json!({"gpt-5": {"enabled": false}, "b": {"enabled": false}}))
    );
}

#[test]
fn referenced_secrets_and_url_fields() {
    let table = [
        (P::OpenAi, happy(P::OpenAi), vec!["api-key"]),
        (P::Bedrock, happy(P::Bedrock), vec!["id", "sk"]),
        (
            P::Bedrock,
            json!({"roleArn": "arn:aws:iam::123456789012:role/a", "externalIdSecretName": "ext", "region": "us-east-1"}),
            vec!["ext"],
        ),
        (
            P::VertexAnthropic,
            happy(P::VertexAnthropic),
            vec!["e", "p"],
        ),
        (P::OpenAiCompatible, happy(P::OpenAiCompatible), vec![]),
        (
            P::AnthropicCompatible,
            happy(P::AnthropicCompatible),
            vec!["tok"],
        ),
        (P::Managed, json!({}), vec![]),
        (P::OpenAi, json!({"apiKeySecretName": 5}), vec![]),
    ];
    for (p, cfg, want) in table {
        assert_eq!(referenced_secrets(p, &obj(cfg)), want, "{p}");
    }
    let cfg = obj(
        json!({"endpoint": "https://a.example.com", "baseUrl": "https://b.example.com", "other": "https://c"}),
    );
    assert_eq!(
        url_fields(&cfg),
        vec![
            ("endpoint", "https://a.example.com".to_owned()),
            ("baseUrl", "https://b.example.com".to_owned())
        ]
    );
    assert!(url_fields(&obj(happy(P::OpenAi))).is_empty());
}

#[test]
fn azure_helpers_read_both_shapes() {
    let old = obj(json!({"apiKeySecretName": "k", "resourceName": "my-res", "deploymentId": "d1"}));
    assert_eq!(
        azure_openai_endpoint(&old).as_deref(),
        Some("https://my-res.openai.azure.com")
    );
    assert_eq!(azure_openai_deployment(&old), Some("d1"));
    let new = obj(happy(P::AzureOpenAi));
    assert_eq!(
        azure_openai_endpoint(&new).as_deref(),
        Some("https://r.openai.azure.com")
    );
    assert_eq!(azure_openai_deployment(&new), Some("gpt5"));
    assert_eq!(
        azure_openai_endpoint(&obj(json!({"resourceName": "evil.org#"}))),
        None
    );
}
