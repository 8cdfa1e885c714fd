-- The jobs module's part of dump and restore on the extension path (see foundation/0016): every
-- table keeps its rows in a dump, caches and stale marks too, since a restore fires none of the
-- triggers that would rebuild them. The two seeded tables take their dumped values.
SELECT foundation.merge_on_restore('jobs.settings');
SELECT foundation.merge_on_restore('jobs.schedules');

SELECT foundation.keep_in_dumps(ARRAY[
    'jobs.settings', 'jobs.schedules', 'jobs.runs', 'jobs.issuers', 'jobs.balances', 'jobs.holdings', 'jobs.trades',
    'jobs.order_queue', 'jobs.stale_issuer_stats', 'jobs.stale_hourly_bars', 'jobs.issuer_stats_cache', 'jobs.hourly_prices',
    'jobs.refresh_marks']::regclass[]);
