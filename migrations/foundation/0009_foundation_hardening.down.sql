-- Undo 0009_foundation_hardening.up.sql: the previous functions, paths and privileges; the roles
-- go too unless another database of the cluster still grants them something.

REVOKE SELECT ON foundation.feature_flags FROM freshet_admin;
REVOKE ALL ON ALL FUNCTIONS IN SCHEMA foundation FROM freshet_admin, freshet_worker, freshet_client;
REVOKE USAGE ON SCHEMA foundation FROM freshet_admin, freshet_worker, freshet_client;

CREATE OR REPLACE FUNCTION foundation.assert_valid_identifier(candidate text, what text) RETURNS text
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

CREATE OR REPLACE FUNCTION foundation.is_enabled(flag text) RETURNS boolean
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

CREATE OR REPLACE FUNCTION foundation.set_flag(flag text, enabled boolean) RETURNS boolean
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

ALTER FUNCTION foundation.is_valid_identifier(text) SET search_path = pg_catalog;
ALTER FUNCTION foundation.unregister_flag(text) SET search_path = pg_catalog;
ALTER FUNCTION foundation.register_flag(text,text,boolean) SET search_path = pg_catalog;

GRANT EXECUTE ON FUNCTION foundation.is_valid_identifier(text), foundation.assert_valid_identifier(text, text),
    foundation.is_enabled(text) TO PUBLIC;
DROP FUNCTION foundation.pin_search_paths(regnamespace);
DROP FUNCTION foundation.excerpt(text, integer);

DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['freshet_client', 'freshet_worker', 'freshet_admin'] LOOP
        BEGIN
            EXECUTE format('DROP ROLE IF EXISTS %I', role_name);
        EXCEPTION WHEN dependent_objects_still_exist THEN
            RAISE NOTICE 'role % stays: another database of this cluster still grants it privileges', role_name;
        END;
    END LOOP;
END;
$$;
