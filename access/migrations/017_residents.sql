-- Residents serve themselves: a resident's token acts for one person (principals.person_id),
-- given by staff directly or through a one-time invitation link.
ALTER TABLE principals ADD COLUMN person_id text REFERENCES people;
CREATE INDEX principals_person ON principals (person_id) WHERE person_id IS NOT NULL;

CREATE TABLE resident_invitations (
    code_hash  bytea       PRIMARY KEY, -- SHA-256 of the link's code; the code is shown once
    person_id  text        NOT NULL REFERENCES people,
    expires    timestamptz NOT NULL,
    used_at    timestamptz,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);

-- Cars: a plate is a credential like a card (its keyed hash; the normalised plate sealed).
ALTER TABLE credentials DROP CONSTRAINT credentials_kind_check;
ALTER TABLE credentials ADD CONSTRAINT credentials_kind_check CHECK (kind IN ('card', 'pin', 'qr', 'plate'));

-- A visit: a visitor a resident (the sponsor) invited, at some of the sponsor's doors, in a
-- window. It opens a door only while the sponsor may open it too (their lease in force), so a
-- lease that ends takes its visitors' invitations with it.
CREATE TABLE visits (
    id         text        PRIMARY KEY,
    visitor_id text        NOT NULL REFERENCES people,
    sponsor_id text        NOT NULL REFERENCES people,
    doors      text[]      NOT NULL,
    starts     timestamptz NOT NULL,
    ends       timestamptz NOT NULL,
    plate      text        NOT NULL DEFAULT '',
    revoked_at timestamptz,
    created_at timestamptz NOT NULL DEFAULT now(),
    CHECK (ends > starts)
);
CREATE INDEX visits_sponsor ON visits (sponsor_id, created_at DESC);
CREATE INDEX visits_live ON visits (ends) WHERE revoked_at IS NULL;

-- Staff look people up by name and unit, and list leases by their end.
CREATE INDEX people_name_lower ON people (lower(name) text_pattern_ops);
CREATE INDEX leases_unit ON leases (unit_id);
CREATE INDEX leases_ends ON leases (ends);

-- A person's door decisions (a resident's own entries, a visit's uses), newest first.
CREATE INDEX audit_door_person ON audit (((detail::jsonb) ->> 'person'), seq DESC) WHERE action = 'door.decision';
