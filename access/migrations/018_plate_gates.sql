-- Gates read plates: how tolerant each gate is of OCR (exact, or one confusable character at
-- high confidence, never the province), and the cars inside each car park (an area of gate
-- doors), moved in and out by the gates' plate decisions.
ALTER TABLE doors ADD COLUMN plate_policy text NOT NULL DEFAULT 'exact' CHECK (plate_policy IN ('exact', 'confusable'));

CREATE TABLE parked (
    area      text        NOT NULL,
    plate     text        NOT NULL,
    person_id text        NOT NULL,
    entered   timestamptz NOT NULL,
    until     timestamptz,          -- a visitor's car: the end of its window
    alerted   boolean     NOT NULL DEFAULT false,
    PRIMARY KEY (area, plate)
);
CREATE INDEX parked_overstay ON parked (until) WHERE until IS NOT NULL AND NOT alerted;
