//! The managed provider's limits per organization: requests and tokens per rolling hour,
//! and invocations per UTC calendar month.
//!
//! Admission reserves before the upstream is called (one request, an estimate of the
//! tokens, one monthly unit) under one lock, so concurrent requests can never together pass
//! a limit; when the call ends the reservation is reconciled with the tokens really used.
//! Counters live in this process: with several replicas each enforces the limits on its own
//! (documented). Monthly counts survive restarts: they are restored from stored records.

use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use serde::Serialize;
use switchboard_core::OrgId;
use time::OffsetDateTime;

const HOUR_MS: i64 = 3_600_000;

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
}

/// A granted admission, to reconcile when the call ends.
#[derive(Debug)]
pub struct Reservation {
    org: OrgId,
    slot: u64,
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

/// One admitted request in the rolling hour.
#[derive(Debug)]
struct Slot {
    id: u64,
    at_ms: i64,
    tokens: u64,
}

#[derive(Debug, Default)]
struct OrgUsage {
    window: VecDeque<Slot>,
    month: String,
    monthly: u64,
}

impl OrgUsage {
    /// Forgets requests older than an hour and a finished month.
    fn roll(&mut self, now: OffsetDateTime) {
        let now_ms = unix_ms(now);
        while self
            .window
            .front()
            .is_some_and(|slot| slot.at_ms + HOUR_MS <= now_ms)
        {
            self.window.pop_front();
        }
        let month = month_of(now);
        if self.month != month {
            self.month = month;
            self.monthly = 0;
        }
    }

    fn tokens(&self) -> u64 {
        self.window.iter().map(|s| s.tokens).sum()
    }

    /// Milliseconds until the oldest slot leaves the window.
    fn window_reset_ms(&self, now: OffsetDateTime) -> u64 {
        self.window.front().map_or(0, |slot| {
            u64::try_from(slot.at_ms + HOUR_MS - unix_ms(now)).unwrap_or(0)
        })
    }
}

/// The counters of every organization that used the managed provider.
#[derive(Debug, Default)]
pub struct Limits {
    settings: LimitSettings,
    orgs: Mutex<HashMap<OrgId, OrgUsage>>,
    next_slot: AtomicU64,
}

impl Limits {
    pub fn new(settings: LimitSettings) -> Self {
        Self {
            settings,
            ..Self::default()
        }
    }

    pub fn settings(&self) -> LimitSettings {
        self.settings
    }

    fn with_org<T>(
        &self,
        org: OrgId,
        now: OffsetDateTime,
        f: impl FnOnce(&mut OrgUsage) -> T,
    ) -> T {
        // A poisoned lock only means a panic elsewhere; the counters are still consistent.
        let mut orgs = self
            .orgs
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        let usage = orgs.entry(org).or_default();
        usage.roll(now);
        f(usage)
    }

    /// Reserves one request, `estimated_tokens` and one monthly unit, or says which limit
    /// refuses and for how long.
    pub fn admit(
        &self,
        org: OrgId,
        estimated_tokens: u64,
        now: OffsetDateTime,
    ) -> Result<Reservation, LimitError> {
        let settings = self.settings;
        let slot = self.next_slot.fetch_add(1, Ordering::Relaxed);
        self.with_org(org, now, |usage| {
            if usage.monthly >= settings.monthly_invocations {
                let reset = next_month(now);
                return Err(LimitError::QuotaExceeded {
                    retry_after_secs: seconds_until(now, reset),
                    reset_date: switchboard_core::records::Timestamp::from_datetime(reset)
                        .to_string(),
                });
            }
            let full = u64::try_from(usage.window.len()).unwrap_or(u64::MAX)
                >= settings.requests_per_hour
                || usage.tokens().saturating_add(estimated_tokens) > settings.tokens_per_hour;
            if full {
                let wait_ms = usage.window_reset_ms(now).max(1);
                return Err(LimitError::RateLimited {
                    retry_after_secs: wait_ms.div_ceil(1000),
                });
            }
            usage.window.push_back(Slot {
                id: slot,
                at_ms: unix_ms(now),
                tokens: estimated_tokens,
            });
            usage.monthly += 1;
            Ok(Reservation { org, slot })
        })
    }

    /// Replaces a reservation's estimate with the tokens the call really used.
    pub fn reconcile(&self, reservation: &Reservation, tokens: u64, now: OffsetDateTime) {
        self.with_org(reservation.org, now, |usage| {
            if let Some(slot) = usage.window.iter_mut().find(|s| s.id == reservation.slot) {
                slot.tokens = tokens;
            }
        });
    }

    /// Seeds counters from stored records after a restart: `month` is each organization's
    /// managed usage since the month began, `hour` since an hour ago (counted as if made
    /// now, which errs on the safe side).
    pub fn restore(
        &self,
        month: &[switchboard_store::ManagedUsage],
        hour: &[switchboard_store::ManagedUsage],
        now: OffsetDateTime,
    ) {
        for usage in month {
            self.with_org(usage.org_id, now, |counters| {
                counters.monthly = counters.monthly.max(usage.invocations);
            });
        }
        for usage in hour {
            self.with_org(usage.org_id, now, |counters| {
                for n in 0..usage.invocations {
                    let id = self.next_slot.fetch_add(1, Ordering::Relaxed);
                    let tokens = if n == 0 { usage.tokens } else { 0 };
                    counters.window.push_back(Slot {
                        id,
                        at_ms: unix_ms(now),
                        tokens,
                    });
                }
            });
        }
    }

    pub fn rate_usage(&self, org: OrgId, now: OffsetDateTime) -> RateLimitUsage {
        let settings = self.settings;
        self.with_org(org, now, |usage| {
            let used = u64::try_from(usage.window.len()).unwrap_or(u64::MAX);
            RateLimitUsage {
                max_requests: settings.requests_per_hour,
                remaining_requests: settings.requests_per_hour.saturating_sub(used),
                max_tokens: settings.tokens_per_hour,
                remaining_tokens: settings.tokens_per_hour.saturating_sub(usage.tokens()),
                remaining_time_ms: usage.window_reset_ms(now),
            }
        })
    }

    pub fn monthly_usage(&self, org: OrgId, now: OffsetDateTime) -> MonthlyQuotaUsage {
        let limit = self.settings.monthly_invocations;
        self.with_org(org, now, |usage| MonthlyQuotaUsage {
            monthly_limit: limit,
            remaining_quota: limit.saturating_sub(usage.monthly),
            month: usage.month.clone(),
            remaining_time_ms: seconds_until(now, next_month(now)).saturating_mul(1000),
        })
    }
}

fn unix_ms(at: OffsetDateTime) -> i64 {
    i64::try_from(at.unix_timestamp_nanos() / 1_000_000).unwrap_or(i64::MAX)
}

fn month_of(at: OffsetDateTime) -> String {
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

#[cfg(test)]
mod tests {
    use super::*;
    use time::macros::datetime;

    fn limits(requests: u64, tokens: u64, monthly: u64) -> Limits {
        Limits::new(LimitSettings {
            requests_per_hour: requests,
            tokens_per_hour: tokens,
            monthly_invocations: monthly,
        })
    }

    #[test]
    fn requests_roll_out_of_the_hour() {
        let l = limits(2, 1_000, 100);
        let org = OrgId::new();
        let t0 = datetime!(2026-03-10 12:00 UTC);
        l.admit(org, 1, t0).unwrap();
        l.admit(org, 1, t0 + time::Duration::minutes(30)).unwrap();
        let refused = l.admit(org, 1, t0 + time::Duration::minutes(31));
        assert_eq!(
            refused.unwrap_err(),
            LimitError::RateLimited {
                retry_after_secs: 29 * 60
            }
        );
        l.admit(org, 1, t0 + time::Duration::minutes(60)).unwrap();
        // Other organizations are unaffected.
        l.admit(OrgId::new(), 1, t0 + time::Duration::minutes(31))
            .unwrap();
    }

    #[test]
    fn tokens_are_reserved_then_reconciled() {
        let l = limits(100, 100, 100);
        let org = OrgId::new();
        let t0 = datetime!(2026-03-10 12:00 UTC);
        let first = l.admit(org, 60, t0).unwrap();
        assert!(l.admit(org, 60, t0).is_err());
        l.reconcile(&first, 10, t0);
        l.admit(org, 60, t0).unwrap();
        assert_eq!(l.rate_usage(org, t0).remaining_tokens, 30);
    }

    #[test]
    fn the_monthly_quota_resets_with_the_month() {
        let l = limits(100, 1_000, 2);
        let org = OrgId::new();
        let t0 = datetime!(2026-12-31 23:00 UTC);
        l.admit(org, 1, t0).unwrap();
        l.admit(org, 1, t0).unwrap();
        match l.admit(org, 1, t0).unwrap_err() {
            LimitError::QuotaExceeded {
                retry_after_secs,
                reset_date,
            } => {
                assert_eq!(retry_after_secs, 3600);
                assert_eq!(reset_date, "2027-01-01T00:00:00.000Z");
            }
            other => panic!("{other:?}"),
        }
        let usage = l.monthly_usage(org, t0);
        assert_eq!(
            (usage.remaining_quota, usage.month.as_str()),
            (0, "2026-12")
        );
        l.admit(org, 1, datetime!(2027-01-01 00:00 UTC)).unwrap();
    }

    #[test]
    fn restored_usage_counts() {
        let l = limits(3, 1_000, 5);
        let org = OrgId::new();
        let now = datetime!(2026-03-10 12:00 UTC);
        let usage = |n| switchboard_store::ManagedUsage {
            org_id: org,
            invocations: n,
            tokens: 40,
        };
        l.restore(&[usage(4)], &[usage(2)], now);
        assert_eq!(l.monthly_usage(org, now).remaining_quota, 1);
        assert_eq!(l.rate_usage(org, now).remaining_requests, 1);
        l.admit(org, 1, now).unwrap();
        assert!(l.admit(org, 1, now).is_err());
    }
}
