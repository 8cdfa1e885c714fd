# Sourced by scripts/bench.sh: freshet-server's order processor against a listening Python
# processor (psycopg, the same drain loop) in the same run; then the WebSocket gateway with 1,000
# clients against a psycopg reader of the same change stream (LISTEN, then feed.changes_since()).
echo "building freshet-server (release)..."
swift build -c release --product freshet-server --static-swift-stdlib >/dev/null
SERVER=$(swift build -c release --static-swift-stdlib --show-bin-path)/freshet-server
fresh_db b_server
server_db=$(conninfo b_server)
"$MIGRATE" up --quiet --dir migrations --url "$server_db"
WAKEUPS=${BENCH_WAKEUPS:-400}

echo "insert-to-processed latency: a Python listener, then freshet-server, $WAKEUPS orders each..."
read -r python_p50 python_p95 ping_p50 < <(python3 scripts/bench_wakeup.py "$server_db" "$WAKEUPS")
"$SERVER" serve --url "$server_db" --listen 127.0.0.1:0 --order-processors 2 >"$work/server.log" 2>&1 &
server_pid=$!
for _ in $(seq 300); do grep -q "listening on" "$work/server.log" && break; sleep 0.1; done
read -r server_p50 server_p95 _ < <(python3 scripts/bench_wakeup.py "$server_db" "$WAKEUPS" external)
server_kib=$(awk '/VmRSS/ {print $2}' "/proc/$server_pid/status")
kill -TERM "$server_pid"
wait "$server_pid" || true

GATEWAY_WRITES=${BENCH_GATEWAY_WRITES:-500}
echo "commit-to-WebSocket delivery: 1,000 clients, 100 on the written table, $GATEWAY_WRITES commits 10 ms apart..."
"$PSQL" -X -q "$server_db" -c "CREATE SCHEMA IF NOT EXISTS bench" \
  -c "CREATE TABLE bench.gw_hot (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sent_at float8 NOT NULL)" \
  -c "CREATE TABLE bench.gw_cold (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, sent_at float8 NOT NULL)" \
  -c "SELECT feed.watch('bench.gw_hot'), feed.watch('bench.gw_cold')" >/dev/null
secret=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
FRESHET_JWT_SECRET=$secret "$SERVER" serve --url "$server_db" --listen 127.0.0.1:0 --order-processors 0 >"$work/gateway.log" 2>&1 &
gateway_pid=$!
for _ in $(seq 300); do grep -q "listening on" "$work/gateway.log" && break; sleep 0.1; done
gateway_url="ws://127.0.0.1:$(sed -n 's/.*listening on http:\/\/127.0.0.1:\([0-9]*\).*/\1/p' "$work/gateway.log")/ws/db_subscriptions"
token=$(FRESHET_JWT_SECRET=$secret "$SERVER" token --user bench --service)
# The clients are C on one epoll loop (the Swift toolchain brings clang): a few microseconds a frame,
# so the figures are the gateway's and not the harness's.
"$(command -v clang || command -v cc)" -O2 -o "$work/ws_load" scripts/ws_load.c
# Each connection holds a socket on both sides: allow as many open files as the system lets us.
ulimit -n "$(ulimit -Hn)"
read -r ws_p50 ws_p99 direct_p50 direct_p99 delivered_per_s committed_per_s kib_per_connection samples first_p50 first_p99 dropped_slow < <(
  python3 scripts/bench_gateway.py "$server_db" "$gateway_url" "$token" "$gateway_pid" "$GATEWAY_WRITES" "$work/ws_load")
kill -TERM "$gateway_pid"
wait "$gateway_pid" || true

cat <<REPORT

freshet-server ($(date -u +%Y-%m-%dT%H:%MZ))
conditions: $conditions, release build, one order inserted every 10 ms, $WAKEUPS orders, 2 processor connections

| benchmark                                | figure                                   | baseline                                           | ratio | target        |
|------------------------------------------|------------------------------------------|----------------------------------------------------|-------|---------------|
| order insert to processed, p50 / p95     | p50 ${server_p50} ms, p95 ${server_p95} ms | Python listener p50 ${python_p50} ms, p95 ${python_p95} ms | $(ratio "$server_p50" "$python_p50")  | p50 < 5 ms    |
| the floor: a bare NOTIFY round trip, p50 | -                                        | ${ping_p50} ms                                     | -     | -             |
| server resident memory after the run     | ${server_kib} KiB                        | -                                                  | -     | -             |

The gateway: $(nproc) cores shared by the server, PostgreSQL, the writer and the clients (scripts/ws_load.c, one epoll loop); release build; $samples deliveries measured.

| benchmark                                        | figure                               | baseline (psycopg: LISTEN, then feed.changes_since) | ratio (p99) | target     |
|--------------------------------------------------|--------------------------------------|------------------------------------------------------|-------------|------------|
| commit to WebSocket delivery, every client, p50 / p99 | p50 ${ws_p50} ms, p99 ${ws_p99} ms | p50 ${direct_p50} ms, p99 ${direct_p99} ms      | $(ratio "$ws_p99" "$direct_p99")        | p99 < 10 ms |
| the same, each change's first client, p50 / p99 | p50 ${first_p50} ms, p99 ${first_p99} ms | p50 ${direct_p50} ms, p99 ${direct_p99} ms      | $(ratio "$first_p99" "$direct_p99")        | p99 < 10 ms |
| delivered messages per second, saturating writers | ${delivered_per_s}/s (100 subscribers; ${dropped_slow} closed with 4008) | rows committed: ${committed_per_s}/s      | -           | report     |
| server memory per idle WebSocket connection      | ${kib_per_connection} KiB            | -                                                    | -           | report     |
REPORT
