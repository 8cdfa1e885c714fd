-- Undo 0008_feed.up.sql: capture comes off every watched table first, then the feed's objects go.
-- The schema itself belongs to 0001_foundation.

SELECT jobs.unschedule_job('feed-prune');
SELECT feed.unwatch(w.table_id) FROM feed.watched_tables w;

DROP FUNCTION feed.subscription_lag(), feed.health(), feed.prune_change_log(interval), feed.subscription_position(feed.subscriptions),
    feed.setting(text), feed.changes_for(text, text, integer), feed.client_changes(text, bigint, bigint),
    feed.changes_since(text, integer, regclass), feed.matches(jsonb, jsonb), feed.touch(text), feed.unsubscribe(text, regclass),
    feed.subscribe(text, regclass, jsonb, text, text), feed.normalize_filters(regclass, jsonb), feed.unwatch(regclass),
    feed.watch(regclass, text), feed.channel_name(regclass), feed.capture_truncate(), feed.logged(text, text, text, bigint),
    feed.check_cursor(bigint, bigint), feed.current_cursor(), feed.parse_cursor(text), feed.format_cursor(bigint, bigint),
    feed.revoke_access(regrole), feed.grant_access(regrole, text);
DROP TABLE feed.subscriptions, feed.access, feed.log_state, feed.change_log, feed.commits, feed.watched_tables, feed.settings;
DROP SEQUENCE feed.commit_seq;
DROP FUNCTION feed.check_subscription(), feed.stamp_commit(), feed.current_user_id(), feed.is_service();
REVOKE USAGE ON SCHEMA feed FROM PUBLIC;
