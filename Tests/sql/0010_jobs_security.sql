-- Security of the jobs module: what each role may do with schedules and orders, and orders whose
-- numbers no column can hold, which fail with a reason and never stall the queue. Every refused
-- attempt is checked to have changed nothing. Squatted locks and the processor deadlock need
-- several sessions and are tested from Swift.
BEGIN;
SELECT plan(32);

CREATE FUNCTION pg_temp.fingerprint() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    relation regclass;
    sums text := '';
    part text;
BEGIN
    FOR relation IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'jobs'::regnamespace AND c.relkind = 'r' ORDER BY c.relname LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) FROM %s t', ',', '', relation) INTO part;
        sums := sums || relation::text || '=' || part || ' ';
    END LOOP;
    RETURN sums;
END;
$$;
INSERT INTO jobs.issuers (ticker, name, current_price, shares_outstanding) VALUES ('AAA', 'Alpha', 10, 1000), ('TINY', 'Tiny', 0.000001, 0);
INSERT INTO jobs.balances (user_id, cash) VALUES ('00000000-0000-0000-0000-000000000001', 1e40);
CREATE ROLE freshet_test_nobody;
CREATE ROLE freshet_test_client IN ROLE freshet_client;
CREATE ROLE freshet_test_worker IN ROLE freshet_worker;
CREATE ROLE freshet_test_admin IN ROLE freshet_admin;
CREATE TEMP TABLE before AS SELECT pg_temp.fingerprint() AS tables;

-- A role with no grants, and a client.
SET LOCAL ROLE freshet_test_nobody;
SELECT throws_ok($$ SELECT jobs.process_next_queue_order() $$, '42501', NULL, 'a role with no grants cannot process orders');
SELECT throws_ok($$ SELECT jobs.schedule_job('evil', '* * * * *', 'SELECT 1') $$, '42501', NULL, '... or schedule a command');
SELECT throws_ok($$ SELECT jobs.set_schedule('feed-prune', '* * * * *') $$, '42501', NULL, '... or move a schedule');
SELECT throws_ok($$ SELECT * FROM jobs.squatted_locks() $$, '42501', NULL, '... or list lock holders');
SELECT throws_ok($$ SELECT * FROM jobs.runs $$, '42501', NULL, '... or read the run log');
RESET ROLE;
SET LOCAL ROLE freshet_test_client;
SELECT throws_ok($$ SELECT jobs.process_next_queue_order() $$, '42501', NULL, 'nor can freshet_client process orders');
SELECT throws_ok($$ INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount) VALUES (gen_random_uuid(), 'AAA', 'buy', 1) $$,
    '42501', NULL, '... or place an order for any user it names');
SELECT throws_ok($$ SELECT jobs.run_job('feed-prune') $$, '42501', NULL, '... or run a job');
RESET ROLE;

-- The worker processes orders and nothing else.
SET LOCAL ROLE freshet_test_worker;
SELECT is(jobs.process_next_queue_order(), NULL, 'freshet_worker processes orders');
SELECT throws_ok($$ SELECT jobs.schedule_job('evil', '* * * * *', 'SELECT 1') $$, '42501', NULL, 'but schedules nothing');
SELECT throws_ok($$ UPDATE jobs.schedules SET command = 'SELECT 1' $$, '42501', NULL, '... and rewrites no command');
SELECT throws_ok($$ UPDATE jobs.balances SET cash = cash + 1 $$, '42501', NULL, '... and no balance');
RESET ROLE;

-- The administrator moves schedules, but never chooses what a job runs.
SET LOCAL ROLE freshet_test_admin;
SELECT throws_ok($$ SELECT jobs.schedule_job('evil', '* * * * *', 'ALTER ROLE freshet_test_admin SUPERUSER') $$, '42501', NULL,
    'freshet_admin cannot schedule a command, which would run with the scheduler''s rights');
SELECT throws_ok($$ UPDATE jobs.schedules SET command = 'SELECT 1' WHERE name = 'feed-prune' $$, '42501', NULL,
    '... or rewrite one');
SELECT throws_ok($$ SELECT jobs.set_schedule('no-such-job', '* * * * *') $$, '42704', NULL, 'an unknown job is named');
SELECT throws_ok(format('SELECT jobs.set_schedule(%L, %L)', 'feed-prune', repeat('*', 1000)), '22023',
    format('invalid cron schedule: %s... (1000 characters)', quote_literal(repeat('*', 64))), 'a bad schedule is refused without echoing it whole');
RESET ROLE;
SELECT is(pg_temp.fingerprint(), (SELECT tables FROM before), 'the refused attempts changed no table of the module');
SET LOCAL ROLE freshet_test_admin;
SELECT lives_ok($$ SELECT jobs.set_schedule('feed-prune', '18 3 * * *') $$, 'freshet_admin moves an existing job''s schedule');
SELECT is((SELECT count(*)::int FROM jobs.job_overview), (SELECT count(*)::int FROM jobs.schedules), 'and reads the job overview');
RESET ROLE;
SELECT is((SELECT schedule || ' ' || command FROM jobs.schedules WHERE name = 'feed-prune'), '18 3 * * * SELECT feed.prune_change_log()',
    'the schedule moved, the command did not');

-- Monitoring tells the truth: a failed run makes its job failing, and the refresh engine unhealthy.
SELECT is(refresh.health_check() ->> 'healthy', 'true', 'the refresh engine is healthy');
SELECT jobs.schedule_job('failing-probe', '* * * * *', 'SELECT 1 / 0');
SELECT is(jobs.run_job('failing-probe'), 'failed', 'a job whose command fails');
SELECT is((SELECT failing::text || ' ' || last_error FROM jobs.job_overview WHERE name = 'failing-probe'), 'true division by zero',
    'shows as failing in job_overview, with its last error');
INSERT INTO jobs.runs (job_name, started_at, finished_at, outcome, error, sqlstate)
VALUES ('refresh-stale-sweep', now(), now(), 'failed', 'connection failed', '08006');
SELECT is(refresh.health_check() ->> 'healthy', 'false', 'and a refresh job whose last run failed makes health_check() unhealthy');
SELECT ok((SELECT (j ->> 'failing')::boolean FROM jsonb_array_elements(refresh.health_check() -> 'jobs') j WHERE j ->> 'name' = 'refresh-stale-sweep'),
    '... naming the job');

-- Orders whose numbers overflow fail with a reason; the orders behind them run.
INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount) VALUES
    ('00000000-0000-0000-0000-000000000001', 'TINY', 'buy', ('9' || repeat('0', 131070))::numeric),
    ('00000000-0000-0000-0000-000000000001', 'AAA', 'buy', 1e30),
    ('00000000-0000-0000-0000-000000000001', 'AAA', 'buy', 'NaN'),
    ('00000000-0000-0000-0000-000000000001', 'AAA', 'buy', 'Infinity'),
    ('00000000-0000-0000-0000-000000000001', 'AAA', 'buy', 100);
SET LOCAL ROLE freshet_test_worker;
SELECT is(jobs.process_all_pending_orders(10), 5, 'a drain goes through every order, overflowing ones included');
RESET ROLE;
SELECT is((SELECT string_agg(status, ' ' ORDER BY id) FROM jobs.order_queue), 'failed failed failed failed completed',
    'each order ends completed or failed, and the one behind the bad ones completes');
SELECT ok((SELECT bool_and(failure_reason LIKE 'cannot be executed: % (SQLSTATE 22003)') FROM jobs.order_queue WHERE ticker = 'TINY' OR amount = 1e30),
    'an overflow fails its order with the reason and the SQLSTATE');
SELECT ok((SELECT bool_and(failure_reason LIKE 'amount must be positive, got %') FROM jobs.order_queue WHERE amount IN ('NaN', 'Infinity')),
    'NaN and infinite amounts fail as bad amounts');
SELECT ok((SELECT max(length(failure_reason)) < 400 FROM jobs.order_queue), 'no reason echoes a huge amount whole');
SELECT is((SELECT cash FROM jobs.balances), 1e40 - 100, 'only the good order moved money');
SELECT is((SELECT shares FROM jobs.holdings), 10.000000, 'and shares');

SELECT * FROM finish();
ROLLBACK;
