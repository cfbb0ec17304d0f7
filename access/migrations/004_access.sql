-- Access control: who lives where (leases), what opens which door (credentials, rules,
-- schedules), the doors and their controllers' keys, and anti-passback state.
CREATE TABLE units (
    id       text PRIMARY KEY,
    name     text NOT NULL DEFAULT '',
    building text NOT NULL DEFAULT ''
);

CREATE TABLE people (
    id          text        PRIMARY KEY,
    name        text        NOT NULL,
    kind        text        NOT NULL CHECK (kind IN ('resident', 'visitor', 'staff')),
    blacklisted boolean     NOT NULL DEFAULT false,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A resident's right to their unit's doors starts and ends with the lease.
CREATE TABLE leases (
    id        bigserial   PRIMARY KEY,
    person_id text        NOT NULL REFERENCES people ON DELETE CASCADE,
    unit_id   text        NOT NULL REFERENCES units,
    starts    timestamptz NOT NULL,
    ends      timestamptz NOT NULL,
    CHECK (ends > starts)
);
CREATE INDEX leases_person ON leases (person_id);

-- Cards, PINs and visitor QR codes, stored as SHA-256 of the secret.
CREATE TABLE credentials (
    id          bigserial   PRIMARY KEY,
    person_id   text        NOT NULL REFERENCES people ON DELETE CASCADE,
    kind        text        NOT NULL CHECK (kind IN ('card', 'pin', 'qr')),
    secret_hash bytea       NOT NULL,
    duress      boolean     NOT NULL DEFAULT false, -- opens, and raises a silent alarm
    valid_from  timestamptz,
    valid_until timestamptz,
    revoked_at  timestamptz,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX credentials_live_secret ON credentials (kind, secret_hash) WHERE revoked_at IS NULL;
CREATE INDEX credentials_person ON credentials (person_id);

CREATE TABLE doors (
    id            text        PRIMARY KEY,
    name          text        NOT NULL DEFAULT '',
    camera        text        NOT NULL DEFAULT '',
    area          text        NOT NULL DEFAULT '',  -- anti-passback area the door leads into or out of
    direction     text        NOT NULL DEFAULT 'in' CHECK (direction IN ('in', 'out')),
    anti_passback boolean     NOT NULL DEFAULT false,
    fail_mode     text        NOT NULL DEFAULT 'secure' CHECK (fail_mode IN ('secure', 'safe')),
    pulse_ms      integer     NOT NULL DEFAULT 3000,
    key           bytea       NOT NULL,             -- the controller's HMAC key
    created_at    timestamptz NOT NULL DEFAULT now()
);

-- Weekly windows in the schedule's time zone, e.g. {"mon": [["06:00", "23:30"]], ...}, and
-- holidays ("2026-10-01") on which only the "hol" windows apply.
CREATE TABLE schedules (
    id       text  PRIMARY KEY,
    weekly   jsonb NOT NULL,
    holidays jsonb NOT NULL DEFAULT '[]',
    tz       text  NOT NULL DEFAULT 'Asia/Shanghai'
);

-- Who may open a door: everyone with a live lease in a unit, one person, or every person of a kind.
CREATE TABLE rules (
    id          bigserial PRIMARY KEY,
    door_id     text      NOT NULL REFERENCES doors ON DELETE CASCADE,
    who_kind    text      NOT NULL CHECK (who_kind IN ('unit', 'person', 'kind')),
    who         text      NOT NULL,
    schedule_id text      REFERENCES schedules
);
CREATE INDEX rules_door ON rules (door_id);

CREATE TABLE passback (
    person_id text        NOT NULL,
    area      text        NOT NULL,
    inside    boolean     NOT NULL,
    at        timestamptz NOT NULL,
    PRIMARY KEY (person_id, area)
);
