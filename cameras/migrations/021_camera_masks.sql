-- Privacy masks: polygons of [x, y] fractions of the picture, blacked out before analysis, in
-- stills and in exported footage (the recording itself is kept intact).
ALTER TABLE cameras ADD COLUMN masks jsonb NOT NULL DEFAULT '[]' CHECK (jsonb_typeof(masks) = 'array');
