-- Undo 0015_jobs_unschedule_all.up.sql.
DROP FUNCTION jobs.unschedule_all();
