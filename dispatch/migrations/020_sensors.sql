-- Site sensors: fire and smoke detectors, sprinklers, door contacts (forced, held open) and panic
-- buttons. They report over MQTT or a signed webhook; an alarm becomes an alarm event and an
-- alert on the map. state follows the reports: ok, alarm (until cleared), offline (heartbeats
-- missed; the next report brings it back).
CREATE TABLE sensors (
    id          text        PRIMARY KEY CHECK (id ~ '^[A-Za-z0-9_-]{1,64}$'),
    kind        text        NOT NULL CHECK (kind IN ('fire', 'smoke', 'sprinkler', 'door_forced', 'door_held', 'panic')),
    name        text        NOT NULL DEFAULT '',
    cameras     text[]      NOT NULL DEFAULT '{}',
    key         bytea       NOT NULL,                 -- the webhook's HMAC key
    heartbeat_s integer     NOT NULL DEFAULT 60 CHECK (heartbeat_s >= 0 AND heartbeat_s <= 86400), -- 0: none expected
    state       text        NOT NULL DEFAULT 'ok' CHECK (state IN ('ok', 'alarm', 'offline')),
    alarm_event text,                                 -- the event of the alarm in progress
    since       timestamptz NOT NULL DEFAULT now(),   -- when state last changed
    last_seen   timestamptz,
    created_by  text        NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE map_items DROP CONSTRAINT map_items_kind_check;
ALTER TABLE map_items ADD CONSTRAINT map_items_kind_check CHECK (kind IN ('camera', 'door', 'sensor'));
