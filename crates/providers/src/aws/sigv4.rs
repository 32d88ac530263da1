//! SigV4 header signing with the `aws-sigv4` crate.
//!
//! Settings are the crate's defaults, which are what AWS services other than S3 expect:
//! the canonical URI is the path as sent, dot segments normalized, then percent-encoded once
//! more ("double" encoding: a model id's `%3A` is signed as `%253A`); the payload hash is
//! not sent as `x-amz-content-sha256` (Bedrock does not need it); the session token is a
//! signed `x-amz-security-token`; `authorization`, `user-agent`, `x-amzn-trace-id` and
//! `transfer-encoding` are never signed.

use std::time::SystemTime;

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, HeaderName, HeaderValue};

use super::AwsKeys;

/// Why a request could not be signed. The message never contains key material.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("the request could not be signed: {0}")]
pub struct SigningError(String);

/// Signs a request for `service` in `region` at `time` and adds the signature headers
/// (`authorization`, `x-amz-date`, and `x-amz-security-token` for temporary credentials,
/// the last two marked sensitive) to `headers`. Every header already in `headers` is
/// signed (except the unsigned ones listed in the module docs), so add them all first:
/// nothing that is signed may change afterwards. `url` is the URL exactly as it will be
/// sent (already percent-encoded). Returns the hex signature.
#[allow(clippy::too_many_arguments)] // each input is part of what is signed
pub fn sign_request(
    keys: &AwsKeys,
    region: &str,
    service: &str,
    time: SystemTime,
    method: &str,
    url: &str,
    headers: &mut HeaderMap,
    body: &[u8],
) -> Result<String, SigningError> {
    // aws-sigv4 needs the authority to derive `host`; refuse (rather than let it panic on)
    // a relative URL.
    let has_host = url
        .parse::<http::Uri>()
        .is_ok_and(|u| u.authority().is_some());
    if !has_host {
        return Err(SigningError("the URL to sign must be absolute".into()));
    }
    let identity: Identity = Credentials::new(
        keys.access_key_id.clone(),
        keys.secret_access_key.expose().to_owned(),
        keys.session_token.as_ref().map(|t| t.expose().to_owned()),
        keys.expires_at,
        "switchboard",
    )
    .into();
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(region)
        .name(service)
        .time(time)
        .settings(SigningSettings::default())
        .build()
        .map_err(|e| SigningError(e.to_string()))?
        .into();
    let pairs: Vec<(&str, &str)> = headers
        .iter()
        .filter(|(name, _)| !matches!(name.as_str(), "x-amz-date" | "x-amz-security-token"))
        .map(|(name, value)| {
            value
                .to_str()
                .map(|v| (name.as_str(), v))
                .map_err(|_| SigningError(format!("header {name} is not visible ASCII")))
        })
        .collect::<Result<_, _>>()?;
    let request = SignableRequest::new(method, url, pairs.into_iter(), SignableBody::Bytes(body))
        .map_err(|e| SigningError(e.to_string()))?;
    let (instructions, signature) = sign(request, &params)
        .map_err(|e| SigningError(e.to_string()))?
        .into_parts();
    let (signed_headers, _) = instructions.into_parts();
    for header in signed_headers {
        let mut value =
            HeaderValue::from_str(header.value()).map_err(|e| SigningError(e.to_string()))?;
        value.set_sensitive(header.sensitive() || header.name() == "authorization");
        headers.insert(HeaderName::from_static(header.name()), value);
    }
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;
    use switchboard_core::SecretValue;

    #[test]
    fn relative_urls_are_an_error_and_secrets_are_marked_sensitive() {
        let mut keys = AwsKeys::new("AKIDEXAMPLE", SecretValue::new("secret".into()));
        let mut headers = HeaderMap::new();
        let err = sign_request(
            &keys,
            "us-east-1",
            "bedrock",
            SystemTime::now(),
            "POST",
            "/model/x/converse",
            &mut headers,
            b"",
        );
        assert!(err.is_err());
        keys.session_token = Some(SecretValue::new("token".into()));
        let url = "https://bedrock-runtime.us-east-1.amazonaws.com/model/x/converse";
        sign_request(
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
        assert!(headers["authorization"].is_sensitive());
        assert!(headers["x-amz-security-token"].is_sensitive());
        assert!(!format!("{keys:?}").contains("secret") && !format!("{keys:?}").contains("AKID"));
    }
}
