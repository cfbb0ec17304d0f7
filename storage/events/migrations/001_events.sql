-- Events, range-partitioned by day; partitions are created ahead by the store and dropped whole
-- by retention. The primary key includes the partition key, as PostgreSQL requires; the event id
-- embeds its time, so (time, id) is as unique as the id.
CREATE TABLE events (
    time        timestamptz NOT NULL,
    id          text        NOT NULL,
    camera      text        NOT NULL,
    kind        text        NOT NULL,
    track       bigint      NOT NULL,
    first_seen  timestamptz NOT NULL,
    frames      integer     NOT NULL DEFAULT 1,
    person_id   text,
    person_name text,
    list        text,
    distance    real,
    plate       text,
    plate_color text,
    quality     real,
    liveness    real,
    bbox        real[],
    snapshot    text,
    attrs       jsonb       NOT NULL DEFAULT '{}',
    stored_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (time, id)
) PARTITION BY RANGE (time);

CREATE INDEX events_time_brin ON events USING brin (time);
CREATE INDEX events_camera_time ON events (camera, time DESC);
CREATE INDEX events_person_time ON events (person_id, time DESC) WHERE person_id IS NOT NULL;
CREATE INDEX events_plate_time ON events (plate, time DESC) WHERE plate IS NOT NULL;

-- Face embeddings in their own table: the source of the face-search index.
CREATE TABLE faces (
    time      timestamptz NOT NULL,
    event_id  text        NOT NULL,
    camera    text        NOT NULL,
    embedding bytea       NOT NULL, -- 128 little-endian float32
    quality   real,
    PRIMARY KEY (time, event_id)
) PARTITION BY RANGE (time);
