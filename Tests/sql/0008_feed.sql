-- The change feed: watch and unwatch, capture, filters, authorisation, pruning, monitoring and bad
-- input. Everything here runs in one transaction, so the commit stamp is made immediate; commit
-- order across sessions, NOTIFY and resuming readers are tested from Swift.
BEGIN;
SELECT plan(102);

SET CONSTRAINTS feed.commits_stamp IMMEDIATE;
CREATE SCHEMA app;
CREATE TABLE app.trades (id int PRIMARY KEY, user_id text, status text NOT NULL, qty numeric NOT NULL, note text);
CREATE TABLE app.prices (symbol text, venue text, price numeric, PRIMARY KEY (symbol, venue));
CREATE TABLE app.keyless (n int);
CREATE VIEW app.trade_view AS SELECT * FROM app.trades;
CREATE FUNCTION pg_temp.log() RETURNS TABLE (operation text, row_key jsonb, user_id text, row_data jsonb, old_data jsonb)
    LANGUAGE sql AS $$ SELECT operation, row_key, user_id, row_data, old_data FROM feed.change_log ORDER BY id $$;
CREATE FUNCTION pg_temp.summary(client text, cursor text DEFAULT '0/0') RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(c.operation || ':' || coalesce(c.row_key ->> 'id', '-'), ' ' ORDER BY c.commit_seq, c.change_id), '')
    FROM feed.changes_for(client, cursor, 1000) c
$$;

-- Structure.
SELECT is((SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'feed'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL),
    0, 'every feed function is commented');
SELECT is((SELECT count(*)::int FROM pg_class c WHERE c.relnamespace = 'feed'::regnamespace AND c.relkind = 'r' AND obj_description(c.oid, 'pg_class') IS NULL),
    0, 'every feed table is commented');
SELECT ok((SELECT relrowsecurity FROM pg_class WHERE oid = 'feed.change_log'::regclass)
      AND (SELECT relrowsecurity FROM pg_class WHERE oid = 'feed.subscriptions'::regclass), 'the log and the subscriptions have row-level security');
SELECT is((SELECT lock_key FROM jobs.schedules WHERE name = 'feed-prune'), 46::bigint, 'pruning is scheduled daily on lock 46');

-- watch / unwatch.
SELECT lives_ok($$ SELECT feed.watch('app.trades', 'user_id') $$, 'watch a table with its user column');
SELECT is((SELECT string_agg(tgname, ' ' ORDER BY tgname) FROM pg_trigger WHERE tgrelid = 'app.trades'::regclass),
    'feed_capture_delete feed_capture_insert feed_capture_truncate feed_capture_update', 'four statement-level capture triggers');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'app.trades'::regclass AND tgname LIKE 'feed_capture_%'
           AND (tgtype & 1) = 0 AND (tgname = 'feed_capture_truncate' OR tgnewtable IS NOT NULL OR tgoldtable IS NOT NULL)),
    4, 'all FOR EACH STATEMENT, the row ones with transition tables');
SELECT is((SELECT count(*)::int FROM pg_proc p JOIN pg_trigger t ON t.tgfoid = p.oid
           WHERE t.tgrelid = 'app.trades'::regclass AND p.prosecdef AND p.proconfig[1] = 'search_path=pg_catalog, pg_temp'
             AND p.proowner = (SELECT relowner FROM pg_class WHERE oid = 'app.trades'::regclass)),
    4, 'capture runs SECURITY DEFINER as the table''s owner, with a pinned search_path');
SELECT is((SELECT ROW(user_column, key_columns, channel)::text FROM feed.watched_tables WHERE table_id = 'app.trades'::regclass),
    '(user_id,{id},feed_app_trades)', 'the registry holds the user column, key and channel');
CREATE TEMP TABLE capture_functions AS SELECT tgfoid FROM pg_trigger WHERE tgrelid = 'app.trades'::regclass;
SELECT feed.watch('app.trades', 'user_id');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'app.trades'::regclass AND tgfoid IN (SELECT tgfoid FROM capture_functions)),
    4, 'watching again is a no-op');
SELECT feed.watch('app.prices');
SELECT is((SELECT ROW(user_column, key_columns)::text FROM feed.watched_tables WHERE table_id = 'app.prices'::regclass),
    '(,"{symbol,venue}")', 'a table without a user column is public; a composite key is kept in order');
SELECT feed.watch('app.prices', 'venue');
SELECT is((SELECT user_column FROM feed.watched_tables WHERE table_id = 'app.prices'::regclass), 'venue', 'watching with another user column re-creates the capture');
SELECT ok(feed.unwatch('app.prices'), 'unwatch');
SELECT is((SELECT count(*)::int FROM pg_trigger WHERE tgrelid = 'app.prices'::regclass), 0, 'unwatch drops the triggers');
SELECT is((SELECT count(*)::int FROM pg_proc WHERE proname LIKE 'capture_' || 'app.prices'::regclass::oid || '_%'), 0, '... and the generated functions');
SELECT ok(NOT feed.unwatch('app.prices'), 'unwatch is idempotent');

SELECT throws_ok($$ SELECT feed.watch('app.keyless') $$, '42P16', 'feed.watch: table app.keyless has no primary key', 'a table without a primary key is refused');
SELECT throws_ok($$ SELECT feed.watch('app.trades', 'owner') $$, '42703', 'feed.watch: column "owner" does not exist in table app.trades', 'an unknown user column is refused');
SELECT throws_ok($$ SELECT feed.watch('app.trade_view') $$, '42809', 'feed.watch: app.trade_view is not a table', 'a view is refused');
SELECT throws_ok($$ SELECT feed.watch('feed.change_log') $$, '22023', NULL, 'the feed does not watch itself');
SELECT throws_ok($$ SELECT feed.watch(NULL) $$, '22004', NULL, 'NULL is refused');
SELECT is((SELECT user_column FROM feed.watched_tables WHERE table_id = 'app.trades'::regclass), 'user_id', 'refused calls changed nothing');

-- Channel names.
CREATE TABLE app."a_table_name_that_is_long_enough_to_push_the_channel_past_63" (id int PRIMARY KEY);
SELECT is(feed.channel_name('app.a_table_name_that_is_long_enough_to_push_the_channel_past_63'),
    left('feed_app_a_table_name_that_is_long_enough_to_push_the_channel_past_63', 46) || '_'
        || left(md5('app.a_table_name_that_is_long_enough_to_push_the_channel_past_63'), 16),
    'a long name keeps 46 bytes and adds 16 hex digits of md5(schema.table)');
CREATE TABLE app."äöüäöüäöüäöüäöüäöüäöüäöüäöüä" (id int PRIMARY KEY);
SELECT ok(octet_length(feed.channel_name('app."äöüäöüäöüäöüäöüäöüäöüäöüäöüä"')) <= 63
      AND feed.channel_name('app."äöüäöüäöüäöüäöüäöüäöüäöüäöüä"') LIKE 'feed_app_äöü%', 'multi-byte names are cut on a character boundary');

-- Capture.
INSERT INTO app.trades VALUES (1, 'u1', 'open', 10, 'a'), (2, 'u2', 'open', 20, 'b'), (3, NULL, 'pending', 30, 'c');
SELECT results_eq($$ SELECT operation, row_key::text, user_id, row_data::text FROM pg_temp.log() $$,
    $$ VALUES ('INSERT', '{"id": 1}', 'u1', '{"id": 1, "qty": 10, "note": "a", "status": "open", "user_id": "u1"}'),
              ('INSERT', '{"id": 2}', 'u2', '{"id": 2, "qty": 20, "note": "b", "status": "open", "user_id": "u2"}'),
              ('INSERT', '{"id": 3}', NULL, '{"id": 3, "qty": 30, "note": "c", "status": "pending", "user_id": null}') $$,
    'an INSERT logs each new row with its key and user');
SELECT is((SELECT count(*)::int FROM feed.commits WHERE xid = pg_current_xact_id()), 1, 'the transaction is registered once');
SELECT ok((SELECT commit_seq IS NOT NULL FROM feed.commits WHERE xid = pg_current_xact_id()), 'and stamped (at commit; immediately here)');
TRUNCATE feed.change_log;

UPDATE app.trades SET status = 'closed', qty = qty WHERE id IN (1, 2);
SELECT results_eq($$ SELECT operation, row_key::text, old_data::text, row_data ->> 'status' FROM pg_temp.log() ORDER BY row_key::text $$,
    $$ VALUES ('UPDATE', '{"id": 1}', '{"status": "open"}', 'closed'), ('UPDATE', '{"id": 2}', '{"status": "open"}', 'closed') $$,
    'an UPDATE logs the new row and the old values of the columns it changed');
SELECT is((SELECT changed_columns FROM feed.changes_since('0/0') LIMIT 1), '{status}', 'changes_since() names the changed columns');
TRUNCATE feed.change_log;
UPDATE app.trades SET id = 4 WHERE id = 3;
SELECT results_eq($$ SELECT operation, row_key::text FROM pg_temp.log() ORDER BY operation $$,
    $$ VALUES ('DELETE', '{"id": 3}'), ('INSERT', '{"id": 4}') $$, 'a changed key is a DELETE of the old key and an INSERT of the new');
TRUNCATE feed.change_log;
UPDATE app.trades SET user_id = 'u2' WHERE id = 1;
SELECT results_eq($$ SELECT operation, user_id, row_data ->> 'user_id' FROM pg_temp.log() ORDER BY operation $$,
    $$ VALUES ('DELETE', 'u1', 'u1'), ('INSERT', 'u2', 'u2') $$, 'a row given to another user leaves its old user as a DELETE and reaches the new one as an INSERT');
TRUNCATE feed.change_log;
UPDATE app.trades SET user_id = 'u1' WHERE id = 1;
TRUNCATE feed.change_log;
DELETE FROM app.trades WHERE id = 4;
SELECT results_eq($$ SELECT operation, row_key::text, row_data ->> 'note', old_data FROM pg_temp.log() $$,
    $$ VALUES ('DELETE', '{"id": 4}', 'c', NULL::jsonb) $$, 'a DELETE logs the old row');
TRUNCATE feed.change_log;
UPDATE app.trades SET note = 'x' WHERE false;
SELECT is((SELECT count(*)::int FROM feed.change_log), 0, 'a statement that changes no row logs nothing');
SAVEPOINT before_insert;
INSERT INTO app.trades VALUES (50, 'u1', 'open', 1, NULL);
ROLLBACK TO SAVEPOINT before_insert;
SELECT is((SELECT count(*)::int FROM feed.change_log), 0, 'a rolled-back subtransaction leaves nothing in the log');

SET LOCAL track_functions = 'pl';
INSERT INTO app.trades SELECT n, 'u' || n % 3, 'open', n, NULL FROM generate_series(100, 10099) n;
SELECT is((SELECT count(*)::int FROM feed.change_log), 10000, 'a 10,000-row statement logs 10,000 changes');
SELECT is((SELECT calls::int FROM pg_stat_xact_user_functions WHERE funcid = (SELECT tgfoid FROM pg_trigger WHERE tgrelid = 'app.trades'::regclass AND tgname = 'feed_capture_insert')),
    1, '... with one trigger call');
DELETE FROM app.trades WHERE id >= 100;
TRUNCATE feed.change_log;
TRUNCATE app.trades;
SELECT results_eq($$ SELECT operation, row_key, user_id FROM pg_temp.log() $$, $$ VALUES ('TRUNCATE', NULL::jsonb, NULL::text) $$,
    'a TRUNCATE is one change without a row');
TRUNCATE feed.change_log;

-- Cursors and changes_since.
TRUNCATE feed.commits;
SET CONSTRAINTS feed.commits_stamp IMMEDIATE;
INSERT INTO app.trades VALUES (1, 'u1', 'open', 10, 'a'), (2, 'u2', 'open', 20, 'b'), (3, NULL, 'pending', 30, 'c'), (5, 'u1', 'closed', 5, NULL);
SELECT is((SELECT count(*)::int FROM feed.changes_since('0/0')), 4, 'changes_since(''0/0'') returns every change');
SELECT is((SELECT string_agg(change_id::text, ',') FROM feed.changes_since('0/0', 2)), (SELECT string_agg(id::text, ',') FROM (SELECT id FROM feed.change_log ORDER BY id LIMIT 2) f),
    'in order, up to max_changes');
SELECT is((SELECT count(*)::int FROM feed.changes_since((SELECT change_cursor FROM feed.changes_since('0/0', 2) OFFSET 1))), 2,
    'a cursor in the middle of a transaction resumes after that change');
SELECT is(feed.current_cursor(), (SELECT change_cursor FROM feed.changes_since('0/0') ORDER BY commit_seq DESC, change_id DESC LIMIT 1),
    'current_cursor() is the newest change');
SELECT is((SELECT count(*)::int FROM feed.changes_since(feed.current_cursor())), 0, 'nothing after it');
SELECT throws_ok($$ SELECT * FROM feed.changes_since('12') $$, '22023', 'invalid feed cursor: ''12''', 'a malformed cursor is refused');
SELECT throws_ok($$ SELECT * FROM feed.changes_since('0/0', 0) $$, '22023', NULL, 'max_changes must be positive');

-- Filters.
SELECT is(feed.normalize_filters('app.trades', '{"status": "open", "qty": "10", "id": {"in": [1, "2"]}, "note": null}'),
    '{"id": [1, 2], "qty": [10], "note": [null], "status": ["open"]}', 'filters become lists of values in the column''s JSON form');
SELECT throws_ok($$ SELECT feed.normalize_filters('app.trades', '{"colour": "red"}') $$, '42703',
    'feed filter names column "colour", which does not exist in table app.trades', 'an unknown column in a filter is refused');
SELECT throws_ok($$ SELECT feed.normalize_filters('app.trades', '{"status": {"in": "open"}}') $$, '22023',
    'feed filter on column "status": the IN-list must be a JSON array, got string', 'a non-array IN-list is refused');
SELECT throws_ok($$ SELECT feed.normalize_filters('app.trades', '{"status": ["open", ["pending"]]}') $$, '22023', NULL, 'a nested list is refused');
SELECT throws_ok($$ SELECT feed.normalize_filters('app.trades', '{"status": {"like": "op%"}}') $$, '22023', NULL, 'an unknown operator is refused');
SELECT throws_ok($$ SELECT feed.normalize_filters('app.trades', '{"status": []}') $$, '22023', NULL, 'an empty IN-list is refused');
SELECT throws_ok($$ SELECT feed.normalize_filters('app.trades', '{"qty": "ten"}') $$, '22023',
    'feed filter on column "qty": "ten" is not a valid numeric', 'a value the column cannot hold is refused');
SELECT throws_ok($$ SELECT feed.normalize_filters('app.trades', '["status"]') $$, '22023', NULL, 'filters must be an object');

SELECT is(feed.subscribe('monitor', 'app.trades', '{"status": ["open", "pending"]}', start_cursor => '0/0'), '0/0', 'subscribe from the start of the log');
SELECT is(pg_temp.summary('monitor'), 'INSERT:1 INSERT:2 INSERT:3', 'a service client gets every user''s matching rows');
UPDATE app.trades SET status = 'closed' WHERE id = 2;
UPDATE app.trades SET qty = 6 WHERE id = 5;
SELECT is(pg_temp.summary('monitor'), 'INSERT:1 INSERT:2 INSERT:3 UPDATE:2', 'an update that moves a row out of the filter is delivered; one outside it is not');
SELECT feed.subscribe('monitor', 'app.trades', '{"qty": [6]}');
SELECT is(pg_temp.summary('monitor'), 'UPDATE:5', 'subscribing again replaces the filters');
SELECT throws_ok($$ SELECT feed.subscribe('monitor', 'app.keyless') $$, '55000', 'feed: table app.keyless is not watched', 'an unwatched table cannot be subscribed to');
SELECT throws_ok($$ SELECT feed.subscribe('monitor', 'app.trades', '{"colour": "red"}') $$, '42703', NULL, 'subscribe checks its filters');
SELECT is((SELECT filters::text FROM feed.subscriptions WHERE client_id = 'monitor'), '{"qty": [6]}', 'a refused subscribe changes nothing');
SELECT throws_ok($$ SELECT * FROM feed.changes_for('nobody') $$, '42704', 'feed: no subscription for client ''nobody''', 'an unknown client is refused');
SELECT feed.subscribe('latecomer', 'app.trades');
SELECT is(pg_temp.summary('latecomer', NULL), '', 'a new subscription starts at the end of the log');
UPDATE app.trades SET note = 'later' WHERE id = 1;
SELECT is(pg_temp.summary('latecomer', NULL), 'UPDATE:1', 'and receives what commits afterwards');
UPDATE feed.subscriptions SET last_activity = now() - interval '1 hour', is_active = false WHERE client_id = 'latecomer';
SELECT is(feed.touch('latecomer'), 1, 'touch() is a heartbeat');
SELECT ok((SELECT is_active AND last_activity = now() FROM feed.subscriptions WHERE client_id = 'latecomer'), 'that reactivates the subscription');
SELECT is(feed.unsubscribe('latecomer', 'app.trades'), 1, 'unsubscribe');
SELECT is(feed.unsubscribe('latecomer'), 0, 'unsubscribe is idempotent');
SELECT is((SELECT count(*)::int FROM feed.changes_since('0/0', 1000, 'app.prices')), 0, 'changes_since() can be limited to one table');

-- Polling past a stretch with nothing for the client does not rescan it.
SELECT feed.subscribe('sparse', 'app.trades', '{"status": "gone"}', start_cursor => '0/0');
SELECT is(pg_temp.summary('sparse', NULL), '', 'nothing matches');
SELECT is((SELECT read_cursor FROM feed.subscription_lag() WHERE client_id = 'sparse'), feed.current_cursor(),
    'so the subscription has read to the end, though its cursor is still 0/0');
SELECT is((SELECT lag_commits::int FROM feed.subscription_lag() WHERE client_id = 'sparse'), 0, 'and lags nothing');
INSERT INTO app.trades VALUES (6, 'u1', 'gone', 1, NULL);
SELECT is(pg_temp.summary('sparse', NULL), 'INSERT:6', 'a later match is still delivered');

-- Authorisation.
CREATE ROLE feed_alice;
CREATE ROLE feed_bob;
CREATE ROLE feed_gateway;
CREATE ROLE feed_stranger;
GRANT USAGE ON SCHEMA app TO feed_alice, feed_bob, feed_gateway, feed_stranger;   -- to name the table; no access to its rows
GRANT freshet_client TO feed_alice, feed_bob, feed_gateway, feed_stranger;
SELECT feed.grant_access('feed_alice', 'u1'), feed.grant_access('feed_bob', 'u2'), feed.grant_access('feed_gateway', NULL);
SET LOCAL ROLE feed_alice;
SELECT is(feed.subscribe('alice-app', 'app.trades', start_cursor => '0/0'), '0/0', 'a role bound to a user subscribes');
SELECT is((SELECT user_id FROM feed.subscriptions WHERE client_id = 'alice-app'), 'u1', 'for its own user');
SELECT is(pg_temp.summary('alice-app'), 'INSERT:1 INSERT:5 UPDATE:5 UPDATE:1 INSERT:6', 'and receives only that user''s rows');
SELECT is((SELECT count(*)::int FROM feed.change_log WHERE user_id IS DISTINCT FROM 'u1'), 0, 'reading the log directly shows no other user''s rows either');
SELECT is((SELECT count(*)::int FROM feed.subscriptions), 1, 'and only its own subscriptions');
SELECT throws_ok($$ SELECT feed.subscribe('alice-app', 'app.trades', '{"user_id": "u2"}') $$, '42501', NULL, 'a filter naming another user is refused');
SELECT throws_ok($$ SELECT feed.subscribe('alice-spy', 'app.trades', '{}', 'u2') $$, '42501', NULL, 'subscribing for another user is refused');
SELECT throws_ok($$ UPDATE feed.subscriptions SET user_id = 'u2' $$, '42501', NULL, 'so is rewriting the subscription by hand');
SELECT throws_ok($$ UPDATE feed.subscriptions SET filters = '{"user_id": ["u1", "u2"]}' $$, '42501', NULL, '... or its filters');
SELECT throws_ok($$ UPDATE feed.subscriptions SET owner = 'feed_bob' $$, '42501', NULL, '... or its owner');
SELECT is(pg_temp.summary('alice-app'), 'INSERT:1 INSERT:5 UPDATE:5 UPDATE:1 INSERT:6', 'alice still receives only her rows');
SELECT throws_ok($$ SELECT * FROM feed.changes_for('monitor') $$, '42704', NULL, 'another role''s client is not hers to read');
SELECT throws_ok($$ SELECT feed.watch('app.trades') $$, '42501', NULL, 'only the owner watches tables');
SELECT throws_ok($$ SELECT feed.prune_change_log() $$, '42501', NULL, '... and prunes');
RESET ROLE;
SET LOCAL ROLE feed_stranger;
SELECT throws_ok($$ SELECT feed.subscribe('stranger', 'app.trades') $$, '42501', 'feed: role feed_stranger may not subscribe', 'a role without access may not subscribe');
SELECT is((SELECT count(*)::int FROM feed.change_log), 0, 'and sees nothing in the log');
RESET ROLE;
SET LOCAL ROLE feed_gateway;
SELECT feed.subscribe('gw-u2', 'app.trades', '{}', 'u2', '0/0');
SELECT is(pg_temp.summary('gw-u2'), 'INSERT:2 UPDATE:2', 'a service role acting for a user gets only that user''s rows');
RESET ROLE;
SELECT feed.revoke_access('feed_alice');
SET LOCAL ROLE feed_alice;
SELECT is(pg_temp.summary('alice-app'), '', 'a role whose access is revoked reads nothing more');
RESET ROLE;

-- Retention.
TRUNCATE feed.change_log, feed.commits;
DELETE FROM feed.subscriptions;
INSERT INTO feed.commits (xid) SELECT n::text::xid8 FROM generate_series(11, 14) n;   -- stamped in xid order (immediate mode)
INSERT INTO feed.change_log (xid, table_id, table_name, operation, row_key, user_id, is_public, row_data)
    SELECT (10 + n)::text::xid8, 'app.trades'::regclass, 'app.trades', 'INSERT', jsonb_build_object('id', n), 'u1', false, jsonb_build_object('id', n)
    FROM generate_series(1, 4) n;
UPDATE feed.commits SET committed_at = now() - (15 - xid::text::int) * interval '1 day';   -- 4, 3, 2 and 1 days old
SELECT feed.subscribe('reader', 'app.trades', start_cursor => (SELECT change_cursor FROM feed.changes_since('0/0') OFFSET 1 LIMIT 1));
SELECT is(feed.prune_change_log('12 hours'), 1::bigint, 'pruning stops at the oldest active cursor');
SELECT is((SELECT min(xid::text::int) FROM feed.commits), 12, 'the reader''s own transaction stays');
SELECT throws_ok($$ SELECT * FROM feed.changes_since('0/0') $$, '55000', NULL, 'a cursor older than the pruned log is refused, not skipped');
UPDATE feed.subscriptions SET last_activity = now() - interval '2 days';
SELECT is(feed.prune_change_log('36 hours'), 2::bigint, 'a subscription idle longer than inactive_after no longer holds pruning back');
SELECT ok(NOT (SELECT is_active FROM feed.subscriptions WHERE client_id = 'reader'), 'it is marked inactive');
SELECT throws_ok($$ SELECT * FROM feed.changes_for('reader') $$, '55000', NULL, 'and told, when it returns, that its changes are gone');
SELECT is((SELECT count(*)::int FROM feed.changes_since((SELECT oldest_retained FROM feed.health()))), 1, 'the newest day is kept');
SELECT throws_ok($$ SELECT feed.prune_change_log('-1 day') $$, '22023', NULL, 'a negative retention is refused');

-- Monitoring.
SELECT feed.subscribe('reader', 'app.trades', start_cursor => feed.current_cursor());
SELECT is((SELECT ROW(log_changes, newest = feed.current_cursor(), oldest_cursor = feed.current_cursor(), watched_tables, active_subscriptions)::text
           FROM feed.health()), '(1,t,t,1,1)', 'health() reports the log size, newest position, oldest cursor and counts');
SELECT ok((SELECT notify_queue_usage BETWEEN 0 AND 1 AND log_bytes > 0 FROM feed.health()), '... and the listener backlog and bytes');
SELECT is((SELECT ROW(read_cursor = feed.current_cursor(), lag_commits, lag)::text FROM feed.subscription_lag() WHERE client_id = 'reader'),
    '(t,0,00:00:00)', 'subscription_lag() of a reader at the end');

-- The whole module passes plpgsql_check.
CREATE EXTENSION plpgsql_check;
SELECT is((SELECT count(*)::int FROM pg_proc p CROSS JOIN LATERAL plpgsql_check_function(p.oid, extra_warnings => false) r
           WHERE p.pronamespace = 'feed'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
             AND p.prorettype <> 'trigger'::regtype),
    0, 'plpgsql_check finds nothing in the feed''s functions');
SELECT is((SELECT count(*)::int FROM pg_trigger tg CROSS JOIN LATERAL plpgsql_check_function(tg.tgfoid, tg.tgrelid,
               oldtable => tg.tgoldtable, newtable => tg.tgnewtable, extra_warnings => false) r
           WHERE tg.tgfoid IN (SELECT oid FROM pg_proc WHERE pronamespace = 'feed'::regnamespace)),
    0, '... nor in its trigger functions, checked against their tables and transition tables');

SELECT * FROM finish();
ROLLBACK;
