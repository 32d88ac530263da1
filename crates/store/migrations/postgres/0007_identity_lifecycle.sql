-- Switchboard schema, version 7 (PostgreSQL): the identity lifecycle.

-- A disabled user keeps their row (and their tokens, which stop working) so an admin can
-- enable them again; sign-in, token use and client credentials all refuse them. 0/1.
ALTER TABLE users ADD COLUMN disabled BIGINT NOT NULL DEFAULT 0;

-- A token's optional label, and when it was last seen (recorded when a replica verifies
-- it against the database, so at most about a minute behind; never on every request).
ALTER TABLE api_tokens ADD COLUMN name TEXT;
ALTER TABLE api_tokens ADD COLUMN last_used_at TEXT;

-- Sessions are ended by user (disable, delete).
CREATE INDEX sessions_user_id ON sessions (user_id);
