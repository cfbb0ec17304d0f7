-- Fencing of a camera's writes across nodes. A node that takes a camera's lease bumps the
-- camera's epoch here; its segments and events carry that epoch, and a write with an older one
-- (a node that lost the lease and does not know yet) is refused.
CREATE TABLE camera_fences (
    camera text        PRIMARY KEY,
    epoch  bigint      NOT NULL,
    node   text        NOT NULL,
    at     timestamptz NOT NULL DEFAULT now()
);
ALTER TABLE segments ADD COLUMN lease bigint NOT NULL DEFAULT 0;
