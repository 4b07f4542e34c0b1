-- each key's longest token lifetime (keys from before keep 24h);
-- on PostgreSQL, the transaction that wrote each revocation, so that
-- sync follows commit order rather than id order.
ALTER TABLE tg_keys ADD COLUMN max_ttl BIGINT NOT NULL DEFAULT 86400000000000;
	{{postgres}} ALTER TABLE tg_revocations ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
	{{postgres}} CREATE INDEX tg_revocations_xid ON tg_revocations (xid)
