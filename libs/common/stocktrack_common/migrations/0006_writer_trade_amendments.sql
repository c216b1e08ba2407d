-- Trade corrections and cancels (docs/architecture.md, "Trade amendments").
--
-- A streamed trade's stored tick keeps the provider's trade id, so an amendment finds it by
-- (symbol, source, trade_id). Not by (symbol, ts, price, size): the fetcher moves a late trade's
-- time past the symbol's last tick to keep (symbol, ts, source) unique, and equal trades in one
-- millisecond are common. Nullable and unchecked: adding a column without a default or CHECK
-- does not rewrite or scan the existing partitions, and the message model bounds the values.
ALTER TABLE ticks ADD COLUMN trade_id text;
CREATE INDEX ticks_trade_id ON ticks (symbol, source, trade_id) WHERE trade_id IS NOT NULL;

-- Every amendment received, the first per trade id: a redelivered one conflicts and changes
-- nothing, and a trade stored after its amendment (or stored again by a redelivery after a
-- cancel) is amended as it is stored. applied_at is when a stored tick was first amended.
CREATE TABLE trade_amendments (
    source text NOT NULL,
    symbol text NOT NULL,
    trade_id text NOT NULL,
    kind text NOT NULL CHECK (kind IN ('correction', 'cancel')),
    price numeric NOT NULL CHECK (price > 0 AND price < 1e15),
    size bigint NOT NULL CHECK (size >= 0 AND size <= 999999999999),
    corrected_trade_id text CHECK ((kind = 'correction') = (corrected_trade_id IS NOT NULL)),
    ts timestamptz NOT NULL,
    received_at timestamptz NOT NULL DEFAULT now(),
    applied_at timestamptz,
    PRIMARY KEY (source, symbol, trade_id)
);
-- janitor retention deletes amendments with their ticks' days, by ts.
CREATE INDEX trade_amendments_ts ON trade_amendments (ts);
