-- Undo 0012_ledger_hardening.up.sql: the previous cascade functions, paths and privileges.

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA ledger FROM freshet_client, freshet_worker, freshet_admin;
REVOKE ALL ON ALL TABLES IN SCHEMA ledger FROM freshet_client, freshet_worker, freshet_admin;
REVOKE USAGE ON SCHEMA ledger FROM freshet_client, freshet_worker, freshet_admin;

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
    WITH changed AS (
        UPDATE ledger.term t
        SET total_assets = t.total_assets + d.assets,
            total_market_cap = t.total_market_cap + d.market_cap,
            total_position_count = t.total_position_count + d.positions
        FROM unnest(term_ids, asset_deltas, market_cap_deltas, position_deltas) AS d (term_id, assets, market_cap, positions)
        WHERE t.term_id = d.term_id
        RETURNING t.term_id, t.kind)
    INSERT INTO ledger.analytics_queue (term_id)
    SELECT c.term_id FROM changed c WHERE c.kind <> 'atom';
END;
$$;
COMMENT ON FUNCTION ledger.apply_term_changes(text[], numeric[], numeric[], bigint[]) IS
    'Adds per-term deltas (one entry per term) to ledger.term, locking several rows in term order first, and queues the analytics of every changed triple or counter term.';

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
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.cascade_new_vaults() IS
    'Statement-level AFTER INSERT trigger on ledger.vault: adds the new vaults'' totals to their terms.';

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
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.cascade_changed_vaults() IS
    'Statement-level AFTER UPDATE trigger on ledger.vault: moves each term''s totals by the difference between its vaults'' new and old rows.';

ALTER FUNCTION ledger.is_after(bigint,bigint,bigint,bigint) RESET search_path;

GRANT USAGE ON SCHEMA ledger TO PUBLIC;
GRANT SELECT ON ledger.aggregates TO PUBLIC;
DO $$
DECLARE
    aggregate text;
BEGIN
    FOR aggregate IN SELECT a.name FROM ledger.aggregates a LOOP
        EXECUTE format('GRANT SELECT ON ledger.%I, ledger.%I TO PUBLIC', aggregate, aggregate || '_definition');
    END LOOP;
END;
$$;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA ledger TO PUBLIC;
REVOKE ALL ON FUNCTION ledger.refresh_all_views(), ledger.process_analytics_queue(integer) FROM PUBLIC;
