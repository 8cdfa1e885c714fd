-- Hardening, refresh: finishing a job proves the claim with the lease token get_queue_batch()
-- returned; priorities and sizes are bounded, and a job that does not fit the byte budget is
-- skipped instead of blocking the jobs behind it; claims queue on a lock no other role can take;
-- squatted job locks make the engine unhealthy; pinned search paths; privileges per role.

ALTER TABLE refresh.api_call_queue ADD COLUMN lease_token uuid;
COMMENT ON COLUMN refresh.api_call_queue.lease_token IS
    'The claim''s secret, returned by get_queue_batch() to the claiming worker only: finishing or failing the job requires it.';
UPDATE refresh.api_call_queue_processing SET lease_token = gen_random_uuid();
ALTER TABLE refresh.api_call_queue ADD CONSTRAINT api_call_queue_lease_held CHECK (status <> 'processing' OR lease_token IS NOT NULL);
ALTER TABLE refresh.data_type_registry ADD CONSTRAINT data_type_registry_priority_range CHECK (priority BETWEEN -1000 AND 1000);

CREATE TABLE refresh.claim_gate ();
COMMENT ON TABLE refresh.claim_gate IS
    'Never holds rows: claimers lock it (ROW SHARE far from the quota, EXCLUSIVE near it), and no role but the bundle''s owner may lock it, so no session can stall claims by squatting an advisory key.';
REVOKE ALL ON refresh.claim_gate FROM PUBLIC;

CREATE FUNCTION refresh.assert_priority(priority integer) RETURNS integer
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF priority IS NULL OR priority NOT BETWEEN -1000 AND 1000 THEN
        RAISE EXCEPTION 'a refresh priority is between -1000 and 1000, got %', coalesce(priority::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN priority;
END;
$$;
COMMENT ON FUNCTION refresh.assert_priority(integer) IS 'Returns a priority in -1000..1000 unchanged, or raises 22023.';

CREATE FUNCTION refresh.assert_size(size bigint, what text) RETURNS bigint
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    limit_bytes bigint := refresh.setting('quota_max_bytes')::bigint;
BEGIN
    IF size IS NULL OR size < 0 THEN
        RAISE EXCEPTION '% must be a non-negative number of bytes, got %', what, coalesce(size::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    ELSIF size > limit_bytes THEN
        RAISE EXCEPTION '% of % bytes exceeds the whole quota of % bytes', what, size, limit_bytes
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A job that large can never be paid for: fail it (fail_queue_job) instead, or raise quota_max_bytes.';
    END IF;
    RETURN size;
END;
$$;
COMMENT ON FUNCTION refresh.assert_size(bigint, text) IS 'Returns a size between 0 and quota_max_bytes unchanged, or raises 22023 naming what it was.';

CREATE OR REPLACE FUNCTION refresh.enqueue(data_types text[], symbols text[], priority integer, estimated_size_bytes bigint) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    created integer;
    attempts_allowed integer := refresh.setting('max_attempts')::integer;
BEGIN
    PERFORM refresh.assert_priority(priority);
    IF estimated_size_bytes IS NOT NULL THEN
        PERFORM refresh.assert_size(estimated_size_bytes, 'an estimated size');
    END IF;
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
    'Queues one job per (data type, symbol) pair that has no pending or processing job, raises the priority of waiting ones, wakes workers, and returns how many jobs it created. The priority must lie in -1000..1000 and a given size in 0..quota_max_bytes (22023 otherwise); NULL means each type''s registry estimate. Callers check flags first.';

DROP FUNCTION refresh.complete_queue_job(bigint, bigint, text);
DROP FUNCTION refresh.complete_queue_jobs(bigint[], bigint[], text);
DROP FUNCTION refresh.fail_queue_job(bigint, text, text);
DROP FUNCTION refresh.refuse_unheld_job(bigint, text);

CREATE FUNCTION refresh.refuse_unheld_job(job_id bigint, lease_token uuid) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    found_status text;
BEGIN
    SELECT q.status INTO found_status FROM refresh.api_call_queue q WHERE q.id = job_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'refresh job % does not exist', job_id USING ERRCODE = 'no_data_found';
    ELSIF found_status = 'processing' THEN
        RAISE EXCEPTION 'refresh job % is not held under lease %', job_id, coalesce(lease_token::text, 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Another claim holds it (this lease expired and the job was claimed again, or the token is wrong): drop this result.';
    ELSIF found_status = 'pending' THEN
        RAISE EXCEPTION 'refresh job % is pending, not held under lease %: it was never claimed with it, or its lease expired and it was queued again',
                job_id, coalesce(lease_token::text, 'NULL')
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Drop this result; the job will run again.';
    ELSE
        RAISE EXCEPTION 'refresh job % is already %', job_id, found_status USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END;
$$;
COMMENT ON FUNCTION refresh.refuse_unheld_job(bigint, uuid) IS 'Raises the error that says why a job cannot be finished under the given lease token.';

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
    candidates bigint[];
    candidate_bytes bigint[];
    picked bigint[] := '{}';
    picked_bytes bigint := 0;
    backends bigint := current_setting('max_connections')::bigint;
    fast_calls constant bigint := 50;
    fast_bytes constant bigint := 4194304;
    fast boolean;
    far boolean;
BEGIN
    IF worker_id IS NULL OR worker_id !~ '^[[:graph:]]{1,128}$' THEN
        RAISE EXCEPTION 'a worker id is 1 to 128 printable characters without spaces, got %', foundation.excerpt(worker_id)
            USING ERRCODE = 'invalid_parameter_value';
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
    -- usage are bounded. Far from the quota, claimers share the gate and each takes at most
    -- fast_calls jobs and fast_bytes bytes: with at most max_connections of them in flight, and
    -- the fast path closed once less than twice that is left, they cannot overrun it together.
    -- Near the quota, one claimer at a time holds the gate exclusively, after every shared holder
    -- committed, and sees the exact usage.
    -- Which lock to take is a guess from this session's last claim; the check after locking decides.
    fast := breaker = 'closed' AND batch_size <= fast_calls AND current_setting('refresh.claim_path', true) IS DISTINCT FROM 'exact';
    IF fast THEN
        LOCK TABLE refresh.claim_gate IN ROW SHARE MODE;
    ELSE
        LOCK TABLE refresh.claim_gate IN EXCLUSIVE MODE;
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
    -- A job larger than the whole budget is passed over, so it never blocks the jobs behind it.
    SELECT array_agg(c.id ORDER BY c.priority DESC, c.next_attempt_at, c.id),
           array_agg(c.estimated_size_bytes ORDER BY c.priority DESC, c.next_attempt_at, c.id)
    INTO candidates, candidate_bytes
    FROM (SELECT p.id, p.priority, p.next_attempt_at, p.estimated_size_bytes
          FROM refresh.api_call_queue_pending p
          WHERE p.next_attempt_at <= now() AND p.estimated_size_bytes <= bytes_left
          ORDER BY p.priority DESC, p.next_attempt_at, p.id
          LIMIT least(batch_size, calls_left)
          FOR UPDATE SKIP LOCKED) c;
    -- In claim order, take every job that still fits what is left of the budget.
    FOR i IN 1..coalesce(cardinality(candidates), 0) LOOP
        IF picked_bytes + candidate_bytes[i] <= bytes_left THEN
            picked := picked || candidates[i];
            picked_bytes := picked_bytes + candidate_bytes[i];
        END IF;
    END LOOP;
    IF cardinality(picked) = 0 THEN
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
        next_attempt_at, created_at, worker_id, claimed_at, estimated_size_bytes, last_error, lease_token)
    SELECT m.id, m.data_type, m.symbol, 'processing', m.priority, m.attempts + 1, m.max_attempts,
           m.next_attempt_at, m.created_at, get_queue_batch.worker_id, now(), m.estimated_size_bytes, m.last_error, gen_random_uuid()
    FROM moved m
    RETURNING q.*;
END;
$$;
COMMENT ON FUNCTION refresh.get_queue_batch(text, integer) IS
    'Claims up to batch_size runnable jobs for a worker, highest priority first, with FOR UPDATE SKIP LOCKED, and returns them with a fresh lease_token each: finishing a job requires its token. Each claim counts as a call and reserves its estimated bytes; the predictive quota check counts both, so claimers together never take the period past its quota (far from it they share the claim gate and take at most 50 jobs and 4 MiB each; near it they take turns). A job that does not fit the byte budget left is skipped, never blocking the jobs behind it. Returns nothing while the queue flag is off or the breaker is open; while half-open, at most breaker_probe_jobs are in flight.';

CREATE FUNCTION refresh.complete_queue_jobs(job_ids bigint[], actual_sizes bigint[], lease_tokens uuid[]) RETURNS integer
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    period text;
    max_bytes bigint;
    completed_ids bigint[];
    corrected_types bigint;
BEGIN
    IF job_ids IS NULL OR actual_sizes IS NULL OR lease_tokens IS NULL
       OR cardinality(job_ids) <> cardinality(actual_sizes) OR cardinality(job_ids) <> cardinality(lease_tokens) THEN
        RAISE EXCEPTION 'give one actual size and one lease token per job id' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF cardinality(job_ids) = 0 THEN
        RETURN 0;
    END IF;
    -- Both settings in one read: this is the hottest function of the queue.
    SELECT max(s.value) FILTER (WHERE s.name = 'quota_period'), max(s.value) FILTER (WHERE s.name = 'quota_max_bytes')
    INTO period, max_bytes FROM refresh.settings s WHERE s.name IN ('quota_period', 'quota_max_bytes');
    IF array_position(actual_sizes, NULL) IS NOT NULL OR 0 > ANY (actual_sizes) OR max_bytes < ANY (actual_sizes) THEN
        PERFORM refresh.assert_size(s, 'an actual size') FROM unnest(actual_sizes) AS s;
    END IF;
    -- A job is finished only by whoever holds its token; which token stands next to which id
    -- does not matter, since each token proves its own job.
    WITH deleted AS (
        DELETE FROM refresh.api_call_queue_processing p
        WHERE p.id = ANY (job_ids) AND p.lease_token = ANY (lease_tokens)
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
        PERFORM refresh.refuse_unheld_job(f.id, f.lease_token)
        FROM unnest(job_ids, lease_tokens) AS f(id, lease_token) WHERE f.id <> ALL (coalesce(completed_ids, '{}')) LIMIT 1;
        RAISE EXCEPTION 'a job id is given twice: %', left(job_ids::text, 200) USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN cardinality(completed_ids);
END;
$$;
COMMENT ON FUNCTION refresh.complete_queue_jobs(bigint[], bigint[], uuid[]) IS
    'Finishes claimed jobs, each proved by the lease token its claim returned, in one statement: moves them to completed, replaces their reserved bytes with the actual sizes (each at most quota_max_bytes) in the usage of the period they were claimed in, and lets refresh.correct_size_estimate() sample the sizes. All or nothing: if one token does not hold its job, it raises why and completes none. Returns how many it completed (0 for empty arrays).';

CREATE FUNCTION refresh.complete_queue_job(job_id bigint, actual_size bigint, lease_token uuid) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    period text;
    max_bytes bigint;
    job refresh.api_call_queue;
BEGIN
    SELECT max(s.value) FILTER (WHERE s.name = 'quota_period'), max(s.value) FILTER (WHERE s.name = 'quota_max_bytes')
    INTO period, max_bytes FROM refresh.settings s WHERE s.name IN ('quota_period', 'quota_max_bytes');
    IF actual_size IS NULL OR actual_size < 0 OR actual_size > max_bytes THEN
        PERFORM refresh.assert_size(actual_size, 'an actual size');
    END IF;
    -- complete_queue_jobs() for one job, written out: one job per call is the common case, and
    -- this form costs a third less.
    WITH moved AS (
        DELETE FROM refresh.api_call_queue_processing p
        WHERE p.id = complete_queue_job.job_id AND p.lease_token = complete_queue_job.lease_token RETURNING p.*
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
        PERFORM refresh.refuse_unheld_job(job_id, lease_token);
    END IF;
    PERFORM refresh.correct_size_estimate(job.data_type, actual_size, job.estimated_size_bytes = 0);
END;
$$;
COMMENT ON FUNCTION refresh.complete_queue_job(bigint, bigint, uuid) IS
    'Finishes one claimed job, proved by its lease token, as complete_queue_jobs() does. A token that does not hold the job is refused with a message that says why.';

CREATE FUNCTION refresh.fail_queue_job(job_id bigint, error text, lease_token uuid) RETURNS text
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
    WHERE p.id = fail_queue_job.job_id AND p.lease_token = fail_queue_job.lease_token
    RETURNING p.* INTO job;
    IF NOT FOUND THEN
        PERFORM refresh.refuse_unheld_job(job_id, lease_token);
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
COMMENT ON FUNCTION refresh.fail_queue_job(bigint, text, uuid) IS
    'Records a failed attempt of a claimed job, proved by its lease token, as a failed call. The job is retried after refresh.retry_delay(attempts), or moves to failed once it has used max_attempts. Returns the new status.';

CREATE OR REPLACE FUNCTION refresh.assert_symbol(symbol text) RETURNS text
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF symbol IS NULL OR symbol !~ '^[[:graph:]]{1,64}$' THEN
        RAISE EXCEPTION 'invalid symbol: %', foundation.excerpt(symbol)
            USING ERRCODE = 'invalid_parameter_value', HINT = 'A symbol is 1 to 64 printable characters without spaces.';
    END IF;
    RETURN symbol;
END;
$$;

CREATE OR REPLACE FUNCTION refresh.registry_entry(data_type text) RETURNS refresh.data_type_registry
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry refresh.data_type_registry;
BEGIN
    SELECT * INTO entry FROM refresh.data_type_registry r WHERE r.data_type = registry_entry.data_type;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown data type: %', foundation.excerpt(registry_entry.data_type)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Registered types are listed in refresh.data_type_registry.';
    END IF;
    RETURN entry;
END;
$$;

CREATE OR REPLACE FUNCTION refresh.generate_check_function() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
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
            SET search_path = pg_catalog, pg_temp
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
    squatters jsonb;
    cron_present boolean := jobs.is_cron_available();
    job_names text[] := ARRAY['refresh-stale-sweep', 'refresh-scheduled-refreshes', 'refresh-processor-loop',
                              'refresh-queue-maintenance', 'refresh-analytics', 'refresh-health-check'];
BEGIN
    SELECT * INTO breaker FROM refresh.circuit_breaker;
    SELECT coalesce(jsonb_agg(jsonb_build_object('lock_key', l.lock_key, 'held_for', l.held_for, 'pid', l.pid,
                                                 'role', l.role_name, 'since', l.since)), '[]')
    INTO squatters FROM jobs.squatted_locks() l;
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
                       'last_outcome', s.last_outcome, 'last_error', s.last_error, 'failing', s.failing) ORDER BY s.name), '[]')
            FROM jobs.job_overview s
            LEFT JOIN cron.job j ON j.jobname = s.name
            LEFT JOIN LATERAL (SELECT r.start_time, r.status, r.return_message FROM cron.job_run_details r
                               WHERE r.jobid = j.jobid ORDER BY r.start_time DESC NULLS LAST LIMIT 1) d ON true
            WHERE s.name = ANY ($1)
        $q$ INTO scheduled USING job_names;
    ELSE
        SELECT coalesce(jsonb_agg(jsonb_build_object(
                   'name', s.name, 'schedule', s.schedule, 'scheduled', false, 'status', 'not scheduled: pg_cron is not installed',
                   'last_run', s.last_started_at, 'last_outcome', s.last_outcome, 'last_error', s.last_error, 'failing', s.failing) ORDER BY s.name), '[]')
        INTO scheduled
        FROM jobs.job_overview s WHERE s.name = ANY (job_names);
    END IF;
    RETURN jsonb_build_object(
        'checked_at', now(),
        'healthy', breaker.state = 'closed'
                   AND coalesce(oldest_wait < refresh.setting('health_max_pending_age')::interval, true)
                   AND quota.calls_used < quota.max_calls
                   AND quota.bytes_used + quota.bytes_reserved < quota.max_bytes
                   AND jsonb_array_length(squatters) = 0
                   AND NOT EXISTS (SELECT FROM jobs.job_overview o WHERE o.name = ANY (job_names) AND o.failing),
        'queue', queue || jsonb_build_object('oldest_runnable_wait_seconds', round(extract(epoch FROM oldest_wait)::numeric, 3)),
        'breaker', jsonb_build_object('state', breaker.state, 'since', breaker.changed_at, 'reason', breaker.reason),
        'quota', jsonb_build_object('period_start', quota.period_start, 'calls_used', quota.calls_used,
                     'max_calls', quota.max_calls, 'failed_calls', quota.failed_calls,
                     'bytes_used', quota.bytes_used, 'bytes_reserved', quota.bytes_reserved, 'max_bytes', quota.max_bytes),
        'staleness_errors_last_hour', (SELECT count(*) FROM refresh.staleness_errors e WHERE e.occurred_at > now() - interval '1 hour'),
        'pg_cron', cron_present,
        'squatted_locks', squatters,
        'jobs', scheduled);
END;
$$;
COMMENT ON FUNCTION refresh.health_check() IS
    'One JSON report: queue depth by status and the oldest runnable job''s wait, breaker state, quota used and reserved, recent staleness errors, each refresh job''s schedule and last run (from cron.job_run_details and jobs.runs when pg_cron is installed; "not scheduled" otherwise), and Freshet''s advisory lock keys held by sessions that are not Freshet''s (jobs.squatted_locks()). healthy is false when the breaker is not closed, a runnable job waited past health_max_pending_age, the quota is used up, a lock is squatted, or a refresh job''s last run failed (in jobs.runs or in pg_cron''s record, so a pg_cron that cannot connect shows).';

CREATE OR REPLACE FUNCTION refresh.set_circuit_breaker(state text) RETURNS text
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous text;
BEGIN
    IF state IS NULL OR state NOT IN ('closed', 'open', 'half-open') THEN
        RAISE EXCEPTION 'a breaker is closed, open or half-open, not %', foundation.excerpt(state)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT b.state INTO previous FROM refresh.circuit_breaker b FOR UPDATE;
    -- session_user: current_user is this function's owner.
    UPDATE refresh.circuit_breaker b
    SET state = set_circuit_breaker.state, changed_at = now(), reason = 'set by ' || session_user;
    RETURN previous;
END;
$$;
COMMENT ON FUNCTION refresh.set_circuit_breaker(text) IS 'Forces the breaker into a state, for operators (freshet_admin), recording the session''s login; returns the previous state.';

CREATE OR REPLACE FUNCTION refresh.setting(name text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text;
BEGIN
    SELECT s.value INTO result FROM refresh.settings s WHERE s.name = setting.name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown refresh setting: %', foundation.excerpt(setting.name)
            USING ERRCODE = 'undefined_object';
    END IF;
    RETURN result;
END;
$$;

CREATE OR REPLACE FUNCTION refresh.set_setting(name text, value text) RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous text := refresh.setting(set_setting.name);
BEGIN
    IF NOT refresh.setting_is_valid(set_setting.name, set_setting.value) THEN
        RAISE EXCEPTION 'invalid value for refresh setting %: %', foundation.excerpt(set_setting.name), foundation.excerpt(set_setting.value)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = (SELECT 'It is: ' || s.description FROM refresh.settings s WHERE s.name = set_setting.name);
    END IF;
    UPDATE refresh.settings s SET value = set_setting.value WHERE s.name = set_setting.name;
    RETURN previous;
END;
$$;

-- Administration runs with the module's rights, for freshet_admin.
ALTER FUNCTION refresh.set_setting(text, text) SECURITY DEFINER;
ALTER FUNCTION refresh.evaluate_circuit_breaker() SECURITY DEFINER;
ALTER FUNCTION refresh.register_data_type(text, text, text, text, text, text, integer, bigint, text, integer) SECURITY DEFINER;
ALTER FUNCTION refresh.unregister_data_type(text) SECURITY DEFINER;
ALTER FUNCTION refresh.set_update_trigger(boolean) SECURITY DEFINER;
ALTER FUNCTION refresh.record_health_check() SECURITY DEFINER;

SELECT foundation.pin_search_paths('refresh');

-- Privileges: PUBLIC reads the registry and nothing else.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA refresh FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    refresh.is_data_stale(timestamptz, integer), refresh.is_profile_stale(timestamptz, integer),
    refresh.queue_refresh_if_not_exists(text, text, integer, bigint), refresh.queue_refreshes(text, text[], integer),
    refresh.check_and_queue_stale_batch(text, text[], integer)
TO freshet_client, freshet_worker;
GRANT EXECUTE ON FUNCTION
    refresh.get_queue_batch(text, integer), refresh.complete_queue_job(bigint, bigint, uuid),
    refresh.complete_queue_jobs(bigint[], bigint[], uuid[]), refresh.fail_queue_job(bigint, text, uuid),
    refresh.is_quota_exceeded(), refresh.health_check()
TO freshet_worker;
GRANT EXECUTE ON FUNCTION
    refresh.set_setting(text, text), refresh.setting(text), refresh.set_circuit_breaker(text), refresh.evaluate_circuit_breaker(),
    refresh.register_data_type(text, text, text, text, text, text, integer, bigint, text, integer),
    refresh.unregister_data_type(text), refresh.set_update_trigger(boolean), refresh.reset_job_immediate(bigint),
    refresh.recover_stuck_jobs(interval), refresh.record_health_check(), refresh.quota_state()
TO freshet_admin;
GRANT SELECT, INSERT, DELETE ON refresh.subscriptions TO freshet_client;
GRANT UPDATE (data_types, last_seen) ON refresh.subscriptions TO freshet_client;
DO $$
DECLARE
    data_table regclass;
BEGIN
    FOR data_table IN SELECT format('%I.%I', r.table_schema, r.table_name)::regclass FROM refresh.data_type_registry r WHERE r.table_schema = 'refresh' LOOP
        EXECUTE format('GRANT SELECT ON %s TO freshet_client', data_table);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON %s TO freshet_worker', data_table);
    END LOOP;
END;
$$;
GRANT SELECT ON ALL TABLES IN SCHEMA refresh TO freshet_admin;
REVOKE SELECT ON refresh.claim_gate FROM freshet_admin;
