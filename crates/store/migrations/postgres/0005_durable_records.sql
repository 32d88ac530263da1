-- Switchboard schema, version 5 (PostgreSQL): invocations in flight, and the processes serving
-- them.

-- One row per invocation that has begun and not yet been recorded. The recorder commits it
-- while the upstream call runs, and deletes it in the transaction that appends the final
-- record to the ledger. A row whose process stopped heartbeating is turned into a `Failed`
-- record with `errorName` `interrupted` (after a crash nothing in flight goes missing), and
-- polling on any replica answers `In Progress` while the row exists.
CREATE TABLE invocations_running (
    org_id       TEXT NOT NULL REFERENCES organizations(id),
    id           TEXT NOT NULL,
    user_id      TEXT NOT NULL,
    surface      TEXT NOT NULL,
    request_id   TEXT,
    labels       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    instance_id  TEXT NOT NULL,
    PRIMARY KEY (org_id, id)
);
CREATE INDEX invocations_running_instance ON invocations_running (instance_id);

-- Every serving process writes its heartbeat here; a process whose heartbeat is older than
-- the stale bound is dead, and its running invocations are recovered by any other.
CREATE TABLE instances (
    id            TEXT PRIMARY KEY,
    started_at    TEXT NOT NULL,
    heartbeat_at  TEXT NOT NULL
);

-- The ledger head's seal: an HMAC (under a key derived from the master key) over the
-- organization, the head's seq and its hash. Deleting the newest ledger rows and rewinding
-- the head to match needs the master key to forge a seal; `audit verify` checks it.
ALTER TABLE invocation_chain ADD COLUMN seal TEXT;
