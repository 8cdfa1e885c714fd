-- The ledger at version 2: event tables, trigger-maintained aggregates, cascades, the analytics
-- queue and the oracle. Version 1 and the rollback between them are tested from Swift.
BEGIN;
SELECT plan(84);

CREATE FUNCTION pg_temp.deposit(block bigint, log bigint, receiver text, term text, curve bigint, after_fees numeric, total numeric)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO ledger.deposited_events VALUES (block, log, 'tx' || block, 'payer', receiver, term, curve, after_fees + 1, after_fees, total, total)
$$;
CREATE FUNCTION pg_temp.redeem(block bigint, log bigint, account text, term text, curve bigint, assets numeric, total numeric)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO ledger.redeemed_events VALUES (block, log, 'tx' || block, account, 'payee', term, curve, 1, total, assets, 0)
$$;
CREATE FUNCTION pg_temp.price(block bigint, log bigint, term text, curve bigint, share_price numeric, assets numeric, shares numeric)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO ledger.share_price_changed_events VALUES (block, log, 'tx' || block, term, curve, share_price, assets, shares)
$$;
CREATE FUNCTION pg_temp.strong_digest() RETURNS text LANGUAGE sql AS $$
    SELECT md5(concat_ws('|',
        (SELECT string_agg(a::text, ',' ORDER BY term_id) FROM ledger.atom a),
        (SELECT string_agg(t::text, ',' ORDER BY term_id) FROM ledger.triple t),
        (SELECT string_agg(p::text, ',' ORDER BY account_id, term_id, curve_id) FROM ledger.position p),
        (SELECT string_agg(v::text, ',' ORDER BY term_id, curve_id) FROM ledger.vault v),
        (SELECT string_agg(t::text, ',' ORDER BY term_id) FROM ledger.term t)))
$$;
CREATE FUNCTION pg_temp.drain() RETURNS jsonb LANGUAGE sql AS $$ SELECT ledger.process_analytics_queue(1000000) $$;
CREATE FUNCTION pg_temp.differences() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM ledger.verify() $$;

-- Structure.
SELECT is((SELECT string_agg(relname || ':' || relkind::text, ' ' ORDER BY relname) FROM pg_class
           WHERE relnamespace = 'ledger'::regnamespace AND relname IN (SELECT name FROM ledger.aggregates)),
    'atom:r position:r predicate_object:r subject_predicate:r term:r triple:r triple_term:r triple_vault:r vault:r',
    'version 2: all nine aggregates are tables');
SELECT is((SELECT count(*)::int FROM ledger.aggregates a WHERE to_regclass('ledger.' || a.name || '_definition') IS NULL), 0,
    'each keeps its defining query as a plain view');
SELECT is((SELECT count(*)::int FROM pg_index i JOIN pg_class c ON c.oid = i.indrelid
           WHERE i.indisprimary AND c.relname IN ('atom_created_events', 'triple_created_events', 'deposited_events', 'redeemed_events', 'share_price_changed_events')
             AND c.relnamespace = 'ledger'::regnamespace
             AND (SELECT array_agg(attname ORDER BY attnum) FROM pg_attribute WHERE attrelid = c.oid AND attnum = ANY (i.indkey)) = '{block_number,log_index}'),
    5, 'every event table is keyed by (block_number, log_index)');
SELECT is((SELECT count(*)::int FROM pg_proc p WHERE p.pronamespace = 'ledger'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL), 0,
    'every ledger function has a comment');
SELECT ok((SELECT bool_and(p.prosecdef AND p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp']) FROM pg_proc p
           WHERE p.pronamespace = 'ledger'::regnamespace AND p.proname IN ('apply_deposits', 'apply_redeems', 'apply_share_price_events', 'apply_atoms_created', 'apply_triples_created',
                                                                          'check_event_terms', 'check_atom_terms', 'check_triple_terms', 'verify', 'process_analytics_queue')),
    'the trigger functions, verify() and the drain are SECURITY DEFINER with a pinned search_path');
CREATE EXTENSION plpgsql_check;
SELECT is((SELECT count(*)::int FROM pg_trigger tg JOIN pg_class c ON c.oid = tg.tgrelid
           CROSS JOIN LATERAL plpgsql_check_function(tg.tgfoid, tg.tgrelid, oldtable => tg.tgoldtable, newtable => tg.tgnewtable,
                                                     extra_warnings => false) r
           WHERE c.relnamespace = 'ledger'::regnamespace AND NOT tg.tgisinternal),
    0, 'plpgsql_check finds nothing in the ledger''s trigger functions, checked against their tables and transition tables');
SELECT is((SELECT count(*)::int FROM pg_proc p CROSS JOIN LATERAL plpgsql_check_function(p.oid, extra_warnings => false) r
           WHERE p.pronamespace = 'ledger'::regnamespace AND p.prolang = (SELECT oid FROM pg_language WHERE lanname = 'plpgsql')
             AND p.prorettype <> 'trigger'::regtype),
    0, 'nor in its other PL/pgSQL functions');
SELECT is((SELECT lock_key FROM jobs.schedules WHERE name = 'ledger-analytics' AND schedule = '* * * * *'), 45::bigint,
    'pg_cron drains the analytics queue every minute, single-flight on lock 45');
SELECT throws_ok($$ SELECT * FROM ledger.refresh_all_views() $$, '42809', NULL, 'refresh_all_views() refuses: there are no views to refresh');
SELECT is(pg_temp.differences(), 0::bigint, 'an empty ledger verifies');

-- Creation events.
INSERT INTO ledger.atom_created_events VALUES (1, 0, 'tx1', 'alice', 'creator', 'Alice'), (1, 1, 'tx1', 'knows', 'creator', 'knows'),
                                              (1, 2, 'tx1', 'bob', 'creator', 'Bob'), (1, 3, 'tx1', 'carol', 'creator', 'Carol');
SELECT results_eq($$ SELECT term_id, data, created_block, created_log_index FROM ledger.atom ORDER BY term_id $$,
    $$ VALUES ('alice', 'Alice', 1::bigint, 0::bigint), ('bob', 'Bob', 1, 2), ('carol', 'Carol', 1, 3), ('knows', 'knows', 1, 1) $$,
    'an atom_created event adds the atom');
SELECT results_eq($$ SELECT kind, total_assets, total_position_count FROM ledger.term WHERE term_id = 'alice' $$,
    $$ VALUES ('atom', 0::numeric, 0::bigint) $$, 'and its term, with zero totals');
INSERT INTO ledger.triple_created_events VALUES (2, 0, 'tx2', 'ab', 'ab-against', 'creator', 'alice', 'knows', 'bob'),
                                                (2, 1, 'tx2', 'ac', 'ac-against', 'creator', 'alice', 'knows', 'carol');
SELECT results_eq($$ SELECT term_id, counter_term_id, subject_id, predicate_id, object_id FROM ledger.triple ORDER BY term_id $$,
    $$ VALUES ('ab', 'ab-against', 'alice', 'knows', 'bob'), ('ac', 'ac-against', 'alice', 'knows', 'carol') $$,
    'a triple_created event adds the triple');
SELECT results_eq($$ SELECT term_id, kind FROM ledger.term WHERE kind <> 'atom' ORDER BY term_id $$,
    $$ VALUES ('ab', 'triple'), ('ab-against', 'counter_triple'), ('ac', 'triple'), ('ac-against', 'counter_triple') $$,
    'with a term for it and one for its counter term');
SELECT is((SELECT count(*)::int FROM ledger.analytics_queue WHERE term_id IN ('ab', 'ac')), 2, 'and queues its analytics');
SELECT is((SELECT count(*)::int FROM ledger.triple_term), 0, 'the analytics wait for the queue');
SELECT is(pg_temp.drain() ->> 'triples', '2', 'process_analytics_queue() handles both triples');
SELECT results_eq($$ SELECT predicate_id, object_id, triple_count FROM ledger.predicate_object ORDER BY 1, 2 $$,
    $$ VALUES ('knows', 'bob', 1::bigint), ('knows', 'carol', 1::bigint) $$, 'predicate_object counts the triples');
SELECT results_eq($$ SELECT subject_id, predicate_id, triple_count FROM ledger.subject_predicate $$,
    $$ VALUES ('alice', 'knows', 2::bigint) $$, 'subject_predicate too');

-- Deposits and redeems: position -> vault -> term.
SELECT FROM pg_temp.deposit(10, 0, 'dave', 'ab', 1, 100, 90);
SELECT results_eq($$ SELECT shares, total_deposit_assets_after_fees, deposit_count, last_deposit_block, last_deposit_log_index FROM ledger.position WHERE account_id = 'dave' $$,
    $$ VALUES (90::numeric, 100::numeric, 1::bigint, 10::bigint, 0::bigint) $$, 'a deposit opens the receiver''s position');
SELECT results_eq($$ SELECT position_count, total_assets FROM ledger.vault WHERE term_id = 'ab' AND curve_id = 1 $$,
    $$ VALUES (1::bigint, 0::numeric) $$, 'and its vault, counting one holder before any price');
SELECT is((SELECT total_position_count FROM ledger.term WHERE term_id = 'ab'), 1::bigint, 'the term counts the holder');
SELECT FROM pg_temp.deposit(11, 0, 'dave', 'ab', 1, 50, 135);
SELECT results_eq($$ SELECT shares, total_deposit_assets_after_fees, deposit_count, last_deposit_block FROM ledger.position WHERE account_id = 'dave' $$,
    $$ VALUES (135::numeric, 150::numeric, 2::bigint, 11::bigint) $$, 'a second deposit takes the new total_shares and adds to the totals');
SELECT is((SELECT position_count FROM ledger.vault WHERE term_id = 'ab' AND curve_id = 1), 1::bigint, 'the same holder is counted once');
SELECT FROM pg_temp.deposit(12, 0, 'erin', 'ab', 1, 10, 9);
SELECT is((SELECT position_count FROM ledger.vault WHERE term_id = 'ab' AND curve_id = 1), 2::bigint, 'a second holder is counted');
SELECT FROM pg_temp.redeem(13, 0, 'erin', 'ab', 1, 9, 0);
SELECT results_eq($$ SELECT shares, total_redeem_assets, redeem_count, last_redeem_block FROM ledger.position WHERE account_id = 'erin' $$,
    $$ VALUES (0::numeric, 9::numeric, 1::bigint, 13::bigint) $$, 'a redeem moves the redeemer''s position');
SELECT is((SELECT position_count FROM ledger.vault WHERE term_id = 'ab' AND curve_id = 1), 1::bigint, 'a position redeemed to zero stops counting');
SELECT is((SELECT total_position_count FROM ledger.term WHERE term_id = 'ab'), 1::bigint, 'in the term too');
SELECT FROM pg_temp.deposit(14, 0, 'erin', 'ab', 2, 7, 7);
SELECT results_eq($$ SELECT curve_id, position_count FROM ledger.vault WHERE term_id = 'ab' ORDER BY curve_id $$,
    $$ VALUES (1::bigint, 1::bigint), (2::bigint, 1::bigint) $$, 'each curve is its own vault');
SELECT is((SELECT total_position_count FROM ledger.term WHERE term_id = 'ab'), 2::bigint, 'and the term sums them');

-- Out of order: last write wins for state, sums for totals.
SELECT FROM pg_temp.deposit(5, 0, 'dave', 'ab', 1, 1000, 1);
SELECT results_eq($$ SELECT shares, total_deposit_assets_after_fees, deposit_count, last_deposit_block FROM ledger.position WHERE account_id = 'dave' $$,
    $$ VALUES (135::numeric, 1150::numeric, 3::bigint, 11::bigint) $$, 'a late, older deposit adds to the totals but never overwrites newer shares');
SELECT FROM pg_temp.redeem(20, 0, 'frank', 'ac', 1, 5, 0);
SELECT FROM pg_temp.deposit(19, 0, 'frank', 'ac', 1, 5, 5);
SELECT results_eq($$ SELECT shares, deposit_count, redeem_count FROM ledger.position WHERE account_id = 'frank' $$,
    $$ VALUES (0::numeric, 1::bigint, 1::bigint) $$, 'a redeem that arrived before its older deposit keeps its later zero');
SELECT is((SELECT position_count FROM ledger.vault WHERE term_id = 'ac' AND curve_id = 1), 0::bigint, 'so the position does not count');
SELECT FROM pg_temp.deposit(21, 5, 'frank', 'ac', 1, 3, 3);
SELECT FROM pg_temp.redeem(21, 4, 'frank', 'ac', 1, 3, 0);
SELECT is((SELECT shares FROM ledger.position WHERE account_id = 'frank'), 3::numeric, 'order within a block is by log_index');
SELECT is((SELECT position_count FROM ledger.vault WHERE term_id = 'ac' AND curve_id = 1), 1::bigint, 'and decides who counts');

-- Share prices: vault -> term.
SELECT FROM pg_temp.price(30, 0, 'ab', 1, 2000000000000000000, 500, 250);
SELECT results_eq($$ SELECT share_price, total_assets, total_shares, market_cap, last_price_block FROM ledger.vault WHERE term_id = 'ab' AND curve_id = 1 $$,
    $$ VALUES (2000000000000000000::numeric, 500::numeric, 250::numeric, 500::numeric, 30::bigint) $$, 'a price change sets the vault''s price state');
SELECT results_eq($$ SELECT total_assets, total_market_cap FROM ledger.term WHERE term_id = 'ab' $$,
    $$ VALUES (500::numeric, 500::numeric) $$, 'and moves its term''s totals');
SELECT FROM pg_temp.price(29, 0, 'ab', 1, 9000000000000000000, 9000, 1);
SELECT is((SELECT total_assets FROM ledger.vault WHERE term_id = 'ab' AND curve_id = 1), 500::numeric, 'an older price change arriving late is ignored');
SELECT is((SELECT total_assets FROM ledger.term WHERE term_id = 'ab'), 500::numeric, 'and leaves the term alone');
SELECT FROM pg_temp.price(31, 0, 'ab', 2, 1000000000000000000, 70, 70);
SELECT FROM pg_temp.price(32, 0, 'ab', 1, 1000000000000000000, 300, 300);
SELECT results_eq($$ SELECT total_assets, total_market_cap FROM ledger.term WHERE term_id = 'ab' $$,
    $$ VALUES (370::numeric, 370::numeric) $$, 'the term sums its vaults across curves, by difference');
INSERT INTO ledger.share_price_changed_events VALUES (40, 2, 'tx40', 'ac', 1, 1000000000000000000, 30, 30), (40, 1, 'tx40', 'ac', 1, 1000000000000000000, 20, 20),
                                                     (40, 3, 'tx40', 'ac-against', 1, 1000000000000000000, 8, 8);
SELECT results_eq($$ SELECT term_id, total_assets FROM ledger.vault WHERE term_id LIKE 'ac%' ORDER BY 1 $$,
    $$ VALUES ('ac', 30::numeric), ('ac-against', 8::numeric) $$, 'a multi-row statement applies the latest event per vault');
SELECT is(pg_temp.differences(), (SELECT count(*) FROM ledger.verify() WHERE tier = 'eventual'), 'the strong aggregates match their definitions at once');
SELECT FROM pg_temp.drain();
SELECT is(pg_temp.differences(), 0::bigint, 'and the analytics once the queue is drained');
SELECT results_eq($$ SELECT curve_id, total_shares, counter_total_shares, total_assets FROM ledger.triple_vault WHERE term_id = 'ac' $$,
    $$ VALUES (1::bigint, 30::numeric, 8::numeric, 38::numeric) $$, 'triple_vault combines the triple''s vault with its counter vault');

-- A batch in one statement equals the same events one by one.
INSERT INTO ledger.deposited_events
SELECT 100 + n % 7, n, 'batch', 'payer', 'holder' || (n % 5), CASE WHEN n % 2 = 0 THEN 'ab' ELSE 'ac-against' END, 1 + n % 2, 10, 9, 1, n % 4
FROM generate_series(1, 60) n;
INSERT INTO ledger.redeemed_events
SELECT 100 + n % 9, 1000 + n, 'batch', 'holder' || (n % 5), 'payee', CASE WHEN n % 2 = 0 THEN 'ab' ELSE 'ac-against' END, 1 + n % 2, 1, n % 3, 2, 0
FROM generate_series(1, 40) n;
SELECT is((SELECT count(*) FROM ledger.verify() WHERE tier = 'strong'), 0::bigint, 'multi-row statements with repeated keys collapse correctly');
SELECT FROM pg_temp.drain();
SELECT is(pg_temp.differences(), 0::bigint, 'verify() is empty on consistent data');

-- Replays are no-ops.
CREATE TEMP TABLE before_replay AS SELECT pg_temp.strong_digest() AS digest;
INSERT INTO ledger.deposited_events VALUES (10, 0, 'tx10', 'payer', 'dave', 'ab', 1, 101, 100, 90, 90) ON CONFLICT (block_number, log_index) DO NOTHING;
INSERT INTO ledger.share_price_changed_events VALUES (30, 0, 'tx30', 'ab', 1, 2000000000000000000, 500, 250) ON CONFLICT DO NOTHING;
INSERT INTO ledger.atom_created_events VALUES (1, 0, 'tx1', 'alice', 'creator', 'Alice') ON CONFLICT DO NOTHING;
SELECT is(pg_temp.strong_digest(), (SELECT digest FROM before_replay), 'replayed events inserted with ON CONFLICT DO NOTHING change nothing');
SELECT throws_ok($$ SELECT pg_temp.deposit(10, 0, 'dave', 'ab', 1, 100, 90) $$, '23505', NULL, 'a plain replay is a unique violation');
SELECT is(pg_temp.strong_digest(), (SELECT digest FROM before_replay), 'and changes nothing either');

-- Bad input: a clear exception, and the aggregates stay as they were.
SELECT throws_ok($$ SELECT pg_temp.deposit(50, 0, 'dave', 'nobody', 1, 10, 10) $$, '23503', 'deposited_events: unknown term nobody',
    'a deposit into an unknown term is refused');
SELECT throws_ok($$ SELECT pg_temp.redeem(50, 0, 'dave', 'nobody', 1, 10, 0) $$, '23503', 'redeemed_events: unknown term nobody',
    'a redeem too');
SELECT throws_ok($$ SELECT pg_temp.price(50, 0, 'nobody', 1, 1, 1, 1) $$, '23503', 'share_price_changed_events: unknown term nobody',
    'and a price change');
SELECT throws_ok($$ INSERT INTO ledger.deposited_events
                    SELECT 60, n, 'tx', 'payer', 'dave', CASE WHEN n = 3 THEN 'ghost' ELSE 'ab' END, 1, 1, 1, 1, 1 FROM generate_series(1, 5) n $$,
    '23503', 'deposited_events: unknown term ghost', 'one unknown term fails the whole multi-row statement');
SELECT throws_ok($$ SELECT pg_temp.deposit(51, 0, 'dave', 'ab', 1, -5, 10) $$, '23514', NULL, 'a negative amount is refused');
SELECT throws_ok($$ SELECT pg_temp.price(51, 0, 'ab', 1, -1, 1, 1) $$, '23514', NULL, 'a negative price too');
SELECT throws_ok($$ SELECT pg_temp.deposit(52, 0, 'dave', NULL, 1, 5, 10) $$, '23502', NULL, 'a NULL term is refused');
SELECT throws_ok($$ SELECT pg_temp.deposit(NULL, 0, 'dave', 'ab', 1, 5, 10) $$, '23502', NULL, 'a NULL block number too');
SELECT throws_ok($$ SELECT pg_temp.deposit(52, 0, NULL, 'ab', 1, 5, 10) $$, '23502', NULL, 'and a NULL account');
SELECT throws_ok($$ INSERT INTO ledger.triple_created_events VALUES (53, 0, 'tx', 'bad', 'bad-against', 'c', 'alice', 'likes', 'bob') $$,
    '23503', 'triple_created_events: unknown term likes', 'a triple over an unknown term is refused');
SELECT throws_ok($$ INSERT INTO ledger.triple_created_events VALUES (53, 1, 'tx', 'bob', 'bob-against', 'c', 'alice', 'knows', 'carol') $$,
    '23505', NULL, 'a triple that reuses an atom''s id is refused');
SELECT throws_ok($$ INSERT INTO ledger.atom_created_events VALUES (53, 2, 'tx', 'ab-against', 'c', 'x') $$,
    '23505', NULL, 'an atom that reuses a counter term''s id is refused');
SELECT throws_ok($$ UPDATE ledger.deposited_events SET assets = 0 $$, '0A000', NULL, 'events cannot be edited');
SELECT throws_ok($$ DELETE FROM ledger.share_price_changed_events $$, '0A000', NULL, 'or deleted');
SELECT is(pg_temp.strong_digest(), (SELECT digest FROM before_replay), 'no refused event changed an aggregate');
SELECT is(pg_temp.differences(), 0::bigint, 'and the ledger still verifies');

-- The oracle finds planted corruption, in either direction.
SAVEPOINT corrupt;
UPDATE ledger.position SET total_deposit_assets_after_fees = total_deposit_assets_after_fees + 1 WHERE account_id = 'dave';
SELECT results_eq($$ SELECT aggregate, difference, row_data ->> 'account_id' FROM ledger.verify() ORDER BY difference $$,
    $$ VALUES ('position', 'missing', 'dave'), ('position', 'unexpected', 'dave') $$,
    'verify() reports a corrupted position as the row it should be and the row it is');
ROLLBACK TO corrupt;
DELETE FROM ledger.vault WHERE term_id = 'ac' AND curve_id = 1;
SELECT ok(EXISTS (SELECT FROM ledger.verify() WHERE aggregate = 'vault' AND difference = 'missing' AND row_data ->> 'term_id' = 'ac'),
    'a missing vault row is found');
ROLLBACK TO corrupt;
INSERT INTO ledger.subject_predicate VALUES ('zed', 'knows', 1, 0, 0);
SELECT results_eq($$ SELECT aggregate, tier, difference FROM ledger.verify() $$, $$ VALUES ('subject_predicate', 'eventual', 'unexpected') $$,
    'a stray analytics row is found and named with its tier');
ROLLBACK TO corrupt;
SELECT is(pg_temp.differences(), 0::bigint, 'and nothing else was reported');

-- The analytics drain.
SELECT throws_ok($$ SELECT ledger.process_analytics_queue(0) $$, '22023', NULL, 'the drain takes a positive limit');
SELECT FROM pg_temp.deposit(70, 0, 'gina', 'ab', 1, 5, 5);
SELECT FROM pg_temp.deposit(70, 1, 'hank', 'ac', 1, 5, 5);
SELECT results_eq($$ SELECT entries, terms, oldest_age IS NOT NULL FROM ledger.analytics_backlog() $$,
    $$ VALUES (2::bigint, 2::bigint, true) $$, 'analytics_backlog() reports what is queued');
SELECT is(ledger.process_analytics_queue(1) ->> 'entries', '1', 'it takes at most the limit, oldest first');
SELECT is((SELECT count(*)::int FROM ledger.analytics_queue), 1, 'and leaves the rest queued');
SELECT is(pg_temp.drain() ->> 'entries', '1', 'for the next call');
SELECT is(pg_temp.differences(), 0::bigint, 'after which everything verifies');
SELECT is(pg_temp.drain() ->> 'entries', '0', 'an empty queue is a no-op');
SELECT results_eq($$ SELECT entries, oldest_age FROM ledger.analytics_backlog() $$, $$ VALUES (0::bigint, NULL::interval) $$,
    'and the backlog is empty');

-- Privileges: an ingesting role needs the schema and INSERT on the event tables, nothing more.
CREATE ROLE freshet_test_ingest;
GRANT USAGE ON SCHEMA ledger TO freshet_test_ingest;
GRANT INSERT ON ledger.deposited_events TO freshet_test_ingest;
SET LOCAL ROLE freshet_test_ingest;
SELECT lives_ok($$ SELECT pg_temp.deposit(80, 0, 'ivan', 'ab', 1, 5, 5) $$, 'a role with INSERT on an event table ingests');
SELECT throws_ok($$ UPDATE ledger.position SET shares = 0 $$, '42501', NULL, 'but cannot write an aggregate');
SELECT throws_ok($$ SELECT * FROM ledger.deposited_events $$, '42501', NULL, 'or read the events');
SELECT throws_ok($$ SELECT ledger.process_analytics_queue(10) $$, '42501', NULL, 'or drain the queue');
SELECT throws_ok($$ SELECT * FROM ledger.position $$, '42501', NULL, 'or read the aggregates, which are for the bundle''s roles');
RESET ROLE;
GRANT freshet_client TO freshet_test_ingest;
SET LOCAL ROLE freshet_test_ingest;
SELECT is((SELECT shares FROM ledger.position WHERE account_id = 'ivan'), 5::numeric, 'a freshet_client reads the aggregates');
RESET ROLE;
GRANT freshet_worker TO freshet_test_ingest;
SET LOCAL ROLE freshet_test_ingest;
SELECT is((SELECT count(*) FROM ledger.verify() WHERE tier = 'strong'), 0::bigint, 'and a freshet_worker can run verify()');
RESET ROLE;

SELECT * FROM finish();
ROLLBACK;
