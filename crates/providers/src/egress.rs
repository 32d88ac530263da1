//! The one outbound HTTP client. Every upstream call, connection test and model listing goes
//! through it, so the egress policy cannot be skipped by a code path that forgot it.
//!
//! Layers of defence, each closing a hole the others leave:
//! - the URL is checked before every request (scheme, userinfo, IP literals, internal
//!   names), or once for a [`PreparedTarget`] that is then reused unchanged — reqwest
//!   never consults a resolver for IP literals;
//! - host names resolve through [`PolicyResolver`], which refuses the whole name if any
//!   address is blocked, so the connection goes only to addresses that were checked
//!   (no second resolution for DNS rebinding to exploit);
//! - redirects are never followed and proxies from the environment are ignored;
//! - connect, response-head ("first byte") and idle timeouts bound every call.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};
use switchboard_core::egress::{EgressError, EgressPolicy};

use crate::target::UpstreamTarget;

/// Timeouts of outbound calls.
#[derive(Clone, Copy, Debug)]
pub struct Timeouts {
    pub connect: Duration,
    /// Until the response head arrives.
    pub first_byte: Duration,
    /// Between two body reads.
    pub idle: Duration,
    /// A whole non-streaming exchange.
    pub total: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Self {
            connect: Duration::from_secs(10),
            first_byte: Duration::from_secs(120),
            idle: Duration::from_secs(120),
            total: Duration::from_secs(600),
        }
    }
}

/// Why an outbound call did not produce a response.
#[derive(Debug, thiserror::Error)]
pub enum EgressFailure {
    #[error("the upstream address is not allowed: {0}")]
    Blocked(#[from] EgressError),
    #[error("the upstream did not answer in time")]
    Timeout,
    #[error("the upstream could not be reached")]
    Unreachable,
}

/// The shared outbound client. Cheap to clone.
#[derive(Clone)]
pub struct EgressClient {
    client: reqwest::Client,
    policy: Arc<EgressPolicy>,
    timeouts: Timeouts,
}

/// Turns a host name into addresses: the system resolver in production; a test replaces
/// it ([`EgressClient::with_lookup`]) to play a rebinding DNS server. Whatever it answers,
/// every address still passes the policy before anything is dialled.
pub trait NameLookup: Send + Sync + 'static {
    fn lookup(&self, host: &str) -> Resolving;
}

/// The operating system's resolver.
struct SystemLookup;

impl NameLookup for SystemLookup {
    fn lookup(&self, host: &str) -> Resolving {
        let host = host.to_owned();
        Box::pin(async move {
            let addrs: Vec<SocketAddr> =
                tokio::net::lookup_host((host.as_str(), 0)).await?.collect();
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}

impl EgressClient {
    pub fn new(policy: EgressPolicy, timeouts: Timeouts) -> Result<Self, reqwest::Error> {
        Self::with_lookup(policy, timeouts, Arc::new(SystemLookup))
    }

    /// A client whose host names resolve through `lookup` (the security tests' rebinding
    /// resolver); the policy applies to its answers exactly as to the system resolver's.
    pub fn with_lookup(
        policy: EgressPolicy,
        timeouts: Timeouts,
        lookup: Arc<dyn NameLookup>,
    ) -> Result<Self, reqwest::Error> {
        let policy = Arc::new(policy);
        let client = reqwest::Client::builder()
            .dns_resolver(PolicyResolver {
                policy: policy.clone(),
                lookup,
            })
            .redirect(reqwest::redirect::Policy::none())
            .no_proxy()
            .connect_timeout(timeouts.connect)
            .read_timeout(timeouts.idle)
            .tcp_nodelay(true)
            .pool_idle_timeout(Duration::from_secs(90))
            .pool_max_idle_per_host(256)
            .http2_adaptive_window(true)
            .http2_keep_alive_interval(Duration::from_secs(30))
            .http2_keep_alive_while_idle(true)
            .build()?;
        Ok(Self {
            client,
            policy,
            timeouts,
        })
    }

    pub fn policy(&self) -> &EgressPolicy {
        &self.policy
    }

    pub fn timeouts(&self) -> Timeouts {
        self.timeouts
    }

    /// Starts a request after checking its URL against the policy.
    pub fn request(
        &self,
        method: reqwest::Method,
        url: &str,
    ) -> Result<reqwest::RequestBuilder, EgressFailure> {
        let url = self.policy.check_url(url)?;
        Ok(self.client.request(method, url))
    }

    /// Checks a target's URLs once, so requests to it can skip the per-request parse and
    /// check ([`Self::request_to`]). The target is immutable afterwards, so the check stays
    /// valid for as long as it is kept; resolved addresses are still checked at connect.
    pub fn prepare(&self, target: UpstreamTarget) -> Result<PreparedTarget, EgressFailure> {
        let url = self.policy.check_url(&target.url)?;
        let stream_url = if target.stream_url == target.url {
            url.clone()
        } else {
            self.policy.check_url(&target.stream_url)?
        };
        Ok(PreparedTarget {
            target,
            url,
            stream_url,
        })
    }

    /// Starts a request to a target checked by [`Self::prepare`].
    pub fn request_to(
        &self,
        method: reqwest::Method,
        target: &PreparedTarget,
        stream: bool,
    ) -> reqwest::RequestBuilder {
        let url = if stream {
            &target.stream_url
        } else {
            &target.url
        };
        self.client.request(method, url.clone())
    }

    /// Sends and waits for the response head, bounded by the first-byte timeout.
    pub async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<reqwest::Response, EgressFailure> {
        match tokio::time::timeout(self.timeouts.first_byte, request.send()).await {
            Err(_) => Err(EgressFailure::Timeout),
            Ok(Ok(response)) => Ok(response),
            Ok(Err(error)) => Err(classify(&error)),
        }
    }
}

/// An [`UpstreamTarget`] whose URLs passed the egress policy, parsed once. The request
/// path keeps these per organization snapshot, so a request neither rebuilds the target
/// (nor decrypts its secret) nor re-parses and re-checks its URL.
#[derive(Clone, Debug)]
pub struct PreparedTarget {
    pub target: UpstreamTarget,
    url: reqwest::Url,
    stream_url: reqwest::Url,
}

/// Maps a reqwest failure to what callers may learn: a blocked address is reported as such
/// (the operator can allow it); anything else is "unreachable" or "timeout", without the
/// upstream's host or error text.
fn classify(error: &reqwest::Error) -> EgressFailure {
    if let Some(blocked) = find_egress_error(error) {
        return EgressFailure::Blocked(blocked);
    }
    if error.is_timeout() {
        return EgressFailure::Timeout;
    }
    tracing::debug!(error = %error, "upstream request failed");
    EgressFailure::Unreachable
}

fn find_egress_error(error: &reqwest::Error) -> Option<EgressError> {
    let mut source: Option<&(dyn std::error::Error + 'static)> = std::error::Error::source(error);
    while let Some(current) = source {
        if let Some(found) = current.downcast_ref::<EgressError>() {
            return Some(found.clone());
        }
        source = current.source();
    }
    None
}

/// Resolves through the lookup (the system resolver), then refuses the name unless every
/// address passes the policy; reqwest then connects only to these vetted addresses — one
/// resolution per connection, so a rebinding answer is judged before it is used.
struct PolicyResolver {
    policy: Arc<EgressPolicy>,
    lookup: Arc<dyn NameLookup>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let policy = self.policy.clone();
        let lookup = self.lookup.clone();
        Box::pin(async move {
            let host = name.as_str().to_owned();
            policy.check_name(&host)?;
            let addrs: Vec<SocketAddr> = lookup.lookup(&host).await?.collect();
            for addr in &addrs {
                policy.check_ip(&host, addr.ip())?;
            }
            let addrs: Addrs = Box::new(addrs.into_iter());
            Ok(addrs)
        })
    }
}
