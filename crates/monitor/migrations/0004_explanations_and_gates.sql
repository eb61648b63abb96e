-- Explanations and gated models (docs/monitoring.md, "Plain SQL", "Gated
-- models: rows not scored" and "Why a pair was scored as it was"). Runs
-- unchanged on SQLite and PostgreSQL.

-- 1 when the model scored the pair; 0 when the model is gated and its gate
-- model did not match the pair, so there is no prediction (score 0 and
-- matched 0 are placeholders). Rows not scored are stored, never joined to
-- a label (label stays NULL) and counted only in
-- confusion_counts.not_scored. Every outcome stored before this migration
-- was scored.
ALTER TABLE outcomes ADD COLUMN scored BIGINT NOT NULL DEFAULT 1;

-- Why a native logistic model scored the pair as it did: a JSON object
-- {"intercept": number, "logit": number, "contributions": [numbers]}, the
-- contributions in schema order like features (0 for a column the model
-- does not read), logit = intercept + the sum of the contributions. NULL
-- when there is none: an ONNX model, a row not scored, an outcome stored
-- before this migration.
ALTER TABLE outcomes ADD COLUMN explanation TEXT;

-- Outcomes of a gated model its gate did not match, per counters row: in
-- no other count of the row (not in outcomes, labelled, the confusion
-- cells, the expected cells, score_sum or the null counts).
ALTER TABLE confusion_counts ADD COLUMN not_scored BIGINT NOT NULL DEFAULT 0;

-- The views are created again: PostgreSQL expands `o.*` when a view is
-- created, and precision, recall and mistakes count scored rows only.
DROP VIEW mistakes;
DROP VIEW daily_precision_recall;
DROP VIEW labelled_outcomes;

-- Every outcome with its truth recomputed from labels (not from the
-- outcomes.label copy): the request's own label, else the pair's. Rows not
-- scored are listed too (scored = 0), with the truth their labels say.
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
-- Over scored rows only; not_scored counts the others.
CREATE VIEW daily_precision_recall AS
SELECT
    model,
    version,
    shadow,
    scored_day AS day,
    MIN(scored_hour_ms) / 86400000 * 86400000 AS day_start_ms,
    SUM(CASE WHEN scored = 1 THEN 1 ELSE 0 END) AS outcomes,
    SUM(CASE WHEN scored = 1 AND truth IS NOT NULL THEN 1 ELSE 0 END) AS labelled,
    SUM(CASE WHEN scored = 1 AND truth = 1 AND matched = 1 THEN 1 ELSE 0 END) AS tp,
    SUM(CASE WHEN scored = 1 AND truth = 0 AND matched = 1 THEN 1 ELSE 0 END) AS fp,
    SUM(CASE WHEN scored = 1 AND truth = 1 AND matched = 0 THEN 1 ELSE 0 END) AS fn,
    SUM(CASE WHEN scored = 1 AND truth = 0 AND matched = 0 THEN 1 ELSE 0 END) AS tn,
    CASE WHEN SUM(CASE WHEN scored = 1 AND truth IS NOT NULL AND matched = 1 THEN 1 ELSE 0 END) > 0
        THEN CAST(SUM(CASE WHEN scored = 1 AND truth = 1 AND matched = 1 THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
            / SUM(CASE WHEN scored = 1 AND truth IS NOT NULL AND matched = 1 THEN 1 ELSE 0 END)
    END AS precision,
    CASE WHEN SUM(CASE WHEN scored = 1 AND truth = 1 THEN 1 ELSE 0 END) > 0
        THEN CAST(SUM(CASE WHEN scored = 1 AND truth = 1 AND matched = 1 THEN 1 ELSE 0 END) AS DOUBLE PRECISION)
            / SUM(CASE WHEN scored = 1 AND truth = 1 THEN 1 ELSE 0 END)
    END AS recall,
    SUM(CASE WHEN scored = 0 THEN 1 ELSE 0 END) AS not_scored
FROM labelled_outcomes
GROUP BY model, version, shadow, scored_day;

-- False positives and false negatives with their inputs, features, scores
-- and explanations; a row not scored is no mistake.
CREATE VIEW mistakes AS
SELECT
    CASE WHEN matched = 1 THEN 'false_positive' ELSE 'false_negative' END AS kind,
    lo.*
FROM labelled_outcomes lo
WHERE scored = 1 AND truth IS NOT NULL AND truth <> matched;
