-- Hardening, foundation: the bundle's three roles, pinned search paths with pg_temp last, error
-- messages that never echo a whole input, and flag changes recorded against the session's login.
--
-- Roles are cluster-wide, so a second database of the same cluster finds them already made.
--   freshet_admin  settings, flags, schedules, watch() and grant_access(); a member of the other two
--   freshet_worker claims and finishes refresh jobs, processes orders, ingests ledger events
--   freshet_client subscribes and enqueues on demand
-- PUBLIC keeps nothing but reading the refresh registry.

DO $$
DECLARE
    role_name text;
BEGIN
    FOREACH role_name IN ARRAY ARRAY['freshet_admin', 'freshet_worker', 'freshet_client'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles r WHERE r.rolname = role_name) THEN
            BEGIN
                EXECUTE format('CREATE ROLE %I NOLOGIN', role_name);
            EXCEPTION WHEN duplicate_object OR unique_violation THEN
                NULL;   -- another database of this cluster made it at the same moment
            END;
        END IF;
    END LOOP;
    BEGIN
        GRANT freshet_worker, freshet_client TO freshet_admin;
    EXCEPTION WHEN unique_violation OR duplicate_object THEN
        NULL;
    END;
END;
$$;
COMMENT ON ROLE freshet_admin IS 'Freshet administrator: settings, flags, schedules, feed.watch() and feed.grant_access(); holds freshet_worker and freshet_client.';
COMMENT ON ROLE freshet_worker IS 'Freshet worker: claims and finishes refresh jobs with their lease tokens, processes orders, ingests ledger events.';
COMMENT ON ROLE freshet_client IS 'Freshet client: subscribes to the feed and to refresh data, and enqueues refreshes on demand.';

CREATE FUNCTION foundation.excerpt(value text, max_characters integer DEFAULT 64) RETURNS text
    LANGUAGE sql IMMUTABLE PARALLEL SAFE
    SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN value IS NULL THEN 'NULL'
                WHEN length(value) <= max_characters THEN quote_literal(value)
                ELSE quote_literal(left(value, max_characters)) || format('... (%s characters)', length(value)) END;
$$;
COMMENT ON FUNCTION foundation.excerpt(text, integer) IS
    'An input quoted for an error message, cut to max_characters with its full length noted, so a message never echoes a huge input.';

CREATE OR REPLACE FUNCTION foundation.assert_valid_identifier(candidate text, what text) RETURNS text
    LANGUAGE plpgsql STABLE
    SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF NOT foundation.is_valid_identifier(candidate) THEN
        RAISE EXCEPTION 'invalid % identifier: %', coalesce(what, 'SQL'), foundation.excerpt(candidate)
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Use lower-case letters, digits and underscores, at most 63 bytes, not a reserved word.';
    END IF;
    RETURN candidate;
END;
$$;

CREATE OR REPLACE FUNCTION foundation.is_enabled(flag text) RETURNS boolean
    LANGUAGE plpgsql STABLE
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state boolean;
BEGIN
    SELECT f.enabled INTO state FROM foundation.feature_flags f WHERE f.flag = is_enabled.flag;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown feature flag: %', foundation.excerpt(is_enabled.flag)
            USING ERRCODE = 'undefined_object',
                  HINT = 'Register it with foundation.register_flag(flag, description, enabled).';
    END IF;
    RETURN state;
END;
$$;

CREATE OR REPLACE FUNCTION foundation.set_flag(flag text, enabled boolean) RETURNS boolean
    LANGUAGE plpgsql
    SECURITY DEFINER
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    previous boolean;
BEGIN
    IF set_flag.enabled IS NULL THEN
        RAISE EXCEPTION 'a feature flag is on or off, not NULL' USING ERRCODE = 'null_value_not_allowed';
    END IF;
    SELECT f.enabled INTO previous FROM foundation.feature_flags f WHERE f.flag = set_flag.flag FOR UPDATE;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'unknown feature flag: %', foundation.excerpt(set_flag.flag)
            USING ERRCODE = 'undefined_object';
    END IF;
    -- session_user: inside this SECURITY DEFINER function current_user is the flag table's owner.
    UPDATE foundation.feature_flags f
    SET enabled = set_flag.enabled, updated_at = now(), updated_by = session_user
    WHERE f.flag = set_flag.flag;
    RETURN previous;
END;
$$;
COMMENT ON FUNCTION foundation.set_flag(text, boolean) IS
    'Turns a flag on or off, records the session''s login role and the time, and returns its previous state. freshet_admin may call it.';

CREATE FUNCTION foundation.pin_search_paths(module regnamespace) RETURNS integer
    LANGUAGE plpgsql
    SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    routine regprocedure;
    pinned integer := 0;
BEGIN
    FOR routine IN
        SELECT p.oid FROM pg_proc p
        WHERE p.pronamespace = module AND NOT coalesce('search_path=pg_catalog, pg_temp' = ANY (p.proconfig), false)
    LOOP
        EXECUTE format('ALTER FUNCTION %s SET search_path = pg_catalog, pg_temp', routine);
        pinned := pinned + 1;
    END LOOP;
    RETURN pinned;
END;
$$;
COMMENT ON FUNCTION foundation.pin_search_paths(regnamespace) IS
    'For migrations: sets search_path = pg_catalog, pg_temp on every function of a module''s schema that lacks it, and returns how many. pg_temp comes last, so a session''s temporary objects never stand in for the catalogs a function reads.';
SELECT foundation.pin_search_paths('foundation');

REVOKE ALL ON ALL FUNCTIONS IN SCHEMA foundation FROM PUBLIC;
GRANT USAGE ON SCHEMA foundation TO freshet_admin, freshet_worker, freshet_client;
GRANT EXECUTE ON FUNCTION foundation.is_enabled(text), foundation.is_valid_identifier(text), foundation.excerpt(text, integer)
    TO freshet_admin, freshet_worker, freshet_client;
GRANT EXECUTE ON FUNCTION foundation.set_flag(text, boolean) TO freshet_admin;
GRANT SELECT ON foundation.feature_flags TO freshet_admin;
