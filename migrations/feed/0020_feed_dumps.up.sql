-- The feed's part of dump and restore (see foundation/0016), and what a restored feed needs on
-- either path. The log, its commits, the watched tables, the subscriptions and the access list keep
-- their rows in an extension database's dump; the seeded settings and log state take their dumped
-- values. Two things do not survive a restore by themselves, and feed.repair_after_restore() puts
-- them right: a watched table comes back with another OID, which its generated capture functions
-- and its logged changes name; and a new cluster hands out transaction ids again from its own
-- counter, so a new transaction could take the id of a restored commit and join its position.
SELECT foundation.merge_on_restore('feed.settings');
SELECT foundation.merge_on_restore('feed.log_state');

SELECT foundation.keep_in_dumps(ARRAY[
    'feed.settings', 'feed.log_state', 'feed.access', 'feed.watched_tables', 'feed.subscriptions', 'feed.commits',
    'feed.change_log', 'feed.commit_seq']::regclass[]);

CREATE FUNCTION feed.repair_after_restore() RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    watched record;
    stale regprocedure[];
    function_name regprocedure;
    repaired integer := 0;
BEGIN
    -- Stamping takes this lock at commit: no commit is stamped while its key moves.
    LOCK TABLE feed.commit_gate IN SHARE UPDATE EXCLUSIVE MODE;
    -- Restored commits move to keys no transaction id reaches: 2^63 plus their commit_seq, which
    -- is unique and survives the restore. Positions (commit_seq, id) do not change, nor do cursors.
    UPDATE feed.change_log l SET xid = ('9223372036854775808'::numeric + c.commit_seq)::text::xid8
    FROM feed.commits c
    WHERE l.xid = c.xid AND c.commit_seq IS NOT NULL AND c.xid < '9223372036854775808'::xid8;
    UPDATE feed.commits c SET xid = ('9223372036854775808'::numeric + c.commit_seq)::text::xid8
    WHERE c.commit_seq IS NOT NULL AND c.xid < '9223372036854775808'::xid8;

    FOR watched IN SELECT w.table_id, w.table_name, w.user_column FROM feed.watched_tables w ORDER BY w.table_name LOOP
        SELECT array_agg(t.tgfoid::regprocedure) INTO stale
        FROM pg_trigger t
        WHERE t.tgrelid = watched.table_id AND NOT t.tgisinternal AND t.tgname IN ('feed_capture_insert', 'feed_capture_update', 'feed_capture_delete')
          AND t.tgfoid::regproc::text NOT LIKE 'feed.capture\_' || watched.table_id::oid || '\_%';
        CONTINUE WHEN stale IS NULL;
        -- Generated for the OID the table had before the dump: watch it again under today's.
        PERFORM feed.unwatch(watched.table_id);
        FOREACH function_name IN ARRAY stale LOOP
            EXECUTE format('DROP FUNCTION IF EXISTS %s', function_name);
        END LOOP;
        PERFORM feed.watch(watched.table_id, watched.user_column);
        UPDATE feed.change_log l SET table_id = watched.table_id
        WHERE l.table_name = watched.table_name AND l.table_id <> watched.table_id::oid;
        repaired := repaired + 1;
    END LOOP;
    RETURN repaired;
END;
$$;
COMMENT ON FUNCTION feed.repair_after_restore() IS
    'Run once in a restored database, before writes resume: moves restored commits to keys no new transaction id can take, and sets up again the capture of each watched table whose OID changed, pointing its logged changes at the table. Returns how many tables it set up again. Positions and cursors do not change.';
REVOKE ALL ON FUNCTION feed.repair_after_restore() FROM PUBLIC;
