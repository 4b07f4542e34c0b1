-- refresh rotation with a retry grace (replaced_by names the token a
-- used one was exchanged for), sessions ended per subject (auth_time is
-- when a family began; tg_refresh_cutoffs holds the latest end of each
-- subject's sessions), and indexes for the subject and expiry queries.
ALTER TABLE tg_refresh ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE tg_refresh ADD COLUMN replaced_by TEXT NOT NULL DEFAULT '';
	CREATE INDEX tg_refresh_subject ON tg_refresh (subject, auth_time);
	CREATE INDEX tg_refresh_expires ON tg_refresh (expires_at);
	CREATE TABLE tg_refresh_cutoffs (subject TEXT PRIMARY KEY, at BIGINT NOT NULL, keep_family TEXT NOT NULL)
