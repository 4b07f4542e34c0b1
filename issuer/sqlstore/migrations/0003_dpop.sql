-- DPoP (RFC 9449): proof ids seen (replay protection across
-- instances) and the key each DPoP-bound refresh family is bound to.
CREATE TABLE tg_dpop_proofs (id TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
	CREATE TABLE tg_dpop_families (family TEXT PRIMARY KEY, jkt TEXT NOT NULL, expires_at BIGINT NOT NULL)
