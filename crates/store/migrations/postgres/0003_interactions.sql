-- Switchboard schema, version 3 (PostgreSQL): invocation records, their hash-chained ledger, and
-- the per-organization, per-day keys that encrypt interaction content.

-- One row per AI interaction on any surface. The metadata columns are covered by the
-- organization's invocation ledger (seq, prev_hash, hash: a SHA-256 chain like the audit
-- log's); `content` is not, because it is erased when it expires. `content` is the
-- AES-256-GCM ciphertext of {"prompt","response"} under the content key of
-- (org_id, content_period); NULL when the organization does not store interaction data or
-- the content was purged. Provider and model are the ones that served the request, copied
-- as text: deleting or changing a provider never touches these rows.
CREATE TABLE invocations (
    org_id          TEXT NOT NULL REFERENCES organizations(id),
    id              TEXT NOT NULL,
    seq             BIGINT NOT NULL,
    user_id         TEXT NOT NULL,
    surface         TEXT NOT NULL,
    provider        TEXT,
    model           TEXT,
    status          TEXT NOT NULL,
    error_name      TEXT,
    request_id      TEXT,
    labels          TEXT NOT NULL,
    tools           TEXT NOT NULL,
    metered         BIGINT NOT NULL,
    input_tokens    BIGINT NOT NULL,
    output_tokens   BIGINT NOT NULL,
    first_token_ms  BIGINT,
    total_ms        BIGINT NOT NULL,
    created_at      TEXT NOT NULL,
    finished_at     TEXT NOT NULL,
    content_period  TEXT,
    content         BYTEA,
    prev_hash       TEXT NOT NULL,
    hash            TEXT NOT NULL,
    PRIMARY KEY (org_id, id),
    UNIQUE (org_id, seq)
);
CREATE INDEX invocations_newest ON invocations (org_id, created_at, id);
CREATE INDEX invocations_by_user ON invocations (org_id, user_id, created_at, id);
CREATE INDEX invocations_with_content ON invocations (org_id, content_period)
    WHERE content IS NOT NULL;
CREATE INDEX invocations_metered ON invocations (created_at) WHERE metered = 1;

-- The head of each organization's invocation ledger: the last seq and hash. Its row is the
-- lock writers of that ledger serialize on, and `audit verify` checks that the chain ends
-- exactly here (a truncated ledger is detected).
CREATE TABLE invocation_chain (
    org_id  TEXT PRIMARY KEY REFERENCES organizations(id),
    seq     BIGINT NOT NULL,
    hash    TEXT NOT NULL
);

-- One data key per organization and UTC day (`period`, YYYY-MM-DD), wrapped by the master
-- key ring like `data_keys`. Deleting a row erases every copy of that day's content
-- (crypto-erasure): backups and replicas keep only ciphertext nobody can open any more.
CREATE TABLE content_keys (
    org_id       TEXT NOT NULL REFERENCES organizations(id),
    period       TEXT NOT NULL,
    wrapped_key  BYTEA NOT NULL,
    kek_version  BIGINT NOT NULL,
    created_at   TEXT NOT NULL,
    rotated_at   TEXT,
    PRIMARY KEY (org_id, period)
);
CREATE INDEX content_keys_period ON content_keys (period);
CREATE INDEX content_keys_kek_version ON content_keys (kek_version);
