-- Groups of people (cleaners, security staff, a family's visitors) that rules can name.
CREATE TABLE groups (
    id   text PRIMARY KEY,
    name text NOT NULL DEFAULT ''
);
CREATE TABLE group_members (
    group_id  text NOT NULL REFERENCES groups ON DELETE CASCADE,
    person_id text NOT NULL REFERENCES people ON DELETE CASCADE,
    PRIMARY KEY (group_id, person_id)
);
ALTER TABLE rules DROP CONSTRAINT rules_who_kind_check;
ALTER TABLE rules ADD CONSTRAINT rules_who_kind_check CHECK (who_kind IN ('unit', 'person', 'kind', 'group'));
