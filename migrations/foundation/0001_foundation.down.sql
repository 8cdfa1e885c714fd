-- Undo 0001_foundation.up.sql, in reverse order.

DROP FUNCTION foundation.set_flag(text, boolean);
DROP FUNCTION foundation.is_enabled(text);
DROP FUNCTION foundation.unregister_flag(text);
DROP FUNCTION foundation.register_flag(text, text, boolean);
DROP FUNCTION foundation.assert_valid_identifier(text, text);
DROP FUNCTION foundation.is_valid_identifier(text);
DROP TABLE foundation.feature_flags;

DROP SCHEMA feed;
DROP SCHEMA ledger;
DROP SCHEMA refresh;
DROP SCHEMA jobs;
DROP SCHEMA foundation;
