//! STS `AssumeRole` (Query protocol: a signed form POST answered with XML), for Bedrock
//! configurations that name a `roleArn` instead of access keys.

use std::time::{Duration, SystemTime};

use http::{HeaderMap, HeaderValue};
use switchboard_core::SecretValue;
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::{AwsKeys, sign_request};
use crate::egress::{EgressClient, EgressFailure};

/// How long assumed-role credentials are requested for (the STS default and maximum for
/// role chaining).
pub const SESSION_DURATION: Duration = Duration::from_secs(3600);
/// Longest STS error message kept.
const MAX_MESSAGE: usize = 512;
/// Largest STS answer read.
const MAX_BODY: usize = 64 * 1024;

/// What to assume, and with which credentials.
#[derive(Clone, Debug)]
pub struct AssumeRole {
    /// `arn:aws:iam::<account>:role/<name>`.
    pub role_arn: String,
    /// `sts:ExternalId`, when the role's trust policy requires one.
    pub external_id: Option<SecretValue>,
    /// `RoleSessionName`, visible in the customer's CloudTrail.
    pub session_name: String,
    /// The STS endpoint, e.g. `https://sts.eu-west-1.amazonaws.com`.
    pub endpoint: String,
    /// The region the endpoint is in (part of the signature scope).
    pub region: String,
    /// The platform's base credentials, which sign the call.
    pub base: AwsKeys,
}

/// Why AssumeRole failed. Messages are safe to show the organization's administrators.
#[derive(Debug, thiserror::Error)]
pub enum StsError {
    #[error("STS could not be reached: {0}")]
    Egress(#[from] EgressFailure),
    #[error("STS refused to assume the role (HTTP {status}, {code}): {message}")]
    Refused {
        status: u16,
        code: String,
        message: String,
    },
    #[error("STS answered something that is not AssumeRole credentials")]
    Malformed,
    #[error(transparent)]
    Signing(#[from] super::SigningError),
}

/// Calls `AssumeRole` through the egress client and returns the temporary credentials.
pub async fn assume_role(egress: &EgressClient, request: &AssumeRole) -> Result<AwsKeys, StsError> {
    let body = form_body(request);
    let url = format!("{}/", request.endpoint.trim_end_matches('/'));
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("application/x-www-form-urlencoded; charset=utf-8"),
    );
    sign_request(
        &request.base,
        &request.region,
        "sts",
        SystemTime::now(),
        "POST",
        &url,
        &mut headers,
        body.as_bytes(),
    )?;
    let builder = egress.request(reqwest::Method::POST, &url)?;
    let response = egress.send(builder.headers(headers).body(body)).await?;
    let status = response.status().as_u16();
    let text = read_text(response).await;
    if status != 200 {
        return Err(refused(status, &text));
    }
    parse_assume_role_response(&text).ok_or(StsError::Malformed)
}

/// The form body. The external id is a secret only in the sense that it should not be
/// logged; it has to travel in the body.
fn form_body(request: &AssumeRole) -> String {
    let mut form = form_urlencoded::Serializer::new(String::new());
    form.append_pair("Action", "AssumeRole")
        .append_pair("Version", "2011-06-15")
        .append_pair("RoleArn", &request.role_arn)
        .append_pair("RoleSessionName", &request.session_name)
        .append_pair("DurationSeconds", &SESSION_DURATION.as_secs().to_string());
    if let Some(id) = &request.external_id {
        form.append_pair("ExternalId", id.expose());
    }
    form.finish()
}

async fn read_text(response: reqwest::Response) -> String {
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - body.len())]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    String::from_utf8_lossy(&body).into_owned()
}

fn refused(status: u16, xml: &str) -> StsError {
    let mut message = element(xml, "Message").unwrap_or_default();
    if message.len() > MAX_MESSAGE {
        let mut cut = MAX_MESSAGE;
        while !message.is_char_boundary(cut) {
            cut -= 1;
        }
        message.truncate(cut);
    }
    StsError::Refused {
        status,
        code: element(xml, "Code").unwrap_or_else(|| "Unknown".into()),
        message,
    }
}

/// Reads the credentials out of an `AssumeRoleResponse` document.
pub fn parse_assume_role_response(xml: &str) -> Option<AwsKeys> {
    let credentials = element(xml, "Credentials")?;
    let expiration = element(&credentials, "Expiration")?;
    let expires = OffsetDateTime::parse(expiration.trim(), &Rfc3339).ok()?;
    Some(AwsKeys {
        access_key_id: element(&credentials, "AccessKeyId")?.trim().to_owned(),
        secret_access_key: SecretValue::new(
            element(&credentials, "SecretAccessKey")?.trim().to_owned(),
        ),
        session_token: Some(SecretValue::new(
            element(&credentials, "SessionToken")?.trim().to_owned(),
        )),
        expires_at: Some(SystemTime::from(expires)),
    })
}

/// The unescaped text of the first `<name>…</name>` element. STS documents are small,
/// flat and attribute-free where it matters, so a full XML parser is not needed.
fn element(xml: &str, name: &str) -> Option<String> {
    let open = format!("<{name}>");
    let close = format!("</{name}>");
    let start = xml.find(&open)? + open.len();
    let len = xml[start..].find(&close)?;
    Some(unescape(&xml[start..start + len]))
}

fn unescape(text: &str) -> String {
    text.replace("&lt;", "<")
        .replace("&gt;", ">")
        .replace("&quot;", "\"")
        .replace("&apos;", "'")
        .replace("&amp;", "&")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_the_documented_response_and_errors() {
        let xml = r#"<AssumeRoleResponse xmlns="https://sts.amazonaws.com/doc/2011-06-15/">
  <AssumeRoleResult>
    <AssumedRoleUser><Arn>arn:aws:sts::123456789012:assumed-role/demo/s</Arn></AssumedRoleUser>
    <Credentials>
      <AccessKeyId>ASIAIOSFODNN7EXAMPLE</AccessKeyId>
      <SecretAccessKey>wJalrXUtnFEMI/K7MDENG/bPxRfiCYzEXAMPLEKEY</SecretAccessKey>
      <SessionToken>AQoDYXdzEPT//////////wEXAMPLEtc764&amp;x</SessionToken>
      <Expiration>2019-11-09T13:34:41Z</Expiration>
    </Credentials>
  </AssumeRoleResult>
</AssumeRoleResponse>"#;
        let keys = parse_assume_role_response(xml).unwrap();
        assert_eq!(keys.access_key_id, "ASIAIOSFODNN7EXAMPLE");
        assert_eq!(
            keys.session_token.unwrap().expose(),
            "AQoDYXdzEPT//////////wEXAMPLEtc764&x"
        );
        let expires = keys.expires_at.unwrap();
        assert_eq!(
            expires
                .duration_since(SystemTime::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
            1_573_306_481
        );
        let error = r#"<ErrorResponse><Error><Type>Sender</Type><Code>AccessDenied</Code><Message>not authorized</Message></Error></ErrorResponse>"#;
        let StsError::Refused { code, message, .. } = refused(403, error) else {
            panic!("refused expected")
        };
        assert_eq!(
            (code.as_str(), message.as_str()),
            ("AccessDenied", "not authorized")
        );
    }
}
