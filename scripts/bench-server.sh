# Sourced by scripts/bench.sh: freshet-server's order processor against a listening Python
# processor (psycopg, the same drain loop) in the same run.
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

cat <<REPORT

freshet-server ($(date -u +%Y-%m-%dT%H:%MZ))
conditions: $conditions, release build, one order inserted every 10 ms, $WAKEUPS orders, 2 processor connections

| benchmark                                | figure                                   | baseline                                           | ratio | target        |
|------------------------------------------|------------------------------------------|----------------------------------------------------|-------|---------------|
| order insert to processed, p50 / p95     | p50 ${server_p50} ms, p95 ${server_p95} ms | Python listener p50 ${python_p50} ms, p95 ${python_p95} ms | $(ratio "$server_p50" "$python_p50")  | p50 < 5 ms    |
| the floor: a bare NOTIFY round trip, p50 | -                                        | ${ping_p50} ms                                     | -     | -             |
| server resident memory after the run     | ${server_kib} KiB                        | -                                                  | -     | -             |
REPORT
