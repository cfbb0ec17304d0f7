-- Privacy masks at record time: the camera's segments are re-encoded with its masks before they
-- are stored (the recording itself is masked; default off: recorded as sent, exports masked).
ALTER TABLE cameras ADD COLUMN mask_recording boolean NOT NULL DEFAULT false;
