//! PostgreSQL's shared limit counters: each call is one round trip to a function of
//! migration 0008, which takes the organization's advisory lock, so concurrent admissions
//! on any number of replicas are decided one after the other.

use sqlx::Row;
use sqlx::postgres::PgRow;

use super::postgres::PgStore;
use super::rows::RowExt;
use crate::limits::{LimitAsk, LimitCounts, LimitDecision, LimitHeld, LimitKind};
use crate::{ManagedUsage, StoreError, StoreResult};
use switchboard_core::OrgId;

const RESERVE: &str = "SELECT verdict, requests, tokens, oldest_ms, monthly \
     FROM switchboard_limit_reserve($1, $2, $3, $4, $5, $6, $7, $8, $9)";
const SETTLE: &str = "SELECT switchboard_limit_settle($1, $2, $3, $4, $5, $6)";
const REFUND: &str = "SELECT switchboard_limit_refund($1, $2)";
const COUNTS: &str =
    "SELECT requests, tokens, oldest_ms, monthly FROM switchboard_limit_counts($1, $2, $3)";
/// Never lowers a count: records lag the counters (running requests are not records yet).
const SEED_MONTHLY: &str = "INSERT INTO limit_months (org_id, month, used) \
     SELECT org, $2, used FROM UNNEST($1::TEXT[], $3::BIGINT[]) AS seed(org, used) \
     ON CONFLICT (org_id, month) DO UPDATE SET used = greatest(limit_months.used, excluded.used)";

fn signed(n: u64) -> i64 {
    i64::try_from(n).unwrap_or(i64::MAX)
}

fn unsigned(n: i64) -> u64 {
    u64::try_from(n).unwrap_or(0)
}

fn counts(row: &PgRow) -> StoreResult<LimitCounts> {
    Ok(LimitCounts {
        requests: unsigned(row.int("requests")?),
        tokens: unsigned(row.int("tokens")?),
        oldest_ms: row.opt_int("oldest_ms")?,
        monthly: unsigned(row.int("monthly")?),
    })
}

impl PgStore {
    pub(super) async fn op_limit_reserve(&self, ask: &LimitAsk) -> StoreResult<LimitDecision> {
        let row = sqlx::query(RESERVE)
            .bind(ask.held.org.to_string())
            .bind(&ask.held.id)
            .bind(ask.held.at_ms)
            .bind(signed(ask.tokens))
            .bind(&ask.held.month)
            .bind(ask.lease_ms)
            .bind(signed(ask.max.requests_per_hour))
            .bind(signed(ask.max.tokens_per_hour))
            .bind(signed(ask.max.monthly_invocations))
            .fetch_one(self.write_pool())
            .await?;
        let counts = counts(&row)?;
        match row.try_get::<String, _>("verdict")?.as_str() {
            "granted" => Ok(LimitDecision::Granted(counts)),
            "hourly" => Ok(LimitDecision::Refused(LimitKind::Hourly, counts)),
            "monthly" => Ok(LimitDecision::Refused(LimitKind::Monthly, counts)),
            other => Err(StoreError::corrupt(format!("limit verdict {other:?}"))),
        }
    }

    pub(super) async fn op_limit_settle(
        &self,
        held: &LimitHeld,
        tokens: u64,
        now_ms: i64,
    ) -> StoreResult<()> {
        sqlx::query(SETTLE)
            .bind(held.org.to_string())
            .bind(&held.id)
            .bind(signed(tokens))
            .bind(held.at_ms)
            .bind(&held.month)
            .bind(now_ms)
            .execute(self.write_pool())
            .await?;
        Ok(())
    }

    pub(super) async fn op_limit_refund(&self, held: &LimitHeld) -> StoreResult<()> {
        sqlx::query(REFUND)
            .bind(held.org.to_string())
            .bind(&held.id)
            .execute(self.write_pool())
            .await?;
        Ok(())
    }

    pub(super) async fn op_limit_counts(
        &self,
        org: OrgId,
        now_ms: i64,
        month: &str,
    ) -> StoreResult<LimitCounts> {
        let row = sqlx::query(COUNTS)
            .bind(org.to_string())
            .bind(now_ms)
            .bind(month)
            .fetch_one(self.read_pool())
            .await?;
        counts(&row)
    }

    pub(super) async fn op_limit_seed_monthly(
        &self,
        usage: &[ManagedUsage],
        month: &str,
    ) -> StoreResult<()> {
        if usage.is_empty() {
            return Ok(());
        }
        let orgs: Vec<String> = usage.iter().map(|u| u.org_id.to_string()).collect();
        let used: Vec<i64> = usage.iter().map(|u| signed(u.invocations)).collect();
        sqlx::query(SEED_MONTHLY)
            .bind(orgs)
            .bind(month)
            .bind(used)
            .execute(self.write_pool())
            .await?;
        Ok(())
    }
}
