-- Case files made by investigators (POST /v1/exports): which events, people and plates they hold,
-- so that erasing a person can say which exports still contain them. The files themselves are
-- in the blob store under exports/{id}/.
CREATE TABLE exports (
    id              text        PRIMARY KEY,
    created_at      timestamptz NOT NULL,
    created_by      text        NOT NULL,
    reason          text        NOT NULL,
    event_ids       text[]      NOT NULL,
    person_ids      text[]      NOT NULL DEFAULT '{}',
    plates          text[]      NOT NULL DEFAULT '{}',
    manifest_sha256 text        NOT NULL
);
CREATE INDEX exports_person ON exports USING gin (person_ids);
