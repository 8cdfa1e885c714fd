-- The ledger's event tables (seed 004): one table per on-chain event type, keyed by the event's
-- position in the chain, (block_number, log_index), so a replayed event is a no-op for writers
-- that insert with ON CONFLICT DO NOTHING (and a unique violation, changing nothing, for those that
-- do not). Every later version of the ledger derives its aggregates from these rows alone.
--
-- Ids (terms, accounts) are the chain's hex strings; amounts are uint256 values, numeric(78,0).
-- A term is created once, as an atom or as a triple; a triple also creates its counter term.

GRANT USAGE ON SCHEMA ledger TO PUBLIC;

CREATE TABLE ledger.atom_created_events (
    block_number bigint NOT NULL CHECK (block_number >= 0),
    log_index bigint NOT NULL CHECK (log_index >= 0),
    transaction_hash text NOT NULL,
    term_id text NOT NULL UNIQUE,
    creator_id text NOT NULL,
    data text NOT NULL,
    PRIMARY KEY (block_number, log_index)
);
COMMENT ON TABLE ledger.atom_created_events IS 'AtomCreated events: a term that is an atom, created once by creator_id.';

CREATE TABLE ledger.triple_created_events (
    block_number bigint NOT NULL CHECK (block_number >= 0),
    log_index bigint NOT NULL CHECK (log_index >= 0),
    transaction_hash text NOT NULL,
    term_id text NOT NULL UNIQUE,
    counter_term_id text NOT NULL UNIQUE,
    creator_id text NOT NULL,
    subject_id text NOT NULL,
    predicate_id text NOT NULL,
    object_id text NOT NULL,
    PRIMARY KEY (block_number, log_index),
    CONSTRAINT triple_created_events_counter_term_differs CHECK (counter_term_id <> term_id)
);
COMMENT ON TABLE ledger.triple_created_events IS
    'TripleCreated events: a term that states (subject, predicate, object), each an existing term, and its counter term, which stakes against it.';

CREATE TABLE ledger.deposited_events (
    block_number bigint NOT NULL CHECK (block_number >= 0),
    log_index bigint NOT NULL CHECK (log_index >= 0),
    transaction_hash text NOT NULL,
    account_id text NOT NULL,
    receiver_id text NOT NULL,
    term_id text NOT NULL,
    curve_id bigint NOT NULL CHECK (curve_id > 0),
    assets numeric(78, 0) NOT NULL,
    assets_after_fees numeric(78, 0) NOT NULL,
    shares numeric(78, 0) NOT NULL,
    total_shares numeric(78, 0) NOT NULL,
    PRIMARY KEY (block_number, log_index),
    CONSTRAINT deposited_events_amounts_not_negative CHECK (assets >= 0 AND assets_after_fees >= 0 AND shares >= 0 AND total_shares >= 0)
);
COMMENT ON TABLE ledger.deposited_events IS
    'Deposited events: account_id paid assets into the vault (term_id, curve_id); receiver_id got shares and now holds total_shares.';

CREATE TABLE ledger.redeemed_events (
    block_number bigint NOT NULL CHECK (block_number >= 0),
    log_index bigint NOT NULL CHECK (log_index >= 0),
    transaction_hash text NOT NULL,
    account_id text NOT NULL,
    receiver_id text NOT NULL,
    term_id text NOT NULL,
    curve_id bigint NOT NULL CHECK (curve_id > 0),
    shares numeric(78, 0) NOT NULL,
    total_shares numeric(78, 0) NOT NULL,
    assets numeric(78, 0) NOT NULL,
    fees numeric(78, 0) NOT NULL,
    PRIMARY KEY (block_number, log_index),
    CONSTRAINT redeemed_events_amounts_not_negative CHECK (shares >= 0 AND total_shares >= 0 AND assets >= 0 AND fees >= 0)
);
COMMENT ON TABLE ledger.redeemed_events IS
    'Redeemed events: account_id burned shares of the vault (term_id, curve_id) and now holds total_shares; receiver_id got assets.';

CREATE TABLE ledger.share_price_changed_events (
    block_number bigint NOT NULL CHECK (block_number >= 0),
    log_index bigint NOT NULL CHECK (log_index >= 0),
    transaction_hash text NOT NULL,
    term_id text NOT NULL,
    curve_id bigint NOT NULL CHECK (curve_id > 0),
    share_price numeric(78, 0) NOT NULL,
    total_assets numeric(78, 0) NOT NULL,
    total_shares numeric(78, 0) NOT NULL,
    PRIMARY KEY (block_number, log_index),
    CONSTRAINT share_price_changed_events_amounts_not_negative CHECK (share_price >= 0 AND total_assets >= 0 AND total_shares >= 0)
);
COMMENT ON TABLE ledger.share_price_changed_events IS
    'SharePriceChanged events: the vault (term_id, curve_id) now holds total_assets for total_shares at share_price (18 decimals).';

-- Statement-level checks: one query per statement, however many events it inserts. A bad event
-- fails the whole statement, so the aggregates never see it.

CREATE FUNCTION ledger.check_atom_terms() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    offending text;
BEGIN
    SELECT string_agg(DISTINCT n.term_id, ', ') INTO offending
    FROM new_events n
    WHERE EXISTS (SELECT FROM ledger.triple_created_events t WHERE t.term_id = n.term_id)
       OR EXISTS (SELECT FROM ledger.triple_created_events t WHERE t.counter_term_id = n.term_id);
    IF offending IS NOT NULL THEN
        RAISE EXCEPTION 'atom_created_events: term % already exists as a triple', offending
            USING ERRCODE = 'unique_violation', HINT = 'A term is created once, as an atom or as a triple.';
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.check_atom_terms() IS
    'Statement-level AFTER INSERT trigger on atom_created_events: refuses (23505) an atom whose id is already a triple or a counter term.';

CREATE FUNCTION ledger.check_triple_terms() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    offending text;
BEGIN
    SELECT string_agg(DISTINCT n.term_id, ', ') INTO offending
    FROM new_events n
    WHERE EXISTS (SELECT FROM ledger.atom_created_events a WHERE a.term_id = n.term_id)
       OR EXISTS (SELECT FROM ledger.atom_created_events a WHERE a.term_id = n.counter_term_id)
       OR EXISTS (SELECT FROM ledger.triple_created_events t WHERE t.term_id = n.counter_term_id)
       OR EXISTS (SELECT FROM ledger.triple_created_events t WHERE t.counter_term_id = n.term_id);
    IF offending IS NOT NULL THEN
        RAISE EXCEPTION 'triple_created_events: triple % reuses the id of an existing term', offending
            USING ERRCODE = 'unique_violation', HINT = 'A term is created once, as an atom or as a triple.';
    END IF;
    SELECT string_agg(DISTINCT r.ref, ', ') INTO offending
    FROM new_events n, LATERAL (VALUES (n.subject_id), (n.predicate_id), (n.object_id)) AS r (ref)
    WHERE NOT EXISTS (SELECT FROM ledger.atom_created_events a WHERE a.term_id = r.ref)
      AND NOT EXISTS (SELECT FROM ledger.triple_created_events t WHERE t.term_id = r.ref)
      AND NOT EXISTS (SELECT FROM ledger.triple_created_events t WHERE t.counter_term_id = r.ref);
    IF offending IS NOT NULL THEN
        RAISE EXCEPTION 'triple_created_events: unknown term %', offending
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'A triple''s subject, predicate and object must be created before it.';
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.check_triple_terms() IS
    'Statement-level AFTER INSERT trigger on triple_created_events: refuses (23505) a triple or counter term id that already exists, and (23503) a subject, predicate or object that no creation event has created.';

CREATE FUNCTION ledger.check_event_terms() RETURNS trigger
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    offending text;
BEGIN
    SELECT string_agg(DISTINCT n.term_id, ', ') INTO offending
    FROM new_events n
    WHERE NOT EXISTS (SELECT FROM ledger.atom_created_events a WHERE a.term_id = n.term_id)
      AND NOT EXISTS (SELECT FROM ledger.triple_created_events t WHERE t.term_id = n.term_id)
      AND NOT EXISTS (SELECT FROM ledger.triple_created_events t WHERE t.counter_term_id = n.term_id);
    IF offending IS NOT NULL THEN
        RAISE EXCEPTION '%: unknown term %', TG_TABLE_NAME, offending
            USING ERRCODE = 'foreign_key_violation',
                  HINT = 'Insert the term''s atom_created_events or triple_created_events row first.';
    END IF;
    RETURN NULL;
END;
$$;
COMMENT ON FUNCTION ledger.check_event_terms() IS
    'Statement-level AFTER INSERT trigger on deposited_events, redeemed_events and share_price_changed_events: refuses (23503) events that name a term no creation event has created.';

CREATE TRIGGER atom_created_events_check_terms AFTER INSERT ON ledger.atom_created_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.check_atom_terms();
CREATE TRIGGER triple_created_events_check_terms AFTER INSERT ON ledger.triple_created_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.check_triple_terms();
CREATE TRIGGER deposited_events_check_terms AFTER INSERT ON ledger.deposited_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.check_event_terms();
CREATE TRIGGER redeemed_events_check_terms AFTER INSERT ON ledger.redeemed_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.check_event_terms();
CREATE TRIGGER share_price_changed_events_check_terms AFTER INSERT ON ledger.share_price_changed_events
    REFERENCING NEW TABLE AS new_events FOR EACH STATEMENT EXECUTE FUNCTION ledger.check_event_terms();

-- Events are facts: corrections arrive as new events, never as edits.
CREATE FUNCTION ledger.refuse_event_change() RETURNS trigger
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION '%: events are append-only, % is refused', TG_TABLE_NAME, TG_OP
        USING ERRCODE = 'feature_not_supported',
              HINT = 'A replayed event is inserted with ON CONFLICT (block_number, log_index) DO NOTHING; a correction is a new event.';
END;
$$;
COMMENT ON FUNCTION ledger.refuse_event_change() IS
    'Statement-level BEFORE UPDATE/DELETE/TRUNCATE trigger on the event tables: the aggregates are derived from inserts only, so edits are refused (0A000).';

CREATE TRIGGER atom_created_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger.atom_created_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_event_change();
CREATE TRIGGER triple_created_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger.triple_created_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_event_change();
CREATE TRIGGER deposited_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger.deposited_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_event_change();
CREATE TRIGGER redeemed_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger.redeemed_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_event_change();
CREATE TRIGGER share_price_changed_events_append_only BEFORE UPDATE OR DELETE OR TRUNCATE ON ledger.share_price_changed_events
    FOR EACH STATEMENT EXECUTE FUNCTION ledger.refuse_event_change();
