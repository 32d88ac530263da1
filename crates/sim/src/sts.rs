//! AWS STS `AssumeRole` (`POST /`, Query protocol form body, XML answer), verifying the
//! caller's SigV4 (service `sts`) and, when configured, the external id.

use std::time::SystemTime;

use axum::extract::State;
use axum::response::{IntoResponse, Response};
use bytes::Bytes;
use http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::cloud::AwsSession;
use crate::{Sim, aws_sig, ids};

fn xml(status: StatusCode, body: String) -> Response {
    let mut headers = HeaderMap::new();
    headers.insert(
        http::header::CONTENT_TYPE,
        HeaderValue::from_static("text/xml"),
    );
    if let Ok(id) = HeaderValue::from_str(&ids::uuid()) {
        headers.insert("x-amzn-requestid", id);
    }
    (status, headers, body).into_response()
}

fn error(status: StatusCode, code: &str, message: &str) -> Response {
    let body = format!(
        "<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\"><Error><Type>Sender</Type>\
         <Code>{code}</Code><Message>{}</Message></Error><RequestId>{}</RequestId></ErrorResponse>",
        escape(message),
        ids::uuid()
    );
    xml(status, body)
}

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// `POST /` on the STS endpoint.
pub(crate) async fn handle(
    State(sim): State<Sim>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    if let Err(e) = aws_sig::verify(&sim, "sts", method.as_str(), &uri, &headers, &body) {
        let code = match e.name {
            "InvalidSignatureException" => "SignatureDoesNotMatch",
            "MissingAuthenticationTokenException" => "MissingAuthenticationToken",
            "UnrecognizedClientException" => "InvalidClientTokenId",
            other => other,
        };
        return error(StatusCode::FORBIDDEN, code, &e.message);
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let get = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
    if get("Action") != Some("AssumeRole") {
        return error(
            StatusCode::BAD_REQUEST,
            "InvalidAction",
            "Could not find operation for the request.",
        );
    }
    let Some(role_arn) = get("RoleArn").filter(|r| r.starts_with("arn:aws:iam::")) else {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "1 validation error detected: Value at 'roleArn' failed to satisfy constraint",
        );
    };
    if get("RoleSessionName").is_none_or(str::is_empty) {
        return error(
            StatusCode::BAD_REQUEST,
            "ValidationError",
            "RoleSessionName is required",
        );
    }
    if sim
        .config
        .sts_external_id
        .as_deref()
        .is_some_and(|want| get("ExternalId") != Some(want))
    {
        return error(
            StatusCode::FORBIDDEN,
            "AccessDenied",
            &format!("User is not authorized to perform: sts:AssumeRole on resource: {role_arn}"),
        );
    }
    issue(&sim, role_arn, get("RoleSessionName").unwrap_or_default())
}

fn issue(sim: &Sim, role_arn: &str, session_name: &str) -> Response {
    let access_key_id = format!("ASIA{}", ids::alnum(16).to_ascii_uppercase());
    let secret = ids::alnum(40);
    let token = format!("IQoJb3JpZ2luX2VjE{}", ids::alnum(120));
    let expires_at = SystemTime::now() + sim.config.sts_credentials_ttl;
    let expiration = OffsetDateTime::from(expires_at)
        .replace_nanosecond(0)
        .ok()
        .and_then(|t| t.format(&Rfc3339).ok())
        .unwrap_or_default();
    sim.cloud.add_aws_session(
        access_key_id.clone(),
        AwsSession {
            secret: secret.clone(),
            token: token.clone(),
            expires_at,
        },
    );
    let role_name = role_arn.rsplit('/').next().unwrap_or_default();
    let account = role_arn.split(':').nth(4).unwrap_or_default();
    let body = format!(
        "<AssumeRoleResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\n  <AssumeRoleResult>\n    \
         <AssumedRoleUser>\n      <AssumedRoleId>AROA{id}:{session}</AssumedRoleId>\n      \
         <Arn>arn:aws:sts::{account}:assumed-role/{role}/{session}</Arn>\n    </AssumedRoleUser>\n    \
         <Credentials>\n      <AccessKeyId>{access_key_id}</AccessKeyId>\n      \
         <SecretAccessKey>{secret}</SecretAccessKey>\n      <SessionToken>{token}</SessionToken>\n      \
         <Expiration>{expiration}</Expiration>\n    </Credentials>\n  </AssumeRoleResult>\n  \
         <ResponseMetadata>\n    <RequestId>{request}</RequestId>\n  </ResponseMetadata>\n</AssumeRoleResponse>\n",
        id = ids::alnum(16).to_ascii_uppercase(),
        session = escape(session_name),
        role = escape(role_name),
        account = escape(account),
        request = ids::uuid(),
    );
    xml(StatusCode::OK, body)
}
