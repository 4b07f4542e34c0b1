-- entities and their secrets. The partial unique index allows one
-- current secret per entity, which makes "create if none" race-free.
CREATE TABLE tg_entities (id TEXT PRIMARY KEY, roles TEXT NOT NULL);
	CREATE TABLE tg_entity_secrets (id {{serial}}, entity_id TEXT NOT NULL, hash TEXT NOT NULL, sealed TEXT NOT NULL,
		created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, usable_until BIGINT NOT NULL, superseded INTEGER NOT NULL);
	CREATE UNIQUE INDEX tg_entity_secrets_current ON tg_entity_secrets (entity_id) WHERE superseded = 0;
	CREATE INDEX tg_entity_secrets_entity ON tg_entity_secrets (entity_id)
