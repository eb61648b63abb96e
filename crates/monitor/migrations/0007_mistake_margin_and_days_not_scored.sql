-- The most-confident mistakes read from the top of an index, and the
-- daily rollup keeps the rows not scored. Runs unchanged on SQLite and
-- PostgreSQL.

-- ListMistakes most confident first (store/mistakes.rs) orders the
-- mistakes of a model by |score - threshold|, then outcome_id, both
-- descending. This partial index holds the same rows as
-- outcomes_mistakes in that order, so the first page is a walk of its top
-- entries instead of a sort of every mistake in the window. The query's
-- expression must be written exactly `ABS(score - threshold)` for either
-- database to use it (PostgreSQL wants an expression column in its own
-- parentheses; SQLite reads them as the same expression).
CREATE INDEX outcomes_mistakes_margin ON outcomes (model, (ABS(score - threshold)), outcome_id)
    WHERE label IS NOT NULL AND label <> matched;

-- confusion_days (0006) sums every counter of confusion_counts, including
-- not_scored (0004), which 0006 left out.
ALTER TABLE confusion_days ADD COLUMN not_scored BIGINT NOT NULL DEFAULT 0;
UPDATE confusion_days SET not_scored = (
    SELECT COALESCE(CAST(SUM(c.not_scored) AS BIGINT), 0) FROM confusion_counts c
    WHERE c.model = confusion_days.model AND c.version = confusion_days.version
        AND c.shadow = confusion_days.shadow
        AND c.hour_ms >= confusion_days.day_ms AND c.hour_ms < confusion_days.day_ms + 86400000
);
