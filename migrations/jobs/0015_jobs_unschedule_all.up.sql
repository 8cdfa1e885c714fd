-- The step before removing the extension path: pg_cron keeps its jobs in its own table, which
-- DROP EXTENSION does not reach, so they would go on calling functions that no longer exist.
CREATE FUNCTION jobs.unschedule_all() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    job record;
    removed integer := 0;
BEGIN
    FOR job IN SELECT s.name FROM jobs.schedules s ORDER BY s.name LOOP
        IF jobs.unschedule_job(job.name) THEN
            removed := removed + 1;
        END IF;
    END LOOP;
    RETURN removed;
END;
$$;
COMMENT ON FUNCTION jobs.unschedule_all() IS
    'Removes every job of jobs.schedules from pg_cron and from the table; returns how many. Run it before DROP EXTENSION freshet_jobs or freshet_foundation: dropping an extension does not reach pg_cron''s own table.';
REVOKE ALL ON FUNCTION jobs.unschedule_all() FROM PUBLIC;
