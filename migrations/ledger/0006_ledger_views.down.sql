-- Undo 0006_ledger_views.up.sql.

SELECT ledger.drop_aggregates();
DROP FUNCTION ledger.verify();
DROP FUNCTION ledger.refresh_all_views();
DROP FUNCTION ledger.drop_aggregates();
DROP FUNCTION ledger.create_aggregates(boolean);
DROP TABLE ledger.aggregates;
