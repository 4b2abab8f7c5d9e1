ALTER TABLE clients DROP COLUMN public;
ALTER TABLE clients DROP COLUMN redirect_uris;
ALTER TABLE clients DROP COLUMN grant_types;
