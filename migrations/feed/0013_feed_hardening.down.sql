-- migrate:derived capture_owner is each watched table's owner, which the up file reads again as it watches every table again; subscription secrets and the other columns it drops are credentials and state of the hardened design, which the up file issues anew
-- Undo 0013_feed_hardening.up.sql: capture owned by the feed again, advisory key 47, client-written
-- subscription state, the previous functions, paths and privileges. Watched tables stay watched.

REVOKE ALL ON ALL TABLES IN SCHEMA feed FROM freshet_client, freshet_worker, freshet_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA feed FROM freshet_client, freshet_worker, freshet_admin;
REVOKE ALL ON SCHEMA feed FROM freshet_client, freshet_worker, freshet_admin;

CREATE TEMPORARY TABLE feed_rewatch ON COMMIT DROP AS SELECT w.table_id, w.user_column FROM feed.watched_tables w;
SELECT feed.unwatch(r.table_id) FROM feed_rewatch r;

DROP POLICY change_log_capture ON feed.change_log;
DROP FUNCTION feed.prepare_capture(regclass, text);
DROP FUNCTION feed.changes_for(text, text, integer);
DROP FUNCTION feed.health();

CREATE OR REPLACE FUNCTION feed.stamp_commit() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_advisory_xact_lock(47);
    UPDATE feed.commits t SET commit_seq = nextval('feed.commit_seq'), committed_at = clock_timestamp()
    WHERE t.xid = NEW.xid;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION feed.stamp_commit() IS
    'Deferred to commit: takes advisory lock 47 (held until the transaction ends) and stamps the transaction''s commit_seq, so sequence order is commit order.';

CREATE OR REPLACE FUNCTION feed.logged(table_name text, channel text, operation text, last_change bigint) RETURNS void
    LANGUAGE plpgsql
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
COMMENT ON FUNCTION feed.logged(text, text, text, bigint) IS
    'Called by capture triggers after a statement logged changes up to last_change: registers the transaction for its commit stamp and sends the one wake-up hint of the statement.';

CREATE OR REPLACE FUNCTION feed.unwatch(watched regclass) RETURNS boolean
    LANGUAGE plpgsql
    SET search_path = pg_catalog
    SET client_min_messages = warning
AS $$
DECLARE
    operation text;
BEGIN
    IF watched IS NULL THEN
        RAISE EXCEPTION 'feed.unwatch: table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    FOREACH operation IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'feed_capture_' || operation, watched);
    END LOOP;
    FOREACH operation IN ARRAY ARRAY['insert', 'update', 'delete'] LOOP
        EXECUTE format('DROP FUNCTION IF EXISTS feed.%I()', 'capture_' || watched::oid || '_' || operation);
    END LOOP;
    DELETE FROM feed.watched_tables w WHERE w.table_id = watched;
    RETURN FOUND;
END;
$$;
COMMENT ON FUNCTION feed.unwatch(regclass) IS 'Removes a table''s change capture; its logged changes stay readable. Idempotent: returns whether the table was watched.';

CREATE OR REPLACE FUNCTION feed.watch(watched regclass, user_column text DEFAULT NULL) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
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
    current feed.watched_tables;
BEGIN
    IF watched IS NULL THEN
        RAISE EXCEPTION 'feed.watch: table must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    IF (SELECT c.relkind FROM pg_class c WHERE c.oid = watched) NOT IN ('r', 'p') THEN
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
        RAISE EXCEPTION 'feed.watch: column "%" does not exist in table %', user_column, watched USING ERRCODE = 'undefined_column';
    END IF;

    SELECT * INTO current FROM feed.watched_tables w WHERE w.table_id = watched;
    IF FOUND AND current.user_column IS NOT DISTINCT FROM watch.user_column AND current.key_columns = keys THEN
        RETURN;
    END IF;
    IF FOUND THEN
        PERFORM feed.unwatch(watched);
    END IF;

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
    -- An UPDATE pairs old and new rows by key (and user); an unpaired row becomes a DELETE or an INSERT.
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
        FROM new_rows n FULL JOIN old_rows o ON %s$f$, key_of_o, key_of_n, user_of_o, user_of_n, is_public, pairs))
        ) AS c (operation, transition_tables, selected)
    LOOP
        function_name := 'capture_' || watched::oid || '_' || lower(capture.operation);
        EXECUTE format($f$CREATE FUNCTION feed.%I() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER SET search_path = pg_catalog, pg_temp AS %L$f$,
            function_name, format($f$
DECLARE
    last_change bigint;
BEGIN
    WITH logged AS (
        INSERT INTO feed.change_log (xid, table_id, table_name, operation, row_key, user_id, is_public, row_data, old_data)
        SELECT pg_current_xact_id(), %s, %L, %s
        RETURNING id)
    SELECT max(id) INTO last_change FROM logged;
    PERFORM feed.logged(%L, %L, %L, last_change);
    RETURN NULL;
END;
$f$, watched::oid, qualified, capture.selected, qualified, channel, capture.operation));
        EXECUTE format('COMMENT ON FUNCTION feed.%I() IS %L', function_name,
            format('Generated by feed.watch(): logs the rows of each %s statement on %s and sends its hint on channel %s.', capture.operation, qualified, channel));
        EXECUTE format('CREATE TRIGGER %I AFTER %s ON %s REFERENCING %s FOR EACH STATEMENT EXECUTE FUNCTION feed.%I()',
            'feed_capture_' || lower(capture.operation), capture.operation, watched, capture.transition_tables, function_name);
    END LOOP;
    EXECUTE format('CREATE TRIGGER feed_capture_truncate AFTER TRUNCATE ON %s FOR EACH STATEMENT EXECUTE FUNCTION feed.capture_truncate()', watched);

    INSERT INTO feed.watched_tables (table_id, table_name, user_column, key_columns, channel)
    VALUES (watched, qualified, user_column, keys, channel);
END;
$$;
COMMENT ON FUNCTION feed.watch(regclass, text) IS
    'Attaches change capture to a table with a primary key: statement-level AFTER INSERT, UPDATE, DELETE (with transition tables) and TRUNCATE triggers log every change to feed.change_log and send one NOTIFY per statement on feed.channel_name(table). user_column names the column holding the owning user; without it the table is public. Idempotent; watching again with another user column re-creates the capture.';

CREATE OR REPLACE FUNCTION feed.parse_cursor(cursor text, OUT commit_seq bigint, OUT change_id bigint)
    LANGUAGE plpgsql IMMUTABLE
    SET search_path = pg_catalog
AS $$
BEGIN
    IF cursor IS NULL OR cursor !~ '^[0-9]{1,18}/[0-9]{1,18}$' THEN
        RAISE EXCEPTION 'invalid feed cursor: %', coalesce(quote_literal(cursor), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'A cursor looks like ''12/345'' (commit sequence/change id), as returned in the position column; ''0/0'' is the start of the log.';
    END IF;
    commit_seq := split_part(cursor, '/', 1)::bigint;
    change_id := split_part(cursor, '/', 2)::bigint;
END;
$$;
COMMENT ON FUNCTION feed.parse_cursor(text) IS 'Splits a cursor into commit sequence and change id; anything else raises 22023.';

CREATE OR REPLACE FUNCTION feed.check_cursor(commit_seq bigint, change_id bigint) RETURNS void
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE
    state feed.log_state;
BEGIN
    SELECT * INTO state FROM feed.log_state;
    IF (commit_seq, change_id) < (state.pruned_seq, state.pruned_id) THEN
        RAISE EXCEPTION 'feed cursor % is older than the log, which is pruned through %',
                feed.format_cursor(commit_seq, change_id), feed.format_cursor(state.pruned_seq, state.pruned_id)
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Changes after that cursor are gone: reload the table''s rows, then read on from feed.current_cursor() taken before the reload.';
    END IF;
END;
$$;
COMMENT ON FUNCTION feed.check_cursor(bigint, bigint) IS 'Raises 55000 when changes after the position were already pruned, so a reader never silently skips them.';

CREATE OR REPLACE FUNCTION feed.normalize_filters(watched regclass, filters jsonb) RETURNS jsonb
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE
    filter record;
    column_type text;
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
        SELECT format_type(a.atttypid, a.atttypmod) INTO column_type
        FROM pg_attribute a WHERE a.attrelid = watched AND a.attname = filter.key AND a.attnum > 0 AND NOT a.attisdropped;
        IF column_type IS NULL THEN
            RAISE EXCEPTION 'feed filter names column "%", which does not exist in table %', filter.key, watched
                USING ERRCODE = 'undefined_column';
        END IF;
        values_in := filter.value;
        IF jsonb_typeof(values_in) = 'object' THEN
            IF (SELECT array_agg(k) FROM jsonb_object_keys(values_in) k) <> ARRAY['in'] THEN
                RAISE EXCEPTION 'feed filter on column "%": unsupported operator %; use a value, a list, or {"in": [values]}', filter.key, values_in
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
                RAISE EXCEPTION 'feed filter on column "%": list entries must be single values, got %', filter.key, element
                    USING ERRCODE = 'invalid_parameter_value';
            END IF;
            -- The value in the column's own type, as to_jsonb() of the row will show it.
            BEGIN
                IF jsonb_typeof(element) <> 'null' THEN
                    EXECUTE format('SELECT to_jsonb(%L::%s)', element #>> '{}', column_type) INTO element;
                END IF;
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'feed filter on column "%": % is not a valid %', filter.key, element, column_type
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
    'Checks a filter object against the table (known columns; a value, a JSON array or {"in": array} of single values, each valid for the column''s type) and returns it as column: [values in the column''s JSON form]; bad filters raise 42703 or 22023.';

CREATE OR REPLACE FUNCTION feed.check_subscription() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog
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
                USING ERRCODE = 'insufficient_privilege', HINT = 'The feed''s owner grants it with feed.grant_access(role, user_id).';
        END IF;
        IF NEW.user_id IS NULL THEN
            NEW.user_id := bound_user;
        ELSIF NEW.user_id <> bound_user THEN
            RAISE EXCEPTION 'feed: role % is bound to user %, and may not subscribe for user %', current_user, bound_user, NEW.user_id
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END IF;
    NEW.filters := feed.normalize_filters(NEW.table_id, NEW.filters);
    IF NEW.user_id IS NOT NULL AND watched.user_column IS NOT NULL
       AND EXISTS (SELECT FROM jsonb_array_elements(NEW.filters -> watched.user_column) v WHERE v #>> '{}' IS DISTINCT FROM NEW.user_id) THEN
        RAISE EXCEPTION 'feed: a client of user % may not filter on other users'' rows (% = %)', NEW.user_id, watched.user_column, NEW.filters -> watched.user_column
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP = 'INSERT' THEN
        NEW.owner := current_user;
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
    'Guards every write to feed.subscriptions, however it is made: the table must be watched, the role must have access, a bound role subscribes only for its own user, and filters are checked and normalized.';

CREATE OR REPLACE FUNCTION feed.subscribe(client_id text, watched regclass, filters jsonb DEFAULT '{}', user_id text DEFAULT NULL, start_cursor text DEFAULT NULL)
    RETURNS text
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    start record;
BEGIN
    start := feed.parse_cursor(coalesce(start_cursor, feed.current_cursor()));
    PERFORM feed.check_cursor(start.commit_seq, start.change_id);
    INSERT INTO feed.subscriptions AS s (client_id, table_id, filters, user_id, cursor_seq, cursor_id)
    VALUES (subscribe.client_id, watched, coalesce(subscribe.filters, '{}'), subscribe.user_id, start.commit_seq, start.change_id)
    ON CONFLICT ON CONSTRAINT subscriptions_client_id_table_id_key DO UPDATE
        SET filters = excluded.filters, user_id = excluded.user_id, is_active = true, last_activity = now(),
            cursor_seq = CASE WHEN start_cursor IS NULL THEN s.cursor_seq ELSE excluded.cursor_seq END,
            cursor_id = CASE WHEN start_cursor IS NULL THEN s.cursor_id ELSE excluded.cursor_id END;
    RETURN (SELECT feed.format_cursor(s.cursor_seq, s.cursor_id) FROM feed.subscriptions s
            WHERE s.client_id = subscribe.client_id AND s.table_id = watched);
END;
$$;
COMMENT ON FUNCTION feed.subscribe(text, regclass, jsonb, text, text) IS
    'Subscribes a client to a watched table with filters ({"status": ["open", "pending"], "user_id": "0001"}: equality or IN-lists). A new subscription starts at start_cursor, by default the current end of the log; subscribing again updates the filters and keeps the cursor unless start_cursor is given. Returns the cursor.';

CREATE OR REPLACE FUNCTION feed.touch(client_id text) RETURNS integer
    LANGUAGE sql
    SET search_path = pg_catalog
AS $$
    WITH touched AS (
        UPDATE feed.subscriptions s SET last_activity = now(), is_active = true
        WHERE s.client_id = touch.client_id
        RETURNING 1)
    SELECT count(*)::integer FROM touched;
$$;
COMMENT ON FUNCTION feed.touch(text) IS 'Records that a client is alive (a heartbeat), keeping its subscriptions active; returns how many it has.';

CREATE OR REPLACE FUNCTION feed.unsubscribe(client_id text, watched regclass DEFAULT NULL) RETURNS integer
    LANGUAGE sql
    SET search_path = pg_catalog
AS $$
    WITH gone AS (
        DELETE FROM feed.subscriptions s
        WHERE s.client_id = unsubscribe.client_id AND (watched IS NULL OR s.table_id = watched)
        RETURNING 1)
    SELECT count(*)::integer FROM gone;
$$;
COMMENT ON FUNCTION feed.unsubscribe(text, regclass) IS 'Removes a client''s subscription to a table, or to every table when none is given. Idempotent: returns how many went.';

CREATE OR REPLACE FUNCTION feed.client_changes(client_id text, after_seq bigint, after_id bigint)
    RETURNS TABLE (commit_seq bigint, change_id bigint, committed_at timestamptz, table_name text, operation text,
                   row_key jsonb, user_id text, row_data jsonb, old_data jsonb, changed_columns text[])
    LANGUAGE sql STABLE
AS $$
    SELECT t.commit_seq, c.id, t.committed_at, c.table_name, c.operation, c.row_key, c.user_id, c.row_data, c.old_data,
           ARRAY(SELECT jsonb_object_keys(c.old_data))
    FROM feed.commits t
    CROSS JOIN LATERAL (
        SELECT c.* FROM feed.change_log c
        JOIN feed.subscriptions s ON s.table_id = c.table_id AND s.client_id = client_changes.client_id
        WHERE c.xid = t.xid
          AND (t.commit_seq > after_seq OR c.id > after_id)
          AND (s.user_id IS NULL OR c.user_id = s.user_id OR c.is_public)
          AND (feed.matches(s.filters, c.row_data) OR (c.old_data IS NOT NULL AND feed.matches(s.filters, c.row_data || c.old_data)))
        -- OFFSET 0 keeps this per transaction, so the plan walks commits in order and stops at the
        -- caller's LIMIT: the planner cannot estimate how many changes pass the filters, and
        -- otherwise scans the whole log.
        OFFSET 0) c
    WHERE t.commit_seq >= after_seq;
$$;
COMMENT ON FUNCTION feed.client_changes(text, bigint, bigint) IS
    'The committed changes after a position that a client''s subscriptions select, unordered: its tables, its user''s rows (and public ones) only, through its filters; an UPDATE counts when the row matches before or after it. Inlined into feed.changes_for().';

CREATE OR REPLACE FUNCTION feed.changes_for(client_id text, cursor text DEFAULT NULL, max_changes integer DEFAULT 1000)
    RETURNS TABLE (change_cursor text, commit_seq bigint, change_id bigint, committed_at timestamptz, table_name text, operation text,
                   row_key jsonb, user_id text, row_data jsonb, old_data jsonb, changed_columns text[])
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    start record;
    head record;
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
    -- One cursor per client, over all its tables: the one passed, else the earliest stored.
    SELECT s.cursor_seq, s.cursor_id INTO stored_seq, stored_id
    FROM feed.subscriptions s WHERE s.client_id = changes_for.client_id ORDER BY 1, 2 LIMIT 1;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'feed: no subscription for client %', coalesce(quote_literal(changes_for.client_id), 'NULL')
            USING ERRCODE = 'undefined_object', HINT = 'Subscribe first with feed.subscribe(client_id, table, filters).';
    END IF;
    start := feed.parse_cursor(coalesce(cursor, feed.format_cursor(stored_seq, stored_id)));
    PERFORM feed.check_cursor(start.commit_seq, start.change_id);
    UPDATE feed.subscriptions s
    SET cursor_seq = start.commit_seq, cursor_id = start.change_id, last_activity = now(), is_active = true
    WHERE s.client_id = changes_for.client_id;
    -- Skip the stretch known to hold nothing for the client when the cursor lies in it; every
    -- subscription of the client must agree on that stretch.
    SELECT e.*, count(*) OVER () INTO empty_from_seq, empty_from_id, empty_to_seq, empty_to_id, ranges
    FROM (SELECT DISTINCT s.empty_from_seq, s.empty_from_id, s.empty_to_seq, s.empty_to_id
          FROM feed.subscriptions s WHERE s.client_id = changes_for.client_id) e
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
        SELECT * FROM feed.client_changes(changes_for.client_id, start.commit_seq, start.change_id) c
        ORDER BY c.commit_seq, c.change_id
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
        UPDATE feed.subscriptions s
        SET empty_from_seq = coalesce(last_seq, start.commit_seq), empty_from_id = coalesce(last_id, start.change_id),
            empty_to_seq = head.commit_seq, empty_to_id = head.change_id
        WHERE s.client_id = changes_for.client_id;
    END IF;
END;
$$;
COMMENT ON FUNCTION feed.changes_for(text, text, integer) IS
    'Up to max_changes changes for a client after its cursor (or the one it last passed), in commit order, through its subscriptions'' filters; an UPDATE matches when the row matches before or after it. Passing a cursor acknowledges everything up to it. A client bound to a user receives only that user''s rows, whatever its filters say; row-level security enforces the same. A cursor older than the pruned log raises 55000.';

CREATE OR REPLACE FUNCTION feed.grant_access(role regrole, user_id text) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
BEGIN
    IF role IS NULL THEN
        RAISE EXCEPTION 'feed.grant_access: role must not be NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    INSERT INTO feed.access AS a (role_name, user_id) VALUES (role::text::name, grant_access.user_id)
    ON CONFLICT (role_name) DO UPDATE SET user_id = excluded.user_id;
END;
$$;
COMMENT ON FUNCTION feed.grant_access(regrole, text) IS
    'Lets a role subscribe: bound to user_id, it receives only that user''s changes and those of public tables; with user_id NULL it is a service role that sees every user. Idempotent.';

CREATE OR REPLACE FUNCTION feed.revoke_access(role regrole) RETURNS boolean
    LANGUAGE sql
    SET search_path = pg_catalog
AS $$
    WITH gone AS (DELETE FROM feed.access a WHERE a.role_name = role::text::name RETURNING 1)
    SELECT EXISTS (SELECT FROM gone);
$$;
COMMENT ON FUNCTION feed.revoke_access(regrole) IS 'Takes a role''s access away (its subscriptions then read nothing); returns whether it had any.';

CREATE OR REPLACE FUNCTION feed.prune_change_log(older_than interval DEFAULT NULL) RETURNS bigint
    LANGUAGE plpgsql
    SET search_path = pg_catalog
AS $$
DECLARE
    keep interval := coalesce(older_than, feed.setting('retention'));
    idle interval := feed.setting('inactive_after');
    horizon bigint;
    through record;
    pruned bigint;
BEGIN
    IF keep < interval '0' THEN
        RAISE EXCEPTION 'feed.prune_change_log: older_than must not be negative, got %', keep USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM pg_advisory_xact_lock(46);
    UPDATE feed.subscriptions s SET is_active = false WHERE s.is_active AND s.last_activity < now() - idle;
    SELECT min(p.commit_seq) INTO horizon
    FROM feed.subscriptions s CROSS JOIN LATERAL feed.subscription_position(s) p WHERE s.is_active;
    -- Whole transactions only, and only those every active subscription has read past.
    WITH gone AS (
        DELETE FROM feed.commits t
        WHERE t.committed_at < now() - keep AND (horizon IS NULL OR t.commit_seq < horizon)
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
    'Deletes committed changes older than older_than (default: setting retention), whole transactions at a time, but never past the position of an active subscription; subscriptions idle longer than setting inactive_after are marked inactive first and stop holding it back. Returns how many changes went. Single-flight on advisory lock 46; pg_cron runs it daily as job feed-prune.';

CREATE OR REPLACE FUNCTION feed.health(OUT notify_queue_usage double precision, OUT log_changes bigint, OUT log_bytes bigint,
                            OUT oldest_retained text, OUT newest text, OUT oldest_cursor text, OUT watched_tables integer,
                            OUT active_subscriptions integer)
    LANGUAGE sql STABLE
    SET search_path = pg_catalog
AS $$
    SELECT pg_notification_queue_usage(),
           (SELECT count(*) FROM feed.change_log),
           pg_total_relation_size('feed.change_log') + pg_total_relation_size('feed.commits'),
           (SELECT feed.format_cursor(pruned_seq, pruned_id) FROM feed.log_state),
           feed.current_cursor(),
           (SELECT feed.format_cursor(p.commit_seq, p.change_id) FROM feed.subscriptions s CROSS JOIN LATERAL feed.subscription_position(s) p
            WHERE s.is_active ORDER BY p.commit_seq, p.change_id LIMIT 1),
           (SELECT count(*)::integer FROM feed.watched_tables),
           (SELECT count(*)::integer FROM feed.subscriptions s WHERE s.is_active);
$$;
COMMENT ON FUNCTION feed.health() IS
    'The feed at a glance: the listener backlog (pg_notification_queue_usage(), 0 to 1; NOTIFY fails when it is full), the log''s size in changes and bytes, the oldest retained and newest positions, the oldest active cursor, and counts. Changes are counted exactly, so it reads the whole log.';

CREATE OR REPLACE FUNCTION feed.setting(setting text) RETURNS interval
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
DECLARE
    result interval;
BEGIN
    SELECT s.value INTO STRICT result FROM feed.settings s WHERE s.name = setting;
    RETURN result;
EXCEPTION
    WHEN no_data_found THEN
        RAISE EXCEPTION 'unknown feed setting: %', coalesce(quote_literal(setting), 'NULL') USING ERRCODE = 'undefined_object';
END;
$$;
COMMENT ON FUNCTION feed.setting(text) IS 'Reads an interval from feed.settings; an unknown name raises 42704.';

DROP FUNCTION feed.record_read(bigint[], uuid[], bigint, bigint, bigint, bigint, bigint, bigint);
DROP FUNCTION feed.revoke_capture(regrole);
DROP FUNCTION feed.grant_capture(regrole);
DROP FUNCTION feed.capturable_tables(name);
DROP TABLE feed.commit_gate;
COMMENT ON SEQUENCE feed.commit_seq IS 'Commit sequence numbers; taken only under advisory lock 47, at commit.';

ALTER TABLE feed.watched_tables DROP COLUMN capture_owner;
DELETE FROM feed.settings WHERE name = 'max_retention';
ALTER TABLE feed.subscriptions DROP CONSTRAINT subscriptions_owner_client_id_table_id_key;
-- Refuses, and so changes nothing, if two owners now use one client id for one table.
ALTER TABLE feed.subscriptions ADD CONSTRAINT subscriptions_client_id_table_id_key UNIQUE (client_id, table_id);
ALTER TABLE feed.subscriptions DROP COLUMN secret;
COMMENT ON TABLE feed.subscriptions IS
    'Client subscriptions (seed 002): a client, a table, filters and the cursor it last acknowledged. user_id is the user whose rows the client may receive (NULL: a service client). The empty_* range is a stretch after the cursor known to hold no change for this subscription, so polling does not rescan it.';

ALTER FUNCTION feed.is_service() SET search_path = pg_catalog;
ALTER FUNCTION feed.current_user_id() SET search_path = pg_catalog;
ALTER FUNCTION feed.format_cursor(bigint,bigint) RESET search_path;
ALTER FUNCTION feed.current_cursor() SET search_path = pg_catalog;
ALTER FUNCTION feed.channel_name(regclass) SET search_path = pg_catalog;
ALTER FUNCTION feed.matches(jsonb,jsonb) RESET search_path;
ALTER FUNCTION feed.changes_since(text,integer,regclass) SET search_path = pg_catalog;
ALTER FUNCTION feed.subscription_position(feed.subscriptions) RESET search_path;
ALTER FUNCTION feed.subscription_lag() SET search_path = pg_catalog;

SELECT feed.watch(r.table_id, r.user_column) FROM feed_rewatch r ORDER BY r.table_id;

GRANT USAGE ON SCHEMA feed TO PUBLIC;
GRANT SELECT ON feed.change_log, feed.commits, feed.access, feed.watched_tables, feed.log_state TO PUBLIC;
GRANT SELECT, DELETE ON feed.subscriptions TO PUBLIC;
GRANT INSERT (client_id, table_id, filters, user_id, cursor_seq, cursor_id) ON feed.subscriptions TO PUBLIC;
GRANT UPDATE (filters, user_id, cursor_seq, cursor_id, empty_from_seq, empty_from_id, empty_to_seq, empty_to_id, last_activity, is_active)
    ON feed.subscriptions TO PUBLIC;
GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA feed TO PUBLIC;
REVOKE EXECUTE ON FUNCTION feed.watch(regclass, text), feed.unwatch(regclass), feed.grant_access(regrole, text),
    feed.revoke_access(regrole), feed.prune_change_log(interval) FROM PUBLIC;
