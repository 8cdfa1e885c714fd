-- The refresh engine: registry, flags, grants, staleness, queue moves, quota, breaker, triggers, jobs.
BEGIN;
SELECT plan(126);

CREATE FUNCTION pg_temp.jobs_of(which text) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(data_type || ':' || status || ':' || priority, ' ' ORDER BY data_type, id), '')
    FROM refresh.api_call_queue WHERE symbol = which
$$;
CREATE FUNCTION pg_temp.registry_digest() RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(r::text, '|' ORDER BY data_type)) FROM refresh.data_type_registry r
$$;
CREATE TEMP TABLE registry_before AS SELECT pg_temp.registry_digest() AS digest;

-- Registry and flags.
SELECT set_eq($$ SELECT data_type FROM refresh.data_type_registry $$,
    ARRAY['quote', 'profile', 'financial-statements', 'ratios-ttm', 'dividend-history', 'shares-float', 'revenue-segmentation',
          'grades-historical', 'exchange-variants', 'available-exchanges', 'exchange-market-status'],
    'the seed''s eleven data types are registered');
SELECT is((SELECT count(*)::int FROM refresh.data_type_registry WHERE to_regclass(format('%I.%I', table_schema, table_name)) IS NULL),
    0, 'each with a data table that exists');
SELECT is((SELECT string_agg(data_type, ',') FROM refresh.data_type_registry WHERE refresh_strategy = 'scheduled'),
    'exchange-market-status', 'exchange-market-status is refreshed on a schedule, the rest on demand');
SELECT ok(foundation.is_enabled('use_queue_system') AND foundation.is_enabled('use_subscription_trigger'), 'the queue and subscription flags start on');
SELECT ok(NOT foundation.is_enabled('use_update_trigger'), 'the update trigger flag starts off');
SELECT is((SELECT count(*)::int FROM refresh.data_type_registry r WHERE foundation.is_enabled(r.flag)), 11, 'each type has its own flag, on');

SELECT results_eq($$ SELECT name, lock_key FROM jobs.schedules WHERE lock_key IN (42, 43, 44) ORDER BY lock_key $$,
    $$ VALUES ('refresh-stale-sweep', 42::bigint), ('refresh-scheduled-refreshes', 43), ('refresh-processor-loop', 44) $$,
    'the sweep, scheduled refreshes and processor loop run single-flight on advisory locks 42, 43 and 44');

-- Grants: a worker role reads the registry and calls the worker functions, nothing more.
CREATE ROLE freshet_test_app IN ROLE freshet_worker;
SET LOCAL ROLE freshet_test_app;
SELECT is((SELECT count(*)::int FROM refresh.data_type_registry), 11, 'an application role reads the registry');
SELECT throws_ok($$ INSERT INTO refresh.data_type_registry (data_type, table_name, timestamp_column, symbol_column, staleness_function, default_ttl_minutes, refresh_strategy)
                    VALUES ('x', 'profiles', 'modified_at', 'symbol', 'is_data_stale', 5, 'on-demand') $$, '42501', NULL, 'but cannot insert into it');
SELECT throws_ok($$ UPDATE refresh.data_type_registry SET default_ttl_minutes = 1 $$, '42501', NULL, 'or update it');
SELECT throws_ok($$ DELETE FROM refresh.data_type_registry $$, '42501', NULL, 'or delete from it');
SELECT throws_ok($$ SELECT * FROM refresh.api_call_queue $$, '42501', NULL, 'or read the queue table');
SELECT throws_ok($$ SELECT refresh.maintain_queue_partitions() $$, '42501', NULL, 'or run the maintenance functions');
SELECT lives_ok($$ SELECT * FROM refresh.get_queue_batch('app', 1) $$, 'it can claim through get_queue_batch()');
RESET ROLE;
SELECT ok((SELECT bool_and(p.prosecdef AND p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'])
           FROM pg_proc p WHERE p.oid IN ('refresh.check_and_queue_stale_batch(text, text[], integer)'::regprocedure,
                                          'refresh.get_queue_batch(text, integer)'::regprocedure,
                                          'refresh.complete_queue_job(bigint, bigint, uuid)'::regprocedure)),
    'the worker entry points are SECURITY DEFINER with a pinned search_path');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
           WHERE n.nspname = 'refresh' AND obj_description(p.oid, 'pg_proc') IS NULL), 0, 'every function has a comment');

-- Bad input to the registry: a clear exception, and no change.
SELECT throws_ok($$ SELECT refresh.register_data_type('evil', 'refresh', 'profiles; DROP TABLE refresh.profiles', 'modified_at', 'symbol', 'is_data_stale', 5, 0, 'on-demand', 0) $$,
    '22023', 'invalid table identifier: ''profiles; DROP TABLE refresh.profiles''', 'an injection through the table name is refused');
SELECT throws_ok($$ INSERT INTO refresh.data_type_registry (data_type, table_name, timestamp_column, symbol_column, staleness_function, default_ttl_minutes, refresh_strategy)
                    VALUES ('evil', 'profiles', 'modified_at); DROP TABLE refresh.profiles; --', 'symbol', 'is_data_stale', 5, 'on-demand') $$,
    '22023', NULL, 'even its owner cannot store an invalid identifier');
SELECT throws_ok($$ SELECT refresh.register_data_type('evil', 'refresh', 'profiles', 'modified_at', 'symbol', 'is_data_stale', -5, 0, 'on-demand', 0) $$,
    '22023', 'data type evil: the TTL must be a positive number of minutes, got -5', 'a negative TTL is refused');
SELECT throws_ok($$ UPDATE refresh.data_type_registry SET default_ttl_minutes = 0 WHERE data_type = 'quote' $$,
    '22023', NULL, 'the TTL check holds for direct writes');
SELECT throws_ok($$ SELECT refresh.register_data_type('ghost', 'refresh', 'no_such_table', 'fetched_at', 'symbol', 'is_data_stale', 5, 0, 'on-demand', 0) $$,
    '42P01', 'data type ghost: table refresh.no_such_table does not exist', 'a missing table is refused');
SELECT throws_ok($$ SELECT refresh.register_data_type('ghost', 'refresh', 'profiles', 'no_such_column', 'symbol', 'is_data_stale', 5, 0, 'on-demand', 0) $$,
    '42703', NULL, 'a missing timestamp column is refused');
SELECT throws_ok($$ SELECT refresh.register_data_type('ghost', 'refresh', 'profiles', 'modified_at', 'symbol', 'pg_sleep', 5, 0, 'on-demand', 0) $$,
    '42883', NULL, 'a staleness function outside the refresh schema is refused');
SELECT is((SELECT pg_temp.registry_digest()), (SELECT digest FROM registry_before), 'no refused write changed the registry');
SELECT ok(to_regclass('refresh.profiles') IS NOT NULL, 'and the injection dropped nothing');

-- Staleness checks.
SELECT ok(refresh.is_data_stale(NULL, 5), 'never fetched is stale');
SELECT ok(NOT refresh.is_data_stale(now() - interval '4 minutes', 5), 'younger than the TTL is fresh');
SELECT ok(refresh.is_data_stale(now() - interval '6 minutes', 5), 'older than the TTL is stale');
SELECT throws_ok($$ SELECT refresh.is_data_stale(now(), NULL) $$, '22023', NULL, 'a NULL TTL raises');
SELECT throws_ok($$ SELECT refresh.is_data_stale(now(), -1) $$, '22023', 'a TTL is a positive number of minutes, got -1', 'a negative TTL raises');
SELECT ok(refresh.is_profile_stale(now() + interval '1 day', 60), 'a profile dated in the future is stale');
SELECT ok(NOT refresh.is_profile_stale(now() - interval '1 minute', 60), 'a recent profile is fresh');
SELECT is((SELECT sum(pronargdefaults)::int FROM pg_proc WHERE oid IN ('refresh.is_data_stale(timestamptz, integer)'::regprocedure,
                                                                       'refresh.is_profile_stale(timestamptz, integer)'::regprocedure)),
    0, 'the staleness checks have no DEFAULT arguments');

-- Enqueueing.
SELECT throws_ok($$ SELECT refresh.queue_refresh_if_not_exists('AAPL', 'no-such-type', 0, NULL) $$, '22023', 'unknown data type: ''no-such-type''', 'an unknown data type raises');
SELECT throws_ok($$ SELECT refresh.queue_refresh_if_not_exists('AA PL', 'quote', 0, NULL) $$, '22023', NULL, 'a symbol with a space raises');
SELECT throws_ok($$ SELECT refresh.queue_refresh_if_not_exists('AAPL', 'quote', 0, -1) $$, '22023', NULL, 'a negative size raises');
SELECT is((SELECT count(*)::int FROM refresh.api_call_queue), 0, 'and nothing was queued');
CREATE TEMP TABLE first_id AS SELECT refresh.queue_refresh_if_not_exists('AAPL', 'quote', 0, NULL) AS id;
SELECT is(refresh.queue_refresh_if_not_exists('AAPL', 'quote', 0, NULL), (SELECT id FROM first_id), 'enqueueing again returns the same job');
SELECT is(pg_temp.jobs_of('AAPL'), 'quote:pending:0', 'one pending job covers the pair');
SELECT is(refresh.queue_refresh_if_not_exists('AAPL', 'quote', 1, NULL), (SELECT id FROM first_id), 'a higher priority request reuses it');
SELECT is(pg_temp.jobs_of('AAPL'), 'quote:pending:1', 'and raises its priority');
SELECT is((SELECT estimated_size_bytes FROM refresh.api_call_queue WHERE symbol = 'AAPL'), 2048::bigint, 'the size estimate comes from the registry');
SELECT is(refresh.queue_refreshes('profile', ARRAY['MSFT', 'NVDA', 'MSFT'], 0), 2, 'the bulk form queues each new symbol once');
SELECT foundation.set_flag('refresh_shares_float', false);
SELECT is(refresh.queue_refresh_if_not_exists('AAPL', 'shares-float', 0, NULL), NULL, 'a type whose flag is off queues nothing');
SELECT foundation.set_flag('refresh_shares_float', true);
SELECT foundation.set_flag('use_queue_system', false);
SELECT is(refresh.queue_refresh_if_not_exists('AAPL', 'shares-float', 0, NULL), NULL, 'nothing is queued while the queue flag is off');
SELECT is((SELECT count(*)::int FROM refresh.get_queue_batch('w', 10)), 0, 'and nothing is claimed');
SELECT foundation.set_flag('use_queue_system', true);

-- Claiming: priority order, backoff respected, status moves by delete + insert.
SELECT is((SELECT string_agg(symbol || ':' || data_type || ':' || attempts, ' ' ORDER BY priority DESC, id) FROM refresh.get_queue_batch('w1', 2)),
    'AAPL:quote:1 MSFT:profile:1', 'a batch is claimed highest priority first, oldest first');
SELECT is((SELECT count(*)::int FROM refresh.api_call_queue WHERE status = 'processing' AND worker_id = 'w1' AND lease_token IS NOT NULL), 2, 'and held by the worker, each under its own lease');
CREATE TEMP TABLE first_lease AS SELECT lease_token FROM refresh.api_call_queue_processing WHERE id = (SELECT id FROM first_id);
SELECT throws_ok($$ UPDATE refresh.api_call_queue SET status = 'completed' WHERE symbol = 'AAPL' $$, '0A000', NULL,
    'an UPDATE of status is refused: moves go through the functions');
SELECT throws_ok($$ SELECT * FROM refresh.get_queue_batch('w1', 0) $$, '22023', NULL, 'a batch size of 0 raises');
SELECT throws_ok($$ SELECT * FROM refresh.get_queue_batch('', 1) $$, '22023', NULL, 'an empty worker id raises');

-- Completing: usage, ownership, the size estimate.
SELECT throws_ok(format('SELECT refresh.complete_queue_job(%s, 100, %L)', (SELECT id FROM first_id), '00000000-0000-0000-0000-000000000000'), '55000',
    format('refresh job %s is not held under lease 00000000-0000-0000-0000-000000000000', (SELECT id FROM first_id)), 'a wrong lease token cannot complete it');
SELECT throws_ok(format('SELECT refresh.complete_queue_job(%s, -1, %L)', (SELECT id FROM first_id), (SELECT lease_token FROM first_lease)), '22023', NULL, 'a negative size raises');
SELECT lives_ok(format('SELECT refresh.complete_queue_job(%s, 3000, %L)', (SELECT id FROM first_id), (SELECT lease_token FROM first_lease)), 'its lease completes it');
SELECT is(pg_temp.jobs_of('AAPL'), 'quote:completed:1', 'it moved to completed');
SELECT is((SELECT count(*)::int FROM refresh.active_job_keys WHERE symbol = 'AAPL'), 0, 'and freed its pair for the next refresh');
SELECT throws_ok(format('SELECT refresh.complete_queue_job(%s, 3000, %L)', (SELECT id FROM first_id), (SELECT lease_token FROM first_lease)), '55000',
    format('refresh job %s is already completed', (SELECT id FROM first_id)), 'completing twice is refused');
SELECT is((SELECT sum(calls)::int || '/' || sum(bytes) || '/' || sum(reserved_bytes) FROM refresh.api_data_usage), '2/3000/8192', 'each claim counted a call; the completion its bytes, in place of its reservation');
SELECT refresh.queue_refreshes('shares-float', ARRAY['B1', 'B2', 'B3'], 0);
CREATE TEMP TABLE batch AS SELECT array_agg(id ORDER BY symbol) AS ids, array_agg(lease_token ORDER BY symbol) AS leases
    FROM refresh.get_queue_batch('wb', 100) WHERE data_type = 'shares-float';
SELECT throws_ok(format('SELECT refresh.complete_queue_jobs(%L, %L, %L)', (SELECT ids FROM batch), ARRAY[1, 2], (SELECT leases FROM batch)), '22023', NULL,
    'a batch completion needs one size per job');
SELECT throws_ok(format('SELECT refresh.complete_queue_jobs(%L, %L, %L)', (SELECT ids[1:2] || (SELECT id FROM first_id) FROM batch), ARRAY[10, 20, 30],
                         (SELECT leases[1:2] || (SELECT lease_token FROM first_lease) FROM batch)),
    '55000', NULL, 'a batch with a job the worker does not hold is refused');
SELECT is((SELECT count(*)::int FROM refresh.api_call_queue_processing WHERE worker_id = 'wb' AND data_type = 'shares-float'), 3, 'and completes none of it');
SELECT is(refresh.complete_queue_jobs((SELECT ids FROM batch), ARRAY[100, 200, 300], (SELECT leases FROM batch)), 3, 'a batch completes in one call');
SELECT is((SELECT string_agg(symbol || '=' || actual_size_bytes, ' ' ORDER BY symbol) FROM refresh.api_call_queue_completed WHERE data_type = 'shares-float'),
    'B1=100 B2=200 B3=300', 'each job with its own size');
SELECT is(refresh.queue_refresh_if_not_exists('ZERO', 'grades-historical', 0, NULL) IS NOT NULL, true, 'a job of a never-measured type');
SELECT lives_ok($$ SELECT refresh.complete_queue_job(id, 7777, lease_token) FROM refresh.get_queue_batch('w3', 10) WHERE data_type = 'grades-historical' $$,
    'completes');
SELECT is((SELECT estimated_data_size_bytes FROM refresh.data_type_registry WHERE data_type = 'grades-historical'), 7777::bigint,
    'and a zero estimate takes the first actual size outright');

-- Failing: backoff with jitter, then failed.
SELECT ok((SELECT bool_and(refresh.retry_delay(1) BETWEEN interval '5 seconds' AND interval '10 seconds') FROM generate_series(1, 50)),
    'the first retry waits 5 to 10 seconds');
SELECT ok((SELECT bool_and(refresh.retry_delay(4) BETWEEN interval '40 seconds' AND interval '80 seconds') FROM generate_series(1, 50)),
    'the fourth 40 to 80 seconds');
SELECT ok((SELECT bool_and(refresh.retry_delay(30) BETWEEN interval '30 minutes' AND interval '1 hour') FROM generate_series(1, 50)),
    'and never more than the cap');
SELECT ok((SELECT count(DISTINCT refresh.retry_delay(3)) > 40 FROM generate_series(1, 50)), 'with jitter');
SELECT is((SELECT refresh.fail_queue_job(id, 'HTTP 503', lease_token) FROM refresh.api_call_queue WHERE symbol = 'MSFT' AND status = 'processing'),
    'pending', 'a failed attempt is retried');
SELECT ok((SELECT next_attempt_at > now() AND last_error = 'HTTP 503' AND worker_id IS NULL FROM refresh.api_call_queue WHERE symbol = 'MSFT'),
    'later, with the error recorded');
SELECT is((SELECT count(*)::int FROM refresh.get_queue_batch('w1', 10) WHERE symbol = 'MSFT'), 0, 'it is not claimed before its backoff ends');
SELECT lives_ok($$ SELECT refresh.set_setting('max_attempts', '1') $$, 'settings change through set_setting()');
SELECT throws_ok($$ SELECT refresh.set_setting('max_attempts', '0') $$, '22023', NULL, 'and refuse bad values');
SELECT is(refresh.queue_refresh_if_not_exists('DOOM', 'quote', 5, NULL) IS NOT NULL, true, 'a job with one attempt');
SELECT is((SELECT refresh.fail_queue_job(id, 'HTTP 404', lease_token) FROM refresh.get_queue_batch('w4', 1)), 'failed', 'moves to failed on its last failure');
SELECT is((SELECT count(*)::int FROM refresh.active_job_keys WHERE symbol = 'DOOM'), 0, 'and frees its pair');
SELECT is((SELECT sum(failed_calls)::int FROM refresh.api_data_usage), 2, 'failed calls are counted for the breaker');

-- Recovery and reset.
SELECT is(refresh.reset_job_immediate((SELECT id FROM refresh.api_call_queue WHERE symbol = 'DOOM')), 'pending', 'a failed job can be reset');
SELECT is((SELECT status || ':' || attempts FROM refresh.api_call_queue WHERE symbol = 'DOOM'), 'pending:0', 'with fresh attempts');
SELECT throws_ok(format('SELECT refresh.reset_job_immediate(%s)', (SELECT id FROM first_id)), '55000', NULL, 'a completed job cannot');
SELECT throws_ok($$ SELECT refresh.reset_job_immediate(-1) $$, 'P0002', 'refresh job -1 does not exist', 'nor an unknown one');
SELECT refresh.set_setting('max_attempts', '5');
SELECT refresh.queue_refresh_if_not_exists('STUCK', 'quote', 9, NULL);
SELECT is((SELECT count(*)::int FROM refresh.get_queue_batch('crashed', 1) WHERE symbol = 'STUCK'), 1, 'a worker claims a job and dies');
UPDATE refresh.api_call_queue_processing SET claimed_at = now() - interval '10 minutes' WHERE symbol = 'STUCK';
SELECT is(refresh.recover_stuck_jobs(interval '1 hour'), 0, 'recovery leaves a job inside its lease');
SELECT is(refresh.recover_stuck_jobs(NULL), 1, 'and rescues it past the job_lease setting');
SELECT is((SELECT status || ':' || coalesce(worker_id, '-') || ':' || attempts FROM refresh.api_call_queue WHERE symbol = 'STUCK'), 'pending:-:1', 'back in the queue, the attempt counted');
SELECT throws_ok($$ SELECT refresh.recover_stuck_jobs(interval '-1 second') $$, '22023', NULL, 'a negative lease raises');

-- Quota: the predictive check trims a batch to what is left.
TRUNCATE refresh.api_call_queue, refresh.active_job_keys, refresh.api_data_usage;
-- The completions above correct quote's size estimate on a random 5% sample; the byte quota below counts on 2048.
UPDATE refresh.data_type_registry SET estimated_data_size_bytes = 2048 WHERE data_type = 'quote';
SELECT refresh.evaluate_circuit_breaker();
SELECT refresh.queue_refreshes('quote', ARRAY(SELECT 'Q' || n FROM generate_series(1, 20) n), 0);
SELECT refresh.set_setting('quota_max_calls', '5');
SELECT is((SELECT count(*)::int FROM refresh.get_queue_batch('w', 10)), 0,
    'a session that claimed far from the quota finds it close under the shared lock, and claims nothing that time');
SELECT is((SELECT count(*)::int FROM refresh.get_queue_batch('w', 10)), 5, 'the next claim is exact, and stops at the call quota');
SELECT is((SELECT count(*)::int FROM refresh.get_queue_batch('w', 10)), 0, 'jobs in flight hold their reservation');
SELECT ok(refresh.is_quota_exceeded(), 'is_quota_exceeded() counts reservations');
SELECT is(refresh.check_and_queue_stale_data_from_presence() ->> 'status', 'quota exceeded', 'the sweep checks the quota first');
SELECT refresh.set_setting('quota_max_calls', '250000');
SELECT refresh.set_setting('quota_max_bytes', (5 * 2048 + 2 * 2048 + 100)::text);
SELECT is((SELECT count(*)::int FROM refresh.get_queue_batch('w', 10)), 2, 'and at the byte quota, by estimated size');
SELECT refresh.set_setting('quota_max_bytes', '21474836480');

-- The circuit breaker.
SELECT refresh.set_setting('breaker_min_calls', '5');
SELECT refresh.fail_queue_job(id, 'HTTP 500', lease_token) FROM refresh.api_call_queue_processing;
SELECT is(refresh.invoke_processor_loop() ->> 'breaker', 'open', 'mostly failed calls open the breaker');
SELECT is((SELECT count(*)::int FROM refresh.get_queue_batch('w', 10)), 0, 'an open breaker claims nothing');
SELECT is(refresh.invoke_processor_loop() ->> 'notified', 'false', 'and the loop wakes no worker');
UPDATE refresh.circuit_breaker SET changed_at = now() - interval '3 minutes';
SELECT is(refresh.invoke_processor_loop() ->> 'breaker', 'half-open', 'after the cool-down it is half-open');
UPDATE refresh.api_call_queue_pending SET next_attempt_at = now();
SELECT is((SELECT count(*)::int FROM refresh.get_queue_batch('probe', 10)), 1, 'which lets one probe job through');
SELECT refresh.complete_queue_job(id, 10, lease_token) FROM refresh.api_call_queue_processing;
SELECT is(refresh.invoke_processor_loop() ->> 'breaker', 'closed', 'a successful probe closes it');
SELECT is(refresh.invoke_processor_loop() ->> 'notified', 'true', 'the loop wakes workers when work is runnable');

-- Option D: a new subscription queues exactly its stale types, in the same transaction.
TRUNCATE refresh.api_call_queue, refresh.active_job_keys;
INSERT INTO refresh.profiles VALUES ('TSLA', '{}', now());
INSERT INTO refresh.ratios_ttm VALUES ('TSLA', '{}', now() - interval '2 days');
INSERT INTO refresh.subscriptions (client_id, symbol, data_types) VALUES ('c1', 'TSLA', '{quote,profile,ratios-ttm,not-a-type}');
SELECT is(pg_temp.jobs_of('TSLA'), 'quote:pending:1 ratios-ttm:pending:1', 'the subscription queued its stale types at priority 1');
SELECT foundation.set_flag('use_subscription_trigger', false);
INSERT INTO refresh.subscriptions (client_id, symbol, data_types) VALUES ('c1', 'OFF', '{quote}');
SELECT is(pg_temp.jobs_of('OFF'), '', 'nothing is queued while its flag is off');
SELECT foundation.set_flag('use_subscription_trigger', true);
ALTER TABLE refresh.dividend_history RENAME COLUMN fetched_at TO fetched;
SELECT lives_ok($$ INSERT INTO refresh.subscriptions (client_id, symbol, data_types) VALUES ('c1', 'BRKN', '{dividend-history}') $$,
    'a staleness check that fails does not fail the subscription');
SELECT is(pg_temp.jobs_of('BRKN'), 'dividend-history:pending:1', 'it fails safe: the data counts as stale');
SELECT is((SELECT context || ': ' || sqlstate FROM refresh.staleness_errors ORDER BY id DESC LIMIT 1), 'subscription trigger staleness check: 42703',
    'and the failure is logged');
ALTER TABLE refresh.dividend_history RENAME COLUMN fetched TO fetched_at;
SELECT foundation.unregister_flag('refresh_shares_float');
SELECT lives_ok($$ INSERT INTO refresh.subscriptions (client_id, symbol, data_types) VALUES ('c1', 'WORSE', '{shares-float}') $$,
    'neither does any other failure inside the trigger');
SELECT is((SELECT context || ': ' || sqlstate FROM refresh.staleness_errors ORDER BY id DESC LIMIT 1), 'subscription trigger: 42704', 'which is logged too');
SELECT foundation.register_flag('refresh_shares_float', 'restored', true);

-- The batch check and the sweep.
SELECT is((SELECT string_agg(data_type || '=' || outcome, ' ' ORDER BY data_type) FROM refresh.check_and_queue_stale_batch('TSLA', '{quote,profile,shares-float}', 1)),
    'profile=fresh quote=already queued shares-float=queued', 'the batch check reports each type');
SELECT throws_ok($$ SELECT * FROM refresh.check_and_queue_stale_batch('TSLA', '{quote,nope}', 1) $$, '22023', 'unknown data type: ''nope''',
    'an unknown type raises before anything is queued');
TRUNCATE refresh.api_call_queue, refresh.active_job_keys;
SELECT is(refresh.check_and_queue_stale_data_from_presence() - 'status', '{"stale": 5, "queued": 5, "checked": 6, "failed_checks": 0}'::jsonb,
    'the sweep queues every stale type of every active subscription');
SELECT is(refresh.check_and_queue_stale_data_from_presence() ->> 'queued', '0', 'and nothing twice');

-- Scheduled refreshes: sampled, throttled, priority -1.
INSERT INTO refresh.exchange_market_status SELECT 'X' || n, '{}', now() - interval '1 hour' FROM generate_series(1, 30) n;
INSERT INTO refresh.exchange_market_status VALUES ('FRESH', '{}', now());
SELECT is(refresh.queue_scheduled_refreshes() ->> 'queued', '30', 'scheduled types queue their stale rows');
SELECT is((SELECT count(*)::int FROM refresh.api_call_queue WHERE data_type = 'exchange-market-status' AND priority = -1), 30, 'at priority -1');
SELECT refresh.set_setting('scheduled_max_pending', '20');
SELECT is(refresh.queue_scheduled_refreshes() ->> 'status', 'throttled', 'and hold back while the queue is deep');

-- Phase 3: the update trigger exists only while its flag is on.
SELECT refresh.attach_update_trigger('quote');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'refresh.live_quote_indicators'::regclass AND NOT tgisinternal), 0,
    'attached while the flag is off, it costs nothing: no trigger exists');
SELECT refresh.set_update_trigger(true);
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'refresh.live_quote_indicators'::regclass AND NOT tgisinternal), 2,
    'turning the flag on creates its triggers');
TRUNCATE refresh.api_call_queue, refresh.active_job_keys;
INSERT INTO refresh.live_quote_indicators VALUES ('TSLA', '{}', now() - interval '1 hour'), ('NOBODY', '{}', now() - interval '1 hour'),
    ('FRESHQ', '{}', now());
SELECT is((SELECT string_agg(symbol, ',') FROM refresh.api_call_queue), 'TSLA', 'stale data that someone watches is queued on write');
SELECT refresh.detach_update_trigger('quote');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'refresh.live_quote_indicators'::regclass AND NOT tgisinternal), 0, 'detaching removes them');

-- Analytics, maintenance, health.
INSERT INTO refresh.subscriptions (client_id, symbol, data_types) VALUES ('c2', 'TSLA', '{quote}');
INSERT INTO refresh.subscriptions (client_id, symbol, data_types, last_seen) VALUES ('c3', 'GONE', '{quote}', now() - interval '1 hour');
SELECT is(refresh.refresh_analytics_from_presence() ->> 'active', '7', 'analytics count active symbol and type pairs');
SELECT is((SELECT client_count FROM refresh.active_subscriptions WHERE symbol = 'TSLA' AND data_type = 'quote'), 2, 'with their clients');
SELECT results_eq($$ SELECT symbol, data_type, client_count FROM refresh.active_subscriptions ORDER BY 1, 2 $$,
    $$ SELECT s.symbol, t, count(DISTINCT s.client_id)::int FROM refresh.subscriptions s, unnest(s.data_types) t
       WHERE s.last_seen > now() - interval '10 minutes' GROUP BY 1, 2 ORDER BY 1, 2 $$,
    'the analytics equal the plain query');
SELECT refresh.complete_queue_job(id, 1, lease_token) FROM refresh.get_queue_batch('m', 1);
UPDATE refresh.api_call_queue_completed SET finished_at = now() - interval '2 days';
SELECT is(refresh.maintain_queue_partitions() ->> 'completed_removed', '1', 'maintenance prunes completed jobs past retention');
SELECT is((SELECT jsonb_object_keys(refresh.health_check()) ORDER BY 1 LIMIT 1), 'breaker', 'health_check() reports');
SELECT is(refresh.health_check() -> 'queue' ->> 'processing', '0', 'queue depth by status');
SELECT is((SELECT count(*)::int FROM jsonb_array_elements(refresh.health_check() -> 'jobs') j WHERE j ->> 'status' LIKE 'not scheduled%'), 6,
    'and, without pg_cron, its six jobs as not scheduled');

SELECT * FROM finish();
ROLLBACK;
