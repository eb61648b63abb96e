-- The most-confident mistakes read from the top of an index. Runs
-- unchanged on SQLite and PostgreSQL.

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
