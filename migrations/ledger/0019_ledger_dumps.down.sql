-- Undo 0019_ledger_dumps.up.sql.
SELECT foundation.forget_in_dumps(ARRAY[
    'ledger.atom_created_events', 'ledger.triple_created_events', 'ledger.deposited_events', 'ledger.redeemed_events',
    'ledger.share_price_changed_events', 'ledger.analytics_queue']::regclass[]
    || ARRAY(SELECT format('ledger.%I', a.name)::regclass FROM ledger.aggregates a ORDER BY a.build_order));
