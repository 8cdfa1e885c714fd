-- The scheduling layer without pg_cron (test databases are not cron.database_name).
BEGIN;
SELECT plan(27);

SELECT ok(NOT jobs.is_cron_available(), 'pg_cron is not installed in a test database');

-- The seed's cadences, recorded even without pg_cron.
SELECT results_eq(
    $$ SELECT name, schedule FROM jobs.schedules ORDER BY name $$,
    $$ VALUES ('cleanup-old-queue-entries', '0 3 * * *'), ('feed-prune', '17 3 * * *'), ('hourly-price-snapshot', '0 * * * *'),
              ('ledger-analytics', '* * * * *'),
              ('process-pending-orders', '* * * * *'), ('prune-job-history', '30 3 * * *'),
              ('refresh-analytics', '*/5 * * * *'), ('refresh-health-check', '*/5 * * * *'),
              ('refresh-issuer-stats-cache', '*/5 * * * *'), ('refresh-processor-loop', '* * * * *'),
              ('refresh-queue-maintenance', '*/10 * * * *'), ('refresh-scheduled-refreshes', '* * * * *'),
              ('refresh-stale-sweep', '*/5 * * * *') $$,
    'every job is recorded with its cadence');

-- Idempotent scheduling.
SELECT lives_ok($$ SELECT jobs.schedule_job('test-job', '*/10 * * * *', 'SELECT 1') $$, 'a job is scheduled');
SELECT lives_ok($$ SELECT jobs.schedule_job('test-job', '*/15 * * * *', 'SELECT 2') $$, 'scheduling it again updates it');
SELECT is((SELECT count(*)::int FROM jobs.schedules WHERE name = 'test-job'), 1, 'scheduling twice never duplicates');
SELECT is((SELECT schedule || ' ' || command FROM jobs.schedules WHERE name = 'test-job'), '*/15 * * * * SELECT 2',
    'the second call wins');
SELECT is((SELECT lock_key FROM jobs.schedules WHERE name = 'test-job'), hashtextextended('jobs.test-job', 0),
    'the lock key defaults to a hash of the name');
SELECT lives_ok($$ SELECT jobs.schedule_job('keyed-job', '@daily', 'SELECT 1', 42) $$, 'a job can name its lock key');
SELECT is((SELECT lock_key FROM jobs.schedules WHERE name = 'keyed-job'), 42::bigint, 'the named lock key is kept');
SELECT is(jobs.unschedule_job('keyed-job'), true, 'unscheduling a job reports that it existed');
SELECT is(jobs.unschedule_job('keyed-job'), false, 'unscheduling again is a no-op');

-- Bad input.
SELECT throws_ok($$ SELECT jobs.schedule_job('test-job', '*/5 * * * * *', 'SELECT 1') $$, '22023', NULL,
    'a seconds field is refused: pg_cron 1.4 has none');
SELECT throws_ok($$ SELECT jobs.schedule_job('test-job', 'every minute', 'SELECT 1') $$, '22023', NULL,
    'a malformed schedule is refused');
SELECT throws_ok($$ SELECT jobs.schedule_job('Bad Name', '* * * * *', 'SELECT 1') $$, '22023', NULL,
    'a malformed job name is refused');
SELECT throws_ok($$ SELECT jobs.schedule_job('test-job', '* * * * *', '  ') $$, '22023', NULL,
    'an empty command is refused');
SELECT throws_ok($$ SELECT jobs.apply_schedules() $$, '0A000', NULL, 'applying schedules needs pg_cron');

-- The single-flight wrapper records every run.
SELECT is(jobs.run_job('test-job'), 'succeeded', 'a run succeeds');
SELECT lives_ok($$ SELECT jobs.schedule_job('broken-job', '* * * * *', 'SELECT 1 / 0') $$, 'a failing job is scheduled');
SELECT is(jobs.run_job('broken-job'), 'failed', 'a failing command is recorded, not raised');
SELECT is((SELECT error || ' ' || sqlstate FROM jobs.runs WHERE job_name = 'broken-job'), 'division by zero 22012',
    'the run log keeps the error and SQLSTATE');
SELECT is((SELECT job_name FROM jobs.recent_runs LIMIT 1), 'broken-job', 'recent runs show failures first');
SELECT is((SELECT failures_24h::int FROM jobs.job_overview WHERE name = 'broken-job'), 1, 'the overview counts failures');
SELECT throws_ok($$ SELECT jobs.run_job('no-such-job') $$, '42704', NULL, 'an unknown job raises');

-- Retention.
INSERT INTO jobs.runs (job_name, started_at, finished_at, outcome) VALUES
    ('old', now() - interval '15 days', now() - interval '15 days', 'succeeded'),
    ('edge', now() - interval '14 days', now() - interval '14 days', 'succeeded');
SELECT is(jobs.prune_run_history(), 1::bigint, 'runs older than the retention setting are pruned');
SELECT is((SELECT count(*)::int FROM jobs.runs WHERE job_name = 'edge'), 1, 'a run exactly at the boundary stays');
SELECT throws_ok($$ SELECT jobs.prune_run_history(interval '-1 day') $$, '22023', NULL, 'a negative retention is refused');
SELECT throws_ok($$ SELECT jobs.setting_interval('no_such_setting') $$, '42704', NULL, 'an unknown setting raises');

SELECT * FROM finish();
ROLLBACK;
