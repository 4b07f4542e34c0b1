-- on SQLite the subject index holds unused tokens only. Its one query (may
-- a session cut-off go?) asks whether a family the cut-off ended still has
-- an unused token, so pruning used tokens (all but each family's latest)
-- no longer writes to it. PostgreSQL keeps the full index: there a
-- predicate on used_at would make every rotation's UPDATE of used_at
-- leave the heap-only (HOT) path, and a planner without statistics may
-- scan a partial index for a primary-key lookup.
{{sqlite}} DROP INDEX tg_refresh_subject;
	{{sqlite}} CREATE INDEX tg_refresh_subject_unused ON tg_refresh (subject, auth_time) WHERE used_at = 0
