-- The managed provider's limits, shared by every replica (used when SWITCHBOARD_REDIS_URL is
-- unset, and while Redis is unreachable).
--
-- One row per admitted request while it counts against the rolling hour: exact to the
-- millisecond. `lease_until_ms` is set while the request runs; a request whose process died
-- never settles, and once its lease has passed the next admission of its organization
-- releases it (no phantom 429). Monthly counts are one row per organization and UTC month.
CREATE TABLE limit_reservations (
    org_id          TEXT NOT NULL,
    id              TEXT NOT NULL,
    at_ms           BIGINT NOT NULL,
    tokens          BIGINT NOT NULL,
    month           TEXT NOT NULL,
    lease_until_ms  BIGINT,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX limit_reservations_window ON limit_reservations (org_id, at_ms);

CREATE TABLE limit_months (
    org_id  TEXT NOT NULL,
    month   TEXT NOT NULL,
    used    BIGINT NOT NULL,
    PRIMARY KEY (org_id, month)
);

-- Releases an organization's reservations whose lease passed (their monthly unit too) and
-- forgets settled ones that left the hour. The caller holds the organization's lock.
CREATE FUNCTION switchboard_limit_sweep(p_org TEXT, p_now_ms BIGINT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    WITH gone AS (
        DELETE FROM limit_reservations
        WHERE org_id = p_org AND lease_until_ms IS NOT NULL AND lease_until_ms <= p_now_ms
        RETURNING month
    ), per_month AS (
        SELECT month, count(*) AS n FROM gone GROUP BY month
    )
    UPDATE limit_months m SET used = greatest(m.used - per_month.n, 0)
    FROM per_month
    WHERE m.org_id = p_org AND m.month = per_month.month;
    DELETE FROM limit_reservations
    WHERE org_id = p_org AND lease_until_ms IS NULL AND at_ms <= p_now_ms - 3600000;
END $$;

-- The organization's counts now: requests and tokens in the rolling hour, the oldest
-- counted request, and the month's invocations.
CREATE FUNCTION switchboard_limit_counts(p_org TEXT, p_now_ms BIGINT, p_month TEXT)
RETURNS TABLE (requests BIGINT, tokens BIGINT, oldest_ms BIGINT, monthly BIGINT)
LANGUAGE sql STABLE AS $$
    SELECT count(*)::BIGINT, coalesce(sum(r.tokens), 0)::BIGINT, min(r.at_ms),
           coalesce((SELECT used FROM limit_months
                     WHERE org_id = p_org AND month = p_month), 0)::BIGINT
    FROM limit_reservations r
    WHERE r.org_id = p_org AND r.at_ms > p_now_ms - 3600000
$$;

-- Admission in one round trip: under the organization's advisory lock, sweep, count, and
-- either refuse (saying which limit) or reserve one request, the token estimate and one
-- monthly unit. Counters are not worth a synchronous WAL flush: the invocation records stay
-- the durable truth, and a crash of the database loses at most the last moments' counts.
CREATE FUNCTION switchboard_limit_reserve(
    p_org TEXT, p_id TEXT, p_now_ms BIGINT, p_tokens BIGINT, p_month TEXT, p_lease_ms BIGINT,
    p_max_requests BIGINT, p_max_tokens BIGINT, p_max_monthly BIGINT)
RETURNS TABLE (verdict TEXT, requests BIGINT, tokens BIGINT, oldest_ms BIGINT, monthly BIGINT)
LANGUAGE plpgsql AS $$
DECLARE
    c RECORD;
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(1936026988, hashtext(p_org));
    PERFORM switchboard_limit_sweep(p_org, p_now_ms);
    SELECT * INTO c FROM switchboard_limit_counts(p_org, p_now_ms, p_month);
    IF c.monthly >= p_max_monthly THEN
        RETURN QUERY SELECT 'monthly'::TEXT, c.requests, c.tokens, c.oldest_ms, c.monthly;
        RETURN;
    END IF;
    IF c.requests >= p_max_requests OR c.tokens + p_tokens > p_max_tokens THEN
        RETURN QUERY SELECT 'hourly'::TEXT, c.requests, c.tokens, c.oldest_ms, c.monthly;
        RETURN;
    END IF;
    INSERT INTO limit_reservations (org_id, id, at_ms, tokens, month, lease_until_ms)
    VALUES (p_org, p_id, p_now_ms, p_tokens, p_month, p_now_ms + p_lease_ms);
    INSERT INTO limit_months (org_id, month, used) VALUES (p_org, p_month, 1)
    ON CONFLICT (org_id, month) DO UPDATE SET used = limit_months.used + 1;
    RETURN QUERY SELECT 'granted'::TEXT, c.requests + 1, c.tokens + p_tokens,
                        coalesce(c.oldest_ms, p_now_ms), c.monthly + 1;
END $$;

-- Replaces a reservation's estimate with the tokens really used and ends its lease. A
-- reservation already released (its lease passed while the request still ran) is charged
-- again, as long as it is inside the hour.
CREATE FUNCTION switchboard_limit_settle(
    p_org TEXT, p_id TEXT, p_tokens BIGINT, p_at_ms BIGINT, p_month TEXT, p_now_ms BIGINT)
RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(1936026988, hashtext(p_org));
    UPDATE limit_reservations SET tokens = p_tokens, lease_until_ms = NULL
    WHERE org_id = p_org AND id = p_id;
    IF NOT FOUND AND p_at_ms > p_now_ms - 3600000 THEN
        INSERT INTO limit_reservations (org_id, id, at_ms, tokens, month, lease_until_ms)
        VALUES (p_org, p_id, p_at_ms, p_tokens, p_month, NULL);
        INSERT INTO limit_months (org_id, month, used) VALUES (p_org, p_month, 1)
        ON CONFLICT (org_id, month) DO UPDATE SET used = limit_months.used + 1;
    END IF;
END $$;

-- Takes back a reservation that is still running: as if it had never been admitted.
CREATE FUNCTION switchboard_limit_refund(p_org TEXT, p_id TEXT) RETURNS VOID
LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('synchronous_commit', 'off', true);
    PERFORM pg_advisory_xact_lock(1936026988, hashtext(p_org));
    WITH gone AS (
        DELETE FROM limit_reservations
        WHERE org_id = p_org AND id = p_id AND lease_until_ms IS NOT NULL
        RETURNING month
    )
    UPDATE limit_months m SET used = greatest(m.used - 1, 0)
    FROM gone WHERE m.org_id = p_org AND m.month = gone.month;
END $$;
