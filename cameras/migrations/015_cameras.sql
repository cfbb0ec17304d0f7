-- The camera registry: every camera of the site, changed at run time through the API and
-- `vigil cameras`; every node watches it (NOTIFY vigil_cameras) and runs what it says.
CREATE TABLE cameras (
    id           text        PRIMARY KEY,
    url          text        NOT NULL, -- rtsp://[user:pass@]host/path: a secret, answered redacted
    detect_url   text,                 -- a sub-stream for analysis, when the camera has one
    analysis     text        NOT NULL DEFAULT 'both' CHECK (analysis IN ('faces', 'plates', 'both', 'none')),
    transport    text        NOT NULL DEFAULT '' CHECK (transport IN ('', 'tcp', 'udp')),
    fps          real        NOT NULL DEFAULT 0 CHECK (fps >= 0 AND fps <= 30),
    footage_days integer     NOT NULL DEFAULT 0 CHECK (footage_days >= 0),
    map_x        double precision,
    map_y        double precision,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now()
);
