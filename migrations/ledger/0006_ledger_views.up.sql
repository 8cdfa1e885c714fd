-- Version 1 of the ledger's aggregates: materialized views refreshed on demand (seed 004, before
-- the refactor). Each aggregate's defining query is kept once, in ledger.aggregates, and becomes a
-- plain view ledger.<name>_definition over the level below it. The aggregate itself is either a
-- materialized view over that view (this version) or a trigger-maintained table shaped like it
-- (version 2, 0007), so the two versions can never disagree about what an aggregate means, and
-- ledger.verify() compares either one with its definition.

CREATE TABLE ledger.aggregates (
    name text PRIMARY KEY,
    build_order integer NOT NULL UNIQUE,
    tier text NOT NULL CHECK (tier IN ('strong', 'eventual')),
    key_columns text[] NOT NULL,
    definition text NOT NULL
);
COMMENT ON TABLE ledger.aggregates IS
    'The ledger''s aggregates in dependency order: their key, their consistency tier (strong: equal to the definition at every commit; eventual: once the analytics queue is drained) and their defining query over the event tables and lower aggregates.';
REVOKE ALL ON ledger.aggregates FROM PUBLIC;
GRANT SELECT ON ledger.aggregates TO PUBLIC;

INSERT INTO ledger.aggregates (name, build_order, tier, key_columns, definition) VALUES
('atom', 1, 'strong', '{term_id}', $$
    SELECT term_id, creator_id, data, block_number AS created_block, log_index AS created_log_index, transaction_hash
    FROM ledger.atom_created_events
$$),
('triple', 2, 'strong', '{term_id}', $$
    SELECT term_id, counter_term_id, creator_id, subject_id, predicate_id, object_id,
           block_number AS created_block, log_index AS created_log_index, transaction_hash
    FROM ledger.triple_created_events
$$),
-- A deposit moves the receiver's position, a redeem the redeemer's. shares is the latest
-- total_shares of either kind (last write wins on (block_number, log_index)); the totals are sums.
('position', 3, 'strong', '{account_id,term_id,curve_id}', $$
    WITH moves AS (
        SELECT receiver_id AS account_id, term_id, curve_id, block_number, log_index, total_shares,
               assets_after_fees AS deposited, 0::numeric AS redeemed, true AS is_deposit
        FROM ledger.deposited_events
        UNION ALL
        SELECT account_id, term_id, curve_id, block_number, log_index, total_shares, 0, assets, false
        FROM ledger.redeemed_events)
    SELECT account_id, term_id, curve_id,
           (array_agg(total_shares ORDER BY block_number DESC, log_index DESC))[1] AS shares,
           sum(deposited) AS total_deposit_assets_after_fees,
           sum(redeemed) AS total_redeem_assets,
           count(*) FILTER (WHERE is_deposit) AS deposit_count,
           count(*) FILTER (WHERE NOT is_deposit) AS redeem_count,
           (array_agg(block_number ORDER BY block_number DESC, log_index DESC) FILTER (WHERE is_deposit))[1] AS last_deposit_block,
           (array_agg(log_index ORDER BY block_number DESC, log_index DESC) FILTER (WHERE is_deposit))[1] AS last_deposit_log_index,
           (array_agg(block_number ORDER BY block_number DESC, log_index DESC) FILTER (WHERE NOT is_deposit))[1] AS last_redeem_block,
           (array_agg(log_index ORDER BY block_number DESC, log_index DESC) FILTER (WHERE NOT is_deposit))[1] AS last_redeem_log_index
    FROM moves
    GROUP BY account_id, term_id, curve_id
$$),
-- A vault exists once any event names it. Its price state is the latest SharePriceChanged (zero
-- before the first); position_count counts the positions holding shares.
('vault', 4, 'strong', '{term_id,curve_id}', $$
    WITH prices AS (
        SELECT DISTINCT ON (term_id, curve_id) term_id, curve_id, total_shares, total_assets, share_price, block_number, log_index
        FROM ledger.share_price_changed_events
        ORDER BY term_id, curve_id, block_number DESC, log_index DESC),
    holders AS (
        SELECT term_id, curve_id, count(*) FILTER (WHERE shares > 0) AS position_count
        FROM ledger.position
        GROUP BY term_id, curve_id)
    SELECT term_id, curve_id,
           coalesce(p.total_shares, 0) AS total_shares,
           coalesce(p.total_assets, 0) AS total_assets,
           coalesce(p.share_price, 0) AS share_price,
           coalesce(h.position_count, 0) AS position_count,
           coalesce(div(p.total_shares * p.share_price, 1000000000000000000), 0) AS market_cap,
           p.block_number AS last_price_block,
           p.log_index AS last_price_log_index
    FROM prices p FULL JOIN holders h USING (term_id, curve_id)
$$),
('term', 5, 'strong', '{term_id}', $$
    WITH terms AS (
        SELECT term_id, 'atom' AS kind FROM ledger.atom
        UNION ALL
        SELECT term_id, 'triple' FROM ledger.triple
        UNION ALL
        SELECT counter_term_id, 'counter_triple' FROM ledger.triple),
    totals AS (
        SELECT term_id, sum(total_assets) AS total_assets, sum(market_cap) AS total_market_cap,
               sum(position_count)::bigint AS total_position_count
        FROM ledger.vault
        GROUP BY term_id)
    SELECT term_id, kind,
           coalesce(v.total_assets, 0) AS total_assets,
           coalesce(v.total_market_cap, 0) AS total_market_cap,
           coalesce(v.total_position_count, 0) AS total_position_count
    FROM terms t LEFT JOIN totals v USING (term_id)
$$),
-- The analytics: a triple's vault on each curve with its counter vault, the triple over all
-- curves, and triples grouped by (predicate, object) and (subject, predicate).
('triple_vault', 6, 'eventual', '{term_id,curve_id}', $$
    WITH sides AS (
        SELECT term_id, counter_term_id, term_id AS vault_term_id, true AS is_pro FROM ledger.triple
        UNION ALL
        SELECT term_id, counter_term_id, counter_term_id, false FROM ledger.triple)
    SELECT s.term_id, v.curve_id, s.counter_term_id,
           coalesce(sum(v.total_shares) FILTER (WHERE s.is_pro), 0) AS total_shares,
           coalesce(sum(v.total_shares) FILTER (WHERE NOT s.is_pro), 0) AS counter_total_shares,
           sum(v.total_assets) AS total_assets,
           sum(v.market_cap) AS total_market_cap,
           sum(v.position_count)::bigint AS position_count
    FROM sides s
    JOIN ledger.vault v ON v.term_id = s.vault_term_id
    GROUP BY s.term_id, v.curve_id, s.counter_term_id
$$),
('triple_term', 7, 'eventual', '{term_id}', $$
    SELECT t.term_id, t.counter_term_id,
           coalesce(sum(tv.total_assets), 0) AS total_assets,
           coalesce(sum(tv.total_market_cap), 0) AS total_market_cap,
           coalesce(sum(tv.position_count), 0)::bigint AS total_position_count
    FROM ledger.triple t
    LEFT JOIN ledger.triple_vault tv ON tv.term_id = t.term_id
    GROUP BY t.term_id, t.counter_term_id
$$),
('predicate_object', 8, 'eventual', '{predicate_id,object_id}', $$
    SELECT t.predicate_id, t.object_id,
           count(*) AS triple_count,
           coalesce(sum(tt.total_market_cap), 0) AS total_market_cap,
           coalesce(sum(tt.total_position_count), 0)::bigint AS total_position_count
    FROM ledger.triple t
    LEFT JOIN ledger.triple_term tt ON tt.term_id = t.term_id
    GROUP BY t.predicate_id, t.object_id
$$),
('subject_predicate', 9, 'eventual', '{subject_id,predicate_id}', $$
    SELECT t.subject_id, t.predicate_id,
           count(*) AS triple_count,
           coalesce(sum(tt.total_market_cap), 0) AS total_market_cap,
           coalesce(sum(tt.total_position_count), 0)::bigint AS total_position_count
    FROM ledger.triple t
    LEFT JOIN ledger.triple_term tt ON tt.term_id = t.term_id
    GROUP BY t.subject_id, t.predicate_id
$$);

CREATE FUNCTION ledger.create_aggregates(materialized boolean) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aggregate ledger.aggregates;
BEGIN
    FOR aggregate IN SELECT * FROM ledger.aggregates ORDER BY build_order LOOP
        EXECUTE format('CREATE VIEW ledger.%I AS %s', aggregate.name || '_definition', aggregate.definition);
        EXECUTE format('COMMENT ON VIEW ledger.%I IS %L', aggregate.name || '_definition',
            format('The defining query of ledger.%s, over the level below it; ledger.verify() compares the two.', aggregate.name));
        IF materialized THEN
            EXECUTE format('CREATE MATERIALIZED VIEW ledger.%I AS TABLE ledger.%I WITH NO DATA', aggregate.name, aggregate.name || '_definition');
            EXECUTE format('CREATE UNIQUE INDEX %I ON ledger.%I (%s)', aggregate.name || '_key', aggregate.name,
                (SELECT string_agg(format('%I', c), ', ') FROM unnest(aggregate.key_columns) c));
            EXECUTE format('COMMENT ON MATERIALIZED VIEW ledger.%I IS %L', aggregate.name,
                'Version 1: refreshed by ledger.refresh_all_views(); stale in between.');
        ELSE
            EXECUTE format('CREATE TABLE ledger.%I (LIKE ledger.%I, PRIMARY KEY (%s))', aggregate.name, aggregate.name || '_definition',
                (SELECT string_agg(format('%I', c), ', ') FROM unnest(aggregate.key_columns) c));
            EXECUTE format('COMMENT ON TABLE ledger.%I IS %L', aggregate.name,
                CASE aggregate.tier
                    WHEN 'strong' THEN 'Version 2: maintained by triggers on the event tables in the writing transaction; equal to its definition at every commit.'
                    ELSE 'Version 2: maintained by ledger.process_analytics_queue(); equal to its definition once the analytics queue is drained.'
                END);
        END IF;
        EXECUTE format('GRANT SELECT ON ledger.%I, ledger.%I TO PUBLIC', aggregate.name, aggregate.name || '_definition');
    END LOOP;
END;
$$;
COMMENT ON FUNCTION ledger.create_aggregates(boolean) IS
    'Creates every aggregate of ledger.aggregates in dependency order, each with its definition view: as an unpopulated materialized view with a unique index (version 1), or as an empty table of the same shape with a primary key (version 2). For the migrations.';

CREATE FUNCTION ledger.drop_aggregates() RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    aggregate ledger.aggregates;
BEGIN
    FOR aggregate IN SELECT * FROM ledger.aggregates ORDER BY build_order DESC LOOP
        IF (SELECT relkind FROM pg_class WHERE oid = format('ledger.%I', aggregate.name)::regclass) = 'm' THEN
            EXECUTE format('DROP MATERIALIZED VIEW ledger.%I', aggregate.name);
        ELSE
            EXECUTE format('DROP TABLE ledger.%I', aggregate.name);
        END IF;
        EXECUTE format('DROP VIEW ledger.%I', aggregate.name || '_definition');
    END LOOP;
END;
$$;
COMMENT ON FUNCTION ledger.drop_aggregates() IS
    'Drops every aggregate and its definition view, highest level first, whether it is a materialized view or a table. For the migrations.';

CREATE FUNCTION ledger.refresh_all_views() RETURNS TABLE (aggregate text, refreshed_concurrently boolean, milliseconds numeric)
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    started timestamptz;
BEGIN
    FOR aggregate IN SELECT a.name FROM ledger.aggregates a ORDER BY a.build_order LOOP
        SELECT c.relispopulated INTO refreshed_concurrently
        FROM pg_class c
        WHERE c.oid = format('ledger.%I', aggregate)::regclass AND c.relkind = 'm';
        IF NOT FOUND THEN
            RAISE EXCEPTION 'ledger.% is a trigger-maintained table, not a materialized view: there is nothing to refresh', aggregate
                USING ERRCODE = 'wrong_object_type',
                      HINT = 'Version 2 keeps the aggregates current; ledger.verify() checks them.';
        END IF;
        started := clock_timestamp();
        -- CONCURRENTLY keeps the view readable, but needs it populated once.
        IF refreshed_concurrently THEN
            EXECUTE format('REFRESH MATERIALIZED VIEW CONCURRENTLY ledger.%I', aggregate);
        ELSE
            EXECUTE format('REFRESH MATERIALIZED VIEW ledger.%I', aggregate);
        END IF;
        milliseconds := round(extract(epoch FROM clock_timestamp() - started) * 1000, 3);
        RETURN NEXT;
    END LOOP;
END;
$$;
COMMENT ON FUNCTION ledger.refresh_all_views() IS
    'Version 1: refreshes every materialized view in dependency order, CONCURRENTLY once it has been populated, and returns how long each took. In version 2 it raises 42809.';
REVOKE ALL ON FUNCTION ledger.refresh_all_views() FROM PUBLIC;

CREATE FUNCTION ledger.verify() RETURNS TABLE (aggregate text, tier text, difference text, row_data jsonb)
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entry ledger.aggregates;
BEGIN
    FOR entry IN SELECT * FROM ledger.aggregates ORDER BY build_order LOOP
        RETURN QUERY EXECUTE format(
            $query$
            SELECT %1$L, %2$L, 'missing', to_jsonb(d) FROM (TABLE ledger.%4$I EXCEPT ALL TABLE ledger.%3$I) d
            UNION ALL
            SELECT %1$L, %2$L, 'unexpected', to_jsonb(u) FROM (TABLE ledger.%3$I EXCEPT ALL TABLE ledger.%4$I) u
            $query$,
            entry.name, entry.tier, entry.name, entry.name || '_definition');
    END LOOP;
END;
$$;
COMMENT ON FUNCTION ledger.verify() IS
    'Compares every aggregate with its definition (EXCEPT ALL, both ways) and returns the differences: missing, a row the definition has and the aggregate lacks; unexpected, the reverse. Empty when consistent. Strong aggregates match at every commit, eventual ones once the analytics queue is drained; a version-1 view matches after refresh_all_views(). Read-only, safe in production.';

SELECT ledger.create_aggregates(true);
SELECT ledger.refresh_all_views();
