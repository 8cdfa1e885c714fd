# Sourced by scripts/bench.sh: the jobs module's order throughput, wake-up latency and stats refresh.
ORDERS=${BENCH_ORDERS:-20000}
fresh_db b_jobs
jobs_db=$(conninfo b_jobs)
"$MIGRATE" up --quiet --dir migrations --url "$jobs_db"
jsql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$jobs_db" "$@"; }

# The same book of orders before each throughput run: 300 users, 20 issuers, a mix with some bad orders.
reset_orders() {
  jsql -c "
    TRUNCATE jobs.order_queue, jobs.trades, jobs.holdings, jobs.balances, jobs.stale_issuer_stats, jobs.stale_hourly_bars;
    INSERT INTO jobs.issuers (ticker, name, current_price, shares_outstanding)
    SELECT 'T' || n, 'Issuer ' || n, 1 + n * 0.37, 1000000 FROM generate_series(1, 20) n ON CONFLICT DO NOTHING;
    INSERT INTO jobs.balances SELECT md5('user' || n)::uuid, 5000 FROM generate_series(1, 300) n;
    INSERT INTO jobs.holdings SELECT md5('user' || n)::uuid, 'T' || (1 + n % 20), 100 FROM generate_series(1, 300) n;
    INSERT INTO jobs.order_queue (user_id, ticker, order_type, amount)
    SELECT md5('user' || (1 + (n * 7919) % 300))::uuid, CASE WHEN n % 97 = 0 THEN 'NOPE' ELSE 'T' || (1 + (n * 31) % 20) END,
           CASE WHEN n % 3 = 0 THEN 'sell' ELSE 'buy' END, 1 + (n * 13) % 400
    FROM generate_series(1, $ORDERS) n;"
  jsql -c "VACUUM ANALYZE jobs.order_queue"
}
echo 'SELECT jobs.process_next_queue_order();' >"$work/process.sql"
echo 'SELECT 1;' >"$work/select1.sql"
tps() { awk '/tps = / && /without initial connection/ {print int($3)}'; }
rate_with() {
  reset_orders
  "$PGBENCH" -n -c "$1" -j "$(( $1 < 2 ? 1 : 2 ))" -t $((ORDERS / $1)) -f "$work/process.sql" "$jobs_db" 2>/dev/null | tps
}
echo "processing $ORDERS orders with 1 and 8 processors, $RUNS runs each..."
rate_1=$(for _ in $(seq "$RUNS"); do rate_with 1; done | median)
rate_8=$(for _ in $(seq "$RUNS"); do rate_with 8; done | median)
floor_1=$("$PGBENCH" -n -c 1 -j 1 -t "$ORDERS" -f "$work/select1.sql" "$jobs_db" 2>/dev/null | tps)

echo "insert-to-processed latency with a listening processor..."
read -r wake_p50 wake_p95 ping_p50 < <(python3 scripts/bench_wakeup.py "$jobs_db" "${BENCH_WAKEUPS:-400}")

echo "stats refresh at 1,000 issuers and 1,000,000 trades..."
jsql -c "
  TRUNCATE jobs.order_queue, jobs.trades, jobs.holdings, jobs.balances, jobs.issuer_stats_cache, jobs.refresh_marks,
           jobs.stale_issuer_stats, jobs.stale_hourly_bars, jobs.hourly_prices;
  DELETE FROM jobs.issuers;
  INSERT INTO jobs.issuers (ticker, name, current_price, shares_outstanding)
  SELECT 'S' || n, 'Issuer ' || n, 1 + n % 500, 1000000 FROM generate_series(1, 1000) n;
  INSERT INTO jobs.holdings SELECT md5('holder' || n)::uuid, 'S' || (1 + n % 1000), 10 FROM generate_series(1, 100000) n;
  INSERT INTO jobs.trades (order_id, user_id, ticker, side, shares, price, amount, executed_at)
  SELECT n, md5('holder' || (n % 100000))::uuid, 'S' || (1 + n % 1000), 'buy', 1, 1 + n % 500, 1 + n % 500,
         now() - (n % 172800) * interval '1 second'
  FROM generate_series(1, 1000000) n;"
jsql -c "VACUUM ANALYZE jobs.trades, jobs.holdings, jobs.issuers"
timed_refresh() {
  jsql -c "WITH r AS MATERIALIZED (SELECT jobs.refresh_issuer_stats_cache() AS n)
           SELECT n || ' ' || round(extract(epoch FROM clock_timestamp() - now()) * 1000) FROM r"
}
read -r full_rows full_ms < <(timed_refresh)
jsql -c "INSERT INTO jobs.trades (order_id, user_id, ticker, side, shares, price, amount)
         SELECT 2000000 + n, md5('holder' || n)::uuid, 'S' || (1 + n % 50), 'buy', 1, 1 + n % 500, 1 + n % 500
         FROM generate_series(1, 1000) n"
read -r incremental_rows incremental_ms < <(timed_refresh)
snapshot_ms=$(jsql -c "WITH r AS MATERIALIZED (SELECT jobs.snapshot_hourly_prices() AS n)
                       SELECT round(extract(epoch FROM clock_timestamp() - now()) * 1000) FROM r")

cat <<REPORT

The jobs module ($(date -u +%Y-%m-%dT%H:%MZ))
conditions: $conditions, pgbench, $ORDERS orders (about 1 in 50 bad), 300 users, 20 issuers, medians of $RUNS runs

| benchmark                                    | figure            | baseline                     | ratio |
|----------------------------------------------|-------------------|------------------------------|-------|
| orders processed per second, 1 processor     | ${rate_1}/s         | SELECT 1 on 1 client: ${floor_1}/s | $(ratio "$rate_1" "$floor_1")  |
| orders processed per second, 8 processors    | ${rate_8}/s         | 1 processor: ${rate_1}/s          | $(ratio "$rate_8" "$rate_1")  |
| insert to processed, listening processor     | p50 ${wake_p50} ms, p95 ${wake_p95} ms | bare NOTIFY p50 ${ping_p50} ms    | $(ratio "$wake_p50" "$ping_p50")  |
| stats refresh, 1,000 issuers, 1,000,000 trades | full ${full_ms} ms ($full_rows rows) | -                            | -     |
| stats refresh after 1,000 trades on 50 issuers | ${incremental_ms} ms ($incremental_rows rows) | full refresh: ${full_ms} ms | $(ratio "$incremental_ms" "$full_ms")  |
| hourly snapshot of 1,000,000 trades' bars    | ${snapshot_ms} ms           | -                            | -     |
REPORT
