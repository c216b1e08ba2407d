-- The tables of DESIGN.md. Ticks are range partitioned by day; partitions are created by
-- stocktrack_common.partitions (writer on demand, janitor ahead of time).

CREATE TABLE ticks (
    symbol  text        NOT NULL,
    ts      timestamptz NOT NULL,
    price   numeric     NOT NULL CHECK (price > 0),
    size    bigint      NOT NULL CHECK (size >= 0),
    source  text        NOT NULL,
    PRIMARY KEY (symbol, ts, source)
) PARTITION BY RANGE (ts);

CREATE TABLE bars_1m (
    symbol   text        NOT NULL,
    bucket   timestamptz NOT NULL,
    open     numeric     NOT NULL,
    high     numeric     NOT NULL,
    low      numeric     NOT NULL,
    close    numeric     NOT NULL,
    volume   bigint      NOT NULL,
    trades   integer     NOT NULL,
    -- Times of the ticks behind open and close, so out-of-order batches merge correctly.
    first_ts timestamptz NOT NULL,
    last_ts  timestamptz NOT NULL,
    PRIMARY KEY (symbol, bucket)
);
CREATE INDEX bars_1m_bucket_idx ON bars_1m (bucket);

CREATE TABLE daily_bars (
    symbol    text    NOT NULL,
    day       date    NOT NULL,
    open      numeric NOT NULL,
    high      numeric NOT NULL,
    low       numeric NOT NULL,
    close     numeric NOT NULL,
    adj_close numeric,
    volume    bigint  NOT NULL,
    source    text    NOT NULL,
    PRIMARY KEY (symbol, day)
);

CREATE TABLE signals (
    symbol     text        NOT NULL,
    ts         timestamptz NOT NULL,
    source     text        NOT NULL,
    action     text        NOT NULL CHECK (action IN ('buy', 'sell', 'hold')),
    confidence double precision NOT NULL CHECK (confidence >= 0 AND confidence <= 1),
    price      numeric     NOT NULL,
    reasons    jsonb       NOT NULL DEFAULT '{}'::jsonb,
    PRIMARY KEY (symbol, ts, source)
);
CREATE INDEX signals_ts_idx ON signals (ts);

CREATE TABLE models (
    id          text        PRIMARY KEY,
    created_at  timestamptz NOT NULL DEFAULT now(),
    algorithm   text        NOT NULL,
    params      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    features    jsonb       NOT NULL DEFAULT '[]'::jsonb,
    label_spec  jsonb       NOT NULL DEFAULT '{}'::jsonb,
    train_from  date,
    train_to    date,
    metrics     jsonb       NOT NULL DEFAULT '{}'::jsonb,
    artifact    bytea       NOT NULL,
    active      boolean     NOT NULL DEFAULT false
);
-- At most one active model: activation is a single-row flip under this constraint.
CREATE UNIQUE INDEX models_one_active ON models (active) WHERE active;

CREATE TABLE api_keys (
    id         text        PRIMARY KEY,
    name       text        NOT NULL,
    key_hash   text        NOT NULL UNIQUE,
    scopes     text[]      NOT NULL DEFAULT ARRAY['read']::text[],
    created_at timestamptz NOT NULL DEFAULT now(),
    revoked_at timestamptz
);

CREATE TABLE symbols (
    symbol   text        PRIMARY KEY CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.\-]{0,14}$'),
    name     text,
    exchange text,
    currency text        NOT NULL DEFAULT 'USD',
    active   boolean     NOT NULL DEFAULT true,
    added_at timestamptz NOT NULL DEFAULT now()
);
