-- A watched table whose columns are named n and o (the generated capture's names for the new and
-- old rows) is captured like any other: each row whole, and UPDATE works.
BEGIN;
SELECT plan(5);
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
SELECT * FROM finish();
ROLLBACK;
