-- The refresh engine of seeds 000 and 001: a metadata registry of data types, a status-partitioned
-- work queue with quota, retries and a circuit breaker, staleness triggers and single-flight jobs.
-- Workers LISTEN on refresh_queue and call the queue functions; every table stays private to this
-- module, and the SECURITY DEFINER functions below are its interface.
--
-- Jobs move between status partitions only by DELETE ... RETURNING + INSERT, never by UPDATE of
-- status. A cross-partition UPDATE leaves a "moved" marker, and a concurrent FOR UPDATE SKIP LOCKED
-- that meets it fails with 40001; a plain delete is simply skipped.

-- Settings ---------------------------------------------------------------------------------------

CREATE FUNCTION refresh.setting_is_valid(name text, value text) RETURNS boolean
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog
AS $$
BEGIN
    RETURN CASE
        WHEN name IN ('subscription_active_window', 'job_lease', 'retry_base_delay', 'retry_max_delay',
                      'breaker_cooldown', 'health_max_pending_age')
            THEN value::interval > interval '0'
        WHEN name IN ('completed_retention', 'failed_retention', 'usage_retention', 'log_retention')
            THEN value::interval >= interval '0'
        WHEN name IN ('max_attempts', 'breaker_min_calls', 'breaker_probe_jobs', 'scheduled_batch_size', 'scheduled_max_pending')
            THEN value::integer >= 1
        WHEN name IN ('quota_max_calls', 'quota_max_bytes') THEN value::bigint >= 0
        WHEN name IN ('breaker_failure_ratio') THEN value::numeric > 0 AND value::numeric <= 1
        WHEN name IN ('size_sample_rate') THEN value::numeric >= 0 AND value::numeric <= 1
        WHEN name = 'quota_period' THEN value IN ('minute', 'hour', 'day', 'week', 'month')
        ELSE false
    END;
EXCEPTION
    WHEN data_exception THEN
        RETURN false;
END;
$$;
COMMENT ON FUNCTION refresh.setting_is_valid(text, text) IS
    'True when value is a valid value for the named refresh setting; false for unknown names and values that do not parse or are out of range.';

CREATE TABLE refresh.settings (
    name text PRIMARY KEY,
    value text NOT NULL,
    description text NOT NULL,
    CONSTRAINT settings_value_valid CHECK (refresh.setting_is_valid(name, value))
);
COMMENT ON TABLE refresh.settings IS 'Tunable values of the refresh engine; change them with refresh.set_setting(), read them with refresh.setting().';

INSERT INTO refresh.settings (name, value, description) VALUES
    ('subscription_active_window', '10 minutes', 'A subscription seen within this window is active: the sweep, the analytics and the update trigger consider it.'),
    ('job_lease', '5 minutes', 'How long a worker may hold a claimed job before recover_stuck_jobs() returns it to the queue.'),
    ('max_attempts', '5', 'Attempts a job gets before it moves to failed.'),
    ('retry_base_delay', '10 seconds', 'Backoff after the first failed attempt; it doubles with each attempt.'),
    ('retry_max_delay', '1 hour', 'The cap on the backoff between attempts.'),
    ('quota_period', 'day', 'The quota period: minute, hour, day, week or month (date_trunc units, UTC).'),
    ('quota_max_calls', '250000', 'API calls allowed per quota period.'),
    ('quota_max_bytes', '21474836480', 'Bytes of API data allowed per quota period.'),
    ('breaker_failure_ratio', '0.5', 'The circuit breaker opens when at least this share of recent calls failed.'),
    ('breaker_min_calls', '20', 'Recent calls needed before the failure ratio can open the breaker.'),
    ('breaker_cooldown', '2 minutes', 'How long the breaker stays open before it lets probe jobs through (half-open).'),
    ('breaker_probe_jobs', '1', 'Jobs in flight at most while the breaker is half-open.'),
    ('size_sample_rate', '0.05', 'Share of completions that correct the registry''s size estimate.'),
    ('scheduled_batch_size', '50', 'Jobs queue_scheduled_refreshes() queues per data type and run at most.'),
    ('scheduled_max_pending', '100', 'queue_scheduled_refreshes() queues nothing while this many jobs are runnable.'),
    ('completed_retention', '1 day', 'How long completed jobs stay in the queue.'),
    ('failed_retention', '7 days', 'How long failed jobs stay in the queue.'),
    ('usage_retention', '90 days', 'How long per-period usage rows are kept.'),
    ('log_retention', '7 days', 'How long staleness errors and health checks are kept.'),
    ('health_max_pending_age', '10 minutes', 'health_check() calls the queue unhealthy when a runnable job waited longer.');

CREATE FUNCTION refresh.setting(name text) RETURNS text
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

CREATE FUNCTION refresh.set_setting(name text, value text) RETURNS text
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

-- Flags ------------------------------------------------------------------------------------------

SELECT foundation.register_flag('use_queue_system', 'Refresh engine: queue, claim and sweep refresh jobs.', true);
SELECT foundation.register_flag('use_subscription_trigger', 'Refresh engine: queue stale data the moment a subscription is inserted.', true);
SELECT foundation.register_flag('use_update_trigger', 'Refresh engine: check staleness when a registered data table is written (Phase 3). Turn it with refresh.set_update_trigger().', false);

-- Staleness checks -------------------------------------------------------------------------------

CREATE FUNCTION refresh.is_data_stale(fetched_at timestamptz, ttl_minutes integer) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
BEGIN
    IF ttl_minutes IS NULL OR ttl_minutes <= 0 THEN
        RAISE EXCEPTION 'a TTL is a positive number of minutes, got %', coalesce(ttl_minutes::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN fetched_at IS NULL OR fetched_at < now() - make_interval(mins => ttl_minutes);
END;
$$;
COMMENT ON FUNCTION refresh.is_data_stale(timestamptz, integer) IS
    'True when data fetched at fetched_at is older than ttl_minutes, or was never fetched (NULL). No defaults: every caller states its TTL. A missing or non-positive TTL raises 22023.';

CREATE FUNCTION refresh.is_profile_stale(fetched_at timestamptz, ttl_minutes integer) RETURNS boolean
    LANGUAGE plpgsql STABLE PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
BEGIN
    -- A profile dated in the future came from a source with a wrong clock: fail safe, refetch it.
    RETURN refresh.is_data_stale(fetched_at, ttl_minutes) OR fetched_at > now() + interval '5 minutes';
END;
$$;
COMMENT ON FUNCTION refresh.is_profile_stale(timestamptz, integer) IS
    'is_data_stale() for company profiles, which also counts a profile dated more than 5 minutes in the future as stale. No defaults.';

-- Data tables and the registry -------------------------------------------------------------------

CREATE TABLE refresh.live_quote_indicators (symbol text PRIMARY KEY, data jsonb NOT NULL, fetched_at timestamptz NOT NULL);
CREATE TABLE refresh.profiles (symbol text PRIMARY KEY, data jsonb NOT NULL, modified_at timestamptz NOT NULL);
CREATE TABLE refresh.financial_statements (symbol text PRIMARY KEY, data jsonb NOT NULL, fetched_at timestamptz NOT NULL);
CREATE TABLE refresh.ratios_ttm (symbol text PRIMARY KEY, data jsonb NOT NULL, fetched_at timestamptz NOT NULL);
CREATE TABLE refresh.dividend_history (symbol text PRIMARY KEY, data jsonb NOT NULL, fetched_at timestamptz NOT NULL);
CREATE TABLE refresh.shares_float (symbol text PRIMARY KEY, data jsonb NOT NULL, fetched_at timestamptz NOT NULL);
CREATE TABLE refresh.revenue_segmentation (symbol text PRIMARY KEY, data jsonb NOT NULL, fetched_at timestamptz NOT NULL);
CREATE TABLE refresh.grades_historical (symbol text PRIMARY KEY, data jsonb NOT NULL, fetched_at timestamptz NOT NULL);
CREATE TABLE refresh.exchange_variants (symbol text PRIMARY KEY, data jsonb NOT NULL, fetched_at timestamptz NOT NULL);
CREATE TABLE refresh.available_exchanges (exchange text PRIMARY KEY, data jsonb NOT NULL, updated_at timestamptz NOT NULL);
CREATE TABLE refresh.exchange_market_status (exchange text PRIMARY KEY, data jsonb NOT NULL, updated_at timestamptz NOT NULL);
COMMENT ON TABLE refresh.live_quote_indicators IS 'Data of type quote: the latest quote per symbol, as the worker fetched it.';
COMMENT ON TABLE refresh.profiles IS 'Data of type profile: company profiles; modified_at is the source''s timestamp.';
COMMENT ON TABLE refresh.financial_statements IS 'Data of type financial-statements.';
COMMENT ON TABLE refresh.ratios_ttm IS 'Data of type ratios-ttm: trailing-twelve-month ratios.';
COMMENT ON TABLE refresh.dividend_history IS 'Data of type dividend-history.';
COMMENT ON TABLE refresh.shares_float IS 'Data of type shares-float.';
COMMENT ON TABLE refresh.revenue_segmentation IS 'Data of type revenue-segmentation.';
COMMENT ON TABLE refresh.grades_historical IS 'Data of type grades-historical: analyst grades over time.';
COMMENT ON TABLE refresh.exchange_variants IS 'Data of type exchange-variants: the listings of a symbol on other exchanges.';
COMMENT ON TABLE refresh.available_exchanges IS 'Data of type available-exchanges, one row per exchange.';
COMMENT ON TABLE refresh.exchange_market_status IS 'Data of type exchange-market-status, one row per exchange; refreshed on a schedule.';

CREATE TABLE refresh.data_type_registry (
    data_type text PRIMARY KEY CHECK (data_type ~ '^[a-z][a-z0-9]*(-[a-z0-9]+)*$' AND octet_length(data_type) <= 48),
    table_schema text NOT NULL DEFAULT 'refresh',
    table_name text NOT NULL,
    timestamp_column text NOT NULL,
    symbol_column text NOT NULL,
    staleness_function text NOT NULL,
    default_ttl_minutes integer NOT NULL CHECK (default_ttl_minutes > 0),
    estimated_data_size_bytes bigint NOT NULL DEFAULT 0 CHECK (estimated_data_size_bytes >= 0),
    refresh_strategy text NOT NULL CHECK (refresh_strategy IN ('on-demand', 'scheduled')),
    priority integer NOT NULL DEFAULT 0,
    enabled boolean NOT NULL DEFAULT true,
    update_trigger_attached boolean NOT NULL DEFAULT false,
    flag text NOT NULL GENERATED ALWAYS AS ('refresh_' || replace(data_type, '-', '_')) STORED,
    check_function text NOT NULL GENERATED ALWAYS AS ('stale_' || replace(data_type, '-', '_')) STORED,
    UNIQUE (table_schema, table_name)
);
COMMENT ON TABLE refresh.data_type_registry IS
    'One row per data type: where its data lives (table, timestamp and symbol columns), how staleness is judged (function in schema refresh, TTL), its estimated payload size, strategy, priority and switches. Identifiers are checked here and reach SQL only through format(''%I''). Readable by every role, writable only by its owner: use refresh.register_data_type().';
COMMENT ON COLUMN refresh.data_type_registry.estimated_data_size_bytes IS
    'Predicted payload size used by the quota check; complete_queue_job() corrects it from a random sample of completions.';
COMMENT ON COLUMN refresh.data_type_registry.priority IS 'The priority of the jobs the background sweep queues for this type; higher runs first.';
COMMENT ON COLUMN refresh.data_type_registry.flag IS 'The feature flag that switches this type, as registered in foundation.feature_flags.';
COMMENT ON COLUMN refresh.data_type_registry.check_function IS
    'The function in schema refresh, generated from this row, that returns which of a set of symbols have stale data of this type.';
REVOKE ALL ON refresh.data_type_registry FROM PUBLIC;
GRANT USAGE ON SCHEMA refresh TO PUBLIC;
GRANT SELECT ON refresh.data_type_registry TO PUBLIC;

CREATE FUNCTION refresh.check_registry_entry() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    target regclass;
    column_type regtype;
BEGIN
    PERFORM foundation.assert_valid_identifier(NEW.table_schema, 'schema');
    PERFORM foundation.assert_valid_identifier(NEW.table_name, 'table');
    PERFORM foundation.assert_valid_identifier(NEW.timestamp_column, 'timestamp column');
    PERFORM foundation.assert_valid_identifier(NEW.symbol_column, 'symbol column');
    PERFORM foundation.assert_valid_identifier(NEW.staleness_function, 'staleness function');
    IF NEW.default_ttl_minutes IS NULL OR NEW.default_ttl_minutes <= 0 THEN
        RAISE EXCEPTION 'data type %: the TTL must be a positive number of minutes, got %',
            NEW.data_type, coalesce(NEW.default_ttl_minutes::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    target := to_regclass(format('%I.%I', NEW.table_schema, NEW.table_name));
    IF target IS NULL THEN
        RAISE EXCEPTION 'data type %: table %.% does not exist', NEW.data_type, NEW.table_schema, NEW.table_name
            USING ERRCODE = 'undefined_table';
    END IF;
    SELECT a.atttypid::regtype INTO column_type FROM pg_attribute a
    WHERE a.attrelid = target AND a.attname = NEW.timestamp_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF column_type IS NULL OR column_type NOT IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype) THEN
        RAISE EXCEPTION 'data type %: % has no timestamp column %', NEW.data_type, target, NEW.timestamp_column
            USING ERRCODE = 'undefined_column', HINT = 'The timestamp column must be timestamptz, timestamp or date.';
    END IF;
    column_type := NULL;
    SELECT a.atttypid::regtype INTO column_type FROM pg_attribute a
    WHERE a.attrelid = target AND a.attname = NEW.symbol_column AND a.attnum > 0 AND NOT a.attisdropped;
    IF column_type IS NULL OR column_type NOT IN ('text'::regtype, 'character varying'::regtype) THEN
        RAISE EXCEPTION 'data type %: % has no text column %', NEW.data_type, target, NEW.symbol_column
            USING ERRCODE = 'undefined_column';
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_proc p
                   WHERE p.oid = to_regprocedure(format('refresh.%I(timestamptz, integer)', NEW.staleness_function))
                     AND p.prorettype = 'boolean'::regtype) THEN
        RAISE EXCEPTION 'data type %: no staleness function refresh.%(timestamptz, integer) returning boolean', NEW.data_type, NEW.staleness_function
            USING ERRCODE = 'undefined_function';
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION refresh.check_registry_entry() IS
    'Checks every registry write, the owner''s included: identifiers (22023), a positive TTL (22023), and that the table, columns and staleness function exist with the right types.';
-- Only writes that touch what a query is built from are checked: the size estimate, which
-- completions correct all the time, stays cheap to update.
CREATE TRIGGER registry_entry_valid
    BEFORE INSERT OR UPDATE OF data_type, table_schema, table_name, timestamp_column, symbol_column, staleness_function,
                               default_ttl_minutes
    ON refresh.data_type_registry
    FOR EACH ROW EXECUTE FUNCTION refresh.check_registry_entry();

CREATE FUNCTION refresh.generate_check_function() RETURNS trigger
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
CREATE TRIGGER registry_check_function
    AFTER INSERT OR DELETE OR UPDATE OF data_type, table_schema, table_name, timestamp_column, symbol_column, staleness_function
    ON refresh.data_type_registry
    FOR EACH ROW EXECUTE FUNCTION refresh.generate_check_function();

CREATE FUNCTION refresh.register_data_type(
    data_type text, table_schema text, table_name text, timestamp_column text, symbol_column text,
    staleness_function text, default_ttl_minutes integer, estimated_data_size_bytes bigint,
    refresh_strategy text, priority integer)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO refresh.data_type_registry AS r (data_type, table_schema, table_name, timestamp_column, symbol_column,
        staleness_function, default_ttl_minutes, estimated_data_size_bytes, refresh_strategy, priority)
    VALUES (register_data_type.data_type, register_data_type.table_schema, register_data_type.table_name,
            register_data_type.timestamp_column, register_data_type.symbol_column, register_data_type.staleness_function,
            register_data_type.default_ttl_minutes, coalesce(register_data_type.estimated_data_size_bytes, 0),
            register_data_type.refresh_strategy, coalesce(register_data_type.priority, 0))
    ON CONFLICT ON CONSTRAINT data_type_registry_pkey DO UPDATE SET
        table_schema = excluded.table_schema, table_name = excluded.table_name, timestamp_column = excluded.timestamp_column,
        symbol_column = excluded.symbol_column, staleness_function = excluded.staleness_function,
        default_ttl_minutes = excluded.default_ttl_minutes, refresh_strategy = excluded.refresh_strategy,
        priority = excluded.priority;
    PERFORM foundation.register_flag('refresh_' || replace(register_data_type.data_type, '-', '_'),
        format('Refresh engine: refresh data of type %s.', register_data_type.data_type), true);
END;
$$;
COMMENT ON FUNCTION refresh.register_data_type(text, text, text, text, text, text, integer, bigint, text, integer) IS
    'Registers or updates a data type and its feature flag (refresh_<type>, on). Every identifier is checked, and the table, columns and staleness function must exist. Re-registering keeps the learned size estimate and the flag''s state.';

CREATE FUNCTION refresh.unregister_data_type(data_type text) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    entry refresh.data_type_registry;
BEGIN
    SELECT * INTO entry FROM refresh.data_type_registry r WHERE r.data_type = unregister_data_type.data_type FOR UPDATE;
    IF NOT FOUND THEN
        RETURN false;
    END IF;
    PERFORM refresh.detach_update_trigger(entry.data_type);
    DELETE FROM refresh.data_type_registry r WHERE r.data_type = entry.data_type;
    PERFORM foundation.unregister_flag(entry.flag);
    RETURN true;
END;
$$;
COMMENT ON FUNCTION refresh.unregister_data_type(text) IS
    'Removes a data type, its update trigger and its flag; returns whether it existed. Its queued jobs stay and finish or fail as usual.';

-- Subscriptions and analytics --------------------------------------------------------------------

CREATE TABLE refresh.subscriptions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    client_id text NOT NULL CHECK (client_id <> ''),
    symbol text NOT NULL CHECK (symbol ~ '^[[:graph:]]{1,64}$'),
    data_types text[] NOT NULL CHECK (cardinality(data_types) > 0 AND array_position(data_types, NULL) IS NULL),
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen timestamptz NOT NULL DEFAULT now(),
    UNIQUE (client_id, symbol)
);
CREATE INDEX subscriptions_by_symbol ON refresh.subscriptions (symbol);
CREATE INDEX subscriptions_by_last_seen ON refresh.subscriptions (last_seen);
COMMENT ON TABLE refresh.subscriptions IS
    'Who watches what: Freshet''s stand-in for realtime.subscription. A client watches one symbol with a set of data types; last_seen is its presence heartbeat.';

CREATE TABLE refresh.active_subscriptions (
    symbol text NOT NULL,
    data_type text NOT NULL,
    client_count integer NOT NULL CHECK (client_count > 0),
    first_subscribed_at timestamptz NOT NULL,
    last_seen timestamptz NOT NULL,
    refreshed_at timestamptz NOT NULL,
    PRIMARY KEY (symbol, data_type)
);
COMMENT ON TABLE refresh.active_subscriptions IS
    'Analytics: for each symbol and data type with an active subscription, how many clients watch it and since when. Kept by refresh.refresh_analytics_from_presence().';

-- The queue --------------------------------------------------------------------------------------

CREATE SEQUENCE refresh.api_call_queue_id_seq AS bigint;
COMMENT ON SEQUENCE refresh.api_call_queue_id_seq IS 'Job ids; a job keeps its id as it moves between status partitions.';

CREATE TABLE refresh.api_call_queue (
    id bigint NOT NULL DEFAULT nextval('refresh.api_call_queue_id_seq'),
    data_type text NOT NULL,
    symbol text NOT NULL CHECK (symbol ~ '^[[:graph:]]{1,64}$'),
    status text NOT NULL CHECK (status IN ('pending', 'processing', 'completed', 'failed')),
    priority integer NOT NULL DEFAULT 0,
    attempts integer NOT NULL DEFAULT 0 CHECK (attempts >= 0 AND attempts <= max_attempts),
    max_attempts integer NOT NULL CHECK (max_attempts >= 1),
    next_attempt_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    worker_id text,
    claimed_at timestamptz,
    finished_at timestamptz,
    estimated_size_bytes bigint NOT NULL DEFAULT 0 CHECK (estimated_size_bytes >= 0),
    actual_size_bytes bigint CHECK (actual_size_bytes >= 0),
    last_error text,
    PRIMARY KEY (id, status),
    CHECK (status <> 'processing' OR (worker_id IS NOT NULL AND claimed_at IS NOT NULL)),
    CHECK ((status IN ('completed', 'failed')) = (finished_at IS NOT NULL))
) PARTITION BY LIST (status);
ALTER SEQUENCE refresh.api_call_queue_id_seq OWNED BY refresh.api_call_queue.id;
COMMENT ON TABLE refresh.api_call_queue IS
    'Refresh jobs, partitioned by status so the pending and processing partitions stay small and hot. Jobs move by DELETE + INSERT through the refresh functions; an UPDATE of status is refused.';

CREATE TABLE refresh.api_call_queue_pending PARTITION OF refresh.api_call_queue FOR VALUES IN ('pending')
    WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
          autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000, autovacuum_vacuum_cost_delay = 0);
CREATE TABLE refresh.api_call_queue_processing PARTITION OF refresh.api_call_queue FOR VALUES IN ('processing')
    WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000,
          autovacuum_vacuum_insert_scale_factor = 0, autovacuum_vacuum_insert_threshold = 10000, autovacuum_vacuum_cost_delay = 0);
CREATE TABLE refresh.api_call_queue_completed PARTITION OF refresh.api_call_queue FOR VALUES IN ('completed')
    WITH (fillfactor = 70);
CREATE TABLE refresh.api_call_queue_failed PARTITION OF refresh.api_call_queue FOR VALUES IN ('failed')
    WITH (fillfactor = 70);
COMMENT ON TABLE refresh.api_call_queue_pending IS 'Jobs waiting to be claimed; vacuumed eagerly because every job passes through.';
COMMENT ON TABLE refresh.api_call_queue_processing IS 'Jobs a worker holds; small, and vacuumed eagerly.';
COMMENT ON TABLE refresh.api_call_queue_completed IS 'Finished jobs, kept for completed_retention.';
COMMENT ON TABLE refresh.api_call_queue_failed IS 'Jobs that used all their attempts, kept for failed_retention; reset_job_immediate() retries one.';

-- Indexes sized to each partition's hot path: on every partition the primary key that each move
-- deletes by, and on pending the claim order. Nothing else is paid per job: the lease scan reads
-- the small processing partition whole, and completed rows arrive in finished_at order and are
-- pruned in one sequential pass.
CREATE INDEX api_call_queue_pending_claim_order ON refresh.api_call_queue_pending (priority DESC, next_attempt_at, id);
CREATE INDEX api_call_queue_failed_finished ON refresh.api_call_queue_failed (finished_at);

CREATE FUNCTION refresh.refuse_status_update() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    RAISE EXCEPTION 'refresh job %: move it from % to % with the refresh queue functions, not UPDATE', OLD.id, OLD.status, NEW.status
        USING ERRCODE = 'feature_not_supported',
              HINT = 'An UPDATE of status moves the row across partitions, and concurrent claimers would fail with 40001.';
END;
$$;
COMMENT ON FUNCTION refresh.refuse_status_update() IS 'Refuses an UPDATE that changes a job''s status; jobs move by DELETE + INSERT.';
CREATE TRIGGER api_call_queue_no_status_update BEFORE UPDATE ON refresh.api_call_queue
    FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION refresh.refuse_status_update();

CREATE TABLE refresh.active_job_keys (
    data_type text NOT NULL,
    symbol text NOT NULL,
    job_id bigint NOT NULL,
    PRIMARY KEY (data_type, symbol)
) WITH (fillfactor = 70, autovacuum_vacuum_scale_factor = 0, autovacuum_vacuum_threshold = 2000, autovacuum_vacuum_cost_delay = 0);
COMMENT ON TABLE refresh.active_job_keys IS
    'One row per (data type, symbol) with a pending or processing job: the unique key that makes enqueueing idempotent under concurrency, which no index across two partitions can.';

CREATE TABLE refresh.api_data_usage (
    period_start timestamptz NOT NULL,
    shard smallint NOT NULL CHECK (shard >= 0 AND shard < 64),
    calls bigint NOT NULL DEFAULT 0 CHECK (calls >= 0),
    failed_calls bigint NOT NULL DEFAULT 0 CHECK (failed_calls >= 0),
    bytes bigint NOT NULL DEFAULT 0 CHECK (bytes >= 0),
    reserved_bytes bigint NOT NULL DEFAULT 0,
    updated_at timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (period_start, shard)
) WITH (fillfactor = 10);
COMMENT ON TABLE refresh.api_data_usage IS
    'API usage per quota period, spread over 64 shards by backend so concurrent workers do not queue on one row; a period''s usage is the sum of its shards. A call counts when its job is claimed, in the claim''s period, and so do its estimated bytes (reserved_bytes) until the job finishes and its actual bytes replace them. One shard''s reserved_bytes may go negative when another backend finishes a job; the sum never does.';

CREATE TABLE refresh.circuit_breaker (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    state text NOT NULL CHECK (state IN ('closed', 'open', 'half-open')),
    changed_at timestamptz NOT NULL,
    reason text,
    seen_period timestamptz,
    seen_calls bigint NOT NULL DEFAULT 0,
    seen_failed_calls bigint NOT NULL DEFAULT 0
);
INSERT INTO refresh.circuit_breaker (state, changed_at, reason) VALUES ('closed', now(), 'installed');
COMMENT ON TABLE refresh.circuit_breaker IS
    'The breaker''s state, and the usage totals it saw at its last evaluation, so the next one judges only the calls made since.';

CREATE TABLE refresh.staleness_errors (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    occurred_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    context text NOT NULL,
    data_type text,
    symbol_count integer,
    sqlstate text NOT NULL,
    message text NOT NULL
);
CREATE INDEX staleness_errors_by_time ON refresh.staleness_errors (occurred_at);
COMMENT ON TABLE refresh.staleness_errors IS
    'Failures the staleness triggers and sweeps caught instead of raising: the write that fired them went through, and the next sweep retries.';

CREATE TABLE refresh.health_checks (
    checked_at timestamptz PRIMARY KEY,
    healthy boolean NOT NULL,
    report jsonb NOT NULL
);
COMMENT ON TABLE refresh.health_checks IS 'The reports the health-check job recorded.';

-- Internal helpers -------------------------------------------------------------------------------

CREATE FUNCTION refresh.log_staleness_error(context text, data_type text, symbol_count integer, sqlstate text, message text)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO refresh.staleness_errors (context, data_type, symbol_count, sqlstate, message)
    VALUES (context, data_type, symbol_count, sqlstate, message);
    RAISE WARNING 'refresh: % failed for data type %: % (SQLSTATE %)', context, coalesce(data_type, '(any)'), message, sqlstate;
END;
$$;
COMMENT ON FUNCTION refresh.log_staleness_error(text, text, integer, text, text) IS 'Records a caught staleness failure and raises it as a WARNING.';

CREATE FUNCTION refresh.registry_entry(data_type text) RETURNS refresh.data_type_registry
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

CREATE FUNCTION refresh.is_type_active(entry refresh.data_type_registry) RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog
AS $$
    SELECT entry.enabled AND foundation.is_enabled('use_queue_system') AND foundation.is_enabled(entry.flag);
$$;
COMMENT ON FUNCTION refresh.is_type_active(refresh.data_type_registry) IS
    'True when the queue system, the type''s flag and its registry switch are all on.';

CREATE FUNCTION refresh.assert_symbol(symbol text) RETURNS text
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

CREATE FUNCTION refresh.enqueue(data_types text[], symbols text[], priority integer, estimated_size_bytes bigint) RETURNS integer
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

CREATE FUNCTION refresh.stale_symbols(entry refresh.data_type_registry, symbols text[], context text,
    OUT stale text[], OUT check_failed boolean)
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    failure text;
    state text;
BEGIN
    check_failed := false;
    BEGIN
        EXECUTE format('SELECT refresh.%I($1, $2)', entry.check_function) INTO stale USING symbols, entry.default_ttl_minutes;
    EXCEPTION WHEN OTHERS THEN
        -- Fail safe: data whose freshness cannot be judged is refreshed.
        GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
        SELECT array_agg(DISTINCT u.symbol) INTO stale FROM unnest(symbols) AS u(symbol);
        check_failed := true;
        PERFORM refresh.log_staleness_error(context || ' staleness check', entry.data_type, cardinality(stale), state, failure);
    END;
    stale := coalesce(stale, '{}');
END;
$$;
COMMENT ON FUNCTION refresh.stale_symbols(refresh.data_type_registry, text[], text) IS
    'Which of the symbols have stale data of one type, judged in one query by the type''s check function. If the check fails, it logs the failure and returns every symbol: fail safe to stale.';

CREATE FUNCTION refresh.queue_stale(entry refresh.data_type_registry, symbols text[], priority integer, context text,
    OUT stale integer, OUT queued integer, OUT check_failed boolean)
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    judged record := refresh.stale_symbols(entry, symbols, context);
BEGIN
    check_failed := judged.check_failed;
    stale := cardinality(judged.stale);
    queued := CASE WHEN stale = 0 THEN 0
                   ELSE refresh.enqueue(array_fill(entry.data_type, ARRAY[stale]), judged.stale, priority, NULL) END;
END;
$$;
COMMENT ON FUNCTION refresh.queue_stale(refresh.data_type_registry, text[], integer, text) IS
    'Set-based core of the staleness paths: judges all symbols of one type with refresh.stale_symbols() and queues the stale ones.';

CREATE FUNCTION refresh.quota_period_start(at timestamptz) RETURNS timestamptz
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
BEGIN
    RETURN date_trunc(refresh.setting('quota_period'), at, 'UTC');
END;
$$;
COMMENT ON FUNCTION refresh.quota_period_start(timestamptz) IS 'The start of the quota period that contains the given time.';

CREATE FUNCTION refresh.record_usage(period_start timestamptz, calls bigint, failed_calls bigint, bytes bigint, reserved_bytes bigint)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
    SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    INSERT INTO refresh.api_data_usage AS u (period_start, shard, calls, failed_calls, bytes, reserved_bytes)
    VALUES (record_usage.period_start, pg_backend_pid() % 64, record_usage.calls, record_usage.failed_calls,
            record_usage.bytes, record_usage.reserved_bytes)
    ON CONFLICT ON CONSTRAINT api_data_usage_pkey DO UPDATE
        SET calls = u.calls + excluded.calls, failed_calls = u.failed_calls + excluded.failed_calls,
            bytes = u.bytes + excluded.bytes, reserved_bytes = u.reserved_bytes + excluded.reserved_bytes, updated_at = now();
END;
$$;
COMMENT ON FUNCTION refresh.record_usage(timestamptz, bigint, bigint, bigint, bigint) IS
    'Adds to a quota period''s usage on this backend''s shard: calls, failed calls, bytes, and the change in reserved bytes.';

CREATE FUNCTION refresh.quota_state(OUT period_start timestamptz, OUT calls_used bigint, OUT failed_calls bigint,
    OUT bytes_used bigint, OUT bytes_reserved bigint, OUT max_calls bigint, OUT max_bytes bigint)
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
    SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    period_start := refresh.quota_period_start(now());
    max_calls := refresh.setting('quota_max_calls')::bigint;
    max_bytes := refresh.setting('quota_max_bytes')::bigint;
    SELECT coalesce(sum(u.calls), 0), coalesce(sum(u.failed_calls), 0), coalesce(sum(u.bytes), 0),
           greatest(coalesce(sum(u.reserved_bytes), 0), 0)
    INTO calls_used, failed_calls, bytes_used, bytes_reserved
    FROM refresh.api_data_usage u WHERE u.period_start = quota_state.period_start;
END;
$$;
COMMENT ON FUNCTION refresh.quota_state() IS
    'The current quota period: calls made (jobs in flight included), failed calls, bytes used, bytes reserved by jobs in flight, and the limits.';

CREATE FUNCTION refresh.retry_delay(attempt integer) RETURNS interval
    LANGUAGE plpgsql VOLATILE
    SET search_path = pg_catalog
AS $$
DECLARE
    ceiling interval := refresh.setting('retry_max_delay')::interval;
    backoff interval;
BEGIN
    IF attempt IS NULL OR attempt < 1 THEN
        RAISE EXCEPTION 'an attempt number starts at 1, got %', coalesce(attempt::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    backoff := least(ceiling, refresh.setting('retry_base_delay')::interval * power(2, least(attempt - 1, 40)));
    -- Equal jitter: half the backoff is fixed, half random, so retries of one outage spread out.
    RETURN backoff * (0.5 + random() / 2);
END;
$$;
COMMENT ON FUNCTION refresh.retry_delay(integer) IS
    'The wait before retrying after the given failed attempt: retry_base_delay doubled per attempt, capped at retry_max_delay, with equal jitter (between half and all of it).';

CREATE FUNCTION refresh.refuse_unheld_job(job_id bigint, worker_id text) RETURNS void
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

-- Enqueueing -------------------------------------------------------------------------------------

CREATE FUNCTION refresh.queue_refresh_if_not_exists(symbol text, data_type text, priority integer, estimated_size bigint)
    RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry refresh.data_type_registry := refresh.registry_entry(data_type);
BEGIN
    PERFORM refresh.assert_symbol(symbol);
    IF priority IS NULL THEN
        RAISE EXCEPTION 'priority must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF estimated_size < 0 THEN
        RAISE EXCEPTION 'estimated size must not be negative, got %', estimated_size USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT refresh.is_type_active(entry) THEN
        RETURN NULL;
    END IF;
    PERFORM refresh.enqueue(ARRAY[entry.data_type], ARRAY[symbol], priority, estimated_size);
    RETURN (SELECT k.job_id FROM refresh.active_job_keys k WHERE k.data_type = entry.data_type AND k.symbol = queue_refresh_if_not_exists.symbol);
END;
$$;
COMMENT ON FUNCTION refresh.queue_refresh_if_not_exists(text, text, integer, bigint) IS
    'Queues a refresh of one symbol''s data of one type unless a pending or processing job already covers it (then raises that job''s priority if lower). Returns the covering job''s id, or NULL when the queue, the type or its flag is off. estimated_size NULL means the registry''s estimate.';

CREATE FUNCTION refresh.queue_refreshes(data_type text, symbols text[], priority integer) RETURNS integer
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry refresh.data_type_registry := refresh.registry_entry(data_type);
BEGIN
    IF symbols IS NULL OR priority IS NULL THEN
        RAISE EXCEPTION 'symbols and priority must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    PERFORM refresh.assert_symbol(s) FROM unnest(symbols) AS s;
    IF NOT refresh.is_type_active(entry) THEN
        RETURN 0;
    END IF;
    RETURN refresh.enqueue(array_fill(entry.data_type, ARRAY[cardinality(symbols)]), symbols, priority, NULL);
END;
$$;
COMMENT ON FUNCTION refresh.queue_refreshes(text, text[], integer) IS
    'Bulk form of queue_refresh_if_not_exists() for producers: queues every symbol not already covered, in one statement, and returns how many jobs it created.';

-- Claiming and finishing -------------------------------------------------------------------------

CREATE FUNCTION refresh.get_queue_batch(worker_id text, batch_size integer) RETURNS SETOF refresh.api_call_queue
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

CREATE FUNCTION refresh.correct_size_estimate(data_type text, actual_size bigint, was_unmeasured boolean) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    -- A zero estimate is a type never measured: take the first real size outright, since a moving
    -- average from zero would take many samples to get anywhere. After that, sample; and never
    -- wait for another worker that is correcting the same type.
    IF NOT (was_unmeasured AND actual_size > 0 OR random() < refresh.setting('size_sample_rate')::numeric) THEN
        RETURN false;
    END IF;
    PERFORM 1 FROM refresh.data_type_registry r WHERE r.data_type = correct_size_estimate.data_type FOR UPDATE SKIP LOCKED;
    IF FOUND THEN
        UPDATE refresh.data_type_registry r
        SET estimated_data_size_bytes = CASE WHEN r.estimated_data_size_bytes = 0 THEN actual_size
                                             ELSE round(r.estimated_data_size_bytes * 0.8 + actual_size * 0.2) END
        WHERE r.data_type = correct_size_estimate.data_type;
    END IF;
    RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION refresh.correct_size_estimate(text, bigint, boolean) IS
    'On a random sample of completions (size_sample_rate), and always for a type whose estimate is still 0, moves the registry''s size estimate toward an actual size; returns whether it did.';

CREATE FUNCTION refresh.complete_queue_jobs(job_ids bigint[], actual_sizes bigint[], worker_id text) RETURNS integer
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

CREATE FUNCTION refresh.complete_queue_job(job_id bigint, actual_size bigint, worker_id text) RETURNS void
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

CREATE FUNCTION refresh.fail_queue_job(job_id bigint, error text, worker_id text) RETURNS text
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

-- Recovery ---------------------------------------------------------------------------------------

CREATE FUNCTION refresh.recover_stuck_jobs(timeout interval) RETURNS integer
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
DECLARE
    lease interval := coalesce(timeout, refresh.setting('job_lease')::interval);
    recovered integer;
BEGIN
    IF lease < interval '0' THEN
        RAISE EXCEPTION 'a lease must not be negative: %', lease USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- SKIP LOCKED passes over a job its worker is finishing right now, and a job that was just
    -- finished is gone from this partition: recovery never overwrites a completion.
    WITH expired AS (
        SELECT p.id FROM refresh.api_call_queue_processing p
        WHERE p.claimed_at < now() - lease
        FOR UPDATE SKIP LOCKED
    ), moved AS (
        DELETE FROM refresh.api_call_queue_processing p USING expired e WHERE p.id = e.id RETURNING p.*
    ), retried AS (
        INSERT INTO refresh.api_call_queue_pending (id, data_type, symbol, status, priority, attempts, max_attempts,
            next_attempt_at, created_at, estimated_size_bytes, last_error)
        SELECT m.id, m.data_type, m.symbol, 'pending', m.priority, m.attempts, m.max_attempts, now(), m.created_at,
               m.estimated_size_bytes, format('lease expired: worker %s claimed it at %s', m.worker_id, m.claimed_at)
        FROM moved m WHERE m.attempts < m.max_attempts
    ), given_up AS (
        INSERT INTO refresh.api_call_queue_failed (id, data_type, symbol, status, priority, attempts, max_attempts,
            next_attempt_at, created_at, worker_id, claimed_at, finished_at, estimated_size_bytes, last_error)
        SELECT m.id, m.data_type, m.symbol, 'failed', m.priority, m.attempts, m.max_attempts, m.next_attempt_at, m.created_at,
               m.worker_id, m.claimed_at, now(), m.estimated_size_bytes,
               format('lease expired on the last attempt: worker %s claimed it at %s', m.worker_id, m.claimed_at)
        FROM moved m WHERE m.attempts >= m.max_attempts
        RETURNING id, data_type, symbol
    ), released AS (
        DELETE FROM refresh.active_job_keys k USING given_up g WHERE (k.data_type, k.symbol, k.job_id) = (g.data_type, g.symbol, g.id)
    )
    -- The worker may have spent the call: it stays counted, as a failure, and its reservation ends.
    SELECT coalesce(sum(n), 0) INTO recovered FROM (
        SELECT count(*) AS n, refresh.record_usage(refresh.quota_period_start(m.claimed_at), 0, count(*), 0, -sum(m.estimated_size_bytes)::bigint)
        FROM moved m GROUP BY refresh.quota_period_start(m.claimed_at)) r;
    RETURN recovered;
END;
$$;
COMMENT ON FUNCTION refresh.recover_stuck_jobs(interval) IS
    'Returns jobs held longer than timeout (NULL: the job_lease setting) to the queue, or to failed on their last attempt, and counts each as a failed call. Returns how many it recovered.';

CREATE FUNCTION refresh.reset_job_immediate(job_id bigint) RETURNS text
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job refresh.api_call_queue;
BEGIN
    -- A job can move between this lookup and its lock; look again until it holds still.
    FOR attempt IN 1..5 LOOP
        SELECT * INTO job FROM refresh.api_call_queue q WHERE q.id = reset_job_immediate.job_id FOR UPDATE;
        EXIT WHEN FOUND;
        IF NOT EXISTS (SELECT 1 FROM refresh.api_call_queue q WHERE q.id = reset_job_immediate.job_id) THEN
            RAISE EXCEPTION 'refresh job % does not exist', job_id USING ERRCODE = 'no_data_found';
        END IF;
    END LOOP;
    IF job.id IS NULL THEN
        RAISE EXCEPTION 'refresh job % keeps moving; try again', job_id USING ERRCODE = 'lock_not_available';
    END IF;
    CASE job.status
    WHEN 'completed' THEN
        RAISE EXCEPTION 'refresh job % is completed; queue a new refresh instead', job_id
            USING ERRCODE = 'object_not_in_prerequisite_state';
    WHEN 'pending' THEN
        UPDATE refresh.api_call_queue_pending p SET next_attempt_at = now() WHERE p.id = job.id;
    WHEN 'processing' THEN
        DELETE FROM refresh.api_call_queue_processing p WHERE p.id = job.id;
        INSERT INTO refresh.api_call_queue_pending (id, data_type, symbol, status, priority, attempts, max_attempts,
            next_attempt_at, created_at, estimated_size_bytes, last_error)
        VALUES (job.id, job.data_type, job.symbol, 'pending', job.priority, job.attempts, job.max_attempts, now(),
            job.created_at, job.estimated_size_bytes, format('reset while worker %s held it', job.worker_id));
    WHEN 'failed' THEN
        INSERT INTO refresh.active_job_keys (data_type, symbol, job_id) VALUES (job.data_type, job.symbol, job.id)
        ON CONFLICT DO NOTHING;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'refresh job % cannot be retried: job % already refreshes % of %', job_id,
                (SELECT k.job_id FROM refresh.active_job_keys k WHERE k.data_type = job.data_type AND k.symbol = job.symbol),
                job.data_type, job.symbol
                USING ERRCODE = 'unique_violation';
        END IF;
        DELETE FROM refresh.api_call_queue_failed f WHERE f.id = job.id;
        INSERT INTO refresh.api_call_queue_pending (id, data_type, symbol, status, priority, attempts, max_attempts,
            next_attempt_at, created_at, estimated_size_bytes, last_error)
        VALUES (job.id, job.data_type, job.symbol, 'pending', job.priority, 0, job.max_attempts, now(),
            job.created_at, job.estimated_size_bytes, job.last_error);
    END CASE;
    PERFORM pg_notify('refresh_queue', 'enqueued');
    RETURN 'pending';
END;
$$;
COMMENT ON FUNCTION refresh.reset_job_immediate(bigint) IS
    'Makes a job runnable now: a waiting job skips its backoff, a held job is taken back from its worker (whose result is then refused), a failed job starts over with fresh attempts. Refuses completed jobs and unknown ids.';

-- Staleness paths --------------------------------------------------------------------------------

CREATE FUNCTION refresh.check_and_queue_stale_batch(symbol text, data_types text[], priority integer)
    RETURNS TABLE (data_type text, outcome text)
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry refresh.data_type_registry;
    result record;
BEGIN
    PERFORM refresh.assert_symbol(symbol);
    IF data_types IS NULL OR cardinality(data_types) = 0 OR priority IS NULL THEN
        RAISE EXCEPTION 'data types and priority are required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM refresh.registry_entry(t) FROM unnest(data_types) AS t;   -- every type is known, or nothing happens
    FOR entry IN SELECT r.* FROM refresh.data_type_registry r WHERE r.data_type = ANY (data_types) ORDER BY r.data_type LOOP
        data_type := entry.data_type;
        IF NOT refresh.is_type_active(entry) THEN
            outcome := 'disabled';
        ELSE
            result := refresh.queue_stale(entry, ARRAY[symbol], priority, 'check_and_queue_stale_batch');
            outcome := CASE
                WHEN result.check_failed THEN 'check failed, queued'
                WHEN result.stale = 0 THEN 'fresh'
                WHEN result.queued = 1 THEN 'queued'
                ELSE 'already queued' END;
        END IF;
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION refresh.check_and_queue_stale_batch(text, text[], integer) IS
    'Checks one symbol''s data of several types and queues the stale ones at the given priority. Returns one row per type: fresh, queued, already queued, disabled, or "check failed, queued" (fail-safe: a check that errors counts as stale, is logged, and does not stop the other types). Unknown types or a bad symbol raise before anything is queued.';

CREATE FUNCTION refresh.on_subscription_insert() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry refresh.data_type_registry;
    symbols text[];
    judged record;
    stale_types text[] := '{}';
    stale_symbols text[] := '{}';
    failure text;
    state text;
BEGIN
    BEGIN
        IF NOT (foundation.is_enabled('use_subscription_trigger') AND foundation.is_enabled('use_queue_system')) THEN
            RETURN NULL;
        END IF;
        FOR entry IN
            SELECT r.* FROM refresh.data_type_registry r
            WHERE r.data_type IN (SELECT unnest(a.data_types) FROM added_subscriptions a)
            ORDER BY r.data_type
        LOOP
            CONTINUE WHEN NOT refresh.is_type_active(entry);
            SELECT array_agg(DISTINCT a.symbol) INTO symbols FROM added_subscriptions a WHERE entry.data_type = ANY (a.data_types);
            judged := refresh.stale_symbols(entry, symbols, 'subscription trigger');
            stale_types := stale_types || array_fill(entry.data_type, ARRAY[cardinality(judged.stale)]);
            stale_symbols := stale_symbols || judged.stale;
        END LOOP;
        IF cardinality(stale_symbols) > 0 THEN
            PERFORM refresh.enqueue(stale_types, stale_symbols, 1, NULL);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        -- The subscription must go in regardless; the background sweep will queue what was missed.
        GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
        PERFORM refresh.log_staleness_error('subscription trigger', NULL, NULL, state, failure);
    END;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION refresh.on_subscription_insert() IS
    'Option D: queues, at priority 1 and in the inserting transaction, every stale registered type of every new subscription. Any failure is logged to refresh.staleness_errors and never fails the insert.';
CREATE TRIGGER subscriptions_queue_stale AFTER INSERT ON refresh.subscriptions
    REFERENCING NEW TABLE AS added_subscriptions FOR EACH STATEMENT EXECUTE FUNCTION refresh.on_subscription_insert();

CREATE FUNCTION refresh.check_staleness_on_update() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry refresh.data_type_registry;
    symbols text[];
    failure text;
    state text;
BEGIN
    BEGIN
        IF NOT foundation.is_enabled('use_update_trigger') THEN
            RETURN NULL;
        END IF;
        SELECT r.* INTO entry FROM refresh.data_type_registry r WHERE r.table_schema = TG_TABLE_SCHEMA AND r.table_name = TG_TABLE_NAME;
        IF NOT FOUND OR NOT refresh.is_type_active(entry) THEN
            RETURN NULL;
        END IF;
        -- Data written already stale (the source's timestamp is old) is refetched, if anyone watches it.
        EXECUTE format(
            'SELECT array_agg(DISTINCT c.%1$I ORDER BY c.%1$I) FROM changed_rows c '
            'WHERE refresh.%2$I(c.%3$I::timestamptz, $1) '
            'AND EXISTS (SELECT 1 FROM refresh.subscriptions s WHERE s.symbol = c.%1$I AND $2 = ANY (s.data_types) AND s.last_seen > $3)',
            entry.symbol_column, entry.staleness_function, entry.timestamp_column)
        INTO symbols USING entry.default_ttl_minutes, entry.data_type, now() - refresh.setting('subscription_active_window')::interval;
        IF symbols IS NOT NULL THEN
            PERFORM refresh.enqueue(array_fill(entry.data_type, ARRAY[cardinality(symbols)]), symbols, 1, NULL);
        END IF;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
        PERFORM refresh.log_staleness_error('update trigger', entry.data_type, NULL, state, failure);
    END;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION refresh.check_staleness_on_update() IS
    'Phase 3: after a statement writes a registered data table, queues (priority 1) the stale rows that an active subscription watches. Attach it with refresh.attach_update_trigger(); failures are logged, never raised.';

CREATE FUNCTION refresh.sync_update_trigger(entry refresh.data_type_registry) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    wanted boolean := entry.update_trigger_attached AND foundation.is_enabled('use_update_trigger');
    present boolean := EXISTS (SELECT 1 FROM pg_trigger t
                               WHERE t.tgrelid = to_regclass(format('%I.%I', entry.table_schema, entry.table_name))
                                 AND t.tgname = 'refresh_staleness_on_insert');
BEGIN
    IF wanted AND NOT present THEN
        EXECUTE format('CREATE TRIGGER refresh_staleness_on_insert AFTER INSERT ON %I.%I REFERENCING NEW TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION refresh.check_staleness_on_update()', entry.table_schema, entry.table_name);
        EXECUTE format('CREATE TRIGGER refresh_staleness_on_update AFTER UPDATE ON %I.%I REFERENCING NEW TABLE AS changed_rows '
                       'FOR EACH STATEMENT EXECUTE FUNCTION refresh.check_staleness_on_update()', entry.table_schema, entry.table_name);
    ELSIF present AND NOT wanted THEN
        EXECUTE format('DROP TRIGGER refresh_staleness_on_insert ON %I.%I', entry.table_schema, entry.table_name);
        EXECUTE format('DROP TRIGGER refresh_staleness_on_update ON %I.%I', entry.table_schema, entry.table_name);
    END IF;
END;
$$;
COMMENT ON FUNCTION refresh.sync_update_trigger(refresh.data_type_registry) IS
    'Creates a type''s update triggers when it is attached and use_update_trigger is on, and drops them otherwise: off costs nothing, not even transition-table capture.';

CREATE FUNCTION refresh.mark_update_trigger(data_type text, attached boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    entry refresh.data_type_registry := refresh.registry_entry(data_type);
BEGIN
    UPDATE refresh.data_type_registry r SET update_trigger_attached = mark_update_trigger.attached
    WHERE r.data_type = entry.data_type
    RETURNING r.* INTO entry;
    PERFORM refresh.sync_update_trigger(entry);
END;
$$;
COMMENT ON FUNCTION refresh.mark_update_trigger(text, boolean) IS
    'Records whether a type''s data table wants the update trigger, and creates or drops it to match; the body of attach_update_trigger() and detach_update_trigger().';

CREATE FUNCTION refresh.attach_update_trigger(data_type text) RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog
AS $$
    SELECT refresh.mark_update_trigger(data_type, true);
$$;
COMMENT ON FUNCTION refresh.attach_update_trigger(text) IS
    'Attaches check_staleness_on_update() to a registered type''s data table. The trigger exists only while use_update_trigger is on (see set_update_trigger()). Idempotent.';

CREATE FUNCTION refresh.detach_update_trigger(data_type text) RETURNS void
    LANGUAGE sql
    SET search_path = pg_catalog
AS $$
    SELECT refresh.mark_update_trigger(data_type, false);
$$;
COMMENT ON FUNCTION refresh.detach_update_trigger(text) IS 'Detaches the update trigger from a type''s data table. Idempotent.';

CREATE FUNCTION refresh.set_update_trigger(enabled boolean) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    previous boolean := foundation.set_flag('use_update_trigger', enabled);
BEGIN
    PERFORM refresh.sync_update_trigger(r) FROM refresh.data_type_registry r ORDER BY r.data_type;
    RETURN previous;
END;
$$;
COMMENT ON FUNCTION refresh.set_update_trigger(boolean) IS
    'Turns the use_update_trigger flag on or off and creates or drops the triggers of every attached type to match; returns the previous state.';

-- Background jobs --------------------------------------------------------------------------------

CREATE FUNCTION refresh.check_and_queue_stale_data_from_presence() RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry refresh.data_type_registry;
    since timestamptz := now() - refresh.setting('subscription_active_window')::interval;
    symbols text[];
    result record;
    checked integer := 0;
    stale integer := 0;
    queued integer := 0;
    failed_checks integer := 0;
BEGIN
    IF NOT foundation.is_enabled('use_queue_system') THEN
        RETURN jsonb_build_object('status', 'disabled');
    END IF;
    IF NOT pg_try_advisory_xact_lock(42) THEN
        RETURN jsonb_build_object('status', 'skipped', 'reason', 'another sweep holds advisory lock 42');
    END IF;
    IF refresh.is_quota_exceeded() THEN
        RETURN jsonb_build_object('status', 'quota exceeded');
    END IF;
    -- One set-based pass per data type over all active subscriptions: no loop over subscriptions.
    FOR entry IN SELECT r.* FROM refresh.data_type_registry r WHERE r.refresh_strategy = 'on-demand' ORDER BY r.data_type LOOP
        CONTINUE WHEN NOT refresh.is_type_active(entry);
        -- Pairs that already have a job are settled; only the rest are judged.
        SELECT array_agg(DISTINCT s.symbol) INTO symbols FROM refresh.subscriptions s
        WHERE s.last_seen > since AND s.data_types @> ARRAY[entry.data_type]
          AND NOT EXISTS (SELECT 1 FROM refresh.active_job_keys k WHERE k.data_type = entry.data_type AND k.symbol = s.symbol);
        CONTINUE WHEN symbols IS NULL;
        result := refresh.queue_stale(entry, symbols, entry.priority, 'sweep');
        checked := checked + cardinality(symbols);
        stale := stale + result.stale;
        queued := queued + result.queued;
        failed_checks := failed_checks + result.check_failed::integer;
    END LOOP;
    RETURN jsonb_build_object('status', 'ok', 'checked', checked, 'stale', stale, 'queued', queued, 'failed_checks', failed_checks);
END;
$$;
COMMENT ON FUNCTION refresh.check_and_queue_stale_data_from_presence() IS
    'Phase 2 background sweep: for every active subscription, queues each stale on-demand type that has no pending or processing job, at the registry''s priority. Single-flight on advisory lock 42 (a concurrent call returns status skipped), stops at once when the quota is exceeded, and works set-based: one query per data type.';

CREATE FUNCTION refresh.queue_scheduled_refreshes() RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry refresh.data_type_registry;
    runnable integer;
    budget integer;
    row_estimate real;
    sample_percent real;
    symbols text[];
    queued integer := 0;
    failure text;
    state text;
BEGIN
    IF NOT foundation.is_enabled('use_queue_system') THEN
        RETURN jsonb_build_object('status', 'disabled');
    END IF;
    IF NOT pg_try_advisory_xact_lock(43) THEN
        RETURN jsonb_build_object('status', 'skipped', 'reason', 'another run holds advisory lock 43');
    END IF;
    IF refresh.is_quota_exceeded() THEN
        RETURN jsonb_build_object('status', 'quota exceeded');
    END IF;
    -- Throttle: scheduled work only fills the queue up to scheduled_max_pending runnable jobs.
    SELECT count(*) INTO runnable FROM (
        SELECT 1 FROM refresh.api_call_queue_pending p WHERE p.next_attempt_at <= now()
        LIMIT refresh.setting('scheduled_max_pending')::integer) r;
    budget := least(refresh.setting('scheduled_max_pending')::integer - runnable, refresh.setting('scheduled_batch_size')::integer);
    IF budget <= 0 THEN
        RETURN jsonb_build_object('status', 'throttled', 'runnable', runnable);
    END IF;
    FOR entry IN SELECT r.* FROM refresh.data_type_registry r WHERE r.refresh_strategy = 'scheduled' ORDER BY r.data_type LOOP
        CONTINUE WHEN NOT refresh.is_type_active(entry);
        BEGIN
            SELECT c.reltuples INTO row_estimate FROM pg_class c
            WHERE c.oid = to_regclass(format('%I.%I', entry.table_schema, entry.table_name));
            -- Sample about four times the budget's worth of blocks, so a big table is never read whole.
            sample_percent := CASE WHEN row_estimate IS NULL OR row_estimate < budget * 20 THEN 100
                                   ELSE least(100, 400.0 * budget / row_estimate) END;
            EXECUTE format(
                'SELECT array_agg(s.symbol ORDER BY s.symbol) FROM ('
                '  SELECT DISTINCT d.%1$I AS symbol FROM %2$I.%3$I d TABLESAMPLE SYSTEM ($1) '
                '  WHERE refresh.%4$I(d.%5$I::timestamptz, $2) LIMIT $3) s',
                entry.symbol_column, entry.table_schema, entry.table_name, entry.staleness_function, entry.timestamp_column)
            INTO symbols USING sample_percent, entry.default_ttl_minutes, budget;
            IF symbols IS NOT NULL THEN
                queued := queued + refresh.enqueue(array_fill(entry.data_type, ARRAY[cardinality(symbols)]), symbols, -1, NULL);
            END IF;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
            PERFORM refresh.log_staleness_error('scheduled refresh', entry.data_type, NULL, state, failure);
        END;
    END LOOP;
    RETURN jsonb_build_object('status', 'ok', 'queued', queued, 'budget', budget);
END;
$$;
COMMENT ON FUNCTION refresh.queue_scheduled_refreshes() IS
    'Queues stale rows of scheduled data types at priority -1, found with TABLESAMPLE so big tables are never scanned whole. Single-flight on advisory lock 43; throttled to scheduled_batch_size jobs per type and to scheduled_max_pending runnable jobs in all.';

CREATE FUNCTION refresh.refresh_analytics_from_presence() RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    since timestamptz := now() - refresh.setting('subscription_active_window')::interval;
    upserted integer;
    removed integer;
BEGIN
    WITH present AS (
        SELECT s.symbol, t.data_type, count(DISTINCT s.client_id)::integer AS client_count,
               min(s.created_at) AS first_subscribed_at, max(s.last_seen) AS last_seen
        FROM refresh.subscriptions s CROSS JOIN LATERAL unnest(s.data_types) AS t(data_type)
        WHERE s.last_seen > since
        GROUP BY s.symbol, t.data_type
    ), gone AS (
        DELETE FROM refresh.active_subscriptions a
        WHERE NOT EXISTS (SELECT 1 FROM present p WHERE p.symbol = a.symbol AND p.data_type = a.data_type)
        RETURNING 1
    ), kept AS (
        INSERT INTO refresh.active_subscriptions AS a (symbol, data_type, client_count, first_subscribed_at, last_seen, refreshed_at)
        SELECT p.symbol, p.data_type, p.client_count, p.first_subscribed_at, p.last_seen, now() FROM present p
        ON CONFLICT (symbol, data_type) DO UPDATE
            SET client_count = excluded.client_count, first_subscribed_at = excluded.first_subscribed_at,
                last_seen = excluded.last_seen, refreshed_at = excluded.refreshed_at
        RETURNING 1
    )
    SELECT (SELECT count(*) FROM kept), (SELECT count(*) FROM gone) INTO upserted, removed;
    RETURN jsonb_build_object('status', 'ok', 'active', upserted, 'removed', removed);
END;
$$;
COMMENT ON FUNCTION refresh.refresh_analytics_from_presence() IS
    'Rebuilds refresh.active_subscriptions from the active subscriptions in one statement: client counts per symbol and type, first subscription and last presence.';

CREATE FUNCTION refresh.evaluate_circuit_breaker() RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    breaker refresh.circuit_breaker;
    quota record := refresh.quota_state();
    new_calls bigint;
    new_failures bigint;
    ratio numeric;
    threshold numeric := refresh.setting('breaker_failure_ratio')::numeric;
    next_state text;
    why text;
BEGIN
    SELECT * INTO breaker FROM refresh.circuit_breaker FOR UPDATE;
    IF breaker.seen_period IS DISTINCT FROM quota.period_start OR quota.calls_used < breaker.seen_calls THEN
        breaker.seen_calls := 0;
        breaker.seen_failed_calls := 0;
    END IF;
    new_calls := quota.calls_used - breaker.seen_calls;
    new_failures := quota.failed_calls - breaker.seen_failed_calls;
    ratio := CASE WHEN new_calls > 0 THEN new_failures::numeric / new_calls END;
    next_state := breaker.state;
    IF breaker.state = 'closed' AND new_calls >= refresh.setting('breaker_min_calls')::bigint AND ratio >= threshold THEN
        next_state := 'open';
        why := format('%s of %s calls failed since the last check', new_failures, new_calls);
    ELSIF breaker.state = 'open' AND now() - breaker.changed_at >= refresh.setting('breaker_cooldown')::interval THEN
        next_state := 'half-open';
        why := 'cool-down over: letting probe jobs through';
    ELSIF breaker.state = 'half-open' AND new_calls > 0 THEN
        next_state := CASE WHEN ratio < threshold THEN 'closed' ELSE 'open' END;
        why := format('probe: %s of %s calls failed', new_failures, new_calls);
    END IF;
    UPDATE refresh.circuit_breaker b
    SET state = next_state,
        changed_at = CASE WHEN next_state <> breaker.state THEN now() ELSE b.changed_at END,
        reason = CASE WHEN next_state <> breaker.state THEN why ELSE b.reason END,
        seen_period = quota.period_start, seen_calls = quota.calls_used, seen_failed_calls = quota.failed_calls;
    RETURN next_state;
END;
$$;
COMMENT ON FUNCTION refresh.evaluate_circuit_breaker() IS
    'Moves the breaker on from the calls made since its last evaluation: closed opens when at least breaker_min_calls were made and breaker_failure_ratio of them failed; open turns half-open after breaker_cooldown; half-open closes when its probes mostly succeed and opens again when they do not.';

CREATE FUNCTION refresh.set_circuit_breaker(state text) RETURNS text
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

CREATE FUNCTION refresh.invoke_processor_loop() RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    recovered integer;
    breaker text;
    runnable boolean;
BEGIN
    IF NOT foundation.is_enabled('use_queue_system') THEN
        RETURN jsonb_build_object('status', 'disabled');
    END IF;
    IF NOT pg_try_advisory_xact_lock(44) THEN
        RETURN jsonb_build_object('status', 'skipped', 'reason', 'another loop holds advisory lock 44');
    END IF;
    recovered := refresh.recover_stuck_jobs(NULL);
    breaker := refresh.evaluate_circuit_breaker();
    runnable := breaker <> 'open' AND EXISTS (SELECT 1 FROM refresh.api_call_queue_pending p WHERE p.next_attempt_at <= now());
    IF runnable THEN
        PERFORM pg_notify('refresh_queue', 'runnable');
    END IF;
    RETURN jsonb_build_object('status', 'ok', 'recovered', recovered, 'breaker', breaker, 'notified', runnable);
END;
$$;
COMMENT ON FUNCTION refresh.invoke_processor_loop() IS
    'The processor loop pg_cron runs every minute: recovers stuck jobs, moves the circuit breaker on, and sends one NOTIFY on refresh_queue when runnable work exists and the breaker lets it through. Single-flight on advisory lock 44.';

CREATE FUNCTION refresh.maintain_queue_partitions() RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    completed_removed bigint;
    failed_removed bigint;
    usage_removed bigint;
    logs_removed bigint;
    orphan_keys bigint;
    hot jsonb;
BEGIN
    DELETE FROM refresh.api_call_queue_completed c WHERE c.finished_at < now() - refresh.setting('completed_retention')::interval;
    GET DIAGNOSTICS completed_removed = ROW_COUNT;
    DELETE FROM refresh.api_call_queue_failed f WHERE f.finished_at < now() - refresh.setting('failed_retention')::interval;
    GET DIAGNOSTICS failed_removed = ROW_COUNT;
    DELETE FROM refresh.api_data_usage u WHERE u.period_start < now() - refresh.setting('usage_retention')::interval;
    GET DIAGNOSTICS usage_removed = ROW_COUNT;
    WITH errors AS (
        DELETE FROM refresh.staleness_errors e WHERE e.occurred_at < now() - refresh.setting('log_retention')::interval RETURNING 1
    ), checks AS (
        DELETE FROM refresh.health_checks h WHERE h.checked_at < now() - refresh.setting('log_retention')::interval RETURNING 1
    )
    SELECT (SELECT count(*) FROM errors) + (SELECT count(*) FROM checks) INTO logs_removed;
    -- A key without a pending or processing job would block its pair forever; there should be none.
    DELETE FROM refresh.active_job_keys k
    WHERE NOT EXISTS (SELECT 1 FROM refresh.api_call_queue_pending p WHERE p.id = k.job_id)
      AND NOT EXISTS (SELECT 1 FROM refresh.api_call_queue_processing p WHERE p.id = k.job_id);
    GET DIAGNOSTICS orphan_keys = ROW_COUNT;
    SELECT jsonb_object_agg(s.relname, jsonb_build_object('live', s.n_live_tup, 'dead', s.n_dead_tup, 'last_autovacuum', s.last_autovacuum))
    INTO hot FROM pg_stat_user_tables s
    WHERE s.schemaname = 'refresh' AND s.relname IN ('api_call_queue_pending', 'api_call_queue_processing', 'active_job_keys');
    RETURN jsonb_build_object('status', 'ok', 'completed_removed', completed_removed, 'failed_removed', failed_removed,
        'usage_removed', usage_removed, 'logs_removed', logs_removed, 'orphan_keys_removed', orphan_keys, 'hot_partitions', hot);
END;
$$;
COMMENT ON FUNCTION refresh.maintain_queue_partitions() IS
    'Prunes completed and failed jobs past their retention, old usage periods, staleness errors and health checks, removes job keys left without a job, and reports the hot partitions'' live and dead tuples (autovacuum keeps them small: see their storage parameters).';

CREATE FUNCTION refresh.is_quota_exceeded() RETURNS boolean
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    quota record := refresh.quota_state();
BEGIN
    RETURN quota.calls_used >= quota.max_calls OR quota.bytes_used + quota.bytes_reserved >= quota.max_bytes;
END;
$$;
COMMENT ON FUNCTION refresh.is_quota_exceeded() IS
    'True when this period''s calls or bytes, jobs in flight included, have reached the quota.';

CREATE FUNCTION refresh.health_check() RETURNS jsonb
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

CREATE FUNCTION refresh.record_health_check() RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    report jsonb := refresh.health_check();
BEGIN
    INSERT INTO refresh.health_checks (checked_at, healthy, report) VALUES (clock_timestamp(), (report ->> 'healthy')::boolean, report);
    IF NOT (report ->> 'healthy')::boolean THEN
        RAISE WARNING 'refresh engine unhealthy: %', report;
    END IF;
    RETURN (report ->> 'healthy')::boolean;
END;
$$;
COMMENT ON FUNCTION refresh.record_health_check() IS 'Stores a health_check() report in refresh.health_checks and raises a WARNING when it is unhealthy; the health-check job runs it.';

-- Privileges: application roles read the registry and call the worker and client functions; the
-- SECURITY DEFINER functions act on the private tables for them.
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA refresh FROM PUBLIC;
GRANT EXECUTE ON FUNCTION
    refresh.is_data_stale(timestamptz, integer), refresh.is_profile_stale(timestamptz, integer), refresh.is_quota_exceeded(),
    refresh.queue_refresh_if_not_exists(text, text, integer, bigint), refresh.queue_refreshes(text, text[], integer),
    refresh.get_queue_batch(text, integer), refresh.complete_queue_job(bigint, bigint, text),
    refresh.complete_queue_jobs(bigint[], bigint[], text), refresh.fail_queue_job(bigint, text, text),
    refresh.check_and_queue_stale_batch(text, text[], integer), refresh.health_check()
TO PUBLIC;

-- Registered types -------------------------------------------------------------------------------

SELECT refresh.register_data_type(t.data_type, 'refresh', t.table_name, t.timestamp_column, t.symbol_column,
                                  t.staleness_function, t.ttl, t.size, t.strategy, t.priority)
FROM (VALUES
    ('quote', 'live_quote_indicators', 'fetched_at', 'symbol', 'is_data_stale', 1, 2048, 'on-demand', 1),
    ('profile', 'profiles', 'modified_at', 'symbol', 'is_profile_stale', 1440, 8192, 'on-demand', 0),
    ('financial-statements', 'financial_statements', 'fetched_at', 'symbol', 'is_data_stale', 1440, 204800, 'on-demand', 0),
    ('ratios-ttm', 'ratios_ttm', 'fetched_at', 'symbol', 'is_data_stale', 1440, 16384, 'on-demand', 0),
    ('dividend-history', 'dividend_history', 'fetched_at', 'symbol', 'is_data_stale', 1440, 40960, 'on-demand', 0),
    ('shares-float', 'shares_float', 'fetched_at', 'symbol', 'is_data_stale', 1440, 1024, 'on-demand', 0),
    ('revenue-segmentation', 'revenue_segmentation', 'fetched_at', 'symbol', 'is_data_stale', 10080, 0, 'on-demand', 0),
    ('grades-historical', 'grades_historical', 'fetched_at', 'symbol', 'is_data_stale', 1440, 0, 'on-demand', 0),
    ('exchange-variants', 'exchange_variants', 'fetched_at', 'symbol', 'is_data_stale', 10080, 4096, 'on-demand', 0),
    ('available-exchanges', 'available_exchanges', 'updated_at', 'exchange', 'is_data_stale', 10080, 30720, 'on-demand', 0),
    ('exchange-market-status', 'exchange_market_status', 'updated_at', 'exchange', 'is_data_stale', 5, 2048, 'scheduled', -1)
) AS t(data_type, table_name, timestamp_column, symbol_column, staleness_function, ttl, size, strategy, priority);

-- Schedules --------------------------------------------------------------------------------------

SELECT jobs.schedule_job('refresh-stale-sweep', '*/5 * * * *', 'SELECT refresh.check_and_queue_stale_data_from_presence()', 42);
SELECT jobs.schedule_job('refresh-scheduled-refreshes', '* * * * *', 'SELECT refresh.queue_scheduled_refreshes()', 43);
SELECT jobs.schedule_job('refresh-processor-loop', '* * * * *', 'SELECT refresh.invoke_processor_loop()', 44);
SELECT jobs.schedule_job('refresh-queue-maintenance', '*/10 * * * *',
                         'SELECT refresh.recover_stuck_jobs(NULL); SELECT refresh.maintain_queue_partitions()');
SELECT jobs.schedule_job('refresh-analytics', '*/5 * * * *', 'SELECT refresh.refresh_analytics_from_presence()');
SELECT jobs.schedule_job('refresh-health-check', '*/5 * * * *', 'SELECT refresh.record_health_check()');

DO $$
BEGIN
    IF NOT jobs.is_cron_available() THEN
        RAISE NOTICE 'refresh engine: pg_cron is not installed in this database, so its six jobs are inactive; health_check() reports them as not scheduled';
    END IF;
END;
$$;
