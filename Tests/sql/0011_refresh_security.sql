-- Security of the refresh engine: who may enqueue, claim, finish and configure; claims bound to
-- their lease token; bounded priorities and sizes; a byte budget that skips what does not fit.
-- Each refused attempt is checked to have changed nothing.
BEGIN;
SELECT plan(36);

CREATE FUNCTION pg_temp.fingerprint() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    relation regclass;
    sums text := '';
    part text;
BEGIN
    FOR relation IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'refresh'::regnamespace AND c.relkind IN ('r', 'p')
                    AND NOT c.relispartition ORDER BY c.relname LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) FROM %s t', ',', '', relation) INTO part;
        sums := sums || relation::text || '=' || part || ' ';
    END LOOP;
    RETURN sums || (SELECT string_agg(f::text, ',' ORDER BY f.flag) FROM foundation.feature_flags f);
END;
$$;
CREATE ROLE freshet_test_nobody;
CREATE ROLE freshet_test_client IN ROLE freshet_client;
CREATE ROLE freshet_test_worker IN ROLE freshet_worker;
CREATE ROLE freshet_test_thief IN ROLE freshet_worker;
CREATE ROLE freshet_test_admin IN ROLE freshet_admin;
SELECT refresh.queue_refreshes('quote', ARRAY['AAPL', 'MSFT'], 0);
CREATE TEMP TABLE claimed AS SELECT id, lease_token FROM refresh.get_queue_batch('honest', 1);
CREATE TEMP TABLE before AS SELECT pg_temp.fingerprint() AS tables;
GRANT SELECT ON claimed TO PUBLIC;

-- A role with no grants reads the registry and nothing else.
SET LOCAL ROLE freshet_test_nobody;
SELECT is((SELECT count(*)::int FROM refresh.data_type_registry), 11, 'a role with no grants reads the registry');
SELECT throws_ok($$ SELECT refresh.health_check() $$, '42501', NULL, 'but cannot call health_check(), the old way to superuser');
SELECT throws_ok($$ SELECT refresh.queue_refreshes('quote', ARRAY['X'], 0) $$, '42501', NULL, '... or enqueue');
SELECT throws_ok($$ SELECT * FROM refresh.get_queue_batch('nobody', 10) $$, '42501', NULL, '... or claim');
SELECT throws_ok(format('SELECT refresh.complete_queue_job(%s, 1, %L)', (SELECT id FROM claimed), (SELECT lease_token FROM claimed)),
    '42501', NULL, '... or finish a job, even with its lease');
SELECT throws_ok($$ SELECT refresh.set_setting('quota_max_calls', '0') $$, '42501', NULL, '... or change a setting');
SELECT throws_ok($$ SELECT * FROM refresh.api_call_queue $$, '42501', NULL, '... or read the queue');
RESET ROLE;

-- A client enqueues within bounds and does nothing else.
SET LOCAL ROLE freshet_test_client;
SELECT throws_ok($$ SELECT refresh.queue_refresh_if_not_exists('HOG', 'quote', 2147483647, NULL) $$, '22023',
    'a refresh priority is between -1000 and 1000, got 2147483647', 'a client cannot enqueue with an unbounded priority');
SELECT throws_ok($$ SELECT refresh.queue_refresh_if_not_exists('HOG', 'quote', 1, 9223372036854775807) $$, '22023', NULL,
    '... or a size beyond the whole quota');
SELECT throws_ok($$ SELECT refresh.queue_refreshes('quote', ARRAY['HOG'], -2147483648) $$, '22023', NULL, '... or the lowest priority there is');
SELECT throws_ok($$ SELECT refresh.queue_refreshes('quote', ARRAY[repeat('S', 10000)], 0) $$, '22023',
    format('invalid symbol: %s... (10000 characters)', quote_literal(repeat('S', 64))), 'a huge symbol is refused without being echoed whole');
SELECT throws_ok($$ SELECT * FROM refresh.get_queue_batch('client', 10) $$, '42501', NULL, 'a client cannot claim');
SELECT throws_ok(format('SELECT refresh.fail_queue_job(%s, %L, %L)', (SELECT id FROM claimed), 'HTTP 500', (SELECT lease_token FROM claimed)),
    '42501', NULL, '... or fail a job');
SELECT throws_ok($$ SELECT refresh.set_circuit_breaker('open') $$, '42501', NULL, '... or force the breaker');
RESET ROLE;
SELECT is(pg_temp.fingerprint(), (SELECT tables FROM before), 'the refused attempts of a stranger and a client changed nothing');

-- Another worker cannot finish a claim it does not hold: knowing the worker id is not enough.
SET LOCAL ROLE freshet_test_thief;
SELECT throws_ok(format('SELECT refresh.complete_queue_job(%s, 1, %L)', (SELECT id FROM claimed), gen_random_uuid()), '55000', NULL,
    'a worker without the lease cannot complete another''s job');
SELECT throws_ok(format('SELECT refresh.fail_queue_job(%s, %L, %L)', (SELECT id FROM claimed), 'HTTP 500', gen_random_uuid()), '55000', NULL,
    '... or fail it');
SELECT throws_ok(format('SELECT refresh.complete_queue_jobs(ARRAY[%s], ARRAY[1], ARRAY[%L]::uuid[])', (SELECT id FROM claimed), gen_random_uuid()),
    '55000', NULL, '... or complete it in a batch');
SELECT throws_ok($$ SELECT * FROM refresh.api_call_queue_processing $$, '42501', NULL, '... or read the leases');
DO $$
BEGIN
    FOR attempt IN 1..25 LOOP
        BEGIN
            PERFORM refresh.fail_queue_job((SELECT id FROM claimed), 'HTTP 500', gen_random_uuid());
        EXCEPTION WHEN object_not_in_prerequisite_state THEN
            NULL;
        END;
    END LOOP;
END;
$$;
SELECT throws_ok(format('SELECT refresh.complete_queue_job(%s, 9000000000000000000, %L)', (SELECT id FROM claimed), (SELECT lease_token FROM claimed)),
    '22023', NULL, 'even with the lease, an actual size beyond the whole quota is refused');
SELECT throws_ok(format('SELECT * FROM refresh.get_queue_batch(%L, 1)', repeat('w', 200)), '22023', NULL, 'an unbounded worker id is refused');
SELECT is(refresh.complete_queue_jobs('{}', '{}', '{}'), 0, 'completing no jobs completes 0');
RESET ROLE;
SELECT is(pg_temp.fingerprint(), (SELECT tables FROM before), 'twenty-five forged failures and an oversized completion changed nothing');
SELECT is((SELECT state FROM refresh.circuit_breaker), 'closed', 'so the breaker stays closed');
SELECT is(refresh.evaluate_circuit_breaker(), 'closed', 'even when evaluated');

-- The holder finishes with its lease.
SET LOCAL ROLE freshet_test_worker;
SELECT lives_ok(format('SELECT refresh.complete_queue_job(%s, 2048, %L)', (SELECT id FROM claimed), (SELECT lease_token FROM claimed)),
    'the worker holding the lease completes the job');
SELECT throws_ok(format('SELECT refresh.complete_queue_job(%s, 2048, %L)', (SELECT id FROM claimed), (SELECT lease_token FROM claimed)),
    '55000', NULL, 'once');
RESET ROLE;
SELECT is((SELECT estimated_data_size_bytes FROM refresh.data_type_registry WHERE data_type = 'quote') <= 2048, true,
    'the registry''s estimate never saw the oversized size');

-- One job that does not fit the byte budget never blocks the jobs behind it.
TRUNCATE refresh.api_call_queue, refresh.active_job_keys, refresh.api_data_usage;
SELECT refresh.set_setting('quota_max_bytes', '10000');
SELECT refresh.queue_refresh_if_not_exists('BIG', 'quote', 1000, 9000);
SELECT refresh.queue_refreshes('quote', ARRAY['S1', 'S2', 'S3'], 0);
UPDATE refresh.api_call_queue_pending SET estimated_size_bytes = 1000 WHERE symbol LIKE 'S%';
SELECT set_config('refresh.claim_path', 'exact', false);
SELECT is((SELECT string_agg(symbol, ' ' ORDER BY priority DESC, symbol) FROM refresh.get_queue_batch('w', 10)), 'BIG S1',
    'the budget takes the big job first and then what still fits');
SELECT is((SELECT string_agg(symbol, ' ' ORDER BY symbol) FROM refresh.get_queue_batch('w', 10)), NULL, 'nothing more fits while they are in flight');
TRUNCATE refresh.api_call_queue, refresh.active_job_keys, refresh.api_data_usage;
SELECT refresh.set_setting('quota_max_bytes', '5000');
SELECT refresh.queue_refresh_if_not_exists('BIG', 'quote', 1000, 4900);
SELECT refresh.queue_refreshes('quote', ARRAY['S1', 'S2'], 0);
UPDATE refresh.api_call_queue_pending SET estimated_size_bytes = 4900 WHERE symbol = 'BIG';
UPDATE refresh.api_call_queue_pending SET estimated_size_bytes = 1000 WHERE symbol LIKE 'S%';
SELECT refresh.record_usage(refresh.quota_period_start(now()), 0, 0, 1000, 0);
SELECT is((SELECT string_agg(symbol, ' ' ORDER BY symbol) FROM refresh.get_queue_batch('w', 10)), 'S1 S2',
    'a top-priority job larger than what is left is skipped, and the smaller ones behind it are claimed');
SELECT is((SELECT status FROM refresh.api_call_queue WHERE symbol = 'BIG'), 'pending', 'the big job waits for room');

-- The administrator configures.
SET LOCAL ROLE freshet_test_admin;
SELECT is(refresh.set_setting('breaker_min_calls', '30'), '20', 'freshet_admin changes settings');
SELECT is(refresh.set_circuit_breaker('open'), 'closed', 'and forces the breaker');
SELECT throws_ok($$ DELETE FROM refresh.api_call_queue_pending $$, '42501', NULL, 'but writes no queue table by hand');
RESET ROLE;
SELECT is((SELECT reason FROM refresh.circuit_breaker), 'set by ' || session_user, 'the breaker records the session''s login');

SELECT * FROM finish();
ROLLBACK;
