-- Hardening, ledger: the eventual tier can no longer diverge for good, because every changed vault
-- of a triple or counter term queues its analytics, not only those whose term totals moved;
-- pinned search paths; privileges for the bundle's roles instead of PUBLIC.

CREATE OR REPLACE FUNCTION ledger.apply_term_changes(term_ids text[], asset_deltas numeric[], market_cap_deltas numeric[], position_deltas bigint[])
    RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    IF cardinality(term_ids) > 1 THEN
        PERFORM FROM ledger.term t WHERE t.term_id = ANY (term_ids) ORDER BY t.term_id FOR UPDATE;
    END IF;
    UPDATE ledger.term t
    SET total_assets = t.total_assets + d.assets,
        total_market_cap = t.total_market_cap + d.market_cap,
        total_position_count = t.total_position_count + d.positions
    FROM unnest(term_ids, asset_deltas, market_cap_deltas, position_deltas) AS d (term_id, assets, market_cap, positions)
    WHERE t.term_id = d.term_id;
END;
$$;
COMMENT ON FUNCTION ledger.apply_term_changes(text[], numeric[], numeric[], bigint[]) IS
    'Adds per-term deltas (one entry per term) to ledger.term, locking several rows in term order first. The vault cascades queue the analytics.';

CREATE OR REPLACE FUNCTION ledger.cascade_new_vaults() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    term_ids text[];
    asset_deltas numeric[];
    market_cap_deltas numeric[];
    position_deltas bigint[];
BEGIN
    SELECT array_agg(d.term_id ORDER BY d.term_id), array_agg(d.assets ORDER BY d.term_id),
           array_agg(d.market_cap ORDER BY d.term_id), array_agg(d.positions ORDER BY d.term_id)
    INTO term_ids, asset_deltas, market_cap_deltas, position_deltas
    FROM (SELECT n.term_id, sum(n.total_assets) AS assets, sum(n.market_cap) AS market_cap, sum(n.position_count)::bigint AS positions
          FROM new_rows n GROUP BY n.term_id) d
    WHERE d.assets <> 0 OR d.market_cap <> 0 OR d.positions <> 0;
    IF term_ids IS NOT NULL THEN
        PERFORM ledger.apply_term_changes(term_ids, asset_deltas, market_cap_deltas, position_deltas);
    END IF;
    -- Every vault of a triple or counter term that changed feeds the analytics, whether or not its
    -- term's totals moved (a vault with zero totals, shares traded at equal assets, a price on an
    -- empty vault).
    INSERT INTO ledger.analytics_queue (term_id)
    SELECT DISTINCT n.term_id FROM new_rows n JOIN ledger.term t ON t.term_id = n.term_id WHERE t.kind <> 'atom';
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.cascade_new_vaults() IS
    'Statement-level AFTER INSERT trigger on ledger.vault: adds the new vaults'' totals to their terms, and queues the analytics of every new vault of a triple or counter term.';

CREATE OR REPLACE FUNCTION ledger.cascade_changed_vaults() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    term_ids text[];
    asset_deltas numeric[];
    market_cap_deltas numeric[];
    position_deltas bigint[];
BEGIN
    SELECT array_agg(d.term_id ORDER BY d.term_id), array_agg(d.assets ORDER BY d.term_id),
           array_agg(d.market_cap ORDER BY d.term_id), array_agg(d.positions ORDER BY d.term_id)
    INTO term_ids, asset_deltas, market_cap_deltas, position_deltas
    FROM (SELECT c.term_id, sum(c.assets) AS assets, sum(c.market_cap) AS market_cap, sum(c.positions)::bigint AS positions
          FROM (SELECT n.term_id, n.total_assets AS assets, n.market_cap, n.position_count AS positions FROM new_rows n
                UNION ALL
                SELECT o.term_id, -o.total_assets, -o.market_cap, -o.position_count FROM old_rows o) c
          GROUP BY c.term_id) d
    WHERE d.assets <> 0 OR d.market_cap <> 0 OR d.positions <> 0;
    IF term_ids IS NOT NULL THEN
        PERFORM ledger.apply_term_changes(term_ids, asset_deltas, market_cap_deltas, position_deltas);
    END IF;
    -- Every vault of a triple or counter term that changed feeds the analytics, whether or not its
    -- term's totals moved (a vault with zero totals, shares traded at equal assets, a price on an
    -- empty vault).
    INSERT INTO ledger.analytics_queue (term_id)
    SELECT DISTINCT n.term_id FROM new_rows n JOIN ledger.term t ON t.term_id = n.term_id WHERE t.kind <> 'atom';
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.cascade_changed_vaults() IS
    'Statement-level AFTER UPDATE trigger on ledger.vault: moves each term''s totals by the difference between its vaults'' new and old rows, and queues the analytics of every changed vault of a triple or counter term.';

SELECT foundation.pin_search_paths('ledger');

-- Privileges: readers of the aggregates are the bundle's roles, not PUBLIC; workers ingest.
REVOKE USAGE ON SCHEMA ledger FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ledger FROM PUBLIC;
REVOKE SELECT ON ALL TABLES IN SCHEMA ledger FROM PUBLIC;
GRANT USAGE ON SCHEMA ledger TO freshet_client, freshet_worker, freshet_admin;
DO $$
DECLARE
    aggregate text;
BEGIN
    FOR aggregate IN SELECT a.name FROM ledger.aggregates a LOOP
        EXECUTE format('GRANT SELECT ON ledger.%I, ledger.%I TO freshet_client, freshet_worker', aggregate, aggregate || '_definition');
    END LOOP;
END;
$$;
GRANT SELECT ON ledger.aggregates TO freshet_client, freshet_worker;
GRANT SELECT, INSERT ON ledger.atom_created_events, ledger.triple_created_events, ledger.deposited_events,
    ledger.redeemed_events, ledger.share_price_changed_events TO freshet_worker;
GRANT EXECUTE ON FUNCTION ledger.verify(), ledger.analytics_backlog() TO freshet_worker;
GRANT EXECUTE ON FUNCTION ledger.process_analytics_queue(integer) TO freshet_admin;
