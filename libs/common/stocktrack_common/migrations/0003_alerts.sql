-- Alert rules registered through the api, and the outbox of their deliveries.
--
-- condition (jsonb), one of:
--   {"type": "signal", "actions": ["buy"], "source": "rules" | "model" | "model:<id>" | null, "min_confidence": 0.0}
--   {"type": "price_cross", "level": "123.45", "direction": "above" | "below" | "either"}
--   {"type": "rsi_cross", "threshold": 70, "direction": "above" | "below" | "either", "period": 14}
-- target_type: 'webhook' (JSON body signed with HMAC-SHA256 of `secret`) or 'slack' (incoming webhook).

CREATE TABLE alert_rules (
    id          text        PRIMARY KEY,
    symbol      text        NOT NULL CHECK (symbol ~ '^[A-Z0-9][A-Z0-9.\-]{0,14}$'),
    condition   jsonb       NOT NULL,
    target_type text        NOT NULL CHECK (target_type IN ('webhook', 'slack')),
    target_url  text        NOT NULL,
    secret      text,
    name        text,
    enabled     boolean     NOT NULL DEFAULT true,
    created_by  text,
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_symbol_idx ON alert_rules (symbol) WHERE enabled;

-- One row per (rule, event): the primary key is what makes an alert fire once per event even
-- when the stream entry behind it is delivered again. Rows are the work queue of the sender.
CREATE TABLE alert_deliveries (
    rule_id          text        NOT NULL REFERENCES alert_rules (id) ON DELETE CASCADE,
    event_key        text        NOT NULL,
    delivery_id      text        NOT NULL UNIQUE,
    payload          jsonb       NOT NULL,
    status           text        NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'delivered', 'dead')),
    attempts         integer     NOT NULL DEFAULT 0,
    next_attempt_at  timestamptz NOT NULL DEFAULT now(),
    lease_until      timestamptz,
    last_status_code integer,
    last_error       text,
    created_at       timestamptz NOT NULL DEFAULT now(),
    finished_at      timestamptz,
    PRIMARY KEY (rule_id, event_key)
);
CREATE INDEX alert_deliveries_due_idx ON alert_deliveries (next_attempt_at) WHERE status = 'pending';
