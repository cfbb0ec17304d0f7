-- Face templates carry the model (embedding space) that made them and, sealed under the server's
-- secret, the enrolment crop that consent covers: a change of model describes everyone again from
-- it and never compares vectors of two models. Doors get a face policy.
ALTER TABLE face_templates ADD COLUMN model text NOT NULL DEFAULT 'dlib-v1';
ALTER TABLE face_templates ALTER COLUMN model DROP DEFAULT;
ALTER TABLE face_templates ADD COLUMN crop bytea; -- AES-256-GCM sealed JPEG; NULL for templates enrolled before
ALTER TABLE face_templates ADD COLUMN source_id bigint; -- the template this one was re-embedded from
CREATE INDEX face_templates_model ON face_templates (model, person_id);
-- "" follows the measured false-positive rate for the door's gallery; "face": a face alone opens;
-- "face+credential": a face and a card, PIN or QR of the same person; "credential+face": the
-- credential names the person and the face only confirms it (1:1).
ALTER TABLE doors ADD COLUMN face_policy text NOT NULL DEFAULT ''
    CHECK (face_policy IN ('', 'face', 'face+credential', 'credential+face'));
