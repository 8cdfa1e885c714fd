-- Undo 0005_ledger_events.up.sql.

DROP TRIGGER share_price_changed_events_append_only ON ledger.share_price_changed_events;
DROP TRIGGER redeemed_events_append_only ON ledger.redeemed_events;
DROP TRIGGER deposited_events_append_only ON ledger.deposited_events;
DROP TRIGGER triple_created_events_append_only ON ledger.triple_created_events;
DROP TRIGGER atom_created_events_append_only ON ledger.atom_created_events;
DROP FUNCTION ledger.refuse_event_change();

DROP TRIGGER share_price_changed_events_check_terms ON ledger.share_price_changed_events;
DROP TRIGGER redeemed_events_check_terms ON ledger.redeemed_events;
DROP TRIGGER deposited_events_check_terms ON ledger.deposited_events;
DROP TRIGGER triple_created_events_check_terms ON ledger.triple_created_events;
DROP TRIGGER atom_created_events_check_terms ON ledger.atom_created_events;
DROP FUNCTION ledger.check_event_terms();
DROP FUNCTION ledger.check_triple_terms();
DROP FUNCTION ledger.check_atom_terms();

DROP TABLE ledger.share_price_changed_events;
DROP TABLE ledger.redeemed_events;
DROP TABLE ledger.deposited_events;
DROP TABLE ledger.triple_created_events;
DROP TABLE ledger.atom_created_events;

REVOKE USAGE ON SCHEMA ledger FROM PUBLIC;
