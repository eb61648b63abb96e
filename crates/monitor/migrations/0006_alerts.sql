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
