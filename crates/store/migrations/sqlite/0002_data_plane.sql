-- Switchboard schema, version 2 (SQLite): the config change log and browser sessions.

-- One row per config_version bump, written in the same transaction: the new version and the
-- organization that write changed, so a replica can reload only what changed. The store
-- keeps the newest 10 000 rows (pruned on every write); a caller further behind reloads
-- everything. No foreign key: the log must be able to outlive what it talks about.
CREATE TABLE config_changes (
    version  INTEGER PRIMARY KEY,
    org_id   TEXT NOT NULL,
    at       TEXT NOT NULL
);

-- Web UI sessions. `id` is the public part of the `sbs_<id>_<secret>` cookie; only the
-- keyed hash of the secret is stored. The CSRF token is not a credential on its own.
CREATE TABLE sessions (
    id           TEXT PRIMARY KEY,
    org_id       TEXT NOT NULL REFERENCES organizations(id),
    user_id      TEXT NOT NULL REFERENCES users(id),
    secret_hash  TEXT NOT NULL,
    csrf_token   TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    expires_at   TEXT NOT NULL
);
CREATE INDEX sessions_expires_at ON sessions (expires_at);
