-- Drift and estimated performance (docs/monitoring.md, "Drift and
-- estimated performance"). Runs unchanged on SQLite and PostgreSQL.

-- Confidence-based performance estimation, kept like the other counters:
-- each newly stored outcome adds its calibrated probability p of being
-- positive to expected_tp (predicted positive) or expected_fn (predicted
-- negative), and 1 - p to expected_fp or expected_tn. Rows counted before
-- this migration carry no estimate (0 in all four).
ALTER TABLE confusion_counts ADD COLUMN expected_tp DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE confusion_counts ADD COLUMN expected_fp DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE confusion_counts ADD COLUMN expected_fn DOUBLE PRECISION NOT NULL DEFAULT 0;
ALTER TABLE confusion_counts ADD COLUMN expected_tn DOUBLE PRECISION NOT NULL DEFAULT 0;

-- Drift reads one model version's newest outcomes in a time range.
CREATE INDEX outcomes_version_time ON outcomes (model, version, scored_at_ms);
