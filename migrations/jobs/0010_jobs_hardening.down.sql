-- Undo 0010_jobs_hardening.up.sql: the previous functions, marks with unique keys, paths and privileges.

REVOKE SELECT ON jobs.schedules, jobs.runs, jobs.recent_runs, jobs.job_overview FROM freshet_admin;
REVOKE SELECT ON jobs.order_queue_status FROM freshet_worker;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA jobs FROM freshet_admin, freshet_worker;
REVOKE USAGE ON SCHEMA jobs FROM freshet_admin, freshet_worker;

ALTER FUNCTION jobs.process_all_pending_orders(integer) SECURITY INVOKER;
DROP VIEW jobs.job_overview;
CREATE VIEW jobs.job_overview AS
SELECT s.name, s.schedule, s.command, jobs.is_cron_available() AS active,
       last.started_at AS last_started_at, last.outcome AS last_outcome, last.error AS last_error,
       (SELECT count(*) FROM jobs.runs f
         WHERE f.job_name = s.name AND f.outcome = 'failed' AND f.started_at > now() - interval '24 hours') AS failures_24h
FROM jobs.schedules s
LEFT JOIN LATERAL (
    SELECT r.started_at, r.outcome, r.error FROM jobs.runs r
    WHERE r.job_name = s.name ORDER BY r.started_at DESC LIMIT 1
) last ON true
ORDER BY s.name;
COMMENT ON VIEW jobs.job_overview IS 'Each job with its schedule, whether pg_cron runs it, its last run and its failures in the last 24 hours.';
DROP FUNCTION jobs.cron_last_runs();
DROP FUNCTION jobs.set_schedule(text, text);
DROP FUNCTION jobs.squatted_locks();

CREATE OR REPLACE FUNCTION jobs.process_next_queue_order() RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    next_order jobs.order_queue;
    price numeric;
    quantity numeric;
    cost numeric;
    available numeric;
    held numeric;
    reason text;
BEGIN
    SELECT * INTO next_order FROM jobs.order_queue q
    WHERE q.status = 'pending' ORDER BY q.id LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    SELECT i.current_price INTO price FROM jobs.issuers i WHERE i.ticker = next_order.ticker;
    IF next_order.amount <= 0 THEN
        reason := format('amount must be positive, got %s', next_order.amount);
    ELSIF price IS NULL THEN
        reason := format('unknown ticker %s', next_order.ticker);
    ELSE
        quantity := round(next_order.amount / price, 6);
        cost := quantity * price;
        IF quantity <= 0 THEN
            reason := format('amount %s buys no whole millionth of a share at %s', next_order.amount, price);
        ELSE
            -- Balance row before holding row, in every order: the fixed lock order rules out deadlocks.
            INSERT INTO jobs.balances (user_id, cash) VALUES (next_order.user_id, 0) ON CONFLICT DO NOTHING;
            SELECT b.cash INTO available FROM jobs.balances b WHERE b.user_id = next_order.user_id FOR UPDATE;
            IF next_order.order_type = 'buy' THEN
                IF available < cost THEN
                    reason := format('insufficient funds: %s needed, %s available', cost, available);
                ELSE
                    UPDATE jobs.balances b SET cash = b.cash - cost WHERE b.user_id = next_order.user_id;
                    INSERT INTO jobs.holdings AS h (user_id, ticker, shares)
                    VALUES (next_order.user_id, next_order.ticker, quantity)
                    ON CONFLICT (user_id, ticker) DO UPDATE SET shares = h.shares + excluded.shares;
                END IF;
            ELSE
                SELECT h.shares INTO held FROM jobs.holdings h
                WHERE h.user_id = next_order.user_id AND h.ticker = next_order.ticker FOR UPDATE;
                IF coalesce(held, 0) < quantity THEN
                    reason := format('insufficient holdings: %s shares needed, %s held', quantity, coalesce(held, 0));
                ELSE
                    UPDATE jobs.holdings h SET shares = h.shares - quantity
                    WHERE h.user_id = next_order.user_id AND h.ticker = next_order.ticker;
                    UPDATE jobs.balances b SET cash = b.cash + cost WHERE b.user_id = next_order.user_id;
                END IF;
            END IF;
            IF reason IS NULL THEN
                INSERT INTO jobs.trades (order_id, user_id, ticker, side, shares, price, amount)
                VALUES (next_order.id, next_order.user_id, next_order.ticker, next_order.order_type, quantity, price, cost);
            END IF;
        END IF;
    END IF;

    UPDATE jobs.order_queue q
    SET status = CASE WHEN reason IS NULL THEN 'completed' ELSE 'failed' END,
        processed_at = clock_timestamp(),
        failure_reason = reason
    WHERE q.id = next_order.id;
    RETURN next_order.id;
END;
$$;
COMMENT ON FUNCTION jobs.process_next_queue_order() IS
    'Claims the oldest pending order with FOR UPDATE SKIP LOCKED and executes it at the current price: a buy spends round(amount / price, 6) shares'' worth of cash, a sell raises it. A bad order (non-positive amount, unknown ticker, insufficient funds or holdings) fails with a reason and changes no balance. Returns the order id, or NULL when nothing is pending. Call it in its own transaction.';

CREATE OR REPLACE FUNCTION jobs.snapshot_hourly_prices() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    written integer;
BEGIN
    WITH consumed AS (
        DELETE FROM jobs.stale_hourly_bars RETURNING ticker, hour
    ), bars AS (
        SELECT c.ticker, c.hour,
               (array_agg(t.price ORDER BY t.executed_at, t.id))[1] AS open,
               max(t.price) AS high, min(t.price) AS low,
               (array_agg(t.price ORDER BY t.executed_at DESC, t.id DESC))[1] AS close,
               sum(t.shares) AS volume, count(*) AS trade_count
        FROM consumed c
        JOIN jobs.trades t ON t.ticker = c.ticker
         AND t.executed_at >= c.hour AND t.executed_at < c.hour + interval '1 hour'
        GROUP BY c.ticker, c.hour
    )
    INSERT INTO jobs.hourly_prices AS p (ticker, hour, open, high, low, close, volume, trade_count)
    SELECT ticker, hour, open, high, low, close, volume, trade_count FROM bars
    ON CONFLICT (ticker, hour) DO UPDATE SET
        open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
        volume = excluded.volume, trade_count = excluded.trade_count;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;
COMMENT ON FUNCTION jobs.snapshot_hourly_prices() IS
    'Rebuilds the OHLC bar of every (issuer, hour) that gained trades since the last run, late trades included. Idempotent: a second run finds nothing stale and writes nothing. Returns how many bars it wrote.';

CREATE OR REPLACE FUNCTION jobs.check_schedule(schedule text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog
AS $$
BEGIN
    IF schedule IS NULL
       OR NOT (schedule ~ '^@(yearly|annually|monthly|weekly|daily|hourly)$'
               OR schedule ~ '^\s*[0-9*/,-]+(\s+[0-9A-Za-z*/,-]+){4}\s*$') THEN
        RAISE EXCEPTION 'invalid cron schedule: %', coalesce(quote_literal(schedule), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use five fields (minute hour day-of-month month day-of-week), e.g. ''*/5 * * * *''; pg_cron 1.4 has no seconds field.';
    END IF;
    RETURN btrim(schedule);
END;
$$;
COMMENT ON FUNCTION jobs.check_schedule(text) IS 'Returns a five-field cron schedule or @-macro unchanged, or raises 22023.';

DROP FUNCTION jobs.execute_order(jobs.order_queue);

-- Duplicate marks mean the same as one.
DELETE FROM jobs.stale_issuer_stats a USING jobs.stale_issuer_stats b WHERE a.ticker = b.ticker AND a.ctid < b.ctid;
DELETE FROM jobs.stale_hourly_bars a USING jobs.stale_hourly_bars b WHERE (a.ticker, a.hour) = (b.ticker, b.hour) AND a.ctid < b.ctid;
ALTER TABLE jobs.stale_issuer_stats ADD CONSTRAINT stale_issuer_stats_pkey PRIMARY KEY (ticker);
ALTER TABLE jobs.stale_hourly_bars ADD CONSTRAINT stale_hourly_bars_pkey PRIMARY KEY (ticker, hour);
COMMENT ON TABLE jobs.stale_issuer_stats IS 'Issuers whose cached stats changed since the last refresh.';
COMMENT ON TABLE jobs.stale_hourly_bars IS 'Hours with trades not yet in jobs.hourly_prices, late trades included.';

ALTER FUNCTION jobs.setting_interval(text) SET search_path = pg_catalog;
ALTER FUNCTION jobs.retention(interval,text) SET search_path = pg_catalog;
ALTER FUNCTION jobs.is_cron_available() SET search_path = pg_catalog;
ALTER FUNCTION jobs.schedule_job(text,text,text,bigint) SET search_path = pg_catalog;
ALTER FUNCTION jobs.unschedule_job(text) SET search_path = pg_catalog;
ALTER FUNCTION jobs.apply_schedules() SET search_path = pg_catalog;
ALTER FUNCTION jobs.run_job(text) SET search_path = pg_catalog;
ALTER FUNCTION jobs.prune_run_history(interval) SET search_path = pg_catalog;
ALTER FUNCTION jobs.mark_traded() SET search_path = pg_catalog;
ALTER FUNCTION jobs.mark_holdings_changed() SET search_path = pg_catalog;
ALTER FUNCTION jobs.set_price(text,numeric) SET search_path = pg_catalog;
ALTER FUNCTION jobs.process_all_pending_orders(integer) SET search_path = pg_catalog;
ALTER FUNCTION jobs.wake_order_processors() SET search_path = pg_catalog;
ALTER FUNCTION jobs.refresh_issuer_stats_cache() SET search_path = pg_catalog;
ALTER FUNCTION jobs.cleanup_old_orders(interval) SET search_path = pg_catalog;

GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA jobs TO PUBLIC;
