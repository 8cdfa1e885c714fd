-- Foundation: module schemas, feature flags and identifier checks.
BEGIN;
SELECT plan(34);

SELECT has_schema(s, format('schema %s exists', s))
FROM unnest(ARRAY['foundation', 'jobs', 'refresh', 'ledger', 'feed']) AS s;
SELECT hasnt_schema(s, format('no module squats on hosted PostgreSQL''s %s schema', s))
FROM unnest(ARRAY['realtime', 'auth', 'storage']) AS s;

-- is_valid_identifier
SELECT ok(foundation.is_valid_identifier('quote'), 'a plain identifier is valid');
SELECT ok(foundation.is_valid_identifier('_api_call_queue_2'), 'underscores and digits are valid');
SELECT ok(NOT foundation.is_valid_identifier(NULL), 'NULL is invalid, not NULL');
SELECT ok(NOT foundation.is_valid_identifier(''), 'the empty string is invalid');
SELECT ok(NOT foundation.is_valid_identifier('Quote'), 'upper case would need quoting');
SELECT ok(NOT foundation.is_valid_identifier('1quote'), 'a leading digit is invalid');
SELECT ok(NOT foundation.is_valid_identifier('quote; DROP TABLE x'), 'injection attempts are invalid');
SELECT ok(NOT foundation.is_valid_identifier('quo"te'), 'a double quote is invalid');
SELECT ok(NOT foundation.is_valid_identifier('select'), 'a reserved word is invalid');
SELECT ok(NOT foundation.is_valid_identifier(repeat('a', 64)), '64 bytes is too long');
SELECT ok(foundation.is_valid_identifier(repeat('a', 63)), '63 bytes fits');
SELECT is(foundation.assert_valid_identifier('quote', 'data type'), 'quote', 'assert returns a valid identifier');
SELECT throws_ok($$ SELECT foundation.assert_valid_identifier('bad name', 'data type') $$,
    '22023', 'invalid data type identifier: ''bad name''', 'assert names what was invalid');

-- feature flags
SELECT has_table('foundation', 'feature_flags', 'the feature flags table exists');
SELECT lives_ok($$ SELECT foundation.register_flag('use_test_flag', 'a flag for this test', false) $$,
    'a module registers its flag');
SELECT is(foundation.is_enabled('use_test_flag'), false, 'a new flag has its initial state');
SELECT is(foundation.set_flag('use_test_flag', true), false, 'set_flag returns the previous state');
SELECT is(foundation.is_enabled('use_test_flag'), true, 'the flag reads as set');
SELECT lives_ok($$ SELECT foundation.register_flag('use_test_flag', 'described again', false) $$,
    'registering again is idempotent');
SELECT is(foundation.is_enabled('use_test_flag'), true, 're-registering keeps the current state');
SELECT is((SELECT updated_by FROM foundation.feature_flags WHERE flag = 'use_test_flag'), current_user::text,
    'the flag records who changed it');
SELECT throws_ok($$ SELECT foundation.is_enabled('no_such_flag') $$, '42704',
    'unknown feature flag: ''no_such_flag''', 'an unknown flag raises instead of reading as off');
SELECT throws_ok($$ SELECT foundation.set_flag('use_test_flag', NULL) $$, '22004', NULL,
    'a flag cannot be set to NULL');
SELECT throws_ok($$ SELECT foundation.register_flag('Bad Flag', 'x', false) $$, '23514', NULL,
    'flag names are checked');
SELECT lives_ok($$ SELECT foundation.unregister_flag('use_test_flag') $$, 'a flag can be unregistered');
SELECT throws_ok($$ SELECT foundation.is_enabled('use_test_flag') $$, '42704', NULL,
    'an unregistered flag is unknown');

SELECT * FROM finish();
ROLLBACK;
