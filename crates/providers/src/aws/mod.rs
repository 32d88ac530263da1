//! AWS request signing (SigV4 through the `aws-sigv4` crate) and temporary credentials
//! from STS `AssumeRole`, without the AWS SDK (see the rust-stack reference, section 6).

mod sigv4;
mod sts;

pub use sigv4::{SigningError, sign_request};
pub use sts::{AssumeRole, StsError, assume_role, parse_assume_role_response};

use std::fmt;
use std::time::SystemTime;

use switchboard_core::SecretValue;

/// Environment variable with the platform's base access key id (signs STS AssumeRole).
pub const ENV_ACCESS_KEY_ID: &str = "SWITCHBOARD_AWS_ACCESS_KEY_ID";
/// Environment variable with the platform's base secret access key.
pub const ENV_SECRET_ACCESS_KEY: &str = "SWITCHBOARD_AWS_SECRET_ACCESS_KEY";
/// Environment variable with the platform's base session token, if its keys are temporary.
pub const ENV_SESSION_TOKEN: &str = "SWITCHBOARD_AWS_SESSION_TOKEN";

/// A set of AWS credentials. The secret and the session token are [`SecretValue`]s; the
/// access key id is an identifier (it appears in every `Authorization` header) but is kept
/// out of `Debug` all the same.
#[derive(Clone, PartialEq, Eq)]
pub struct AwsKeys {
    /// `AKIA…` (long-term) or `ASIA…` (temporary).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretValue,
    /// The session token of temporary credentials.
    pub session_token: Option<SecretValue>,
    /// When temporary credentials stop working.
    pub expires_at: Option<SystemTime>,
}

impl AwsKeys {
    /// Long-term keys.
    pub fn new(access_key_id: impl Into<String>, secret_access_key: SecretValue) -> Self {
        Self {
            access_key_id: access_key_id.into(),
            secret_access_key,
            session_token: None,
            expires_at: None,
        }
    }

    /// The platform's base credentials from [`ENV_ACCESS_KEY_ID`], [`ENV_SECRET_ACCESS_KEY`]
    /// and (optional) [`ENV_SESSION_TOKEN`], read through `var` so callers choose the source
    /// (process environment, config file). Empty values count as unset; `None` unless both
    /// the key id and the secret are set.
    pub fn from_vars(var: impl Fn(&str) -> Option<String>) -> Option<Self> {
        let get = |name: &str| var(name).filter(|v| !v.trim().is_empty());
        let mut keys = Self::new(
            get(ENV_ACCESS_KEY_ID)?.trim(),
            SecretValue::new(get(ENV_SECRET_ACCESS_KEY)?),
        );
        keys.session_token = get(ENV_SESSION_TOKEN).map(SecretValue::new);
        Some(keys)
    }
}

impl fmt::Debug for AwsKeys {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("AwsKeys")
            .field("access_key_id", &"[redacted]")
            .field("session_token", &self.session_token.is_some())
            .field("expires_at", &self.expires_at)
            .finish_non_exhaustive()
    }
}
