-- The scheduling layer: named pg_cron jobs that work with or without pg_cron, single-flight runs,
-- a run log, retention, and monitoring views. Other modules schedule through these functions.

DO $$
BEGIN
    -- pg_cron can only live in the database that cron.database_name names; elsewhere jobs are
    -- recorded and stay inactive until jobs.apply_schedules() runs where pg_cron exists.
    IF current_setting('cron.database_name', true) = current_database()
       AND NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron')
       AND EXISTS (SELECT 1 FROM pg_available_extensions WHERE name = 'pg_cron') THEN
        CREATE EXTENSION pg_cron;
        PERFORM set_config('jobs.created_pg_cron', 'on', true);
    END IF;
END;
$$;

CREATE TABLE jobs.settings (
    name text PRIMARY KEY CHECK (foundation.is_valid_identifier(name)),
    value text NOT NULL,
    description text NOT NULL
);
COMMENT ON TABLE jobs.settings IS 'Tunable values of the jobs module, such as retention periods; read them with jobs.setting_interval().';

INSERT INTO jobs.settings (name, value, description) VALUES
    ('run_log_retention', '14 days', 'How long jobs.runs and cron.job_run_details keep a run.'),
    ('created_pg_cron', coalesce(current_setting('jobs.created_pg_cron', true), 'off'),
     'Whether this module created the pg_cron extension, so its down migration drops it.');

CREATE FUNCTION jobs.setting_interval(setting text) RETURNS interval
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE
    result interval;
BEGIN
    SELECT s.value::interval INTO STRICT result FROM jobs.settings s WHERE s.name = setting;
    RETURN result;
EXCEPTION
    WHEN no_data_found THEN
        RAISE EXCEPTION 'unknown jobs setting: %', coalesce(quote_literal(setting), 'NULL')
            USING ERRCODE = 'undefined_object';
END;
$$;
COMMENT ON FUNCTION jobs.setting_interval(text) IS 'Reads an interval setting from jobs.settings; an unknown name raises 42704.';

CREATE FUNCTION jobs.retention(given interval, setting text) RETURNS interval
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE
    keep interval := coalesce(given, jobs.setting_interval(setting));
BEGIN
    IF keep < interval '0' THEN
        RAISE EXCEPTION 'retention must not be negative: %', keep USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN keep;
END;
$$;
COMMENT ON FUNCTION jobs.retention(interval, text) IS
    'The retention a cleanup uses: the given interval, or the named setting when it is NULL; a negative one raises 22023.';

CREATE TABLE jobs.schedules (
    name text PRIMARY KEY CHECK (name ~ '^[a-z0-9][a-z0-9_-]{0,62}$'),
    schedule text NOT NULL,
    command text NOT NULL CHECK (command <> ''),
    lock_key bigint NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE jobs.schedules IS
    'Every job a migration scheduled, whether or not pg_cron is present; pg_cron runs jobs.run_job(name) on the schedule.';

CREATE TABLE jobs.runs (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    job_name text NOT NULL,
    started_at timestamptz NOT NULL,
    finished_at timestamptz NOT NULL,
    outcome text NOT NULL CHECK (outcome IN ('succeeded', 'failed', 'skipped')),
    error text,
    sqlstate text
);
CREATE INDEX runs_by_job ON jobs.runs (job_name, started_at DESC);
CREATE INDEX runs_by_start ON jobs.runs (started_at);
COMMENT ON TABLE jobs.runs IS 'The run log: start, end, outcome and error of every run, including runs skipped because one was in flight.';

CREATE FUNCTION jobs.is_cron_available() RETURNS boolean
    LANGUAGE sql STABLE
    SET search_path = pg_catalog
AS $$
    SELECT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_cron');
$$;
COMMENT ON FUNCTION jobs.is_cron_available() IS 'True when pg_cron is installed in this database, so schedules are live.';

CREATE FUNCTION jobs.check_schedule(schedule text) RETURNS text
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

CREATE FUNCTION jobs.schedule_job(job_name text, schedule text, command text, lock_key bigint DEFAULT NULL)
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    IF job_name IS NULL OR job_name !~ '^[a-z0-9][a-z0-9_-]{0,62}$' THEN
        RAISE EXCEPTION 'invalid job name: %', coalesce(quote_literal(job_name), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use lower-case letters, digits, - and _, at most 63 characters.';
    END IF;
    IF command IS NULL OR btrim(command) = '' THEN
        RAISE EXCEPTION 'job % needs a command', job_name USING ERRCODE = 'invalid_parameter_value';
    END IF;
    INSERT INTO jobs.schedules AS s (name, schedule, command, lock_key)
    VALUES (job_name, jobs.check_schedule(schedule), command,
            coalesce(schedule_job.lock_key, hashtextextended('jobs.' || job_name, 0)))
    ON CONFLICT (name) DO UPDATE
        SET schedule = excluded.schedule, command = excluded.command, lock_key = excluded.lock_key,
            updated_at = now();
    IF jobs.is_cron_available() THEN
        -- pg_cron updates a job of the same name in place, so this never duplicates it.
        PERFORM cron.schedule(job_name, jobs.check_schedule(schedule), format('SELECT jobs.run_job(%L)', job_name));
    ELSE
        RAISE NOTICE 'pg_cron is not installed in this database: job % is recorded but inactive until jobs.apply_schedules() runs where pg_cron is', job_name;
    END IF;
END;
$$;
COMMENT ON FUNCTION jobs.schedule_job(text, text, text, bigint) IS
    'Creates or updates a named job that pg_cron runs through the single-flight wrapper jobs.run_job(). Idempotent. Without pg_cron the job is recorded and a NOTICE says it is inactive. lock_key defaults to a hash of the name.';

CREATE FUNCTION jobs.unschedule_job(job_name text) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    existed boolean;
BEGIN
    DELETE FROM jobs.schedules s WHERE s.name = job_name;
    existed := FOUND;
    IF jobs.is_cron_available() THEN
        IF EXISTS (SELECT 1 FROM cron.job j WHERE j.jobname = job_name) THEN
            PERFORM cron.unschedule(job_name);
            existed := true;
        END IF;
    END IF;
    RETURN existed;
END;
$$;
COMMENT ON FUNCTION jobs.unschedule_job(text) IS 'Removes a named job from pg_cron and from jobs.schedules. Idempotent: returns whether it existed.';

CREATE FUNCTION jobs.apply_schedules() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    job record;
    scheduled integer := 0;
BEGIN
    IF NOT jobs.is_cron_available() THEN
        RAISE EXCEPTION 'pg_cron is not installed in this database'
            USING ERRCODE = 'feature_not_supported',
                  HINT = 'Preload pg_cron, set cron.database_name to this database, and CREATE EXTENSION pg_cron.';
    END IF;
    FOR job IN SELECT * FROM jobs.schedules ORDER BY name LOOP
        PERFORM cron.schedule(job.name, job.schedule, format('SELECT jobs.run_job(%L)', job.name));
        scheduled := scheduled + 1;
    END LOOP;
    RETURN scheduled;
END;
$$;
COMMENT ON FUNCTION jobs.apply_schedules() IS 'Schedules every recorded job in pg_cron, for a database that gained pg_cron after the migrations ran.';

CREATE FUNCTION jobs.run_job(job_name text) RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    job jobs.schedules;
    started timestamptz := clock_timestamp();
    outcome text := 'succeeded';
    failure text;
    state text;
BEGIN
    SELECT * INTO job FROM jobs.schedules s WHERE s.name = job_name;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown job: %', coalesce(quote_literal(job_name), 'NULL') USING ERRCODE = 'undefined_object';
    END IF;
    IF NOT pg_try_advisory_xact_lock(job.lock_key) THEN
        INSERT INTO jobs.runs (job_name, started_at, finished_at, outcome)
        VALUES (job.name, started, clock_timestamp(), 'skipped');
        RETURN 'skipped';
    END IF;
    BEGIN
        EXECUTE job.command;
    EXCEPTION WHEN OTHERS THEN
        GET STACKED DIAGNOSTICS failure = MESSAGE_TEXT, state = RETURNED_SQLSTATE;
        outcome := 'failed';
    END;
    INSERT INTO jobs.runs (job_name, started_at, finished_at, outcome, error, sqlstate)
    VALUES (job.name, started, clock_timestamp(), outcome, failure, state);
    IF outcome = 'failed' THEN
        RAISE WARNING 'job % failed: % (SQLSTATE %)', job.name, failure, state;
    END IF;
    RETURN outcome;
END;
$$;
COMMENT ON FUNCTION jobs.run_job(text) IS
    'Runs a job''s command at most once at a time: pg_try_advisory_xact_lock on the job''s key, so an overlapping run returns ''skipped'' at once. Records start, end, outcome and error in jobs.runs, and returns the outcome.';

CREATE FUNCTION jobs.prune_run_history(retention interval DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    keep interval := jobs.retention(retention, 'run_log_retention');
    removed bigint;
    removed_cron bigint := 0;
BEGIN
    DELETE FROM jobs.runs r WHERE r.started_at < now() - keep;
    GET DIAGNOSTICS removed = ROW_COUNT;
    IF jobs.is_cron_available() THEN
        -- pg_cron never prunes its own history.
        EXECUTE 'DELETE FROM cron.job_run_details WHERE end_time < now() - $1' USING keep;
        GET DIAGNOSTICS removed_cron = ROW_COUNT;
    END IF;
    RETURN removed + removed_cron;
END;
$$;
COMMENT ON FUNCTION jobs.prune_run_history(interval) IS
    'Deletes runs older than the retention (default: the run_log_retention setting) from jobs.runs and cron.job_run_details; returns how many.';

CREATE VIEW jobs.recent_runs AS
SELECT r.job_name, r.started_at, r.finished_at, r.finished_at - r.started_at AS duration, r.outcome, r.error, r.sqlstate
FROM jobs.runs r
WHERE r.started_at > now() - interval '24 hours'
ORDER BY r.outcome = 'failed' DESC, r.started_at DESC;
COMMENT ON VIEW jobs.recent_runs IS 'The last 24 hours of runs, failures first, newest first.';

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

SELECT jobs.schedule_job('prune-job-history', '30 3 * * *', 'SELECT jobs.prune_run_history()');
