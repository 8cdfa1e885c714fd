-- Hardening, feed.
--
-- Capture never runs a table owner's code with the feed's rights. The capture functions of a
-- watched table are owned by the table's owner: to_jsonb() of a column whose type has a cast to
-- json, or ::text of a user column, runs that owner's code with that owner's rights and no more.
-- The owner may insert into feed.change_log, but row-level security admits only changes of watched
-- tables it owns, in its own transaction: the changes it could have caused by writing its table.
-- watch() creates the triggers with the caller's rights, so only a role that may put triggers on a
-- table can watch it.
--
-- Commit order is kept under a lock on feed.commit_gate, which only the feed's owner can take,
-- instead of advisory key 47, which any role could squat.
--
-- Subscriptions: clients write client_id, table, filters and user; the feed maintains the cursor,
-- the activity and the known-empty stretch. A client proves a subscription is its own with the
-- secret its row holds (visible to its owner only), as a worker proves a claim with its lease. The
-- cursor only moves forward and never past the end of the log, and client ids are per owner.

-- Commit order ----------------------------------------------------------------------------------------

CREATE TABLE feed.commit_gate ();
COMMENT ON TABLE feed.commit_gate IS
    'Never holds rows: feed.stamp_commit() locks it (SHARE UPDATE EXCLUSIVE, until the transaction ends) so commit stamps follow commit order. No role but the feed''s owner can lock it.';
REVOKE ALL ON feed.commit_gate FROM PUBLIC;

CREATE OR REPLACE FUNCTION feed.stamp_commit() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- The weakest self-conflicting mode: neither fast-path nor strong, so taking it scans no
    -- other backend's fast-path locks.
    LOCK TABLE feed.commit_gate IN SHARE UPDATE EXCLUSIVE MODE;
    UPDATE feed.commits t SET commit_seq = nextval('feed.commit_seq'), committed_at = clock_timestamp()
    WHERE t.xid = NEW.xid;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION feed.stamp_commit() IS
    'Deferred to commit: locks feed.commit_gate (held until the transaction ends) and stamps the transaction''s commit_seq, so sequence order is commit order.';
COMMENT ON SEQUENCE feed.commit_seq IS 'Commit sequence numbers; taken only under the lock on feed.commit_gate, at commit.';

CREATE OR REPLACE FUNCTION feed.logged(table_name text, channel text, operation text, last_change bigint) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF last_change IS NULL THEN
        RETURN;
    END IF;
    INSERT INTO feed.commits (xid) VALUES (pg_current_xact_id()) ON CONFLICT DO NOTHING;
    PERFORM pg_notify(channel, json_build_object('table', table_name, 'operation', operation, 'id', last_change)::text);
END;
$$;

-- Capture ----------------------------------------------------------------------------------------------

ALTER TABLE feed.watched_tables ADD COLUMN capture_owner regrole;
COMMENT ON COLUMN feed.watched_tables.capture_owner IS
    'The role that owns the table''s capture functions (its owner when watch() ran), and so the one whose rights capture runs with and who may log its changes.';

-- PL/pgSQL rather than SQL: the policy calls it once per capturing statement, and a SQL function
-- that cannot be inlined is planned again on every call.
CREATE FUNCTION feed.capturable_tables(role_name name) RETURNS oid[]
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RETURN (SELECT coalesce(array_agg(w.table_id::oid), '{}') FROM feed.watched_tables w
            WHERE pg_has_role(role_name, w.capture_owner, 'USAGE'));
END;
$$;
COMMENT ON FUNCTION feed.capturable_tables(name) IS
    'The watched tables whose changes a role may log: those whose capture it owns (or holds the rights of that owner). The change log''s insert policy admits nothing else. An ALTER TABLE ... OWNER TO leaves the capture with the old owner until watch() runs again, so writes never stall on it.';

CREATE POLICY change_log_capture ON feed.change_log FOR INSERT WITH CHECK (
    xid = pg_current_xact_id() AND table_id = ANY ((SELECT feed.capturable_tables(current_user))::oid[]));

CREATE FUNCTION feed.grant_capture(table_owner regrole) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF table_owner = (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'feed')::regrole THEN
        RETURN;
    END IF;
    EXECUTE format('GRANT USAGE ON SCHEMA feed TO %I', table_owner::text);
    EXECUTE format('GRANT INSERT ON feed.change_log TO %I', table_owner::text);
    EXECUTE format('GRANT USAGE ON SEQUENCE feed.change_log_id_seq TO %I', table_owner::text);
    EXECUTE format('GRANT EXECUTE ON FUNCTION feed.logged(text, text, text, bigint), feed.capturable_tables(name) TO %I', table_owner::text);
END;
$$;
COMMENT ON FUNCTION feed.grant_capture(regrole) IS 'Gives a watched table''s owner what its capture functions need: inserting into the change log, under its policy.';

CREATE FUNCTION feed.revoke_capture(table_owner regrole) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF table_owner = (SELECT n.nspowner FROM pg_namespace n WHERE n.nspname = 'feed')::regrole
       OR EXISTS (SELECT FROM feed.watched_tables w WHERE w.capture_owner = table_owner) THEN
        RETURN;
    END IF;
    EXECUTE format('REVOKE EXECUTE ON FUNCTION feed.logged(text, text, text, bigint), feed.capturable_tables(name) FROM %I', table_owner::text);
    EXECUTE format('REVOKE USAGE ON SEQUENCE feed.change_log_id_seq FROM %I', table_owner::text);
    EXECUTE format('REVOKE INSERT ON feed.change_log FROM %I', table_owner::text);
    EXECUTE format('REVOKE USAGE ON SCHEMA feed FROM %I', table_owner::text);
END;
$$;
COMMENT ON FUNCTION feed.revoke_capture(regrole) IS 'Takes back what feed.grant_capture() gave, once the role owns no watched table.';

-- The feed's own part of unwatching: triggers, capture functions, registration and grants.
CREATE OR REPLACE FUNCTION feed.unwatch(watched regclass) RETURNS boolean
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
    SET client_min_messages = warning
AS $$
DECLARE
    operation text;
    table_owner regrole;
BEGIN
    IF watched IS NULL THEN
        RAISE EXCEPTION 'feed.unwatch: table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT w.capture_owner INTO table_owner FROM feed.watched_tables w WHERE w.table_id = watched;
    FOREACH operation IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'feed_capture_' || operation, watched);
    END LOOP;
    FOREACH operation IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS feed.%I()', 'capture_' || watched::oid || '_' || operation);
    END LOOP;
    DELETE FROM feed.watched_tables w WHERE w.table_id = watched;
    IF FOUND THEN
        IF table_owner IS NOT NULL THEN
            PERFORM feed.revoke_capture(table_owner);
        END IF;
        RETURN true;
    END IF;
    RETURN false;
END;
$$;
COMMENT ON FUNCTION feed.unwatch(regclass) IS 'Removes a table''s change capture; its logged changes stay readable. Idempotent: returns whether the table was watched. freshet_admin may call it.';

CREATE FUNCTION feed.prepare_capture(watched regclass, user_column text) RETURNS boolean
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
COMMENT ON FUNCTION feed.prepare_capture(regclass, text) IS
    'The feed''s part of feed.watch(): checks the table, generates its capture functions owned by the table''s owner, registers it and grants that owner what capture needs. Creates no trigger, so by itself it captures nothing. Returns false when the capture already stands as asked.';

CREATE OR REPLACE FUNCTION feed.watch(watched regclass, user_column text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    capture record;
BEGIN
    IF NOT feed.prepare_capture(watched, user_column) THEN
        RETURN;
    END IF;
    -- With the caller's rights: watching a table takes the right to put triggers on it.
    FOR capture IN
        SELECT * FROM (VALUES ('INSERT', 'NEW TABLE AS new_rows'), ('DELETE', 'OLD TABLE AS old_rows'),
                              ('UPDATE', 'OLD TABLE AS old_rows NEW TABLE AS new_rows')) AS c (operation, transition_tables)
    LOOP
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE FUNCTION feed.%I()',
            'feed_capture_' || lower(capture.operation), capture.operation, watched, capture.transition_tables,
            'capture_' || watched::oid || '_' || lower(capture.operation));
    END LOOP;
    EXECUTE format('CREATE TRIGGER feed_capture_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION feed.capture_truncate()', watched);
END;
$$;
COMMENT ON FUNCTION feed.watch(regclass, text) IS
    'Attaches change capture to a table with a primary key: statement-level AFTER INSERT, UPDATE, DELETE (with transition tables) and TRUNCATE triggers log every change to feed.change_log and send one NOTIFY per statement on feed.channel_name(table). user_column names the column holding the owning user; without it the table is public. The triggers are created with the caller''s rights, so the caller needs the TRIGGER privilege on the table; the capture runs with the table owner''s rights. Idempotent; watching again with another user column re-creates the capture. freshet_admin may call it.';

-- Subscriptions ----------------------------------------------------------------------------------------

ALTER TABLE feed.subscriptions ADD COLUMN secret uuid NOT NULL DEFAULT gen_random_uuid();
COMMENT ON COLUMN feed.subscriptions.secret IS
    'Proof of ownership: only the subscription''s owner can read it (row-level security), and feed.record_read() acts on a subscription only when it is given.';
ALTER TABLE feed.subscriptions DROP CONSTRAINT subscriptions_client_id_table_id_key;
ALTER TABLE feed.subscriptions ADD CONSTRAINT subscriptions_owner_client_id_table_id_key UNIQUE (owner, client_id, table_id);
COMMENT ON TABLE feed.subscriptions IS
    'Client subscriptions (seed 002): a client, a table, filters and the cursor it last acknowledged. Client ids are per owning role. user_id is the user whose rows the client may receive (NULL: a service client). The cursor, the activity and the empty_* stretch (after the cursor, known to hold no change for this subscription, so polling does not rescan it) are maintained by the feed, never written by clients.';

INSERT INTO feed.settings VALUES
    ('max_retention', '30 days', 'No subscription holds back pruning of changes older than this; readers behind it get 55000.');

CREATE OR REPLACE FUNCTION feed.parse_cursor(cursor text, OUT commit_seq bigint, OUT change_id bigint)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF cursor IS NULL OR cursor !~ '^[0-9]{1,18}/[0-9]{1,18}$' THEN
        RAISE EXCEPTION 'invalid feed cursor: %', foundation.excerpt(cursor, 40)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A cursor looks like ''12/345'' (commit sequence/change id), as returned in the position column; ''0/0'' is the start of the log.';
    END IF;
    commit_seq := split_part(cursor, '/', 1)::bigint;
    change_id := split_part(cursor, '/', 2)::bigint;
END;
$$;

CREATE OR REPLACE FUNCTION feed.check_cursor(commit_seq bigint, change_id bigint) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state feed.log_state;
    head record;
BEGIN
    SELECT * INTO state FROM feed.log_state;
    IF (commit_seq, change_id) < (state.pruned_seq, state.pruned_id) THEN
        RAISE EXCEPTION 'feed cursor % is older than the log, which is pruned through %',
                feed.format_cursor(commit_seq, change_id), feed.format_cursor(state.pruned_seq, state.pruned_id)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Changes after that cursor are gone: reload the table''s rows, then read on from feed.current_cursor() taken before the reload.';
    END IF;
    head := feed.parse_cursor(feed.current_cursor());
    IF (commit_seq, change_id) > (head.commit_seq, head.change_id) THEN
        RAISE EXCEPTION 'feed cursor % is beyond the end of the log, %', feed.format_cursor(commit_seq, change_id),
                feed.format_cursor(head.commit_seq, head.change_id)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Pass a cursor the feed returned, or feed.current_cursor() to start at the end.';
    END IF;
END;
$$;
COMMENT ON FUNCTION feed.check_cursor(bigint, bigint) IS
    'Raises 55000 when changes after the position were already pruned, so a reader never silently skips them, and 22023 for a position beyond the end of the log.';

CREATE FUNCTION feed.record_read(subscription_ids bigint[], secrets uuid[], read_seq bigint, read_id bigint,
                                 empty_from_seq bigint DEFAULT NULL, empty_from_id bigint DEFAULT NULL,
                                 empty_to_seq bigint DEFAULT NULL, empty_to_id bigint DEFAULT NULL) RETURNS integer
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    head record := feed.parse_cursor(feed.current_cursor());
    recorded integer;
BEGIN
    IF cardinality(subscription_ids) IS DISTINCT FROM cardinality(secrets) THEN
        RAISE EXCEPTION 'feed.record_read: give one secret per subscription' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF read_seq IS NOT NULL AND (read_seq, read_id) > (head.commit_seq, head.change_id) THEN
        RAISE EXCEPTION 'feed cursor % is beyond the end of the log', feed.format_cursor(read_seq, read_id)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF empty_to_seq IS NOT NULL AND ((empty_to_seq, empty_to_id) > (head.commit_seq, head.change_id)
                                     OR (empty_from_seq, empty_from_id) > (empty_to_seq, empty_to_id)) THEN
        RAISE EXCEPTION 'feed.record_read: an empty stretch lies between the cursor and the end of the log'
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The cursor moves forward only: reading from an earlier cursor never rewinds what was acknowledged.
    UPDATE feed.subscriptions s
    SET cursor_seq = CASE WHEN read_seq IS NOT NULL AND (read_seq, read_id) > (s.cursor_seq, s.cursor_id) THEN read_seq ELSE s.cursor_seq END,
        cursor_id = CASE WHEN read_seq IS NOT NULL AND (read_seq, read_id) > (s.cursor_seq, s.cursor_id) THEN read_id ELSE s.cursor_id END,
        empty_from_seq = coalesce(record_read.empty_from_seq, s.empty_from_seq),
        empty_from_id = coalesce(record_read.empty_from_id, s.empty_from_id),
        empty_to_seq = coalesce(record_read.empty_to_seq, s.empty_to_seq),
        empty_to_id = coalesce(record_read.empty_to_id, s.empty_to_id),
        last_activity = now(), is_active = true
    FROM unnest(subscription_ids, secrets) AS p (id, secret)
    WHERE s.id = p.id AND s.secret = p.secret;
    GET DIAGNOSTICS recorded = ROW_COUNT;
    RETURN recorded;
END;
$$;
COMMENT ON FUNCTION feed.record_read(bigint[], uuid[], bigint, bigint, bigint, bigint, bigint, bigint) IS
    'The feed''s bookkeeping of a read, for subscriptions proved by their secrets: moves the cursor forward (never back, never past the end of the log), records activity, and remembers a stretch known to hold nothing for them. changes_for(), subscribe() and touch() call it; it changes nothing for a wrong secret.';

CREATE OR REPLACE FUNCTION feed.normalize_filters(watched regclass, filters jsonb) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
    SET TimeZone = 'UTC'
    SET IntervalStyle = 'postgres'
    SET extra_float_digits = 1
    SET bytea_output = 'hex'
AS $$
DECLARE
    filter record;
    column_type text;
    type_oid oid;
    values_in jsonb;
    element jsonb;
    typed jsonb;
    normalized jsonb := '{}'::jsonb;
BEGIN
    IF filters IS NULL THEN
        RETURN normalized;
    END IF;
    IF jsonb_typeof(filters) <> 'object' THEN
        RAISE EXCEPTION 'feed filters must be a JSON object of column: value or column: [values], got %', jsonb_typeof(filters)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR filter IN SELECT * FROM jsonb_each(filters) ORDER BY key LOOP
        SELECT format_type(a.atttypid, a.atttypmod), a.atttypid INTO column_type, type_oid
        FROM pg_attribute a WHERE a.attrelid = watched AND a.attname = filter.key AND a.attnum > 0 AND NOT a.attisdropped;
        IF column_type IS NULL THEN
            RAISE EXCEPTION 'feed filter names column "%", which does not exist in table %', left(filter.key, 64), watched
                USING ERRCODE = 'undefined_column';
        END IF;
        -- Converting a value runs its type's code with the subscriber's rights: built-in types only.
        IF type_oid >= 16384 THEN
            RAISE EXCEPTION 'feed filter on column "%": its type % is not built in, so it cannot be filtered on', filter.key, column_type
                USING ERRCODE = 'feature_not_supported';
        END IF;
        values_in := filter.value;
        IF jsonb_typeof(values_in) = 'object' THEN
            IF (SELECT array_agg(k) FROM jsonb_object_keys(values_in) k) IS DISTINCT FROM ARRAY['in'] THEN
                RAISE EXCEPTION 'feed filter on column "%": unsupported operator %; use a value, a list, or {"in": [values]}', filter.key, left(values_in::text, 64)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            values_in := values_in -> 'in';
            IF jsonb_typeof(values_in) <> 'array' THEN
                RAISE EXCEPTION 'feed filter on column "%": the IN-list must be a JSON array, got %', filter.key, jsonb_typeof(values_in)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
        ELSIF jsonb_typeof(values_in) <> 'array' THEN
            values_in := jsonb_build_array(values_in);
        END IF;
        IF jsonb_array_length(values_in) = 0 THEN
            RAISE EXCEPTION 'feed filter on column "%": the IN-list is empty, so nothing would match', filter.key
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        typed := '[]'::jsonb;
        FOR element IN SELECT * FROM jsonb_array_elements(values_in) LOOP
            IF jsonb_typeof(element) IN ('object', 'array') THEN
                RAISE EXCEPTION 'feed filter on column "%": list entries must be single values, got %', filter.key, left(element::text, 64)
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            -- The value in the column's own type, as the capture (in UTC) shows it.
            BEGIN
                IF jsonb_typeof(element) <> 'null' THEN
                    EXECUTE format('SELECT to_jsonb(%L::%s)', element #>> '{}', column_type) INTO element;
                END IF;
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'feed filter on column "%": % is not a valid %', filter.key, left(element::text, 64), column_type
                    USING ERRCODE = 'invalid_parameter_value';
            END;
            typed := typed || jsonb_build_array(element);
        END LOOP;
        normalized := normalized || jsonb_build_object(filter.key, typed);
    END LOOP;
    RETURN normalized;
END;
$$;
COMMENT ON FUNCTION feed.normalize_filters(regclass, jsonb) IS
    'Checks a filter object against the table (known columns of built-in types; a value, a JSON array or {"in": non-empty array} of single values, each valid for the column''s type) and returns it as column: [values in the column''s JSON form, in UTC whatever the session''s time zone]; bad filters raise 42703, 0A000 or 22023.';

CREATE OR REPLACE FUNCTION feed.check_subscription() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    watched feed.watched_tables;
    bound_user text := feed.current_user_id();
BEGIN
    SELECT * INTO watched FROM feed.watched_tables w WHERE w.table_id = NEW.table_id;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feed: table % is not watched', NEW.table_id
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Its owner attaches capture with feed.watch(table, user_column).';
    END IF;
    IF NOT feed.is_service() THEN
        IF bound_user IS NULL THEN
            RAISE EXCEPTION 'feed: role % may not subscribe', current_user
                USING ERRCODE = 'insufficient_privilege', HINT = 'The feed''s administrator grants it with feed.grant_access(role, user_id).';
        END IF;
        IF NEW.user_id IS NULL THEN
            NEW.user_id := bound_user;
        ELSIF NEW.user_id <> bound_user THEN
            RAISE EXCEPTION 'feed: role % is bound to user %, and may not subscribe for user %', current_user, bound_user, foundation.excerpt(NEW.user_id)
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    NEW.filters := feed.normalize_filters(NEW.table_id, NEW.filters);
    IF NEW.user_id IS NOT NULL AND watched.user_column IS NOT NULL
       AND EXISTS (SELECT FROM jsonb_array_elements(NEW.filters -> watched.user_column) v WHERE v #>> '{}' IS DISTINCT FROM NEW.user_id) THEN
        RAISE EXCEPTION 'feed: a client of user % may not filter on other users'' rows (% = %)', NEW.user_id, watched.user_column, left((NEW.filters -> watched.user_column)::text, 64)
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.owner := current_user;
        PERFORM feed.check_cursor(NEW.cursor_seq, NEW.cursor_id);
    ELSIF NEW.owner <> OLD.owner THEN
        RAISE EXCEPTION 'feed: a subscription''s owner cannot change' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' OR NEW.filters <> OLD.filters OR NEW.user_id IS DISTINCT FROM OLD.user_id THEN
        NEW.empty_from_seq := NULL;
        NEW.empty_from_id := NULL;
        NEW.empty_to_seq := NULL;
        NEW.empty_to_id := NULL;
    END IF;
    RETURN NEW;
END;
$$;
COMMENT ON FUNCTION feed.check_subscription() IS
    'Guards every write to feed.subscriptions, however it is made: the table must be watched, the role must have access, a bound role subscribes only for its own user, filters are checked and normalized, and a new subscription starts at a cursor inside the log.';

CREATE OR REPLACE FUNCTION feed.subscribe(client_id text, watched regclass, filters jsonb DEFAULT '{}', user_id text DEFAULT NULL, start_cursor text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    start record;
    subscription feed.subscriptions;
BEGIN
    start := feed.parse_cursor(coalesce(start_cursor, feed.current_cursor()));
    PERFORM feed.check_cursor(start.commit_seq, start.change_id);
    INSERT INTO feed.subscriptions AS s (client_id, table_id, filters, user_id, cursor_seq, cursor_id)
    VALUES (subscribe.client_id, watched, coalesce(subscribe.filters, '{}'), subscribe.user_id, start.commit_seq, start.change_id)
    ON CONFLICT ON CONSTRAINT subscriptions_owner_client_id_table_id_key DO UPDATE
        SET filters = excluded.filters, user_id = excluded.user_id
    RETURNING s.* INTO subscription;
    -- Subscribing again counts as activity, and a later start cursor acknowledges up to it.
    PERFORM feed.record_read(ARRAY[subscription.id], ARRAY[subscription.secret],
                             CASE WHEN start_cursor IS NOT NULL THEN start.commit_seq END, start.change_id);
    RETURN CASE WHEN start_cursor IS NOT NULL THEN feed.format_cursor(start.commit_seq, start.change_id)
                ELSE (SELECT feed.format_cursor(s.cursor_seq, s.cursor_id) FROM feed.subscriptions s WHERE s.id = subscription.id) END;
END;
$$;
COMMENT ON FUNCTION feed.subscribe(text, regclass, jsonb, text, text) IS
    'Subscribes a client (its id is the caller''s own namespace) to a watched table with filters ({"status": ["open", "pending"], "user_id": "0001"}: equality or IN-lists). A new subscription starts at start_cursor, by default the current end of the log; subscribing again updates the filters and keeps the cursor, which a later start_cursor moves forward (never back). Returns the cursor delivery starts from. A cursor beyond the end of the log raises 22023, one older than the pruned log 55000.';

CREATE OR REPLACE FUNCTION feed.touch(client_id text) RETURNS integer
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(feed.record_read(array_agg(s.id), array_agg(s.secret), NULL, NULL), 0)
    FROM feed.subscriptions s
    WHERE s.client_id = touch.client_id AND s.owner = current_user;
$$;
COMMENT ON FUNCTION feed.touch(text) IS 'Records that a client is alive (a heartbeat), keeping its subscriptions active; returns how many it has.';

CREATE OR REPLACE FUNCTION feed.unsubscribe(client_id text, watched regclass DEFAULT NULL) RETURNS integer
    LANGUAGE sql
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (
        DELETE FROM feed.subscriptions s
        WHERE s.client_id = unsubscribe.client_id AND s.owner = current_user AND (watched IS NULL OR s.table_id = watched)
        RETURNING 1)
    SELECT count(*)::integer FROM gone;
$$;

DROP FUNCTION feed.changes_for(text, text, integer);
DROP FUNCTION feed.client_changes(text, bigint, bigint);

CREATE FUNCTION feed.changes_for(client_id text, cursor text DEFAULT NULL, max_changes integer DEFAULT 1000)
    RETURNS TABLE (change_cursor text, commit_seq bigint, change_id bigint, committed_at timestamptz, table_name text, operation text,
                   row_key jsonb, user_id text, row_data jsonb, old_data jsonb, changed_columns text[])
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    start record;
    head record;
    ids bigint[];
    secrets uuid[];
    stored_seq bigint;
    stored_id bigint;
    empty_from_seq bigint;
    empty_from_id bigint;
    empty_to_seq bigint;
    empty_to_id bigint;
    ranges bigint;
    change record;
    delivered integer;
    last_seq bigint;
    last_id bigint;
BEGIN
    IF max_changes IS NULL OR max_changes < 1 THEN
        RAISE EXCEPTION 'feed.changes_for: max_changes must be at least 1, got %', max_changes USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- The caller's own subscriptions only (row-level security says the same, but not to the feed's
    -- owner): one cursor per client, over all its tables, the one passed, else the earliest stored.
    SELECT array_agg(s.id), array_agg(s.secret)
    INTO ids, secrets FROM feed.subscriptions s WHERE s.client_id = changes_for.client_id AND s.owner = current_user;
    IF ids IS NULL THEN
        RAISE EXCEPTION 'feed: no subscription for client %', foundation.excerpt(changes_for.client_id)
            USING ERRCODE = 'undefined_object', HINT = 'Subscribe first with feed.subscribe(client_id, table, filters).';
    END IF;
    SELECT s.cursor_seq, s.cursor_id INTO stored_seq, stored_id
    FROM feed.subscriptions s WHERE s.id = ANY (ids) ORDER BY 1, 2 LIMIT 1;
    start := feed.parse_cursor(coalesce(cursor, feed.format_cursor(stored_seq, stored_id)));
    PERFORM feed.check_cursor(start.commit_seq, start.change_id);
    PERFORM feed.record_read(ids, secrets, start.commit_seq, start.change_id);
    -- Skip the stretch known to hold nothing for the client when the cursor lies in it; every
    -- subscription of the client must agree on that stretch.
    SELECT e.*, count(*) OVER () INTO empty_from_seq, empty_from_id, empty_to_seq, empty_to_id, ranges
    FROM (SELECT DISTINCT s.empty_from_seq, s.empty_from_id, s.empty_to_seq, s.empty_to_id
          FROM feed.subscriptions s WHERE s.id = ANY (ids)) e
    LIMIT 1;
    IF ranges = 1 AND empty_to_seq IS NOT NULL
       AND (start.commit_seq, start.change_id) >= (empty_from_seq, empty_from_id)
       AND (start.commit_seq, start.change_id) < (empty_to_seq, empty_to_id) THEN
        start := feed.parse_cursor(feed.format_cursor(empty_to_seq, empty_to_id));
    END IF;
    -- Taken before the page: if the page comes back short, nothing up to here is left for this client.
    head := feed.parse_cursor(feed.current_cursor());

    -- One pass: the page also tells where the last change for this client up to the head was.
    delivered := 0;
    FOR change IN
        SELECT t.commit_seq, c.id AS change_id, t.committed_at, c.table_name, c.operation, c.row_key, c.user_id,
               c.row_data, c.old_data, ARRAY(SELECT jsonb_object_keys(c.old_data)) AS changed_columns
        FROM feed.commits t
        CROSS JOIN LATERAL (
            SELECT c.* FROM feed.change_log c
            JOIN feed.subscriptions s ON s.table_id = c.table_id AND s.id = ANY (ids)
            WHERE c.xid = t.xid
              AND (t.commit_seq > start.commit_seq OR c.id > start.change_id)
              AND (s.user_id IS NULL OR c.user_id = s.user_id OR c.is_public)
              AND (feed.matches(s.filters, c.row_data) OR (c.old_data IS NOT NULL AND feed.matches(s.filters, c.row_data || c.old_data)))
            -- OFFSET 0 keeps this per transaction, so the plan walks commits in order and stops at
            -- the LIMIT: the planner cannot estimate how many changes pass the filters, and
            -- otherwise scans the whole log.
            OFFSET 0) c
        WHERE t.commit_seq >= start.commit_seq
        ORDER BY t.commit_seq, c.id
        LIMIT max_changes
    LOOP
        delivered := delivered + 1;
        IF (change.commit_seq, change.change_id) <= (head.commit_seq, head.change_id) THEN
            last_seq := change.commit_seq;
            last_id := change.change_id;
        END IF;
        change_cursor := feed.format_cursor(change.commit_seq, change.change_id);
        commit_seq := change.commit_seq;
        change_id := change.change_id;
        committed_at := change.committed_at;
        table_name := change.table_name;
        operation := change.operation;
        row_key := change.row_key;
        user_id := change.user_id;
        row_data := change.row_data;
        old_data := change.old_data;
        changed_columns := change.changed_columns;
        RETURN NEXT;
    END LOOP;

    IF delivered < max_changes AND (head.commit_seq, head.change_id) > (start.commit_seq, start.change_id) THEN
        PERFORM feed.record_read(ids, secrets, NULL, NULL,
            coalesce(last_seq, start.commit_seq), coalesce(last_id, start.change_id), head.commit_seq, head.change_id);
    END IF;
END;
$$;
COMMENT ON FUNCTION feed.changes_for(text, text, integer) IS
    'Up to max_changes changes for one of the caller''s clients after its cursor (or the one it last passed), in commit order, through its subscriptions'' filters; an UPDATE matches when the row matches before or after it. Passing a cursor acknowledges everything up to it; acknowledgements only move forward. A client bound to a user receives only that user''s rows, whatever its filters say; row-level security enforces the same. A cursor older than the pruned log raises 55000, one beyond its end 22023.';

CREATE OR REPLACE FUNCTION feed.grant_access(role regrole, user_id text) RETURNS void
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'feed.grant_access: role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO feed.access AS a (role_name, user_id) VALUES (role::text::name, grant_access.user_id)
    ON CONFLICT (role_name) DO UPDATE SET user_id = excluded.user_id;
    -- What the role sees changed: the stretches its subscriptions know to be empty may not be.
    UPDATE feed.subscriptions s SET empty_from_seq = NULL, empty_from_id = NULL, empty_to_seq = NULL, empty_to_id = NULL
    WHERE s.owner = role::text::name AND s.empty_to_seq IS NOT NULL;
END;
$$;
COMMENT ON FUNCTION feed.grant_access(regrole, text) IS
    'Lets a role subscribe: bound to user_id, it receives only that user''s changes and those of public tables; with user_id NULL it is a service role that sees every user. Forgets what its subscriptions knew to be empty, since that was judged under other access. Idempotent. freshet_admin may call it.';

CREATE OR REPLACE FUNCTION feed.revoke_access(role regrole) RETURNS boolean
    LANGUAGE sql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH gone AS (DELETE FROM feed.access a WHERE a.role_name = role::text::name RETURNING 1),
    forgotten AS (
        UPDATE feed.subscriptions s SET empty_from_seq = NULL, empty_from_id = NULL, empty_to_seq = NULL, empty_to_id = NULL
        WHERE s.owner = role::text::name AND s.empty_to_seq IS NOT NULL)
    SELECT EXISTS (SELECT FROM gone);
$$;
COMMENT ON FUNCTION feed.revoke_access(regrole) IS
    'Takes a role''s access away (its subscriptions then read nothing, and forget what they knew to be empty); returns whether it had any. freshet_admin may call it.';

-- Retention and monitoring -----------------------------------------------------------------------------

CREATE OR REPLACE FUNCTION feed.prune_change_log(older_than interval DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    keep interval := coalesce(older_than, feed.setting('retention'));
    idle interval := feed.setting('inactive_after');
    longest interval := feed.setting('max_retention');
    horizon bigint;
    through record;
    pruned bigint;
BEGIN
    IF keep < interval '0' THEN
        RAISE EXCEPTION 'feed.prune_change_log: older_than must not be negative, got %', keep USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Never wait on key 46: a session holding it is either a prune in flight or a squatter.
    IF NOT pg_try_advisory_xact_lock(46) THEN
        RAISE EXCEPTION 'feed.prune_change_log: advisory lock 46 is held by another session' USING ERRCODE = 'lock_not_available',
            HINT = 'Another prune is running, or a session squats the key: see feed.health().';
    END IF;
    UPDATE feed.subscriptions s SET is_active = false WHERE s.is_active AND s.last_activity < now() - idle;
    SELECT min(p.commit_seq) INTO horizon
    FROM feed.subscriptions s CROSS JOIN LATERAL feed.subscription_position(s) p WHERE s.is_active;
    -- Whole transactions only, and only those every active subscription has read past, unless
    -- they are older than max_retention.
    WITH gone AS (
        DELETE FROM feed.commits t
        WHERE t.committed_at < now() - keep AND (horizon IS NULL OR t.commit_seq < horizon OR t.committed_at < now() - longest)
        RETURNING t.xid, t.commit_seq),
    changes AS (
        DELETE FROM feed.change_log c USING gone g WHERE c.xid = g.xid RETURNING g.commit_seq, c.id)
    SELECT count(*) AS n, max(commit_seq) AS commit_seq, max(id) FILTER (WHERE commit_seq = (SELECT max(commit_seq) FROM changes)) AS change_id
    INTO through FROM changes;
    pruned := through.n;
    IF through.commit_seq IS NOT NULL THEN
        UPDATE feed.log_state SET pruned_seq = through.commit_seq, pruned_id = through.change_id
        WHERE (through.commit_seq, through.change_id) > (pruned_seq, pruned_id);
    END IF;
    RETURN pruned;
END;
$$;
COMMENT ON FUNCTION feed.prune_change_log(interval) IS
    'Deletes committed changes older than older_than (default: setting retention), whole transactions at a time, but never past the position of an active subscription unless older than setting max_retention; subscriptions idle longer than setting inactive_after are marked inactive first and stop holding it back. Returns how many changes went. Single-flight on advisory lock 46 (raises 55P03 rather than wait); pg_cron runs it daily as job feed-prune.';

DROP FUNCTION feed.health();
CREATE FUNCTION feed.health(OUT healthy boolean, OUT notify_queue_usage double precision, OUT log_changes bigint, OUT log_bytes bigint,
                            OUT oldest_retained text, OUT newest text, OUT oldest_cursor text, OUT watched_tables integer,
                            OUT active_subscriptions integer, OUT squatted_locks jsonb)
    LANGUAGE sql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
    WITH squatters AS (
        SELECT coalesce(jsonb_agg(jsonb_build_object('lock_key', l.lock_key, 'held_for', l.held_for, 'pid', l.pid,
                                                     'role', l.role_name, 'since', l.since)), '[]') AS locks
        FROM jobs.squatted_locks() l)
    SELECT jsonb_array_length(q.locks) = 0 AND pg_notification_queue_usage() < 0.5,
           pg_notification_queue_usage(),
           (SELECT count(*) FROM feed.change_log),
           pg_total_relation_size('feed.change_log') + pg_total_relation_size('feed.commits'),
           (SELECT feed.format_cursor(pruned_seq, pruned_id) FROM feed.log_state),
           feed.current_cursor(),
           (SELECT feed.format_cursor(p.commit_seq, p.change_id) FROM feed.subscriptions s CROSS JOIN LATERAL feed.subscription_position(s) p
            WHERE s.is_active ORDER BY p.commit_seq, p.change_id LIMIT 1),
           (SELECT count(*)::integer FROM feed.watched_tables),
           (SELECT count(*)::integer FROM feed.subscriptions s WHERE s.is_active),
           q.locks
    FROM squatters q;
$$;
COMMENT ON FUNCTION feed.health() IS
    'The feed at a glance: healthy (false while a session that is not Freshet''s holds one of its advisory keys, or the listener backlog passes half), the listener backlog (pg_notification_queue_usage(), 0 to 1; NOTIFY fails when it is full), the log''s size in changes and bytes, the oldest retained and newest positions, the oldest active cursor, counts, and the squatted keys (jobs.squatted_locks()). Changes are counted exactly, so it reads the whole log. freshet_admin and freshet_worker may call it.';

CREATE OR REPLACE FUNCTION feed.setting(setting text) RETURNS interval
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result interval;
BEGIN
    SELECT s.value INTO STRICT result FROM feed.settings s WHERE s.name = setting;
    RETURN result;
EXCEPTION
    WHEN no_data_found THEN
        RAISE EXCEPTION 'unknown feed setting: %', foundation.excerpt(setting) USING ERRCODE = 'undefined_object';
END;
$$;

-- Every function with a pinned path ------------------------------------------------------------------

SELECT foundation.pin_search_paths('feed');

-- Capture of the tables already watched, regenerated under the new rules.
DO $$
DECLARE
    watched record;
BEGIN
    FOR watched IN SELECT w.table_id, w.user_column FROM feed.watched_tables w ORDER BY w.table_id LOOP
        PERFORM feed.unwatch(watched.table_id);
        PERFORM feed.watch(watched.table_id, watched.user_column);
    END LOOP;
END;
$$;

-- Privileges: nothing for PUBLIC; clients read through row-level security and write only their
-- own subscriptions' client columns.
REVOKE ALL ON SCHEMA feed FROM PUBLIC;
REVOKE ALL ON ALL TABLES IN SCHEMA feed FROM PUBLIC;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA feed FROM PUBLIC;
GRANT USAGE ON SCHEMA feed TO freshet_client, freshet_worker, freshet_admin;
GRANT SELECT ON feed.change_log, feed.commits, feed.access, feed.watched_tables, feed.log_state TO freshet_client;
GRANT SELECT, DELETE ON feed.subscriptions TO freshet_client;
GRANT INSERT (client_id, table_id, filters, user_id, cursor_seq, cursor_id) ON feed.subscriptions TO freshet_client;
GRANT UPDATE (filters, user_id) ON feed.subscriptions TO freshet_client;
GRANT EXECUTE ON FUNCTION
    feed.is_service(), feed.current_user_id(), feed.format_cursor(bigint, bigint), feed.parse_cursor(text),
    feed.current_cursor(), feed.check_cursor(bigint, bigint), feed.channel_name(regclass),
    feed.normalize_filters(regclass, jsonb), feed.subscribe(text, regclass, jsonb, text, text), feed.unsubscribe(text, regclass),
    feed.touch(text), feed.matches(jsonb, jsonb), feed.changes_since(text, integer, regclass),
    feed.changes_for(text, text, integer), feed.record_read(bigint[], uuid[], bigint, bigint, bigint, bigint, bigint, bigint),
    feed.setting(text), feed.subscription_position(feed.subscriptions), feed.subscription_lag()
TO freshet_client;
GRANT EXECUTE ON FUNCTION feed.health() TO freshet_worker, freshet_admin;
GRANT EXECUTE ON FUNCTION feed.watch(regclass, text), feed.prepare_capture(regclass, text), feed.unwatch(regclass),
    feed.capture_truncate(), feed.grant_access(regrole, text), feed.revoke_access(regrole), feed.prune_change_log(interval)
TO freshet_admin;
GRANT SELECT ON feed.settings TO freshet_admin;
