-- Switchboard schema, version 6 (PostgreSQL): a revision per stored provider.

-- `PUT /v1/llm-providers/{provider}` merges a partial change into the stored provider and
-- validates the result (resolving host names, optionally calling the provider) before it
-- writes. That work must not run under the write lock, so the write is conditional instead:
-- it names the revision it merged into and is refused when another write came first, and
-- the server merges again. Every write of a provider row adds one.
ALTER TABLE providers ADD COLUMN revision BIGINT NOT NULL DEFAULT 1;
