-- Switchboard schema, version 9 (PostgreSQL): the audit log is append-only in the database
-- itself. UPDATE, DELETE and TRUNCATE raise; an edit needs the table owner to disable the
-- triggers (run the server as a role that is not the owner to rule that out too), and then
-- `audit verify` names the first broken link of the hash chain.
CREATE FUNCTION audit_log_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit_log is append-only';
END;
$$;

CREATE TRIGGER audit_log_no_change BEFORE UPDATE OR DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION audit_log_append_only();

CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION audit_log_append_only();
