-- Alerts (docs/monitoring.md, "Alerts"). Runs unchanged on SQLite and
-- PostgreSQL.

-- One row per stretch of time an alert fired: a row whose resolved_ms is
-- NULL is firing now. The key names the alert (its rule, the model, the
-- version and the subject: the feature or field it is about, '' when the
-- rule has none) and when it started firing, so the firing state and its
-- since-when survive restarts, and the rows are the history the weekly
-- report lists for a window.
CREATE TABLE alerts (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    name TEXT NOT NULL,
    subject TEXT NOT NULL,
    -- Start of the first closed bucket found breaching the rule.
    since_ms BIGINT NOT NULL,
    severity TEXT NOT NULL,
    -- The last evaluation's value and threshold (NULL if not finite).
    value DOUBLE PRECISION,
    threshold DOUBLE PRECISION,
    -- Start of the last bucket evaluated while firing.
    evaluated_ms BIGINT NOT NULL,
    -- Start of the first closed bucket found healthy again; NULL while
    -- firing.
    resolved_ms BIGINT,
    -- When the webhook last delivered the firing alert (an evaluation's
    -- time); NULL when never.
    notified_ms BIGINT,
    -- 1 once the webhook delivered the resolution.
    resolved_notified BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (model, version, name, subject, since_ms)
);

-- The alerts of a window, newest first.
CREATE INDEX alerts_since ON alerts (since_ms);

-- confusion_counts summed per UTC day over thresholds: one row per
-- (model, version, shadow, day), moved by the same deltas in the same
-- transaction as the hourly rows (store/days.rs), so it always equals
-- summing them. Alert evaluation reads 90 daily rows per version from it
-- instead of 2 160 hourly ones (docs/performance.md, "Alert evaluation").
CREATE TABLE confusion_days (
    model TEXT NOT NULL,
    version TEXT NOT NULL,
    shadow BIGINT NOT NULL,
    -- Start of the UTC day.
    day_ms BIGINT NOT NULL,
    -- The first and last hour of the day holding an outcome.
    first_hour_ms BIGINT NOT NULL,
    last_hour_ms BIGINT NOT NULL,
    outcomes BIGINT NOT NULL,
    predicted_positive BIGINT NOT NULL,
    labelled BIGINT NOT NULL,
    tp BIGINT NOT NULL,
    fp BIGINT NOT NULL,
    fn BIGINT NOT NULL,
    tn BIGINT NOT NULL,
    score_sum DOUBLE PRECISION NOT NULL,
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
    expected_tp DOUBLE PRECISION NOT NULL,
    expected_fp DOUBLE PRECISION NOT NULL,
    expected_fn DOUBLE PRECISION NOT NULL,
    expected_tn DOUBLE PRECISION NOT NULL,
    -- A gated model's outcomes not scored (migration 0004).
    not_scored BIGINT NOT NULL,
    PRIMARY KEY (model, version, shadow, day_ms)
);

-- The counters stored before this migration.
INSERT INTO confusion_days (model, version, shadow, day_ms, first_hour_ms, last_hour_ms,
    outcomes, predicted_positive, labelled, tp, fp, fn, tn, score_sum, null_budget_price_budget, null_travel_vendor_receipts, null_purchase_vendor_receipts, null_budget_type_budget, null_generated_at_budget, null_start_datetime_trips, null_end_datetime_trips, null_actual_cost_budget, null_expensed_amount_itemization, null_expense_type_name_itemization, null_transaction_date_itemization, null_expense_category_itemization, null_vendor_name_expense, null_expense_type_name_expense, null_expense_category_expense, expected_tp, expected_fp, expected_fn, expected_tn, not_scored)
SELECT model, version, shadow, (hour_ms / 86400000 - CASE WHEN hour_ms % 86400000 < 0 THEN 1 ELSE 0 END) * 86400000, MIN(hour_ms), MAX(hour_ms),
    CAST(SUM(outcomes) AS BIGINT),
    CAST(SUM(predicted_positive) AS BIGINT),
    CAST(SUM(labelled) AS BIGINT),
    CAST(SUM(tp) AS BIGINT),
    CAST(SUM(fp) AS BIGINT),
    CAST(SUM(fn) AS BIGINT),
    CAST(SUM(tn) AS BIGINT),
    SUM(score_sum),
    CAST(SUM(null_budget_price_budget) AS BIGINT),
    CAST(SUM(null_travel_vendor_receipts) AS BIGINT),
    CAST(SUM(null_purchase_vendor_receipts) AS BIGINT),
    CAST(SUM(null_budget_type_budget) AS BIGINT),
    CAST(SUM(null_generated_at_budget) AS BIGINT),
    CAST(SUM(null_start_datetime_trips) AS BIGINT),
    CAST(SUM(null_end_datetime_trips) AS BIGINT),
    CAST(SUM(null_actual_cost_budget) AS BIGINT),
    CAST(SUM(null_expensed_amount_itemization) AS BIGINT),
    CAST(SUM(null_expense_type_name_itemization) AS BIGINT),
    CAST(SUM(null_transaction_date_itemization) AS BIGINT),
    CAST(SUM(null_expense_category_itemization) AS BIGINT),
    CAST(SUM(null_vendor_name_expense) AS BIGINT),
    CAST(SUM(null_expense_type_name_expense) AS BIGINT),
    CAST(SUM(null_expense_category_expense) AS BIGINT),
    SUM(expected_tp),
    SUM(expected_fp),
    SUM(expected_fn),
    SUM(expected_tn),
    CAST(SUM(not_scored) AS BIGINT)
FROM confusion_counts
GROUP BY model, version, shadow, (hour_ms / 86400000 - CASE WHEN hour_ms % 86400000 < 0 THEN 1 ELSE 0 END) * 86400000;
