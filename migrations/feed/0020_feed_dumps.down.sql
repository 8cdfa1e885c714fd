-- Undo 0020_feed_dumps.up.sql.
DROP FUNCTION feed.repair_after_restore();
SELECT foundation.forget_in_dumps(ARRAY[
    'feed.settings', 'feed.log_state', 'feed.access', 'feed.watched_tables', 'feed.subscriptions', 'feed.commits',
    'feed.change_log', 'feed.commit_seq']::regclass[]);
DROP TRIGGER log_state_merge_restored ON feed.log_state;
DROP TRIGGER settings_merge_restored ON feed.settings;
