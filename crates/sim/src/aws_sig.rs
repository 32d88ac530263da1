//! SigV4 verification as AWS does it: parse `Authorization`, find the secret for its access
//! key, rebuild the signature from the request as received (the signed headers exactly as
//! listed, the path as sent, the body) with `aws-sigv4`, and compare.
//!
//! Keys: credentials issued by the simulated STS are always known (their session token must
//! be sent and signed); otherwise, with `aws_access_key_id`/`aws_secret_access_key`
//! configured, only that key verifies; without configured keys any well-formed signature is
//! accepted (there is no secret to check it against).

use std::time::{Duration, SystemTime};

use aws_credential_types::Credentials;
use aws_sigv4::http_request::{
    SessionTokenMode, SignableBody, SignableRequest, SigningSettings, sign,
};
use aws_sigv4::sign::v4;
use aws_smithy_runtime_api::client::identity::Identity;
use http::{HeaderMap, Uri};
use time::PrimitiveDateTime;
use time::macros::format_description;

use crate::Sim;
use crate::auth::header;

/// Largest accepted difference between `X-Amz-Date` and the simulator's clock.
const MAX_SKEW: Duration = Duration::from_secs(300);

/// Why a request is refused, in AWS's terms: the exception name and its message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SigError {
    pub name: &'static str,
    pub message: String,
}

impl SigError {
    fn new(name: &'static str, message: impl Into<String>) -> Self {
        Self {
            name,
            message: message.into(),
        }
    }

    fn mismatch() -> Self {
        Self::new(
            "InvalidSignatureException",
            "The request signature we calculated does not match the signature you provided. \
             Check your AWS Secret Access Key and signing method. Consult the service \
             documentation for details.",
        )
    }
}

/// The parts of an `Authorization: AWS4-HMAC-SHA256 …` header.
struct Authorization<'a> {
    access_key_id: &'a str,
    date: &'a str,
    region: &'a str,
    service: &'a str,
    signed_headers: Vec<&'a str>,
    signature: &'a str,
}

fn parse_authorization(value: &str) -> Option<Authorization<'_>> {
    let rest = value.strip_prefix("AWS4-HMAC-SHA256 ")?;
    let (mut credential, mut signed, mut signature) = (None, None, None);
    for item in rest.split(',') {
        let (k, v) = item.trim().split_once('=')?;
        match k {
            "Credential" => credential = Some(v),
            "SignedHeaders" => signed = Some(v),
            "Signature" => signature = Some(v),
            _ => return None,
        }
    }
    let scope: Vec<&str> = credential?.split('/').collect();
    let [access_key_id, date, region, service, "aws4_request"] = scope[..] else {
        return None;
    };
    let signature = signature?;
    let hex = signature.len() == 64 && signature.bytes().all(|b| b.is_ascii_hexdigit());
    hex.then(|| Authorization {
        access_key_id,
        date,
        region,
        service,
        signed_headers: signed.unwrap_or_default().split(';').collect(),
        signature,
    })
}

fn parse_amz_date(value: &str) -> Option<SystemTime> {
    let format = format_description!("[year][month][day]T[hour][minute][second]Z");
    let t = PrimitiveDateTime::parse(value, &format).ok()?.assume_utc();
    Some(SystemTime::from(t))
}

/// The secret (and required session token) for an access key, or `None` to accept any
/// well-formed signature.
fn secret_for(
    sim: &Sim,
    access_key_id: &str,
) -> Result<Option<(String, Option<String>)>, SigError> {
    if let Some(issued) = sim.cloud.aws_session(access_key_id) {
        if issued.expires_at < SystemTime::now() {
            return Err(SigError::new(
                "ExpiredTokenException",
                "The security token included in the request is expired",
            ));
        }
        return Ok(Some((issued.secret, Some(issued.token))));
    }
    match (
        &sim.config.aws_access_key_id,
        &sim.config.aws_secret_access_key,
    ) {
        (Some(id), Some(secret)) if id == access_key_id => Ok(Some((secret.clone(), None))),
        (Some(_), Some(_)) => Err(SigError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        )),
        _ => Ok(None),
    }
}

/// Verifies the request's SigV4 signature for `service`. `uri` is the request target as
/// received (path still percent-encoded).
pub(crate) fn verify(
    sim: &Sim,
    service: &str,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<(), SigError> {
    let Some(value) = header(headers, "authorization") else {
        return Err(SigError::new(
            "MissingAuthenticationTokenException",
            "Missing Authentication Token",
        ));
    };
    let auth = parse_authorization(value).ok_or_else(|| {
        SigError::new(
            "IncompleteSignatureException",
            "Authorization header requires 'Credential', 'Signature' and 'SignedHeaders'",
        )
    })?;
    let amz_date = header(headers, "x-amz-date").unwrap_or_default();
    let time = parse_amz_date(amz_date).ok_or_else(|| {
        SigError::new(
            "IncompleteSignatureException",
            "X-Amz-Date is missing or invalid",
        )
    })?;
    check_scope(&auth, amz_date, service, time)?;
    for required in ["host", "x-amz-date"] {
        if !auth.signed_headers.contains(&required) {
            return Err(SigError::mismatch());
        }
    }
    let Some((secret, token)) = secret_for(sim, auth.access_key_id)? else {
        return Ok(());
    };
    let sent_token = header(headers, "x-amz-security-token");
    if token.is_some()
        && (token.as_deref() != sent_token
            || !auth.signed_headers.contains(&"x-amz-security-token"))
    {
        return Err(SigError::new(
            "UnrecognizedClientException",
            "The security token included in the request is invalid.",
        ));
    }
    let expected = recompute(&auth, &secret, sent_token, time, method, uri, headers, body)?;
    if expected == auth.signature {
        Ok(())
    } else {
        Err(SigError::mismatch())
    }
}

/// The scope's service and date must match the request; the region is not checked (the
/// simulator serves every region).
fn check_scope(
    auth: &Authorization<'_>,
    amz_date: &str,
    service: &str,
    time: SystemTime,
) -> Result<(), SigError> {
    if auth.service != service || !amz_date.starts_with(auth.date) {
        return Err(SigError::new(
            "InvalidSignatureException",
            format!("Credential should be scoped to correct service: '{service}'."),
        ));
    }
    let now = SystemTime::now();
    let skew = match now.duration_since(time) {
        Ok(d) => d,
        Err(e) => e.duration(),
    };
    if skew > MAX_SKEW {
        return Err(SigError::new(
            "InvalidSignatureException",
            "Signature expired: the request time is more than 5 minutes away from the current time.",
        ));
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn recompute(
    auth: &Authorization<'_>,
    secret: &str,
    token: Option<&str>,
    time: SystemTime,
    method: &str,
    uri: &Uri,
    headers: &HeaderMap,
    body: &[u8],
) -> Result<String, SigError> {
    let token_signed = auth.signed_headers.contains(&"x-amz-security-token");
    let identity: Identity = Credentials::new(
        auth.access_key_id,
        secret,
        token.filter(|_| token_signed).map(str::to_owned),
        None,
        "sim",
    )
    .into();
    let mut settings = SigningSettings::default();
    // Sign exactly what the client listed, nothing more and nothing less.
    settings.excluded_headers = None;
    settings.session_token_mode = if token_signed {
        SessionTokenMode::Include
    } else {
        SessionTokenMode::Exclude
    };
    let params = v4::SigningParams::builder()
        .identity(&identity)
        .region(auth.region)
        .name(auth.service)
        .time(time)
        .settings(settings)
        .build()
        .map_err(|_| SigError::mismatch())?
        .into();
    let mut pairs = Vec::new();
    for name in &auth.signed_headers {
        if matches!(*name, "x-amz-date" | "x-amz-security-token") {
            continue;
        }
        for value in headers.get_all(*name) {
            pairs.push((*name, value.to_str().map_err(|_| SigError::mismatch())?));
        }
    }
    let host = header(headers, "host").ok_or_else(SigError::mismatch)?;
    let url = format!(
        "http://{host}{}",
        uri.path_and_query().map_or("/", |p| p.as_str())
    );
    let request = SignableRequest::new(method, url, pairs.into_iter(), SignableBody::Bytes(body))
        .map_err(|_| SigError::mismatch())?;
    let (_, signature) = sign(request, &params)
        .map_err(|_| SigError::mismatch())?
        .into_parts();
    Ok(signature)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn authorization_header_parses_and_rejects_junk() {
        let a = parse_authorization(
            "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders=host;x-amz-date, Signature=5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31",
        )
        .unwrap();
        assert_eq!(
            (a.access_key_id, a.region, a.service),
            ("AKIDEXAMPLE", "us-east-1", "service")
        );
        assert_eq!(a.signed_headers, ["host", "x-amz-date"]);
        assert!(parse_authorization("Bearer x").is_none());
        assert!(
            parse_authorization(
                "AWS4-HMAC-SHA256 Credential=a/b/c/d/aws4_request, SignedHeaders=host, Signature=zz"
            )
            .is_none()
        );
        assert!(parse_amz_date("20150830T123600Z").is_some());
    }
}
