# Sourced by scripts/bench.sh: the refresh engine's claim + complete throughput against a bare
# single-table SKIP LOCKED queue, subscription-trigger latency, the background sweep, and a soak.
QUEUE_JOBS=${BENCH_QUEUE_JOBS:-20000}
SOAK_SECONDS=${BENCH_SOAK_SECONDS:-600}
fresh_db b_refresh
refresh_db=$(conninfo b_refresh)
"$MIGRATE" up --quiet --dir migrations --url "$refresh_db"
rsql() { "$PSQL" -X -q -At -v ON_ERROR_STOP=1 "$refresh_db" "$@"; }

# The baseline: one table, status as a column, a partial index for the claim order.
rsql -c "
  CREATE SCHEMA bench;
  CREATE TABLE bench.bare_queue (
      id bigserial PRIMARY KEY, data_type text NOT NULL, symbol text NOT NULL, status text NOT NULL DEFAULT 'pending',
      priority integer NOT NULL DEFAULT 0, attempts integer NOT NULL DEFAULT 0, next_attempt_at timestamptz NOT NULL DEFAULT now(),
      created_at timestamptz NOT NULL DEFAULT now(), worker_id text, claimed_at timestamptz, finished_at timestamptz,
      estimated_size bigint NOT NULL DEFAULT 2048, actual_size bigint);
  CREATE INDEX bare_queue_claim_order ON bench.bare_queue (priority DESC, next_attempt_at, id) WHERE status = 'pending';"

load_queue() {
  if [[ $1 == bare ]]; then
    rsql -c "TRUNCATE bench.bare_queue;
             INSERT INTO bench.bare_queue (data_type, symbol) SELECT 'quote', 'S' || n FROM generate_series(1, $QUEUE_JOBS) n;"
    rsql -c "VACUUM ANALYZE bench.bare_queue"
  else
    rsql -c "TRUNCATE refresh.api_call_queue, refresh.active_job_keys, refresh.api_data_usage;
             SELECT refresh.queue_refreshes('quote', ARRAY(SELECT 'S' || n FROM generate_series(1, $QUEUE_JOBS) n), 0);" >/dev/null
    rsql -c "VACUUM ANALYZE refresh.api_call_queue_pending, refresh.api_call_queue_processing, refresh.api_call_queue_completed, refresh.active_job_keys"
  fi
}
rate() { load_queue "$1"; python3 scripts/bench_refresh.py throughput "$refresh_db" "$1" "$2" "$3" "$QUEUE_JOBS" "${4:-}"; }

echo "claim + complete, $QUEUE_JOBS jobs per run, refresh queue against the bare queue..."
throughput_rows=""
for workers in 1 4 16; do
  for batch in 1 10 50; do
    reps=1
    [[ $workers == 16 && $batch == 10 ]] && reps=$RUNS
    bare=$(for _ in $(seq "$reps"); do rate bare "$workers" "$batch"; done | median)
    partitioned=$(for _ in $(seq "$reps"); do rate refresh "$workers" "$batch"; done | median)
    throughput_rows+="| claim + complete, $workers workers, batch $batch | ${partitioned}/s | bare queue: ${bare}/s | $(ratio "$partitioned" "$bare") |"$'\n'
  done
done
for workers in 1 4 16; do
  reps=1
  [[ $workers == 16 ]] && reps=$RUNS
  bare=$(for _ in $(seq "$reps"); do rate bare "$workers" 10 together; done | median)
  partitioned=$(for _ in $(seq "$reps"); do rate refresh "$workers" 10 together; done | median)
  throughput_rows+="| claim 10 + complete them in one call, $workers workers | ${partitioned}/s | bare queue: ${bare}/s | $(ratio "$partitioned" "$bare") |"$'\n'
done

echo "subscription insert latency with and without the trigger..."
rsql -c "TRUNCATE refresh.api_call_queue, refresh.active_job_keys, refresh.subscriptions" >/dev/null
read -r with_p50 with_p95 < <(python3 scripts/bench_refresh.py subscribe "$refresh_db" 2000)
rsql -c "ALTER TABLE refresh.subscriptions DISABLE TRIGGER subscriptions_queue_stale"
read -r without_p50 without_p95 < <(python3 scripts/bench_refresh.py subscribe "$refresh_db" 2000)
rsql -c "ALTER TABLE refresh.subscriptions ENABLE TRIGGER subscriptions_queue_stale"
overhead=$(python3 -c "import sys; print(f'{float(sys.argv[1]) - float(sys.argv[2]):.3f}')" "$with_p50" "$without_p50")

echo "background sweep over 10,000 subscriptions x 11 data types..."
rsql -c "
  TRUNCATE refresh.api_call_queue, refresh.active_job_keys, refresh.subscriptions;
  ALTER TABLE refresh.subscriptions DISABLE TRIGGER subscriptions_queue_stale;
  INSERT INTO refresh.subscriptions (client_id, symbol, data_types)
  SELECT 'client' || n, 'W' || n, ARRAY(SELECT data_type FROM refresh.data_type_registry ORDER BY data_type) FROM generate_series(1, 10000) n;
  ALTER TABLE refresh.subscriptions ENABLE TRIGGER subscriptions_queue_stale;
  INSERT INTO refresh.live_quote_indicators SELECT 'W' || n, '{}', now() FROM generate_series(1, 10000, 2) n ON CONFLICT DO NOTHING;
  INSERT INTO refresh.profiles SELECT 'W' || n, '{}', now() FROM generate_series(1, 10000, 3) n ON CONFLICT DO NOTHING;
  INSERT INTO refresh.financial_statements SELECT 'W' || n, '{}', now() - interval '2 days' FROM generate_series(1, 10000) n ON CONFLICT DO NOTHING;"
rsql -c "VACUUM ANALYZE refresh.subscriptions, refresh.live_quote_indicators, refresh.profiles, refresh.financial_statements"
timed_sweep() {
  rsql -c "WITH r AS MATERIALIZED (SELECT refresh.check_and_queue_stale_data_from_presence() AS report)
           SELECT (report ->> 'queued') || ' ' || round(extract(epoch FROM clock_timestamp() - now()) * 1000) FROM r"
}
sweeps=$(for _ in $(seq "$RUNS"); do rsql -c "TRUNCATE refresh.api_call_queue, refresh.active_job_keys" >/dev/null; timed_sweep; done)
sweep_queued=$(echo "$sweeps" | head -n 1 | cut -d' ' -f1)
sweep_ms=$(echo "$sweeps" | cut -d' ' -f2 | median)
read -r _ resweep_ms < <(timed_sweep)

echo "soak: 16 workers for $SOAK_SECONDS s with a producer and maintenance every 10 s..."
rsql -c "TRUNCATE refresh.api_call_queue, refresh.active_job_keys, refresh.api_data_usage, refresh.subscriptions;
         SELECT refresh.set_setting('completed_retention', '1 minute');
         SELECT refresh.set_setting('quota_max_calls', '1000000000000');" >/dev/null
read -r soak_first soak_last soak_ratio soak_jobs soak_prunes dead_pending dead_processing dead_keys kib_pending kib_processing soak_minutes \
  < <(python3 scripts/bench_refresh.py soak "$refresh_db" 16 "$SOAK_SECONDS")

cat <<REPORT

The refresh engine ($(date -u +%Y-%m-%dT%H:%MZ))
conditions: $conditions, psycopg worker processes (autocommit, prepared; one claim, then one complete per job), medians of $RUNS runs at 16 workers x batch 10

| benchmark | figure | baseline | ratio |
|---|---|---|---|
${throughput_rows}| subscription insert, 3 stale types queued | p50 ${with_p50} ms, p95 ${with_p95} ms | trigger disabled: p50 ${without_p50} ms | +${overhead} ms |
| background sweep, 10,000 subscriptions x 11 types | ${sweep_ms} ms (queued ${sweep_queued} jobs) | again with all queued: ${resweep_ms} ms | - |
| soak, 16 workers, ${SOAK_SECONDS} s, prune every 10 s ($soak_prunes runs) | first minute ${soak_first}/s, last ${soak_last}/s ($soak_jobs jobs) | per minute: ${soak_minutes} | $soak_ratio |
| soak: most dead tuples seen | pending $dead_pending, processing $dead_processing, keys $dead_keys | size at end: pending ${kib_pending} KiB, processing ${kib_processing} KiB | - |
REPORT
