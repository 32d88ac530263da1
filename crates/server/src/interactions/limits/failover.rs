//! Redis first, the database's (or the process's) counters while Redis is unreachable.
//!
//! A failed or slow Redis call (past the Redis timeout) marks Redis down: that request and
//! every later one go straight to the fallback, so an outage costs one request at most the
//! timeout and the rest nothing. It is logged once; a probe pings Redis every second and,
//! once it answers, raises Redis's monthly counts to the stored records' and sends traffic
//! back (logged once). Taking over, the fallback's monthly counts are raised the same way;
//! the hourly counts start from what each store already holds, so across an outage an
//! organization may use up to one extra hour's limits — never N times them.
//!
//! Every call goes to the store in service at that moment: a reservation admitted by one
//! and settled by the other is charged where it is settled (the settle of an unknown
//! reservation charges it), and the first one's copy is released by its lease.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use switchboard_core::OrgId;
use switchboard_core::records::Timestamp;
use switchboard_store::{LimitAsk, LimitCounts, LimitDecision, LimitHeld, ManagedUsage, Store};
use time::OffsetDateTime;

use super::redis::RedisLimits;
use super::{LimitFuture, LimitStore, LimitStoreError, month_of, month_start, unix_ms};

const PROBE_EVERY: Duration = Duration::from_secs(1);

pub struct Failover {
    inner: Arc<Inner>,
}

struct Inner {
    redis: RedisLimits,
    fallback: Arc<dyn LimitStore>,
    /// The invocation records, to seed monthly counts when a store takes over.
    records: Arc<dyn Store>,
    down: AtomicBool,
}

impl Failover {
    pub fn new(redis: RedisLimits, fallback: Arc<dyn LimitStore>, records: Arc<dyn Store>) -> Self {
        Self {
            inner: Arc::new(Inner {
                redis,
                fallback,
                records,
                down: AtomicBool::new(false),
            }),
        }
    }

    /// Whether Redis is in service now.
    pub fn redis_up(&self) -> bool {
        !self.inner.down.load(Ordering::Acquire)
    }

    /// Runs `call` on Redis while it is up; on its failure, marks it down and runs `call` on
    /// the fallback.
    async fn route<'a, T>(
        &'a self,
        call: impl Fn(&'a dyn LimitStore) -> LimitFuture<'a, T>,
    ) -> Result<T, LimitStoreError> {
        if self.redis_up() {
            match call(&self.inner.redis).await {
                Ok(answer) => return Ok(answer),
                Err(error) => self.outage(&error),
            }
        }
        call(self.inner.fallback.as_ref()).await
    }

    /// The first failure of an outage: logged once, the fallback seeded, the probe started.
    fn outage(&self, error: &LimitStoreError) {
        if self.inner.down.swap(true, Ordering::AcqRel) {
            return;
        }
        tracing::error!(
            %error,
            fallback = self.inner.fallback.name(),
            "redis is unreachable; managed-provider limits use the fallback counters until it answers"
        );
        let inner = self.inner.clone();
        tokio::spawn(async move {
            seed_from_records(inner.fallback.as_ref(), inner.records.as_ref()).await;
            inner.probe_until_back().await;
        });
    }
}

impl Inner {
    async fn probe_until_back(&self) {
        loop {
            tokio::time::sleep(PROBE_EVERY).await;
            if self.redis.ping().await.is_ok() {
                seed_from_records(&self.redis, self.records.as_ref()).await;
                self.down.store(false, Ordering::Release);
                tracing::info!("redis answers again; managed-provider limits use it");
                return;
            }
        }
    }
}

/// Raises `target`'s monthly counts to the records' (best effort: logged on failure).
async fn seed_from_records(target: &dyn LimitStore, records: &dyn Store) {
    let now = OffsetDateTime::now_utc();
    let since = Timestamp::from_datetime(month_start(now));
    let result = match records.managed_usage(since).await {
        Ok(month) => {
            target
                .restore(&month, &[], unix_ms(now), &month_of(now))
                .await
        }
        Err(error) => Err(error.into()),
    };
    if let Err(error) = result {
        tracing::warn!(%error, store = target.name(), "cannot seed monthly counts from the records");
    }
}

impl LimitStore for Failover {
    fn reserve<'a>(&'a self, ask: &'a LimitAsk) -> LimitFuture<'a, LimitDecision> {
        Box::pin(self.route(move |store| store.reserve(ask)))
    }

    fn settle<'a>(&'a self, held: &'a LimitHeld, tokens: u64, now_ms: i64) -> LimitFuture<'a, ()> {
        Box::pin(self.route(move |store| store.settle(held, tokens, now_ms)))
    }

    fn refund<'a>(&'a self, held: &'a LimitHeld) -> LimitFuture<'a, ()> {
        Box::pin(self.route(move |store| store.refund(held)))
    }

    fn counts<'a>(
        &'a self,
        org: OrgId,
        now_ms: i64,
        month: &'a str,
    ) -> LimitFuture<'a, LimitCounts> {
        Box::pin(self.route(move |store| store.counts(org, now_ms, month)))
    }

    fn restore<'a>(
        &'a self,
        month: &'a [ManagedUsage],
        hour: &'a [ManagedUsage],
        now_ms: i64,
        month_key: &'a str,
    ) -> LimitFuture<'a, ()> {
        Box::pin(self.route(move |store| store.restore(month, hour, now_ms, month_key)))
    }

    fn name(&self) -> &'static str {
        if self.redis_up() {
            "redis"
        } else {
            self.inner.fallback.name()
        }
    }
}
