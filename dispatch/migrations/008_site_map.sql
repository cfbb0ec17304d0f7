-- The site plan shown on the console's map and where cameras and doors sit on it (fractions of
-- the plan's width and height).
CREATE TABLE site_plan (
    one          boolean     PRIMARY KEY DEFAULT true CHECK (one),
    content_type text        NOT NULL,
    image        bytea       NOT NULL,
    width        integer     NOT NULL,
    height       integer     NOT NULL,
    updated_by   text        NOT NULL,
    updated_at   timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE map_items (
    kind text             NOT NULL CHECK (kind IN ('camera', 'door')),
    id   text             NOT NULL,
    x    double precision NOT NULL CHECK (x >= 0 AND x <= 1),
    y    double precision NOT NULL CHECK (y >= 0 AND y <= 1),
    PRIMARY KEY (kind, id)
);
