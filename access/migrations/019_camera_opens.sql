-- What a door's camera opens it for: faces (a door), plates (a car park's barrier), or both.
ALTER TABLE doors ADD COLUMN camera_opens text NOT NULL DEFAULT 'faces' CHECK (camera_opens IN ('faces', 'plates', 'both'));
