-- The monitor's tables and views. This one file runs unchanged on SQLite
-- and PostgreSQL: only TEXT, BIGINT and DOUBLE PRECISION columns (booleans
-- are BIGINT 0/1), composite primary keys instead of sequences, and
-- integer arithmetic on epoch milliseconds instead of date functions.
-- docs/monitoring.md ("Plain SQL") documents every column.

-- One row per scored (budget, line item) pair per model version, stored
-- once per outcome_id however often it arrives.
CREATE TABLE outcomes (
    outcome_id TEXT NOT NULL PRIMARY KEY,
    request_id TEXT NOT NULL,
    scored_at_ms BIGINT NOT NULL,
    -- scored_at_ms rounded down to the hour (UTC): the counters' bucket.
    scored_hour_ms BIGINT NOT NULL,
    -- The UTC day of scored_at_ms, 'YYYY-MM-DD'.
    scored_day TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    shadow BIGINT NOT NULL,
    schema_hash TEXT NOT NULL,
    budget_id TEXT NOT NULL,
    itemization_id TEXT NOT NULL,
    score DOUBLE PRECISION NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    matched BIGINT NOT NULL,
    latency_ms DOUBLE PRECISION NOT NULL,
    -- The label the monitor joined to this outcome (NULL: none yet), kept
    -- in step with confusion_counts. The views recompute it from labels.
    label BIGINT,
    -- The raw inputs, exactly as received (NULL: absent).
    budget_price_budget TEXT,
    travel_vendor_receipts TEXT,
    purchase_vendor_receipts TEXT,
    budget_type_budget TEXT,
    generated_at_budget TEXT,
    start_datetime_trips TEXT,
    end_datetime_trips TEXT,
    actual_cost_budget TEXT,
    expensed_amount_itemization TEXT,
    expense_type_name_itemization TEXT,
    transaction_date_itemization TEXT,
    expense_category_itemization TEXT,
    vendor_name_expense TEXT,
    expense_type_name_expense TEXT,
    expense_category_expense TEXT,
    -- The feature vector in schema order, as a JSON array (null = NaN).
    features TEXT NOT NULL
);

-- Joining labels to their outcomes.
CREATE INDEX outcomes_pair ON outcomes (model, budget_id, itemization_id);
-- ListMistakes: only mislabelled outcomes enter this partial index.
CREATE INDEX outcomes_mistakes ON outcomes (model, scored_at_ms, outcome_id)
    WHERE label IS NOT NULL AND label <> matched;

-- Per-item errors of the scoring requests (one row per error; a re-sent
-- request's errors are stored once).
CREATE TABLE item_errors (
    request_id TEXT NOT NULL,
    item_kind TEXT NOT NULL,
    item_index BIGINT NOT NULL,
    field TEXT NOT NULL,
    code TEXT NOT NULL,
    budget_id TEXT NOT NULL,
    itemization_id TEXT NOT NULL,
    message TEXT NOT NULL,
    dropped BIGINT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (request_id, item_kind, item_index, field, code)
);

-- The current label of each key. request_id '' labels every outcome of
-- the pair; a non-empty request_id labels that request's outcome only and
-- wins over the pair's label.
CREATE TABLE labels (
    model TEXT NOT NULL,
    budget_id TEXT NOT NULL,
    itemization_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    label BIGINT NOT NULL,
    labelled_at_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL,
    PRIMARY KEY (model, budget_id, itemization_id, request_id)
);

-- Every label ever received, in arrival order (received_at_ms).
CREATE TABLE label_history (
    model TEXT NOT NULL,
    budget_id TEXT NOT NULL,
    itemization_id TEXT NOT NULL,
    request_id TEXT NOT NULL,
    label BIGINT NOT NULL,
    labelled_at_ms BIGINT NOT NULL,
    source TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL
);
CREATE INDEX label_history_pair ON label_history (model, budget_id, itemization_id);

-- Counters per model, version, shadow flag, threshold and UTC hour, kept
-- up to date as outcomes and labels arrive. Days and weeks are sums of
-- hours.
CREATE TABLE confusion_counts (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    shadow BIGINT NOT NULL,
    threshold DOUBLE PRECISION NOT NULL,
    hour_ms BIGINT NOT NULL,
    outcomes BIGINT NOT NULL,
    predicted_positive BIGINT NOT NULL,
    labelled BIGINT NOT NULL,
    tp BIGINT NOT NULL,
    fp BIGINT NOT NULL,
    fn BIGINT NOT NULL,
    tn BIGINT NOT NULL,
    score_sum DOUBLE PRECISION NOT NULL,
    -- Outcomes whose raw input field was absent or blank.
    null_budget_price_budget BIGINT NOT NULL,
    null_travel_vendor_receipts BIGINT NOT NULL,
    null_purchase_vendor_receipts BIGINT NOT NULL,
    null_budget_type_budget BIGINT NOT NULL,
    null_generated_at_budget BIGINT NOT NULL,
    null_start_datetime_trips BIGINT NOT NULL,
    null_end_datetime_trips BIGINT NOT NULL,
    null_actual_cost_budget BIGINT NOT NULL,
    null_expensed_amount_itemization BIGINT NOT NULL,
    null_expense_type_name_itemization BIGINT NOT NULL,
    null_transaction_date_itemization BIGINT NOT NULL,
    null_expense_category_itemization BIGINT NOT NULL,
    null_vendor_name_expense BIGINT NOT NULL,
    null_expense_type_name_expense BIGINT NOT NULL,
    null_expense_category_expense BIGINT NOT NULL,
    PRIMARY KEY (model, version, shadow, threshold, hour_ms)
);
CREATE INDEX confusion_counts_model_hour ON confusion_counts (model, hour_ms);

-- Timed business events close to the model.
CREATE TABLE events (
    name TEXT NOT NULL,
    duration_ms DOUBLE PRECISION NOT NULL,
    occurred_at_ms BIGINT NOT NULL,
    request_id TEXT NOT NULL,
    received_at_ms BIGINT NOT NULL
);
CREATE INDEX events_name_time ON events (name, occurred_at_ms);

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
