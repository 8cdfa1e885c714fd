-- Dump and restore on the extension path: the merge of seed rows during a restore, and the
-- marking functions, which mark nothing outside an extension script.
BEGIN;
SELECT plan(11);

SELECT is(foundation.keep_in_dumps(ARRAY['jobs.settings']::regclass[]), 0, 'outside an extension script nothing is marked');
SELECT is(foundation.forget_in_dumps(ARRAY['refresh.profiles']::regclass[]),
    (SELECT count(*)::integer FROM pg_extension WHERE 'refresh.profiles'::regclass = ANY (extconfig)),
    'forgetting unmarks what an extension marked, and nothing in the runner''s databases');
SELECT ok(NOT has_function_privilege('public', 'foundation.keep_in_dumps(regclass[])', 'EXECUTE')
          AND NOT has_function_privilege('public', 'foundation.forget_in_dumps(regclass[])', 'EXECUTE')
          AND NOT has_function_privilege('public', 'foundation.merge_restored_row()', 'EXECUTE')
          AND NOT has_function_privilege('public', 'foundation.merge_on_restore(regclass)', 'EXECUTE')
          AND NOT has_function_privilege('public', 'foundation.dumped_relations(regclass[])', 'EXECUTE')
          AND NOT has_function_privilege('public', 'feed.repair_after_restore()', 'EXECUTE'), 'PUBLIC may run none of them');
SELECT is(ARRAY(SELECT format('%s %s', t.tgrelid::regclass, t.tgenabled) FROM pg_trigger t
                WHERE t.tgname LIKE '%merge_restored' ORDER BY 1),
          ARRAY['feed.log_state A', 'feed.settings A', 'foundation.feature_flags A', 'jobs.schedules A', 'jobs.settings A',
                'refresh.circuit_breaker A', 'refresh.data_type_registry A', 'refresh.settings A'],
          'every seeded table merges restored rows, with the trigger enabled ALWAYS so a restore as replica fires it');

SELECT throws_ok($$INSERT INTO jobs.settings (name, value, description) SELECT name, 'x', description FROM jobs.settings LIMIT 1$$,
    '23505', NULL, 'outside a restore a seeded key still collides');

SET LOCAL session_replication_role = replica;
CREATE TEMP TABLE seeded AS SELECT count(*) AS settings FROM jobs.settings;
INSERT INTO jobs.settings (name, value, description)
    SELECT name, 'restored ' || value, 'restored' FROM jobs.settings ORDER BY name LIMIT 1;
SELECT is((SELECT count(*) FROM jobs.settings), (SELECT settings FROM seeded), 'a restored seed row adds no row');
SELECT is((SELECT description FROM jobs.settings ORDER BY name LIMIT 1), 'restored', 'it overwrites the seeded one');
SELECT lives_ok($$INSERT INTO foundation.feature_flags (flag, enabled, description) VALUES ('restored_flag', true, 'from a dump')$$,
    'a restored row of the user''s own goes in');
SELECT is((SELECT enabled FROM foundation.feature_flags WHERE flag = 'restored_flag'), true, 'as dumped');
UPDATE refresh.circuit_breaker SET state = 'open', reason = 'before the dump';
INSERT INTO refresh.circuit_breaker SELECT * FROM refresh.circuit_breaker;
SELECT is((SELECT count(*) FROM refresh.circuit_breaker), 1::bigint, 'the singleton breaker stays one row');
SELECT is((SELECT reason FROM refresh.circuit_breaker), 'before the dump', 'with the dumped state');
SET LOCAL session_replication_role = origin;

SELECT * FROM finish();
ROLLBACK;
