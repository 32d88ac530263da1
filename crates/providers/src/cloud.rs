//! Targets for the cloud-hosted provider types: `bedrock`, `vertex-gemini` and
//! `vertex-anthropic`. Their credentials are not static headers, so each target carries an
//! [`UpstreamAuth`] that [`crate::authorize`] applies per request.

use http::HeaderMap;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};

use crate::auth::{AwsCredentialSource, SigV4Auth, UpstreamAuth};
use crate::aws::{AssumeRole, AwsKeys};
use crate::google::ServiceAccount;
use crate::target::{
    Cx, TargetError, UpstreamSettings, UpstreamTarget, WireProtocol, bearer, sensitive,
};

/// A URL path segment keeps only RFC 3986 unreserved characters: a model id's `:` becomes
/// `%3A` and an ARN's `/` becomes `%2F`, as Bedrock's `{modelId}` label requires.
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `bedrock`: Converse / ConverseStream, authorized by one of three credential forms: a
/// Bedrock API key (`apiKeySecretName`, sent as `Authorization: Bearer`, no signing), access
/// keys, or an assumed role (both SigV4).
pub(crate) fn bedrock(
    cx: &Cx<'_>,
    model: &str,
    settings: &UpstreamSettings,
) -> Result<UpstreamTarget, TargetError> {
    let region = cx.required("region")?;
    let (headers, auth) = match cx.str("apiKeySecretName") {
        Some(_) => bedrock_api_key(cx)?,
        None => (HeaderMap::new(), bedrock_sigv4(cx, region, settings)?),
    };
    let model_id = bedrock_model_id(model, region);
    let base = format!(
        "{}/model/{}",
        settings
            .bedrock_endpoint
            .replace("{region}", region)
            .trim_end_matches('/'),
        utf8_percent_encode(&model_id, SEGMENT)
    );
    let guardrail = match (cx.str("guardrailIdentifier"), cx.str("guardrailVersion")) {
        (Some(id), Some(version)) => Some((id.to_owned(), version.to_owned())),
        _ => None,
    };
    Ok(UpstreamTarget {
        protocol: WireProtocol::BedrockConverse,
        url: format!("{base}/converse"),
        stream_url: format!("{base}/converse-stream"),
        headers,
        auth,
        upstream_model: model_id,
        guardrail,
    })
}

/// A Bedrock API key (long-term, or a short-term one pasted in as the secret) is a bearer
/// token: a static header, nothing to sign per request.
fn bedrock_api_key(cx: &Cx<'_>) -> Result<(HeaderMap, UpstreamAuth), TargetError> {
    let key = cx.secret("apiKeySecretName")?;
    let mut headers = HeaderMap::new();
    headers.insert(http::header::AUTHORIZATION, bearer(&key)?);
    Ok((headers, UpstreamAuth::Static))
}

/// SigV4 with the organization's access keys, or with keys from assuming its role.
fn bedrock_sigv4(
    cx: &Cx<'_>,
    region: &str,
    settings: &UpstreamSettings,
) -> Result<UpstreamAuth, TargetError> {
    let credentials = match cx.str("roleArn") {
        Some(role_arn) => AwsCredentialSource::AssumeRole(AssumeRole {
            role_arn: role_arn.to_owned(),
            external_id: cx.optional_secret("externalIdSecretName")?,
            session_name: settings.aws_role_session_name.clone(),
            endpoint: settings.sts_endpoint.replace("{region}", region),
            region: region.to_owned(),
            base: settings
                .aws_base_credentials
                .clone()
                .ok_or(TargetError::Config("SWITCHBOARD_AWS_ACCESS_KEY_ID"))?,
        }),
        None => {
            let id = cx.secret("accessKeyIdSecretName")?;
            let secret = cx.secret("secretAccessKeySecretName")?;
            AwsCredentialSource::Static(AwsKeys::new(id.expose().trim(), secret))
        }
    };
    Ok(UpstreamAuth::SigV4(SigV4Auth {
        region: region.to_owned(),
        service: "bedrock",
        credentials,
    }))
}

/// The InvokeModel URL (`…/invoke`, or `…/invoke-with-response-stream`) for a Bedrock
/// target, for requests Converse cannot express (Anthropic body via
/// `switchboard_protocols::bedrock::invoke_body`; answers decoded with the Anthropic codecs
/// and `bedrock::InvokeStreamDecoder`). `None` for other targets.
pub fn bedrock_invoke_url(target: &UpstreamTarget, stream: bool) -> Option<String> {
    let base = target.url.strip_suffix("/converse")?;
    let operation = if stream {
        "invoke-with-response-stream"
    } else {
        "invoke"
    };
    (target.protocol == WireProtocol::BedrockConverse).then(|| format!("{base}/{operation}"))
}

/// The Bedrock model id for a catalog model name in `region`: Claude names become the
/// region's cross-region inference profile (`us.`/`eu.`/`apac.` + `anthropic.<name>-v1:0`),
/// which newer Claude models require. Ids that already look like Bedrock ids (a provider
/// prefix with a dot, or an ARN) are used as given.
pub fn bedrock_model_id(model: &str, region: &str) -> String {
    if model.starts_with("arn:") || model.contains('.') {
        return model.to_owned();
    }
    format!("{}.anthropic.{model}-v1:0", inference_geography(region))
}

/// The inference-profile geography prefix of an AWS region.
pub fn inference_geography(region: &str) -> &'static str {
    match region.split('-').next().unwrap_or_default() {
        "eu" => "eu",
        "ap" => "apac",
        "us" if region.starts_with("us-gov-") => "us-gov",
        _ => "us",
    }
}

/// `vertex-gemini`: service account (OAuth token per request) or Express Mode API key.
pub(crate) fn vertex_gemini(
    cx: &Cx<'_>,
    model: &str,
    settings: &UpstreamSettings,
) -> Result<UpstreamTarget, TargetError> {
    if let Some(key) = cx.optional_secret("apiKeySecretName")? {
        // Express Mode: global endpoint, key in a header (never in the query string, where
        // it would end up in access logs).
        let base = format!(
            "{}/v1/publishers/google/models/{}",
            vertex_base(&settings.vertex_endpoint, "global"),
            utf8_percent_encode(model, SEGMENT)
        );
        let mut headers = HeaderMap::new();
        headers.insert("x-goog-api-key", sensitive(&key)?);
        return Ok(gemini_target(base, headers, UpstreamAuth::Static, model));
    }
    let (base, account) = vertex_project_model(cx, model, "google", settings)?;
    Ok(gemini_target(
        base,
        HeaderMap::new(),
        UpstreamAuth::GoogleServiceAccount(account),
        model,
    ))
}

fn gemini_target(
    base: String,
    headers: HeaderMap,
    auth: UpstreamAuth,
    model: &str,
) -> UpstreamTarget {
    UpstreamTarget {
        protocol: WireProtocol::Gemini,
        url: format!("{base}:generateContent"),
        stream_url: format!("{base}:streamGenerateContent?alt=sse"),
        headers,
        auth,
        upstream_model: model.to_owned(),
        guardrail: None,
    }
}

/// `vertex-anthropic`: Claude on Vertex rawPredict / streamRawPredict, service account.
pub(crate) fn vertex_anthropic(
    cx: &Cx<'_>,
    model: &str,
    settings: &UpstreamSettings,
) -> Result<UpstreamTarget, TargetError> {
    let (base, account) = vertex_project_model(cx, model, "anthropic", settings)?;
    Ok(UpstreamTarget {
        protocol: WireProtocol::VertexAnthropic,
        url: format!("{base}:rawPredict"),
        stream_url: format!("{base}:streamRawPredict"),
        headers: HeaderMap::new(),
        auth: UpstreamAuth::GoogleServiceAccount(account),
        upstream_model: model.to_owned(),
        guardrail: None,
    })
}

/// `{endpoint}/v1/projects/{p}/locations/{l}/publishers/{publisher}/models/{m}` and the
/// service account that calls it.
fn vertex_project_model(
    cx: &Cx<'_>,
    model: &str,
    publisher: &str,
    settings: &UpstreamSettings,
) -> Result<(String, ServiceAccount), TargetError> {
    let project = cx.required("project")?;
    let location = cx.required("location")?;
    let email = cx.secret("clientEmailSecretName")?;
    let key = cx.secret("privateKeySecretName")?;
    let base = format!(
        "{}/v1/projects/{}/locations/{}/publishers/{publisher}/models/{}",
        vertex_base(&settings.vertex_endpoint, location),
        utf8_percent_encode(project, SEGMENT),
        utf8_percent_encode(location, SEGMENT),
        utf8_percent_encode(model, SEGMENT)
    );
    let account = ServiceAccount::new(email.expose(), &key, &settings.google_token_url);
    Ok((base, account))
}

/// The Vertex host for `location`: `global` has no location prefix.
pub fn vertex_base(template: &str, location: &str) -> String {
    let template = if location == "global" {
        template.replace("{location}-", "")
    } else {
        template.to_owned()
    };
    template
        .replace("{location}", location)
        .trim_end_matches('/')
        .to_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_ids_map_to_regional_inference_profiles() {
        assert_eq!(
            bedrock_model_id("claude-sonnet-4-20250514", "eu-west-1"),
            "eu.anthropic.claude-sonnet-4-20250514-v1:0"
        );
        assert_eq!(
            bedrock_model_id("claude-haiku-4-5-20251001", "ap-northeast-1"),
            "apac.anthropic.claude-haiku-4-5-20251001-v1:0"
        );
        assert_eq!(
            bedrock_model_id("claude-opus-4-6", "us-east-1"),
            "us.anthropic.claude-opus-4-6-v1:0"
        );
        assert_eq!(
            bedrock_model_id("amazon.nova-micro-v1:0", "us-east-1"),
            "amazon.nova-micro-v1:0"
        );
    }

    #[test]
    fn vertex_global_drops_the_location_prefix() {
        assert_eq!(
            vertex_base(crate::target::DEFAULT_VERTEX_ENDPOINT, "global"),
            "https://aiplatform.googleapis.com"
        );
        assert_eq!(
            vertex_base(crate::target::DEFAULT_VERTEX_ENDPOINT, "us-east5"),
            "https://us-east5-aiplatform.googleapis.com"
        );
        assert_eq!(
            vertex_base("http://127.0.0.1:9/", "us-east5"),
            "http://127.0.0.1:9"
        );
    }
}
