-- The order queue, stats cache, OHLC snapshots and cleanup.
BEGIN;
SELECT plan(38);

INSERT INTO jobs.issuers (ticker, name, current_price, shares_outstanding) VALUES
    ('AAA', 'Alpha', 10, 1000000), ('BBB', 'Beta', 2.5, 500000), ('IDLE', 'Idle', 1, 0);
INSERT INTO jobs.balances (user_id, cash) VALUES
    ('00000000-0000-0000-0000-000000000001', 1000),
    ('00000000-0000-0000-0000-000000000002', 0);
INSERT INTO jobs.holdings (user_id, ticker, shares) VALUES ('00000000-0000-0000-0000-000000000002', 'BBB', 100);

CREATE FUNCTION pg_temp.order_outcome(kind text, ticker text, amount numeric, who int) RETURNS text
    LANGUAGE plpgsql AS $$
DECLARE
    placed bigint;
BEGIN
    INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
    VALUES (format('00000000-0000-0000-0000-%s', lpad(who::text, 12, '0'))::uuid, ticker, kind, amount)
    RETURNING id INTO placed;
    PERFORM jobs.process_next_queue_order();
    RETURN (SELECT status || coalesce(': ' || failure_reason, '') FROM jobs.order_queue WHERE id = placed);
END;
$$;
CREATE FUNCTION pg_temp.cash(who int) RETURNS numeric LANGUAGE sql AS $$
    SELECT cash FROM jobs.balances WHERE user_id = format('00000000-0000-0000-0000-%s', lpad(who::text, 12, '0'))::uuid
$$;
CREATE FUNCTION pg_temp.shares(who int, symbol text) RETURNS numeric LANGUAGE sql AS $$
    SELECT coalesce(sum(shares), 0) FROM jobs.holdings
    WHERE user_id = format('00000000-0000-0000-0000-%s', lpad(who::text, 12, '0'))::uuid AND ticker = symbol
$$;
CREATE FUNCTION pg_temp.total_value() RETURNS numeric LANGUAGE sql AS $$
    SELECT (SELECT sum(cash) FROM jobs.balances)
         + (SELECT coalesce(sum(h.shares * i.current_price), 0) FROM jobs.holdings h JOIN jobs.issuers i USING (ticker))
$$;
CREATE TEMP TABLE value_before AS SELECT pg_temp.total_value() AS total;

-- Each outcome.
SELECT is(jobs.process_next_queue_order(), NULL, 'nothing pending: NULL');
SELECT is(pg_temp.order_outcome('buy', 'AAA', 100, 1), 'completed', 'a buy within funds completes');
SELECT is(pg_temp.cash(1), 900::numeric, 'the buy spends its amount');
SELECT is(pg_temp.shares(1, 'AAA'), 10::numeric, 'and credits shares at the current price');
SELECT is((SELECT shares || ' @ ' || price || ' = ' || amount FROM jobs.trades ORDER BY id DESC LIMIT 1),
    '10.000000 @ 10.000000 = 100.000000000000', 'and records the trade');
SELECT is(pg_temp.order_outcome('sell', 'BBB', 50, 2), 'completed', 'a sell within holdings completes');
SELECT is(pg_temp.cash(2), 50::numeric, 'the sell raises its amount');
SELECT is(pg_temp.shares(2, 'BBB'), 80::numeric, 'and debits shares');
SELECT is(pg_temp.order_outcome('buy', 'AAA', 1000, 1), 'failed: insufficient funds: 1000.000000000000 needed, 900.000000000000 available',
    'a buy beyond funds fails with a reason');
SELECT is(pg_temp.cash(1), 900::numeric, 'and changes no balance');
SELECT is(pg_temp.order_outcome('sell', 'AAA', 200, 1), 'failed: insufficient holdings: 20.000000 shares needed, 10.000000 held',
    'a sell beyond holdings fails with a reason');
SELECT is(pg_temp.shares(1, 'AAA'), 10::numeric, 'and changes no holding');
SELECT is(pg_temp.order_outcome('sell', 'BBB', 10, 1), 'failed: insufficient holdings: 4.000000 shares needed, 0 held',
    'selling what one never held fails');
SELECT is(pg_temp.order_outcome('buy', 'ZZZ', 10, 1), 'failed: unknown ticker ZZZ', 'an unknown ticker fails');
SELECT is(pg_temp.order_outcome('buy', 'AAA', 0, 1), 'failed: amount must be positive, got 0', 'a zero amount fails');
SELECT is(pg_temp.order_outcome('buy', 'AAA', -5, 1), 'failed: amount must be positive, got -5', 'a negative amount fails');
SELECT matches(pg_temp.order_outcome('buy', 'AAA', 0.000001, 1), '^failed: amount 0.000001 buys no whole millionth',
    'an amount too small for a millionth of a share fails');
SELECT is(pg_temp.cash(1), 900::numeric, 'no failed order changed a balance');
SELECT throws_ok($$ INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
                    VALUES ('00000000-0000-0000-0000-000000000001', 'AAA', 'hold', 1) $$,
    '23514', NULL, 'an unknown order type is refused on insert');
SELECT throws_ok($$ INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
                    VALUES ('00000000-0000-0000-0000-000000000001', 'AAA', 'buy', NULL) $$,
    '23502', NULL, 'a NULL amount is refused on insert');

-- Conservation over a mixed batch drained at once.
INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
SELECT format('00000000-0000-0000-0000-%s', lpad((1 + n % 2)::text, 12, '0'))::uuid,
       (ARRAY['AAA', 'BBB', 'NOPE'])[1 + n % 3], (ARRAY['buy', 'sell'])[1 + (n / 3) % 2], (n % 7) * 3.7 - 2
FROM generate_series(1, 300) n;
SELECT cmp_ok(jobs.process_all_pending_orders(), '>=', 300, 'the drain processes the whole batch');
SELECT is((SELECT count(*)::int FROM jobs.order_queue WHERE status = 'pending'), 0, 'nothing stays pending');
SELECT is(pg_temp.total_value(), (SELECT total FROM value_before), 'cash plus holdings at trade value is conserved');
SELECT is((SELECT count(*) FROM jobs.trades), (SELECT count(*) FROM jobs.order_queue WHERE status = 'completed'),
    'every completed order has exactly one trade');
SELECT throws_ok($$ SELECT jobs.process_all_pending_orders(0) $$, '22023', NULL, 'max_orders must be positive');

-- OHLC bars against the plain aggregate.
INSERT INTO jobs.trades (order_id, user_id, ticker, side, shares, price, amount, executed_at)
SELECT 100000 + n, '00000000-0000-0000-0000-000000000009', (ARRAY['AAA', 'BBB'])[1 + n % 2], 'buy', n, 1 + (n * 37 % 11),
       n * (1 + (n * 37 % 11)), date_trunc('hour', now()) - interval '3 hours' + n * interval '7 minutes'
FROM generate_series(1, 40) n;
CREATE TEMP VIEW expected_bars AS
SELECT ticker, date_trunc('hour', executed_at) AS hour,
       (array_agg(price ORDER BY executed_at, id))[1] AS open, max(price) AS high, min(price) AS low,
       (array_agg(price ORDER BY executed_at DESC, id DESC))[1] AS close, sum(shares) AS volume, count(*) AS trade_count
FROM jobs.trades GROUP BY 1, 2;
SELECT cmp_ok(jobs.snapshot_hourly_prices(), '>', 0, 'the snapshot writes bars');
SELECT set_eq('SELECT * FROM jobs.hourly_prices', 'SELECT * FROM expected_bars', 'every bar equals the plain aggregate');
SELECT is(jobs.snapshot_hourly_prices(), 0, 'a second snapshot finds nothing to do');
SELECT is((SELECT count(*) FROM jobs.hourly_prices), (SELECT count(*) FROM expected_bars), 'and duplicates nothing');
INSERT INTO jobs.trades (order_id, user_id, ticker, side, shares, price, amount, executed_at)
VALUES (200000, '00000000-0000-0000-0000-000000000009', 'AAA', 'buy', 5, 99, 495,
        date_trunc('hour', now()) - interval '2 hours 30 minutes');
SELECT is(jobs.snapshot_hourly_prices(), 1, 'a late trade reopens only its own bar');
SELECT set_eq('SELECT * FROM jobs.hourly_prices', 'SELECT * FROM expected_bars', 'and corrects it');

-- The stats cache against the plain query.
SELECT cmp_ok(jobs.refresh_issuer_stats_cache(), '=', 3, 'the first refresh covers every issuer');
SELECT set_eq(
    'SELECT ticker, volume_24h, trades_24h, holder_count, market_cap FROM jobs.issuer_stats_cache',
    $$ SELECT i.ticker,
              coalesce((SELECT sum(amount) FROM jobs.trades t WHERE t.ticker = i.ticker AND t.executed_at >= now() - interval '24 hours'), 0) AS volume,
              (SELECT count(*) FROM jobs.trades t WHERE t.ticker = i.ticker AND t.executed_at >= now() - interval '24 hours') AS trades,
              (SELECT count(*) FROM jobs.holdings h WHERE h.ticker = i.ticker AND h.shares > 0) AS holders,
              i.current_price * i.shares_outstanding AS market_cap
       FROM jobs.issuers i $$,
    'the cache equals the plain query');
SELECT lives_ok($$ SELECT jobs.set_price('IDLE', 2) $$, 'a price moves');
SELECT is(jobs.refresh_issuer_stats_cache(), 1, 'the next refresh touches only the changed issuer');
SELECT throws_ok($$ SELECT jobs.set_price('IDLE', 0) $$, '22023', NULL, 'a non-positive price is refused');

-- Retention boundaries: strictly older than the retention goes; pending never does.
UPDATE jobs.order_queue SET processed_at = now() - interval '30 days' WHERE id = (SELECT min(id) FROM jobs.order_queue);
UPDATE jobs.order_queue SET processed_at = now() - interval '30 days 1 second' WHERE id = (SELECT min(id) + 1 FROM jobs.order_queue);
INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount, created_at)
VALUES ('00000000-0000-0000-0000-000000000001', 'AAA', 'buy', 1, now() - interval '90 days');
SELECT is(jobs.cleanup_old_orders(), 1::bigint, 'only the order past the retention is deleted');
SELECT is((SELECT count(*)::int FROM jobs.order_queue WHERE status = 'pending'), 1, 'an old pending order stays');

SELECT * FROM finish();
ROLLBACK;
