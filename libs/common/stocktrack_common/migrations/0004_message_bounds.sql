-- The bounds the stream messages enforce (stocktrack_common.messages: PRICE_MAX_INTEGER_DIGITS,
-- PRICE_MAX_SCALE, MAX_TICK_SIZE), stated on the tables too, so the two cannot drift apart:
-- a tick or signal that validates can be stored, and one the tables refuse never validates.
-- NOT VALID: rows written before these bounds existed are left alone (no scan of ticks);
-- every new row is checked.

ALTER TABLE ticks
    ADD CONSTRAINT ticks_price_bounds CHECK (price < 1e15 AND scale(price) <= 12) NOT VALID,
    ADD CONSTRAINT ticks_size_bounds CHECK (size <= 999999999999) NOT VALID;

ALTER TABLE signals
    ADD CONSTRAINT signals_price_bounds CHECK (price > 0 AND price < 1e15 AND scale(price) <= 12) NOT VALID;
