-- Switchboard schema, version 4 (SQLite): the last connection validation of each provider.

-- One row per organization and provider type: the newest result of
-- `?validate_connection=true` (or the UI's "Validate and save"), whether or not that save
-- went through. It describes the provider's reachability, not its configuration, so it is
-- neither audited nor part of the config version; it holds per-model verdicts and
-- user-facing messages only, never a secret value. There is no foreign key to `providers`:
-- a failed first connection is recorded although nothing was saved.
CREATE TABLE provider_validations (
    org_id         TEXT NOT NULL REFERENCES organizations(id),
    provider_type  TEXT NOT NULL,
    valid          INTEGER NOT NULL,
    result         TEXT NOT NULL,
    validated_at   TEXT NOT NULL,
    PRIMARY KEY (org_id, provider_type)
);
