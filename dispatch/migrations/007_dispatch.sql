-- Alerts acknowledged by the police post, dispatches to patrol officers and the officers' last
-- reported positions (in the site map's coordinates, 0..1 across the plan).
CREATE TABLE alert_acks (
    event_id   text        PRIMARY KEY,
    camera     text        NOT NULL,
    acked_by   text        NOT NULL,
    acked_at   timestamptz NOT NULL DEFAULT now(),
    note       text        NOT NULL DEFAULT ''
);
CREATE TABLE dispatches (
    id          bigserial   PRIMARY KEY,
    event_id    text        NOT NULL,
    camera      text        NOT NULL,
    summary     text        NOT NULL DEFAULT '',
    officer_id  bigint      NOT NULL REFERENCES principals,
    sent_by     text        NOT NULL,
    sent_at     timestamptz NOT NULL DEFAULT now(),
    status      text        NOT NULL DEFAULT 'sent' CHECK (status IN ('sent', 'acknowledged', 'on_scene', 'closed')),
    updated_at  timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, officer_id)
);
CREATE INDEX dispatches_officer ON dispatches (officer_id, sent_at DESC);
CREATE INDEX dispatches_sent ON dispatches (sent_at DESC);
CREATE TABLE officer_positions (
    officer_id bigint           PRIMARY KEY REFERENCES principals,
    x          double precision NOT NULL,
    y          double precision NOT NULL,
    on_duty    boolean          NOT NULL DEFAULT true,
    at         timestamptz      NOT NULL DEFAULT now()
);
