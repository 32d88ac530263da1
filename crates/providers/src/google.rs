//! Google service-account authentication: an RS256 JWT assertion (jsonwebtoken with the
//! aws-lc-rs backend) exchanged for an OAuth access token at the token endpoint, through
//! the egress client (see the provider reference, section 5.5).

use std::fmt;
use std::time::{Duration, SystemTime};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use serde::{Deserialize, Serialize};
use switchboard_core::SecretValue;

use crate::egress::{EgressClient, EgressFailure};

/// The scope Vertex AI needs.
pub const CLOUD_PLATFORM_SCOPE: &str = "https://www.googleapis.com/auth/cloud-platform";
/// Lifetime asked for in the assertion (Google's maximum).
const ASSERTION_LIFETIME: Duration = Duration::from_secs(3600);
/// Largest token answer read.
const MAX_BODY: usize = 64 * 1024;

/// A service account: who signs, with which key, and where tokens come from.
#[derive(Clone)]
pub struct ServiceAccount {
    /// `client_email` of the key JSON.
    pub client_email: String,
    /// `private_key` of the key JSON (PKCS#8 PEM), already normalized.
    pub private_key: SecretValue,
    /// The token endpoint (also the JWT audience).
    pub token_url: String,
}

impl ServiceAccount {
    /// Builds one from the secrets as stored: the key may have been pasted with literal
    /// `\n` sequences (as it appears inside the JSON key file) or with surrounding quotes.
    pub fn new(client_email: &str, private_key: &SecretValue, token_url: &str) -> Self {
        Self {
            client_email: client_email.trim().to_owned(),
            private_key: normalize_private_key(private_key),
            token_url: token_url.to_owned(),
        }
    }
}

impl fmt::Debug for ServiceAccount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ServiceAccount")
            .field("client_email", &self.client_email)
            .field("token_url", &self.token_url)
            .finish_non_exhaustive()
    }
}

/// Turns literal `\n` (and `\r\n`) sequences into newlines and strips JSON quotes.
pub fn normalize_private_key(key: &SecretValue) -> SecretValue {
    let trimmed = key.expose().trim().trim_matches('"');
    SecretValue::new(trimmed.replace("\\r\\n", "\n").replace("\\n", "\n"))
}

/// An access token and when to stop using it.
#[derive(Clone)]
pub struct AccessToken {
    pub token: SecretValue,
    pub expires_at: SystemTime,
}

/// Why no token could be had. Messages are safe to show the organization's administrators.
#[derive(Debug, thiserror::Error)]
pub enum TokenError {
    #[error("the service-account private key is not a PEM-encoded RSA private key")]
    InvalidPrivateKey,
    #[error("the token endpoint could not be reached: {0}")]
    Egress(#[from] EgressFailure),
    #[error("the token endpoint refused the service account (HTTP {status}): {error}")]
    Refused { status: u16, error: String },
    #[error("the token endpoint answered something that is not an access token")]
    Malformed,
}

#[derive(Serialize)]
struct Claims<'a> {
    iss: &'a str,
    scope: &'a str,
    aud: &'a str,
    iat: u64,
    exp: u64,
}

#[derive(Deserialize, Default)]
struct TokenAnswer {
    access_token: Option<String>,
    expires_in: Option<u64>,
    error: Option<String>,
    error_description: Option<String>,
}

/// The signed assertion for `account` issued at `now`.
pub fn assertion(account: &ServiceAccount, now: SystemTime) -> Result<String, TokenError> {
    let key = EncodingKey::from_rsa_pem(account.private_key.expose().as_bytes())
        .map_err(|_| TokenError::InvalidPrivateKey)?;
    let iat = now
        .duration_since(SystemTime::UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs();
    let claims = Claims {
        iss: &account.client_email,
        scope: CLOUD_PLATFORM_SCOPE,
        aud: &account.token_url,
        iat,
        exp: iat + ASSERTION_LIFETIME.as_secs(),
    };
    jsonwebtoken::encode(&Header::new(Algorithm::RS256), &claims, &key)
        .map_err(|_| TokenError::InvalidPrivateKey)
}

/// Exchanges a fresh assertion for an access token.
pub async fn fetch_token(
    egress: &EgressClient,
    account: &ServiceAccount,
) -> Result<AccessToken, TokenError> {
    let now = SystemTime::now();
    let jwt = assertion(account, now)?;
    let body = form_urlencoded::Serializer::new(String::new())
        .append_pair("grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer")
        .append_pair("assertion", &jwt)
        .finish();
    let request = egress
        .request(reqwest::Method::POST, &account.token_url)?
        .header(
            http::header::CONTENT_TYPE,
            "application/x-www-form-urlencoded",
        )
        .body(body);
    let response = egress.send(request).await?;
    let status = response.status().as_u16();
    let bytes = read_limited(response).await;
    let answer: TokenAnswer = match serde_json::from_slice(&bytes) {
        Ok(answer) => answer,
        Err(_) if status != 200 => TokenAnswer::default(),
        Err(_) => return Err(TokenError::Malformed),
    };
    match (status, answer.access_token) {
        (200, Some(token)) if !token.is_empty() => Ok(AccessToken {
            token: SecretValue::new(token),
            expires_at: now + Duration::from_secs(answer.expires_in.unwrap_or(3600)),
        }),
        (200, _) => Err(TokenError::Malformed),
        (status, _) => Err(TokenError::Refused {
            status,
            error: [answer.error, answer.error_description]
                .into_iter()
                .flatten()
                .collect::<Vec<_>>()
                .join(": ")
                .chars()
                .take(300)
                .collect(),
        }),
    }
}

async fn read_limited(response: reqwest::Response) -> Vec<u8> {
    use futures_util::StreamExt;
    let mut stream = response.bytes_stream();
    let mut body = Vec::new();
    while let Some(Ok(chunk)) = stream.next().await {
        body.extend_from_slice(&chunk[..chunk.len().min(MAX_BODY - body.len())]);
        if body.len() >= MAX_BODY {
            break;
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn literal_newlines_and_quotes_are_normalized() {
        let pasted = SecretValue::new("\"-----BEGIN K-----\\nMIIB\\n-----END K-----\\n\"".into());
        assert_eq!(
            normalize_private_key(&pasted).expose(),
            "-----BEGIN K-----\nMIIB\n-----END K-----\n"
        );
    }

    #[test]
    fn a_bad_key_is_a_typed_error_not_a_panic() {
        let account = ServiceAccount::new(
            "sa@p.iam.gserviceaccount.com",
            &SecretValue::new("nope".into()),
            "https://t",
        );
        assert!(matches!(
            assertion(&account, SystemTime::now()),
            Err(TokenError::InvalidPrivateKey)
        ));
    }
}
