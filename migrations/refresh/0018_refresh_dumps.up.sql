-- The refresh module's part of dump and restore on the extension path (see foundation/0016):
-- registrations, settings, the queue in every state, the fetched data and the accounting keep
-- their rows in a dump. The seeded tables take their dumped values.
CREATE TRIGGER settings_merge_restored BEFORE INSERT ON refresh.settings
    FOR EACH ROW WHEN (pg_catalog.current_setting('session_replication_role') = 'replica')
    EXECUTE FUNCTION foundation.merge_restored_row();
ALTER TABLE refresh.settings ENABLE ALWAYS TRIGGER settings_merge_restored;
COMMENT ON TRIGGER settings_merge_restored ON refresh.settings IS
    'During a restore, a dumped setting overwrites the one CREATE EXTENSION seeded.';

CREATE TRIGGER data_type_registry_merge_restored BEFORE INSERT ON refresh.data_type_registry
    FOR EACH ROW WHEN (pg_catalog.current_setting('session_replication_role') = 'replica')
    EXECUTE FUNCTION foundation.merge_restored_row();
ALTER TABLE refresh.data_type_registry ENABLE ALWAYS TRIGGER data_type_registry_merge_restored;
COMMENT ON TRIGGER data_type_registry_merge_restored ON refresh.data_type_registry IS
    'During a restore, a dumped registration overwrites the one CREATE EXTENSION seeded.';

CREATE TRIGGER circuit_breaker_merge_restored BEFORE INSERT ON refresh.circuit_breaker
    FOR EACH ROW WHEN (pg_catalog.current_setting('session_replication_role') = 'replica')
    EXECUTE FUNCTION foundation.merge_restored_row();
ALTER TABLE refresh.circuit_breaker ENABLE ALWAYS TRIGGER circuit_breaker_merge_restored;
COMMENT ON TRIGGER circuit_breaker_merge_restored ON refresh.circuit_breaker IS
    'During a restore, the dumped breaker state overwrites the one CREATE EXTENSION seeded.';

SELECT foundation.keep_in_dumps(ARRAY[
    'refresh.settings', 'refresh.data_type_registry', 'refresh.circuit_breaker', 'refresh.subscriptions',
    'refresh.active_subscriptions', 'refresh.api_call_queue', 'refresh.api_call_queue_id_seq', 'refresh.active_job_keys',
    'refresh.api_data_usage', 'refresh.staleness_errors', 'refresh.health_checks', 'refresh.live_quote_indicators',
    'refresh.profiles', 'refresh.financial_statements', 'refresh.ratios_ttm', 'refresh.dividend_history', 'refresh.shares_float',
    'refresh.revenue_segmentation', 'refresh.grades_historical', 'refresh.exchange_variants', 'refresh.available_exchanges',
    'refresh.exchange_market_status']::regclass[]);
