//! Shared counters of the managed provider's limits (PostgreSQL): the data the server's
//! limit stores exchange, whichever holds the counters (PostgreSQL here, Redis or the
//! process in the server crate).
//!
//! The rolling hour is exact: every admitted request is kept with its millisecond until it
//! leaves the hour. A running request holds a lease; one whose process died is released
//! when its lease has passed.

use switchboard_core::OrgId;

/// The operator's limits per organization.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitMax {
    pub requests_per_hour: u64,
    pub tokens_per_hour: u64,
    pub monthly_invocations: u64,
}

/// One admission to decide.
#[derive(Clone, Debug)]
pub struct LimitAsk {
    pub held: LimitHeld,
    /// The token estimate reserved until the request settles.
    pub tokens: u64,
    /// How long the reservation holds without being settled.
    pub lease_ms: i64,
    pub max: LimitMax,
}

/// A reservation, as its settle or refund names it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LimitHeld {
    pub org: OrgId,
    /// Unique per reservation (a UUID).
    pub id: String,
    /// When it was admitted (Unix milliseconds).
    pub at_ms: i64,
    /// Its UTC month, `YYYY-MM`.
    pub month: String,
}

/// An organization's counts at one instant.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct LimitCounts {
    /// Requests in the rolling hour (running ones included).
    pub requests: u64,
    /// Their tokens: real usage for settled requests, the estimate for running ones.
    pub tokens: u64,
    /// The oldest request still in the hour (Unix milliseconds).
    pub oldest_ms: Option<i64>,
    /// Invocations this UTC month.
    pub monthly: u64,
}

/// Which limit refused.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitKind {
    /// Requests or tokens per rolling hour.
    Hourly,
    /// Invocations per month.
    Monthly,
}

/// The answer to a [`LimitAsk`], with the counts it was decided on (after the reservation
/// when granted).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum LimitDecision {
    Granted(LimitCounts),
    Refused(LimitKind, LimitCounts),
}
