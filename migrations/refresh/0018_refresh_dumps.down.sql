-- Undo 0018_refresh_dumps.up.sql.
SELECT foundation.forget_in_dumps(ARRAY[
    'refresh.settings', 'refresh.data_type_registry', 'refresh.circuit_breaker', 'refresh.subscriptions',
    'refresh.active_subscriptions', 'refresh.api_call_queue', 'refresh.api_call_queue_id_seq', 'refresh.active_job_keys',
    'refresh.api_data_usage', 'refresh.staleness_errors', 'refresh.health_checks', 'refresh.live_quote_indicators',
    'refresh.profiles', 'refresh.financial_statements', 'refresh.ratios_ttm', 'refresh.dividend_history', 'refresh.shares_float',
    'refresh.revenue_segmentation', 'refresh.grades_historical', 'refresh.exchange_variants', 'refresh.available_exchanges',
    'refresh.exchange_market_status']::regclass[]);
DROP TRIGGER circuit_breaker_merge_restored ON refresh.circuit_breaker;
DROP TRIGGER data_type_registry_merge_restored ON refresh.data_type_registry;
DROP TRIGGER settings_merge_restored ON refresh.settings;
