-- What a client may do: its grant types (space-separated; clients registered before are
-- service clients), its exact redirect URIs (space-separated; for the authorization_code
-- grant) and whether it is public (a browser or native app: no secret).
ALTER TABLE clients ADD COLUMN grant_types TEXT NOT NULL DEFAULT 'client_credentials';
ALTER TABLE clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
ALTER TABLE clients ADD COLUMN public BOOLEAN NOT NULL DEFAULT FALSE;
