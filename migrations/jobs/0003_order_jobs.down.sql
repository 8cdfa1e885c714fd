-- Undo 0003_order_jobs.up.sql: unschedule its jobs, then drop what it made, in reverse order.

SELECT jobs.unschedule_job('cleanup-old-queue-entries');
SELECT jobs.unschedule_job('hourly-price-snapshot');
SELECT jobs.unschedule_job('refresh-issuer-stats-cache');
SELECT jobs.unschedule_job('process-pending-orders');

DROP VIEW jobs.order_queue_status;
DROP FUNCTION jobs.cleanup_old_orders(interval);
DROP FUNCTION jobs.snapshot_hourly_prices();
DROP FUNCTION jobs.refresh_issuer_stats_cache();
DROP TRIGGER order_queue_wake ON jobs.order_queue;
DROP FUNCTION jobs.wake_order_processors();
DROP FUNCTION jobs.process_all_pending_orders(integer);
DROP FUNCTION jobs.process_next_queue_order();
DROP FUNCTION jobs.set_price(text, numeric);
DROP TRIGGER issuers_update_mark_stale ON jobs.issuers;
DROP TRIGGER holdings_delete_mark_stale ON jobs.holdings;
DROP TRIGGER holdings_update_mark_stale ON jobs.holdings;
DROP TRIGGER holdings_insert_mark_stale ON jobs.holdings;
DROP FUNCTION jobs.mark_holdings_changed();
DROP TRIGGER trades_mark_stale ON jobs.trades;
DROP FUNCTION jobs.mark_traded();
DROP TABLE jobs.refresh_marks;
DROP TABLE jobs.hourly_prices;
DROP TABLE jobs.issuer_stats_cache;
DROP TABLE jobs.stale_hourly_bars;
DROP TABLE jobs.stale_issuer_stats;
DROP TABLE jobs.order_queue;
DROP TABLE jobs.trades;
DROP TABLE jobs.holdings;
DROP TABLE jobs.balances;
DROP TABLE jobs.issuers;

DELETE FROM jobs.settings WHERE name = 'order_retention';
