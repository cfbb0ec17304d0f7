-- Credentials' secrets are stored as HMAC-SHA256 under the server's secret (a file outside the
-- database), with the value encrypted under a key derived from it, so that each door's offline
-- cache can be keyed with that door's own key. Rows from before keep their SHA-256 (hash_alg
-- 'sha256') and go on working; new ones are 'hmac'.
ALTER TABLE credentials ADD COLUMN hash_alg text NOT NULL DEFAULT 'sha256' CHECK (hash_alg IN ('sha256', 'hmac'));
ALTER TABLE credentials ADD COLUMN secret_enc bytea;

-- A rule may ask for two factors: a card and the same person's PIN.
ALTER TABLE rules ADD COLUMN factors text NOT NULL DEFAULT '' CHECK (factors IN ('', 'card+pin'));
