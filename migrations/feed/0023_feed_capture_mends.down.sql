-- The generator as 0013 made it, and every watched table's capture generated again from it.

SELECT feed.forget_dropped_tables();

CREATE OR REPLACE FUNCTION feed.prepare_capture(watched regclass, user_column text) RETURNS boolean
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keys text[];
    qualified text;
    channel text;
    key_of_n text;
    key_of_o text;
    user_of_n text := 'NULL::text';
    user_of_o text := 'NULL::text';
    pairs text;
    is_public boolean := user_column IS NULL;
    capture record;
    function_name text;
    table_owner regrole;
    current feed.watched_tables;
BEGIN
    IF watched IS NULL THEN
        RAISE EXCEPTION 'feed.watch: table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT c.relowner::regrole INTO table_owner FROM pg_class c WHERE c.oid = watched AND c.relkind IN ('r', 'p');
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feed.watch: % is not a table', watched USING ERRCODE = 'wrong_object_type';
    END IF;
    IF watched::oid IN (SELECT c.oid FROM pg_class c WHERE c.relnamespace = 'feed'::regnamespace) THEN
        RAISE EXCEPTION 'feed.watch: % belongs to the feed itself', watched USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT array_agg(a.attname::text ORDER BY k.ordinality) INTO keys
    FROM pg_index i
    CROSS JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k (attnum, ordinality)
    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = k.attnum
    WHERE i.indrelid = watched AND i.indisprimary;
    IF keys IS NULL THEN
        RAISE EXCEPTION 'feed.watch: table % has no primary key', watched
            USING ERRCODE = 'invalid_table_definition',
                  HINT = 'Changes are identified by primary key; add one (ALTER TABLE ... ADD PRIMARY KEY) and watch again.';
    END IF;
    IF user_column IS NOT NULL AND NOT EXISTS (
        SELECT FROM pg_attribute a WHERE a.attrelid = watched AND a.attname = user_column AND a.attnum > 0 AND NOT a.attisdropped) THEN
        RAISE EXCEPTION 'feed.watch: column "%" does not exist in table %', left(user_column, 64), watched USING ERRCODE = 'undefined_column';
    END IF;

    -- Nothing to do when the capture stands as asked, with all its triggers, owned by the table's owner.
    SELECT * INTO current FROM feed.watched_tables w WHERE w.table_id = watched;
    IF FOUND AND current.user_column IS NOT DISTINCT FROM prepare_capture.user_column AND current.key_columns = keys
       AND (SELECT count(*) FROM pg_trigger t WHERE t.tgrelid = watched AND t.tgname LIKE 'feed\_capture\_%') = 4
       AND current.capture_owner = table_owner THEN
        RETURN false;
    END IF;
    PERFORM feed.unwatch(watched);
    -- A new capture may see other users' rows differently: cached empty stretches no longer hold.
    UPDATE feed.subscriptions s SET empty_from_seq = NULL, empty_from_id = NULL, empty_to_seq = NULL, empty_to_id = NULL
    WHERE s.table_id = watched AND s.empty_to_seq IS NOT NULL;

    qualified := watched::text;
    channel := feed.channel_name(watched);
    SELECT 'jsonb_build_object(' || string_agg(format('%L, n.%I', k, k), ', ' ORDER BY i) || ')',
           'jsonb_build_object(' || string_agg(format('%L, o.%I', k, k), ', ' ORDER BY i) || ')',
           string_agg(format('n.%I = o.%I', k, k), ' AND ' ORDER BY i)
    INTO key_of_n, key_of_o, pairs
    FROM unnest(keys) WITH ORDINALITY AS u (k, i);
    IF user_column IS NOT NULL THEN
        user_of_n := format('n.%I::text', user_column);
        user_of_o := format('o.%I::text', user_column);
        -- A row that moves to another user reaches its old user as a DELETE and its new one as an INSERT.
        -- (jsonb_build_array so that NULL users pair up, with an operator a FULL JOIN can hash.)
        pairs := pairs || format(' AND jsonb_build_array(n.%I) = jsonb_build_array(o.%I)', user_column, user_column);
    END IF;

    -- One generated function per operation: a single INSERT ... SELECT from the transition tables.
    -- An UPDATE pairs old and new rows by key (and user); an unpaired row becomes a DELETE or an
    -- INSERT, and the DELETEs come first, so a reader applying changes in order never loses a row.
    FOR capture IN
        SELECT * FROM (VALUES
            ('INSERT', 'NEW TABLE AS new_rows',
             format($f$'INSERT', %s, %s, %L, to_jsonb(n), NULL FROM new_rows n$f$, key_of_n, user_of_n, is_public)),
            ('DELETE', 'OLD TABLE AS old_rows',
             format($f$'DELETE', %s, %s, %L, to_jsonb(o), NULL FROM old_rows o$f$, key_of_o, user_of_o, is_public)),
            ('UPDATE', 'OLD TABLE AS old_rows NEW TABLE AS new_rows',
             format($f$CASE WHEN o IS NULL THEN 'INSERT' WHEN n IS NULL THEN 'DELETE' ELSE 'UPDATE' END,
               CASE WHEN n IS NULL THEN %s ELSE %s END, CASE WHEN n IS NULL THEN %s ELSE %s END, %L,
               CASE WHEN n IS NULL THEN to_jsonb(o) ELSE to_jsonb(n) END,
               CASE WHEN NOT (n IS NULL OR o IS NULL) THEN
                   (SELECT coalesce(jsonb_object_agg(e.key, e.value), '{}') FROM jsonb_each(to_jsonb(o)) e
                    WHERE e.value IS DISTINCT FROM to_jsonb(n) -> e.key)
               END
        FROM new_rows n FULL JOIN old_rows o ON %s
        ORDER BY CASE WHEN n IS NULL THEN 0 ELSE 1 END$f$, key_of_o, key_of_n, user_of_o, user_of_n, is_public, pairs))
        ) AS c (operation, transition_tables, selected)
    LOOP
        function_name := 'capture_' || watched::oid || '_' || lower(capture.operation);
        -- Fixed settings, so the logged JSON (and so filter matching) does not depend on the writer's session.
        EXECUTE format($f$CREATE FUNCTION feed.%I() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER
            SET search_path = pg_catalog, pg_temp SET TimeZone = 'UTC' SET IntervalStyle = 'postgres'
            SET extra_float_digits = 1 SET bytea_output = 'hex' AS %L$f$,
            function_name, format($f$
DECLARE
    logged_rows bigint;
BEGIN
    IF TG_RELID <> %s THEN
        RAISE EXCEPTION 'feed capture of %s cannot run on %%', TG_RELID::regclass USING ERRCODE = 'insufficient_privilege';
    END IF;
    INSERT INTO feed.change_log (xid, table_id, table_name, operation, row_key, user_id, is_public, row_data, old_data)
    SELECT pg_current_xact_id(), %s, %L, %s;
    GET DIAGNOSTICS logged_rows = ROW_COUNT;
    IF logged_rows > 0 THEN
        PERFORM feed.logged(%L, %L, %L, currval('feed.change_log_id_seq'));
    END IF;
    RETURN NULL;
END;
$f$, watched::oid, replace(replace(qualified, '''', ''''''), '%', '%%'), watched::oid, qualified, capture.selected, qualified, channel, capture.operation));
        EXECUTE format('COMMENT ON FUNCTION feed.%I() IS %L', function_name,
            format('Generated by feed.watch(): logs the rows of each %s statement on %s and sends its hint on channel %s. Owned by the table''s owner, whose rights it runs with.',
                   capture.operation, qualified, channel));
        EXECUTE format('REVOKE ALL ON FUNCTION feed.%I() FROM PUBLIC', function_name);
        EXECUTE format('GRANT EXECUTE ON FUNCTION feed.%I() TO freshet_admin', function_name);
        EXECUTE format('ALTER FUNCTION feed.%I() OWNER TO %I', function_name, table_owner::text);
    END LOOP;

    INSERT INTO feed.watched_tables (table_id, table_name, user_column, key_columns, channel, capture_owner)
    VALUES (watched, qualified, user_column, keys, channel, table_owner);
    PERFORM feed.grant_capture(table_owner);
    RETURN true;
END;
$$;

-- Every watched table's capture functions again, from the generator as it now stands; each keeps
-- its watched_at.
CREATE TEMPORARY TABLE feed_rewatch_0023 ON COMMIT DROP AS SELECT w.table_id, w.user_column, w.watched_at FROM feed.watched_tables w;
SELECT feed.unwatch(r.table_id) FROM feed_rewatch_0023 r;
SELECT feed.watch(r.table_id, r.user_column) FROM feed_rewatch_0023 r ORDER BY r.table_id;
UPDATE feed.watched_tables w SET watched_at = r.watched_at FROM feed_rewatch_0023 r WHERE w.table_id = r.table_id;

-- Under ALTER EXTENSION ... UPDATE, the functions watch() just made would belong to the extension,
-- and unwatch() could no longer drop them: they are the table owner's, as watch() makes them anywhere else.
DO $$
DECLARE
    made record;
BEGIN
    FOR made IN
        SELECT p.oid::regprocedure AS function, e.extname
        FROM pg_proc p
        JOIN pg_depend d ON d.classid = 'pg_proc'::regclass AND d.objid = p.oid AND d.deptype = 'e'
        JOIN pg_extension e ON e.oid = d.refobjid
        WHERE p.pronamespace = 'feed'::regnamespace AND p.proname ~ '^capture_[0-9]+_(insert|update|delete)$'
    LOOP
        EXECUTE format('ALTER EXTENSION %I DROP FUNCTION %s', made.extname, made.function);
    END LOOP;
END $$;

DROP FUNCTION feed.forget_dropped_tables();
