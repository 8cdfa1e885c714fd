DROP FUNCTION feed.deliveries(text, oid[], jsonb[], text[], integer);

CREATE FUNCTION feed.deliveries(after_cursor text, max_changes integer DEFAULT 1000, only_clients text[] DEFAULT NULL)
    RETURNS TABLE (change_cursor text, commit_seq bigint, change_id bigint, committed_at timestamptz, table_id oid, table_name text,
                   operation text, row_key jsonb, user_id text, row_data jsonb, old_data jsonb, client_ids text[])
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    start record;
BEGIN
    IF max_changes IS NULL OR max_changes < 1 THEN
        RAISE EXCEPTION 'feed.deliveries: max_changes must be at least 1, got %', max_changes USING ERRCODE = 'invalid_parameter_value';
    END IF;
    start := feed.parse_cursor(after_cursor);
    PERFORM feed.check_cursor(start.commit_seq, start.change_id);
    -- The caller's active subscriptions only; a subscription bound to a user gets that user's rows
    -- and public ones, whatever its filters say, as in changes_for(). Row-level security on the log
    -- applies on top.
    -- Subscriptions with the same table, filters and user are one match: a thousand clients with a
    -- handful of distinct filters cost a handful of checks per change, not a thousand.
    RETURN QUERY
    WITH groups AS MATERIALIZED (
        SELECT s.table_id, s.filters, s.user_id, array_agg(s.client_id ORDER BY s.client_id) AS client_ids
        FROM feed.subscriptions s
        WHERE s.is_active AND s.owner = current_user AND (only_clients IS NULL OR s.client_id = ANY (only_clients))
        GROUP BY s.table_id, s.filters, s.user_id)
    SELECT feed.format_cursor(t.commit_seq, c.id), t.commit_seq, c.id, t.committed_at, c.table_id, c.table_name, c.operation,
           c.row_key, c.user_id, c.row_data, c.old_data, m.client_ids
    FROM feed.commits t
    JOIN feed.change_log c ON c.xid = t.xid
    CROSS JOIN LATERAL (
        -- A client has one subscription per table, so it is in one group of the change's table at most.
        SELECT array_agg(id) AS client_ids
        FROM groups g CROSS JOIN unnest(g.client_ids) id
        WHERE g.table_id = c.table_id
          AND (g.user_id IS NULL OR c.user_id = g.user_id OR c.is_public)
          AND (feed.matches(g.filters, c.row_data) OR (c.old_data IS NOT NULL AND feed.matches(g.filters, c.row_data || c.old_data)))) m
    WHERE t.commit_seq >= start.commit_seq
      AND (t.commit_seq > start.commit_seq OR c.id > start.change_id)
      AND m.client_ids IS NOT NULL
    ORDER BY t.commit_seq, c.id
    LIMIT max_changes;
END;
$$;
COMMENT ON FUNCTION feed.deliveries(text, integer, text[]) IS
    'Up to max_changes committed changes after a cursor, in commit order, each with the caller''s clients (active subscriptions, optionally only those named) it is for, through their filters and user bindings: a gateway''s fan-out, one query per stretch of the log. Changes for none of them are skipped. Acknowledges nothing. Read it in a REPEATABLE READ transaction with feed.current_cursor() to know how far a short page covers.';

CREATE INDEX subscriptions_active_by_table ON feed.subscriptions (table_id, owner) WHERE is_active;
COMMENT ON INDEX feed.subscriptions_active_by_table IS 'feed.deliveries() looks up, for each change, the active subscriptions of its table.';

REVOKE ALL ON FUNCTION feed.deliveries(text, integer, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION feed.deliveries(text, integer, text[]) TO freshet_client;

CREATE OR REPLACE FUNCTION feed.current_cursor() RETURNS text
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(
        (SELECT feed.format_cursor(t.commit_seq, (SELECT max(c.id) FROM feed.change_log c WHERE c.xid = t.xid))
         FROM feed.commits t WHERE t.commit_seq IS NOT NULL ORDER BY t.commit_seq DESC LIMIT 1),
        (SELECT feed.format_cursor(s.pruned_seq, s.pruned_id) FROM feed.log_state s));
$$;
