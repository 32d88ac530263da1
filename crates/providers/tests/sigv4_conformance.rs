//! SigV4 conformance of our signing path (`switchboard_providers::aws::sign_request`, the
//! function every Bedrock and STS request goes through) on published vectors no one here
//! wrote: AWS's Signature Version 4 Test Suite (as shipped by botocore) and openai-python's
//! Bedrock vectors. See `tests/fixtures/README.md`.
//!
//! For every case the `Authorization` header must equal the published one byte for byte
//! (credential scope, signed-header list and signature). The canonical request our signer
//! built is captured from its trace event and compared with `.creq`; the string to sign is
//! rebuilt from the scope and the SHA-256 of that canonical request and compared with
//! `.sts`. The signature is an HMAC over the string to sign, so a matching signature
//! confirms both independently.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use base64::Engine as _;
use http::{HeaderMap, HeaderName, HeaderValue};
use serde_json::Value;
use switchboard_core::SecretValue;
use switchboard_providers::aws::{AwsKeys, sign_request};

const AKID: &str = "AKIDEXAMPLE";
const SECRET: &str = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
/// 2015-08-30T12:36:00Z, the suite's signing time.
const SUITE_TIME: u64 = 1_440_938_160;

/// Cases whose request cannot be expressed as an HTTP request our client would send, with
/// the reason. botocore skips the same request-line case and the repeated-key query cases.
const NOT_APPLICABLE: &[(&str, &str)] = &[
    (
        "get-utf8",
        "raw UTF-8 in the request line: a client percent-encodes it first, and the suite's expectation is for the unencoded path",
    ),
    (
        "get-space",
        "raw space in the request line: not a valid HTTP request-target",
    ),
    (
        "get-vanilla-query-order-key",
        "repeated query keys (botocore skips it too)",
    ),
    (
        "get-vanilla-query-order-key-case",
        "repeated query keys (botocore skips it too)",
    ),
    (
        "get-vanilla-query-order-value",
        "repeated query keys (botocore skips it too)",
    ),
    (
        "get-vanilla-utf8-query",
        "raw UTF-8 in the request line, as get-utf8",
    ),
];

fn hex_sha256(bytes: &[u8]) -> String {
    digest::digest(&digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn suite_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/aws-sigv4-testsuite")
}

/// Every case folder (one holding `<name>.req`), nested ones included.
fn cases(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("suite folder") {
        let path = entry.expect("entry").path();
        if path.is_dir() {
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            if path.join(format!("{name}.req")).exists() {
                out.push(path.clone());
            }
            cases(&path, out);
        }
    }
}

struct SuiteRequest {
    method: String,
    target: String,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

/// Parses a `.req` file: request line, `Name:value` lines (folded continuation lines are
/// joined with a space, as an HTTP/1.1 recipient unfolds them), blank line, body.
fn parse_req(text: &str) -> SuiteRequest {
    let (head, body) = text.split_once("\n\n").unwrap_or((text, ""));
    let mut lines = head.lines();
    let request_line = lines.next().expect("request line");
    let method = request_line.split(' ').next().unwrap().to_owned();
    let target = request_line[method.len() + 1..request_line.rfind(" HTTP/").unwrap()].to_owned();
    let mut headers: Vec<(String, String)> = Vec::new();
    for line in lines {
        if line.starts_with([' ', '\t']) {
            let last = headers.last_mut().expect("continuation follows a header");
            last.1.push(' ');
            last.1.push_str(line.trim());
        } else if let Some((name, value)) = line.split_once(':') {
            headers.push((name.to_owned(), value.to_owned()));
        }
    }
    SuiteRequest {
        method,
        target,
        headers,
        body: body.as_bytes().to_vec(),
    }
}

/// Collects the `canonical_request` field of the signer's trace events.
#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<String>>>);

impl tracing::Subscriber for Capture {
    fn enabled(&self, _: &tracing::Metadata<'_>) -> bool {
        true
    }
    fn new_span(&self, _: &tracing::span::Attributes<'_>) -> tracing::span::Id {
        tracing::span::Id::from_u64(1)
    }
    fn record(&self, _: &tracing::span::Id, _: &tracing::span::Record<'_>) {}
    fn record_follows_from(&self, _: &tracing::span::Id, _: &tracing::span::Id) {}
    fn event(&self, event: &tracing::Event<'_>) {
        struct Visit<'a>(&'a Mutex<Vec<String>>);
        impl tracing::field::Visit for Visit<'_> {
            fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
                if field.name() == "canonical_request" {
                    self.0.lock().unwrap().push(format!("{value:?}"));
                }
            }
        }
        event.record(&mut Visit(&self.0));
    }
    fn enter(&self, _: &tracing::span::Id) {}
    fn exit(&self, _: &tracing::span::Id) {}
}

struct Signed {
    authorization: String,
    canonical_request: Option<String>,
}

#[allow(clippy::too_many_arguments)] // mirrors sign_request, whose inputs the vectors give one by one
fn sign_captured(
    keys: &AwsKeys,
    region: &str,
    service: &str,
    time: SystemTime,
    method: &str,
    url: &str,
    headers: &mut HeaderMap,
    body: &[u8],
) -> Signed {
    let capture = Capture::default();
    tracing::subscriber::with_default(capture.clone(), || {
        sign_request(keys, region, service, time, method, url, headers, body).expect("signs")
    });
    let canonical_request = capture.0.lock().unwrap().last().cloned();
    Signed {
        authorization: headers["authorization"].to_str().unwrap().to_owned(),
        canonical_request,
    }
}

#[test]
fn aws_sigv4_test_suite_through_our_signing_path() {
    let mut dirs = Vec::new();
    cases(&suite_dir(), &mut dirs);
    dirs.sort();
    assert_eq!(dirs.len(), 34, "every case of the suite is found");
    let mut checked = 0;
    for dir in dirs {
        let name = dir.file_name().unwrap().to_string_lossy().into_owned();
        let read = |ext: &str| std::fs::read_to_string(dir.join(format!("{name}.{ext}"))).unwrap();
        if NOT_APPLICABLE.iter().any(|(n, _)| *n == name) {
            continue;
        }
        let req = parse_req(&read("req"));
        let mut keys = AwsKeys::new(AKID, SecretValue::new(SECRET.into()));
        let mut headers = HeaderMap::new();
        let mut host = String::new();
        for (n, v) in &req.headers {
            match n.to_ascii_lowercase().as_str() {
                "x-amz-date" => continue,
                // Signed only when it is part of the canonical request (header-before).
                "x-amz-security-token" => {
                    keys.session_token = Some(SecretValue::new(v.clone()));
                    continue;
                }
                "host" => host = v.clone(),
                _ => {}
            }
            headers.append(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v).unwrap(),
            );
        }
        // get-vanilla-with-session-token names its token only in the canonical request.
        if let Some(token) = read("creq")
            .lines()
            .find_map(|l| l.strip_prefix("x-amz-security-token:"))
        {
            keys.session_token
                .get_or_insert_with(|| SecretValue::new(token.to_owned()));
        }
        let url = format!("https://{host}{}", req.target);
        let time = SystemTime::UNIX_EPOCH + Duration::from_secs(SUITE_TIME);
        let signed = sign_captured(
            &keys,
            "us-east-1",
            "service",
            time,
            &req.method,
            &url,
            &mut headers,
            &req.body,
        );
        assert_eq!(signed.authorization, read("authz"), "{name}: Authorization");
        let creq = read("creq");
        let sts = read("sts");
        let creq_hash = hex_sha256(creq.as_bytes());
        assert!(
            sts.ends_with(&creq_hash),
            "{name}: .sts names the hash of .creq"
        );
        let want_sts = format!(
            "AWS4-HMAC-SHA256\n20150830T123600Z\n20150830/us-east-1/service/aws4_request\n{creq_hash}"
        );
        assert_eq!(sts, want_sts, "{name}: string to sign");
        if keys.session_token.is_none() {
            // The traced canonical request redacts a session token, so it is compared only
            // for cases without one (the signature covers those).
            assert_eq!(
                signed.canonical_request.as_deref(),
                Some(creq.as_str()),
                "{name}: canonical request"
            );
        }
        checked += 1;
    }
    assert_eq!(checked, 34 - NOT_APPLICABLE.len());
}

fn ts(rfc3339: &str) -> SystemTime {
    let t = time::OffsetDateTime::parse(rfc3339, &time::format_description::well_known::Rfc3339)
        .unwrap();
    SystemTime::from(t)
}

fn fixture(name: &str) -> Value {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/openai-python")
        .join(name);
    serde_json::from_slice(&std::fs::read(path).unwrap()).unwrap()
}

#[test]
fn openai_python_bedrock_sigv4_vector() {
    let v = fixture("bedrock-v1-sigv4.json");
    let creds = &v["credentials"];
    let mut keys = AwsKeys::new(
        creds["accessKeyId"].as_str().unwrap(),
        SecretValue::new(creds["secretAccessKey"].as_str().unwrap().into()),
    );
    keys.session_token = Some(SecretValue::new(
        creds["sessionToken"].as_str().unwrap().into(),
    ));
    let body = v["request"]["body"].as_str().unwrap().as_bytes();
    let expected = &v["expected"];
    assert_eq!(hex_sha256(body), expected["payloadHash"]);
    let mut headers = HeaderMap::new();
    headers.insert(
        "content-type",
        HeaderValue::from_str(v["request"]["contentType"].as_str().unwrap()).unwrap(),
    );
    headers.insert(
        "x-amz-content-sha256",
        HeaderValue::from_str(&hex_sha256(body)).unwrap(),
    );
    let signed = sign_captured(
        &keys,
        v["region"].as_str().unwrap(),
        v["service"].as_str().unwrap(),
        ts(v["signingDate"].as_str().unwrap()),
        v["request"]["method"].as_str().unwrap(),
        v["request"]["url"].as_str().unwrap(),
        &mut headers,
        body,
    );
    assert_eq!(signed.authorization, expected["authorization"]);
    assert_eq!(headers["x-amz-date"], expected["date"].as_str().unwrap());
    assert!(headers["x-amz-security-token"].is_sensitive());
}

#[test]
fn openai_python_bedrock_auth_sigv4_cases() {
    let cases = fixture("bedrock_auth-v1-cases.json");
    let cases = cases["cases"].as_array().unwrap();
    let sigv4: Vec<&Value> = cases.iter().filter(|c| c["kind"] == "sigv4").collect();
    assert_eq!(sigv4.len(), 2);
    for case in sigv4 {
        let id = case["id"].as_str().unwrap();
        let given = &case["given"];
        let c = &given["credentials"];
        let mut keys = AwsKeys::new(
            c["access_key_id"].as_str().unwrap(),
            SecretValue::new(c["secret_access_key"].as_str().unwrap().into()),
        );
        keys.session_token = c["session_token"]
            .as_str()
            .map(|t| SecretValue::new(t.into()));
        let body = base64::engine::general_purpose::STANDARD
            .decode(given["request"]["body_base64"].as_str().unwrap())
            .unwrap();
        let expected = &case["expected"];
        assert_eq!(hex_sha256(&body), expected["payload_sha256"], "{id}");
        let mut headers = HeaderMap::new();
        for (n, v) in given["request"]["headers"].as_object().unwrap() {
            headers.insert(
                HeaderName::from_bytes(n.as_bytes()).unwrap(),
                HeaderValue::from_str(v.as_str().unwrap()).unwrap(),
            );
        }
        headers.insert(
            "x-amz-content-sha256",
            HeaderValue::from_str(&hex_sha256(&body)).unwrap(),
        );
        let s = &given["signing"];
        let signed = sign_captured(
            &keys,
            s["region"].as_str().unwrap(),
            s["service"].as_str().unwrap(),
            ts(s["timestamp"].as_str().unwrap()),
            given["request"]["method"].as_str().unwrap(),
            given["request"]["url"].as_str().unwrap(),
            &mut headers,
            &body,
        );
        for (name, want) in expected["headers"].as_object().unwrap() {
            assert_eq!(
                headers[name.as_str()],
                want.as_str().unwrap(),
                "{id}: {name}"
            );
        }
        if keys.session_token.is_none() {
            let creq = signed.canonical_request.expect("traced canonical request");
            assert_eq!(
                hex_sha256(creq.as_bytes()),
                expected["canonical_request_sha256"],
                "{id}"
            );
        }
    }
}

#[test]
fn bedrock_model_ids_are_double_encoded_for_signing() {
    let keys = AwsKeys::new(AKID, SecretValue::new(SECRET.into()));
    let mut headers = HeaderMap::new();
    headers.insert("content-type", HeaderValue::from_static("application/json"));
    let url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/us.anthropic.claude-sonnet-4-20250514-v1%3A0/converse-stream";
    let signed = sign_captured(
        &keys,
        "us-east-1",
        "bedrock",
        SystemTime::UNIX_EPOCH + Duration::from_secs(SUITE_TIME),
        "POST",
        url,
        &mut headers,
        b"{}",
    );
    let creq = signed.canonical_request.unwrap();
    assert!(
        creq.starts_with(
            "POST\n/model/us.anthropic.claude-sonnet-4-20250514-v1%253A0/converse-stream\n"
        ),
        "{creq}"
    );
    assert!(signed.authorization.contains(
        "/us-east-1/bedrock/aws4_request, SignedHeaders=content-type;host;x-amz-date, Signature="
    ));
}

#[test]
fn openai_python_redaction_case_signed_headers_never_print() {
    let cases = fixture("bedrock_auth-v1-cases.json");
    let case = cases["cases"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["kind"] == "redaction")
        .unwrap();
    let token = case["given"]["headers"]["x-amz-security-token"]
        .as_str()
        .unwrap();
    let mut keys = AwsKeys::new(AKID, SecretValue::new(SECRET.into()));
    keys.session_token = Some(SecretValue::new(token.into()));
    let mut headers = HeaderMap::new();
    headers.insert("x-request-id", HeaderValue::from_static("req_fixture"));
    let url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/m/converse";
    let signature = sign_request(
        &keys,
        "us-east-1",
        "bedrock",
        SystemTime::now(),
        "POST",
        url,
        &mut headers,
        b"{}",
    )
    .unwrap();
    let printed = format!("{headers:?}");
    assert!(printed.contains("req_fixture"), "{printed}");
    for forbidden in [token, signature.as_str(), SECRET] {
        assert!(!printed.contains(forbidden), "{printed}");
    }
}
