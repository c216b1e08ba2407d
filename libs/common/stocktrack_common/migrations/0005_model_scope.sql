-- One model per timeframe and scope: a model records the bar interval it was trained on and the
-- symbols it serves ('*' = any symbol), and activation replaces only the active model of the same
-- (interval, scope), so training MSFT no longer replaces AAPL's model.
ALTER TABLE models ADD COLUMN bar_interval text NOT NULL DEFAULT '1d'
    CHECK (bar_interval ~ '^[0-9]{1,4}[mhd]$');
ALTER TABLE models ADD COLUMN scope text NOT NULL DEFAULT '*'
    CHECK (scope = '*' OR scope ~ '^[A-Z0-9][A-Z0-9.\-]{0,14}(,[A-Z0-9][A-Z0-9.\-]{0,14})*$');
DROP INDEX models_one_active;
CREATE UNIQUE INDEX models_one_active_per_scope ON models (bar_interval, scope) WHERE active;
