//! The managed provider's limits per organization: requests and tokens per rolling hour,
//! and invocations per UTC calendar month.
//!
//! Admission reserves before the upstream is called (one request, an estimate of the
//! tokens, one monthly unit) in one atomic step of a [`LimitStore`], so concurrent requests
//! can never together pass a limit; when the call ends the reservation is settled with the
//! tokens really used. Where the counters live is the store's business:
//!
//! - [`local::LocalLimits`]: this process (SQLite, one node), restored from the stored
//!   records at start;
//! - [`shared::SqlLimits`]: PostgreSQL rows shared by every replica;
//! - [`redis::RedisLimits`]: Redis (`SWITCHBOARD_REDIS_URL`), behind [`failover::Failover`],
//!   which falls back to one of the others while Redis is unreachable.
//!
//! Every store keeps the rolling hour exactly (each admitted request with its millisecond)
//! and gives running reservations a lease, so a request whose process died stops counting
//! once its lease has passed.

pub mod failover;
pub mod local;
pub mod redis;
pub mod shared;

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use serde::Serialize;
use switchboard_core::OrgId;
use switchboard_store::{
    LimitAsk, LimitCounts, LimitDecision, LimitHeld, LimitKind, LimitMax, ManagedUsage, StoreError,
};
use time::OffsetDateTime;

pub(crate) const HOUR_MS: i64 = 3_600_000;

/// Operator settings (`SWITCHBOARD_MANAGED_*`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitSettings {
    pub requests_per_hour: u64,
    pub tokens_per_hour: u64,
    pub monthly_invocations: u64,
}

impl Default for LimitSettings {
    /// The reference's numbers (port-llm-providers §6.5).
    fn default() -> Self {
        Self {
            requests_per_hour: 1_000,
            tokens_per_hour: 800_000,
            monthly_invocations: 500,
        }
    }
}

impl LimitSettings {
    fn max(self) -> LimitMax {
        LimitMax {
            requests_per_hour: self.requests_per_hour,
            tokens_per_hour: self.tokens_per_hour,
            monthly_invocations: self.monthly_invocations,
        }
    }
}

/// Where the counters live and how long a running reservation holds.
#[derive(Clone)]
pub struct LimitStoreSettings {
    /// `SWITCHBOARD_REDIS_URL`: the counters in Redis.
    pub redis_url: Option<String>,
    /// The longest a Redis call may take before PostgreSQL (or the process) takes over.
    pub redis_timeout: Duration,
    /// A reservation not settled within this is released (its process died).
    pub lease: Duration,
}

/// The Redis URL may carry a password: never printed.
impl std::fmt::Debug for LimitStoreSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("LimitStoreSettings")
            .field("redis_url", &self.redis_url.as_ref().map(|_| "<set>"))
            .field("redis_timeout", &self.redis_timeout)
            .field("lease", &self.lease)
            .finish()
    }
}

impl Default for LimitStoreSettings {
    fn default() -> Self {
        Self {
            redis_url: None,
            redis_timeout: Duration::from_millis(250),
            lease: Duration::from_secs(600),
        }
    }
}

/// Why a managed call was refused.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum LimitError {
    #[error("Rate limit exceeded")]
    RateLimited { retry_after_secs: u64 },
    #[error("Monthly quota exceeded")]
    QuotaExceeded {
        retry_after_secs: u64,
        /// The first instant of the next month, RFC 3339.
        reset_date: String,
    },
    /// The counters could not be reached in time (the caller retries shortly).
    #[error("the usage limits cannot be checked right now")]
    Unavailable,
}

/// Why a limit store call failed.
#[derive(Debug, thiserror::Error)]
pub enum LimitStoreError {
    #[error("limit counters: {0}")]
    Store(#[from] StoreError),
    #[error("redis: {0}")]
    Redis(#[from] ::redis::RedisError),
    #[error("redis did not answer within {0:?}")]
    Timeout(Duration),
    #[error("unexpected reply from redis: {0}")]
    Reply(String),
}

pub type LimitFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, LimitStoreError>> + Send + 'a>>;

/// Atomic reserve / settle / refund keyed by reservation id, wherever the counters live.
pub trait LimitStore: Send + Sync {
    /// Admits or refuses in one atomic step (releasing expired leases first).
    fn reserve<'a>(&'a self, ask: &'a LimitAsk) -> LimitFuture<'a, LimitDecision>;
    /// Replaces the reservation's estimate with `tokens` and ends its lease; one already
    /// released by its lease is charged again while inside the hour.
    fn settle<'a>(&'a self, held: &'a LimitHeld, tokens: u64, now_ms: i64) -> LimitFuture<'a, ()>;
    /// Takes back a reservation still running, as if it had never been admitted.
    fn refund<'a>(&'a self, held: &'a LimitHeld) -> LimitFuture<'a, ()>;
    fn counts<'a>(
        &'a self,
        org: OrgId,
        now_ms: i64,
        month: &'a str,
    ) -> LimitFuture<'a, LimitCounts>;
    /// At start (and when taking over from another store): the managed usage stored in
    /// the records since the month began (`month`) and in the last hour (`hour`). Shared
    /// stores raise monthly counts to the records' (they keep the hour themselves); the
    /// in-process store seeds both.
    fn restore<'a>(
        &'a self,
        month: &'a [ManagedUsage],
        hour: &'a [ManagedUsage],
        now_ms: i64,
        month_key: &'a str,
    ) -> LimitFuture<'a, ()>;
    /// `in-process`, `postgres` or `redis` (for logs).
    fn name(&self) -> &'static str;
}

/// A granted admission, to settle when the call ends.
#[derive(Clone, Debug)]
pub struct Reservation {
    held: LimitHeld,
}

/// `rateLimitUsage` of the `done` event.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct RateLimitUsage {
    pub max_requests: u64,
    pub remaining_requests: u64,
    pub max_tokens: u64,
    pub remaining_tokens: u64,
    /// Until the oldest counted request leaves the rolling hour (0 when none is counted).
    pub remaining_time_ms: u64,
}

/// `monthlyQuotaUsage` of the `done` event and `GET /v1/quota/ai-invocations`.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "camelCase")]
pub struct MonthlyQuotaUsage {
    pub monthly_limit: u64,
    pub remaining_quota: u64,
    /// `YYYY-MM` (UTC).
    pub month: String,
    /// Until the month ends.
    pub remaining_time_ms: u64,
}

/// The limits as the request path sees them: the operator's numbers over a store.
pub struct Limits {
    settings: LimitSettings,
    lease: Duration,
    store: Arc<dyn LimitStore>,
}

impl Limits {
    pub fn new(settings: LimitSettings, lease: Duration, store: Arc<dyn LimitStore>) -> Self {
        Self {
            settings,
            lease,
            store,
        }
    }

    pub fn settings(&self) -> LimitSettings {
        self.settings
    }

    pub fn store(&self) -> &Arc<dyn LimitStore> {
        &self.store
    }

    /// Reserves one request, `estimated_tokens` and one monthly unit, or says which limit
    /// refuses and for how long.
    pub async fn admit(
        &self,
        org: OrgId,
        estimated_tokens: u64,
        now: OffsetDateTime,
    ) -> Result<Reservation, LimitError> {
        let ask = LimitAsk {
            held: LimitHeld {
                org,
                id: uuid::Uuid::now_v7().to_string(),
                at_ms: unix_ms(now),
                month: month_of(now),
            },
            tokens: estimated_tokens,
            lease_ms: i64::try_from(self.lease.as_millis()).unwrap_or(i64::MAX),
            max: self.settings.max(),
        };
        let decision = self.store.reserve(&ask).await.map_err(|error| {
            tracing::warn!(%error, "cannot reserve against the managed-provider limits");
            LimitError::Unavailable
        })?;
        match decision {
            LimitDecision::Granted(_) => Ok(Reservation { held: ask.held }),
            LimitDecision::Refused(LimitKind::Monthly, _) => {
                let reset = next_month(now);
                Err(LimitError::QuotaExceeded {
                    retry_after_secs: seconds_until(now, reset),
                    reset_date: switchboard_core::records::Timestamp::from_datetime(reset)
                        .to_string(),
                })
            }
            LimitDecision::Refused(LimitKind::Hourly, counts) => {
                let wait_ms = window_reset_ms(&counts, now).max(1);
                Err(LimitError::RateLimited {
                    retry_after_secs: wait_ms.div_ceil(1000),
                })
            }
        }
    }

    /// Replaces a reservation's estimate with the tokens the call really used.
    pub async fn settle(&self, reservation: &Reservation, tokens: u64, now: OffsetDateTime) {
        if let Err(error) = self
            .store
            .settle(&reservation.held, tokens, unix_ms(now))
            .await
        {
            // The lease releases it; the request is then not charged (logged, rare).
            tracing::warn!(%error, "cannot settle a managed-provider reservation");
        }
    }

    /// The organization's usage now, for the `done` event and the quota route.
    pub async fn usage(
        &self,
        org: OrgId,
        now: OffsetDateTime,
    ) -> Result<(RateLimitUsage, MonthlyQuotaUsage), LimitStoreError> {
        let month = month_of(now);
        let counts = self.store.counts(org, unix_ms(now), &month).await?;
        let settings = self.settings;
        let rate = RateLimitUsage {
            max_requests: settings.requests_per_hour,
            remaining_requests: settings.requests_per_hour.saturating_sub(counts.requests),
            max_tokens: settings.tokens_per_hour,
            remaining_tokens: settings.tokens_per_hour.saturating_sub(counts.tokens),
            remaining_time_ms: window_reset_ms(&counts, now),
        };
        let monthly = MonthlyQuotaUsage {
            monthly_limit: settings.monthly_invocations,
            remaining_quota: settings.monthly_invocations.saturating_sub(counts.monthly),
            month,
            remaining_time_ms: seconds_until(now, next_month(now)).saturating_mul(1000),
        };
        Ok((rate, monthly))
    }
}

/// Milliseconds until the oldest counted request leaves the hour.
fn window_reset_ms(counts: &LimitCounts, now: OffsetDateTime) -> u64 {
    counts.oldest_ms.map_or(0, |oldest| {
        u64::try_from(oldest + HOUR_MS - unix_ms(now)).unwrap_or(0)
    })
}

pub(crate) fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

pub(crate) fn month_of(at: OffsetDateTime) -> String {
    format!("{:04}-{:02}", at.year(), u8::from(at.month()))
}

/// The first instant of the UTC month after `at`'s.
pub fn next_month(at: OffsetDateTime) -> OffsetDateTime {
    let (year, month) = match at.month() {
        time::Month::December => (at.year() + 1, time::Month::January),
        month => (at.year(), month.next()),
    };
    time::Date::from_calendar_date(year, month, 1)
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(at)
}

/// The first instant of `at`'s UTC month.
pub fn month_start(at: OffsetDateTime) -> OffsetDateTime {
    time::Date::from_calendar_date(at.year(), at.month(), 1)
        .map(|d| d.midnight().assume_utc())
        .unwrap_or(at)
}

/// Whole seconds from `now` to `then`, rounded up, at least 1.
fn seconds_until(now: OffsetDateTime, then: OffsetDateTime) -> u64 {
    let ms = (then - now).whole_milliseconds().max(1);
    u64::try_from(ms).unwrap_or(u64::MAX).div_ceil(1000)
}

/// Picks the store: Redis (falling back to the database's or the process's counters)
/// when configured, else PostgreSQL's shared counters, else this process's.
pub fn open_store(
    settings: &LimitStoreSettings,
    store: Arc<dyn switchboard_store::Store>,
) -> Result<Arc<dyn LimitStore>, LimitStoreError> {
    let fallback: Arc<dyn LimitStore> = if store.shares_limits() {
        Arc::new(shared::SqlLimits::new(store.clone()))
    } else {
        Arc::new(local::LocalLimits::default())
    };
    match &settings.redis_url {
        None => Ok(fallback),
        Some(url) => {
            let redis = redis::RedisLimits::open(url, settings.redis_timeout, settings.lease)?;
            Ok(Arc::new(failover::Failover::new(redis, fallback, store)))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn limits(requests: u64, tokens: u64, monthly: u64) -> Limits {
        let settings = LimitSettings {
            requests_per_hour: requests,
            tokens_per_hour: tokens,
            monthly_invocations: monthly,
        };
        let store = Arc::new(local::LocalLimits::default());
        Limits::new(settings, Duration::from_secs(600), store)
    }

    #[tokio::test]
    async fn requests_roll_out_of_the_hour() {
        let l = limits(2, 1_000, 100);
        let org = OrgId::new();
        let t0 = datetime!(2026-03-10 12:00 UTC);
        l.admit(org, 1, t0).await.unwrap();
        l.admit(org, 1, t0 + time::Duration::minutes(30))
            .await
            .unwrap();
        let refused = l.admit(org, 1, t0 + time::Duration::minutes(31)).await;
        assert_eq!(
            refused.unwrap_err(),
            LimitError::RateLimited {
                retry_after_secs: 29 * 60
            }
        );
        l.admit(org, 1, t0 + time::Duration::minutes(60))
            .await
            .unwrap();
        // Other organizations are unaffected.
        l.admit(OrgId::new(), 1, t0 + time::Duration::minutes(31))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn tokens_are_reserved_then_settled() {
        let l = limits(100, 100, 100);
        let org = OrgId::new();
        let t0 = datetime!(2026-03-10 12:00 UTC);
        let first = l.admit(org, 60, t0).await.unwrap();
        assert!(l.admit(org, 60, t0).await.is_err());
        l.settle(&first, 10, t0).await;
        l.admit(org, 60, t0).await.unwrap();
        assert_eq!(l.usage(org, t0).await.unwrap().0.remaining_tokens, 30);
    }

    #[tokio::test]
    async fn the_monthly_quota_resets_with_the_month() {
        let l = limits(100, 1_000, 2);
        let org = OrgId::new();
        let t0 = datetime!(2026-12-31 23:00 UTC);
        l.admit(org, 1, t0).await.unwrap();
        l.admit(org, 1, t0).await.unwrap();
        match l.admit(org, 1, t0).await.unwrap_err() {
            LimitError::QuotaExceeded {
                retry_after_secs,
                reset_date,
            } => {
                assert_eq!(retry_after_secs, 3600);
                assert_eq!(reset_date, "2027-01-01T00:00:00.000Z");
            }
            other => panic!("{other:?}"),
        }
        let (_, monthly) = l.usage(org, t0).await.unwrap();
        assert_eq!(
            (monthly.remaining_quota, monthly.month.as_str()),
            (0, "2026-12")
        );
        l.admit(org, 1, datetime!(2027-01-01 00:00 UTC))
            .await
            .unwrap();
    }

    #[tokio::test]
    async fn restored_usage_counts() {
        let l = limits(3, 1_000, 5);
        let org = OrgId::new();
        let now = datetime!(2026-03-10 12:00 UTC);
        let usage = |n| switchboard_store::ManagedUsage {
            org_id: org,
            invocations: n,
            tokens: 40,
        };
        l.store()
            .restore(&[usage(4)], &[usage(2)], unix_ms(now), &month_of(now))
            .await
            .unwrap();
        let (rate, monthly) = l.usage(org, now).await.unwrap();
        assert_eq!((monthly.remaining_quota, rate.remaining_requests), (1, 1));
        l.admit(org, 1, now).await.unwrap();
        assert!(l.admit(org, 1, now).await.is_err());
    }
}

/// One scenario every store must pass the same way (the PostgreSQL rows pass it in the
/// store's suite, `shared_limit_counters`): concurrent admissions never pass a limit together,
/// a settle replaces the estimate, a refund takes a running reservation back, the hour rolls
/// and the month is seeded without ever being lowered; stores with leases release the
/// unsettled once their lease has passed.
#[cfg(test)]
mod conformance {
    use super::*;
    use switchboard_store::{LimitDecision, LimitKind};

    const T0: i64 = 1_773_000_000_000;
    const MONTH: &str = "2026-03";

    fn ask(org: OrgId, at_ms: i64, tokens: u64) -> LimitAsk {
        LimitAsk {
            held: LimitHeld {
                org,
                id: uuid::Uuid::now_v7().to_string(),
                at_ms,
                month: MONTH.into(),
            },
            tokens,
            lease_ms: 60_000,
            max: LimitMax {
                requests_per_hour: 20,
                tokens_per_hour: 10_000,
                monthly_invocations: 30,
            },
        }
    }

    async fn counts(store: &dyn LimitStore, org: OrgId, at: i64) -> (u64, u64, u64) {
        let c = store.counts(org, at, MONTH).await.unwrap();
        (c.requests, c.tokens, c.monthly)
    }

    pub(super) async fn check(store: Arc<dyn LimitStore>, leases: bool) {
        let org = OrgId::new();
        let mut racing = tokio::task::JoinSet::new();
        for _ in 0..64 {
            let (store, ask) = (store.clone(), ask(org, T0, 100));
            racing.spawn(async move { (store.reserve(&ask).await.unwrap(), ask.held) });
        }
        let mut admitted = Vec::new();
        while let Some(joined) = racing.join_next().await {
            let (decision, held) = joined.unwrap();
            if matches!(decision, LimitDecision::Granted(_)) {
                admitted.push(held);
            }
        }
        assert_eq!(admitted.len(), 20, "exactly the hourly request limit");
        assert_eq!(counts(store.as_ref(), org, T0).await, (20, 2_000, 20));
        store.settle(&admitted[0], 7, T0).await.unwrap();
        store.refund(&admitted[1]).await.unwrap();
        store.refund(&admitted[0]).await.unwrap(); // settled: not refundable
        assert_eq!(counts(store.as_ref(), org, T0).await, (19, 1_807, 19));

        let later = T0 + 61_000;
        if leases {
            // The 18 unsettled are released by the next admission.
            let next_ask = ask(org, later, 5);
            let next = store.reserve(&next_ask).await.unwrap();
            assert!(
                matches!(next, LimitDecision::Granted(c) if (c.requests, c.tokens, c.monthly) == (2, 12, 2)),
                "{next:?}"
            );
            // Released while still running, then settled: charged again.
            store.settle(&admitted[2], 50, later).await.unwrap();
            store.settle(&next_ask.held, 5, later).await.unwrap();
            assert_eq!(counts(store.as_ref(), org, later).await, (3, 62, 3));
        }
        // The hour rolls; the month does not.
        let next_hour = T0 + 3_600_001;
        let (requests, _, monthly) = counts(store.as_ref(), org, next_hour).await;
        assert_eq!(requests, u64::from(leases));
        let seed = |n| ManagedUsage {
            org_id: org,
            invocations: n,
            tokens: 0,
        };
        store
            .restore(&[seed(29)], &[], next_hour, MONTH)
            .await
            .unwrap();
        store
            .restore(&[seed(2)], &[], next_hour, MONTH)
            .await
            .unwrap();
        assert_eq!(
            counts(store.as_ref(), org, next_hour).await.2,
            29.max(monthly)
        );
        let other = OrgId::new();
        let big = store.reserve(&ask(other, T0, 10_001)).await.unwrap();
        assert!(matches!(big, LimitDecision::Refused(LimitKind::Hourly, _)));
    }

    #[tokio::test]
    async fn in_process() {
        check(Arc::new(local::LocalLimits::default()), false).await;
    }

    /// Against a `redis-server` of the test's own (skipped when none is installed, unless
    /// `SWITCHBOARD_REQUIRE_REDIS=1`).
    #[tokio::test]
    async fn redis() {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .port();
        let child = std::process::Command::new("redis-server")
            .args(["--port", &port.to_string(), "--bind", "127.0.0.1"])
            .args(["--save", "", "--appendonly", "no"])
            .stdout(std::process::Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            assert!(
                std::env::var("SWITCHBOARD_REQUIRE_REDIS").as_deref() != Ok("1"),
                "SWITCHBOARD_REQUIRE_REDIS=1 but redis-server is not installed"
            );
            eprintln!("skipping: redis-server is not installed");
            return;
        };
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let url = format!("redis://127.0.0.1:{port}/");
        let store = redis::RedisLimits::open(&url, Duration::from_secs(2), Duration::from_secs(60));
        check(Arc::new(store.unwrap()), true).await;
        let _ = child.kill();
        let _ = child.wait();
    }
}
