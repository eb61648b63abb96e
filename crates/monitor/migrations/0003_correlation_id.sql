-- The caller's own id of each outcome's request (docs/monitoring.md,
-- "Plain SQL"). Runs unchanged on SQLite and PostgreSQL.

-- The caller's x-request-id, kept beside the request_id the scorer
-- generates (never part of outcome_id); '' when the caller sent none, and
-- for every outcome stored before this migration.
ALTER TABLE outcomes ADD COLUMN correlation_id TEXT NOT NULL DEFAULT '';

-- Finding a caller's outcomes by its id; outcomes without one stay out of
-- the index and cost it nothing.
CREATE INDEX outcomes_correlation ON outcomes (correlation_id) WHERE correlation_id <> '';

-- PostgreSQL expands `o.*` when a view is created, SQLite when it is read:
-- the views are created again, unchanged, so that they show the new column
-- on both.
DROP VIEW mistakes;
DROP VIEW daily_precision_recall;
DROP VIEW labelled_outcomes;

-- Every outcome with its truth recomputed from labels (not from the
-- outcomes.label copy): the request's own label, else the pair's.
CREATE VIEW labelled_outcomes AS
SELECT o.*, COALESCE(by_request.label, by_pair.label) AS truth
FROM outcomes o
LEFT JOIN labels by_request
    ON by_request.model = o.model
    AND by_request.budget_id = o.budget_id
    AND by_request.itemization_id = o.itemization_id
    AND by_request.request_id = o.request_id
LEFT JOIN labels by_pair
    ON by_pair.model = o.model
    AND by_pair.budget_id = o.budget_id
    AND by_pair.itemization_id = o.itemization_id
    AND by_pair.request_id = '';

-- Precision and recall per model, version, shadow flag and UTC day, from
-- the raw outcomes and labels: an independent check of confusion_counts.
CREATE VIEW daily_precision_recall AS
SELECT
    model,
    version,
    shadow,
    scored_day AS day,
    MIN(scored_hour_ms) / 86400000 * 86400000 AS day_start_ms,
    COUNT(*) AS outcomes,
    SUM(CASE WHEN truth IS NOT NULL THEN 1 ELSE 0 END) AS labelled,
    SUM(CASE WHEN truth = 1 AND matched = 1 THEN 1 ELSE 0 END) AS tp,
    SUM(CASE WHEN truth = 0 AND matched = 1 THEN 1 ELSE 0 END) AS fp,
    SUM(CASE WHEN truth = 1 AND matched = 0 THEN 1 ELSE 0 END) AS fn,
    SUM(CASE WHEN truth = 0 AND matched = 0 THEN 1 ELSE 0 END) AS tn,
    CASE WHEN SUM(CASE WHEN truth IS NOT NULL AND matched = 1 THEN 1 ELSE 0 END) > 0
        THEN CAST(SUM(CASE WHEN truth = 1 AND matched = 1 THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
            / SUM(CASE WHEN truth IS NOT NULL AND matched = 1 THEN 1 ELSE 0 END)
    END AS precision,
    CASE WHEN SUM(CASE WHEN truth = 1 THEN 1 ELSE 0 END) > 0
        THEN CAST(SUM(CASE WHEN truth = 1 AND matched = 1 THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
            / SUM(CASE WHEN truth = 1 THEN 1 ELSE 0 END)
    END AS recall
FROM labelled_outcomes
GROUP BY model, version, shadow, scored_day;

-- False positives and false negatives with their inputs, features and
-- scores.
CREATE VIEW mistakes AS
SELECT
    CASE WHEN matched = 1 THEN 'false_positive' ELSE 'false_negative' END AS kind,
    lo.*
FROM labelled_outcomes lo
WHERE truth IS NOT NULL AND truth <> matched;
