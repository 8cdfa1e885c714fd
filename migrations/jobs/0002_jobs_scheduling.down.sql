-- Undo 0002_jobs_scheduling.up.sql: unschedule what it scheduled, drop what it made.

SELECT jobs.unschedule_job('prune-job-history');

DROP VIEW jobs.job_overview;
DROP VIEW jobs.recent_runs;
DROP FUNCTION jobs.prune_run_history(interval);
DROP FUNCTION jobs.run_job(text);
DROP FUNCTION jobs.apply_schedules();
DROP FUNCTION jobs.unschedule_job(text);
DROP FUNCTION jobs.schedule_job(text, text, text, bigint);
DROP FUNCTION jobs.check_schedule(text);
DROP FUNCTION jobs.is_cron_available();
DROP TABLE jobs.runs;
DROP TABLE jobs.schedules;
DROP FUNCTION jobs.retention(interval, text);
DROP FUNCTION jobs.setting_interval(text);

DO $$
BEGIN
    IF (SELECT value FROM jobs.settings WHERE name = 'created_pg_cron') = 'on' THEN
        DROP EXTENSION pg_cron;
    END IF;
END;
$$;

DROP TABLE jobs.settings;
