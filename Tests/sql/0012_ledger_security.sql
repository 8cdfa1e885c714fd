-- Security of the ledger, and the event streams that used to leave its eventual tier diverged for
-- good: a triple's vault created with zero totals, shares that change while the term's totals do
-- not, and a price that changes on an empty vault. After a drain, verify() is empty for each.
BEGIN;
SELECT plan(21);

CREATE FUNCTION pg_temp.price(block bigint, log bigint, term text, curve bigint, share_price numeric, assets numeric, shares numeric)
    RETURNS void LANGUAGE sql AS $$
    INSERT INTO ledger.share_price_changed_events VALUES (block, log, 'tx' || block, term, curve, share_price, assets, shares)
$$;
CREATE FUNCTION pg_temp.drained_differences() RETURNS bigint LANGUAGE sql AS $$
    SELECT ledger.process_analytics_queue(1000000);
    SELECT count(*) FROM ledger.verify();
$$;
CREATE FUNCTION pg_temp.fingerprint() RETURNS text LANGUAGE plpgsql AS $$
DECLARE
    relation regclass;
    sums text := '';
    part text;
BEGIN
    FOR relation IN SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'ledger'::regnamespace AND c.relkind = 'r' ORDER BY c.relname LOOP
        EXECUTE format('SELECT md5(coalesce(string_agg(t::text, %L ORDER BY t::text), %L)) FROM %s t', ',', '', relation) INTO part;
        sums := sums || relation::text || '=' || part || ' ';
    END LOOP;
    RETURN sums;
END;
$$;
INSERT INTO ledger.atom_created_events VALUES (1, 0, 'tx1', 'alice', 'creator', 'Alice'), (1, 1, 'tx1', 'knows', 'creator', 'knows'),
    (1, 2, 'tx1', 'bob', 'creator', 'Bob');
INSERT INTO ledger.triple_created_events VALUES (2, 0, 'tx2', 'ab', 'ab-against', 'creator', 'alice', 'knows', 'bob');
SELECT is(pg_temp.drained_differences(), 0::bigint, 'a new triple verifies once drained');

-- The streams that diverged.
SELECT pg_temp.price(3, 0, 'ab', 1, 0, 0, 0);
SELECT is((SELECT count(*)::int FROM ledger.vault WHERE term_id = 'ab'), 1, 'a triple''s vault created with zero totals');
SELECT is((SELECT count(*)::int FROM ledger.analytics_queue WHERE term_id = 'ab'), 1, 'queues its analytics');
SELECT is(pg_temp.drained_differences(), 0::bigint, 'and verifies once drained');
SELECT pg_temp.price(4, 0, 'ab', 1, 0, 500, 1000);
SELECT is(pg_temp.drained_differences(), 0::bigint, 'assets arrive in it');
SELECT pg_temp.price(5, 0, 'ab', 1, 0, 500, 3000);
SELECT is((SELECT total_assets || '/' || total_market_cap FROM ledger.term WHERE term_id = 'ab'), '500/0', 'total_shares changed while the term''s totals stayed');
SELECT is(pg_temp.drained_differences(), 0::bigint, 'and the triple''s vault still verifies once drained');
SELECT pg_temp.price(6, 0, 'ab-against', 2, 0, 0, 0);
SELECT is(pg_temp.drained_differences(), 0::bigint, 'an empty counter vault on a curve the triple had no vault on verifies once drained');
SELECT pg_temp.price(7, 0, 'ab-against', 2, 2000000000000000000, 0, 0);
SELECT is((SELECT count(*)::int FROM ledger.analytics_queue WHERE term_id = 'ab-against'), 1, 'a price changed on that empty vault queues its analytics');
SELECT is(pg_temp.drained_differences(), 0::bigint, 'which verifies once drained too');
SELECT pg_temp.price(8, 0, 'alice', 1, 0, 0, 0);
SELECT is((SELECT count(*)::int FROM ledger.analytics_queue), 0, 'an atom''s vault queues no analytics: no triple depends on it');

-- Roles.
CREATE ROLE freshet_test_nobody;
CREATE ROLE freshet_test_client IN ROLE freshet_client;
CREATE ROLE freshet_test_worker IN ROLE freshet_worker;
CREATE ROLE freshet_test_admin IN ROLE freshet_admin;
CREATE TEMP TABLE before AS SELECT pg_temp.fingerprint() AS tables;
SET LOCAL ROLE freshet_test_nobody;
SELECT throws_ok($$ SELECT * FROM ledger.term $$, '42501', NULL, 'a role with no grants reads no aggregate');
SELECT throws_ok($$ SELECT pg_temp.price(9, 0, 'ab', 1, 1, 1, 1) $$, '42501', NULL, '... and ingests nothing');
RESET ROLE;
SET LOCAL ROLE freshet_test_client;
SELECT is((SELECT count(*)::int FROM ledger.term), 5, 'freshet_client reads the aggregates');
SELECT throws_ok($$ SELECT pg_temp.price(9, 0, 'ab', 1, 1, 1, 1) $$, '42501', NULL, 'but ingests nothing');
SELECT throws_ok($$ SELECT ledger.process_analytics_queue(10) $$, '42501', NULL, '... and drains nothing');
RESET ROLE;
SET LOCAL ROLE freshet_test_worker;
SELECT throws_ok($$ UPDATE ledger.vault SET total_assets = 0 $$, '42501', NULL, 'freshet_worker writes no aggregate by hand');
RESET ROLE;
SELECT is(pg_temp.fingerprint(), (SELECT tables FROM before), 'the refused attempts changed nothing');
SET LOCAL ROLE freshet_test_worker;
SELECT lives_ok($$ SELECT pg_temp.price(9, 0, 'ab', 1, 1000000000000000000, 700, 1000) $$, 'freshet_worker ingests events');
RESET ROLE;
SET LOCAL ROLE freshet_test_admin;
SELECT is((ledger.process_analytics_queue(100) ->> 'triples')::int, 1, 'freshet_admin drains the analytics');
RESET ROLE;
SELECT is(pg_temp.drained_differences(), 0::bigint, 'and everything verifies');

SELECT * FROM finish();
ROLLBACK;
