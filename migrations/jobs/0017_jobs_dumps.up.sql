-- The jobs module's part of dump and restore on the extension path (see foundation/0016): every
-- table keeps its rows in a dump, caches and stale marks too, since a restore fires none of the
-- triggers that would rebuild them. The two seeded tables take their dumped values.
CREATE TRIGGER settings_merge_restored BEFORE INSERT ON jobs.settings
    FOR EACH ROW WHEN (pg_catalog.current_setting('session_replication_role') = 'replica')
    EXECUTE FUNCTION foundation.merge_restored_row();
ALTER TABLE jobs.settings ENABLE ALWAYS TRIGGER settings_merge_restored;
COMMENT ON TRIGGER settings_merge_restored ON jobs.settings IS
    'During a restore, a dumped setting overwrites the one CREATE EXTENSION seeded.';

CREATE TRIGGER schedules_merge_restored BEFORE INSERT ON jobs.schedules
    FOR EACH ROW WHEN (pg_catalog.current_setting('session_replication_role') = 'replica')
    EXECUTE FUNCTION foundation.merge_restored_row();
ALTER TABLE jobs.schedules ENABLE ALWAYS TRIGGER schedules_merge_restored;
COMMENT ON TRIGGER schedules_merge_restored ON jobs.schedules IS
    'During a restore, a dumped schedule overwrites the one CREATE EXTENSION seeded.';

SELECT foundation.keep_in_dumps(ARRAY[
    'jobs.settings', 'jobs.schedules', 'jobs.runs', 'jobs.issuers', 'jobs.balances', 'jobs.holdings', 'jobs.trades',
    'jobs.order_queue', 'jobs.stale_issuer_stats', 'jobs.stale_hourly_bars', 'jobs.issuer_stats_cache', 'jobs.hourly_prices',
    'jobs.refresh_marks']::regclass[]);
