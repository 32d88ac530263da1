-- SQLite serves one node: the managed provider's limits are kept in the server process,
-- restored from the invocation records at start (PostgreSQL's 0008 shares them between
-- replicas). Nothing to create; the version keeps both back ends' numbering in step.
SELECT 1;
