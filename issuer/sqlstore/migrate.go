package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
)

// migrations are applied in order; each runs once, recorded in tg_schema.
// {{serial}} becomes the dialect's auto-increment key type; a statement
// starting with {{postgres}} runs on PostgreSQL only. Never edit a
// released migration: append a new one.
var migrations = []string{
	// 1: principals, keys, refresh tokens, revocations, settings.
	`CREATE TABLE tg_users (name TEXT PRIMARY KEY, id TEXT NOT NULL, password_hash TEXT NOT NULL,
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
	CREATE TABLE tg_settings (name TEXT PRIMARY KEY, value TEXT NOT NULL)`,
	// 2: entities and their secrets. The partial unique index allows one
	// current secret per entity, which makes "create if none" race-free.
	`CREATE TABLE tg_entities (id TEXT PRIMARY KEY, roles TEXT NOT NULL);
	CREATE TABLE tg_entity_secrets (id {{serial}}, entity_id TEXT NOT NULL, hash TEXT NOT NULL, sealed TEXT NOT NULL,
		created_at BIGINT NOT NULL, expires_at BIGINT NOT NULL, usable_until BIGINT NOT NULL, superseded INTEGER NOT NULL);
	CREATE UNIQUE INDEX tg_entity_secrets_current ON tg_entity_secrets (entity_id) WHERE superseded = 0;
	CREATE INDEX tg_entity_secrets_entity ON tg_entity_secrets (entity_id)`,
	// 3: DPoP (RFC 9449): proof ids seen (replay protection across
	// instances) and the key each DPoP-bound refresh family is bound to.
	`CREATE TABLE tg_dpop_proofs (id TEXT PRIMARY KEY, expires_at BIGINT NOT NULL);
	CREATE TABLE tg_dpop_families (family TEXT PRIMARY KEY, jkt TEXT NOT NULL, expires_at BIGINT NOT NULL)`,
	// 4: refresh rotation with a retry grace (replaced_by names the token a
	// used one was exchanged for), sessions ended per subject (auth_time is
	// when a family began; tg_refresh_cutoffs holds the latest end of each
	// subject's sessions), and indexes for the subject and expiry queries.
	`ALTER TABLE tg_refresh ADD COLUMN auth_time BIGINT NOT NULL DEFAULT 0;
	ALTER TABLE tg_refresh ADD COLUMN replaced_by TEXT NOT NULL DEFAULT '';
	CREATE INDEX tg_refresh_subject ON tg_refresh (subject, auth_time);
	CREATE INDEX tg_refresh_expires ON tg_refresh (expires_at);
	CREATE TABLE tg_refresh_cutoffs (subject TEXT PRIMARY KEY, at BIGINT NOT NULL, keep_family TEXT NOT NULL)`,
	// 5: each key's longest token lifetime (keys from before keep 24h);
	// on PostgreSQL, the transaction that wrote each revocation, so that
	// sync follows commit order rather than id order.
	`ALTER TABLE tg_keys ADD COLUMN max_ttl BIGINT NOT NULL DEFAULT 86400000000000;
	{{postgres}} ALTER TABLE tg_revocations ADD COLUMN xid xid8 NOT NULL DEFAULT pg_current_xact_id();
	{{postgres}} CREATE INDEX tg_revocations_xid ON tg_revocations (xid)`,
}

// SchemaVersion is the version Open migrates to.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate(ctx context.Context) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrating store: %w", err)
	}
	defer tx.Rollback()
	if s.postgres {
		// Serialise concurrent migrations from several instances.
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7361626)`); err != nil {
			return fmt.Errorf("locking for migration: %w", err)
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS tg_schema (version INTEGER NOT NULL)`); err != nil {
		return fmt.Errorf("creating schema table: %w", err)
	}
	var version int
	err = tx.QueryRowContext(ctx, `SELECT version FROM tg_schema`).Scan(&version)
	switch {
	case err == sql.ErrNoRows:
		if _, err := tx.ExecContext(ctx, `INSERT INTO tg_schema (version) VALUES (0)`); err != nil {
			return fmt.Errorf("initialising schema version: %w", err)
		}
	case err != nil:
		return fmt.Errorf("reading schema version: %w", err)
	}
	if version > len(migrations) {
		return fmt.Errorf("store schema version %d is newer than this tokengate (%d): upgrade tokengate", version, len(migrations))
	}
	serial := "INTEGER PRIMARY KEY AUTOINCREMENT"
	if s.postgres {
		serial = "BIGSERIAL PRIMARY KEY"
	}
	for v := version; v < len(migrations); v++ {
		for _, stmt := range strings.Split(migrations[v], ";") {
			stmt = strings.TrimSpace(stmt)
			if pg, ok := strings.CutPrefix(stmt, "{{postgres}}"); ok {
				if !s.postgres {
					continue
				}
				stmt = pg
			}
			if stmt == "" {
				continue
			}
			if _, err := tx.ExecContext(ctx, strings.ReplaceAll(stmt, "{{serial}}", serial)); err != nil {
				return fmt.Errorf("applying migration %d: %w", v+1, err)
			}
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`UPDATE tg_schema SET version = ?`), len(migrations)); err != nil {
		return fmt.Errorf("recording schema version: %w", err)
	}
	return tx.Commit()
}
