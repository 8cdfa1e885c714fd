-- A watched table whose columns are named n and o (the generated capture's names for the new and
-- old rows) is captured like any other: each row whole, and UPDATE works. A watched table that is
-- dropped leaves nothing behind that stops a new table of its name from being watched.
BEGIN;
SELECT plan(9);
SET CONSTRAINTS feed.commits_stamp IMMEDIATE;
CREATE SCHEMA alias_app;
CREATE TABLE alias_app.points (id int PRIMARY KEY, n int, o text, e text);
SELECT feed.watch('alias_app.points');
INSERT INTO alias_app.points VALUES (1, 42, 'x', 'y');
SELECT is((SELECT row_data FROM feed.change_log WHERE table_name = 'alias_app.points' AND operation = 'INSERT'),
          '{"id": 1, "n": 42, "o": "x", "e": "y"}'::jsonb, 'an INSERT logs the whole row, not the column n');
SELECT lives_ok($$ UPDATE alias_app.points SET n = 43, o = 'z' WHERE id = 1 $$, 'an UPDATE of a table with columns n and o runs');
SELECT is((SELECT row_data || jsonb_build_object('old', old_data) FROM feed.change_log WHERE table_name = 'alias_app.points' AND operation = 'UPDATE'),
          '{"id": 1, "n": 43, "o": "z", "e": "y", "old": {"n": 42, "o": "x"}}'::jsonb, '... and logs the new row and the old values it changed');
DELETE FROM alias_app.points;
SELECT is((SELECT row_data FROM feed.change_log WHERE table_name = 'alias_app.points' AND operation = 'DELETE'),
          '{"id": 1, "n": 43, "o": "z", "e": "y"}'::jsonb, 'a DELETE logs the whole old row, not the column o');
SELECT ok(feed.unwatch('alias_app.points'), 'and the table can be unwatched');

CREATE TABLE alias_app.notes (id int PRIMARY KEY, body text);
SELECT feed.watch('alias_app.notes');
CREATE TEMP TABLE old_notes ON COMMIT DROP AS SELECT 'alias_app.notes'::regclass::oid AS id;
INSERT INTO alias_app.notes VALUES (1, 'before');
DROP TABLE alias_app.notes;
CREATE TABLE alias_app.notes (id int PRIMARY KEY, body text);
SELECT lives_ok($$ SELECT feed.watch('alias_app.notes') $$, 'a new table with a dropped watched table''s name can be watched');
SELECT is((SELECT count(*)::int FROM feed.watched_tables WHERE table_name = 'alias_app.notes'), 1, '... and is registered once');
SELECT is((SELECT count(*)::int FROM pg_proc WHERE proname LIKE 'capture\_' || (SELECT id FROM old_notes) || '\_%'), 0,
          'the dropped table''s capture functions are gone');
INSERT INTO alias_app.notes VALUES (2, 'after');
SELECT is((SELECT array_agg(row_data ->> 'body' ORDER BY id) FROM feed.change_log WHERE table_name = 'alias_app.notes'), ARRAY['before', 'after'],
          'the new table is captured, and the dropped one''s changes stay readable');
SELECT * FROM finish();
ROLLBACK;
