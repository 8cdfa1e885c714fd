-- Undo 0017_jobs_dumps.up.sql.
SELECT foundation.forget_in_dumps(ARRAY[
    'jobs.settings', 'jobs.schedules', 'jobs.runs', 'jobs.issuers', 'jobs.balances', 'jobs.holdings', 'jobs.trades',
    'jobs.order_queue', 'jobs.stale_issuer_stats', 'jobs.stale_hourly_bars', 'jobs.issuer_stats_cache', 'jobs.hourly_prices',
    'jobs.refresh_marks']::regclass[]);
DROP TRIGGER schedules_merge_restored ON jobs.schedules;
DROP TRIGGER settings_merge_restored ON jobs.settings;
