-- Security of the whole bundle's functions, and of the foundation module. Structure first: every
-- function pins its search path with pg_temp last, and PUBLIC may do nothing but read the refresh
-- registry. Then the attack: temporary objects that shadow the catalogs, tried against every
-- function each role can execute. Then the foundation's own entry points, from each role.
BEGIN;
SELECT plan(25);

CREATE FUNCTION pg_temp.bundle_schemas() RETURNS text[] LANGUAGE sql AS $$ SELECT ARRAY['foundation', 'jobs', 'refresh', 'ledger', 'feed'] $$;

-- Structure.
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace::regnamespace::text = ANY (pg_temp.bundle_schemas() || 'migrate'::text)
                  AND NOT coalesce(p.proconfig @> ARRAY['search_path=pg_catalog, pg_temp'] OR p.proconfig @> ARRAY['search_path=""'], false)
                ORDER BY 1),
    '{}'::text[], 'every function in the bundle''s schemas and the runner''s pins search_path = pg_catalog, pg_temp');
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_proc p
                WHERE p.pronamespace::regnamespace::text = ANY (pg_temp.bundle_schemas())
                  AND EXISTS (SELECT FROM aclexplode(coalesce(p.proacl, acldefault('f', p.proowner))) a
                              WHERE a.grantee = 0 AND a.privilege_type = 'EXECUTE')
                ORDER BY 1),
    '{}'::text[], 'PUBLIC may execute no function of the bundle');
SELECT is(ARRAY(SELECT c.oid::regclass::text || ':' || a.privilege_type FROM pg_class c CROSS JOIN LATERAL aclexplode(c.relacl) a
                WHERE c.relnamespace::regnamespace::text = ANY (pg_temp.bundle_schemas()) AND a.grantee = 0
                ORDER BY 1),
    ARRAY['refresh.data_type_registry:SELECT'], 'PUBLIC reads the refresh registry and no other relation');
SELECT is(ARRAY(SELECT n.nspname::text FROM pg_namespace n CROSS JOIN LATERAL aclexplode(n.nspacl) a
                WHERE n.nspname = ANY (pg_temp.bundle_schemas()) AND a.grantee = 0 ORDER BY 1),
    ARRAY['refresh'], 'PUBLIC uses the refresh schema only, to reach the registry');
SELECT is(ARRAY(SELECT r.rolname::text FROM pg_roles r WHERE r.rolname IN ('freshet_admin', 'freshet_worker', 'freshet_client')
                AND NOT r.rolcanlogin AND NOT r.rolsuper ORDER BY 1),
    ARRAY['freshet_admin', 'freshet_client', 'freshet_worker'], 'the bundle''s three roles exist, without login or superuser');
SELECT ok(pg_has_role('freshet_admin', 'freshet_worker', 'MEMBER') AND pg_has_role('freshet_admin', 'freshet_client', 'MEMBER')
          AND NOT pg_has_role('freshet_client', 'freshet_worker', 'MEMBER') AND NOT pg_has_role('freshet_worker', 'freshet_client', 'MEMBER'),
    'freshet_admin holds the other two; worker and client hold nothing of each other');

-- The attack: temporary objects named like the catalogs the bundle reads.
CREATE ROLE freshet_test_nobody;
CREATE ROLE freshet_test_client IN ROLE freshet_client;
CREATE ROLE freshet_test_worker IN ROLE freshet_worker;
CREATE ROLE freshet_test_admin IN ROLE freshet_admin;
CREATE TABLE pg_temp.escalations (session_role name, running_as name, is_superuser boolean, relation text);
GRANT ALL ON pg_temp.escalations TO PUBLIC;
CREATE FUNCTION pg_temp.mark(relation text) RETURNS boolean LANGUAGE plpgsql AS $$
BEGIN
    INSERT INTO pg_temp.escalations
    VALUES (session_user, current_user, (SELECT r.rolsuper FROM pg_catalog.pg_roles r WHERE r.rolname = current_user), relation);
    RETURN true;
END;
$$;
-- Each role calls every function it may execute: with NULL arguments, then the catalog readers
-- with real ones. Failures are expected and caught; only reading a shadow counts.
CREATE TABLE pg_temp.long_messages (call text, length integer);
GRANT ALL ON pg_temp.long_messages TO PUBLIC;
CREATE FUNCTION pg_temp.sweep() RETURNS integer LANGUAGE plpgsql AS $$
DECLARE
    f record;
    calls integer := 0;
    statement text;
    message text;
BEGIN
    -- First every function with a text argument, given 10,000 characters there: no error may echo them.
    FOR f IN
        SELECT format('SELECT %I.%I(%s)', n.nspname, p.proname,
                      (SELECT string_agg(CASE WHEN t.type IN ('text'::pg_catalog.regtype, 'character varying'::pg_catalog.regtype)
                                              THEN 'repeat(''x'', 10000)'
                                              WHEN t.type = 'jsonb'::pg_catalog.regtype THEN 'to_jsonb(repeat(''x'', 10000))'
                                              ELSE 'NULL::' || pg_catalog.format_type(t.type, NULL) END, ', ' ORDER BY t.position)
                       FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t (type, position))) AS call
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY (pg_temp.bundle_schemas()) AND p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype
          AND p.prokind = 'f' AND p.proargtypes::oid[] && ARRAY['text'::pg_catalog.regtype, 'character varying'::pg_catalog.regtype, 'jsonb'::pg_catalog.regtype]::oid[]
          AND pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
    LOOP
        BEGIN
            EXECUTE f.call;
        EXCEPTION WHEN OTHERS THEN
            GET STACKED DIAGNOSTICS message = MESSAGE_TEXT;
            IF length(message) > 1000 THEN
                INSERT INTO pg_temp.long_messages VALUES (f.call, length(message));
            END IF;
        END;
        calls := calls + 1;
    END LOOP;
    FOR f IN
        SELECT format('SELECT %I.%I(%s)', n.nspname, p.proname,
                      (SELECT coalesce(string_agg('NULL::' || pg_catalog.format_type(t.type, NULL), ', ' ORDER BY t.position), '')
                       FROM unnest(p.proargtypes::oid[]) WITH ORDINALITY AS t (type, position))) AS call
        FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
        WHERE n.nspname = ANY (pg_temp.bundle_schemas()) AND p.prorettype <> 'pg_catalog.trigger'::pg_catalog.regtype
          AND p.prokind = 'f'
          AND pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
        UNION ALL
        SELECT * FROM unnest(ARRAY[
            'SELECT refresh.health_check()', 'SELECT feed.is_service()', 'SELECT feed.current_user_id()',
            'SELECT * FROM jobs.squatted_locks()', 'SELECT feed.channel_name(''feed.change_log'')', 'SELECT * FROM feed.health()',
            'SELECT foundation.is_valid_identifier(''x'')', 'SELECT feed.subscribe(''sweep'', ''feed.change_log'')',
            'SELECT feed.watch(''pg_temp.escalations'')', 'SELECT refresh.queue_refreshes(''quote'', ARRAY[''A''], 0)',
            'SELECT * FROM refresh.get_queue_batch(''sweep'', 1)', 'SELECT jobs.set_schedule(''feed-prune'', ''17 3 * * *'')',
            'SELECT * FROM ledger.verify()', 'SELECT feed.grant_access(current_user::regrole, NULL)'])
    LOOP
        statement := f.call;
        BEGIN
            EXECUTE statement;
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
        calls := calls + 1;
    END LOOP;
    RETURN calls;
END;
$$;
GRANT EXECUTE ON FUNCTION pg_temp.sweep(), pg_temp.mark(text), pg_temp.bundle_schemas() TO PUBLIC;

-- A function written the old way is fooled by the same shadows: the attack is real here.
CREATE SCHEMA freshet_test_victim;
CREATE FUNCTION freshet_test_victim.owner_of_feed() RETURNS name LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
    AS $$ SELECT r.rolname FROM pg_namespace n JOIN pg_roles r ON r.oid = n.nspowner WHERE n.nspname = 'feed' $$;
GRANT USAGE ON SCHEMA freshet_test_victim TO PUBLIC;

SET LOCAL ROLE freshet_test_nobody;
DO $$
DECLARE
    catalog text;
BEGIN
    FOREACH catalog IN ARRAY ARRAY['pg_extension', 'pg_namespace', 'pg_class', 'pg_attribute', 'pg_index', 'pg_proc', 'pg_trigger',
                                   'pg_roles', 'pg_locks', 'pg_stat_activity', 'pg_database', 'pg_available_extensions', 'pg_type',
                                   'pg_settings', 'pg_policy', 'pg_constraint'] LOOP
        EXECUTE format('CREATE TEMP VIEW %I AS SELECT %s FROM pg_catalog.%I WHERE pg_temp.mark(%L)', catalog,
            (SELECT string_agg(quote_ident(a.attname), ', ' ORDER BY a.attnum)
             FROM pg_catalog.pg_attribute a JOIN pg_catalog.pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = ('pg_catalog.' || catalog)::pg_catalog.regclass AND a.attnum > 0 AND t.typtype <> 'p'),
            catalog, catalog);
        EXECUTE format('GRANT SELECT ON pg_temp.%I TO PUBLIC', catalog);   -- so each role below meets the shadows
    END LOOP;
END;
$$;
SELECT freshet_test_victim.owner_of_feed();
RESET ROLE;
SELECT ok((SELECT count(*) FROM pg_temp.escalations WHERE running_as = current_user AND is_superuser) > 0,
    'positive control: an old-style SECURITY DEFINER function with search_path = pg_catalog reads the shadows as a superuser');
DELETE FROM pg_temp.escalations;

SET LOCAL ROLE freshet_test_nobody;
SELECT is(ARRAY(SELECT p.oid::regprocedure::text FROM pg_catalog.pg_proc p JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
                WHERE n.nspname = ANY (pg_temp.bundle_schemas()) AND pg_catalog.has_function_privilege(p.oid, 'EXECUTE')
                  AND pg_catalog.has_schema_privilege(n.oid, 'USAGE')),
    '{}'::text[], 'a role with no grants can execute no function of the bundle');
SELECT cmp_ok(pg_temp.sweep(), '>=', 14, 'it tries them all anyway, and the catalog readers by name');
RESET ROLE;
SET LOCAL ROLE freshet_test_client;
SELECT cmp_ok(pg_temp.sweep(), '>', 30, 'freshet_client tries every function it may execute');
RESET ROLE;
SET LOCAL ROLE freshet_test_worker;
SELECT cmp_ok(pg_temp.sweep(), '>', 20, 'freshet_worker too');
RESET ROLE;
SET LOCAL ROLE freshet_test_admin;
SELECT cmp_ok(pg_temp.sweep(), '>', 60, 'and freshet_admin');
RESET ROLE;
SET LOCAL ROLE freshet_test_nobody;
DO $$
DECLARE
    catalog text;
BEGIN
    FOR catalog IN SELECT c.relname FROM pg_catalog.pg_class c WHERE c.relnamespace = pg_catalog.pg_my_temp_schema() AND c.relkind = 'v' LOOP
        EXECUTE format('DROP VIEW pg_temp.%I', catalog);
    END LOOP;
END;
$$;
RESET ROLE;
SELECT is((SELECT count(*)::int FROM pg_temp.escalations), 0, 'no Freshet function, called by any role, read a temporary shadow of a catalog');
SELECT ok(NOT (SELECT rolsuper FROM pg_roles WHERE rolname = 'freshet_test_nobody'), 'and the role with no grants is no superuser');
SELECT is(ARRAY(SELECT left(call, 60) || '...: ' || length FROM pg_temp.long_messages ORDER BY 1), '{}'::text[],
    'given 10,000 characters, no function any role may call echoes them in its error');

-- The foundation's entry points, from each role.
CREATE FUNCTION pg_temp.flags() RETURNS text LANGUAGE sql AS $$
    SELECT md5(string_agg(f::text, ',' ORDER BY f.flag)) FROM foundation.feature_flags f $$;
CREATE TEMP TABLE before AS SELECT pg_temp.flags() AS flags;
SET LOCAL ROLE freshet_test_nobody;
SELECT throws_ok($$ SELECT foundation.set_flag('use_queue_system', false) $$, '42501', NULL, 'a role with no grants cannot set a flag');
SELECT throws_ok($$ SELECT * FROM foundation.feature_flags $$, '42501', NULL, '... or read the flags table');
RESET ROLE;
SET LOCAL ROLE freshet_test_client;
SELECT throws_ok($$ SELECT foundation.set_flag('use_queue_system', false) $$, '42501', NULL, 'nor can freshet_client');
SELECT is(foundation.is_enabled('use_queue_system'), true, 'which reads flags');
RESET ROLE;
SET LOCAL ROLE freshet_test_worker;
SELECT throws_ok($$ SELECT foundation.set_flag('use_queue_system', false) $$, '42501', NULL, 'nor freshet_worker');
SELECT throws_ok($$ SELECT foundation.register_flag('x_flag', 'x', true) $$, '42501', NULL, '... who cannot register one either');
RESET ROLE;
SELECT is(pg_temp.flags(), (SELECT flags FROM before), 'the refused attempts changed no flag');
SET LOCAL ROLE freshet_test_admin;
SELECT is(foundation.set_flag('use_update_trigger', false), false, 'freshet_admin sets flags');
RESET ROLE;
SELECT is((SELECT updated_by FROM foundation.feature_flags WHERE flag = 'use_update_trigger'), session_user::text,
    'and the change is recorded against the session''s login, not the function''s owner');
SELECT throws_ok(format('SELECT foundation.assert_valid_identifier(%L, %L)', repeat('x', 5000), 'table'), '22023',
    format('invalid table identifier: %s... (5000 characters)', quote_literal(repeat('x', 64))), 'an error message never echoes a whole long input');

SELECT * FROM finish();
ROLLBACK;
