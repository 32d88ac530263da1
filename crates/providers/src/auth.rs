//! Per-request upstream authentication that cannot be a static header: SigV4 signing
//! (Bedrock) and OAuth access tokens (Vertex service accounts), with the credentials they
//! need cached in a [`CredentialCache`] the server keeps for its lifetime.
//!
//! Caching rules: temporary credentials (STS AssumeRole, Google access tokens) are reused
//! until [`REFRESH_MARGIN`] before they expire (or half their lifetime, if that is shorter);
//! a refresh is single-flight: concurrent callers of one credential wait for the one
//! exchange in progress instead of each starting their own. Entries are keyed by a
//! SHA-256 over everything that identifies the credential, secret material included, so
//! two provider configurations share an entry only when they hold the same secrets.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use aws_lc_rs::digest;
use http::{HeaderMap, HeaderValue, Method};
use switchboard_core::SecretValue;

use crate::aws::{self, AssumeRole, AwsKeys};
use crate::egress::EgressClient;
use crate::google::{self, ServiceAccount};
use crate::target::UpstreamTarget;

/// Refresh temporary credentials this long before they expire.
pub const REFRESH_MARGIN: Duration = Duration::from_secs(300);
/// Above this many entries, expired ones are dropped when a new one is added.
const PRUNE_ABOVE: usize = 1024;
/// After a failed exchange, callers within this window get the same failure instead of
/// each retrying it in turn (a hanging STS would otherwise cost every waiter a timeout).
const FAILURE_HOLD: Duration = Duration::from_secs(5);

/// What must be done to each request besides sending the target's static headers.
#[derive(Clone, Debug, Default)]
pub enum UpstreamAuth {
    /// Nothing: the target's headers carry the credentials (API keys).
    #[default]
    Static,
    /// Sign with SigV4 (Bedrock).
    SigV4(SigV4Auth),
    /// Send `Authorization: Bearer <token>` from a service account (Vertex).
    GoogleServiceAccount(ServiceAccount),
}

/// SigV4 signing for one provider configuration.
#[derive(Clone, Debug)]
pub struct SigV4Auth {
    /// Signing region.
    pub region: String,
    /// Signing name (`bedrock`).
    pub service: &'static str,
    /// Where the keys come from.
    pub credentials: AwsCredentialSource,
}

/// Where SigV4 keys come from.
#[derive(Clone, Debug)]
pub enum AwsCredentialSource {
    /// The organization's own access keys.
    Static(AwsKeys),
    /// Temporary keys from STS AssumeRole, signed with the platform's base credentials.
    AssumeRole(AssumeRole),
}

/// Why a request could not be authorized. Messages are safe to show the organization's
/// administrators (they name the exchange that failed, never a credential).
#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    #[error("assuming the Bedrock role failed: {0}")]
    Sts(#[from] aws::StsError),
    #[error("getting a Google access token failed: {0}")]
    GoogleToken(#[from] google::TokenError),
    #[error(transparent)]
    Signing(#[from] aws::SigningError),
    /// The failure of an exchange another request just attempted, shared.
    #[error(transparent)]
    Recent(Arc<AuthError>),
}

impl AuthError {
    /// Whether the failure is the upstream's or the network's (retry later), rather than
    /// the configuration's.
    pub fn is_transient(&self) -> bool {
        match self {
            Self::Recent(inner) => inner.is_transient(),
            Self::Sts(aws::StsError::Egress(_))
            | Self::GoogleToken(google::TokenError::Egress(_)) => true,
            Self::Sts(aws::StsError::Refused { status, .. })
            | Self::GoogleToken(google::TokenError::Refused { status, .. }) => {
                *status == 429 || *status >= 500
            }
            _ => false,
        }
    }
}

/// A credential obtained by an exchange, with its expiry.
#[derive(Clone)]
enum Cached {
    Aws(AwsKeys),
    Google(google::AccessToken),
}

impl Cached {
    fn expires_at(&self) -> Option<SystemTime> {
        match self {
            Self::Aws(keys) => keys.expires_at,
            Self::Google(token) => Some(token.expires_at),
        }
    }
}

struct Entry {
    value: Option<Cached>,
    obtained_at: SystemTime,
    /// The last failed exchange, held for [`FAILURE_HOLD`].
    failure: Option<(SystemTime, Arc<AuthError>)>,
}

impl Entry {
    fn fresh(&self, now: SystemTime, margin: Duration) -> Option<&Cached> {
        let value = self.value.as_ref()?;
        let Some(expires) = value.expires_at() else {
            return Some(value);
        };
        let lifetime = expires.duration_since(self.obtained_at).unwrap_or_default();
        let margin = margin.min(lifetime / 2);
        (now + margin < expires).then_some(value)
    }
}

type Slot = Arc<tokio::sync::Mutex<Entry>>;

/// Long-lived cache of exchanged credentials; cheap to clone (shared state).
#[derive(Clone)]
pub struct CredentialCache {
    slots: Arc<Mutex<HashMap<[u8; 32], Slot>>>,
    margin: Duration,
}

impl Default for CredentialCache {
    fn default() -> Self {
        Self::new()
    }
}

impl CredentialCache {
    /// An empty cache refreshing [`REFRESH_MARGIN`] before expiry.
    pub fn new() -> Self {
        Self::with_refresh_margin(REFRESH_MARGIN)
    }

    /// An empty cache with another refresh margin (tests use it to force refreshes).
    pub fn with_refresh_margin(margin: Duration) -> Self {
        Self {
            slots: Arc::default(),
            margin,
        }
    }

    /// Number of credentials held.
    pub fn len(&self) -> usize {
        self.slots.lock().map(|s| s.len()).unwrap_or_default()
    }

    /// Whether nothing is held.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    fn slot(&self, key: [u8; 32]) -> Slot {
        let mut slots = match self.slots.lock() {
            Ok(slots) => slots,
            Err(poisoned) => poisoned.into_inner(),
        };
        if !slots.contains_key(&key) && slots.len() >= PRUNE_ABOVE {
            let now = SystemTime::now();
            slots.retain(|_, slot| {
                slot.try_lock()
                    .map(|e| e.fresh(now, Duration::ZERO).is_some())
                    .unwrap_or(true)
            });
        }
        slots
            .entry(key)
            .or_insert_with(|| {
                Arc::new(tokio::sync::Mutex::new(Entry {
                    value: None,
                    obtained_at: SystemTime::UNIX_EPOCH,
                    failure: None,
                }))
            })
            .clone()
    }

    /// The cached credential for `key`, or the result of `fetch`, run by one caller at a
    /// time per key; the others wait and reuse what it obtained (or, for
    /// [`FAILURE_HOLD`], how it failed).
    async fn get_or_fetch<F, Fut>(&self, key: [u8; 32], fetch: F) -> Result<Cached, AuthError>
    where
        F: FnOnce() -> Fut,
        Fut: std::future::Future<Output = Result<Cached, AuthError>>,
    {
        let slot = self.slot(key);
        let mut entry = slot.lock().await;
        let now = SystemTime::now();
        if let Some(value) = entry.fresh(now, self.margin) {
            return Ok(value.clone());
        }
        if let Some((at, error)) = &entry.failure
            && now.duration_since(*at).unwrap_or_default() < FAILURE_HOLD
        {
            return Err(AuthError::Recent(error.clone()));
        }
        match fetch().await {
            Ok(value) => {
                entry.value = Some(value.clone());
                entry.obtained_at = now;
                entry.failure = None;
                Ok(value)
            }
            Err(error) => {
                let error = Arc::new(error);
                entry.failure = Some((SystemTime::now(), error.clone()));
                Err(AuthError::Recent(error))
            }
        }
    }

    /// SigV4 keys for `source`: static keys as they are, assumed-role keys from the cache
    /// or from STS.
    pub async fn aws_keys(
        &self,
        source: &AwsCredentialSource,
        egress: &EgressClient,
    ) -> Result<AwsKeys, AuthError> {
        let role = match source {
            AwsCredentialSource::Static(keys) => return Ok(keys.clone()),
            AwsCredentialSource::AssumeRole(role) => role,
        };
        let key = cache_key(&[
            b"sts",
            role.role_arn.as_bytes(),
            role.endpoint.as_bytes(),
            role.region.as_bytes(),
            secret_bytes(role.external_id.as_ref()),
            role.base.access_key_id.as_bytes(),
            role.base.secret_access_key.expose().as_bytes(),
        ]);
        let cached = self
            .get_or_fetch(key, || async {
                Ok(Cached::Aws(aws::assume_role(egress, role).await?))
            })
            .await?;
        match cached {
            Cached::Aws(keys) => Ok(keys),
            Cached::Google(_) => unreachable!("sts keys are never google tokens"),
        }
    }

    /// An access token for `account`, from the cache or the token endpoint.
    pub async fn google_token(
        &self,
        account: &ServiceAccount,
        egress: &EgressClient,
    ) -> Result<SecretValue, AuthError> {
        let key = cache_key(&[
            b"google",
            account.client_email.as_bytes(),
            account.token_url.as_bytes(),
            account.private_key.expose().as_bytes(),
        ]);
        let cached = self
            .get_or_fetch(key, || async {
                Ok(Cached::Google(google::fetch_token(egress, account).await?))
            })
            .await?;
        match cached {
            Cached::Google(token) => Ok(token.token),
            Cached::Aws(_) => unreachable!("google tokens are never sts keys"),
        }
    }
}

fn secret_bytes(secret: Option<&SecretValue>) -> &[u8] {
    secret.map_or(&[], |s| s.expose().as_bytes())
}

/// SHA-256 over length-prefixed parts (so part boundaries cannot be shifted).
fn cache_key(parts: &[&[u8]]) -> [u8; 32] {
    let mut ctx = digest::Context::new(&digest::SHA256);
    for part in parts {
        ctx.update(&(part.len() as u64).to_be_bytes());
        ctx.update(part);
    }
    let mut key = [0u8; 32];
    key.copy_from_slice(ctx.finish().as_ref());
    key
}

/// Authorizes one request to `target`: fetches or reuses credentials (every exchange goes
/// through `egress`), then signs (`SigV4`: `headers` must already hold every header to be
/// sent, `content-type` included, and `url`/`body` must be exactly what is sent) or adds
/// the bearer token. `Static` targets need nothing. Call it once per attempt: a retried
/// request needs a fresh signature.
pub async fn authorize(
    target: &UpstreamTarget,
    egress: &EgressClient,
    cache: &CredentialCache,
    method: &Method,
    url: &str,
    headers: &mut HeaderMap,
    body: &[u8],
) -> Result<(), AuthError> {
    match &target.auth {
        UpstreamAuth::Static => Ok(()),
        UpstreamAuth::SigV4(sig) => {
            let keys = cache.aws_keys(&sig.credentials, egress).await?;
            aws::sign_request(
                &keys,
                &sig.region,
                sig.service,
                SystemTime::now(),
                method.as_str(),
                url,
                headers,
                body,
            )?;
            Ok(())
        }
        UpstreamAuth::GoogleServiceAccount(account) => {
            let token = cache.google_token(account, egress).await?;
            let mut value = HeaderValue::from_str(&format!("Bearer {}", token.expose()))
                .map_err(|_| google::TokenError::Malformed)?;
            value.set_sensitive(true);
            headers.insert(http::header::AUTHORIZATION, value);
            Ok(())
        }
    }
}
