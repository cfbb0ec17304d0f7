-- Repeat strangers: faces that matched no one, clustered into anonymous identities with stable
-- ids (S000123) that survive restarts. A face joins the nearest stranger within the join
-- distance, else starts one; each stranger's centroid is the mean of its faces.
CREATE SEQUENCE strangers_seq;
CREATE TABLE strangers (
    id             text        PRIMARY KEY DEFAULT ('S' || lpad(nextval('strangers_seq')::text, 6, '0')),
    centroid       bytea       NOT NULL,
    model          text        NOT NULL,
    faces          integer     NOT NULL DEFAULT 0,
    first_seen     timestamptz NOT NULL,
    last_seen      timestamptz NOT NULL,
    merged_into    text,                  -- merged by an investigator: its faces moved there
    promoted_to    text,                  -- promoted to a watch-list entry (its person id)
    night_alert_at timestamptz,           -- when the night rule last raised an alert for it
    door_alert_at  timestamptz,           -- when the door rule did
    updated_at     timestamptz NOT NULL DEFAULT now()
);
ALTER SEQUENCE strangers_seq OWNED BY strangers.id; -- it goes with the table to vigil's role
CREATE INDEX strangers_last_seen ON strangers (last_seen);
CREATE INDEX strangers_updated ON strangers (updated_at);
CREATE TABLE stranger_faces (
    event_id    text        PRIMARY KEY,
    event_time  timestamptz NOT NULL,
    camera      text        NOT NULL,
    stranger_id text        NOT NULL REFERENCES strangers (id) ON DELETE CASCADE,
    distance    real        NOT NULL
);
CREATE INDEX stranger_faces_by_stranger ON stranger_faces (stranger_id, event_time);
-- Watch-list entries made at run time (a stranger promoted): every node's gallery follows them.
CREATE TABLE watchlist_entries (
    seq        bigserial   PRIMARY KEY,
    id         text        NOT NULL UNIQUE,
    name       text        NOT NULL,
    list       text        NOT NULL,
    embeddings bytea[]     NOT NULL,
    model      text        NOT NULL,
    source     text        NOT NULL,
    created_by text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
