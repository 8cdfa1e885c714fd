DROP FUNCTION feed.disconnect(text[]);
DROP FUNCTION feed.record_disconnect(bigint[], uuid[]);
DROP FUNCTION feed.acknowledge(text[], text[]);
DROP INDEX feed.subscriptions_active_by_table;
DROP FUNCTION feed.deliveries(text, integer, text[]);
