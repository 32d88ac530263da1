-- Switchboard schema, version 1 (PostgreSQL). Ids are UUIDv7 text; timestamps are fixed-width
-- RFC 3339 text (sorts in time order); JSON is text; booleans are 0/1 BIGINTs, so that both
-- back ends bind and decode the same Rust types.

CREATE TABLE organizations (
    id          TEXT PRIMARY KEY,
    name        TEXT NOT NULL UNIQUE,
    created_at  TEXT NOT NULL
);

CREATE TABLE users (
    id                  TEXT PRIMARY KEY,
    org_id              TEXT NOT NULL REFERENCES organizations(id),
    email               TEXT NOT NULL UNIQUE,
    role                TEXT NOT NULL CHECK (role IN ('admin', 'member')),
    password_hash       TEXT,
    client_id           TEXT NOT NULL UNIQUE,
    client_secret_hash  TEXT NOT NULL,
    created_at          TEXT NOT NULL
);
CREATE INDEX users_org_id ON users (org_id);

CREATE TABLE api_tokens (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id),
    user_id     TEXT NOT NULL REFERENCES users(id),
    token_hash  TEXT NOT NULL,
    kind        TEXT NOT NULL CHECK (kind IN ('api', 'access')),
    expires_at  TEXT,
    created_at  TEXT NOT NULL
);
CREATE INDEX api_tokens_user_id ON api_tokens (user_id);

CREATE TABLE data_keys (
    org_id       TEXT PRIMARY KEY REFERENCES organizations(id),
    wrapped_key  BYTEA NOT NULL,
    kek_version  BIGINT NOT NULL,
    created_at   TEXT NOT NULL,
    rotated_at   TEXT
);
CREATE INDEX data_keys_kek_version ON data_keys (kek_version);

CREATE TABLE instance_keys (
    name         TEXT PRIMARY KEY,
    wrapped_key  BYTEA NOT NULL,
    kek_version  BIGINT NOT NULL,
    created_at   TEXT NOT NULL,
    rotated_at   TEXT
);

CREATE TABLE secrets (
    org_id       TEXT NOT NULL REFERENCES organizations(id),
    name         TEXT NOT NULL,
    description  TEXT,
    ciphertext   BYTEA NOT NULL,
    created_at   TEXT NOT NULL,
    created_by   TEXT NOT NULL,
    updated_at   TEXT NOT NULL,
    updated_by   TEXT NOT NULL,
    PRIMARY KEY (org_id, name)
);

CREATE TABLE providers (
    org_id         TEXT NOT NULL REFERENCES organizations(id),
    provider_type  TEXT NOT NULL,
    enabled        BIGINT NOT NULL,
    config         TEXT NOT NULL,
    overrides      TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    updated_by     TEXT NOT NULL,
    PRIMARY KEY (org_id, provider_type)
);

CREATE TABLE org_defaults (
    org_id         TEXT PRIMARY KEY REFERENCES organizations(id),
    provider_type  TEXT NOT NULL,
    model          TEXT NOT NULL,
    created_at     TEXT NOT NULL,
    created_by     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    updated_by     TEXT NOT NULL
);

CREATE TABLE ai_settings (
    org_id                  TEXT PRIMARY KEY REFERENCES organizations(id),
    retention_days          BIGINT NOT NULL,
    store_interaction_data  BIGINT NOT NULL,
    updated_at              TEXT NOT NULL,
    updated_by              TEXT NOT NULL
);

CREATE TABLE audit_log (
    id          TEXT PRIMARY KEY,
    org_id      TEXT NOT NULL REFERENCES organizations(id),
    seq         BIGINT NOT NULL,
    at          TEXT NOT NULL,
    actor       TEXT NOT NULL,
    action      TEXT NOT NULL,
    resource    TEXT NOT NULL,
    status      TEXT NOT NULL,
    details     TEXT NOT NULL,
    prev_hash   TEXT NOT NULL,
    hash        TEXT NOT NULL,
    UNIQUE (org_id, seq)
);

CREATE TABLE config_version (
    id       BIGINT PRIMARY KEY CHECK (id = 1),
    version  BIGINT NOT NULL
);
INSERT INTO config_version (id, version) VALUES (1, 0);
