-- The audit chain cannot be cut short from inside vigil: TRUNCATE is refused like UPDATE and
-- DELETE, and serve's role (granted in storage/schema.Protect) may only SELECT and INSERT it.
CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON audit
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- Signed checkpoints of the chain's head (vigil audit checkpoint): the seq and hash of the newest
-- row, signed with an Ed25519 key kept outside the database. Verify checks each signature and
-- that the chain still holds that row with that hash.
CREATE TABLE audit_checkpoints (
    seq       bigint      PRIMARY KEY,
    hash      bytea       NOT NULL,
    at        timestamptz NOT NULL,
    key_id    text        NOT NULL,
    signature bytea       NOT NULL
);
CREATE TRIGGER audit_checkpoints_append_only BEFORE UPDATE OR DELETE ON audit_checkpoints
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();
CREATE TRIGGER audit_checkpoints_no_truncate BEFORE TRUNCATE ON audit_checkpoints
    FOR EACH STATEMENT EXECUTE FUNCTION audit_append_only();

-- More roles: property staff and the privacy officer who reviews the audit.
ALTER TABLE principals DROP CONSTRAINT principals_role_check;
ALTER TABLE principals ADD CONSTRAINT principals_role_check
    CHECK (role IN ('admin', 'investigator', 'operator', 'patrol', 'resident', 'property', 'auditor'));
