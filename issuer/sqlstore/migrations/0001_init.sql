-- principals, keys, refresh tokens, revocations, settings.
CREATE TABLE tg_users (name TEXT PRIMARY KEY, id TEXT NOT NULL, password_hash TEXT NOT NULL,
		roles TEXT NOT NULL, scopes TEXT NOT NULL);
	CREATE TABLE tg_clients (id TEXT PRIMARY KEY, secret_hash TEXT NOT NULL, roles TEXT NOT NULL, scopes TEXT NOT NULL,
		grants TEXT NOT NULL);
	CREATE TABLE tg_keys (kid TEXT PRIMARY KEY, alg TEXT NOT NULL, seq BIGINT NOT NULL, private TEXT NOT NULL,
		public TEXT NOT NULL, created_at BIGINT NOT NULL, activate_at BIGINT NOT NULL, UNIQUE (alg, seq));
	CREATE TABLE tg_refresh (hash TEXT PRIMARY KEY, family TEXT NOT NULL, subject TEXT NOT NULL, kind TEXT NOT NULL,
		principal TEXT NOT NULL, client_id TEXT NOT NULL, scope TEXT NOT NULL, issuer TEXT NOT NULL,
		expires_at BIGINT NOT NULL, used_at BIGINT NOT NULL, revoked INTEGER NOT NULL DEFAULT 0);
	CREATE INDEX tg_refresh_family ON tg_refresh (family);
	CREATE TABLE tg_revocations (id {{serial}}, kind TEXT NOT NULL, rkey TEXT NOT NULL, keep TEXT NOT NULL,
		at BIGINT NOT NULL, expires_at BIGINT NOT NULL);
	CREATE TABLE tg_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)
