-- Switchboard schema, version 9 (SQLite): the audit log is append-only in the database
-- itself. No statement the application (or an injection through it) can send changes or
-- removes an entry; an edit needs DDL (dropping these triggers), and then `audit verify`
-- names the first broken link of the hash chain.
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;

CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
BEGIN
    SELECT RAISE(ABORT, 'audit_log is append-only');
END;
