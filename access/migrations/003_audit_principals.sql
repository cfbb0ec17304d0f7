-- The audit chain: append-only, each row carrying the SHA-256 of the previous row's hash and its
-- own fields, so an edited or deleted row breaks the chain (vigil audit verify). audit_head holds
-- the last row's seq and hash, written in the same transaction, so deleting the newest rows shows too.
CREATE TABLE audit (
    seq          bigint      PRIMARY KEY,
    time         timestamptz NOT NULL,
    actor        text        NOT NULL,
    role         text        NOT NULL,
    action       text        NOT NULL,
    reason       text        NOT NULL DEFAULT '',
    detail       text        NOT NULL DEFAULT '{}', -- JSON, kept as written: the hash covers its bytes
    result_count integer,
    prev_hash    bytea       NOT NULL,
    hash         bytea       NOT NULL
);
CREATE INDEX audit_time ON audit USING brin (time);
CREATE INDEX audit_actor_time ON audit (actor, time DESC);

CREATE TABLE audit_head (
    one  boolean PRIMARY KEY DEFAULT true CHECK (one),
    seq  bigint  NOT NULL,
    hash bytea   NOT NULL
);

-- Rows are never updated or deleted through vigil; the trigger stops accidents (a superuser can
-- still disable it, which is what the chain is for).
CREATE FUNCTION audit_append_only() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    RAISE EXCEPTION 'audit is append-only';
END $$;
CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON audit
    FOR EACH ROW EXECUTE FUNCTION audit_append_only();

-- API principals: people and machines with a role and a bearer token (stored as its SHA-256).
CREATE TABLE principals (
    id          bigserial   PRIMARY KEY,
    name        text        NOT NULL,
    role        text        NOT NULL CHECK (role IN ('admin', 'investigator', 'operator', 'patrol', 'resident')),
    token_hash  bytea       NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now(),
    revoked_at  timestamptz
);
CREATE INDEX principals_name ON principals (name);
