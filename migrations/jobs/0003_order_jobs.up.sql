-- The seed's background jobs: an order queue processed the moment orders arrive, a stats cache
-- refreshed every 5 minutes, hourly OHLC bars from trades, and a daily cleanup.

INSERT INTO jobs.settings (name, value, description) VALUES
    ('order_retention', '30 days', 'How long completed and failed orders stay in jobs.order_queue.');

-- Minimal market domain. Money and shares are numeric, never float.
CREATE TABLE jobs.issuers (
    ticker text PRIMARY KEY CHECK (ticker ~ '^[A-Z0-9][A-Z0-9.-]{0,11}$'),
    name text NOT NULL,
    current_price numeric(20, 6) NOT NULL CHECK (current_price > 0),
    shares_outstanding numeric(24, 6) NOT NULL DEFAULT 0 CHECK (shares_outstanding >= 0),
    price_updated_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE jobs.issuers IS 'Tradable issuers; orders execute at current_price, which only jobs.set_price() moves.';

CREATE TABLE jobs.balances (
    user_id uuid PRIMARY KEY,
    cash numeric NOT NULL CHECK (cash >= 0)
);
COMMENT ON TABLE jobs.balances IS 'Each user''s cash. Orders lock a user''s balance row before the holding row, so processors never deadlock.';

CREATE TABLE jobs.holdings (
    user_id uuid NOT NULL,
    ticker text NOT NULL REFERENCES jobs.issuers,
    shares numeric(24, 6) NOT NULL CHECK (shares >= 0),
    PRIMARY KEY (user_id, ticker)
);
CREATE INDEX holdings_by_ticker ON jobs.holdings (ticker) WHERE shares > 0;
COMMENT ON TABLE jobs.holdings IS 'Shares each user holds of each issuer.';

CREATE TABLE jobs.trades (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    order_id bigint NOT NULL UNIQUE,
    user_id uuid NOT NULL,
    ticker text NOT NULL REFERENCES jobs.issuers,
    side text NOT NULL CHECK (side IN ('buy', 'sell')),
    shares numeric(24, 6) NOT NULL CHECK (shares > 0),
    price numeric(20, 6) NOT NULL CHECK (price > 0),
    amount numeric NOT NULL CHECK (amount > 0),
    executed_at timestamptz NOT NULL DEFAULT clock_timestamp()
);
CREATE INDEX trades_by_ticker_time ON jobs.trades (ticker, executed_at);
CREATE INDEX trades_by_time ON jobs.trades (executed_at);
COMMENT ON TABLE jobs.trades IS 'Executed orders: shares at price, amount = shares * price exactly. One trade per order at most.';

CREATE TABLE jobs.order_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    user_id uuid NOT NULL,
    ticker text NOT NULL,
    order_type text NOT NULL CHECK (order_type IN ('buy', 'sell')),
    amount numeric NOT NULL,
    status text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'completed', 'failed')),
    created_at timestamptz NOT NULL DEFAULT clock_timestamp(),
    processed_at timestamptz,
    failure_reason text,
    CHECK ((status = 'pending') = (processed_at IS NULL)),
    CHECK ((status = 'failed') = (failure_reason IS NOT NULL))
) WITH (fillfactor = 80);
CREATE INDEX order_queue_pending ON jobs.order_queue (id) WHERE status = 'pending';
CREATE INDEX order_queue_finished ON jobs.order_queue (processed_at) WHERE status <> 'pending';
COMMENT ON TABLE jobs.order_queue IS
    'Orders to execute: amount is in cash; a buy spends it, a sell raises it. Bad orders are accepted here and failed with a reason by the processor, never half-executed.';

-- Change marks, written by statement-level triggers in the writer's transaction, so a refresh
-- never misses a change that commits late.
CREATE TABLE jobs.stale_issuer_stats (
    ticker text PRIMARY KEY
);
COMMENT ON TABLE jobs.stale_issuer_stats IS 'Issuers whose cached stats changed since the last refresh.';
CREATE TABLE jobs.stale_hourly_bars (
    ticker text NOT NULL,
    hour timestamptz NOT NULL,
    PRIMARY KEY (ticker, hour)
);
COMMENT ON TABLE jobs.stale_hourly_bars IS 'Hours with trades not yet in jobs.hourly_prices, late trades included.';

CREATE TABLE jobs.issuer_stats_cache (
    ticker text PRIMARY KEY REFERENCES jobs.issuers ON DELETE CASCADE,
    last_price numeric(20, 6) NOT NULL,
    volume_24h numeric NOT NULL,
    trades_24h bigint NOT NULL,
    change_24h numeric NOT NULL,
    change_pct_24h numeric,
    holder_count bigint NOT NULL,
    market_cap numeric NOT NULL,
    refreshed_at timestamptz NOT NULL
);
COMMENT ON TABLE jobs.issuer_stats_cache IS
    'Per issuer: last price, 24-hour traded amount and trade count, 24-hour price change against the last trade before the window (or the first in it), holders, and market cap. Kept by jobs.refresh_issuer_stats_cache().';

CREATE TABLE jobs.hourly_prices (
    ticker text NOT NULL REFERENCES jobs.issuers ON DELETE CASCADE,
    hour timestamptz NOT NULL,
    open numeric(20, 6) NOT NULL,
    high numeric(20, 6) NOT NULL,
    low numeric(20, 6) NOT NULL,
    close numeric(20, 6) NOT NULL,
    volume numeric NOT NULL,
    trade_count bigint NOT NULL,
    PRIMARY KEY (ticker, hour)
);
COMMENT ON TABLE jobs.hourly_prices IS 'Hourly OHLC bars from trades, one per issuer and hour; volume counts shares.';

CREATE TABLE jobs.refresh_marks (
    name text PRIMARY KEY,
    refreshed_at timestamptz NOT NULL
);
COMMENT ON TABLE jobs.refresh_marks IS 'When each incremental job last ran, so the next run knows which time windows moved.';

CREATE FUNCTION jobs.mark_traded() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO jobs.stale_issuer_stats (ticker)
    SELECT DISTINCT t.ticker FROM new_trades t
    ON CONFLICT DO NOTHING;
    INSERT INTO jobs.stale_hourly_bars (ticker, hour)
    SELECT DISTINCT t.ticker, date_trunc('hour', t.executed_at) FROM new_trades t
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION jobs.mark_traded() IS 'Marks the issuers and hours a statement''s new trades touch.';
CREATE TRIGGER trades_mark_stale AFTER INSERT ON jobs.trades
    REFERENCING NEW TABLE AS new_trades FOR EACH STATEMENT EXECUTE FUNCTION jobs.mark_traded();

CREATE FUNCTION jobs.mark_holdings_changed() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    INSERT INTO jobs.stale_issuer_stats (ticker)
    SELECT ticker FROM changed_rows
    ON CONFLICT DO NOTHING;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION jobs.mark_holdings_changed() IS 'Marks issuers whose holder count or price may have changed.';
CREATE TRIGGER holdings_insert_mark_stale AFTER INSERT ON jobs.holdings
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs.mark_holdings_changed();
CREATE TRIGGER holdings_update_mark_stale AFTER UPDATE ON jobs.holdings
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs.mark_holdings_changed();
CREATE TRIGGER holdings_delete_mark_stale AFTER DELETE ON jobs.holdings
    REFERENCING OLD TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs.mark_holdings_changed();
CREATE TRIGGER issuers_update_mark_stale AFTER UPDATE ON jobs.issuers
    REFERENCING NEW TABLE AS changed_rows FOR EACH STATEMENT EXECUTE FUNCTION jobs.mark_holdings_changed();

CREATE FUNCTION jobs.set_price(ticker text, price numeric) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    IF price IS NULL OR price <= 0 THEN
        RAISE EXCEPTION 'price must be positive, got %', coalesce(price::text, 'NULL') USING ERRCODE = 'invalid_parameter_value';
    END IF;
    UPDATE jobs.issuers i SET current_price = price, price_updated_at = now() WHERE i.ticker = set_price.ticker;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown ticker: %', coalesce(quote_literal(set_price.ticker), 'NULL') USING ERRCODE = 'no_data_found';
    END IF;
END;
$$;
COMMENT ON FUNCTION jobs.set_price(text, numeric) IS 'Moves an issuer''s price: the only price movement there is, and the only thing that changes the value of holdings.';

CREATE FUNCTION jobs.process_next_queue_order() RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    next_order jobs.order_queue;
    price numeric;
    quantity numeric;
    cost numeric;
    available numeric;
    held numeric;
    reason text;
BEGIN
    SELECT * INTO next_order FROM jobs.order_queue q
    WHERE q.status = 'pending' ORDER BY q.id LIMIT 1
    FOR UPDATE SKIP LOCKED;
    IF NOT FOUND THEN
        RETURN NULL;
    END IF;

    SELECT i.current_price INTO price FROM jobs.issuers i WHERE i.ticker = next_order.ticker;
    IF next_order.amount <= 0 THEN
        reason := format('amount must be positive, got %s', next_order.amount);
    ELSIF price IS NULL THEN
        reason := format('unknown ticker %s', next_order.ticker);
    ELSE
        quantity := round(next_order.amount / price, 6);
        cost := quantity * price;
        IF quantity <= 0 THEN
            reason := format('amount %s buys no whole millionth of a share at %s', next_order.amount, price);
        ELSE
            -- Balance row before holding row, in every order: the fixed lock order rules out deadlocks.
            INSERT INTO jobs.balances (user_id, cash) VALUES (next_order.user_id, 0) ON CONFLICT DO NOTHING;
            SELECT b.cash INTO available FROM jobs.balances b WHERE b.user_id = next_order.user_id FOR UPDATE;
            IF next_order.order_type = 'buy' THEN
                IF available < cost THEN
                    reason := format('insufficient funds: %s needed, %s available', cost, available);
                ELSE
                    UPDATE jobs.balances b SET cash = b.cash - cost WHERE b.user_id = next_order.user_id;
                    INSERT INTO jobs.holdings AS h (user_id, ticker, shares)
                    VALUES (next_order.user_id, next_order.ticker, quantity)
                    ON CONFLICT (user_id, ticker) DO UPDATE SET shares = h.shares + excluded.shares;
                END IF;
            ELSE
                SELECT h.shares INTO held FROM jobs.holdings h
                WHERE h.user_id = next_order.user_id AND h.ticker = next_order.ticker FOR UPDATE;
                IF coalesce(held, 0) < quantity THEN
                    reason := format('insufficient holdings: %s shares needed, %s held', quantity, coalesce(held, 0));
                ELSE
                    UPDATE jobs.holdings h SET shares = h.shares - quantity
                    WHERE h.user_id = next_order.user_id AND h.ticker = next_order.ticker;
                    UPDATE jobs.balances b SET cash = b.cash + cost WHERE b.user_id = next_order.user_id;
                END IF;
            END IF;
            IF reason IS NULL THEN
                INSERT INTO jobs.trades (order_id, user_id, ticker, side, shares, price, amount)
                VALUES (next_order.id, next_order.user_id, next_order.ticker, next_order.order_type, quantity, price, cost);
            END IF;
        END IF;
    END IF;

    UPDATE jobs.order_queue q
    SET status = CASE WHEN reason IS NULL THEN 'completed' ELSE 'failed' END,
        processed_at = clock_timestamp(),
        failure_reason = reason
    WHERE q.id = next_order.id;
    RETURN next_order.id;
END;
$$;
COMMENT ON FUNCTION jobs.process_next_queue_order() IS
    'Claims the oldest pending order with FOR UPDATE SKIP LOCKED and executes it at the current price: a buy spends round(amount / price, 6) shares'' worth of cash, a sell raises it. A bad order (non-positive amount, unknown ticker, insufficient funds or holdings) fails with a reason and changes no balance. Returns the order id, or NULL when nothing is pending. Call it in its own transaction.';

CREATE FUNCTION jobs.process_all_pending_orders(max_orders integer DEFAULT 10000) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    processed integer := 0;
BEGIN
    IF max_orders IS NULL OR max_orders < 1 THEN
        RAISE EXCEPTION 'max_orders must be at least 1, got %', coalesce(max_orders::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- One drainer at a time: two long drains could lock two users'' rows in opposite orders.
    IF NOT pg_try_advisory_xact_lock(hashtextextended('jobs.process_all_pending_orders', 0)) THEN
        RETURN 0;
    END IF;
    WHILE processed < max_orders AND jobs.process_next_queue_order() IS NOT NULL LOOP
        processed := processed + 1;
    END LOOP;
    RETURN processed;
END;
$$;
COMMENT ON FUNCTION jobs.process_all_pending_orders(integer) IS
    'Drains the queue in one transaction, up to max_orders, and returns how many it processed. Single-flight: a second concurrent drain returns 0 at once. Listening processors should call jobs.process_next_queue_order() in short transactions instead.';

CREATE FUNCTION jobs.wake_order_processors() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    PERFORM pg_notify('jobs_order_queue', (SELECT count(*) FROM new_orders)::text);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION jobs.wake_order_processors() IS 'One NOTIFY on channel jobs_order_queue per INSERT statement; the payload is the number of new orders.';
CREATE TRIGGER order_queue_wake AFTER INSERT ON jobs.order_queue
    REFERENCING NEW TABLE AS new_orders FOR EACH STATEMENT EXECUTE FUNCTION jobs.wake_order_processors();

CREATE FUNCTION jobs.refresh_issuer_stats_cache() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    now_at timestamptz := now();
    previous timestamptz;
    targets text[];
    refreshed integer;
BEGIN
    SELECT m.refreshed_at INTO previous FROM jobs.refresh_marks m WHERE m.name = 'issuer_stats' FOR UPDATE;

    WITH consumed AS (
        DELETE FROM jobs.stale_issuer_stats RETURNING ticker
    )
    SELECT array_agg(DISTINCT target.ticker) INTO targets
    FROM (
        SELECT c.ticker FROM consumed c
        UNION ALL
        -- Nothing cached yet, or issuers added since.
        SELECT i.ticker FROM jobs.issuers i
        WHERE NOT EXISTS (SELECT 1 FROM jobs.issuer_stats_cache c WHERE c.ticker = i.ticker)
        UNION ALL
        -- Trades that left the 24-hour window since the last refresh change volume and change.
        SELECT t.ticker FROM jobs.trades t
        WHERE previous IS NOT NULL
          AND t.executed_at >= previous - interval '24 hours' AND t.executed_at < now_at - interval '24 hours'
    ) target;

    INSERT INTO jobs.issuer_stats_cache AS c
        (ticker, last_price, volume_24h, trades_24h, change_24h, change_pct_24h, holder_count, market_cap, refreshed_at)
    SELECT i.ticker, i.current_price, coalesce(w.volume, 0), coalesce(w.trades, 0),
           i.current_price - coalesce(base.price, i.current_price),
           CASE WHEN base.price IS NOT NULL THEN round((i.current_price - base.price) / base.price * 100, 4) END,
           coalesce(h.holders, 0), i.current_price * i.shares_outstanding, now_at
    FROM unnest(targets) AS target(ticker)
    JOIN jobs.issuers i ON i.ticker = target.ticker
    LEFT JOIN LATERAL (
        SELECT sum(t.amount) AS volume, count(*) AS trades FROM jobs.trades t
        WHERE t.ticker = i.ticker AND t.executed_at >= now_at - interval '24 hours'
    ) w ON true
    LEFT JOIN LATERAL (
        SELECT coalesce(
            (SELECT t.price FROM jobs.trades t WHERE t.ticker = i.ticker AND t.executed_at < now_at - interval '24 hours'
             ORDER BY t.executed_at DESC, t.id DESC LIMIT 1),
            (SELECT t.price FROM jobs.trades t WHERE t.ticker = i.ticker AND t.executed_at >= now_at - interval '24 hours'
             ORDER BY t.executed_at, t.id LIMIT 1)) AS price
    ) base ON true
    LEFT JOIN LATERAL (
        SELECT count(*) AS holders FROM jobs.holdings h WHERE h.ticker = i.ticker AND h.shares > 0
    ) h ON true
    ON CONFLICT (ticker) DO UPDATE SET
        last_price = excluded.last_price, volume_24h = excluded.volume_24h, trades_24h = excluded.trades_24h,
        change_24h = excluded.change_24h, change_pct_24h = excluded.change_pct_24h,
        holder_count = excluded.holder_count, market_cap = excluded.market_cap, refreshed_at = excluded.refreshed_at;
    GET DIAGNOSTICS refreshed = ROW_COUNT;

    INSERT INTO jobs.refresh_marks (name, refreshed_at) VALUES ('issuer_stats', now_at)
    ON CONFLICT (name) DO UPDATE SET refreshed_at = excluded.refreshed_at;
    RETURN refreshed;
END;
$$;
COMMENT ON FUNCTION jobs.refresh_issuer_stats_cache() IS
    'Refreshes the stats of issuers that changed: those marked by trades, holdings and price updates, those whose trades left the 24-hour window since the last run, and those not cached yet (everything on the first run). Returns how many rows it wrote.';

CREATE FUNCTION jobs.snapshot_hourly_prices() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    written integer;
BEGIN
    WITH consumed AS (
        DELETE FROM jobs.stale_hourly_bars RETURNING ticker, hour
    ), bars AS (
        SELECT c.ticker, c.hour,
               (array_agg(t.price ORDER BY t.executed_at, t.id))[1] AS open,
               max(t.price) AS high, min(t.price) AS low,
               (array_agg(t.price ORDER BY t.executed_at DESC, t.id DESC))[1] AS close,
               sum(t.shares) AS volume, count(*) AS trade_count
        FROM consumed c
        JOIN jobs.trades t ON t.ticker = c.ticker
         AND t.executed_at >= c.hour AND t.executed_at < c.hour + interval '1 hour'
        GROUP BY c.ticker, c.hour
    )
    INSERT INTO jobs.hourly_prices AS p (ticker, hour, open, high, low, close, volume, trade_count)
    SELECT ticker, hour, open, high, low, close, volume, trade_count FROM bars
    ON CONFLICT (ticker, hour) DO UPDATE SET
        open = excluded.open, high = excluded.high, low = excluded.low, close = excluded.close,
        volume = excluded.volume, trade_count = excluded.trade_count;
    GET DIAGNOSTICS written = ROW_COUNT;
    RETURN written;
END;
$$;
COMMENT ON FUNCTION jobs.snapshot_hourly_prices() IS
    'Rebuilds the OHLC bar of every (issuer, hour) that gained trades since the last run, late trades included. Idempotent: a second run finds nothing stale and writes nothing. Returns how many bars it wrote.';

CREATE FUNCTION jobs.cleanup_old_orders(retention interval DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    keep interval := jobs.retention(retention, 'order_retention');
    removed bigint;
BEGIN
    DELETE FROM jobs.order_queue q WHERE q.status <> 'pending' AND q.processed_at < now() - keep;
    GET DIAGNOSTICS removed = ROW_COUNT;
    RETURN removed;
END;
$$;
COMMENT ON FUNCTION jobs.cleanup_old_orders(interval) IS
    'Deletes completed and failed orders processed longer ago than the retention (default: the order_retention setting). Pending orders are never deleted. Returns how many.';

CREATE VIEW jobs.order_queue_status AS
SELECT q.status, count(*) AS orders, min(q.created_at) AS oldest, max(q.created_at) AS newest
FROM jobs.order_queue q
GROUP BY q.status
ORDER BY q.status;
COMMENT ON VIEW jobs.order_queue_status IS 'The order queue by status: how many, oldest and newest.';

SELECT jobs.schedule_job('process-pending-orders', '* * * * *', 'SELECT jobs.process_all_pending_orders()');
SELECT jobs.schedule_job('refresh-issuer-stats-cache', '*/5 * * * *', 'SELECT jobs.refresh_issuer_stats_cache()');
SELECT jobs.schedule_job('hourly-price-snapshot', '0 * * * *', 'SELECT jobs.snapshot_hourly_prices()');
SELECT jobs.schedule_job('cleanup-old-queue-entries', '0 3 * * *', 'SELECT jobs.cleanup_old_orders()');
