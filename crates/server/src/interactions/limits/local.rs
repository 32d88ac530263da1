//! The counters in this process (SQLite: one node). Every call is decided under one lock;
//! a reservation dies with the process that holds it, so no lease is needed here.

use std::collections::{HashMap, VecDeque};
use std::sync::{Mutex, PoisonError};

use switchboard_core::OrgId;
use switchboard_store::{LimitAsk, LimitCounts, LimitDecision, LimitHeld, LimitKind, ManagedUsage};

use super::{HOUR_MS, LimitFuture, LimitStore};

/// One admitted request in the rolling hour.
#[derive(Debug)]
struct Slot {
    id: String,
    at_ms: i64,
    tokens: u64,
    settled: bool,
}

#[derive(Debug, Default)]
struct OrgUsage {
    window: VecDeque<Slot>,
    month: String,
    monthly: u64,
}

impl OrgUsage {
    /// Forgets requests older than an hour and a finished month.
    fn roll(&mut self, now_ms: i64, month: &str) {
        while self
            .window
            .front()
            .is_some_and(|slot| slot.at_ms + HOUR_MS <= now_ms)
        {
            self.window.pop_front();
        }
        if self.month != month {
            month.clone_into(&mut self.month);
            self.monthly = 0;
        }
    }

    fn counts(&self) -> LimitCounts {
        LimitCounts {
            requests: u64::try_from(self.window.len()).unwrap_or(u64::MAX),
            tokens: self.window.iter().map(|s| s.tokens).sum(),
            oldest_ms: self.window.front().map(|s| s.at_ms),
            monthly: self.monthly,
        }
    }

    fn decide(&mut self, ask: &LimitAsk) -> LimitDecision {
        let counts = self.counts();
        if counts.monthly >= ask.max.monthly_invocations {
            return LimitDecision::Refused(LimitKind::Monthly, counts);
        }
        if counts.requests >= ask.max.requests_per_hour
            || counts.tokens.saturating_add(ask.tokens) > ask.max.tokens_per_hour
        {
            return LimitDecision::Refused(LimitKind::Hourly, counts);
        }
        self.window.push_back(Slot {
            id: ask.held.id.clone(),
            at_ms: ask.held.at_ms,
            tokens: ask.tokens,
            settled: false,
        });
        self.monthly += 1;
        LimitDecision::Granted(self.counts())
    }
}

/// Every organization that used the managed provider since this process started.
#[derive(Debug, Default)]
pub struct LocalLimits {
    orgs: Mutex<HashMap<OrgId, OrgUsage>>,
}

impl LocalLimits {
    fn with_org<T>(
        &self,
        org: OrgId,
        now_ms: i64,
        month: &str,
        f: impl FnOnce(&mut OrgUsage) -> T,
    ) -> T {
        // A poisoned lock only means a panic elsewhere; the counters are still consistent.
        let mut orgs = self.orgs.lock().unwrap_or_else(PoisonError::into_inner);
        let usage = orgs.entry(org).or_default();
        usage.roll(now_ms, month);
        f(usage)
    }

    /// The organization's usage without rolling it to another month.
    fn with_existing<T>(&self, org: OrgId, f: impl FnOnce(&mut OrgUsage) -> T) -> Option<T> {
        let mut orgs = self.orgs.lock().unwrap_or_else(PoisonError::into_inner);
        orgs.get_mut(&org).map(f)
    }
}

impl LimitStore for LocalLimits {
    fn reserve<'a>(&'a self, ask: &'a LimitAsk) -> LimitFuture<'a, LimitDecision> {
        let held = &ask.held;
        let decision = self.with_org(held.org, held.at_ms, &held.month, |u| u.decide(ask));
        Box::pin(async move { Ok(decision) })
    }

    fn settle<'a>(&'a self, held: &'a LimitHeld, tokens: u64, _now_ms: i64) -> LimitFuture<'a, ()> {
        self.with_existing(held.org, |usage| {
            if let Some(slot) = usage.window.iter_mut().find(|s| s.id == held.id) {
                slot.tokens = tokens;
                slot.settled = true;
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn refund<'a>(&'a self, held: &'a LimitHeld) -> LimitFuture<'a, ()> {
        self.with_existing(held.org, |usage| {
            let before = usage.window.len();
            usage.window.retain(|s| s.settled || s.id != held.id);
            if usage.window.len() < before && usage.month == held.month {
                usage.monthly = usage.monthly.saturating_sub(1);
            }
        });
        Box::pin(async { Ok(()) })
    }

    fn counts<'a>(
        &'a self,
        org: OrgId,
        now_ms: i64,
        month: &'a str,
    ) -> LimitFuture<'a, LimitCounts> {
        let counts = self.with_org(org, now_ms, month, |usage| usage.counts());
        Box::pin(async move { Ok(counts) })
    }

    /// The hour's requests are counted as if made now, which errs on the safe side.
    fn restore<'a>(
        &'a self,
        month: &'a [ManagedUsage],
        hour: &'a [ManagedUsage],
        now_ms: i64,
        month_key: &'a str,
    ) -> LimitFuture<'a, ()> {
        for usage in month {
            self.with_org(usage.org_id, now_ms, month_key, |counters| {
                counters.monthly = counters.monthly.max(usage.invocations);
            });
        }
        for usage in hour {
            self.with_org(usage.org_id, now_ms, month_key, |counters| {
                for n in 0..usage.invocations {
                    counters.window.push_back(Slot {
                        id: uuid::Uuid::now_v7().to_string(),
                        at_ms: now_ms,
                        tokens: if n == 0 { usage.tokens } else { 0 },
                        settled: true,
                    });
                }
            });
        }
        Box::pin(async { Ok(()) })
    }

    fn name(&self) -> &'static str {
        "in-process"
    }
}
