//! The counters in PostgreSQL, shared by every replica (the store's `limit_*` calls: one
//! round trip each, decided under the organization's advisory lock).

use std::sync::Arc;

use switchboard_core::OrgId;
use switchboard_store::{LimitAsk, LimitCounts, LimitDecision, LimitHeld, ManagedUsage, Store};

use super::{LimitFuture, LimitStore};

pub struct SqlLimits {
    store: Arc<dyn Store>,
}

impl SqlLimits {
    pub fn new(store: Arc<dyn Store>) -> Self {
        Self { store }
    }
}

impl LimitStore for SqlLimits {
    fn reserve<'a>(&'a self, ask: &'a LimitAsk) -> LimitFuture<'a, LimitDecision> {
        Box::pin(async move { Ok(self.store.limit_reserve(ask).await?) })
    }

    fn settle<'a>(&'a self, held: &'a LimitHeld, tokens: u64, now_ms: i64) -> LimitFuture<'a, ()> {
        Box::pin(async move { Ok(self.store.limit_settle(held, tokens, now_ms).await?) })
    }

    fn refund<'a>(&'a self, held: &'a LimitHeld) -> LimitFuture<'a, ()> {
        Box::pin(async move { Ok(self.store.limit_refund(held).await?) })
    }

    fn counts<'a>(
        &'a self,
        org: OrgId,
        now_ms: i64,
        month: &'a str,
    ) -> LimitFuture<'a, LimitCounts> {
        Box::pin(async move { Ok(self.store.limit_counts(org, now_ms, month).await?) })
    }

    /// The rows outlive every replica: only the month is raised to the records' count (an
    /// upgrade from in-process counters, or taking over from Redis).
    fn restore<'a>(
        &'a self,
        month: &'a [ManagedUsage],
        _hour: &'a [ManagedUsage],
        _now_ms: i64,
        month_key: &'a str,
    ) -> LimitFuture<'a, ()> {
        Box::pin(async move { Ok(self.store.limit_seed_monthly(month, month_key).await?) })
    }

    fn name(&self) -> &'static str {
        "postgres"
    }
}
