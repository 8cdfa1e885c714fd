-- Undo 0004_refresh_engine.up.sql: unschedule its jobs, detach its update triggers, remove its
-- flags, then drop what it made in reverse order.

SELECT jobs.unschedule_job('refresh-health-check');
SELECT jobs.unschedule_job('refresh-analytics');
SELECT jobs.unschedule_job('refresh-queue-maintenance');
SELECT jobs.unschedule_job('refresh-processor-loop');
SELECT jobs.unschedule_job('refresh-scheduled-refreshes');
SELECT jobs.unschedule_job('refresh-stale-sweep');

SELECT refresh.detach_update_trigger(r.data_type) FROM refresh.data_type_registry r WHERE r.update_trigger_attached;
SELECT foundation.unregister_flag(r.flag) FROM refresh.data_type_registry r;
SELECT foundation.unregister_flag(f) FROM unnest(ARRAY['use_queue_system', 'use_subscription_trigger', 'use_update_trigger']) AS f;
DELETE FROM refresh.data_type_registry;   -- drops the generated check functions

DROP FUNCTION refresh.record_health_check();
DROP FUNCTION refresh.health_check();
DROP FUNCTION refresh.is_quota_exceeded();
DROP FUNCTION refresh.maintain_queue_partitions();
DROP FUNCTION refresh.invoke_processor_loop();
DROP FUNCTION refresh.set_circuit_breaker(text);
DROP FUNCTION refresh.evaluate_circuit_breaker();
DROP FUNCTION refresh.refresh_analytics_from_presence();
DROP FUNCTION refresh.queue_scheduled_refreshes();
DROP FUNCTION refresh.check_and_queue_stale_data_from_presence();
DROP FUNCTION refresh.set_update_trigger(boolean);
DROP FUNCTION refresh.detach_update_trigger(text);
DROP FUNCTION refresh.attach_update_trigger(text);
DROP FUNCTION refresh.mark_update_trigger(text, boolean);
DROP FUNCTION refresh.sync_update_trigger(refresh.data_type_registry);
DROP FUNCTION refresh.check_staleness_on_update();
DROP TRIGGER subscriptions_queue_stale ON refresh.subscriptions;
DROP FUNCTION refresh.on_subscription_insert();
DROP FUNCTION refresh.check_and_queue_stale_batch(text, text[], integer);
DROP FUNCTION refresh.reset_job_immediate(bigint);
DROP FUNCTION refresh.recover_stuck_jobs(interval);
DROP FUNCTION refresh.fail_queue_job(bigint, text, text);
DROP FUNCTION refresh.complete_queue_job(bigint, bigint, text);
DROP FUNCTION refresh.complete_queue_jobs(bigint[], bigint[], text);
DROP FUNCTION refresh.correct_size_estimate(text, bigint, boolean);
DROP FUNCTION refresh.get_queue_batch(text, integer);
DROP FUNCTION refresh.queue_refreshes(text, text[], integer);
DROP FUNCTION refresh.queue_refresh_if_not_exists(text, text, integer, bigint);
DROP FUNCTION refresh.refuse_unheld_job(bigint, text);
DROP FUNCTION refresh.retry_delay(integer);
DROP FUNCTION refresh.quota_state();
DROP FUNCTION refresh.record_usage(timestamptz, bigint, bigint, bigint, bigint);
DROP FUNCTION refresh.quota_period_start(timestamptz);
DROP FUNCTION refresh.queue_stale(refresh.data_type_registry, text[], integer, text);
DROP FUNCTION refresh.stale_symbols(refresh.data_type_registry, text[], text);
DROP FUNCTION refresh.enqueue(text[], text[], integer, bigint);
DROP FUNCTION refresh.assert_symbol(text);
DROP FUNCTION refresh.is_type_active(refresh.data_type_registry);
DROP FUNCTION refresh.registry_entry(text);
DROP FUNCTION refresh.log_staleness_error(text, text, integer, text, text);

DROP TABLE refresh.health_checks;
DROP TABLE refresh.staleness_errors;
DROP TABLE refresh.circuit_breaker;
DROP TABLE refresh.api_data_usage;
DROP TABLE refresh.active_job_keys;
DROP TRIGGER api_call_queue_no_status_update ON refresh.api_call_queue;
DROP FUNCTION refresh.refuse_status_update();
DROP TABLE refresh.api_call_queue;
DROP TABLE refresh.active_subscriptions;
DROP TABLE refresh.subscriptions;

DROP FUNCTION refresh.unregister_data_type(text);
DROP FUNCTION refresh.register_data_type(text, text, text, text, text, text, integer, bigint, text, integer);
DROP TRIGGER registry_check_function ON refresh.data_type_registry;
DROP FUNCTION refresh.generate_check_function();
DROP TRIGGER registry_entry_valid ON refresh.data_type_registry;
DROP FUNCTION refresh.check_registry_entry();
REVOKE SELECT ON refresh.data_type_registry FROM PUBLIC;
REVOKE USAGE ON SCHEMA refresh FROM PUBLIC;
DROP TABLE refresh.data_type_registry;

DROP TABLE refresh.exchange_market_status;
DROP TABLE refresh.available_exchanges;
DROP TABLE refresh.exchange_variants;
DROP TABLE refresh.grades_historical;
DROP TABLE refresh.revenue_segmentation;
DROP TABLE refresh.shares_float;
DROP TABLE refresh.dividend_history;
DROP TABLE refresh.ratios_ttm;
DROP TABLE refresh.financial_statements;
DROP TABLE refresh.profiles;
DROP TABLE refresh.live_quote_indicators;

DROP FUNCTION refresh.is_profile_stale(timestamptz, integer);
DROP FUNCTION refresh.is_data_stale(timestamptz, integer);
DROP FUNCTION refresh.set_setting(text, text);
DROP FUNCTION refresh.setting(text);
DROP TABLE refresh.settings;
DROP FUNCTION refresh.setting_is_valid(text, text);
