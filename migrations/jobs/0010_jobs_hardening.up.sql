-- Hardening, jobs: an order whose numbers overflow fails with a reason instead of stalling the
-- queue; change marks that never make two processors wait on each other; squatted single-flight
-- locks made visible; pinned search paths; privileges for the bundle's roles only.

-- Execution, split from claiming so that a failing order can be caught in a subtransaction.
CREATE FUNCTION jobs.execute_order(claimed jobs.order_queue) RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    price numeric;
    quantity numeric;
    cost numeric;
    available numeric;
    held numeric;
BEGIN
    SELECT i.current_price INTO price FROM jobs.issuers i WHERE i.ticker = claimed.ticker;
    IF claimed.amount IS NULL OR claimed.amount <= 0 OR claimed.amount IN ('NaN', 'Infinity') THEN
        RETURN format('amount must be positive, got %s', left(claimed.amount::text, 40));
    ELSIF price IS NULL THEN
        RETURN format('unknown ticker %s', left(claimed.ticker, 20));
    END IF;
    quantity := round(claimed.amount / price, 6);
    cost := quantity * price;
    IF quantity <= 0 THEN
        RETURN format('amount %s buys no whole millionth of a share at %s', claimed.amount, price);
    END IF;
    -- Balance row before holding row, in every order: the fixed lock order rules out deadlocks.
    INSERT INTO jobs.balances (user_id, cash) VALUES (claimed.user_id, 0) ON CONFLICT DO NOTHING;
    SELECT b.cash INTO available FROM jobs.balances b WHERE b.user_id = claimed.user_id FOR UPDATE;
    IF claimed.order_type = 'buy' THEN
        IF available < cost THEN
            RETURN format('insufficient funds: %s needed, %s available', left(cost::text, 40), available);
        END IF;
        UPDATE jobs.balances b SET cash = b.cash - cost WHERE b.user_id = claimed.user_id;
        INSERT INTO jobs.holdings AS h (user_id, ticker, shares)
        VALUES (claimed.user_id, claimed.ticker, quantity)
        ON CONFLICT (user_id, ticker) DO UPDATE SET shares = h.shares + excluded.shares;
    ELSE
        SELECT h.shares INTO held FROM jobs.holdings h
        WHERE h.user_id = claimed.user_id AND h.ticker = claimed.ticker FOR UPDATE;
        IF coalesce(held, 0) < quantity THEN
            RETURN format('insufficient holdings: %s shares needed, %s held', left(quantity::text, 40), coalesce(held, 0));
        END IF;
        UPDATE jobs.holdings h SET shares = h.shares - quantity
        WHERE h.user_id = claimed.user_id AND h.ticker = claimed.ticker;
        UPDATE jobs.balances b SET cash = b.cash + cost WHERE b.user_id = claimed.user_id;
    END IF;
    INSERT INTO jobs.trades (order_id, user_id, ticker, side, shares, price, amount)
    VALUES (claimed.id, claimed.user_id, claimed.ticker, claimed.order_type, quantity, price, cost);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION jobs.execute_order(jobs.order_queue) IS
    'Executes one claimed order at the current price and returns NULL, or returns why it cannot run (bad amount, unknown ticker, insufficient funds or holdings) having changed nothing. Called by jobs.process_next_queue_order().';

CREATE OR REPLACE FUNCTION jobs.process_next_queue_order() RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    next_order jobs.order_queue;
    reason text;
    failure text;
    state text;
BEGIN
    SELECT * INTO next_order FROM jobs.order_queue q
    WHERE q.status = 'pending' ORDER BY q.id LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;
    BEGIN
        reason := jobs.execute_order(next_order);
    EXCEPTION WHEN data_exception OR integrity_constraint_violation OR program_limit_exceeded THEN
        -- Numbers no column can hold: the order fails, its partial writes roll back, the queue goes on.
        GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
        reason := format('cannot be executed: %s (SQLSTATE %s)', left(failure, 200), state);
    END;
    UPDATE jobs.order_queue q
    SET status = CASE WHEN reason IS NULL THEN 'completed' ELSE 'failed' END,
        processed_at = clock_timestamp(),
        failure_reason = reason
    WHERE q.id = next_order.id;
    RETURN next_order.id;
END;
$$;
COMMENT ON FUNCTION jobs.process_next_queue_order() IS
    'Claims the oldest pending order with FOR UPDATE SKIP LOCKED and executes it at the current price: a buy spends round(amount / price, 6) shares'' worth of cash, a sell raises it. Every claimed order ends completed or failed with a reason, whatever its numbers: a bad order, or one whose arithmetic overflows, changes no balance. Returns the order id, or NULL when nothing is pending. Call it in its own transaction.';

-- Marks are plain rows, duplicates allowed: with a unique key, two processors marking one ticker
-- waited on each other's uncommitted mark while holding balance rows, and could deadlock.
ALTER TABLE jobs.stale_issuer_stats DROP CONSTRAINT stale_issuer_stats_pkey;
ALTER TABLE jobs.stale_hourly_bars DROP CONSTRAINT stale_hourly_bars_pkey;
COMMENT ON TABLE jobs.stale_issuer_stats IS 'Issuers whose cached stats changed since the last refresh; one row per marking statement, so writers never wait on each other here.';
COMMENT ON TABLE jobs.stale_hourly_bars IS 'Hours with trades not yet in jobs.hourly_prices, late trades included; one row per marking statement.';

CREATE OR REPLACE FUNCTION jobs.snapshot_hourly_prices() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    written integer;
BEGIN
    WITH consumed AS (
        DELETE FROM jobs.stale_hourly_bars RETURNING ticker, hour
    ), due AS (
        SELECT DISTINCT c.ticker, c.hour FROM consumed c
    ), bars AS (
        SELECT c.ticker, c.hour,
               (array_agg(t.price ORDER BY t.executed_at, t.id))[1] AS open,
               max(t.price) AS high, min(t.price) AS low,
               (array_agg(t.price ORDER BY t.executed_at DESC, t.id DESC))[1] AS close,
               sum(t.shares) AS volume, count(*) AS trade_count
        FROM due c
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

-- Squatting -----------------------------------------------------------------------------------------

CREATE FUNCTION jobs.squatted_locks()
    RETURNS TABLE (lock_key text, held_for text, pid integer, role_name text, since timestamptz)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH keys AS (
        SELECT s.lock_key::text AS lock_key, 'job ' || s.name AS held_for,
               ((s.lock_key >> 32) & 4294967295)::oid AS classid, (s.lock_key & 4294967295)::oid AS objid, 1 AS objsubid
        FROM jobs.schedules s
        UNION ALL
        SELECT '1835624306, 1', 'the migrate runner', 1835624306::oid, 1::oid, 2)
    SELECT k.lock_key, k.held_for, l.pid, a.usename::text, coalesce(a.xact_start, a.state_change, a.backend_start)
    FROM pg_locks l
    JOIN keys k ON l.classid = k.classid AND l.objid = k.objid AND l.objsubid = k.objsubid
    JOIN pg_stat_activity a ON a.pid = l.pid
    WHERE l.locktype = 'advisory' AND l.granted
      AND l.database = (SELECT d.oid FROM pg_database d WHERE d.datname = current_database())
      AND NOT pg_has_role(a.usesysid, 'freshet_worker', 'MEMBER')
      AND NOT pg_has_role(a.usesysid, (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'jobs'), 'MEMBER')
    ORDER BY 1, 3;
$$;
COMMENT ON FUNCTION jobs.squatted_locks() IS
    'Freshet''s advisory lock keys (each job''s single-flight key, the runner''s key) held by a session that is not Freshet''s: one whose role is neither the bundle''s owner nor a freshet_worker or freshet_admin. Such a holder makes single-flight jobs skip forever; health checks report it.';

CREATE FUNCTION jobs.set_schedule(job_name text, schedule text) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job jobs.schedules;
BEGIN
    SELECT * INTO job FROM jobs.schedules s WHERE s.name = set_schedule.job_name FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job: %', foundation.excerpt(job_name) USING ERRCODE = 'undefined_object';
    END IF;
    PERFORM jobs.schedule_job(job.name, schedule, job.command, job.lock_key);
END;
$$;
COMMENT ON FUNCTION jobs.set_schedule(text, text) IS
    'Changes when an existing job runs, never what it runs: freshet_admin''s way to move a schedule. A command runs with the rights of the role that scheduled it, so only the bundle''s owner schedules commands (jobs.schedule_job()).';

-- Monitoring that tells the truth: pg_cron's own record of each job's last run, failures included
-- (a pg_cron that cannot connect fails every run before jobs.run_job() is reached).
CREATE FUNCTION jobs.cron_last_runs() RETURNS TABLE (job_name text, status text, message text, started_at timestamptz)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT jobs.is_cron_available() THEN
        RETURN;
    END IF;
    RETURN QUERY EXECUTE $q$
        SELECT j.jobname::text, d.status::text, left(d.return_message, 500), d.start_time
        FROM cron.job j
        CROSS JOIN LATERAL (SELECT r.status, r.return_message, r.start_time FROM cron.job_run_details r
                            WHERE r.jobid = j.jobid ORDER BY r.start_time DESC NULLS LAST LIMIT 1) d
        WHERE j.jobname IN (SELECT s.name FROM jobs.schedules s)
    $q$;
END;
$$;
COMMENT ON FUNCTION jobs.cron_last_runs() IS
    'Each scheduled job''s last run as pg_cron recorded it (cron.job_run_details): status, message and start; nothing without pg_cron.';

CREATE OR REPLACE VIEW jobs.job_overview AS
SELECT s.name, s.schedule, s.command, jobs.is_cron_available() AS active,
       last.started_at AS last_started_at, last.outcome AS last_outcome, last.error AS last_error,
       (SELECT count(*) FROM jobs.runs f
         WHERE f.job_name = s.name AND f.outcome = 'failed' AND f.started_at > now() - interval '24 hours') AS failures_24h,
       c.status AS cron_status, c.message AS cron_message, c.started_at AS cron_last_run,
       coalesce(last.outcome = 'failed', false) OR coalesce(c.status = 'failed', false) AS failing
FROM jobs.schedules s
LEFT JOIN LATERAL (
    SELECT r.started_at, r.outcome, r.error FROM jobs.runs r
    WHERE r.job_name = s.name ORDER BY r.started_at DESC LIMIT 1
) last ON true
LEFT JOIN jobs.cron_last_runs() c ON c.job_name = s.name
ORDER BY s.name;
COMMENT ON VIEW jobs.job_overview IS
    'Each job with its schedule, whether pg_cron runs it, its last run in jobs.runs and in pg_cron''s own record, its failures in the last 24 hours, and failing: its last run failed, in either record (a pg_cron that cannot connect shows here).';

CREATE OR REPLACE FUNCTION jobs.check_schedule(schedule text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF schedule IS NULL
       OR NOT (schedule ~ '^@(yearly|annually|monthly|weekly|daily|hourly)$'
               OR schedule ~ '^\s*[0-9*/,-]+(\s+[0-9A-Za-z*/,-]+){4}\s*$') THEN
        RAISE EXCEPTION 'invalid cron schedule: %', foundation.excerpt(schedule)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use five fields (minute hour day-of-month month day-of-week), e.g. ''*/5 * * * *''; pg_cron 1.4 has no seconds field.';
    END IF;
    RETURN btrim(schedule);
END;
$$;

SELECT foundation.pin_search_paths('jobs');

-- The order processor is freshet_worker's interface to tables it may not write directly.
ALTER FUNCTION jobs.process_next_queue_order() SECURITY DEFINER;
ALTER FUNCTION jobs.process_all_pending_orders(integer) SECURITY DEFINER;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA jobs FROM PUBLIC;
GRANT USAGE ON SCHEMA jobs TO freshet_admin, freshet_worker;
GRANT EXECUTE ON FUNCTION jobs.process_next_queue_order(), jobs.process_all_pending_orders(integer) TO freshet_worker;
GRANT SELECT ON jobs.order_queue_status TO freshet_worker;
GRANT EXECUTE ON FUNCTION jobs.set_schedule(text, text), jobs.squatted_locks(), jobs.is_cron_available(), jobs.cron_last_runs() TO freshet_admin;
GRANT SELECT ON jobs.schedules, jobs.runs, jobs.recent_runs, jobs.job_overview TO freshet_admin;
