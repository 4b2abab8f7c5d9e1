ALTER TABLE users DROP COLUMN grant_epoch;
