-- migrate:derived lease tokens belong to claims in flight, which the up file issues anew to every job being processed
-- Undo 0011_refresh_hardening.up.sql: worker ids instead of lease tokens, the previous functions,
-- paths and privileges.

REVOKE ALL ON ALL TABLES IN SCHEMA refresh FROM freshet_admin, freshet_worker, freshet_client;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA refresh FROM freshet_admin, freshet_worker, freshet_client;

ALTER FUNCTION refresh.set_setting(text, text) SECURITY INVOKER;
ALTER FUNCTION refresh.evaluate_circuit_breaker() SECURITY INVOKER;
ALTER FUNCTION refresh.register_data_type(text, text, text, text, text, text, integer, bigint, text, integer) SECURITY INVOKER;
ALTER FUNCTION refresh.unregister_data_type(text) SECURITY INVOKER;
ALTER FUNCTION refresh.set_update_trigger(boolean) SECURITY INVOKER;
ALTER FUNCTION refresh.record_health_check() SECURITY INVOKER;

DROP FUNCTION refresh.complete_queue_jobs(bigint[], bigint[], uuid[]);
DROP FUNCTION refresh.complete_queue_job(bigint, bigint, uuid);
DROP FUNCTION refresh.fail_queue_job(bigint, text, uuid);
DROP FUNCTION refresh.refuse_unheld_job(bigint, uuid);

CREATE OR REPLACE FUNCTION refresh.refuse_unheld_job(job_id bigint, worker_id text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    found_status text;
    holder text;
BEGIN
    SELECT q.status, q.worker_id INTO found_status, holder FROM refresh.api_call_queue q WHERE q.id = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refresh job % does not exist', job_id USING ERRCODE = 'no_data_found';
    ELSIF found_status = 'processing' THEN
        RAISE EXCEPTION 'refresh job % is held by worker %, not %', job_id, quote_literal(holder), quote_literal(worker_id)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Its lease expired and another worker claimed it: drop this result.';
    ELSIF found_status = 'pending' THEN
        RAISE EXCEPTION 'refresh job % is not held by worker %: its lease expired and it is queued again', job_id, quote_literal(worker_id)
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Drop this result; the job will run again.';
    ELSE
        RAISE EXCEPTION 'refresh job % is already %', job_id, found_status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END;
$$;
COMMENT ON FUNCTION refresh.refuse_unheld_job(bigint, text) IS 'Raises the error that says why a worker cannot finish a job it does not hold.';

CREATE OR REPLACE FUNCTION refresh.enqueue(data_types text[], symbols text[], priority integer, estimated_size_bytes bigint) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    created integer;
    attempts_allowed integer := refresh.setting('max_attempts')::integer;
BEGIN
    -- Keys are inserted in (data type, symbol) order everywhere, so concurrent batches never deadlock.
    WITH keys AS (
        INSERT INTO refresh.active_job_keys AS k (data_type, symbol, job_id)
        SELECT u.data_type, u.symbol, nextval('refresh.api_call_queue_id_seq')
        FROM (SELECT DISTINCT w.data_type, w.symbol FROM unnest(data_types, symbols) AS w(data_type, symbol)
              WHERE w.symbol IS NOT NULL ORDER BY 1, 2) u
        ON CONFLICT DO NOTHING
        RETURNING k.job_id, k.data_type, k.symbol
    )
    INSERT INTO refresh.api_call_queue_pending (id, data_type, symbol, status, priority, max_attempts, estimated_size_bytes)
    SELECT keys.job_id, keys.data_type, keys.symbol, 'pending', enqueue.priority, attempts_allowed,
           coalesce(enqueue.estimated_size_bytes, r.estimated_data_size_bytes)
    FROM keys JOIN refresh.data_type_registry r ON r.data_type = keys.data_type;
    GET DIAGNOSTICS created = ROW_COUNT;
    IF created < cardinality(symbols) THEN
        -- A user-facing request raises the priority of a job that is already waiting.
        UPDATE refresh.api_call_queue_pending p SET priority = enqueue.priority
        WHERE p.id IN (SELECT q.id FROM unnest(data_types, symbols) AS w(data_type, symbol)
                       JOIN refresh.active_job_keys k ON k.data_type = w.data_type AND k.symbol = w.symbol
                       JOIN refresh.api_call_queue_pending q ON q.id = k.job_id
                       WHERE q.priority < enqueue.priority
                       FOR UPDATE OF q SKIP LOCKED);
    END IF;
    IF created > 0 THEN
        PERFORM pg_notify('refresh_queue', 'enqueued');
    END IF;
    RETURN created;
END;
$$;
COMMENT ON FUNCTION refresh.enqueue(text[], text[], integer, bigint) IS
    'Queues one job per (data type, symbol) pair that has no pending or processing job, raises the priority of waiting ones, wakes workers, and returns how many jobs it created. estimated_size_bytes NULL means each type''s registry estimate. Callers check flags and input first.';

CREATE OR REPLACE FUNCTION refresh.get_queue_batch(worker_id text, batch_size integer) RETURNS SETOF refresh.api_call_queue
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    breaker text;
    quota record;
    calls_left bigint;
    bytes_left bigint;
    picked bigint[];
    picked_bytes bigint;
    backends bigint := current_setting('max_connections')::bigint;
    fast_calls constant bigint := 50;
    fast_bytes constant bigint := 4194304;
    fast boolean;
    far boolean;
BEGIN
    IF worker_id IS NULL OR btrim(worker_id) = '' THEN
        RAISE EXCEPTION 'a worker id is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF batch_size IS NULL OR batch_size < 1 OR batch_size > 1000 THEN
        RAISE EXCEPTION 'batch size must be between 1 and 1000, got %', coalesce(batch_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT foundation.is_enabled('use_queue_system') THEN
        RETURN;
    END IF;
    SELECT b.state INTO breaker FROM refresh.circuit_breaker b;
    IF breaker = 'open' THEN
        RETURN;
    END IF;
    -- The quota holds under concurrency because claims that cannot see each other's uncommitted
    -- usage are bounded. Far from the quota, claimers share a lock and each takes at most
    -- fast_calls jobs and fast_bytes bytes: with at most max_connections of them in flight, and
    -- the fast path closed once less than twice that is left, they cannot overrun it together.
    -- Near the quota, one claimer at a time holds the lock exclusively, after every shared holder
    -- committed, and sees the exact usage.
    -- Which lock to take is a guess from this session's last claim; the check after locking decides.
    fast := breaker = 'closed' AND batch_size <= fast_calls AND current_setting('refresh.claim_path', true) IS DISTINCT FROM 'exact';
    IF fast THEN
        PERFORM pg_advisory_xact_lock_shared(1919248498, 1);
    ELSE
        PERFORM pg_advisory_xact_lock(1919248498, 1);
    END IF;
    quota := refresh.quota_state();
    calls_left := quota.max_calls - quota.calls_used;
    bytes_left := quota.max_bytes - quota.bytes_used - quota.bytes_reserved;
    far := calls_left >= 2 * backends * fast_calls AND bytes_left >= 2 * backends * fast_bytes;
    PERFORM set_config('refresh.claim_path', CASE WHEN far THEN 'fast' ELSE 'exact' END, false);
    IF fast THEN
        IF NOT far THEN
            RETURN;   -- the quota is close: claim nothing now, and take the exact path next time
        END IF;
        calls_left := fast_calls;
        bytes_left := fast_bytes;
    END IF;
    IF breaker = 'half-open' THEN
        calls_left := least(calls_left,
            refresh.setting('breaker_probe_jobs')::bigint - (SELECT count(*) FROM refresh.api_call_queue_processing));
    END IF;
    IF calls_left <= 0 OR bytes_left < 0 THEN
        RETURN;
    END IF;
    SELECT array_agg(c.id), sum(c.estimated_size_bytes) INTO picked, picked_bytes FROM (
        SELECT c.id, c.estimated_size_bytes,
               sum(c.estimated_size_bytes) OVER (ORDER BY c.priority DESC, c.next_attempt_at, c.id) AS running_bytes
        FROM (SELECT p.id, p.priority, p.next_attempt_at, p.estimated_size_bytes
              FROM refresh.api_call_queue_pending p
              WHERE p.next_attempt_at <= now()
              ORDER BY p.priority DESC, p.next_attempt_at, p.id
              LIMIT least(batch_size, calls_left)
              FOR UPDATE SKIP LOCKED) c
    ) c
    WHERE c.running_bytes <= bytes_left;
    IF picked IS NULL THEN
        IF fast THEN
            -- Nothing fitted the fast path's byte cap, or nothing is runnable: look exactly next time.
            PERFORM set_config('refresh.claim_path', 'exact', false);
        END IF;
        RETURN;
    END IF;
    PERFORM refresh.record_usage(quota.period_start, cardinality(picked), 0, 0, picked_bytes);
    -- A second statement, so its generic plan deletes by primary key whatever the batch size.
    RETURN QUERY
    WITH moved AS (
        DELETE FROM refresh.api_call_queue_pending p WHERE p.id = ANY (picked) RETURNING p.*
    )
    INSERT INTO refresh.api_call_queue_processing AS q (id, data_type, symbol, status, priority, attempts, max_attempts,
        next_attempt_at, created_at, worker_id, claimed_at, estimated_size_bytes, last_error)
    SELECT m.id, m.data_type, m.symbol, 'processing', m.priority, m.attempts + 1, m.max_attempts,
           m.next_attempt_at, m.created_at, get_queue_batch.worker_id, now(), m.estimated_size_bytes, m.last_error
    FROM moved m
    RETURNING q.*;
END;
$$;
COMMENT ON FUNCTION refresh.get_queue_batch(text, integer) IS
    'Claims up to batch_size runnable jobs for a worker, highest priority first, with FOR UPDATE SKIP LOCKED. Each claim counts as a call and reserves its estimated bytes; the predictive quota check counts both, so claimers together never take the period past its quota (far from it they share a lock and take at most 50 jobs and 4 MiB each; near it they take turns). Returns nothing while the queue flag is off or the breaker is open; while half-open, at most breaker_probe_jobs are in flight.';

CREATE OR REPLACE FUNCTION refresh.complete_queue_jobs(job_ids bigint[], actual_sizes bigint[], worker_id text) RETURNS integer
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    period text := refresh.setting('quota_period');
    completed_ids bigint[];
    corrected_types bigint;
BEGIN
    IF job_ids IS NULL OR actual_sizes IS NULL OR cardinality(job_ids) <> cardinality(actual_sizes) THEN
        RAISE EXCEPTION 'give one actual size per job id' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF array_position(actual_sizes, NULL) IS NOT NULL OR 0 > ANY (actual_sizes) THEN
        RAISE EXCEPTION 'actual sizes must be non-negative numbers of bytes, got %', actual_sizes
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    WITH deleted AS (
        DELETE FROM refresh.api_call_queue_processing p
        WHERE p.id = ANY (job_ids) AND p.worker_id = complete_queue_jobs.worker_id
        RETURNING p.*
    ), moved AS (
        SELECT d.*, f.size FROM deleted d JOIN unnest(job_ids, actual_sizes) AS f(id, size) ON f.id = d.id
    ), released AS (
        DELETE FROM refresh.active_job_keys k USING moved m WHERE (k.data_type, k.symbol, k.job_id) = (m.data_type, m.symbol, m.id)
    ), usage AS (
        -- refresh.record_usage(), inlined and set-based: this is the hottest statement of the queue.
        INSERT INTO refresh.api_data_usage AS u (period_start, shard, calls, failed_calls, bytes, reserved_bytes)
        SELECT date_trunc(period, m.claimed_at, 'UTC'), pg_backend_pid() % 64, 0, 0, sum(m.size), -sum(m.estimated_size_bytes)
        FROM moved m GROUP BY 1
        ON CONFLICT ON CONSTRAINT api_data_usage_pkey DO UPDATE
            SET bytes = u.bytes + excluded.bytes, reserved_bytes = u.reserved_bytes + excluded.reserved_bytes, updated_at = now()
    ), done AS (
        INSERT INTO refresh.api_call_queue_completed (id, data_type, symbol, status, priority, attempts, max_attempts,
            next_attempt_at, created_at, worker_id, claimed_at, finished_at, estimated_size_bytes, actual_size_bytes, last_error)
        SELECT m.id, m.data_type, m.symbol, 'completed', m.priority, m.attempts, m.max_attempts,
               m.next_attempt_at, m.created_at, m.worker_id, m.claimed_at, now(), m.estimated_size_bytes, m.size, m.last_error
        FROM moved m
        RETURNING id, data_type, actual_size_bytes, estimated_size_bytes
    )
    SELECT (SELECT array_agg(d.id) FROM done d),
           (SELECT count(*) FROM (
                SELECT refresh.correct_size_estimate(d.data_type, round(avg(d.actual_size_bytes))::bigint, bool_or(d.estimated_size_bytes = 0))
                FROM done d GROUP BY d.data_type) per_type)
    INTO completed_ids, corrected_types;
    IF coalesce(cardinality(completed_ids), 0) < cardinality(job_ids) THEN
        -- All or nothing: this raises, and the jobs moved above stay where they were.
        PERFORM refresh.refuse_unheld_job(f.id, worker_id)
        FROM unnest(job_ids) AS f(id) WHERE f.id <> ALL (coalesce(completed_ids, '{}')) LIMIT 1;
        RAISE EXCEPTION 'a job id is given twice: %', job_ids USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN cardinality(completed_ids);
END;
$$;
COMMENT ON FUNCTION refresh.complete_queue_jobs(bigint[], bigint[], text) IS
    'Finishes jobs the worker holds, in one statement: moves them to completed, replaces their reserved bytes with the actual sizes in the usage of the period they were claimed in, and lets refresh.correct_size_estimate() sample the sizes. All or nothing: if the worker does not hold one of them, it raises why and completes none. Returns how many it completed.';

CREATE OR REPLACE FUNCTION refresh.complete_queue_job(job_id bigint, actual_size bigint, worker_id text) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    period text := refresh.setting('quota_period');
    job refresh.api_call_queue;
BEGIN
    IF actual_size IS NULL OR actual_size < 0 THEN
        RAISE EXCEPTION 'actual size must be a non-negative number of bytes, got %', coalesce(actual_size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- complete_queue_jobs() for one job, written out: one job per call is the common case, and
    -- this form costs a third less.
    WITH moved AS (
        DELETE FROM refresh.api_call_queue_processing p
        WHERE p.id = complete_queue_job.job_id AND p.worker_id = complete_queue_job.worker_id RETURNING p.*
    ), released AS (
        DELETE FROM refresh.active_job_keys k USING moved m WHERE (k.data_type, k.symbol, k.job_id) = (m.data_type, m.symbol, m.id)
    ), usage AS (
        INSERT INTO refresh.api_data_usage AS u (period_start, shard, calls, failed_calls, bytes, reserved_bytes)
        SELECT date_trunc(period, m.claimed_at, 'UTC'), pg_backend_pid() % 64, 0, 0, actual_size, -m.estimated_size_bytes FROM moved m
        ON CONFLICT ON CONSTRAINT api_data_usage_pkey DO UPDATE
            SET bytes = u.bytes + excluded.bytes, reserved_bytes = u.reserved_bytes + excluded.reserved_bytes, updated_at = now()
    )
    INSERT INTO refresh.api_call_queue_completed AS q (id, data_type, symbol, status, priority, attempts, max_attempts,
        next_attempt_at, created_at, worker_id, claimed_at, finished_at, estimated_size_bytes, actual_size_bytes, last_error)
    SELECT m.id, m.data_type, m.symbol, 'completed', m.priority, m.attempts, m.max_attempts,
           m.next_attempt_at, m.created_at, m.worker_id, m.claimed_at, now(), m.estimated_size_bytes, actual_size, m.last_error
    FROM moved m
    RETURNING q.* INTO job;
    IF job.id IS NULL THEN
        PERFORM refresh.refuse_unheld_job(job_id, worker_id);
    END IF;
    PERFORM refresh.correct_size_estimate(job.data_type, actual_size, job.estimated_size_bytes = 0);
END;
$$;
COMMENT ON FUNCTION refresh.complete_queue_job(bigint, bigint, text) IS
    'Finishes one job the worker holds, as complete_queue_jobs() does. A job the worker does not hold is refused with a message that says why.';

CREATE OR REPLACE FUNCTION refresh.fail_queue_job(job_id bigint, error text, worker_id text) RETURNS text
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    job refresh.api_call_queue;
BEGIN
    IF error IS NULL OR btrim(error) = '' THEN
        RAISE EXCEPTION 'a failed job needs an error message' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    DELETE FROM refresh.api_call_queue_processing p
    WHERE p.id = fail_queue_job.job_id AND p.worker_id = fail_queue_job.worker_id
    RETURNING p.* INTO job;
    IF NOT FOUND THEN
        PERFORM refresh.refuse_unheld_job(job_id, worker_id);
    END IF;
    PERFORM refresh.record_usage(refresh.quota_period_start(job.claimed_at), 0, 1, 0, -job.estimated_size_bytes);
    IF job.attempts >= job.max_attempts THEN
        INSERT INTO refresh.api_call_queue_failed (id, data_type, symbol, status, priority, attempts, max_attempts,
            next_attempt_at, created_at, worker_id, claimed_at, finished_at, estimated_size_bytes, last_error)
        VALUES (job.id, job.data_type, job.symbol, 'failed', job.priority, job.attempts, job.max_attempts,
            job.next_attempt_at, job.created_at, job.worker_id, job.claimed_at, now(), job.estimated_size_bytes, left(error, 2000));
        DELETE FROM refresh.active_job_keys k WHERE (k.data_type, k.symbol, k.job_id) = (job.data_type, job.symbol, job.id);
        RETURN 'failed';
    END IF;
    INSERT INTO refresh.api_call_queue_pending (id, data_type, symbol, status, priority, attempts, max_attempts,
        next_attempt_at, created_at, estimated_size_bytes, last_error)
    VALUES (job.id, job.data_type, job.symbol, 'pending', job.priority, job.attempts, job.max_attempts,
        now() + refresh.retry_delay(job.attempts), job.created_at, job.estimated_size_bytes, left(error, 2000));
    RETURN 'pending';
END;
$$;
COMMENT ON FUNCTION refresh.fail_queue_job(bigint, text, text) IS
    'Records a failed attempt of a job the worker holds, as a failed call. The job is retried after refresh.retry_delay(attempts), or moves to failed once it has used max_attempts. Returns the new status.';

CREATE OR REPLACE FUNCTION refresh.assert_symbol(symbol text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog
AS $$
BEGIN
    IF symbol IS NULL OR symbol !~ '^[[:graph:]]{1,64}$' THEN
        RAISE EXCEPTION 'invalid symbol: %', coalesce(quote_literal(symbol), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A symbol is 1 to 64 printable characters without spaces.';
    END IF;
    RETURN symbol;
END;
$$;
COMMENT ON FUNCTION refresh.assert_symbol(text) IS 'Returns a valid symbol unchanged, or raises 22023.';

CREATE OR REPLACE FUNCTION refresh.registry_entry(data_type text) RETURNS refresh.data_type_registry
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE
    entry refresh.data_type_registry;
BEGIN
    SELECT * INTO entry FROM refresh.data_type_registry r WHERE r.data_type = registry_entry.data_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown data type: %', coalesce(quote_literal(registry_entry.data_type), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Registered types are listed in refresh.data_type_registry.';
    END IF;
    RETURN entry;
END;
$$;
COMMENT ON FUNCTION refresh.registry_entry(text) IS 'The registry row of a data type; an unknown type raises 22023.';

CREATE OR REPLACE FUNCTION refresh.generate_check_function() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        EXECUTE format('DROP FUNCTION IF EXISTS refresh.%I(text[], integer)', OLD.check_function);
    END IF;
    IF TG_OP = 'DELETE' THEN
        RETURN NULL;
    END IF;
    -- Static SQL, so each session plans the check once; a dynamic query would be planned on every
    -- subscription insert.
    EXECUTE format($generated$
        CREATE FUNCTION refresh.%1$I(symbols text[], ttl_minutes integer) RETURNS text[]
            LANGUAGE plpgsql STABLE
            SET search_path = pg_catalog
            SET plan_cache_mode = force_generic_plan
        AS $body$
        BEGIN
            RETURN (SELECT coalesce(array_agg(w.symbol ORDER BY w.symbol), '{}')
                    FROM (SELECT DISTINCT u.symbol FROM unnest(symbols) AS u(symbol)) w
                    LEFT JOIN LATERAL (SELECT max(d.%2$I)::timestamptz AS fetched_at FROM %3$I.%4$I d WHERE d.%5$I = w.symbol) d ON true
                    WHERE refresh.%6$I(d.fetched_at, ttl_minutes));
        END;
        $body$
        $generated$, NEW.check_function, NEW.timestamp_column, NEW.table_schema, NEW.table_name, NEW.symbol_column,
        NEW.staleness_function);
    EXECUTE format('COMMENT ON FUNCTION refresh.%I(text[], integer) IS %L', NEW.check_function,
        format('Generated from the registry row of %s: which of the symbols have stale data in %I.%I (by %s).',
               NEW.data_type, NEW.table_schema, NEW.table_name, NEW.staleness_function));
    EXECUTE format('REVOKE ALL ON FUNCTION refresh.%I(text[], integer) FROM PUBLIC', NEW.check_function);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION refresh.generate_check_function() IS
    'Keeps each registry row''s check function (refresh.stale_<type>) in step with the row: created on insert, recreated on update, dropped on delete.';

CREATE OR REPLACE FUNCTION refresh.health_check() RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    quota record := refresh.quota_state();
    breaker refresh.circuit_breaker;
    queue jsonb;
    oldest_wait interval;
    scheduled jsonb;
    cron_present boolean := jobs.is_cron_available();
    job_names text[] := ARRAY['refresh-stale-sweep', 'refresh-scheduled-refreshes', 'refresh-processor-loop',
                              'refresh-queue-maintenance', 'refresh-analytics', 'refresh-health-check'];
BEGIN
    SELECT * INTO breaker FROM refresh.circuit_breaker;
    SELECT jsonb_build_object(
        'pending', (SELECT count(*) FROM refresh.api_call_queue_pending),
        'runnable', (SELECT count(*) FROM refresh.api_call_queue_pending p WHERE p.next_attempt_at <= now()),
        'processing', (SELECT count(*) FROM refresh.api_call_queue_processing),
        'completed', (SELECT count(*) FROM refresh.api_call_queue_completed),
        'failed', (SELECT count(*) FROM refresh.api_call_queue_failed))
    INTO queue;
    SELECT now() - min(p.next_attempt_at) INTO oldest_wait FROM refresh.api_call_queue_pending p WHERE p.next_attempt_at <= now();
    IF cron_present THEN
        EXECUTE $q$
            SELECT coalesce(jsonb_agg(jsonb_build_object(
                       'name', s.name, 'schedule', s.schedule, 'scheduled', j.jobid IS NOT NULL,
                       'last_run', d.start_time, 'cron_status', d.status, 'cron_message', d.return_message,
                       'last_outcome', s.last_outcome, 'last_error', s.last_error) ORDER BY s.name), '[]')
            FROM jobs.job_overview s
            LEFT JOIN cron.job j ON j.jobname = s.name
            LEFT JOIN LATERAL (SELECT r.start_time, r.status, r.return_message FROM cron.job_run_details r
                               WHERE r.jobid = j.jobid ORDER BY r.start_time DESC NULLS LAST LIMIT 1) d ON true
            WHERE s.name = ANY ($1)
        $q$ INTO scheduled USING job_names;
    ELSE
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'name', s.name, 'schedule', s.schedule, 'scheduled', false, 'status', 'not scheduled: pg_cron is not installed',
                   'last_run', s.last_started_at, 'last_outcome', s.last_outcome, 'last_error', s.last_error) ORDER BY s.name), '[]')
        INTO scheduled
        FROM jobs.job_overview s WHERE s.name = ANY (job_names);
    END IF;
    RETURN jsonb_build_object(
        'checked_at', now(),
        'healthy', breaker.state = 'closed'
                   AND coalesce(oldest_wait < refresh.setting('health_max_pending_age')::interval, true)
                   AND quota.calls_used < quota.max_calls
                   AND quota.bytes_used + quota.bytes_reserved < quota.max_bytes,
        'queue', queue || jsonb_build_object('oldest_runnable_wait_seconds', round(extract(epoch FROM oldest_wait)::numeric, 3)),
        'breaker', jsonb_build_object('state', breaker.state, 'since', breaker.changed_at, 'reason', breaker.reason),
        'quota', jsonb_build_object('period_start', quota.period_start, 'calls_used', quota.calls_used,
                     'max_calls', quota.max_calls, 'failed_calls', quota.failed_calls,
                     'bytes_used', quota.bytes_used, 'bytes_reserved', quota.bytes_reserved, 'max_bytes', quota.max_bytes),
        'staleness_errors_last_hour', (SELECT count(*) FROM refresh.staleness_errors e WHERE e.occurred_at > now() - interval '1 hour'),
        'pg_cron', cron_present,
        'jobs', scheduled);
END;
$$;
COMMENT ON FUNCTION refresh.health_check() IS
    'One JSON report: queue depth by status and the oldest runnable job''s wait, breaker state, quota used and reserved, recent staleness errors, and each refresh job''s schedule and last run (from cron.job_run_details and jobs.runs when pg_cron is installed; "not scheduled" otherwise). healthy is false when the breaker is not closed, a runnable job waited past health_max_pending_age, or the quota is used up.';

CREATE OR REPLACE FUNCTION refresh.set_circuit_breaker(state text) RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    previous text;
BEGIN
    IF state IS NULL OR state NOT IN ('closed', 'open', 'half-open') THEN
        RAISE EXCEPTION 'a breaker is closed, open or half-open, not %', coalesce(quote_literal(state), 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT b.state INTO previous FROM refresh.circuit_breaker b FOR UPDATE;
    UPDATE refresh.circuit_breaker b
    SET state = set_circuit_breaker.state, changed_at = now(), reason = 'set by ' || current_user;
    RETURN previous;
END;
$$;
COMMENT ON FUNCTION refresh.set_circuit_breaker(text) IS 'Forces the breaker into a state, for operators; returns the previous state.';

CREATE OR REPLACE FUNCTION refresh.setting(name text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE
    result text;
BEGIN
    SELECT s.value INTO result FROM refresh.settings s WHERE s.name = setting.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown refresh setting: %', coalesce(quote_literal(setting.name), 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN result;
END;
$$;
COMMENT ON FUNCTION refresh.setting(text) IS 'Reads a refresh setting as text; an unknown name raises 42704.';

CREATE OR REPLACE FUNCTION refresh.set_setting(name text, value text) RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    previous text := refresh.setting(set_setting.name);
BEGIN
    IF NOT refresh.setting_is_valid(set_setting.name, set_setting.value) THEN
        RAISE EXCEPTION 'invalid value for refresh setting %: %', set_setting.name, coalesce(quote_literal(set_setting.value), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = (SELECT 'It is: ' || s.description FROM refresh.settings s WHERE s.name = set_setting.name);
    END IF;
    UPDATE refresh.settings s SET value = set_setting.value WHERE s.name = set_setting.name;
    RETURN previous;
END;
$$;
COMMENT ON FUNCTION refresh.set_setting(text, text) IS 'Changes a refresh setting after checking its value, and returns the previous value.';

DROP FUNCTION refresh.assert_size(bigint, text);
DROP FUNCTION refresh.assert_priority(integer);
DROP TABLE refresh.claim_gate;
ALTER TABLE refresh.data_type_registry DROP CONSTRAINT data_type_registry_priority_range;
ALTER TABLE refresh.api_call_queue DROP CONSTRAINT api_call_queue_lease_held;
ALTER TABLE refresh.api_call_queue DROP COLUMN lease_token;

ALTER FUNCTION refresh.mark_update_trigger(text,boolean) SET search_path = pg_catalog;
ALTER FUNCTION refresh.attach_update_trigger(text) SET search_path = pg_catalog;
ALTER FUNCTION refresh.detach_update_trigger(text) SET search_path = pg_catalog;
ALTER FUNCTION refresh.log_staleness_error(text,text,integer,text,text) SET search_path = pg_catalog;
ALTER FUNCTION refresh.setting_is_valid(text,text) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_symbols(refresh.data_type_registry,text[],text) SET search_path = pg_catalog;
ALTER FUNCTION refresh.register_data_type(text,text,text,text,text,text,integer,bigint,text,integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.unregister_data_type(text) SET search_path = pg_catalog;
ALTER FUNCTION refresh.refuse_status_update() SET search_path = pg_catalog;
ALTER FUNCTION refresh.is_type_active(refresh.data_type_registry) SET search_path = pg_catalog;
ALTER FUNCTION refresh.queue_stale(refresh.data_type_registry,text[],integer,text) SET search_path = pg_catalog;
ALTER FUNCTION refresh.quota_period_start(timestamp with time zone) SET search_path = pg_catalog;
ALTER FUNCTION refresh.record_usage(timestamp with time zone,bigint,bigint,bigint,bigint) SET search_path = pg_catalog;
ALTER FUNCTION refresh.quota_state() SET search_path = pg_catalog;
ALTER FUNCTION refresh.retry_delay(integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.correct_size_estimate(text,bigint,boolean) SET search_path = pg_catalog;
ALTER FUNCTION refresh.set_update_trigger(boolean) SET search_path = pg_catalog;
ALTER FUNCTION refresh.sync_update_trigger(refresh.data_type_registry) SET search_path = pg_catalog;
ALTER FUNCTION refresh.evaluate_circuit_breaker() SET search_path = pg_catalog;
ALTER FUNCTION refresh.is_data_stale(timestamp with time zone,integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.is_profile_stale(timestamp with time zone,integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_quote(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_profile(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_financial_statements(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_ratios_ttm(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_dividend_history(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_shares_float(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_revenue_segmentation(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_grades_historical(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_exchange_variants(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_available_exchanges(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.stale_exchange_market_status(text[],integer) SET search_path = pg_catalog;
ALTER FUNCTION refresh.record_health_check() SET search_path = pg_catalog;

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA refresh FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    refresh.is_data_stale(timestamptz, integer), refresh.is_profile_stale(timestamptz, integer), refresh.is_quota_exceeded(),
    refresh.queue_refresh_if_not_exists(text, text, integer, bigint), refresh.queue_refreshes(text, text[], integer),
    refresh.get_queue_batch(text, integer), refresh.complete_queue_job(bigint, bigint, text),
    refresh.complete_queue_jobs(bigint[], bigint[], text), refresh.fail_queue_job(bigint, text, text),
    refresh.check_and_queue_stale_batch(text, text[], integer), refresh.health_check()
TO PUBLIC;
