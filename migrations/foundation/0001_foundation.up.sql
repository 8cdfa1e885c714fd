-- Foundation: one schema per module, feature flags, and identifier checks shared by every module.

CREATE SCHEMA foundation;
COMMENT ON SCHEMA foundation IS 'Shared helpers: feature flags and identifier checks.';
CREATE SCHEMA jobs;
COMMENT ON SCHEMA jobs IS 'The pg_cron scheduling layer and the background jobs built on it.';
CREATE SCHEMA refresh;
COMMENT ON SCHEMA refresh IS 'Data-type registry, status-partitioned refresh queue, quota and staleness triggers.';
CREATE SCHEMA ledger;
COMMENT ON SCHEMA ledger IS 'Event tables, trigger-maintained aggregates and their materialized-view rollback.';
CREATE SCHEMA feed;
COMMENT ON SCHEMA feed IS 'Change capture, the durable change log and client subscriptions.';

CREATE TABLE foundation.feature_flags (
    flag text PRIMARY KEY CHECK (flag ~ '^[a-z][a-z0-9_]{0,62}$'),
    enabled boolean NOT NULL DEFAULT false,
    description text NOT NULL CHECK (description <> ''),
    updated_at timestamptz NOT NULL DEFAULT now(),
    updated_by text NOT NULL DEFAULT current_user
);
COMMENT ON TABLE foundation.feature_flags IS
    'Kill switches from the rollout plan''s Phase 0: every entry point of a module checks its flag. Change them with foundation.set_flag().';
REVOKE ALL ON foundation.feature_flags FROM PUBLIC;

CREATE FUNCTION foundation.is_valid_identifier(candidate text) RETURNS boolean
    LANGUAGE sql STABLE PARALLEL SAFE
    SET search_path = pg_catalog
AS $$
    SELECT candidate IS NOT NULL
       AND candidate ~ '^[a-z_][a-z0-9_]*$'
       AND octet_length(candidate) <= 63
       AND NOT EXISTS (SELECT 1 FROM pg_get_keywords() k WHERE k.word = candidate AND k.catcode IN ('R', 'T'));
$$;
COMMENT ON FUNCTION foundation.is_valid_identifier(text) IS
    'True for a plain lower-case SQL identifier of at most 63 bytes that is not a reserved word; false for anything else, NULL included. Identifiers that pass still reach SQL only through format(''%I'').';

CREATE FUNCTION foundation.assert_valid_identifier(candidate text, what text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog
AS $$
BEGIN
    IF NOT foundation.is_valid_identifier(candidate) THEN
        RAISE EXCEPTION 'invalid % identifier: %', coalesce(what, 'SQL'), coalesce(quote_literal(candidate), 'NULL')
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use lower-case letters, digits and underscores, at most 63 bytes, not a reserved word.';
    END IF;
    RETURN candidate;
END;
$$;
COMMENT ON FUNCTION foundation.assert_valid_identifier(text, text) IS
    'Returns the identifier unchanged, or raises invalid_parameter_value (22023) naming what it was meant to be.';

CREATE FUNCTION foundation.register_flag(flag text, description text, enabled boolean) RETURNS void
    LANGUAGE sql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    INSERT INTO foundation.feature_flags AS f (flag, enabled, description)
    VALUES (register_flag.flag, register_flag.enabled, register_flag.description)
    ON CONFLICT (flag) DO UPDATE SET description = excluded.description;
$$;
COMMENT ON FUNCTION foundation.register_flag(text, text, boolean) IS
    'Declares a module''s flag with its initial state. Idempotent: registering an existing flag keeps its current state.';

CREATE FUNCTION foundation.unregister_flag(flag text) RETURNS void
    LANGUAGE sql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
    DELETE FROM foundation.feature_flags f WHERE f.flag = unregister_flag.flag;
$$;
COMMENT ON FUNCTION foundation.unregister_flag(text) IS 'Removes a flag; for the down migration of the module that registered it.';

CREATE FUNCTION foundation.is_enabled(flag text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    state boolean;
BEGIN
    SELECT f.enabled INTO state FROM foundation.feature_flags f WHERE f.flag = is_enabled.flag;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown feature flag: %', coalesce(quote_literal(is_enabled.flag), 'NULL')
            USING ERRCODE = 'undefined_object',
                  HINT = 'Register it with foundation.register_flag(flag, description, enabled).';
    END IF;
    RETURN state;
END;
$$;
COMMENT ON FUNCTION foundation.is_enabled(text) IS
    'Reads a feature flag. An unknown flag raises undefined_object (42704) rather than silently reading as off.';

CREATE FUNCTION foundation.set_flag(flag text, enabled boolean) RETURNS boolean
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog
AS $$
DECLARE
    previous boolean;
BEGIN
    IF set_flag.enabled IS NULL THEN
        RAISE EXCEPTION 'a feature flag is on or off, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT f.enabled INTO previous FROM foundation.feature_flags f WHERE f.flag = set_flag.flag FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown feature flag: %', coalesce(quote_literal(set_flag.flag), 'NULL')
            USING ERRCODE = 'undefined_object';
    END IF;
    UPDATE foundation.feature_flags f
    SET enabled = set_flag.enabled, updated_at = now(), updated_by = current_user
    WHERE f.flag = set_flag.flag;
    RETURN previous;
END;
$$;
COMMENT ON FUNCTION foundation.set_flag(text, boolean) IS
    'Turns a flag on or off, records who and when, and returns its previous state.';

REVOKE ALL ON FUNCTION foundation.register_flag(text, text, boolean) FROM PUBLIC;
REVOKE ALL ON FUNCTION foundation.unregister_flag(text) FROM PUBLIC;
REVOKE ALL ON FUNCTION foundation.set_flag(text, boolean) FROM PUBLIC;
