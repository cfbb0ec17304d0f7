-- Enrolled face templates: a resident's face credential, with the consent it was given under.
CREATE TABLE face_templates (
    id         bigserial   PRIMARY KEY,
    person_id  text        NOT NULL REFERENCES people ON DELETE CASCADE,
    embedding  bytea       NOT NULL, -- 128 little-endian float32
    quality    real        NOT NULL,
    liveness   real        NOT NULL,
    consent_at timestamptz NOT NULL,
    consent    text        NOT NULL, -- how it was given: "signed form 2026-11-29", "app"…
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX face_templates_person ON face_templates (person_id);
