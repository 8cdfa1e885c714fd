-- jobs.unschedule_all(): the step before DROP EXTENSION, since pg_cron's jobs live in its own table.
BEGIN;
SELECT plan(4);

SELECT cmp_ok((SELECT count(*) FROM jobs.schedules), '>', 0::bigint, 'the bundle has scheduled jobs');
SELECT is(jobs.unschedule_all(), (SELECT count(*)::integer FROM jobs.schedules), 'it removes every one and says how many');
SELECT is((SELECT count(*) FROM jobs.schedules), 0::bigint, 'none is left');
SELECT ok(NOT has_function_privilege('public', 'jobs.unschedule_all()', 'EXECUTE'), 'PUBLIC may not run it');

SELECT * FROM finish();
ROLLBACK;
