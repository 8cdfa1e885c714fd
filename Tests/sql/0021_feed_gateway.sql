-- The gateway's fan-out: feed.deliveries() names, for each change, exactly the groups of
-- subscriptions feed.changes_for() would give it to (checked against changes_for itself, client by
-- client, with each subscription as it is stored as a group); a role bound to a user gets that
-- user's rows whatever groups it names; acknowledgements in batches move cursors forward only;
-- disconnected clients turn inactive until they subscribe again. One transaction, so the commit
-- stamp is made immediate.
BEGIN;
SELECT plan(25);
SET CONSTRAINTS feed.commits_stamp IMMEDIATE;

CREATE ROLE gw_owner IN ROLE freshet_admin;
CREATE ROLE gw_gateway IN ROLE freshet_client;
CREATE ROLE gw_alice IN ROLE freshet_client;
CREATE ROLE gw_nobody;
CREATE SCHEMA gw AUTHORIZATION gw_owner;
GRANT USAGE ON SCHEMA gw TO gw_gateway, gw_alice, gw_nobody;
SET LOCAL ROLE gw_owner;
CREATE TABLE gw.trades (id int PRIMARY KEY, user_id text, status text);
CREATE TABLE gw.prices (symbol text PRIMARY KEY, price numeric);
DO $$ BEGIN
    PERFORM feed.watch('gw.trades', 'user_id'), feed.watch('gw.prices');
    PERFORM feed.grant_access('gw_gateway', NULL), feed.grant_access('gw_alice', 'a');
END $$;
RESET ROLE;

SET LOCAL ROLE gw_gateway;
DO $$ BEGIN
    PERFORM feed.subscribe('open-a', 'gw.trades', '{"status": ["open", "pending"]}', 'a', '0/0');
    PERFORM feed.subscribe('all-b', 'gw.trades', '{}', 'b', '0/0');
    PERFORM feed.subscribe('service', 'gw.trades', '{}', NULL, '0/0');
    PERFORM feed.subscribe('service', 'gw.prices', '{"symbol": "X"}', NULL, '0/0');
    PERFORM feed.subscribe('gone', 'gw.trades', '{}', NULL, '0/0');
END $$;
RESET ROLE;
SET LOCAL ROLE gw_alice;
DO $$ BEGIN PERFORM feed.subscribe('alices-own', 'gw.trades', '{}', 'a', '0/0'); END $$;
RESET ROLE;

INSERT INTO gw.trades VALUES (1, 'a', 'open'), (2, 'b', 'open'), (3, 'a', 'closed');
UPDATE gw.trades SET status = 'closed' WHERE id = 1;   -- leaves open-a's filter: still delivered
UPDATE gw.trades SET user_id = 'b' WHERE id = 3;        -- a DELETE for a, an INSERT for b
INSERT INTO gw.prices VALUES ('X', 1), ('Y', 2);
TRUNCATE gw.prices;

SET LOCAL ROLE gw_gateway;
SELECT is(feed.disconnect(ARRAY['gone']), 1, 'disconnect marks a client''s subscriptions inactive');
SELECT is((SELECT is_active FROM feed.subscriptions WHERE client_id = 'gone'), false, '... so they no longer hold the log back');
-- The gateway's groups: here each of its active subscriptions, as stored, is one group.
CREATE TEMP TABLE held ON COMMIT DROP AS
    SELECT row_number() OVER (ORDER BY s.client_id, s.table_id)::integer AS n, s.client_id, s.table_id, s.filters, s.user_id
    FROM feed.subscriptions s WHERE s.is_active;
CREATE TEMP TABLE fanned ON COMMIT DROP AS
    SELECT d.*, ARRAY(SELECT h.client_id FROM held h WHERE h.n = ANY (d.groups)) AS client_ids
    FROM feed.deliveries('0/0', (SELECT array_agg(table_id ORDER BY n) FROM held), (SELECT array_agg(filters ORDER BY n) FROM held),
                         (SELECT array_agg(user_id ORDER BY n) FROM held)) d;
SELECT is((SELECT count(*)::int FROM held), 4, 'the gateway holds its four active subscriptions, not alice''s');
SELECT is((SELECT array_agg(change_id ORDER BY change_id) FROM fanned), (SELECT array_agg(change_id ORDER BY commit_seq, change_id) FROM fanned),
          'changes come in commit order');
-- Each client receives from the fan-out exactly what changes_for() would give it.
SELECT is((SELECT array_agg(change_cursor ORDER BY commit_seq, change_id) FROM fanned WHERE client = ANY (client_ids)),
          (SELECT array_agg(change_cursor ORDER BY commit_seq, change_id) FROM feed.changes_for(client, '0/0')),
          format('the fan-out gives %s what changes_for gives it', client))
FROM unnest(ARRAY['open-a', 'all-b', 'service']) client;
SELECT is((SELECT array_agg(operation || ':' || coalesce(row_key ->> 'id', '-') ORDER BY change_id) FROM fanned WHERE 'open-a' = ANY (client_ids)),
          ARRAY['INSERT:1', 'UPDATE:1'], 'open-a gets its open trade and the update that closed it, nothing of b''s');
SELECT is((SELECT array_agg(operation || ':' || coalesce(row_key ->> 'symbol', '-') ORDER BY change_id) FROM fanned WHERE table_name = 'gw.prices'),
          ARRAY['INSERT:X', 'TRUNCATE:-'], 'a price filter passes X, and a TRUNCATE goes to every subscriber of the table');
SELECT is((SELECT array_agg(change_cursor ORDER BY commit_seq, change_id)
           FROM feed.deliveries('0/0', ARRAY['gw.trades'::regclass::oid, 'gw.trades'::regclass::oid], ARRAY['{}', '{"status": ["open"]}']::jsonb[], ARRAY['b', 'b'])
           WHERE groups = ARRAY[1, 2]),
          (SELECT array_agg(change_cursor ORDER BY commit_seq, change_id) FROM fanned WHERE 'all-b' = ANY (client_ids) AND row_data ->> 'status' = 'open'),
          'a change for two groups names both');
SELECT is((SELECT count(*)::int FROM feed.deliveries('0/0', ARRAY['gw.trades'::regclass::oid], ARRAY['{}'::jsonb], ARRAY['b'])),
          (SELECT count(*)::int FROM fanned WHERE 'all-b' = ANY (client_ids)), 'the groups named are the only ones matched');
SELECT is((SELECT count(*)::int FROM feed.deliveries('0/0', '{}', '{}', '{}')), 0, 'no group, no delivery');
SELECT is((SELECT count(*)::int FROM feed.deliveries('0/0', ARRAY['gw.trades'::regclass::oid], ARRAY['{}'::jsonb], ARRAY[NULL], 2)), 2,
          'max_changes bounds the page');
SELECT throws_ok($$ SELECT * FROM feed.deliveries('0/0', '{}', '{}', '{}', 0) $$, '22023', NULL, 'max_changes below 1 is refused');
SELECT throws_ok($$ SELECT * FROM feed.deliveries('0/0', ARRAY[1::oid], '{}', ARRAY[NULL]) $$, '22023', NULL, 'arrays of different lengths are refused');
SELECT throws_ok($$ SELECT * FROM feed.deliveries('0/0', ARRAY[1::oid], ARRAY[NULL::jsonb], ARRAY[NULL]) $$, '22023', NULL,
                 'a NULL filter (it would match every row) is refused');
SELECT throws_ok($$ SELECT * FROM feed.deliveries('0/0', ARRAY[1::oid], ARRAY['{"status": "open"}'::jsonb], ARRAY[NULL]) $$, '22023', NULL,
                 'a filter value that is not a list is refused');
RESET ROLE;

-- A role bound to user a names a group for every user: row-level security still gives it a's rows only.
SET LOCAL ROLE gw_alice;
SELECT is((SELECT array_agg(DISTINCT user_id) FROM feed.deliveries('0/0', ARRAY['gw.trades'::regclass::oid], ARRAY['{}'::jsonb], ARRAY[NULL])),
          ARRAY['a'], 'a bound role receives its own user''s rows, whatever group it names');
RESET ROLE;

SET LOCAL ROLE gw_gateway;
-- Acknowledgements in one call, forward only, never past the end of the log.
SELECT is(feed.acknowledge(ARRAY['all-b', 'service'], ARRAY[(SELECT max(change_cursor) FROM fanned), (SELECT min(change_cursor) FROM fanned)]), 3,
          'one call acknowledges several clients (service has two subscriptions)');
SELECT is(feed.acknowledge(ARRAY['all-b'], ARRAY['0/0']), 1, 'acknowledging an earlier cursor is accepted ...');
SELECT is((SELECT feed.format_cursor(cursor_seq, cursor_id) FROM feed.subscriptions WHERE client_id = 'all-b'), (SELECT max(change_cursor) FROM fanned),
          '... and does not move the cursor back');
SELECT throws_ok($$ SELECT feed.acknowledge(ARRAY['all-b'], ARRAY['999999/1']) $$, '22023', NULL, 'a cursor beyond the end of the log is refused');
SELECT is(feed.subscribe('gone', 'gw.trades', '{}', NULL), (SELECT feed.format_cursor(cursor_seq, cursor_id) FROM feed.subscriptions WHERE client_id = 'gone'),
          'a disconnected client subscribes again ...');
SELECT is((SELECT is_active FROM feed.subscriptions WHERE client_id = 'gone'), true, '... and is active again');
RESET ROLE;

SET LOCAL ROLE gw_nobody;
SELECT throws_ok($$ SELECT * FROM feed.deliveries('0/0', '{}', '{}', '{}') $$, '42501', NULL, 'a role with no grants cannot fan out');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
