-- price_cross levels are accepted in one written form only (digits, at most 8 after the point,
-- no exponent), and the alerts worker reads stored rules with the same rule. Rules stored before
-- wrote some levels in exponent form ('1E+3', '1E-7'); rewrite those in plain notation so the
-- worker keeps evaluating them. PostgreSQL's numeric text output is plain notation.
UPDATE alert_rules
SET condition = jsonb_set(condition, '{level}', to_jsonb(((condition ->> 'level')::numeric)::text))
WHERE condition ->> 'type' = 'price_cross' AND condition ->> 'level' ~* 'e';
