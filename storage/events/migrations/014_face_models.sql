-- Face events' embeddings carry their model (embedding space); rows from before are dlib's.
ALTER TABLE faces ADD COLUMN model text NOT NULL DEFAULT 'dlib-v1';
ALTER TABLE faces ALTER COLUMN model DROP DEFAULT;
