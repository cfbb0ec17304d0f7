-- The footage index: one row per fragmented-MP4 segment in the blob store.
CREATE TABLE segments (
    camera     text        NOT NULL,
    start_time timestamptz NOT NULL,
    end_time   timestamptz NOT NULL,
    blob_key   text        NOT NULL,
    bytes      bigint      NOT NULL,
    codec      text        NOT NULL,
    PRIMARY KEY (camera, start_time)
);
CREATE INDEX segments_time ON segments (start_time);
