# Sourced by scripts/bench.sh: the event ledger's ingest rate with its triggers against the same
# event tables without them, per-event latency, and a full refresh_all_views() at 1,000,000 events
# against the incremental cost of one event.
#
# Workload: pgbench clients insert a stream of 60% deposits, 20% redeems (one in four empties the
# position, so holders come and go) and 20% share price changes, into existing positions:
#   1,000 keys:  1,000 vaults with 10 holders each;
#   one hot key: 1 vault with 1,000 holders.
# "without triggers" disables every trigger on the event tables (the known-term check included).
LEDGER_SECONDS=${BENCH_LEDGER_SECONDS:-8}
LEDGER_EVENTS=${BENCH_LEDGER_EVENTS:-1000000}
fresh_db b_ledger
ledger_db=$(conninfo b_ledger)
"$MIGRATE" up --quiet --dir migrations --url "$ledger_db"
lsql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$ledger_db" "$@"; }

lsql -c "
  INSERT INTO ledger.atom_created_events SELECT 1, n, 'tx', 'A' || n, 'creator', 'atom' FROM generate_series(1, 100) n;
  INSERT INTO ledger.triple_created_events
  SELECT 2, n, 'tx', 'T' || n, 'C' || n, 'creator', 'A' || (n % 100 + 1), 'A' || (n % 7 + 1), 'A' || (n * 13 % 100 + 1) FROM generate_series(1, 1000) n;
  -- every holder of both workloads starts with shares, so the runs measure a steady state
  INSERT INTO ledger.deposited_events SELECT 3, n, 'tx', 'payer', 'acct' || v || '_' || h, 'T' || v, 1, 1000, 990, 100, 100
  FROM generate_series(1, 1000) v, generate_series(0, 9) h, LATERAL (SELECT v * 10 + h AS n) k;
  INSERT INTO ledger.deposited_events SELECT 4, h, 'tx', 'payer', 'acct1_' || h, 'T1', 1, 1000, 990, 100, 100 FROM generate_series(10, 999) h;
  SELECT ledger.process_analytics_queue(1000000);"
lsql -c "VACUUM ANALYZE"

# One pgbench script per event type and statement size; :keys and :holders pick the workload.
# Block and log index are random: a rare collision is a replay, which ON CONFLICT makes a no-op.
ledger_script() {  # name, rows per statement, table, select list over n, v (vault) and h (holder)
  local source
  if [[ $2 == 1 ]]; then
    source="SELECT 1 AS n, :v AS v, :h AS h"
  else
    source="SELECT n, 1 + (random() * (:keys - 1))::int AS v, (random() * (:holders - 1))::int AS h FROM generate_series(1, $2) n"
  fi
  cat >"$work/ledger-$1-$2.sql" <<SQL
\\set b random(1, 1000000000)
\\set l random(1, 1000000000)
\\set v random(1, :keys)
\\set h random(0, :holders - 1)
INSERT INTO ledger.$3 SELECT :b, :l::bigint * 1000 + n, 'tx', $4 FROM ($source) s ON CONFLICT DO NOTHING;
SQL
}
for rows in 1 100; do
  ledger_script deposit "$rows" deposited_events "'payer', 'acct' || v || '_' || h, 'T' || v, 1, 1000, 990, 100, 100 + n"
  ledger_script redeem "$rows" redeemed_events "'acct' || v || '_' || h, 'payee', 'T' || v, 1, 10, CASE WHEN n % 4 = 0 OR random() < 0.25 THEN 0 ELSE 90 END, 10, 0"
  ledger_script price "$rows" share_price_changed_events "'T' || v, 1, 1000000000000000000 + n, 1000 + n, 1000 + n"
done
set_triggers() {  # ENABLE or DISABLE; every trigger, or with a second argument only <table>_<that> on each table
  local table trigger
  for table in deposited_events redeemed_events share_price_changed_events; do
    trigger=USER
    [[ -n ${2:-} ]] && trigger="${table}_$2"
    lsql -c "ALTER TABLE ledger.$table $1 TRIGGER $trigger"
  done
}
ingest() {  # keys holders clients rows -> events per second
  local tps
  tps=$("$PGBENCH" -n -c "$3" -j "$(( $3 < 2 ? 1 : 2 ))" -T "$LEDGER_SECONDS" -D keys="$1" -D holders="$2" \
          -f "$work/ledger-deposit-$4.sql@6" -f "$work/ledger-redeem-$4.sql@2" -f "$work/ledger-price-$4.sql@2" "$ledger_db" 2>/dev/null |
        awk '/^tps/ {print $3}')
  python3 -c "import sys; print(round(float(sys.argv[1]) * int(sys.argv[2])))" "$tps" "$4"
}

echo "ledger ingest with and without triggers, ${LEDGER_SECONDS} s per run..."
ingest_rows=""
for workload in "1000 10 1,000 keys" "1 1000 one hot key"; do
  read -r keys holders label <<<"$workload"
  for clients in 1 16; do
    for rows in 1 100; do
      reps=1
      [[ $keys == 1000 && $clients == 16 ]] && reps=$RUNS
      with=$(for _ in $(seq "$reps"); do ingest "$keys" "$holders" "$clients" "$rows"; done | median)
      set_triggers DISABLE
      without=$(for _ in $(seq "$reps"); do ingest "$keys" "$holders" "$clients" "$rows"; done | median)
      set_triggers ENABLE
      ingest_rows+="| ingest, $label, $clients clients, $rows event(s) per statement | ${with} events/s | without triggers: ${without}/s | $(ratio "$with" "$without") |"$'\n'
      if [[ $keys == 1000 && $clients == 16 ]]; then
        # Version 1's ingest path: the event tables keep their known-term check, nothing is maintained.
        set_triggers DISABLE maintain
        checked=$(for _ in $(seq "$reps"); do ingest "$keys" "$holders" "$clients" "$rows"; done | median)
        set_triggers ENABLE maintain
        ingest_rows+="| ingest, $label, $clients clients, $rows event(s) per statement | ${with} events/s | version 1 ingest (known-term check only): ${checked}/s | $(ratio "$with" "$checked") |"$'\n'
      fi
    done
  done
done

echo "per-event latency, one client, one event per statement..."
latency() {  # -> p50 p99 in ms
  rm -f "$work"/ledger-latency*
  "$PGBENCH" -n -c 1 -T "$LEDGER_SECONDS" -D keys=1000 -D holders=10 -l --log-prefix="$work/ledger-latency" \
    -f "$work/ledger-deposit-1.sql@6" -f "$work/ledger-redeem-1.sql@2" -f "$work/ledger-price-1.sql@2" "$ledger_db" >/dev/null 2>&1
  cat "$work"/ledger-latency* | awk '{print $3}' | sort -n |
    awk '{a[NR]=$1} END {printf "%.3f %.3f\n", a[int(NR*0.5)]/1000, a[int(NR*0.99)]/1000}'
}
read -r lat_p50 lat_p99 < <(latency)
set_triggers DISABLE
read -r bare_p50 bare_p99 < <(latency)
set_triggers ENABLE

echo "refresh_all_views() at $LEDGER_EVENTS events against one event's incremental cost..."
fresh_db b_ledger_views
views_db=$(conninfo b_ledger_views)
"$MIGRATE" up --quiet --dir migrations --url "$views_db" --to 6
vsql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$views_db" "$@"; }
vsql -c "
  INSERT INTO ledger.atom_created_events SELECT 1, n, 'tx', 'A' || n, 'creator', 'atom' FROM generate_series(1, 2000) n;
  INSERT INTO ledger.triple_created_events
  SELECT 2, n, 'tx', 'T' || n, 'C' || n, 'creator', 'A' || (n % 2000 + 1), 'A' || (n % 50 + 1), 'A' || (n * 7 % 2000 + 1) FROM generate_series(1, 10000) n;"
chunk=100000
for start in $(seq 0 "$chunk" $((LEDGER_EVENTS - 1))); do
  vsql -c "
    INSERT INTO ledger.deposited_events
    SELECT 10 + n / 1000, n, 'tx', 'payer', 'acct' || (n * 7919 % 20000), CASE WHEN n % 5 = 0 THEN 'C' ELSE 'T' END || (n * 31 % 10000 + 1), 1 + n % 2,
           1000 + n % 997, 990 + n % 997, 100, n % 50000
    FROM generate_series($start::bigint, $start + $chunk - 1) n WHERE n % 10 < 6;
    INSERT INTO ledger.redeemed_events
    SELECT 10 + n / 1000, n, 'tx', 'acct' || (n * 7919 % 20000), 'payee', CASE WHEN n % 5 = 0 THEN 'C' ELSE 'T' END || (n * 31 % 10000 + 1), 1 + n % 2,
           10, CASE WHEN n % 4 = 0 THEN 0 ELSE n % 40000 END, 10 + n % 13, 0
    FROM generate_series($start::bigint, $start + $chunk - 1) n WHERE n % 10 IN (6, 7);
    INSERT INTO ledger.share_price_changed_events
    SELECT 10 + n / 1000, n, 'tx', 'T' || (n * 31 % 10000 + 1), 1 + n % 2, 1000000000000000000 + n, 1000 + n, 1000 + n
    FROM generate_series($start::bigint, $start + $chunk - 1) n WHERE n % 10 >= 8;"
done
vsql -c "VACUUM ANALYZE"
stored=$(vsql -c "SELECT (SELECT count(*) FROM ledger.deposited_events) + (SELECT count(*) FROM ledger.redeemed_events) + (SELECT count(*) FROM ledger.share_price_changed_events)")
refresh_ms=$(for _ in $(seq "$RUNS"); do vsql -c "SELECT round(sum(milliseconds)) FROM ledger.refresh_all_views()"; done | median)
positions=$(vsql -c "SELECT count(*) FROM ledger.position")
start_ns=$(date +%s%N)
"$MIGRATE" up --quiet --dir migrations --url "$views_db"
backfill_ms=$(( ($(date +%s%N) - start_ns) / 1000000 ))
verify_ms=$(vsql -c "WITH v AS MATERIALIZED (SELECT count(*) AS n FROM ledger.verify()) SELECT round(extract(epoch FROM clock_timestamp() - now()) * 1000) FROM v")
cat >"$work/ledger-one-deposit.sql" <<'SQL'
\set b random(1, 1000000000)
\set l random(1, 1000000000)
\set a random(1, 20000)
\set t random(1, 10000)
INSERT INTO ledger.deposited_events VALUES (:b, 2000000000 + :l::bigint, 'tx', 'payer', 'acct' || :a, 'T' || :t, 1, 1000, 990, 100, :l) ON CONFLICT DO NOTHING;
SQL
rm -f "$work"/ledger-one*.log*
"$PGBENCH" -n -c 1 -T "$LEDGER_SECONDS" -l --log-prefix="$work/ledger-one" -f "$work/ledger-one-deposit.sql" "$views_db" >/dev/null 2>&1
one_p50=$(cat "$work"/ledger-one.* | awk '{print $3}' | sort -n | awk '{a[NR]=$1} END {printf "%.3f\n", a[int(NR*0.5)]/1000}')

cat <<REPORT

The event ledger ($(date -u +%Y-%m-%dT%H:%MZ))
conditions: $conditions, pgbench ${LEDGER_SECONDS} s per run (medians of $RUNS at 1,000 keys x 16 clients), stream of 60% deposits, 20% redeems, 20% price changes into existing positions

| benchmark | with triggers | baseline | ratio |
|---|---|---|---|
${ingest_rows}| per-event latency, 1 client, 1 event per statement | p50 ${lat_p50} ms, p99 ${lat_p99} ms | without triggers: p50 ${bare_p50} ms, p99 ${bare_p99} ms | +$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.3f}')" "$lat_p50" "$bare_p50") ms |
| version 1: refresh_all_views(), ${stored} events stored, ${positions} positions | ${refresh_ms} ms | one deposit on version 2 at the same size: p50 ${one_p50} ms | $(ratio "$refresh_ms" "$one_p50") x |
| migrate up to version 2 at that size (drop views, backfill 9 tables, triggers) | ${backfill_ms} ms | | |
| verify() at that size, all nine aggregates | ${verify_ms} ms | | |
REPORT
