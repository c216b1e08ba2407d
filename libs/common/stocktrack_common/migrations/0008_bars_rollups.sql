-- Bars of 5 minutes, 15 minutes, 1 hour and 1 day, kept up to date from bars_1m, so the api
-- reads a coarser bar instead of rolling minutes up per request. Each table has the columns of
-- bars_1m (first_ts / last_ts keep the close rule of stocktrack_common.bars working at every
-- level) and the same grid as the api: date_bin from 2000-01-01 00:00 UTC, so days are UTC days.
--
-- Who keeps them: triggers on bars_1m only mark the 5-minute buckets a statement touched as
-- dirty (bars_rollup_dirty), in the same transaction, so every writer of minute bars (the
-- writer, backfill, the simulator's history, the janitor's roll-up of tick partitions, a
-- correction, a test) records what it changed without knowing, and without paying for the
-- roll-ups on its commit. The writer's roller (stocktrack_common.bar_rollups.roll_up_dirty)
-- claims dirty buckets, recomputes them cascaded (5m from 1m, 15m from 5m, 1h from 15m, 1d from
-- 1h) and deletes the marks it served in one transaction: a crash rolls the claim back with the
-- recompute, nothing is lost. A mark carries a generation from a sequence that every re-mark
-- replaces, and the roller deletes a mark only if it still has the generation it read and no
-- writer holds it: a minute committed after the roller's snapshot always leaves a mark behind.
-- `janitor retention` reconciles recent buckets and reports what it had to repair.

CREATE TABLE bars_5m (
    symbol   text        NOT NULL,
    bucket   timestamptz NOT NULL,
    open     numeric     NOT NULL,
    high     numeric     NOT NULL,
    low      numeric     NOT NULL,
    close    numeric     NOT NULL,
    volume   bigint      NOT NULL,
    trades   bigint      NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts  timestamptz NOT NULL,
    PRIMARY KEY (symbol, bucket)
);
CREATE INDEX bars_5m_bucket_idx ON bars_5m (bucket);

CREATE TABLE bars_15m (
    symbol   text        NOT NULL,
    bucket   timestamptz NOT NULL,
    open     numeric     NOT NULL,
    high     numeric     NOT NULL,
    low      numeric     NOT NULL,
    close    numeric     NOT NULL,
    volume   bigint      NOT NULL,
    trades   bigint      NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts  timestamptz NOT NULL,
    PRIMARY KEY (symbol, bucket)
);
CREATE INDEX bars_15m_bucket_idx ON bars_15m (bucket);

CREATE TABLE bars_1h (
    symbol   text        NOT NULL,
    bucket   timestamptz NOT NULL,
    open     numeric     NOT NULL,
    high     numeric     NOT NULL,
    low      numeric     NOT NULL,
    close    numeric     NOT NULL,
    volume   bigint      NOT NULL,
    trades   bigint      NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts  timestamptz NOT NULL,
    PRIMARY KEY (symbol, bucket)
);
CREATE INDEX bars_1h_bucket_idx ON bars_1h (bucket);

CREATE TABLE bars_1d (
    symbol   text        NOT NULL,
    bucket   timestamptz NOT NULL,
    open     numeric     NOT NULL,
    high     numeric     NOT NULL,
    low      numeric     NOT NULL,
    close    numeric     NOT NULL,
    volume   bigint      NOT NULL,
    trades   bigint      NOT NULL,
    first_ts timestamptz NOT NULL,
    last_ts  timestamptz NOT NULL,
    PRIMARY KEY (symbol, bucket)
);
CREATE INDEX bars_1d_bucket_idx ON bars_1d (bucket);

-- The levels, each rolled up from the one below it. One list, read by the initial fill and by
-- every recompute, so a level's table, source and width are written once.
CREATE FUNCTION bar_rollup_levels() RETURNS TABLE (tbl text, finer text, step interval)
LANGUAGE sql IMMUTABLE AS $$
    VALUES ('bars_5m', 'bars_1m', interval '5 minutes'), ('bars_15m', 'bars_5m', interval '15 minutes'),
           ('bars_1h', 'bars_15m', interval '1 hour'), ('bars_1d', 'bars_1h', interval '1 day')
$$;

-- The bars already stored, rolled up once, finest level first.
DO $$
DECLARE
    level record;
BEGIN
    FOR level IN SELECT * FROM bar_rollup_levels() ORDER BY step LOOP
        EXECUTE format($q$
            INSERT INTO %1$I (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
            SELECT symbol, date_bin($1, bucket, timestamptz '2000-01-01 00:00:00+00'),
                   (array_agg(open ORDER BY first_ts, open))[1], max(high), min(low),
                   (array_agg(close ORDER BY last_ts DESC, close DESC))[1], sum(volume)::bigint, sum(trades)::bigint,
                   min(first_ts), max(last_ts)
            FROM %2$I GROUP BY 1, 2
        $q$, level.tbl, level.finer) USING level.step;
    END LOOP;
END $$;

-- Recompute the roll-up buckets holding the given 5-minute buckets (symbol i, bucket i), level
-- by level from the finer table; a bucket left with nothing under it is deleted. Returns the
-- rows it changed, so the janitor can report repairs. Recomputes of a symbol run one at a time
-- (its advisory lock, which only recomputes take): one that read older minutes can never
-- overwrite the result of one that read newer ones.
CREATE FUNCTION recompute_bar_rollups_5m(p_symbols text[], p_buckets timestamptz[]) RETURNS bigint
LANGUAGE plpgsql AS $$
DECLARE
    changed bigint := 0;
    n bigint;
    syms text[] := p_symbols;
    keys timestamptz[] := p_buckets;
    level record;
BEGIN
    PERFORM pg_advisory_xact_lock(727002, k)
    FROM (SELECT DISTINCT hashtext(s) AS k FROM unnest(p_symbols) AS s) AS x ORDER BY k;
    FOR level IN SELECT * FROM bar_rollup_levels() ORDER BY step LOOP
        -- The buckets of this level holding the ones below, in key order (row locks taken in one order).
        SELECT array_agg(s ORDER BY s COLLATE "C", k), array_agg(k ORDER BY s COLLATE "C", k) INTO syms, keys
        FROM (SELECT DISTINCT s, date_bin(level.step, k, timestamptz '2000-01-01 00:00:00+00') AS k
              FROM unnest(syms, keys) AS u(s, k)) AS x;
        IF syms IS NULL THEN
            RETURN 0;
        END IF;
        EXECUTE format($q$
            WITH want AS (
                SELECT u.s AS symbol, u.k AS bucket, f.*
                FROM unnest($1::text[], $2::timestamptz[]) AS u(s, k)
                CROSS JOIN LATERAL (
                    SELECT (array_agg(open ORDER BY first_ts, open))[1], max(high), min(low),
                           (array_agg(close ORDER BY last_ts DESC, close DESC))[1], sum(volume)::bigint,
                           sum(trades)::bigint, min(first_ts), max(last_ts)
                    FROM %2$I m WHERE m.symbol = u.s AND m.bucket >= u.k AND m.bucket < u.k + $3
                ) AS f(open, high, low, close, volume, trades, first_ts, last_ts)
            ), gone AS (
                DELETE FROM %1$I b USING want w
                WHERE b.symbol = w.symbol AND b.bucket = w.bucket AND w.first_ts IS NULL
                RETURNING 1
            ), put AS (
                INSERT INTO %1$I AS b (symbol, bucket, open, high, low, close, volume, trades, first_ts, last_ts)
                SELECT * FROM want WHERE first_ts IS NOT NULL
                ON CONFLICT (symbol, bucket) DO UPDATE SET
                    (open, high, low, close, volume, trades, first_ts, last_ts) = (excluded.open, excluded.high,
                     excluded.low, excluded.close, excluded.volume, excluded.trades, excluded.first_ts, excluded.last_ts)
                WHERE (b.open, b.high, b.low, b.close, b.volume, b.trades, b.first_ts, b.last_ts)
                      IS DISTINCT FROM (excluded.open, excluded.high, excluded.low, excluded.close, excluded.volume,
                                        excluded.trades, excluded.first_ts, excluded.last_ts)
                RETURNING 1
            )
            SELECT (SELECT count(*) FROM gone) + (SELECT count(*) FROM put)
        $q$, level.tbl, level.finer) INTO n USING syms, keys, level.step;
        changed := changed + n;
    END LOOP;
    RETURN changed;
END $$;

-- The same for every roll-up bucket overlapping the minutes [p_from, p_to) of one symbol: what a
-- correction of stored minute bars, or a reconciliation, calls.
CREATE FUNCTION recompute_bar_rollups(p_symbol text, p_from timestamptz, p_to timestamptz) RETURNS bigint
LANGUAGE sql AS $$
    SELECT coalesce(recompute_bar_rollups_5m(array_agg(p_symbol), array_agg(k)), 0)
    FROM generate_series(date_bin('5 minutes', p_from, timestamptz '2000-01-01 00:00:00+00'), p_to - interval '1 microsecond',
                         interval '5 minutes') AS k
    WHERE p_to > p_from
$$;

-- Dirty 5-minute buckets: one row per (symbol, bucket) however many statements touched it, so a
-- busy bucket costs a writer batch one small HOT update (gen is in no index; fillfactor leaves
-- each page room for the new version). Not UNLOGGED: a mark lost in a crash would be a roll-up
-- that stays wrong until the janitor's reconciliation.
CREATE SEQUENCE bars_rollup_dirty_gen;
CREATE TABLE bars_rollup_dirty (
    symbol text        NOT NULL,
    bucket timestamptz NOT NULL,
    gen    bigint      NOT NULL DEFAULT nextval('bars_rollup_dirty_gen'),
    PRIMARY KEY (symbol, bucket)
) WITH (fillfactor = 50);

-- A re-mark takes a new generation (excluded.gen, the default drawn for the proposed row) rather
-- than doing nothing: the new row version (or, while uncommitted, its row lock) is what keeps the
-- roller from deleting a mark whose minutes it has not read. Marks are written in key order, so
-- two writers marking the same buckets cannot deadlock.
CREATE FUNCTION bars_1m_rollups_mark_new() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bars_rollup_dirty AS d (symbol, bucket)
    SELECT DISTINCT symbol, date_bin('5 minutes', bucket, timestamptz '2000-01-01 00:00:00+00') FROM new_rows ORDER BY 1, 2
    ON CONFLICT (symbol, bucket) DO UPDATE SET gen = excluded.gen;
    RETURN NULL;
END $$;

-- An update marks the buckets of the old and the new key (a changed key leaves one, joins another).
CREATE FUNCTION bars_1m_rollups_mark_updated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bars_rollup_dirty AS d (symbol, bucket)
    SELECT DISTINCT symbol, date_bin('5 minutes', bucket, timestamptz '2000-01-01 00:00:00+00')
    FROM (SELECT symbol, bucket FROM new_rows UNION ALL SELECT symbol, bucket FROM old_rows) AS k ORDER BY 1, 2
    ON CONFLICT (symbol, bucket) DO UPDATE SET gen = excluded.gen;
    RETURN NULL;
END $$;

CREATE FUNCTION bars_1m_rollups_mark_old() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO bars_rollup_dirty AS d (symbol, bucket)
    SELECT DISTINCT symbol, date_bin('5 minutes', bucket, timestamptz '2000-01-01 00:00:00+00') FROM old_rows ORDER BY 1, 2
    ON CONFLICT (symbol, bucket) DO UPDATE SET gen = excluded.gen;
    RETURN NULL;
END $$;

-- Nothing is left to roll up: emptied in the same transaction, exact at once.
CREATE FUNCTION bars_1m_rollups_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    TRUNCATE bars_5m, bars_15m, bars_1h, bars_1d, bars_rollup_dirty;
    RETURN NULL;
END $$;

CREATE TRIGGER bars_1m_rollups_insert AFTER INSERT ON bars_1m
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION bars_1m_rollups_mark_new();
CREATE TRIGGER bars_1m_rollups_update AFTER UPDATE ON bars_1m
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows
    FOR EACH STATEMENT EXECUTE FUNCTION bars_1m_rollups_mark_updated();
CREATE TRIGGER bars_1m_rollups_delete AFTER DELETE ON bars_1m
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION bars_1m_rollups_mark_old();
CREATE TRIGGER bars_1m_rollups_truncate AFTER TRUNCATE ON bars_1m
    FOR EACH STATEMENT EXECUTE FUNCTION bars_1m_rollups_truncated();
