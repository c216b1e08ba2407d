-- Chunks of history the fetcher's backfill has completed, so a rerun after a crash skips
-- them and resumes where it stopped. Only periods entirely in the past are recorded.
CREATE TABLE backfill_progress (
    provider     text        NOT NULL,
    symbol       text        NOT NULL,
    interval     text        NOT NULL CHECK (interval IN ('1d', '1m')),
    chunk_start  date        NOT NULL,
    chunk_end    date        NOT NULL,
    rows         integer     NOT NULL,
    completed_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (provider, symbol, interval, chunk_start),
    CHECK (chunk_end >= chunk_start)
);
