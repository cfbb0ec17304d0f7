-- Operators' verdicts on matches: correct, wrong, or "this is …" another person. A wrong match's
-- face (its embedding, kept here) becomes a negative sample of the person it was taken for: the
-- matcher refuses that person for faces nearer the corrected one than the person's own
-- templates. A correct verdict may add the shot as a watch-list entry's template.
CREATE TABLE match_verdicts (
    id         bigserial   PRIMARY KEY,
    event_id   text        NOT NULL,
    event_time timestamptz NOT NULL,
    camera     text        NOT NULL,
    kind       text        NOT NULL CHECK (kind IN ('face', 'plate')),
    verdict    text        NOT NULL CHECK (verdict IN ('correct', 'wrong', 'this_is')),
    matched    text        NOT NULL DEFAULT '',  -- the person (or plate) the event was matched to
    person     text        NOT NULL DEFAULT '',  -- this_is: who it really is
    note       text        NOT NULL DEFAULT '',
    template   boolean     NOT NULL DEFAULT false,
    embedding  bytea,                            -- faces: the event's descriptor
    model      text        NOT NULL DEFAULT '',
    by_name    text        NOT NULL,
    by_role    text        NOT NULL,
    at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX match_verdicts_matched ON match_verdicts (matched);
CREATE INDEX match_verdicts_person ON match_verdicts (person) WHERE person <> '';
CREATE INDEX match_verdicts_event ON match_verdicts (event_id);
