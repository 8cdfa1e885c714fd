-- Dump and restore of the extension path. pg_dump leaves an extension's tables out unless the
-- extension marks them with pg_extension_config_dump(), which only its own scripts may call. The
-- migration path needs none of this: there every table is the user's and pg_dump keeps it, so
-- these functions do nothing outside CREATE EXTENSION and ALTER EXTENSION.
--
-- A restore runs with session_replication_role = replica, as pg_restore --disable-triggers does:
-- the rows come back as they were dumped, so no maintenance or check trigger may fire on them.
-- What does fire then is a trigger enabled ALWAYS: the seed rows that CREATE EXTENSION has just
-- inserted take the dumped values instead of colliding with them.

CREATE FUNCTION foundation.dumped_relations(relations regclass[]) RETURNS SETOF regclass
    LANGUAGE sql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
    -- A partitioned table holds no rows of its own: pg_dump dumps its leaves.
    SELECT coalesce(leaf.relid, given.relation)
    FROM unnest(relations) AS given (relation)
    LEFT JOIN LATERAL pg_partition_tree(given.relation) leaf ON leaf.isleaf AND leaf.relid <> given.relation
    UNION
    -- Identity and serial sequences, so restored ids do not start again at 1.
    SELECT d.objid::regclass
    FROM unnest(relations) AS given (relation)
    JOIN pg_depend d ON d.refclassid = 'pg_class'::regclass AND d.refobjid = given.relation
        AND d.classid = 'pg_class'::regclass AND d.deptype IN ('a', 'i')
    JOIN pg_class s ON s.oid = d.objid AND s.relkind = 'S'
$$;
COMMENT ON FUNCTION foundation.dumped_relations(regclass[]) IS
    'The relations whose rows a dump of the given ones needs: the tables, or the leaves of partitioned ones, sequences given directly, and the tables'' identity and serial sequences.';
REVOKE ALL ON FUNCTION foundation.dumped_relations(regclass[]) FROM PUBLIC;

CREATE FUNCTION foundation.keep_in_dumps(relations regclass[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    relation regclass;
    marked integer := 0;
BEGIN
    FOR relation IN SELECT r FROM foundation.dumped_relations(relations) r LOOP
        PERFORM pg_extension_config_dump(relation, '');
        marked := marked + 1;
    END LOOP;
    RETURN marked;
EXCEPTION WHEN feature_not_supported THEN
    -- Called by the runner, not by an extension script: nothing to mark.
    RETURN 0;
END;
$$;
COMMENT ON FUNCTION foundation.keep_in_dumps(regclass[]) IS
    'Marks what foundation.dumped_relations() lists so pg_dump keeps their rows when Freshet is installed as extensions; returns how many it marked. Works only inside an extension script; elsewhere it marks nothing and returns 0.';
REVOKE ALL ON FUNCTION foundation.keep_in_dumps(regclass[]) FROM PUBLIC;

CREATE FUNCTION foundation.forget_in_dumps(relations regclass[]) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    member record;
    forgotten integer := 0;
BEGIN
    -- Leaving and rejoining its extension is the one way to unmark a relation.
    FOR member IN
        SELECT e.extname, c.oid::regclass AS relation, CASE WHEN c.relkind = 'S' THEN 'SEQUENCE' ELSE 'TABLE' END AS kind
        FROM pg_extension e
        JOIN pg_class c ON c.oid = ANY (e.extconfig)
        WHERE c.oid IN (SELECT r FROM foundation.dumped_relations(relations) r)
        ORDER BY 2
    LOOP
        EXECUTE format('ALTER EXTENSION %I DROP %s %s', member.extname, member.kind, member.relation);
        EXECUTE format('ALTER EXTENSION %I ADD %s %s', member.extname, member.kind, member.relation);
        forgotten := forgotten + 1;
    END LOOP;
    RETURN forgotten;
END;
$$;
COMMENT ON FUNCTION foundation.forget_in_dumps(regclass[]) IS
    'Undoes foundation.keep_in_dumps() for the same relations, as downgrade scripts do; returns how many it unmarked. In the runner''s databases nothing is marked and it returns 0.';
REVOKE ALL ON FUNCTION foundation.forget_in_dumps(regclass[]) FROM PUBLIC;

CREATE FUNCTION foundation.merge_restored_row() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key_match text;
    assignments text;
    matched bigint;
BEGIN
    SELECT string_agg(format('t.%1$I = ($1).%1$I', a.attname), ' AND ' ORDER BY a.attnum)
    INTO key_match
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = TG_RELID AND i.indisprimary;
    SELECT string_agg(format('%1$I = ($1).%1$I', a.attname), ', ' ORDER BY a.attnum)
    INTO assignments
    FROM pg_attribute a
    WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = '' AND a.attidentity <> 'a'
      AND a.attnum <> ALL (SELECT unnest(i.indkey) FROM pg_index i WHERE i.indrelid = TG_RELID AND i.indisprimary);
    IF key_match IS NULL THEN
        RETURN NEW;
    ELSIF assignments IS NULL THEN
        EXECUTE format('SELECT count(*) FROM %I.%I t WHERE %s', TG_TABLE_SCHEMA, TG_TABLE_NAME, key_match) INTO matched USING NEW;
    ELSE
        EXECUTE format('UPDATE %I.%I t SET %s WHERE %s', TG_TABLE_SCHEMA, TG_TABLE_NAME, assignments, key_match) USING NEW;
        GET DIAGNOSTICS matched = ROW_COUNT;
    END IF;
    RETURN CASE WHEN matched > 0 THEN NULL ELSE NEW END;
END;
$$;
COMMENT ON FUNCTION foundation.merge_restored_row() IS
    'BEFORE INSERT trigger for tables an extension script seeds: while session_replication_role is replica (a restore), a row whose primary key exists overwrites it instead of failing, so a restore keeps the dumped values of seed rows without duplicating them.';
REVOKE ALL ON FUNCTION foundation.merge_restored_row() FROM PUBLIC;

CREATE FUNCTION foundation.merge_on_restore(seeded regclass) RETURNS void
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    trigger_name text := (SELECT c.relname FROM pg_class c WHERE c.oid = seeded) || '_merge_restored';
BEGIN
    EXECUTE format($sql$CREATE TRIGGER %I BEFORE INSERT ON %s FOR EACH ROW
        WHEN (pg_catalog.current_setting('session_replication_role') = 'replica')
        EXECUTE FUNCTION foundation.merge_restored_row()$sql$, trigger_name, seeded);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER %I', seeded, trigger_name);
    EXECUTE format('COMMENT ON TRIGGER %I ON %s IS %L', trigger_name, seeded,
        'During a restore, a dumped row overwrites the one CREATE EXTENSION seeded with its key.');
END;
$$;
COMMENT ON FUNCTION foundation.merge_on_restore(regclass) IS
    'Gives a table its extension script seeds the trigger <table>_merge_restored, enabled ALWAYS, that runs foundation.merge_restored_row() during a restore.';
REVOKE ALL ON FUNCTION foundation.merge_on_restore(regclass) FROM PUBLIC;

SELECT foundation.merge_on_restore('foundation.feature_flags');
SELECT foundation.keep_in_dumps(ARRAY['foundation.feature_flags']::regclass[]);
