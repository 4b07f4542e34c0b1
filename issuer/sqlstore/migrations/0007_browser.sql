-- browser sign-in: users' profile, clients' redirect URIs and flags,
-- authorization codes, single sign-on sessions and consent decisions.
ALTER TABLE tg_users ADD COLUMN email TEXT NOT NULL DEFAULT '';
	ALTER TABLE tg_users ADD COLUMN display_name TEXT NOT NULL DEFAULT '';
	ALTER TABLE tg_clients ADD COLUMN redirect_uris TEXT NOT NULL DEFAULT '';
	ALTER TABLE tg_clients ADD COLUMN post_logout_uris TEXT NOT NULL DEFAULT '';
	ALTER TABLE tg_clients ADD COLUMN flags TEXT NOT NULL DEFAULT '';
	CREATE TABLE tg_codes (hash TEXT PRIMARY KEY, client_id TEXT NOT NULL, redirect_uri TEXT NOT NULL,
		challenge TEXT NOT NULL, scope TEXT NOT NULL, nonce TEXT NOT NULL, session TEXT NOT NULL,
		family TEXT NOT NULL, subject TEXT NOT NULL, kind TEXT NOT NULL, principal TEXT NOT NULL,
		auth_time BIGINT NOT NULL, amr TEXT NOT NULL, expires_at BIGINT NOT NULL, used_at BIGINT NOT NULL);
	CREATE INDEX tg_codes_expires ON tg_codes (expires_at);
	CREATE TABLE tg_sessions (hash TEXT PRIMARY KEY, subject TEXT NOT NULL, kind TEXT NOT NULL,
		principal TEXT NOT NULL, auth_time BIGINT NOT NULL, amr TEXT NOT NULL, idle_until BIGINT NOT NULL,
		expires_at BIGINT NOT NULL);
	CREATE INDEX tg_sessions_subject ON tg_sessions (subject, auth_time);
	CREATE INDEX tg_sessions_expires ON tg_sessions (expires_at);
	CREATE TABLE tg_consents (subject TEXT NOT NULL, client_id TEXT NOT NULL, scopes TEXT NOT NULL,
		granted_at BIGINT NOT NULL, PRIMARY KEY (subject, client_id))
