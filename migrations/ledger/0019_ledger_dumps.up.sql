-- The ledger's part of dump and restore on the extension path (see foundation/0016): the events,
-- the trigger-maintained aggregates and the analytics queue keep their rows in a dump. A restore
-- fires none of the triggers, so the aggregates come back exactly as they were dumped, from the
-- same snapshot as the events, and ledger.verify() finds them equal. ledger.aggregates holds the
-- module's own definitions, which CREATE EXTENSION writes again.
SELECT foundation.keep_in_dumps(ARRAY[
    'ledger.atom_created_events', 'ledger.triple_created_events', 'ledger.deposited_events', 'ledger.redeemed_events',
    'ledger.share_price_changed_events', 'ledger.analytics_queue']::regclass[]
    || ARRAY(SELECT format('ledger.%I', a.name)::regclass FROM ledger.aggregates a ORDER BY a.build_order));
