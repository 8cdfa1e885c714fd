-- Version 2 of the ledger's aggregates (seed 004's refactor): the materialized views become tables
-- that statement-level triggers keep current in the writing transaction.
--
--   strong (same transaction):  atom, triple, position -> vault -> term
--   eventual (analytics queue): triple_vault -> triple_term -> predicate_object, subject_predicate
--
-- Writers never lose an update and never deadlock within a statement: every change is an
-- ON CONFLICT DO UPDATE whose arithmetic the database does on the row it has locked, and each
-- level locks its rows in key order before the next level starts (positions, then vaults, then
-- terms). A deposit into a position that already holds shares changes neither its vault nor its
-- term, so a hot vault serialises only the writers that really change it.
-- Functions whose statements take arrays run with plan_cache_mode = force_generic_plan: left to
-- choose, PostgreSQL plans such statements afresh on every call, which tripled their cost.
-- The whole file is one transaction: the event tables are locked against writers until the
-- backfilled tables and their triggers commit together.

LOCK TABLE ledger.atom_created_events, ledger.triple_created_events, ledger.deposited_events,
           ledger.redeemed_events, ledger.share_price_changed_events IN SHARE ROW EXCLUSIVE MODE;

SELECT ledger.drop_aggregates();
SELECT ledger.create_aggregates(false);

DO $$
DECLARE
    aggregate text;
BEGIN
    FOR aggregate IN SELECT name FROM ledger.aggregates ORDER BY build_order LOOP
        EXECUTE format('INSERT INTO ledger.%I TABLE ledger.%I', aggregate, aggregate || '_definition');
        EXECUTE format('ANALYZE ledger.%I', aggregate);
    END LOOP;
END;
$$;

-- The analytics recompute finds a term's triples and a triple's groups by these.
CREATE INDEX triple_counter_term ON ledger.triple (counter_term_id);
CREATE INDEX triple_object_predicate ON ledger.triple (object_id, predicate_id);
CREATE INDEX triple_subject_predicate ON ledger.triple (subject_id, predicate_id);

CREATE TABLE ledger.analytics_queue (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    term_id text NOT NULL,
    enqueued_at timestamptz NOT NULL DEFAULT now()
);
COMMENT ON TABLE ledger.analytics_queue IS
    'Terms whose analytics are due: one row per writing statement and term, committed with the change it stands for. ledger.process_analytics_queue() drains it.';

-- Helpers ------------------------------------------------------------------------------------------

CREATE FUNCTION ledger.is_after(block_number bigint, log_index bigint, other_block bigint, other_log_index bigint) RETURNS boolean
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$
    SELECT other_block IS NULL OR (block_number, log_index) > (other_block, other_log_index);
$$;
COMMENT ON FUNCTION ledger.is_after(bigint, bigint, bigint, bigint) IS
    'True when the event at (block_number, log_index) comes after the one at (other_block, other_log_index), or there is none (NULL): the last-write-wins test.';

CREATE FUNCTION ledger.apply_term_changes(term_ids text[], asset_deltas numeric[], market_cap_deltas numeric[], position_deltas bigint[])
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

-- Creation events ------------------------------------------------------------------------------------

CREATE FUNCTION ledger.apply_atoms_created() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ledger.atom (term_id, creator_id, data, created_block, created_log_index, transaction_hash)
    SELECT n.term_id, n.creator_id, n.data, n.block_number, n.log_index, n.transaction_hash FROM new_events n;
    INSERT INTO ledger.term (term_id, kind, total_assets, total_market_cap, total_position_count)
    SELECT n.term_id, 'atom', 0, 0, 0 FROM new_events n;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.apply_atoms_created() IS
    'Statement-level AFTER INSERT trigger on atom_created_events: adds each atom and its term, with zero totals.';

CREATE FUNCTION ledger.apply_triples_created() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ledger.triple (term_id, counter_term_id, creator_id, subject_id, predicate_id, object_id, created_block, created_log_index, transaction_hash)
    SELECT n.term_id, n.counter_term_id, n.creator_id, n.subject_id, n.predicate_id, n.object_id, n.block_number, n.log_index, n.transaction_hash
    FROM new_events n;
    INSERT INTO ledger.term (term_id, kind, total_assets, total_market_cap, total_position_count)
    SELECT n.term_id, 'triple', 0, 0, 0 FROM new_events n
    UNION ALL
    SELECT n.counter_term_id, 'counter_triple', 0, 0, 0 FROM new_events n;
    INSERT INTO ledger.analytics_queue (term_id) SELECT n.term_id FROM new_events n;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.apply_triples_created() IS
    'Statement-level AFTER INSERT trigger on triple_created_events: adds each triple, a term for it and one for its counter term (zero totals), and queues its analytics.';

-- Deposits and redeems: position ---------------------------------------------------------------------
-- A deposit moves the receiver's position, a redeem the redeemer's. Each statement's events are
-- collapsed per position and upserted in key order; shares take whichever of the latest deposit
-- and the latest redeem comes last.

CREATE FUNCTION ledger.apply_deposits() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ledger.position AS p (account_id, term_id, curve_id, shares, total_deposit_assets_after_fees, total_redeem_assets,
                                      deposit_count, redeem_count, last_deposit_block, last_deposit_log_index)
    SELECT c.receiver_id, c.term_id, c.curve_id, c.total_shares, c.deposited, 0, c.moves, 0, c.block_number, c.log_index
    FROM (SELECT DISTINCT ON (n.receiver_id, n.term_id, n.curve_id)
                 n.receiver_id, n.term_id, n.curve_id, n.total_shares, n.block_number, n.log_index,
                 sum(n.assets_after_fees) OVER w AS deposited, count(*) OVER w AS moves
          FROM new_events n
          WINDOW w AS (PARTITION BY n.receiver_id, n.term_id, n.curve_id)
          ORDER BY n.receiver_id, n.term_id, n.curve_id, n.block_number DESC, n.log_index DESC) c
    ORDER BY c.receiver_id, c.term_id, c.curve_id
    ON CONFLICT (account_id, term_id, curve_id) DO UPDATE SET
        shares = CASE
            WHEN ledger.is_after(excluded.last_deposit_block, excluded.last_deposit_log_index, p.last_deposit_block, p.last_deposit_log_index)
             AND ledger.is_after(excluded.last_deposit_block, excluded.last_deposit_log_index, p.last_redeem_block, p.last_redeem_log_index)
            THEN excluded.shares ELSE p.shares END,
        total_deposit_assets_after_fees = p.total_deposit_assets_after_fees + excluded.total_deposit_assets_after_fees,
        deposit_count = p.deposit_count + excluded.deposit_count,
        last_deposit_block = CASE
            WHEN ledger.is_after(excluded.last_deposit_block, excluded.last_deposit_log_index, p.last_deposit_block, p.last_deposit_log_index)
            THEN excluded.last_deposit_block ELSE p.last_deposit_block END,
        last_deposit_log_index = CASE
            WHEN ledger.is_after(excluded.last_deposit_block, excluded.last_deposit_log_index, p.last_deposit_block, p.last_deposit_log_index)
            THEN excluded.last_deposit_log_index ELSE p.last_deposit_log_index END;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.apply_deposits() IS
    'Statement-level AFTER INSERT trigger on deposited_events: collapses the statement''s deposits per receiving position and upserts them in key order, shares and the last deposit by last write wins, totals and counts by addition. The triggers on ledger.position carry the change on to the vaults.';

CREATE FUNCTION ledger.apply_redeems() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ledger.position AS p (account_id, term_id, curve_id, shares, total_deposit_assets_after_fees, total_redeem_assets,
                                      deposit_count, redeem_count, last_redeem_block, last_redeem_log_index)
    SELECT c.account_id, c.term_id, c.curve_id, c.total_shares, 0, c.redeemed, 0, c.moves, c.block_number, c.log_index
    FROM (SELECT DISTINCT ON (n.account_id, n.term_id, n.curve_id)
                 n.account_id, n.term_id, n.curve_id, n.total_shares, n.block_number, n.log_index,
                 sum(n.assets) OVER w AS redeemed, count(*) OVER w AS moves
          FROM new_events n
          WINDOW w AS (PARTITION BY n.account_id, n.term_id, n.curve_id)
          ORDER BY n.account_id, n.term_id, n.curve_id, n.block_number DESC, n.log_index DESC) c
    ORDER BY c.account_id, c.term_id, c.curve_id
    ON CONFLICT (account_id, term_id, curve_id) DO UPDATE SET
        shares = CASE
            WHEN ledger.is_after(excluded.last_redeem_block, excluded.last_redeem_log_index, p.last_redeem_block, p.last_redeem_log_index)
             AND ledger.is_after(excluded.last_redeem_block, excluded.last_redeem_log_index, p.last_deposit_block, p.last_deposit_log_index)
            THEN excluded.shares ELSE p.shares END,
        total_redeem_assets = p.total_redeem_assets + excluded.total_redeem_assets,
        redeem_count = p.redeem_count + excluded.redeem_count,
        last_redeem_block = CASE
            WHEN ledger.is_after(excluded.last_redeem_block, excluded.last_redeem_log_index, p.last_redeem_block, p.last_redeem_log_index)
            THEN excluded.last_redeem_block ELSE p.last_redeem_block END,
        last_redeem_log_index = CASE
            WHEN ledger.is_after(excluded.last_redeem_block, excluded.last_redeem_log_index, p.last_redeem_block, p.last_redeem_log_index)
            THEN excluded.last_redeem_log_index ELSE p.last_redeem_log_index END;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.apply_redeems() IS
    'Statement-level AFTER INSERT trigger on redeemed_events: collapses the statement''s redeems per redeeming position and upserts them in key order, shares and the last redeem by last write wins, totals and counts by addition. The triggers on ledger.position carry the change on to the vaults.';

-- Share price changes: vault -------------------------------------------------------------------------

CREATE FUNCTION ledger.apply_share_price_events() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    INSERT INTO ledger.vault AS v (term_id, curve_id, total_shares, total_assets, share_price, position_count, market_cap,
                                   last_price_block, last_price_log_index)
    SELECT l.term_id, l.curve_id, l.total_shares, l.total_assets, l.share_price, 0,
           div(l.total_shares * l.share_price, 1000000000000000000), l.block_number, l.log_index
    FROM (SELECT DISTINCT ON (n.term_id, n.curve_id) n.*
          FROM new_events n
          ORDER BY n.term_id, n.curve_id, n.block_number DESC, n.log_index DESC) l
    ORDER BY l.term_id, l.curve_id
    ON CONFLICT (term_id, curve_id) DO UPDATE SET
        total_shares = excluded.total_shares,
        total_assets = excluded.total_assets,
        share_price = excluded.share_price,
        market_cap = excluded.market_cap,
        last_price_block = excluded.last_price_block,
        last_price_log_index = excluded.last_price_log_index
    WHERE ledger.is_after(excluded.last_price_block, excluded.last_price_log_index, v.last_price_block, v.last_price_log_index);
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.apply_share_price_events() IS
    'Statement-level AFTER INSERT trigger on share_price_changed_events: sets each vault''s price state from the statement''s latest event for it, unless a later one is already applied (last write wins). The triggers on ledger.vault carry the change on to the term.';

-- Cascades: position -> vault -> term ------------------------------------------------------------------
-- Each level's statement-level triggers read the true old and new rows from their transition
-- tables, so no level reads a row and writes it back, and no advisory lock is needed: the upserts
-- themselves serialise writers of one key, and each level locks its rows in key order.

CREATE FUNCTION ledger.add_vault_holders(term_ids text[], curve_ids bigint[], holder_deltas bigint[]) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
    SET plan_cache_mode = force_generic_plan
AS $$
BEGIN
    INSERT INTO ledger.vault AS v (term_id, curve_id, total_shares, total_assets, share_price, position_count, market_cap)
    SELECT d.term_id, d.curve_id, 0, 0, 0, d.delta, 0
    FROM unnest(term_ids, curve_ids, holder_deltas) AS d (term_id, curve_id, delta)
    WHERE d.delta <> 0 OR NOT EXISTS (SELECT FROM ledger.vault x WHERE x.term_id = d.term_id AND x.curve_id = d.curve_id)
    ORDER BY d.term_id, d.curve_id
    ON CONFLICT (term_id, curve_id) DO UPDATE SET position_count = v.position_count + excluded.position_count;
END;
$$;
COMMENT ON FUNCTION ledger.add_vault_holders(text[], bigint[], bigint[]) IS
    'Adds a change in holders to each named vault''s position_count, in vault order, creating a vault that does not exist yet even when its change is zero.';

CREATE FUNCTION ledger.cascade_new_positions() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    term_ids text[];
    curve_ids bigint[];
    holder_deltas bigint[];
BEGIN
    -- A new position may be its vault's first, so every vault it names is passed on.
    SELECT array_agg(d.term_id ORDER BY d.term_id, d.curve_id), array_agg(d.curve_id ORDER BY d.term_id, d.curve_id),
           array_agg(d.delta ORDER BY d.term_id, d.curve_id)
    INTO term_ids, curve_ids, holder_deltas
    FROM (SELECT n.term_id, n.curve_id, count(*) FILTER (WHERE n.shares > 0) AS delta
          FROM new_rows n GROUP BY n.term_id, n.curve_id) d;
    IF term_ids IS NOT NULL THEN
        PERFORM ledger.add_vault_holders(term_ids, curve_ids, holder_deltas);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.cascade_new_positions() IS
    'Statement-level AFTER INSERT trigger on ledger.position: counts the new positions holding shares into their vaults, creating the vaults they are the first to name.';

CREATE FUNCTION ledger.cascade_changed_positions() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    term_ids text[];
    curve_ids bigint[];
    holder_deltas bigint[];
BEGIN
    -- An existing position's vault exists: only a change in who holds shares moves it.
    SELECT array_agg(d.term_id ORDER BY d.term_id, d.curve_id), array_agg(d.curve_id ORDER BY d.term_id, d.curve_id),
           array_agg(d.delta ORDER BY d.term_id, d.curve_id)
    INTO term_ids, curve_ids, holder_deltas
    FROM (SELECT c.term_id, c.curve_id, sum(c.held)::bigint AS delta
          FROM (SELECT n.term_id, n.curve_id, (n.shares > 0)::int AS held FROM new_rows n
                UNION ALL
                SELECT o.term_id, o.curve_id, -(o.shares > 0)::int FROM old_rows o) c
          GROUP BY c.term_id, c.curve_id) d
    WHERE d.delta <> 0;
    IF term_ids IS NOT NULL THEN
        PERFORM ledger.add_vault_holders(term_ids, curve_ids, holder_deltas);
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.cascade_changed_positions() IS
    'Statement-level AFTER UPDATE trigger on ledger.position: adds the change in positions holding shares, old rows against new, to each vault''s position_count.';

CREATE FUNCTION ledger.cascade_new_vaults() RETURNS trigger
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

CREATE FUNCTION ledger.cascade_changed_vaults() RETURNS trigger
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

CREATE TRIGGER position_inserted AFTER INSERT ON ledger.position
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger.cascade_new_positions();
CREATE TRIGGER position_updated AFTER UPDATE ON ledger.position
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger.cascade_changed_positions();
CREATE TRIGGER vault_inserted AFTER INSERT ON ledger.vault
    REFERENCING NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger.cascade_new_vaults();
CREATE TRIGGER vault_updated AFTER UPDATE ON ledger.vault
    REFERENCING OLD TABLE AS old_rows NEW TABLE AS new_rows FOR EACH STATEMENT EXECUTE FUNCTION ledger.cascade_changed_vaults();

CREATE TRIGGER atom_created_events_maintain AFTER INSERT ON ledger.atom_created_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.apply_atoms_created();
CREATE TRIGGER triple_created_events_maintain AFTER INSERT ON ledger.triple_created_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.apply_triples_created();
CREATE TRIGGER deposited_events_maintain AFTER INSERT ON ledger.deposited_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.apply_deposits();
CREATE TRIGGER redeemed_events_maintain AFTER INSERT ON ledger.redeemed_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.apply_redeems();
CREATE TRIGGER share_price_changed_events_maintain AFTER INSERT ON ledger.share_price_changed_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.apply_share_price_events();

-- Analytics --------------------------------------------------------------------------------------------

CREATE FUNCTION ledger.process_analytics_queue(max_entries integer) RETURNS jsonb
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    entries bigint;
    terms text[];
    triples text[];
    pairs bigint;
    firsts text[];
    seconds text[];
    groups bigint;
BEGIN
    IF max_entries IS NULL OR max_entries < 1 THEN
        RAISE EXCEPTION 'process_analytics_queue takes a positive number of queue entries, got %', coalesce(max_entries::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Single-flight: two drains recomputing one group at once could commit an older result last.
    IF NOT pg_try_advisory_xact_lock(45) THEN
        RETURN jsonb_build_object('status', 'skipped');
    END IF;

    -- Taking the entries first means every change they stand for has committed, so the recompute
    -- below, in later statements, sees it. Changes committed since are still queued.
    WITH taken AS (
        DELETE FROM ledger.analytics_queue q
        WHERE q.id IN (SELECT id FROM ledger.analytics_queue ORDER BY id LIMIT max_entries)
        RETURNING q.term_id)
    SELECT count(*), array_agg(DISTINCT t.term_id) INTO entries, terms FROM taken t;
    IF entries = 0 THEN
        RETURN jsonb_build_object('status', 'ok', 'entries', 0, 'triples', 0, 'groups', 0);
    END IF;

    SELECT array_agg(t.term_id) INTO triples
    FROM (SELECT term_id FROM ledger.triple WHERE term_id = ANY (terms)
          UNION
          SELECT term_id FROM ledger.triple WHERE counter_term_id = ANY (terms)) t;
    triples := coalesce(triples, '{}');

    DELETE FROM ledger.triple_vault WHERE term_id = ANY (triples);
    INSERT INTO ledger.triple_vault SELECT * FROM ledger.triple_vault_definition WHERE term_id = ANY (triples);
    DELETE FROM ledger.triple_term WHERE term_id = ANY (triples);
    INSERT INTO ledger.triple_term SELECT * FROM ledger.triple_term_definition WHERE term_id = ANY (triples);

    -- A group is recomputed from its definition. Only a plain filter on one grouping column reaches
    -- inside the grouped view (and its index); the exact pairs are kept by the semi-join outside.
    SELECT count(*), array_agg(g.predicate_id), array_agg(g.object_id) INTO pairs, firsts, seconds
    FROM (SELECT DISTINCT predicate_id, object_id FROM ledger.triple WHERE term_id = ANY (triples)) g;
    DELETE FROM ledger.predicate_object po USING unnest(firsts, seconds) AS g (predicate_id, object_id)
    WHERE po.predicate_id = g.predicate_id AND po.object_id = g.object_id;
    INSERT INTO ledger.predicate_object
    SELECT d.* FROM ledger.predicate_object_definition d
    WHERE d.object_id = ANY (seconds) AND (d.predicate_id, d.object_id) IN (SELECT * FROM unnest(firsts, seconds));
    groups := pairs;

    SELECT count(*), array_agg(g.subject_id), array_agg(g.predicate_id) INTO pairs, firsts, seconds
    FROM (SELECT DISTINCT subject_id, predicate_id FROM ledger.triple WHERE term_id = ANY (triples)) g;
    DELETE FROM ledger.subject_predicate sp USING unnest(firsts, seconds) AS g (subject_id, predicate_id)
    WHERE sp.subject_id = g.subject_id AND sp.predicate_id = g.predicate_id;
    INSERT INTO ledger.subject_predicate
    SELECT d.* FROM ledger.subject_predicate_definition d
    WHERE d.subject_id = ANY (firsts) AND (d.subject_id, d.predicate_id) IN (SELECT * FROM unnest(firsts, seconds));
    groups := groups + pairs;

    RETURN jsonb_build_object('status', 'ok', 'entries', entries, 'triples', cardinality(triples), 'groups', groups);
END;
$$;
COMMENT ON FUNCTION ledger.process_analytics_queue(integer) IS
    'Drains up to max_entries of the analytics queue, oldest first: recomputes triple_vault and triple_term of every triple whose term or counter term changed, then the predicate_object and subject_predicate groups of those triples, each from its definition. Single-flight on advisory lock 45: a concurrent call returns {"status": "skipped"}. Returns how many entries, triples and groups it handled.';
REVOKE ALL ON FUNCTION ledger.process_analytics_queue(integer) FROM PUBLIC;

CREATE FUNCTION ledger.analytics_backlog() RETURNS TABLE (entries bigint, terms bigint, oldest_age interval)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*), count(DISTINCT term_id), now() - min(enqueued_at) FROM ledger.analytics_queue;
$$;
COMMENT ON FUNCTION ledger.analytics_backlog() IS
    'How far the eventual aggregates lag: queued entries, distinct terms, and the age of the oldest entry (NULL when drained). The seed''s analytics worker lag, for monitoring.';

SELECT jobs.schedule_job('ledger-analytics', '* * * * *', 'SELECT ledger.process_analytics_queue(100000)', 45);
