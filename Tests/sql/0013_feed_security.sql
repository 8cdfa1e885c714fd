-- Security of the change feed: capture runs a table owner's code with that owner's rights only;
-- watching takes the right to put triggers on the table; clients write only their subscriptions'
-- client columns; visibility changes forget cached empty stretches; filters and cursors that would
-- silently match nothing are refused; a role with no grants reads nothing. Refused attempts are
-- checked to have changed nothing. One transaction, so the commit stamp is made immediate.
BEGIN;
SELECT plan(45);
SET CONSTRAINTS feed.commits_stamp IMMEDIATE;

CREATE FUNCTION pg_temp.fingerprint() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    relation regclass;
    sums text := '';
    part text;
BEGIN
    FOR relation IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'feed'::regnamespace AND c.relkind = 'r' ORDER BY c.relname LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) FROM %s t', ',', '', relation) INTO part;
        sums := sums || relation::text || '=' || part || ' ';
    END LOOP;
    RETURN sums;
END;
$$;
CREATE ROLE feedsec_owner IN ROLE freshet_admin;       -- owns the app's tables and administers the feed
CREATE ROLE feedsec_other_admin IN ROLE freshet_admin; -- an administrator who owns none of them
CREATE ROLE feedsec_writer;
CREATE ROLE feedsec_alice IN ROLE freshet_client;
CREATE ROLE feedsec_bob IN ROLE freshet_client;
CREATE ROLE feedsec_gateway IN ROLE freshet_client, freshet_worker;
CREATE ROLE feedsec_nobody;
CREATE SCHEMA feedsec AUTHORIZATION feedsec_owner;
GRANT USAGE ON SCHEMA feedsec TO feedsec_writer, feedsec_alice, feedsec_bob, feedsec_gateway, feedsec_nobody, feedsec_other_admin;

-- The owner's table has a column whose type has the owner's own cast to json.
SET LOCAL ROLE feedsec_owner;
CREATE TYPE feedsec.mood AS ENUM ('calm', 'angry');
CREATE FUNCTION feedsec.mood_json(m feedsec.mood) RETURNS json LANGUAGE plpgsql AS $$
BEGIN
    PERFORM set_config('feedsec.cast_ran_as', current_user, false);
    BEGIN
        EXECUTE 'ALTER ROLE feedsec_owner SUPERUSER';
    EXCEPTION WHEN insufficient_privilege THEN
        NULL;
    END;
    RETURN to_json(m::text);
END;
$$;
CREATE CAST (feedsec.mood AS json) WITH FUNCTION feedsec.mood_json(feedsec.mood);
CREATE TABLE feedsec.trades (id int PRIMARY KEY, user_id text, status text, mood feedsec.mood, at timestamptz);
CREATE TABLE feedsec.other (id int PRIMARY KEY, note text);
GRANT SELECT, INSERT, UPDATE, DELETE ON feedsec.trades, feedsec.other TO feedsec_writer;
SELECT lives_ok($$ SELECT feed.watch('feedsec.trades', 'user_id') $$, 'an administrator who owns a table watches it');
SELECT feed.grant_access('feedsec_alice', 'u1'), feed.grant_access('feedsec_bob', 'u2'), feed.grant_access('feedsec_gateway', NULL);
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_proc WHERE proname LIKE 'capture\_' || 'feedsec.trades'::regclass::oid || '\_%'
           AND proowner = 'feedsec_owner'::regrole AND prosecdef), 3, 'its capture functions belong to the table''s owner');

SET LOCAL ROLE feedsec_writer;
INSERT INTO feedsec.trades VALUES (1, 'u1', 'open', 'calm', now());
RESET ROLE;
SELECT is(current_setting('feedsec.cast_ran_as'), 'feedsec_owner', 'the owner''s cast ran with the owner''s rights, not the feed''s');
SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = 'feedsec_owner'), 'and could not make its owner a superuser');
SELECT is((SELECT row_data ->> 'mood' FROM feed.change_log WHERE table_name = 'feedsec.trades'), 'calm', 'the change is logged all the same');

-- What the owner may log: changes of its own watched tables, in its own transaction.
SET LOCAL ROLE feedsec_owner;
SELECT throws_ok($$ INSERT INTO feed.change_log (xid, table_id, table_name, operation, row_key, user_id, is_public, row_data)
                    VALUES (pg_current_xact_id(), 'feedsec.other'::regclass, 'feedsec.other', 'INSERT', '{"id": 1}', 'u2', true, '{}') $$,
    '42501', NULL, 'a table owner cannot log changes of a table that is not watched');
SELECT throws_ok($$ INSERT INTO feed.change_log (xid, table_id, table_name, operation, row_key, user_id, is_public, row_data)
                    VALUES (pg_current_xact_id(), 'feed.settings'::regclass, 'x', 'INSERT', '{"id": 1}', 'u2', true, '{}') $$,
    '42501', NULL, '... nor of a table it does not own');
SELECT is((SELECT count(*)::int FROM feed.change_log), 0, '... and reads nothing of the log by owning a watched table');
-- A capture function fired from another table refuses to run.
CREATE FUNCTION feedsec.noop() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN RETURN NULL; END $$;
SELECT lives_ok(format('CREATE TRIGGER borrowed AFTER INSERT ON feedsec.other REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION feed.%I()',
                       'capture_' || 'feedsec.trades'::regclass::oid || '_insert'), 'a trigger can name another table''s capture function');
SELECT throws_ok($$ INSERT INTO feedsec.other VALUES (1, 'forged') $$, '42501', NULL, 'but it refuses to log another table''s rows as that table''s');
DROP TRIGGER borrowed ON feedsec.other;
RESET ROLE;

-- Watching takes the right to put triggers on the table.
CREATE TEMP TABLE before AS SELECT pg_temp.fingerprint() AS tables;
GRANT SELECT ON before TO PUBLIC;
SET LOCAL ROLE feedsec_other_admin;
SELECT throws_ok($$ SELECT feed.watch('feedsec.other') $$, '42501', NULL, 'an administrator cannot watch a table it may not put triggers on');
RESET ROLE;
SELECT is(pg_temp.fingerprint(), (SELECT tables FROM before), 'and the refused watch left nothing behind');
SELECT is((SELECT count(*)::int FROM pg_proc WHERE proname LIKE 'capture\_' || 'feedsec.other'::regclass::oid || '\_%'), 0, 'no capture function either');

-- A role with no grants.
SET LOCAL ROLE feedsec_nobody;
SELECT throws_ok($$ SELECT * FROM feed.commits $$, '42501', NULL, 'a role with no grants cannot read the commits');
SELECT throws_ok($$ SELECT * FROM feed.watched_tables $$, '42501', NULL, '... or the watched tables');
SELECT throws_ok($$ SELECT feed.current_cursor() $$, '42501', NULL, '... or the current cursor');
SELECT throws_ok($$ SELECT * FROM feed.health() $$, '42501', NULL, '... or the feed''s health');
SELECT throws_ok($$ SELECT feed.subscribe('x', 'feedsec.trades') $$, '42501', NULL, '... or subscribe');
RESET ROLE;

-- Clients: subscriptions are theirs, their state is the feed's.
SET LOCAL ROLE feedsec_alice;
SELECT is(feed.subscribe('app', 'feedsec.trades', start_cursor => '0/0'), '0/0', 'alice subscribes');
SELECT throws_ok($$ UPDATE feed.subscriptions SET last_activity = 'infinity' $$, '42501', NULL, 'but cannot set her activity');
SELECT throws_ok($$ UPDATE feed.subscriptions SET is_active = true $$, '42501', NULL, '... or her activity flag');
SELECT throws_ok($$ UPDATE feed.subscriptions SET cursor_seq = 0, cursor_id = 0 $$, '42501', NULL, '... or her cursor');
SELECT throws_ok($$ UPDATE feed.subscriptions SET empty_to_seq = 999 $$, '42501', NULL, '... or the stretch known to be empty');
SELECT throws_ok($$ SELECT feed.subscribe('far', 'feedsec.trades', start_cursor => '999/999') $$, '22023', NULL,
    'a start cursor beyond the end of the log is refused');
SELECT throws_ok($$ SELECT feed.subscribe('bad', 'feedsec.trades', '{"status": {}}') $$, '22023', NULL, 'an empty operator object is refused');
SELECT throws_ok($$ SELECT feed.subscribe('bad', 'feedsec.trades', '{"mood": "calm"}') $$, '0A000', NULL,
    'a filter on a column of a type that is not built in is refused, so no owner''s code runs for the subscriber');
RESET ROLE;
CREATE FUNCTION pg_temp.summary(client text, cursor text DEFAULT NULL) RETURNS text LANGUAGE sql AS $$
    SELECT coalesce(string_agg(c.operation || ':' || coalesce(c.row_key ->> 'id', '-') || ':' || coalesce(c.user_id, '-'), ' '
                               ORDER BY c.commit_seq, c.change_id), '')
    FROM feed.changes_for(client, cursor, 1000) c
$$;
CREATE TEMP TABLE client_attempts AS SELECT pg_temp.fingerprint() AS tables;
SELECT is(pg_temp.fingerprint(), (SELECT tables FROM client_attempts), 'the refused client writes changed nothing');
SET LOCAL ROLE feedsec_alice;
SELECT is(pg_temp.summary('app'), 'INSERT:1:u1', 'alice reads her change');
SELECT is(pg_temp.summary('app', feed.current_cursor()), '', 'and acknowledges the end of the log');
SELECT is(feed.subscribe('app', 'feedsec.trades', start_cursor => '0/0'), '0/0', 'subscribing again from the start reads from there');
SELECT isnt((SELECT feed.format_cursor(cursor_seq, cursor_id) FROM feed.subscriptions WHERE client_id = 'app'), '0/0',
    'but never rewinds what she acknowledged');
SELECT throws_ok($$ LOCK TABLE feed.commit_gate $$, '42501', NULL, 'a client cannot take the commit gate, so no commit can be made to wait on her');
RESET ROLE;

-- Client ids are per owner; a subscription's secret is its owner's.
SET LOCAL ROLE feedsec_bob;
SELECT is(feed.subscribe('app', 'feedsec.trades', start_cursor => '0/0'), '0/0', 'bob may use the same client id on the same table');
SELECT is((SELECT count(*)::int FROM feed.subscriptions), 1, 'and sees only his own subscription');
SELECT is(feed.record_read((SELECT array_agg(id) FROM feed.subscriptions), ARRAY[gen_random_uuid()], NULL, NULL), 0,
    'record_read() with a wrong secret changes nothing');
RESET ROLE;
SELECT is((SELECT count(*)::int FROM feed.subscriptions WHERE client_id = 'app'), 2, 'two owners, one client id');
SET LOCAL ROLE feedsec_bob;
SELECT is(feed.record_read(ARRAY[(SELECT s.id FROM feed.subscriptions s LIMIT 1) - 1], ARRAY[gen_random_uuid()], NULL, NULL), 0,
    'bob cannot move alice''s cursor by guessing her subscription''s id');
RESET ROLE;

-- Filters are judged in UTC, whatever the sessions' time zones.
SET LOCAL ROLE feedsec_alice;
SET LOCAL TimeZone = 'America/New_York';
SELECT feed.subscribe('when', 'feedsec.trades', '{"at": "2024-01-01 10:00:00+00"}');
RESET ROLE;
SET LOCAL ROLE feedsec_writer;
SET LOCAL TimeZone = 'Asia/Tokyo';
INSERT INTO feedsec.trades VALUES (2, 'u1', 'open', 'calm', '2024-01-01 19:00:00+09');
RESET ROLE;
SET LOCAL ROLE feedsec_alice;
SELECT is(pg_temp.summary('when'), 'INSERT:2:u1', 'a timestamptz filter set in one zone matches a row written in another');
RESET ROLE;
RESET TimeZone;

-- Revoking and granting again loses no change.
SET LOCAL ROLE feedsec_alice;
SELECT feed.subscribe('sparse', 'feedsec.trades', '{"status": "rare"}');
RESET ROLE;
SET LOCAL ROLE feedsec_writer;
INSERT INTO feedsec.trades VALUES (3, 'u1', 'rare', 'calm', now()), (4, 'u1', 'open', 'calm', now());
RESET ROLE;
SELECT feed.revoke_access('feedsec_alice');
SET LOCAL ROLE feedsec_alice;
SELECT is(pg_temp.summary('sparse'), '', 'while her access is revoked, alice reads nothing');
RESET ROLE;
SELECT feed.grant_access('feedsec_alice', 'u1');
SET LOCAL ROLE feedsec_alice;
SELECT is(pg_temp.summary('sparse'), 'INSERT:3:u1', 'granted again, she still receives the change made before');
RESET ROLE;

-- A row moving to another user reaches a service as DELETE, then INSERT.
SET LOCAL ROLE feedsec_gateway;
SELECT feed.subscribe('all', 'feedsec.trades');
RESET ROLE;
SET LOCAL ROLE feedsec_writer;
UPDATE feedsec.trades SET user_id = 'u2' WHERE id = 4;
RESET ROLE;
SET LOCAL ROLE feedsec_gateway;
SELECT is(pg_temp.summary('all'), 'DELETE:4:u1 INSERT:4:u2', 'a service reader gets the DELETE of the old owner first');
SELECT ok((SELECT healthy FROM feed.health()), 'freshet_worker reads the feed''s health');
RESET ROLE;

-- A change of owner never stalls writes: capture keeps the old owner's rights until watched again.
ALTER TABLE feedsec.trades OWNER TO feedsec_other_admin;
SET LOCAL ROLE feedsec_writer;
SELECT lives_ok($$ INSERT INTO feedsec.trades VALUES (5, 'u1', 'open', 'calm', now()) $$, 'after a change of owner, writes to the watched table go on');
RESET ROLE;

-- Subscriptions cannot hold the log for ever.
UPDATE feed.commits SET committed_at = now() - interval '40 days';
SELECT cmp_ok(feed.prune_change_log(), '>', 0::bigint, 'changes older than max_retention are pruned even while subscriptions sit before them');
SET LOCAL ROLE feedsec_bob;
SELECT throws_ok($$ SELECT * FROM feed.changes_for('app') $$, '55000', NULL, 'and a reader behind them is told, never silently skipped');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
