-- The refresh module's part of dump and restore on the extension path (see foundation/0016):
-- registrations, settings, the queue in every state, the fetched data and the accounting keep
-- their rows in a dump. The seeded tables take their dumped values.
SELECT foundation.merge_on_restore('refresh.settings');
SELECT foundation.merge_on_restore('refresh.data_type_registry');
SELECT foundation.merge_on_restore('refresh.circuit_breaker');

SELECT foundation.keep_in_dumps(ARRAY[
    'refresh.settings', 'refresh.data_type_registry', 'refresh.circuit_breaker', 'refresh.subscriptions',
    'refresh.active_subscriptions', 'refresh.api_call_queue', 'refresh.api_call_queue_id_seq', 'refresh.active_job_keys',
    'refresh.api_data_usage', 'refresh.staleness_errors', 'refresh.health_checks', 'refresh.live_quote_indicators',
    'refresh.profiles', 'refresh.financial_statements', 'refresh.ratios_ttm', 'refresh.dividend_history', 'refresh.shares_float',
    'refresh.revenue_segmentation', 'refresh.grades_historical', 'refresh.exchange_variants', 'refresh.available_exchanges',
    'refresh.exchange_market_status']::regclass[]);
