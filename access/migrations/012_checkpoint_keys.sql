-- One checkpoint per row and key: a row the application role inserted first under some key no
-- longer keeps another key's signature of that row out.
ALTER TABLE audit_checkpoints DROP CONSTRAINT audit_checkpoints_pkey;
ALTER TABLE audit_checkpoints ADD PRIMARY KEY (seq, key_id);
