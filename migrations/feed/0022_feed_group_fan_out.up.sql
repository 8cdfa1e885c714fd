-- The gateway's fan-out, at a cost that follows the changes and not the clients. feed.deliveries()
-- read every active subscription of the caller on every round (1,000 subscriptions: 4 ms for one
-- change); now the caller names the distinct (table, filters, user) groups its clients subscribe
-- with, and each change comes back with the groups it is for. The match (filters, user binding)
-- and row-level security stay here. feed.current_cursor() becomes PL/pgSQL so its plan is cached:
-- as a SQL function it was planned on every call, 0.7 ms where the query takes 0.1.

CREATE OR REPLACE FUNCTION feed.current_cursor() RETURNS text
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- feed.format_cursor() spelled out: a SQL function called from a query is parsed again on every run.
    RETURN coalesce(
        (SELECT t.commit_seq || '/' || (SELECT max(c.id) FROM feed.change_log c WHERE c.xid = t.xid)
         FROM feed.commits t WHERE t.commit_seq IS NOT NULL ORDER BY t.commit_seq DESC LIMIT 1),
        (SELECT s.pruned_seq || '/' || s.pruned_id FROM feed.log_state s));
END;
$$;

DROP FUNCTION feed.deliveries(text, integer, text[]);
DROP INDEX feed.subscriptions_active_by_table;

CREATE FUNCTION feed.deliveries(after_cursor text, group_tables oid[], group_filters jsonb[], group_users text[], max_changes integer DEFAULT 1000)
    RETURNS TABLE (change_cursor text, commit_seq bigint, change_id bigint, committed_at timestamptz, table_id oid, table_name text,
                   operation text, row_key jsonb, user_id text, row_data jsonb, old_data jsonb, groups integer[])
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    -- A custom plan is planned on every call, which cost more than running it (0.5 ms a round);
    -- the generic plan is as good: the cursor bounds an index scan whatever its value. Its cost
    -- estimate grows with the log, though, past the point where JIT compiles it (30 ms) for a page
    -- that takes a millisecond.
    SET plan_cache_mode = force_generic_plan
    SET jit = off
AS $$
DECLARE
    start record;
BEGIN
    IF max_changes IS NULL OR max_changes < 1 THEN
        RAISE EXCEPTION 'feed.deliveries: max_changes must be at least 1, got %', max_changes USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF group_tables IS NULL OR group_filters IS NULL OR group_users IS NULL
       OR cardinality(group_tables) <> cardinality(group_filters) OR cardinality(group_tables) <> cardinality(group_users) THEN
        RAISE EXCEPTION 'feed.deliveries: give one table, filters and user (NULL: every user) per group'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A NULL filter would match every row, and a value that is not a list would fail mid-query.
    IF array_position(group_tables, NULL) IS NOT NULL OR array_position(group_filters, NULL) IS NOT NULL
       OR EXISTS (SELECT FROM unnest(group_filters) f
                  WHERE jsonb_typeof(f) <> 'object' OR EXISTS (SELECT FROM jsonb_each(f) e WHERE jsonb_typeof(e.value) <> 'array')) THEN
        RAISE EXCEPTION 'feed.deliveries: give each group''s table, and its filters as feed.subscriptions holds them ({"column": [values]})'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    start := feed.parse_cursor(after_cursor);
    PERFORM feed.check_cursor(start.commit_seq, start.change_id);
    -- A group bound to a user gets that user's rows and public ones, whatever its filters say, as
    -- in changes_for(); row-level security on the log applies on top, so a role bound to a user
    -- sees that user's rows only, whatever groups it names.
    -- feed.format_cursor() and feed.matches() are spelled out, so they are planned once with the
    -- query: a SQL function called from a query is parsed again on every run. The pgTAP test
    -- checks the result against changes_for(), which calls feed.matches().
    RETURN QUERY
    SELECT t.commit_seq || '/' || c.id, t.commit_seq, c.id, t.committed_at, c.table_id, c.table_name, c.operation,
           c.row_key, c.user_id, c.row_data, c.old_data, m.groups
    FROM feed.commits t
    JOIN feed.change_log c ON c.xid = t.xid
    CROSS JOIN LATERAL (
        -- The new row matches, or (an UPDATE) the old one did: every filtered column equal to one of its values.
        SELECT array_agg(g.n::integer ORDER BY g.n) AS groups
        FROM unnest(group_tables, group_filters, group_users) WITH ORDINALITY AS g (table_id, filters, user_id, n)
        WHERE g.table_id = c.table_id
          AND (g.user_id IS NULL OR c.user_id = g.user_id OR c.is_public)
          AND (c.row_data IS NULL
               OR NOT EXISTS (SELECT FROM jsonb_each(g.filters) f
                              WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(f.value) v WHERE v = coalesce(c.row_data -> f.key, 'null')))
               OR c.old_data IS NOT NULL
                  AND NOT EXISTS (SELECT FROM jsonb_each(g.filters) f
                                  WHERE NOT EXISTS (SELECT FROM jsonb_array_elements(f.value) v
                                                    WHERE v = coalesce((c.row_data || c.old_data) -> f.key, 'null'))))) m
    WHERE t.commit_seq >= start.commit_seq
      AND (t.commit_seq > start.commit_seq OR c.id > start.change_id)
      AND m.groups IS NOT NULL
    ORDER BY t.commit_seq, c.id
    LIMIT max_changes;
END;
$$;
COMMENT ON FUNCTION feed.deliveries(text, oid[], jsonb[], text[], integer) IS
    'A gateway''s fan-out, one query per stretch of the log: up to max_changes committed changes after a cursor, in commit order, each with the groups it is for (1-based positions in the arrays). Group i is table group_tables[i] with filters group_filters[i], as feed.subscriptions holds them, for user group_users[i] (NULL: every user): a thousand clients with a handful of distinct filters cost a handful of matches per change. Changes for no group are skipped. Read it in a REPEATABLE READ transaction with feed.current_cursor() to know how far a short page covers.';

REVOKE ALL ON FUNCTION feed.deliveries(text, oid[], jsonb[], text[], integer) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION feed.deliveries(text, oid[], jsonb[], text[], integer) TO freshet_client;
