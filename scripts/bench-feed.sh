# Sourced by scripts/bench.sh: write throughput on a watched table against an unwatched one, and the
# commit-to-listener latency of the hints with 100 listeners.
#
# Three identical tables take the same pgbench inserts: bench.plain (not watched), bench.watched
# (feed.watch) and bench.notified, whose only trigger sends one NOTIFY per statement: the floor that any
# per-statement hint costs, because NOTIFY serialises every notifying commit in the cluster.
FEED_SECONDS=${BENCH_FEED_SECONDS:-8}
fresh_db b_feed
feed_db=$(conninfo b_feed)
"$MIGRATE" up --quiet --dir migrations --url "$feed_db"
fsql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$feed_db" "$@"; }
fsql -c "
  CREATE SCHEMA bench;
  CREATE FUNCTION bench.hint() RETURNS trigger LANGUAGE plpgsql AS \$\$
  BEGIN PERFORM pg_notify('bench_notified', json_build_object('table', 'bench.notified', 'operation', 'INSERT', 'id', 1)::text); RETURN NULL; END \$\$;"
for table in plain watched notified; do
  fsql -c "CREATE TABLE bench.$table (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, user_id text NOT NULL, status text NOT NULL, qty numeric NOT NULL, note text)"
done
fsql -c "SELECT feed.watch('bench.watched', 'user_id')" \
     -c "CREATE TRIGGER hint AFTER INSERT ON bench.notified FOR EACH STATEMENT EXECUTE FUNCTION bench.hint()"

feed_script() {  # table rows
  local insert="INSERT INTO bench.$1 (user_id, status, qty, note) VALUES ('u' || :u, 'open', :u, 'a short note');"
  [[ $2 == 1 ]] || insert="INSERT INTO bench.$1 (user_id, status, qty, note) SELECT 'u' || (:u + n) % 100, 'open', n, 'a short note' FROM generate_series(1, $2) n;"
  printf '\\set u random(1, 100)\n%s\n' "$insert" >"$work/feed-$1-$2.sql"
}
feed_rate() {  # table clients rows -> rows per second
  fsql -c "TRUNCATE bench.plain, bench.watched, bench.notified, feed.change_log, feed.commits"
  local tps
  tps=$("$PGBENCH" -n -c "$2" -j "$(( $2 < 2 ? 1 : 2 ))" -T "$FEED_SECONDS" -f "$work/feed-$1-$3.sql" "$feed_db" 2>/dev/null | awk '/^tps/ {print $3}')
  python3 -c "import sys; print(round(float(sys.argv[1]) * int(sys.argv[2])))" "$tps" "$3"
}
echo "feed write throughput, ${FEED_SECONDS} s per run..."
feed_rows=""
for rows in 1 1000; do
  for table in plain watched notified; do feed_script "$table" "$rows"; done
  for clients in 1 16; do
    reps=1
    [[ $rows == 1 && $clients == 16 ]] && reps=$RUNS
    plain=$(for _ in $(seq "$reps"); do feed_rate plain "$clients" "$rows"; done | median)
    watched=$(for _ in $(seq "$reps"); do feed_rate watched "$clients" "$rows"; done | median)
    notified=$(for _ in $(seq "$reps"); do feed_rate notified "$clients" "$rows"; done | median)
    feed_rows+="| $clients client(s), $rows row(s) per statement | ${watched} rows/s | ${plain} rows/s | $(ratio "$watched" "$plain") | $(ratio "$notified" "$plain") |"$'\n'
  done
done

echo "commit-to-listener latency with 100 listeners..."
fsql -c "TRUNCATE bench.watched, feed.change_log, feed.commits"
read -r hint_p50 hint_p99 read_p50 read_p99 ping_p50 ping_p99 < <(python3 scripts/bench_feed_latency.py "$feed_db" 100 "${BENCH_FEED_WRITES:-300}")

cat <<REPORT

The change feed ($(date -u +%Y-%m-%dT%H:%MZ))
conditions: $conditions, pgbench ${FEED_SECONDS} s per run (medians of $RUNS at 16 clients x 1 row), autocommit inserts into a 5-column table with an identity key

| writes | watched | not watched | ratio | NOTIFY-only trigger / not watched |
|---|---|---|---|---|
${feed_rows}
| commit-to-listener latency, 100 listeners, one single-row commit every 10 ms | p50 | p99 |
|---|---|---|
| hint received by each listener | ${hint_p50} ms | ${hint_p99} ms |
| hint received, then the change read with feed.changes_since() (one listener) | ${read_p50} ms | ${read_p99} ms |
| baseline: bare NOTIFY from the writer, 100 listeners | ${ping_p50} ms | ${ping_p99} ms |
REPORT
