# Sourced by scripts/bench.sh: migrate against psql and dbmate.
# The same trivial migrations in each tool's layout.
ours="$work/ours"; theirs="$work/dbmate"; mkdir -p "$ours" "$theirs"
: >"$work/psql-all.sql"
for i in $(seq 1 "$MIGRATIONS"); do
  v=$(printf '%05d' "$i")
  echo "CREATE TABLE t_$i (id int);" >"$ours/${v}_t$i.up.sql"
  echo "DROP TABLE t_$i;" >"$ours/${v}_t$i.down.sql"
  printf -- '-- migrate:up\nCREATE TABLE t_%d (id int);\n\n-- migrate:down\nDROP TABLE t_%d;\n' "$i" "$i" >"$theirs/${v}_t$i.sql"
  printf 'BEGIN;\n\\i %s\nCOMMIT;\n' "$ours/${v}_t$i.up.sql" >>"$work/psql-all.sql"
done


apply_psql() { fresh_db b_apply; elapsed_ms "$PSQL" -X -q -v ON_ERROR_STOP=1 "$(conninfo b_apply)" -f "$work/psql-all.sql"; }
apply_migrate() { fresh_db b_apply; elapsed_ms "$MIGRATE" up --quiet --dir "$ours" --url "$(conninfo b_apply)"; }
apply_dbmate() { fresh_db b_apply; elapsed_ms "$DBMATE" --url "$(dbmate_url b_apply)" --migrations-dir "$theirs" --no-dump-schema up; }

echo "applying $MIGRATIONS trivial migrations, $RUNS interleaved runs each..."
# Interleaved, so drift in the machine or the cluster weighs on every tool alike.
: >"$work/apply.tsv"
for _ in $(seq "$RUNS"); do
  printf 'psql\t%s\nmigrate\t%s\ndbmate\t%s\n' "$(apply_psql)" "$(apply_migrate)" "$(apply_dbmate)" >>"$work/apply.tsv"
done
times_of() { awk -v tool="$1" '$1 == tool {print $2}' "$work/apply.tsv"; }
psql_ms=$(times_of psql | median)
migrate_ms=$(times_of migrate | median)
dbmate_ms=$(times_of dbmate | median)

echo "status with $MIGRATIONS applied and nothing pending..."
fresh_db b_status_ours; "$MIGRATE" up --quiet --dir "$ours" --url "$(conninfo b_status_ours)"
fresh_db b_status_dbmate; "$DBMATE" --url "$(dbmate_url b_status_dbmate)" --migrations-dir "$theirs" --no-dump-schema up >/dev/null
hyperfine --style none --warmup 3 --runs 30 --export-json "$work/status.json" \
  -n migrate "$MIGRATE status --dir $ours --url '$(conninfo b_status_ours)'" \
  -n dbmate "$DBMATE --url '$(dbmate_url b_status_dbmate)' --migrations-dir $theirs status" >/dev/null
read -r status_ours status_dbmate < <(python3 -c '
import json,sys
r={x["command"]: x["median"] * 1000 for x in json.load(open(sys.argv[1]))["results"]}
print("%.1f %.1f" % (r["migrate"], r["dbmate"]))' "$work/status.json")

echo "verify --offline over $SUM_FILES files..."
many="$work/many"; mkdir -p "$many"
for i in $(seq 1 $((SUM_FILES / 2))); do
  v=$(printf '%06d' "$i")
  echo "CREATE TABLE t_$i (id int, note text DEFAULT 'padding to look like a real migration');" >"$many/${v}_t$i.up.sql"
  echo "DROP TABLE t_$i;" >"$many/${v}_t$i.down.sql"
done
"$MIGRATE" sum --quiet --dir "$many"
hyperfine --style none --warmup 1 --runs 10 --export-json "$work/verify.json" -n verify "$MIGRATE verify --offline --dir $many" >/dev/null
verify_ms=$(python3 -c 'import json,sys; print("%.0f" % (json.load(open(sys.argv[1]))["results"][0]["median"] * 1000))' "$work/verify.json")

echo "cloning a migrated template..."
fresh_db b_template; "$MIGRATE" up --quiet --dir migrations --url "$(conninfo b_template)"
clone_ms=$(for i in $(seq "$RUNS"); do
  elapsed_ms "$PSQL" -X -q "$admin" -c "CREATE DATABASE b_clone_$i TEMPLATE b_template"
  "$PSQL" -X -q "$admin" -c "DROP DATABASE b_clone_$i"
done | median)

cat <<REPORT

The runner ($(date -u +%Y-%m-%dT%H:%MZ))
conditions: $conditions, release build, dbmate $DBMATE_VERSION, medians of $RUNS runs (status: 30)

| benchmark                                   | migrate   | baseline            | ratio | target          |
|---------------------------------------------|-----------|---------------------|-------|-----------------|
| apply $MIGRATIONS trivial migrations               | ${migrate_ms} ms  | psql ${psql_ms} ms        | $(ratio "$migrate_ms" "$psql_ms")  | <= 1.25 x psql  |
| same, dbmate                                | -         | dbmate ${dbmate_ms} ms      | $(ratio "$dbmate_ms" "$psql_ms")  | (dbmate ~2.2)   |
| status, $MIGRATIONS applied, nothing pending       | ${status_ours} ms   | dbmate ${status_dbmate} ms    | $(ratio "$status_ours" "$status_dbmate")  | < 1 x dbmate    |
| verify --offline, $SUM_FILES files              | ${verify_ms} ms    | -                   | -     | < 1000 ms       |
| clone a migrated template (CREATE DATABASE) | ${clone_ms} ms     | -                   | -     | tens of ms      |
REPORT
