//! The counters in Redis (`SWITCHBOARD_REDIS_URL`): one Lua script per operation, so every
//! decision is one atomic round trip (never check-then-increment), with the same exact
//! rolling hour and leases as PostgreSQL's (`redis.lua` describes the keys).
//!
//! The client is the `redis` crate's tokio `ConnectionManager`: one multiplexed connection
//! shared by every request, re-established in the background after a failure, with short
//! connect and response timeouts; each call is also bounded by the same timeout here, so a
//! stalled Redis costs a request at most that long before [`super::failover`] takes over.

use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use redis::{FromRedisValue, Script, ScriptInvocation};
use switchboard_core::OrgId;
use switchboard_store::{LimitAsk, LimitCounts, LimitDecision, LimitHeld, LimitKind, ManagedUsage};

use super::{LimitFuture, LimitStore, LimitStoreError};

const PRELUDE: &str = include_str!("redis.lua");

const RESERVE: &str = r"
local id, now, est, lease_ms = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local max_req, max_tok, max_month = tonumber(ARGV[5]), tonumber(ARGV[6]), tonumber(ARGV[7])
sweep(now, tonumber(ARGV[8]))
local requests, tokens, oldest, monthly = counts()
if monthly >= max_month then return {'monthly', requests, tokens, oldest, monthly} end
if requests >= max_req or tokens + est > max_tok then
  return {'hourly', requests, tokens, oldest, monthly}
end
redis.call('ZADD', win, now, id)
redis.call('HSET', tok, id, est)
redis.call('ZADD', lease, now + lease_ms, id)
redis.call('INCRBY', sum, est)
redis.call('INCR', month)
keep(lease_ms)
if oldest < 0 then oldest = now end
return {'granted', requests + 1, tokens + est, oldest, monthly + 1}
";

const SETTLE: &str = r"
local id, t, at, now = ARGV[1], tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])
local old = redis.call('HGET', tok, id)
if old then
  redis.call('HSET', tok, id, t)
  redis.call('INCRBY', sum, t - tonumber(old))
  redis.call('ZREM', lease, id)
elseif at > now - HOUR then
  -- Released by its lease while it still ran: charged again.
  redis.call('ZADD', win, at, id)
  redis.call('HSET', tok, id, t)
  redis.call('INCRBY', sum, t)
  redis.call('INCR', month)
end
keep(tonumber(ARGV[5]))
return 1
";

const REFUND: &str = r"
if redis.call('ZSCORE', lease, ARGV[1]) then
  forget(ARGV[1])
  uncount_month()
end
return 1
";

const COUNTS: &str = r"
sweep(tonumber(ARGV[1]), tonumber(ARGV[2]))
local requests, tokens, oldest, monthly = counts()
return {requests, tokens, oldest, monthly}
";

const SEED_MONTH: &str = r"
local seeded = tonumber(ARGV[1])
if tonumber(redis.call('GET', KEYS[1]) or '0') < seeded then
  redis.call('SET', KEYS[1], seeded, 'EX', 3456000)
end
return 1
";

/// The verdict, requests, tokens, oldest admission (-1: none) and monthly count.
type Reply = (String, i64, i64, i64, i64);

struct Scripts {
    reserve: Script,
    settle: Script,
    refund: Script,
    counts: Script,
    seed_month: Script,
}

impl Scripts {
    fn new() -> Self {
        let with_prelude = |body: &str| Script::new(&format!("{PRELUDE}\n{body}"));
        Self {
            reserve: with_prelude(RESERVE),
            settle: with_prelude(SETTLE),
            refund: with_prelude(REFUND),
            counts: with_prelude(COUNTS),
            seed_month: Script::new(SEED_MONTH),
        }
    }
}

pub struct RedisLimits {
    conn: ConnectionManager,
    timeout: Duration,
    scripts: Scripts,
    /// How long a reservation holds (the keys' lifetime follows it).
    lease_ms: i64,
}

impl RedisLimits {
    /// Connects lazily: a Redis that is down at start only means the fallback serves first.
    /// Call inside the tokio runtime.
    pub fn open(url: &str, timeout: Duration, lease: Duration) -> Result<Self, LimitStoreError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(timeout))
            .set_response_timeout(Some(timeout))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(1));
        Ok(Self {
            conn: ConnectionManager::new_lazy_with_config(client, config)?,
            timeout,
            scripts: Scripts::new(),
            lease_ms: i64::try_from(lease.as_millis()).unwrap_or(i64::MAX),
        })
    }

    /// Whether Redis answers now (the failover's recovery probe).
    pub async fn ping(&self) -> Result<(), LimitStoreError> {
        let mut conn = self.conn.clone();
        let command = redis::cmd("PING");
        let ping = command.query_async::<String>(&mut conn);
        match tokio::time::timeout(self.timeout, ping).await {
            Ok(reply) => reply.map(drop).map_err(Into::into),
            Err(_) => Err(LimitStoreError::Timeout(self.timeout)),
        }
    }

    async fn run<T: FromRedisValue>(
        &self,
        invocation: ScriptInvocation<'_>,
    ) -> Result<T, LimitStoreError> {
        let mut conn = self.conn.clone();
        match tokio::time::timeout(self.timeout, invocation.invoke_async(&mut conn)).await {
            Ok(reply) => reply.map_err(Into::into),
            Err(_) => Err(LimitStoreError::Timeout(self.timeout)),
        }
    }
}

/// The organization's keys (`sb:lim:{org}:…`; the braces are Redis Cluster's hash tag).
fn keys(org: OrgId, month: &str) -> [String; 5] {
    let prefix = format!("sb:lim:{{{org}}}");
    [
        format!("{prefix}:win"),
        format!("{prefix}:tok"),
        format!("{prefix}:lease"),
        format!("{prefix}:sum"),
        format!("{prefix}:m:{month}"),
    ]
}

/// The first millisecond of `month` (`YYYY-MM`), for the sweep: a released reservation
/// gives back its monthly unit only within its own month.
fn month_start_ms(month: &str) -> i64 {
    let parsed = month.split_once('-').and_then(|(year, month)| {
        let month = time::Month::try_from(month.parse::<u8>().ok()?).ok()?;
        time::Date::from_calendar_date(year.parse().ok()?, month, 1).ok()
    });
    parsed.map_or(0, |date| super::unix_ms(date.midnight().assume_utc()))
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn counts_of(requests: i64, tokens: i64, oldest: i64, monthly: i64) -> LimitCounts {
    LimitCounts {
        requests: unsigned(requests),
        tokens: unsigned(tokens),
        oldest_ms: (oldest >= 0).then_some(oldest),
        monthly: unsigned(monthly),
    }
}

fn decision(
    (verdict, requests, tokens, oldest, monthly): Reply,
) -> Result<LimitDecision, LimitStoreError> {
    let counts = counts_of(requests, tokens, oldest, monthly);
    match verdict.as_str() {
        "granted" => Ok(LimitDecision::Granted(counts)),
        "hourly" => Ok(LimitDecision::Refused(LimitKind::Hourly, counts)),
        "monthly" => Ok(LimitDecision::Refused(LimitKind::Monthly, counts)),
        other => Err(LimitStoreError::Reply(format!("verdict {other:?}"))),
    }
}

impl LimitStore for RedisLimits {
    fn reserve<'a>(&'a self, ask: &'a LimitAsk) -> LimitFuture<'a, LimitDecision> {
        Box::pin(async move {
            let held = &ask.held;
            let mut invocation = self.scripts.reserve.prepare_invoke();
            invocation
                .key(&keys(held.org, &held.month)[..])
                .arg(&held.id)
                .arg(held.at_ms)
                .arg(ask.tokens)
                .arg(ask.lease_ms)
                .arg(ask.max.requests_per_hour)
                .arg(ask.max.tokens_per_hour)
                .arg(ask.max.monthly_invocations)
                .arg(month_start_ms(&held.month));
            decision(self.run::<Reply>(invocation).await?)
        })
    }

    fn settle<'a>(&'a self, held: &'a LimitHeld, tokens: u64, now_ms: i64) -> LimitFuture<'a, ()> {
        Box::pin(async move {
            let mut invocation = self.scripts.settle.prepare_invoke();
            invocation
                .key(&keys(held.org, &held.month)[..])
                .arg(&held.id)
                .arg(tokens)
                .arg(held.at_ms)
                .arg(now_ms)
                .arg(self.lease_ms);
            self.run::<i64>(invocation).await.map(drop)
        })
    }

    fn refund<'a>(&'a self, held: &'a LimitHeld) -> LimitFuture<'a, ()> {
        Box::pin(async move {
            let mut invocation = self.scripts.refund.prepare_invoke();
            invocation
                .key(&keys(held.org, &held.month)[..])
                .arg(&held.id);
            self.run::<i64>(invocation).await.map(drop)
        })
    }

    fn counts<'a>(
        &'a self,
        org: OrgId,
        now_ms: i64,
        month: &'a str,
    ) -> LimitFuture<'a, LimitCounts> {
        Box::pin(async move {
            let mut invocation = self.scripts.counts.prepare_invoke();
            invocation
                .key(&keys(org, month)[..])
                .arg(now_ms)
                .arg(month_start_ms(month));
            let (requests, tokens, oldest, monthly) =
                self.run::<(i64, i64, i64, i64)>(invocation).await?;
            Ok(counts_of(requests, tokens, oldest, monthly))
        })
    }

    /// Raises each organization's month to its records' count (the hour starts afresh:
    /// Redis keeps it from then on).
    fn restore<'a>(
        &'a self,
        month: &'a [ManagedUsage],
        _hour: &'a [ManagedUsage],
        _now_ms: i64,
        month_key: &'a str,
    ) -> LimitFuture<'a, ()> {
        Box::pin(async move {
            for usage in month {
                let mut invocation = self.scripts.seed_month.prepare_invoke();
                invocation
                    .key(&keys(usage.org_id, month_key)[4])
                    .arg(usage.invocations);
                self.run::<i64>(invocation).await?;
            }
            Ok(())
        })
    }

    fn name(&self) -> &'static str {
        "redis"
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn months_start_at_their_first_millisecond() {
        assert_eq!(super::month_start_ms("1970-02"), 31 * 86_400_000);
        assert_eq!(super::month_start_ms("garbage"), 0);
    }
}
